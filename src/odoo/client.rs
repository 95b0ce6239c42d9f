//! [`OdooClient`]: the one place that talks HTTP to Odoo.
//!
//! - JSON-RPC on `/jsonrpc` (`common`, `db`, `object.execute_kw`), authenticated with the API key
//!   (or the password when no key is set); the uid is cached and refreshed when Odoo stops
//!   accepting it.
//! - A web session (`/web/session/authenticate`, password only) whose cookie downloads PDF
//!   reports from `/report/pdf/<report>/<ids>` (and opens the bus websocket); a redirect to `/web/login` means the session
//!   expired: the client logs in again once, and never returns the login page as a PDF.
//! - Retries with jittered exponential backoff (backon) for retryable errors only
//!   ([`OdooError::is_retryable`]), each logged as a warning with its attempt number. A call
//!   that timed out may have been carried out by Odoo; retrying a `create` can then create
//!   twice, which is why the daemon's creates carry unique keys (`dedupe_key`, `wamid`) that
//!   make Odoo refuse the duplicate.
//! - One reqwest client (connection pool) and a semaphore bounding the requests in flight, so
//!   the daemon never takes more than `max_concurrent_requests` of Odoo's workers.
//! - `/jsonrpc` calls carry a session cookie bound to the database (no login: web's
//!   `GET /web/login?db=<db>` hands it out, renewed daily). Without any cookie, Odoo lists the
//!   databases on every request, over a new PostgreSQL connection to `postgres` that its pool
//!   does not keep: measured on a real Odoo 17, a small call took 13.8 ms without it and 8.3 ms
//!   with it, and PostgreSQL spent 15 ms of CPU per call without it, 3.6 ms with it. When Odoo
//!   gives no such cookie, calls go without one (tried again after a minute).

use super::batch::{self, load_outcome};
use super::error::{CallSite, Credential, OdooError};
use super::protocol::{
    self, decode_response, execute_kw_body, format_ids, ids_for_trace, is_login_redirect,
    service_body, session_cookie, shorten,
};
use super::types::{Access, Context, Domain, FieldInfo, SearchOptions, ServerVersion};
use crate::secret::Secret;
use backon::{ExponentialBuilder, Retryable};
use bytes::Bytes;
use futures_util::stream::{self, Stream};
use reqwest::header::{CONTENT_TYPE, COOKIE, LOCATION, SET_COOKIE};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex as StdMutex};
use std::time::Duration;
use tokio::sync::{Mutex, Semaphore};
use tracing::{warn, Instrument};
use url::Url;

/// What the client needs to reach Odoo. Plain data: the configuration module fills it.
/// `Debug` shows neither the secrets nor a password embedded in the URL.
#[derive(Clone)]
pub struct ClientConfig {
    /// Odoo's base URL (`http://127.0.0.1:8069`); a path prefix behind a proxy is kept.
    pub url: Url,
    /// The database name.
    pub database: String,
    /// The daemon user's login.
    pub login: String,
    /// API key for JSON-RPC (preferred).
    pub api_key: Option<Secret>,
    /// Password: JSON-RPC when no API key is set, and always for the PDF report web session.
    pub password: Option<Secret>,
    /// Time limit of one HTTP request.
    pub timeout: Duration,
    /// Requests to Odoo in flight at once, at most (0 counts as 1).
    pub max_concurrent_requests: usize,
    /// PDF reports rendered at once, at most (0 counts as 1); they also count as requests.
    pub max_concurrent_reports: usize,
    /// Retries of a retryable failure (0: none).
    pub max_retries: u32,
}

impl ClientConfig {
    /// Defaults: no secrets, 30 s timeout, 4 concurrent requests, 4 retries.
    pub fn new(url: Url, database: impl Into<String>, login: impl Into<String>) -> Self {
        ClientConfig {
            url,
            database: database.into(),
            login: login.into(),
            api_key: None,
            password: None,
            timeout: Duration::from_secs(30),
            max_concurrent_requests: 4,
            max_concurrent_reports: 2,
            max_retries: 4,
        }
    }

    /// The URL without any user:password part, for messages.
    pub fn display_url(&self) -> String {
        shown(&self.url)
    }
}

impl fmt::Debug for ClientConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientConfig")
            .field("url", &self.display_url())
            .field("database", &self.database)
            .field("login", &self.login)
            .field("api_key", &self.api_key)
            .field("password", &self.password)
            .field("timeout", &self.timeout)
            .field("max_concurrent_requests", &self.max_concurrent_requests)
            .field("max_concurrent_reports", &self.max_concurrent_reports)
            .field("max_retries", &self.max_retries)
            .finish()
    }
}

/// Retries of a handle: at most `times`, jittered exponential delays between `min` and `max`.
#[derive(Clone, Copy, Debug)]
struct RetryDelays {
    min: Duration,
    max: Duration,
    times: u32,
}

/// An async Odoo client. Cheap to clone: clones share the connection pool, the request bound,
/// the cached uid and the web session.
#[derive(Clone)]
pub struct OdooClient {
    inner: Arc<Inner>,
    context: Arc<Context>,
    delays: RetryDelays,
    /// Every `execute_kw` counted and timed (off unless [`OdooClient::with_metrics`]).
    metrics: crate::metrics::Metrics,
}

struct Inner {
    cfg: ClientConfig,
    http: reqwest::Client,
    jsonrpc_url: Url,
    base_url: Url,
    display_url: String,
    permits: Semaphore,
    /// Reports rendered at once (taken before a request permit).
    report_permits: Semaphore,
    next_id: AtomicU64,
    /// Cached uid; 0 when not logged in.
    uid: AtomicI64,
    login_lock: Mutex<()>,
    /// The web session cookie value.
    session: Mutex<Option<Secret>>,
    /// The session cookie bound to the database that `/jsonrpc` calls carry.
    db_pin: Mutex<DbPin>,
    /// Field types per model, for `load`.
    field_types: StdMutex<HashMap<String, Arc<HashMap<String, String>>>>,
}

