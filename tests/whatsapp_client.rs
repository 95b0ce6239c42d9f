//! The Cloud API client's HTTP behaviour against a small scripted server on 127.0.0.1:0:
//! request shapes, the success shape, Meta error objects with various codes and statuses, a
//! bad token, template paging, media upload/download with the sha256 check, transport errors.

use axum::body::{to_bytes, Body};
use axum::extract::{FromRequest, Multipart, Request, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Router;
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use url::Url;

use whatsapp_sidecar::secret::Secret;
use whatsapp_sidecar::whatsapp::account::CheckStatus;
use whatsapp_sidecar::whatsapp::media::content_sha256;
use whatsapp_sidecar::whatsapp::payload::{Document, ReplyButtons, Template, Text};
use whatsapp_sidecar::whatsapp::{
    AccountHandle, ClientConfig, CloudClient, Disposition, MediaCache, MediaError, MediaInfo,
    MediaKind, MediaUpload, OutboundMessage, TemplateStatus, WhatsAppError,
};

const TOKEN: &str = "EAAG-test-token-do-not-print";

/// A multipart field: name, file name, content type, bytes.
type Part = (String, Option<String>, Option<String>, Vec<u8>);

/// One request as the server saw it.
#[derive(Debug, Clone, Default)]
struct Seen {
    method: String,
    path: String,
    query: Option<String>,
    authorization: Option<String>,
    content_type: Option<String>,
    body: Vec<u8>,
    /// (name, file name, content type, bytes) of multipart fields.
    parts: Vec<Part>,
}

impl Seen {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap()
    }
}

/// What the script answers.
struct Reply {
    status: u16,
    content_type: &'static str,
    body: Vec<u8>,
    delay: Option<Duration>,
}

fn reply_json(status: u16, v: Value) -> Reply {
    Reply {
        status,
        content_type: "application/json",
        body: v.to_string().into_bytes(),
        delay: None,
    }
}

type Script = dyn Fn(&Seen, &str) -> Reply + Send + Sync;

struct Server {
    seen: Mutex<Vec<Seen>>,
    script: Box<Script>,
    base: Mutex<String>,
}

async fn handle(State(s): State<Arc<Server>>, req: Request) -> Response {
    let mut seen = Seen {
        method: req.method().to_string(),
        path: req.uri().path().to_string(),
        query: req.uri().query().map(str::to_string),
        authorization: req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        content_type: req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        ..Default::default()
    };
    if seen
        .content_type
        .as_deref()
        .is_some_and(|c| c.starts_with("multipart/form-data"))
    {
        let mut mp = Multipart::from_request(req, &()).await.unwrap();
        while let Some(field) = mp.next_field().await.unwrap() {
            let name = field.name().unwrap_or("").to_string();
            let file_name = field.file_name().map(str::to_string);
            let ct = field.content_type().map(str::to_string);
            let bytes = field.bytes().await.unwrap().to_vec();
            seen.parts.push((name, file_name, ct, bytes));
        }
    } else {
        seen.body = to_bytes(req.into_body(), usize::MAX)
            .await
            .unwrap()
            .to_vec();
    }
    let base = s.base.lock().unwrap().clone();
    let reply = (s.script)(&seen, &base);
    s.seen.lock().unwrap().push(seen);
    if let Some(d) = reply.delay {
        tokio::time::sleep(d).await;
    }
    Response::builder()
        .status(reply.status)
        .header(header::CONTENT_TYPE, reply.content_type)
        .body(Body::from(reply.body))
        .unwrap()
        .into_response()
}

