//! The sandbox's configuration: a TOML file, or the built-in default when there is none.
//!
//! Every field has a default, so an empty file (or no file) gives a working sandbox: phone number
//! `sandbox-0001` on WABA `sandbox-waba`, the demo templates, any token accepted, Meta's default
//! limits (80 messages/s per number, one message per 6 s per recipient) and no callback URL.
//!
//! ```toml
//! tokens = ["my-test-token"]          # empty (default): any bearer token is accepted
//! undeliverable = ["+15550000000"]    # sends to these numbers fail with 131026
//! sync_failures = false               # true: 131047 / 131026 as HTTP errors instead of webhooks
//!
//! [[phone_numbers]]
//! id = "sandbox-0001"
//! display_phone_number = "+1 555 000 0001"
//! throughput_mps = 1000
//!
//! [limits]
//! pair_rate_period_ms = 6000
//! pair_rate_burst = 1
//!
//! [webhooks]
//! callback_url = "http://127.0.0.1:8787/webhook"
//! app_secret_file = "/etc/whatsapp-sidecar/app_secret"
//! delivered_delay_ms = 1000
//!
//! [chaos]
//! failure_ratio = 0.05
//! duplicate_ratio = 0.1
//! send_error_ratio = 0.2              # a fifth of the sends answered HTTP 500 (131000)
//! throttle_after_ms = 30000           # 30 s after start, every send is answered 130429 ...
//! throttle_for_ms = 60000             # ... for a minute
//!
//! [[templates]]
//! name = "order_ready"
//! language = "en_US"
//! components = [{ type = "BODY", text = "Your order {{1}} is ready." }]
//! ```
//!
//! The `[chaos]` section injects faults. Into the webhook stream: `failure_ratio` (messages that
//! end `failed`, with one of `failure_codes`), `duplicate_ratio`, `reorder_ratio`. Into the sends
//! themselves (`POST /{phone-number-id}/messages`), as Meta has them on a bad day:
//!
//! - `send_error_ratio`: that share of the sends is answered HTTP 500 with Meta's transient error
//!   object, code 131000 ("Something went wrong", `error_data.details` "Message failed to send
//!   due to an unknown error."). Such a send is **not accepted**: no wamid, nothing in the
//!   record, no webhook; the client is expected to send it again.
//! - `throttle_after_ms` / `throttle_for_ms`: from `throttle_after_ms` after the sandbox starts
//!   and for `throttle_for_ms`, every send is answered 130429 (rate limit hit, HTTP 400) as when
//!   the number's throughput is used up by another sender; 0 (the default): never.
//!
//! Both apply to sends that pass validation (a malformed send still gets its 400), before the
//! throughput and pair-rate limits (a refused send uses up neither), and each refusal is kept in
//! the list of refused sends (`GET /sandbox/refused`). While the sandbox runs,
//! `POST /sandbox/chaos` changes them: `{"send_error_ratio": 0.2}`, or
//! `{"throttle_for_ms": 60000}` to answer 130429 from now on for a minute (with
//! `"throttle_after_ms"`: from that long after the request); `{"throttle_for_ms": 0}` ends a
//! throttle window. It answers the send chaos now in force, as `GET /sandbox/chaos` does.
//!
//! Templates can also come from `templates_file`, a JSON file in the shape Meta's
//! `GET /{waba-id}/message_templates` answers (`{"data": [...]}`) or a plain array of templates.

use super::error::SandboxError;
use super::templates;
use crate::secret::Secret;
use serde::Deserialize;
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use url::Url;

/// The default phone number id.
pub const DEFAULT_PHONE_NUMBER_ID: &str = "sandbox-0001";
/// The default WhatsApp Business Account id.
pub const DEFAULT_WABA_ID: &str = "sandbox-waba";
/// The app secret used to sign webhooks when none is configured.
pub const DEFAULT_APP_SECRET: &str = "sandbox-app-secret";

