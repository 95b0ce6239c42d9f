//! The account check behind `whatsapp-sidecar check` and Odoo's "Check settings" button.
//!
//! [`crate::whatsapp::CloudClient::check_account`] makes the calls (phone number, messaging
//! limit, one page of templates); this file holds what is read ([`PhoneNumberInfo`]) and how
//! results and failures become [`CheckLine`]s a person can act on: a bad token (190), a missing
//! permission (10, 200–299, 3), a wrong id (100 with subcode 33), an unreachable Graph API.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};
use std::fmt;

use super::client::{AccountHandle, ClientConfig, DEFAULT_API_VERSION};
use super::error::WhatsAppError;

/// The fields read from `GET /{phone-number-id}`.
pub const PHONE_NUMBER_FIELDS: &str = "id,display_phone_number,verified_name,quality_rating,\
throughput,name_status,code_verification_status,platform_type";

/// What Meta says about an access token (`GET /debug_token`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    pub is_valid: bool,
    /// When it expires; `None` when it never does (a System User token).
    pub expires_at: Option<chrono::DateTime<chrono::Utc>>,
}

#[derive(Deserialize)]
pub(crate) struct DebugTokenEnvelope {
    pub(crate) data: DebugTokenData,
}

#[derive(Deserialize)]
pub(crate) struct DebugTokenData {
    #[serde(default)]
    pub(crate) is_valid: bool,
    #[serde(default)]
    pub(crate) expires_at: i64,
}

impl From<DebugTokenData> for TokenInfo {
    fn from(d: DebugTokenData) -> Self {
        TokenInfo {
            is_valid: d.is_valid,
            expires_at: (d.expires_at > 0)
                .then(|| chrono::DateTime::from_timestamp(d.expires_at, 0))
                .flatten(),
        }
    }
}

/// What Meta says about a business phone number.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct PhoneNumberInfo {
    /// The phone number id.
    #[serde(
        default,
        deserialize_with = "de_opt_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub id: Option<String>,
    /// The number as shown, e.g. `+1 555-078-3881`.
    #[serde(
        default,
        deserialize_with = "de_opt_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub display_phone_number: Option<String>,
    /// The approved display name.
    #[serde(
        default,
        deserialize_with = "de_opt_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub verified_name: Option<String>,
    /// GREEN, YELLOW, RED or UNKNOWN.
    #[serde(
        default,
        deserialize_with = "de_opt_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub quality_rating: Option<String>,
    /// `{"level": "STANDARD" | "HIGH" | "NOT_APPLICABLE"}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub throughput: Option<Throughput>,
    /// Display name review: APPROVED, PENDING_REVIEW, DECLINED, ...
    #[serde(
        default,
        deserialize_with = "de_opt_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub name_status: Option<String>,
    /// VERIFIED, NOT_VERIFIED, EXPIRED.
    #[serde(
        default,
        deserialize_with = "de_opt_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub code_verification_status: Option<String>,
    /// CLOUD_API, ON_PREMISE or NOT_APPLICABLE (not registered).
    #[serde(
        default,
        deserialize_with = "de_opt_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub platform_type: Option<String>,
    /// Deprecated tier field (TIER_250 … TIER_UNLIMITED), read when Meta still sends it.
    #[serde(
        default,
        deserialize_with = "de_opt_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub messaging_limit_tier: Option<String>,
    /// The portfolio-level messaging limit, as sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub whatsapp_business_manager_messaging_limit: Option<Value>,
    /// Other fields, as sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `throughput` of a phone number.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Throughput {
    /// STANDARD, HIGH or NOT_APPLICABLE.
    #[serde(
        default,
        deserialize_with = "de_opt_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub level: Option<String>,
}

fn de_opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::String(s) => Some(s),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    })
}

impl PhoneNumberInfo {
    /// The throughput level, if Meta sent one.
    pub fn throughput_level(&self) -> Option<&str> {
        self.throughput.as_ref().and_then(|t| t.level.as_deref())
    }

