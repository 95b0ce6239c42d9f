//! The stand-in's bus: `GET /websocket` as Odoo 17 serves it (`addons/bus/websocket.py`,
//! recorded in `j_websocket_*.json`): the handshake needs `Origin`, `Host`, `Upgrade`,
//! `Connection`, `Sec-WebSocket-Key` and `Sec-WebSocket-Version: 13` (else 400 naming the
//! missing headers), answers 101 with the session cookie; a session cookie Odoo does not know
//! is a public session. The client subscribes with `{"event_name": "subscribe", "data":
//! {"channels", "last"}}`; the stand-in then pushes the rows of the addon's channel
//! (`whatsapp_sidecar`, written by [`super::orm::bus`]) as Odoo does: a text frame holding a
//! list of `{"id", "message": {"type", "payload"}}`, those after `last` (0: the last 50 s).
//! A session that ends while subscribed is closed with 4001 at the next notification, as
//! Odoo's `_dispatch_bus_notifications` does; the stand-in going down closes with 1001.
//!
//! Test controls: [`super::OdooStandin::set_websocket`] (off: 404, as an Odoo or a proxy
//! without the route), [`super::OdooStandin::close_websockets`],
//! [`super::OdooStandin::websocket_subscriptions`], [`super::OdooStandin::bus_rows`].

use super::orm::bus::CHANNEL;
use super::{cookie_sid, count, lock, session_cookie_header, Shared};
use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use hyper_util::rt::TokioIo;
use serde_json::{json, Value};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// The headers Odoo requires (`WebsocketConnectionHandler._REQUIRED_HANDSHAKE_HEADERS`).
const REQUIRED: [&str; 6] = [
    "connection",
    "host",
    "sec-websocket-key",
    "sec-websocket-version",
    "upgrade",
    "origin",
];

pub(super) async fn websocket(State(shared): State<Arc<Shared>>, mut req: Request) -> Response {
    shared.requests.fetch_add(1, Ordering::SeqCst);
    count(&shared, "web", "websocket");
    if !shared.ws_enabled.load(Ordering::SeqCst) {
        return (
            StatusCode::NOT_FOUND,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            "<title>404 Not Found</title>",
        )
            .into_response();
    }
    let headers = req.headers().clone();
    let mut missing: Vec<&str> = REQUIRED
        .iter()
        .copied()
        .filter(|h| !headers.contains_key(*h))
        .collect();
    missing.sort_unstable();
    if !missing.is_empty() {
        return bad_request(&format!(
            "Empty or missing header(s): {}",
            missing.join(", ")
        ));
    }
    let value = |h: &str| {
        headers
            .get(h)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    if !value("upgrade").eq_ignore_ascii_case("websocket") {
        return bad_request("Invalid upgrade header");
    }
    if !value("connection").to_ascii_lowercase().contains("upgrade") {
        return bad_request("Invalid connection header");
    }
    if value("sec-websocket-version") != "13" {
        return (StatusCode::UPGRADE_REQUIRED, "426 Upgrade Required").into_response();
    }
    let key = value("sec-websocket-key");
    let sid = cookie_sid(&headers).map(str::to_owned);
    // A cookie Odoo does not know is a new, public session.
    let known = sid
        .as_deref()
        .is_some_and(|s| lock(&shared.sessions).contains_key(s));
    let session = if known { sid } else { None };
    let on_upgrade = hyper::upgrade::on(&mut req);
    let ws_shared = shared.clone();
    let ws_session = session.clone();
    tokio::spawn(async move {
        if let Ok(upgraded) = on_upgrade.await {
            serve(ws_shared, TokioIo::new(upgraded), ws_session).await;
        }
    });
    let cookie = session.unwrap_or_else(|| format!("{:040x}", fastrand::u128(..)));
    let mut resp = StatusCode::SWITCHING_PROTOCOLS.into_response();
    let h = resp.headers_mut();
    h.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    h.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(v) = HeaderValue::from_str(&derive_accept_key(key.as_bytes())) {
        h.insert("Sec-WebSocket-Accept", v);
    }
    if let Ok(v) = HeaderValue::from_str(&session_cookie_header(&cookie)) {
        h.insert(header::SET_COOKIE, v);
    }
    resp
}

fn bad_request(message: &str) -> Response {
    (
        StatusCode::BAD_REQUEST,
        [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
        // Werkzeug's page, as recorded.
        format!(
            "<!DOCTYPE HTML PUBLIC \"-//W3C//DTD HTML 3.2 Final//EN\">\n<title>400 Bad Request</title>\n<h1>Bad Request</h1>\n<p>{message}</p>\n"
        ),
    )
        .into_response()
}

/// One connection: subscriptions and pushes until either side closes.
async fn serve(
    shared: Arc<Shared>,
    io: TokioIo<hyper::upgrade::Upgraded>,
    session: Option<String>,
) {
    let mut ws = WebSocketStream::from_raw_socket(io, Role::Server, None).await;
    shared.ws_open.fetch_add(1, Ordering::SeqCst);
    let mut tick = lock(&shared.db).bus.tick.subscribe();
    let mut closes = shared.ws_close.subscribe();
    // The last row sent, once subscribed to the addon's channel.
    let mut sent: Option<i64> = None;
    loop {
        tokio::select! {
            message = ws.next() => match message {
                Some(Ok(Message::Text(text))) => {
                    let frame: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                    if frame["event_name"] != "subscribe" {
                        continue;
                    }
                    shared.ws_subscriptions.fetch_add(1, Ordering::SeqCst);
                    let ours = frame["data"]["channels"]
                        .as_array()
                        .is_some_and(|c| c.iter().any(|c| c == CHANNEL));
                    if !ours {
                        sent = None;
                        continue;
                    }
                    let last = frame["data"]["last"].as_i64().unwrap_or(0);
                    let (rows, newest) = lock(&shared.db).bus.poll(last);
                    sent = Some(newest);
                    if !rows.is_empty() && ws.send(Message::text(Value::from(rows).to_string())).await.is_err() {
                        break;
                    }
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => break,
                Some(Ok(_)) => {}
            },
            changed = tick.changed(), if sent.is_some() => {
                if changed.is_err() {
                    break;
                }
                if let Some(sid) = &session {
                    if !lock(&shared.sessions).contains_key(sid) {
                        let _ = ws.close(Some(CloseFrame {
                            code: CloseCode::from(4001),
                            reason: "".into(),
                        })).await;
                        break;
                    }
                }
                let (rows, newest) = lock(&shared.db).bus.poll(sent.unwrap_or(0));
                sent = Some(newest);
                if !rows.is_empty() && ws.send(Message::text(Value::from(rows).to_string())).await.is_err() {
                    break;
                }
            }
            code = closes.recv() => {
                let code = code.unwrap_or(1001);
                let _ = ws.close(Some(CloseFrame { code: CloseCode::from(code), reason: "".into() })).await;
                break;
            }
        }
    }
    shared.ws_open.fetch_sub(1, Ordering::SeqCst);
}
