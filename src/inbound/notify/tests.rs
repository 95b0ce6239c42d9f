use super::*;
use crate::inbound::model::Inbound;
use crate::inbound::plan::ConversationRow;
use chrono::TimeZone;

fn at(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_750_000_000 + secs, 0).single().unwrap()
}

fn message(wamid: &str, kind: &'static str, body: Option<&str>, secs: i64) -> Inbound {
    Inbound {
        phone_number_id: "PN1".into(),
        wamid: wamid.into(),
        wa_id: Some("33612345678".into()),
        user_id: None,
        profile_name: Some("Cami".into()),
        timestamp: at(secs),
        message_type: kind,
        body: body.map(Into::into),
        media: None,
        reply_to: None,
        button_payload: None,
        button_title: None,
        typed_text: (kind == "text").then(|| body.unwrap_or("").to_owned()),
        raw: "{}".into(),
    }
}

fn account(mode: Mode, responsible: Option<i64>) -> AccountRow {
    AccountRow {
        id: 7,
        name: "Main".into(),
        company_id: Some(1),
        phone_number_id: Some("PN1".into()),
        waba_id: Some("WABA1".into()),
        display_phone_number: Some("+1 555 0100".into()),
        opt_out_keywords: None,
        opt_out_confirmation: None,
        inbound_notification: mode,
        responsible_user_id: responsible,
    }
}

fn routed<'a>(inbound: &'a Inbound, account: &'a AccountRow) -> Routed<'a> {
    Routed {
        event_id: 1,
        inbound,
        account,
        new: true,
    }
}

fn contact(salesperson: Option<i64>) -> Contact {
    Contact {
        id: 44,
        name: "Camille Martin".into(),
        user_id: salesperson,
        lang: Some("fr_FR".into()),
    }
}

fn user(id: i64, lang: &str) -> User {
    User {
        id,
        partner_id: Some(id + 100),
        lang: Some(lang.into()),
        tz: Some("Europe/Paris".into()),
    }
}

fn conversation() -> ConversationRow {
    ConversationRow {
        id: 3,
        account_id: 7,
        wa_id: Some("33612345678".into()),
        user_id: None,
        partner_id: Some(44),
        profile_name: Some("Cami".into()),
        last_inbound_at: None,
        last_notified_at: None,
    }
}

fn models(name: &str) -> Option<ModelInfo> {
    match name {
        "res.partner" | "sale.order" => Some(ModelInfo {
            id: 85,
            thread: true,
            activities: true,
        }),
        _ => None,
    }
}

