//! The Cloud API client (`src/whatsapp`) against the sandbox (`src/sandbox`), two independent
//! implementations of the same fact sheet, on 127.0.0.1:0: every message type gets Meta's
//! success shape, errors come back as typed Meta errors with the right disposition (130429,
//! 131056, 132000, 132001, 190, wrong ids), media and templates round-trip, and the webhooks
//! the sandbox signs are verified and parsed by the client's webhook code.

mod sandbox_support;

use sandbox_support::*;
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};
use whatsapp_sidecar::sandbox::config::TemplateConfig;
use whatsapp_sidecar::sandbox::{InjectRequest, RecordFilter, ReplyRef, SandboxConfig};
use whatsapp_sidecar::secret::Secret;
use whatsapp_sidecar::whatsapp::payload::{
    Document, Image, InteractiveHeader, ListMessage, ListSection, Parameter, ReplyButtons,
    Template, Text,
};
use whatsapp_sidecar::whatsapp::webhook::{
    Change, DeliveryStatus, InboundContent, InteractiveReply, WebhookPayload,
};
use whatsapp_sidecar::whatsapp::{
    check_params, parse_webhook, verify_signature, AccountHandle, ClientConfig, CloudClient,
    Disposition, MediaCache, MediaKind, MediaUpload, OutboundMessage, TemplateStatus,
    WhatsAppError,
};

const USER: &str = "+2250700000001";

fn client(sandbox: &Running, version: &str) -> CloudClient {
    let config = ClientConfig::new(sandbox.handle.base_url().parse().unwrap(), version);
    CloudClient::new(config).unwrap()
}

fn account(token: &str) -> AccountHandle {
    AccountHandle::new(PN, "sandbox-waba", Secret::new(token))
}

fn meta_code(result: Result<impl std::fmt::Debug, WhatsAppError>) -> (i64, Disposition) {
    let error = result.expect_err("the sandbox should refuse this");
    (error.code().unwrap_or(-1), error.disposition())
}

fn invoice(document: Document, body: &[&str]) -> Template {
    let mut template = Template::new("sidecar_invoice", "en_US")
        .with_header(Parameter::Document { document })
        .with_quick_reply(0, "PAY:INV/1");
    for value in body {
        template = template.with_body_text(*value);
    }
    template
}

