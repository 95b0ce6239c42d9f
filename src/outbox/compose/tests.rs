use super::*;
use crate::outbox::gate::{ButtonParam, ParamValue};
use crate::outbox::model::Template;
use crate::whatsapp::MetaError;
use chrono::TimeZone;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap()
}

fn invoice_template() -> Template {
    Template {
        id: 7,
        name: "invoice_ready".into(),
        language: "fr".into(),
        status: "approved".into(),
        parameter_format: "positional".into(),
        header_type: "document".into(),
        components_json: Some(
            json!([
                {"type": "HEADER", "format": "DOCUMENT"},
                {"type": "BODY", "text": "Bonjour {{1}}, votre facture de {{2}} est prête."},
                {"type": "BUTTONS", "buttons": [
                    {"type": "QUICK_REPLY", "text": "Payer"},
                    {"type": "URL", "text": "Voir", "url": "https://x.test/inv/{{1}}"}
                ]}
            ])
            .to_string(),
        ),
        ..Template::default()
    }
}

fn params() -> TemplateParams {
    TemplateParams {
        header: vec![],
        // Given out of order: sent by number.
        body: vec![
            ParamValue {
                name: "2".into(),
                value: "42,00 €".into(),
            },
            ParamValue {
                name: "1".into(),
                value: "Alice".into(),
            },
        ],
        buttons: vec![
            ButtonParam {
                index: 0,
                name: "1".into(),
                value: "PAY:42".into(),
            },
            ButtonParam {
                index: 1,
                name: "1".into(),
                value: "INV-42".into(),
            },
        ],
    }
}

#[test]
fn a_template_message_is_built_and_checked() {
    let t = invoice_template();
    let p = params();
    let msg = outbound(
        55,
        "+2250700000001",
        Ready::Template {
            template: &t,
            params: &p,
            header_media: Some(MediaRef::Id("media-1".into())),
            filename: Some("INV-42.pdf"),
        },
        Some("wamid.Q"),
        Lang::En,
    )
    .unwrap();
    let body = serde_json::to_value(&msg).unwrap();
    assert_eq!(body["to"], "+2250700000001");
    assert_eq!(body["biz_opaque_callback_data"], "55");
    assert_eq!(body["context"]["message_id"], "wamid.Q");
    assert_eq!(body["type"], "template");
    let components = body["template"]["components"].as_array().unwrap();
    assert_eq!(components[0]["type"], "header");
    assert_eq!(components[0]["parameters"][0]["document"]["id"], "media-1");
    assert_eq!(
        components[0]["parameters"][0]["document"]["filename"],
        "INV-42.pdf"
    );
    assert_eq!(components[1]["parameters"][0]["text"], "Alice");
    assert_eq!(components[1]["parameters"][1]["text"], "42,00 €");
    assert_eq!(components[2]["sub_type"], "quick_reply");
    assert_eq!(components[3]["sub_type"], "url");
    assert_eq!(components[3]["parameters"][0]["text"], "INV-42");
}

#[test]
fn a_template_that_does_not_fit_fails_in_plain_words() {
    let t = invoice_template();
    let mut p = params();
    p.body.pop();
    let f = template_payload(&t, &p, Some(MediaRef::Id("m".into())), None, Lang::En).unwrap_err();
    assert_eq!(f.kind, GateKind::TemplateParams);
    assert!(
        f.help
            .starts_with("Template invoice_ready (fr) does not fit this message:"),
        "{}",
        f.help
    );

    // The document header needs its file.
    let f = template_payload(&t, &params(), None, None, Lang::En).unwrap_err();
    assert!(f.help.contains("header"), "{}", f.help);

    // Unknown button position.
    let mut p = params();
    p.buttons[1].index = 5;
    let f = template_payload(&t, &p, Some(MediaRef::Id("m".into())), None, Lang::En).unwrap_err();
    assert!(f.help.contains("no button at position 5"), "{}", f.help);

    let broken = Template {
        components_json: Some("{oops".into()),
        ..invoice_template()
    };
    let f = meta_template(&broken, Lang::En).unwrap_err();
    assert!(f.help.contains("Sync templates"));
}

#[test]
fn named_parameters_keep_their_names() {
    let t = Template {
        id: 1,
        name: "order_named".into(),
        language: "en_US".into(),
        status: "approved".into(),
        parameter_format: "named".into(),
        components_json: Some(
            json!([{"type": "BODY", "text": "Hi {{first_name}}, order {{order_ref}}"}]).to_string(),
        ),
        ..Template::default()
    };
    let p = TemplateParams {
        body: vec![
            ParamValue {
                name: "first_name".into(),
                value: "Alice".into(),
            },
            ParamValue {
                name: "order_ref".into(),
                value: "S00042".into(),
            },
        ],
        ..TemplateParams::default()
    };
    let tpl =
        serde_json::to_value(template_payload(&t, &p, None, None, Lang::En).unwrap()).unwrap();
    assert_eq!(
        tpl["components"][0]["parameters"][1]["parameter_name"],
        "order_ref"
    );
}

