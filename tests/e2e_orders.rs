//! End to end: sale orders on WhatsApp, with the `whatsapp-sidecar` binary between the Odoo
//! stand-in and the sandbox playing Meta (see `tests/e2e_support`). A quotation created in Odoo
//! reaches the customer with Validate / Cancel / Details; the customer's press confirms or
//! cancels it (once), or brings the details; presses that are not the customer's, or whose
//! payload was not made for that order, change nothing and say why; switching the automation
//! on does not message old orders; a daemon killed between queuing and sending sends each
//! order's message once.

mod e2e_support;
mod support;

use e2e_support::{eventually, meta_config, text, World, MESSAGE};
use serde_json::{json, Value};
use std::time::Duration;

const ORDER: &str = "sale.order";
const AWA: &str = "+2250700000001";
const KOFFI: &str = "+2250700000002";

/// A world whose pacing lets a customer get several messages within seconds (the sandbox's
/// pair rate and the daemon's pair interval shortened), with short polls.
async fn world() -> World {
    let mut meta = meta_config(80);
    meta.limits.pair_rate_period_ms = 100;
    meta.limits.pair_rate_burst = 5;
    let mut w = World::with_meta(meta, 80).await;
    w.config.set("outbox.pair_interval_secs", 0.2);
    w.config.set("automations.poll_interval_secs", 0.2);
    w.config.set("actions.poll_interval_ms", 100);
    w
}

fn customer(w: &World, name: &str, number: &str) -> i64 {
    let id = w.partner(name, number, true);
    w.odoo
        .update("res.partner", id, json!({"whatsapp_number_e164": number}));
    id
}

/// The account's "Template for new orders": `sidecar_order` (the sandbox's and the demo
/// data's), its body from the order's customer, name and total, three quick replies.
fn order_template(w: &World) -> i64 {
    let template = w.odoo.insert(
        "whatsapp.template",
        json!({"name": "sidecar_order", "language": "en_US", "account_id": w.account,
               "status": "approved", "parameter_format": "positional",
               "components_json": json!([
                   {"type": "BODY", "text": "Hello {{1}}, your order {{2}} of {{3}} is ready. Would you like to confirm it?"},
                   {"type": "BUTTONS", "buttons": [
                       {"type": "QUICK_REPLY", "text": "Validate"},
                       {"type": "QUICK_REPLY", "text": "Cancel"},
                       {"type": "QUICK_REPLY", "text": "Details"}]}]).to_string()}),
    );
    for (n, path) in [(1, "partner_id.name"), (2, "name"), (3, "amount_total")] {
        w.odoo.insert(
            "whatsapp.template.variable",
            json!({"template_id": template, "component": "body", "name": n.to_string(),
                   "sequence": n, "field_path": path}),
        );
    }
    w.odoo.update(
        "whatsapp.account",
        w.account,
        json!({"template_order_creation_id": template}),
    );
    template
}

fn order_field(w: &World, id: i64, field: &str) -> Value {
    w.odoo.field(ORDER, id, field)
}

/// The messages queued about an order.
fn order_messages(w: &World, order: i64) -> Vec<serde_json::Map<String, Value>> {
    w.odoo
        .search(
            MESSAGE,
            json!([
                ["res_model", "=", ORDER],
                ["res_id", "=", order],
                ["direction", "=", "out"]
            ]),
        )
        .iter()
        .filter_map(|id| w.odoo.record(MESSAGE, *id))
        .collect()
}

async fn buttons_for(w: &World, number: &str, order: i64) -> Vec<String> {
    let prefix = format!(":{order}:");
    eventually(
        "the order's buttons reach the phone",
        Duration::from_secs(20),
        || {
            w.buttons_received(number)
                .iter()
                .filter(|b| b.contains(&prefix))
                .count()
                == 3
        },
    )
    .await;
    w.buttons_received(number)
        .into_iter()
        .filter(|b| b.contains(&prefix))
        .collect()
}

