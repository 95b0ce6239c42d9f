//! [`BusClient`]: the only I/O of the bus. The websocket upgrade is an HTTP/1.1 request sent
//! with reqwest (Odoo's TLS and connection settings as for every other call), carrying the web
//! session cookie of [`OdooClient::web_session`]; the upgraded connection is then framed by
//! tokio-tungstenite.

use super::protocol::{self, Notification, CLOSE_SESSION_EXPIRED};
use super::BusError;
use crate::odoo::OdooClient;
use crate::secret::Secret;
use futures_util::{SinkExt, StreamExt};
use reqwest::header::{CONNECTION, COOKIE, ORIGIN, UPGRADE};
use std::time::Duration;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;
use url::Url;

/// Odoo's own limit on a message (`Websocket.MESSAGE_MAX_SIZE`).
const MAX_MESSAGE: usize = 1 << 20;
/// A connection silent for this long is taken as lost: Odoo pings an idle one every 45 s.
pub const SILENCE: Duration = Duration::from_secs(100);

/// Opens subscriptions to Odoo's bus. Cheap to clone.
#[derive(Clone, Debug)]
pub struct BusClient {
    odoo: OdooClient,
    http: reqwest::Client,
    url: Url,
    shown: String,
    timeout: Duration,
}

/// One subscribed websocket.
pub struct Connection {
    ws: WebSocketStream<reqwest::Upgraded>,
    cookie: Secret,
    shown: String,
}

impl BusClient {
    /// A client for the websocket under `url` (Odoo's base URL or its gevent port), logging in
    /// through `odoo`'s web session; `timeout` bounds the handshake.
    pub fn new(odoo: OdooClient, url: &Url, timeout: Duration) -> Result<BusClient, BusError> {
        let mut plain = url.clone();
        let _ = plain.set_password(None);
        let _ = plain.set_username("");
        let url = protocol::websocket_url(&plain).map_err(|detail| BusError::Protocol {
            url: plain.to_string(),
            detail,
        })?;
        let shown = url.to_string();
        let http = reqwest::Client::builder()
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .redirect(reqwest::redirect::Policy::none())
            .tcp_nodelay(true)
            .user_agent(concat!("whatsapp-sidecar/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| BusError::Unreachable {
                url: shown.clone(),
                message: format!("cannot set up the HTTP client: {e}"),
            })?;
        Ok(BusClient {
            odoo,
            http,
            url,
            shown,
            timeout,
        })
    }

    /// The websocket URL, for messages.
    pub fn url(&self) -> &str {
        &self.shown
    }

    /// Logs in (or reuses the web session), upgrades, and subscribes to the addon's channel
    /// from notification `last` on.
    pub async fn connect(&self, last: i64) -> Result<Connection, BusError> {
        let cookie = self.odoo.web_session().await.map_err(BusError::Session)?;
        tokio::time::timeout(self.timeout, self.subscribe(cookie, last))
            .await
            .map_err(|_| BusError::Unreachable {
                url: self.shown.clone(),
                message: format!("the handshake did not complete within {:?}", self.timeout),
            })?
    }