/// Everything the sandbox can be told. `Default` is the built-in configuration.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SandboxConfig {
    /// The business phone numbers the sandbox serves.
    pub phone_numbers: Vec<PhoneNumberConfig>,
    /// Message templates, each belonging to a WABA (default `sandbox-waba`).
    pub templates: Vec<TemplateConfig>,
    /// A JSON file with more templates (Meta's listing shape or a plain array).
    pub templates_file: Option<PathBuf>,
    /// Accepted bearer tokens. Empty: any token is accepted (a token must still be sent).
    pub tokens: Vec<Secret>,
    /// Recipient numbers that never receive anything: sends to them fail with 131026.
    pub undeliverable: Vec<String>,
    /// When true, 131047 (24-hour window) and 131026 (undeliverable) are answered synchronously
    /// as HTTP errors. When false (the default, as Meta usually does), the send is accepted and a
    /// `failed` status webhook carries the error.
    pub sync_failures: bool,
    /// When false, free-form messages are accepted whatever the 24-hour window says.
    pub enforce_window: bool,
    /// When true, webhooks carry business-scoped user ids (`user_id`, `recipient_user_id`) as
    /// Meta does since 2026.
    pub user_ids: bool,
    /// How many accepted messages the record keeps (the oldest are dropped beyond it). Each
    /// takes about 1 KB (the request body is kept).
    pub record_limit: usize,
    /// How long a media download URL stays valid, in seconds (Meta: about 5 minutes).
    pub media_url_ttl_secs: u64,
    /// When the access tokens expire, as `GET /debug_token` reports it (Unix seconds; 0: never,
    /// as a System User token).
    pub token_expires_at: i64,
    /// Whether an app is subscribed to the WABAs' webhooks (`GET /{waba}/subscribed_apps`).
    pub webhook_subscribed: bool,
    /// The base URL written into media URLs and `paging.next`; default: from the request's Host.
    #[serde(deserialize_with = "de_url_opt")]
    pub public_url: Option<Url>,
    /// Rate limits other than the per-number throughput.
    pub limits: LimitsConfig,
    /// Status webhooks: where, how signed, how fast, how retried.
    pub webhooks: WebhookConfig,
    /// Faults to inject into the webhook stream.
    pub chaos: ChaosConfig,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            phone_numbers: vec![PhoneNumberConfig::default()],
            templates: templates::default_templates(),
            templates_file: None,
            tokens: Vec::new(),
            undeliverable: Vec::new(),
            sync_failures: false,
            enforce_window: true,
            user_ids: true,
            record_limit: 50_000,
            media_url_ttl_secs: 300,
            token_expires_at: 0,
            webhook_subscribed: true,
            public_url: None,
            limits: LimitsConfig::default(),
            webhooks: WebhookConfig::default(),
            chaos: ChaosConfig::default(),
        }
    }
}

/// One business phone number.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PhoneNumberConfig {
    /// The phone number id used in API paths.
    pub id: String,
    /// The number as shown to users, e.g. `+1 555 000 0001`.
    pub display_phone_number: String,
    /// The business display name.
    pub verified_name: String,
    /// The WABA this number belongs to.
    pub waba_id: String,
    /// `GREEN`, `YELLOW`, `RED` or `UNKNOWN`.
    pub quality_rating: String,
    /// `APPROVED`, `PENDING_REVIEW`, `DECLINED`, ...
    pub name_status: String,
    /// Messages per second this number may send (Meta: 80 by default, 1000 when upgraded).
    pub throughput_mps: u32,
    /// How many messages may go at once before the rate applies; default one second's worth.
    pub throughput_burst: Option<u32>,
    /// The messaging limit tier the number reports (`TIER_250` ... `TIER_UNLIMITED`); the
    /// daemon's settings check stores it on the account and the outbox enforces it.
    pub messaging_limit_tier: String,
}

impl Default for PhoneNumberConfig {
    fn default() -> Self {
        PhoneNumberConfig {
            id: DEFAULT_PHONE_NUMBER_ID.to_string(),
            display_phone_number: "+1 555 000 0001".to_string(),
            verified_name: "Sidecar Sandbox".to_string(),
            waba_id: DEFAULT_WABA_ID.to_string(),
            quality_rating: "GREEN".to_string(),
            name_status: "APPROVED".to_string(),
            throughput_mps: 80,
            throughput_burst: None,
            messaging_limit_tier: "TIER_250".to_string(),
        }
    }
}

