//! The errors of the Odoo client, and how Odoo's JSON-RPC error bodies map to them.
//!
//! Odoo answers almost every failure with HTTP 200 and a body
//! `{"error": {"code": 200, "message": "Odoo Server Error", "data": {"name", "message", ...}}}`;
//! [`classify`] turns `data.name` and `data.message` into an [`OdooError`] variant. The rules
//! come from the real Odoo 17 bodies recorded in `shared/odoo17-jsonrpc/` (each one is a test
//! case in `tests/odoo_contract.rs`):
//!
//! | `data.name` | `data.message` | variant |
//! |---|---|---|
//! | `odoo.exceptions.AccessDenied` | `Access Denied`, `Too many login failures...` | [`OdooError::AccessDenied`] |
//! | `odoo.exceptions.AccessError` | `You are not allowed to ...`, `Private methods ...` | [`OdooError::AccessError`] |
//! | `odoo.exceptions.UserError` | `Object x.y doesn't exist` | [`OdooError::UnknownModel`] |
//! | `odoo.exceptions.UserError` | anything else | [`OdooError::UserError`] |
//! | `odoo.exceptions.ValidationError` | (also SQL constraints) | [`OdooError::ValidationError`] |
//! | `odoo.exceptions.MissingError` | `Record does not exist or has been deleted...` | [`OdooError::MissingError`] |
//! | `builtins.ValueError` | `Invalid field 'f' on model 'm'`, `Invalid field m.f in leaf ...` | [`OdooError::UnknownField`] |
//! | `builtins.ValueError` | `Invalid leaf ...`, `... unpack ...`, `Domain ... not correct` | [`OdooError::BadDomain`] |
//! | `builtins.AttributeError` | `type object 'm' has no attribute 'x'` | [`OdooError::UnknownMethod`] |
//! | `builtins.Exception` | `Method not found: x` (service method) | [`OdooError::UnknownMethod`] |
//! | `builtins.KeyError` | the model name (older Odoo) | [`OdooError::UnknownModel`] |
//! | `builtins.KeyError` | the database name | [`OdooError::DatabaseMissing`] |
//! | `psycopg2.OperationalError` | `database "x" does not exist` | [`OdooError::DatabaseMissing`] |
//! | `psycopg2.errors.SerializationFailure`, `LockNotAvailable`, `DeadlockDetected`, `TransactionRollbackError` | | [`OdooError::Concurrency`] (retryable) |
//! | `odoo.http.SessionExpiredException` or code 100 | | [`OdooError::SessionExpired`] |
//! | anything else | | [`OdooError::Other`] keeps `data.name` and `data.message` |

use serde::Deserialize;
use serde_json::Value;

/// Which secret a login used: it decides which configuration key the error message names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Credential {
    /// JSON-RPC with `odoo.api_key`.
    ApiKey,
    /// JSON-RPC with `odoo.password` (no API key configured).
    Password,
    /// The web session for PDF reports, which only accepts the password.
    WebPassword,
}

impl Credential {
    fn describe(self) -> &'static str {
        match self {
            Credential::ApiKey => "the API key: check odoo.login and odoo.api_key",
            Credential::Password => "the password: check odoo.login and odoo.password (or set odoo.api_key)",
            Credential::WebPassword => {
                "the password, for the web session that downloads PDF reports: check odoo.login and odoo.password (Odoo refuses API keys there)"
            }
        }
    }
}