/// Starts a scripted server; returns it and its base URL (`http://127.0.0.1:PORT`).
async fn start(
    script: impl Fn(&Seen, &str) -> Reply + Send + Sync + 'static,
) -> (Arc<Server>, String) {
    let server = Arc::new(Server {
        seen: Mutex::new(Vec::new()),
        script: Box::new(script),
        base: Mutex::new(String::new()),
    });
    let app = Router::new().fallback(handle).with_state(server.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    *server.base.lock().unwrap() = base.clone();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (server, base)
}

fn client(base: &str) -> CloudClient {
    CloudClient::new(ClientConfig {
        timeout: Duration::from_secs(5),
        media_timeout: Duration::from_secs(5),
        ..ClientConfig::new(Url::parse(base).unwrap(), "v26.0")
    })
    .unwrap()
}

fn account() -> AccountHandle {
    AccountHandle::new("106540352242922", "102290129340398", Secret::new(TOKEN))
}

fn seen(s: &Server) -> Vec<Seen> {
    s.seen.lock().unwrap().clone()
}

fn assert_no_token(e: &WhatsAppError) {
    let shown = format!("{e} {e:?} {}", e.help());
    assert!(!shown.contains(TOKEN), "token leaked: {shown}");
    assert!(!shown.contains("EAAG"), "token leaked: {shown}");
}

fn meta_error(code: i64, subcode: Option<i64>, message: &str) -> Value {
    let mut e = json!({"message": message, "type": "OAuthException", "code": code,
        "error_data": {"messaging_product": "whatsapp", "details": format!("details for {code}")},
        "fbtrace_id": "AbCdEf123"});
    if let Some(s) = subcode {
        e["error_subcode"] = json!(s);
    }
    json!({ "error": e })
}

#[tokio::test]
async fn send_message_posts_the_payload_and_reads_the_success_shape() {
    let (server, base) = start(|_, _| {
        reply_json(
            200,
            json!({"messaging_product":"whatsapp",
                   "contacts":[{"input":"+4915112345678","wa_id":"4915112345678"}],
                   "messages":[{"id":"wamid.HBgN1","message_status":"accepted"}]}),
        )
    })
    .await;
    let msg = OutboundMessage::new(
        "+4915112345678",
        ReplyButtons::new("Tomorrow 10:00-12:00 OK?")
            .button("slot_ok", "Confirm")
            .button("slot_change", "Change"),
    )
    .unwrap()
    .callback_data("odoo-msg-41")
    .unwrap();
    let resp = client(&base).send_message(&account(), &msg).await.unwrap();
    assert_eq!(resp.wamid(), "wamid.HBgN1");
    assert_eq!(resp.wa_id(), Some("4915112345678"));
    assert_eq!(resp.message_status(), Some("accepted"));
    assert_eq!(resp.contacts[0].input, "+4915112345678");

    let reqs = seen(&server);
    assert_eq!(reqs.len(), 1);
    let r = &reqs[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, "/v26.0/106540352242922/messages");
    assert_eq!(
        r.authorization.as_deref(),
        Some(&*format!("Bearer {TOKEN}"))
    );
    assert!(r
        .content_type
        .as_deref()
        .unwrap()
        .starts_with("application/json"));
    assert_eq!(r.json(), serde_json::to_value(&msg).unwrap());
    assert_eq!(r.json()["biz_opaque_callback_data"], "odoo-msg-41");
}

#[tokio::test]
async fn graph_url_with_a_path_prefix() {
    let (server, base) =
        start(|_, _| reply_json(200, json!({"messages":[{"id":"wamid.P"}]}))).await;
    let c = client(&format!("{base}/graph/"));
    let msg = OutboundMessage::new("4915112345678", Text::new("hi")).unwrap();
    c.send_message(&account(), &msg).await.unwrap();
    assert_eq!(
        seen(&server)[0].path,
        "/graph/v26.0/106540352242922/messages"
    );
}

#[tokio::test]
async fn invalid_messages_and_settings_never_reach_the_network() {
    let (server, base) = start(|_, _| reply_json(200, json!({}))).await;
    let c = client(&base);
    let mut msg = OutboundMessage::new("4915112345678", Text::new("hi")).unwrap();
    // broken after construction: the client checks again
    msg.content = Text::new("x".repeat(5000)).into();
    let e = c.send_message(&account(), &msg).await.unwrap_err();
    assert!(matches!(e, WhatsAppError::Payload(_)), "{e}");
    assert!(!e.is_retryable());
    assert!(e.to_string().contains("at most 4096"), "{e}");

    let ok = OutboundMessage::new("4915112345678", Text::new("hi")).unwrap();
    let no_token = AccountHandle::new("106540352242922", "1", Secret::new(""));
    let e = c.send_message(&no_token, &ok).await.unwrap_err();
    assert!(matches!(e, WhatsAppError::Config(_)));
    assert_eq!(e.disposition(), Disposition::PauseAccount);
    let bad_id = AccountHandle::new("../../me", "1", Secret::new(TOKEN));
    let e = c.send_message(&bad_id, &ok).await.unwrap_err();
    assert!(e.to_string().contains("not a Graph API id"), "{e}");
    assert_no_token(&e);
    assert!(seen(&server).is_empty());
}

#[tokio::test]
async fn meta_errors_are_classified_on_the_code_not_the_status() {
    // (HTTP status, code, subcode, expected disposition)
    let cases: &[(u16, i64, Option<i64>, Disposition)] = &[
        (400, 131056, None, Disposition::RetryRecipientLater),
        (400, 130429, None, Disposition::RetryNow),
        (429, 130429, None, Disposition::RetryNow),
        (401, 190, Some(463), Disposition::PauseAccount),
        (400, 100, Some(33), Disposition::PauseAccount),
        (400, 100, None, Disposition::Never),
        (500, 131000, None, Disposition::RetryNow),
        (503, 131016, None, Disposition::RetryNow),
        (400, 131047, None, Disposition::Never),
        (400, 132001, None, Disposition::Never),
        (403, 10, None, Disposition::PauseAccount),
        (400, 368, None, Disposition::PauseAccount),
        (400, 4, None, Disposition::RetryLater),
        (400, 424242, None, Disposition::Never),
        // a 500 that carries a parameter error is not retried
        (500, 131009, None, Disposition::Never),
    ];
    let cases_for_server: Vec<(u16, i64, Option<i64>)> =
        cases.iter().map(|(s, c, sub, _)| (*s, *c, *sub)).collect();
    let counter = Arc::new(Mutex::new(0usize));
    let (_server, base) = start(move |_, _| {
        let mut n = counter.lock().unwrap();
        let (status, code, sub) = cases_for_server[*n];
        *n += 1;
        reply_json(
            status,
            meta_error(code, sub, &format!("(#{code}) scripted")),
        )
    })
    .await;
    let c = client(&base);
    let msg = OutboundMessage::new("4915112345678", Text::new("hi")).unwrap();
    for &(status, code, sub, expected) in cases {
        let e = c.send_message(&account(), &msg).await.unwrap_err();
        match &e {
            WhatsAppError::Meta {
                status: s, error, ..
            } => {
                assert_eq!(*s, status);
                assert_eq!(error.code, code);
                assert_eq!(error.error_subcode, sub);
                assert_eq!(error.fbtrace_id.as_deref(), Some("AbCdEf123"));
                assert_eq!(error.details(), Some(&*format!("details for {code}")));
            }
            other => panic!("code {code}: {other:?}"),
        }
        assert_eq!(e.disposition(), expected, "code {code} sub {sub:?}");
        assert_eq!(e.is_retryable(), expected.is_retryable(), "code {code}");
        assert!(e.to_string().contains(&code.to_string()));
        assert!(!e.help().is_empty());
        assert_no_token(&e);
    }
}

#[tokio::test]
async fn non_meta_error_bodies_and_odd_success_bodies() {
    let counter = Arc::new(Mutex::new(0usize));
    let (_server, base) = start(move |_, _| {
        let mut n = counter.lock().unwrap();
        *n += 1;
        match *n {
            1 => Reply {
                status: 502,
                content_type: "text/html",
                body: b"<html><body>Bad gateway</body></html>".to_vec(),
                delay: None,
            },
            2 => Reply {
                status: 404,
                content_type: "text/plain",
                body: b"no such route".to_vec(),
                delay: None,
            },
            3 => reply_json(
                200,
                json!({"messaging_product": "whatsapp", "messages": []}),
            ),
            4 => Reply {
                status: 200,
                content_type: "application/json",
                body: b"{not json".to_vec(),
                delay: None,
            },
            _ => reply_json(200, meta_error(131026, None, "undeliverable")),
        }
    })
    .await;
    let c = client(&base);
    let msg = OutboundMessage::new("4915112345678", Text::new("hi")).unwrap();

    let e = c.send_message(&account(), &msg).await.unwrap_err();
    assert!(
        matches!(e, WhatsAppError::Http { status: 502, .. }),
        "{e:?}"
    );
    assert!(e.is_retryable());
    assert!(e.to_string().contains("Bad gateway"));

    let e = c.send_message(&account(), &msg).await.unwrap_err();
    assert!(matches!(e, WhatsAppError::Http { status: 404, .. }));
    assert!(!e.is_retryable());

    let e = c.send_message(&account(), &msg).await.unwrap_err();
    assert!(matches!(e, WhatsAppError::Decode { .. }), "{e:?}");
    assert!(
        !e.is_retryable(),
        "Meta may have accepted it: never resend blindly"
    );
    assert!(e.to_string().contains("no message id"));

    let e = c.send_message(&account(), &msg).await.unwrap_err();
    assert!(matches!(e, WhatsAppError::Decode { .. }), "{e:?}");

    // an error object with a 200 status is still Meta's error
    let e = c.send_message(&account(), &msg).await.unwrap_err();
    assert_eq!(e.code(), Some(131026));
}

#[tokio::test]
async fn bad_token_in_the_account_check() {
    let (server, base) = start(|_, _| {
        reply_json(
            401,
            meta_error(
                190,
                Some(463),
                "Error validating access token: Session has expired",
            ),
        )
    })
    .await;
    let report = client(&base).check_account(&account()).await;
    assert!(!report.is_ok());
    assert_eq!(report.lines.len(), 1, "{}", report.report());
    let line = &report.lines[0];
    assert_eq!(line.status, CheckStatus::Fail);
    assert_eq!(line.item, "access token");
    assert!(line.detail.contains("expired") && line.detail.contains("System User"));
    assert!(!report.report().contains(TOKEN));
    // the check stopped after the token was refused
    assert_eq!(seen(&server).len(), 1);

    // and a send with the same token is a pause-account error
    let msg = OutboundMessage::new("4915112345678", Text::new("hi")).unwrap();
    let e = client(&base)
        .send_message(&account(), &msg)
        .await
        .unwrap_err();
    assert_eq!(e.disposition(), Disposition::PauseAccount);
    assert!(e.help().contains("System User"));
}

#[tokio::test]
async fn account_check_reads_number_limit_and_waba() {
    let (server, base) = start(|seen, _| {
        let q = seen.query.clone().unwrap_or_default();
        if seen.path == "/v26.0/106540352242922" && q.contains("display_phone_number") {
            reply_json(
                200,
                json!({"id": "106540352242922", "display_phone_number": "+1 555-078-3881",
                       "verified_name": "ACME", "quality_rating": "YELLOW",
                       "throughput": {"level": "STANDARD"}, "name_status": "APPROVED",
                       "platform_type": "CLOUD_API", "code_verification_status": "VERIFIED"}),
            )
        } else if seen.path == "/v26.0/106540352242922"
            && q.contains("whatsapp_business_manager_messaging_limit")
        {
            reply_json(400, meta_error(100, None, "(#100) Tried accessing nonexisting field (whatsapp_business_manager_messaging_limit)"))
        } else if seen.path == "/v26.0/106540352242922" && q.contains("messaging_limit_tier") {
            reply_json(200, json!({"messaging_limit_tier": "TIER_2K", "id": "106540352242922"}))
        } else if seen.path == "/v26.0/102290129340398/message_templates" {
            reply_json(200, json!({"data": [{"name": "hello_world", "status": "APPROVED"}], "paging": {}}))
        } else if seen.path == "/v26.0/102290129340398/subscribed_apps" {
            reply_json(200, json!({"data": [{"whatsapp_business_api_data": {"id": "670843887433847", "link": "https://www.facebook.com/games/?app_id=670843887433847", "name": "ACME Odoo"}}]}))
        } else if seen.path == "/v26.0/debug_token" && q.contains(&format!("input_token={TOKEN}")) {
            reply_json(200, json!({"data": {"app_id": "670843887433847", "type": "SYSTEM_USER", "application": "ACME Odoo",
                                            "data_access_expires_at": 0, "expires_at": 0, "is_valid": true,
                                            "scopes": ["whatsapp_business_management", "whatsapp_business_messaging"]}}))
        } else {
            reply_json(404, meta_error(100, Some(33), "Unsupported get request"))
        }
    })
    .await;
    let report = client(&base).check_account(&account()).await;
    assert!(report.is_ok(), "{}", report.report());
    let text = report.report();
    assert!(
        text.contains("OK   webhooks of WhatsApp Business Account 102290129340398: subscribed app(s): ACME Odoo"),
        "{text}"
    );
    assert!(
        text.contains("OK   access token expiry: does not expire (a System User token)"),
        "{text}"
    );
    let text = report.report();
    assert!(
        text.contains("OK   access token: accepted by Meta"),
        "{text}"
    );
    assert!(
        text.contains("+1 555-078-3881 \"ACME\", quality YELLOW"),
        "{text}"
    );
    assert!(text.contains("WARN quality rating: YELLOW"), "{text}");
    assert!(text.contains("OK   messaging limit: TIER_2K"), "{text}");
    assert!(
        text.contains("OK   WhatsApp Business Account 102290129340398: readable"),
        "{text}"
    );
    let phone = report.phone.unwrap();
    assert_eq!(phone.throughput_mps(), Some(80));
    assert_eq!(phone.messaging_limit_tier.as_deref(), Some("TIER_2K"));
    assert!(seen(&server)
        .iter()
        .all(|r| r.authorization.as_deref() == Some(&*format!("Bearer {TOKEN}"))));
}

#[tokio::test]
async fn account_check_explains_a_wrong_waba_id_and_missing_permission() {
    let (_server, base) = start(|seen, _| {
        if seen.path.ends_with("/message_templates") {
            reply_json(
                400,
                meta_error(
                    100,
                    Some(33),
                    "Unsupported get request. Object with ID '1' does not exist",
                ),
            )
        } else {
            reply_json(
                403,
                meta_error(
                    10,
                    None,
                    "(#10) Application does not have permission for this action",
                ),
            )
        }
    })
    .await;
    let report = client(&base).check_account(&account()).await;
    assert!(!report.is_ok());
    let text = report.report();
    assert!(
        text.contains("FAIL phone number 106540352242922: the token is not allowed"),
        "{text}"
    );
    assert!(text.contains("whatsapp_business_messaging"), "{text}");
    assert!(
        text.contains(
            "FAIL WhatsApp Business Account 102290129340398: no object with id '102290129340398'"
        ),
        "{text}"
    );
    assert!(
        text.contains("WhatsApp Business Account ID from WhatsApp Manager > API Setup"),
        "{text}"
    );
}

fn template_entry(name: &str) -> Value {
    json!({"id": format!("id-{name}"), "name": name, "language": "en_US", "status": "APPROVED",
           "category": "UTILITY", "parameter_format": "POSITIONAL",
           "components": [{"type": "BODY", "text": "Hello {{1}}"}]})
}

#[tokio::test]
async fn templates_follow_paging_next_without_the_token_in_the_url() {
    let (server, base) = start(|seen, base| {
        let q = seen.query.clone().unwrap_or_default();
        if q.contains("after=page3") {
            reply_json(
                200,
                json!({"data": [template_entry("c"), {"id": "broken"}],
                       "paging": {"cursors": {"before": "x", "after": "y"}}}),
            )
        } else if q.contains("after=page2") {
            reply_json(
                200,
                json!({"data": [template_entry("b"), {"name": "paused_one", "status": "PAUSED", "language": "fr"}],
                       "paging": {"next": format!("{base}/v26.0/102290129340398/message_templates?access_token=LEAKED&limit=2&after=page3")}}),
            )
        } else {
            reply_json(
                200,
                json!({"data": [template_entry("a")],
                       "paging": {"cursors": {"after": "page2"},
                                  "next": format!("{base}/v26.0/102290129340398/message_templates?limit=2&after=page2")}}),
            )
        }
    })
    .await;
    let list = client(&base).list_templates(&account()).await.unwrap();
    let names: Vec<&str> = list.templates.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(names, ["a", "b", "paused_one", "c"]);
    assert_eq!(list.skipped.len(), 1);
    assert_eq!(
        list.find("paused_one", "fr").unwrap().status,
        TemplateStatus::Paused
    );
    let reqs = seen(&server);
    assert_eq!(reqs.len(), 3);
    let first_q = reqs[0].query.clone().unwrap();
    assert!(
        first_q.contains("fields=") && first_q.contains("limit=100"),
        "{first_q}"
    );
    for r in &reqs {
        assert_eq!(r.path, "/v26.0/102290129340398/message_templates");
        assert!(
            !r.query.clone().unwrap_or_default().contains("access_token"),
            "{r:?}"
        );
        assert_eq!(
            r.authorization.as_deref(),
            Some(&*format!("Bearer {TOKEN}"))
        );
    }
}

#[tokio::test]
async fn paging_next_to_another_host_or_in_a_loop_is_refused() {
    let (_server, base) = start(|_, _| {
        reply_json(
            200,
            json!({"data": [template_entry("a")],
                   "paging": {"next": "https://evil.example/v26.0/x/message_templates?after=2"}}),
        )
    })
    .await;
    let e = client(&base).list_templates(&account()).await.unwrap_err();
    assert!(e.to_string().contains("https://evil.example"), "{e}");
    assert!(e.to_string().contains("not followed"), "{e}");

    let (server, base) = start(|_, base| {
        reply_json(
            200,
            json!({"data": [template_entry("a")],
                   "paging": {"next": format!("{base}/v26.0/102290129340398/message_templates?after=same")}}),
        )
    })
    .await;
    let e = client(&base).list_templates(&account()).await.unwrap_err();
    assert!(e.to_string().contains("repeats"), "{e}");
    assert_eq!(seen(&server).len(), 2);
}

#[tokio::test]
async fn media_upload_is_multipart_and_cached_by_content() {
    let (server, base) = start(|_, _| reply_json(200, json!({"id": "1013859600285441"}))).await;
    let pdf = b"%PDF-1.4 invoice 42".to_vec();
    let upload = MediaUpload::new(
        MediaKind::Document,
        "application/pdf",
        "inv-42.pdf",
        pdf.clone(),
    )
    .unwrap();
    let c = client(&base);
    let cache = MediaCache::default();
    let t0 = Instant::now();
    let first = c
        .upload_media_cached(&account(), &cache, &upload, t0)
        .await
        .unwrap();
    assert_eq!(first.media_id, "1013859600285441");
    assert!(!first.reused);
    let second = c
        .upload_media_cached(&account(), &cache, &upload, t0 + Duration::from_secs(3600))
        .await
        .unwrap();
    assert!(second.reused);
    assert_eq!(second.media_id, first.media_id);

    let reqs = seen(&server);
    assert_eq!(reqs.len(), 1, "the same PDF is uploaded once");
    let r = &reqs[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, "/v26.0/106540352242922/media");
    let part = |name: &str| r.parts.iter().find(|p| p.0 == name).unwrap().clone();
    assert_eq!(part("messaging_product").3, b"whatsapp");
    assert_eq!(part("type").3, b"application/pdf");
    let file = part("file");
    assert_eq!(file.1.as_deref(), Some("inv-42.pdf"));
    assert_eq!(file.2.as_deref(), Some("application/pdf"));
    assert_eq!(file.3, pdf);

    // too large or wrong type: refused before any upload
    let e =
        MediaUpload::new(MediaKind::Image, "image/png", "a.png", vec![0u8; 5_000_001]).unwrap_err();
    assert!(matches!(e, MediaError::TooLarge { .. }));
    let e = MediaUpload::new(MediaKind::Image, "image/gif", "a.gif", vec![1u8]).unwrap_err();
    assert!(matches!(e, MediaError::WrongType { .. }));
}

#[tokio::test]
async fn media_download_checks_the_sha256() {
    let file = b"\x89PNG fake image bytes".to_vec();
    let good = content_sha256(&file);
    let served = file.clone();
    let (server, base) = start(move |seen, base| {
        if seen.path == "/v26.0/1037543291543636" && seen.method == "GET" {
            reply_json(
                200,
                json!({"messaging_product": "whatsapp", "url": format!("{base}/lookaside/img?ext=1"),
                       "mime_type": "image/png", "sha256": good, "file_size": served.len().to_string(),
                       "id": "1037543291543636"}),
            )
        } else if seen.path == "/v26.0/1037543291543636" && seen.method == "DELETE" {
            reply_json(200, json!({"success": true}))
        } else if seen.path == "/lookaside/img" {
            Reply {
                status: 200,
                content_type: "image/png",
                body: served.clone(),
                delay: None,
            }
        } else {
            reply_json(404, meta_error(100, Some(33), "nope"))
        }
    })
    .await;
    let c = client(&base);
    let got = c.fetch_media(&account(), "1037543291543636").await.unwrap();
    assert_eq!(got.bytes.as_ref(), &file[..]);
    assert_eq!(got.mime_type, "image/png");
    let reqs = seen(&server);
    assert_eq!(reqs[1].path, "/lookaside/img");
    assert_eq!(reqs[1].query.as_deref(), Some("ext=1"));
    assert_eq!(
        reqs[1].authorization.as_deref(),
        Some(&*format!("Bearer {TOKEN}")),
        "the download sends the same token"
    );

    // wrong hash: refused, retryable (download again)
    let info = MediaInfo {
        id: "1037543291543636".into(),
        url: format!("{base}/lookaside/img"),
        mime_type: "image/png".into(),
        sha256: Some("00".repeat(32)),
        file_size: None,
        messaging_product: None,
    };
    let e = c.download_media(&account(), &info).await.unwrap_err();
    assert!(
        matches!(e, WhatsAppError::Media(MediaError::HashMismatch { .. })),
        "{e:?}"
    );
    assert!(e.is_retryable());
    let e = c
        .download_media(
            &account(),
            &MediaInfo {
                sha256: None,
                ..info.clone()
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(e, WhatsAppError::Media(MediaError::MissingHash)));

    c.delete_media(&account(), "1037543291543636")
        .await
        .unwrap();
    assert_eq!(seen(&server).last().unwrap().method, "DELETE");

    let e = c.media_info(&account(), "999").await.unwrap_err();
    assert_eq!(e.code(), Some(100));
}

#[tokio::test]
async fn media_urls_without_tls_are_refused_when_the_graph_url_uses_tls() {
    let c = CloudClient::new(ClientConfig::default()).unwrap();
    let info = MediaInfo {
        id: "1".into(),
        url: "http://lookaside.example/x".into(),
        mime_type: "image/png".into(),
        sha256: Some("00".repeat(32)),
        file_size: None,
        messaging_product: None,
    };
    let e = c.download_media(&account(), &info).await.unwrap_err();
    assert!(e.to_string().contains("not https"), "{e}");
}

#[tokio::test]
async fn connection_refused_is_a_retryable_transport_error_that_never_reached_meta() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let c = client(&format!("http://{addr}"));
    let msg = OutboundMessage::new("4915112345678", Text::new("hi")).unwrap();
    let e = c.send_message(&account(), &msg).await.unwrap_err();
    match &e {
        WhatsAppError::Transport {
            may_have_reached_meta,
            timed_out,
            ..
        } => {
            assert!(!may_have_reached_meta);
            assert!(!timed_out);
        }
        other => panic!("{other:?}"),
    }
    assert!(e.is_retryable());
    assert_no_token(&e);
}

#[tokio::test]
async fn a_timeout_may_have_reached_meta() {
    let (_server, base) = start(|_, _| Reply {
        delay: Some(Duration::from_secs(3)),
        ..reply_json(200, json!({"messages": [{"id": "wamid.late"}]}))
    })
    .await;
    let c = CloudClient::new(ClientConfig {
        timeout: Duration::from_millis(300),
        ..ClientConfig::new(Url::parse(&base).unwrap(), "v26.0")
    })
    .unwrap();
    let msg = OutboundMessage::new("4915112345678", Text::new("hi")).unwrap();
    let e = c.send_message(&account(), &msg).await.unwrap_err();
    match &e {
        WhatsAppError::Transport {
            may_have_reached_meta,
            timed_out,
            ..
        } => {
            assert!(
                *may_have_reached_meta,
                "a send that timed out may have been accepted"
            );
            assert!(*timed_out);
        }
        other => panic!("{other:?}"),
    }
    assert!(e.is_retryable());
    assert!(e.help().contains("may have reached Meta"));
    assert_no_token(&e);
}

#[tokio::test]
async fn every_message_type_goes_out_as_built() {
    let (server, base) =
        start(|_, _| reply_json(200, json!({"messages": [{"id": "wamid.T"}]}))).await;
    let c = client(&base);
    let msgs = vec![
        OutboundMessage::new(
            "4915112345678",
            Text::new("https://x.example").with_preview(true),
        )
        .unwrap(),
        OutboundMessage::new(
            "4915112345678",
            Document::id("55")
                .with_filename("inv.pdf")
                .with_caption("Invoice"),
        )
        .unwrap()
        .reply_to("wamid.Q")
        .unwrap(),
        OutboundMessage::new(
            "4915112345678",
            Template::new("invoice_ready", "en_US")
                .with_body_text("Alice")
                .with_quick_reply(0, "PAY:42"),
        )
        .unwrap(),
    ];
    for m in &msgs {
        assert_eq!(
            c.send_message(&account(), m).await.unwrap().wamid(),
            "wamid.T"
        );
    }
    let bodies: Vec<Value> = seen(&server).iter().map(Seen::json).collect();
    assert_eq!(bodies[0]["text"]["preview_url"], true);
    assert_eq!(bodies[1]["context"]["message_id"], "wamid.Q");
    assert_eq!(bodies[1]["document"]["filename"], "inv.pdf");
    assert_eq!(
        bodies[2]["template"]["components"][1]["sub_type"],
        "quick_reply"
    );
    for b in &bodies {
        assert_eq!(b["messaging_product"], "whatsapp");
    }
}
