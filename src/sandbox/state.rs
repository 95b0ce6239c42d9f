//! The sandbox's in-memory state and its synchronous operations: accept a send, store media,
//! inject an inbound message, list templates, query the record.
//!
//! Nothing here awaits: every lock is held for a few map operations and released before the
//! caller goes back to I/O, so the HTTP handlers (`server.rs`) and the webhook task
//! (`delivery.rs`) never wait on each other. Rate limits are `governor` token buckets on a clock
//! that follows `tokio::time`, so tests can run them under `tokio::time::pause()`.

use super::config::{PhoneNumberConfig, SandboxConfig, WebhookConfig};
use super::error::{GraphError, SandboxError};
use super::ids::{self, IdGen};
use super::templates::TemplateSpec;
use super::validate::{self, normalise_recipient, SendContext, ValidSend};
use super::webhook::{
    self, Business, Contact, Conversation, InboundContent, OutboundFacts, PlanSettings,
    StatusEvent, StatusKind,
};
use crate::secret::Secret;
use crate::whatsapp::media::{check_upload, content_sha256, normalize_mime, MediaError, MediaKind};
use bytes::Bytes;
use governor::clock::Clock;
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DashMapStateStore;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::sync::mpsc;
use url::Url;

/// Business-scoped user ids cached at most (they are recomputed when dropped).
const USER_ID_CACHE_MAX: usize = 100_000;

/// The 24-hour customer service window.
pub const SERVICE_WINDOW: Duration = Duration::from_secs(24 * 3600);

/// A `governor` clock that reads `tokio::time`, so paused-time tests drive the limiters.
#[derive(Debug, Clone)]
pub struct TokioClock {
    start: tokio::time::Instant,
}

impl TokioClock {
    fn new() -> Self {
        TokioClock {
            start: tokio::time::Instant::now(),
        }
    }
}

impl Clock for TokioClock {
    type Instant = Duration;

    fn now(&self) -> Duration {
        self.start.elapsed()
    }
}

type DirectLimiter = RateLimiter<NotKeyed, InMemoryState, TokioClock, NoOpMiddleware<Duration>>;
type PairLimiter =
    RateLimiter<String, DashMapStateStore<String>, TokioClock, NoOpMiddleware<Duration>>;

/// Locks a mutex, going on with the data if another thread panicked while holding it (every
/// critical section leaves the data consistent).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Unix time in milliseconds.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A configured phone number with its throughput bucket.
pub struct Number {
    /// Its configuration.
    pub config: PhoneNumberConfig,
    /// The display number as digits.
    pub display_digits: String,
    limiter: DirectLimiter,
}

impl Number {
    fn business(&self) -> Business {
        Business {
            waba_id: self.config.waba_id.clone(),
            phone_number_id: self.config.id.clone(),
            display_digits: self.display_digits.clone(),
        }
    }

    /// The object `GET /{phone-number-id}` answers.
    pub fn info_json(&self) -> Value {
        json!({
            "verified_name": self.config.verified_name,
            "code_verification_status": "VERIFIED",
            "display_phone_number": self.config.display_phone_number,
            "quality_rating": self.config.quality_rating,
            "platform_type": "CLOUD_API",
            "throughput": {"level": if self.config.throughput_mps >= 1000 { "HIGH" } else { "STANDARD" }},
            "name_status": self.config.name_status,
            "messaging_limit_tier": self.config.messaging_limit_tier,
            "id": self.config.id,
        })
    }
}

/// An uploaded media file.
#[derive(Debug)]
pub struct MediaItem {
    /// Its id.
    pub id: String,
    /// Its MIME type.
    pub mime_type: String,
    /// Lower-case hex SHA-256 of the bytes.
    pub sha256: String,
    /// The bytes.
    pub bytes: Bytes,
    /// The key in its download URL.
    pub url_key: String,
}

impl MediaItem {
    /// The media type the MIME type belongs to (`image`, `document`, ...).
    pub fn media_kind(&self) -> &'static str {
        MediaKind::for_mime_type(&self.mime_type).map_or("document", MediaKind::as_str)
    }
}

/// One accepted outbound message, as the record keeps it.
#[derive(Debug, Clone)]
pub struct RecordedMessage {
    /// Its position in the record (1, 2, ...), for paging with `after_seq`.
    pub seq: u64,
    /// The wamid answered.
    pub wamid: String,
    /// The sending number.
    pub phone_number_id: String,
    /// The Graph API version of the request path.
    pub graph_version: String,
    /// `to` as sent.
    pub to: String,
    /// The recipient's digits.
    pub wa_id: String,
    /// The message type.
    pub kind: String,
    /// `biz_opaque_callback_data`.
    pub callback_data: Option<String>,
    /// When it was accepted (Unix ms).
    pub accepted_at_ms: u64,
    /// The most advanced status so far.
    pub status: StatusKind,
    /// Every status emitted, in emission order, with its time (Unix ms).
    pub statuses: Vec<(StatusKind, u64)>,
    /// The error code when it failed.
    pub error_code: Option<u32>,
    /// The request body exactly as received.
    pub body: Bytes,
}

impl RecordedMessage {
    /// The request body as JSON.
    pub fn payload(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or(Value::Null)
    }

    /// The JSON form `GET /sandbox/messages` answers.
    pub fn to_json(&self) -> Value {
        json!({
            "seq": self.seq,
            "wamid": self.wamid,
            "phone_number_id": self.phone_number_id,
            "graph_version": self.graph_version,
            "to": self.to,
            "wa_id": self.wa_id,
            "type": self.kind,
            "biz_opaque_callback_data": self.callback_data,
            "accepted_at_ms": self.accepted_at_ms,
            "status": self.status.as_str(),
            "statuses": self.statuses.iter().map(|(k, at)| json!({"status": k.as_str(), "at_ms": at})).collect::<Vec<_>>(),
            "error_code": self.error_code,
            "payload": self.payload(),
        })
    }
}

/// Which recorded messages a query wants.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct RecordFilter {
    /// Only messages to this number (any format: digits compared).
    pub to: Option<String>,
    /// Only messages accepted at or after this time: Unix milliseconds or RFC 3339.
    pub since: Option<String>,
    /// Only messages with `seq` greater than this.
    pub after_seq: Option<u64>,
    /// Only this wamid.
    pub wamid: Option<String>,
    /// Only messages with this `biz_opaque_callback_data`.
    pub callback_data: Option<String>,
    /// Only messages of this type.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// Only messages from this phone number id.
    pub phone_number_id: Option<String>,
    /// At most this many (default 100, at most 10,000).
    pub limit: Option<usize>,
    /// `asc` (default, oldest first) or `desc`.
    pub order: Option<String>,
}

impl RecordFilter {
    fn since_ms(&self) -> Result<Option<u64>, String> {
        let Some(since) = &self.since else {
            return Ok(None);
        };
        if let Ok(ms) = since.parse::<u64>() {
            return Ok(Some(ms));
        }
        chrono::DateTime::parse_from_rfc3339(since)
            .map(|t| Some(t.timestamp_millis().max(0) as u64))
            .map_err(|_| {
                format!("since={since:?} is neither Unix milliseconds nor an RFC 3339 time")
            })
    }
}

#[derive(Default)]
struct Record {
    entries: VecDeque<RecordedMessage>,
    by_wamid: HashMap<String, u64>,
    next_seq: u64,
}

impl Record {
    fn get_mut(&mut self, wamid: &str) -> Option<&mut RecordedMessage> {
        let seq = *self.by_wamid.get(wamid)?;
        let first = self.entries.front()?.seq;
        self.entries.get_mut((seq - first) as usize)
    }
}

/// An injected inbound message, as the record keeps it.
#[derive(Debug, Clone, Serialize)]
pub struct InboundRecord {
    /// Its wamid.
    pub wamid: String,
    /// The sender's wa_id.
    pub from: String,
    /// The receiving number.
    pub phone_number_id: String,
    /// When (Unix ms).
    pub at_ms: u64,
    /// The webhook body sent for it.
    pub webhook: Value,
}

