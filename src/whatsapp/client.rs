//! [`CloudClient`]: the only file of this module that does I/O.
//!
//! One client (one connection pool) serves every account; each call takes the
//! [`AccountHandle`] whose phone number id, WABA id, token and Graph API version it uses, because
//! the daemon serves several accounts whose settings come from Odoo. URLs are built from the
//! configured Graph base URL, the account's version (the configured `api_version` when the
//! account has none) and each id as one percent-encoded path segment. A malformed version, id
//! or token is refused before any request ([`WhatsAppError::Config`], which pauses an account's
//! sending). The token travels only in the `Authorization` header and never appears in an error.
//!
//! Each call is a single attempt. Failures come back as [`WhatsAppError`] with a
//! [`super::Disposition`]; retrying and pacing are the caller's business.

use bytes::Bytes;
use reqwest::header::{HeaderValue, AUTHORIZATION};
use reqwest::{Method, RequestBuilder, Response};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::fmt;
use std::time::{Duration, Instant};
use url::Url;

use super::account::{
    self, AccountCheck, CheckStep, PhoneNumberInfo, TokenInfo, PHONE_NUMBER_FIELDS,
};
use super::error::{ErrorEnvelope, WhatsAppError};
use super::media::{
    self, DownloadedMedia, MediaCache, MediaError, MediaInfo, MediaUpload, UploadedMedia,
};
use super::payload::OutboundMessage;
use super::templates::{self, TemplateList, TemplatePage, TEMPLATE_FIELDS};
use crate::secret::Secret;

/// Meta's Graph API.
pub const DEFAULT_GRAPH_URL: &str = "https://graph.facebook.com";
/// The current Graph API version in the fact sheet (released 2026-07-29).
pub const DEFAULT_API_VERSION: &str = "v26.0";

/// Largest JSON answer read (error bodies included).
const MAX_JSON_BYTES: u64 = 8 * 1024 * 1024;
/// Templates per page asked for.
const TEMPLATE_PAGE_SIZE: u32 = 100;
/// Pages followed at most (100 × 500 templates is far above Meta's per-WABA limit).
const MAX_TEMPLATE_PAGES: usize = 500;

/// Where the Graph API is and how long to wait for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientConfig {
    /// `https://graph.facebook.com`, or the sandbox's address.
    pub graph_url: Url,
    /// `v26.0`.
    pub api_version: String,
    /// Per request (connect + answer) for JSON calls.
    pub timeout: Duration,
    /// Per request for media uploads and downloads (up to 100 MB).
    pub media_timeout: Duration,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            graph_url: Url::parse(DEFAULT_GRAPH_URL).expect("constant URL parses"),
            api_version: DEFAULT_API_VERSION.to_string(),
            timeout: Duration::from_secs(30),
            media_timeout: Duration::from_secs(300),
        }
    }
}

impl ClientConfig {
    /// A configuration for this base URL and version, with default timeouts.
    pub fn new(graph_url: Url, api_version: impl Into<String>) -> Self {
        ClientConfig {
            graph_url,
            api_version: api_version.into(),
            ..ClientConfig::default()
        }
    }

    /// Checks the URL and the version.
    pub fn validate(&self) -> Result<(), String> {
        if !matches!(self.graph_url.scheme(), "https" | "http")
            || self.graph_url.cannot_be_a_base()
            || self.graph_url.host().is_none()
        {
            return Err(format!(
                "graph_url '{}' must be an http(s) URL such as {DEFAULT_GRAPH_URL}",
                self.graph_url
            ));
        }
        if self.graph_url.query().is_some() || !self.graph_url.username().is_empty() {
            return Err(format!(
                "graph_url '{}' must not carry a query or credentials",
                self.graph_url.origin().ascii_serialization()
            ));
        }
        let v = &self.api_version;
        if !is_api_version(v) {
            return Err(format!(
                "api_version '{v}' must look like {DEFAULT_API_VERSION}"
            ));
        }
        if self.timeout.is_zero() || self.media_timeout.is_zero() {
            return Err("timeouts must be longer than zero".into());
        }
        Ok(())
    }
}

/// True for a Graph API version such as `v26.0`: `v`, digits, a dot, digits, nothing else (so
/// it cannot carry a path, a query or spaces).
pub fn is_api_version(v: &str) -> bool {
    v.len() <= 16
        && v.strip_prefix('v')
            .and_then(|rest| rest.split_once('.'))
            .is_some_and(|(major, minor)| {
                !major.is_empty()
                    && !minor.is_empty()
                    && major.chars().all(|c| c.is_ascii_digit())
                    && minor.chars().all(|c| c.is_ascii_digit())
            })
}

/// True for strings usable as one Graph id path segment (Meta's ids are digits; the sandbox
/// uses names like `sandbox-0001`).
pub fn is_graph_id(s: &str) -> bool {
    !s.is_empty()
        && s != "."
        && s != ".."
        && s.len() <= 128
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'))
}