#[tokio::test]
async fn every_message_type_gets_metas_answer_and_reaches_the_record() {
    let sandbox = start(fast_config()).await;
    let client = client(&sandbox, "v25.0");
    let account = account("any-token");
    sandbox.inject_text(USER, "hello").await;

    let pdf = MediaUpload::new(
        MediaKind::Document,
        "application/pdf",
        "invoice.pdf",
        b"%PDF-1.4 test".to_vec(),
    )
    .unwrap();
    let pdf_id = client.upload_media(&account, &pdf).await.unwrap();
    let png = MediaUpload::new(
        MediaKind::Image,
        "image/png",
        "p.png",
        vec![0x89, b'P', b'N', b'G', 1, 2, 3],
    )
    .unwrap();
    let png_id = client.upload_media(&account, &png).await.unwrap();

    let messages: Vec<(&str, OutboundMessage)> = vec![
        (
            "text",
            OutboundMessage::new(
                USER,
                Text::new("Your order shipped: https://example.com/t/1").with_preview(true),
            )
            .unwrap(),
        ),
        (
            "text",
            OutboundMessage::new(USER, Text::new("Re: your question"))
                .unwrap()
                .reply_to("wamid.HBgLquoted")
                .unwrap()
                .callback_data("odoo:whatsapp.message:1")
                .unwrap(),
        ),
        (
            "image",
            OutboundMessage::new(USER, Image::id(&png_id).with_caption("Front view")).unwrap(),
        ),
        (
            "image",
            OutboundMessage::new(USER, Image::link("https://example.com/a.jpg")).unwrap(),
        ),
        (
            "document",
            OutboundMessage::new(
                USER,
                Document::id(&pdf_id)
                    .with_filename("INV-1.pdf")
                    .with_caption("Invoice INV/1"),
            )
            .unwrap(),
        ),
        (
            "template",
            OutboundMessage::new(USER, Template::new("sidecar_hello", "en_US")).unwrap(),
        ),
        (
            "template",
            OutboundMessage::new(
                USER,
                invoice(
                    Document::id(&pdf_id).with_filename("INV-1.pdf"),
                    &["Awa", "INV/1", "$ 42.00"],
                ),
            )
            .unwrap(),
        ),
        (
            "interactive",
            OutboundMessage::new(
                USER,
                ReplyButtons::new("Confirm order S00042?")
                    .with_header(InteractiveHeader::text("Order S00042"))
                    .with_footer("Reply within 24 h")
                    .button("order_validate:42", "Validate")
                    .button("order_cancel:42", "Cancel")
                    .button("order_details:42", "Details"),
            )
            .unwrap(),
        ),
        (
            "interactive",
            OutboundMessage::new(
                USER,
                ListMessage::new("What do you need?", "Options")
                    .with_header("Support")
                    .section(
                        ListSection::new(Some("Orders"))
                            .row("track", "Track order")
                            .row_with_description("return", "Return an item", "Start a return"),
                    )
                    .section(ListSection::new(Some("Account")).row("agent", "Talk to us")),
            )
            .unwrap(),
        ),
    ];
    let mut wamids = Vec::new();
    for (kind, message) in &messages {
        let answer = client
            .send_message(&account, message)
            .await
            .unwrap_or_else(|e| panic!("{kind} refused: {e}"));
        assert!(
            answer.wamid().starts_with("wamid.HBgN"),
            "{kind}: {answer:?}"
        );
        assert_eq!(answer.wa_id(), Some("2250700000001"));
        assert_eq!(answer.contacts[0].input, USER);
        assert_eq!(answer.messaging_product.as_deref(), Some("whatsapp"));
        if *kind == "template" {
            assert_eq!(answer.message_status(), Some("accepted"));
        }
        wamids.push(answer.wamid().to_string());
    }

    // What reached the sandbox is exactly what the client serialised.
    let record = sandbox
        .handle
        .messages(&RecordFilter {
            to: Some(USER.into()),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(record.len(), messages.len());
    for ((kind, message), recorded) in messages.iter().zip(&record) {
        assert_eq!(recorded.kind, *kind);
        assert_eq!(recorded.payload(), serde_json::to_value(message).unwrap());
    }
    assert_eq!(
        record[1].callback_data.as_deref(),
        Some("odoo:whatsapp.message:1")
    );
    assert_eq!(
        record.iter().map(|r| r.wamid.clone()).collect::<Vec<_>>(),
        wamids
    );
    sandbox.stop().await;
}

#[tokio::test]
async fn an_accounts_graph_api_version_is_the_one_in_the_path() {
    let sandbox = start(fast_config()).await;
    // the daemon's default is v26.0; the account says v25.0
    let client = client(&sandbox, "v26.0");
    let hello = OutboundMessage::new(USER, Template::new("sidecar_hello", "en_US")).unwrap();
    let own = account("any-token").with_api_version(Some("v25.0"));
    let plain = account("any-token");
    let sent_own = client.send_message(&own, &hello).await.unwrap();
    let sent_plain = client.send_message(&plain, &hello).await.unwrap();
    let templates = client.list_templates(&own).await.unwrap();
    assert!(!templates.templates.is_empty());

    let version_of = |wamid: &str| {
        let record = sandbox
            .handle
            .messages(&RecordFilter {
                wamid: Some(wamid.into()),
                ..Default::default()
            })
            .unwrap();
        assert_eq!(record.len(), 1, "{wamid}");
        record[0].graph_version.clone()
    };
    assert_eq!(version_of(sent_own.wamid()), "v25.0");
    assert_eq!(version_of(sent_plain.wamid()), "v26.0");

    // A malformed version never becomes a request: nothing more reaches the record.
    let before = sandbox
        .handle
        .messages(&RecordFilter::default())
        .unwrap()
        .len();
    let broken = account("any-token").with_api_version(Some("25.0"));
    let error = client.send_message(&broken, &hello).await.unwrap_err();
    assert!(matches!(error, WhatsAppError::Config(_)), "{error}");
    assert_eq!(error.disposition(), Disposition::PauseAccount);
    assert!(
        error
            .to_string()
            .contains("set Graph API version on the WhatsApp account to e.g. v26.0"),
        "{error}"
    );
    assert!(client.list_templates(&broken).await.is_err());
    assert_eq!(
        sandbox
            .handle
            .messages(&RecordFilter::default())
            .unwrap()
            .len(),
        before
    );
    sandbox.stop().await;
}

#[tokio::test]
async fn meta_errors_come_back_typed_with_their_disposition() {
    let mut config = fast_config();
    config.limits.pair_rate_burst = 1;
    config.limits.pair_rate_period_ms = 60_000;
    config.sync_failures = true;
    let sandbox = start(config).await;
    let client = client(&sandbox, "v26.0");
    let account = account("any-token");
    let hello = OutboundMessage::new(USER, Template::new("sidecar_hello", "en_US")).unwrap();

    client.send_message(&account, &hello).await.unwrap();
    let (code, disposition) = meta_code(client.send_message(&account, &hello).await);
    assert_eq!(
        (code, disposition),
        (131056, Disposition::RetryRecipientLater)
    );

    let unknown =
        OutboundMessage::new("+2250700000002", Template::new("no_such_template", "en_US")).unwrap();
    assert_eq!(
        meta_code(client.send_message(&account, &unknown).await),
        (132001, Disposition::Never)
    );

    // The client checks Meta's limits but not the template's definition; the sandbox does.
    let short = OutboundMessage::new(
        "+2250700000003",
        invoice(
            Document::link("https://example.com/i.pdf"),
            &["Awa", "INV/1"],
        ),
    )
    .unwrap();
    let error = client.send_message(&account, &short).await.unwrap_err();
    assert_eq!(error.code(), Some(132000));
    let details = error.meta().unwrap().details().unwrap().to_string();
    assert!(
        details.contains("(2) does not match the expected number of params (3)"),
        "{details}"
    );

    let outside = OutboundMessage::new("+2250700000004", Text::new("hi")).unwrap();
    assert_eq!(
        meta_code(client.send_message(&account, &outside).await).0,
        131047
    );

    let wrong_number = AccountHandle::new("999999", "sandbox-waba", Secret::new("t"));
    let error = client
        .send_message(&wrong_number, &hello)
        .await
        .unwrap_err();
    assert_eq!(error.code(), Some(100));
    assert_eq!(error.meta().unwrap().error_subcode, Some(33));
    sandbox.stop().await;
}

#[tokio::test]
async fn a_burst_past_the_throughput_gets_130429_retry_now() {
    let mut config = fast_config();
    config.phone_numbers[0].throughput_mps = 1;
    config.phone_numbers[0].throughput_burst = Some(10);
    let sandbox = start(config).await;
    let client = Arc::new(client(&sandbox, "v25.0"));
    let account = account("any-token");
    let mut tasks = Vec::new();
    for i in 0..40 {
        let (client, account) = (Arc::clone(&client), account.clone());
        tasks.push(tokio::spawn(async move {
            let message = OutboundMessage::new(
                format!("+22507000{i:05}"),
                Template::new("sidecar_hello", "en_US"),
            )
            .unwrap();
            client.send_message(&account, &message).await
        }));
    }
    let mut accepted = 0;
    let mut limited = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => accepted += 1,
            Err(e) => {
                assert_eq!(e.code(), Some(130429), "{e}");
                assert_eq!(e.disposition(), Disposition::RetryNow);
                assert!(e.retry_after().is_some());
                limited += 1;
            }
        }
    }
    assert!((10..=11).contains(&accepted), "accepted {accepted}");
    assert_eq!(accepted + limited, 40);
    sandbox.stop().await;
}

