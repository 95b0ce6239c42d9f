//! Inbound processing benchmark: delivery statuses for many sent messages, processed from stored
//! webhook events against the Odoo stand-in (in-process, 127.0.0.1).
//!
//! ```text
//! cargo run --release --example inbound_bench -- [messages=5000] [inbound]
//! ```
//!
//! (`inbound` runs only the last part.)
//!
//! Two runs over `messages` sent messages, three statuses each (sent, delivered, read, one
//! webhook per status as Meta sends them):
//!
//! - "backlog": all statuses are stored before processing starts (as after an outage);
//! - "waves": each kind of status is stored and processed before the next arrives (as with
//!   Meta's delays: sent, then delivered a second later, then read).
//!
//! For each: events processed per second, Odoo calls per message, and the most writes any one
//! message record received.
//!
//! Then "inbound": `messages / 10` texts from as many customers, each with a salesperson, each
//! answering an order message (reply context), stored together and processed in batches: Odoo
//! calls per received message (records, notes on the contact and the order, one activity per
//! conversation), with the calls per model. What the daemon reads once an hour (the note
//! subtype, activity type, models and company languages: 4 calls) is read beforehand.

#[path = "../tests/support/mod.rs"]
mod support;

use serde_json::json;
use std::sync::Arc;
use std::time::Instant;
use support::{client_config, OdooStandin};
use whatsapp_sidecar::inbound::{self, InboundConfig, InboundContext, Pass};
use whatsapp_sidecar::odoo::OdooClient;

const PHONE_ID: &str = "106540352242922";
const T0: i64 = 1_750_858_184;

fn status_body(wamid: &str, status: &str, at: i64) -> String {
    json!({"object": "whatsapp_business_account", "entry": [{"id": format!("waba-{PHONE_ID}"), "changes": [{
        "field": "messages", "value": {"messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550100", "phone_number_id": PHONE_ID},
            "statuses": [{"id": wamid, "status": status, "timestamp": at.to_string(), "recipient_id": "33612345678",
                          "pricing": {"pricing_model": "PMP", "type": "regular", "category": "utility"}}]}}]}]})
    .to_string()
}

fn text_body(from: &str, wamid: &str, answers: &str, body: &str, at: i64) -> String {
    json!({"object": "whatsapp_business_account", "entry": [{"id": format!("waba-{PHONE_ID}"), "changes": [{
        "field": "messages", "value": {"messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550100", "phone_number_id": PHONE_ID},
            "contacts": [{"profile": {"name": "Customer"}, "wa_id": from}],
            "messages": [{"from": from, "id": wamid, "timestamp": at.to_string(), "type": "text",
                          "context": {"from": "15550100", "id": answers}, "text": {"body": body}}]}}]}]})
    .to_string()
}

fn odoo_time(unix: i64) -> String {
    chrono::DateTime::from_timestamp(unix, 0)
        .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_default()
}

struct Run {
    odoo: OdooStandin,
    ctx: InboundContext,
    messages: Vec<i64>,
}

async fn prepare(count: usize) -> Run {
    let odoo = OdooStandin::start().await;
    let account = odoo.add_account("Bench", PHONE_ID, 1000);
    let partner = odoo.add_partner("Camille", "+33 6 12 34 56 78", true);
    let messages = (0..count)
        .map(|n| {
            odoo.queue_message_with(
                account,
                partner,
                json!({"state": "sent", "wamid": format!("wamid.B{n}"), "sent_at": odoo_time(T0),
                       "body": "Your order is ready"}),
            )
        })
        .collect();
    let client = match OdooClient::new(client_config(&odoo)) {
        Ok(c) => c,
        Err(e) => panic!("Odoo client: {e}"),
    };
    let ctx = InboundContext {
        odoo: client,
        config: InboundConfig::default(),
        wake: Arc::new(tokio::sync::Notify::new()),
        bus: Default::default(),
        media: None,
        lookups: Default::default(),
        received: None,
        metrics: Default::default(),
    };
    odoo.reset_counters();
    Run {
        odoo,
        ctx,
        messages,
    }
}

