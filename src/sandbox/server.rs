//! The sandbox's HTTP server (axum): the Graph API endpoints the daemon uses, for any version in
//! the path, and the sandbox's own `/sandbox/...` endpoints.
//!
//! | method | path | answers |
//! |---|---|---|
//! | POST | `/{version}/{phone-number-id}/messages` | send (validation, limits, wamid) |
//! | POST | `/{version}/{phone-number-id}/media` | multipart upload → `{"id"}` |
//! | GET | `/{version}/{media-id}` | `url`, `mime_type`, `sha256`, `file_size`, `id` |
//! | DELETE | `/{version}/{media-id}` | `{"success": true}` |
//! | GET | `/{version}/{phone-number-id}` | display number, quality, throughput, name status |
//! | GET | `/{version}/{waba-id}` | the WABA |
//! | GET | `/{version}/{waba-id}/message_templates` | templates, paged (`limit`, `after`, `paging.next`) |
//! | GET | `/{version}/{waba-id}/phone_numbers` | the WABA's numbers |
//! | GET | `/sandbox/media/{media-id}` | the media URL: the bytes (bearer token required) |
//! | POST | `/sandbox/inject` | inject an inbound message (see [`InjectRequest`]) |
//! | GET | `/sandbox/messages` | the record of accepted sends (see [`RecordFilter`]) |
//! | GET | `/sandbox/inbound` | injected inbound messages (`?limit=`) |
//! | GET | `/sandbox/stats` | counters |
//! | GET | `/sandbox/refused` | sends refused after validation (`?limit=`, default 1000): time, number, recipient, callback data, code |
//! | GET, POST | `/sandbox/chaos` | the send chaos in force; POST changes it (see [`ChaosUpdate`]) |
//! | GET | `/sandbox` | numbers, WABAs, templates, callback URL |
//! | POST | `/sandbox/templates/status` | change a template's status (sends Meta's webhook) |
//! | POST | `/sandbox/verify` | run Meta's verification handshake against the callback URL |
//!
//! Graph endpoints answer Meta's error object (see [`GraphError`]); the `/sandbox` endpoints
//! answer `{"error":{"message": ...}}` with status 400.
//!
//! [`InjectRequest`]: super::state::InjectRequest
//! [`RecordFilter`]: super::state::RecordFilter
//! [`ChaosUpdate`]: super::state::ChaosUpdate

use super::delivery;
use super::error::GraphError;
use super::ids;
use super::state::{graph_major, now_ms, ChaosUpdate, InjectRequest, RecordFilter, Shared};
use axum::body::{Body, Bytes};
use axum::extract::multipart::MultipartRejection;
use axum::extract::rejection::QueryRejection;
use axum::extract::{DefaultBodyLimit, Multipart, Path, Query, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::Deserialize;
use serde_json::{json, Value};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

/// Uploads may be up to 100 MB (documents) plus multipart overhead.
const UPLOAD_LIMIT: usize = 101 * 1024 * 1024;

#[derive(Clone)]
struct App {
    shared: Arc<Shared>,
    addr: SocketAddr,
}

/// The router serving everything above.
pub fn router(shared: Arc<Shared>, addr: SocketAddr) -> Router {
    let app = App { shared, addr };
    Router::new()
        .route("/sandbox", get(info))
        .route("/sandbox/messages", get(record))
        .route("/sandbox/inbound", get(inbound))
        .route("/sandbox/stats", get(stats))
        .route("/sandbox/refused", get(refused))
        .route("/sandbox/chaos", get(chaos).post(set_chaos))
        .route("/sandbox/inject", post(inject))
        .route("/sandbox/templates/status", post(template_status))
        .route("/sandbox/verify", post(verify))
        .route("/sandbox/media/{id}", get(download))
        .route("/{version}/{node}", get(get_node).delete(delete_node))
        .route("/{version}/{node}/messages", post(send))
        .route(
            "/{version}/{node}/media",
            post(upload).layer(DefaultBodyLimit::max(UPLOAD_LIMIT)),
        )
        .route("/{version}/{node}/message_templates", get(templates))
        .route("/{version}/{node}/phone_numbers", get(phone_numbers))
        .route("/{version}/{node}/subscribed_apps", get(subscribed_apps))
        .fallback(unknown_path)
        .with_state(app)
}

fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

fn graph_ok(value: &Value) -> Response {
    json_response(
        StatusCode::OK,
        serde_json::to_vec(value).unwrap_or_default(),
    )
}

fn graph_error(error: &GraphError) -> Response {
    let body = error.to_json(&ids::fbtrace_id());
    json_response(
        error.http_status,
        serde_json::to_vec(&body).unwrap_or_default(),
    )
}

fn sandbox_error(status: StatusCode, message: impl Into<String>) -> Response {
    let body = json!({"error": {"message": message.into()}});
    json_response(status, serde_json::to_vec(&body).unwrap_or_default())
}

/// The bearer token of a request: `Authorization: Bearer|OAuth <token>`, else `?access_token=`.
fn token<'a>(headers: &'a HeaderMap, query: Option<&'a str>) -> Option<String> {
    if let Some(value) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        let value = value.trim();
        for scheme in ["Bearer ", "bearer ", "OAuth ", "oauth "] {
            if let Some(token) = value.strip_prefix(scheme) {
                return Some(token.trim().to_string());
            }
        }
        return None;
    }
    query.and_then(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "access_token")
            .map(|(_, v)| v.into_owned())
    })
}