fn texts_received(w: &World, number: &str) -> Vec<String> {
    w.received(number)
        .iter()
        .filter_map(|b| b["text"]["body"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_order_gets_three_buttons_and_validate_confirms_it_once() {
    let mut w = world().await;
    let awa = customer(&w, "Awa Kouassi", AWA);
    w.send_new_orders();
    w.start_daemon().await;
    w.customer_writes(AWA).await;
    let order = w.order(awa, 2.0, 500.0);

    let buttons = buttons_for(&w, AWA, order).await;
    assert!(
        buttons[0].starts_with(&format!("order_validate:{order}:")),
        "{buttons:?}"
    );
    assert!(buttons[1].starts_with(&format!("order_cancel:{order}:")));
    assert!(buttons[2].starts_with(&format!("order_details:{order}:")));
    let interactive = w
        .received(AWA)
        .into_iter()
        .find(|b| b["type"] == "interactive")
        .unwrap();
    let titles: Vec<&str> = interactive["interactive"]["action"]["buttons"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["reply"]["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles, ["Validate", "Cancel", "Details"]);
    let body = interactive["interactive"]["body"]["text"].as_str().unwrap();
    assert!(
        body.contains("Awa Kouassi")
            && body.contains(text(&w.odoo.field("sale.order", order, "name")).as_str())
            && body.contains("$\u{a0}1,000.00"),
        "{body}"
    );
    eventually(
        "x_whatsapp_creation_sent once sent",
        Duration::from_secs(10),
        || order_field(&w, order, "x_whatsapp_creation_sent") == json!(true),
    )
    .await;
    assert!(order_field(&w, order, "x_whatsapp_creation_sent_date").is_string());

    // Validate, twice.
    w.press(AWA, &buttons[0]);
    w.presses_handled(1).await;
    w.press(AWA, &buttons[0]);
    w.presses_handled(2).await;
    assert_eq!(order_field(&w, order, "state"), "sale");
    assert_eq!(order_field(&w, order, "x_whatsapp_validated"), json!(true));
    assert_eq!(w.odoo.calls(ORDER, "action_confirm"), 1, "confirmed once");
    let presses = w.presses();
    assert_eq!(presses[0]["action_state"], "done");
    assert_eq!(presses[0]["res_id"], json!(order));
    assert!(
        text(&presses[1]["action_result"]).contains("already confirmed"),
        "{:?}",
        presses[1]["action_result"]
    );
    eventually(
        "both replies reach the phone",
        Duration::from_secs(20),
        || {
            let t = texts_received(&w, AWA);
            t.iter().any(|t| t.contains("is confirmed"))
                && t.iter().any(|t| t.contains("already confirmed"))
        },
    )
    .await;
    eventually(
        "x_whatsapp_validation_sent once the reply is sent",
        Duration::from_secs(10),
        || order_field(&w, order, "x_whatsapp_validation_sent") == json!(true),
    )
    .await;
    let notes = w.odoo.chatter(ORDER, order);
    assert!(
        notes
            .iter()
            .any(|n| n.contains("Confirmed by the customer on WhatsApp, +2250700000001")),
        "{notes:?}"
    );
    // One new-order message, one reply per press.
    assert_eq!(
        order_messages(&w, order)
            .iter()
            .filter(|m| m["trigger"] == "order_creation")
            .count(),
        1
    );
    let status = w.stop_daemon().await;
    assert!(status.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancel_cancels_a_quotation_and_refuses_a_confirmed_order_saying_why() {
    let mut w = world().await;
    let awa = customer(&w, "Awa Kouassi", AWA);
    w.send_new_orders();
    w.start_daemon().await;
    w.customer_writes(AWA).await;
    let first = w.order(awa, 1.0, 40.0);
    let first_buttons = buttons_for(&w, AWA, first).await;
    w.press(AWA, &first_buttons[1]);
    w.presses_handled(1).await;
    assert_eq!(order_field(&w, first, "state"), "cancel");
    assert_eq!(order_field(&w, first, "x_whatsapp_rejected"), json!(true));
    let ctx = w
        .odoo
        .last_context(ORDER, "action_cancel")
        .unwrap_or_default();
    assert_eq!(
        ctx.get("disable_cancel_warning"),
        Some(&json!(true)),
        "no wizard"
    );
    assert!(w
        .odoo
        .chatter(ORDER, first)
        .iter()
        .any(|n| n.contains("Cancelled by the customer on WhatsApp")));

    // A confirmed order cannot be cancelled from WhatsApp: the customer is told why.
    let second = w.order(awa, 1.0, 60.0);
    let second_buttons = buttons_for(&w, AWA, second).await;
    w.odoo.update(ORDER, second, json!({"state": "sale"}));
    w.press(AWA, &second_buttons[1]);
    w.presses_handled(2).await;
    assert_eq!(order_field(&w, second, "state"), "sale", "not cancelled");
    assert_eq!(w.presses()[1]["action_state"], "refused");
    eventually(
        "the cancellation and the refusal reach the phone",
        Duration::from_secs(20),
        || {
            let t = texts_received(&w, AWA);
            t.iter().any(|t| t.contains("has been cancelled"))
                && t.iter().any(|t| t.contains("can no longer be cancelled"))
        },
    )
    .await;
    assert_eq!(w.odoo.calls(ORDER, "action_cancel"), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn details_come_in_the_customers_language_with_lines_totals_link_and_pdf() {
    let mut w = world().await;
    let awa = customer(&w, "Awa Kouassi", AWA);
    w.odoo.update("res.partner", awa, json!({"lang": "fr_FR"}));
    w.send_new_orders();
    w.start_daemon().await;
    w.customer_writes(AWA).await;
    let order = w.order(awa, 3.0, 1250.5);
    let buttons = buttons_for(&w, AWA, order).await;
    // The new-order message and its buttons are in French already.
    let interactive = w
        .received(AWA)
        .into_iter()
        .find(|b| b["type"] == "interactive")
        .unwrap();
    assert!(interactive["interactive"]["body"]["text"]
        .as_str()
        .unwrap()
        .starts_with("Bonjour Awa"));
    assert_eq!(
        interactive["interactive"]["action"]["buttons"][0]["reply"]["title"],
        "Valider"
    );

    w.press(AWA, &buttons[2]);
    w.presses_handled(1).await;
    eventually(
        "the details and the PDF reach the phone",
        Duration::from_secs(20),
        || {
            let r = w.received(AWA);
            r.iter().any(|b| {
                b["text"]["body"]
                    .as_str()
                    .is_some_and(|t| t.contains("Commande"))
            }) && r.iter().any(|b| b["type"] == "document")
        },
    )
    .await;
    let details = texts_received(&w, AWA)
        .into_iter()
        .find(|t| t.contains("*Commande"))
        .unwrap();
    assert!(details.contains("Client : Awa Kouassi"), "{details}");
    assert!(details.contains("Statut : Devis"), "{details}");
    assert!(
        details.contains("• Office chair : 3 × $\u{a0}1\u{a0}250,50 = $\u{a0}3\u{a0}751,50"),
        "the currency's symbol before, French separators: {details}"
    );
    assert!(
        details.contains("*Total : $\u{a0}3\u{a0}751,50*"),
        "{details}"
    );
    assert!(
        details.contains(&format!("/my/orders/{order}?access_token=")),
        "{details}"
    );
    eventually("x_whatsapp_details_sent", Duration::from_secs(10), || {
        order_field(&w, order, "x_whatsapp_details_sent") == json!(true)
    })
    .await;
    assert_eq!(
        order_field(&w, order, "state"),
        "draft",
        "details change nothing"
    );

    // The Odoo button "Send details by WhatsApp" asks the daemon, which writes the same details.
    w.odoo.update(
        ORDER,
        order,
        json!({"x_whatsapp_details_requested_at": e2e_support::odoo_time(chrono::Utc::now())}),
    );
    eventually(
        "the request is served and cleared",
        Duration::from_secs(20),
        || {
            order_field(&w, order, "x_whatsapp_details_requested_at") == json!(false)
                && texts_received(&w, AWA)
                    .iter()
                    .filter(|t| t.contains("*Commande"))
                    .count()
                    == 2
        },
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presses_not_made_for_this_order_or_not_from_its_customer_change_nothing_and_say_why() {
    let mut w = world().await;
    let awa = customer(&w, "Awa Kouassi", AWA);
    let koffi = customer(&w, "Koffi Yao", KOFFI);
    w.send_new_orders();
    w.start_daemon().await;
    w.customer_writes(AWA).await;
    w.customer_writes(KOFFI).await;
    let awas = w.order(awa, 1.0, 10.0);
    let koffis = w.order(koffi, 1.0, 20.0);
    let awa_buttons = buttons_for(&w, AWA, awas).await;
    let koffi_buttons = buttons_for(&w, KOFFI, koffis).await;

    // A wrong tag.
    let mut forged = awa_buttons[0].clone();
    forged.pop();
    forged.push(if awa_buttons[0].ends_with('0') {
        '1'
    } else {
        '0'
    });
    w.press(AWA, &forged);
    // Awa's tag moved onto Koffi's order id.
    let tag = awa_buttons[0].rsplit(':').next().unwrap();
    let moved = format!("order_validate:{koffis}:{tag}");
    w.press(AWA, &moved);
    // Koffi's genuine button, pressed from Awa's number.
    w.press(AWA, &koffi_buttons[0]);
    // Awa's genuine button pressed by Koffi (a forwarded message).
    w.press(KOFFI, &awa_buttons[1]);
    w.presses_handled(4).await;

    let presses = w.presses();
    let result = |payload: &str| {
        let p = presses
            .iter()
            .find(|p| p["button_payload"] == payload)
            .unwrap_or_else(|| panic!("no press {payload}"));
        assert_eq!(p["action_state"], "refused", "{p:?}");
        text(&p["action_result"])
    };
    for payload in [&forged, &moved] {
        let r = result(payload);
        assert!(r.contains("tag does not match"), "{r}");
    }
    let r = result(&koffi_buttons[0]);
    assert!(
        r.contains("+2250700000001 is not a number of the customer"),
        "{r}"
    );
    let r = result(&awa_buttons[1]);
    assert!(
        r.contains("+2250700000002 is not a number of the customer"),
        "{r}"
    );
    assert_eq!(order_field(&w, awas, "state"), "draft");
    assert_eq!(order_field(&w, koffis, "state"), "draft");
    assert_eq!(w.odoo.calls(ORDER, "action_confirm"), 0);
    assert_eq!(w.odoo.calls(ORDER, "action_cancel"), 0);
    // Nobody is answered: a forged or forwarded press gets silence.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(texts_received(&w, AWA).is_empty() && texts_received(&w, KOFFI).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn switching_on_does_not_message_existing_orders_and_outside_the_window_the_template_carries_the_buttons(
) {
    let mut w = world().await;
    let awa = customer(&w, "Awa Kouassi", AWA);
    order_template(&w);
    let old: Vec<i64> = (0..50).map(|_| w.order(awa, 1.0, 5.0)).collect();
    tokio::time::sleep(Duration::from_millis(1100)).await;
    w.send_new_orders();
    w.start_daemon().await;
    // The 50 orders are written again after the switch: still not messaged.
    for id in &old[..10] {
        w.odoo.update(ORDER, *id, json!({"note": "<p>updated</p>"}));
    }
    let new = w.order(awa, 1.0, 7.0);
    // Awa never wrote: the template, with the three payloads on its quick replies.
    eventually(
        "the template reaches the phone",
        Duration::from_secs(20),
        || w.received(AWA).iter().any(|b| b["type"] == "template"),
    )
    .await;
    let sent = w.received(AWA);
    assert_eq!(sent.len(), 1, "only the new order's message: {sent:?}");
    let components = sent[0]["template"]["components"].as_array().unwrap();
    let payloads: Vec<&str> = components
        .iter()
        .filter(|c| c["type"] == "button")
        .map(|c| c["parameters"][0]["payload"].as_str().unwrap())
        .collect();
    assert_eq!(payloads.len(), 3, "{components:?}");
    assert!(payloads[0].starts_with(&format!("order_validate:{new}:")));
    let body = components.iter().find(|c| c["type"] == "body").unwrap();
    assert_eq!(body["parameters"][0]["text"], "Awa Kouassi");
    for id in &old {
        assert!(
            order_messages(&w, *id).is_empty(),
            "old order {id} messaged"
        );
    }

    // A quick-reply press is acted on like a reply button.
    w.meta
        .inject(&whatsapp_sidecar::sandbox::InjectRequest {
            from: AWA.into(),
            button: Some(whatsapp_sidecar::sandbox::TemplateButtonRef {
                payload: payloads[0].to_owned(),
                text: Some("Validate".into()),
            }),
            ..Default::default()
        })
        .expect("inject a quick reply");
    w.presses_handled(1).await;
    assert_eq!(order_field(&w, new, "state"), "sale");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_killed_between_queuing_and_sending_sends_each_order_once() {
    let mut w = world().await;
    let mut numbers = Vec::new();
    let mut orders = Vec::new();
    order_template(&w);
    w.send_new_orders();
    // The outbox polls rarely and Odoo's bus does not wake it: the kill lands while the
    // messages are queued, not sent.
    w.config.set("outbox.poll_interval_secs", 30.0);
    w.config.set("bus.enabled", false);
    w.start_daemon().await;
    for i in 0..10 {
        let number = format!("+22507000001{i:02}");
        let p = customer(&w, &format!("Customer {i}"), &number);
        numbers.push(number);
        orders.push(w.order(p, 1.0, 10.0 + f64::from(i)));
    }
    eventually(
        "every order's message queued",
        Duration::from_secs(20),
        || orders.iter().all(|o| !order_messages(&w, *o).is_empty()),
    )
    .await;
    w.kill9().await;
    w.config.set("outbox.poll_interval_secs", 0.1);
    w.config.set("bus.enabled", true);
    w.start_daemon().await;
    eventually(
        "every order's message sent",
        Duration::from_secs(30),
        || numbers.iter().all(|n| !w.received(n).is_empty()),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    for (o, n) in orders.iter().zip(&numbers) {
        assert_eq!(
            order_messages(&w, *o).len(),
            1,
            "order {o}: one message in Odoo"
        );
        assert_eq!(
            w.received(n).len(),
            1,
            "order {o}: one message at the phone"
        );
    }
}