    /// Messages per second the level allows: STANDARD 80, HIGH 1,000 (Meta's phone-number
    /// reference and throughput page).
    pub fn throughput_mps(&self) -> Option<u32> {
        match self.throughput_level()? {
            "STANDARD" => Some(80),
            "HIGH" => Some(1000),
            _ => None,
        }
    }

    /// The messaging limit in words (portfolio limit, else the deprecated tier), if known.
    pub fn messaging_limit(&self) -> Option<String> {
        match &self.whatsapp_business_manager_messaging_limit {
            Some(Value::String(s)) => return Some(s.clone()),
            Some(Value::Object(o)) => {
                if let Some(Value::String(s)) = o.get("current_limit").or_else(|| o.get("tier")) {
                    return Some(s.clone());
                }
                return Some(Value::Object(o.clone()).to_string());
            }
            Some(Value::Number(n)) => return Some(n.to_string()),
            _ => {}
        }
        self.messaging_limit_tier.clone()
    }
}

/// How one check went.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum CheckStatus {
    /// Fine.
    Ok,
    /// Works, but needs attention.
    Warn,
    /// Does not work; the detail says what to do.
    Fail,
}

impl CheckStatus {
    /// `OK`, `WARN` or `FAIL`.
    pub fn as_str(self) -> &'static str {
        match self {
            CheckStatus::Ok => "OK",
            CheckStatus::Warn => "WARN",
            CheckStatus::Fail => "FAIL",
        }
    }
}

/// One line of the check report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CheckLine {
    /// OK, WARN or FAIL.
    pub status: CheckStatus,
    /// What was checked, e.g. `access token`.
    pub item: String,
    /// What was found, or what to do.
    pub detail: String,
}

impl CheckLine {
    fn new(status: CheckStatus, item: impl Into<String>, detail: impl Into<String>) -> Self {
        CheckLine {
            status,
            item: item.into(),
            detail: detail.into(),
        }
    }
}

impl fmt::Display for CheckLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:<4} {}: {}",
            self.status.as_str(),
            self.item,
            self.detail
        )
    }
}

/// The whole report.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct AccountCheck {
    /// The lines, in order.
    pub lines: Vec<CheckLine>,
    /// The phone number, when it could be read (for the account's read-only fields).
    pub phone: Option<PhoneNumberInfo>,
}

impl AccountCheck {
    /// True when no line failed.
    pub fn is_ok(&self) -> bool {
        self.lines.iter().all(|l| l.status != CheckStatus::Fail)
    }

    /// The lines, one per line of text (for `last_check_message` and the CLI).
    pub fn report(&self) -> String {
        self.lines
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("\n")
    }

    pub(crate) fn push(&mut self, line: CheckLine) {
        self.lines.push(line);
    }
}

/// Which call failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckStep {
    /// `GET /{phone-number-id}`.
    PhoneNumber,
    /// `GET /{waba-id}/message_templates`.
    Templates,
}

