//! Black-box tests of the sandbox's Graph API endpoints on 127.0.0.1:0: send validation and its
//! error codes, tokens, rate limits, the 24-hour window, media, templates, phone numbers, and the
//! record.

mod sandbox_support;

use axum::http::StatusCode;
use sandbox_support::*;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use whatsapp_sidecar::sandbox::config::TemplateConfig;
use whatsapp_sidecar::sandbox::SandboxConfig;

const USER: &str = "+2250700000001";

fn interactive_buttons(n: usize) -> Value {
    let buttons: Vec<Value> = (0..n)
        .map(|i| json!({"type": "reply", "reply": {"id": format!("id{i}"), "title": format!("Title {i}")}}))
        .collect();
    json!({"messaging_product": "whatsapp", "to": USER, "type": "interactive",
           "interactive": {"type": "button", "body": {"text": "Choose"}, "action": {"buttons": buttons}}})
}

fn invoice(body_params: usize, header_type: &str) -> Value {
    let params: Vec<Value> = (0..body_params)
        .map(|i| json!({"type": "text", "text": format!("v{i}")}))
        .collect();
    json!({"messaging_product": "whatsapp", "to": USER, "type": "template", "biz_opaque_callback_data": "odoo:42",
           "template": {"name": "sidecar_invoice", "language": {"code": "en_US"}, "components": [
               {"type": "header", "parameters": [{"type": header_type, header_type: {"link": "https://example.com/inv.pdf", "filename": "inv.pdf"}}]},
               {"type": "body", "parameters": params},
               {"type": "button", "sub_type": "quick_reply", "index": "0", "parameters": [{"type": "payload", "payload": "PAY:42"}]}]}})
}

#[tokio::test]
async fn accepted_sends_have_metas_success_shape() {
    let sandbox = start(fast_config()).await;
    sandbox.inject_text(USER, "hello").await;
    let (status, body) = sandbox.send(text(USER, "Hi there")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["messaging_product"], "whatsapp");
    assert_eq!(body["contacts"][0]["input"], USER);
    assert_eq!(body["contacts"][0]["wa_id"], "2250700000001");
    let wamid = body["messages"][0]["id"].as_str().unwrap();
    assert!(wamid.starts_with("wamid.HBgN"), "{wamid}");
    assert!(body["messages"][0].get("message_status").is_none());

    let (status, body) = sandbox.send(invoice(3, "document")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["messages"][0]["message_status"], "accepted");
    assert_ne!(body["messages"][0]["id"], wamid);
    sandbox.stop().await;
}

