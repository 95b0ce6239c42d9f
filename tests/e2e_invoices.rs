//! End to end: invoices on WhatsApp, with the `whatsapp-sidecar` binary between the Odoo
//! stand-in and the sandbox playing Meta (see `tests/e2e_support`). A posted invoice reaches
//! its customer as its PDF (the right file name and MIME type, `%PDF` bytes), inside the window
//! as a document with its caption and outside it as the account's invoice template with the PDF
//! as header; payments are told with the right amounts, two close ones in one message; an
//! overdue invoice gets one reminder, a second only after the interval, none once paid; a
//! daemon killed during a burst of 500 posted invoices sends each once.

mod e2e_support;
mod support;

use e2e_support::{eventually, meta_config, odoo_time, text, World, MESSAGE};
use serde_json::{json, Value};
use std::time::Duration;

const MOVE: &str = "account.move";
const AWA: &str = "+2250700000001";

/// A world with short polls, and pacing that lets one customer get several messages within
/// seconds.
async fn world(throughput: u32) -> World {
    let mut meta = meta_config(throughput);
    meta.limits.pair_rate_period_ms = 100;
    meta.limits.pair_rate_burst = 5;
    let mut w = World::with_meta(meta, throughput).await;
    w.config.set("outbox.pair_interval_secs", 0.2);
    w.config.set("automations.poll_interval_secs", 0.2);
    w
}

