//! Errors: [`SandboxError`] for the sandbox's own failures (config, bind, CLI), and
//! [`GraphError`], the Graph API error object the sandbox answers to its clients exactly as Meta
//! shapes it:
//!
//! ```json
//! {"error":{"message":"(#131056) (Business Account, Consumer Account) pair rate limit hit",
//!   "type":"OAuthException","code":131056,
//!   "error_data":{"messaging_product":"whatsapp","details":"Message failed to send because ..."},
//!   "fbtrace_id":"AbCdEf..."}}
//! ```
//!
//! The same error becomes the `errors[]` entry of a `failed` status webhook through
//! [`GraphError::status_error`].

use axum::http::StatusCode;
use serde_json::{json, Value};
use std::path::PathBuf;

/// The sandbox's own failures.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The configuration is wrong; the message names the field and the fix.
    #[error("sandbox configuration: {0}")]
    Config(String),
    /// A configuration file could not be read.
    #[error("cannot read {path}: {source}")]
    ConfigRead {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The listening address could not be bound.
    #[error("cannot listen on {addr}: {source} (is another process using the port? choose another with --listen)")]
    Bind {
        /// The address.
        addr: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The HTTP server stopped with an error.
    #[error("sandbox HTTP server failed: {0}")]
    Serve(#[source] std::io::Error),
    /// An injected message was refused; the message says why.
    #[error("cannot inject: {0}")]
    Inject(String),
    /// The callback URL did not pass Meta's verification handshake.
    #[error("callback verification failed: {0}")]
    Verify(String),
    /// A request to a running sandbox (the `inject` command) failed.
    #[error("request to the sandbox at {url} failed: {message}")]
    Client {
        /// The sandbox URL.
        url: String,
        /// What went wrong.
        message: String,
        /// Whether trying again may help (the sandbox was unreachable).
        retryable: bool,
    },
}

impl SandboxError {
    /// True when trying the same thing again later may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            SandboxError::Config(_) | SandboxError::ConfigRead { .. } | SandboxError::Inject(_) => {
                false
            }
            SandboxError::Bind { .. } | SandboxError::Serve(_) | SandboxError::Verify(_) => true,
            SandboxError::Client { retryable, .. } => *retryable,
        }
    }
}

/// A Graph API error as the sandbox answers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GraphError {
    /// The HTTP status of the synchronous answer.
    pub http_status: StatusCode,
    /// Meta's error code.
    pub code: u32,
    /// The title (`message` is `(#code) title` for WhatsApp errors).
    pub title: String,
    /// `error_data.details`; WhatsApp errors carry it, Graph auth errors do not.
    pub details: Option<String>,
    /// `error_subcode`, only on Graph errors that still have one.
    pub subcode: Option<u32>,
    /// Graph-level errors (auth, unknown object) print their message without the `(#code)` prefix.
    pub plain_message: bool,
}

/// Where Meta's error code reference lives (the `href` of webhook errors).
pub const ERROR_CODES_HREF: &str =
    "https://developers.facebook.com/docs/whatsapp/cloud-api/support/error-codes/";

impl GraphError {
    fn whatsapp(
        http_status: StatusCode,
        code: u32,
        title: &str,
        details: impl Into<String>,
    ) -> Self {
        GraphError {
            http_status,
            code,
            title: title.to_string(),
            details: Some(details.into()),
            subcode: None,
            plain_message: false,
        }
    }

    /// 100: a parameter is missing, of the wrong type or out of its limits.
    pub fn invalid_parameter(details: impl Into<String>) -> Self {
        Self::whatsapp(StatusCode::BAD_REQUEST, 100, "Invalid parameter", details)
    }

    /// 131008: a required parameter is missing.
    pub fn missing_parameter(details: impl Into<String>) -> Self {
        Self::whatsapp(
            StatusCode::BAD_REQUEST,
            131008,
            "Required parameter is missing",
            details,
        )
    }

    /// 131009: a parameter value is not valid (interactive limits, duplicates).
    pub fn invalid_value(details: impl Into<String>) -> Self {
        Self::whatsapp(
            StatusCode::BAD_REQUEST,
            131009,
            "Parameter value is not valid",
            details,
        )
    }

    /// 131021: the recipient is the business number itself.
    pub fn recipient_is_sender() -> Self {
        Self::whatsapp(
            StatusCode::BAD_REQUEST,
            131021,
            "Recipient cannot be sender",
            "Sender and recipient phone number is the same.",
        )
    }