/// Counters for `GET /sandbox/stats`.
#[derive(Debug, Default)]
pub struct Stats {
    /// Sends accepted.
    pub accepted: AtomicU64,
    rejected: Mutex<BTreeMap<u32, u64>>,
    /// Webhook POSTs answered 200.
    pub webhooks_delivered: AtomicU64,
    /// Webhook attempts that failed (non-200 or unreachable).
    pub webhook_failed_attempts: AtomicU64,
    /// Webhook POSTs given up after the retry period.
    pub webhooks_given_up: AtomicU64,
    /// Extra copies sent by the duplicate chaos.
    pub webhook_duplicates: AtomicU64,
    /// Statuses emitted (with or without a callback).
    pub statuses_emitted: AtomicU64,
    /// Statuses waiting for their time.
    pub statuses_pending: AtomicU64,
    /// Inbound messages injected.
    pub inbound_injected: AtomicU64,
    /// Media files uploaded.
    pub media_uploaded: AtomicU64,
}

impl Stats {
    fn reject(&self, code: u32) {
        *lock(&self.rejected).entry(code).or_insert(0) += 1;
    }

    /// The counters as JSON.
    pub fn to_json(&self) -> Value {
        let rejected: BTreeMap<String, u64> = lock(&self.rejected)
            .iter()
            .map(|(code, n)| (code.to_string(), *n))
            .collect();
        json!({
            "accepted": self.accepted.load(Ordering::Relaxed),
            "rejected": rejected,
            "statuses_emitted": self.statuses_emitted.load(Ordering::Relaxed),
            "statuses_pending": self.statuses_pending.load(Ordering::Relaxed),
            "webhooks_delivered": self.webhooks_delivered.load(Ordering::Relaxed),
            "webhook_failed_attempts": self.webhook_failed_attempts.load(Ordering::Relaxed),
            "webhooks_given_up": self.webhooks_given_up.load(Ordering::Relaxed),
            "webhook_duplicates": self.webhook_duplicates.load(Ordering::Relaxed),
            "inbound_injected": self.inbound_injected.load(Ordering::Relaxed),
            "media_uploaded": self.media_uploaded.load(Ordering::Relaxed),
        })
    }

    /// How many sends were refused with this code.
    pub fn rejected(&self, code: u32) -> u64 {
        lock(&self.rejected).get(&code).copied().unwrap_or(0)
    }
}

/// Where webhooks go.
pub struct CallbackTarget {
    /// The callback URL.
    pub url: Url,
    /// The app secret signing them.
    pub app_secret: Secret,
}

/// Work for the webhook task.
pub enum Job {
    /// The statuses of an accepted message, due at the given offsets from `accepted`.
    Statuses {
        /// The message.
        facts: Arc<OutboundFacts>,
        /// Its plan.
        plan: Vec<(Duration, StatusEvent)>,
        /// When it was accepted.
        accepted: tokio::time::Instant,
    },
    /// A ready webhook body (inbound message, template update), sent at once.
    Payload {
        /// The envelope.
        body: Value,
    },
}

/// A successful send: the answer body.
pub struct SendAccepted {
    /// `{"messaging_product":"whatsapp","contacts":[...],"messages":[...]}`.
    pub body: Vec<u8>,
}

/// A send that passed validation and was refused all the same (throughput, pair rate, the
/// send chaos, a synchronous failure), as `GET /sandbox/refused` lists it: with the record of
/// accepted sends, what a client's retries look like from Meta's side.
#[derive(Debug, Clone, Serialize)]
pub struct RefusedSend {
    /// When it was answered (Unix ms).
    pub at_ms: u64,
    /// The sending number.
    pub phone_number_id: String,
    /// The recipient's digits.
    pub wa_id: String,
    /// `biz_opaque_callback_data`.
    #[serde(rename = "biz_opaque_callback_data")]
    pub callback_data: Option<String>,
    /// Meta's error code answered.
    pub code: u32,
    /// The HTTP status answered.
    pub http_status: u16,
}

/// A change of the send chaos while the sandbox runs (`POST /sandbox/chaos`,
/// [`super::Sandbox::set_chaos`]); the fields left out keep their value.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChaosUpdate {
    /// The share of sends answered HTTP 500 (131000) from now on, between 0 and 1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub send_error_ratio: Option<f64>,
    /// The throttle window starts this long after the change (default 0: at once) ...
    #[serde(skip_serializing_if = "Option::is_none")]
    pub throttle_after_ms: Option<u64>,
    /// ... and every send is answered 130429 for this long; 0 ends the current window.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub throttle_for_ms: Option<u64>,
}

/// The send chaos in force.
#[derive(Debug, Clone, Copy)]
struct SendChaos {
    /// The share of sends answered 500.
    error_ratio: f64,
    /// Every send is answered 130429 from the first instant until the second.
    throttle: Option<(tokio::time::Instant, tokio::time::Instant)>,
}

/// `at + ms`, or far in the future when that does not fit.
fn instant_after(at: tokio::time::Instant, ms: u64) -> tokio::time::Instant {
    at.checked_add(Duration::from_millis(ms))
        .unwrap_or_else(|| at + Duration::from_secs(100 * 365 * 24 * 3600))
}

/// What to inject.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InjectRequest {
    /// The user's number (E.164, `+` optional).
    pub from: String,
    /// The profile name (default `Sandbox User`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The receiving number (default: the first configured).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone_number_id: Option<String>,
    /// A text message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// A reply-button tap: `{"id": ..., "title": ...}` (title looked up when omitted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub button_reply: Option<ReplyRef>,
    /// A list choice: `{"id": ..., "title": ..., "description": ...}` (looked up when omitted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub list_reply: Option<ListRef>,
    /// A template quick-reply tap: `{"payload": ..., "text": ...}` (text looked up when omitted).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub button: Option<TemplateButtonRef>,
    /// The wamid the message replies to (for text; replies to buttons find it themselves).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context: Option<String>,
}

/// A reply-button reference.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReplyRef {
    /// The button id.
    pub id: String,
    /// The button title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
}

/// A list-row reference.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListRef {
    /// The row id.
    pub id: String,
    /// The row title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The row description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// A template quick-reply reference.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TemplateButtonRef {
    /// The payload given at send time.
    pub payload: String,
    /// The button text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

/// The result of an injection.
#[derive(Debug, Clone, Serialize)]
pub struct InjectOutcome {
    /// The inbound message's wamid.
    pub wamid: String,
    /// The webhook body, as sent (or as it would be sent).
    pub webhook: Value,
    /// Whether it was queued for the callback URL (false: no callback URL configured).
    pub queued: bool,
}

/// Templates by WABA, in configuration order.
#[derive(Default)]
struct TemplateStore {
    by_waba: HashMap<String, Vec<Arc<TemplateSpec>>>,
}

impl TemplateStore {
    fn find(&self, waba: &str, name: &str, language: &str) -> Option<Arc<TemplateSpec>> {
        self.by_waba
            .get(waba)?
            .iter()
            .find(|t| t.name == name && t.language == language)
            .cloned()
    }
}

/// Everything the sandbox holds.
pub struct Shared {
    numbers: HashMap<String, Number>,
    number_order: Vec<String>,
    first_number: String,
    wabas: BTreeMap<String, Vec<String>>,
    templates: RwLock<TemplateStore>,
    pair: PairLimiter,
    windows: Mutex<HashMap<String, tokio::time::Instant>>,
    record: Mutex<Record>,
    record_limit: usize,
    refused: Mutex<VecDeque<RefusedSend>>,
    send_chaos: Mutex<SendChaos>,
    inbound: Mutex<VecDeque<InboundRecord>>,
    media: Mutex<HashMap<String, Arc<MediaItem>>>,
    user_ids: Mutex<HashMap<String, String>>,
    callback: RwLock<Option<Arc<CallbackTarget>>>,
    jobs: mpsc::UnboundedSender<Job>,
    /// Id generator.
    pub ids: IdGen,
    /// Counters.
    pub stats: Stats,
    tokens: Vec<Secret>,
    undeliverable: HashSet<String>,
    sync_failures: bool,
    enforce_window: bool,
    with_user_ids: bool,
    /// How long media URLs stay valid.
    pub media_url_ttl: Duration,
    /// `expires_at` of `GET /debug_token` (0: never).
    pub token_expires_at: i64,
    /// Whether `GET /{waba}/subscribed_apps` lists an app.
    pub webhook_subscribed: bool,
    /// The base URL for media URLs and paging links, when configured.
    pub public_url: Option<Url>,
    /// Webhook settings.
    pub webhooks: WebhookConfig,
    /// Duplicate-delivery probability.
    pub duplicate_ratio: f64,
    plan: PlanSettings,
    /// The verify token for the callback handshake.
    pub verify_token: Option<Secret>,
    /// The configured app secret (used when the callback is changed without one).
    pub app_secret: Secret,
}