#[test]
fn free_form_content_is_built_with_meta_limits() {
    let msg = outbound(
        1,
        "+2250700000001",
        Ready::Text {
            body: "see https://x.test",
            preview_url: true,
        },
        None,
        Lang::En,
    )
    .unwrap();
    let v = serde_json::to_value(&msg).unwrap();
    assert_eq!(v["text"]["preview_url"], true);
    assert!(v.get("context").is_none());

    let doc = outbound(
        2,
        "+2250700000001",
        Ready::Media {
            kind: MediaKind::Document,
            media: MediaRef::Link("https://x.test/a.pdf".into()),
            caption: Some("Your invoice"),
            filename: Some("a.pdf"),
        },
        None,
        Lang::En,
    )
    .unwrap();
    let v = serde_json::to_value(&doc).unwrap();
    assert_eq!(v["document"]["link"], "https://x.test/a.pdf");
    assert_eq!(v["document"]["caption"], "Your invoice");

    let too_long = "x".repeat(4097);
    let f = outbound(
        3,
        "+2250700000001",
        Ready::Text {
            body: &too_long,
            preview_url: false,
        },
        None,
        Lang::En,
    )
    .unwrap_err();
    assert_eq!(f.kind, GateKind::BadContent);
    assert!(f.help.contains("4096"), "{}", f.help);

    let interactive = json!({"type": "button", "body": {"text": "OK?"},
        "action": {"buttons": [{"type": "reply", "reply": {"id": "yes", "title": "Yes"}}]}});
    let v = serde_json::to_value(
        outbound(
            4,
            "+2250700000001",
            Ready::Interactive(&interactive),
            None,
            Lang::En,
        )
        .unwrap(),
    )
    .unwrap();
    assert_eq!(
        v["interactive"]["action"]["buttons"][0]["reply"]["id"],
        "yes"
    );
    let f = outbound(
        5,
        "+2250700000001",
        Ready::Interactive(&json!({"type": "carousel"})),
        None,
        Lang::En,
    )
    .unwrap_err();
    assert_eq!(f.kind, GateKind::BadContent);
}

fn meta(code: i64) -> WhatsAppError {
    WhatsAppError::Meta {
        operation: "send message",
        status: 400,
        error: Box::new(MetaError::for_code(code, "details from Meta", "trace-1")),
    }
}

fn attempt(count: u32) -> Attempt {
    Attempt {
        id: 9,
        attempt_count: count,
        about: About {
            to: Some("+2250700000001".into()),
            ..About::default()
        },
    }
}

#[test]
fn throughput_and_pair_rate_errors_are_retried_with_their_effect() {
    let policy = RetryPolicy::default();
    let (outcome, effect) = after_send_error(&meta(130429), &attempt(0), &policy, now());
    assert_eq!(effect, Effect::SlowDown);
    let Outcome::Retry {
        attempt_count,
        next_attempt_at,
        error,
        ..
    } = outcome
    else {
        panic!("expected a retry, got {outcome:?}")
    };
    assert_eq!(attempt_count, 1);
    assert!(next_attempt_at >= now() + chrono::TimeDelta::seconds(2));
    assert_eq!(error.code, "130429");
    assert_eq!(error.details.as_deref(), Some("details from Meta"));
    assert!(error.raw.as_deref().unwrap().contains("trace-1"));

    let (outcome, effect) = after_send_error(&meta(131056), &attempt(1), &policy, now());
    assert_eq!(effect, Effect::HoldRecipient);
    let Outcome::Retry {
        next_attempt_at, ..
    } = outcome
    else {
        panic!("expected a retry")
    };
    // Second attempt from the 6 s hint: 12 s at least.
    assert!(next_attempt_at >= now() + chrono::TimeDelta::seconds(12));
}

#[test]
fn server_errors_are_retried_until_the_attempts_run_out() {
    let policy = RetryPolicy {
        max_attempts: 3,
        ..RetryPolicy::default()
    };
    let http = WhatsAppError::Http {
        operation: "send message",
        status: 500,
        body: "oops".into(),
    };
    let (outcome, _) = after_send_error(&http, &attempt(0), &policy, now());
    assert!(matches!(outcome, Outcome::Retry { ref error, .. } if error.code == "http_500"));
    let (outcome, _) = after_send_error(&http, &attempt(2), &policy, now());
    let Outcome::Failed { error, .. } = outcome else {
        panic!("expected a final failure")
    };
    assert!(error.help.contains("3 times"), "{}", error.help);
}