#[tokio::test]
async fn a_bad_token_is_190_and_pauses_the_account() {
    let mut config = fast_config();
    config.tokens = vec!["the-right-token".into()];
    let sandbox = start(config).await;
    let client = client(&sandbox, "v25.0");
    let hello = OutboundMessage::new(USER, Template::new("sidecar_hello", "en_US")).unwrap();
    let error = client
        .send_message(&account("expired-token"), &hello)
        .await
        .unwrap_err();
    assert_eq!(error.code(), Some(190));
    assert_eq!(error.disposition(), Disposition::PauseAccount);
    assert!(
        !format!("{error} {error:?}").contains("expired-token"),
        "the token must not be printed"
    );
    client
        .send_message(&account("the-right-token"), &hello)
        .await
        .unwrap();

    let check = client.check_account(&account("expired-token")).await;
    assert!(!check.is_ok(), "{}", check.report());
    let check = client.check_account(&account("the-right-token")).await;
    assert!(check.is_ok(), "{}", check.report());
    sandbox.stop().await;
}

#[tokio::test]
async fn media_round_trip_with_the_hash_check_and_the_cache() {
    let sandbox = start(fast_config()).await;
    let client = client(&sandbox, "v25.0");
    let account = account("any-token");
    let bytes: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    let upload = MediaUpload::new(
        MediaKind::Document,
        "application/pdf",
        "big.pdf",
        bytes.clone(),
    )
    .unwrap();

    let cache = MediaCache::new(Duration::from_secs(29 * 24 * 3600));
    let first = client
        .upload_media_cached(&account, &cache, &upload, Instant::now())
        .await
        .unwrap();
    assert!(!first.reused);
    let second = client
        .upload_media_cached(&account, &cache, &upload, Instant::now())
        .await
        .unwrap();
    assert!(second.reused);
    assert_eq!(first.media_id, second.media_id);
    assert_eq!(sandbox.handle.stats()["media_uploaded"], 1);

    let info = client.media_info(&account, &first.media_id).await.unwrap();
    assert_eq!(info.id, first.media_id);
    assert_eq!(info.mime_type, "application/pdf");
    assert_eq!(info.file_size, Some(bytes.len() as u64));
    assert_eq!(info.sha256.as_deref(), Some(upload.sha256()));
    let downloaded = client.download_media(&account, &info).await.unwrap();
    assert_eq!(downloaded.bytes.to_vec(), bytes);
    let fetched = client.fetch_media(&account, &first.media_id).await.unwrap();
    assert_eq!(fetched.sha256, upload.sha256());

    client
        .delete_media(&account, &first.media_id)
        .await
        .unwrap();
    let error = client
        .media_info(&account, &first.media_id)
        .await
        .unwrap_err();
    assert_eq!(error.code(), Some(100));
    assert_eq!(error.meta().unwrap().error_subcode, Some(33));
    sandbox.stop().await;
}