/// Every way a call to Odoo can fail. `Display` says what went wrong and what to do.
///
/// No variant carries a password, API key or session cookie.
#[derive(Debug, thiserror::Error)]
pub enum OdooError {
    /// Login refused (wrong login, API key or password; or the web login cool-down).
    #[error("Odoo refused the login for '{login}' on database '{database}' with {} (Odoo said: {message})", credential.describe())]
    AccessDenied {
        login: String,
        database: String,
        credential: Credential,
        message: String,
    },
    /// The user lacks a right (access rights, record rules, private method).
    #[error("Odoo denied {model}.{method} to the daemon's user: {message}")]
    AccessError {
        model: String,
        method: String,
        message: String,
    },
    /// A business rule refused the call (e.g. confirming a cancelled order).
    #[error("Odoo refused {model}.{method}: {message}")]
    UserError {
        model: String,
        method: String,
        message: String,
    },
    /// A constraint refused the values (Python or SQL constraint, such as a unique key).
    #[error("Odoo rejected the values of {model}.{method}: {message}")]
    ValidationError {
        model: String,
        method: String,
        message: String,
    },
    /// A record the call needs does not exist (or the cached uid is stale).
    #[error("{model}.{method}: a record does not exist or was deleted (Odoo said: {message})")]
    MissingError {
        model: String,
        method: String,
        message: String,
    },
    /// The model is not installed.
    #[error("Odoo has no model '{model}': install or upgrade the addon that defines it (whatsapp_sidecar for the whatsapp.* models)")]
    UnknownModel { model: String },
    /// The model or service has no such public method.
    #[error("Odoo's '{model}' has no method '{method}' (Odoo said: {message})")]
    UnknownMethod {
        model: String,
        method: String,
        message: String,
    },
    /// A field name the call used does not exist on the model.
    #[error("Odoo model '{model}' has no field '{field}': check the field name or upgrade the addon (Odoo said: {message})")]
    UnknownField {
        model: String,
        field: String,
        message: String,
    },
    /// The search domain is malformed.
    #[error("bad search domain for {model}.{method}: {message}")]
    BadDomain {
        model: String,
        method: String,
        message: String,
    },
    /// The web session expired (JSON-RPC code 100, or a redirect to `/web/login`).
    #[error("the Odoo web session expired ({message}): the client logs in again")]
    SessionExpired { message: String },
    /// The configured database does not exist on this Odoo server.
    #[error("Odoo has no database '{database}': check odoo.database (Odoo said: {message})")]
    DatabaseMissing { database: String, message: String },
    /// PostgreSQL is unreachable or overloaded behind Odoo (retryable).
    #[error("Odoo cannot reach its database right now: {message}")]
    DatabaseUnavailable { message: String },
    /// A transaction conflict (serialization failure, lock timeout, deadlock): retryable.
    #[error("Odoo hit a database conflict ({name}: {message}); the call is retried")]
    Concurrency { name: String, message: String },
    /// An HTTP status other than 200 (a proxy's 502/503/504 are retryable).
    #[error("Odoo answered HTTP {status} at {url}{}", if body.is_empty() { String::new() } else { format!(": {body}") })]
    Http {
        status: u16,
        url: String,
        body: String,
    },
    /// Connection refused, reset, DNS failure, timeout: retryable.
    #[error("cannot reach Odoo at {url}: {message}")]
    Transport { url: String, message: String },
    /// The answer is not what an Odoo server sends.
    #[error("unexpected answer from {url}: {detail} (is odoo.url an Odoo server?)")]
    Protocol { url: String, detail: String },
    /// The report endpoint answered with something that is not a PDF.
    #[error("Odoo did not return a PDF for report '{report}' of records {ids}: {detail}")]
    NotAPdf {
        report: String,
        ids: String,
        detail: String,
    },
    /// A PDF report was asked for but no password is configured.
    #[error("PDF reports and Odoo's bus need odoo.password (or odoo.password_file): Odoo only opens web sessions with the user's real password, not with an API key")]
    NoPassword,
    /// Any other Odoo error, with Odoo's exception name and message.
    #[error("Odoo error {name} in {model}.{method}: {message}")]
    Other {
        name: String,
        message: String,
        model: String,
        method: String,
    },
}