    /// 131026: the recipient cannot receive the message.
    pub fn undeliverable() -> Self {
        Self::whatsapp(
            StatusCode::BAD_REQUEST,
            131026,
            "Message undeliverable",
            "Message Undeliverable.",
        )
    }

    /// 131047: free-form message outside the 24-hour customer service window.
    pub fn re_engagement() -> Self {
        Self::whatsapp(
            StatusCode::BAD_REQUEST,
            131047,
            "Re-engagement message",
            "Message failed to send because more than 24 hours have passed since the customer last replied to this number.",
        )
    }

    /// 131053: the media could not be processed.
    pub fn media_upload(details: impl Into<String>) -> Self {
        Self::whatsapp(
            StatusCode::BAD_REQUEST,
            131053,
            "Media upload error",
            details,
        )
    }

    /// 130429: past the number's throughput.
    pub fn throughput() -> Self {
        Self::whatsapp(
            StatusCode::BAD_REQUEST,
            130429,
            "Rate limit hit",
            "Cloud API message throughput has been reached.",
        )
    }

    /// 131056: too many messages to the same recipient.
    pub fn pair_rate() -> Self {
        Self::whatsapp(
            StatusCode::BAD_REQUEST,
            131056,
            "(Business Account, Consumer Account) pair rate limit hit",
            "Message failed to send because there were too many messages sent from this phone number to the same phone number in a short period of time.",
        )
    }

    /// 132000: the number of template parameters does not match.
    pub fn template_param_count(details: impl Into<String>) -> Self {
        Self::whatsapp(
            StatusCode::BAD_REQUEST,
            132000,
            "Number of parameters does not match the expected number of params",
            details,
        )
    }

    /// 132001: no such template in this language, or not approved.
    pub fn template_missing(details: impl Into<String>) -> Self {
        Self::whatsapp(
            StatusCode::BAD_REQUEST,
            132001,
            "Template name does not exist in the translation",
            details,
        )
    }

    /// 132005: the filled-in template text is too long.
    pub fn template_text_too_long(details: impl Into<String>) -> Self {
        Self::whatsapp(
            StatusCode::BAD_REQUEST,
            132005,
            "Translated text too long",
            details,
        )
    }

    /// 132012: a parameter's format does not match the template (e.g. header media type).
    pub fn template_format_mismatch(details: impl Into<String>) -> Self {
        Self::whatsapp(
            StatusCode::BAD_REQUEST,
            132012,
            "Parameter format does not match format in the created template",
            details,
        )
    }

    /// 132015: the template is paused for low quality.
    pub fn template_paused(details: impl Into<String>) -> Self {
        Self::whatsapp(
            StatusCode::BAD_REQUEST,
            132015,
            "Template is Paused",
            details,
        )
    }

    /// 132016: the template is disabled.
    pub fn template_disabled(details: impl Into<String>) -> Self {
        Self::whatsapp(
            StatusCode::BAD_REQUEST,
            132016,
            "Template is Disabled",
            details,
        )
    }

    /// 190: the access token is not accepted (HTTP 401).
    pub fn invalid_token() -> Self {
        GraphError {
            http_status: StatusCode::UNAUTHORIZED,
            code: 190,
            title: "Invalid OAuth access token - Cannot parse access token".to_string(),
            details: None,
            subcode: None,
            plain_message: true,
        }
    }

    /// 104: no access token at all.
    pub fn missing_token() -> Self {
        GraphError {
            http_status: StatusCode::BAD_REQUEST,
            code: 104,
            title: "An access token is required to request this resource.".to_string(),
            details: None,
            subcode: None,
            plain_message: true,
        }
    }

    /// 100 / subcode 33: the object in the path does not exist (wrong phone number, WABA or
    /// media id).
    pub fn unknown_object(method: &str, id: &str) -> Self {
        GraphError {
            http_status: StatusCode::BAD_REQUEST,
            code: 100,
            title: format!(
                "Unsupported {} request. Object with ID '{id}' does not exist, cannot be loaded due to missing permissions, or does not support this operation. Please read the Graph API documentation at https://developers.facebook.com/docs/graph-api",
                method.to_ascii_lowercase()
            ),
            details: None,
            subcode: Some(33),
            plain_message: true,
        }
    }

    /// 2500: the path is not a Graph API path the sandbox knows.
    pub fn unknown_path(path: &str) -> Self {
        GraphError {
            http_status: StatusCode::BAD_REQUEST,
            code: 2500,
            title: format!("Unknown path components: {path}"),
            details: None,
            subcode: None,
            plain_message: true,
        }
    }