impl fmt::Debug for OdooClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OdooClient")
            .field("url", &self.inner.display_url)
            .field("database", &self.inner.cfg.database)
            .field("login", &self.inner.cfg.login)
            .field("context", &self.context)
            .finish_non_exhaustive()
    }
}

/// The database-bound session cookie of the `/jsonrpc` calls, and when to ask for one again.
#[derive(Default)]
struct DbPin {
    cookie: Option<Secret>,
    renew_at: Option<tokio::time::Instant>,
}

/// A database-bound session is asked for again after this long (Odoo forgets sessions unused
/// for a week; one it forgot only costs the calls their speed, not their answer).
const DB_PIN_RENEW: Duration = Duration::from_secs(24 * 3600);
/// After Odoo gave no database-bound session (down, or answering otherwise), ask again after
/// this long.
const DB_PIN_RETRY: Duration = Duration::from_secs(60);
/// The longest the request for a database-bound session may take (the calls wait for it).
const DB_PIN_TIMEOUT: Duration = Duration::from_secs(5);

/// A reply as read off the wire.
struct Reply {
    status: u16,
    location: Option<String>,
    session: Option<String>,
    content_type: String,
    body: Bytes,
}

/// How many times a `load` is sent when Odoo answers only serialization failures.
pub const LOAD_CONFLICT_TRIES: u32 = 5;

/// Which `/jsonrpc` call is made, for error messages and tracing.
struct Target<'a> {
    service: &'a str,
    model: &'a str,
    method: &'a str,
}

impl OdooClient {
    /// Builds a client; nothing is sent until the first call.
    pub fn new(cfg: ClientConfig) -> Result<Self, OdooError> {
        let display_url = cfg.display_url();
        let mut base_url = cfg.url.clone();
        if !base_url.path().ends_with('/') {
            let path = format!("{}/", base_url.path());
            base_url.set_path(&path);
        }
        let jsonrpc_url = base_url.join("jsonrpc").map_err(|e| OdooError::Protocol {
            url: display_url.clone(),
            detail: format!("cannot build the /jsonrpc URL: {e}"),
        })?;
        let concurrency = cfg.max_concurrent_requests.max(1);
        let max_retries = cfg.max_retries;
        let http = reqwest::Client::builder()
            .timeout(cfg.timeout)
            .connect_timeout(cfg.timeout.min(Duration::from_secs(10)))
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(concurrency)
            .pool_idle_timeout(Duration::from_secs(30))
            .tcp_nodelay(true)
            .user_agent(concat!("whatsapp-sidecar/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| OdooError::Transport {
                url: display_url.clone(),
                message: format!("cannot set up the HTTP client: {e}"),
            })?;
        Ok(OdooClient {
            inner: Arc::new(Inner {
                http,
                jsonrpc_url,
                base_url,
                display_url,
                permits: Semaphore::new(concurrency),
                report_permits: Semaphore::new(cfg.max_concurrent_reports.max(1)),
                next_id: AtomicU64::new(1),
                uid: AtomicI64::new(0),
                login_lock: Mutex::new(()),
                session: Mutex::new(None),
                db_pin: Mutex::new(DbPin::default()),
                field_types: StdMutex::new(HashMap::new()),
                cfg,
            }),
            context: Arc::new(Context::new()),
            delays: RetryDelays {
                min: Duration::from_millis(200),
                max: Duration::from_secs(10),
                times: max_retries,
            },
            metrics: Default::default(),
        })
    }

    /// A handle recording its calls (and those of the handles made from it) in `metrics`.
    pub fn with_metrics(&self, metrics: crate::metrics::Metrics) -> Self {
        OdooClient {
            metrics,
            ..self.clone()
        }
    }

    /// A handle sending `ctx` (merged over this handle's context) with every `execute_kw`.
    pub fn with_context(&self, ctx: Context) -> Self {
        OdooClient {
            context: Arc::new(self.context.merged(&ctx)),
            ..self.clone()
        }
    }

    /// A handle retrying with these delays (default 200 ms doubling up to 10 s, jittered).
    pub fn with_retry_delays(&self, min: Duration, max: Duration) -> Self {
        OdooClient {
            delays: RetryDelays {
                min,
                max: max.max(min),
                times: self.delays.times,
            },
            ..self.clone()
        }
    }

    /// A handle that tries each call once: for callers that retry on their own terms (the
    /// daemon's connection loop) or must answer quickly (the readiness probe).
    pub fn without_retries(&self) -> Self {
        OdooClient {
            delays: RetryDelays {
                times: 0,
                ..self.delays
            },
            ..self.clone()
        }
    }

    /// The configuration the client was built from.
    pub fn config(&self) -> &ClientConfig {
        &self.inner.cfg
    }

    // ----- common / db services -----------------------------------------------------------

    /// `common.version` (no login needed).
    pub async fn version(&self) -> Result<ServerVersion, OdooError> {
        let t = Target {
            service: "common",
            model: "common",
            method: "version",
        };
        self.service_call(&t, &json!([]), Credential::ApiKey)
            .instrument(tracing::info_span!(
                "odoo",
                service = "common",
                method = "version"
            ))
            .await
    }

    /// Logs in with `common.authenticate` (API key, else password) and caches the uid.
    pub async fn authenticate(&self) -> Result<i64, OdooError> {
        let _guard = self.inner.login_lock.lock().await;
        let uid = self.authenticate_now().await?;
        self.inner.uid.store(uid, Ordering::Release);
        Ok(uid)
    }

    /// The cached uid, logging in first if needed.
    pub async fn uid(&self) -> Result<i64, OdooError> {
        let uid = self.inner.uid.load(Ordering::Acquire);
        if uid > 0 {
            return Ok(uid);
        }
        let _guard = self.inner.login_lock.lock().await;
        let uid = self.inner.uid.load(Ordering::Acquire);
        if uid > 0 {
            return Ok(uid);
        }
        let uid = self.authenticate_now().await?;
        self.inner.uid.store(uid, Ordering::Release);
        Ok(uid)
    }

