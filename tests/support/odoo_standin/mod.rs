//! An Odoo 17 stand-in for tests: an HTTP server on 127.0.0.1 (port 0) that answers like the
//! real one, from in-memory records.
//!
//! Routes: `POST /jsonrpc` (`common`: version, login, authenticate; `db`: list, db_exist,
//! server_version; `object`: execute_kw, execute), `POST /web/session/authenticate`,
//! `POST /web/session/get_session_info`, `POST /web/dataset/call_kw/...`,
//! `GET /report/pdf/<report>/<ids>` (session cookie required, else 303 to `/web/login`),
//! `GET /web/login`, and the bus websocket `GET /websocket` ([`websocket`]). Answers and error bodies follow the recorded transcripts in
//! `shared/odoo17-jsonrpc/` (checked by `tests/odoo_contract.rs`).
//!
//! Layout: `schema` (models and fields, as a text table), `orm` (records and model methods),
//! `domain` (domains and order clauses), `seed` (the demo records of the transcripts), and this
//! file (HTTP, users, sessions, and the test controls: outages, injected faults, call and write
//! counters, seeding and inspection helpers).
//!
//! Users: `admin` / `admin` (uid 2, with an API key), `demo` / `demo` (uid 6, may read but not
//! change the WhatsApp models nor users).
//!
//! The server runs on the caller's tokio runtime: a test that also waits on a child process
//! (the daemon) must do so without blocking the runtime (`tokio::process`, or
//! `#[tokio::test(flavor = "multi_thread")]`). Not served: non-stored computed fields, external ids in
//! `load`, and bus channels other than the addon's.

pub mod domain;
pub mod orm;
pub mod schema;
pub mod seed;
mod websocket;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use orm::{now_string, Db, Env, OdooErr};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use seed::{ADMIN_UID, DEMO_UID};

/// The API key of `admin` (40 hex characters, like Odoo's).
pub const API_KEY: &str = "5b2f8c1e9d04a7b36e11c0f2a8d9e4b7c3f6a015";
pub const DATABASE: &str = "wa17";

/// How the stand-in stops answering.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outage {
    /// The port is closed: connections are refused.
    Refuse,
    /// Connections are accepted but nothing is answered until [`OdooStandin::come_back`].
    Hang,
}

/// A failure injected into the next matching `/jsonrpc` calls.
#[derive(Clone, Debug)]
pub enum Fault {
    /// Answer with this HTTP status and an HTML body (as a proxy in front of Odoo would).
    Http(u16),
    /// Answer with an Odoo error body of this exception name and message.
    Rpc { name: String, message: String },
}

impl Fault {
    /// The error Odoo 17 gives after its own retries when concurrent transactions conflict.
    pub fn serialization_failure() -> Fault {
        Fault::Rpc {
            name: "psycopg2.errors.SerializationFailure".into(),
            message: "could not serialize access due to concurrent update\n".into(),
        }
    }

    /// A lock timeout.
    pub fn lock_not_available() -> Fault {
        Fault::Rpc {
            name: "psycopg2.errors.LockNotAvailable".into(),
            message: "canceling statement due to lock timeout\n".into(),
        }
    }
}

struct FaultRule {
    model: Option<String>,
    method: Option<String>,
    remaining: usize,
    fault: Fault,
}

struct Shared {
    db: Mutex<Db>,
    base_url: String,
    sessions: Mutex<HashMap<String, i64>>,
    /// Sessions bound to the database without a login (`GET /web/login?db=`).
    db_sessions: Mutex<std::collections::HashSet<String>>,
    /// `/jsonrpc` requests that carried one of them.
    with_db_session: AtomicU64,
    calls: Mutex<BTreeMap<(String, String), u64>>,
    contexts: Mutex<BTreeMap<(String, String), Map<String, Value>>>,
    faults: Mutex<Vec<FaultRule>>,
    reports: Mutex<Vec<(String, Vec<i64>)>>,
    hang: watch::Sender<bool>,
    list_db: AtomicBool,
    login_failures: Mutex<(u32, Option<Instant>)>,
    cooldown: Mutex<(u32, Duration)>,
    delay: Mutex<Duration>,
    /// How long every answer is held back after the request was handled (its writes done).
    response_delay: Mutex<Duration>,
    requests: AtomicU64,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    /// The bus websocket ([`websocket`]): served or 404, subscriptions made, connections open,
    /// and the closes asked for by tests.
    ws_enabled: AtomicBool,
    ws_subscriptions: AtomicU64,
    ws_open: AtomicUsize,
    ws_close: tokio::sync::broadcast::Sender<u16>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

struct ServerTask {
    cancel: CancellationToken,
    handle: JoinHandle<()>,
}

/// A running stand-in. Dropping it stops the server.
pub struct OdooStandin {
    addr: SocketAddr,
    shared: Arc<Shared>,
    server: tokio::sync::Mutex<Option<ServerTask>>,
}

impl Drop for OdooStandin {
    fn drop(&mut self) {
        if let Ok(mut guard) = self.server.try_lock() {
            if let Some(task) = guard.take() {
                task.cancel.cancel();
                task.handle.abort();
            }
        }
    }
}

impl OdooStandin {
    /// Starts a stand-in with the demo data on 127.0.0.1, on a free port.
    pub async fn start() -> OdooStandin {
        let listener = match TcpListener::bind("127.0.0.1:0").await {
            Ok(l) => l,
            Err(e) => panic!("the Odoo stand-in cannot bind 127.0.0.1:0: {e}"),
        };
        let addr = match listener.local_addr() {
            Ok(a) => a,
            Err(e) => panic!("the Odoo stand-in has no local address: {e}"),
        };
        let schema = match schema::parse(schema::SCHEMA) {
            Ok(s) => s,
            Err(e) => panic!("the Odoo stand-in schema does not parse: {e}"),
        };
        let mut db = Db::new(schema, DATABASE);
        db.base_url = format!("http://{addr}");
        seed::seed(&mut db, API_KEY);
        let (hang, _) = watch::channel(false);
        let shared = Arc::new(Shared {
            db: Mutex::new(db),
            base_url: format!("http://{addr}"),
            sessions: Mutex::new(HashMap::new()),
            db_sessions: Mutex::new(std::collections::HashSet::new()),
            with_db_session: AtomicU64::new(0),
            calls: Mutex::new(BTreeMap::new()),
            contexts: Mutex::new(BTreeMap::new()),
            faults: Mutex::new(Vec::new()),
            reports: Mutex::new(Vec::new()),
            hang,
            list_db: AtomicBool::new(true),
            login_failures: Mutex::new((0, None)),
            cooldown: Mutex::new((10, Duration::from_secs(60))),
            delay: Mutex::new(Duration::ZERO),
            response_delay: Mutex::new(Duration::ZERO),
            requests: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            max_in_flight: AtomicUsize::new(0),
            ws_enabled: AtomicBool::new(true),
            ws_subscriptions: AtomicU64::new(0),
            ws_open: AtomicUsize::new(0),
            ws_close: tokio::sync::broadcast::channel(4).0,
        });
        let task = serve(listener, shared.clone());
        OdooStandin {
            addr,
            shared,
            server: tokio::sync::Mutex::new(Some(task)),
        }
    }