/// Checks the settings before any call: ids present and shaped like ids, token present, the
/// account's Graph API version (when it has one) shaped like `v26.0`.
pub fn check_settings(account: &AccountHandle) -> Vec<CheckLine> {
    let mut lines = Vec::new();
    if let Some(version) = account.api_version.as_deref() {
        if !super::client::is_api_version(version) {
            lines.push(CheckLine::new(
                CheckStatus::Fail,
                "Graph API version",
                format!(
                    "'{version}' is not a Graph API version like {DEFAULT_API_VERSION}: set \
                     Graph API version on the WhatsApp account to e.g. {DEFAULT_API_VERSION}"
                ),
            ));
        }
    }
    if account.token.is_blank() {
        lines.push(CheckLine::new(
            CheckStatus::Fail,
            "access token",
            "no access token is set: create a permanent token for a System User in Meta \
             Business Settings (Users > System users > Generate new token) with the \
             whatsapp_business_messaging and whatsapp_business_management permissions",
        ));
    }
    for (item, value, hint) in [
        (
            "phone number id",
            &account.phone_number_id,
            "the Phone number ID shown in WhatsApp Manager > API Setup",
        ),
        (
            "WhatsApp Business Account id",
            &account.waba_id,
            "the WhatsApp Business Account ID shown in WhatsApp Manager > API Setup",
        ),
    ] {
        let v = value.trim();
        if v.is_empty() {
            lines.push(CheckLine::new(
                CheckStatus::Fail,
                item,
                format!("it is empty: enter {hint}"),
            ));
        } else if v.starts_with('+')
            || v.contains(' ')
            || (v.contains('-') && v.chars().all(|c| c.is_ascii_digit() || c == '-'))
        {
            lines.push(CheckLine::new(
                CheckStatus::Fail,
                item,
                format!("'{v}' looks like a phone number, not an id: enter {hint}"),
            ));
        } else if !super::client::is_graph_id(v) {
            lines.push(CheckLine::new(
                CheckStatus::Fail,
                item,
                format!("'{v}' is not a Graph API id (letters, digits, '-', '_', '.', ':'): enter {hint}"),
            ));
        }
    }
    lines
}

/// Lines describing a phone number that could be read.
pub fn phone_lines(info: &PhoneNumberInfo, account: &AccountHandle) -> Vec<CheckLine> {
    let mut lines = Vec::new();
    let number = info
        .display_phone_number
        .as_deref()
        .unwrap_or("(no display number)");
    let name = info
        .verified_name
        .as_deref()
        .unwrap_or("(no verified name)");
    let quality = info.quality_rating.as_deref().unwrap_or("UNKNOWN");
    let throughput = match (info.throughput_level(), info.throughput_mps()) {
        (Some(level), Some(mps)) => format!("{level} ({mps} messages/s)"),
        (Some(level), None) => level.to_string(),
        _ => "not reported".into(),
    };
    lines.push(CheckLine::new(
        CheckStatus::Ok,
        "access token",
        "accepted by Meta",
    ));
    lines.push(CheckLine::new(
        CheckStatus::Ok,
        format!("phone number {}", account.phone_number_id),
        format!(
            "{number} \"{name}\", quality {quality}, throughput {throughput}, name status {}",
            info.name_status.as_deref().unwrap_or("not reported")
        ),
    ));
    match quality {
        "RED" => lines.push(CheckLine::new(
            CheckStatus::Warn,
            "quality rating",
            "RED: many users blocked or reported recent messages. Campaigns pause and templates \
             may be paused; review recent campaigns in WhatsApp Manager > Insights",
        )),
        "YELLOW" => lines.push(CheckLine::new(
            CheckStatus::Warn,
            "quality rating",
            "YELLOW: users are starting to block or report messages; slow campaigns down and \
             check their content",
        )),
        _ => {}
    }
    match info.platform_type.as_deref() {
        Some("CLOUD_API") | None => {}
        Some(other) => lines.push(CheckLine::new(
            CheckStatus::Fail,
            "registration",
            format!(
                "the number's platform is {other}, not CLOUD_API: register it on the Cloud API \
                 (POST /{{phone-number-id}}/register) or sends fail with error 133010"
            ),
        )),
    }
    if let Some(status) = info.name_status.as_deref() {
        if matches!(status, "DECLINED" | "NONE" | "EXPIRED") {
            lines.push(CheckLine::new(
                CheckStatus::Warn,
                "display name",
                format!("name status is {status}: submit a display name in WhatsApp Manager"),
            ));
        }
    }
    if let Some(limit) = info.messaging_limit() {
        lines.push(CheckLine::new(CheckStatus::Ok, "messaging limit", limit));
    }
    lines
}