impl App {
    /// Version and token checks shared by the Graph endpoints.
    fn graph_guard(
        &self,
        version: &str,
        path: &str,
        headers: &HeaderMap,
        query: Option<&str>,
    ) -> Result<(), GraphError> {
        if graph_major(version).is_none() {
            return Err(GraphError::unknown_path(path));
        }
        self.shared.check_token(token(headers, query).as_deref())
    }

    /// [`Self::graph_guard`], then the node must be a WABA the sandbox knows.
    fn waba_guard(
        &self,
        version: &str,
        node: &str,
        uri: &Uri,
        headers: &HeaderMap,
    ) -> Result<(), GraphError> {
        self.graph_guard(version, uri.path(), headers, uri.query())?;
        if !self.shared.is_waba(node) {
            return Err(GraphError::unknown_object("GET", node));
        }
        Ok(())
    }

    /// The base URL clients reach the sandbox at.
    fn base_url(&self, headers: &HeaderMap) -> String {
        if let Some(url) = &self.shared.public_url {
            return url.as_str().trim_end_matches('/').to_string();
        }
        match headers.get(header::HOST).and_then(|h| h.to_str().ok()) {
            Some(host) => format!("http://{host}"),
            None => format!("http://{}", self.addr),
        }
    }
}

async fn send(
    State(app): State<App>,
    Path((version, node)): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(e) = app.graph_guard(&version, uri.path(), &headers, uri.query()) {
        return graph_error(&e);
    }
    match app.shared.accept_send(&node, &version, body) {
        Ok(accepted) => json_response(StatusCode::OK, accepted.body),
        Err(e) => graph_error(&e),
    }
}

