//! Configuration: `whatsapp-sidecar.toml`, overridden by `WHATSAPP_SIDECAR_*` environment
//! variables, with secrets optionally read from files (`api_key_file`, `password_file`, ...) so
//! systemd credentials work.
//!
//! Loading happens in two steps:
//! 1. [`raw`]: figment merges the file and the environment into plain serde structs that refuse
//!    unknown keys;
//! 2. [`Config::from_raw`]: every value is checked and turned into the typed [`Config`] the daemon
//!    uses; each problem becomes one line that names the key and says what is wrong.
//!
//! All problems are collected and reported together, so a user fixes a file in one go.

mod raw;

use crate::secret::Secret;
use figment::providers::{Env, Format, Toml};
use figment::Figment;
use raw::{RawConfig, RawSecret};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use url::Url;

/// Where the configuration file is looked for when `--config` is not given, in order.
pub const DEFAULT_PATHS: [&str; 2] = [
    "./whatsapp-sidecar.toml",
    "/etc/whatsapp-sidecar/whatsapp-sidecar.toml",
];

/// The prefix of the environment variables that override the file (`__` separates levels).
pub const ENV_PREFIX: &str = "WHATSAPP_SIDECAR_";

/// The daemon's whole configuration, validated.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it was read from, if any.
    pub source: Option<PathBuf>,
    pub odoo: OdooConfig,
    pub server: ServerConfig,
    pub whatsapp: WhatsAppConfig,
    pub sandbox: SandboxSettings,
    pub webhook: crate::webhook::WebhookConfig,
    pub inbound: crate::inbound::InboundConfig,
    pub outbox: crate::outbox::OutboxSettings,
    pub accounts: AccountsSettings,
    pub automations: crate::automations::AutomationsSettings,
    pub actions: crate::actions::ActionsSettings,
    pub scenarios: crate::scenarios::ScenarioSettings,
    pub campaigns: crate::campaigns::CampaignsSettings,
    pub bus: crate::bus::BusSettings,
    pub metrics: crate::metrics::MetricsSettings,
    pub lease: crate::lease::LeaseConfig,
    pub alerts: crate::alerts::AlertSettings,
    pub housekeeping: crate::housekeeping::HousekeepingSettings,
    pub log: LogConfig,
}

/// `[accounts]`: the "Check settings" and "Sync templates" buttons.
#[derive(Debug, Clone)]
pub struct AccountsSettings {
    /// How often the buttons' flags are looked for.
    pub poll_interval: Duration,
}

/// `[sandbox]`: the built-in simulator `run` starts when `whatsapp.mode = "sandbox"`.
#[derive(Debug, Clone)]
pub struct SandboxSettings {
    /// Where it listens (so `whatsapp-sidecar sandbox inject` and curl reach it).
    pub listen: SocketAddr,
    /// Its own TOML file (numbers, templates, limits, chaos); none: the built-in defaults.
    pub config: Option<PathBuf>,
}

/// `[odoo]`: how to reach Odoo.
#[derive(Debug, Clone)]
pub struct OdooConfig {
    pub url: Url,
    pub database: String,
    pub login: String,
    /// The API key used for JSON-RPC (preferred over the password).
    pub api_key: Option<Secret>,
    /// The password: needed for PDF reports (Odoo's web session refuses API keys), and used for
    /// JSON-RPC when no API key is set.
    pub password: Option<Secret>,
    pub timeout: Duration,
    pub max_concurrent_requests: usize,
    /// PDF reports rendered by Odoo at once, at most (each takes a worker and wkhtmltopdf).
    pub max_concurrent_reports: usize,
    pub max_retries: u32,
}

impl OdooConfig {
    /// The Odoo client's settings.
    pub fn client_config(&self) -> crate::odoo::ClientConfig {
        let mut cfg = crate::odoo::ClientConfig::new(self.url.clone(), &self.database, &self.login);
        cfg.api_key = self.api_key.clone();
        cfg.password = self.password.clone();
        cfg.timeout = self.timeout;
        cfg.max_concurrent_requests = self.max_concurrent_requests;
        cfg.max_concurrent_reports = self.max_concurrent_reports;
        cfg.max_retries = self.max_retries;
        cfg
    }
}

/// `[server]`: the daemon's own HTTP port (webhook, health).
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// How long `run` waits for its tasks to finish after SIGTERM before it gives up on them.
    pub shutdown_timeout: Duration,
}

