//! End to end: menus and button actions played on the sandbox's phone, with the daemon binary
//! between the Odoo stand-in and the sandbox (see `tests/e2e_support`).
//!
//! - "ménu " starts the welcome menu (a list); "My orders" lists the customer's orders with
//!   rows bound to each order; a row sends the order's details; "My invoices" lists the open
//!   invoices and a row sends the invoice's PDF; "Talk to us" replies.
//! - A server action on the contact writes the field, as the daemon's user, with the context
//!   Odoo 17 needs; a raising one sends the failure text and gives the account's responsible
//!   user an activity.
//! - Two presses of Validate confirm the order once; two presses of a pure reply reply twice.

mod e2e_support;
mod support;

use e2e_support::{eventually, text, World, CONVERSATION, MESSAGE};
use serde_json::{json, Value};
use std::time::Duration;
use whatsapp_sidecar::buttons::{sign, ButtonSecret};
use whatsapp_sidecar::sandbox::{InjectRequest, ListRef, RecordFilter, RecordedMessage, ReplyRef};

const CUSTOMER: &str = "+33612345601";

/// A world whose outbox and sandbox let one customer get messages back to back (the pair rate
/// is not what these tests are about).
async fn world() -> World {
    let mut meta = e2e_support::meta_config(80);
    meta.limits.pair_rate_period_ms = 1;
    meta.limits.pair_rate_burst = 100;
    let mut w = World::with_meta(meta, 80).await;
    w.config.set("outbox.pair_interval_secs", 0.01);
    w.config.set("actions.poll_interval_ms", 100);
    w
}

fn to_customer(w: &World) -> Vec<RecordedMessage> {
    w.meta
        .messages(&RecordFilter {
            to: Some(CUSTOMER.into()),
            ..RecordFilter::default()
        })
        .expect("sandbox record")
}

/// Waits for the `n`th message to the customer and returns it.
async fn nth_message(w: &World, n: usize, what: &str) -> RecordedMessage {
    eventually(what, Duration::from_secs(20), || to_customer(w).len() >= n).await;
    to_customer(w).swap_remove(n - 1)
}

fn inject_text(w: &World, body: &str) {
    w.meta
        .inject(&InjectRequest {
            from: CUSTOMER.into(),
            text: Some(body.into()),
            ..Default::default()
        })
        .expect("inject");
}

fn inject_row(w: &World, id: &str) {
    w.meta
        .inject(&InjectRequest {
            from: CUSTOMER.into(),
            list_reply: Some(ListRef {
                id: id.into(),
                title: None,
                description: None,
            }),
            ..Default::default()
        })
        .expect("inject a list reply");
}

fn inject_button(w: &World, id: &str, title: &str) {
    w.meta
        .inject(&InjectRequest {
            from: CUSTOMER.into(),
            button_reply: Some(ReplyRef {
                id: id.into(),
                title: Some(title.into()),
            }),
            ..Default::default()
        })
        .expect("inject a button reply");
}

fn action(w: &World, name: &str, button: &str, prefix: bool, kind: &str, extra: Value) -> i64 {
    let mut v = json!({"name": name, "button_id": button,
        "match_type": if prefix { "prefix" } else { "exact" }, "action_type": kind});
    if let (Some(v), Some(e)) = (v.as_object_mut(), extra.as_object()) {
        v.extend(e.clone());
    }
    w.odoo.insert("whatsapp.button.action", v)
}