async fn upload(
    State(app): State<App>,
    Path((version, node)): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
    multipart: Result<Multipart, MultipartRejection>,
) -> Response {
    if let Err(e) = app.graph_guard(&version, uri.path(), &headers, uri.query()) {
        return graph_error(&e);
    }
    if app.shared.number(&node).is_none() {
        return graph_error(&GraphError::unknown_object("POST", &node));
    }
    let mut multipart = match multipart {
        Ok(m) => m,
        Err(e) => {
            return graph_error(&GraphError::invalid_parameter(format!(
                "The upload must be multipart/form-data with the fields file, type and messaging_product ({e})."
            )))
        }
    };
    let mut file: Option<(Bytes, Option<String>)> = None;
    let mut mime: Option<String> = None;
    let mut product: Option<String> = None;
    loop {
        let field = match multipart.next_field().await {
            Ok(Some(field)) => field,
            Ok(None) => break,
            Err(e) => {
                let status = e.status();
                let error = if status == StatusCode::PAYLOAD_TOO_LARGE {
                    GraphError::media_upload(format!(
                        "The upload is larger than {UPLOAD_LIMIT} bytes."
                    ))
                } else {
                    GraphError::invalid_parameter(format!("The multipart body cannot be read: {e}"))
                };
                return graph_error(&error);
            }
        };
        let name = field.name().unwrap_or("").to_string();
        match name.as_str() {
            "file" => {
                let content_type = field.content_type().map(str::to_string);
                match field.bytes().await {
                    Ok(bytes) => file = Some((bytes, content_type)),
                    Err(e) => {
                        let error = if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                            GraphError::media_upload(format!(
                                "The upload is larger than {UPLOAD_LIMIT} bytes."
                            ))
                        } else {
                            GraphError::invalid_parameter(format!(
                                "The file part cannot be read: {e}"
                            ))
                        };
                        return graph_error(&error);
                    }
                }
            }
            "type" | "messaging_product" => match field.text().await {
                Ok(text) if name == "type" => mime = Some(text),
                Ok(text) => product = Some(text),
                Err(e) => {
                    return graph_error(&GraphError::invalid_parameter(format!(
                        "The {name} field cannot be read: {e}"
                    )))
                }
            },
            _ => {}
        }
    }
    match product.as_deref() {
        Some("whatsapp") => {}
        None => {
            return graph_error(&GraphError::invalid_parameter(
                "The parameter messaging_product is required.",
            ))
        }
        Some(other) => {
            return graph_error(&GraphError::invalid_parameter(format!(
                "Param messaging_product must be one of {{WHATSAPP}} - got \"{other}\"."
            )))
        }
    }
    let Some((bytes, part_type)) = file else {
        return graph_error(&GraphError::invalid_parameter(
            "The parameter file is required.",
        ));
    };
    let Some(mime) = mime.or(part_type) else {
        return graph_error(&GraphError::invalid_parameter(
            "The parameter type is required.",
        ));
    };
    match app.shared.upload_media(&mime, bytes) {
        Ok(id) => graph_ok(&json!({"id": id})),
        Err(e) => graph_error(&e),
    }
}

/// Keeps only the requested `fields` (plus `id`) of an object, as the Graph API does.
fn project(value: Value, fields: Option<&str>) -> Value {
    let (Some(fields), Value::Object(map)) = (fields, &value) else {
        return value;
    };
    let wanted: Vec<&str> = fields
        .split(',')
        .map(str::trim)
        .filter(|f| !f.is_empty())
        .collect();
    if wanted.is_empty() {
        return value;
    }
    let out: serde_json::Map<String, Value> = map
        .iter()
        .filter(|(k, _)| k.as_str() == "id" || wanted.contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    Value::Object(out)
}

fn query_param(query: Option<&str>, key: &str) -> Option<String> {
    query.and_then(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.into_owned())
    })
}

/// `GET /{waba}/subscribed_apps`: the sandbox's own app, unless configured as not subscribed.
async fn subscribed_apps(
    State(app): State<App>,
    Path((version, node)): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    if let Err(e) = app.waba_guard(&version, &node, &uri, &headers) {
        return graph_error(&e);
    }
    let data = if app.shared.webhook_subscribed {
        json!([{"whatsapp_business_api_data": {
            "id": "sandbox-app",
            "link": "https://www.facebook.com/games/?app_id=sandbox-app",
            "name": "Sidecar Sandbox"
        }}])
    } else {
        json!([])
    };
    graph_ok(&json!({"data": data}))
}