    /// `http://127.0.0.1:<port>`
    pub fn url(&self) -> String {
        self.shared.base_url.clone()
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn database(&self) -> &'static str {
        DATABASE
    }

    pub fn login(&self) -> &'static str {
        "admin"
    }

    pub fn password(&self) -> &'static str {
        "admin"
    }

    pub fn api_key(&self) -> &'static str {
        API_KEY
    }

    // ----- outages ----------------------------------------------------------------------------

    /// Stops answering: closes the port (`Refuse`) or freezes every request (`Hang`).
    pub async fn go_down(&self, mode: Outage) {
        match mode {
            Outage::Hang => {
                self.shared.hang.send_replace(true);
            }
            Outage::Refuse => {
                // Odoo stopping closes its websockets (`_kick_all`: going away).
                let _ = self.shared.ws_close.send(1001);
                let task = self.server.lock().await.take();
                if let Some(task) = task {
                    task.cancel.cancel();
                    let mut handle = task.handle;
                    if tokio::time::timeout(Duration::from_secs(5), &mut handle)
                        .await
                        .is_err()
                    {
                        handle.abort();
                    }
                }
            }
        }
    }

    /// Answers again, on the same port.
    pub async fn come_back(&self) {
        self.shared.hang.send_replace(false);
        let mut server = self.server.lock().await;
        if server.is_some() {
            return;
        }
        let mut last_err = None;
        for _ in 0..100 {
            match TcpListener::bind(self.addr).await {
                Ok(listener) => {
                    *server = Some(serve(listener, self.shared.clone()));
                    return;
                }
                Err(e) => {
                    last_err = Some(e);
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
        panic!(
            "the Odoo stand-in cannot listen on {} again: {last_err:?}",
            self.addr
        );
    }

    /// Restarts as a real Odoo does (`systemctl restart odoo`): the port closes (websockets
    /// closed with 1001, requests in flight finish), nothing listens for `down_for`, then it
    /// serves again on the same port with the same database (Odoo keeps its data, and its
    /// sessions, which live on disk).
    pub async fn restart(&self, down_for: Duration) {
        self.go_down(Outage::Refuse).await;
        tokio::time::sleep(down_for).await;
        self.come_back().await;
    }

    // ----- the bus websocket ------------------------------------------------------------------

    /// Serves `/websocket` (`true`, the default) or answers it 404.
    pub fn set_websocket(&self, enabled: bool) {
        self.shared.ws_enabled.store(enabled, Ordering::SeqCst);
    }

    /// Closes every open websocket with `code` (1001: Odoo stopping, 4002: its hourly renewal).
    pub fn close_websockets(&self, code: u16) {
        let _ = self.shared.ws_close.send(code);
    }

    /// Subscribe frames received so far.
    pub fn websocket_subscriptions(&self) -> u64 {
        self.shared.ws_subscriptions.load(Ordering::SeqCst)
    }

    /// Websockets open now.
    pub fn websockets_open(&self) -> usize {
        self.shared.ws_open.load(Ordering::SeqCst)
    }

    /// Makes the bus rows written so far `by` older (a first subscription, `last = 0`, gets
    /// only those of the last 50 seconds).
    pub fn age_bus_rows(&self, by: Duration) {
        for row in lock(&self.shared.db).bus.rows.iter_mut() {
            row.1 = row.1.checked_sub(by).unwrap_or(row.1);
        }
    }

    /// The messages the addon wrote on its bus channel, oldest first.
    pub fn bus_rows(&self) -> Vec<Value> {
        lock(&self.shared.db)
            .bus
            .rows
            .iter()
            .map(|(id, _, m)| json!({"id": id, "message": m}))
            .collect()
    }

    // ----- faults, latency, switches ----------------------------------------------------------

    /// The next `times` `/jsonrpc` calls fail with `fault`.
    pub fn fail_next(&self, times: usize, fault: Fault) {
        lock(&self.shared.faults).push(FaultRule {
            model: None,
            method: None,
            remaining: times,
            fault,
        });
    }

    /// The next `times` `execute_kw` calls of `model.method` fail with `fault`.
    pub fn fail_next_call(&self, model: &str, method: &str, times: usize, fault: Fault) {
        lock(&self.shared.faults).push(FaultRule {
            model: Some(model.to_owned()),
            method: Some(method.to_owned()),
            remaining: times,
            fault,
        });
    }

    /// Every request waits this long before being handled (0 by default).
    pub fn set_latency(&self, delay: Duration) {
        *lock(&self.shared.delay) = delay;
    }

    /// Every request is handled at once (its records written) but answered this long after
    /// (0 by default): an Odoo that commits, then is slow to answer. Unlike
    /// [`OdooStandin::set_latency`], a client that gives up waiting does not undo the call.
    pub fn set_response_delay(&self, delay: Duration) {
        *lock(&self.shared.response_delay) = delay;
    }

    /// `list_db = False` makes `db.list` answer AccessDenied, as in Odoo.
    pub fn set_list_db(&self, enabled: bool) {
        self.shared.list_db.store(enabled, Ordering::SeqCst);
    }

    /// Web logins are refused for `duration` after `failures` consecutive failures (10, 60 s).
    pub fn set_login_cooldown(&self, failures: u32, duration: Duration) {
        *lock(&self.shared.cooldown) = (failures, duration);
    }

    /// Forgets every web session (as when they expire), so the next report is a 303.
    pub fn expire_sessions(&self) {
        lock(&self.shared.sessions).clear();
    }

    /// Number of open web sessions.
    pub fn session_count(&self) -> usize {
        lock(&self.shared.sessions).len()
    }

    /// Sets the addon's state in `ir.module.module` (`installed`, `uninstalled`, ...); `None`
    /// removes it as if it were not in the addons path.
    pub fn set_addon_state(&self, state: Option<&str>) {
        let mut db = lock(&self.shared.db);
        if let Some(t) = db.tables.get_mut("ir.module.module") {
            let id = t
                .rows
                .iter()
                .find(|(_, r)| r.get("name") == Some(&json!("whatsapp_sidecar")))
                .map(|(i, _)| *i);
            if let Some(id) = id {
                match state {
                    Some(s) => {
                        if let Some(r) = t.rows.get_mut(&id) {
                            r.insert("state".into(), json!(s));
                        }
                    }
                    None => {
                        t.rows.remove(&id);
                    }
                }
            }
        }
    }

    /// Lets (`allowed = true`) or stops a user doing `operation` on `model`.
    pub fn set_access(&self, login: &str, model: &str, operation: &str, allowed: bool) {
        let mut db = lock(&self.shared.db);
        if let Some(u) = db.users.iter_mut().find(|u| u.login == login) {
            let key = (model.to_owned(), operation.to_owned());
            if allowed {
                u.denied.remove(&key);
            } else {
                u.denied.insert(key);
            }
        }
    }

    /// Gives `login` a new API key (the old one stops working).
    pub fn set_api_key(&self, login: &str, key: &str) {
        let mut db = lock(&self.shared.db);
        if let Some(u) = db.users.iter_mut().find(|u| u.login == login) {
            u.api_key = Some(key.to_owned());
        }
    }

    /// Gives `login` another uid, as after a database restore: a cached uid stops working.
    pub fn renumber_user(&self, login: &str, new_uid: i64) {
        let mut db = lock(&self.shared.db);
        let Some(old) = db.users.iter().find(|u| u.login == login).map(|u| u.uid) else {
            return;
        };
        if let Some(u) = db.users.iter_mut().find(|u| u.login == login) {
            u.uid = new_uid;
        }
        if let Some(t) = db.tables.get_mut("res.users") {
            if let Some(row) = t.rows.remove(&old) {
                t.rows.insert(new_uid, row);
            }
        }
        db.reindex("res.users", old);
        db.reindex("res.users", new_uid);
    }

    /// The `context` of the last `execute_kw` of `model.method`.
    pub fn last_context(&self, model: &str, method: &str) -> Option<Map<String, Value>> {
        lock(&self.shared.contexts)
            .get(&(model.to_owned(), method.to_owned()))
            .cloned()
    }

    // ----- counters ---------------------------------------------------------------------------

    /// `execute_kw` calls of `model.method` received (also `("common", "authenticate")`,
    /// `("db", "list")`, `("web", "session/authenticate")`, `("report", "<name>")`,
    /// and `("web", "login?db")`).
    pub fn calls(&self, model: &str, method: &str) -> u64 {
        lock(&self.shared.calls)
            .get(&(model.to_owned(), method.to_owned()))
            .copied()
            .unwrap_or(0)
    }

    /// `/jsonrpc` requests that carried a session cookie from `GET /web/login?db=` (not in
    /// [`OdooStandin::call_counts`]: they are calls counted there already).
    pub fn jsonrpc_with_db_session(&self) -> u64 {
        self.shared.with_db_session.load(Ordering::Relaxed)
    }

    /// Every counter.
    pub fn call_counts(&self) -> BTreeMap<(String, String), u64> {
        lock(&self.shared.calls).clone()
    }

    /// Calls to `model`, any method.
    pub fn model_calls(&self, model: &str) -> u64 {
        lock(&self.shared.calls)
            .iter()
            .filter(|((m, _), _)| m == model)
            .map(|(_, n)| n)
            .sum()
    }

    pub fn reset_counters(&self) {
        lock(&self.shared.calls).clear();
        lock(&self.shared.db).write_counts.clear();
        self.shared.requests.store(0, Ordering::SeqCst);
        self.shared.max_in_flight.store(0, Ordering::SeqCst);
    }

    /// HTTP requests received.
    pub fn requests(&self) -> u64 {
        self.shared.requests.load(Ordering::SeqCst)
    }

    /// The most requests handled at the same time so far.
    pub fn max_in_flight(&self) -> usize {
        self.shared.max_in_flight.load(Ordering::SeqCst)
    }

    /// Successful `write`/`load` calls that changed this record.
    pub fn write_count(&self, model: &str, id: i64) -> u64 {
        lock(&self.shared.db)
            .write_counts
            .get(&(model.to_owned(), id))
            .copied()
            .unwrap_or(0)
    }

    /// The addon's per-database secret of button payloads (to make bound payloads in tests).
    pub fn button_secret(&self) -> String {
        lock(&self.shared.db).button_secret.clone()
    }

    /// The PDF reports served: `(report name, ids)`.
    pub fn reports_served(&self) -> Vec<(String, Vec<i64>)> {
        lock(&self.shared.reports).clone()
    }

    // ----- seeding and inspection -----------------------------------------------------------

    /// Creates a record as the superuser (no counters, no RPC); panics with Odoo's message on
    /// invalid values.
    pub fn insert(&self, model: &str, values: Value) -> i64 {
        let vals = values.as_object().cloned().unwrap_or_default();
        match lock(&self.shared.db).create_as(1, model, vals) {
            Ok(id) => id,
            Err(e) => panic!("stand-in insert into {model}: {}: {}", e.name, e.message),
        }
    }

    /// Creates a record as the user `uid` (its `create_uid`), like [`OdooStandin::insert`].
    pub fn insert_as(&self, uid: i64, model: &str, values: Value) -> i64 {
        let vals = values.as_object().cloned().unwrap_or_default();
        match lock(&self.shared.db).create_as(uid, model, vals) {
            Ok(id) => id,
            Err(e) => panic!(
                "stand-in insert into {model} as uid {uid}: {}: {}",
                e.name, e.message
            ),
        }
    }

    /// An internal user with a language (`en_US`, `fr_FR`) who can create records
    /// ([`OdooStandin::insert_as`]) but not log in over RPC; returns its uid.
    pub fn add_user(&self, login: &str, name: &str, lang: &str) -> i64 {
        let partner = self.insert("res.partner", json!({"name": name, "lang": lang}));
        let uid = self.insert(
            "res.users",
            json!({"name": name, "login": login, "partner_id": partner, "lang": lang}),
        );
        lock(&self.shared.db).users.push(orm::User {
            uid,
            login: login.to_owned(),
            password: String::new(),
            api_key: None,
            denied: Default::default(),
        });
        uid
    }

    /// Sets one stored value as it is, magic fields too (`create_date`: a record made days
    /// ago); nothing else changes, `write_date` neither.
    pub fn set_raw(&self, model: &str, id: i64, field: &str, value: Value) {
        let mut db = lock(&self.shared.db);
        match db.tables.get_mut(model).and_then(|t| t.rows.get_mut(&id)) {
            Some(row) => {
                row.insert(field.to_owned(), value);
            }
            None => panic!("stand-in set_raw: no {model}({id})"),
        }
    }

    /// Creates a record with a given id (as a recording's database has it), as the superuser.
    pub fn insert_with_id(&self, model: &str, id: i64, values: Value) {
        let vals = values.as_object().cloned().unwrap_or_default();
        if let Err(e) = lock(&self.shared.db).insert_with_id(model, id, vals) {
            panic!(
                "stand-in insert of {model}({id}): {}: {}",
                e.name, e.message
            );
        }
    }

    /// Deletes records as the superuser, as `unlink` does (what points at them is cleared);
    /// panics with Odoo's message on failure.
    pub fn unlink(&self, model: &str, ids: &[i64]) {
        let env = Env {
            uid: 1,
            context: Map::new(),
        };
        let mut db = lock(&self.shared.db);
        if let Err(e) = db.execute(&env, model, "unlink", &[json!(ids)], &Map::new()) {
            panic!(
                "stand-in unlink of {model} {ids:?}: {}: {}",
                e.name, e.message
            );
        }
        // Their write counts go with them (a long bench deleting what is done stays its size).
        for id in ids {
            db.write_counts.remove(&(model.to_owned(), *id));
        }
    }

    /// Writes values on a record as the superuser (not counted as a daemon write).
    pub fn update(&self, model: &str, id: i64, values: Value) {
        let vals = values.as_object().cloned().unwrap_or_default();
        let mut db = lock(&self.shared.db);
        let result = db.write_as(1, model, &[id], vals);
        if let Err(e) = result {
            panic!(
                "stand-in update of {model}({id}): {}: {}",
                e.name, e.message
            );
        }
        if let Some(n) = db.write_counts.get_mut(&(model.to_owned(), id)) {
            *n = n.saturating_sub(1);
        }
    }

    /// The next `count` `load`s answer a serialization failure (another transaction wrote the
    /// same record), as a real Odoo's `load` does under concurrent writes.
    pub fn conflict_next_loads(&self, count: usize) {
        lock(&self.shared.db).load_conflicts = count;
    }

    /// A user's "Retry" on a failed or cancelled message (the addon's `action_retry`).
    pub fn retry(&self, id: i64) {
        let env = Env {
            uid: 1,
            context: Map::new(),
        };
        if let Err(e) = lock(&self.shared.db).execute(
            &env,
            "whatsapp.message",
            "action_retry",
            &[json!([id])],
            &Map::new(),
        ) {
            panic!(
                "stand-in retry of whatsapp.message({id}): {}: {}",
                e.name, e.message
            );
        }
    }

    /// Posts invoices as an accountant would (`account.move.action_post`, as the superuser).
    pub fn post_invoices(&self, ids: &[i64]) {
        let env = Env {
            uid: 1,
            context: Map::new(),
        };
        if let Err(e) = lock(&self.shared.db).execute(
            &env,
            "account.move",
            "action_post",
            &[json!(ids)],
            &Map::new(),
        ) {
            panic!("stand-in action_post of {ids:?}: {}: {}", e.name, e.message);
        }
    }

    /// A payment of `amount` on a posted invoice, as reconciling it does in Odoo: the amount
    /// due goes down (not below 0), the payment state follows, `write_date` moves.
    pub fn pay(&self, invoice: i64, amount: f64) {
        let residual = self
            .field("account.move", invoice, "amount_residual")
            .as_f64()
            .unwrap_or(0.0);
        let left = ((residual - amount) * 100.0).round() / 100.0;
        let left = left.max(0.0);
        self.update(
            "account.move",
            invoice,
            json!({"amount_residual": left,
                   "payment_state": if left <= 0.0 { "paid" } else { "partial" }}),
        );
    }

    /// A record as `read` returns it (every field), or `None`.
    pub fn record(&self, model: &str, id: i64) -> Option<Map<String, Value>> {
        let db = lock(&self.shared.db);
        let m = db.model(model)?.clone();
        db.read_records(&m, &[id], None, true)
            .ok()?
            .into_iter()
            .next()
            .and_then(|v| v.as_object().cloned())
    }

    /// One field of a record as `read` returns it (`false` when empty, `[id, name]` for a
    /// many2one); `Value::Null` when the record does not exist.
    pub fn field(&self, model: &str, id: i64, field: &str) -> Value {
        let db = lock(&self.shared.db);
        match db.model(model) {
            Some(m) if db.exists(model, id) => db.read_value(&m.clone(), id, field, true),
            _ => Value::Null,
        }
    }

    /// Ids of the records matching `domain` (JSON, Odoo syntax), in the model's order,
    /// archived ones included.
    pub fn search(&self, model: &str, domain: Value) -> Vec<i64> {
        let db = lock(&self.shared.db);
        let Some(m) = db.model(model).cloned() else {
            return Vec::new();
        };
        let env = Env {
            uid: 1,
            context: json!({"active_test": false})
                .as_object()
                .cloned()
                .unwrap_or_default(),
        };
        match db.search_ids(&env, &m, Some(&domain), 0, None, None) {
            Ok(ids) => ids,
            Err(e) => panic!("stand-in search on {model}: {}: {}", e.name, e.message),
        }
    }

    /// Number of records of a model.
    pub fn count(&self, model: &str) -> usize {
        lock(&self.shared.db)
            .tables
            .get(model)
            .map(|t| t.rows.len())
            .unwrap_or(0)
    }

    /// Rows per table, the largest first, with the bus log's rows and the write counts kept
    /// (what a long benchmark watches to see the stand-in keep its size).
    pub fn sizes(&self) -> Vec<(String, usize)> {
        let db = lock(&self.shared.db);
        let mut sizes: Vec<(String, usize)> = db
            .tables
            .iter()
            .map(|(name, t)| (name.clone(), t.rows.len()))
            .chain([
                ("(bus rows)".to_owned(), db.bus.rows.len()),
                ("(write counts)".to_owned(), db.write_counts.len()),
                ("(indexed values)".to_owned(), db.indexed_values()),
            ])
            .filter(|(_, n)| *n > 0)
            .collect();
        sizes.sort_by_key(|(name, n)| (std::cmp::Reverse(*n), name.clone()));
        sizes
    }

    /// The chatter bodies of a record (`mail.message` on it but the notifications to users,
    /// which Odoo's chatter does not show), oldest first.
    pub fn chatter(&self, model: &str, id: i64) -> Vec<String> {
        let db = lock(&self.shared.db);
        let Some(t) = db.tables.get("mail.message") else {
            return Vec::new();
        };
        t.rows
            .values()
            .filter(|r| {
                r.get("model") == Some(&json!(model))
                    && r.get("res_id") == Some(&json!(id))
                    && r.get("message_type") != Some(&json!("user_notification"))
            })
            .map(|r| {
                r.get("body")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned()
            })
            .collect()
    }

    /// The messages for a partner's inbox (`mail.message` naming them in `partner_ids`):
    /// `(model, res_id, subject, body)`, oldest first.
    pub fn inbox(&self, partner_id: i64) -> Vec<(String, i64, String, String)> {
        let db = lock(&self.shared.db);
        let Some(mail) = db.model("mail.message").cloned() else {
            return Vec::new();
        };
        let ids: Vec<i64> = db
            .tables
            .get("mail.message")
            .map(|t| t.rows.keys().copied().collect())
            .unwrap_or_default();
        ids.into_iter()
            .filter(|id| {
                db.related_ids(&mail, *id, "partner_ids")
                    .contains(&partner_id)
            })
            .filter_map(|id| {
                let r = db.row("mail.message", id)?;
                let text = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
                Some((
                    text("model"),
                    r.get("res_id").and_then(Value::as_i64).unwrap_or(0),
                    text("subject"),
                    text("body"),
                ))
            })
            .collect()
    }

    /// The open activities on a record: `(user id, summary, note)`, by id.
    pub fn activities(&self, model: &str, id: i64) -> Vec<(i64, String, String)> {
        let db = lock(&self.shared.db);
        let Some(t) = db.tables.get("mail.activity") else {
            return Vec::new();
        };
        t.rows
            .values()
            .filter(|r| {
                r.get("res_model") == Some(&json!(model))
                    && r.get("res_id") == Some(&json!(id))
                    && r.get("active") != Some(&json!(false))
            })
            .map(|r| {
                let text = |k: &str| r.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
                (
                    r.get("user_id").and_then(Value::as_i64).unwrap_or(0),
                    text("summary"),
                    text("note"),
                )
            })
            .collect()
    }

    /// Sets the value of a translated field in another language than English, as the
    /// translation dialog of Odoo does.
    pub fn set_translation(&self, model: &str, id: i64, field: &str, lang: &str, value: &str) {
        let mut db = lock(&self.shared.db);
        let key = orm::translation_key(field, lang);
        if let Some(row) = db.tables.get_mut(model).and_then(|t| t.rows.get_mut(&id)) {
            row.insert(key, json!(value));
        }
    }

    /// A partner with a phone number.
    pub fn add_partner(&self, name: &str, phone: &str, whatsapp_opt_in: bool) -> i64 {
        self.insert(
            "res.partner",
            json!({"name": name, "phone": phone, "mobile": phone, "whatsapp_opt_in": whatsapp_opt_in,
                   "whatsapp_opt_in_date": if whatsapp_opt_in { json!(now_string()) } else { json!(false) },
                   "country_id": 75}),
        )
    }

    /// A WhatsApp account of company 1 (the default one when it is the first).
    pub fn add_account(&self, name: &str, phone_number_id: &str, throughput_mps: i64) -> i64 {
        let first = self.count("whatsapp.account") == 0;
        self.insert(
            "whatsapp.account",
            json!({"name": name, "phone_number_id": phone_number_id, "waba_id": format!("waba-{phone_number_id}"),
                   "access_token": "sandbox-token", "app_secret": "sandbox-secret", "verify_token": "sandbox-verify",
                   "throughput_mps": throughput_mps, "is_default": first, "display_phone_number": "+1 555 0100"}),
        )
    }

    /// An outbound text message queued for `partner_id` (its phone as `to_number`).
    pub fn queue_message(&self, account_id: i64, partner_id: i64, body: &str) -> i64 {
        let phone = self.field("res.partner", partner_id, "mobile");
        self.insert(
            "whatsapp.message",
            json!({"account_id": account_id, "partner_id": partner_id, "direction": "out",
                   "message_type": "text", "state": "queued", "body": body,
                   "to_number": phone, "res_model": "res.partner", "res_id": partner_id}),
        )
    }

    /// Any other value to queue (`template_id`, `res_model`, ...): merged over a queued text.
    pub fn queue_message_with(&self, account_id: i64, partner_id: i64, extra: Value) -> i64 {
        let phone = self.field("res.partner", partner_id, "mobile");
        let mut vals = json!({"account_id": account_id, "partner_id": partner_id, "direction": "out",
                              "message_type": "text", "state": "queued", "to_number": phone});
        if let (Some(base), Some(extra)) = (vals.as_object_mut(), extra.as_object()) {
            for (k, v) in extra {
                base.insert(k.clone(), v.clone());
            }
        }
        self.insert("whatsapp.message", vals)
    }
}

fn serve(listener: TcpListener, shared: Arc<Shared>) -> ServerTask {
    let app = Router::new()
        .route("/jsonrpc", post(jsonrpc))
        .route("/web/session/authenticate", post(web_authenticate))
        .route("/web/session/get_session_info", post(web_session_info))
        .route("/web/dataset/call_kw", post(web_call_kw))
        .route("/web/dataset/call_kw/{*path}", post(web_call_kw))
        .route("/report/pdf/{report}/{ids}", get(report_pdf))
        .route("/web/login", get(web_login_page))
        .route("/websocket", get(websocket::websocket))
        .layer(axum::middleware::from_fn_with_state(
            shared.clone(),
            answer_late,
        ))
        .with_state(shared);
    let cancel = CancellationToken::new();
    let token = cancel.clone();
    let handle = tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(async move { token.cancelled().await })
            .await;
    });
    ServerTask { cancel, handle }
}

