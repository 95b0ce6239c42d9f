//! End to end: campaigns, with the `whatsapp-sidecar` binary between the Odoo stand-in and the
//! sandbox playing Meta (see `tests/e2e_support`).
//!
//! - 500 recipients (and three contacts skipped with their reason), two template steps, the
//!   second "not read" after a delay of 0.004 hours (14.4 s) (delays are floats in hours); the sandbox
//!   reads about half the messages; one customer answers STOP, another one replies. The daemon
//!   is killed with `kill -9` three times while it sends. Each number receives exactly what it
//!   should (step 1, and step 2 when step 1 was not read; nothing after STOP), the campaign is
//!   done and its KPIs are the recipients' figures.
//! - Pause stops the sending within a poll, Resume goes on; a template paused by Meta pauses
//!   the campaign with the reason.

mod e2e_support;
mod support;

use e2e_support::{eventually, meta_config, text, World, MESSAGE};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::Duration;

const CAMPAIGN: &str = "whatsapp.campaign";
const STEP: &str = "whatsapp.campaign.step";
const RECIPIENT: &str = "whatsapp.campaign.recipient";

/// A world whose pacing lets a customer get both steps within seconds, with short polls.
async fn world(read_ratio: f64) -> World {
    let mut meta = meta_config(80);
    meta.limits.pair_rate_period_ms = 100;
    meta.limits.pair_rate_burst = 5;
    meta.webhooks.read_ratio = read_ratio;
    let mut w = World::with_meta(meta, 80).await;
    w.config.set("outbox.pair_interval_secs", 0.2);
    w.config.set("outbox.reconcile_delay_secs", 15.0);
    w.config.set("campaigns.poll_interval_secs", 0.2);
    w.config.set("campaigns.kpi_interval_secs", 1.0);
    w
}

fn number(i: usize) -> String {
    format!("+3361{i:07}")
}

fn campaign_field(w: &World, id: i64, field: &str) -> Value {
    w.odoo.field(CAMPAIGN, id, field)
}

fn sent_to(w: &World, numbers: &[(i64, String)]) -> usize {
    numbers.iter().map(|(_, n)| w.received(n).len()).sum()
}