impl OdooError {
    /// A short name of the kind of error, for metrics labels.
    pub fn kind(&self) -> &'static str {
        match self {
            OdooError::AccessDenied { .. } => "access_denied",
            OdooError::AccessError { .. } => "access_error",
            OdooError::UserError { .. } => "user_error",
            OdooError::ValidationError { .. } => "validation_error",
            OdooError::MissingError { .. } => "missing_record",
            OdooError::UnknownModel { .. } => "unknown_model",
            OdooError::UnknownMethod { .. } => "unknown_method",
            OdooError::UnknownField { .. } => "unknown_field",
            OdooError::BadDomain { .. } => "bad_domain",
            OdooError::SessionExpired { .. } => "session_expired",
            OdooError::DatabaseMissing { .. } => "database_missing",
            OdooError::DatabaseUnavailable { .. } => "database_unavailable",
            OdooError::Concurrency { .. } => "concurrency",
            OdooError::Http { .. } => "http",
            OdooError::Transport { .. } => "unreachable",
            OdooError::Protocol { .. } => "protocol",
            OdooError::NotAPdf { .. } => "not_a_pdf",
            OdooError::NoPassword => "no_password",
            OdooError::Other { .. } => "other",
        }
    }

    /// True for failures that may succeed when the same call is repeated: transport errors,
    /// HTTP 429/502/503/504, database conflicts and an unavailable database. Business errors
    /// (access, validation, user, missing records, unknown names) are not.
    pub fn is_retryable(&self) -> bool {
        match self {
            OdooError::Transport { .. }
            | OdooError::Concurrency { .. }
            | OdooError::DatabaseUnavailable { .. } => true,
            OdooError::Http { status, .. } => matches!(status, 429 | 502 | 503 | 504),
            _ => false,
        }
    }

    /// True when Odoo could not be reached at all (for health checks and outage handling).
    pub fn is_unreachable(&self) -> bool {
        match self {
            OdooError::Transport { .. } | OdooError::DatabaseUnavailable { .. } => true,
            OdooError::Http { status, .. } => matches!(status, 502..=504),
            _ => false,
        }
    }
}

/// The `error` object of a JSON-RPC response.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct RpcError {
    #[serde(default)]
    pub code: i64,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub data: Option<RpcErrorData>,
}

/// `error.data`: Odoo's serialized exception.
#[derive(Clone, Debug, Deserialize, PartialEq)]
pub struct RpcErrorData {
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub message: String,
    #[serde(default)]
    pub arguments: Vec<Value>,
}

/// Where a failed call was made: enough to say something useful about the error.
#[derive(Clone, Copy, Debug)]
pub struct CallSite<'a> {
    /// `common`, `object`, `db`, or `web` for `/web/...` routes.
    pub service: &'a str,
    /// The model for `execute_kw` (the service name otherwise).
    pub model: &'a str,
    /// The model's or the service's method.
    pub method: &'a str,
    pub database: &'a str,
    pub login: &'a str,
    pub credential: Credential,
}

const SEARCH_METHODS: &[&str] = &["search", "search_read", "search_count", "read_group"];

/// Maps a JSON-RPC error object to an [`OdooError`].
pub fn classify(error: &RpcError, site: &CallSite<'_>) -> OdooError {
    let (name, message) = match &error.data {
        Some(data) => (data.name.as_str(), data.message.as_str()),
        None => ("", error.message.as_str()),
    };
    let message = message.trim_end().to_owned();
    let call = |m: String| (site.model.to_owned(), site.method.to_owned(), m);

    if error.code == 100 || name.ends_with("SessionExpiredException") {
        let message = if message.is_empty() {
            error.message.clone()
        } else {
            message
        };
        return OdooError::SessionExpired { message };
    }
    match name {
        "odoo.exceptions.AccessDenied" => OdooError::AccessDenied {
            login: site.login.to_owned(),
            database: site.database.to_owned(),
            credential: site.credential,
            message,
        },
        "odoo.exceptions.AccessError" => {
            let (model, method, message) = call(message);
            OdooError::AccessError {
                model,
                method,
                message,
            }
        }
        "odoo.exceptions.UserError"
        | "odoo.exceptions.Warning"
        | "odoo.exceptions.RedirectWarning"
        | "odoo.exceptions.except_orm" => {
            if let Some(model) = unknown_model(&message) {
                return OdooError::UnknownModel { model };
            }
            let (model, method, message) = call(message);
            OdooError::UserError {
                model,
                method,
                message,
            }
        }
        "odoo.exceptions.ValidationError" | "psycopg2.IntegrityError" => {
            let (model, method, message) = call(message);
            OdooError::ValidationError {
                model,
                method,
                message,
            }
        }
        "odoo.exceptions.MissingError" => {
            let (model, method, message) = call(message);
            OdooError::MissingError {
                model,
                method,
                message,
            }
        }
        "builtins.ValueError" => classify_value_error(message, site),
        "builtins.AttributeError" => match quoted_after(&message, "has no attribute ") {
            Some(method) => OdooError::UnknownMethod {
                model: site.model.to_owned(),
                method,
                message,
            },
            None => other(name, message, site),
        },
        "builtins.Exception" | "builtins.NameError"
            if message.starts_with("Method not found: ")
                || message.starts_with("Method not available ") =>
        {
            OdooError::UnknownMethod {
                model: site.service.to_owned(),
                method: site.method.to_owned(),
                message,
            }
        }
        "builtins.KeyError" => {
            let key = message.trim_matches(|c| c == '\'' || c == '"');
            if key == site.database {
                OdooError::DatabaseMissing {
                    database: site.database.to_owned(),
                    message,
                }
            } else if site.service == "object" && key == site.model {
                OdooError::UnknownModel {
                    model: site.model.to_owned(),
                }
            } else {
                other(name, message, site)
            }
        }
        _ if name.starts_with("psycopg2") => classify_postgres(name, message, site),
        _ => other(name, message, site),
    }
}