    async fn authenticate_now(&self) -> Result<i64, OdooError> {
        let (secret, credential) = self.rpc_secret()?;
        let cfg = &self.inner.cfg;
        let t = Target {
            service: "common",
            model: "common",
            method: "authenticate",
        };
        let args = (&cfg.database, &cfg.login, secret, Map::new());
        let result: Value = self
            .service_call(&t, &args, credential)
            .instrument(tracing::info_span!(
                "odoo",
                service = "common",
                method = "authenticate"
            ))
            .await?;
        match result.as_i64() {
            Some(uid) if uid > 0 => Ok(uid),
            _ => Err(OdooError::AccessDenied {
                login: cfg.login.clone(),
                database: cfg.database.clone(),
                credential,
                message: "common.authenticate returned false: wrong login or secret, or the user is archived".to_owned(),
            }),
        }
    }

    /// `db.list`. Odoo answers AccessDenied when `list_db = False` in its configuration (the
    /// error then names the login although no login was tried: see [`OdooClient::db_exists`]).
    pub async fn db_list(&self) -> Result<Vec<String>, OdooError> {
        let t = Target {
            service: "db",
            model: "db",
            method: "list",
        };
        self.service_call(&t, &json!([]), Credential::ApiKey).await
    }

    /// `db.db_exist`: true when Odoo can connect to that database (works with `list_db = False`).
    pub async fn db_exists(&self, name: &str) -> Result<bool, OdooError> {
        let t = Target {
            service: "db",
            model: "db",
            method: "db_exist",
        };
        self.service_call(&t, &[name], Credential::ApiKey).await
    }

    // ----- object.execute_kw --------------------------------------------------------------