#[tokio::test]
async fn every_validation_error_has_its_code_and_metas_shape() {
    let mut config = fast_config();
    config.sync_failures = true;
    config.templates.push(TemplateConfig {
        name: "paused_one".into(),
        status: "PAUSED".into(),
        components: json!([{"type": "BODY", "text": "x"}]),
        ..TemplateConfig::default()
    });
    config.templates.push(TemplateConfig {
        name: "disabled_one".into(),
        status: "DISABLED".into(),
        components: json!([{"type": "BODY", "text": "x"}]),
        ..TemplateConfig::default()
    });
    let sandbox = start(config).await;
    sandbox.inject_text(USER, "open the window").await;

    let mut long_list = json!({"messaging_product": "whatsapp", "to": USER, "type": "interactive",
        "interactive": {"type": "list", "body": {"text": "Pick"}, "action": {"button": "Open", "sections": []}}});
    let rows: Vec<Value> = (0..11)
        .map(|i| json!({"id": format!("r{i}"), "title": format!("Row {i}")}))
        .collect();
    long_list["interactive"]["action"]["sections"] = json!([{"title": "All", "rows": rows}]);

    let mut bad_param = invoice(3, "document");
    bad_param["template"]["components"][1]["parameters"][0]["text"] = json!("");

    let mut too_long = invoice(3, "document");
    too_long["template"]["components"][1]["parameters"][0]["text"] = json!("x".repeat(1100));

    let cases: Vec<(Value, u64, &str)> = vec![
        (
            json!({"to": USER, "type": "text", "text": {"body": "x"}}),
            100,
            "messaging_product",
        ),
        (text(USER, &"a".repeat(4097)), 100, "4096"),
        (text("not-a-number", "x"), 100, "phone number"),
        (
            json!({"messaging_product": "whatsapp", "to": USER, "type": "image", "image": {"caption": "no media"}}),
            100,
            "id",
        ),
        (
            {
                let mut m = text(USER, "x");
                m["biz_opaque_callback_data"] = json!("c".repeat(513));
                m
            },
            100,
            "512",
        ),
        (interactive_buttons(4), 131009, "Buttons count"),
        (long_list, 131009, "Total row count"),
        (
            invoice(2, "document"),
            132000,
            "does not match the expected number of params",
        ),
        (
            invoice(3, "image"),
            132012,
            "expected DOCUMENT, received IMAGE",
        ),
        (
            json!({"messaging_product": "whatsapp", "to": USER, "type": "template",
                "template": {"name": "no_such_template", "language": {"code": "en_US"}}}),
            132001,
            "does not exist",
        ),
        (
            json!({"messaging_product": "whatsapp", "to": USER, "type": "template",
                "template": {"name": "sidecar_hello", "language": {"code": "fr"}}}),
            132001,
            "en_US",
        ),
        (
            json!({"messaging_product": "whatsapp", "to": USER, "type": "template",
                "template": {"name": "paused_one", "language": {"code": "en_US"}}}),
            132015,
            "paused",
        ),
        (
            json!({"messaging_product": "whatsapp", "to": USER, "type": "template",
                "template": {"name": "disabled_one", "language": {"code": "en_US"}}}),
            132016,
            "disabled",
        ),
        (bad_param, 131008, "missing text value"),
        (too_long, 132005, "1024"),
        (text("+15550000001", "to myself"), 131021, "same"),
    ];
    for (body, code, details) in cases {
        let (status, answer) = sandbox.send(body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body} → {answer}");
        let error = &answer["error"];
        assert_eq!(error["code"], code, "{body} → {answer}");
        assert_eq!(error["type"], "OAuthException");
        assert!(
            error["message"]
                .as_str()
                .unwrap()
                .starts_with(&format!("(#{code}) ")),
            "{answer}"
        );
        assert_eq!(error["error_data"]["messaging_product"], "whatsapp");
        let text = error["error_data"]["details"].as_str().unwrap();
        assert!(
            text.contains(details),
            "{code}: {text:?} should mention {details:?}"
        );
        assert_eq!(error["fbtrace_id"].as_str().unwrap().len(), 23);
    }

    // Bodies that are not JSON at all.
    let response = sandbox
        .http
        .post(sandbox.url(&format!("/v25.0/{PN}/messages")))
        .bearer_auth("t")
        .body("{broken")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(error_code(&body), 100);
    sandbox.stop().await;
}