/// `[whatsapp]`: which Cloud API to talk to.
#[derive(Debug, Clone)]
pub struct WhatsAppConfig {
    pub mode: Mode,
    pub graph_url: Url,
    pub api_version: String,
    pub timeout: Duration,
}

impl WhatsAppConfig {
    /// The Cloud API client's settings (pointing at Meta; sandbox mode points it elsewhere).
    pub fn client_config(&self) -> crate::whatsapp::ClientConfig {
        crate::whatsapp::ClientConfig {
            graph_url: self.graph_url.clone(),
            api_version: self.api_version.clone(),
            timeout: self.timeout,
            ..crate::whatsapp::ClientConfig::default()
        }
    }
}

/// Talk to Meta, or to the built-in sandbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Sandbox,
    Cloud,
}

/// `[log]`: how the daemon logs.
#[derive(Debug, Clone)]
pub struct LogConfig {
    pub format: LogFormat,
    /// A `tracing` filter such as `info` or `whatsapp_sidecar=debug,info`.
    pub filter: String,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Pretty,
    Json,
}

/// Everything wrong with a configuration, one problem a line.
#[derive(Debug, thiserror::Error)]
pub struct ConfigError {
    pub problems: Vec<String>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid configuration:")?;
        for problem in &self.problems {
            write!(f, "\n  - {problem}")?;
        }
        Ok(())
    }
}

impl ConfigError {
    fn one(problem: impl Into<String>) -> Self {
        ConfigError {
            problems: vec![problem.into()],
        }
    }
}

impl Config {
    /// Loads the configuration: the file named by `explicit` (which must exist), else the first of
    /// [`DEFAULT_PATHS`] that exists, else none; then the `WHATSAPP_SIDECAR_*` environment on top.
    pub fn load(explicit: Option<&Path>) -> Result<Config, ConfigError> {
        let source = match explicit {
            Some(path) if !path.is_file() => {
                return Err(ConfigError::one(format!(
                    "--config {}: no such file; give the path of a whatsapp-sidecar.toml",
                    path.display()
                )))
            }
            Some(path) => Some(path.to_path_buf()),
            None => DEFAULT_PATHS
                .iter()
                .map(PathBuf::from)
                .find(|path| path.is_file()),
        };
        let mut figment = Figment::new();
        if let Some(path) = &source {
            figment = figment.merge(Toml::file_exact(path));
        }
        figment = figment.merge(Env::prefixed(ENV_PREFIX).split("__"));
        let raw: RawConfig = figment.extract().map_err(raw::describe_figment_error)?;
        Config::from_raw(raw, source)
    }

