//! Webhook parsing on realistic payloads of every type (fixtures in
//! `tests/fixtures/whatsapp/`), and on odd JSON.

use super::*;
use crate::whatsapp::error::Disposition;

macro_rules! fixture {
    ($name:literal) => {
        include_str!(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/whatsapp/",
            $name
        ))
    };
}

const FIXTURES: &[(&str, &str)] = &[
    ("inbound_text.json", fixture!("inbound_text.json")),
    ("inbound_media.json", fixture!("inbound_media.json")),
    (
        "inbound_interactive.json",
        fixture!("inbound_interactive.json"),
    ),
    ("inbound_button.json", fixture!("inbound_button.json")),
    ("inbound_misc.json", fixture!("inbound_misc.json")),
    ("statuses.json", fixture!("statuses.json")),
    ("value_errors.json", fixture!("value_errors.json")),
    (
        "template_status_update.json",
        fixture!("template_status_update.json"),
    ),
    (
        "template_quality_update.json",
        fixture!("template_quality_update.json"),
    ),
    (
        "phone_number_quality_update.json",
        fixture!("phone_number_quality_update.json"),
    ),
    ("account_update.json", fixture!("account_update.json")),
    ("batched.json", fixture!("batched.json")),
];

fn parse(s: &str) -> WebhookPayload {
    parse_webhook(s.as_bytes()).unwrap()
}

fn only_messages_change(p: &WebhookPayload) -> &MessagesChange {
    let all: Vec<_> = p.messages_changes().collect();
    assert_eq!(all.len(), 1);
    all[0]
}

#[test]
fn text_message_with_contact_bsuid_and_reply_context() {
    let p = parse(fixture!("inbound_text.json"));
    assert_eq!(p.object, "whatsapp_business_account");
    assert_eq!(p.entries[0].id, "102290129340398");
    let c = only_messages_change(&p);
    assert_eq!(c.metadata.phone_number_id, "106540352242922");
    assert_eq!(c.metadata.display_phone_number, "15550783881");
    assert!(c.unparsed.is_empty());
    let m = &c.messages[0];
    assert_eq!(
        m.content,
        InboundContent::Text {
            body: "Does it come in another color?".into()
        }
    );
    assert_eq!(m.from.as_deref(), Some("16505551234"));
    assert_eq!(m.from_user_id.as_deref(), Some("US.13491208655302741918"));
    assert_eq!(m.timestamp, Some(1_749_416_383));
    let ctx = m.context.as_ref().unwrap();
    assert_eq!(ctx.from.as_deref(), Some("15550783881"));
    assert!(ctx.id.as_deref().unwrap().starts_with("wamid."));
    let contact = c.contact_of(m).unwrap();
    assert_eq!(
        contact.profile.as_ref().unwrap().name.as_deref(),
        Some("Sheena")
    );
    assert_eq!(contact.user_id.as_deref(), Some("US.13491208655302741918"));
    assert_eq!(m.text(), Some("Does it come in another color?"));
    assert_eq!(m.action_id(), None);
}

#[test]
fn every_media_type() {
    let p = parse(fixture!("inbound_media.json"));
    let c = only_messages_change(&p);
    assert_eq!(c.messages.len(), 5);
    match &c.messages[0].content {
        InboundContent::Image(m) => {
            assert_eq!(m.id, "1003383421387256");
            assert_eq!(m.caption.as_deref(), Some("Front view"));
            assert_eq!(m.mime_type.as_deref(), Some("image/jpeg"));
            assert_eq!(m.sha256.as_deref().map(str::len), Some(64));
        }
        other => panic!("not an image: {other:?}"),
    }
    match &c.messages[1].content {
        InboundContent::Document(m) => {
            assert_eq!(m.filename.as_deref(), Some("contract.pdf"));
            assert_eq!(m.caption.as_deref(), Some("Signed"));
        }
        other => panic!("not a document: {other:?}"),
    }
    match &c.messages[2].content {
        InboundContent::Audio(m) => assert_eq!(m.voice, Some(true)),
        other => panic!("not audio: {other:?}"),
    }
    match &c.messages[3].content {
        InboundContent::Video(m) => assert_eq!(m.caption.as_deref(), Some("Unboxing")),
        other => panic!("not video: {other:?}"),
    }
    match &c.messages[4].content {
        InboundContent::Sticker(m) => assert_eq!(m.animated, Some(false)),
        other => panic!("not a sticker: {other:?}"),
    }
    assert_eq!(c.messages[0].text(), Some("Front view"));
    let kinds: Vec<&str> = c.messages.iter().map(InboundMessage::kind).collect();
    assert_eq!(kinds, ["image", "document", "audio", "video", "sticker"]);
}