/// The demo's welcome menu: a list of My orders, My invoices, Talk to us.
fn welcome_menu(w: &World) -> i64 {
    let orders = action(
        w,
        "List my orders",
        "menu_orders",
        false,
        "list_orders",
        json!({}),
    );
    let invoices = action(
        w,
        "List my invoices",
        "menu_invoices",
        false,
        "list_invoices",
        json!({}),
    );
    action(
        w,
        "Order details",
        "order_details",
        true,
        "send_order_details",
        json!({}),
    );
    action(
        w,
        "Invoice",
        "invoice_details",
        true,
        "send_invoice",
        json!({}),
    );
    let menu = w.odoo.insert(
        "whatsapp.interactive.scenario",
        json!({"name": "Welcome menu", "trigger_keywords": "MENU,HELP", "interaction_type": "list",
               "header_text": "How can we help?", "body": "Choose an option below.",
               "list_button_label": "Menu"}),
    );
    for (seq, id, title, extra) in [
        (
            1,
            "menu_orders",
            "My orders",
            json!({"button_action_id": orders, "description": "Your last 5 orders"}),
        ),
        (
            2,
            "menu_invoices",
            "My invoices",
            json!({"button_action_id": invoices}),
        ),
        (
            3,
            "menu_human",
            "Talk to us",
            json!({"reply_text": "A member of our team will answer you shortly."}),
        ),
    ] {
        let mut v = json!({"scenario_id": menu, "sequence": seq, "button_id": id, "title": title});
        if let (Some(v), Some(e)) = (v.as_object_mut(), extra.as_object()) {
            v.extend(e.clone());
        }
        w.odoo.insert("whatsapp.interactive.scenario.option", v);
    }
    menu
}