impl Shared {
    /// Builds the state from a validated configuration; `jobs` feeds the webhook task.
    pub fn new(
        config: &SandboxConfig,
        jobs: mpsc::UnboundedSender<Job>,
    ) -> Result<Shared, SandboxError> {
        config.validate()?;
        let clock = TokioClock::new();
        let mut numbers = HashMap::new();
        let mut wabas: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for number in &config.phone_numbers {
            let per_second = NonZeroU32::new(number.throughput_mps)
                .ok_or_else(|| SandboxError::Config("throughput_mps must be at least 1".into()))?;
            let burst = NonZeroU32::new(number.throughput_burst.unwrap_or(number.throughput_mps))
                .ok_or_else(|| {
                SandboxError::Config("throughput_burst must be at least 1".into())
            })?;
            let limiter = RateLimiter::direct_with_clock(
                Quota::per_second(per_second).allow_burst(burst),
                clock.clone(),
            );
            wabas
                .entry(number.waba_id.clone())
                .or_default()
                .push(number.id.clone());
            numbers.insert(
                number.id.clone(),
                Number {
                    display_digits: number.display_digits(),
                    config: number.clone(),
                    limiter,
                },
            );
        }
        let mut store = TemplateStore::default();
        for template in &config.templates {
            let spec = TemplateSpec::from_config(template).map_err(SandboxError::Config)?;
            wabas.entry(spec.waba_id.clone()).or_default();
            store
                .by_waba
                .entry(spec.waba_id.clone())
                .or_default()
                .push(Arc::new(spec));
        }
        let period = Duration::from_millis(config.limits.pair_rate_period_ms);
        let pair_quota = Quota::with_period(period)
            .ok_or_else(|| {
                SandboxError::Config("limits.pair_rate_period_ms must be at least 1".into())
            })?
            .allow_burst(
                NonZeroU32::new(config.limits.pair_rate_burst).ok_or_else(|| {
                    SandboxError::Config("limits.pair_rate_burst must be at least 1".into())
                })?,
            );
        let callback = config.webhooks.callback_url.clone().map(|url| {
            Arc::new(CallbackTarget {
                url,
                app_secret: config.app_secret(),
            })
        });
        let webhooks = config.webhooks.clone();
        Ok(Shared {
            first_number: config.phone_numbers[0].id.clone(),
            number_order: config.phone_numbers.iter().map(|n| n.id.clone()).collect(),
            numbers,
            wabas,
            templates: RwLock::new(store),
            pair: RateLimiter::dashmap_with_clock(pair_quota, clock),
            windows: Mutex::new(HashMap::new()),
            record: Mutex::new(Record {
                next_seq: 1,
                ..Record::default()
            }),
            record_limit: config.record_limit,
            refused: Mutex::new(VecDeque::new()),
            send_chaos: Mutex::new(SendChaos {
                error_ratio: config.chaos.send_error_ratio,
                throttle: (config.chaos.throttle_for_ms > 0).then(|| {
                    let from =
                        instant_after(tokio::time::Instant::now(), config.chaos.throttle_after_ms);
                    (from, instant_after(from, config.chaos.throttle_for_ms))
                }),
            }),
            inbound: Mutex::new(VecDeque::new()),
            media: Mutex::new(HashMap::new()),
            user_ids: Mutex::new(HashMap::new()),
            callback: RwLock::new(callback),
            jobs,
            ids: IdGen::new(),
            stats: Stats::default(),
            tokens: config.tokens.clone(),
            undeliverable: config
                .undeliverable
                .iter()
                .filter_map(|n| normalise_recipient(n))
                .collect(),
            sync_failures: config.sync_failures,
            enforce_window: config.enforce_window,
            with_user_ids: config.user_ids,
            media_url_ttl: Duration::from_secs(config.media_url_ttl_secs),
            token_expires_at: config.token_expires_at,
            webhook_subscribed: config.webhook_subscribed,
            public_url: config.public_url.clone(),
            duplicate_ratio: config.chaos.duplicate_ratio,
            plan: PlanSettings {
                sent: Duration::from_millis(webhooks.sent_delay_ms),
                delivered: Duration::from_millis(webhooks.delivered_delay_ms),
                read: Duration::from_millis(webhooks.read_delay_ms),
                jitter: Duration::from_millis(webhooks.jitter_ms),
                read_ratio: webhooks.read_ratio,
                failure_ratio: config.chaos.failure_ratio,
                failure_codes: config.chaos.failure_codes.clone(),
                reorder_ratio: config.chaos.reorder_ratio,
            },
            verify_token: webhooks.verify_token.clone(),
            app_secret: config.app_secret(),
            webhooks,
        })
    }

    // -----------------------------------------------------------------------------------------
    // Auth and lookups

    /// Checks a bearer token: any non-empty token when none are configured, else one of them.
    pub fn check_token(&self, token: Option<&str>) -> Result<(), GraphError> {
        let Some(token) = token.map(str::trim).filter(|t| !t.is_empty()) else {
            return Err(GraphError::missing_token());
        };
        if self.tokens.is_empty() || self.tokens.iter().any(|t| t.expose() == token) {
            Ok(())
        } else {
            Err(GraphError::invalid_token())
        }
    }

    /// A configured phone number.
    pub fn number(&self, id: &str) -> Option<&Number> {
        self.numbers.get(id)
    }

    /// The configured numbers, in configuration order.
    pub fn numbers_in_order(&self) -> Vec<&Number> {
        self.number_order
            .iter()
            .filter_map(|id| self.numbers.get(id))
            .collect()
    }

    /// The WABA of the first configured number.
    pub fn first_waba(&self) -> String {
        self.numbers
            .get(&self.first_number)
            .map(|n| n.config.waba_id.clone())
            .unwrap_or_default()
    }

    /// True when the id is a WABA with numbers or templates.
    pub fn is_waba(&self, id: &str) -> bool {
        self.wabas.contains_key(id)
    }

    /// The numbers of a WABA.
    pub fn waba_numbers(&self, waba: &str) -> Vec<&Number> {
        self.wabas
            .get(waba)
            .map(|ids| ids.iter().filter_map(|id| self.numbers.get(id)).collect())
            .unwrap_or_default()
    }

    /// The template with this id, in any WABA.
    pub fn template_by_id(&self, id: &str) -> Option<Arc<TemplateSpec>> {
        let store = self.templates.read().unwrap_or_else(|p| p.into_inner());
        store
            .by_waba
            .values()
            .flatten()
            .find(|t| t.id == id)
            .cloned()
    }

    /// The templates of a WABA, in configuration order.
    pub fn templates_of(&self, waba: &str) -> Vec<Arc<TemplateSpec>> {
        let store = self.templates.read().unwrap_or_else(|p| p.into_inner());
        store.by_waba.get(waba).cloned().unwrap_or_default()
    }