impl Run {
    fn store(&self, status: &str, at: i64) {
        let now = odoo_time(chrono::Utc::now().timestamp());
        for n in 0..self.messages.len() {
            self.odoo.insert(
                "whatsapp.webhook.event",
                json!({"raw_body": status_body(&format!("wamid.B{n}"), status, at),
                       "received_at": now, "signature_ok": true}),
            );
        }
    }

    /// Processes until no new event is left; returns (events, seconds).
    async fn drain(&self) -> (usize, f64) {
        let started = Instant::now();
        let mut events = 0;
        loop {
            match inbound::step(&self.ctx, Pass::New, chrono::Utc::now()).await {
                Ok(r) if r.events == 0 => break,
                Ok(r) => events += r.events,
                Err(e) => panic!("step: {e}"),
            }
        }
        (events, started.elapsed().as_secs_f64())
    }

    fn report(&self, name: &str, events: usize, seconds: f64) {
        let calls: u64 = self.odoo.call_counts().values().sum();
        let max_writes = self
            .messages
            .iter()
            .map(|id| self.odoo.write_count("whatsapp.message", *id))
            .max()
            .unwrap_or(0);
        let read = self
            .messages
            .iter()
            .filter(|id| self.odoo.field("whatsapp.message", **id, "state") == json!("read"))
            .count();
        println!(
            "{name}: {events} events in {seconds:.2} s = {:.0} events/s; {calls} Odoo calls = {:.4} per message; \
             most writes to one message: {max_writes}; messages read: {read}/{}",
            events as f64 / seconds,
            calls as f64 / self.messages.len() as f64,
            self.messages.len()
        );
    }
}

#[tokio::main]
async fn main() {
    let count = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(5000usize);
    if std::env::args().nth(2).as_deref() == Some("inbound") {
        inbound_run(count / 10).await;
        return;
    }

    let backlog = prepare(count).await;
    backlog.store("read", T0 + 3);
    backlog.store("sent", T0 + 1);
    backlog.store("delivered", T0 + 2);
    let (events, seconds) = backlog.drain().await;
    backlog.report("backlog", events, seconds);

    let waves = prepare(count).await;
    let mut events = 0;
    let mut seconds = 0.0;
    for (status, at) in [("sent", T0 + 1), ("delivered", T0 + 2), ("read", T0 + 3)] {
        waves.store(status, at);
        let (e, s) = waves.drain().await;
        events += e;
        seconds += s;
    }
    waves.report("waves", events, seconds);

    inbound_run(count / 10).await;
}

/// Customers write, each answering an order message: calls per received message.
async fn inbound_run(count: usize) {
    let run = prepare(0).await;
    let account = run.odoo.search("whatsapp.account", json!([]))[0];
    let now = odoo_time(chrono::Utc::now().timestamp());
    for n in 0..count {
        let number = format!("3361{n:07}");
        let partner = run
            .odoo
            .add_partner(&format!("Customer {n}"), &format!("+{number}"), true);
        run.odoo
            .update("res.partner", partner, json!({"user_id": 2}));
        run.odoo.queue_message_with(
            account,
            partner,
            json!({"state": "read", "wamid": format!("wamid.O{n}"), "res_model": "sale.order",
                   "res_id": 1 + (n % 20) as i64, "body": "Your order"}),
        );
        run.odoo.insert(
            "whatsapp.webhook.event",
            json!({"raw_body": text_body(&number, &format!("wamid.I{n}"), &format!("wamid.O{n}"), "Is it shipped?", T0),
                   "received_at": now, "signature_ok": true}),
        );
    }
    // What the daemon reads once an hour (4 calls) is read already, as in a running daemon.
    if let Err(e) = run.ctx.lookups.get(&run.ctx.odoo, &[]).await {
        panic!("lookups: {e}");
    }
    run.odoo.reset_counters();
    let (events, seconds) = run.drain().await;
    let calls = run.odoo.call_counts();
    let total: u64 = calls.values().sum();
    let received = run
        .odoo
        .search("whatsapp.message", json!([["direction", "=", "in"]]))
        .len();
    println!(
        "inbound: {events} events in {seconds:.2} s; {received} messages received; {total} Odoo calls = {:.3} per message",
        total as f64 / received.max(1) as f64
    );
    for ((model, method), n) in &calls {
        println!("  {model}.{method}: {n}");
    }
}