fn recipient_of(w: &World, campaign: i64, partner: i64) -> i64 {
    let ids = w.odoo.search(
        RECIPIENT,
        json!([["campaign_id", "=", campaign], ["partner_id", "=", partner]]),
    );
    assert_eq!(ids.len(), 1, "one recipient per contact");
    ids[0]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_two_step_drip_campaign_to_500_reaches_each_number_exactly_as_planned() {
    let mut w = world(0.5).await;
    let _logs = e2e_support::LogsOnPanic(w.logs.clone());
    let template = w.hello_template("approved");
    let people = w.audience("camp13", 500, 0);
    // Left out, each with its reason: not opted in, no number, a number already taken.
    let shy = w.partner("Shy", &number(900), false);
    w.odoo.update("res.partner", shy, json!({"ref": "camp13"}));
    let silent = w.partner("Silent", "", true);
    w.odoo.update(
        "res.partner",
        silent,
        json!({"ref": "camp13", "phone": false, "mobile": false}),
    );
    let twin = w.partner("Twin", "+33 6 10 00 00 07", true);
    w.odoo.update("res.partner", twin, json!({"ref": "camp13"}));
    // Not in the audience.
    let other = w.partner("Other", &number(950), true);

    let c = w.campaign(
        "camp13",
        template,
        &[(0.0, "always"), (0.004, "not_read")],
        60_000,
    );
    let steps = w.odoo.search(STEP, json!([["campaign_id", "=", c]]));
    let (step1, step2) = (steps[0].min(steps[1]), steps[0].max(steps[1]));
    w.start_daemon().await;

    w.generate_queue(c).await;
    let recipients = w.odoo.search(RECIPIENT, json!([["campaign_id", "=", c]]));
    assert_eq!(recipients.len(), 503, "500 recipients and 3 skipped");
    let skipped = w.odoo.search(
        RECIPIENT,
        json!([["campaign_id", "=", c], ["state", "=", "skipped"]]),
    );
    let reasons: BTreeMap<i64, String> = skipped
        .iter()
        .map(|r| {
            let partner = w.odoo.field(RECIPIENT, *r, "partner_id");
            (
                partner[0].as_i64().unwrap(),
                text(&w.odoo.field(RECIPIENT, *r, "error_message")),
            )
        })
        .collect();
    assert!(reasons[&shy].contains("opted in"), "{reasons:?}");
    assert!(reasons[&silent].contains("No WhatsApp"), "{reasons:?}");
    assert!(reasons[&twin].contains("Customer 7"), "{reasons:?}");
    assert!(w
        .odoo
        .search(RECIPIENT, json!([["partner_id", "=", other]]))
        .is_empty());
    let summary = text(&campaign_field(&w, c, "queue_message"));
    assert!(
        summary.starts_with("Queue generated: 500 new recipients"),
        "{summary}"
    );
    // Generating again adds nobody.
    w.generate_queue(c).await;
    assert_eq!(
        w.odoo
            .search(RECIPIENT, json!([["campaign_id", "=", c]]))
            .len(),
        503
    );

    w.start_campaign(c);
    // One customer answers STOP once its step 1 arrived unread, another one just replies.
    let mut stopper = None;
    let mut replier = None;
    eventually(
        "two customers with an unread step 1",
        Duration::from_secs(30),
        || {
            for (partner, n) in &people {
                if stopper.is_some() && replier.is_some() {
                    break;
                }
                if stopper
                    .as_ref()
                    .is_some_and(|(p, _): &(i64, String)| p == partner)
                {
                    continue;
                }
                let r = recipient_of(&w, c, *partner);
                let key = format!("campaign:{c}:step:{step1}:recipient:{r}");
                let m = w.odoo.search(MESSAGE, json!([["dedupe_key", "=", key]]));
                if m.len() == 1 && text(&w.odoo.field(MESSAGE, m[0], "state")) == "delivered" {
                    if stopper.is_none() {
                        stopper = Some((*partner, n.clone()));
                    } else {
                        replier = Some((*partner, n.clone()));
                    }
                }
            }
            stopper.is_some() && replier.is_some()
        },
    )
    .await;
    let (stopper, stop_number) = stopper.unwrap();
    let (replier, reply_number) = replier.unwrap();
    for (n, words) in [(&stop_number, "STOP"), (&reply_number, "Merci !")] {
        w.meta
            .inject(&whatsapp_sidecar::sandbox::InjectRequest {
                from: n.clone(),
                text: Some(words.into()),
                ..Default::default()
            })
            .expect("inject");
    }
    // Killed three times while it sends (a message sent just before a kill and not yet
    // confirmed is requeued by the outbox only after its reconcile delay).
    for pause in [2, 3, 4] {
        tokio::time::sleep(Duration::from_secs(pause)).await;
        w.kill9().await;
        w.start_daemon().await;
    }

    eventually("the campaign done", Duration::from_secs(120), || {
        text(&campaign_field(&w, c, "state")) == "done"
    })
    .await;

    // Exactly what each number should have received.
    let mut wrong = Vec::new();
    let mut read_recipients = 0;
    for (partner, n) in &people {
        let r = recipient_of(&w, c, *partner);
        let key1 = format!("campaign:{c}:step:{step1}:recipient:{r}");
        let m1 = w.odoo.search(MESSAGE, json!([["dedupe_key", "=", key1]]));
        assert_eq!(m1.len(), 1, "one step-1 message for {n}");
        let read1 = text(&w.odoo.field(MESSAGE, m1[0], "state")) == "read";
        let key2 = format!("campaign:{c}:step:{step2}:recipient:{r}");
        let m2 = w.odoo.search(MESSAGE, json!([["dedupe_key", "=", key2]]));
        let expected = if *partner == stopper || read1 { 1 } else { 2 };
        // Campaign messages are templates (the STOP answer gets its confirmation as a text).
        let got = w
            .received(n)
            .iter()
            .filter(|b| b["type"] == "template")
            .count();
        if got != expected || m2.len() != expected - 1 {
            wrong.push(format!(
                "{n}: received {got}, step-2 messages {}, expected {expected} (step 1 read: {read1})",
                m2.len()
            ));
        }
        let any_read = read1
            || m2
                .first()
                .is_some_and(|m| text(&w.odoo.field(MESSAGE, *m, "state")) == "read");
        if any_read && *partner != stopper && *partner != replier {
            read_recipients += 1;
        }
    }
    assert!(
        wrong.is_empty(),
        "{} numbers wrong: {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(10)]
    );
    // The contact not opted in got nothing; the twin's number got Customer 7's messages only
    // (checked above with Customer 7's).
    assert!(w.received(&number(900)).is_empty(), "not opted in");
    let stop_recipient = recipient_of(&w, c, stopper);
    assert_eq!(
        text(&w.odoo.field(RECIPIENT, stop_recipient, "state")),
        "opted_out"
    );
    let reply_recipient = recipient_of(&w, c, replier);
    assert_eq!(
        text(&w.odoo.field(RECIPIENT, reply_recipient, "state")),
        "replied"
    );
    assert!(w
        .odoo
        .field(RECIPIENT, reply_recipient, "replied_at")
        .is_string());

    // KPIs: the recipients' figures (late read receipts are counted after the end too).
    eventually("the final KPIs", Duration::from_secs(20), || {
        let k = |f: &str| campaign_field(&w, c, f).as_i64().unwrap_or(-1);
        k("kpi_recipients") == 500
            && k("kpi_sent") == 499
            && k("kpi_delivered") == 499
            && k("kpi_read") == read_recipients + 1
            && k("kpi_replied") == 1
            && k("kpi_opted_out") == 1
            && k("kpi_failed") == 0
    })
    .await;
    assert!(campaign_field(&w, c, "finished_at").is_string());
    // Every campaign message went with the low priority.
    let low = w.odoo.search(
        MESSAGE,
        json!([["campaign_id", "=", c], ["priority", "=", 0]]),
    );
    assert_eq!(
        low.len(),
        w.odoo
            .search(MESSAGE, json!([["campaign_id", "=", c]]))
            .len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pause_stops_within_a_poll_and_a_paused_template_pauses_the_campaign() {
    let mut w = world(1.0).await;
    let _logs = e2e_support::LogsOnPanic(w.logs.clone());
    let template = w.hello_template("approved");
    let people = w.audience("pause13", 200, 2000);
    // 20 a second: 10 seconds for everyone.
    let c = w.campaign("pause13", template, &[(0.0, "always")], 1200);
    w.start_daemon().await;
    w.generate_queue(c).await;
    w.start_campaign(c);
    eventually("some sent", Duration::from_secs(20), || {
        sent_to(&w, &people) >= 40
    })
    .await;

    // Pause (the button writes the state): the outbox claims no message of a paused
    // campaign from its next poll on, and the engine creates none from its next step on.
    w.odoo.update(CAMPAIGN, c, json!({"state": "paused"}));
    let existing = w.odoo.search(MESSAGE, json!([["campaign_id", "=", c]]));
    tokio::time::sleep(Duration::from_secs(1)).await;
    let after_poll = sent_to(&w, &people);
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        sent_to(&w, &people),
        after_poll,
        "nothing is sent while paused"
    );
    assert!(after_poll < 200);
    let created_after = w.odoo.search(
        MESSAGE,
        json!([["campaign_id", "=", c], ["id", "not in", existing]]),
    );
    for m in &created_after {
        assert_eq!(
            w.state(*m),
            "queued",
            "a message created after the pause was not sent"
        );
    }
    assert!(
        created_after.len() <= 25,
        "{} messages created after the pause (at most one step's worth)",
        created_after.len()
    );

    // Resume: it goes on.
    w.odoo.update(
        CAMPAIGN,
        c,
        json!({"state": "running", "paused_reason": false}),
    );
    eventually("more sent after Resume", Duration::from_secs(10), || {
        sent_to(&w, &people) >= after_poll + 20
    })
    .await;

    // Meta pauses the template (its status webhook updates the record): the campaign pauses
    // itself, saying why.
    w.odoo
        .update("whatsapp.template", template, json!({"status": "paused"}));
    eventually(
        "the campaign paused by the daemon",
        Duration::from_secs(10),
        || text(&campaign_field(&w, c, "state")) == "paused",
    )
    .await;
    let reason = text(&campaign_field(&w, c, "paused_reason"));
    assert!(reason.contains("\"sidecar_hello\" is paused"), "{reason}");
    tokio::time::sleep(Duration::from_millis(700)).await;
    let stopped = sent_to(&w, &people);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(sent_to(&w, &people), stopped, "nothing is sent once paused");
    assert!(stopped < 200);
    // Each number got at most one message.
    for (_, n) in &people {
        assert!(w.received(n).len() <= 1, "{n} received twice");
    }
}
