//! JSON-RPC request bodies and response decoding: pure functions, no I/O.
//!
//! Odoo's external API is JSON-RPC 2.0 over `POST /jsonrpc`:
//! `{"jsonrpc": "2.0", "method": "call", "params": {"service", "method", "args"}, "id"}`. The
//! `object` service's `execute_kw` takes `[db, uid, password_or_api_key, model, method, args,
//! kwargs]`. The web routes (`/web/session/authenticate`) take their parameters by name.

use super::error::{classify, CallSite, OdooError, RpcError};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Serialize)]
struct Envelope<'a, P: Serialize + ?Sized> {
    jsonrpc: &'static str,
    method: &'static str,
    params: &'a P,
    id: u64,
}

#[derive(Serialize)]
struct ServiceParams<'a, A: Serialize + ?Sized> {
    service: &'a str,
    method: &'a str,
    args: &'a A,
}

/// The body of a JSON-RPC `call` with named `params`.
pub fn call_body<P: Serialize + ?Sized>(id: u64, params: &P) -> Result<Vec<u8>, serde_json::Error> {
    serde_json::to_vec(&Envelope {
        jsonrpc: "2.0",
        method: "call",
        params,
        id,
    })
}

/// The body of `POST /jsonrpc` for `service.method(*args)`.
pub fn service_body<A: Serialize + ?Sized>(
    id: u64,
    service: &str,
    method: &str,
    args: &A,
) -> Result<Vec<u8>, serde_json::Error> {
    call_body(
        id,
        &ServiceParams {
            service,
            method,
            args,
        },
    )
}

/// The arguments of `object.execute_kw`.
#[derive(Serialize)]
pub struct ExecuteKw<'a, A: Serialize + ?Sized, K: Serialize + ?Sized>(
    pub &'a str,
    pub i64,
    pub &'a str,
    pub &'a str,
    pub &'a str,
    pub &'a A,
    pub &'a K,
);

/// The body of `POST /jsonrpc` for `object.execute_kw`.
#[allow(clippy::too_many_arguments)]
pub fn execute_kw_body<A: Serialize + ?Sized, K: Serialize + ?Sized>(
    id: u64,
    database: &str,
    uid: i64,
    secret: &str,
    model: &str,
    method: &str,
    args: &A,
    kwargs: &K,
) -> Result<Vec<u8>, serde_json::Error> {
    service_body(
        id,
        "object",
        "execute_kw",
        &ExecuteKw(database, uid, secret, model, method, args, kwargs),
    )
}

#[derive(Deserialize)]
struct Response<T> {
    #[serde(default = "none")]
    result: Option<T>,
    #[serde(default)]
    error: Option<RpcError>,
}

fn none<T>() -> Option<T> {
    None
}

/// What a JSON-RPC body says: a result (missing `result` reads as `null`) or a classified error.
///
/// `url` only serves the error messages.
pub fn decode_response<T: DeserializeOwned>(
    body: &[u8],
    site: &CallSite<'_>,
    url: &str,
) -> Result<T, OdooError> {
    let response: Response<T> = match serde_json::from_slice(body) {
        Ok(r) => r,
        Err(decode_err) => {
            // A body that is valid JSON-RPC but whose result does not fit `T`, or not JSON.
            return match serde_json::from_slice::<Response<Value>>(body) {
                Ok(Response {
                    error: Some(error), ..
                }) => Err(classify(&error, site)),
                Ok(Response {
                    result: Some(result),
                    ..
                }) => Err(OdooError::Protocol {
                    url: url.to_owned(),
                    detail: format!(
                        "{}.{} returned {} which does not decode: {decode_err}",
                        site.model,
                        site.method,
                        shorten(&result.to_string(), 200)
                    ),
                }),
                _ => Err(OdooError::Protocol {
                    url: url.to_owned(),
                    detail: format!(
                        "not a JSON-RPC response ({decode_err}): {}",
                        shorten(&String::from_utf8_lossy(body), 200)
                    ),
                }),
            };
        }
    };
    if let Some(error) = response.error {
        return Err(classify(&error, site));
    }
    match response.result {
        Some(result) => Ok(result),
        // Methods returning None: Odoo leaves out `result` (or sends null).
        None => T::deserialize(Value::Null).map_err(|e| OdooError::Protocol {
            url: url.to_owned(),
            detail: format!(
                "{}.{} returned no result where one was expected: {e}",
                site.model, site.method
            ),
        }),
    }
}

