use super::*;
use crate::inbound::model::{MessageState, StatusKind};
use chrono::TimeZone;

fn at(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_750_000_000 + secs, 0).single().unwrap()
}

fn status(wamid: &str, kind: StatusKind, secs: i64, callback: Option<&str>) -> Item {
    Item::Status(StatusUpdate {
        wamid: wamid.into(),
        status: kind,
        timestamp: at(secs),
        recipient_id: None,
        recipient_user_id: None,
        callback_data: callback.map(Into::into),
        pricing_category: None,
        error: None,
    })
}

fn event(id: i64, items: Vec<Item>) -> ParsedEvent {
    ParsedEvent {
        id,
        received_at: at(0),
        items,
        error: None,
    }
}

fn row(id: i64, wamid: Option<&str>, state: MessageState) -> MessageRow {
    MessageRow {
        id,
        state: Some(state),
        inbound: false,
        wamid: wamid.map(Into::into),
        callback_data: Some(id.to_string()),
        wa_id: Some("1".into()),
        sent_at: None,
        delivered_at: None,
        read_at: None,
        failed_at: None,
        pricing_category: None,
    }
}

fn inbound(wamid: &str, wa_id: Option<&str>, text: &str, secs: i64) -> Inbound {
    Inbound {
        phone_number_id: "PN1".into(),
        wamid: wamid.into(),
        wa_id: wa_id.map(Into::into),
        user_id: None,
        profile_name: Some("Ama".into()),
        timestamp: at(secs),
        message_type: "text",
        body: Some(text.into()),
        media: None,
        reply_to: None,
        button_payload: None,
        button_title: None,
        typed_text: Some(text.into()),
        raw: "{}".into(),
    }
}

fn account(id: i64, phone: &str) -> AccountRow {
    AccountRow {
        id,
        name: "Main".into(),
        company_id: Some(1),
        phone_number_id: Some(phone.into()),
        waba_id: Some("WABA1".into()),
        display_phone_number: Some("+1 555 0100".into()),
        opt_out_keywords: None,
        opt_out_confirmation: None,
        inbound_notification: Mode::Activity,
        responsible_user_id: None,
    }
}

#[test]
fn a_failure_wins_over_waiting_which_wins_over_done() {
    let events = vec![event(1, vec![]), event(2, vec![]), event(3, vec![])];
    let mut o = Outcomes::new(&events);
    o.wait(2, "a".into());
    o.wait(2, "b".into());
    o.wait(2, "a".into());
    o.wait(3, "x".into());
    o.fail(3, "broken".into());
    o.wait(3, "later".into());
    assert_eq!(o.get(1), Some(&Outcome::Done));
    assert_eq!(o.get(2), Some(&Outcome::Pending("a; b".into())));
    assert_eq!(o.get(3), Some(&Outcome::Failed("broken".into())));

    let mut other = Outcomes::default();
    other.fail(1, "bad".into());
    other.wait(4, "w".into());
    o.absorb(other);
    assert_eq!(o.get(1), Some(&Outcome::Failed("bad".into())));
    assert_eq!(o.get(4), Some(&Outcome::Pending("w".into())));
}

#[test]
fn unreadable_bodies_fail_their_event() {
    let rows = vec![
        EventRow {
            id: 1,
            raw_body: "nope".into(),
            received_at: at(0),
            processing_error: None,
        },
        EventRow {
            id: 2,
            raw_body: r#"{"entry":[]}"#.into(),
            received_at: at(0),
            processing_error: None,
        },
    ];
    let events = parse_events(&rows);
    let o = Outcomes::new(&events);
    assert!(matches!(o.get(1), Some(Outcome::Failed(e)) if e.contains("not JSON")));
    assert_eq!(o.get(2), Some(&Outcome::Done));
}