#[tokio::test]
async fn templates_are_listed_across_pages_and_checked() {
    let mut config = fast_config();
    for i in 0..150 {
        config.templates.push(TemplateConfig {
            name: format!("bulk_{i:03}"),
            status: if i % 10 == 0 { "PAUSED" } else { "APPROVED" }.into(),
            components: serde_json::json!([{"type": "BODY", "text": "Hi {{1}}, item {{2}}"}]),
            ..TemplateConfig::default()
        });
    }
    let sandbox = start(config).await;
    let client = client(&sandbox, "v25.0");
    let account = account("any-token");
    let list = client.list_templates(&account).await.unwrap();
    assert!(list.skipped.is_empty(), "{:?}", list.skipped);
    assert_eq!(list.templates.len(), 153, "every page was followed");
    assert_eq!(
        list.find("bulk_010", "en_US").unwrap().status,
        TemplateStatus::Paused
    );
    assert_eq!(
        list.find("bulk_011", "en_US").unwrap().status,
        TemplateStatus::Approved
    );

    let invoice_template = list.find("sidecar_invoice", "en_US").unwrap();
    assert_eq!(invoice_template.id, "sandbox-tpl-0002");
    assert_eq!(invoice_template.buttons.len(), 2);
    assert_eq!(
        invoice_template.footer.as_deref(),
        Some("Reply STOP to stop these messages")
    );
    let good = invoice(
        Document::link("https://example.com/i.pdf"),
        &["Awa", "INV/1", "$ 1"],
    );
    check_params(invoice_template, &good).unwrap();
    let bad = invoice(Document::link("https://example.com/i.pdf"), &["Awa"]);
    assert!(check_params(invoice_template, &bad).is_err());
    let wrong_header = Template::new("sidecar_invoice", "en_US")
        .with_header(Parameter::Image {
            image: Image::link("https://example.com/a.png"),
        })
        .with_body_text("a")
        .with_body_text("b")
        .with_body_text("c");
    assert!(check_params(invoice_template, &wrong_header).is_err());
    // The sandbox agrees with the client's local check.
    let error = client
        .send_message(&account, &OutboundMessage::new(USER, wrong_header).unwrap())
        .await
        .unwrap_err();
    assert_eq!(error.code(), Some(132012));

    let phone = client.phone_number(&account).await.unwrap();
    assert_eq!(phone.id.as_deref(), Some(PN));
    assert_eq!(
        phone.display_phone_number.as_deref(),
        Some("+1 555 000 0001")
    );
    assert_eq!(phone.quality_rating.as_deref(), Some("GREEN"));
    assert_eq!(phone.throughput_level(), Some("HIGH"));
    sandbox.stop().await;
}