/// Holds every answer back by the response delay ([`OdooStandin::set_response_delay`]).
async fn answer_late(
    State(shared): State<Arc<Shared>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let response = next.run(request).await;
    let delay = *lock(&shared.response_delay);
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    response
}

/// Counts the request, applies the latency and the hang switch; the guard tracks in-flight.
struct InFlight<'a>(&'a Shared);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn enter(shared: &Shared) -> InFlight<'_> {
    shared.requests.fetch_add(1, Ordering::SeqCst);
    let now = shared.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    shared.max_in_flight.fetch_max(now, Ordering::SeqCst);
    let guard = InFlight(shared);
    let mut rx = shared.hang.subscribe();
    let _ = rx.wait_for(|hang| !*hang).await;
    let delay = *lock(&shared.delay);
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    guard
}

fn count(shared: &Shared, a: &str, b: &str) {
    *lock(&shared.calls)
        .entry((a.to_owned(), b.to_owned()))
        .or_insert(0) += 1;
}

fn json_response(status: StatusCode, body: Value, cookie: Option<String>) -> Response {
    let mut resp = (status, body.to_string()).into_response();
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    if let Some(c) = cookie {
        if let Ok(v) = HeaderValue::from_str(&c) {
            h.insert(header::SET_COOKIE, v);
        }
    }
    resp
}