async fn get_node(
    State(app): State<App>,
    Path((version, node)): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    if let Err(e) = app.graph_guard(&version, uri.path(), &headers, uri.query()) {
        return graph_error(&e);
    }
    let fields = query_param(uri.query(), "fields");
    if node == "debug_token" {
        // What Meta says of a System User token (the bearer was checked above).
        return graph_ok(&json!({"data": {
            "app_id": "sandbox-app",
            "type": "SYSTEM_USER",
            "application": "Sidecar Sandbox",
            "data_access_expires_at": 0,
            "expires_at": app.shared.token_expires_at,
            "is_valid": true,
            "scopes": ["whatsapp_business_management", "whatsapp_business_messaging"],
        }}));
    }
    if let Some(number) = app.shared.number(&node) {
        return graph_ok(&project(number.info_json(), fields.as_deref()));
    }
    if let Some(item) = app.shared.media(&node) {
        let expires = now_ms() / 1000 + app.shared.media_url_ttl.as_secs();
        let url = format!(
            "{}/sandbox/media/{}?ext={expires}&hash={}",
            app.base_url(&headers),
            item.id,
            item.url_key
        );
        return graph_ok(&json!({
            "messaging_product": "whatsapp",
            "url": url,
            "mime_type": item.mime_type,
            "sha256": item.sha256,
            "file_size": item.bytes.len().to_string(),
            "id": item.id,
        }));
    }
    if app.shared.is_waba(&node) {
        let waba = json!({
            "id": node,
            "name": "Sidecar Sandbox",
            "currency": "USD",
            "timezone_id": "1",
            "message_template_namespace": format!("sandbox_{node}"),
        });
        return graph_ok(&project(waba, fields.as_deref()));
    }
    if let Some(template) = app.shared.template_by_id(&node) {
        return graph_ok(&project(template.listing_json(), fields.as_deref()));
    }
    graph_error(&GraphError::unknown_object("GET", &node))
}

async fn delete_node(
    State(app): State<App>,
    Path((version, node)): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    if let Err(e) = app.graph_guard(&version, uri.path(), &headers, uri.query()) {
        return graph_error(&e);
    }
    if app.shared.delete_media(&node) {
        graph_ok(&json!({"success": true}))
    } else {
        graph_error(&GraphError::unknown_object("DELETE", &node))
    }
}

#[derive(Deserialize)]
struct DownloadQuery {
    ext: Option<u64>,
    hash: Option<String>,
}

async fn download(
    State(app): State<App>,
    Path(id): Path<String>,
    headers: HeaderMap,
    query: Result<Query<DownloadQuery>, QueryRejection>,
) -> Response {
    let plain = |status: StatusCode, text: &'static str| (status, text).into_response();
    if app
        .shared
        .check_token(token(&headers, None).as_deref())
        .is_err()
    {
        return plain(
            StatusCode::UNAUTHORIZED,
            "Media downloads need the same Authorization: Bearer <token> header as the API.",
        );
    }
    let Ok(Query(query)) = query else {
        return plain(StatusCode::NOT_FOUND, "Invalid media URL.");
    };
    let Some(item) = app.shared.media(&id) else {
        return plain(
            StatusCode::NOT_FOUND,
            "Media not found (deleted or never uploaded).",
        );
    };
    if query.hash.as_deref() != Some(item.url_key.as_str()) {
        return plain(StatusCode::NOT_FOUND, "Invalid media URL.");
    }
    if query.ext.is_none_or(|ext| ext < now_ms() / 1000) {
        return plain(
            StatusCode::FORBIDDEN,
            "URL signature expired: media URLs are valid for about 5 minutes; get a new one with GET /{media-id}.",
        );
    }
    let mut response = Response::new(Body::from(item.bytes.clone()));
    if let Ok(value) = HeaderValue::from_str(&item.mime_type) {
        response.headers_mut().insert(header::CONTENT_TYPE, value);
    }
    response
}

fn encode_cursor(index: usize) -> String {
    URL_SAFE_NO_PAD.encode(format!("idx:{index}"))
}

fn decode_cursor(cursor: &str) -> Option<usize> {
    let raw = URL_SAFE_NO_PAD.decode(cursor.trim_end_matches('=')).ok()?;
    String::from_utf8(raw)
        .ok()?
        .strip_prefix("idx:")?
        .parse()
        .ok()
}