#[test]
fn account_errors_pause_the_account_and_requeue_the_message() {
    let (outcome, effect) =
        after_send_error(&meta(190), &attempt(0), &RetryPolicy::default(), now());
    assert_eq!(
        outcome,
        Outcome::Requeue {
            id: 9,
            next_attempt_at: None
        }
    );
    let Effect::PauseAccount { reason } = effect else {
        panic!("expected a pause")
    };
    assert!(reason.contains("token"), "{reason}");
}

#[test]
fn final_errors_fail_and_lost_answers_stay_unknown() {
    let (outcome, _) = after_send_error(&meta(131026), &attempt(0), &RetryPolicy::default(), now());
    assert!(matches!(outcome, Outcome::Failed { ref error, .. } if error.code == "131026"));

    let lost = WhatsAppError::Transport {
        operation: "send message",
        reason: "timed out".into(),
        timed_out: true,
        may_have_reached_meta: true,
    };
    assert_eq!(
        after_send_error(&lost, &attempt(0), &RetryPolicy::default(), now()).0,
        Outcome::Unknown { id: 9 }
    );
    let refused = WhatsAppError::Transport {
        operation: "send message",
        reason: "connection refused".into(),
        timed_out: false,
        may_have_reached_meta: false,
    };
    let (outcome, _) = after_send_error(&refused, &attempt(0), &RetryPolicy::default(), now());
    assert!(matches!(outcome, Outcome::Retry { .. }));
}

#[test]
fn a_french_users_failure_is_explained_in_french() {
    let french = Attempt {
        about: About {
            lang: Lang::Fr,
            ..attempt(0).about
        },
        ..attempt(0)
    };
    let (outcome, _) = after_send_error(&meta(131026), &french, &RetryPolicy::default(), now());
    let Outcome::Failed { error, .. } = outcome else {
        panic!("expected a final failure")
    };
    assert!(
        error
            .help
            .starts_with("Le numéro ne peut pas recevoir ce message"),
        "{}",
        error.help
    );
    assert!(error.help.contains("Meta indique : details from Meta"));
    // Running out of attempts says so in French too.
    let policy = RetryPolicy {
        max_attempts: 1,
        ..RetryPolicy::default()
    };
    let (outcome, _) = after_send_error(&meta(131000), &french, &policy, now());
    let Outcome::Failed { error, .. } = outcome else {
        panic!("expected a final failure")
    };
    assert!(error.help.contains("1 fois"), "{}", error.help);
    assert!(error.help.contains("Meta a eu une erreur interne"));

    let mut p = params();
    p.body.pop();
    let t = invoice_template();
    let f = template_payload(&t, &p, Some(MediaRef::Id("m".into())), None, Lang::Fr).unwrap_err();
    assert!(
        f.help
            .starts_with("Le modèle invoice_ready (fr) ne convient pas à ce message :"),
        "{}",
        f.help
    );
}

#[test]
fn the_rendered_text_is_what_the_customer_reads() {
    let t = Template {
        components_json: Some(
            json!([
                {"type": "HEADER", "format": "TEXT", "text": "Order {{1}}"},
                {"type": "BODY", "text": "Hello {{1}}, your order of {{2}} is ready. {{3}}"},
                {"type": "FOOTER", "text": "Thanks"}
            ])
            .to_string(),
        ),
        header_type: "text".into(),
        ..invoice_template()
    };
    let p = TemplateParams {
        header: vec![ParamValue {
            name: "1".into(),
            value: "S00021".into(),
        }],
        body: vec![
            ParamValue {
                name: "2".into(),
                value: "42,00 €".into(),
            },
            ParamValue {
                name: "1".into(),
                value: "Awa".into(),
            },
        ],
        buttons: vec![],
    };
    assert_eq!(
        rendered_text(&t, &p).as_deref(),
        Some("Order S00021\n\nHello Awa, your order of 42,00 € is ready. {{3}}")
    );
    // Named parameters, and a document header (no text).
    let named = Template {
        parameter_format: "named".into(),
        components_json: Some(
            json!([
                {"type": "HEADER", "format": "DOCUMENT"},
                {"type": "BODY", "text": "Dear {{customer}}, invoice {{number}} is attached."}
            ])
            .to_string(),
        ),
        ..invoice_template()
    };
    let p = TemplateParams {
        body: vec![
            ParamValue {
                name: "number".into(),
                value: "INV/42".into(),
            },
            ParamValue {
                name: "customer".into(),
                value: "Awa".into(),
            },
        ],
        ..TemplateParams::default()
    };
    assert_eq!(
        rendered_text(&named, &p).as_deref(),
        Some("Dear Awa, invoice INV/42 is attached.")
    );
    // No synced text: nothing to show.
    let bare = Template {
        components_json: None,
        ..invoice_template()
    };
    assert_eq!(rendered_text(&bare, &TemplateParams::default()), None);
}