impl PhoneNumberConfig {
    /// The display number as digits only, the way webhooks' `metadata.display_phone_number` and
    /// `context.from` carry it.
    pub fn display_digits(&self) -> String {
        self.display_phone_number
            .chars()
            .filter(|c| c.is_ascii_digit())
            .collect()
    }
}

/// A message template as Meta lists it.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TemplateConfig {
    /// The WABA owning the template.
    pub waba_id: String,
    /// Meta's template id; generated from the name and language when empty.
    pub id: String,
    /// The template name.
    pub name: String,
    /// The language code, e.g. `en_US`.
    pub language: String,
    /// `APPROVED`, `PENDING`, `REJECTED`, `PAUSED`, `DISABLED`, ...
    pub status: String,
    /// `UTILITY`, `MARKETING` or `AUTHENTICATION`.
    pub category: String,
    /// `POSITIONAL` or `NAMED`.
    pub parameter_format: String,
    /// The components exactly as Meta lists them (`HEADER`, `BODY`, `FOOTER`, `BUTTONS`).
    pub components: serde_json::Value,
}

impl Default for TemplateConfig {
    fn default() -> Self {
        TemplateConfig {
            waba_id: DEFAULT_WABA_ID.to_string(),
            id: String::new(),
            name: String::new(),
            language: "en_US".to_string(),
            status: "APPROVED".to_string(),
            category: "UTILITY".to_string(),
            parameter_format: "POSITIONAL".to_string(),
            components: serde_json::Value::Array(Vec::new()),
        }
    }
}

/// Rate limits other than the per-number throughput.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// One message per this many milliseconds to the same recipient from the same number
    /// (Meta: about 6 s); past it, 131056.
    pub pair_rate_period_ms: u64,
    /// How many messages to one recipient may go at once before the pair rate applies.
    pub pair_rate_burst: u32,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            pair_rate_period_ms: 6_000,
            pair_rate_burst: 1,
        }
    }
}

/// Status and inbound webhooks.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookConfig {
    /// Where webhooks are POSTed; none: statuses only update the record.
    #[serde(deserialize_with = "de_url_opt")]
    pub callback_url: Option<Url>,
    /// The app secret signing `X-Hub-Signature-256`; default `sandbox-app-secret`.
    pub app_secret: Option<Secret>,
    /// A file holding the app secret (trailing white space ignored); wins over `app_secret`.
    pub app_secret_file: Option<PathBuf>,
    /// When set, the sandbox verifies the callback at start as Meta does
    /// (`GET ?hub.mode=subscribe&hub.challenge=...&hub.verify_token=...`).
    pub verify_token: Option<Secret>,
    /// Delay from acceptance to the `sent` status.
    pub sent_delay_ms: u64,
    /// Delay from acceptance to the `delivered` status.
    pub delivered_delay_ms: u64,
    /// Delay from acceptance to the `read` status.
    pub read_delay_ms: u64,
    /// A random extra delay up to this many milliseconds, added to each status.
    pub jitter_ms: u64,
    /// The share of delivered messages that are also read (users with read receipts on).
    pub read_ratio: f64,
    /// Statuses due together and for the same number are sent in one POST, up to this many.
    pub batch_max: usize,
    /// Timeout of one webhook POST.
    pub timeout_ms: u64,
    /// First retry delay when the callback does not answer 200; it doubles up to `retry_max_delay_ms`.
    pub retry_initial_ms: u64,
    /// The longest delay between two retries.
    pub retry_max_delay_ms: u64,
    /// Give up retrying a webhook after this long (Meta: up to 7 days).
    pub retry_for_secs: u64,
    /// How many webhook POSTs may be in flight at once.
    pub concurrency: usize,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            callback_url: None,
            app_secret: None,
            app_secret_file: None,
            verify_token: None,
            sent_delay_ms: 200,
            delivered_delay_ms: 1_000,
            read_delay_ms: 3_000,
            jitter_ms: 100,
            read_ratio: 1.0,
            batch_max: 1,
            timeout_ms: 10_000,
            retry_initial_ms: 1_000,
            retry_max_delay_ms: 300_000,
            retry_for_secs: 7 * 24 * 3600,
            concurrency: 64,
        }
    }
}