fn html_response(status: StatusCode, body: String) -> Response {
    let mut resp = (status, body).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    resp
}

fn result_body(id: &Value, result: Option<Value>) -> Value {
    match result {
        Some(r) => json!({"jsonrpc": "2.0", "id": id, "result": r}),
        None => json!({"jsonrpc": "2.0", "id": id}),
    }
}

fn error_body(id: &Value, err: &OdooErr) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "error": {
        "code": 200,
        "message": "Odoo Server Error",
        "data": {
            "name": err.name,
            "debug": format!("Traceback (most recent call last):\n  File \"odoo-standin\", line 1, in <module>\n{}: {}\n", err.name, err.message),
            "message": err.message,
            "arguments": [err.message],
            "context": {}
        }
    }})
}

fn session_expired_body() -> Value {
    json!({"jsonrpc": "2.0", "id": null, "error": {
        "code": 100,
        "message": "Odoo Session Expired",
        "data": {
            "name": "odoo.http.SessionExpiredException",
            "debug": "Traceback (most recent call last):\n  File \"odoo-standin\", line 1, in <module>\nodoo.http.SessionExpiredException: Session expired\n",
            "message": "Session expired",
            "arguments": ["Session expired"],
            "context": {}
        }
    }})
}

fn db_missing(db: &str) -> OdooErr {
    OdooErr::new(
        "psycopg2.OperationalError",
        format!("connection to server at \"localhost\" (127.0.0.1), port 5432 failed: FATAL:  database \"{db}\" does not exist\n"),
    )
}