const NOBODY_OPTED_OUT: &dyn Fn(&Routed<'_>) -> bool = &|_| false;

#[test]
fn the_salesperson_is_told_else_the_accounts_responsible_else_nobody() {
    let users = HashMap::from([(5, user(5, "fr_FR")), (9, user(9, "en_US"))]);
    let m = message("w1", "text", Some("Bonjour"), 0);
    let with_responsible = account(Mode::Activity, Some(9));
    let without = account(Mode::Activity, None);
    let r = routed(&m, &with_responsible);
    let mine = [&r];
    let due_for = |account: &AccountRow, contact: Option<&Contact>| {
        let r = routed(&m, account);
        due(
            account,
            contact,
            None,
            &[&r],
            NOBODY_OPTED_OUT,
            &users,
            at(0),
        )
    };
    assert_eq!(
        due_for(&with_responsible, Some(&contact(Some(5)))),
        Due::User(5)
    );
    assert_eq!(
        due_for(&with_responsible, Some(&contact(None))),
        Due::User(9)
    );
    assert_eq!(due_for(&with_responsible, None), Due::User(9));
    assert_eq!(due_for(&without, Some(&contact(None))), Due::Nobody);
    // A salesperson who is not an active internal user (not among those read) is skipped.
    assert_eq!(
        due_for(&with_responsible, Some(&contact(Some(6)))),
        Due::User(9)
    );
    assert_eq!(due_for(&without, Some(&contact(Some(6)))), Due::Nobody);
    assert_eq!(
        candidates(&with_responsible, Some(&contact(Some(5)))),
        vec![5, 9]
    );
    // Notifications off: nobody, and nothing to look up.
    let off = account(Mode::None, Some(9));
    assert_eq!(due_for(&off, Some(&contact(Some(5)))), Due::No);
    assert!(!wants_notice(&off, None, &mine, NOBODY_OPTED_OUT, at(0)));
}

#[test]
fn a_conversation_tells_someone_at_most_once_an_hour() {
    let users = HashMap::from([(5, user(5, "en_US"))]);
    let acc = account(Mode::Activity, Some(5));
    let m = message("w1", "text", Some("Hello"), 0);
    let r = routed(&m, &acc);
    let last = Some(at(0));
    let due_at = |now: i64| due(&acc, None, last, &[&r], NOBODY_OPTED_OUT, &users, at(now));
    assert_eq!(due_at(0), Due::No);
    assert_eq!(due_at(59 * 60 + 59), Due::No);
    assert_eq!(due_at(3600), Due::User(5));
    assert_eq!(
        due(&acc, None, None, &[&r], NOBODY_OPTED_OUT, &users, at(0)),
        Due::User(5),
        "never told before"
    );
    // A message already recorded (processed again) tells nobody.
    let again = Routed {
        new: false,
        ..r.clone()
    };
    assert_eq!(
        due(&acc, None, None, &[&again], NOBODY_OPTED_OUT, &users, at(0)),
        Due::No
    );
}

#[test]
fn reactions_opt_outs_and_system_messages_tell_nobody_and_only_the_first_two_are_noted() {
    let users = HashMap::from([(5, user(5, "en_US"))]);
    let acc = account(Mode::Activity, Some(5));
    let reaction = message("w1", "reaction", Some("👍"), 0);
    let stop = message("w2", "text", Some("STOP"), 0);
    let system = message("w3", "system", Some("number changed"), 0);
    let image = message("w4", "image", None, 0);
    let rr = routed(&reaction, &acc);
    let rs = routed(&stop, &acc);
    let ry = routed(&system, &acc);
    let ri = routed(&image, &acc);
    let is_stop = |r: &Routed<'_>| r.inbound.wamid == "w2";
    assert_eq!(
        due(&acc, None, None, &[&rr, &rs, &ry], &is_stop, &users, at(0)),
        Due::No
    );
    assert_eq!(
        due(
            &acc,
            None,
            None,
            &[&rr, &rs, &ry, &ri],
            &is_stop,
            &users,
            at(0)
        ),
        Due::User(5)
    );
    assert_eq!(
        subject_of(&[&ri, &rr, &rs], &is_stop).map(|r| r.inbound.wamid.as_str()),
        Some("w4")
    );
    assert!(worth_a_note("reaction") && worth_a_note("text") && !worth_a_note("system"));
    assert!(!worth_a_note("request_welcome"));
}

#[test]
fn button_and_list_presses_are_noted_but_tell_nobody() {
    let users = HashMap::from([(5, user(5, "en_US"))]);
    let acc = account(Mode::Activity, Some(5));
    let reply = message("w1", "interactive", Some("Validate"), 0);
    let quick = message("w2", "button", Some("Yes"), 0);
    let text = message("w3", "text", Some("Hello"), 0);
    let (r1, r2, r3) = (
        routed(&reply, &acc),
        routed(&quick, &acc),
        routed(&text, &acc),
    );
    assert_eq!(
        due(
            &acc,
            None,
            None,
            &[&r1, &r2],
            NOBODY_OPTED_OUT,
            &users,
            at(0)
        ),
        Due::No
    );
    assert_eq!(
        due(
            &acc,
            None,
            None,
            &[&r1, &r2, &r3],
            NOBODY_OPTED_OUT,
            &users,
            at(0)
        ),
        Due::User(5)
    );
    assert!(worth_a_note("interactive") && worth_a_note("button"));
    assert!(!calls_for_reply("interactive") && !calls_for_reply("button"));
    assert!(calls_for_reply("text") && calls_for_reply("image"));
}

#[test]
fn the_note_says_who_wrote_to_which_account_about_what_in_escaped_html() {
    let acc = account(Mode::Activity, None);
    let m = message(
        "w1",
        "text",
        Some("Is <b>S00021</b> ready?\nThanks & bye"),
        0,
    );
    let r = routed(&m, &acc);
    let c = contact(None);
    let conv = conversation();
    let order = Record::new("sale.order", 21);
    let w = Written {
        routed: &r,
        conversation: Some(&conv),
        contact: Some(&c),
        answers: Some((&order, "S00021")),
        opted_out: false,
    };
    assert_eq!(
        note_html(&w, Lang::En),
        "<p>WhatsApp message from Camille Martin (+33612345678) to Main (+1 555 0100), in reply \
         to S00021:</p><p>“Is &lt;b&gt;S00021&lt;/b&gt; ready?<br>Thanks &amp; \
         bye”</p><p><a href=\"/web#id=3&amp;model=whatsapp.conversation&amp;\
         view_type=form\" data-oe-model=\"whatsapp.conversation\" data-oe-id=\"3\">Open the \
         conversation</a></p>"
    );
    let fr = note_html(&w, Lang::Fr);
    assert!(
        fr.starts_with(
            "<p>Message WhatsApp de Camille Martin (+33612345678) vers Main (+1 555 0100), en \
             réponse à S00021 :</p>"
        ),
        "{fr}"
    );
    assert!(fr.contains(">Ouvrir la conversation</a>"), "{fr}");

    // A file: what it is, and its caption.
    let mut doc = message("w2", "document", Some("Signed quote"), 0);
    doc.wa_id = None;
    doc.user_id = Some("FR.123".into());
    let r = routed(&doc, &acc);
    let w = Written {
        routed: &r,
        conversation: None,
        contact: None,
        answers: None,
        opted_out: false,
    };
    assert_eq!(
        note_html(&w, Lang::Fr),
        "<p>Message WhatsApp de Cami (FR.123) vers Main (+1 555 0100) :</p><p><i>un \
         document</i> : « Signed quote »</p>"
    );
}

#[test]
fn notes_go_on_the_contact_and_the_document_answered_else_on_a_conversation_with_a_chatter() {
    let acc = account(Mode::Activity, None);
    let m1 = message("w1", "text", Some("Hello"), 0);
    let mut m2 = message("w2", "text", Some("Who is this?"), 0);
    m2.wa_id = Some("447000000001".into());
    let system = message("w3", "system", Some("changed number"), 0);
    let r1 = routed(&m1, &acc);
    let r2 = routed(&m2, &acc);
    let r3 = routed(&system, &acc);
    let c = contact(None);
    let known = conversation();
    let unknown = ConversationRow {
        id: 4,
        partner_id: None,
        wa_id: Some("447000000001".into()),
        ..conversation()
    };
    let order = Record::new("sale.order", 21);
    let invoice = Record::new("account.move", 8);
    let written = [
        Written {
            routed: &r1,
            conversation: Some(&known),
            contact: Some(&c),
            answers: Some((&order, "S00021")),
            opted_out: false,
        },
        Written {
            routed: &r2,
            conversation: Some(&unknown),
            contact: None,
            answers: Some((&invoice, "INV/8")),
            opted_out: false,
        },
        Written {
            routed: &r3,
            conversation: Some(&known),
            contact: Some(&c),
            answers: None,
            opted_out: false,
        },
    ];
    let english = |_: &AccountRow| Lang::En;
    // Conversations have no chatter; invoices are not threads here (say, not installed).
    let thread = |m: &str| matches!(m, "res.partner" | "sale.order");
    let found: Vec<(String, i64, Option<i64>)> = notes(&written, &english, &thread)
        .into_iter()
        .map(|n| (n.record.model, n.record.id, n.author_id))
        .collect();
    assert_eq!(
        found,
        [
            ("res.partner".to_owned(), 44, Some(44)),
            ("sale.order".to_owned(), 21, Some(44)),
        ]
    );
    let with_chatter = |m: &str| m != "account.move";
    let found: Vec<(String, i64)> = notes(&written, &english, &with_chatter)
        .into_iter()
        .map(|n| (n.record.model, n.record.id))
        .collect();
    assert_eq!(
        found,
        [
            ("res.partner".to_owned(), 44),
            ("sale.order".to_owned(), 21),
            ("whatsapp.conversation".to_owned(), 4),
        ]
    );
    let values = note_values(&notes(&written[..1], &english, &thread)[0], 2);
    assert_eq!(values["model"], "res.partner");
    assert_eq!(values["message_type"], "comment");
    assert_eq!(values["subtype_id"], 2);
    assert_eq!(values["author_id"], 44);
}

#[test]
fn an_activity_in_the_users_language_on_the_order_answered_else_the_contact() {
    let acc = account(Mode::Activity, None);
    let m = message("w1", "image", Some("the parcel"), 0);
    let r = routed(&m, &acc);
    let c = contact(Some(5));
    let conv = conversation();
    let order = Record::new("sale.order", 21);
    let mut w = Written {
        routed: &r,
        conversation: Some(&conv),
        contact: Some(&c),
        answers: Some((&order, "S00021")),
        opted_out: false,
    };
    let french = user(5, "fr_FR");
    let told = notice(&w, &french, Mode::Activity, &models).unwrap();
    let Notice::Activity {
        record,
        user_id,
        tz,
        summary,
        note,
    } = &told
    else {
        panic!("{told:?}");
    };
    assert_eq!(record, &order);
    assert_eq!(*user_id, 5);
    assert_eq!(tz.as_deref(), Some("Europe/Paris"));
    assert_eq!(summary, "Répondre sur WhatsApp à Camille Martin");
    assert!(
        note.contains("<p><i>une image</i> : « the parcel »</p>")
            && note.contains("en réponse à S00021"),
        "{note}"
    );
    let v = activity_values(&told, 491, Some(4)).unwrap();
    assert_eq!(
        Value::Object(v),
        json!({"res_model_id": 491, "res_id": 21, "activity_type_id": 4,
               "summary": "Répondre sur WhatsApp à Camille Martin", "note": note,
               "user_id": 5, "automated": true})
    );

    w.answers = None;
    let english = user(5, "en_US");
    match notice(&w, &english, Mode::Activity, &models) {
        Some(Notice::Activity {
            record, summary, ..
        }) => {
            assert_eq!(record, Record::new("res.partner", 44));
            assert_eq!(summary, "Reply on WhatsApp to Camille Martin");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn without_anything_that_has_activities_the_user_gets_a_discuss_message() {
    let acc = account(Mode::Activity, Some(5));
    let m = message("w1", "text", Some("Hello, who is this?"), 0);
    let r = routed(&m, &acc);
    let conv = ConversationRow {
        partner_id: None,
        ..conversation()
    };
    let w = Written {
        routed: &r,
        conversation: Some(&conv),
        contact: None,
        answers: None,
        opted_out: false,
    };
    let n = notice(&w, &user(5, "en_US"), Mode::Activity, &models).unwrap();
    assert_eq!(
        n,
        Notice::Message {
            record: Record::new("whatsapp.conversation", 3),
            record_name: "Cami (+33612345678)".into(),
            partner_id: 105,
            subject: "WhatsApp message from Cami".into(),
            body: "Cami (+33612345678) wrote on WhatsApp to Main (+1 555 0100): “Hello, who is \
                   this?”. Reply from WhatsApp > Conversations."
                .into(),
        }
    );
    let kwargs = message_kwargs(&n).unwrap();
    assert_eq!(
        Value::Object(kwargs),
        json!({"model": "whatsapp.conversation", "res_id": 3, "record_name": "Cami (+33612345678)",
               "partner_ids": [105], "subject": "WhatsApp message from Cami",
               "body": "Cami (+33612345678) wrote on WhatsApp to Main (+1 555 0100): “Hello, who is this?”. Reply from WhatsApp > Conversations.",
               "notify_author": true})
    );
    // A user without a partner cannot get one.
    let mut lonely = user(5, "en_US");
    lonely.partner_id = None;
    assert_eq!(notice(&w, &lonely, Mode::Activity, &models), None);
}

#[test]
fn a_discuss_message_in_french_about_the_contact_quotes_at_most_500_characters() {
    let acc = account(Mode::Message, None);
    let long = "é".repeat(600);
    let m = message("w1", "text", Some(&long), 0);
    let r = routed(&m, &acc);
    let c = contact(Some(5));
    let conv = conversation();
    let w = Written {
        routed: &r,
        conversation: Some(&conv),
        contact: Some(&c),
        answers: None,
        opted_out: false,
    };
    match notice(&w, &user(5, "fr_FR"), Mode::Message, &models) {
        Some(Notice::Message {
            record,
            record_name,
            subject,
            body,
            ..
        }) => {
            assert_eq!(record, Record::new("res.partner", 44));
            assert_eq!(record_name, "Camille Martin");
            assert_eq!(subject, "Message WhatsApp de Camille Martin");
            assert!(
                body.starts_with(
                    "Camille Martin (+33612345678) a écrit sur WhatsApp à Main (+1 555 0100) : « "
                ),
                "{body}"
            );
            assert!(
                body.ends_with(&format!(
                    "{}… ». Répondez depuis WhatsApp > Conversations.",
                    "é".repeat(500)
                )),
                "{body}"
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(notice(&w, &user(5, "fr_FR"), Mode::None, &models), None);
}

#[test]
fn an_opt_out_note_says_the_contact_is_opted_out() {
    let acc = account(Mode::Activity, None);
    let m = message("w1", "text", Some("STOP"), 0);
    let r = routed(&m, &acc);
    let c = contact(None);
    let w = Written {
        routed: &r,
        conversation: None,
        contact: Some(&c),
        answers: None,
        opted_out: true,
    };
    assert!(note_html(&w, Lang::En).contains("the contact is opted out"));
    assert!(note_html(&w, Lang::Fr).contains("le contact est désinscrit"));
    assert_eq!(Mode::from_odoo(Some("message")), Mode::Message);
    assert_eq!(Mode::from_odoo(Some("none")), Mode::None);
    assert_eq!(Mode::from_odoo(None), Mode::Activity);
}