/// Faults injected into the webhook stream and into the sends (see the module docs); the
/// ratios are probabilities between 0 and 1.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChaosConfig {
    /// The share of accepted messages that end `failed` instead of delivered.
    pub failure_ratio: f64,
    /// The error codes those failures carry, picked at random (default 131026).
    pub failure_codes: Vec<u32>,
    /// The share of webhook POSTs delivered twice.
    pub duplicate_ratio: f64,
    /// The share of messages whose statuses arrive out of order (e.g. `read` before `delivered`).
    pub reorder_ratio: f64,
    /// The share of sends answered HTTP 500 with Meta's transient error 131000, and not
    /// accepted (no wamid, not recorded, no webhook).
    pub send_error_ratio: f64,
    /// When the throttle window starts, in milliseconds after the sandbox starts.
    pub throttle_after_ms: u64,
    /// How long every send is answered 130429 (rate limit hit) from `throttle_after_ms` on;
    /// 0: never.
    pub throttle_for_ms: u64,
}

impl Default for ChaosConfig {
    fn default() -> Self {
        ChaosConfig {
            failure_ratio: 0.0,
            failure_codes: vec![131026],
            duplicate_ratio: 0.0,
            reorder_ratio: 0.0,
            send_error_ratio: 0.0,
            throttle_after_ms: 0,
            throttle_for_ms: 0,
        }
    }
}

/// Reads an optional URL from a string, naming the bad value.
fn de_url_opt<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Option<Url>, D::Error> {
    let text = Option::<String>::deserialize(deserializer)?;
    match text {
        None => Ok(None),
        Some(text) => Url::parse(&text)
            .map(Some)
            .map_err(|e| serde::de::Error::custom(format!("{text:?} is not a URL: {e}"))),
    }
}