fn rows(m: &RecordedMessage) -> Vec<(String, String)> {
    let p = m.payload();
    p["interactive"]["action"]["sections"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|s| s["rows"].as_array().cloned().unwrap_or_default())
        .map(|r| (text(&r["id"]), text(&r["title"])))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_welcome_menu_lists_orders_and_invoices_whose_rows_send_their_details() {
    let mut w = world().await;
    let partner = w.partner("Camille", "+33 6 12 34 56 01", true);
    let menu = welcome_menu(&w);
    let order = w.odoo.insert(
        "sale.order",
        json!({"name": "S09001", "partner_id": partner, "partner_invoice_id": partner,
               "partner_shipping_id": partner, "state": "sale", "amount_untaxed": 100.0,
               "amount_total": 120.0, "amount_tax": 20.0, "currency_id": 1}),
    );
    w.odoo.insert(
        "sale.order.line",
        json!({"order_id": order, "name": "Cement bag", "product_uom_qty": 4.0, "price_unit": 25.0, "price_subtotal": 100.0}),
    );
    let invoice = w.odoo.insert(
        "account.move",
        json!({"name": "INV/2026/09001", "move_type": "out_invoice", "state": "posted",
               "payment_state": "not_paid", "partner_id": partner, "invoice_date": "2026-11-20",
               "invoice_date_due": "2026-12-20", "amount_total": 120.0, "amount_residual": 120.0,
               "currency_id": 1}),
    );
    // Someone else's invoice is not listed.
    w.odoo.insert(
        "account.move",
        json!({"name": "INV/2026/09002", "move_type": "out_invoice", "state": "posted",
               "payment_state": "not_paid", "partner_id": 10, "amount_residual": 5.0, "currency_id": 1}),
    );
    w.start_daemon().await;

    // Any case, accent and surrounding space: the menu, a list of three rows.
    inject_text(&w, " Ménu ");
    let list = nth_message(&w, 1, "the welcome menu").await;
    assert_eq!(list.kind, "interactive");
    assert_eq!(list.payload()["interactive"]["type"], "list");
    let titles: Vec<String> = rows(&list).into_iter().map(|(_, t)| t).collect();
    assert_eq!(titles, vec!["My orders", "My invoices", "Talk to us"]);
    let conversation = w.odoo.search(CONVERSATION, json!([]))[0];
    eventually("the conversation's menu", Duration::from_secs(10), || {
        w.odoo.field(CONVERSATION, conversation, "scenario_id") != json!(false)
    })
    .await;
    assert_eq!(
        w.odoo.field(CONVERSATION, conversation, "scenario_id")[0],
        json!(menu)
    );
    let text_in = w.odoo.search(MESSAGE, json!([["direction", "=", "in"]]))[0];
    assert_eq!(
        w.odoo.field(MESSAGE, text_in, "action_state"),
        json!("done")
    );

    // My orders: the order, its row bound to it.
    inject_row(&w, "menu_orders");
    let orders = nth_message(&w, 2, "the list of orders").await;
    let order_rows = rows(&orders);
    assert_eq!(order_rows.len(), 1, "{order_rows:?}");
    assert_eq!(order_rows[0].1, "S09001");
    assert!(
        order_rows[0]
            .0
            .starts_with(&format!("order_details:{order}:")),
        "{order_rows:?}"
    );
    // The row: the details (and the PDF the account attaches).
    inject_row(&w, &order_rows[0].0);
    let details = nth_message(&w, 3, "the order details").await;
    assert_eq!(details.kind, "text");
    let body = text(&details.payload()["text"]["body"]);
    assert!(
        body.contains("S09001") && body.contains("Cement bag"),
        "{body}"
    );

    // My invoices: the open invoice only; its row sends the PDF.
    let before = to_customer(&w).len();
    inject_row(&w, "menu_invoices");
    eventually("the list of invoices", Duration::from_secs(20), || {
        to_customer(&w)
            .iter()
            .skip(before)
            .any(|m| m.payload()["interactive"]["type"] == "list")
    })
    .await;
    let invoices = to_customer(&w)
        .into_iter()
        .skip(before)
        .find(|m| m.payload()["interactive"]["type"] == "list")
        .unwrap();
    let invoice_rows = rows(&invoices);
    assert_eq!(invoice_rows.len(), 1, "{invoice_rows:?}");
    assert_eq!(invoice_rows[0].1, "INV/2026/09001");
    let before = to_customer(&w).len();
    inject_row(&w, &invoice_rows[0].0);
    eventually("the invoice PDF", Duration::from_secs(20), || {
        to_customer(&w)
            .iter()
            .skip(before)
            .any(|m| m.kind == "document")
    })
    .await;
    assert!(w
        .odoo
        .reports_served()
        .iter()
        .any(|(r, ids)| r == "account.report_invoice" && ids == &vec![invoice]));

    // Talk to us: the option's reply.
    let before = to_customer(&w).len();
    inject_row(&w, "menu_human");
    let reply = nth_message(&w, before + 1, "the reply of Talk to us").await;
    assert_eq!(
        reply.payload()["text"]["body"],
        "A member of our team will answer you shortly."
    );
    // A text that matches nothing gets nothing (the default reply is off).
    inject_text(&w, "thanks");
    eventually("the text looked at", Duration::from_secs(10), || {
        w.odoo
            .search(
                MESSAGE,
                json!([["body", "=", "thanks"], ["action_state", "=", "ignored"]]),
            )
            .len()
            == 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(to_customer(&w).len(), before + 1, "no reply to 'thanks'");
    assert!(w.stop_daemon().await.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_actions_run_as_the_daemon_and_a_failure_tells_the_customer_and_the_responsible() {
    let mut w = world().await;
    let partner = w.partner("Camille", "+33 6 12 34 56 01", true);
    w.odoo.update(
        "whatsapp.account",
        w.account,
        json!({"responsible_user_id": 2}),
    );
    // The seeded server actions: 345 writes ref := WA-PRESSED on the contact, 346 raises.
    let tag = action(
        w_ref(&w),
        "Mark me",
        "mark_me",
        false,
        "server_action",
        json!({"server_action_id": 345, "reply_text": "Done, thank you!"}),
    );
    let refuse = action(
        w_ref(&w),
        "Refuse",
        "refuse",
        false,
        "server_action",
        json!({"server_action_id": 346}),
    );
    let menu = w.odoo.insert(
        "whatsapp.interactive.scenario",
        json!({"name": "Account", "trigger_keywords": "account", "interaction_type": "buttons", "body": "What now?"}),
    );
    for (seq, id, title, a) in [
        (1, "mark_me", "Mark me", tag),
        (2, "refuse", "Refuse", refuse),
    ] {
        w.odoo.insert(
            "whatsapp.interactive.scenario.option",
            json!({"scenario_id": menu, "sequence": seq, "button_id": id, "title": title, "button_action_id": a}),
        );
    }
    w.start_daemon().await;

    inject_text(&w, "ACCOUNT");
    let buttons = nth_message(&w, 1, "the buttons").await;
    assert_eq!(buttons.payload()["interactive"]["type"], "button");

    inject_button(&w, "mark_me", "Mark me");
    let done = nth_message(&w, 2, "the action's reply").await;
    assert_eq!(done.payload()["text"]["body"], "Done, thank you!");
    assert_eq!(
        w.odoo.field("res.partner", partner, "ref"),
        json!("WA-PRESSED")
    );
    assert_eq!(
        w.odoo.field("res.partner", partner, "write_uid")[0],
        json!(2),
        "written as the daemon's user"
    );
    let ctx = w
        .odoo
        .last_context("ir.actions.server", "run")
        .expect("run called");
    assert_eq!(ctx["active_model"], "res.partner");
    assert_eq!(ctx["active_id"], json!(partner));
    assert_eq!(ctx["active_ids"], json!([partner]));
    let press = w
        .odoo
        .search(MESSAGE, json!([["button_payload", "=", "mark_me"]]))[0];
    assert_eq!(w.odoo.field(MESSAGE, press, "action_state"), json!("done"));
    assert!(text(&w.odoo.field(MESSAGE, press, "action_result")).contains("returned nothing"));

    inject_button(&w, "refuse", "Refuse");
    let failed = nth_message(&w, 3, "the failure text").await;
    assert_eq!(
        failed.payload()["text"]["body"],
        "Sorry, something went wrong; we will get back to you."
    );
    let press = w
        .odoo
        .search(MESSAGE, json!([["button_payload", "=", "refuse"]]))[0];
    assert_eq!(
        w.odoo.field(MESSAGE, press, "action_state"),
        json!("failed")
    );
    let result = text(&w.odoo.field(MESSAGE, press, "action_result"));
    assert!(
        result.contains("The customer has a credit hold"),
        "{result}"
    );
    // Besides the "Reply on WhatsApp" activity of the customer's first text (the keyword; the
    // presses themselves call for no reply), one activity about the failure.
    let activities = w.odoo.search(
        "mail.activity",
        json!([
            ["res_model", "=", "res.partner"],
            ["res_id", "=", partner],
            ["summary", "not ilike", "Reply on WhatsApp"]
        ]),
    );
    assert_eq!(activities.len(), 1, "one activity about the failure");
    let a = w.odoo.record("mail.activity", activities[0]).unwrap();
    assert_eq!(
        a["user_id"][0],
        json!(2),
        "for the account's responsible user"
    );
    assert!(text(&a["note"]).contains("The customer has a credit hold"));
    assert_eq!(w.odoo.calls("ir.actions.server", "run"), 2, "each run once");
    assert!(w.stop_daemon().await.success());
}

fn w_ref(w: &World) -> &World {
    w
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_presses_confirm_once_and_a_pure_reply_replies_twice() {
    let mut w = world().await;
    let partner = w.partner("Camille", "+33 6 12 34 56 01", true);
    action(
        &w,
        "Validate",
        "order_validate",
        true,
        "confirm_order",
        json!({}),
    );
    action(
        &w,
        "Hours",
        "hours",
        false,
        "reply_text",
        json!({"reply_text": "We are open 8-18."}),
    );
    let order = w.odoo.insert(
        "sale.order",
        json!({"name": "S09002", "partner_id": partner, "partner_invoice_id": partner,
               "partner_shipping_id": partner, "state": "draft", "amount_total": 10.0, "currency_id": 1}),
    );
    let secret = ButtonSecret::new(w.odoo.button_secret()).expect("secret");
    let validate = sign(&secret, "order_validate", order).expect("payload");
    w.start_daemon().await;

    // The customer writes first (their window opens), then presses twice.
    inject_text(&w, "hello");
    inject_button(&w, &validate, "Validate");
    nth_message(&w, 1, "the first answer").await;
    inject_button(&w, &validate, "Validate");
    nth_message(&w, 2, "the second answer").await;
    assert_eq!(w.odoo.field("sale.order", order, "state"), json!("sale"));
    assert_eq!(
        w.odoo.calls("sale.order", "action_confirm"),
        1,
        "confirmed once"
    );
    let bodies: Vec<String> = to_customer(&w)
        .iter()
        .map(|m| text(&m.payload()["text"]["body"]))
        .collect();
    assert!(bodies[0].contains("is confirmed"), "{bodies:?}");
    assert!(bodies[1].contains("already confirmed"), "{bodies:?}");

    inject_button(&w, "hours", "Hours");
    nth_message(&w, 3, "the first reply").await;
    inject_button(&w, "hours", "Hours");
    let second = nth_message(&w, 4, "the second reply").await;
    assert_eq!(second.payload()["text"]["body"], "We are open 8-18.");
    assert_eq!(
        to_customer(&w)
            .iter()
            .filter(|m| m.payload()["text"]["body"] == "We are open 8-18.")
            .count(),
        2,
        "a pure reply answers each press"
    );
    assert!(w.stop_daemon().await.success());
}

/// The button actions look for presses when inbound processing says it recorded some, not only
/// at their poll: with a poll of a minute, a press is still answered (within the 20 s the test
/// waits).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_press_is_acted_on_when_inbound_processing_records_it_not_at_the_next_poll() {
    let mut w = world().await;
    w.config.set("actions.poll_interval_ms", 60_000);
    w.partner("Camille", "+33 6 12 34 56 01", true);
    action(
        &w,
        "Hours",
        "hours",
        false,
        "reply_text",
        json!({"reply_text": "We are open 8-18."}),
    );
    w.start_daemon().await;
    // The first poll is done at the start; the press comes after it.
    tokio::time::sleep(Duration::from_millis(500)).await;
    inject_button(&w, "hours", "Hours");
    let reply = nth_message(&w, 1, "the reply to the press").await;
    assert_eq!(reply.payload()["text"]["body"], "We are open 8-18.");
    assert!(w.stop_daemon().await.success());
}

/// The demo welcome menu on a real Odoo 17 with this addon and its demo data: runs when
/// `ODOO_URL`, `ODOO_DB`, `ODOO_LOGIN` and `ODOO_PASSWORD` or `ODOO_API_KEY` are set, prints
/// `SKIPPED: ...` otherwise (or when the database has no demo welcome menu). It makes its own
/// account, partner and quotation, and deletes them at the end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_welcome_menu_on_a_real_odoo() {
    use e2e_support::RealOdoo;
    use futures_util::FutureExt;
    let real = match RealOdoo::setup(80).await {
        Ok(real) => real,
        Err(reason) => {
            println!("SKIPPED: {reason}");
            return;
        }
    };
    let outcome = std::panic::AssertUnwindSafe(real_menu(&real))
        .catch_unwind()
        .await;
    real.cleanup().await;
    match outcome {
        Ok(Some(reason)) => println!("SKIPPED: {reason}"),
        Ok(None) => {}
        Err(panic) => std::panic::resume_unwind(panic),
    }
}

async fn real_menu(real: &e2e_support::RealOdoo) -> Option<String> {
    use e2e_support::DaemonConfig;
    use whatsapp_sidecar::odoo::{Domain, SearchOptions};
    let demo = real
        .client
        .search_read::<Value>(
            "ir.model.data",
            &Domain::leaf("module", "=", "whatsapp_sidecar").and(
                "name",
                "=",
                "demo_scenario_main_menu",
            ),
            &["res_id"],
            &SearchOptions::new(),
        )
        .await
        .ok()
        .and_then(|rows| rows.first().and_then(|r| r["res_id"].as_i64()));
    let Some(welcome) = demo else {
        return Some("no demo welcome menu (install the addon with demo data)".into());
    };
    let fields = real
        .client
        .fields_get("whatsapp.conversation", &["type"])
        .await
        .unwrap_or_default();
    if !fields.contains_key("scenario_id") {
        return Some("the installed addon has no menus (update it)".into());
    }
    let number = format!("+3361{}", &real.stamp[real.stamp.len() - 7..]);
    let partner = real.partner("Menu", &number, true).await;
    let order = real
        .create(
            "sale.order",
            json!({"partner_id": partner, "client_order_ref": format!("e2e {}", real.stamp)}),
        )
        .await
        .expect("a quotation");

    let mut meta_config = real.meta_config(80);
    meta_config.limits.pair_rate_period_ms = 1;
    meta_config.limits.pair_rate_burst = 100;
    let (meta, _meta_stop) = e2e_support::start_meta(meta_config).await;
    let mut config = DaemonConfig::new(&real.target, &meta.base_url());
    config.set("odoo.timeout_secs", 30);
    config.set("outbox.pair_interval_secs", 0.01);
    let (daemon, _logs, _keep) = real.start_daemon(&meta, &config).await;
    // Only this test's account: the company's default account may send the quotation too.
    let sent = || {
        meta.messages(&RecordFilter {
            to: Some(number.clone()),
            ..RecordFilter::default()
        })
        .expect("sandbox record")
        .into_iter()
        .filter(|m| m.phone_number_id == real.phone_id)
        .collect::<Vec<_>>()
    };
    let inject = |request: InjectRequest| {
        meta.inject(&InjectRequest {
            from: number.clone(),
            phone_number_id: Some(real.phone_id.clone()),
            ..request
        })
        .expect("inject")
    };

    inject(InjectRequest {
        text: Some("Menu".into()),
        ..Default::default()
    });
    eventually("the welcome menu", Duration::from_secs(60), || {
        !sent().is_empty()
    })
    .await;
    let first = &sent()[0];
    let titles: Vec<String> = rows(first).into_iter().map(|(_, t)| t).collect();
    assert_eq!(
        titles,
        vec!["My orders", "My invoices", "Talk to us"],
        "the first message sent: {}",
        String::from_utf8_lossy(&first.body)
    );

    inject(InjectRequest {
        list_reply: Some(ListRef {
            id: "menu_orders".into(),
            title: None,
            description: None,
        }),
        ..Default::default()
    });
    eventually("the list of orders", Duration::from_secs(60), || {
        sent().len() >= 2
    })
    .await;
    let order_rows = rows(&sent()[1]);
    assert_eq!(order_rows.len(), 1, "{order_rows:?}");
    assert!(order_rows[0]
        .0
        .starts_with(&format!("order_details:{order}:")));

    inject(InjectRequest {
        list_reply: Some(ListRef {
            id: order_rows[0].0.clone(),
            title: None,
            description: None,
        }),
        ..Default::default()
    });
    eventually("the order details", Duration::from_secs(60), || {
        sent().len() >= 3
    })
    .await;
    let details = text(&sent()[2].payload()["text"]["body"]);
    assert!(details.contains(&order_rows[0].1), "{details}");
    let conversation = real
        .client
        .search_read::<Value>(
            "whatsapp.conversation",
            &Domain::leaf("account_id", "=", real.account),
            &["scenario_id"],
            &SearchOptions::new(),
        )
        .await
        .expect("the conversation");
    assert_eq!(conversation[0]["scenario_id"][0], json!(welcome));
    let _ = daemon.terminate(Duration::from_secs(15)).await;
    None
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pay_and_invoice_buttons_send_odoos_payment_link_and_the_pdf() {
    let mut w = world().await;
    let partner = w.partner("Camille", "+33 6 12 34 56 01", true);
    action(&w, "Pay", "pay", false, "send_payment_link", json!({}));
    action(
        &w,
        "Invoice",
        "my_invoice",
        false,
        "send_invoice",
        json!({}),
    );
    let invoice = w.invoice(partner, 250.0);
    w.odoo.post_invoices(&[invoice]);
    w.odoo.pay(invoice, 50.0);
    let name = w.invoice_name(invoice);
    w.start_daemon().await;

    inject_text(&w, "hello");
    inject_button(&w, "pay", "Pay");
    let link = nth_message(&w, 1, "the payment link").await;
    let body = text(&link.payload()["text"]["body"]);
    assert!(body.contains(&name), "{body}");
    assert!(
        body.contains("/payment/pay?amount=200.0&access_token=")
            && body.contains(&format!("invoice_id={invoice}")),
        "Odoo's payment link for the amount due, not the portal page: {body}"
    );
    assert!(w.odoo.calls("payment.link.wizard", "create") >= 1);

    inject_button(&w, "my_invoice", "Invoice");
    let pdf = nth_message(&w, 2, "the invoice PDF").await;
    let doc = &pdf.payload()["document"];
    assert_eq!(
        text(&doc["filename"]),
        format!("{}.pdf", name.replace('/', "_"))
    );
    let (mime, bytes) = w.download_media(&text(&doc["id"])).await;
    assert_eq!(mime, "application/pdf");
    assert!(bytes.starts_with(b"%PDF"));
    assert!(w.stop_daemon().await.success());
}
