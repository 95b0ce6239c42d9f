//! End to end: the `whatsapp-sidecar` binary between the Odoo stand-in and the sandbox playing
//! Meta (see `tests/e2e_support`). What a user sees: a message queued in Odoo reaches WhatsApp
//! and comes back read; a customer's message lands in Odoo, noted on the contact, and its
//! salesperson is told; forged webhooks are refused; a message that must not go out says why.

mod e2e_support;
mod support;

use e2e_support::{
    eventually, text, World, APP_SECRET, CONVERSATION, EVENT, MESSAGE, VERIFY_TOKEN,
};
use serde_json::json;
use std::time::Duration;
use whatsapp_sidecar::sandbox::{InjectRequest, RecordFilter};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_injected_inbound_text_creates_a_conversation_and_a_received_message() {
    let mut w = World::new(80).await;
    let partner = w.partner("Camille", "+33 6 12 34 56 78", true);
    w.start_daemon().await;

    w.meta
        .inject(&InjectRequest {
            from: "+33612345678".into(),
            name: Some("Camille".into()),
            text: Some("Bonjour, ma commande ?".into()),
            ..Default::default()
        })
        .expect("inject");
    eventually("the received message", Duration::from_secs(15), || {
        !w.odoo
            .search(MESSAGE, json!([["direction", "=", "in"]]))
            .is_empty()
    })
    .await;
    let ids = w.odoo.search(MESSAGE, json!([["direction", "=", "in"]]));
    assert_eq!(ids.len(), 1, "one received message");
    let m = w.odoo.record(MESSAGE, ids[0]).expect("message");
    assert_eq!(m["state"], "received");
    assert_eq!(m["message_type"], "text");
    assert_eq!(m["body"], "Bonjour, ma commande ?");
    assert_eq!(m["partner_id"][0], json!(partner));
    assert_eq!(m["account_id"][0], json!(w.account));
    assert!(text(&m["wamid"]).starts_with("wamid."), "{:?}", m["wamid"]);
    assert!(m["received_at"].is_string());

    let conversations = w.odoo.search(CONVERSATION, json!([]));
    assert_eq!(conversations.len(), 1, "one conversation, created");
    assert_eq!(m["conversation_id"][0], json!(conversations[0]));
    let c = w.odoo.record(CONVERSATION, conversations[0]).unwrap();
    assert_eq!(c["wa_id"], "33612345678");
    assert_eq!(c["partner_id"][0], json!(partner));
    assert_eq!(c["profile_name"], "Camille");
    assert!(c["last_inbound_at"].is_string());
    assert!(c["window_expires_at"].is_string());

    // A contact whose number was typed in another format is found too.
    let dominique = w.partner("Dominique", "+33 (0)6.12.34.56.79", true);
    w.meta
        .inject(&InjectRequest {
            from: "+33612345679".into(),
            text: Some("Et moi ?".into()),
            ..Default::default()
        })
        .expect("inject");
    eventually("Dominique's message", Duration::from_secs(15), || {
        w.odoo
            .search(MESSAGE, json!([["body", "=", "Et moi ?"]]))
            .len()
            == 1
    })
    .await;
    let id = w.odoo.search(MESSAGE, json!([["body", "=", "Et moi ?"]]))[0];
    assert_eq!(
        w.odoo.field(MESSAGE, id, "partner_id")[0],
        json!(dominique),
        "matched whatever the number's formatting"
    );

    // The stored events are marked processed.
    let events = w.odoo.search(EVENT, json!([]));
    assert_eq!(events.len(), 2);
    eventually(
        "the events are marked processed",
        Duration::from_secs(5),
        || {
            events
                .iter()
                .all(|e| w.odoo.field(EVENT, *e, "processed") == json!(true))
        },
    )
    .await;

    let status = w.stop_daemon().await;
    assert!(status.success(), "the daemon stops cleanly: {status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_outside_the_technical_group_is_said_once_and_by_readyz() {
    let mut w = World::new(80).await;
    let login = w.odoo.login().to_owned();
    w.odoo.set_access(&login, EVENT, "create", false);
    w.spawn_daemon();
    // Wait until /readyz names the problem and the webhook keys are loaded.
    let handshake = w.config.url(&format!(
        "/webhook?hub.mode=subscribe&hub.verify_token={VERIFY_TOKEN}&hub.challenge=42"
    ));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let reason = loop {
        let keys = w
            .http
            .get(&handshake)
            .send()
            .await
            .map(|r| r.status().as_u16());
        if let (Some((503, body)), Ok(200)) = (w.readyz().await, keys) {
            if body.contains("lacks create on whatsapp.webhook.event") {
                break body;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "/readyz never said what is missing"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        reason.contains("add it to the group 'WhatsApp Sidecar (technical)'"),
        "{reason}"
    );

    // Webhooks are refused with 503 (Meta retries) batch after batch, and the log does not
    // repeat itself: the missing right once with its fix, the refused batches at most once a
    // minute, on one line.
    let body = e2e_support::status_webhook("wamid.NOPE", "read", Some("1"));
    for _ in 0..5 {
        assert_eq!(w.post_webhook(&body, Some(APP_SECRET)).await, 503);
    }
    assert_eq!(w.odoo.count(EVENT), 0);
    let said = w.logs.matching(&["lacks create on whatsapp.webhook.event"]);
    assert_eq!(said.len(), 1, "said once: {said:?}");
    let refused = w.logs.matching(&["webhook events not stored"]);
    assert_eq!(
        refused.len(),
        1,
        "one line for five refused batches: {refused:?}"
    );

    // Fixed in Odoo: the next probe sees it, and webhooks are stored again.
    w.odoo.set_access(&login, EVENT, "create", true);
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(w.readyz().await.map(|(status, _)| status), Some(200));
    assert_eq!(w.post_webhook(&body, Some(APP_SECRET)).await, 200);
    assert_eq!(w.odoo.count(EVENT), 1);
    assert_eq!(w.logs.matching(&["now has the rights it needs"]).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customers_text_is_noted_on_the_contact_and_the_salesperson_gets_one_activity_an_hour() {
    let mut w = World::new(80).await;
    let partner = w.partner("Camille", "+33 6 12 34 56 78", true);
    // Marc Demo (uid 6) is Camille's salesperson.
    w.odoo.update("res.partner", partner, json!({"user_id": 6}));
    w.start_daemon().await;
    let inject = |text: &str| {
        w.meta
            .inject(&InjectRequest {
                from: "+33612345678".into(),
                name: Some("Camille".into()),
                text: Some(text.into()),
                ..Default::default()
            })
            .expect("inject")
    };

    // The batch is done when its event is marked processed (after the notes and activities).
    let all_processed = || {
        let events = w.odoo.search(EVENT, json!([]));
        !events.is_empty()
            && events
                .iter()
                .all(|e| w.odoo.field(EVENT, *e, "processed") == json!(true))
    };
    inject("Bonjour, ma commande est-elle partie ?");
    eventually(
        "the first message processed",
        Duration::from_secs(15),
        || all_processed() && !w.odoo.chatter("res.partner", partner).is_empty(),
    )
    .await;
    let notes = w.odoo.chatter("res.partner", partner);
    assert_eq!(notes.len(), 1, "{notes:?}");
    assert!(
        notes[0].contains("WhatsApp message from Camille (+33612345678) to Main")
            && notes[0].contains("<p>“Bonjour, ma commande est-elle partie ?”</p>"),
        "{}",
        notes[0]
    );
    let activities = w.odoo.activities("res.partner", partner);
    assert_eq!(activities.len(), 1, "{activities:?}");
    assert_eq!(activities[0].0, 6, "assigned to the salesperson");
    assert_eq!(activities[0].1, "Reply on WhatsApp to Camille");

    // A second message within the hour: a second note, no second activity.
    inject("Allô ?");
    eventually(
        "the second message processed",
        Duration::from_secs(15),
        || {
            all_processed()
                && w.odoo.search(EVENT, json!([])).len() == 2
                && w.odoo.chatter("res.partner", partner).len() == 2
        },
    )
    .await;
    assert!(w.odoo.chatter("res.partner", partner)[1].contains("Allô ?"));
    assert_eq!(w.odoo.activities("res.partner", partner).len(), 1);
    assert_eq!(w.odoo.count("mail.activity"), 1);

    let status = w.stop_daemon().await;
    assert!(status.success(), "the daemon stops cleanly: {status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bad_signature_is_refused_and_nothing_is_stored() {
    let mut w = World::new(80).await;
    w.start_daemon().await;
    let body = e2e_support::status_webhook("wamid.FORGED", "read", Some("1"));

    assert_eq!(w.post_webhook(&body, Some("not-the-app-secret")).await, 401);
    assert_eq!(w.post_webhook(&body, None).await, 401);
    // Signed for other bytes than those sent.
    let signature = whatsapp_sidecar::whatsapp::signature::sign(
        &whatsapp_sidecar::secret::Secret::new(APP_SECRET),
        body.as_bytes(),
    );
    let tampered = w
        .http
        .post(w.config.url("/webhook"))
        .header(
            whatsapp_sidecar::whatsapp::signature::SIGNATURE_HEADER,
            signature,
        )
        .body(body.replace("read", "delivered"))
        .send()
        .await
        .expect("POST");
    assert_eq!(tampered.status(), 401);

    assert_eq!(w.odoo.count(EVENT), 0, "nothing stored");
    assert_eq!(w.odoo.calls(EVENT, "create"), 0, "no create was even tried");
    let warnings = w.logs.matching(&["refused (401)"]);
    assert!(
        !warnings.is_empty() && warnings.len() <= 2,
        "the refusal is logged, rate-limited: {warnings:?}"
    );

    // The same body, correctly signed, is stored (the refusals were about the signature).
    assert_eq!(w.post_webhook(&body, Some(APP_SECRET)).await, 200);
    assert_eq!(w.odoo.count(EVENT), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_message_reaches_meta_and_comes_back_read() {
    let mut w = World::new(80).await;
    let template = w.hello_template("approved");
    let partner = w.partner("Alice", "+33 6 12 34 56 01", true);
    let id = w.queue_template(partner, template);
    w.start_daemon().await;

    eventually("the template message read", Duration::from_secs(20), || {
        w.state(id) == "read"
    })
    .await;
    let m = w.odoo.record(MESSAGE, id).expect("message");
    let sent = w
        .meta
        .messages(&RecordFilter {
            callback_data: Some(id.to_string()),
            ..RecordFilter::default()
        })
        .expect("sandbox record");
    assert_eq!(sent.len(), 1, "Meta received it once");
    assert_eq!(sent[0].kind, "template");
    assert_eq!(sent[0].wa_id, "33612345601");
    assert_eq!(m["wamid"], json!(sent[0].wamid), "Odoo holds Meta's wamid");
    assert_eq!(
        m["to_e164"], "+33612345601",
        "the normalised number is kept"
    );
    assert_eq!(m["error_help"], json!(false));
    let stamps: Vec<String> = ["sent_at", "delivered_at", "read_at"]
        .iter()
        .map(|f| text(&m[*f]))
        .collect();
    assert!(
        stamps.iter().all(|s| s.len() == 19),
        "every timestamp set: {stamps:?}"
    );
    assert!(
        stamps[0] <= stamps[1] && stamps[1] <= stamps[2],
        "sent ≤ delivered ≤ read: {stamps:?}"
    );

    // A customer writes; the free-form answer goes out inside the 24-hour window.
    w.meta
        .inject(&InjectRequest {
            from: "+33612345601".into(),
            text: Some("Merci ! Et la livraison ?".into()),
            ..Default::default()
        })
        .expect("inject");
    eventually("the customer's message", Duration::from_secs(15), || {
        w.odoo
            .search(MESSAGE, json!([["direction", "=", "in"]]))
            .len()
            == 1
    })
    .await;
    let reply = w
        .odoo
        .queue_message(w.account, partner, "Demain avant midi.");
    eventually("the reply read", Duration::from_secs(20), || {
        w.state(reply) == "read"
    })
    .await;
    let sent = w
        .meta
        .messages(&RecordFilter {
            callback_data: Some(reply.to_string()),
            ..RecordFilter::default()
        })
        .expect("sandbox record");
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].kind, "text");
    assert_eq!(sent[0].payload()["text"]["body"], "Demain avant midi.");

    let status = w.stop_daemon().await;
    assert!(status.success(), "the daemon stops cleanly: {status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_text_outside_the_window_goes_as_the_template_and_odoo_says_so() {
    let mut w = World::new(80).await;
    let hello = w.hello_template("approved");
    w.odoo.update(
        "whatsapp.account",
        w.account,
        json!({"template_generic_id": hello}),
    );
    let awa = w.partner("Awa Kouassi", "+33 6 12 34 56 21", true);
    let typed = "Hello Awa, your quotation S00021 is ready";
    let id = w.odoo.queue_message(w.account, awa, typed);
    w.start_daemon().await;

    eventually("the message read", Duration::from_secs(20), || {
        w.state(id) == "read"
    })
    .await;
    let sent = w
        .meta
        .messages(&RecordFilter {
            callback_data: Some(id.to_string()),
            ..RecordFilter::default()
        })
        .expect("sandbox record");
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].kind, "template", "the phone got the template");
    assert_eq!(sent[0].payload()["template"]["name"], "sidecar_hello");

    let m = w.odoo.record(MESSAGE, id).expect("message");
    assert_eq!(text(&m["message_type"]), "template", "Odoo says so too");
    assert_eq!(m["template_id"][0], json!(hello));
    assert_eq!(text(&m["body"]), "Hello! Thanks for choosing us.");
    assert_eq!(text(&m["original_body"]), typed);
    assert_eq!(text(&m["original_message_type"]), "text");
    let notes = w.odoo.chatter("res.partner", awa);
    assert!(
        notes
            .iter()
            .any(|n| n.contains("as the template sidecar_hello (en_US)")),
        "{notes:?}"
    );
    assert!(w.stop_daemon().await.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_gate_failure_says_what_to_do() {
    let mut w = World::new(80).await;
    let approved = w.hello_template("approved");
    let pending = w.odoo.insert(
        "whatsapp.template",
        json!({"name": "sidecar_invoice", "language": "en_US", "account_id": w.account,
               "status": "pending", "parameter_format": "positional"}),
    );
    let archived = w.odoo.insert(
        "whatsapp.template",
        json!({"name": "old_promo", "language": "en_US", "account_id": w.account,
               "status": "approved", "active": false}),
    );
    let opted_in = w.partner("Alice", "+33 6 12 34 56 01", true);
    let not_opted_in = w.partner("Bruno", "+33 6 12 34 56 02", false);
    let bad_number = w.partner("Chloé", "+33 6 12", true);
    let other_company = w.odoo.insert("res.company", json!({"name": "Other Co"}));

    let no_opt_in = w.odoo.queue_message(w.account, not_opted_in, "Hello");
    let bad = w.queue_template(bad_number, approved);
    let window_closed = w
        .odoo
        .queue_message(w.account, opted_in, "Free-form, no window");
    let unapproved = w.queue_template(opted_in, pending);
    let unknown = w.queue_template(opted_in, archived);
    let no_account = w.odoo.queue_message_with(
        w.account,
        opted_in,
        json!({"account_id": false, "company_id": other_company, "body": "Hello",
               "res_model": "res.partner", "res_id": opted_in}),
    );
    let good = w.queue_template(opted_in, approved);
    w.start_daemon().await;

    let failing = [
        no_opt_in,
        bad,
        window_closed,
        unapproved,
        unknown,
        no_account,
    ];
    eventually(
        "every gate failure written",
        Duration::from_secs(20),
        || failing.iter().all(|id| w.state(*id) == "failed") && w.state(good) != "queued",
    )
    .await;
    let help = |id: i64| text(&w.odoo.field(MESSAGE, id, "error_help"));
    let expected = [
        (
            no_opt_in,
            "The customer has not opted in to WhatsApp messages: tick 'WhatsApp opt-in' on the \
             contact Bruno once they agreed, then retry. (Replies are allowed without opt-in \
             while the customer has written in the last 24 hours.)"
                .to_owned(),
        ),
        (
            bad,
            "\"+33 6 12\" is not a valid phone number for FR: check the digits and the country \
             code on the contact (international format, e.g. +2250700000001). (contact Chloé)"
                .to_owned(),
        ),
        (
            window_closed,
            "The customer has not written in the last 24 hours, so WhatsApp only accepts an \
             approved template, and the WhatsApp account Main has none for this kind of \
             message: set 'Generic template' on the account (it is used outside the 24-hour \
             window), or send a template."
                .to_owned(),
        ),
        (
            unapproved,
            "The template sidecar_invoice (en_US) is pending at Meta, not approved, and WhatsApp \
             only sends approved templates: wait for Meta's approval (then 'Sync templates' on \
             the account), or choose an approved template."
                .to_owned(),
        ),
        (
            unknown,
            format!(
                "The template (id {archived}) is archived or no longer exists: choose another \
                 template, or run 'Sync templates' on the account Main."
            ),
        ),
        (
            no_account,
            "No WhatsApp account: the message names none and Other Co has no default account. \
             Create one in WhatsApp > Configuration > Accounts and tick 'Default for the \
             company', then retry."
                .to_owned(),
        ),
    ];
    for (id, want) in &expected {
        assert_eq!(&help(*id), want, "error_help of message {id}");
        let m = w.odoo.record(MESSAGE, *id).unwrap();
        assert!(m["failed_at"].is_string(), "message {id} has failed_at");
        assert_eq!(m["wamid"], json!(false), "message {id} was not sent");
    }
    // None of them reached Meta; the good one did.
    let record = w
        .meta
        .messages(&RecordFilter::default())
        .expect("sandbox record");
    assert_eq!(record.len(), 1, "{record:?}");
    assert_eq!(
        record[0].callback_data.as_deref(),
        Some(good.to_string().as_str())
    );
    // A failure is noted in the chatter of its source document (written after the result).
    eventually("a note on Bruno's contact", Duration::from_secs(10), || {
        w.odoo
            .chatter("res.partner", not_opted_in)
            .iter()
            .any(|n| n.contains("not sent") && n.contains("tick &#x27;WhatsApp opt-in&#x27;"))
    })
    .await;

    let status = w.stop_daemon().await;
    assert!(status.success(), "the daemon stops cleanly: {status}");
}

/// Odoo's bus: with the outbox polling only once a minute, a message queued in Odoo still goes
/// out at once, because the addon's notification wakes the outbox; after Odoo's bus drops, the
/// daemon polls at its own rate again and subscribes again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_message_goes_out_at_once_when_the_bus_wakes_the_outbox() {
    let mut w = World::new(80).await;
    w.config.set("outbox.poll_interval_secs", 60);
    w.config.set("bus.slow_poll_interval_secs", 60);
    w.config
        .set("log.filter", "info,whatsapp_sidecar::bus=debug");
    let template = w.hello_template("approved");
    let partner = w.partner("Alice", "+33 6 12 34 56 01", true);
    w.start_daemon().await;
    eventually("the bus subscription", Duration::from_secs(10), || {
        w.odoo.websocket_subscriptions() >= 1
    })
    .await;
    // Let the first polls (at start, and when the bus came up) pass: from here on the outbox
    // would poll again only in a minute.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let id = w.queue_template(partner, template);
    eventually(
        "the message sent without a poll",
        Duration::from_secs(10),
        || matches!(w.state(id).as_str(), "sent" | "delivered" | "read"),
    )
    .await;
    assert_eq!(
        w.logs
            .matching(&["bus notification", "whatsapp.message"])
            .len(),
        1,
        "{}",
        w.logs.tail(30)
    );

    // Odoo's bus goes away: the outbox polls at its own rate (a minute here), the daemon says
    // so and subscribes again.
    w.odoo.close_websockets(1001);
    eventually("the warning", Duration::from_secs(10), || {
        !w.logs
            .matching(&["lost Odoo's bus", "polling at the usual rates"])
            .is_empty()
    })
    .await;
    eventually("the second subscription", Duration::from_secs(10), || {
        w.odoo.websocket_subscriptions() >= 2
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let again = w.queue_template(partner, template);
    eventually("the second message sent", Duration::from_secs(10), || {
        matches!(w.state(again).as_str(), "sent" | "delivered" | "read")
    })
    .await;
    w.stop_daemon().await;
}

/// Without Odoo's bus (its route refused), everything works by polling, and the daemon says
/// once that it polls.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_bus_the_daemon_polls_and_says_so() {
    let mut w = World::new(80).await;
    w.odoo.set_websocket(false);
    let template = w.hello_template("approved");
    let partner = w.partner("Alice", "+33 6 12 34 56 01", true);
    w.start_daemon().await;
    let id = w.queue_template(partner, template);
    eventually("the message read", Duration::from_secs(20), || {
        w.state(id) == "read"
    })
    .await;
    let said = w
        .logs
        .matching(&["cannot subscribe to Odoo's bus", "HTTP 404"]);
    assert_eq!(said.len(), 1, "{}", w.logs.tail(30));
    assert!(said[0].contains("polls at the usual rates"), "{}", said[0]);
    w.stop_daemon().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_metrics_count_what_the_daemon_did() {
    let mut w = World::new(80).await;
    let template = w.hello_template("approved");
    let customers: Vec<i64> = (1..=3)
        .map(|n| {
            w.partner(
                &format!("Customer {n}"),
                &format!("+33 6 12 34 56 0{n}"),
                true,
            )
        })
        .collect();
    let refuser = w.partner("Not opted in", "+33 6 12 34 56 09", false);
    let paused = w.odoo.add_account("Paused", "1555000999", 80);
    w.odoo
        .update("whatsapp.account", paused, json!({"paused": true}));
    w.start_daemon().await;
    let before = w.scrape().await;
    assert_eq!(w.odoo.count(EVENT), 0);

    let sent: Vec<i64> = customers
        .iter()
        .map(|p| w.queue_template(*p, template))
        .collect();
    let refused = w.queue_template(refuser, template);
    w.until_all(&sent, &["read"], Duration::from_secs(20)).await;
    eventually("the refusal written", Duration::from_secs(10), || {
        w.state(refused) == "failed"
    })
    .await;
    eventually("every event processed", Duration::from_secs(10), || {
        w.odoo
            .search(EVENT, json!([["processed", "=", false]]))
            .is_empty()
    })
    .await;
    // Two messages of the paused account wait in the queue.
    for _ in 0..2 {
        w.odoo
            .queue_message(paused, customers[0], "Held while paused");
    }
    let forged = e2e_support::status_webhook("wamid.FORGED", "read", None);
    assert_eq!(
        w.post_webhook(&forged, Some("not-the-app-secret")).await,
        401
    );

    let after = w.scrape().await;
    let account = w.account.to_string();
    let delta = |name: &str, labels: &[(&str, &str)]| {
        after.value(name, labels) - before.value(name, labels)
    };
    let events = w.odoo.count(EVENT) as f64;
    assert!(events >= 9.0, "sent, delivered and read of three messages");
    assert_eq!(
        delta("whatsapp_messages_sent_total", &[("account", &account)]),
        3.0
    );
    assert_eq!(
        delta("whatsapp_api_calls_total", &[("endpoint", "send message")]),
        3.0
    );
    assert_eq!(
        delta(
            "whatsapp_messages_failed_total",
            &[("account", &account), ("code", "not_opted_in")]
        ),
        1.0
    );
    assert_eq!(delta("whatsapp_message_retries_total", &[]), 0.0);
    assert_eq!(
        delta("whatsapp_webhook_requests_total", &[("result", "stored")]),
        events
    );
    assert_eq!(
        delta(
            "whatsapp_webhook_requests_total",
            &[("result", "bad_signature")]
        ),
        1.0
    );
    assert_eq!(
        delta("whatsapp_webhook_intake_duration_seconds_count", &[]),
        events
    );
    assert_eq!(delta("whatsapp_webhook_events_per_create_sum", &[]), events);
    assert_eq!(
        delta(
            "whatsapp_inbound_events_processed_total",
            &[("outcome", "done")]
        ),
        events
    );
    // The daemon's own count of Odoo calls is what Odoo received.
    assert_eq!(
        after.value(
            "odoo_calls_total",
            &[("model", EVENT), ("method", "create")]
        ),
        w.odoo.calls(EVENT, "create") as f64
    );
    assert!(after.has("odoo_call_duration_seconds_count"));
    assert_eq!(
        after.value(
            "whatsapp_sidecar_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        1.0
    );

    // Read from Odoo when scraped: the held messages, the paused account, nothing in flight.
    let paused_label = paused.to_string();
    let mut state = w.scrape().await;
    for _ in 0..50 {
        if state.value("whatsapp_outbox_queued_due", &[]) == 2.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        state = w.scrape().await;
    }
    assert_eq!(state.value("whatsapp_outbox_queued_due", &[]), 2.0);
    assert_eq!(state.value("whatsapp_outbox_sending", &[]), 0.0);
    assert!(state.value("whatsapp_outbox_oldest_due_age_seconds", &[]) >= 0.0);
    assert_eq!(state.value("whatsapp_inbound_unprocessed_events", &[]), 0.0);
    assert_eq!(
        state.value("whatsapp_account_paused", &[("account", &paused_label)]),
        1.0
    );
    assert_eq!(
        state.value("whatsapp_account_paused", &[("account", &account)]),
        0.0
    );
    assert_eq!(state.value("whatsapp_campaigns_running", &[]), 0.0);
    assert!(state.value("whatsapp_odoo_state_age_seconds", &[]) < 5.0);

    // Turned off: no endpoint.
    assert!(w.stop_daemon().await.success());
    w.config.set("metrics.enabled", false);
    w.start_daemon().await;
    let off = w
        .http
        .get(w.config.url("/metrics"))
        .send()
        .await
        .expect("GET /metrics");
    assert_eq!(off.status().as_u16(), 404);
}
