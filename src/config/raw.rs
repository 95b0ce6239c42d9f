//! The configuration as written: serde structs that refuse unknown keys, with the defaults of
//! every optional value. [`super::Config::from_raw`] checks them.

use crate::secret::Secret;
use serde::{Deserialize, Deserializer};
use std::path::PathBuf;

use super::ConfigError;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawConfig {
    pub odoo: RawOdoo,
    pub server: RawServer,
    pub whatsapp: RawWhatsApp,
    pub sandbox: RawSandbox,
    pub webhook: RawWebhook,
    pub inbound: RawInbound,
    pub outbox: RawOutbox,
    pub accounts: RawAccounts,
    pub automations: RawAutomations,
    pub actions: RawActions,
    pub scenarios: RawScenarios,
    pub campaigns: RawCampaigns,
    pub bus: RawBus,
    pub metrics: RawMetrics,
    pub lease: RawLease,
    pub alerts: RawAlerts,
    pub housekeeping: RawHousekeeping,
    pub log: RawLog,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawHousekeeping {
    pub retention_schedule: String,
    pub template_sync_schedule: String,
    pub time_zone: String,
    pub processed_event_days: u32,
    pub failed_event_days: u32,
    pub batch_size: usize,
}

impl Default for RawHousekeeping {
    fn default() -> Self {
        let d = crate::housekeeping::HousekeepingSettings::default();
        RawHousekeeping {
            retention_schedule: crate::housekeeping::plan::DEFAULT_RETENTION.to_owned(),
            template_sync_schedule: crate::housekeeping::plan::DEFAULT_TEMPLATE_SYNC.to_owned(),
            time_zone: "UTC".to_owned(),
            processed_event_days: d.processed_event_days,
            failed_event_days: d.failed_event_days,
            batch_size: d.batch_size,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawAlerts {
    pub enabled: bool,
    pub smtp_url: String,
    pub smtp_user: String,
    pub smtp_password: Option<RawSecret>,
    pub smtp_password_file: Option<PathBuf>,
    pub from: String,
    pub to: Vec<String>,
    pub kinds: Vec<String>,
    pub odoo_unreachable_minutes: f64,
    pub bad_signatures_per_hour: u64,
    pub send_error_ratio: f64,
    pub token_expiry_days: u32,
    pub check_interval_secs: f64,
    pub remind_after_hours: f64,
}

impl Default for RawAlerts {
    fn default() -> Self {
        let d = crate::alerts::AlertSettings::default();
        RawAlerts {
            enabled: d.enabled,
            smtp_url: String::new(),
            smtp_user: String::new(),
            smtp_password: None,
            smtp_password_file: None,
            from: String::new(),
            to: Vec::new(),
            kinds: d.kinds.iter().map(|k| k.name().to_owned()).collect(),
            odoo_unreachable_minutes: d.odoo_unreachable_after.as_secs_f64() / 60.0,
            bad_signatures_per_hour: d.bad_signatures_per_hour,
            send_error_ratio: d.send_error_ratio,
            token_expiry_days: d.token_expiry_days,
            check_interval_secs: d.check_interval.as_secs_f64(),
            remind_after_hours: d.remind_after.as_secs_f64() / 3600.0,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawLease {
    pub name: String,
    pub ttl_secs: f64,
    pub renew_secs: f64,
}

impl Default for RawLease {
    fn default() -> Self {
        let d = crate::lease::LeaseConfig::default();
        RawLease {
            name: d.name,
            ttl_secs: d.ttl.as_secs_f64(),
            renew_secs: d.renew.as_secs_f64(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawMetrics {
    pub enabled: bool,
    pub odoo_refresh_secs: f64,
}

impl Default for RawMetrics {
    fn default() -> Self {
        let d = crate::metrics::MetricsSettings::default();
        RawMetrics {
            enabled: d.enabled,
            odoo_refresh_secs: d.odoo_refresh.as_secs_f64(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawBus {
    pub enabled: bool,
    pub url: Option<String>,
    pub slow_poll_interval_secs: f64,
}

impl Default for RawBus {
    fn default() -> Self {
        let d = crate::bus::BusSettings::default();
        RawBus {
            enabled: d.enabled,
            url: None,
            slow_poll_interval_secs: d.slow_poll_interval.as_secs_f64(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawAutomations {
    pub poll_interval_secs: f64,
    pub overlap_secs: f64,
    pub batch_size: usize,
}

impl Default for RawAutomations {
    fn default() -> Self {
        let d = crate::automations::AutomationsSettings::default();
        RawAutomations {
            poll_interval_secs: d.poll_interval.as_secs_f64(),
            overlap_secs: d.overlap.as_secs_f64(),
            batch_size: d.batch_size,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawCampaigns {
    pub poll_interval_secs: f64,
    pub kpi_interval_secs: f64,
    pub ahead_secs: f64,
    pub batch_size: usize,
    pub max_failure_ratio: f64,
}

impl Default for RawCampaigns {
    fn default() -> Self {
        let d = crate::campaigns::CampaignsSettings::default();
        RawCampaigns {
            poll_interval_secs: d.poll_interval.as_secs_f64(),
            kpi_interval_secs: d.kpi_interval.as_secs_f64(),
            ahead_secs: d.ahead.as_secs_f64(),
            batch_size: d.batch_size,
            max_failure_ratio: d.max_failure_ratio,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawActions {
    pub poll_interval_ms: u64,
    pub batch_size: usize,
    pub max_age_hours: f64,
}

impl Default for RawActions {
    fn default() -> Self {
        let d = crate::actions::ActionsSettings::default();
        RawActions {
            poll_interval_ms: d.poll_interval.as_millis() as u64,
            batch_size: d.batch_size,
            max_age_hours: d.max_age.as_secs_f64() / 3600.0,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawScenarios {
    pub stale_after_hours: f64,
    pub max_messages_per_press: usize,
}

impl Default for RawScenarios {
    fn default() -> Self {
        let d = crate::scenarios::ScenarioSettings::default();
        RawScenarios {
            stale_after_hours: d.stale_after.as_secs_f64() / 3600.0,
            max_messages_per_press: d.max_messages_per_press,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawAccounts {
    pub poll_interval_secs: f64,
}

impl Default for RawAccounts {
    fn default() -> Self {
        RawAccounts {
            poll_interval_secs: crate::accounts::DEFAULT_POLL_INTERVAL.as_secs_f64(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawOutbox {
    pub poll_interval_secs: f64,
    pub batch_size: usize,
    pub max_in_flight: usize,
    pub concurrency: usize,
    pub reconcile_delay_secs: f64,
    pub max_attempts: u32,
    pub retry_base_secs: f64,
    pub retry_max_secs: f64,
    pub pair_interval_secs: f64,
    pub flush_interval_secs: f64,
    pub chatter_notes: bool,
}

impl Default for RawOutbox {
    fn default() -> Self {
        let d = crate::outbox::OutboxSettings::default();
        RawOutbox {
            poll_interval_secs: d.poll_interval.as_secs_f64(),
            batch_size: d.batch_size,
            max_in_flight: d.max_in_flight,
            concurrency: d.concurrency,
            reconcile_delay_secs: d.reconcile_delay.as_secs_f64(),
            max_attempts: d.max_attempts,
            retry_base_secs: d.retry_base.as_secs_f64(),
            retry_max_secs: d.retry_max.as_secs_f64(),
            pair_interval_secs: d.pair_interval.as_secs_f64(),
            flush_interval_secs: d.flush_interval.as_secs_f64(),
            chatter_notes: d.chatter_notes,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawSandbox {
    pub listen: String,
    pub config: Option<PathBuf>,
}

impl Default for RawSandbox {
    fn default() -> Self {
        RawSandbox {
            listen: "127.0.0.1:8788".to_owned(),
            config: None,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawWebhook {
    pub max_body_bytes: usize,
    pub batch_max: usize,
    pub batch_linger_ms: u64,
    pub batch_idle_ms: u64,
    pub reply_timeout_secs: f64,
    pub keys_refresh_secs: f64,
    pub spool_file: Option<PathBuf>,
    pub spool_max_events: usize,
    pub forward_interval_ms: u64,
    pub forward_batch_max: usize,
}

impl Default for RawWebhook {
    fn default() -> Self {
        let d = crate::webhook::WebhookConfig::default();
        RawWebhook {
            max_body_bytes: d.max_body_bytes,
            batch_max: d.ingest.max_batch,
            batch_linger_ms: d.ingest.linger.as_millis() as u64,
            batch_idle_ms: d.ingest.idle.as_millis() as u64,
            reply_timeout_secs: d.ingest.reply_timeout.as_secs_f64(),
            keys_refresh_secs: d.keys.refresh_interval.as_secs_f64(),
            spool_file: None,
            spool_max_events: d.forward.max_events,
            forward_interval_ms: d.forward.interval.as_millis() as u64,
            forward_batch_max: d.forward.batch_max,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawInbound {
    pub batch_size: usize,
    pub poll_interval_ms: u64,
    pub min_batch_interval_ms: u64,
    pub status_linger_ms: u64,
    pub status_batch_interval_ms: u64,
    pub pending_give_up_hours: f64,
}

impl Default for RawInbound {
    fn default() -> Self {
        let d = crate::inbound::InboundConfig::default();
        RawInbound {
            batch_size: d.batch_size,
            poll_interval_ms: d.poll_interval.as_millis() as u64,
            min_batch_interval_ms: d.min_batch_interval.as_millis() as u64,
            status_linger_ms: d.status_linger.as_millis() as u64,
            status_batch_interval_ms: d.status_batch_interval.as_millis() as u64,
            pending_give_up_hours: d.pending_give_up.as_secs_f64() / 3600.0,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawOdoo {
    pub url: String,
    #[serde(deserialize_with = "opt_scalar_string")]
    pub database: Option<String>,
    #[serde(deserialize_with = "opt_scalar_string")]
    pub login: Option<String>,
    pub api_key: Option<RawSecret>,
    pub api_key_file: Option<PathBuf>,
    pub password: Option<RawSecret>,
    pub password_file: Option<PathBuf>,
    pub timeout_secs: f64,
    pub max_concurrent_requests: usize,
    pub max_concurrent_reports: usize,
    pub max_retries: u32,
}

impl Default for RawOdoo {
    fn default() -> Self {
        RawOdoo {
            url: "http://127.0.0.1:8069".to_owned(),
            database: None,
            login: None,
            api_key: None,
            api_key_file: None,
            password: None,
            password_file: None,
            timeout_secs: 30.0,
            max_concurrent_requests: 8,
            max_concurrent_reports: 2,
            max_retries: 5,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawServer {
    pub listen: String,
    pub shutdown_timeout_secs: f64,
}

impl Default for RawServer {
    fn default() -> Self {
        RawServer {
            listen: "127.0.0.1:8787".to_owned(),
            shutdown_timeout_secs: 10.0,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawWhatsApp {
    pub mode: String,
    pub graph_url: String,
    #[serde(deserialize_with = "scalar_string")]
    pub api_version: String,
    pub timeout_secs: f64,
}

impl Default for RawWhatsApp {
    fn default() -> Self {
        RawWhatsApp {
            mode: "sandbox".to_owned(),
            graph_url: "https://graph.facebook.com".to_owned(),
            api_version: crate::whatsapp::DEFAULT_API_VERSION.to_owned(),
            timeout_secs: 30.0,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RawLog {
    pub format: String,
    pub filter: String,
}

impl Default for RawLog {
    fn default() -> Self {
        RawLog {
            format: "pretty".to_owned(),
            filter: "info".to_owned(),
        }
    }
}

/// A secret as written; numbers are accepted (an environment variable `1234` is parsed as one).
#[derive(Debug)]
pub struct RawSecret(pub Secret);

impl<'de> Deserialize<'de> for RawSecret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        scalar_string(deserializer).map(|s| RawSecret(Secret::new(s)))
    }
}

/// A string that may have been written (or parsed from the environment) as a number or boolean.
#[derive(Deserialize)]
#[serde(untagged)]
enum Scalar {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
}

fn scalar_string<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    Ok(match Scalar::deserialize(deserializer)? {
        Scalar::Str(s) => s,
        Scalar::Int(i) => i.to_string(),
        Scalar::Float(f) => f.to_string(),
        Scalar::Bool(b) => b.to_string(),
    })
}

fn opt_scalar_string<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<String>, D::Error> {
    scalar_string(deserializer).map(Some)
}

/// Turns figment's errors into one line each that names the key (`odoo.url: ...`) and where the
/// value came from.
pub fn describe_figment_error(error: figment::Error) -> ConfigError {
    use figment::error::Kind;
    let problems = error
        .into_iter()
        .map(|err| {
            let mut key = err.path.join(".");
            let what = match &err.kind {
                Kind::UnknownField(field, expected) => {
                    if !key.ends_with(field.as_str()) {
                        key = if key.is_empty() {
                            field.clone()
                        } else {
                            format!("{key}.{field}")
                        };
                    }
                    let known = expected.join(", ");
                    format!("unknown key (known keys here: {known})")
                }
                Kind::MissingField(field) => {
                    key = if key.is_empty() {
                        field.to_string()
                    } else {
                        format!("{key}.{field}")
                    };
                    "missing".to_owned()
                }
                Kind::InvalidType(actual, expected) => {
                    format!("expected {expected}, found {actual}")
                }
                Kind::InvalidValue(actual, expected) => {
                    format!("expected {expected}, found {actual}")
                }
                other => other.to_string(),
            };
            let origin = match err.metadata.as_ref().and_then(|m| m.source.as_ref()) {
                Some(figment::Source::File(file)) => format!(" (in {})", file.display()),
                _ if err.metadata.is_some() && !key.is_empty() => {
                    format!(" (from the environment variable {})", super::env_name(&key))
                }
                _ => String::new(),
            };
            if key.is_empty() {
                format!("{what}{origin}")
            } else {
                format!("{key}: {what}{origin}")
            }
        })
        .collect();
    ConfigError { problems }
}