/// One page of templates, Meta-style: `data`, `paging.cursors.before/after`, `paging.next`.
fn templates_page(
    all: &[Arc<super::templates::TemplateSpec>],
    pairs: &[(String, String)],
    page_url: &str,
) -> Result<Value, GraphError> {
    let get = |key: &str| {
        pairs
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    };
    let limit = match get("limit") {
        None => 25,
        Some(text) => match text.parse::<usize>() {
            Ok(n) if n >= 1 => n.min(1000),
            _ => {
                return Err(GraphError::invalid_parameter(format!(
                    "Param limit must be a positive integer (got {text:?})."
                )))
            }
        },
    };
    let start = match get("after") {
        None => 0,
        Some(cursor) => decode_cursor(cursor).map(|i| i + 1).ok_or_else(|| {
            GraphError::invalid_parameter(format!("Invalid after cursor {cursor:?}."))
        })?,
    };
    let name = get("name").map(str::to_ascii_lowercase);
    let statuses: Option<Vec<String>> = get("status").map(|s| {
        s.split(',')
            .map(|x| x.trim().to_ascii_uppercase())
            .collect()
    });
    let language = get("language");
    let category = get("category").map(str::to_ascii_uppercase);
    let filtered: Vec<&Arc<super::templates::TemplateSpec>> = all
        .iter()
        .filter(|t| {
            name.as_ref()
                .is_none_or(|n| t.name.to_ascii_lowercase().contains(n.as_str()))
        })
        .filter(|t| statuses.as_ref().is_none_or(|s| s.contains(&t.status)))
        .filter(|t| language.is_none_or(|l| t.language == l))
        .filter(|t| category.as_ref().is_none_or(|c| &t.category == c))
        .collect();
    let fields = get("fields");
    let end = (start + limit).min(filtered.len());
    let data: Vec<Value> = filtered
        .get(start..end)
        .unwrap_or(&[])
        .iter()
        .map(|t| project(t.listing_json(), fields))
        .collect();
    if data.is_empty() {
        return Ok(json!({"data": []}));
    }
    let mut paging =
        json!({"cursors": {"before": encode_cursor(start), "after": encode_cursor(end - 1)}});
    if end < filtered.len() {
        let mut next = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in pairs.iter().filter(|(k, _)| k != "after" && k != "before") {
            next.append_pair(k, v);
        }
        next.append_pair("after", &encode_cursor(end - 1));
        if get("limit").is_none() {
            next.append_pair("limit", &limit.to_string());
        }
        paging["next"] = Value::String(format!("{page_url}?{}", next.finish()));
    }
    Ok(json!({"data": data, "paging": paging}))
}

async fn templates(
    State(app): State<App>,
    Path((version, node)): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    if let Err(e) = app.waba_guard(&version, &node, &uri, &headers) {
        return graph_error(&e);
    }
    let pairs: Vec<(String, String)> = uri
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect()
        })
        .unwrap_or_default();
    let page_url = format!("{}{}", app.base_url(&headers), uri.path());
    match templates_page(&app.shared.templates_of(&node), &pairs, &page_url) {
        Ok(page) => graph_ok(&page),
        Err(e) => graph_error(&e),
    }
}

async fn phone_numbers(
    State(app): State<App>,
    Path((version, node)): Path<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    if let Err(e) = app.waba_guard(&version, &node, &uri, &headers) {
        return graph_error(&e);
    }
    let fields = query_param(uri.query(), "fields");
    let data: Vec<Value> = app
        .shared
        .waba_numbers(&node)
        .iter()
        .map(|n| project(n.info_json(), fields.as_deref()))
        .collect();
    let count = data.len();
    graph_ok(&json!({
        "data": data,
        "paging": {"cursors": {"before": encode_cursor(0), "after": encode_cursor(count.saturating_sub(1))}},
    }))
}

async fn unknown_path(uri: Uri) -> Response {
    graph_error(&GraphError::unknown_path(uri.path()))
}

// ---------------------------------------------------------------------------------------------
// The sandbox's own endpoints

async fn inject(State(app): State<App>, body: Bytes) -> Response {
    let request: InjectRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return sandbox_error(
                StatusCode::BAD_REQUEST,
                format!(
                    "the body must be JSON like {{\"from\":\"+2250700000001\",\"text\":\"hi\"}} \
                     (or button_reply {{id,title}}, list_reply {{id,title,description}}, button {{payload,text}}): {e}"
                ),
            )
        }
    };
    match app.shared.inject(&request) {
        Ok(outcome) => graph_ok(&serde_json::to_value(&outcome).unwrap_or(Value::Null)),
        Err(e) => sandbox_error(StatusCode::BAD_REQUEST, e.to_string()),
    }
}

