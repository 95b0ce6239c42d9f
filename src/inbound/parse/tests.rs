use super::*;

fn at() -> DateTime<Utc> {
    DateTime::from_timestamp(1_700_000_000, 0).unwrap()
}

fn wrap(field: &str, value: &str) -> String {
    format!(
        r#"{{"object":"whatsapp_business_account","entry":[{{"id":"WABA1","changes":[{{"field":"{field}","value":{value}}}]}}]}}"#
    )
}

fn messages(msgs: &str) -> String {
    wrap(
        "messages",
        &format!(
            r#"{{"messaging_product":"whatsapp","metadata":{{"display_phone_number":"15550783881","phone_number_id":"PN1"}},
            "contacts":[{{"profile":{{"name":"Sheena"}},"wa_id":"16505551234","user_id":"US.13491208655302741918"}}],
            "messages":[{msgs}]}}"#
        ),
    )
}

fn one_message(msg: &str) -> Inbound {
    let items = items(&messages(msg), at()).unwrap();
    assert_eq!(items.len(), 1, "{items:?}");
    match items.into_iter().next().unwrap() {
        Item::Message(m) => *m,
        other => panic!("not a message: {other:?}"),
    }
}

#[test]
fn text_message_with_its_sender() {
    let m = one_message(
        r#"{"from":"16505551234","id":"wamid.T","timestamp":"1749416383","type":"text","text":{"body":"Does it come in another color?"}}"#,
    );
    assert_eq!(m.phone_number_id, "PN1");
    assert_eq!(m.wamid, "wamid.T");
    assert_eq!(m.wa_id.as_deref(), Some("16505551234"));
    assert_eq!(m.user_id.as_deref(), Some("US.13491208655302741918"));
    assert_eq!(m.profile_name.as_deref(), Some("Sheena"));
    assert_eq!(m.timestamp.timestamp(), 1_749_416_383);
    assert_eq!(m.message_type, "text");
    assert_eq!(m.body.as_deref(), Some("Does it come in another color?"));
    assert_eq!(m.typed_text, m.body);
    assert!(m.raw.contains("wamid.T"));
}

#[test]
fn button_list_and_template_replies_keep_id_and_title() {
    let m = one_message(
        r#"{"from":"5493875296587","id":"wamid.btn","timestamp":"1700000000","type":"interactive","context":{"from":"15550783881","id":"wamid.menu"},"interactive":{"type":"button_reply","button_reply":{"id":"btn_menu","title":"Ver opciones"}}}"#,
    );
    assert_eq!(m.message_type, "interactive");
    assert_eq!(m.button_payload.as_deref(), Some("btn_menu"));
    assert_eq!(m.button_title.as_deref(), Some("Ver opciones"));
    assert_eq!(m.reply_to.as_deref(), Some("wamid.menu"));
    assert_eq!(m.typed_text, None, "a chosen title is not typed text");

    let m = one_message(
        r#"{"from":"1","id":"wamid.list","timestamp":"1700000000","type":"interactive","interactive":{"type":"list_reply","list_reply":{"id":"row_2","title":"Invoices","description":"Last 3"}}}"#,
    );
    assert_eq!(m.button_payload.as_deref(), Some("row_2"));
    assert_eq!(m.button_title.as_deref(), Some("Invoices"));
    assert_eq!(m.body.as_deref(), Some("Invoices (Last 3)"));

    let m = one_message(
        r#"{"from":"1","id":"wamid.qr","timestamp":"1700000000","type":"button","button":{"payload":"PAY:42","text":"Pay now"}}"#,
    );
    assert_eq!(m.message_type, "button");
    assert_eq!(m.button_payload.as_deref(), Some("PAY:42"));
    assert_eq!(m.button_title.as_deref(), Some("Pay now"));
}

#[test]
fn media_location_reaction_and_unknown_types() {
    let m = one_message(
        r#"{"from":"1","id":"wamid.doc","timestamp":"1700000000","type":"document","document":{"id":"MEDIA9","mime_type":"application/pdf","sha256":"abc","filename":"PO-7.pdf","caption":"our order"}}"#,
    );
    assert_eq!(m.message_type, "document");
    assert_eq!(m.body.as_deref(), Some("our order"));
    let media = m.media.unwrap();
    assert_eq!(media.id, "MEDIA9");
    assert_eq!(media.filename.as_deref(), Some("PO-7.pdf"));
    assert_eq!(media.mime_type.as_deref(), Some("application/pdf"));

    let m = one_message(
        r#"{"from":"1","id":"wamid.loc","timestamp":"1700000000","type":"location","location":{"latitude":5.3,"longitude":-4.01,"name":"Shop","address":"Plateau"}}"#,
    );
    assert_eq!(m.message_type, "location");
    assert_eq!(m.body.as_deref(), Some("Shop — Plateau — (5.3, -4.01)"));

    let m = one_message(
        r#"{"from":"1","id":"wamid.r","timestamp":"1700000000","type":"reaction","reaction":{"message_id":"wamid.OUT","emoji":"👍"}}"#,
    );
    assert_eq!(m.message_type, "reaction");
    assert_eq!(m.reply_to.as_deref(), Some("wamid.OUT"));
    assert_eq!(m.body.as_deref(), Some("👍"));

    let m = one_message(
        r#"{"from":"1","id":"wamid.u","timestamp":"1700000000","type":"hologram","hologram":{"x":1}}"#,
    );
    assert_eq!(m.message_type, "unsupported");
    assert!(m.body.unwrap().contains("hologram"));

    let m = one_message(
        r#"{"from":"1","id":"wamid.u2","timestamp":"1700000000","type":"unsupported","errors":[{"code":131051,"title":"Message type unknown","error_data":{"details":"Message type is currently not supported."}}]}"#,
    );
    assert_eq!(m.message_type, "unsupported");
    assert!(m.body.unwrap().contains("Message type unknown"));
}

