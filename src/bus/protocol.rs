//! Odoo 17's bus protocol as pure functions: the websocket URL, the subscribe frame, the
//! notification frames, and what Odoo's close codes mean. Recorded from a real Odoo 17 in
//! `tests/fixtures/odoo17-jsonrpc/j_websocket_*.json`.
//!
//! Odoo's side (`addons/bus/websocket.py`): the handshake `GET /websocket` needs `Origin`,
//! `Host`, `Upgrade`, `Connection`, `Sec-WebSocket-Key` and `Sec-WebSocket-Version: 13`, and the
//! session cookie of `/web/session/authenticate`; the client then sends
//! `{"event_name": "subscribe", "data": {"channels": [...], "last": <id>}}`; Odoo pushes text
//! frames holding a JSON list of `{"id", "message": {"type", "payload"}}`, for the channels
//! asked for plus `broadcast` and the user's partner. `last` asks for the notifications after
//! that id (0: those of the last 50 seconds). Odoo pings after 45 s of silence and closes the
//! connection after about an hour (`websocket_keep_alive_timeout`).

use serde_json::{json, Value};
use url::Url;

/// The channel the addon notifies (`bus.bus._sendone("whatsapp_sidecar", ...)`).
pub const CHANNEL: &str = "whatsapp_sidecar";
/// The type of the addon's notifications.
pub const NOTIFICATION_TYPE: &str = "whatsapp_sidecar/changed";

/// Odoo's close code when the session is no longer valid (`CloseCode.SESSION_EXPIRED`).
pub const CLOSE_SESSION_EXPIRED: u16 = 4001;
/// Odoo's close code after `websocket_keep_alive_timeout` (`CloseCode.KEEP_ALIVE_TIMEOUT`).
pub const CLOSE_KEEP_ALIVE_TIMEOUT: u16 = 4002;
/// Odoo's close code when its pool of cursors is exhausted (`CloseCode.TRY_LATER`).
pub const CLOSE_TRY_LATER: u16 = 1013;
/// Odoo stopping (`CloseCode.GOING_AWAY`).
pub const CLOSE_GOING_AWAY: u16 = 1001;

/// The websocket endpoint under Odoo's base URL (a path prefix behind a proxy is kept), as
/// an `http(s)` URL for the upgrade request; `ws://` and `wss://` are taken as `http(s)://`.
pub fn websocket_url(base: &Url) -> Result<Url, String> {
    let mut base = base.clone();
    let scheme = match base.scheme() {
        "http" | "ws" => "http",
        "https" | "wss" => "https",
        other => {
            return Err(format!(
                "{other}:// is not a bus URL; use http(s):// (or ws(s)://)"
            ))
        }
    };
    if base.scheme() != scheme {
        // `set_scheme` refuses some special-to-special changes; rebuild instead.
        let rest = &base.as_str()[base.scheme().len()..];
        base = Url::parse(&format!("{scheme}{rest}")).map_err(|e| e.to_string())?;
    }
    if base.path().ends_with("/websocket") {
        return Ok(base);
    }
    if !base.path().ends_with('/') {
        let path = format!("{}/", base.path());
        base.set_path(&path);
    }
    base.join("websocket").map_err(|e| e.to_string())
}

/// The `Origin` Odoo expects: the scheme and host of the URL itself (same-site).
pub fn origin(url: &Url) -> String {
    let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
    format!("{}://{}{port}", url.scheme(), url.host_str().unwrap_or(""))
}

/// The subscribe frame for the addon's channel, from notification `last` on.
pub fn subscribe_frame(last: i64) -> String {
    json!({"event_name": "subscribe", "data": {"channels": [CHANNEL], "last": last}}).to_string()
}

/// One notification of a frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// The `bus.bus` id (the next subscription's `last`).
    pub id: i64,
    /// The model the addon names, for the addon's own notifications; `None` for others
    /// (`broadcast`, the user's partner channel).
    pub model: Option<String>,
    /// How many records changed (the addon's `count`; 0 when absent).
    pub count: u64,
}

/// The notifications of a text frame. A frame that is not Odoo's list is an error (saying what
/// it was); entries of other shapes are skipped.
pub fn parse_frame(text: &str) -> Result<Vec<Notification>, String> {
    let value: Value = serde_json::from_str(text).map_err(|e| {
        format!(
            "not JSON ({e}): {}",
            text.chars().take(120).collect::<String>()
        )
    })?;
    let list = value.as_array().ok_or_else(|| {
        format!(
            "not a list of notifications: {}",
            text.chars().take(120).collect::<String>()
        )
    })?;
    Ok(list
        .iter()
        .filter_map(|entry| {
            let id = entry.get("id")?.as_i64()?;
            let message = entry.get("message");
            let ours = message.and_then(|m| m.get("type")).and_then(Value::as_str)
                == Some(NOTIFICATION_TYPE);
            let payload = message.and_then(|m| m.get("payload"));
            let model = payload
                .and_then(|p| p.get("model"))
                .and_then(Value::as_str)
                .filter(|_| ours)
                .map(str::to_owned);
            let count = payload
                .and_then(|p| p.get("count"))
                .and_then(Value::as_u64)
                .filter(|_| ours)
                .unwrap_or(0);
            Some(Notification { id, model, count })
        })
        .collect())
}