/// The text bodies that reached `number`, oldest first.
fn texts_received(w: &World, number: &str) -> Vec<String> {
    w.received(number)
        .iter()
        .filter(|b| b["type"] == "text")
        .map(|b| text(&b["text"]["body"]))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_posted_invoice_reaches_the_customer_as_its_pdf() {
    let mut w = world(80).await;
    let awa = w.customer("Awa Kouassi", AWA);
    let koffi = w.customer("Koffi", "+2250700000002");
    // Posted before the switch: never sent.
    let old = w.invoice(awa, 50.0);
    w.odoo.post_invoices(&[old]);
    w.odoo.update(
        MOVE,
        old,
        json!({"x_whatsapp_posted_at": odoo_time(chrono::Utc::now() - chrono::TimeDelta::minutes(5))}),
    );
    w.send_posted_invoices();
    w.invoice_template();
    w.start_daemon().await;
    let _logs = e2e_support::LogsOnPanic(w.logs.clone());
    w.customer_writes(AWA).await;

    // Inside Awa's window: the PDF as a document with its caption.
    let invoice = w.invoice(awa, 1180.0);
    let credit_note = w.invoice(awa, 100.0);
    w.odoo
        .update(MOVE, credit_note, json!({"move_type": "out_refund"}));
    w.odoo.post_invoices(&[invoice, credit_note]);
    let name = w.invoice_name(invoice);
    eventually(
        "the invoice's PDF reached Awa",
        Duration::from_secs(30),
        || w.received(AWA).iter().any(|b| b["type"] == "document"),
    )
    .await;
    let doc = w
        .received(AWA)
        .into_iter()
        .find(|b| b["type"] == "document")
        .unwrap_or(Value::Null);
    let filename = text(&doc["document"]["filename"]);
    assert_eq!(filename, format!("{}.pdf", name.replace('/', "_")));
    let caption = text(&doc["document"]["caption"]);
    assert!(
        caption.contains(&name) && caption.contains("$\u{a0}1,180.00"),
        "{caption}"
    );
    assert!(
        caption.contains(&format!("/my/invoices/{invoice}?access_token=")),
        "the portal link: {caption}"
    );
    let (mime, bytes) = w.download_media(&text(&doc["document"]["id"])).await;
    assert_eq!(mime, "application/pdf");
    assert!(bytes.starts_with(b"%PDF"), "the PDF's bytes");
    eventually("the invoice marked sent", Duration::from_secs(10), || {
        w.odoo.field(MOVE, invoice, "x_whatsapp_invoice_sent") == json!(true)
    })
    .await;
    // The chatter note is written after the result (a call of its own).
    eventually(
        "the chatter note on the invoice",
        Duration::from_secs(10),
        || {
            w.odoo
                .chatter(MOVE, invoice)
                .iter()
                .any(|n| n.contains("WhatsApp message sent"))
        },
    )
    .await;

    // Outside Koffi's window: the account's template, the PDF as its header.
    let second = w.invoice(koffi, 250.0);
    w.odoo.post_invoices(&[second]);
    eventually(
        "the invoice template reached Koffi",
        Duration::from_secs(30),
        || {
            w.received("+2250700000002")
                .iter()
                .any(|b| b["type"] == "template")
        },
    )
    .await;
    let tpl = w
        .received("+2250700000002")
        .into_iter()
        .find(|b| b["type"] == "template")
        .unwrap_or(Value::Null);
    assert_eq!(tpl["template"]["name"], "sidecar_invoice");
    let header = &tpl["template"]["components"][0]["parameters"][0];
    assert_eq!(header["type"], "document");
    assert_eq!(
        text(&header["document"]["filename"]),
        format!("{}.pdf", w.invoice_name(second).replace('/', "_"))
    );
    let (mime, bytes) = w.download_media(&text(&header["document"]["id"])).await;
    assert_eq!(mime, "application/pdf");
    assert!(bytes.starts_with(b"%PDF"));

    // Nothing for the invoice posted before the switch, nor for the credit note.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(w.invoice_messages(old).is_empty());
    assert!(w.invoice_messages(credit_note).is_empty());
    assert_eq!(w.invoice_messages(invoice).len(), 1, "sent once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payments_are_told_with_their_amounts_and_close_ones_in_one_message() {
    let mut w = world(80).await;
    let awa = w.customer("Awa Kouassi", AWA);
    // No debounce: each payment is told.
    w.odoo.update(
        "whatsapp.account",
        w.account,
        json!({"auto_send_residual_change": true, "residual_debounce_minutes": 0.0}),
    );
    let invoice = w.invoice(awa, 1180.0);
    w.odoo.post_invoices(&[invoice]);
    w.start_daemon().await;
    let _logs = e2e_support::LogsOnPanic(w.logs.clone());
    w.customer_writes(AWA).await;

    w.odoo.pay(invoice, 300.0);
    eventually("the first payment told", Duration::from_secs(20), || {
        texts_received(&w, AWA).len() == 1
    })
    .await;
    let name = w.invoice_name(invoice);
    assert_eq!(
        texts_received(&w, AWA)[0],
        format!(
            "Hello Awa Kouassi, we received your payment of $\u{a0}300.00 for invoice {name}. \
             Thank you! Remaining to pay: $\u{a0}880.00."
        )
    );
    eventually("the amount told stored", Duration::from_secs(10), || {
        w.odoo
            .field(MOVE, invoice, "x_whatsapp_last_residual_notified")
            == json!(880.0)
    })
    .await;
    w.odoo.pay(invoice, 880.0);
    eventually("the full payment told", Duration::from_secs(20), || {
        texts_received(&w, AWA).len() == 2
    })
    .await;
    assert_eq!(
        texts_received(&w, AWA)[1],
        format!(
            "Hello Awa Kouassi, invoice {name} of $\u{a0}1,180.00 is now paid in full. Thank you!"
        )
    );
    eventually("the residual indicator", Duration::from_secs(10), || {
        w.odoo.field(MOVE, invoice, "x_whatsapp_residual_sent") == json!(true)
    })
    .await;

    // Two payments 0.5 s apart within a 3 s debounce: one message with both.
    w.odoo.update(
        "whatsapp.account",
        w.account,
        json!({"residual_debounce_minutes": 0.05}),
    );
    let second = w.invoice(awa, 1000.0);
    w.odoo.post_invoices(&[second]);
    tokio::time::sleep(Duration::from_secs(11)).await; // the daemon re-reads accounts every 10 s
    w.odoo.pay(second, 300.0);
    tokio::time::sleep(Duration::from_millis(500)).await;
    w.odoo.pay(second, 200.0);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        texts_received(&w, AWA).len(),
        2,
        "nothing within the debounce"
    );
    eventually("the merged payment told", Duration::from_secs(20), || {
        texts_received(&w, AWA).len() == 3
    })
    .await;
    let merged = texts_received(&w, AWA)[2].clone();
    assert!(
        merged.contains("$\u{a0}500.00") && merged.contains("Remaining to pay: $\u{a0}500.00"),
        "{merged}"
    );
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(
        texts_received(&w, AWA).len(),
        3,
        "one message for both payments"
    );
    let keys: Vec<String> = w
        .invoice_messages(second)
        .iter()
        .map(|m| text(&m["dedupe_key"]))
        .collect();
    assert_eq!(
        keys,
        [format!("residual_change:account.move:{second}:500.00")]
    );
}

/// Sets the account's last reminder run to `hours_ago`: the next start-up finds the 9:00 run
/// (UTC) missed, as after a daemon that was down.
fn missed_run(w: &World, hours_ago: i64) {
    let name = format!("unpaid_reminders:{}", w.account);
    let at = odoo_time(chrono::Utc::now() - chrono::TimeDelta::hours(hours_ago));
    match w
        .odoo
        .search("whatsapp.cursor", json!([["name", "=", name]]))
        .first()
    {
        Some(id) => w.odoo.update("whatsapp.cursor", *id, json!({"value": at})),
        None => {
            w.odoo
                .insert("whatsapp.cursor", json!({"name": name, "value": at}));
        }
    }
}

/// The customer wrote in the last hours, before the daemon runs: the sandbox's window is open
/// and Odoo has the conversation (the daemon would make it from the webhook).
fn window_opened_before_start(w: &World, partner: i64, number: &str) {
    w.meta
        .inject(&whatsapp_sidecar::sandbox::InjectRequest {
            from: number.into(),
            text: Some("Bonjour".into()),
            ..Default::default()
        })
        .expect("inject");
    let digits: String = number.chars().filter(char::is_ascii_digit).collect();
    let now = chrono::Utc::now();
    w.odoo.insert(
        "whatsapp.conversation",
        json!({"account_id": w.account, "wa_id": digits, "partner_id": partner,
               "last_inbound_at": odoo_time(now),
               "window_expires_at": odoo_time(now + chrono::TimeDelta::hours(24))}),
    );
}

fn reminders(w: &World, invoice: i64) -> Vec<serde_json::Map<String, Value>> {
    w.invoice_messages(invoice)
        .into_iter()
        .filter(|m| m["trigger"] == "unpaid_reminder")
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_overdue_invoice_is_reminded_once_per_interval_and_never_once_paid() {
    let mut w = world(80).await;
    let awa = w.customer("Awa Kouassi", AWA);
    w.odoo.update(
        "whatsapp.account",
        w.account,
        json!({"auto_send_unpaid_invoices": true, "unpaid_invoice_days": 7,
               "unpaid_reminder_interval_days": 7, "unpaid_reminder_schedule": "0 9 * * *",
               "unpaid_reminder_tz": "UTC"}),
    );
    let today = chrono::Utc::now().date_naive();
    let overdue = w.invoice(awa, 400.0);
    let recent = w.invoice(awa, 90.0);
    w.odoo.post_invoices(&[overdue, recent]);
    w.odoo.update(
        MOVE,
        overdue,
        json!({"invoice_date_due": (today - chrono::TimeDelta::days(10)).to_string()}),
    );
    // Exactly 7 days overdue: not yet.
    w.odoo.update(
        MOVE,
        recent,
        json!({"invoice_date_due": (today - chrono::TimeDelta::days(7)).to_string()}),
    );
    window_opened_before_start(&w, awa, AWA);

    // The daemon was down at 9:00 (two days' runs missed): one run at start-up.
    missed_run(&w, 50);
    w.start_daemon().await;
    let logs = e2e_support::LogsOnPanic(w.logs.clone());
    eventually("a reminder sent", Duration::from_secs(20), || {
        reminders(&w, overdue)
            .iter()
            .any(|m| ["sent", "delivered", "read"].contains(&text(&m["state"]).as_str()))
    })
    .await;
    let first = reminders(&w, overdue);
    assert_eq!(first.len(), 1, "one reminder however many runs were missed");
    assert_eq!(
        text(&first[0]["dedupe_key"]),
        format!("unpaid_reminder:account.move:{overdue}:1")
    );
    let body = texts_received(&w, AWA).pop().unwrap_or_default();
    assert!(
        body.contains(&w.invoice_name(overdue)) && body.contains("$\u{a0}400.00 remains"),
        "{body}"
    );
    assert!(
        reminders(&w, recent).is_empty(),
        "not more than 7 days overdue"
    );
    eventually("the reminder indicators", Duration::from_secs(10), || {
        w.odoo
            .field(MOVE, overdue, "x_whatsapp_unpaid_reminder_sent")
            == json!(true)
            && w.odoo
                .field(MOVE, overdue, "x_whatsapp_unpaid_reminder_count")
                == json!(1)
    })
    .await;

    // Another missed run the next day: within the interval, nothing.
    w.stop_daemon().await;
    missed_run(&w, 30);
    w.start_daemon().await;
    eventually("the run done", Duration::from_secs(20), || {
        logs.0.matching(&["unpaid reminders: run done"]).len() >= 2
    })
    .await;
    assert_eq!(reminders(&w, overdue).len(), 1, "at most one per interval");

    // Seven days later (the first reminder dated back): the second one.
    w.stop_daemon().await;
    let id = first[0]["id"].as_i64().unwrap_or(0);
    w.odoo.set_raw(
        MESSAGE,
        id,
        "create_date",
        json!(odoo_time(chrono::Utc::now() - chrono::TimeDelta::days(7))),
    );
    missed_run(&w, 30);
    w.start_daemon().await;
    eventually("the second reminder", Duration::from_secs(20), || {
        reminders(&w, overdue).len() == 2
    })
    .await;
    assert_eq!(
        text(&reminders(&w, overdue)[1]["dedupe_key"]),
        format!("unpaid_reminder:account.move:{overdue}:2")
    );

    // Paid: no more reminders, even when the interval has passed again.
    w.stop_daemon().await;
    w.odoo.pay(overdue, 400.0);
    for m in reminders(&w, overdue) {
        let id = m["id"].as_i64().unwrap_or(0);
        w.odoo.set_raw(
            MESSAGE,
            id,
            "create_date",
            json!(odoo_time(chrono::Utc::now() - chrono::TimeDelta::days(30))),
        );
    }
    missed_run(&w, 30);
    w.start_daemon().await;
    eventually("the run done", Duration::from_secs(20), || {
        logs.0.matching(&["unpaid reminders: run done"]).len() >= 4
    })
    .await;
    assert_eq!(reminders(&w, overdue).len(), 2, "none once paid");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_queued_reminder_is_cancelled_when_the_invoice_gets_paid() {
    let mut w = world(80).await;
    let awa = w.customer("Awa Kouassi", AWA);
    w.odoo.update(
        "whatsapp.account",
        w.account,
        json!({"auto_send_residual_change": true, "residual_debounce_minutes": 0.0}),
    );
    let invoice = w.invoice(awa, 400.0);
    w.odoo.post_invoices(&[invoice]);
    // A reminder waiting (held until later, as the messaging limit would hold it).
    let held = w.odoo.insert(
        MESSAGE,
        json!({"account_id": w.account, "partner_id": awa, "to_number": AWA, "direction": "out",
               "state": "queued", "trigger": "unpaid_reminder", "body": "Reminder",
               "res_model": MOVE, "res_id": invoice,
               "dedupe_key": format!("unpaid_reminder:account.move:{invoice}:1"),
               "next_attempt_at": odoo_time(chrono::Utc::now() + chrono::TimeDelta::hours(1))}),
    );
    w.start_daemon().await;
    let _logs = e2e_support::LogsOnPanic(w.logs.clone());
    w.odoo.pay(invoice, 400.0);
    eventually(
        "the held reminder cancelled",
        Duration::from_secs(20),
        || w.state(held) == "cancelled",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill9_during_a_burst_of_500_posted_invoices_sends_each_once() {
    let mut w = world(500).await;
    w.config.set("outbox.reconcile_delay_secs", 3.0);
    w.send_posted_invoices();
    w.invoice_template();
    let mut invoices = Vec::new();
    for i in 0..500 {
        let number = format!("+22507{:08}", 10_000 + i);
        let p = w.customer(&format!("Customer {i}"), &number);
        invoices.push(w.invoice(p, 100.0 + f64::from(i)));
    }
    w.start_daemon().await;
    let _logs = e2e_support::LogsOnPanic(w.logs.clone());
    w.odoo.post_invoices(&invoices);
    let sent = |w: &World| {
        w.meta
            .messages(&whatsapp_sidecar::sandbox::RecordFilter {
                limit: Some(10_000),
                ..Default::default()
            })
            .map(|m| m.len())
            .unwrap_or(0)
    };
    eventually("some invoices sent", Duration::from_secs(60), || {
        sent(&w) >= 50
    })
    .await;
    w.kill9().await;
    let at_kill = sent(&w);
    let queued = w
        .odoo
        .search(MESSAGE, json!([["trigger", "=", "invoice_posted"]]));
    w.start_daemon().await;
    let restarted = std::time::Instant::now();
    w.until_all(
        &queued,
        &["sent", "delivered", "read"],
        Duration::from_secs(120),
    )
    .await;
    eprintln!(
        "{} sent before the kill; the rest {:.1} s after the restart",
        at_kill,
        restarted.elapsed().as_secs_f64()
    );
    let record = w
        .meta
        .messages(&whatsapp_sidecar::sandbox::RecordFilter {
            limit: Some(10_000),
            ..Default::default()
        })
        .unwrap_or_default();
    assert!(
        at_kill < 500,
        "killed during the burst ({at_kill} sent before)"
    );
    assert_eq!(record.len(), 500, "each invoice sent once");
    let mut to: Vec<String> = record.iter().map(|m| m.wa_id.clone()).collect();
    to.sort();
    to.dedup();
    assert_eq!(to.len(), 500, "to 500 different customers");
    assert_eq!(queued.len(), 500, "one message per invoice in Odoo");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_details_brings_the_details_with_the_payment_link_then_the_pdf() {
    let mut w = world(80).await;
    let awa = w.customer("Awa Kouassi", AWA);
    w.odoo.update("res.partner", awa, json!({"lang": "fr_FR"}));
    let invoice = w.invoice(awa, 1180.0);
    w.odoo.post_invoices(&[invoice]);
    w.odoo.pay(invoice, 180.0);
    w.start_daemon().await;
    let _logs = e2e_support::LogsOnPanic(w.logs.clone());
    w.customer_writes(AWA).await;
    // What "Send details by WhatsApp" writes.
    w.odoo.update(
        MOVE,
        invoice,
        json!({"x_whatsapp_details_requested_at": odoo_time(chrono::Utc::now())}),
    );
    eventually("the details and the PDF", Duration::from_secs(30), || {
        let got = w.received(AWA);
        got.iter().any(|b| b["type"] == "text") && got.iter().any(|b| b["type"] == "document")
    })
    .await;
    let details = texts_received(&w, AWA).pop().unwrap_or_default();
    let name = w.invoice_name(invoice);
    // In French: the customer's language.
    assert!(
        details.starts_with(&format!("*Facture {name}*")),
        "{details}"
    );
    assert!(
        details.contains("*Reste à payer : $\u{a0}1\u{a0}000,00*")
            && details.contains("Déjà payé : $\u{a0}180,00"),
        "the amount paid and due: {}",
        details.escape_debug()
    );
    assert!(
        details.contains("/payment/pay?amount=1000.0&access_token=")
            && details.contains(&format!("invoice_id={invoice}")),
        "Odoo's payment link for the amount due: {details}"
    );
    assert!(details.contains(&format!("/my/invoices/{invoice}?access_token=")));
    assert!(w.odoo.calls("payment.link.wizard", "create") >= 1);
    eventually("the request cleared", Duration::from_secs(10), || {
        w.odoo
            .field(MOVE, invoice, "x_whatsapp_details_requested_at")
            == json!(false)
    })
    .await;
    let keys: Vec<String> = w
        .invoice_messages(invoice)
        .iter()
        .map(|m| text(&m["dedupe_key"]))
        .filter(|k| k.starts_with("invoice_details:"))
        .collect();
    assert_eq!(keys.len(), 2, "the text and the PDF, once: {keys:?}");
}