/// The line for a successful template read.
pub fn templates_line(account: &AccountHandle, seen: usize) -> CheckLine {
    CheckLine::new(
        CheckStatus::Ok,
        format!("WhatsApp Business Account {}", account.waba_id),
        if seen == 0 {
            "readable, but it has no message templates yet: create them in WhatsApp Manager \
             (only templates can start a conversation)"
                .to_string()
        } else {
            "readable; templates can be listed".to_string()
        },
    )
}

/// A warning line.
pub fn warn_line(item: &str, detail: String) -> CheckLine {
    CheckLine::new(CheckStatus::Warn, item, detail)
}

/// The WABA's webhook subscription (`GET /{waba-id}/subscribed_apps`): without an app
/// subscribed, Meta sends no status and no customer message to any webhook.
pub fn subscribed_apps_line(account: &AccountHandle, apps: &[String]) -> CheckLine {
    let item = format!("webhooks of WhatsApp Business Account {}", account.waba_id);
    if apps.is_empty() {
        CheckLine::new(
            CheckStatus::Fail,
            item,
            format!(
                "no app is subscribed: Meta sends no statuses and no customer messages. Subscribe the Meta app whose webhook points at this daemon: POST /{{version}}/{}/subscribed_apps with the account's token (e.g. curl -X POST -H 'Authorization: Bearer <token>' https://graph.facebook.com/v26.0/{}/subscribed_apps)",
                account.waba_id, account.waba_id
            ),
        )
    } else {
        CheckLine::new(
            CheckStatus::Ok,
            item,
            format!("subscribed app(s): {}", apps.join(", ")),
        )
    }
}

/// The token's validity and expiry as Meta reports them (`GET /debug_token`); a token that
/// expires within `warn_days` is a warning.
pub fn token_line(
    info: &TokenInfo,
    now: chrono::DateTime<chrono::Utc>,
    warn_days: i64,
) -> CheckLine {
    let item = "access token expiry";
    if !info.is_valid {
        return CheckLine::new(
            CheckStatus::Fail,
            item,
            "Meta says the token is no longer valid: generate a new System User token and put it in the account's Access token field",
        );
    }
    match info.expires_at {
        None => CheckLine::new(
            CheckStatus::Ok,
            item,
            "does not expire (a System User token)",
        ),
        Some(at) if at - now <= chrono::Duration::days(warn_days) => CheckLine::new(
            CheckStatus::Warn,
            item,
            format!(
                "expires on {} UTC: replace it before then with a System User token (Meta Business Settings > Users > System users > Generate new token), which does not expire",
                at.format("%Y-%m-%d %H:%M")
            ),
        ),
        Some(at) => CheckLine::new(
            CheckStatus::Ok,
            item,
            format!("expires on {} UTC", at.format("%Y-%m-%d %H:%M")),
        ),
    }
}

/// True when the failure means no further call can succeed (token or network problem).
pub fn stops_the_check(err: &WhatsAppError) -> bool {
    match err {
        WhatsAppError::Meta { error, .. } => matches!(error.code, 0 | 190),
        WhatsAppError::Transport { .. } | WhatsAppError::Config(_) => true,
        WhatsAppError::Http { status, .. } => *status == 404,
        _ => false,
    }
}

fn token_subcode_words(subcode: Option<i64>) -> &'static str {
    match subcode {
        Some(463) => " (it has expired)",
        Some(460) => " (the password of its user changed)",
        Some(467) => " (it was invalidated)",
        Some(458) => " (the app was removed from the user)",
        Some(492) => " (the user's session is invalid)",
        _ => "",
    }
}

/// The version the account's calls use and where it is set.
fn version_words(account: &AccountHandle, config: &ClientConfig) -> String {
    match account.api_version.as_deref() {
        Some(v) => format!("{v} (Graph API version on the WhatsApp account)"),
        None => format!(
            "{} (whatsapp.api_version in the daemon's configuration)",
            config.api_version
        ),
    }
}