/// What a close code from Odoo means, in words.
pub fn close_reason(code: u16) -> &'static str {
    match code {
        CLOSE_SESSION_EXPIRED => "Odoo ended the web session (password changed or session removed)",
        CLOSE_KEEP_ALIVE_TIMEOUT => "Odoo's hourly renewal of the connection",
        CLOSE_TRY_LATER => "Odoo is out of database connections",
        CLOSE_GOING_AWAY => "Odoo is stopping",
        1000 => "a normal close",
        1006 => "the connection was lost",
        1011 => "an error in Odoo",
        _ => "an unexpected close",
    }
}

/// What an HTTP status answering the upgrade means, and the fix.
pub fn refusal_hint(status: u16) -> &'static str {
    match status {
        404 => {
            "Odoo has no /websocket there: check bus.url (Odoo 17 with its bus module serves it)"
        }
        400 => "Odoo refused the handshake",
        500 => {
            "with workers > 0 Odoo serves /websocket only on its gevent port (gevent_port, 8072 \
             by default): point bus.url at it (or at the proxy route that reaches it)"
        }
        503 => "Odoo refuses websockets (it does in test mode), or is not answering",
        502 | 504 => "Odoo (or the proxy before it) is not answering",
        _ => "an unexpected answer",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_websocket_url_keeps_a_proxy_prefix_and_takes_ws_schemes() {
        let url = |s: &str| websocket_url(&Url::parse(s).unwrap()).unwrap().to_string();
        assert_eq!(
            url("http://127.0.0.1:8069"),
            "http://127.0.0.1:8069/websocket"
        );
        assert_eq!(
            url("https://erp.example.com/odoo/"),
            "https://erp.example.com/odoo/websocket"
        );
        assert_eq!(
            url("https://erp.example.com/odoo"),
            "https://erp.example.com/odoo/websocket"
        );
        assert_eq!(
            url("ws://127.0.0.1:8072/websocket"),
            "http://127.0.0.1:8072/websocket"
        );
        assert_eq!(
            url("wss://erp.example.com"),
            "https://erp.example.com/websocket"
        );
        assert!(websocket_url(&Url::parse("ftp://x").unwrap()).is_err());
        assert_eq!(
            origin(&Url::parse("http://127.0.0.1:8069/websocket").unwrap()),
            "http://127.0.0.1:8069"
        );
        assert_eq!(
            origin(&Url::parse("https://erp.example.com/websocket").unwrap()),
            "https://erp.example.com"
        );
    }

    #[test]
    fn frames_are_read_as_recorded_from_a_real_odoo() {
        // The shape of `j_websocket_bus_subscribe.json`, plus one of the addon's notifications.
        let frame = r#"[
            {"id": 9, "message": {"type": "discuss.channel/last_interest_dt_changed",
                                   "payload": {"id": 1, "is_pinned": true}}},
            {"id": 12, "message": {"type": "whatsapp_sidecar/changed",
                                    "payload": {"model": "whatsapp.message", "ids": [7, 8], "count": 2}}},
            {"id": 13, "message": {"type": "other/thing", "payload": {"model": "sale.order"}}},
            {"message": {"type": "no id"}}
        ]"#;
        let got = parse_frame(frame).unwrap();
        assert_eq!(
            got,
            vec![
                Notification {
                    id: 9,
                    model: None,
                    count: 0
                },
                Notification {
                    id: 12,
                    model: Some("whatsapp.message".into()),
                    count: 2
                },
                Notification {
                    id: 13,
                    model: None,
                    count: 0
                },
            ]
        );
        assert!(parse_frame("{}").unwrap_err().contains("not a list"));
        assert!(parse_frame("nope").unwrap_err().contains("not JSON"));
        let sub: Value = serde_json::from_str(&subscribe_frame(42)).unwrap();
        assert_eq!(
            sub,
            json!({"event_name": "subscribe", "data": {"channels": ["whatsapp_sidecar"], "last": 42}})
        );
    }

    #[test]
    fn close_codes_and_refusals_are_explained() {
        assert!(close_reason(4001).contains("session"));
        assert!(close_reason(4002).contains("renewal"));
        assert!(refusal_hint(500).contains("gevent"));
        assert!(refusal_hint(404).contains("bus.url"));
    }
}
