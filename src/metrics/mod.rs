//! Prometheus metrics: `GET /metrics` on the daemon's port, in Prometheus' text format.
//!
//! [`Metrics`] is a cheap handle (a clone shares the same counters) that the components record
//! into as they work; by default it is off and every record is a no-op, so tests and tools that
//! build a component without it pay nothing. The daemon makes one with [`Metrics::new`] and gives
//! it to the Odoo and Cloud API clients and the components; `/metrics` renders it
//! ([`Metrics::render`]), after [`odoo_state`] has read what only Odoo knows (the outbox's backlog,
//! the events waiting, the paused accounts, the running campaigns), at most every
//! `metrics.odoo_refresh_secs`, only when scraped.
//!
//! The exposition is written by `prometheus-client` (the Prometheus project's Rust client).
//! Labels are bounded: Odoo models and methods and Cloud API operations come from the code,
//! accounts and campaigns are Odoo record ids, error codes are Meta's numbers or the daemon's
//! words; never a wamid, a phone number or a partner.
//!
//! | metric | what |
//! |---|---|
//! | `whatsapp_sidecar_build_info{version}` | 1 |
//! | `odoo_calls_total{model,method}`, `odoo_call_errors_total{model,method,kind}`, `odoo_call_duration_seconds{model,method}` | every JSON-RPC `execute_kw` (with its retries) |
//! | `whatsapp_api_calls_total{endpoint}`, `whatsapp_api_errors_total{endpoint,code}`, `whatsapp_api_call_duration_seconds{endpoint}` | every Cloud API request |
//! | `whatsapp_messages_sent_total{account}`, `whatsapp_messages_failed_total{account,code}`, `whatsapp_message_retries_total{account,code}`, `whatsapp_campaign_messages_sent_total{account}` | the outbox's results |
//! | `whatsapp_pacing_slowdowns_total{account,code}` | Meta's 130429 (number too fast) and 131056 (recipient too often) |
//! | `whatsapp_webhook_requests_total{result}`, `whatsapp_webhook_intake_duration_seconds`, `whatsapp_webhook_events_per_create` | the receiver |
//! | `whatsapp_inbound_events_processed_total{outcome}` | inbound processing |
//! | `whatsapp_outbox_queued_due`, `whatsapp_outbox_sending`, `whatsapp_outbox_oldest_due_age_seconds`, `whatsapp_inbound_unprocessed_events`, `whatsapp_inbound_oldest_unprocessed_age_seconds`, `whatsapp_account_paused{account}`, `whatsapp_campaigns_running`, `whatsapp_campaign_sent{campaign}`, `whatsapp_odoo_state_age_seconds` | read from Odoo when scraped |
//! | `odoo_bus_connected`, `odoo_bus_notifications_total` | Odoo's bus |
//! | `whatsapp_lease_leader`, `whatsapp_lease_epoch`, `whatsapp_lease_changes_total` | the sending lease: 1 while this daemon holds it (claims and sends), 0 on a standby |

pub mod odoo_state;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::{Registry, Unit};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

pub use odoo_state::{OdooState, StateSource};

/// `[metrics]`: the `/metrics` endpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsSettings {
    /// Whether `/metrics` answers (and the components record); `false`: 404.
    pub enabled: bool,
    /// The backlog, waiting events, paused accounts and running campaigns are read from Odoo
    /// when scraped and at most this often.
    pub odoo_refresh: Duration,
}

impl Default for MetricsSettings {
    fn default() -> Self {
        MetricsSettings {
            enabled: true,
            odoo_refresh: Duration::from_secs(15),
        }
    }
}