/// Checks the body is JSON sent as JSON; the error response otherwise (as Werkzeug/Odoo).
fn parse_json_request(
    headers: &HeaderMap,
    body: &[u8],
    path: &str,
) -> Result<Value, Box<Response>> {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mime = ct.split(';').next().unwrap_or("").trim();
    if mime != "application/json" && mime != "application/json-rpc" {
        return Err(Box::new(html_response(
            StatusCode::BAD_REQUEST,
            format!("<!DOCTYPE HTML PUBLIC \"-//W3C//DTD HTML 3.2 Final//EN\">\n<title>400 Bad Request</title>\n<h1>Bad Request</h1>\n<p>Request inferred type is compatible with [&#x27;http&#x27;] but &#x27;{path}&#x27; is type=&#x27;json&#x27;.</p>\n"),
        )));
    }
    serde_json::from_slice(body).map_err(|_| {
        Box::new(html_response(
            StatusCode::BAD_REQUEST,
            "Invalid JSON data".to_owned(),
        ))
    })
}

fn fault_for(shared: &Shared, model: Option<&str>, method: Option<&str>) -> Option<Fault> {
    let mut faults = lock(&shared.faults);
    let idx = faults.iter().position(|r| {
        r.remaining > 0
            && r.model.as_deref().is_none_or(|m| Some(m) == model)
            && r.method.as_deref().is_none_or(|m| Some(m) == method)
    })?;
    faults[idx].remaining -= 1;
    let fault = faults[idx].fault.clone();
    if faults[idx].remaining == 0 {
        faults.remove(idx);
    }
    Some(fault)
}