fn other(name: &str, message: String, site: &CallSite<'_>) -> OdooError {
    OdooError::Other {
        name: if name.is_empty() {
            "(no exception name)".to_owned()
        } else {
            name.to_owned()
        },
        message,
        model: site.model.to_owned(),
        method: site.method.to_owned(),
    }
}

fn classify_value_error(message: String, site: &CallSite<'_>) -> OdooError {
    // "Invalid field 'no_such_field' on model 'res.partner'" (read, write, create, order)
    if let Some(rest) = message.strip_prefix("Invalid field ") {
        if let Some(field) = quoted_after(&message, "Invalid field ") {
            let model = quoted_after(rest, " on model ").unwrap_or_else(|| site.model.to_owned());
            return OdooError::UnknownField {
                model,
                field,
                message,
            };
        }
        // "Invalid field sale.order.no_such_field in leaf ('no_such_field', '=', 1)" (domains)
        if let Some((dotted, _)) = rest.split_once(" in leaf ") {
            let field = dotted
                .strip_prefix(site.model)
                .and_then(|f| f.strip_prefix('.'))
                .unwrap_or_else(|| dotted.rsplit('.').next().unwrap_or(dotted))
                .to_owned();
            return OdooError::UnknownField {
                model: site.model.to_owned(),
                field,
                message,
            };
        }
    }
    let domain_shaped = message.starts_with("Invalid leaf")
        || message.starts_with("Invalid domain")
        || (message.starts_with("Domain ") && message.ends_with("is syntactically not correct."))
        || (SEARCH_METHODS.contains(&site.method) && message.contains("values to unpack"));
    if domain_shaped {
        return OdooError::BadDomain {
            model: site.model.to_owned(),
            method: site.method.to_owned(),
            message,
        };
    }
    other("builtins.ValueError", message, site)
}

fn classify_postgres(name: &str, message: String, site: &CallSite<'_>) -> OdooError {
    let conflict_names = [
        "SerializationFailure",
        "LockNotAvailable",
        "DeadlockDetected",
        "TransactionRollbackError",
    ];
    let conflict_messages = [
        "could not serialize access",
        "could not obtain lock",
        "deadlock detected",
        "lock timeout",
        "canceling statement due to lock timeout",
    ];
    if conflict_names.iter().any(|n| name.ends_with(n))
        || conflict_messages.iter().any(|m| message.contains(m))
    {
        return OdooError::Concurrency {
            name: name.to_owned(),
            message,
        };
    }
    if message.contains("does not exist") && message.contains("database \"") {
        let database = message
            .split("database \"")
            .nth(1)
            .and_then(|r| r.split('"').next())
            .unwrap_or(site.database)
            .to_owned();
        return OdooError::DatabaseMissing { database, message };
    }
    if name.ends_with("IntegrityError") || name.contains("UniqueViolation") {
        return OdooError::ValidationError {
            model: site.model.to_owned(),
            method: site.method.to_owned(),
            message,
        };
    }
    let unavailable = [
        "Connection refused",
        "too many clients",
        "the database system is starting up",
        "the database system is shutting down",
        "server closed the connection unexpectedly",
        "could not connect to server",
    ];
    if name.ends_with("OperationalError") && unavailable.iter().any(|m| message.contains(m)) {
        return OdooError::DatabaseUnavailable { message };
    }
    other(name, message, site)
}