/// The first `max` characters of `text`, on one line.
pub fn shorten(text: &str, max: usize) -> String {
    let one_line: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let trimmed = one_line.trim();
    if trimmed.chars().count() <= max {
        trimmed.to_owned()
    } else {
        let cut: String = trimmed.chars().take(max).collect();
        format!("{cut}...")
    }
}

/// The ids of a record method's first argument, for tracing (`[1,2,3]`, at most 10 shown).
pub fn ids_for_trace(args: &Value) -> String {
    let Some(first) = args.as_array().and_then(|a| a.first()) else {
        return String::new();
    };
    match first {
        Value::Array(ids) => {
            let ids: Vec<i64> = ids.iter().filter_map(Value::as_i64).collect();
            format_ids(&ids)
        }
        Value::Number(n) if n.is_i64() => n.to_string(),
        _ => String::new(),
    }
}

/// `1,2,3` (at most 10, then `... (n ids)`).
pub fn format_ids(ids: &[i64]) -> String {
    let total = ids.len();
    let shown: Vec<String> = ids.iter().take(10).map(|i| i.to_string()).collect();
    if total > 10 {
        format!("{}... ({total} ids)", shown.join(","))
    } else {
        shown.join(",")
    }
}

/// The `session_id` cookie value of a `Set-Cookie` header, if it sets one.
pub fn session_cookie(set_cookie: &str) -> Option<&str> {
    let first = set_cookie.split(';').next()?.trim();
    let value = first.strip_prefix("session_id=")?;
    (!value.is_empty()).then_some(value)
}

/// True when an HTTP redirect points at Odoo's login page (the web session is gone).
pub fn is_login_redirect(status: u16, location: Option<&str>) -> bool {
    (300..400).contains(&status) && location.is_some_and(|l| l.contains("/web/login"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::odoo::error::Credential;
    use serde_json::json;

    fn site() -> CallSite<'static> {
        CallSite {
            service: "object",
            model: "sale.order",
            method: "action_quotation_sent",
            database: "wa17",
            login: "admin",
            credential: Credential::ApiKey,
        }
    }

    #[test]
    fn execute_kw_body_matches_the_recorded_request() {
        let body = execute_kw_body(
            9,
            "wa17",
            2,
            "admin",
            "sale.order",
            "search_count",
            &json!([[]]),
            &json!({}),
        )
        .unwrap();
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            v,
            json!({"jsonrpc": "2.0", "method": "call", "id": 9, "params": {
                "service": "object", "method": "execute_kw",
                "args": ["wa17", 2, "admin", "sale.order", "search_count", [[]], {}]}})
        );
    }

    #[test]
    fn missing_result_is_unit_or_null() {
        let body = br#"{"jsonrpc": "2.0", "id": 37}"#;
        decode_response::<()>(body, &site(), "u").unwrap();
        assert_eq!(
            decode_response::<Value>(body, &site(), "u").unwrap(),
            Value::Null
        );
        let err = decode_response::<Vec<i64>>(body, &site(), "u").unwrap_err();
        assert!(matches!(err, OdooError::Protocol { .. }), "{err:?}");
    }

    #[test]
    fn wrong_result_type_and_non_json_are_protocol_errors() {
        let err = decode_response::<i64>(br#"{"result": "x"}"#, &site(), "u").unwrap_err();
        assert!(err.to_string().contains("does not decode"), "{err}");
        let err = decode_response::<i64>(b"<html>login</html>", &site(), "u").unwrap_err();
        assert!(err.to_string().contains("not a JSON-RPC response"), "{err}");
    }

    #[test]
    fn cookie_and_redirect_helpers() {
        assert_eq!(
            session_cookie("session_id=abc; Expires=Sun, 21 Nov 2027 23:46:17 GMT; Max-Age=604800; HttpOnly; Path=/"),
            Some("abc")
        );
        assert_eq!(session_cookie("frontend_lang=en_US; Path=/"), None);
        assert!(is_login_redirect(
            303,
            Some("http://127.0.0.1:8069/web/login?redirect=%2Freport%2Fpdf%2Fsale.report_saleorder%2F2%3F")
        ));
        assert!(!is_login_redirect(200, None));
        assert_eq!(ids_for_trace(&json!([[1, 2, 3], {"x": 1}])), "1,2,3");
        assert_eq!(
            format_ids(&(1..=12).collect::<Vec<i64>>()),
            "1,2,3,4,5,6,7,8,9,10... (12 ids)"
        );
    }
}