fn fault_response(id: &Value, fault: Fault) -> Response {
    match fault {
        Fault::Http(status) => html_response(
            StatusCode::from_u16(status).unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
            format!("<html><head><title>{status}</title></head><body><h1>{status}</h1>The server is temporarily unable to service your request.</body></html>"),
        ),
        Fault::Rpc { name, message } => json_response(
            StatusCode::OK,
            error_body(id, &OdooErr { name, message }),
            None,
        ),
    }
}

async fn jsonrpc(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Bytes) -> Response {
    let _guard = enter(&shared).await;
    let request = match parse_json_request(&headers, &body, "/jsonrpc") {
        Ok(r) => r,
        Err(resp) => return *resp,
    };
    if cookie_sid(&headers).is_some_and(|sid| lock(&shared.db_sessions).contains(sid)) {
        shared.with_db_session.fetch_add(1, Ordering::Relaxed);
    }
    let id = request.get("id").cloned().unwrap_or(Value::Null);
    let params = request.get("params").cloned().unwrap_or(json!({}));
    let service = params.get("service").and_then(Value::as_str).unwrap_or("");
    let method = params.get("method").and_then(Value::as_str).unwrap_or("");
    let args: Vec<Value> = params
        .get("args")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let (model, model_method) = if service == "object" {
        (
            args.get(3).and_then(Value::as_str),
            args.get(4).and_then(Value::as_str),
        )
    } else {
        (Some(service), Some(method))
    };
    if let Some(fault) = fault_for(&shared, model, model_method) {
        if let (Some(m), Some(mm)) = (model, model_method) {
            count(&shared, m, mm);
        }
        return fault_response(&id, fault);
    }
    let outcome = match service {
        "common" => common(&shared, method, &args),
        "db" => db_service(&shared, method, &args),
        "object" => object(&shared, method, &args),
        other => Err(OdooErr::key(other)),
    };
    let body = match outcome {
        Ok(result) => result_body(&id, result),
        Err(e) => error_body(&id, &e),
    };
    json_response(StatusCode::OK, body, None)
}

fn check_login(
    shared: &Shared,
    db: &str,
    login: &str,
    secret: &str,
    api_key_ok: bool,
) -> Result<Option<i64>, OdooErr> {
    let dbg = lock(&shared.db);
    if db != dbg.database {
        return Err(db_missing(db));
    }
    Ok(dbg
        .users
        .iter()
        .find(|u| u.login == login && u.uid != 1)
        .filter(|u| {
            (!u.password.is_empty() && u.password == secret)
                || (api_key_ok && u.api_key.as_deref() == Some(secret))
        })
        .map(|u| u.uid))
}

fn common(shared: &Shared, method: &str, args: &[Value]) -> Result<Option<Value>, OdooErr> {
    count(shared, "common", method);
    let s = |i: usize| args.get(i).and_then(Value::as_str).unwrap_or("");
    match method {
        "version" => Ok(Some(json!({
            "server_version": "17.0",
            "server_version_info": [17, 0, 0, "final", 0, ""],
            "server_serie": "17.0",
            "protocol_version": 1
        }))),
        "login" | "authenticate" => {
            let uid = check_login(shared, s(0), s(1), s(2), true)?;
            Ok(Some(uid.map(Value::from).unwrap_or(Value::Bool(false))))
        }
        other => Err(OdooErr::new(
            "builtins.Exception",
            format!("Method not found: {other}"),
        )),
    }
}

fn db_service(shared: &Shared, method: &str, args: &[Value]) -> Result<Option<Value>, OdooErr> {
    count(shared, "db", method);
    let database = lock(&shared.db).database.clone();
    match method {
        "list" => {
            if shared.list_db.load(Ordering::SeqCst) {
                Ok(Some(json!([database])))
            } else {
                Err(OdooErr::access_denied())
            }
        }
        "db_exist" => Ok(Some(Value::Bool(
            args.first().and_then(Value::as_str) == Some(database.as_str()),
        ))),
        "server_version" => Ok(Some(json!("17.0"))),
        other => Err(OdooErr::key(format!("Method not found: {other}"))),
    }
}