async fn record(
    State(app): State<App>,
    filter: Result<Query<RecordFilter>, QueryRejection>,
) -> Response {
    let Query(filter) = match filter {
        Ok(f) => f,
        Err(e) => return sandbox_error(StatusCode::BAD_REQUEST, format!("bad query: {e}")),
    };
    match app.shared.messages(&filter) {
        Ok(messages) => {
            let (held, total) = app.shared.record_counts();
            let data: Vec<Value> = messages.iter().map(|m| m.to_json()).collect();
            graph_ok(
                &json!({"data": data, "count": data.len(), "held": held, "total_accepted": total}),
            )
        }
        Err(message) => sandbox_error(StatusCode::BAD_REQUEST, message),
    }
}

/// The `limit` query parameter (`default` when absent), or what is wrong with it.
fn limit_param(query: Option<&str>, default: usize) -> Result<usize, String> {
    match query_param(query, "limit") {
        None => Ok(default),
        Some(text) => text
            .parse::<usize>()
            .map_err(|_| format!("limit={text:?} is not a number")),
    }
}

async fn inbound(State(app): State<App>, RawQuery(query): RawQuery) -> Response {
    let limit = match limit_param(query.as_deref(), 100) {
        Ok(limit) => limit,
        Err(message) => return sandbox_error(StatusCode::BAD_REQUEST, message),
    };
    let data = app.shared.inbound(limit);
    graph_ok(&json!({"data": data, "count": data.len()}))
}

async fn refused(State(app): State<App>, RawQuery(query): RawQuery) -> Response {
    let limit = match limit_param(query.as_deref(), 1000) {
        Ok(limit) => limit,
        Err(message) => return sandbox_error(StatusCode::BAD_REQUEST, message),
    };
    let data = app.shared.refused(limit);
    graph_ok(&json!({"data": data, "count": data.len()}))
}

async fn chaos(State(app): State<App>) -> Response {
    graph_ok(&app.shared.chaos_json())
}

async fn set_chaos(State(app): State<App>, body: Bytes) -> Response {
    let update: ChaosUpdate = match serde_json::from_slice(&body) {
        Ok(u) => u,
        Err(e) => {
            return sandbox_error(
                StatusCode::BAD_REQUEST,
                format!(
                    "the body must be JSON like {{\"send_error_ratio\": 0.2}} or \
                     {{\"throttle_for_ms\": 60000, \"throttle_after_ms\": 0}}: {e}"
                ),
            )
        }
    };
    match app.shared.set_chaos(&update) {
        Ok(now) => graph_ok(&now),
        Err(message) => sandbox_error(StatusCode::BAD_REQUEST, message),
    }
}

async fn stats(State(app): State<App>) -> Response {
    let mut stats = app.shared.stats.to_json();
    let (held, total) = app.shared.record_counts();
    stats["record_held"] = json!(held);
    stats["record_total"] = json!(total);
    graph_ok(&stats)
}

