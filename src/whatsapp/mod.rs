//! WhatsApp Business Cloud API (Graph API): the client and everything it sends and receives.
//!
//! Layout (only `client.rs` does I/O; everything else is pure and unit-tested):
//!
//! | file | what |
//! |---|---|
//! | `payload.rs` | typed bodies for `POST /{phone-number-id}/messages` with Meta's limits checked |
//! | `error.rs` | Meta's error object, the code → [`Disposition`] table, [`WhatsAppError`] |
//! | `client.rs` | [`CloudClient`]: send, media, templates, phone number; the only I/O |
//! | `media.rs` | media kinds, type/size checks, sha256, [`MediaCache`] |
//! | `templates.rs` | listed templates as a typed model, [`check_params`] before sending |
//! | `account.rs` | the `check` report: phone number, token, permissions, ids in plain words |
//! | `webhook.rs` | lenient typed webhook payloads (messages, statuses, template/account updates) |
//! | `signature.rs` | `X-Hub-Signature-256` HMAC check and the `hub.challenge` handshake |
//!
//! The Graph base URL and API version are configuration ([`ClientConfig`]), so the same client
//! talks to Meta or to the built-in sandbox. The access token and the Graph API version are per
//! account ([`AccountHandle`], from the addon's account fields), passed to each call: the
//! account's version replaces the configured one in the path, and a malformed one is refused
//! before any request. The token is sent only in the `Authorization` header and never printed:
//! [`crate::secret::Secret`] hides it in `Debug`, and errors carry no URL with a token.
//!
//! The client does not retry or pace by itself: it returns [`WhatsAppError`] with a
//! [`Disposition`] and a suggested delay, and the outbox decides (backon, governor).

pub mod account;
pub mod client;
pub mod error;
pub mod media;
pub mod payload;
pub mod signature;
pub mod templates;
pub mod webhook;

pub use account::{AccountCheck, CheckLine, CheckStatus, PhoneNumberInfo, TokenInfo};
pub use client::{
    is_api_version, AccountHandle, ClientConfig, CloudClient, SendResponse, SentContact,
    SentMessage, DEFAULT_API_VERSION, DEFAULT_GRAPH_URL,
};
pub use error::{classify, CodeInfo, Disposition, MetaError, WhatsAppError};
pub use media::{MediaCache, MediaError, MediaInfo, MediaKind, MediaUpload};
pub use payload::{OutboundMessage, PayloadError};
pub use signature::{sign, verify_challenge, verify_signature, SignatureError};
pub use templates::{check_params, check_sendable, MessageTemplate, TemplateList, TemplateStatus};
pub use webhook::{parse_webhook, WebhookPayload};