    /// Any public model method (`action_confirm`, `message_post`, ...), its result decoded as
    /// `T` (use `()` or `Value` for methods returning None).
    pub async fn call<T: DeserializeOwned>(
        &self,
        model: &str,
        method: &str,
        args: Value,
        kwargs: Value,
    ) -> Result<T, OdooError> {
        let args = match args {
            Value::Array(_) => args,
            Value::Null => json!([]),
            other => json!([other]),
        };
        let kwargs = match kwargs {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        let trace = ids_for_trace(&args);
        self.execute(model, method, &args, kwargs, &trace).await
    }

    /// `search(domain)`: matching ids.
    pub async fn search(
        &self,
        model: &str,
        domain: &Domain,
        opts: &SearchOptions,
    ) -> Result<Vec<i64>, OdooError> {
        let mut kwargs = Map::new();
        opts.to_kwargs(&mut kwargs);
        self.execute(model, "search", &(domain,), kwargs, "").await
    }

    /// `search_read(domain, fields)` with offset, limit and order; rows decoded as `T`
    /// (a struct, `serde_json::Map` or `Value`). An empty `fields` reads every field.
    pub async fn search_read<T: DeserializeOwned>(
        &self,
        model: &str,
        domain: &Domain,
        fields: &[&str],
        opts: &SearchOptions,
    ) -> Result<Vec<T>, OdooError> {
        let mut kwargs = Map::new();
        kwargs.insert("fields".into(), json!(fields));
        opts.to_kwargs(&mut kwargs);
        self.execute(model, "search_read", &(domain,), kwargs, "")
            .await
    }

    /// Every record matching `domain`, in pages of `page_size`, walking by id: each page is
    /// `search_read(domain + [("id", ">", last id)], order="id asc", limit=page_size)`, so
    /// records created or deleted meanwhile neither shift nor repeat the pages. Stops at the
    /// first error (which it yields).
    pub fn search_read_stream<T: DeserializeOwned + Send + 'static>(
        &self,
        model: &str,
        domain: Domain,
        fields: &[&str],
        page_size: u64,
    ) -> impl Stream<Item = Result<Vec<T>, OdooError>> + Send + 'static {
        let client = self.clone();
        let model = model.to_owned();
        let mut fields: Vec<String> = fields.iter().map(|f| (*f).to_owned()).collect();
        if !fields.is_empty() && !fields.iter().any(|f| f == "id") {
            fields.push("id".to_owned());
        }
        let page_size = page_size.max(1);
        stream::try_unfold(Some(0i64), move |after| {
            let client = client.clone();
            let model = model.clone();
            let fields = fields.clone();
            let domain = domain.clone();
            async move {
                let Some(after) = after else {
                    return Ok(None);
                };
                let page_domain = domain.and("id", ">", after);
                let refs: Vec<&str> = fields.iter().map(String::as_str).collect();
                let opts = SearchOptions::new().limit(page_size).order("id asc");
                let rows: Vec<Value> = client
                    .search_read(&model, &page_domain, &refs, &opts)
                    .await?;
                if rows.is_empty() {
                    return Ok(None);
                }
                let last = rows
                    .last()
                    .and_then(|r| r.get("id"))
                    .and_then(Value::as_i64)
                    .ok_or_else(|| OdooError::Protocol {
                        url: client.inner.display_url.clone(),
                        detail: format!("{model}.search_read returned a row without an id"),
                    })?;
                let full = rows.len() as u64 == page_size;
                let page = rows
                    .into_iter()
                    .map(|r| {
                        serde_json::from_value::<T>(r).map_err(|e| OdooError::Protocol {
                            url: client.inner.display_url.clone(),
                            detail: format!("{model}.search_read row does not decode: {e}"),
                        })
                    })
                    .collect::<Result<Vec<T>, _>>()?;
                Ok(Some((page, full.then_some(last))))
            }
        })
    }

    /// `read(ids, fields)`; ids that do not exist are left out (Odoo 17 behaviour).
    pub async fn read<T: DeserializeOwned>(
        &self,
        model: &str,
        ids: &[i64],
        fields: &[&str],
    ) -> Result<Vec<T>, OdooError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut kwargs = Map::new();
        kwargs.insert("fields".into(), json!(fields));
        self.execute(model, "read", &(ids,), kwargs, &format_ids(ids))
            .await
    }

    /// `search_count(domain)`.
    pub async fn search_count(&self, model: &str, domain: &Domain) -> Result<u64, OdooError> {
        self.execute(model, "search_count", &(domain,), Map::new(), "")
            .await
    }

    /// `create(values)`: the new id.
    pub async fn create<V: Serialize + ?Sized>(
        &self,
        model: &str,
        values: &V,
    ) -> Result<i64, OdooError> {
        self.execute(model, "create", &(values,), Map::new(), "")
            .await
    }

    /// `create([values, ...])` in one call: the new ids, in order.
    pub async fn create_many<V: Serialize>(
        &self,
        model: &str,
        values: &[V],
    ) -> Result<Vec<i64>, OdooError> {
        if values.is_empty() {
            return Ok(Vec::new());
        }
        self.execute(model, "create", &(values,), Map::new(), "")
            .await
    }

    /// `write(ids, values)`: the same values on every id, in one call.
    pub async fn write<V: Serialize + ?Sized>(
        &self,
        model: &str,
        ids: &[i64],
        values: &V,
    ) -> Result<(), OdooError> {
        if ids.is_empty() {
            return Ok(());
        }
        let _: Value = self
            .execute(model, "write", &(ids, values), Map::new(), &format_ids(ids))
            .await?;
        Ok(())
    }

    /// Different values per record, in as few calls as the figures allow: groups of records
    /// with identical values become one `write` each, the rest go in one `load` (see
    /// [`crate::odoo::batch`]). Returns the number of calls made. Not atomic across calls:
    /// on error, earlier calls of the batch may have been applied.
    pub async fn write_each(
        &self,
        model: &str,
        updates: &[(i64, Map<String, Value>)],
    ) -> Result<usize, OdooError> {
        if updates.is_empty() {
            return Ok(0);
        }
        let types = self.field_types(model).await?;
        let plan = batch::plan(updates, &types);
        for (ids, values) in &plan.writes {
            self.write(model, ids, values).await?;
        }
        for call in &plan.loads {
            self.load(model, &call.fields, &call.rows).await?;
        }
        Ok(plan.calls())
    }

    /// `load(fields, rows)` (Odoo's import) in one transaction, with `tz = UTC` so datetimes
    /// are taken as UTC. Any row error cancels the whole call and is returned as a
    /// [`OdooError::ValidationError`] listing Odoo's messages.
    ///
    /// A row refused only because another transaction wrote the same record meanwhile
    /// (PostgreSQL's serialization failure, which Odoo retries for any other call but `load`
    /// reports as a row error) is not the data's fault: the whole `load`, rolled back by
    /// Odoo, is sent again after a short jittered pause, up to [`LOAD_CONFLICT_TRIES`] times.
    pub async fn load(
        &self,
        model: &str,
        fields: &[String],
        rows: &[Vec<String>],
    ) -> Result<Vec<i64>, OdooError> {
        let mut tries = 1;
        loop {
            match self.load_once(model, fields, rows).await {
                Err(OdooError::ValidationError { message, .. })
                    if tries < LOAD_CONFLICT_TRIES && batch::only_conflicts(&message) =>
                {
                    tracing::debug!(model, tries, "load met a concurrent write; sent again");
                    let pause = 20 * tries as u64 + fastrand::u64(0..30);
                    tokio::time::sleep(Duration::from_millis(pause)).await;
                    tries += 1;
                }
                other => return other,
            }
        }
    }

    async fn load_once(
        &self,
        model: &str,
        fields: &[String],
        rows: &[Vec<String>],
    ) -> Result<Vec<i64>, OdooError> {
        let handle = self.with_context(Context::new().tz("UTC"));
        let ids: Vec<i64> = rows
            .iter()
            .filter_map(|r| r.first().and_then(|id| id.parse().ok()))
            .collect();
        let result: Value = handle
            .execute(
                model,
                "load",
                &(fields, rows),
                Map::new(),
                &format_ids(&ids),
            )
            .await?;
        load_outcome(&result).map_err(|message| OdooError::ValidationError {
            model: model.to_owned(),
            method: "load".to_owned(),
            message,
        })
    }

    /// `unlink(ids)`.
    pub async fn unlink(&self, model: &str, ids: &[i64]) -> Result<(), OdooError> {
        if ids.is_empty() {
            return Ok(());
        }
        let _: Value = self
            .execute(model, "unlink", &(ids,), Map::new(), &format_ids(ids))
            .await?;
        Ok(())
    }

    /// `fields_get(attributes=...)`: the model's fields (all attributes when none are named).
    pub async fn fields_get(
        &self,
        model: &str,
        attributes: &[&str],
    ) -> Result<BTreeMap<String, FieldInfo>, OdooError> {
        let mut kwargs = Map::new();
        if !attributes.is_empty() {
            kwargs.insert("attributes".into(), json!(attributes));
        }
        self.execute(model, "fields_get", &json!([]), kwargs, "")
            .await
    }

    /// `check_access_rights(operation, raise_exception=False)`.
    pub async fn check_access_rights(
        &self,
        model: &str,
        access: Access,
    ) -> Result<bool, OdooError> {
        let mut kwargs = Map::new();
        kwargs.insert("raise_exception".into(), Value::Bool(false));
        self.execute(
            model,
            "check_access_rights",
            &(access.as_str(),),
            kwargs,
            "",
        )
        .await
    }

    /// Posts a message in a record's chatter (`message_post`): `body` is plain text (Odoo
    /// escapes it), `subtype_xmlid` `mail.mt_note` for an internal note or `mail.mt_comment`
    /// for a message to followers. Returns the `mail.message` id.
    pub async fn message_post(
        &self,
        model: &str,
        res_id: i64,
        body: &str,
        subtype_xmlid: &str,
    ) -> Result<i64, OdooError> {
        let mut kwargs = Map::new();
        kwargs.insert("body".into(), json!(body));
        kwargs.insert("message_type".into(), json!("comment"));
        kwargs.insert("subtype_xmlid".into(), json!(subtype_xmlid));
        self.execute(
            model,
            "message_post",
            &([res_id],),
            kwargs,
            &res_id.to_string(),
        )
        .await
    }

    /// The field types of a model (`fields_get`), cached for the client's life.
    async fn field_types(&self, model: &str) -> Result<Arc<HashMap<String, String>>, OdooError> {
        if let Some(t) = self.lock_field_types().get(model) {
            return Ok(t.clone());
        }
        let fields = self.fields_get(model, &["type"]).await?;
        let types: HashMap<String, String> = fields
            .into_iter()
            .map(|(name, info)| (name, info.field_type))
            .collect();
        let types = Arc::new(types);
        self.lock_field_types()
            .insert(model.to_owned(), types.clone());
        Ok(types)
    }

    fn lock_field_types(
        &self,
    ) -> std::sync::MutexGuard<'_, HashMap<String, Arc<HashMap<String, String>>>> {
        // A panic while holding this lock cannot leave the map inconsistent: use it anyway.
        self.inner
            .field_types
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The core of every model call: context, uid, retries, one re-login when Odoo stops
    /// accepting the cached uid, and a tracing span with the model, method and ids.
    async fn execute<T, A>(
        &self,
        model: &str,
        method: &str,
        args: &A,
        mut kwargs: Map<String, Value>,
        ids: &str,
    ) -> Result<T, OdooError>
    where
        T: DeserializeOwned,
        A: Serialize + ?Sized,
    {
        if !self.context.is_empty() {
            let merged = match kwargs.remove("context") {
                Some(Value::Object(explicit)) => {
                    let mut m = self.context.as_map().clone();
                    m.extend(explicit);
                    m
                }
                _ => self.context.as_map().clone(),
            };
            kwargs.insert("context".into(), Value::Object(merged));
        }
        let span = tracing::info_span!("odoo", model = %model, method = %method, ids = %ids);
        let started = std::time::Instant::now();
        let result = async {
            let uid = self.uid().await?;
            match self.execute_as(uid, model, method, args, &kwargs).await {
                Err(e) if self.login_went_stale(&e, uid) => {
                    warn!(error = %e, "Odoo no longer accepts the cached login, logging in again");
                    self.forget_uid(uid);
                    let uid = self.uid().await?;
                    self.execute_as(uid, model, method, args, &kwargs).await
                }
                other => other,
            }
        }
        .instrument(span)
        .await;
        self.metrics.odoo_call(
            model,
            method,
            started.elapsed(),
            result.as_ref().err().map(OdooError::kind),
        );
        result
    }

    async fn execute_as<T, A>(
        &self,
        uid: i64,
        model: &str,
        method: &str,
        args: &A,
        kwargs: &Map<String, Value>,
    ) -> Result<T, OdooError>
    where
        T: DeserializeOwned,
        A: Serialize + ?Sized,
    {
        let (secret, credential) = self.rpc_secret()?;
        let cfg = &self.inner.cfg;
        let body = execute_kw_body(
            self.next_id(),
            &cfg.database,
            uid,
            secret,
            model,
            method,
            args,
            kwargs,
        )
        .map_err(|e| self.encode_error(model, method, e))?;
        let body = Bytes::from(body);
        let site = CallSite {
            service: "object",
            model,
            method,
            database: &cfg.database,
            login: &cfg.login,
            credential,
        };
        self.retrying(|| self.post_jsonrpc(body.clone(), &site))
            .await
    }

    /// A `common` or `db` service call, with retries.
    async fn service_call<T, A>(
        &self,
        t: &Target<'_>,
        args: &A,
        credential: Credential,
    ) -> Result<T, OdooError>
    where
        T: DeserializeOwned,
        A: Serialize + ?Sized,
    {
        let body = service_body(self.next_id(), t.service, t.method, args)
            .map_err(|e| self.encode_error(t.model, t.method, e))?;
        let body = Bytes::from(body);
        let cfg = &self.inner.cfg;
        let site = CallSite {
            service: t.service,
            model: t.model,
            method: t.method,
            database: &cfg.database,
            login: &cfg.login,
            credential,
        };
        self.retrying(|| self.post_jsonrpc(body.clone(), &site))
            .await
    }

    fn encode_error(&self, model: &str, method: &str, e: serde_json::Error) -> OdooError {
        OdooError::Protocol {
            url: self.inner.display_url.clone(),
            detail: format!("cannot encode the arguments of {model}.{method}: {e}"),
        }
    }

    async fn post_jsonrpc<T: DeserializeOwned>(
        &self,
        body: Bytes,
        site: &CallSite<'_>,
    ) -> Result<T, OdooError> {
        let url = &self.inner.jsonrpc_url;
        let pin = self.db_cookie().await;
        let reply = self
            .send(reqwest::Method::POST, url, Some(body), pin.as_ref())
            .await?;
        if let Some(fresh) = &reply.session {
            // Odoo made a new session for the database (the old one was forgotten): keep it.
            let mut p = self.inner.db_pin.lock().await;
            if p.cookie.as_ref().map(Secret::expose) != Some(fresh.as_str()) {
                p.cookie = Some(Secret::new(fresh.clone()));
            }
        }
        if reply.status != 200 {
            return Err(self.http_error(url, &reply));
        }
        decode_response(&reply.body, site, &shown(url))
    }

    /// The database-bound session cookie for `/jsonrpc` calls, asked for when there is none or
    /// it is a day old. `None` when Odoo gives none: the calls then go without.
    async fn db_cookie(&self) -> Option<Secret> {
        let mut pin = self.inner.db_pin.lock().await;
        let now = tokio::time::Instant::now();
        if pin.renew_at.is_some_and(|at| now < at) {
            return pin.cookie.clone();
        }
        let mut url = self.inner.base_url.join("web/login").ok()?;
        url.query_pairs_mut()
            .append_pair("db", &self.inner.cfg.database);
        let reply = tokio::time::timeout(
            DB_PIN_TIMEOUT,
            self.send(reqwest::Method::GET, &url, None, None),
        )
        .await;
        match reply {
            Ok(Ok(Reply {
                status: 302 | 303,
                session: Some(cookie),
                ..
            })) => {
                pin.cookie = Some(Secret::new(cookie));
                pin.renew_at = Some(now + DB_PIN_RENEW);
            }
            other => {
                let outcome = match other {
                    Ok(Ok(reply)) => format!("HTTP {} without a session cookie", reply.status),
                    Ok(Err(e)) => e.to_string(),
                    Err(_) => format!("no answer within {DB_PIN_TIMEOUT:?}"),
                };
                tracing::debug!(%outcome, "no database-bound session from Odoo; calls go without one");
                pin.renew_at = Some(now + DB_PIN_RETRY);
            }
        }
        pin.cookie.clone()
    }

    /// Runs `f` again on retryable errors, with jittered exponential delays, logging each.
    async fn retrying<T, F, Fut>(&self, f: F) -> Result<T, OdooError>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<T, OdooError>>,
    {
        let max_retries = self.delays.times;
        let backoff = ExponentialBuilder::default()
            .with_jitter()
            .with_min_delay(self.delays.min)
            .with_max_delay(self.delays.max)
            .with_max_times(max_retries as usize);
        let mut attempt = 0u32;
        f.retry(backoff)
            .sleep(tokio::time::sleep)
            .when(OdooError::is_retryable)
            .notify(|e: &OdooError, delay: Duration| {
                attempt += 1;
                warn!(
                    attempt,
                    max_retries,
                    retry_in_ms = delay.as_millis() as u64,
                    error = %e,
                    "Odoo call failed, retrying"
                );
            })
            .await
    }

    /// One HTTP exchange under the concurrency bound.
    async fn send(
        &self,
        method: reqwest::Method,
        url: &Url,
        body: Option<Bytes>,
        cookie: Option<&Secret>,
    ) -> Result<Reply, OdooError> {
        let _permit = self
            .inner
            .permits
            .acquire()
            .await
            .map_err(|_| OdooError::Transport {
                url: self.inner.display_url.clone(),
                message: "the client is shut down".to_owned(),
            })?;
        let mut request = self.inner.http.request(method, url.clone());
        if let Some(body) = body {
            request = request.header(CONTENT_TYPE, "application/json").body(body);
        }
        if let Some(cookie) = cookie {
            request = request.header(COOKIE, format!("session_id={}", cookie.expose()));
        }
        let response = request.send().await.map_err(|e| self.transport_error(e))?;
        let status = response.status().as_u16();
        let headers = response.headers();
        let location = headers
            .get(LOCATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let session = headers
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(session_cookie)
            .map(str::to_owned);
        let content_type = headers
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        let body = response
            .bytes()
            .await
            .map_err(|e| self.transport_error(e))?;
        Ok(Reply {
            status,
            location,
            session,
            content_type,
            body,
        })
    }

    fn transport_error(&self, e: reqwest::Error) -> OdooError {
        let message = if e.is_timeout() {
            format!(
                "no answer within {:.1} s (odoo.timeout)",
                self.inner.cfg.timeout.as_secs_f64()
            )
        } else {
            let e = e.without_url();
            let mut parts: Vec<String> = vec![e.to_string()];
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                let text = s.to_string();
                if !parts.iter().any(|p| p.contains(&text)) {
                    parts.push(text);
                }
                source = s.source();
            }
            if e.is_connect() {
                let last = parts.last().cloned().unwrap_or_default();
                format!("connection failed: {last}")
            } else {
                parts.join(": ")
            }
        };
        OdooError::Transport {
            url: self.inner.display_url.clone(),
            message,
        }
    }

    fn http_error(&self, url: &Url, reply: &Reply) -> OdooError {
        OdooError::Http {
            status: reply.status,
            url: shown(url),
            body: html_text(&reply.body, 200),
        }
    }

    fn rpc_secret(&self) -> Result<(&str, Credential), OdooError> {
        let cfg = &self.inner.cfg;
        if let Some(key) = cfg.api_key.as_ref().filter(|k| !k.is_blank()) {
            return Ok((key.expose(), Credential::ApiKey));
        }
        if let Some(pw) = cfg.password.as_ref().filter(|p| !p.is_blank()) {
            return Ok((pw.expose(), Credential::Password));
        }
        Err(OdooError::AccessDenied {
            login: cfg.login.clone(),
            database: cfg.database.clone(),
            credential: Credential::ApiKey,
            message: "no API key or password is configured".to_owned(),
        })
    }

    fn next_id(&self) -> u64 {
        self.inner.next_id.fetch_add(1, Ordering::Relaxed)
    }

    /// Odoo refusing a uid that worked before: the key was rotated, or the user was recreated.
    fn login_went_stale(&self, e: &OdooError, uid: i64) -> bool {
        match e {
            OdooError::AccessDenied { .. } => true,
            OdooError::MissingError { message, .. } => {
                message.contains(&format!("res.users({uid},)"))
            }
            _ => false,
        }
    }

    fn forget_uid(&self, uid: i64) {
        let _ = self
            .inner
            .uid
            .compare_exchange(uid, 0, Ordering::AcqRel, Ordering::Acquire);
    }

    // ----- web session and reports --------------------------------------------------------

    /// Opens a fresh web session with the password and checks it with
    /// `/web/session/get_session_info`; returns the session's uid. Used by `check`.
    pub async fn web_session_check(&self) -> Result<i64, OdooError> {
        let mut session = self.inner.session.lock().await;
        let cookie = self.web_login().await?;
        *session = Some(cookie.clone());
        drop(session);
        let url = self.web_url("web/session/get_session_info")?;
        let body = protocol::call_body(self.next_id(), &json!({}))
            .map_err(|e| self.encode_error("web", "get_session_info", e))?;
        let reply = self
            .send(
                reqwest::Method::POST,
                &url,
                Some(Bytes::from(body)),
                Some(&cookie),
            )
            .await?;
        if reply.status != 200 {
            return Err(self.http_error(&url, &reply));
        }
        let site = self.web_site("get_session_info");
        let info: Value = decode_response(&reply.body, &site, &shown(&url))?;
        info.get("uid")
            .and_then(Value::as_i64)
            .ok_or_else(|| OdooError::SessionExpired {
                message: "get_session_info returned no uid right after login".to_owned(),
            })
    }

    /// The PDF of report `report_name` (e.g. `sale.report_saleorder`,
    /// `account.report_invoice`) for `ids`, through the web session. Checks that the body is a
    /// PDF (`%PDF`).
    pub async fn report_pdf(&self, report_name: &str, ids: &[i64]) -> Result<Bytes, OdooError> {
        let id_list = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
        let not_a_pdf = |detail: String| OdooError::NotAPdf {
            report: report_name.to_owned(),
            ids: id_list.clone(),
            detail,
        };
        let valid_name = !report_name.is_empty()
            && report_name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
        if !valid_name {
            return Err(not_a_pdf(
                "a report name has only letters, digits, '_' and '.'".to_owned(),
            ));
        }
        if ids.is_empty() {
            return Err(not_a_pdf("no record ids given".to_owned()));
        }
        let url = self.web_url(&format!("report/pdf/{report_name}/{id_list}"))?;
        let span =
            tracing::info_span!("odoo_report", report = %report_name, ids = %format_ids(ids));
        async {
            // Rendering takes one of Odoo's workers and a wkhtmltopdf process for a second or
            // more: at most `max_concurrent_reports` at once, whatever asks for them.
            let _rendering =
                self.inner
                    .report_permits
                    .acquire()
                    .await
                    .map_err(|_| OdooError::Transport {
                        url: self.inner.display_url.clone(),
                        message: "the client is shut down".to_owned(),
                    })?;
            for attempt in 0..2 {
                let cookie = self.web_session().await?;
                let reply = self
                    .retrying(|| self.send(reqwest::Method::GET, &url, None, Some(&cookie)))
                    .await?;
                if is_login_redirect(reply.status, reply.location.as_deref()) {
                    self.drop_web_session(&cookie).await;
                    if attempt == 0 {
                        warn!(
                            "Odoo web session expired (redirect to /web/login), logging in again"
                        );
                        continue;
                    }
                    return Err(OdooError::SessionExpired {
                        message:
                            "Odoo redirected the report to /web/login right after a fresh login"
                                .to_owned(),
                    });
                }
                if reply.status != 200 {
                    return Err(not_a_pdf(format!(
                        "HTTP {}: {}",
                        reply.status,
                        html_text(&reply.body, 300)
                    )));
                }
                if !reply.body.starts_with(b"%PDF") {
                    return Err(not_a_pdf(format!(
                        "the answer is {} ({} bytes) starting with {:?}",
                        if reply.content_type.is_empty() {
                            "untyped"
                        } else {
                            &reply.content_type
                        },
                        reply.body.len(),
                        shorten(
                            &String::from_utf8_lossy(&reply.body[..reply.body.len().min(60)]),
                            60
                        )
                    )));
                }
                return Ok(reply.body);
            }
            Err(OdooError::SessionExpired {
                message: "the report session could not be renewed".to_owned(),
            })
        }
        .instrument(span)
        .await
    }

    /// Calls `model.method(*args, **kwargs)` through the web session
    /// (`/web/dataset/call_kw/<model>/<method>`), as the web client does, with this handle's
    /// context. For the few Odoo methods that need an HTTP request behind them and fail over
    /// `/jsonrpc` (e.g. `payment.link.wizard`'s link, signed with `request.env`). An expired
    /// session is renewed once.
    pub async fn web_call<T: DeserializeOwned>(
        &self,
        model: &str,
        method: &str,
        args: Value,
        kwargs: Value,
    ) -> Result<T, OdooError> {
        let mut kwargs = match kwargs {
            Value::Object(m) => m,
            _ => Map::new(),
        };
        if !self.context.is_empty() {
            let mut merged = self.context.as_map().clone();
            if let Some(Value::Object(explicit)) = kwargs.remove("context") {
                merged.extend(explicit);
            }
            kwargs.insert("context".into(), Value::Object(merged));
        }
        let url = self.web_url(&format!("web/dataset/call_kw/{model}/{method}"))?;
        let body = protocol::call_body(
            self.next_id(),
            &json!({"model": model, "method": method, "args": args, "kwargs": kwargs}),
        )
        .map_err(|e| self.encode_error(model, method, e))?;
        let body = Bytes::from(body);
        let cfg = &self.inner.cfg;
        let site = CallSite {
            service: "web",
            model,
            method,
            database: &cfg.database,
            login: &cfg.login,
            credential: Credential::WebPassword,
        };
        let span = tracing::info_span!("odoo_web", model = %model, method = %method);
        async {
            for attempt in 0..2 {
                let cookie = self.web_session().await?;
                let reply = self
                    .retrying(|| {
                        self.send(
                            reqwest::Method::POST,
                            &url,
                            Some(body.clone()),
                            Some(&cookie),
                        )
                    })
                    .await?;
                if reply.status != 200 {
                    return Err(self.http_error(&url, &reply));
                }
                match decode_response(&reply.body, &site, &shown(&url)) {
                    Err(OdooError::SessionExpired { .. }) if attempt == 0 => {
                        self.drop_web_session(&cookie).await;
                        warn!("Odoo web session expired, logging in again");
                    }
                    other => return other,
                }
            }
            Err(OdooError::SessionExpired {
                message: "the web session could not be renewed".to_owned(),
            })
        }
        .instrument(span)
        .await
    }

    /// The current web session cookie (the one PDF reports use), logging in with the password
    /// if there is none. Odoo's bus subscription ([`crate::bus`]) rides on it.
    pub async fn web_session(&self) -> Result<Secret, OdooError> {
        let mut session = self.inner.session.lock().await;
        if let Some(cookie) = session.as_ref() {
            return Ok(cookie.clone());
        }
        let cookie = self.web_login().await?;
        *session = Some(cookie.clone());
        Ok(cookie)
    }

    /// Forgets `cookie` (Odoo no longer accepts it) unless another task already replaced it;
    /// the next [`OdooClient::web_session`] logs in again.
    pub async fn drop_web_session(&self, cookie: &Secret) {
        let mut session = self.inner.session.lock().await;
        if session.as_ref() == Some(cookie) {
            *session = None;
        }
    }

    /// `POST /web/session/authenticate` with the password: the new session cookie.
    async fn web_login(&self) -> Result<Secret, OdooError> {
        let cfg = &self.inner.cfg;
        let password = cfg
            .password
            .as_ref()
            .filter(|p| !p.is_blank())
            .ok_or(OdooError::NoPassword)?;
        let url = self.web_url("web/session/authenticate")?;
        let params = json!({"db": cfg.database, "login": cfg.login, "password": password.expose()});
        let body = Bytes::from(
            protocol::call_body(self.next_id(), &params)
                .map_err(|e| self.encode_error("web", "authenticate", e))?,
        );
        let site = self.web_site("authenticate");
        let reply = self
            .retrying(|| self.send(reqwest::Method::POST, &url, Some(body.clone()), None))
            .instrument(tracing::info_span!(
                "odoo",
                service = "web",
                method = "session/authenticate"
            ))
            .await?;
        if reply.status != 200 {
            return Err(self.http_error(&url, &reply));
        }
        let info: Value = decode_response(&reply.body, &site, &shown(&url))?;
        if !info.get("uid").is_some_and(Value::is_i64) {
            return Err(OdooError::AccessDenied {
                login: cfg.login.clone(),
                database: cfg.database.clone(),
                credential: Credential::WebPassword,
                message: "/web/session/authenticate returned no uid".to_owned(),
            });
        }
        reply
            .session
            .map(Secret::new)
            .ok_or_else(|| OdooError::Protocol {
                url: shown(&url),
                detail: "/web/session/authenticate set no session_id cookie".to_owned(),
            })
    }

    fn web_site(&self, method: &'static str) -> CallSite<'_> {
        let cfg = &self.inner.cfg;
        CallSite {
            service: "web",
            model: "web.session",
            method,
            database: &cfg.database,
            login: &cfg.login,
            credential: Credential::WebPassword,
        }
    }

    fn web_url(&self, path: &str) -> Result<Url, OdooError> {
        self.inner
            .base_url
            .join(path)
            .map_err(|e| OdooError::Protocol {
                url: self.inner.display_url.clone(),
                detail: format!("cannot build the URL of {path}: {e}"),
            })
    }
}