#[tokio::test]
async fn tokens_are_checked_when_configured() {
    let mut config = fast_config();
    config.tokens = vec!["good-token".into()];
    let sandbox = start(config).await;
    let url = sandbox.url(&format!("/v25.0/{PN}/messages"));

    let response = sandbox
        .http
        .post(&url)
        .bearer_auth("bad-token")
        .json(&hello(USER))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], 190);
    assert_eq!(body["error"]["type"], "OAuthException");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("access token"));
    assert!(body["error"]["fbtrace_id"].is_string());

    let response = sandbox
        .http
        .post(&url)
        .json(&hello(USER))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(error_code(&response.json().await.unwrap()), 104);

    let response = sandbox
        .http
        .post(&url)
        .bearer_auth("good-token")
        .json(&hello(USER))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    // Every Graph endpoint checks it.
    let response = sandbox
        .http
        .get(sandbox.url(&format!("/v25.0/{PN}")))
        .bearer_auth("bad")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let response = sandbox
        .http
        .get(sandbox.url(&format!("/v25.0/{PN}?access_token=good-token")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    sandbox.stop().await;
}

#[tokio::test]
async fn a_burst_past_the_throughput_gets_130429() {
    let mut config = fast_config();
    // A bucket of 5 refilling at one token per second: the burst gets 5 (6 if it takes >1 s).
    config.phone_numbers[0].throughput_mps = 1;
    config.phone_numbers[0].throughput_burst = Some(5);
    let sandbox = std::sync::Arc::new(start(config).await);
    let mut tasks = Vec::new();
    for i in 0..30 {
        let sandbox = std::sync::Arc::clone(&sandbox);
        tasks.push(tokio::spawn(async move {
            sandbox.send(hello(&format!("+22507000{i:05}"))).await
        }));
    }
    let mut accepted = 0;
    let mut limited = 0;
    for task in tasks {
        let (status, body) = task.await.unwrap();
        match status {
            StatusCode::OK => accepted += 1,
            _ => {
                assert_eq!(error_code(&body), 130429, "{body}");
                assert!(body["error"]["error_data"]["details"]
                    .as_str()
                    .unwrap()
                    .contains("throughput"));
                limited += 1;
            }
        }
    }
    assert!((5..=6).contains(&accepted), "accepted {accepted}");
    assert_eq!(accepted + limited, 30);
    assert_eq!(sandbox.handle.rejected(130429), limited as u64);
}

#[tokio::test]
async fn the_pair_rate_gives_131056_for_one_recipient_only() {
    let mut config = fast_config();
    config.limits.pair_rate_period_ms = 400;
    config.limits.pair_rate_burst = 1;
    let sandbox = start(config).await;
    assert_eq!(sandbox.send(hello(USER)).await.0, StatusCode::OK);
    let (status, body) = sandbox.send(hello(USER)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&body), 131056);
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("pair rate limit hit"));
    // Another recipient is not affected.
    assert_eq!(
        sandbox.send(hello("+2250700000002")).await.0,
        StatusCode::OK
    );
    // After the period the first recipient can be messaged again.
    tokio::time::sleep(std::time::Duration::from_millis(450)).await;
    assert_eq!(sandbox.send(hello(USER)).await.0, StatusCode::OK);
    sandbox.stop().await;
}

#[tokio::test]
async fn free_form_outside_the_window_is_131047_and_templates_are_not() {
    let mut config = fast_config();
    config.sync_failures = true;
    let sandbox = start(config).await;
    let (status, body) = sandbox.send(text(USER, "hi")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&body), 131047);
    assert!(body["error"]["error_data"]["details"]
        .as_str()
        .unwrap()
        .contains("24 hours"));
    let (status, _) = sandbox.send(interactive_buttons(2)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(sandbox.send(hello(USER)).await.0, StatusCode::OK);

    sandbox.inject_text(USER, "I have a question").await;
    let (status, body) = sandbox.send(text(USER, "Sure, ask away")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    // The window belongs to that user only.
    assert_eq!(
        error_code(&sandbox.send(text("+2250700000002", "hi")).await.1),
        131047
    );
    sandbox.stop().await;
}

#[tokio::test]
async fn undeliverable_numbers_get_131026() {
    let mut config = fast_config();
    config.sync_failures = true;
    config.undeliverable = vec!["+2250700000099".into()];
    let sandbox = start(config).await;
    let (status, body) = sandbox.send(hello("+2250700000099")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&body), 131026);
    assert_eq!(sandbox.send(hello(USER)).await.0, StatusCode::OK);
    sandbox.stop().await;
}