    /// Checks every value and builds the typed configuration.
    pub fn from_raw(raw: RawConfig, source: Option<PathBuf>) -> Result<Config, ConfigError> {
        let mut problems = Vec::new();
        let base_dir = source
            .as_deref()
            .and_then(Path::parent)
            .map(Path::to_path_buf);

        let odoo_url = http_url("odoo.url", &raw.odoo.url, &mut problems);
        let database = required("odoo.database", raw.odoo.database, &mut problems);
        let login = required("odoo.login", raw.odoo.login, &mut problems);
        let api_key = secret(
            "odoo.api_key",
            raw.odoo.api_key,
            raw.odoo.api_key_file,
            base_dir.as_deref(),
            &mut problems,
        );
        let password = secret(
            "odoo.password",
            raw.odoo.password,
            raw.odoo.password_file,
            base_dir.as_deref(),
            &mut problems,
        );
        if api_key.is_none() && password.is_none() && problems.is_empty() {
            problems.push(
                "odoo.api_key: missing; set odoo.api_key or odoo.api_key_file (an API key of the \
                 daemon's Odoo user, from Preferences > Account Security), or odoo.password"
                    .to_owned(),
            );
        }
        let odoo_timeout = seconds("odoo.timeout_secs", raw.odoo.timeout_secs, &mut problems);
        if raw.odoo.max_concurrent_requests == 0 {
            problems.push(
                "odoo.max_concurrent_requests: must be at least 1 (it bounds the requests the \
                 daemon sends to Odoo at once)"
                    .to_owned(),
            );
        }
        if raw.odoo.max_concurrent_reports == 0 {
            problems.push(
                "odoo.max_concurrent_reports: must be at least 1 (it bounds the PDF reports Odoo \
                 renders for the daemon at once; keep it below Odoo's workers)"
                    .to_owned(),
            );
        }

        let listen = socket_addr("server.listen", &raw.server.listen, &mut problems);
        let shutdown_timeout = seconds(
            "server.shutdown_timeout_secs",
            raw.server.shutdown_timeout_secs,
            &mut problems,
        );

        let mode = match raw.whatsapp.mode.as_str() {
            "sandbox" => Some(Mode::Sandbox),
            "cloud" => Some(Mode::Cloud),
            other => {
                problems.push(format!(
                    "whatsapp.mode: {other:?} is not a mode; use \"sandbox\" (the built-in \
                     simulator) or \"cloud\" (Meta's Cloud API)"
                ));
                None
            }
        };
        let graph_url = http_url("whatsapp.graph_url", &raw.whatsapp.graph_url, &mut problems);
        let api_version = raw.whatsapp.api_version.trim().to_owned();
        if !crate::whatsapp::is_api_version(&api_version) {
            problems.push(format!(
                "whatsapp.api_version: {api_version:?} is not a Graph API version such as \"v25.0\""
            ));
        }
        let wa_timeout = seconds(
            "whatsapp.timeout_secs",
            raw.whatsapp.timeout_secs,
            &mut problems,
        );

        let sandbox_listen = socket_addr("sandbox.listen", &raw.sandbox.listen, &mut problems);
        let sandbox_config = raw.sandbox.config.map(|path| match &base_dir {
            Some(dir) if path.is_relative() => dir.join(path),
            _ => path,
        });
        if let Some(path) = &sandbox_config {
            if !path.is_file() {
                problems.push(format!(
                    "sandbox.config: {} does not exist; remove the key to use the built-in sandbox settings",
                    path.display()
                ));
            }
        }
        let mut webhook = webhook_config(&raw.webhook, &mut problems);
        webhook.spool_file = raw.webhook.spool_file.clone().map(|path| match &base_dir {
            Some(dir) if path.is_relative() => dir.join(path),
            _ => path,
        });
        if let Some(dir) = webhook.spool_file.as_deref().and_then(Path::parent) {
            if !dir.as_os_str().is_empty() && !dir.is_dir() {
                problems.push(format!(
                    "webhook.spool_file: the directory {} does not exist; create it (writable by the daemon's user, on a local disk) or remove the key to store webhooks in Odoo directly",
                    dir.display()
                ));
            }
        }
        let inbound = inbound_config(&raw.inbound, &mut problems);
        let outbox = outbox_settings(&raw.outbox, &mut problems);
        let accounts = AccountsSettings {
            poll_interval: seconds(
                "accounts.poll_interval_secs",
                raw.accounts.poll_interval_secs,
                &mut problems,
            )
            .unwrap_or(crate::accounts::DEFAULT_POLL_INTERVAL),
        };

        let automations = automations_settings(&raw.automations, &mut problems);
        let actions = actions_settings(&raw.actions, &mut problems);
        let scenarios = scenario_settings(&raw.scenarios, &mut problems);
        let campaigns = campaigns_settings(&raw.campaigns, &mut problems);
        let alerts = alerts_settings(raw.alerts, base_dir.as_deref(), &mut problems);
        let bus = bus_settings(&raw.bus, &mut problems);
        let metrics = crate::metrics::MetricsSettings {
            enabled: raw.metrics.enabled,
            odoo_refresh: seconds(
                "metrics.odoo_refresh_secs",
                raw.metrics.odoo_refresh_secs,
                &mut problems,
            )
            .unwrap_or_default(),
        };
        let housekeeping = housekeeping_settings(&raw.housekeeping, &mut problems);
        let lease = lease_settings(&raw.lease, &mut problems);

        let format = match raw.log.format.as_str() {
            "pretty" => Some(LogFormat::Pretty),
            "json" => Some(LogFormat::Json),
            other => {
                problems.push(format!(
                    "log.format: {other:?} is not a log format; use \"pretty\" or \"json\""
                ));
                None
            }
        };
        if let Err(err) = tracing_subscriber::EnvFilter::try_new(&raw.log.filter) {
            problems.push(format!(
                "log.filter: {:?} is not a tracing filter ({err}); try \"info\"",
                raw.log.filter
            ));
        }

        match (
            odoo_url,
            database,
            login,
            odoo_timeout,
            listen,
            shutdown_timeout,
            mode,
            graph_url,
            wa_timeout,
            format,
            sandbox_listen,
        ) {
            (
                Some(url),
                Some(database),
                Some(login),
                Some(odoo_timeout),
                Some(listen),
                Some(shutdown_timeout),
                Some(mode),
                Some(graph_url),
                Some(wa_timeout),
                Some(format),
                Some(sandbox_listen),
            ) if problems.is_empty() => Ok(Config {
                source,
                odoo: OdooConfig {
                    url,
                    database,
                    login,
                    api_key,
                    password,
                    timeout: odoo_timeout,
                    max_concurrent_requests: raw.odoo.max_concurrent_requests,
                    max_concurrent_reports: raw.odoo.max_concurrent_reports,
                    max_retries: raw.odoo.max_retries,
                },
                server: ServerConfig {
                    listen,
                    shutdown_timeout,
                },
                whatsapp: WhatsAppConfig {
                    mode,
                    graph_url,
                    api_version,
                    timeout: wa_timeout,
                },
                sandbox: SandboxSettings {
                    listen: sandbox_listen,
                    config: sandbox_config,
                },
                webhook,
                inbound,
                outbox,
                accounts,
                automations,
                actions,
                scenarios,
                campaigns,
                bus,
                metrics,
                lease,
                alerts,
                housekeeping,
                log: LogConfig {
                    format,
                    filter: raw.log.filter,
                },
            }),
            _ => Err(ConfigError { problems }),
        }
    }
}