    /// An error for a code picked by the chaos settings: the known codes get Meta's title and
    /// details, others a generic text.
    pub fn for_code(code: u32) -> Self {
        match code {
            131026 => Self::undeliverable(),
            131047 => Self::re_engagement(),
            130429 => Self::throughput(),
            131056 => Self::pair_rate(),
            131053 => Self::media_upload("Downloading or uploading the media failed."),
            131049 => Self::whatsapp(
                StatusCode::BAD_REQUEST,
                131049,
                "This message was not delivered to maintain healthy ecosystem engagement.",
                "In order to maintain a healthy ecosystem engagement, the message failed to be delivered.",
            ),
            131050 => Self::whatsapp(
                StatusCode::BAD_REQUEST,
                131050,
                "User has stopped receiving marketing messages",
                "Unable to deliver the message. This recipient has chosen to stop receiving marketing messages on WhatsApp from your business.",
            ),
            131000 => Self::whatsapp(
                StatusCode::INTERNAL_SERVER_ERROR,
                131000,
                "Something went wrong",
                "Message failed to send due to an unknown error.",
            ),
            131016 => Self::whatsapp(
                StatusCode::SERVICE_UNAVAILABLE,
                131016,
                "Service unavailable",
                "A service is temporarily unavailable.",
            ),
            other => Self::whatsapp(
                StatusCode::BAD_REQUEST,
                other,
                "Message failed to send",
                format!("Sandbox failure with code {other}."),
            ),
        }
    }

    /// The `message` field.
    pub fn message(&self) -> String {
        if self.plain_message {
            self.title.clone()
        } else {
            format!("(#{}) {}", self.code, self.title)
        }
    }

    /// The synchronous answer body: `{"error":{...}}`.
    pub fn to_json(&self, fbtrace_id: &str) -> Value {
        let mut error = serde_json::Map::new();
        error.insert("message".into(), Value::String(self.message()));
        error.insert("type".into(), Value::String("OAuthException".into()));
        error.insert("code".into(), json!(self.code));
        if let Some(subcode) = self.subcode {
            error.insert("error_subcode".into(), json!(subcode));
        }
        if let Some(details) = &self.details {
            error.insert(
                "error_data".into(),
                json!({"messaging_product": "whatsapp", "details": details}),
            );
        }
        error.insert("fbtrace_id".into(), Value::String(fbtrace_id.to_string()));
        json!({ "error": Value::Object(error) })
    }

    /// The entry of a `failed` status webhook's `errors[]`.
    pub fn status_error(&self) -> Value {
        json!({
            "code": self.code,
            "title": self.title,
            "message": self.title,
            "error_data": {"details": self.details.clone().unwrap_or_else(|| self.title.clone())},
            "href": ERROR_CODES_HREF,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whatsapp_errors_have_meta_shape() {
        let v = GraphError::pair_rate().to_json("TRACE");
        let e = &v["error"];
        assert_eq!(e["code"], 131056);
        assert_eq!(e["type"], "OAuthException");
        assert_eq!(
            e["message"],
            "(#131056) (Business Account, Consumer Account) pair rate limit hit"
        );
        assert_eq!(e["error_data"]["messaging_product"], "whatsapp");
        assert!(e["error_data"]["details"]
            .as_str()
            .unwrap()
            .contains("same phone number"));
        assert_eq!(e["fbtrace_id"], "TRACE");
        assert!(e.get("error_subcode").is_none());
    }

    #[test]
    fn auth_errors_are_plain_graph_errors() {
        let e = GraphError::invalid_token();
        assert_eq!(e.http_status, StatusCode::UNAUTHORIZED);
        let v = e.to_json("T");
        assert_eq!(v["error"]["code"], 190);
        assert!(v["error"]["message"]
            .as_str()
            .unwrap()
            .starts_with("Invalid OAuth access token"));
        assert!(v["error"].get("error_data").is_none());
        let v = GraphError::unknown_object("POST", "nope").to_json("T");
        assert_eq!(v["error"]["error_subcode"], 33);
        assert!(v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Unsupported post request"));
    }

    #[test]
    fn status_errors_carry_title_details_and_href() {
        let v = GraphError::re_engagement().status_error();
        assert_eq!(v["code"], 131047);
        assert_eq!(v["title"], "Re-engagement message");
        assert!(v["error_data"]["details"]
            .as_str()
            .unwrap()
            .contains("24 hours"));
        assert_eq!(v["href"], ERROR_CODES_HREF);
    }

    #[test]
    fn retryability() {
        assert!(!SandboxError::Config("x".into()).is_retryable());
        assert!(SandboxError::Client {
            url: "u".into(),
            message: "m".into(),
            retryable: true
        }
        .is_retryable());
    }
}