async fn upload(
    sandbox: &Running,
    bytes: Vec<u8>,
    mime: &str,
    product: Option<&str>,
) -> (u16, Value) {
    let mut form = reqwest::multipart::Form::new()
        .part(
            "file",
            reqwest::multipart::Part::bytes(bytes)
                .file_name("f")
                .mime_str(mime)
                .unwrap(),
        )
        .text("type", mime.to_string());
    if let Some(product) = product {
        form = form.text("messaging_product", product.to_string());
    }
    let response = sandbox
        .http
        .post(sandbox.url(&format!("/v25.0/{PN}/media")))
        .bearer_auth("t")
        .multipart(form)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap())
}

#[tokio::test]
async fn media_upload_retrieve_download_delete() {
    let sandbox = start(fast_config()).await;
    let pdf = b"%PDF-1.4 sandbox test invoice".to_vec();
    let (status, body) = upload(&sandbox, pdf.clone(), "application/pdf", Some("whatsapp")).await;
    assert_eq!(status, 200, "{body}");
    let id = body["id"].as_str().unwrap().to_string();
    assert!(id.bytes().all(|b| b.is_ascii_digit()));

    let (status, info) = sandbox.get(&format!("/v25.0/{id}")).await;
    assert_eq!(status, StatusCode::OK, "{info}");
    assert_eq!(info["messaging_product"], "whatsapp");
    assert_eq!(info["mime_type"], "application/pdf");
    assert_eq!(info["id"], id.as_str());
    assert_eq!(info["file_size"], pdf.len().to_string());
    assert_eq!(info["sha256"], hex::encode(Sha256::digest(&pdf)));
    let url = info["url"].as_str().unwrap().to_string();
    assert!(url.starts_with(&sandbox.handle.base_url()), "{url}");

    let downloaded = sandbox
        .http
        .get(&url)
        .bearer_auth("t")
        .send()
        .await
        .unwrap();
    assert_eq!(downloaded.status(), 200);
    assert_eq!(downloaded.headers()["content-type"], "application/pdf");
    assert_eq!(downloaded.bytes().await.unwrap().to_vec(), pdf);
    // Downloads need the token; a tampered URL is refused.
    assert_eq!(sandbox.http.get(&url).send().await.unwrap().status(), 401);
    let tampered = url.replace("hash=", "hash=x");
    assert_eq!(
        sandbox
            .http
            .get(&tampered)
            .bearer_auth("t")
            .send()
            .await
            .unwrap()
            .status(),
        404
    );

    let deleted = sandbox
        .http
        .delete(sandbox.url(&format!("/v25.0/{id}")))
        .bearer_auth("t")
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 200);
    assert_eq!(
        deleted.json::<Value>().await.unwrap(),
        json!({"success": true})
    );
    let (status, gone) = sandbox.get(&format!("/v25.0/{id}")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(gone["error"]["code"], 100);
    assert_eq!(gone["error"]["error_subcode"], 33);
    assert_eq!(
        sandbox
            .http
            .get(&url)
            .bearer_auth("t")
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    let again = sandbox
        .http
        .delete(sandbox.url(&format!("/v25.0/{id}")))
        .bearer_auth("t")
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 400);
    sandbox.stop().await;
}