fn housekeeping_settings(
    raw: &raw::RawHousekeeping,
    problems: &mut Vec<String>,
) -> crate::housekeeping::HousekeepingSettings {
    let d = crate::housekeeping::HousekeepingSettings::default();
    let schedule = |key: &str, pattern: &str, example: &str, problems: &mut Vec<String>| {
        if pattern.trim().is_empty() {
            return None;
        }
        match crate::schedule::parse(pattern) {
            Ok(cron) => Some(cron),
            Err(e) => {
                problems.push(format!(
                    "housekeeping.{key}: {pattern:?} is not a five-field cron expression ({e}); \
                     write minute, hour, day of month, month and day of week, e.g. {example:?}, \
                     or \"\" to turn it off"
                ));
                None
            }
        }
    };
    let retention = schedule(
        "retention_schedule",
        &raw.retention_schedule,
        "30 3 * * *",
        problems,
    );
    let template_sync = schedule(
        "template_sync_schedule",
        &raw.template_sync_schedule,
        "0 * * * *",
        problems,
    );
    let time_zone = match raw.time_zone.trim().parse::<chrono_tz::Tz>() {
        Ok(tz) => tz,
        Err(_) => {
            problems.push(format!(
                "housekeeping.time_zone: {:?} is not a time zone; use a name such as \"UTC\" or \
                 \"Africa/Abidjan\"",
                raw.time_zone
            ));
            d.time_zone
        }
    };
    let min = crate::housekeeping::plan::MIN_FAILED_EVENT_DAYS;
    if raw.failed_event_days < min {
        problems.push(format!(
            "housekeeping.failed_event_days: {} is fewer than {min}; events not processed or \
             failed are the trace of what went wrong and are kept at least {min} days",
            raw.failed_event_days
        ));
    }
    if raw.batch_size == 0 {
        problems.push(
            "housekeeping.batch_size: must be at least 1 (events deleted per call)".to_owned(),
        );
    }
    crate::housekeeping::HousekeepingSettings {
        retention,
        template_sync,
        time_zone,
        processed_event_days: raw.processed_event_days,
        failed_event_days: raw.failed_event_days.max(min),
        batch_size: raw.batch_size.max(1),
    }
}