/// `"Object no.such.model doesn't exist"` → `no.such.model`.
fn unknown_model(message: &str) -> Option<String> {
    let model = message
        .strip_prefix("Object ")?
        .strip_suffix(" doesn't exist")?;
    (!model.is_empty() && !model.contains(' ')).then(|| model.to_owned())
}

/// The first `'quoted'` word after `prefix` in `text`.
fn quoted_after(text: &str, prefix: &str) -> Option<String> {
    let rest = text.split_once(prefix)?.1;
    let rest = rest.strip_prefix('\'')?;
    let end = rest.find('\'')?;
    Some(rest[..end].to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site<'a>(model: &'a str, method: &'a str) -> CallSite<'a> {
        CallSite {
            service: "object",
            model,
            method,
            database: "wa17",
            login: "admin",
            credential: Credential::ApiKey,
        }
    }

    fn err(name: &str, message: &str) -> RpcError {
        RpcError {
            code: 200,
            message: "Odoo Server Error".into(),
            data: Some(RpcErrorData {
                name: name.into(),
                message: message.into(),
                arguments: vec![],
            }),
        }
    }

    #[test]
    fn access_denied_names_the_keys_to_check() {
        let e = classify(
            &err("odoo.exceptions.AccessDenied", "Access Denied"),
            &site("res.partner", "search_count"),
        );
        assert_eq!(
            e.to_string(),
            "Odoo refused the login for 'admin' on database 'wa17' with the API key: check odoo.login and odoo.api_key (Odoo said: Access Denied)"
        );
        assert!(!e.is_retryable());
    }

    #[test]
    fn conflicts_are_retryable() {
        for (name, msg) in [
            (
                "psycopg2.errors.SerializationFailure",
                "could not serialize access due to concurrent update",
            ),
            (
                "psycopg2.errors.LockNotAvailable",
                "canceling statement due to lock timeout",
            ),
            ("psycopg2.extensions.TransactionRollbackError", "x"),
            (
                "psycopg2.OperationalError",
                "could not obtain lock on row in relation \"whatsapp_message\"",
            ),
        ] {
            let e = classify(&err(name, msg), &site("whatsapp.message", "write"));
            assert!(matches!(e, OdooError::Concurrency { .. }), "{name}: {e:?}");
            assert!(e.is_retryable());
        }
    }

    #[test]
    fn keyerror_for_database_and_model() {
        let e = classify(
            &err("builtins.KeyError", "'wa17'"),
            &site("res.partner", "read"),
        );
        assert!(matches!(e, OdooError::DatabaseMissing { .. }), "{e:?}");
        let e = classify(&err("builtins.KeyError", "'x.y'"), &site("x.y", "read"));
        assert!(matches!(e, OdooError::UnknownModel { .. }), "{e:?}");
    }

    #[test]
    fn http_statuses() {
        let http = |status| OdooError::Http {
            status,
            url: "http://o/jsonrpc".into(),
            body: String::new(),
        };
        assert!(http(503).is_retryable());
        assert!(http(502).is_retryable());
        assert!(http(504).is_retryable());
        assert!(!http(500).is_retryable());
        assert!(!http(400).is_retryable());
        assert_eq!(
            http(503).to_string(),
            "Odoo answered HTTP 503 at http://o/jsonrpc"
        );
    }

    #[test]
    fn missing_data_becomes_other() {
        let e = classify(
            &RpcError {
                code: 200,
                message: "boom".into(),
                data: None,
            },
            &site("m", "x"),
        );
        assert!(matches!(e, OdooError::Other { ref message, .. } if message == "boom"));
    }
}