fn object(shared: &Shared, method: &str, args: &[Value]) -> Result<Option<Value>, OdooErr> {
    if method != "execute_kw" && method != "execute" {
        return Err(OdooErr::new(
            "builtins.NameError",
            format!("Method not available {method}"),
        ));
    }
    let db_name = args.first().and_then(Value::as_str).unwrap_or("");
    let uid = args.get(1).and_then(Value::as_i64).unwrap_or(0);
    let secret = args.get(2).and_then(Value::as_str).unwrap_or("");
    let model = args.get(3).and_then(Value::as_str).unwrap_or("");
    let model_method = args.get(4).and_then(Value::as_str).unwrap_or("");
    let (call_args, mut kwargs): (Vec<Value>, Map<String, Value>) = if method == "execute_kw" {
        (
            args.get(5)
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default(),
            args.get(6)
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default(),
        )
    } else {
        (
            args.get(5..).map(<[Value]>::to_vec).unwrap_or_default(),
            Map::new(),
        )
    };
    let mut db = lock(&shared.db);
    if db_name != db.database {
        return Err(db_missing(db_name));
    }
    let Some(user) = db.user(uid).cloned() else {
        return Err(OdooErr::new(
            "odoo.exceptions.MissingError",
            format!("Record does not exist or has been deleted.\n(Record: res.users({uid},), User: {uid})"),
        ));
    };
    let ok = (!user.password.is_empty() && user.password == secret)
        || user.api_key.as_deref() == Some(secret);
    if !ok {
        return Err(OdooErr::access_denied());
    }
    count(shared, model, model_method);
    let context = match kwargs.remove("context") {
        Some(Value::Object(c)) => c,
        _ => Map::new(),
    };
    lock(&shared.contexts).insert((model.to_owned(), model_method.to_owned()), context.clone());
    let env = Env { uid, context };
    db.execute(&env, model, model_method, &call_args, &kwargs)
}

fn session_info(shared: &Shared, uid: i64) -> Value {
    let db = lock(&shared.db);
    let user = db.row("res.users", uid).cloned().unwrap_or_default();
    let partner_id = user.get("partner_id").and_then(Value::as_i64).unwrap_or(0);
    let partner_name = db
        .model("res.partner")
        .map(|m| db.display_name(m, partner_id))
        .unwrap_or_default();
    let tz = user.get("tz").cloned().unwrap_or(json!("UTC"));
    json!({
        "uid": uid,
        "is_system": uid == ADMIN_UID,
        "is_admin": uid == ADMIN_UID,
        "is_internal_user": true,
        "user_context": {"lang": "en_US", "tz": tz, "uid": uid},
        "db": db.database,
        "user_settings": {"id": uid, "user_id": {"id": uid}, "is_discuss_sidebar_category_channel_open": true,
                          "is_discuss_sidebar_category_chat_open": true, "push_to_talk_key": false,
                          "use_push_to_talk": false, "voice_active_duration": 0, "volume_settings_ids": [["ADD", []]]},
        "server_version": "17.0",
        "server_version_info": [17, 0, 0, "final", 0, ""],
        "support_url": "https://www.odoo.com/buy",
        "name": user.get("name").cloned().unwrap_or(json!("")),
        "username": user.get("login").cloned().unwrap_or(json!("")),
        "partner_display_name": partner_name,
        "partner_id": partner_id,
        "web.base.url": shared.base_url,
        "active_ids_limit": 20000,
        "profile_session": null,
        "profile_collectors": null,
        "profile_params": null,
        "max_file_upload_size": 134217728,
        "home_action_id": false,
        "cache_hashes": {"translations": "0000000000000000000000000000000000000000", "load_menus": "0000000000000000000000000000000000000000000000000000000000000000"},
        "currencies": {"1": {"symbol": "$", "position": "before", "digits": [69, 2]}},
        "bundle_params": {"lang": "en_US"},
        "user_companies": {"current_company": 1, "allowed_companies": {"1": {"id": 1, "name": "YourCompany", "sequence": 0, "child_ids": [], "parent_id": false}}, "disallowed_ancestor_companies": {}},
        "show_effect": true,
        "display_switch_company_menu": false,
        "user_id": [uid],
        "web_tours": [],
        "tour_disable": true,
        "notification_type": "email",
        "odoobot_initialized": true,
        "iap_company_enrich": true,
        "is_quick_edit_mode_enabled": false
    })
}

fn session_cookie_header(sid: &str) -> String {
    let expires = (chrono::Utc::now() + chrono::Duration::days(7))
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string();
    format!("session_id={sid}; Expires={expires}; Max-Age=604800; HttpOnly; Path=/")
}

fn cookie_sid(headers: &HeaderMap) -> Option<&str> {
    let cookies = headers.get(header::COOKIE)?.to_str().ok()?;
    cookies
        .split(';')
        .filter_map(|c| c.trim().strip_prefix("session_id="))
        .next()
}

fn cookie_uid(shared: &Shared, headers: &HeaderMap) -> Option<i64> {
    let sid = cookie_sid(headers)?;
    lock(&shared.sessions).get(sid).copied()
}

async fn web_authenticate(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let _guard = enter(&shared).await;
    let request = match parse_json_request(&headers, &body, "/web/session/authenticate") {
        Ok(r) => r,
        Err(resp) => return *resp,
    };
    count(&shared, "web", "session/authenticate");
    let id = request.get("id").cloned().unwrap_or(Value::Null);
    let p = request.get("params").cloned().unwrap_or(json!({}));
    let s = |k: &str| p.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
    let (limit, duration) = *lock(&shared.cooldown);
    {
        let failures = lock(&shared.login_failures);
        if failures.0 >= limit && failures.1.is_some_and(|t| t.elapsed() < duration) {
            return json_response(
                StatusCode::OK,
                error_body(
                    &id,
                    &OdooErr::new(
                        "odoo.exceptions.AccessDenied",
                        "Too many login failures, please wait a bit before trying again.",
                    ),
                ),
                None,
            );
        }
    }
    // The web login is interactive: only the password, never the API key.
    let uid = match check_login(&shared, &s("db"), &s("login"), &s("password"), false) {
        Ok(uid) => uid,
        Err(e) => return json_response(StatusCode::OK, error_body(&id, &e), None),
    };
    let Some(uid) = uid else {
        let mut failures = lock(&shared.login_failures);
        failures.0 += 1;
        failures.1 = Some(Instant::now());
        return json_response(
            StatusCode::OK,
            error_body(&id, &OdooErr::access_denied()),
            None,
        );
    };
    *lock(&shared.login_failures) = (0, None);
    let sid: String = (0..40).map(|_| fastrand::alphanumeric()).collect();
    lock(&shared.sessions).insert(sid.clone(), uid);
    json_response(
        StatusCode::OK,
        result_body(&id, Some(session_info(&shared, uid))),
        Some(session_cookie_header(&sid)),
    )
}

async fn web_session_info(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let _guard = enter(&shared).await;
    let request = match parse_json_request(&headers, &body, "/web/session/get_session_info") {
        Ok(r) => r,
        Err(resp) => return *resp,
    };
    count(&shared, "web", "session/get_session_info");
    let id = request.get("id").cloned().unwrap_or(Value::Null);
    match cookie_uid(&shared, &headers) {
        Some(uid) => json_response(
            StatusCode::OK,
            result_body(&id, Some(session_info(&shared, uid))),
            None,
        ),
        None => json_response(StatusCode::OK, session_expired_body(), None),
    }
}