fn alerts_settings(
    raw: raw::RawAlerts,
    base_dir: Option<&Path>,
    problems: &mut Vec<String>,
) -> crate::alerts::AlertSettings {
    use crate::alerts::{AlertKind, AlertSettings};
    let d = AlertSettings::default();
    let smtp_password = secret(
        "alerts.smtp_password",
        raw.smtp_password,
        raw.smtp_password_file,
        base_dir,
        problems,
    );
    let mut kinds = std::collections::BTreeSet::new();
    for name in &raw.kinds {
        match AlertKind::from_name(name.trim()) {
            Some(kind) => {
                kinds.insert(kind);
            }
            None => problems.push(format!(
                "alerts.kinds: {name:?} is not a kind of alert; use some of {}",
                AlertKind::ALL.map(AlertKind::name).join(", ")
            )),
        }
    }
    let smtp_url = (!raw.smtp_url.trim().is_empty())
        .then(|| match Url::parse(raw.smtp_url.trim()) {
            Ok(u) if matches!(u.scheme(), "smtp" | "smtps") && u.host().is_some() => Some(u),
            _ => {
                problems.push(
                    "alerts.smtp_url: not an smtp:// or smtps:// URL; e.g. smtp://smtp.example.com:587?tls=required (STARTTLS) or smtps://smtp.example.com:465 (TLS)"
                        .to_owned(),
                );
                None
            }
        })
        .flatten();
    if smtp_url.as_ref().is_some_and(|u| u.password().is_some()) {
        problems.push(
            "alerts.smtp_url: holds a password; put it in alerts.smtp_password_file instead (the URL is shown in logs)"
                .to_owned(),
        );
    }
    if !(raw.send_error_ratio > 0.0 && raw.send_error_ratio <= 1.0) {
        problems.push(format!(
            "alerts.send_error_ratio: {} is not a share between 0 and 1 (0.2 = 20 %)",
            raw.send_error_ratio
        ));
    }
    let minutes =
        |key: &str, value: f64, problems: &mut Vec<String>| seconds(key, value * 60.0, problems);
    let settings = AlertSettings {
        enabled: raw.enabled,
        smtp_url,
        smtp_user: Some(raw.smtp_user.trim().to_owned()).filter(|u| !u.is_empty()),
        smtp_password,
        from: raw.from,
        to: raw.to,
        kinds,
        odoo_unreachable_after: minutes(
            "alerts.odoo_unreachable_minutes",
            raw.odoo_unreachable_minutes,
            problems,
        )
        .unwrap_or(d.odoo_unreachable_after),
        bad_signatures_per_hour: raw.bad_signatures_per_hour.max(1),
        send_error_ratio: raw.send_error_ratio,
        token_expiry_days: raw.token_expiry_days,
        check_interval: seconds(
            "alerts.check_interval_secs",
            raw.check_interval_secs,
            problems,
        )
        .unwrap_or(d.check_interval),
        remind_after: seconds(
            "alerts.remind_after_hours",
            raw.remind_after_hours * 3600.0,
            problems,
        )
        .unwrap_or(d.remind_after),
    };
    if settings.enabled {
        // The addresses and the URL, checked now rather than at the first alert.
        if let Err(e) = crate::alerts::Mailer::new(&settings, "") {
            problems.push(e.to_string());
        }
    }
    settings
}

fn bus_settings(raw: &raw::RawBus, problems: &mut Vec<String>) -> crate::bus::BusSettings {
    let d = crate::bus::BusSettings::default();
    let url = raw.url.as_deref().and_then(|value| {
        let parsed = Url::parse(value.trim()).ok().filter(|u| u.host().is_some());
        match parsed {
            Some(url) if crate::bus::protocol::websocket_url(&url).is_ok() => Some(url),
            _ => {
                problems.push(format!(
                    "bus.url: {value:?} is not an http(s) or ws(s) URL; remove it to use odoo.url, \
                     or give Odoo's gevent port (e.g. http://127.0.0.1:8072) when Odoo runs with \
                     workers > 0"
                ));
                None
            }
        }
    });
    crate::bus::BusSettings {
        enabled: raw.enabled,
        url,
        slow_poll_interval: seconds(
            "bus.slow_poll_interval_secs",
            raw.slow_poll_interval_secs,
            problems,
        )
        .unwrap_or(d.slow_poll_interval),
    }
}

fn automations_settings(
    raw: &raw::RawAutomations,
    problems: &mut Vec<String>,
) -> crate::automations::AutomationsSettings {
    let d = crate::automations::AutomationsSettings::default();
    if raw.batch_size == 0 {
        problems
            .push("automations.batch_size: must be at least 1 (orders read per page)".to_owned());
    }
    crate::automations::AutomationsSettings {
        poll_interval: seconds(
            "automations.poll_interval_secs",
            raw.poll_interval_secs,
            problems,
        )
        .unwrap_or(d.poll_interval),
        overlap: match raw.overlap_secs {
            s if s.is_finite() && (0.0..=86_400.0).contains(&s) => Duration::from_secs_f64(s),
            s => {
                problems.push(format!(
                    "automations.overlap_secs: {s} is not a number of seconds between 0 and 86400 \
                     (how far back before the cursor orders are read again; 10 is the default)"
                ));
                d.overlap
            }
        },
        batch_size: raw.batch_size.max(1),
    }
}