/// Turns a failed call into a line saying what to do.
pub fn explain(
    step: CheckStep,
    account: &AccountHandle,
    config: &ClientConfig,
    err: &WhatsAppError,
) -> CheckLine {
    let (item, id_name, id) = match step {
        CheckStep::PhoneNumber => (
            format!("phone number {}", account.phone_number_id),
            "Phone number ID",
            account.phone_number_id.as_str(),
        ),
        CheckStep::Templates => (
            format!("WhatsApp Business Account {}", account.waba_id),
            "WhatsApp Business Account ID",
            account.waba_id.as_str(),
        ),
    };
    let fail = |item: String, detail: String| CheckLine::new(CheckStatus::Fail, item, detail);
    match err {
        WhatsAppError::Meta { error, .. } => {
            let code = error.code;
            let trace = error
                .fbtrace_id
                .as_deref()
                .map(|t| format!(" [Meta error {code}, fbtrace_id {t}]"))
                .unwrap_or_else(|| format!(" [Meta error {code}]"));
            match (code, error.error_subcode) {
                (0 | 190, sub) => fail(
                    "access token".into(),
                    format!(
                        "Meta refused the access token{}: create a permanent token for a System \
                         User in Meta Business Settings (Users > System users > Generate new \
                         token) with the whatsapp_business_messaging and \
                         whatsapp_business_management permissions, and put it in the account's \
                         Access token field{trace}",
                        token_subcode_words(sub)
                    ),
                ),
                (10 | 200..=299, _) => fail(
                    item,
                    format!(
                        "the token is not allowed to read this: give the System User the {} \
                         permission, assign it the WhatsApp account (Business Settings > \
                         Accounts > WhatsApp accounts > Assign people), then generate a new \
                         token{trace}",
                        match step {
                            CheckStep::PhoneNumber =>
                                "whatsapp_business_messaging and whatsapp_business_management",
                            CheckStep::Templates => "whatsapp_business_management",
                        }
                    ),
                ),
                (3, _) => fail(
                    item,
                    format!(
                        "the Meta app behind this token cannot make this call: add the WhatsApp \
                         product to the app in the Meta developer dashboard{trace}"
                    ),
                ),
                (100, Some(33)) => fail(
                    item,
                    format!(
                        "no object with id '{id}' is visible to this token: copy the {id_name} \
                         from WhatsApp Manager > API Setup (a long number, not the phone number \
                         itself), and check that the System User was assigned the WhatsApp \
                         account{trace}"
                    ),
                ),
                (100, _) if error.message.to_ascii_lowercase().contains("nonexisting field") => {
                    fail(
                        item,
                        format!(
                            "Meta does not know a field this check asks for ({}); the API \
                             version {} may be too old or too new{trace}",
                            error.display_title(),
                            version_words(account, config)
                        ),
                    )
                }
                (100, _) => fail(
                    item,
                    format!(
                        "Meta refused the request as invalid ({}): check the {id_name} '{id}'{trace}",
                        error.details().unwrap_or(&error.message)
                    ),
                ),
                _ => fail(item, format!("{}{trace}", error.help())),
            }
        }
        WhatsAppError::Transport { reason, .. } => fail(
            "Graph API".into(),
            format!(
                "could not reach {} ({reason}): check the network, any proxy, and the configured \
                 graph_url",
                config.graph_url
            ),
        ),
        WhatsAppError::Http { status, body, .. } => fail(
            "Graph API".into(),
            format!(
                "{} answered HTTP {status} without a WhatsApp error ({body}): check graph_url \
                 and the API version {}",
                config.graph_url,
                version_words(account, config)
            ),
        ),
        other => fail(item, other.help()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::Secret;
    use crate::whatsapp::error::MetaError;
    use serde_json::json;

    fn account() -> AccountHandle {
        AccountHandle::new("106540352242922", "102290129340398", Secret::new("tok"))
    }

    fn meta(code: i64, sub: Option<i64>, msg: &str) -> WhatsAppError {
        let mut e = MetaError::new(code, msg);
        e.error_subcode = sub;
        e.fbtrace_id = Some("Axyz".into());
        WhatsAppError::Meta {
            operation: "read phone number",
            status: 400,
            error: Box::new(e),
        }
    }

    #[test]
    fn phone_number_info_parses() {
        let info: PhoneNumberInfo = serde_json::from_value(json!({
            "verified_name": "ACME", "code_verification_status": "VERIFIED",
            "display_phone_number": "+1 555-078-3881", "quality_rating": "GREEN",
            "platform_type": "CLOUD_API", "throughput": {"level": "STANDARD"},
            "name_status": "APPROVED", "id": "106540352242922", "webhook_configuration": {"application": "x"}
        }))
        .unwrap();
        assert_eq!(info.throughput_mps(), Some(80));
        assert_eq!(info.quality_rating.as_deref(), Some("GREEN"));
        assert!(info.extra.contains_key("webhook_configuration"));
        let lines = phone_lines(&info, &account());
        assert!(lines.iter().all(|l| l.status == CheckStatus::Ok));
        let text = lines[1].to_string();
        assert!(text.starts_with("OK   phone number 106540352242922: +1 555-078-3881 \"ACME\", quality GREEN, throughput STANDARD (80 messages/s)"), "{text}");
    }

    #[test]
    fn messaging_limit_words() {
        let mut info = PhoneNumberInfo {
            messaging_limit_tier: Some("TIER_1K".into()),
            ..Default::default()
        };
        assert_eq!(info.messaging_limit().as_deref(), Some("TIER_1K"));
        info.whatsapp_business_manager_messaging_limit = Some(json!("TIER_2K"));
        assert_eq!(info.messaging_limit().as_deref(), Some("TIER_2K"));
        info.whatsapp_business_manager_messaging_limit = Some(json!({"current_limit": "TIER_10K"}));
        assert_eq!(info.messaging_limit().as_deref(), Some("TIER_10K"));
    }

    #[test]
    fn quality_and_registration_warnings() {
        let info = PhoneNumberInfo {
            quality_rating: Some("RED".into()),
            platform_type: Some("NOT_APPLICABLE".into()),
            name_status: Some("DECLINED".into()),
            throughput: Some(Throughput {
                level: Some("HIGH".into()),
            }),
            ..Default::default()
        };
        let lines = phone_lines(&info, &account());
        let statuses: Vec<CheckStatus> = lines.iter().map(|l| l.status).collect();
        assert!(statuses.contains(&CheckStatus::Warn));
        assert!(statuses.contains(&CheckStatus::Fail));
        assert!(lines[1].detail.contains("HIGH (1000 messages/s)"));
        assert!(lines.iter().any(|l| l.detail.contains("133010")));
    }

    #[test]
    fn settings_are_checked_before_any_call() {
        assert!(check_settings(&account()).is_empty());
        let bad = AccountHandle::new("+49 151 1234567", "", Secret::new(" "));
        let lines = check_settings(&bad);
        assert_eq!(lines.len(), 3);
        assert!(lines.iter().all(|l| l.status == CheckStatus::Fail));
        assert!(lines[0].detail.contains("no access token"));
        assert!(lines[1].detail.contains("looks like a phone number"));
        assert!(lines[2].detail.contains("it is empty"));
        let slashed = AccountHandle::new("../me", "123", Secret::new("t"));
        assert!(check_settings(&slashed)[0]
            .detail
            .contains("not a Graph API id"));
        assert!(check_settings(&account().with_api_version(Some("v25.0"))).is_empty());
        let lines = check_settings(&account().with_api_version(Some("25.0/x")));
        assert_eq!(lines.len(), 1);
        assert_eq!(lines[0].status, CheckStatus::Fail);
        assert_eq!(lines[0].item, "Graph API version");
        assert!(
            lines[0].detail.contains("'25.0/x'")
                && lines[0]
                    .detail
                    .contains("set Graph API version on the WhatsApp account to e.g. v26.0"),
            "{}",
            lines[0].detail
        );
    }

    #[test]
    fn failures_name_the_version_in_use_and_where_it_is_set() {
        let cfg = ClientConfig::default();
        let nonexisting = meta(100, None, "(#100) Tried accessing nonexisting field (foo)");
        let own = account().with_api_version(Some("v23.0"));
        let l = explain(CheckStep::PhoneNumber, &own, &cfg, &nonexisting);
        assert!(
            l.detail
                .contains("v23.0 (Graph API version on the WhatsApp account)"),
            "{}",
            l.detail
        );
        let l = explain(CheckStep::PhoneNumber, &account(), &cfg, &nonexisting);
        assert!(
            l.detail.contains("v26.0 (whatsapp.api_version"),
            "{}",
            l.detail
        );
    }

    #[test]
    fn failures_in_words() {
        let cfg = ClientConfig::default();
        let acc = account();
        let l = explain(
            CheckStep::PhoneNumber,
            &acc,
            &cfg,
            &meta(190, Some(463), "expired"),
        );
        assert_eq!(l.item, "access token");
        assert!(
            l.detail.contains("has expired") && l.detail.contains("System User"),
            "{}",
            l.detail
        );
        assert!(l.detail.contains("fbtrace_id Axyz"));
        assert!(!l.detail.contains("tok\""));

        let l = explain(CheckStep::Templates, &acc, &cfg, &meta(10, None, "perm"));
        assert!(
            l.detail.contains("whatsapp_business_management"),
            "{}",
            l.detail
        );
        assert!(!l.detail.contains("whatsapp_business_messaging"));
        let l = explain(CheckStep::PhoneNumber, &acc, &cfg, &meta(200, None, "perm"));
        assert!(l.detail.contains("whatsapp_business_messaging"));
        let l = explain(CheckStep::PhoneNumber, &acc, &cfg, &meta(3, None, "cap"));
        assert!(l.detail.contains("WhatsApp product"));

        let l = explain(
            CheckStep::PhoneNumber,
            &acc,
            &cfg,
            &meta(100, Some(33), "Unsupported get request"),
        );
        assert!(
            l.detail.contains("'106540352242922'") && l.detail.contains("Phone number ID"),
            "{}",
            l.detail
        );
        let l = explain(
            CheckStep::Templates,
            &acc,
            &cfg,
            &meta(100, Some(33), "Unsupported get request"),
        );
        assert!(l.detail.contains("WhatsApp Business Account ID"));
        let l = explain(
            CheckStep::PhoneNumber,
            &acc,
            &cfg,
            &meta(100, None, "(#100) Tried accessing nonexisting field (foo)"),
        );
        assert!(l.detail.contains("API version v26.0"), "{}", l.detail);

        let t = WhatsAppError::Transport {
            operation: "read phone number",
            reason: "connection refused".into(),
            timed_out: false,
            may_have_reached_meta: false,
        };
        let l = explain(CheckStep::PhoneNumber, &acc, &cfg, &t);
        assert!(
            l.detail.contains("https://graph.facebook.com")
                && l.detail.contains("connection refused")
        );
        assert!(stops_the_check(&t));
        assert!(stops_the_check(&meta(190, None, "x")));
        assert!(!stops_the_check(&meta(10, None, "x")));
    }

    #[test]
    fn report_and_verdict() {
        let mut c = AccountCheck::default();
        c.push(CheckLine::new(CheckStatus::Ok, "a", "fine"));
        c.push(CheckLine::new(CheckStatus::Warn, "b", "hmm"));
        assert!(c.is_ok());
        c.push(CheckLine::new(CheckStatus::Fail, "c", "broken"));
        assert!(!c.is_ok());
        assert_eq!(c.report(), "OK   a: fine\nWARN b: hmm\nFAIL c: broken");
    }
}