async fn info(State(app): State<App>, headers: HeaderMap) -> Response {
    let mut numbers = Vec::new();
    let mut templates = Vec::new();
    let mut wabas: Vec<String> = Vec::new();
    for number in app.shared.numbers_in_order() {
        numbers.push(json!({
            "id": number.config.id,
            "display_phone_number": number.config.display_phone_number,
            "waba_id": number.config.waba_id,
            "throughput_mps": number.config.throughput_mps,
        }));
        if !wabas.contains(&number.config.waba_id) {
            wabas.push(number.config.waba_id.clone());
        }
    }
    for waba in &wabas {
        for t in app.shared.templates_of(waba) {
            templates.push(json!({"waba_id": waba, "name": t.name, "language": t.language, "status": t.status}));
        }
    }
    let callback = app.shared.callback().map(|c| c.url.to_string());
    graph_ok(&json!({
        "base_url": app.base_url(&headers),
        "phone_numbers": numbers,
        "templates": templates,
        "callback_url": callback,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TemplateStatusRequest {
    waba_id: Option<String>,
    name: String,
    language: Option<String>,
    status: String,
    reason: Option<String>,
}

async fn template_status(State(app): State<App>, body: Bytes) -> Response {
    let request: TemplateStatusRequest = match serde_json::from_slice(&body) {
        Ok(r) => r,
        Err(e) => {
            return sandbox_error(
                StatusCode::BAD_REQUEST,
                format!("the body must be JSON like {{\"name\":\"sidecar_hello\",\"language\":\"en_US\",\"status\":\"PAUSED\"}}: {e}"),
            )
        }
    };
    let waba = request.waba_id.unwrap_or_else(|| app.shared.first_waba());
    let language = request.language.unwrap_or_else(|| "en_US".to_string());
    match app.shared.set_template_status(
        &waba,
        &request.name,
        &language,
        &request.status,
        request.reason.as_deref(),
    ) {
        Ok(template) => graph_ok(&template),
        Err(e) => sandbox_error(StatusCode::BAD_REQUEST, e.to_string()),
    }
}

async fn verify(State(app): State<App>) -> Response {
    let Some(target) = app.shared.callback() else {
        return sandbox_error(StatusCode::BAD_REQUEST, "no callback URL is configured");
    };
    let Some(token) = app.shared.verify_token.clone() else {
        return sandbox_error(
            StatusCode::BAD_REQUEST,
            "no verify token is configured (webhooks.verify_token)",
        );
    };
    let timeout = Duration::from_millis(app.shared.webhooks.timeout_ms);
    match delivery::verify_callback(&target.url, token.expose(), timeout).await {
        Ok(()) => graph_ok(&json!({"success": true})),
        Err(e) => sandbox_error(StatusCode::BAD_GATEWAY, e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::config::TemplateConfig;
    use crate::sandbox::templates::TemplateSpec;

    fn specs(n: usize) -> Vec<Arc<TemplateSpec>> {
        (0..n)
            .map(|i| {
                Arc::new(
                    TemplateSpec::from_config(&TemplateConfig {
                        name: format!("t{i}"),
                        status: if i % 2 == 0 { "APPROVED" } else { "PAUSED" }.into(),
                        components: json!([{"type": "BODY", "text": "x"}]),
                        ..TemplateConfig::default()
                    })
                    .unwrap(),
                )
            })
            .collect()
    }

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn template_pages_follow_cursors() {
        let all = specs(5);
        let page = templates_page(
            &all,
            &pairs(&[("limit", "2"), ("fields", "name,status")]),
            "http://h/v25.0/w/message_templates",
        )
        .unwrap();
        assert_eq!(page["data"].as_array().unwrap().len(), 2);
        assert_eq!(page["data"][0]["name"], "t0");
        assert!(page["data"][0].get("components").is_none());
        assert!(page["data"][0].get("id").is_some());
        let next = page["paging"]["next"].as_str().unwrap();
        assert!(next.starts_with("http://h/v25.0/w/message_templates?"));
        assert!(next.contains("fields=name%2Cstatus"));
        let after = page["paging"]["cursors"]["after"].as_str().unwrap();
        let page2 = templates_page(&all, &pairs(&[("limit", "2"), ("after", after)]), "u").unwrap();
        assert_eq!(page2["data"][0]["name"], "t2");
        let after = page2["paging"]["cursors"]["after"].as_str().unwrap();
        let page3 = templates_page(&all, &pairs(&[("limit", "2"), ("after", after)]), "u").unwrap();
        assert_eq!(page3["data"].as_array().unwrap().len(), 1);
        assert!(page3["paging"].get("next").is_none());

        let approved = templates_page(&all, &pairs(&[("status", "APPROVED")]), "u").unwrap();
        assert_eq!(approved["data"].as_array().unwrap().len(), 3);
        assert_eq!(
            templates_page(&all, &pairs(&[("limit", "0")]), "u")
                .unwrap_err()
                .code,
            100
        );
        assert_eq!(
            templates_page(&all, &pairs(&[("after", "zzz")]), "u")
                .unwrap_err()
                .code,
            100
        );
    }

    #[test]
    fn tokens_come_from_the_header_or_the_query() {
        let mut headers = HeaderMap::new();
        assert_eq!(token(&headers, Some("access_token=q")), Some("q".into()));
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer abc"),
        );
        assert_eq!(token(&headers, None), Some("abc".into()));
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(token(&headers, Some("access_token=q")), None);
    }

    #[test]
    fn projection_keeps_id() {
        let v = project(json!({"id": "1", "a": 1, "b": 2}), Some("a"));
        assert_eq!(v, json!({"id": "1", "a": 1}));
        assert_eq!(project(json!({"a": 1}), None), json!({"a": 1}));
    }

    #[tokio::test]
    async fn the_send_chaos_is_driven_over_http_and_refusals_are_listed() {
        let shutdown = tokio_util::sync::CancellationToken::new();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let sandbox = crate::sandbox::SandboxHandle::start(
            listener,
            crate::sandbox::SandboxConfig::default(),
            shutdown.clone(),
        )
        .await
        .unwrap();
        let base = sandbox.base_url();
        let http = reqwest::Client::new();
        let chaos = |body: Value| {
            http.post(format!("{base}/sandbox/chaos"))
                .header("content-type", "application/json")
                .body(body.to_string())
                .send()
        };
        let send = || {
            http.post(format!("{base}/v25.0/sandbox-0001/messages"))
                .bearer_auth("t")
                .header("content-type", "application/json")
                .body(
                    json!({"messaging_product": "whatsapp", "to": "+2250700000001",
                           "type": "template", "biz_opaque_callback_data": "7",
                           "template": {"name": "sidecar_hello", "language": {"code": "en_US"}}})
                    .to_string(),
                )
                .send()
        };

        let r = chaos(json!({"send_error_ratio": 1.0})).await.unwrap();
        assert_eq!(r.status(), 200);
        let now: Value = r.json().await.unwrap();
        assert_eq!(now, json!({"send_error_ratio": 1.0, "throttle": null}));
        let r = send().await.unwrap();
        assert_eq!(r.status(), 500);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], 131000);
        assert_eq!(body["error"]["type"], "OAuthException");
        assert!(body["error"]["fbtrace_id"].is_string());

        let r = chaos(json!({"send_error_ratio": 0.0, "throttle_for_ms": 60_000}))
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let now: Value = r.json().await.unwrap();
        assert_eq!(now["throttle"]["active"], true);
        let r = send().await.unwrap();
        assert_eq!(r.status(), 400);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"]["code"], 130429);
        let current: Value = http
            .get(format!("{base}/sandbox/chaos"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(current["send_error_ratio"], 0.0);
        assert_eq!(current["throttle"]["active"], true);

        assert_eq!(
            chaos(json!({"throttle_for_ms": 0})).await.unwrap().status(),
            200
        );
        assert_eq!(send().await.unwrap().status(), 200);

        // Refused, each with its time, recipient, callback data and code.
        let listed: Value = http
            .get(format!("{base}/sandbox/refused?limit=10"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(listed["count"], 2);
        let codes: Vec<&Value> = listed["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| &r["code"])
            .collect();
        assert_eq!(codes, [&json!(131000), &json!(130429)]);
        assert_eq!(listed["data"][0]["biz_opaque_callback_data"], "7");
        assert_eq!(listed["data"][0]["http_status"], 500);
        assert_eq!(listed["data"][0]["wa_id"], "2250700000001");
        assert!(listed["data"][0]["at_ms"].as_u64().unwrap() > 0);

        // Bad changes are refused with the reason.
        for (bad, says) in [
            (json!({"send_error_ratio": 2}), "between 0 and 1"),
            (json!({"throttle_after_ms": 5}), "throttle_for_ms"),
            (json!({"ratio": 0.5}), "unknown field"),
        ] {
            let r = chaos(bad.clone()).await.unwrap();
            assert_eq!(r.status(), 400, "{bad}");
            let text = r.text().await.unwrap();
            assert!(text.contains(says), "{bad}: {text}");
        }
        shutdown.cancel();
        sandbox.stopped().await.unwrap();
    }
}