async fn web_call_kw(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let _guard = enter(&shared).await;
    let request = match parse_json_request(&headers, &body, "/web/dataset/call_kw") {
        Ok(r) => r,
        Err(resp) => return *resp,
    };
    let Some(uid) = cookie_uid(&shared, &headers) else {
        return json_response(StatusCode::OK, session_expired_body(), None);
    };
    let id = request.get("id").cloned().unwrap_or(Value::Null);
    let p = request.get("params").cloned().unwrap_or(json!({}));
    let model = p.get("model").and_then(Value::as_str).unwrap_or("");
    let method = p.get("method").and_then(Value::as_str).unwrap_or("");
    let args = p
        .get("args")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut kwargs = p
        .get("kwargs")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    count(&shared, model, method);
    let context = match kwargs.remove("context") {
        Some(Value::Object(c)) => c,
        _ => Map::new(),
    };
    let outcome = {
        let mut db = lock(&shared.db);
        db.web_request = true;
        let outcome = db.execute(&Env { uid, context }, model, method, &args, &kwargs);
        db.web_request = false;
        outcome
    };
    let body = match outcome {
        Ok(r) => result_body(&id, r),
        Err(e) => error_body(&id, &e),
    };
    json_response(StatusCode::OK, body, None)
}

/// `GET /web/login`: the login page; with `?db=<db>` and no session of that database, web's
/// `ensure_db` instead: a 302 to the same URL with a new session cookie bound to the database
/// (no login), as recorded in `a_web_login_db_session.json`.
async fn web_login_page(
    State(shared): State<Arc<Shared>>,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
) -> Response {
    let _guard = enter(&shared).await;
    if let Some(query) = query.filter(|q| q.split('&').any(|p| p.starts_with("db="))) {
        count(&shared, "web", "login?db");
        let location = format!("/web/login?{query}");
        let mut resp = html_response(
            StatusCode::FOUND,
            format!("<!DOCTYPE HTML PUBLIC \"-//W3C//DTD HTML 3.2 Final//EN\">\n<title>Redirecting...</title>\n<h1>Redirecting...</h1>\n<p>You should be redirected automatically to target URL: <a href=\"{location}\">{location}</a>. If not click the link."),
        );
        let sid: String = (0..40).map(|_| fastrand::alphanumeric()).collect();
        lock(&shared.db_sessions).insert(sid.clone());
        let headers = resp.headers_mut();
        if let Ok(v) = HeaderValue::from_str(&format!("{}{location}", shared.base_url)) {
            headers.insert(header::LOCATION, v);
        }
        if let Ok(v) = HeaderValue::from_str(&session_cookie_header(&sid)) {
            headers.insert(header::SET_COOKIE, v);
        }
        return resp;
    }
    html_response(
        StatusCode::OK,
        "<!DOCTYPE html>\n<html><head><title>Odoo</title></head><body><form class=\"oe_login_form\" action=\"/web/login\" method=\"post\"><input name=\"login\"/><input name=\"password\" type=\"password\"/></form></body></html>".to_owned(),
    )
}

const REPORTS: &[(&str, &str)] = &[
    ("sale.report_saleorder", "sale.order"),
    ("sale.report_saleorder_pro_forma", "sale.order"),
    ("account.report_invoice", "account.move"),
    ("account.report_invoice_with_payments", "account.move"),
];

async fn report_pdf(
    State(shared): State<Arc<Shared>>,
    Path((report, ids)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    let _guard = enter(&shared).await;
    let Some(uid) = cookie_uid(&shared, &headers) else {
        let target = format!("/report/pdf/{report}/{ids}?");
        let encoded: String = target
            .bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect();
        let location = format!("/web/login?redirect={encoded}");
        let mut resp = html_response(
            StatusCode::SEE_OTHER,
            format!("<!DOCTYPE HTML PUBLIC \"-//W3C//DTD HTML 3.2 Final//EN\">\n<title>Redirecting...</title>\n<h1>Redirecting...</h1>\n<p>You should be redirected automatically to target URL: <a href=\"{location}\">{location}</a>. If not click the link."),
        );
        if let Ok(v) = HeaderValue::from_str(&format!("{}{location}", shared.base_url)) {
            resp.headers_mut().insert(header::LOCATION, v);
        }
        return resp;
    };
    count(&shared, "report", &report);
    let internal_error = || {
        html_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            "<html><head><title>Internal Server Error</title></head><body><h1>500: Internal Server Error</h1></body></html>".to_owned(),
        )
    };
    let Some((_, model)) = REPORTS.iter().find(|(r, _)| *r == report) else {
        return internal_error();
    };
    let parsed: Result<Vec<i64>, _> = ids.split(',').map(|s| s.trim().parse::<i64>()).collect();
    let Ok(id_list) = parsed else {
        return internal_error();
    };
    let (names, missing) = {
        let db = lock(&shared.db);
        let missing: Vec<i64> = id_list
            .iter()
            .copied()
            .filter(|i| !db.exists(model, *i))
            .collect();
        let names: Vec<String> = match db.model(model) {
            Some(m) => id_list.iter().map(|i| db.display_name(m, *i)).collect(),
            None => Vec::new(),
        };
        (names, missing)
    };
    if !missing.is_empty() {
        let ids_repr = domain::pytuple(&missing.iter().map(|i| json!(i)).collect::<Vec<_>>());
        return html_response(
            StatusCode::BAD_REQUEST,
            format!("<!DOCTYPE html>\n<html><head><title>Odoo</title></head><body><div class=\"container\"><h1>Oops! Something went wrong.</h1><p>Take a look at the error message below.</p><p>Error message:</p><pre>Record does not exist or has been deleted.\n(Record: {model}{ids_repr}, User: {uid})</pre></div><footer>Copyright &copy; YourCompany</footer></body></html>"),
        );
    }
    lock(&shared.reports).push((report.clone(), id_list));
    let mut resp = (StatusCode::OK, pdf_bytes(&report, &names.join(", "))).into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/pdf"),
    );
    resp
}

/// A small, valid one-page PDF naming the report and the documents.
pub fn pdf_bytes(report: &str, documents: &str) -> Vec<u8> {
    let text = format!("{report}: {documents}")
        .replace('\\', "\\\\")
        .replace('(', "\\(")
        .replace(')', "\\)");
    let content = format!("BT /F1 12 Tf 72 720 Td ({text}) Tj ET");
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_owned(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>".to_owned(),
        format!("<< /Length {} >>\nstream\n{content}\nendstream", content.len()),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_owned(),
    ];
    let mut out = b"%PDF-1.7\n".to_vec();
    let mut offsets = Vec::new();
    for (i, o) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n{o}\nendobj\n", i + 1).as_bytes());
    }
    let xref = out.len();
    out.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
    );
    for off in offsets {
        out.extend_from_slice(format!("{off:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    out
}