/// One WhatsApp account: its phone number id, its WABA id, its token and its Graph API version.
#[derive(Clone, PartialEq, Eq)]
pub struct AccountHandle {
    /// The phone number id (from WhatsApp Manager > API Setup).
    pub phone_number_id: String,
    /// The WhatsApp Business Account id.
    pub waba_id: String,
    /// The System User access token.
    pub token: Secret,
    /// The account's Graph API version (`v26.0`, the addon's "Graph API version" field); `None`
    /// uses the client's configured `api_version`. Checked before every call for the account.
    pub api_version: Option<String>,
}

impl fmt::Debug for AccountHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AccountHandle")
            .field("phone_number_id", &self.phone_number_id)
            .field("waba_id", &self.waba_id)
            .field("token", &self.token)
            .field("api_version", &self.api_version)
            .finish()
    }
}

impl AccountHandle {
    /// An account that uses the client's configured Graph API version.
    pub fn new(
        phone_number_id: impl Into<String>,
        waba_id: impl Into<String>,
        token: Secret,
    ) -> Self {
        AccountHandle {
            phone_number_id: phone_number_id.into(),
            waba_id: waba_id.into(),
            token,
            api_version: None,
        }
    }

    /// The same account with its own Graph API version, as read from Odoo. Surrounding spaces
    /// are dropped; `None` or a blank value keeps the client's configured version. A malformed
    /// value is kept as it is and refused by every call ([`Self::check_api_version`]).
    pub fn with_api_version(mut self, version: Option<&str>) -> Self {
        self.api_version = version
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned);
        self
    }

    /// The version calls for this account use: its own, else `default` (the client's).
    pub fn api_version_or<'a>(&'a self, default: &'a str) -> &'a str {
        self.api_version.as_deref().unwrap_or(default)
    }

    /// Refuses a malformed account version, naming the account, the value and the fix.
    pub fn check_api_version(&self) -> Result<(), WhatsAppError> {
        match self.api_version.as_deref() {
            Some(v) if !is_api_version(v) => Err(WhatsAppError::Config(format!(
                "the Graph API version '{v}' of the WhatsApp account with phone number id '{}' \
                 is not a version like {DEFAULT_API_VERSION}: set Graph API version on the \
                 WhatsApp account to e.g. {DEFAULT_API_VERSION}",
                self.phone_number_id
            ))),
            _ => Ok(()),
        }
    }

    /// Everything a call on the phone number needs: a Graph id, a usable token and version.
    /// The outbox runs it before uploading a file, so a bad setting pauses the account instead
    /// of failing the message as a media problem.
    pub fn check_phone(&self) -> Result<(), WhatsAppError> {
        check_id("phone number id", &self.phone_number_id)?;
        self.check_call()
    }

    fn check_waba(&self) -> Result<(), WhatsAppError> {
        check_id("WhatsApp Business Account id", &self.waba_id)?;
        self.check_call()
    }

    /// The version and the token (calls on a media id).
    fn check_call(&self) -> Result<(), WhatsAppError> {
        self.check_api_version()?;
        self.check_token()
    }

    fn check_token(&self) -> Result<(), WhatsAppError> {
        if self.token.is_blank() {
            return Err(WhatsAppError::Config(
                "the account has no access token".into(),
            ));
        }
        if HeaderValue::from_str(&format!("Bearer {}", self.token.expose())).is_err() {
            return Err(WhatsAppError::Config(
                "the access token contains characters that cannot be sent in a header \
                 (a line break or a non-ASCII character from copy and paste?)"
                    .into(),
            ));
        }
        Ok(())
    }
}

fn check_id(what: &str, id: &str) -> Result<(), WhatsAppError> {
    if is_graph_id(id) {
        Ok(())
    } else {
        Err(WhatsAppError::Config(format!(
            "the {what} '{id}' is not a Graph API id; copy it from WhatsApp Manager > API Setup"
        )))
    }
}

/// The answer to a send.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SendResponse {
    /// `whatsapp`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messaging_product: Option<String>,
    /// `input` as sent and the user's `wa_id`.
    #[serde(default)]
    pub contacts: Vec<SentContact>,
    /// The wamid (always at least one when returned by [`CloudClient::send_message`]).
    #[serde(default)]
    pub messages: Vec<SentMessage>,
}

/// `contacts[]` of a send answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentContact {
    /// The number as sent.
    #[serde(default)]
    pub input: String,
    /// WhatsApp's id for the user; may differ from the input (Brazil, Mexico, ...).
    #[serde(default)]
    pub wa_id: String,
}

/// `messages[]` of a send answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentMessage {
    /// The wamid every status webhook refers to.
    pub id: String,
    /// `accepted`, `held_for_quality_assessment`, ...; unknown values mean accepted, pending.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_status: Option<String>,
}