fn campaigns_settings(
    raw: &raw::RawCampaigns,
    problems: &mut Vec<String>,
) -> crate::campaigns::CampaignsSettings {
    let d = crate::campaigns::CampaignsSettings::default();
    let kpi_interval = match raw.kpi_interval_secs {
        s if s.is_finite() && s > 0.0 && s <= 10.0 => Duration::from_secs_f64(s),
        s => {
            problems.push(format!(
                "campaigns.kpi_interval_secs: {s} is not a number of seconds above 0 and at most 10 \
                 (KPIs are written at least every 10 s while a campaign runs; 5 is the default)"
            ));
            d.kpi_interval
        }
    };
    let ahead = match raw.ahead_secs {
        s if s.is_finite() && (1.0..=60.0).contains(&s) => Duration::from_secs_f64(s),
        s => {
            problems.push(format!(
                "campaigns.ahead_secs: {s} is not a number of seconds between 1 and 60 (seconds of \
                 sending queued ahead of the outbox; 5 is the default)"
            ));
            d.ahead
        }
    };
    if raw.batch_size == 0 {
        problems.push("campaigns.batch_size: must be at least 1 (recipients per call)".to_owned());
    }
    let max_failure_ratio = if (0.0..=1.0).contains(&raw.max_failure_ratio) {
        raw.max_failure_ratio
    } else {
        problems.push(format!(
            "campaigns.max_failure_ratio: {} is not a share between 0 and 1 (e.g. 0.2: a campaign \
             pauses when more than 20 % of its last 200 sends failed)",
            raw.max_failure_ratio
        ));
        d.max_failure_ratio
    };
    crate::campaigns::CampaignsSettings {
        poll_interval: seconds(
            "campaigns.poll_interval_secs",
            raw.poll_interval_secs,
            problems,
        )
        .unwrap_or(d.poll_interval),
        kpi_interval,
        ahead,
        batch_size: raw.batch_size.max(1),
        max_failure_ratio,
    }
}

fn actions_settings(
    raw: &raw::RawActions,
    problems: &mut Vec<String>,
) -> crate::actions::ActionsSettings {
    let d = crate::actions::ActionsSettings::default();
    if raw.poll_interval_ms == 0 {
        problems.push(
            "actions.poll_interval_ms: must be at least 1 (how often button presses are looked for)"
                .to_owned(),
        );
    }
    if raw.batch_size == 0 {
        problems.push("actions.batch_size: must be at least 1 (presses per step)".to_owned());
    }
    let max_age = if raw.max_age_hours.is_finite() && raw.max_age_hours > 0.0 {
        Duration::from_secs_f64(raw.max_age_hours * 3600.0)
    } else {
        problems.push(format!(
            "actions.max_age_hours: {} is not a positive number of hours (presses older than this \
             are not acted on; 24 is the default)",
            raw.max_age_hours
        ));
        d.max_age
    };
    crate::actions::ActionsSettings {
        poll_interval: Duration::from_millis(raw.poll_interval_ms.max(1)),
        batch_size: raw.batch_size.max(1),
        max_age,
    }
}

fn scenario_settings(
    raw: &raw::RawScenarios,
    problems: &mut Vec<String>,
) -> crate::scenarios::ScenarioSettings {
    let d = crate::scenarios::ScenarioSettings::default();
    let stale_after = if raw.stale_after_hours.is_finite() && raw.stale_after_hours > 0.0 {
        Duration::from_secs_f64(raw.stale_after_hours * 3600.0)
    } else {
        problems.push(format!(
            "scenarios.stale_after_hours: {} is not a positive number of hours (a press on a menu \
             older than this gets the menu again; 24 is the default)",
            raw.stale_after_hours
        ));
        d.stale_after
    };
    if raw.max_messages_per_press == 0 {
        problems.push(
            "scenarios.max_messages_per_press: must be at least 1 (messages one press may queue; 4 is the default)"
                .to_owned(),
        );
    }
    crate::scenarios::ScenarioSettings {
        stale_after,
        max_messages_per_press: raw.max_messages_per_press.max(1),
    }
}

fn socket_addr(key: &str, value: &str, problems: &mut Vec<String>) -> Option<SocketAddr> {
    match value.trim().parse::<SocketAddr>() {
        Ok(addr) => Some(addr),
        Err(_) => {
            problems.push(format!(
                "{key}: {value:?} is not an address:port such as \"127.0.0.1:8787\""
            ));
            None
        }
    }
}

fn at_least_one(key: &str, value: usize, problems: &mut Vec<String>) -> usize {
    if value == 0 {
        problems.push(format!("{key}: must be at least 1"));
        1
    } else {
        value
    }
}