#[test]
fn statuses_with_callback_pricing_and_errors() {
    let body = wrap(
        "messages",
        r#"{"messaging_product":"whatsapp","metadata":{"phone_number_id":"PN1"},"statuses":[
          {"id":"wamid.S","status":"sent","timestamp":"1750857380","recipient_id":"4915112345678","biz_opaque_callback_data":"77",
           "pricing":{"pricing_model":"PMP","type":"regular","category":"utility"}},
          {"id":"wamid.S","status":"failed","timestamp":"1750857384","recipient_id":"4915112345678",
           "errors":[{"code":131047,"title":"Re-engagement message","message":"Re-engagement message",
                      "error_data":{"details":"Message failed to send because more than 24 hours have passed"}}]},
          {"id":"wamid.S","status":"deleted","timestamp":"1750857385"},
          {"id":"wamid.S","status":"read"}]}"#,
    );
    let items = items(&body, at()).unwrap();
    assert_eq!(items.len(), 4);
    let Item::Status(sent) = &items[0] else {
        panic!("{:?}", items[0])
    };
    assert_eq!(sent.status, StatusKind::Sent);
    assert_eq!(sent.callback_data.as_deref(), Some("77"));
    assert_eq!(sent.pricing_category.as_deref(), Some("utility"));
    assert_eq!(sent.timestamp.timestamp(), 1_750_857_380);
    let Item::Status(failed) = &items[1] else {
        panic!("{:?}", items[1])
    };
    let error = failed.error.as_ref().unwrap();
    assert_eq!(error.code, 131047);
    assert_eq!(error.title.as_deref(), Some("Re-engagement message"));
    assert!(error.details.as_deref().unwrap().contains("24 hours"));
    assert!(!error.help.is_empty());
    assert!(matches!(&items[2], Item::Note(n) if n.contains("deleted")));
    let Item::Status(read) = &items[3] else {
        panic!("{:?}", items[3])
    };
    assert_eq!(
        read.timestamp,
        at(),
        "a missing timestamp falls back to the arrival time"
    );
}

#[test]
fn template_and_account_updates() {
    let body = wrap(
        "message_template_status_update",
        r#"{"event":"REJECTED","message_template_id":123456789,"message_template_name":"invoice_ready","message_template_language":"en_US","reason":"INVALID_FORMAT"}"#,
    );
    let Item::Template(t) = &items(&body, at()).unwrap()[0] else {
        panic!()
    };
    assert_eq!(t.meta_template_id.as_deref(), Some("123456789"));
    assert_eq!(t.status, Some("rejected"));
    assert_eq!(t.rejected_reason.as_deref(), Some("INVALID_FORMAT"));
    assert_eq!(t.waba_id, "WABA1");

    let body = wrap(
        "message_template_status_update",
        r#"{"event":"FLAGGED","message_template_id":"5","reason":"NONE"}"#,
    );
    let Item::Template(t) = &items(&body, at()).unwrap()[0] else {
        panic!()
    };
    assert_eq!(
        (t.status, t.rejected_reason.as_deref()),
        (Some("approved"), None)
    );

    let body = wrap(
        "message_template_quality_update",
        r#"{"previous_quality_score":"GREEN","new_quality_score":"YELLOW","message_template_id":5,"message_template_name":"x","message_template_language":"fr"}"#,
    );
    let Item::Template(t) = &items(&body, at()).unwrap()[0] else {
        panic!()
    };
    assert_eq!((t.quality, t.status), (Some("yellow"), None));

    let body = wrap(
        "phone_number_quality_update",
        r#"{"display_phone_number":"+1 555-078-3881","event":"FLAGGED","current_limit":"TIER_2K"}"#,
    );
    let Item::Account(a) = &items(&body, at()).unwrap()[0] else {
        panic!()
    };
    assert_eq!(a.phone_number.as_deref(), Some("15550783881"));
    assert_eq!(a.quality_rating, Some("red"));
    assert_eq!(a.messaging_limit.as_deref(), Some("TIER_2K"));
    assert!(a.request_check);

    let body = wrap(
        "account_update",
        r#"{"phone_number":"15550783881","event":"ACCOUNT_RESTRICTION","restriction_info":[{"restriction_type":"RESTRICTED_BIZ_INITIATED_MESSAGING"}]}"#,
    );
    let Item::Account(a) = &items(&body, at()).unwrap()[0] else {
        panic!()
    };
    let problem = a.problem.as_deref().unwrap();
    assert!(
        problem.contains("ACCOUNT_RESTRICTION") && problem.contains("RESTRICTED_BIZ"),
        "{problem}"
    );

    let body = wrap("account_update", r#"{"event":"VERIFIED_ACCOUNT"}"#);
    let Item::Account(a) = &items(&body, at()).unwrap()[0] else {
        panic!()
    };
    assert_eq!((a.problem.as_deref(), a.request_check), (None, false));
}

#[test]
fn unknown_fields_notes_and_errors() {
    let body = wrap("security", r#"{"x":1}"#);
    assert!(matches!(&items(&body, at()).unwrap()[0], Item::Note(n) if n.contains("security")));
    assert!(items("not json", at()).unwrap_err().contains("not JSON"));
    assert!(items("{}", at()).unwrap_err().contains("entry"));
    let body = wrap(
        "messages",
        r#"{"metadata":{"phone_number_id":"PN1"},"errors":[{"code":131000,"title":"Something went wrong"}]}"#,
    );
    assert!(matches!(&items(&body, at()).unwrap()[0], Item::Note(n) if n.contains("131000")));
}