impl SendResponse {
    /// The wamid.
    pub fn wamid(&self) -> &str {
        self.messages.first().map(|m| m.id.as_str()).unwrap_or("")
    }

    /// The recipient's wa_id, when Meta returned it.
    pub fn wa_id(&self) -> Option<&str> {
        self.contacts
            .first()
            .map(|c| c.wa_id.as_str())
            .filter(|w| !w.is_empty())
    }

    /// `message_status`, when present.
    pub fn message_status(&self) -> Option<&str> {
        self.messages
            .first()
            .and_then(|m| m.message_status.as_deref())
    }
}

/// How an upload went when the cache was consulted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CachedUpload {
    /// The media id to send.
    pub media_id: String,
    /// True when it came from the cache (no upload made).
    pub reused: bool,
}

#[derive(Deserialize)]
struct SubscribedApps {
    #[serde(default)]
    data: Vec<SubscribedApp>,
}

#[derive(Deserialize)]
struct SubscribedApp {
    #[serde(default)]
    whatsapp_business_api_data: SubscribedAppData,
}

#[derive(Deserialize, Default)]
struct SubscribedAppData {
    #[serde(default)]
    id: Option<String>,
    #[serde(default)]
    name: Option<String>,
}

/// The Cloud API client.
#[derive(Clone)]
pub struct CloudClient {
    http: reqwest::Client,
    config: ClientConfig,
    /// Every request counted and timed (off unless [`CloudClient::with_metrics`]).
    metrics: crate::metrics::Metrics,
}

impl fmt::Debug for CloudClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CloudClient")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(s) = cur {
        let text = s.to_string();
        if parts.last() != Some(&text) {
            parts.push(text);
        }
        cur = s.source();
    }
    parts.join(": ")
}

fn transport(operation: &'static str, e: reqwest::Error) -> WhatsAppError {
    let timed_out = e.is_timeout();
    let never_connected = e.is_connect() || e.is_builder();
    let e = e.without_url();
    WhatsAppError::Transport {
        operation,
        reason: if timed_out {
            format!("timed out ({})", error_chain(&e))
        } else {
            error_chain(&e)
        },
        timed_out,
        may_have_reached_meta: !never_connected,
    }
}

fn snippet(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let one_line: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() > 300 {
        let head: String = one_line.chars().take(300).collect();
        format!("{head}...")
    } else {
        one_line
    }
}