fn webhook_config(
    raw: &raw::RawWebhook,
    problems: &mut Vec<String>,
) -> crate::webhook::WebhookConfig {
    let mut cfg = crate::webhook::WebhookConfig::default();
    if raw.max_body_bytes < 1024 {
        problems.push(format!(
            "webhook.max_body_bytes: {} is too small for Meta's webhooks (they reach 3 MB); use at least 1024",
            raw.max_body_bytes
        ));
    }
    cfg.max_body_bytes = raw.max_body_bytes;
    cfg.ingest.max_batch = at_least_one("webhook.batch_max", raw.batch_max, problems);
    cfg.ingest.linger = Duration::from_millis(raw.batch_linger_ms);
    cfg.ingest.idle = Duration::from_millis(raw.batch_idle_ms);
    if raw.batch_idle_ms > raw.batch_linger_ms {
        problems.push(format!(
            "webhook.batch_idle_ms: {} is above webhook.batch_linger_ms ({}), the longest a batch \
             waits; use at most the linger (e.g. batch_idle_ms = 2, batch_linger_ms = 50)",
            raw.batch_idle_ms, raw.batch_linger_ms
        ));
    }
    if let Some(timeout) = seconds(
        "webhook.reply_timeout_secs",
        raw.reply_timeout_secs,
        problems,
    ) {
        cfg.ingest.reply_timeout = timeout;
    }
    if let Some(refresh) = seconds("webhook.keys_refresh_secs", raw.keys_refresh_secs, problems) {
        cfg.keys.refresh_interval = refresh;
    }
    cfg.forward.max_events =
        at_least_one("webhook.spool_max_events", raw.spool_max_events, problems);
    cfg.forward.batch_max =
        at_least_one("webhook.forward_batch_max", raw.forward_batch_max, problems);
    cfg.forward.interval = Duration::from_millis(raw.forward_interval_ms);
    cfg
}

fn inbound_config(
    raw: &raw::RawInbound,
    problems: &mut Vec<String>,
) -> crate::inbound::InboundConfig {
    let poll_ms = at_least_one(
        "inbound.poll_interval_ms",
        raw.poll_interval_ms as usize,
        problems,
    );
    let mut cfg = crate::inbound::InboundConfig {
        batch_size: at_least_one("inbound.batch_size", raw.batch_size, problems),
        poll_interval: Duration::from_millis(poll_ms as u64),
        min_batch_interval: Duration::from_millis(raw.min_batch_interval_ms),
        status_linger: Duration::from_millis(raw.status_linger_ms),
        status_batch_interval: Duration::from_millis(raw.status_batch_interval_ms),
        ..Default::default()
    };
    if raw.status_batch_interval_ms > 60_000 {
        problems.push(format!(
            "inbound.status_batch_interval_ms: {} is more than a minute of statuses kept in memory; use at most 60000 (0 applies every batch at once)",
            raw.status_batch_interval_ms
        ));
    }
    let hours = raw.pending_give_up_hours;
    if hours.is_finite() && hours > 0.0 && hours <= 24.0 * 30.0 {
        cfg.pending_give_up = Duration::from_secs_f64(hours * 3600.0);
    } else {
        problems.push(format!(
            "inbound.pending_give_up_hours: {hours} is not a number of hours between 0 and 720"
        ));
    }
    cfg
}

fn outbox_settings(
    raw: &raw::RawOutbox,
    problems: &mut Vec<String>,
) -> crate::outbox::OutboxSettings {
    let d = crate::outbox::OutboxSettings::default();
    let mut secs = |key: &str, value: f64, default: Duration| {
        seconds(&format!("outbox.{key}"), value, problems).unwrap_or(default)
    };
    let poll_interval = secs(
        "poll_interval_secs",
        raw.poll_interval_secs,
        d.poll_interval,
    );
    let reconcile_delay = secs(
        "reconcile_delay_secs",
        raw.reconcile_delay_secs,
        d.reconcile_delay,
    );
    let retry_base = secs("retry_base_secs", raw.retry_base_secs, d.retry_base);
    let retry_max = secs("retry_max_secs", raw.retry_max_secs, d.retry_max);
    let pair_interval = secs(
        "pair_interval_secs",
        raw.pair_interval_secs,
        d.pair_interval,
    );
    let flush_interval = secs(
        "flush_interval_secs",
        raw.flush_interval_secs,
        d.flush_interval,
    );
    let batch_size = at_least_one("outbox.batch_size", raw.batch_size, problems);
    let max_in_flight = at_least_one("outbox.max_in_flight", raw.max_in_flight, problems);
    if max_in_flight < batch_size {
        problems.push(format!(
            "outbox.max_in_flight: {max_in_flight} is below outbox.batch_size ({batch_size}); \
             use at least the batch size"
        ));
    }
    crate::outbox::OutboxSettings {
        poll_interval,
        batch_size,
        max_in_flight,
        concurrency: at_least_one("outbox.concurrency", raw.concurrency, problems),
        reconcile_delay,
        max_attempts: at_least_one("outbox.max_attempts", raw.max_attempts as usize, problems)
            as u32,
        retry_base,
        retry_max,
        pair_interval,
        flush_interval,
        chatter_notes: raw.chatter_notes,
        ..d
    }
}