/// `url` as errors and logs show it: without any user:password part.
fn shown(url: &Url) -> String {
    let mut u = url.clone();
    let _ = u.set_password(None);
    let _ = u.set_username("");
    u.to_string()
}

/// The readable text of an HTML error page (Odoo's "Error message: ..." when present).
fn html_text(body: &[u8], max: usize) -> String {
    let text = String::from_utf8_lossy(body);
    let mut plain = String::with_capacity(text.len().min(4096));
    let mut in_tag = false;
    let mut in_script = false;
    let lower = text.to_ascii_lowercase();
    let mut i = 0;
    let bytes = text.as_bytes();
    while i < bytes.len() {
        if !in_tag && bytes[i] == b'<' {
            in_tag = true;
            if lower[i..].starts_with("<script") || lower[i..].starts_with("<style") {
                in_script = true;
            } else if lower[i..].starts_with("</script") || lower[i..].starts_with("</style") {
                in_script = false;
            }
            plain.push(' ');
        } else if in_tag && bytes[i] == b'>' {
            in_tag = false;
        } else if !in_tag && !in_script {
            let ch_len = text[i..].chars().next().map_or(1, char::len_utf8);
            plain.push_str(&text[i..i + ch_len]);
            i += ch_len;
            continue;
        }
        i += 1;
    }
    let plain = plain.split_whitespace().collect::<Vec<_>>().join(" ");
    let focused = match plain.find("Error message:") {
        Some(pos) => plain[pos + "Error message:".len()..]
            .split(" Copyright")
            .next()
            .unwrap_or("")
            .trim()
            .to_owned(),
        None => plain,
    };
    shorten(&focused, max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_text_finds_odoo_error_message() {
        let page = b"<html><head><script>var x = '<b>';</script><title>Odoo</title></head><body>Oops! <p>Error message:</p> Record does not exist or has been deleted. (Record: sale.order(999999,), User: 2) Copyright &copy; YourCompany</body></html>";
        assert_eq!(
            html_text(page, 200),
            "Record does not exist or has been deleted. (Record: sale.order(999999,), User: 2)"
        );
        assert_eq!(
            html_text(b"<title>500 Internal Server Error</title>", 200),
            "500 Internal Server Error"
        );
        assert_eq!(
            html_text("caf\u{e9} <b>x</b>".as_bytes(), 200),
            "caf\u{e9} x"
        );
    }

    #[test]
    fn debug_hides_secrets() {
        let mut cfg = ClientConfig::new(
            Url::parse("http://user:pw@127.0.0.1:8069").unwrap(),
            "wa17",
            "admin",
        );
        cfg.api_key = Some(Secret::new("0123456789abcdef-key"));
        cfg.password = Some(Secret::new("hunter2"));
        let client = OdooClient::new(cfg.clone()).unwrap();
        let shown = format!("{client:?} {cfg:?}");
        assert!(!shown.contains("0123456789abcdef-key"), "{shown}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(!client.inner.display_url.contains("pw"));
        assert!(!shown.contains("pw@"), "{shown}");
    }
}