impl SandboxConfig {
    /// Reads a TOML file. Fields it leaves out keep their defaults.
    pub fn from_file(path: &Path) -> Result<SandboxConfig, SandboxError> {
        let text = std::fs::read_to_string(path).map_err(|source| SandboxError::ConfigRead {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml_str(&text).map_err(|e| match e {
            SandboxError::Config(message) => {
                SandboxError::Config(format!("{}: {message}", path.display()))
            }
            other => other,
        })
    }

    /// Parses TOML text. Fields it leaves out keep their defaults.
    pub fn from_toml_str(text: &str) -> Result<SandboxConfig, SandboxError> {
        toml::from_str(text).map_err(|e| SandboxError::Config(e.to_string()))
    }

    /// Reads the files the configuration points at (app secret, templates file) into it.
    pub fn load_files(&mut self) -> Result<(), SandboxError> {
        if let Some(path) = self.webhooks.app_secret_file.clone() {
            let text =
                std::fs::read_to_string(&path).map_err(|source| SandboxError::ConfigRead {
                    path: path.clone(),
                    source,
                })?;
            let secret = text.trim_end();
            if secret.is_empty() {
                return Err(SandboxError::Config(format!(
                    "the app secret file {} is empty: write the app secret into it",
                    path.display()
                )));
            }
            self.webhooks.app_secret = Some(Secret::new(secret));
            self.webhooks.app_secret_file = None;
        }
        if let Some(path) = self.templates_file.take() {
            let text =
                std::fs::read_to_string(&path).map_err(|source| SandboxError::ConfigRead {
                    path: path.clone(),
                    source,
                })?;
            let extra = templates::parse_templates_json(&text).map_err(|message| {
                SandboxError::Config(format!("templates file {}: {message}", path.display()))
            })?;
            self.templates.extend(extra);
        }
        Ok(())
    }

    /// Checks the values, naming the first wrong one and how to fix it.
    pub fn validate(&self) -> Result<(), SandboxError> {
        let bad = |message: String| Err(SandboxError::Config(message));
        if self.phone_numbers.is_empty() {
            return bad("phone_numbers is empty: configure at least one [[phone_numbers]]".into());
        }
        let mut ids = HashSet::new();
        for number in &self.phone_numbers {
            if number.id.trim().is_empty() || number.id.contains('/') {
                return bad(format!(
                    "phone number id {:?} is not usable in a URL path: use letters, digits and dashes",
                    number.id
                ));
            }
            if !ids.insert(number.id.as_str()) {
                return bad(format!(
                    "phone number id {:?} is configured twice",
                    number.id
                ));
            }
            if number.display_digits().len() < 5 {
                return bad(format!(
                    "display_phone_number {:?} of {} has too few digits: write it like \"+1 555 000 0001\"",
                    number.display_phone_number, number.id
                ));
            }
            if number.throughput_mps == 0 || number.throughput_burst == Some(0) {
                return bad(format!(
                    "throughput_mps and throughput_burst of {} must be at least 1",
                    number.id
                ));
            }
        }
        if self.limits.pair_rate_period_ms == 0 || self.limits.pair_rate_burst == 0 {
            return bad(
                "limits.pair_rate_period_ms and limits.pair_rate_burst must be at least 1".into(),
            );
        }
        for (name, ratio) in [
            ("chaos.failure_ratio", self.chaos.failure_ratio),
            ("chaos.duplicate_ratio", self.chaos.duplicate_ratio),
            ("chaos.reorder_ratio", self.chaos.reorder_ratio),
            ("chaos.send_error_ratio", self.chaos.send_error_ratio),
            ("webhooks.read_ratio", self.webhooks.read_ratio),
        ] {
            if !(0.0..=1.0).contains(&ratio) {
                return bad(format!("{name} = {ratio} is not between 0 and 1"));
            }
        }
        if self.chaos.throttle_after_ms > 0 && self.chaos.throttle_for_ms == 0 {
            return bad(format!(
                "chaos.throttle_after_ms = {} is set but chaos.throttle_for_ms is 0: set how long sends are answered 130429",
                self.chaos.throttle_after_ms
            ));
        }
        if self.chaos.failure_ratio > 0.0 && self.chaos.failure_codes.is_empty() {
            return bad("chaos.failure_ratio is set but chaos.failure_codes is empty: list at least one code".into());
        }
        if self.webhooks.batch_max == 0 || self.webhooks.concurrency == 0 {
            return bad("webhooks.batch_max and webhooks.concurrency must be at least 1".into());
        }
        if self.webhooks.timeout_ms == 0 || self.webhooks.retry_initial_ms == 0 {
            return bad(
                "webhooks.timeout_ms and webhooks.retry_initial_ms must be at least 1".into(),
            );
        }
        if let Some(url) = &self.webhooks.callback_url {
            if !matches!(url.scheme(), "http" | "https") {
                return bad(format!(
                    "webhooks.callback_url {url} must be an http:// or https:// URL"
                ));
            }
        }
        if let Some(url) = &self.public_url {
            if !matches!(url.scheme(), "http" | "https") {
                return bad(format!(
                    "public_url {url} must be an http:// or https:// URL"
                ));
            }
        }
        if self.tokens.iter().any(Secret::is_blank) {
            return bad("tokens contains an empty token: remove it".into());
        }
        if self.record_limit == 0 {
            return bad("record_limit must be at least 1".into());
        }
        for number in &self.undeliverable {
            if super::validate::normalise_recipient(number).is_none() {
                return bad(format!(
                    "undeliverable number {number:?} is not a phone number: write it as +<country code><number>"
                ));
            }
        }
        let mut keys = HashSet::new();
        for template in &self.templates {
            if !keys.insert((&template.waba_id, &template.name, &template.language)) {
                return bad(format!(
                    "template {} ({}) of WABA {} is configured twice",
                    template.name, template.language, template.waba_id
                ));
            }
            templates::TemplateSpec::from_config(template).map_err(SandboxError::Config)?;
        }
        Ok(())
    }

    /// The app secret that signs webhooks.
    pub fn app_secret(&self) -> Secret {
        self.webhooks
            .app_secret
            .clone()
            .unwrap_or_else(|| Secret::new(DEFAULT_APP_SECRET))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_configuration_is_valid() {
        let config = SandboxConfig::default();
        config.validate().unwrap();
        assert_eq!(config.phone_numbers[0].id, "sandbox-0001");
        assert_eq!(config.phone_numbers[0].waba_id, "sandbox-waba");
        assert_eq!(config.phone_numbers[0].throughput_mps, 80);
        assert_eq!(config.limits.pair_rate_period_ms, 6_000);
        assert!(config.tokens.is_empty());
    }

    #[test]
    fn an_empty_file_gives_the_defaults() {
        let config = SandboxConfig::from_toml_str("").unwrap();
        config.validate().unwrap();
        assert_eq!(config.phone_numbers.len(), 1);
        assert!(config.templates.iter().any(|t| t.name == "sidecar_invoice"));
    }

    #[test]
    fn a_file_overrides_fields_and_keeps_the_rest() {
        let config = SandboxConfig::from_toml_str(
            r#"
            tokens = ["t1"]
            [[phone_numbers]]
            id = "pn-2"
            throughput_mps = 1000
            [webhooks]
            callback_url = "http://127.0.0.1:9/hook"
            batch_max = 5
            [[templates]]
            name = "order_ready"
            components = [{ type = "BODY", text = "Order {{1}} is ready" }]
            "#,
        )
        .unwrap();
        config.validate().unwrap();
        assert_eq!(config.phone_numbers[0].id, "pn-2");
        assert_eq!(config.phone_numbers[0].waba_id, "sandbox-waba");
        assert_eq!(config.phone_numbers[0].throughput_mps, 1000);
        assert_eq!(config.webhooks.batch_max, 5);
        assert_eq!(config.webhooks.delivered_delay_ms, 1_000);
        assert_eq!(config.templates.len(), 1);
        assert_eq!(config.templates[0].language, "en_US");
        assert_eq!(config.tokens[0].expose(), "t1");
    }

    #[test]
    fn send_chaos_is_read_from_the_chaos_section() {
        let config = SandboxConfig::from_toml_str(
            "[chaos]\nsend_error_ratio = 0.2\nthrottle_after_ms = 30000\nthrottle_for_ms = 60000\n",
        )
        .unwrap();
        config.validate().unwrap();
        assert_eq!(config.chaos.send_error_ratio, 0.2);
        assert_eq!(config.chaos.throttle_after_ms, 30_000);
        assert_eq!(config.chaos.throttle_for_ms, 60_000);
        let default = SandboxConfig::default();
        assert_eq!(default.chaos.send_error_ratio, 0.0);
        assert_eq!(default.chaos.throttle_for_ms, 0);
    }

    #[test]
    fn unknown_keys_are_refused_with_their_name() {
        let err = SandboxConfig::from_toml_str("[webhooks]\ncallback = \"x\"").unwrap_err();
        assert!(err.to_string().contains("callback"), "{err}");
    }

    #[test]
    fn bad_values_are_named() {
        let mut config = SandboxConfig::default();
        config.chaos.failure_ratio = 1.5;
        assert!(config
            .validate()
            .unwrap_err()
            .to_string()
            .contains("chaos.failure_ratio"));

        let mut config = SandboxConfig::default();
        config.chaos.send_error_ratio = -0.1;
        assert!(config
            .validate()
            .unwrap_err()
            .to_string()
            .contains("chaos.send_error_ratio"));

        let mut config = SandboxConfig::default();
        config.chaos.throttle_after_ms = 1_000;
        assert!(config
            .validate()
            .unwrap_err()
            .to_string()
            .contains("chaos.throttle_for_ms"));

        let mut config = SandboxConfig::default();
        config.phone_numbers.push(PhoneNumberConfig::default());
        assert!(config.validate().unwrap_err().to_string().contains("twice"));

        let mut config = SandboxConfig::default();
        config.undeliverable.push("not a number".into());
        assert!(config
            .validate()
            .unwrap_err()
            .to_string()
            .contains("not a phone number"));

        let mut config = SandboxConfig::default();
        config.phone_numbers[0].throughput_mps = 0;
        assert!(config
            .validate()
            .unwrap_err()
            .to_string()
            .contains("throughput_mps"));
    }

    #[test]
    fn the_app_secret_file_is_read_and_trimmed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, "s3cret\n").unwrap();
        let mut config = SandboxConfig::default();
        config.webhooks.app_secret_file = Some(path);
        config.load_files().unwrap();
        assert_eq!(config.app_secret().expose(), "s3cret");
        assert!(!format!("{config:?}").contains("s3cret"));
    }

    #[test]
    fn an_empty_secret_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret");
        std::fs::write(&path, "\n").unwrap();
        let mut config = SandboxConfig::default();
        config.webhooks.app_secret_file = Some(path);
        assert!(config
            .load_files()
            .unwrap_err()
            .to_string()
            .contains("empty"));
    }
}