#[test]
fn waiting_events_are_given_up_only_after_the_delay() {
    let events = vec![event(1, vec![])];
    let give_up = Duration::hours(24);
    let mut o = Outcomes::new(&events);
    o.wait(1, "unknown wamid.X".into());
    o.give_up_stale(&events, at(0) + Duration::hours(23), give_up);
    assert!(matches!(o.get(1), Some(Outcome::Pending(_))));
    o.give_up_stale(&events, at(0) + Duration::hours(24), give_up);
    match o.get(1) {
        Some(Outcome::Failed(e)) => assert!(e.contains("24 h") && e.contains("wamid.X"), "{e}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn statuses_of_one_message_across_events_become_one_write_and_unknown_ones_wait() {
    let events = vec![
        event(1, vec![status("wamid.A", StatusKind::Sent, 1, None)]),
        event(
            2,
            vec![
                status("wamid.A", StatusKind::Read, 3, None),
                status("wamid.B", StatusKind::Delivered, 2, None),
            ],
        ),
        event(3, vec![status("wamid.A", StatusKind::Delivered, 2, None)]),
        // The crash-safety case: no wamid on the record yet, the callback names it.
        event(4, vec![status("wamid.C", StatusKind::Sent, 1, Some("30"))]),
    ];
    let rows = vec![
        row(10, Some("wamid.A"), MessageState::Sent),
        row(30, None, MessageState::Sending),
    ];
    let lookup = message_lookup(&events);
    assert_eq!(lookup.wamids, vec!["wamid.A", "wamid.B", "wamid.C"]);
    assert_eq!(lookup.callback_data, vec!["30"]);
    assert_eq!(lookup.ids, vec![30]);

    let mut o = Outcomes::new(&events);
    let plan = plan_statuses(&events, &rows, &|_, _| false, &mut o);
    assert_eq!(plan.statuses, 5);
    assert_eq!(plan.updates.len(), 2);
    let (id, a) = &plan.updates[0];
    assert_eq!(*id, 10);
    assert_eq!(a["state"], "read");
    assert_eq!(a["sent_at"], "2025-06-15 15:06:41");
    assert_eq!(a["delivered_at"], "2025-06-15 15:06:42");
    assert_eq!(a["read_at"], "2025-06-15 15:06:43");
    let (id, c) = &plan.updates[1];
    assert_eq!(*id, 30);
    assert_eq!(
        (c["wamid"].as_str(), c["state"].as_str()),
        (Some("wamid.C"), Some("sent"))
    );
    assert_eq!(o.get(1), Some(&Outcome::Done));
    assert!(matches!(o.get(2), Some(Outcome::Pending(r)) if r.contains("wamid.B")));
    assert_eq!(o.get(4), Some(&Outcome::Done));
    // 30's send result never reached Odoo: its status proves it sent (its document's
    // indicator is set by inbound processing); 10's result is there.
    assert_eq!(plan.proven_sent, vec![30]);
}

#[test]
fn only_a_status_moving_a_message_awaiting_its_result_to_sent_or_further_proves_it_sent() {
    let events = vec![
        event(
            1,
            vec![status("wamid.F", StatusKind::Failed, 1, Some("31"))],
        ),
        event(
            2,
            vec![status("wamid.D", StatusKind::Delivered, 1, Some("32"))],
        ),
        event(3, vec![status("wamid.R", StatusKind::Read, 1, Some("33"))]),
    ];
    let rows = vec![
        row(31, None, MessageState::Sending),
        row(32, None, MessageState::Sending),
        row(33, Some("wamid.R"), MessageState::Sending),
    ];
    let mut o = Outcomes::new(&events);
    let plan = plan_statuses(&events, &rows, &|_, _| false, &mut o);
    assert_eq!(plan.updates.len(), 3);
    assert_eq!(plan.proven_sent, vec![32]);
}

#[test]
fn inbound_routing_by_phone_number_id_and_dedupe() {
    let a = inbound("wamid.1", Some("2250700000001"), "hi", 1);
    let mut other_number = inbound("wamid.2", Some("2250700000001"), "hi", 2);
    other_number.phone_number_id = "UNKNOWN".into();
    let events = vec![
        event(1, vec![Item::Message(Box::new(a.clone()))]),
        event(
            2,
            vec![
                Item::Message(Box::new(a.clone())),
                Item::Message(Box::new(other_number)),
            ],
        ),
        event(
            3,
            vec![Item::Message(Box::new(inbound(
                "wamid.3",
                Some("1"),
                "x",
                3,
            )))],
        ),
    ];
    let accounts = vec![account(7, "PN1")];
    let mut known = row(99, Some("wamid.3"), MessageState::Received);
    known.inbound = true;
    let mut o = Outcomes::new(&events);
    let routed = route_inbound(&events, &accounts, &[known], &mut o);
    assert_eq!(routed.len(), 2, "the repeated wamid.1 is kept once");
    assert!(routed[0].new && routed[0].account.id == 7);
    assert!(!routed[1].new, "wamid.3 exists already");
    match o.get(2) {
        Some(Outcome::Failed(e)) => {
            assert!(
                e.contains("UNKNOWN") && e.contains("'Process again'"),
                "{e}"
            )
        }
        other => panic!("{other:?}"),
    }
}

fn routed<'a>(inbound: &'a Inbound, account: &'a AccountRow) -> Routed<'a> {
    Routed {
        event_id: 5,
        inbound,
        account,
        new: true,
    }
}

#[test]
fn first_contact_creates_one_conversation_with_its_window() {
    let acc = account(7, "PN1");
    let m1 = inbound("w1", Some("2250700000001"), "a", 10);
    let mut m2 = inbound("w2", Some("2250700000001"), "b", 20);
    m2.user_id = Some("CI.abc".into());
    let m3 = inbound("w3", None, "c", 5);
    let r = vec![routed(&m1, &acc), routed(&m2, &acc), routed(&m3, &acc)];
    let new = new_conversations(&r, &[]);
    assert_eq!(new.len(), 1, "{new:?}");
    assert_eq!(new[0].user_id.as_deref(), Some("CI.abc"));
    let v = new[0].values(Some(44), latest_inbound(&r, &new[0]), None);
    assert_eq!(v["account_id"], 7);
    assert_eq!(v["partner_id"], 44);
    assert_eq!(v["wa_id"], "2250700000001");
    assert_eq!(v["last_inbound_at"], "2025-06-15 15:07:00");
    assert_eq!(v["window_expires_at"], "2025-06-16 15:07:00");
    assert!(!v.contains_key("last_notified_at"));
    let v = new[0].values(None, None, Some(at(30)));
    assert_eq!(v["last_notified_at"], "2025-06-15 15:07:10");
}

#[test]
fn existing_conversations_move_forward_only_and_get_missing_links() {
    let acc = account(7, "PN1");
    let conv = ConversationRow {
        id: 3,
        account_id: 7,
        wa_id: Some("2250700000001".into()),
        user_id: None,
        partner_id: None,
        profile_name: Some("Ama".into()),
        last_inbound_at: Some(at(100)),
        last_notified_at: None,
    };
    let mut late = inbound("w1", Some("2250700000001"), "a", 200);
    late.user_id = Some("CI.x".into());
    late.profile_name = Some("Ama K.".into());
    let partners = HashMap::from([(3, 44)]);
    let updates = conversation_updates(
        &[routed(&late, &acc)],
        std::slice::from_ref(&conv),
        &partners,
        &HashSet::new(),
        at(300),
    );
    assert_eq!(updates.len(), 1);
    let v = &updates[0].1;
    assert_eq!(v["last_inbound_at"], "2025-06-15 15:10:00");
    assert_eq!(v["window_expires_at"], "2025-06-16 15:10:00");
    assert_eq!(v["profile_name"], "Ama K.");
    assert_eq!(v["user_id"], "CI.x");
    assert_eq!(v["partner_id"], 44);

    let old = inbound("w0", Some("2250700000001"), "a", 50);
    let updates = conversation_updates(
        &[routed(&old, &acc)],
        std::slice::from_ref(&conv),
        &HashMap::new(),
        &HashSet::new(),
        at(300),
    );
    assert!(
        updates.is_empty(),
        "an older message changes nothing: {updates:?}"
    );
    // One that tells someone now records when, in the same write.
    let updates = conversation_updates(
        &[routed(&old, &acc)],
        &[conv],
        &HashMap::new(),
        &HashSet::from([3]),
        at(300),
    );
    assert_eq!(updates.len(), 1);
    assert_eq!(
        updates[0].1,
        json!({"last_notified_at": "2025-06-15 15:11:40"})
            .as_object()
            .cloned()
            .unwrap()
    );
}

#[test]
fn received_message_values() {
    let acc = account(7, "PN1");
    let mut m = inbound("wamid.IN", Some("2250700000001"), "hello", 0);
    m.reply_to = Some("wamid.OUT".into());
    let conv = ConversationRow {
        id: 3,
        account_id: 7,
        wa_id: Some("2250700000001".into()),
        user_id: None,
        partner_id: Some(44),
        profile_name: None,
        last_inbound_at: None,
        last_notified_at: None,
    };
    let v = message_values(&routed(&m, &acc), Some(&conv));
    for (key, value) in [
        ("direction", json!("in")),
        ("state", json!("received")),
        ("message_type", json!("text")),
        ("account_id", json!(7)),
        ("company_id", json!(1)),
        ("conversation_id", json!(3)),
        ("partner_id", json!(44)),
        ("wamid", json!("wamid.IN")),
        ("wa_id", json!("2250700000001")),
        ("body", json!("hello")),
        ("reply_to_wamid", json!("wamid.OUT")),
        ("received_at", json!("2025-06-15 15:06:40")),
        ("webhook_event_id", json!(5)),
    ] {
        assert_eq!(v[key], value, "{key}");
    }
}

#[test]
fn opt_out_keywords_follow_the_account_and_queue_one_confirmation() {
    let mut acc = account(7, "PN1");
    acc.opt_out_confirmation = Some("Bye".into());
    let mut spanish = account(8, "PN2");
    spanish.opt_out_keywords = Some("BAJA".into());
    let stop = inbound("wamid.S", Some("2250700000001"), " Stop ", 0);
    let mut baja = inbound("wamid.B", Some("34600000000"), "baja", 0);
    baja.phone_number_id = "PN2".into();
    let mut stop_to_spanish = inbound("wamid.X", Some("34600000000"), "STOP", 0);
    stop_to_spanish.phone_number_id = "PN2".into();
    let hello = inbound("wamid.H", Some("2250700000001"), "hello", 0);
    let conv = ConversationRow {
        id: 3,
        account_id: 7,
        wa_id: Some("2250700000001".into()),
        user_id: None,
        partner_id: Some(44),
        profile_name: None,
        last_inbound_at: None,
        last_notified_at: None,
    };
    let r = vec![
        routed(&stop, &acc),
        routed(&baja, &spanish),
        routed(&stop_to_spanish, &spanish),
        routed(&hello, &acc),
    ];
    let found = opt_outs(&r, &[conv], &|_, _| None);
    assert_eq!(found.len(), 2, "{found:?}");
    let first = &found[0];
    assert_eq!(
        (first.partner_id, first.conversation_id),
        (Some(44), Some(3))
    );
    assert_eq!(first.dedupe_key(), "opt_out:wamid.S");
    let p = first.partner_values();
    assert_eq!(p["whatsapp_opt_in"], false);
    assert_eq!(p["whatsapp_opt_out_date"], "2025-06-15 15:06:40");
    let c = first.confirmation_values().unwrap();
    assert_eq!(c["body"], "Bye");
    assert_eq!(c["state"], "queued");
    assert_eq!(c["direction"], "out");
    assert_eq!(c["trigger"], "opt_out");
    assert_eq!(c["to_number"], "+2250700000001");
    assert_eq!(c["dedupe_key"], "opt_out:wamid.S");
    assert_eq!(found[1].partner_id, None);
    assert_eq!(
        found[1].confirmation_values().unwrap()["body"],
        DEFAULT_CONFIRMATION
    );

    let mut username_only = found[1].clone();
    username_only.wa_id = None;
    assert_eq!(username_only.confirmation_values(), None);
}

#[test]
fn opt_out_confirmations_follow_the_customers_language_one_read_per_language() {
    let mut acc = account(7, "PN1");
    acc.opt_out_confirmation = Some(optout::DEFAULT_CONFIRMATION.into());
    let mut other = account(8, "PN2");
    other.opt_out_confirmation = Some("Bye from Other".into());
    let fr1 = inbound("wamid.F1", Some("33600000001"), "stop", 0);
    let fr2 = inbound("wamid.F2", Some("33600000002"), "ARRÊT", 0);
    let en = inbound("wamid.E", Some("44700000003"), "STOP", 0);
    let mut fr3 = inbound("wamid.F3", Some("33600000004"), "stop", 0);
    fr3.phone_number_id = "PN2".into();
    let conv = |id: i64, account_id: i64, wa_id: &str, partner: i64| ConversationRow {
        id,
        account_id,
        wa_id: Some(wa_id.into()),
        user_id: None,
        partner_id: Some(partner),
        profile_name: None,
        last_inbound_at: None,
        last_notified_at: None,
    };
    let conversations = [
        conv(1, 7, "33600000001", 41),
        conv(2, 7, "33600000002", 42),
        conv(3, 7, "44700000003", 43),
        conv(4, 8, "33600000004", 44),
    ];
    let r = vec![
        routed(&fr1, &acc),
        routed(&fr2, &acc),
        routed(&en, &acc),
        routed(&fr3, &other),
    ];
    let lang = |partner: Option<i64>, _: &AccountRow| match partner {
        Some(43) => Some("en_US".to_owned()),
        Some(42) => Some("fr_BE".to_owned()),
        _ => Some("fr_FR".to_owned()),
    };
    let mut found = opt_outs(&r, &conversations, &lang);
    assert_eq!(found.len(), 4);
    // Before the translations are read: the English text, in French words when it is the
    // untranslated default.
    assert_eq!(
        found[0].confirmation,
        "Vous ne recevrez plus de messages WhatsApp de notre part."
    );
    assert_eq!(found[2].confirmation, optout::DEFAULT_CONFIRMATION);
    assert_eq!(found[3].confirmation, "Bye from Other");
    // English is read with the accounts; each other language once, for its accounts.
    let langs = confirmation_languages(&found);
    assert_eq!(
        langs,
        BTreeMap::from([
            ("fr_BE".to_owned(), vec![7]),
            ("fr_FR".to_owned(), vec![7, 8]),
        ])
    );
    let translated = HashMap::from([
        (
            (7, "fr_FR".to_owned()),
            Some("Désinscrit, au revoir.".to_owned()),
        ),
        (
            (7, "fr_BE".to_owned()),
            Some(optout::DEFAULT_CONFIRMATION.to_owned()),
        ),
        (
            (8, "fr_FR".to_owned()),
            Some("Au revoir de Other".to_owned()),
        ),
    ]);
    localise(&mut found, &translated);
    let bodies: Vec<&str> = found.iter().map(|o| o.confirmation.as_str()).collect();
    assert_eq!(
        bodies,
        [
            "Désinscrit, au revoir.",
            "Vous ne recevrez plus de messages WhatsApp de notre part.",
            optout::DEFAULT_CONFIRMATION,
            "Au revoir de Other",
        ]
    );
}

#[test]
fn event_errors_are_written_in_the_readers_language() {
    let events = vec![event(
        1,
        vec![Item::Message(Box::new({
            let mut m = inbound("wamid.U", Some("1"), "x", 0);
            m.phone_number_id = "UNKNOWN".into();
            m
        }))],
    )];
    let mut o = Outcomes::new(&events).in_lang(Lang::Fr);
    route_inbound(&events, &[account(7, "PN1")], &[], &mut o);
    match o.get(1) {
        Some(Outcome::Failed(e)) => assert!(
            e.starts_with("aucun compte WhatsApp") && e.contains("« Traiter à nouveau »"),
            "{e}"
        ),
        other => panic!("{other:?}"),
    }
    let waiting = vec![event(2, vec![status("wamid.Z", StatusKind::Read, 0, None)])];
    let mut o = Outcomes::new(&waiting).in_lang(Lang::Fr);
    plan_statuses(&waiting, &[], &|_, _| false, &mut o);
    match o.get(2) {
        Some(Outcome::Pending(e)) => assert!(e.contains("qu'Odoo ne connaît pas encore"), "{e}"),
        other => panic!("{other:?}"),
    }
    o.give_up_stale(&waiting, at(0) + Duration::hours(30), Duration::hours(24));
    match o.get(2) {
        Some(Outcome::Failed(e)) => assert!(e.starts_with("abandon après 24 h"), "{e}"),
        other => panic!("{other:?}"),
    }
    assert_eq!(
        pending_prefix(Lang::Fr),
        "En attente (réessayé automatiquement) : "
    );
}

#[test]
fn template_updates_by_meta_id_else_name_and_language_else_a_sync() {
    let accounts = vec![account(7, "PN1")];
    let templates = vec![
        TemplateRow {
            id: 1,
            account_id: Some(7),
            meta_template_id: Some("111".into()),
            name: "a".into(),
            language: "en_US".into(),
        },
        TemplateRow {
            id: 2,
            account_id: Some(7),
            meta_template_id: None,
            name: "b".into(),
            language: "fr".into(),
        },
        TemplateRow {
            id: 3,
            account_id: Some(99),
            meta_template_id: None,
            name: "b".into(),
            language: "fr".into(),
        },
    ];
    let change = |id: Option<&str>,
                  name: &str,
                  status: Option<&'static str>,
                  quality: Option<&'static str>| TemplateChange {
        waba_id: "WABA1".into(),
        meta_template_id: id.map(Into::into),
        name: Some(name.into()),
        language: Some("fr".into()),
        status,
        rejected_reason: None,
        quality,
        event: "test".into(),
    };
    let c1 = change(Some("111"), "a", Some("paused"), None);
    let c2 = change(Some("222"), "b", None, Some("red"));
    let c3 = change(Some("333"), "c", Some("approved"), None);
    let plan = plan_templates(&[&c1, &c2, &c3], &templates, &accounts);
    assert_eq!(plan.updates.len(), 2);
    assert_eq!(plan.updates[0].0, 1);
    assert_eq!(plan.updates[0].1["status"], "paused");
    assert_eq!(plan.updates[0].1["rejected_reason"], false);
    assert_eq!(plan.updates[1].0, 2, "template 3 belongs to another WABA");
    assert_eq!(plan.updates[1].1["quality_rating"], "red");
    assert_eq!(plan.updates[1].1["meta_template_id"], "222");
    assert_eq!(plan.sync_accounts, vec![7]);
    assert!(plan.notes[0].contains("c"));
}

#[test]
fn account_updates_target_the_number_else_the_whole_waba() {
    let mut a = account(7, "PN1");
    a.display_phone_number = Some("+1 555-078-3881".into());
    let b = account(8, "PN2");
    let change = |phone: Option<&str>| AccountChange {
        waba_id: "WABA1".into(),
        phone_number: phone.map(Into::into),
        quality_rating: Some("red"),
        messaging_limit: Some("TIER_2K".into()),
        problem: Some("restricted".into()),
        request_check: true,
        event: "e".into(),
    };
    let accounts = vec![a, b];
    let one = change(Some("15550783881"));
    let (writes, notes) = plan_accounts(&[&one], &accounts);
    assert!(notes.is_empty());
    assert_eq!(writes.len(), 1);
    assert_eq!(writes[0].0, 7);
    let v = &writes[0].1;
    assert_eq!(
        (v["quality_rating"].as_str(), v["messaging_limit"].as_str()),
        (Some("red"), Some("TIER_2K"))
    );
    assert_eq!(
        (v["last_check_ok"].as_bool(), v["check_requested"].as_bool()),
        (Some(false), Some(true))
    );
    let all = change(None);
    assert_eq!(plan_accounts(&[&all], &accounts).0.len(), 2);
    let mut elsewhere = change(None);
    elsewhere.waba_id = "OTHER".into();
    let (writes, notes) = plan_accounts(&[&elsewhere], &accounts);
    assert!(writes.is_empty() && notes[0].contains("OTHER"));
}

fn never(_: i64, _: Defer) -> bool {
    false
}

fn always(_: i64, _: Defer) -> bool {
    true
}

/// Plans `events` against one sent message 10 (wamid.A) and returns the plan and outcomes.
fn plan_one(
    events: &[ParsedEvent],
    row: MessageRow,
    may_defer: &(dyn Fn(i64, Defer) -> bool + Sync),
) -> (StatusPlan, Outcomes) {
    let mut o = Outcomes::new(events);
    let plan = plan_statuses(events, &[row], may_defer, &mut o);
    (plan, o)
}

#[test]
fn a_status_short_of_final_is_kept_while_allowed_and_written_once_allowed_no_more() {
    for kind in [StatusKind::Delivered, StatusKind::Read] {
        let events = vec![event(1, vec![status("wamid.A", kind, 2, None)])];
        let (plan, o) = plan_one(
            &events,
            row(10, Some("wamid.A"), MessageState::Sent),
            &always,
        );
        assert!(plan.updates.is_empty(), "{kind:?}");
        assert_eq!(
            o.get(1),
            Some(&Outcome::Deferred(Defer::Linger)),
            "{kind:?}"
        );

        let (plan, o) = plan_one(
            &events,
            row(10, Some("wamid.A"), MessageState::Sent),
            &never,
        );
        assert_eq!(plan.updates.len(), 1, "{kind:?}");
        assert_eq!(plan.updates[0].1["state"], kind.state().as_str());
        assert_eq!(o.get(1), Some(&Outcome::Done));
    }
}

#[test]
fn a_status_that_makes_the_message_final_is_written_at_once() {
    // delivered and read together: final.
    let events = vec![
        event(1, vec![status("wamid.A", StatusKind::Read, 3, None)]),
        event(2, vec![status("wamid.A", StatusKind::Delivered, 2, None)]),
    ];
    let (plan, o) = plan_one(
        &events,
        row(10, Some("wamid.A"), MessageState::Sent),
        &always,
    );
    assert_eq!(plan.updates.len(), 1);
    let values = &plan.updates[0].1;
    assert_eq!(values["state"], "read");
    assert_eq!(values["delivered_at"], "2025-06-15 15:06:42");
    assert_eq!(values["read_at"], "2025-06-15 15:06:43");
    assert_eq!(
        (o.get(1), o.get(2)),
        (Some(&Outcome::Done), Some(&Outcome::Done))
    );

    // read on a message whose delivered time is known: final.
    let mut delivered = row(10, Some("wamid.A"), MessageState::Delivered);
    delivered.delivered_at = Some(at(2));
    let events = vec![event(1, vec![status("wamid.A", StatusKind::Read, 3, None)])];
    let (plan, _) = plan_one(&events, delivered, &always);
    assert_eq!(plan.updates.len(), 1);

    // failed is final.
    let events = vec![event(
        1,
        vec![status("wamid.A", StatusKind::Failed, 3, None)],
    )];
    let (plan, _) = plan_one(
        &events,
        row(10, Some("wamid.A"), MessageState::Sent),
        &always,
    );
    assert_eq!(plan.updates[0].1["state"], "failed");
}

#[test]
fn a_duplicate_writes_nothing_and_is_done_not_kept() {
    let mut read = row(10, Some("wamid.A"), MessageState::Read);
    read.read_at = Some(at(3));
    let events = vec![event(1, vec![status("wamid.A", StatusKind::Read, 3, None)])];
    let (plan, o) = plan_one(&events, read, &always);
    assert!(plan.updates.is_empty());
    assert_eq!(o.get(1), Some(&Outcome::Done));
}

#[test]
fn a_status_of_a_message_still_sending_lingers_then_is_written_with_its_wamid() {
    // Odoo shows message 30 claimed, its send result not written: even a final status lingers
    // while it may (the outbox's result comes within a moment, and then one write does).
    let mut sending = row(30, None, MessageState::Sending);
    sending.delivered_at = Some(at(2));
    let events = vec![event(
        1,
        vec![status("wamid.C", StatusKind::Read, 3, Some("30"))],
    )];
    let (plan, o) = plan_one(&events, sending.clone(), &always);
    assert!(plan.updates.is_empty());
    assert_eq!(o.get(1), Some(&Outcome::Deferred(Defer::Linger)));
    // Its time up (or after a crash, when no result comes): written, wamid included; Odoo
    // keeps a later result write from moving it back.
    let (plan, o) = plan_one(&events, sending, &never);
    assert_eq!(plan.updates[0].1["wamid"], "wamid.C");
    assert_eq!(plan.updates[0].1["state"], "read");
    assert_eq!(o.get(1), Some(&Outcome::Done));
}

#[test]
fn an_event_is_kept_only_as_a_whole_and_a_message_only_with_all_its_statuses() {
    let rows = vec![
        row(10, Some("wamid.A"), MessageState::Sent),
        row(11, Some("wamid.B"), MessageState::Sent),
        row(12, Some("wamid.D"), MessageState::Sent),
    ];
    let events = vec![
        // A could wait, B is made final: the event cannot wait as a whole.
        event(
            1,
            vec![
                status("wamid.A", StatusKind::Delivered, 2, None),
                status("wamid.B", StatusKind::Failed, 2, None),
            ],
        ),
        // So A's other status is written now too, with it, in one write.
        event(2, vec![status("wamid.A", StatusKind::Sent, 1, None)]),
        // D could wait, but its event also names a message Odoo does not know.
        event(
            3,
            vec![
                status("wamid.D", StatusKind::Delivered, 2, None),
                status("wamid.UNKNOWN", StatusKind::Delivered, 2, None),
            ],
        ),
        // E waits alone and may: kept.
        event(4, vec![status("wamid.E", StatusKind::Delivered, 2, None)]),
    ];
    let mut rows = rows;
    rows.push(row(13, Some("wamid.E"), MessageState::Sent));
    let mut o = Outcomes::new(&events);
    let plan = plan_statuses(&events, &rows, &always, &mut o);
    let written: Vec<i64> = plan.updates.iter().map(|(id, _)| *id).collect();
    assert_eq!(written, vec![10, 11, 12]);
    let a = &plan.updates[0].1;
    assert_eq!(
        (a["state"].as_str(), a["sent_at"].as_str()),
        (Some("delivered"), Some("2025-06-15 15:06:41"))
    );
    assert_eq!(o.get(1), Some(&Outcome::Done));
    assert_eq!(o.get(2), Some(&Outcome::Done));
    assert!(matches!(o.get(3), Some(Outcome::Pending(r)) if r.contains("wamid.UNKNOWN")));
    assert_eq!(o.get(4), Some(&Outcome::Deferred(Defer::Linger)));
}

#[test]
fn an_event_with_an_inbound_message_is_never_kept() {
    let events = vec![event(
        1,
        vec![
            status("wamid.A", StatusKind::Delivered, 2, None),
            Item::Message(Box::new(inbound("wamid.9", Some("2250700000001"), "hi", 2))),
        ],
    )];
    let (plan, o) = plan_one(
        &events,
        row(10, Some("wamid.A"), MessageState::Sent),
        &always,
    );
    assert_eq!(plan.updates.len(), 1);
    assert!(!matches!(o.get(1), Some(Outcome::Deferred(_))));
}

#[test]
fn the_linger_asks_per_event_so_the_oldest_status_decides() {
    let events = vec![
        event(1, vec![status("wamid.A", StatusKind::Sent, 1, None)]),
        event(2, vec![status("wamid.A", StatusKind::Delivered, 2, None)]),
    ];
    // Event 1 has been kept long enough; event 2 is new.
    let old_ones = |id: i64, _: Defer| id != 1;
    let mut sent = row(10, Some("wamid.A"), MessageState::Sent);
    sent.sent_at = None;
    let (plan, o) = plan_one(&events, sent, &old_ones);
    assert_eq!(plan.updates.len(), 1);
    assert_eq!(plan.updates[0].1["state"], "delivered");
    assert_eq!(
        (o.get(1), o.get(2)),
        (Some(&Outcome::Done), Some(&Outcome::Done))
    );
}