#[test]
fn interactive_replies() {
    let p = parse(fixture!("inbound_interactive.json"));
    let c = only_messages_change(&p);
    assert_eq!(
        c.messages[0].content,
        InboundContent::Interactive(InteractiveReply::ButtonReply {
            id: "btn_menu".into(),
            title: "Ver opciones".into()
        })
    );
    assert_eq!(c.messages[0].action_id(), Some("btn_menu"));
    assert_eq!(
        c.messages[0].context.as_ref().unwrap().id.as_deref(),
        Some("wamid.MENU")
    );
    assert_eq!(
        c.messages[1].content,
        InboundContent::Interactive(InteractiveReply::ListReply {
            id: "trk".into(),
            title: "Track order".into(),
            description: Some("Where is my parcel?".into())
        })
    );
    assert_eq!(c.messages[1].action_id(), Some("trk"));
    assert_eq!(c.messages[1].text(), Some("Track order"));
    match &c.messages[2].content {
        InboundContent::Interactive(InteractiveReply::NfmReply { response_json, .. }) => {
            let v: Value = serde_json::from_str(response_json.as_deref().unwrap()).unwrap();
            assert_eq!(v["rating"], "5");
        }
        other => panic!("not nfm: {other:?}"),
    }
    match &c.messages[3].content {
        InboundContent::Interactive(InteractiveReply::Other { kind, raw }) => {
            assert_eq!(kind, "call_permission_reply");
            assert_eq!(raw["call_permission_reply"]["response"], "accept");
        }
        other => panic!("not other: {other:?}"),
    }
}

#[test]
fn template_quick_reply_button() {
    let p = parse(fixture!("inbound_button.json"));
    let (meta, m) = p.messages().next().unwrap();
    assert_eq!(meta.phone_number_id, "106540352242922");
    assert_eq!(
        m.content,
        InboundContent::Button {
            payload: Some("PAY:42".into()),
            text: Some("Pay now".into())
        }
    );
    assert_eq!(m.action_id(), Some("PAY:42"));
    assert_eq!(m.text(), Some("Pay now"));
    assert_eq!(
        m.context.as_ref().unwrap().id.as_deref(),
        Some("wamid.TEMPLATE42")
    );
}