    /// The upgrade with `cookie`, its answer checked, and the subscribe frame.
    async fn subscribe(&self, cookie: Secret, last: i64) -> Result<Connection, BusError> {
        let key = tokio_tungstenite::tungstenite::handshake::client::generate_key();
        let unreachable = |e: reqwest::Error| BusError::Unreachable {
            url: self.shown.clone(),
            message: describe(e),
        };
        let response = self
            .http
            .get(self.url.clone())
            .header(UPGRADE, "websocket")
            .header(CONNECTION, "Upgrade")
            .header("Sec-WebSocket-Version", "13")
            .header("Sec-WebSocket-Key", &key)
            .header(ORIGIN, protocol::origin(&self.url))
            .header(COOKIE, format!("session_id={}", cookie.expose()))
            .send()
            .await
            .map_err(unreachable)?;
        let status = response.status().as_u16();
        if status != 101 {
            return Err(BusError::Refused {
                url: self.shown.clone(),
                status,
                hint: protocol::refusal_hint(status),
            });
        }
        let accept = response
            .headers()
            .get("Sec-WebSocket-Accept")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        if accept != derive_accept_key(key.as_bytes()) {
            return Err(BusError::Protocol {
                url: self.shown.clone(),
                detail: format!(
                    "the handshake's Sec-WebSocket-Accept {accept:?} does not match the key sent"
                ),
            });
        }
        let upgraded = response.upgrade().await.map_err(unreachable)?;
        let config = WebSocketConfig::default()
            .max_message_size(Some(MAX_MESSAGE))
            .max_frame_size(Some(MAX_MESSAGE));
        let mut ws = WebSocketStream::from_raw_socket(upgraded, Role::Client, Some(config)).await;
        let frame = protocol::subscribe_frame(last);
        ws.send(Message::text(frame))
            .await
            .map_err(|e| broken(&self.shown, &e))?;
        Ok(Connection {
            ws,
            cookie,
            shown: self.shown.clone(),
        })
    }

    /// Forgets the web session `cookie` (Odoo ended it): the next connect logs in.
    pub async fn session_ended(&self, cookie: &Secret) {
        self.odoo.drop_web_session(cookie).await;
    }
}

impl Connection {
    /// The next notifications. Pings are answered on the way (by tungstenite); an error says
    /// why the connection ended (a close from Odoo, a broken or silent connection).
    pub async fn next(&mut self) -> Result<Vec<Notification>, BusError> {
        loop {
            let message = match tokio::time::timeout(SILENCE, self.ws.next()).await {
                Err(_) => return Err(BusError::Silent(SILENCE)),
                Ok(None) => {
                    return Err(BusError::Closed {
                        code: 1006,
                        reason: protocol::close_reason(1006),
                    })
                }
                Ok(Some(Err(e))) => return Err(broken(&self.shown, &e)),
                Ok(Some(Ok(message))) => message,
            };
            match message {
                Message::Text(text) => match protocol::parse_frame(&text) {
                    Ok(list) => return Ok(list),
                    Err(detail) => {
                        // Only a wake-up is lost; polling still finds the work.
                        tracing::warn!(url = %self.shown, "ignoring a bus frame: {detail}");
                    }
                },
                Message::Close(frame) => {
                    let code = frame.map_or(1005, |f| u16::from(f.code));
                    return Err(BusError::Closed {
                        code,
                        reason: protocol::close_reason(code),
                    });
                }
                Message::Binary(_) | Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
            }
        }
    }

    /// The web session cookie the connection was opened with.
    pub fn cookie(&self) -> Secret {
        self.cookie.clone()
    }

    /// Whether Odoo ended the web session (the next connect must log in again).
    pub fn session_expired(error: &BusError) -> bool {
        matches!(error, BusError::Closed { code, .. } if *code == CLOSE_SESSION_EXPIRED)
    }

    /// Closes the connection politely (a close frame, bounded in time).
    pub async fn close(mut self) {
        let _ = tokio::time::timeout(Duration::from_secs(2), self.ws.close(None)).await;
    }
}

/// Why the connection ended, from tungstenite's error.
fn broken(url: &str, e: &tokio_tungstenite::tungstenite::Error) -> BusError {
    use tokio_tungstenite::tungstenite::Error as E;
    match e {
        E::ConnectionClosed | E::AlreadyClosed | E::Io(_) => BusError::Closed {
            code: 1006,
            reason: protocol::close_reason(1006),
        },
        other => BusError::Protocol {
            url: url.to_owned(),
            detail: other.to_string(),
        },
    }
}

/// A reqwest error with its causes (the top level alone says little: "error sending request").
fn describe(e: reqwest::Error) -> String {
    let e = e.without_url();
    let mut text = e.to_string();
    let mut source = std::error::Error::source(&e);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