fn required(key: &str, value: Option<String>, problems: &mut Vec<String>) -> Option<String> {
    match value.map(|v| v.trim().to_owned()) {
        Some(v) if !v.is_empty() => Some(v),
        _ => {
            problems.push(format!(
                "{key}: missing; set it in the config file or in {}",
                env_name(key)
            ));
            None
        }
    }
}

fn http_url(key: &str, value: &str, problems: &mut Vec<String>) -> Option<Url> {
    match Url::parse(value.trim()) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => Some(url),
        _ => {
            problems.push(format!("{key}: {value:?} is not an http(s) URL"));
            None
        }
    }
}

/// `[lease]`: the name must be given (the host's by default) and the lease renewed at least
/// twice within its ttl.
fn lease_settings(raw: &raw::RawLease, problems: &mut Vec<String>) -> crate::lease::LeaseConfig {
    let mut config = crate::lease::LeaseConfig::default();
    let name = raw.name.trim();
    if name.is_empty() || name.len() > 200 {
        problems.push(
            "lease.name: give this daemon a name of 1 to 200 characters (the host's name by \
             default); each daemon on one Odoo database needs its own"
                .to_owned(),
        );
    } else {
        config.name = name.to_owned();
    }
    let ttl = seconds("lease.ttl_secs", raw.ttl_secs, problems);
    let renew = seconds("lease.renew_secs", raw.renew_secs, problems);
    if let (Some(ttl), Some(renew)) = (ttl, renew) {
        if ttl > Duration::from_secs(600) {
            problems.push(format!(
                "lease.ttl_secs: {} is longer than Odoo accepts; use at most 600",
                raw.ttl_secs
            ));
        } else if renew.saturating_mul(2) > ttl {
            problems.push(format!(
                "lease.renew_secs: {} renews the lease less than twice within lease.ttl_secs \
                 ({}): a leader would lose it between two renewals; use at most half of it",
                raw.renew_secs, raw.ttl_secs
            ));
        } else {
            config.ttl = ttl;
            config.renew = renew;
        }
    }
    config
}

fn seconds(key: &str, value: f64, problems: &mut Vec<String>) -> Option<Duration> {
    if value.is_finite() && value > 0.0 && value <= 86_400.0 {
        Some(Duration::from_secs_f64(value))
    } else {
        problems.push(format!(
            "{key}: {value} is not a number of seconds between 0 and 86400"
        ));
        None
    }
}

/// `odoo.api_key` → `WHATSAPP_SIDECAR_ODOO__API_KEY`.
pub fn env_name(key: &str) -> String {
    format!("{ENV_PREFIX}{}", key.replace('.', "__").to_uppercase())
}

/// A secret given inline (`key`) or in a file (`key_file`), not both.
fn secret(
    key: &str,
    inline: Option<RawSecret>,
    file: Option<PathBuf>,
    base_dir: Option<&Path>,
    problems: &mut Vec<String>,
) -> Option<Secret> {
    match (inline, file) {
        (Some(_), Some(_)) => {
            problems.push(format!("{key}: set either {key} or {key}_file, not both"));
            None
        }
        (Some(value), None) => {
            let value = value.0;
            if value.is_blank() {
                None
            } else {
                Some(Secret::new(value.expose().trim()))
            }
        }
        (None, Some(path)) => {
            let path = match base_dir {
                Some(dir) if path.is_relative() => dir.join(path),
                _ => path,
            };
            match std::fs::read_to_string(&path) {
                Ok(content) if content.trim().is_empty() => {
                    problems.push(format!("{key}_file: {} is empty", path.display()));
                    None
                }
                Ok(content) => Some(Secret::new(content.trim())),
                Err(err) => {
                    problems.push(format!("{key}_file: cannot read {}: {err}", path.display()));
                    None
                }
            }
        }
        (None, None) => None,
    }
}

#[cfg(test)]
mod tests;