fn parse_signed(received: &Received) -> WebhookPayload {
    verify_signature(
        &Secret::new(SECRET),
        &received.body,
        received.signature.as_deref(),
    )
    .unwrap();
    assert!(verify_signature(
        &Secret::new("other"),
        &received.body,
        received.signature.as_deref()
    )
    .is_err());
    parse_webhook(&received.body).unwrap()
}

#[tokio::test]
async fn the_sandboxs_webhooks_verify_and_parse_with_the_clients_code() {
    let receiver = receiver().await;
    let mut config: SandboxConfig = fast_config();
    config.webhooks.callback_url = Some(receiver.url());
    config.undeliverable = vec!["+2250700000099".into()];
    let sandbox = start(config).await;
    let client = client(&sandbox, "v25.0");
    let account = account("any-token");

    sandbox.inject_text(USER, "Bonjour").await;
    let buttons = OutboundMessage::new(
        USER,
        ReplyButtons::new("Confirm?")
            .button("yes", "Yes")
            .button("no", "No"),
    )
    .unwrap()
    .callback_data("odoo:9")
    .unwrap();
    let sent = client.send_message(&account, &buttons).await.unwrap();
    sandbox
        .handle
        .inject(&InjectRequest {
            from: USER.into(),
            button_reply: Some(ReplyRef {
                id: "yes".into(),
                title: None,
            }),
            ..Default::default()
        })
        .unwrap();
    let failed = client
        .send_message(
            &account,
            &OutboundMessage::new("+2250700000099", Template::new("sidecar_hello", "en_US"))
                .unwrap(),
        )
        .await
        .unwrap();

    let received = receiver
        .wait_until("statuses, the failure and both inbound messages", |r| {
            let all: Vec<Value> = r.iter().flat_map(|p| p.statuses()).collect();
            all.iter().filter(|s| s["id"] == sent.wamid()).count() == 3
                && all.iter().any(|s| s["id"] == failed.wamid())
                && r.iter()
                    .filter(|p| p.json["entry"][0]["changes"][0]["value"]["messages"].is_array())
                    .count()
                    == 2
        })
        .await;

    let mut statuses = Vec::new();
    let mut inbound = Vec::new();
    for post in &received {
        let payload = parse_signed(post);
        assert_eq!(payload.object, "whatsapp_business_account");
        for entry in payload.entries {
            assert_eq!(entry.id, "sandbox-waba");
            for change in entry.changes {
                let Change::Messages(change) = change else {
                    panic!("unexpected change {change:?}")
                };
                assert!(change.unparsed.is_empty(), "{:?}", change.unparsed);
                assert_eq!(change.metadata.phone_number_id, PN);
                statuses.extend(change.statuses);
                inbound.extend(change.messages);
            }
        }
    }
    let mine: Vec<_> = statuses.iter().filter(|s| s.id == sent.wamid()).collect();
    assert_eq!(
        mine.iter().map(|s| s.status.clone()).collect::<Vec<_>>(),
        vec![
            DeliveryStatus::Sent,
            DeliveryStatus::Delivered,
            DeliveryStatus::Read
        ]
    );
    assert!(mine
        .iter()
        .all(|s| s.biz_opaque_callback_data.as_deref() == Some("odoo:9")));
    assert!(mine[0].pricing.is_some());
    let failure = statuses.iter().find(|s| s.id == failed.wamid()).unwrap();
    assert_eq!(failure.status, DeliveryStatus::Failed);
    assert_eq!(failure.errors[0].code, 131026);

    assert_eq!(inbound.len(), 2);
    assert!(matches!(&inbound[0].content, InboundContent::Text { body } if body == "Bonjour"));
    match &inbound[1].content {
        InboundContent::Interactive(InteractiveReply::ButtonReply { id, title }) => {
            assert_eq!((id.as_str(), title.as_str()), ("yes", "Yes"));
        }
        other => panic!("expected a button reply, got {other:?}"),
    }
    assert_eq!(
        inbound[1].context.as_ref().and_then(|c| c.id.as_deref()),
        Some(sent.wamid())
    );
    assert_eq!(inbound[1].from.as_deref(), Some("2250700000001"));
    sandbox.stop().await;
}