    /// The current callback target.
    pub fn callback(&self) -> Option<Arc<CallbackTarget>> {
        self.callback
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Points webhooks at another URL and secret (or nowhere).
    pub fn set_callback(&self, target: Option<CallbackTarget>) {
        *self.callback.write().unwrap_or_else(|p| p.into_inner()) = target.map(Arc::new);
    }

    fn user_id(&self, waba: &str, wa_id: &str) -> Option<String> {
        if !self.with_user_ids {
            return None;
        }
        let key = format!("{waba}\u{1f}{wa_id}");
        let mut cache = lock(&self.user_ids);
        Some(
            cache
                .entry(key)
                .or_insert_with(|| ids::business_scoped_user_id(waba, wa_id))
                .clone(),
        )
    }

    fn window_key(phone_number_id: &str, wa_id: &str) -> String {
        format!("{phone_number_id}\u{1f}{wa_id}")
    }

    /// True when the user wrote to this number in the last 24 hours.
    pub fn window_open(&self, phone_number_id: &str, wa_id: &str) -> bool {
        lock(&self.windows)
            .get(&Self::window_key(phone_number_id, wa_id))
            .is_some_and(|last| last.elapsed() < SERVICE_WINDOW)
    }

    // -----------------------------------------------------------------------------------------
    // Sending

    /// Validates, rate-limits, records and schedules one send. `version` is the path's Graph
    /// API version (`v25.0`).
    pub fn accept_send(
        &self,
        phone_number_id: &str,
        version: &str,
        body: Bytes,
    ) -> Result<SendAccepted, GraphError> {
        let result = self.accept_send_inner(phone_number_id, version, body);
        match &result {
            Ok(_) => {
                self.stats.accepted.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => self.stats.reject(e.code),
        }
        result
    }

    fn accept_send_inner(
        &self,
        phone_number_id: &str,
        version: &str,
        body: Bytes,
    ) -> Result<SendAccepted, GraphError> {
        let number = self
            .numbers
            .get(phone_number_id)
            .ok_or_else(|| GraphError::unknown_object("POST", phone_number_id))?;
        let waba = number.config.waba_id.as_str();
        let send: ValidSend = {
            let store = self.templates.read().unwrap_or_else(|p| p.into_inner());
            let find = |name: &str, language: &str| store.find(waba, name, language);
            let languages = |name: &str| {
                store
                    .by_waba
                    .get(waba)
                    .map(|list| {
                        list.iter()
                            .filter(|t| t.name == name)
                            .map(|t| t.language.clone())
                            .collect()
                    })
                    .unwrap_or_default()
            };
            let ctx = SendContext {
                business_digits: &number.display_digits,
                find_template: &find,
                template_languages: &languages,
            };
            validate::validate_send(&body, &ctx)?
        };

        let refuse = |error: GraphError| {
            self.record_refusal(phone_number_id, &send, &error);
            error
        };
        // Meta having a bad moment: before the limits, so a refused send uses up neither.
        if let Some(error) = self.send_chaos_error() {
            return Err(refuse(error));
        }
        if number.limiter.check().is_err() {
            return Err(refuse(GraphError::throughput()));
        }
        let pair_key = Self::window_key(phone_number_id, &send.wa_id);
        if self.pair.check_key(&pair_key).is_err() {
            return Err(refuse(GraphError::pair_rate()));
        }

        let in_window = self.window_open(phone_number_id, &send.wa_id);
        let mut failure = None;
        if self.undeliverable.contains(&send.wa_id) {
            failure = Some(GraphError::undeliverable());
        } else if send.is_free_form() && self.enforce_window && !in_window {
            failure = Some(GraphError::re_engagement());
        }
        if self.sync_failures {
            if let Some(error) = failure {
                return Err(refuse(error));
            }
        }
        if failure.is_none() {
            failure = self.media_failure(&send.media_ids);
        }

        let wamid = self.ids.outbound_wamid(&send.wa_id);
        let category = send.pricing_category();
        let pricing_type = if category == "service" || (category == "utility" && in_window) {
            "free_customer_service"
        } else {
            "regular"
        };
        let conversation = graph_major(version)
            .filter(|major| *major < 24)
            .map(|_| Conversation {
                id: self.ids.conversation_id(),
                expiration_timestamp: now_ms() / 1000 + SERVICE_WINDOW.as_secs(),
            });
        let response = json!({
            "messaging_product": "whatsapp",
            "contacts": [{"input": send.input, "wa_id": send.wa_id}],
            "messages": [if send.template.is_some() {
                json!({"id": wamid, "message_status": "accepted"})
            } else {
                json!({"id": wamid})
            }],
        });
        let response = serde_json::to_vec(&response).unwrap_or_default();

        let facts = Arc::new(OutboundFacts {
            business: number.business(),
            wamid: wamid.clone(),
            recipient_user_id: self.user_id(waba, &send.wa_id),
            recipient_id: send.wa_id.clone(),
            callback_data: send.callback_data.clone(),
            category,
            pricing_type: pricing_type.to_string(),
            conversation,
            failure,
        });
        let plan = webhook::plan_statuses(&facts, &self.plan, &mut fastrand::Rng::new());
        {
            let mut record = lock(&self.record);
            let seq = record.next_seq;
            record.next_seq += 1;
            record.by_wamid.insert(wamid.clone(), seq);
            record.entries.push_back(RecordedMessage {
                seq,
                wamid: wamid.clone(),
                phone_number_id: phone_number_id.to_string(),
                graph_version: version.to_string(),
                to: send.input,
                wa_id: send.wa_id,
                kind: send.kind,
                callback_data: send.callback_data,
                accepted_at_ms: now_ms(),
                status: StatusKind::Accepted,
                statuses: Vec::new(),
                error_code: None,
                // A copy of exactly the body: the request's buffer may be a slice of a much
                // larger connection buffer, which the record would otherwise keep alive.
                body: Bytes::copy_from_slice(&body),
            });
            while record.entries.len() > self.record_limit {
                if let Some(old) = record.entries.pop_front() {
                    record.by_wamid.remove(&old.wamid);
                }
            }
        }
        self.stats
            .statuses_pending
            .fetch_add(plan.len() as u64, Ordering::Relaxed);
        if self
            .jobs
            .send(Job::Statuses {
                facts,
                plan,
                accepted: tokio::time::Instant::now(),
            })
            .is_err()
        {
            tracing::warn!(%wamid, "the sandbox's webhook task has stopped: this message's statuses will not be sent");
        }
        Ok(SendAccepted { body: response })
    }

    /// The asynchronous failure for media ids that are unknown or of the wrong type.
    fn media_failure(&self, media_ids: &[(String, String)]) -> Option<GraphError> {
        if media_ids.is_empty() {
            return None;
        }
        let media = lock(&self.media);
        for (id, kind) in media_ids {
            match media.get(id) {
                None => {
                    return Some(GraphError::media_upload(format!(
                        "Media id {id} was not found: upload the file first (media ids expire after 30 days)."
                    )))
                }
                Some(item) if item.media_kind() != kind && !(kind == "image" && item.media_kind() == "sticker") => {
                    return Some(GraphError::media_upload(format!(
                        "Media id {id} is {} ({}), which cannot be sent as {kind}.",
                        item.mime_type,
                        item.media_kind()
                    )))
                }
                Some(_) => {}
            }
        }
        None
    }

    /// The error the send chaos answers this send with, if any: 130429 inside the throttle
    /// window, else 131000 (HTTP 500) for `send_error_ratio` of the sends.
    fn send_chaos_error(&self) -> Option<GraphError> {
        let chaos = *lock(&self.send_chaos);
        let now = tokio::time::Instant::now();
        if chaos
            .throttle
            .is_some_and(|(from, until)| from <= now && now < until)
        {
            return Some(GraphError::throughput());
        }
        if chaos.error_ratio > 0.0 && fastrand::f64() < chaos.error_ratio {
            return Some(GraphError::for_code(131000));
        }
        None
    }

    /// Keeps a refused send in the list of refusals (at most `record_limit`, the newest).
    fn record_refusal(&self, phone_number_id: &str, send: &ValidSend, error: &GraphError) {
        let mut refused = lock(&self.refused);
        refused.push_back(RefusedSend {
            at_ms: now_ms(),
            phone_number_id: phone_number_id.to_string(),
            wa_id: send.wa_id.clone(),
            callback_data: send.callback_data.clone(),
            code: error.code,
            http_status: error.http_status.as_u16(),
        });
        while refused.len() > self.record_limit {
            refused.pop_front();
        }
    }

    /// Refused sends, oldest first (at most `limit`, the newest ones).
    pub fn refused(&self, limit: usize) -> Vec<RefusedSend> {
        let refused = lock(&self.refused);
        let skip = refused.len().saturating_sub(limit);
        refused.iter().skip(skip).cloned().collect()
    }

    /// Changes the send chaos (see [`ChaosUpdate`]); the chaos now in force.
    pub fn set_chaos(&self, update: &ChaosUpdate) -> Result<Value, String> {
        if let Some(ratio) = update.send_error_ratio {
            if !(0.0..=1.0).contains(&ratio) {
                return Err(format!("send_error_ratio = {ratio} is not between 0 and 1"));
            }
        }
        if update.throttle_after_ms.is_some() && update.throttle_for_ms.is_none() {
            return Err(
                "throttle_after_ms needs throttle_for_ms: how long sends are answered 130429"
                    .into(),
            );
        }
        {
            let mut chaos = lock(&self.send_chaos);
            if let Some(ratio) = update.send_error_ratio {
                chaos.error_ratio = ratio;
            }
            if let Some(duration) = update.throttle_for_ms {
                chaos.throttle = (duration > 0).then(|| {
                    let from = instant_after(
                        tokio::time::Instant::now(),
                        update.throttle_after_ms.unwrap_or(0),
                    );
                    (from, instant_after(from, duration))
                });
            }
        }
        Ok(self.chaos_json())
    }

    /// The send chaos in force, as `GET /sandbox/chaos` answers it: `send_error_ratio`, and
    /// the throttle window relative to now (`null` when there is none or it is over).
    pub fn chaos_json(&self) -> Value {
        let chaos = *lock(&self.send_chaos);
        let now = tokio::time::Instant::now();
        let throttle = chaos
            .throttle
            .filter(|(_, until)| now < *until)
            .map(|(from, until)| {
                json!({
                    "starts_in_ms": from.saturating_duration_since(now).as_millis() as u64,
                    "ends_in_ms": until.saturating_duration_since(now).as_millis() as u64,
                    "active": from <= now,
                })
            });
        json!({"send_error_ratio": chaos.error_ratio, "throttle": throttle})
    }

    /// Records an emitted status (called by the webhook task).
    pub fn record_status(&self, wamid: &str, event: &StatusEvent) {
        self.stats.statuses_emitted.fetch_add(1, Ordering::Relaxed);
        self.stats.statuses_pending.fetch_sub(1, Ordering::Relaxed);
        let mut record = lock(&self.record);
        if let Some(entry) = record.get_mut(wamid) {
            entry.statuses.push((event.kind, now_ms()));
            if event.kind == StatusKind::Failed {
                entry.status = StatusKind::Failed;
                entry.error_code = event.error.as_ref().map(|e| e.code);
            } else if entry.status != StatusKind::Failed && event.kind > entry.status {
                entry.status = event.kind;
            }
        }
    }

    /// Drops what no longer matters: pair-rate buckets that are full again and 24-hour windows
    /// that have closed. Called periodically by the webhook task.
    pub fn housekeeping(&self) {
        self.pair.retain_recent();
        self.pair.shrink_to_fit();
        lock(&self.windows).retain(|_, last| last.elapsed() < SERVICE_WINDOW);
        let mut user_ids = lock(&self.user_ids);
        if user_ids.len() > USER_ID_CACHE_MAX {
            user_ids.clear();
            user_ids.shrink_to_fit();
        }
    }

    /// Recorded messages matching a filter.
    pub fn messages(&self, filter: &RecordFilter) -> Result<Vec<RecordedMessage>, String> {
        let since = filter.since_ms()?;
        let to = match &filter.to {
            Some(to) => Some(
                normalise_recipient(to)
                    .ok_or_else(|| format!("to={to:?} is not a phone number"))?,
            ),
            None => None,
        };
        let limit = filter.limit.unwrap_or(100).min(10_000);
        let descending = match filter.order.as_deref() {
            None | Some("asc") => false,
            Some("desc") => true,
            Some(other) => return Err(format!("order={other:?} must be asc or desc")),
        };
        let record = lock(&self.record);
        let matches = |m: &&RecordedMessage| {
            to.as_ref().is_none_or(|to| &m.wa_id == to)
                && since.is_none_or(|since| m.accepted_at_ms >= since)
                && filter.after_seq.is_none_or(|after| m.seq > after)
                && filter.wamid.as_ref().is_none_or(|w| &m.wamid == w)
                && filter
                    .callback_data
                    .as_ref()
                    .is_none_or(|c| m.callback_data.as_ref() == Some(c))
                && filter.kind.as_ref().is_none_or(|k| &m.kind == k)
                && filter
                    .phone_number_id
                    .as_ref()
                    .is_none_or(|p| &m.phone_number_id == p)
        };
        let out = if descending {
            record
                .entries
                .iter()
                .rev()
                .filter(matches)
                .take(limit)
                .cloned()
                .collect()
        } else {
            record
                .entries
                .iter()
                .filter(matches)
                .take(limit)
                .cloned()
                .collect()
        };
        Ok(out)
    }

    /// How many messages the record holds, and how many were ever accepted.
    pub fn record_counts(&self) -> (usize, u64) {
        let record = lock(&self.record);
        (record.entries.len(), record.next_seq - 1)
    }

    // -----------------------------------------------------------------------------------------
    // Media

    /// Stores an uploaded file after the type and size checks.
    pub fn upload_media(&self, mime_type: &str, bytes: Bytes) -> Result<String, GraphError> {
        // The client's rules (fact sheet section 2): the kind from the MIME type, then its
        // type and size checks (static stickers 100 KB, animated 500 KB).
        let mime = normalize_mime(mime_type);
        let Some(kind) = MediaKind::for_mime_type(&mime) else {
            let accepted: Vec<&str> = MediaKind::ALL
                .iter()
                .flat_map(|k| k.allowed_mime_types().iter().copied())
                .collect();
            return Err(GraphError::invalid_parameter(format!(
                "Param file must be a file with one of the following types: {}. Received file of type '{mime}'.",
                accepted.join(", ")
            )));
        };
        check_upload(kind, &mime, &bytes).map_err(|e| match e {
            MediaError::WrongType { .. } => GraphError::invalid_parameter(e.to_string()),
            _ => GraphError::media_upload(e.to_string()),
        })?;
        let id = self.ids.media_id();
        let item = MediaItem {
            id: id.clone(),
            mime_type: mime,
            sha256: content_sha256(&bytes),
            bytes,
            url_key: self.ids.url_key(),
        };
        lock(&self.media).insert(id.clone(), Arc::new(item));
        self.stats.media_uploaded.fetch_add(1, Ordering::Relaxed);
        Ok(id)
    }

    /// An uploaded file.
    pub fn media(&self, id: &str) -> Option<Arc<MediaItem>> {
        lock(&self.media).get(id).cloned()
    }

    /// Deletes an uploaded file; false when there was none.
    pub fn delete_media(&self, id: &str) -> bool {
        lock(&self.media).remove(id).is_some()
    }

    // -----------------------------------------------------------------------------------------
    // Templates

    /// Changes a template's status and sends Meta's `message_template_status_update` webhook.
    pub fn set_template_status(
        &self,
        waba: &str,
        name: &str,
        language: &str,
        status: &str,
        reason: Option<&str>,
    ) -> Result<Value, SandboxError> {
        let status = status.trim().to_ascii_uppercase();
        if status.is_empty() {
            return Err(SandboxError::Inject(
                "status is empty: give APPROVED, PAUSED, DISABLED, REJECTED, ...".into(),
            ));
        }
        let updated = {
            let mut store = self.templates.write().unwrap_or_else(|p| p.into_inner());
            let list = store
                .by_waba
                .get_mut(waba)
                .ok_or_else(|| SandboxError::Inject(format!("no WABA {waba:?} in the sandbox")))?;
            let slot = list
                .iter_mut()
                .find(|t| t.name == name && t.language == language)
                .ok_or_else(|| {
                    SandboxError::Inject(format!("no template {name} ({language}) in WABA {waba}"))
                })?;
            let mut spec = TemplateSpec::clone(slot);
            spec.status = status.clone();
            *slot = Arc::new(spec);
            Arc::clone(slot)
        };
        let change = webhook::template_status_change(
            &status,
            &updated.id,
            &updated.name,
            &updated.language,
            &updated.category,
            reason.unwrap_or("NONE"),
        );
        let body = webhook::envelope_at(waba, now_ms() / 1000, vec![change]);
        self.queue_payload(body.clone());
        Ok(updated.listing_json())
    }

    // -----------------------------------------------------------------------------------------
    // Inbound

    fn queue_payload(&self, body: Value) -> bool {
        if self.callback().is_none() {
            return false;
        }
        self.jobs.send(Job::Payload { body }).is_ok()
    }

    /// Injects an inbound message: builds Meta's webhook, opens the 24-hour window, queues the
    /// webhook for the callback URL.
    pub fn inject(&self, request: &InjectRequest) -> Result<InjectOutcome, SandboxError> {
        let number_id = request
            .phone_number_id
            .clone()
            .unwrap_or_else(|| self.first_number.clone());
        let number = self.numbers.get(&number_id).ok_or_else(|| {
            SandboxError::Inject(format!(
                "phone_number_id {number_id:?} is not configured in the sandbox (configured: {})",
                self.numbers.keys().cloned().collect::<Vec<_>>().join(", ")
            ))
        })?;
        let wa_id = normalise_recipient(&request.from).ok_or_else(|| {
            SandboxError::Inject(format!(
                "from {:?} is not a phone number: write it as +<country code><number>, e.g. +2250700000001",
                request.from
            ))
        })?;
        let given = [
            request.text.is_some(),
            request.button_reply.is_some(),
            request.list_reply.is_some(),
            request.button.is_some(),
        ]
        .iter()
        .filter(|b| **b)
        .count();
        if given != 1 {
            return Err(SandboxError::Inject(
                "give exactly one of text, button_reply, list_reply or button".into(),
            ));
        }
        let business = number.business();
        let (content, context_wamid) = if let Some(text) = &request.text {
            if text.is_empty() {
                return Err(SandboxError::Inject("text is empty".into()));
            }
            (InboundContent::Text(text.clone()), request.context.clone())
        } else if let Some(reply) = &request.button_reply {
            let found = self.find_sent(&number_id, &wa_id, |payload| {
                find_reply_button(payload, &reply.id)
            });
            let (title, wamid) = match (found, &reply.title) {
                (Some((found_title, wamid)), title) => (title.clone().unwrap_or(found_title), Some(wamid)),
                (None, Some(title)) => (title.clone(), request.context.clone()),
                (None, None) => {
                    return Err(SandboxError::Inject(format!(
                        "no interactive message with a reply button {:?} was sent to +{wa_id}: send one first, or give its title to inject the reply anyway",
                        reply.id
                    )))
                }
            };
            (
                InboundContent::ButtonReply {
                    id: reply.id.clone(),
                    title,
                },
                wamid,
            )
        } else if let Some(row) = &request.list_reply {
            let found = self.find_sent(&number_id, &wa_id, |payload| {
                find_list_row(payload, &row.id)
            });
            let (title, description, wamid) = match (found, &row.title) {
                (Some(((found_title, found_description), wamid)), title) => (
                    title.clone().unwrap_or(found_title),
                    row.description.clone().or(found_description),
                    Some(wamid),
                ),
                (None, Some(title)) => (title.clone(), row.description.clone(), request.context.clone()),
                (None, None) => {
                    return Err(SandboxError::Inject(format!(
                        "no interactive list with a row {:?} was sent to +{wa_id}: send one first, or give its title to inject the reply anyway",
                        row.id
                    )))
                }
            };
            (
                InboundContent::ListReply {
                    id: row.id.clone(),
                    title,
                    description,
                },
                wamid,
            )
        } else if let Some(button) = &request.button {
            let store_waba = number.config.waba_id.clone();
            let found = self.find_sent(&number_id, &wa_id, |payload| {
                self.find_quick_reply(&store_waba, payload, &button.payload)
            });
            let (text, wamid) = match (found, &button.text) {
                (Some((found_text, wamid)), text) => (text.clone().unwrap_or(found_text), Some(wamid)),
                (None, Some(text)) => (text.clone(), request.context.clone()),
                (None, None) => {
                    return Err(SandboxError::Inject(format!(
                        "no template with a quick-reply payload {:?} was sent to +{wa_id}: send one first, or give the button text to inject the tap anyway",
                        button.payload
                    )))
                }
            };
            (
                InboundContent::TemplateButton {
                    payload: button.payload.clone(),
                    text,
                },
                wamid,
            )
        } else {
            return Err(SandboxError::Inject("nothing to inject".into()));
        };

        // Inbound messages count against the number's throughput, as at Meta.
        let _ = number.limiter.check();
        lock(&self.windows).insert(
            Self::window_key(&number_id, &wa_id),
            tokio::time::Instant::now(),
        );

        let contact = Contact {
            wa_id: wa_id.clone(),
            name: request
                .name
                .clone()
                .unwrap_or_else(|| "Sandbox User".to_string()),
            user_id: self.user_id(&business.waba_id, &wa_id),
        };
        let wamid = self.ids.inbound_wamid(&wa_id);
        let at_ms = now_ms();
        let context = context_wamid
            .as_deref()
            .map(|id| (business.display_digits.as_str(), id));
        let message =
            webhook::inbound_message_json(&contact, &wamid, at_ms / 1000, &content, context);
        let body = webhook::envelope(
            &business.waba_id,
            vec![webhook::inbound_change(&business, &contact, message)],
        );
        let queued = self.queue_payload(body.clone());
        self.stats.inbound_injected.fetch_add(1, Ordering::Relaxed);
        {
            let mut inbound = lock(&self.inbound);
            inbound.push_back(InboundRecord {
                wamid: wamid.clone(),
                from: wa_id,
                phone_number_id: number_id,
                at_ms,
                webhook: body.clone(),
            });
            while inbound.len() > self.record_limit {
                inbound.pop_front();
            }
        }
        Ok(InjectOutcome {
            wamid,
            webhook: body,
            queued,
        })
    }

    /// Injected inbound messages, oldest first (at most `limit`, the newest ones).
    pub fn inbound(&self, limit: usize) -> Vec<InboundRecord> {
        let inbound = lock(&self.inbound);
        let skip = inbound.len().saturating_sub(limit);
        inbound.iter().skip(skip).cloned().collect()
    }

    /// Searches the newest messages sent to a user for one `matcher` recognises.
    fn find_sent<T>(
        &self,
        number_id: &str,
        wa_id: &str,
        matcher: impl Fn(&Value) -> Option<T>,
    ) -> Option<(T, String)> {
        let candidates: Vec<(Bytes, String)> = {
            let record = lock(&self.record);
            record
                .entries
                .iter()
                .rev()
                .filter(|m| m.wa_id == wa_id && m.phone_number_id == number_id)
                .filter(|m| m.kind == "interactive" || m.kind == "template")
                .take(200)
                .map(|m| (m.body.clone(), m.wamid.clone()))
                .collect()
        };
        candidates.into_iter().find_map(|(body, wamid)| {
            let payload: Value = serde_json::from_slice(&body).ok()?;
            matcher(&payload).map(|found| (found, wamid))
        })
    }

    /// The text of a template quick-reply button whose send carried this payload.
    fn find_quick_reply(&self, waba: &str, payload: &Value, wanted: &str) -> Option<String> {
        let template = payload.get("template")?;
        let components = template.get("components")?.as_array()?;
        let index = components.iter().find_map(|c| {
            let is_quick_reply = c
                .get("sub_type")
                .and_then(Value::as_str)?
                .eq_ignore_ascii_case("quick_reply");
            let matches = c
                .get("parameters")?
                .as_array()?
                .iter()
                .any(|p| p.get("payload").and_then(Value::as_str) == Some(wanted));
            if !(is_quick_reply && matches) {
                return None;
            }
            match c.get("index")? {
                Value::String(s) => s.parse::<usize>().ok(),
                Value::Number(n) => n.as_u64().map(|n| n as usize),
                _ => None,
            }
        })?;
        let name = template.get("name")?.as_str()?;
        let language = template.get("language")?.get("code")?.as_str()?;
        let store = self.templates.read().unwrap_or_else(|p| p.into_inner());
        let spec = store.find(waba, name, language)?;
        spec.buttons.get(index).map(|b| b.text.clone())
    }
}

/// The title of the reply button `id` in an interactive button message.
fn find_reply_button(payload: &Value, id: &str) -> Option<String> {
    let interactive = payload.get("interactive")?;
    if interactive.get("type")?.as_str()? != "button" {
        return None;
    }
    interactive
        .get("action")?
        .get("buttons")?
        .as_array()?
        .iter()
        .filter_map(|b| b.get("reply"))
        .find(|r| r.get("id").and_then(Value::as_str) == Some(id))
        .and_then(|r| r.get("title")?.as_str().map(str::to_string))
}

/// The title and description of the row `id` in an interactive list.
fn find_list_row(payload: &Value, id: &str) -> Option<(String, Option<String>)> {
    let interactive = payload.get("interactive")?;
    if interactive.get("type")?.as_str()? != "list" {
        return None;
    }
    interactive
        .get("action")?
        .get("sections")?
        .as_array()?
        .iter()
        .filter_map(|s| s.get("rows")?.as_array())
        .flatten()
        .find(|r| r.get("id").and_then(Value::as_str) == Some(id))
        .and_then(|r| {
            let title = r.get("title")?.as_str()?.to_string();
            let description = r
                .get("description")
                .and_then(Value::as_str)
                .map(str::to_string);
            Some((title, description))
        })
}

/// The major number of a Graph API version (`v25.0` → 25).
pub fn graph_major(version: &str) -> Option<u32> {
    let rest = version.strip_prefix('v')?;
    let (major, minor) = rest.split_once('.')?;
    if minor.is_empty() || !minor.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    major.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::config::SandboxConfig;

    fn shared(config: SandboxConfig) -> (Shared, mpsc::UnboundedReceiver<Job>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Shared::new(&config, tx).unwrap(), rx)
    }

    fn text_to(to: &str) -> Bytes {
        Bytes::from(
            json!({"messaging_product": "whatsapp", "to": to, "type": "text", "text": {"body": "hi"}}).to_string(),
        )
    }

    fn template_to(to: &str) -> Bytes {
        Bytes::from(
            json!({"messaging_product": "whatsapp", "to": to, "type": "template",
                   "template": {"name": "sidecar_hello", "language": {"code": "en_US"}}})
            .to_string(),
        )
    }

    impl SendAccepted {
        fn wamid(&self) -> String {
            let v: Value = serde_json::from_slice(&self.body).unwrap();
            v["messages"][0]["id"].as_str().unwrap().to_string()
        }
    }

    fn inject_text(s: &Shared, from: &str) {
        s.inject(&InjectRequest {
            from: from.into(),
            text: Some("hi".into()),
            ..Default::default()
        })
        .unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn throughput_bucket_refuses_past_the_rate_and_refills() {
        let mut config = SandboxConfig::default();
        config.phone_numbers[0].throughput_mps = 10;
        config.limits.pair_rate_burst = 1000;
        let (s, _rx) = shared(config);
        let mut codes = Vec::new();
        for i in 0..15 {
            let to = format!("+2250700000{:03}", i);
            codes.push(
                s.accept_send("sandbox-0001", "v25.0", template_to(&to))
                    .err()
                    .map(|e| e.code),
            );
        }
        assert_eq!(codes.iter().filter(|c| c.is_none()).count(), 10);
        assert!(codes[10..].iter().all(|c| *c == Some(130429)));
        assert_eq!(s.stats.rejected(130429), 5);

        tokio::time::advance(Duration::from_millis(100)).await;
        assert!(s
            .accept_send("sandbox-0001", "v25.0", template_to("+2250700000100"))
            .is_ok());
        assert_eq!(
            s.accept_send("sandbox-0001", "v25.0", template_to("+2250700000101"))
                .err()
                .map(|e| e.code),
            Some(130429)
        );
        tokio::time::advance(Duration::from_secs(1)).await;
        for i in 0..10 {
            let to = format!("+2250700001{:03}", i);
            assert!(s
                .accept_send("sandbox-0001", "v25.0", template_to(&to))
                .is_ok());
        }
    }

    fn template_with_callback(to: &str, data: &str) -> Bytes {
        Bytes::from(
            json!({"messaging_product": "whatsapp", "to": to, "type": "template",
                   "biz_opaque_callback_data": data,
                   "template": {"name": "sidecar_hello", "language": {"code": "en_US"}}})
            .to_string(),
        )
    }

    #[tokio::test(start_paused = true)]
    async fn a_send_answered_500_is_not_accepted_and_is_listed_as_refused() {
        let mut config = SandboxConfig::default();
        config.chaos.send_error_ratio = 1.0;
        let (s, mut rx) = shared(config);
        let e = s
            .accept_send(
                "sandbox-0001",
                "v25.0",
                template_with_callback("+2250700000001", "42"),
            )
            .err()
            .unwrap();
        assert_eq!(e.code, 131000);
        assert_eq!(e.http_status, axum::http::StatusCode::INTERNAL_SERVER_ERROR);
        let body = e.to_json("T");
        assert_eq!(body["error"]["message"], "(#131000) Something went wrong");
        assert_eq!(
            body["error"]["error_data"]["details"],
            "Message failed to send due to an unknown error."
        );
        // Not accepted: nothing recorded, no webhook planned, counted as refused.
        assert_eq!(s.record_counts(), (0, 0));
        assert!(rx.try_recv().is_err(), "no statuses for a refused send");
        assert_eq!(s.stats.rejected(131000), 1);
        assert_eq!(s.stats.accepted.load(Ordering::Relaxed), 0);
        let refused = s.refused(10);
        assert_eq!(refused.len(), 1);
        assert_eq!(refused[0].callback_data.as_deref(), Some("42"));
        assert_eq!(refused[0].wa_id, "2250700000001");
        assert_eq!((refused[0].code, refused[0].http_status), (131000, 500));
        // A malformed send still gets its own 400, not the chaos.
        let bad = Bytes::from_static(b"{\"messaging_product\": \"whatsapp\"}");
        let e = s.accept_send("sandbox-0001", "v25.0", bad).err().unwrap();
        assert_ne!(e.code, 131000);
        assert_eq!(s.refused(10).len(), 1, "validation errors are not listed");

        // Turned off while running: the same recipient goes through at once (the refused
        // send used up neither the throughput nor the pair rate).
        s.set_chaos(&ChaosUpdate {
            send_error_ratio: Some(0.0),
            ..ChaosUpdate::default()
        })
        .unwrap();
        assert!(s
            .accept_send(
                "sandbox-0001",
                "v25.0",
                template_with_callback("+2250700000001", "42")
            )
            .is_ok());
        assert_eq!(s.record_counts(), (1, 1));
    }

    #[tokio::test(start_paused = true)]
    async fn the_send_error_ratio_is_the_share_of_sends_refused() {
        let mut config = SandboxConfig::default();
        config.chaos.send_error_ratio = 0.2;
        config.phone_numbers[0].throughput_mps = 10_000;
        let (s, _rx) = shared(config);
        for i in 0..2000 {
            let _ = s.accept_send(
                "sandbox-0001",
                "v25.0",
                template_to(&format!("+225070{i:07}")),
            );
        }
        let refused = s.stats.rejected(131000);
        // 400 expected; the binomial's standard deviation is about 18.
        assert!((300..=500).contains(&refused), "{refused} of 2000 refused");
        assert_eq!(s.record_counts().0 as u64 + refused, 2000);
    }

    #[tokio::test(start_paused = true)]
    async fn the_throttle_window_answers_130429_then_ends() {
        let mut config = SandboxConfig::default();
        config.chaos.throttle_after_ms = 1_000;
        config.chaos.throttle_for_ms = 2_000;
        let (s, _rx) = shared(config);
        let code = |s: &Shared, to: &str| {
            s.accept_send("sandbox-0001", "v25.0", template_to(to))
                .err()
                .map(|e| e.code)
        };
        assert_eq!(code(&s, "+2250700000001"), None);
        tokio::time::advance(Duration::from_millis(1_000)).await;
        assert_eq!(s.chaos_json()["throttle"]["active"], true);
        for i in 2..20 {
            assert_eq!(code(&s, &format!("+22507000000{i:02}")), Some(130429));
        }
        tokio::time::advance(Duration::from_millis(1_999)).await;
        assert_eq!(code(&s, "+2250700000020"), Some(130429));
        tokio::time::advance(Duration::from_millis(1)).await;
        assert_eq!(s.chaos_json()["throttle"], Value::Null);
        // Over: the recipients refused during it go through (their pair rate was not used).
        for i in 2..20 {
            assert_eq!(code(&s, &format!("+22507000000{i:02}")), None);
        }
        assert_eq!(s.stats.rejected(130429), 19);
        assert_eq!(s.refused(100).len(), 19);

        // Started while running, from now on, and ended early.
        let now = s
            .set_chaos(&ChaosUpdate {
                throttle_for_ms: Some(60_000),
                ..ChaosUpdate::default()
            })
            .unwrap();
        assert_eq!(now["throttle"]["ends_in_ms"], 60_000);
        assert_eq!(code(&s, "+2250700000050"), Some(130429));
        s.set_chaos(&ChaosUpdate {
            throttle_for_ms: Some(0),
            ..ChaosUpdate::default()
        })
        .unwrap();
        assert_eq!(code(&s, "+2250700000050"), None);
        // A window that starts later.
        s.set_chaos(&ChaosUpdate {
            throttle_after_ms: Some(500),
            throttle_for_ms: Some(500),
            ..ChaosUpdate::default()
        })
        .unwrap();
        assert_eq!(code(&s, "+2250700000051"), None);
        tokio::time::advance(Duration::from_millis(500)).await;
        assert_eq!(code(&s, "+2250700000052"), Some(130429));
    }

    #[tokio::test(start_paused = true)]
    async fn bad_chaos_changes_are_refused_with_the_reason() {
        let (s, _rx) = shared(SandboxConfig::default());
        let e = s
            .set_chaos(&ChaosUpdate {
                send_error_ratio: Some(1.5),
                ..ChaosUpdate::default()
            })
            .unwrap_err();
        assert!(e.contains("send_error_ratio"), "{e}");
        let e = s
            .set_chaos(&ChaosUpdate {
                throttle_after_ms: Some(10),
                ..ChaosUpdate::default()
            })
            .unwrap_err();
        assert!(e.contains("throttle_for_ms"), "{e}");
        assert_eq!(
            s.chaos_json(),
            json!({"send_error_ratio": 0.0, "throttle": null})
        );
    }

    #[tokio::test(start_paused = true)]
    async fn pair_rate_is_per_recipient_and_recovers_after_the_period() {
        let (s, _rx) = shared(SandboxConfig::default());
        assert!(s
            .accept_send("sandbox-0001", "v25.0", template_to("+2250700000001"))
            .is_ok());
        let e = s
            .accept_send("sandbox-0001", "v25.0", template_to("+2250700000001"))
            .err()
            .unwrap();
        assert_eq!(e.code, 131056);
        assert!(s
            .accept_send("sandbox-0001", "v25.0", template_to("+2250700000002"))
            .is_ok());
        tokio::time::advance(Duration::from_millis(5_900)).await;
        assert_eq!(
            s.accept_send("sandbox-0001", "v25.0", template_to("+2250700000001"))
                .err()
                .map(|e| e.code),
            Some(131056)
        );
        tokio::time::advance(Duration::from_millis(200)).await;
        assert!(s
            .accept_send("sandbox-0001", "v25.0", template_to("+2250700000001"))
            .is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn the_window_opens_on_inbound_and_closes_after_24_hours() {
        let mut config = SandboxConfig {
            sync_failures: true,
            ..SandboxConfig::default()
        };
        config.limits.pair_rate_burst = 100;
        let (s, _rx) = shared(config);
        assert_eq!(
            s.accept_send("sandbox-0001", "v25.0", text_to("+2250700000001"))
                .err()
                .map(|e| e.code),
            Some(131047)
        );
        inject_text(&s, "+2250700000001");
        assert!(s
            .accept_send("sandbox-0001", "v25.0", text_to("+2250700000001"))
            .is_ok());
        tokio::time::advance(SERVICE_WINDOW - Duration::from_secs(1)).await;
        assert!(s
            .accept_send("sandbox-0001", "v25.0", text_to("+2250700000001"))
            .is_ok());
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(
            s.accept_send("sandbox-0001", "v25.0", text_to("+2250700000001"))
                .err()
                .map(|e| e.code),
            Some(131047)
        );
        // Templates need no window.
        assert!(s
            .accept_send("sandbox-0001", "v25.0", template_to("+2250700000001"))
            .is_ok());
    }

    #[tokio::test(start_paused = true)]
    async fn async_failures_are_planned_as_failed_statuses() {
        let config = SandboxConfig {
            undeliverable: vec!["+2250700000009".into()],
            ..SandboxConfig::default()
        };
        let (s, mut rx) = shared(config);
        s.accept_send("sandbox-0001", "v25.0", text_to("+2250700000001"))
            .unwrap();
        s.accept_send("sandbox-0001", "v25.0", template_to("+2250700000009"))
            .unwrap();
        let mut codes = Vec::new();
        while let Ok(job) = rx.try_recv() {
            if let Job::Statuses { plan, .. } = job {
                assert_eq!(plan.len(), 1);
                codes.push(plan[0].1.error.as_ref().map(|e| e.code));
            }
        }
        assert_eq!(codes, vec![Some(131047), Some(131026)]);
    }

    #[tokio::test]
    async fn the_record_keeps_accepted_messages_and_their_statuses() {
        let mut config = SandboxConfig {
            record_limit: 3,
            ..SandboxConfig::default()
        };
        config.limits.pair_rate_burst = 100;
        let (s, _rx) = shared(config);
        let mut wamids = Vec::new();
        for i in 0..5 {
            let to = format!("+22507000000{i:02}");
            wamids.push(
                s.accept_send("sandbox-0001", "v25.0", template_to(&to))
                    .unwrap()
                    .wamid(),
            );
        }
        assert_eq!(s.record_counts(), (3, 5));
        let all = s.messages(&RecordFilter::default()).unwrap();
        assert_eq!(all.iter().map(|m| m.seq).collect::<Vec<_>>(), vec![3, 4, 5]);
        let one = s
            .messages(&RecordFilter {
                to: Some("2250700000004".into()),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(one[0].wamid, wamids[4]);
        assert_eq!(one[0].payload()["template"]["name"], "sidecar_hello");

        s.record_status(
            &wamids[4],
            &StatusEvent {
                kind: StatusKind::Read,
                error: None,
            },
        );
        s.record_status(
            &wamids[4],
            &StatusEvent {
                kind: StatusKind::Delivered,
                error: None,
            },
        );
        s.record_status(
            &wamids[0],
            &StatusEvent {
                kind: StatusKind::Read,
                error: None,
            },
        );
        let m = &s
            .messages(&RecordFilter {
                wamid: Some(wamids[4].clone()),
                ..Default::default()
            })
            .unwrap()[0];
        assert_eq!(m.status, StatusKind::Read);
        assert_eq!(m.statuses.len(), 2);

        let desc = s
            .messages(&RecordFilter {
                order: Some("desc".into()),
                limit: Some(2),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(desc.iter().map(|m| m.seq).collect::<Vec<_>>(), vec![5, 4]);
        assert!(s
            .messages(&RecordFilter {
                since: Some("yesterday".into()),
                ..Default::default()
            })
            .is_err());
        let later = s
            .messages(&RecordFilter {
                since: Some("2999-01-01T00:00:00Z".into()),
                ..Default::default()
            })
            .unwrap();
        assert!(later.is_empty());
    }

    #[tokio::test]
    async fn injection_finds_titles_and_context_from_sent_messages() {
        let (s, _rx) = shared(SandboxConfig::default());
        inject_text(&s, "+2250700000001");
        let body = json!({"messaging_product": "whatsapp", "to": "+2250700000001", "type": "interactive",
            "interactive": {"type": "button", "body": {"text": "Confirm?"}, "action": {"buttons": [
                {"type": "reply", "reply": {"id": "yes", "title": "Yes please"}}]}}});
        let sent = s
            .accept_send("sandbox-0001", "v25.0", Bytes::from(body.to_string()))
            .unwrap()
            .wamid();
        let out = s
            .inject(&InjectRequest {
                from: "+2250700000001".into(),
                button_reply: Some(ReplyRef {
                    id: "yes".into(),
                    title: None,
                }),
                ..Default::default()
            })
            .unwrap();
        let message = &out.webhook["entry"][0]["changes"][0]["value"]["messages"][0];
        assert_eq!(
            message["interactive"]["button_reply"]["title"],
            "Yes please"
        );
        assert_eq!(message["context"]["id"], sent.as_str());
        assert_eq!(message["context"]["from"], "15550000001");
        assert!(!out.queued, "no callback is configured");

        let err = s
            .inject(&InjectRequest {
                from: "+2250700000001".into(),
                button_reply: Some(ReplyRef {
                    id: "nope".into(),
                    title: None,
                }),
                ..Default::default()
            })
            .unwrap_err();
        assert!(err.to_string().contains("send one first"), "{err}");
        assert!(s
            .inject(&InjectRequest {
                from: "+2250700000001".into(),
                ..Default::default()
            })
            .is_err());
        assert!(s
            .inject(&InjectRequest {
                from: "abc".into(),
                text: Some("x".into()),
                ..Default::default()
            })
            .is_err());
    }

    #[tokio::test(start_paused = true)]
    async fn housekeeping_drops_full_buckets_and_closed_windows() {
        let (s, _rx) = shared(SandboxConfig::default());
        inject_text(&s, "+2250700000001");
        s.accept_send("sandbox-0001", "v25.0", template_to("+2250700000002"))
            .unwrap();
        s.housekeeping();
        assert_eq!(s.pair.len(), 1);
        assert_eq!(lock(&s.windows).len(), 1);
        tokio::time::advance(SERVICE_WINDOW + Duration::from_secs(1)).await;
        s.housekeeping();
        assert_eq!(s.pair.len(), 0);
        assert!(lock(&s.windows).is_empty());
    }

    #[test]
    fn graph_versions() {
        assert_eq!(graph_major("v25.0"), Some(25));
        assert_eq!(graph_major("v9.1"), Some(9));
        assert_eq!(graph_major("25.0"), None);
        assert_eq!(graph_major("v25"), None);
        assert_eq!(graph_major("vx.0"), None);
    }

    #[test]
    fn tokens() {
        let (tx, _rx) = mpsc::unbounded_channel();
        let s = Shared::new(&SandboxConfig::default(), tx).unwrap();
        assert!(s.check_token(Some("anything")).is_ok());
        assert_eq!(s.check_token(None).unwrap_err().code, 104);
        let config = SandboxConfig {
            tokens: vec![Secret::new("good")],
            ..SandboxConfig::default()
        };
        let (tx, _rx) = mpsc::unbounded_channel();
        let s = Shared::new(&config, tx).unwrap();
        assert!(s.check_token(Some("good")).is_ok());
        assert_eq!(s.check_token(Some("bad")).unwrap_err().code, 190);
    }
}