/// Reads a body up to `cap` bytes.
async fn read_capped(
    operation: &'static str,
    mut resp: Response,
    cap: u64,
) -> Result<Vec<u8>, WhatsAppError> {
    let too_large = || WhatsAppError::Decode {
        operation,
        reason: format!("the answer is larger than {cap} bytes"),
    };
    if resp.content_length().is_some_and(|n| n > cap) {
        return Err(too_large());
    }
    let mut out = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| transport(operation, e))? {
        if out.len() as u64 + chunk.len() as u64 > cap {
            return Err(too_large());
        }
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// Turns a non-success answer into Meta's error, or an HTTP error when it is not one.
fn failure(operation: &'static str, status: u16, body: &[u8]) -> WhatsAppError {
    match serde_json::from_slice::<ErrorEnvelope>(body) {
        Ok(env) => WhatsAppError::Meta {
            operation,
            status,
            error: Box::new(env.error),
        },
        Err(_) => WhatsAppError::Http {
            operation,
            status,
            body: snippet(body),
        },
    }
}

fn decode<T: DeserializeOwned>(
    operation: &'static str,
    status: u16,
    body: &[u8],
) -> Result<T, WhatsAppError> {
    // a success status carrying an error object is still Meta's error
    if let Ok(env) = serde_json::from_slice::<ErrorEnvelope>(body) {
        return Err(WhatsAppError::Meta {
            operation,
            status,
            error: Box::new(env.error),
        });
    }
    serde_json::from_slice(body).map_err(|e| WhatsAppError::Decode {
        operation,
        reason: format!("{e}; body: {}", snippet(body)),
    })
}

fn same_origin(a: &Url, b: &Url) -> bool {
    a.scheme() == b.scheme()
        && a.host_str() == b.host_str()
        && a.port_or_known_default() == b.port_or_known_default()
}

impl CloudClient {
    /// A client for this configuration.
    pub fn new(config: ClientConfig) -> Result<Self, WhatsAppError> {
        config.validate().map_err(WhatsAppError::Config)?;
        let http = reqwest::Client::builder()
            .user_agent(concat!("whatsapp-sidecar/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(config.timeout.min(Duration::from_secs(10)))
            .build()
            .map_err(|e| {
                WhatsAppError::Config(format!(
                    "the HTTP client could not start: {}",
                    error_chain(&e)
                ))
            })?;
        Ok(CloudClient {
            http,
            config,
            metrics: Default::default(),
        })
    }

    /// This client recording its requests in `metrics`.
    pub fn with_metrics(mut self, metrics: crate::metrics::Metrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// Counts and times one request.
    fn record<T>(
        &self,
        operation: &'static str,
        started: std::time::Instant,
        result: &Result<T, WhatsAppError>,
    ) {
        let error = result.as_ref().err().map(WhatsAppError::metric_code);
        self.metrics.api_call(operation, started.elapsed(), error);
    }

    /// The configuration.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// `{graph_url}/{version}/{segments...}` for this account: its own version, else the
    /// configured one. Callers check the account ([`AccountHandle::check_api_version`]) first.
    fn endpoint(&self, account: &AccountHandle, segments: &[&str]) -> Url {
        self.endpoint_at(account.api_version_or(&self.config.api_version), segments)
    }

    /// `{graph_url}/{version}/{segments...}`, each segment percent-encoded.
    fn endpoint_at(&self, version: &str, segments: &[&str]) -> Url {
        let mut url = self.config.graph_url.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty();
            path.push(version);
            for s in segments {
                path.push(s);
            }
        }
        url
    }

    fn request(
        &self,
        method: Method,
        url: Url,
        token: &Secret,
        timeout: Duration,
    ) -> RequestBuilder {
        // checked by AccountHandle::check_token before every call
        let mut auth = HeaderValue::from_str(&format!("Bearer {}", token.expose()))
            .unwrap_or_else(|_| HeaderValue::from_static("Bearer"));
        auth.set_sensitive(true);
        self.http
            .request(method, url)
            .header(AUTHORIZATION, auth)
            .timeout(timeout)
    }

    /// Sends a request and returns the status and body of a success, or the error.
    async fn call(
        &self,
        operation: &'static str,
        req: RequestBuilder,
    ) -> Result<(u16, Vec<u8>), WhatsAppError> {
        let resp = req.send().await.map_err(|e| transport(operation, e))?;
        let status = resp.status();
        let body = read_capped(operation, resp, MAX_JSON_BYTES).await?;
        if status.is_success() {
            Ok((status.as_u16(), body))
        } else {
            Err(failure(operation, status.as_u16(), &body))
        }
    }

    async fn call_json<T: DeserializeOwned>(
        &self,
        operation: &'static str,
        req: RequestBuilder,
    ) -> Result<T, WhatsAppError> {
        let started = std::time::Instant::now();
        let result = match self.call(operation, req).await {
            Ok((status, body)) => decode(operation, status, &body),
            Err(e) => Err(e),
        };
        self.record(operation, started, &result);
        result
    }

    /// `POST /{phone-number-id}/messages`. Checks the message against Meta's limits first.
    ///
    /// On success the answer has a wamid. A [`WhatsAppError::Transport`] with
    /// `may_have_reached_meta` may hide an accepted send: reconcile before resending.
    pub async fn send_message(
        &self,
        account: &AccountHandle,
        message: &OutboundMessage,
    ) -> Result<SendResponse, WhatsAppError> {
        const OP: &str = "send message";
        account.check_phone()?;
        message.validate()?;
        let url = self.endpoint(account, &[&account.phone_number_id, "messages"]);
        let req = self
            .request(Method::POST, url, &account.token, self.config.timeout)
            .json(message);
        let resp: SendResponse = self.call_json(OP, req).await?;
        if resp.messages.iter().all(|m| m.id.trim().is_empty()) {
            return Err(WhatsAppError::Decode {
                operation: OP,
                reason: "the answer carries no message id (wamid); Meta may still have \
                         accepted the message"
                    .into(),
            });
        }
        Ok(resp)
    }

    /// `POST /{phone-number-id}/media` (multipart): returns the media id, valid 30 days.
    pub async fn upload_media(
        &self,
        account: &AccountHandle,
        upload: &MediaUpload,
    ) -> Result<String, WhatsAppError> {
        const OP: &str = "upload media";
        account.check_phone()?;
        let len = upload.bytes().len() as u64;
        let part = reqwest::multipart::Part::stream_with_length(
            reqwest::Body::from(upload.bytes().clone()),
            len,
        )
        .file_name(upload.file_name().to_string())
        .mime_str(upload.mime_type())
        .map_err(|_| {
            WhatsAppError::Media(MediaError::WrongType {
                kind: upload.kind(),
                mime: upload.mime_type().to_string(),
                allowed: upload.kind().allowed_mime_types().join(", "),
            })
        })?;
        let form = reqwest::multipart::Form::new()
            .text("messaging_product", "whatsapp")
            .text("type", upload.mime_type().to_string())
            .part("file", part);
        let url = self.endpoint(account, &[&account.phone_number_id, "media"]);
        let req = self
            .request(Method::POST, url, &account.token, self.config.media_timeout)
            .multipart(form);
        let uploaded: UploadedMedia = self.call_json(OP, req).await?;
        if uploaded.id.trim().is_empty() {
            return Err(WhatsAppError::Decode {
                operation: OP,
                reason: "the answer carries an empty media id".into(),
            });
        }
        Ok(uploaded.id)
    }

    /// Uploads unless `cache` holds a fresh media id for the same bytes from the same number;
    /// records new uploads. `now` is the caller's clock (tests pass their own).
    pub async fn upload_media_cached(
        &self,
        account: &AccountHandle,
        cache: &MediaCache,
        upload: &MediaUpload,
        now: Instant,
    ) -> Result<CachedUpload, WhatsAppError> {
        if let Some(media_id) = cache.get(&account.phone_number_id, upload.sha256(), now) {
            return Ok(CachedUpload {
                media_id,
                reused: true,
            });
        }
        let media_id = self.upload_media(account, upload).await?;
        cache.insert(&account.phone_number_id, upload.sha256(), &media_id, now);
        Ok(CachedUpload {
            media_id,
            reused: false,
        })
    }

    /// `GET /{media-id}`: the temporary download URL, type, sha256 and size.
    pub async fn media_info(
        &self,
        account: &AccountHandle,
        media_id: &str,
    ) -> Result<MediaInfo, WhatsAppError> {
        account.check_call()?;
        check_id("media id", media_id)?;
        let url = self.endpoint(account, &[media_id]);
        let req = self.request(Method::GET, url, &account.token, self.config.timeout);
        self.call_json("read media", req).await
    }

    /// Downloads the file at `info.url` with the account's token and checks its sha256.
    pub async fn download_media(
        &self,
        account: &AccountHandle,
        info: &MediaInfo,
    ) -> Result<DownloadedMedia, WhatsAppError> {
        const OP: &str = "download media";
        account.check_token()?;
        let expected = info
            .sha256
            .as_deref()
            .filter(|s| !s.trim().is_empty())
            .ok_or(WhatsAppError::Media(MediaError::MissingHash))?;
        let url = Url::parse(&info.url).map_err(|e| WhatsAppError::Decode {
            operation: OP,
            reason: format!("the media URL is not a URL ({e})"),
        })?;
        let plaintext_ok = self.config.graph_url.scheme() == "http";
        if !(url.scheme() == "https" || (plaintext_ok && url.scheme() == "http")) {
            return Err(WhatsAppError::Decode {
                operation: OP,
                reason: "the media URL is not https; the token is not sent over it".into(),
            });
        }
        let req = self.request(Method::GET, url, &account.token, self.config.media_timeout);
        let started = std::time::Instant::now();
        let bytes = async {
            let resp = req.send().await.map_err(|e| transport(OP, e))?;
            let status = resp.status();
            if !status.is_success() {
                let body = read_capped(OP, resp, MAX_JSON_BYTES).await?;
                return Err(failure(OP, status.as_u16(), &body));
            }
            read_capped(OP, resp, media::MAX_MEDIA_BYTES)
                .await
                .map_err(|e| match e {
                    WhatsAppError::Decode { .. } => {
                        WhatsAppError::Media(MediaError::DownloadTooLarge {
                            max_human: media::human_size(media::MAX_MEDIA_BYTES),
                        })
                    }
                    other => other,
                })
        }
        .await;
        self.record(OP, started, &bytes);
        let bytes = bytes?;
        media::verify_sha256(&bytes, expected)?;
        Ok(DownloadedMedia {
            sha256: expected.trim().to_ascii_lowercase(),
            mime_type: info.mime_type.clone(),
            bytes: Bytes::from(bytes),
        })
    }

    /// [`Self::media_info`] then [`Self::download_media`]: an inbound file, checked.
    pub async fn fetch_media(
        &self,
        account: &AccountHandle,
        media_id: &str,
    ) -> Result<DownloadedMedia, WhatsAppError> {
        let info = self.media_info(account, media_id).await?;
        self.download_media(account, &info).await
    }

    /// `DELETE /{media-id}`.
    pub async fn delete_media(
        &self,
        account: &AccountHandle,
        media_id: &str,
    ) -> Result<(), WhatsAppError> {
        const OP: &str = "delete media";
        account.check_call()?;
        check_id("media id", media_id)?;
        let url = self.endpoint(account, &[media_id]);
        let req = self.request(Method::DELETE, url, &account.token, self.config.timeout);
        #[derive(Deserialize)]
        struct Deleted {
            #[serde(default)]
            success: Option<bool>,
        }
        let d: Deleted = self.call_json(OP, req).await?;
        if d.success == Some(false) {
            return Err(WhatsAppError::Decode {
                operation: OP,
                reason: "Meta answered success: false".into(),
            });
        }
        Ok(())
    }

    fn templates_url(&self, account: &AccountHandle, fields: &str, limit: u32) -> Url {
        let mut url = self.endpoint(account, &[&account.waba_id, "message_templates"]);
        url.query_pairs_mut()
            .append_pair("fields", fields)
            .append_pair("limit", &limit.to_string());
        url
    }

    /// Every template of the account's WABA, following `paging.next`.
    ///
    /// `next` is followed only on the configured Graph host (the token is sent with it), with
    /// any `access_token` query parameter removed.
    pub async fn list_templates(
        &self,
        account: &AccountHandle,
    ) -> Result<TemplateList, WhatsAppError> {
        const OP: &str = "list templates";
        account.check_waba()?;
        let mut url = self.templates_url(account, TEMPLATE_FIELDS, TEMPLATE_PAGE_SIZE);
        let mut list = TemplateList::default();
        let mut seen = HashSet::new();
        for _ in 0..MAX_TEMPLATE_PAGES {
            seen.insert(url.to_string());
            let req = self.request(
                Method::GET,
                url.clone(),
                &account.token,
                self.config.timeout,
            );
            let page: TemplatePage = self.call_json(OP, req).await?;
            templates::read_page(&page.data, &mut list);
            let next = page
                .paging
                .and_then(|p| p.next)
                .filter(|n| !n.trim().is_empty());
            let Some(next) = next else {
                return Ok(list);
            };
            if page.data.is_empty() {
                return Ok(list);
            }
            let mut next_url = Url::parse(&next).map_err(|e| WhatsAppError::Decode {
                operation: OP,
                reason: format!("paging.next is not a URL ({e})"),
            })?;
            if !same_origin(&next_url, &self.config.graph_url) {
                return Err(WhatsAppError::Decode {
                    operation: OP,
                    reason: format!(
                        "paging.next points to {}, not to the configured Graph API; it is not \
                         followed with the token",
                        next_url.origin().ascii_serialization()
                    ),
                });
            }
            let kept: Vec<(String, String)> = next_url
                .query_pairs()
                .filter(|(k, _)| k != "access_token")
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
            next_url.set_query(None);
            if !kept.is_empty() {
                next_url.query_pairs_mut().extend_pairs(kept);
            }
            if seen.contains(next_url.as_str()) {
                return Err(WhatsAppError::Decode {
                    operation: OP,
                    reason: "paging.next repeats a page already read".into(),
                });
            }
            url = next_url;
        }
        Err(WhatsAppError::Decode {
            operation: OP,
            reason: format!("more than {MAX_TEMPLATE_PAGES} pages of templates"),
        })
    }

    /// `GET /debug_token?input_token=<the token>` with the token itself: whether Meta still
    /// accepts it and when it expires.
    pub async fn token_info(&self, account: &AccountHandle) -> Result<TokenInfo, WhatsAppError> {
        const OP: &str = "debug token";
        account.check_api_version()?;
        account.check_token()?;
        let mut url = self.endpoint(account, &["debug_token"]);
        url.query_pairs_mut()
            .append_pair("input_token", account.token.expose());
        let req = self.request(Method::GET, url, &account.token, self.config.timeout);
        let envelope: account::DebugTokenEnvelope = self.call_json(OP, req).await?;
        Ok(envelope.data.into())
    }

    /// `GET /{waba-id}/subscribed_apps`: the names (else ids) of the apps subscribed to the
    /// WABA's webhooks (<https://developers.facebook.com/docs/graph-api/reference/whats-app-business-account/subscribed_apps/>).
    pub async fn subscribed_apps(
        &self,
        account: &AccountHandle,
    ) -> Result<Vec<String>, WhatsAppError> {
        const OP: &str = "read subscribed apps";
        account.check_api_version()?;
        account.check_token()?;
        let url = self.endpoint(account, &[&account.waba_id, "subscribed_apps"]);
        let req = self.request(Method::GET, url, &account.token, self.config.timeout);
        let list: SubscribedApps = self.call_json(OP, req).await?;
        Ok(list
            .data
            .into_iter()
            .map(|a| {
                let d = a.whatsapp_business_api_data;
                d.name.or(d.id).unwrap_or_else(|| "(unnamed app)".into())
            })
            .collect())
    }

    /// `GET /{phone-number-id}`: number, name, quality, throughput, name status.
    pub async fn phone_number(
        &self,
        account: &AccountHandle,
    ) -> Result<PhoneNumberInfo, WhatsAppError> {
        account.check_phone()?;
        self.phone_number_fields(account, PHONE_NUMBER_FIELDS).await
    }

    async fn phone_number_fields(
        &self,
        account: &AccountHandle,
        fields: &str,
    ) -> Result<PhoneNumberInfo, WhatsAppError> {
        let mut url = self.endpoint(account, &[&account.phone_number_id]);
        url.query_pairs_mut().append_pair("fields", fields);
        let req = self.request(Method::GET, url, &account.token, self.config.timeout);
        self.call_json("read phone number", req).await
    }

    /// The `check` report: settings, token, phone number, messaging limit and WABA access,
    /// each as an OK/WARN/FAIL line in words a person can act on.
    pub async fn check_account(&self, account: &AccountHandle) -> AccountCheck {
        let mut report = AccountCheck::default();
        let settings = account::check_settings(account);
        if !settings.is_empty() {
            report.lines = settings;
            return report;
        }
        match self.phone_number(account).await {
            Ok(info) => {
                let mut info = info;
                // the messaging limit field has moved; read whichever Meta still serves
                for field in [
                    "whatsapp_business_manager_messaging_limit",
                    "messaging_limit_tier",
                ] {
                    if let Ok(extra) = self.phone_number_fields(account, field).await {
                        if extra.whatsapp_business_manager_messaging_limit.is_some()
                            || extra.messaging_limit_tier.is_some()
                        {
                            info.whatsapp_business_manager_messaging_limit =
                                extra.whatsapp_business_manager_messaging_limit;
                            info.messaging_limit_tier = extra.messaging_limit_tier;
                            break;
                        }
                    }
                }
                for line in account::phone_lines(&info, account) {
                    report.push(line);
                }
                report.phone = Some(info);
            }
            Err(e) => {
                report.push(account::explain(
                    CheckStep::PhoneNumber,
                    account,
                    &self.config,
                    &e,
                ));
                if account::stops_the_check(&e) {
                    return report;
                }
            }
        }
        let url = self.templates_url(account, "name,status", 1);
        let req = self.request(Method::GET, url, &account.token, self.config.timeout);
        match self.call_json::<TemplatePage>("list templates", req).await {
            Ok(page) => report.push(account::templates_line(account, page.data.len())),
            Err(e) => report.push(account::explain(
                CheckStep::Templates,
                account,
                &self.config,
                &e,
            )),
        }
        match self.subscribed_apps(account).await {
            Ok(apps) => report.push(account::subscribed_apps_line(account, &apps)),
            Err(e) => report.push(account::explain(
                CheckStep::Templates,
                account,
                &self.config,
                &e,
            )),
        }
        match self.token_info(account).await {
            Ok(info) => report.push(account::token_line(&info, chrono::Utc::now(), 7)),
            // Meta does not always answer debug_token for every kind of token: not a failure.
            Err(e) => report.push(account::warn_line(
                "access token expiry",
                format!("Meta did not say when the token expires ({e})"),
            )),
        }
        report
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_config_is_meta() {
        let c = ClientConfig::default();
        assert_eq!(c.graph_url.as_str(), "https://graph.facebook.com/");
        assert_eq!(c.api_version, "v26.0");
        assert!(c.validate().is_ok());
    }

    #[test]
    fn config_validation() {
        let mut c = ClientConfig {
            api_version: "26.0".into(),
            ..ClientConfig::default()
        };
        assert!(c.validate().unwrap_err().contains("v26.0"));
        c.api_version = "v26".into();
        assert!(c.validate().is_err());
        c.api_version = "v26.0/../x".into();
        assert!(c.validate().is_err());
        let c = ClientConfig::new(Url::parse("ftp://x").unwrap(), "v25.0");
        assert!(c.validate().is_err());
        let c = ClientConfig::new(Url::parse("http://u:p@127.0.0.1:1/").unwrap(), "v25.0");
        let e = c.validate().unwrap_err();
        assert!(!e.contains("u:p"), "{e}");
        assert!(
            CloudClient::new(ClientConfig::new(Url::parse("mailto:a@b").unwrap(), "v1.0")).is_err()
        );
    }

    #[test]
    fn endpoints_are_percent_encoded_segments() {
        let c = CloudClient::new(ClientConfig::new(
            Url::parse("http://127.0.0.1:8788/graph/").unwrap(),
            "v25.0",
        ))
        .unwrap();
        let a = AccountHandle::new("sandbox-0001", "w", Secret::new("t"));
        assert_eq!(
            c.endpoint(&a, &["sandbox-0001", "messages"]).as_str(),
            "http://127.0.0.1:8788/graph/v25.0/sandbox-0001/messages"
        );
        assert_eq!(
            c.endpoint(&a, &["a/b?c"]).as_str(),
            "http://127.0.0.1:8788/graph/v25.0/a%2Fb%3Fc"
        );
    }

    #[test]
    fn an_account_version_replaces_the_configured_one() {
        let c = CloudClient::new(ClientConfig::new(
            Url::parse("https://graph.facebook.com").unwrap(),
            "v26.0",
        ))
        .unwrap();
        let plain = AccountHandle::new("106540352242922", "102290129340398", Secret::new("t"));
        assert_eq!(
            c.endpoint(&plain, &[&plain.phone_number_id, "messages"])
                .as_str(),
            "https://graph.facebook.com/v26.0/106540352242922/messages"
        );
        let own = plain.clone().with_api_version(Some(" v25.0 "));
        assert_eq!(own.api_version.as_deref(), Some("v25.0"));
        assert!(own.check_phone().is_ok());
        assert_eq!(
            c.endpoint(&own, &[&own.phone_number_id, "messages"])
                .as_str(),
            "https://graph.facebook.com/v25.0/106540352242922/messages"
        );
        assert_eq!(
            c.templates_url(&own, "name", 1).as_str(),
            "https://graph.facebook.com/v25.0/102290129340398/message_templates?fields=name&limit=1"
        );
        // blank means "not set": the configured version
        for blank in [None, Some(""), Some("  ")] {
            let h = plain.clone().with_api_version(blank);
            assert_eq!(h.api_version, None);
            assert_eq!(h.api_version_or("v26.0"), "v26.0");
        }
    }

    #[test]
    fn a_malformed_account_version_is_refused_with_the_fix() {
        for bad in [
            "25.0",
            "v25",
            "v25.0/../../me",
            "v25.0?x=1",
            "V25.0",
            "v25.0.1",
            "vx.0",
        ] {
            let a = AccountHandle::new("106540352242922", "102290129340398", Secret::new("tok"))
                .with_api_version(Some(bad));
            for e in [
                a.check_phone().unwrap_err(),
                a.check_waba().unwrap_err(),
                a.check_call().unwrap_err(),
            ] {
                assert!(matches!(e, WhatsAppError::Config(_)), "{e}");
                assert_eq!(e.disposition(), super::super::Disposition::PauseAccount);
                let text = e.to_string();
                assert!(
                    text.contains(&format!("'{bad}'"))
                        && text.contains("'106540352242922'")
                        && text.contains(
                            "set Graph API version on the WhatsApp account to e.g. v26.0"
                        ),
                    "{text}"
                );
            }
        }
        assert!(is_api_version("v26.0") && is_api_version("v9.10"));
        assert!(!is_api_version("v26.0 ") && !is_api_version("v.0") && !is_api_version("v1."));
    }

    #[test]
    fn ids_and_tokens_are_checked_before_any_call() {
        assert!(is_graph_id("106540352242922"));
        assert!(is_graph_id("sandbox-0001"));
        assert!(!is_graph_id(".."));
        assert!(!is_graph_id("a/b"));
        assert!(!is_graph_id(""));
        let a = AccountHandle::new("1", "2", Secret::new("bad\ntoken"));
        let e = a.check_phone().unwrap_err().to_string();
        assert!(e.contains("line break") && !e.contains("bad"), "{e}");
        let a = AccountHandle::new("+491511", "2", Secret::new("t"));
        assert!(a.check_phone().is_err());
    }

    #[test]
    fn debug_hides_the_token() {
        let a = AccountHandle::new("1", "2", Secret::new("EAAG-secret-token"))
            .with_api_version(Some("v25.0"));
        let shown = format!("{a:?}");
        assert!(!shown.contains("EAAG"), "{shown}");
        assert!(shown.contains("v25.0"), "{shown}");
    }

    #[test]
    fn send_response_shape() {
        let r: SendResponse = serde_json::from_str(
            r#"{"messaging_product":"whatsapp",
                "contacts":[{"input":"+4915112345678","wa_id":"4915112345678"}],
                "messages":[{"id":"wamid.HBgN","message_status":"accepted"}]}"#,
        )
        .unwrap();
        assert_eq!(r.wamid(), "wamid.HBgN");
        assert_eq!(r.wa_id(), Some("4915112345678"));
        assert_eq!(r.message_status(), Some("accepted"));
        let r: SendResponse = serde_json::from_str(r#"{"messages":[{"id":"wamid.X"}]}"#).unwrap();
        assert_eq!(r.message_status(), None);
        assert_eq!(r.wa_id(), None);
    }

    #[test]
    fn failure_bodies() {
        let e = failure(
            "send message",
            400,
            br#"{"error":{"code":131056,"message":"pair rate"}}"#,
        );
        assert_eq!(e.code(), Some(131056));
        let e = failure(
            "send message",
            502,
            b"<html>\n<body>Bad   gateway</body></html>",
        );
        match e {
            WhatsAppError::Http { status, body, .. } => {
                assert_eq!(status, 502);
                assert_eq!(body, "<html> <body>Bad gateway</body></html>");
            }
            other => panic!("{other:?}"),
        }
        let long = vec![b'x'; 1000];
        match failure("x", 500, &long) {
            WhatsAppError::Http { body, .. } => assert!(body.len() < 310),
            other => panic!("{other:?}"),
        }
    }
}