/// The metrics of one daemon; `Metrics::default()` records nothing.
#[derive(Clone, Default)]
pub struct Metrics(Option<Arc<Inner>>);

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.0.is_some() {
            "Metrics(on)"
        } else {
            "Metrics(off)"
        })
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    model: String,
    method: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallErrorLabels {
    model: String,
    method: String,
    kind: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointLabels {
    endpoint: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct EndpointErrorLabels {
    endpoint: &'static str,
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AccountLabels {
    account: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AccountCodeLabels {
    account: String,
    code: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CampaignLabels {
    campaign: String,
}

type FloatGauge = Gauge<f64, AtomicU64>;

struct Inner {
    registry: Registry,
    odoo_calls: Family<CallLabels, Counter>,
    odoo_errors: Family<CallErrorLabels, Counter>,
    odoo_latency: Family<CallLabels, Histogram>,
    meta_calls: Family<EndpointLabels, Counter>,
    meta_errors: Family<EndpointErrorLabels, Counter>,
    meta_latency: Family<EndpointLabels, Histogram>,
    sent: Family<AccountLabels, Counter>,
    failed: Family<AccountCodeLabels, Counter>,
    retries: Family<AccountCodeLabels, Counter>,
    campaign_sent_total: Family<AccountLabels, Counter>,
    slowdowns: Family<AccountCodeLabels, Counter>,
    webhook_requests: Family<ResultLabels, Counter>,
    webhook_intake: Histogram,
    events_per_create: Histogram,
    inbound_processed: Family<OutcomeLabels, Counter>,
    queued_due: Gauge,
    sending: Gauge,
    oldest_due_age: FloatGauge,
    unprocessed: Gauge,
    oldest_unprocessed_age: FloatGauge,
    account_paused: Family<AccountLabels, Gauge>,
    campaigns_running: Gauge,
    campaign_sent: Family<CampaignLabels, Gauge>,
    state_age: FloatGauge,
    bus_connected: Gauge,
    bus_notifications: Counter,
    lease_leader: Gauge,
    lease_epoch: Gauge,
    lease_changes: Counter,
    /// Totals over every label, for the alerts ([`Metrics::totals`]).
    totals: TotalCounters,
}

#[derive(Default)]
struct TotalCounters {
    sent: AtomicU64,
    failed: AtomicU64,
    bad_signatures: AtomicU64,
}

/// Totals since start, whatever the labels ([`Metrics::totals`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub sent: u64,
    pub failed: u64,
    pub bad_signatures: u64,
}

fn latency_buckets() -> Histogram {
    // 1 ms to about 16 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 15))
}

impl Metrics {
    /// A recording set of metrics, `version` in `whatsapp_sidecar_build_info`.
    pub fn new(version: &str) -> Metrics {
        let mut registry = Registry::default();
        registry.register(
            "whatsapp_sidecar_build",
            "The daemon's version",
            Info::new(vec![("version".to_owned(), version.to_owned())]),
        );
        let odoo_calls = Family::<CallLabels, Counter>::default();
        registry.register(
            "odoo_calls",
            "Odoo JSON-RPC calls (execute_kw), retries included",
            odoo_calls.clone(),
        );
        let odoo_errors = Family::<CallErrorLabels, Counter>::default();
        registry.register(
            "odoo_call_errors",
            "Odoo calls that failed, by kind of error (after retries)",
            odoo_errors.clone(),
        );
        let odoo_latency =
            Family::<CallLabels, Histogram>::new_with_constructor(latency_buckets as fn() -> _);
        registry.register_with_unit(
            "odoo_call_duration",
            "Time of an Odoo call, retries included",
            Unit::Seconds,
            odoo_latency.clone(),
        );
        let meta_calls = Family::<EndpointLabels, Counter>::default();
        registry.register(
            "whatsapp_api_calls",
            "WhatsApp Cloud API requests, by operation",
            meta_calls.clone(),
        );
        let meta_errors = Family::<EndpointErrorLabels, Counter>::default();
        registry.register(
            "whatsapp_api_errors",
            "WhatsApp Cloud API requests that failed, by Meta's error code (or http_<status>, transport, decode, refused)",
            meta_errors.clone(),
        );
        let meta_latency =
            Family::<EndpointLabels, Histogram>::new_with_constructor(latency_buckets as fn() -> _);
        registry.register_with_unit(
            "whatsapp_api_call_duration",
            "Time of a WhatsApp Cloud API request",
            Unit::Seconds,
            meta_latency.clone(),
        );
        let sent = Family::<AccountLabels, Counter>::default();
        registry.register(
            "whatsapp_messages_sent",
            "Messages accepted by Meta, by account id",
            sent.clone(),
        );
        let failed = Family::<AccountCodeLabels, Counter>::default();
        registry.register(
            "whatsapp_messages_failed",
            "Messages failed for good when sent (Meta's code, or the daemon's word for a refusal before sending), by account id",
            failed.clone(),
        );
        let retries = Family::<AccountCodeLabels, Counter>::default();
        registry.register(
            "whatsapp_message_retries",
            "Sends that failed and will be tried again, by account id and code",
            retries.clone(),
        );
        let campaign_sent_total = Family::<AccountLabels, Counter>::default();
        registry.register(
            "whatsapp_campaign_messages_sent",
            "Campaign messages accepted by Meta, by account id",
            campaign_sent_total.clone(),
        );
        let slowdowns = Family::<AccountCodeLabels, Counter>::default();
        registry.register(
            "whatsapp_pacing_slowdowns",
            "Meta's pacing errors acted on: 130429 (the number sends too fast: its rate is lowered) and 131056 (a recipient got too many messages: held)",
            slowdowns.clone(),
        );
        let webhook_requests = Family::<ResultLabels, Counter>::default();
        registry.register(
            "whatsapp_webhook_requests",
            "Webhook POSTs by result: stored, bad_signature (401), unavailable, no_app_secret, keys_not_loaded (503)",
            webhook_requests.clone(),
        );
        let webhook_intake = Histogram::new(exponential_buckets(0.001, 2.0, 14));
        registry.register_with_unit(
            "whatsapp_webhook_intake_duration",
            "Time from a signed webhook POST to its answer",
            Unit::Seconds,
            webhook_intake.clone(),
        );
        let events_per_create = Histogram::new(exponential_buckets(1.0, 2.0, 11));
        registry.register(
            "whatsapp_webhook_events_per_create",
            "Webhook events stored per Odoo create",
            events_per_create.clone(),
        );
        let inbound_processed = Family::<OutcomeLabels, Counter>::default();
        registry.register(
            "whatsapp_inbound_events_processed",
            "Webhook events processed: done, waiting (retried later) or failed",
            inbound_processed.clone(),
        );
        let queued_due = Gauge::default();
        registry.register(
            "whatsapp_outbox_queued_due",
            "Outgoing messages queued and due now (read from Odoo when scraped)",
            queued_due.clone(),
        );
        let sending = Gauge::default();
        registry.register(
            "whatsapp_outbox_sending",
            "Outgoing messages claimed and not written back (read from Odoo when scraped)",
            sending.clone(),
        );
        let oldest_due_age = FloatGauge::default();
        registry.register_with_unit(
            "whatsapp_outbox_oldest_due_age",
            "How long the oldest queued message has been due (0 when none)",
            Unit::Seconds,
            oldest_due_age.clone(),
        );
        let unprocessed = Gauge::default();
        registry.register(
            "whatsapp_inbound_unprocessed_events",
            "Webhook events stored and not processed yet (read from Odoo when scraped)",
            unprocessed.clone(),
        );
        let oldest_unprocessed_age = FloatGauge::default();
        registry.register_with_unit(
            "whatsapp_inbound_oldest_unprocessed_age",
            "Age of the oldest unprocessed webhook event: the inbound lag (0 when none)",
            Unit::Seconds,
            oldest_unprocessed_age.clone(),
        );
        let account_paused = Family::<AccountLabels, Gauge>::default();
        registry.register(
            "whatsapp_account_paused",
            "1 when sending from the active account is paused (bad token, restricted account, policy)",
            account_paused.clone(),
        );
        let campaigns_running = Gauge::default();
        registry.register(
            "whatsapp_campaigns_running",
            "Campaigns in the running state",
            campaigns_running.clone(),
        );
        let campaign_sent = Family::<CampaignLabels, Gauge>::default();
        registry.register(
            "whatsapp_campaign_sent",
            "Messages sent so far by each running campaign (its Sent figure)",
            campaign_sent.clone(),
        );
        let state_age = FloatGauge::default();
        registry.register_with_unit(
            "whatsapp_odoo_state_age",
            "Age of the values read from Odoo above (they are read again when older than metrics.odoo_refresh_secs)",
            Unit::Seconds,
            state_age.clone(),
        );
        let bus_connected = Gauge::default();
        registry.register(
            "odoo_bus_connected",
            "1 while the daemon is subscribed to Odoo's bus",
            bus_connected.clone(),
        );
        let bus_notifications = Counter::default();
        registry.register(
            "odoo_bus_notifications",
            "Notifications received from Odoo's bus",
            bus_notifications.clone(),
        );
        let lease_leader = Gauge::default();
        registry.register(
            "whatsapp_lease_leader",
            "1 while this daemon holds the sending lease (it claims and sends), 0 while it stands by",
            lease_leader.clone(),
        );
        let lease_epoch = Gauge::default();
        registry.register(
            "whatsapp_lease_epoch",
            "The epoch of the sending lease this daemon last held",
            lease_epoch.clone(),
        );
        let lease_changes = Counter::default();
        registry.register(
            "whatsapp_lease_changes",
            "Times this daemon took or lost the sending lease",
            lease_changes.clone(),
        );
        Metrics(Some(Arc::new(Inner {
            registry,
            odoo_calls,
            odoo_errors,
            odoo_latency,
            meta_calls,
            meta_errors,
            meta_latency,
            sent,
            failed,
            retries,
            campaign_sent_total,
            slowdowns,
            webhook_requests,
            webhook_intake,
            events_per_create,
            inbound_processed,
            queued_due,
            sending,
            oldest_due_age,
            unprocessed,
            oldest_unprocessed_age,
            account_paused,
            campaigns_running,
            campaign_sent,
            state_age,
            bus_connected,
            bus_notifications,
            lease_leader,
            lease_epoch,
            lease_changes,
            totals: TotalCounters::default(),
        })))
    }

    /// Whether this handle records.
    pub fn is_on(&self) -> bool {
        self.0.is_some()
    }

    /// Messages sent and failed and webhooks refused for their signature since start (zeros
    /// when off).
    pub fn totals(&self) -> Totals {
        let Some(m) = &self.0 else {
            return Totals::default();
        };
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Totals {
            sent: get(&m.totals.sent),
            failed: get(&m.totals.failed),
            bad_signatures: get(&m.totals.bad_signatures),
        }
    }

    /// The exposition, in Prometheus' text format (empty when off).
    pub fn render(&self) -> String {
        let mut out = String::new();
        if let Some(m) = &self.0 {
            // Writing into a String cannot fail.
            let _ = prometheus_client::encoding::text::encode(&mut out, &m.registry);
        }
        out
    }

    /// One Odoo `execute_kw` call; `error` is the kind of error it ended with.
    pub fn odoo_call(
        &self,
        model: &str,
        method: &str,
        took: Duration,
        error: Option<&'static str>,
    ) {
        let Some(m) = &self.0 else { return };
        let labels = CallLabels {
            model: model.to_owned(),
            method: method.to_owned(),
        };
        m.odoo_calls.get_or_create(&labels).inc();
        m.odoo_latency
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
        if let Some(kind) = error {
            let labels = CallErrorLabels {
                model: labels.model,
                method: labels.method,
                kind,
            };
            m.odoo_errors.get_or_create(&labels).inc();
        }
    }

    /// One Cloud API request; `error` is Meta's code or the daemon's word for the failure.
    pub fn api_call(&self, endpoint: &'static str, took: Duration, error: Option<String>) {
        let Some(m) = &self.0 else { return };
        let labels = EndpointLabels { endpoint };
        m.meta_calls.get_or_create(&labels).inc();
        m.meta_latency
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
        if let Some(code) = error {
            m.meta_errors
                .get_or_create(&EndpointErrorLabels { endpoint, code })
                .inc();
        }
    }

    /// A message accepted by Meta; `campaign` when a campaign queued it.
    pub fn message_sent(&self, account: i64, campaign: bool) {
        let Some(m) = &self.0 else { return };
        let labels = AccountLabels {
            account: account.to_string(),
        };
        m.sent.get_or_create(&labels).inc();
        m.totals.sent.fetch_add(1, Ordering::Relaxed);
        if campaign {
            m.campaign_sent_total.get_or_create(&labels).inc();
        }
    }

    /// A message failed for good (`code`: Meta's, or the daemon's word).
    pub fn message_failed(&self, account: Option<i64>, code: &str) {
        let Some(m) = &self.0 else { return };
        m.failed.get_or_create(&account_code(account, code)).inc();
        m.totals.failed.fetch_add(1, Ordering::Relaxed);
    }

    /// A send that failed and will be tried again.
    pub fn message_retry(&self, account: i64, code: &str) {
        let Some(m) = &self.0 else { return };
        m.retries
            .get_or_create(&account_code(Some(account), code))
            .inc();
    }

    /// Meta's 130429 or 131056, acted on by the pacing.
    pub fn pacing_slowdown(&self, account: i64, code: i64) {
        let Some(m) = &self.0 else { return };
        m.slowdowns
            .get_or_create(&account_code(Some(account), &code.to_string()))
            .inc();
    }

    /// A webhook POST answered: `result` is `stored`, `bad_signature`, `unavailable`, ...
    pub fn webhook_request(&self, result: &'static str, took: Duration) {
        let Some(m) = &self.0 else { return };
        m.webhook_requests
            .get_or_create(&ResultLabels { result })
            .inc();
        if result == "stored" {
            m.webhook_intake.observe(took.as_secs_f64());
        }
        if result == "bad_signature" {
            m.totals.bad_signatures.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// One Odoo `create` of webhook events.
    pub fn events_created(&self, count: usize) {
        let Some(m) = &self.0 else { return };
        m.events_per_create.observe(count as f64);
    }

    /// A batch of webhook events processed.
    pub fn inbound_processed(&self, done: usize, waiting: usize, failed: usize) {
        let Some(m) = &self.0 else { return };
        for (outcome, n) in [("done", done), ("waiting", waiting), ("failed", failed)] {
            if n > 0 {
                m.inbound_processed
                    .get_or_create(&OutcomeLabels { outcome })
                    .inc_by(n as u64);
            }
        }
    }

    /// Odoo's bus went up (`true`) or down.
    pub fn bus_connected(&self, up: bool) {
        let Some(m) = &self.0 else { return };
        m.bus_connected.set(i64::from(up));
    }

    /// This daemon took (`Some(epoch)`) or lost (`None`) the sending lease.
    pub fn lease_role(&self, epoch: Option<i64>) {
        let Some(m) = &self.0 else { return };
        m.lease_leader.set(i64::from(epoch.is_some()));
        if let Some(epoch) = epoch {
            m.lease_epoch.set(epoch);
        }
        m.lease_changes.inc();
    }

    /// A notification from Odoo's bus.
    pub fn bus_notification(&self) {
        let Some(m) = &self.0 else { return };
        m.bus_notifications.inc();
    }

    /// Sets the values read from Odoo ([`odoo_state`]).
    pub fn set_odoo_state(&self, state: &OdooState) {
        let Some(m) = &self.0 else { return };
        m.queued_due.set(state.queued_due);
        m.sending.set(state.sending);
        m.oldest_due_age.set(state.oldest_due_age_secs);
        m.unprocessed.set(state.unprocessed_events);
        m.oldest_unprocessed_age
            .set(state.oldest_unprocessed_age_secs);
        m.account_paused.clear();
        for (account, paused) in &state.accounts_paused {
            m.account_paused
                .get_or_create(&AccountLabels {
                    account: account.to_string(),
                })
                .set(i64::from(*paused));
        }
        m.campaigns_running
            .set(state.running_campaigns.len() as i64);
        m.campaign_sent.clear();
        for (campaign, sent) in &state.running_campaigns {
            m.campaign_sent
                .get_or_create(&CampaignLabels {
                    campaign: campaign.to_string(),
                })
                .set(*sent);
        }
    }

    /// How old the values read from Odoo are.
    pub fn set_odoo_state_age(&self, age: Duration) {
        let Some(m) = &self.0 else { return };
        m.state_age.set(age.as_secs_f64());
    }
}

fn account_code(account: Option<i64>, code: &str) -> AccountCodeLabels {
    AccountCodeLabels {
        account: account.map(|a| a.to_string()).unwrap_or_default(),
        code: code.to_owned(),
    }
}

#[cfg(test)]
mod tests;