#[tokio::test]
async fn media_uploads_are_checked_for_type_and_size() {
    let sandbox = start(fast_config()).await;
    let (status, body) = upload(
        &sandbox,
        b"PK zip".to_vec(),
        "application/zip",
        Some("whatsapp"),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(error_code(&body), 100);
    assert!(body["error"]["error_data"]["details"]
        .as_str()
        .unwrap()
        .contains("application/zip"));

    let (status, body) = upload(
        &sandbox,
        vec![0u8; 5 * 1024 * 1024 + 1],
        "image/jpeg",
        Some("whatsapp"),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(error_code(&body), 131053);

    // A static sticker over 100 KB (animated ones may reach 500 KB), as the client checks it.
    let (status, body) = upload(&sandbox, vec![0u8; 150_000], "image/webp", Some("whatsapp")).await;
    assert_eq!(status, 400);
    assert_eq!(error_code(&body), 131053);

    let (status, body) = upload(&sandbox, vec![1u8; 1000], "image/png", None).await;
    assert_eq!(status, 400);
    assert!(body["error"]["error_data"]["details"]
        .as_str()
        .unwrap()
        .contains("messaging_product"));

    let (status, _) = upload(&sandbox, vec![1u8; 1000], "image/png", Some("whatsapp")).await;
    assert_eq!(status, 200);

    let response = sandbox
        .http
        .post(sandbox.url(&format!("/v25.0/{PN}/media")))
        .bearer_auth("t")
        .json(&json!({"file": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    assert_eq!(error_code(&response.json().await.unwrap()), 100);
    sandbox.stop().await;
}

#[tokio::test]
async fn templates_are_listed_page_by_page() {
    let mut config = fast_config();
    for i in 0..7 {
        config.templates.push(TemplateConfig {
            name: format!("extra_{i}"),
            language: if i % 2 == 0 { "en_US" } else { "fr" }.into(),
            components: json!([{"type": "BODY", "text": "Hello {{1}}"}]),
            ..TemplateConfig::default()
        });
    }
    let sandbox = start(config).await;
    let mut names = Vec::new();
    let mut url = sandbox.url(
        "/v25.0/sandbox-waba/message_templates?limit=3&fields=name,status,language,components",
    );
    let mut pages = 0;
    loop {
        let response = sandbox
            .http
            .get(&url)
            .bearer_auth("t")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let page: Value = response.json().await.unwrap();
        let data = page["data"].as_array().unwrap();
        assert!(data.len() <= 3);
        for t in data {
            assert!(t["id"].is_string());
            assert!(t["components"].is_array());
            assert!(t.get("category").is_none(), "fields= limits the answer");
            names.push(t["name"].as_str().unwrap().to_string());
        }
        assert!(page["paging"]["cursors"]["after"].is_string());
        pages += 1;
        match page["paging"]["next"].as_str() {
            Some(next) => url = next.to_string(),
            None => break,
        }
    }
    assert_eq!(pages, 4);
    assert_eq!(names.len(), 10);
    assert!(names.contains(&"sidecar_invoice".to_string()));
    assert!(names.contains(&"extra_6".to_string()));

    let (_, full) = sandbox.get("/v25.0/sandbox-waba/message_templates").await;
    let invoice = full["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["name"] == "sidecar_invoice")
        .unwrap();
    assert_eq!(invoice["status"], "APPROVED");
    assert_eq!(invoice["category"], "UTILITY");
    assert_eq!(invoice["language"], "en_US");
    assert_eq!(invoice["parameter_format"], "POSITIONAL");
    assert_eq!(invoice["components"][0]["format"], "DOCUMENT");

    let (_, french) = sandbox
        .get("/v25.0/sandbox-waba/message_templates?language=fr")
        .await;
    assert_eq!(french["data"].as_array().unwrap().len(), 3);

    let (status, body) = sandbox.get("/v25.0/no-such-waba/message_templates").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error"]["error_subcode"], 33);
    sandbox.stop().await;
}

#[tokio::test]
async fn phone_number_waba_and_paths() {
    let mut config = fast_config();
    config.phone_numbers[0].throughput_mps = 1000;
    let sandbox = start(config).await;
    let (status, number) = sandbox.get(&format!("/v24.0/{PN}")).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(number["id"], PN);
    assert_eq!(number["display_phone_number"], "+1 555 000 0001");
    assert_eq!(number["quality_rating"], "GREEN");
    assert_eq!(number["throughput"]["level"], "HIGH");
    assert_eq!(number["name_status"], "APPROVED");
    assert!(number["verified_name"].is_string());

    let (_, some) = sandbox
        .get(&format!(
            "/v25.0/{PN}?fields=display_phone_number,quality_rating"
        ))
        .await;
    assert_eq!(
        some,
        json!({"id": PN, "display_phone_number": "+1 555 000 0001", "quality_rating": "GREEN"})
    );

    let (_, numbers) = sandbox.get("/v25.0/sandbox-waba/phone_numbers").await;
    assert_eq!(numbers["data"][0]["id"], PN);
    let (_, waba) = sandbox.get("/v25.0/sandbox-waba").await;
    assert_eq!(waba["id"], "sandbox-waba");

    let (status, body) = sandbox.get("/v25.0/123456").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("Object with ID '123456' does not exist"));
    let (status, body) = sandbox.send_at("v25.0", hello(USER)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let response = sandbox
        .http
        .post(sandbox.url("/v25.0/wrong-number/messages"))
        .bearer_auth("t")
        .json(&hello(USER))
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["error_subcode"], 33);
    let (status, body) = sandbox.send_at("latest", hello("+2250700000002")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&body), 2500);
    sandbox.stop().await;
}

#[tokio::test]
async fn the_record_lists_accepted_messages_with_filters() {
    let sandbox = start(fast_config()).await;
    let before = sandbox.send(hello("+2250700000002")).await;
    assert_eq!(before.0, StatusCode::OK);
    let mut sent = Vec::new();
    for i in 0..3 {
        let mut message = hello(USER);
        message["biz_opaque_callback_data"] = json!(format!("odoo:{i}"));
        let (status, body) = sandbox.send(message).await;
        assert_eq!(status, StatusCode::OK);
        sent.push(body["messages"][0]["id"].as_str().unwrap().to_string());
    }
    // A refused send is not recorded.
    assert_eq!(
        sandbox.send(text(USER, &"x".repeat(5000))).await.0,
        StatusCode::BAD_REQUEST
    );

    let (status, all) = sandbox.get("/sandbox/messages").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(all["count"], 4);
    assert_eq!(all["total_accepted"], 4);

    let (_, mine) = sandbox.get("/sandbox/messages?to=%2B2250700000001").await;
    let data = mine["data"].as_array().unwrap();
    assert_eq!(data.len(), 3);
    assert_eq!(data[0]["wamid"], sent[0].as_str());
    assert_eq!(data[0]["to"], USER);
    assert_eq!(data[0]["type"], "template");
    assert_eq!(data[0]["payload"]["template"]["name"], "sidecar_hello");
    assert_eq!(data[0]["biz_opaque_callback_data"], "odoo:0");

    let (_, one) = sandbox.get("/sandbox/messages?callback_data=odoo:2").await;
    assert_eq!(one["data"][0]["wamid"], sent[2].as_str());
    let (_, last) = sandbox.get("/sandbox/messages?order=desc&limit=1").await;
    assert_eq!(last["data"][0]["wamid"], sent[2].as_str());
    let seq = data[0]["seq"].as_u64().unwrap();
    let (_, after) = sandbox
        .get(&format!("/sandbox/messages?after_seq={seq}"))
        .await;
    assert_eq!(after["count"], 2);
    let (_, none) = sandbox
        .get("/sandbox/messages?since=2999-01-01T00:00:00Z")
        .await;
    assert_eq!(none["count"], 0);
    let response = sandbox
        .http
        .get(sandbox.url("/sandbox/messages?since=soon"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);

    // In-process access gives the same.
    let in_process = sandbox
        .handle
        .messages(&whatsapp_sidecar::sandbox::RecordFilter {
            to: Some(USER.into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(in_process.len(), 3);
    assert_eq!(in_process[2].callback_data.as_deref(), Some("odoo:2"));

    // Without a callback URL the statuses still progress in the record.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let (_, m) = sandbox
            .get(&format!("/sandbox/messages?wamid={}", sent[0]))
            .await;
        if m["data"][0]["status"] == "read" {
            let kinds: Vec<&str> = m["data"][0]["statuses"]
                .as_array()
                .unwrap()
                .iter()
                .map(|s| s["status"].as_str().unwrap())
                .collect();
            assert_eq!(kinds, vec!["sent", "delivered", "read"]);
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "status never reached read: {m}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    let (_, stats) = sandbox.get("/sandbox/stats").await;
    assert_eq!(stats["accepted"], 4);
    assert_eq!(stats["rejected"]["100"], 1);
    sandbox.stop().await;
}

#[tokio::test]
async fn changing_a_template_status_changes_what_sends_get() {
    let sandbox = start(fast_config()).await;
    assert_eq!(sandbox.send(hello(USER)).await.0, StatusCode::OK);
    let (status, body) = sandbox
        .post_json(
            "/sandbox/templates/status",
            json!({"name": "sidecar_hello", "status": "PAUSED"}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "PAUSED");
    let (_, body) = sandbox.send(hello("+2250700000002")).await;
    assert_eq!(error_code(&body), 132015);
    let (_, listed) = sandbox
        .get("/v25.0/sandbox-waba/message_templates?name=sidecar_hello")
        .await;
    assert_eq!(listed["data"][0]["status"], "PAUSED");
    let (status, _) = sandbox
        .post_json(
            "/sandbox/templates/status",
            json!({"name": "nope", "status": "PAUSED"}),
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    sandbox.stop().await;
}

#[tokio::test]
async fn an_empty_config_file_gives_the_built_in_defaults() {
    let config = SandboxConfig::from_toml_str("").unwrap();
    let sandbox = start(config).await;
    let (_, info) = sandbox.get("/sandbox").await;
    assert_eq!(info["phone_numbers"][0]["id"], "sandbox-0001");
    assert_eq!(info["phone_numbers"][0]["waba_id"], "sandbox-waba");
    assert_eq!(info["phone_numbers"][0]["throughput_mps"], 80);
    let names: Vec<&str> = info["templates"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        vec!["sidecar_hello", "sidecar_invoice", "sidecar_order"]
    );
    sandbox.stop().await;
}

/// The built-in templates must be the addon's demo templates (same ids, texts, buttons), so a
/// demo database and the sandbox agree. Runs where the addon is in the checkout.
#[test]
fn demo_templates_match_the_addon_demo_data() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("odoo_addon/whatsapp_sidecar/demo/whatsapp_sidecar_demo.xml");
    let Ok(xml) = std::fs::read_to_string(&path) else {
        eprintln!("skipped: {} is not in this checkout", path.display());
        return;
    };
    let field = |block: &str, name: &str| -> Option<String> {
        let open = format!("<field name=\"{name}\">");
        let start = block.find(&open)? + open.len();
        let end = start + block[start..].find("</field>")?;
        Some(
            block[start..end]
                .replace("&quot;", "\"")
                .replace("&lt;", "<")
                .replace("&gt;", ">")
                .replace("&amp;", "&"),
        )
    };
    let mut found = 0;
    for block in xml
        .split("<record ")
        .filter(|b| b.contains("model=\"whatsapp.template\""))
    {
        let (Some(name), Some(components)) =
            (field(block, "name"), field(block, "components_json"))
        else {
            continue;
        };
        let addon: Value = serde_json::from_str(&components).unwrap();
        let ours = whatsapp_sidecar::sandbox::templates::default_templates()
            .into_iter()
            .find(|t| t.name == name)
            .unwrap_or_else(|| panic!("the sandbox has no built-in template {name}"));
        assert_eq!(ours.components, addon, "components of {name}");
        assert_eq!(
            Some(ours.language.clone()),
            field(block, "language"),
            "language of {name}"
        );
        assert_eq!(
            Some(ours.id.clone()),
            field(block, "meta_template_id"),
            "id of {name}"
        );
        found += 1;
    }
    assert_eq!(
        found, 3,
        "the addon's demo data should define sidecar_hello, sidecar_invoice and sidecar_order"
    );
}