#[test]
fn reactions_location_contacts_unsupported_system_and_others() {
    let p = parse(fixture!("inbound_misc.json"));
    assert_eq!(p.entries[0].time, Some(1_750_000_100));
    let c = only_messages_change(&p);
    assert!(c.unparsed.is_empty(), "{:?}", c.unparsed);
    let by_id = |id: &str| c.messages.iter().find(|m| m.id == id).unwrap();
    assert_eq!(
        by_id("wamid.R1").content,
        InboundContent::Reaction {
            message_id: "wamid.OUT7".into(),
            emoji: "👍".into()
        }
    );
    assert_eq!(
        by_id("wamid.R2").content,
        InboundContent::Reaction {
            message_id: "wamid.OUT7".into(),
            emoji: String::new()
        }
    );
    match &by_id("wamid.L1").content {
        InboundContent::Location(l) => {
            assert!((l.latitude - 5.3364).abs() < 1e-9);
            assert!((l.longitude + 4.0267).abs() < 1e-9);
            assert_eq!(l.name.as_deref(), Some("Plateau"));
        }
        other => panic!("{other:?}"),
    }
    match &by_id("wamid.C1").content {
        InboundContent::Contacts(cards) => {
            assert_eq!(cards[0]["name"]["formatted_name"], "John Smith")
        }
        other => panic!("{other:?}"),
    }
    let u = by_id("wamid.U1");
    assert_eq!(u.content, InboundContent::Unsupported { kind: None });
    assert_eq!(u.errors[0].code, 131051);
    assert_eq!(u.errors[0].disposition(), Disposition::Never);
    assert_eq!(
        by_id("wamid.S1").content,
        InboundContent::System(SystemEvent {
            body: Some("User A changed from 4915112345678 to 4915187654321".into()),
            kind: Some("user_changed_number".into()),
            new_wa_id: Some("4915187654321".into()),
        })
    );
    assert_eq!(by_id("wamid.W1").content, InboundContent::RequestWelcome);
    let ad = by_id("wamid.AD1");
    assert_eq!(ad.referral.as_ref().unwrap()["source_type"], "ad");
    let fwd = by_id("wamid.FWD").context.clone().unwrap();
    assert!(fwd.forwarded && fwd.frequently_forwarded);
    match &by_id("wamid.O1").content {
        InboundContent::Order(o) => assert_eq!(o["catalog_id"], "77"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        by_id("wamid.X1").content,
        InboundContent::Other {
            kind: "hologram".into(),
            content: Some(json!({"depth": 3}))
        }
    );
    assert_eq!(by_id("wamid.X1").kind(), "hologram");
}

#[test]
fn statuses_with_pricing_errors_and_callback_data() {
    let p = parse(fixture!("statuses.json"));
    let statuses: Vec<&MessageStatus> = p.statuses().map(|(_, s)| s).collect();
    assert_eq!(statuses.len(), 6);
    let sent = statuses[0];
    assert_eq!(sent.status, DeliveryStatus::Sent);
    assert_eq!(
        sent.biz_opaque_callback_data.as_deref(),
        Some("odoo-msg-41")
    );
    assert_eq!(sent.timestamp, Some(1_750_857_380));
    let conv = sent.conversation.as_ref().unwrap();
    assert_eq!(conv.expiration_timestamp, Some(1_750_943_780));
    assert_eq!(
        conv.origin.as_ref().unwrap().kind.as_deref(),
        Some("utility")
    );
    let pricing = sent.pricing.as_ref().unwrap();
    assert_eq!(pricing.pricing_model.as_deref(), Some("PMP"));
    assert_eq!(pricing.category.as_deref(), Some("utility"));
    assert_eq!(pricing.kind.as_deref(), Some("regular"));
    assert_eq!(pricing.billable, Some(true));
    assert_eq!(statuses[1].status, DeliveryStatus::Delivered);
    assert_eq!(
        statuses[1].pricing.as_ref().unwrap().kind.as_deref(),
        Some("free_customer_service")
    );
    assert_eq!(statuses[2].status, DeliveryStatus::Read);
    assert_eq!(
        statuses[2].recipient_user_id.as_deref(),
        Some("DE.1234567890")
    );
    assert!(statuses[0].status.rank() < statuses[1].status.rank());
    assert!(statuses[1].status.rank() < statuses[2].status.rank());

    let failed = statuses[3];
    assert_eq!(failed.status, DeliveryStatus::Failed);
    assert_eq!(failed.status.rank(), None);
    assert_eq!(failed.biz_opaque_callback_data.as_deref(), Some("job-77"));
    assert_eq!(failed.errors[0].code, 131047);
    assert!(failed.errors[0].details().unwrap().contains("24 hours"));
    assert!(failed.errors[0].help().contains("template"));
    assert_eq!(statuses[4].status, DeliveryStatus::Other("deleted".into()));
    assert_eq!(statuses[5].recipient_type.as_deref(), Some("group"));
    assert_eq!(
        statuses[5].recipient_participant_id.as_deref(),
        Some("4915112345678")
    );
}

#[test]
fn system_level_errors_without_statuses() {
    let p = parse(fixture!("value_errors.json"));
    let c = only_messages_change(&p);
    assert!(c.statuses.is_empty() && c.messages.is_empty());
    assert_eq!(c.errors[0].code, 131000);
    assert_eq!(c.errors[0].disposition(), Disposition::RetryNow);
}

#[test]
fn template_status_updates() {
    let p = parse(fixture!("template_status_update.json"));
    let updates: Vec<&TemplateStatusUpdate> = p
        .changes()
        .map(|c| match c {
            Change::TemplateStatus(t) => t,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(updates.len(), 5);
    assert_eq!(updates[0].event, TemplateStatus::Approved);
    assert_eq!(updates[0].message_template_id.as_deref(), Some("123456789"));
    assert_eq!(
        updates[0].message_template_name.as_deref(),
        Some("invoice_ready")
    );
    assert_eq!(
        updates[0].message_template_language.as_deref(),
        Some("en_US")
    );
    assert_eq!(
        updates[0].message_template_category,
        Some(TemplateCategory::Utility)
    );
    assert_eq!(updates[1].event, TemplateStatus::Rejected);
    assert_eq!(updates[1].reason.as_deref(), Some("INVALID_FORMAT"));
    assert!(updates[1].extra["rejection_info"]["reason"]
        .as_str()
        .unwrap()
        .contains("too many variables"));
    assert_eq!(updates[2].event, TemplateStatus::Flagged);
    assert_eq!(updates[2].message_template_id.as_deref(), Some("123456791"));
    assert_eq!(updates[2].reason, None);
    assert_eq!(
        updates[2].extra["disable_info"]["disable_date"],
        "1760600000"
    );
    assert_eq!(updates[3].event, TemplateStatus::Paused);
    assert_eq!(updates[3].extra["other_info"]["title"], "FIRST_PAUSE");
    assert_eq!(updates[4].event, TemplateStatus::Other("REINSTATED".into()));
}

#[test]
fn template_quality_update() {
    let p = parse(fixture!("template_quality_update.json"));
    let first = p.changes().next().unwrap();
    match first {
        Change::TemplateQuality(q) => {
            assert_eq!(q.previous_quality_score.as_deref(), Some("GREEN"));
            assert_eq!(q.new_quality_score.as_deref(), Some("YELLOW"));
            assert_eq!(q.message_template_id.as_deref(), Some("123456789"));
            assert_eq!(q.message_template_name.as_deref(), Some("invoice_ready"));
        }
        other => panic!("{other:?}"),
    };
}

#[test]
fn phone_number_quality_updates() {
    let p = parse(fixture!("phone_number_quality_update.json"));
    let all: Vec<&PhoneNumberQualityUpdate> = p
        .changes()
        .map(|c| match c {
            Change::PhoneNumberQuality(q) => q,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(all[0].event.as_deref(), Some("FLAGGED"));
    assert_eq!(all[0].current_limit.as_deref(), Some("TIER_10K"));
    assert_eq!(all[1].event.as_deref(), Some("THROUGHPUT_UPGRADE"));
    assert_eq!(
        all[1].max_daily_conversations_per_business,
        Some(json!("TIER_100K"))
    );
    assert_eq!(all[1].extra["old_limit"], "TIER_10K");
}

#[test]
fn account_updates() {
    let p = parse(fixture!("account_update.json"));
    let all: Vec<&AccountUpdate> = p
        .changes()
        .map(|c| match c {
            Change::Account(a) => a,
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(all[0].event.as_deref(), Some("ACCOUNT_RESTRICTION"));
    assert_eq!(all[0].phone_number.as_deref(), Some("15550783881"));
    assert_eq!(
        all[0].extra["restriction_info"][0]["restriction_type"],
        "RESTRICTED_BIZ_INITIATED_MESSAGING"
    );
    assert_eq!(all[1].event.as_deref(), Some("ACCOUNT_VIOLATION"));
    assert_eq!(all[1].phone_number, None);
}

#[test]
fn batched_entries_changes_and_unknown_fields() {
    let p = parse(fixture!("batched.json"));
    assert_eq!(p.entries.len(), 2);
    let msgs: Vec<(&str, &str)> = p
        .messages()
        .map(|(meta, m)| (meta.phone_number_id.as_str(), m.id.as_str()))
        .collect();
    assert_eq!(
        msgs,
        [
            ("106540352242922", "wamid.B1"),
            ("106540352242922", "wamid.B2"),
            ("200000000000001", "wamid.B3")
        ]
    );
    assert_eq!(p.statuses().count(), 1);
    let fields: Vec<&str> = p.changes().map(Change::field).collect();
    assert_eq!(
        fields,
        [
            "messages",
            "messages",
            "business_capability_update",
            "messages",
            "security"
        ]
    );
    match &p.entries[0].changes[2] {
        Change::BusinessCapability(b) => {
            assert_eq!(b.max_daily_conversation_per_phone, Some(1000));
            assert_eq!(b.max_phone_numbers_per_business, Some(2));
            assert_eq!(
                b.max_daily_conversations_per_business,
                Some(json!("TIER_2K"))
            );
        }
        other => panic!("{other:?}"),
    }
    match &p.entries[1].changes[1] {
        Change::Other(o) => {
            assert_eq!(o.field, "security");
            assert_eq!(o.value["event"], "PIN_CHANGED");
            assert_eq!(o.problem, None);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn every_fixture_round_trips_through_serialization() {
    for (name, body) in FIXTURES {
        let p = parse(body);
        let again = parse_webhook_value(&p.to_json()).unwrap();
        assert_eq!(again, p, "{name}");
        // and serde's Serialize gives the same JSON
        assert_eq!(serde_json::to_value(&p).unwrap(), p.to_json(), "{name}");
    }
}

#[test]
fn building_an_inbound_webhook_like_the_sandbox_would() {
    let change = MessagesChange {
        messaging_product: Some("whatsapp".into()),
        metadata: Metadata {
            display_phone_number: "15550001111".into(),
            phone_number_id: "sandbox-0001".into(),
        },
        contacts: vec![Contact {
            profile: Some(Profile {
                name: Some("Test".into()),
            }),
            wa_id: Some("2250700000001".into()),
            user_id: None,
        }],
        messages: vec![InboundMessage {
            id: "wamid.SANDBOX1".into(),
            from: Some("2250700000001".into()),
            from_user_id: None,
            timestamp: Some(1_760_000_000),
            context: None,
            referral: None,
            errors: vec![],
            content: InboundContent::Interactive(InteractiveReply::ButtonReply {
                id: "order_validate:42".into(),
                title: "Validate".into(),
            }),
        }],
        ..Default::default()
    };
    let p = WebhookPayload::single("sandbox-waba", Some(1_760_000_000), change);
    let v = p.to_json();
    assert_eq!(
        v["entry"][0]["changes"][0]["value"]["messages"][0],
        json!({"from": "2250700000001", "id": "wamid.SANDBOX1", "timestamp": "1760000000",
               "type": "interactive",
               "interactive": {"type": "button_reply", "button_reply": {"id": "order_validate:42", "title": "Validate"}}})
    );
    assert_eq!(v["entry"][0]["changes"][0]["field"], "messages");
    assert_eq!(parse_webhook_value(&v).unwrap(), p);
}

#[test]
fn malformed_items_are_kept_not_dropped() {
    let body = json!({"object": "whatsapp_business_account", "entry": [
        {"id": "1", "changes": [{"field": "messages", "value": {
            "metadata": {"display_phone_number": 15550783881_u64, "phone_number_id": 106540352242922_u64},
            "contacts": ["nope"],
            "messages": [
                {"from": "1", "type": "text", "text": {"body": "no id"}},
                {"id": "wamid.ok", "type": "text", "text": "not an object"},
                {"id": "wamid.img", "type": "image", "image": {"caption": "no id"}},
                {"id": "wamid.loc", "type": "location", "location": {"latitude": "x"}},
                {"id": "wamid.r", "type": "reaction", "reaction": {}},
                {"id": "wamid.notype"},
                42
            ],
            "statuses": [{"id": "wamid.s"}, {"status": "sent"}, {"id": 7, "status": "read", "errors": ["weird", {"code": "131026"}]}],
            "errors": "not a list"
        }}]},
        {"id": "2"},
        "entry as string",
        {"id": "3", "changes": [
            "change as string",
            {"value": {}},
            {"field": "messages", "value": "string value"},
            {"field": "message_template_status_update", "value": {"event": ["x"], "message_template_id": {}}},
            {"field": "account_update", "value": {"event": {"nested": true}}}
        ]}
    ]});
    let p = parse_webhook_value(&body).unwrap();
    let c = match &p.entries[0].changes[0] {
        Change::Messages(c) => c,
        other => panic!("{other:?}"),
    };
    // numbers where strings belong are read as strings
    assert_eq!(c.metadata.phone_number_id, "106540352242922");
    let ids: Vec<&str> = c.messages.iter().map(|m| m.id.as_str()).collect();
    assert_eq!(
        ids,
        [
            "wamid.ok",
            "wamid.img",
            "wamid.loc",
            "wamid.r",
            "wamid.notype"
        ]
    );
    for m in &c.messages {
        assert!(
            matches!(m.content, InboundContent::Other { .. }),
            "{} should be Other: {:?}",
            m.id,
            m.content
        );
    }
    let problems: Vec<(&str, &str)> = c
        .unparsed
        .iter()
        .map(|u| (u.what, u.problem.as_str()))
        .collect();
    assert_eq!(problems.len(), 5, "{problems:?}");
    assert!(problems.contains(&("message", "the message has no 'id'")));
    assert!(problems.contains(&("message", "the message is not an object")));
    assert!(problems.contains(&("status", "the status has no 'status'")));
    assert!(problems.contains(&("status", "the status has no 'id'")));
    assert!(problems.iter().any(|(w, _)| *w == "contact"));
    assert_eq!(c.statuses.len(), 1);
    assert_eq!(c.statuses[0].id, "7");
    assert_eq!(c.statuses[0].errors.len(), 2);
    assert_eq!(c.statuses[0].errors[0].code, -1);
    assert_eq!(c.statuses[0].errors[1].code, 131026);
    assert_eq!(c.errors.len(), 1);
    assert_eq!(c.errors[0].code, -1);
    assert!(c.errors[0].message.contains("not a list"));

    // entry without changes, entry as string: kept as Other with the reason
    for e in &p.entries[1..3] {
        match &e.changes[0] {
            Change::Other(o) => assert!(o.problem.as_deref().unwrap().contains("no 'changes'")),
            other => panic!("{other:?}"),
        }
    }
    let odd = &p.entries[3].changes;
    assert_eq!(odd.len(), 5);
    for ch in odd {
        match ch {
            Change::Other(o) => assert!(o.problem.is_some(), "{o:?}"),
            Change::TemplateStatus(t) => {
                // a non-string event is kept as Other, the unreadable id is dropped to None
                assert_eq!(t.event, TemplateStatus::Other("[\"x\"]".into()));
                assert_eq!(t.message_template_id, None);
            }
            Change::Account(a) => assert_eq!(a.event, None),
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn top_level_errors() {
    assert!(matches!(
        parse_webhook(b"not json"),
        Err(WebhookParseError::Json(_))
    ));
    assert_eq!(parse_webhook(b"[1,2]"), Err(WebhookParseError::NotAnObject));
    assert_eq!(parse_webhook(b"\"x\""), Err(WebhookParseError::NotAnObject));
    assert_eq!(parse_webhook(b"{}"), Err(WebhookParseError::NoEntries));
    assert_eq!(
        parse_webhook(br#"{"object":"page","entry":{}}"#),
        Err(WebhookParseError::NoEntries)
    );
    let deep = "[".repeat(10_000);
    assert!(matches!(
        parse_webhook(deep.as_bytes()),
        Err(WebhookParseError::Json(_))
    ));
    // empty entry list is a valid, empty webhook
    let p = parse_webhook(br#"{"object":"whatsapp_business_account","entry":[]}"#).unwrap();
    assert!(p.entries.is_empty());
}

/// Replaces each node of each fixture in turn with odd values and parses the result: nothing
/// may panic, and whatever parses still serializes.
#[test]
fn fuzz_fixture_mutations_never_panic() {
    fn paths(v: &Value, prefix: Vec<PathStep>, out: &mut Vec<Vec<PathStep>>) {
        out.push(prefix.clone());
        match v {
            Value::Object(m) => {
                for (k, child) in m {
                    let mut p = prefix.clone();
                    p.push(PathStep::Key(k.clone()));
                    paths(child, p, out);
                }
            }
            Value::Array(a) => {
                for (i, child) in a.iter().enumerate() {
                    let mut p = prefix.clone();
                    p.push(PathStep::Index(i));
                    paths(child, p, out);
                }
            }
            _ => {}
        }
    }
    #[derive(Clone)]
    enum PathStep {
        Key(String),
        Index(usize),
    }
    fn get_mut<'a>(v: &'a mut Value, path: &[PathStep]) -> Option<&'a mut Value> {
        let mut cur = v;
        for step in path {
            cur = match step {
                PathStep::Key(k) => cur.get_mut(k.as_str())?,
                PathStep::Index(i) => cur.get_mut(*i)?,
            };
        }
        Some(cur)
    }
    let odd = [
        Value::Null,
        json!(0),
        json!(-1.5e300),
        json!(""),
        json!("x"),
        json!([]),
        json!({}),
        json!(true),
        json!([{"type": "text"}]),
        json!(u64::MAX),
    ];
    let mut parsed = 0usize;
    for (name, body) in FIXTURES {
        let original: Value = serde_json::from_str(body).unwrap();
        let mut all = Vec::new();
        paths(&original, Vec::new(), &mut all);
        for path in &all {
            for replacement in &odd {
                let mut v = original.clone();
                if let Some(slot) = get_mut(&mut v, path) {
                    *slot = replacement.clone();
                }
                if let Ok(p) = parse_webhook_value(&v) {
                    parsed += 1;
                    let _ = p.to_json();
                    for (_, m) in p.messages() {
                        let _ = (m.action_id(), m.text(), m.kind());
                    }
                }
            }
        }
        // truncated bodies are JSON errors, never panics
        for cut in (0..body.len()).step_by(7) {
            if body.is_char_boundary(cut) {
                let _ = parse_webhook(&body.as_bytes()[..cut]);
            }
        }
        assert!(parsed > 0, "{name}");
    }
}

#[test]
fn fuzz_random_bytes_and_random_json_never_panic() {
    let mut rng = fastrand::Rng::with_seed(0x5eed);
    for _ in 0..2_000 {
        let len = rng.usize(0..200);
        let bytes: Vec<u8> = (0..len).map(|_| rng.u8(..)).collect();
        let _ = parse_webhook(&bytes);
    }
    fn random_value(rng: &mut fastrand::Rng, depth: u32) -> Value {
        let keys = [
            "object",
            "entry",
            "changes",
            "field",
            "value",
            "messages",
            "statuses",
            "id",
            "type",
            "text",
            "interactive",
            "button_reply",
            "list_reply",
            "errors",
            "code",
            "metadata",
            "contacts",
            "timestamp",
            "status",
            "event",
            "reaction",
            "location",
            "button",
        ];
        match if depth == 0 {
            rng.u8(0..4)
        } else {
            rng.u8(0..6)
        } {
            0 => Value::Null,
            1 => json!(rng.i64(..)),
            2 => json!(keys[rng.usize(..keys.len())]),
            3 => json!(rng.bool()),
            4 => Value::Array(
                (0..rng.usize(0..4))
                    .map(|_| random_value(rng, depth - 1))
                    .collect(),
            ),
            _ => {
                let mut m = Map::new();
                for _ in 0..rng.usize(0..5) {
                    m.insert(
                        keys[rng.usize(..keys.len())].to_string(),
                        random_value(rng, depth - 1),
                    );
                }
                Value::Object(m)
            }
        }
    }
    for _ in 0..5_000 {
        let mut v = random_value(&mut rng, 6);
        if rng.bool() {
            v = json!({"object": "whatsapp_business_account", "entry": [v]});
        }
        if let Ok(p) = parse_webhook_value(&v) {
            let _ = p.to_json();
        }
    }
}
