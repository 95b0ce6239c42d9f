//! Sale-order benchmark against the real daemon binary (release build), the Odoo stand-in and
//! the sandbox in this process, the daemon's shipped intervals.
//!
//! ```text
//! cargo build --release
//! cargo run --release --example orders_bench -- [--orders 20] [--bulk 1000]
//! ODOO_URL=... ODOO_DB=... ODOO_LOGIN=... ODOO_PASSWORD=... \
//!   cargo run --release --example orders_bench -- --real-presses 10
//! ```
//!
//! Measured:
//! 1. **idle**: Odoo calls per model per poll interval while nothing happens (10 s);
//! 2. **order created → accepted by the sandbox**: `--orders` quotations created one by one at
//!    random moments for customers whose window is open; the time from the order's `create` in
//!    Odoo to the sandbox accepting its interactive message; p50 and p90;
//! 3. **press → confirmed**: the customer's Validate (the webhook POSTed by the sandbox) to the
//!    order's state `sale` in Odoo; p50 and p90 (stand-in; with `--real-presses` and `ODOO_*`,
//!    against a real Odoo, in a company of the bench's own);
//! 4. **bulk**: `--bulk` quotations created at once (other tasks slowed down so that only the
//!    automations call Odoo): the time until every one's message is queued, and the Odoo calls
//!    per order for detection and queuing.

#[path = "../tests/e2e_support/mod.rs"]
mod e2e_support;
#[path = "../tests/support/mod.rs"]
mod support;

use clap::Parser;
use e2e_support::{World, MESSAGE};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

#[derive(Parser, Debug)]
struct Args {
    /// Orders created one by one (latency).
    #[arg(long, default_value_t = 20)]
    orders: usize,
    /// Orders created at once (throughput and calls per order).
    #[arg(long, default_value_t = 1000)]
    bulk: usize,
    /// Presses measured against the real Odoo of `ODOO_*` (0: skip).
    #[arg(long, default_value_t = 0)]
    real_presses: usize,
    /// Extra daemon settings, `section.key=value` (TOML value), repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    settings: Vec<String>,
}

fn main() {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"));
    runtime.block_on(async {
        if args.real_presses > 0 {
            real_presses(args.real_presses, &args.settings).await;
            return;
        }
        latency(args.orders, &args.settings).await;
        bulk(args.bulk).await;
    });
}

fn percentile(mut v: Vec<Duration>, p: f64) -> Duration {
    if v.is_empty() {
        return Duration::ZERO;
    }
    v.sort();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i.min(v.len() - 1)]
}

fn customer(w: &World, i: usize) -> (i64, String) {
    let number = format!("+22507{:08}", 10_000_000 + i);
    let id = w.partner(&format!("Customer {i}"), &number, true);
    w.odoo
        .update("res.partner", id, json!({"whatsapp_number_e164": number}));
    (id, number)
}

async fn latency(orders: usize, settings: &[String]) {
    let mut meta = e2e_support::meta_config(80);
    meta.limits.pair_rate_period_ms = 100;
    meta.limits.pair_rate_burst = 5;
    let mut w = World::with_meta(meta, 80).await;
    w.config.default_intervals();
    w.config.set("log.filter", "warn");
    w.config.apply(settings);
    w.send_new_orders();
    let customers: Vec<(i64, String)> = (0..orders).map(|i| customer(&w, i)).collect();
    w.start_daemon().await;
    for (_, number) in &customers {
        w.customer_writes(number).await;
    }

    // 1. Idle.
    tokio::time::sleep(Duration::from_secs(3)).await;
    w.odoo.reset_counters();
    let idle = Duration::from_secs(10);
    tokio::time::sleep(idle).await;
    let calls: BTreeMap<(String, String), u64> = w.odoo.call_counts();
    println!(
        "idle, {} s, shipped intervals: Odoo calls by model and method",
        idle.as_secs()
    );
    for ((model, method), n) in &calls {
        println!(
            "  {model}.{method}: {n} ({:.2}/s)",
            *n as f64 / idle.as_secs_f64()
        );
    }
    let per = |model: &str| -> u64 {
        calls
            .iter()
            .filter(|((m, _), _)| m == model)
            .map(|(_, n)| *n)
            .sum()
    };
    println!(
        "  sale.order (the automations, 1 s poll): {:.2} calls per poll; whatsapp.message: {:.2} calls per second (the button actions' 0.25 s poll and the outbox's 1 s poll)",
        per("sale.order") as f64 / idle.as_secs_f64(),
        per("whatsapp.message") as f64 / idle.as_secs_f64(),
    );

    // 2. Order created → accepted by the sandbox.
    let mut created = Vec::new();
    let mut accepted = Vec::new();
    for (partner, number) in &customers {
        tokio::time::sleep(Duration::from_millis(300 + fastrand::u64(..1000))).await;
        let start = Instant::now();
        let start_ms = now_ms();
        let order = w.order(*partner, 1.0, 100.0);
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let got = w
                .meta
                .messages(&whatsapp_sidecar::sandbox::RecordFilter {
                    to: Some(number.clone()),
                    kind: Some("interactive".into()),
                    ..Default::default()
                })
                .expect("record");
            if let Some(m) = got.first() {
                accepted.push(Duration::from_millis(
                    m.accepted_at_ms.saturating_sub(start_ms),
                ));
                break;
            }
            assert!(Instant::now() < deadline, "order {order} not sent");
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        created.push((order, number.clone(), start));
    }
    println!(
        "order created → accepted by the sandbox ({} orders): p50 {:?}, p90 {:?}, max {:?}",
        accepted.len(),
        percentile(accepted.clone(), 0.5),
        percentile(accepted.clone(), 0.9),
        percentile(accepted, 1.0)
    );

    // 3. Press → confirmed.
    let mut confirmed = Vec::new();
    for (order, number, _) in &created {
        let button = w
            .buttons_received(number)
            .into_iter()
            .find(|b| b.starts_with("order_validate:"))
            .expect("a Validate button");
        tokio::time::sleep(Duration::from_millis(fastrand::u64(..1000))).await;
        let start = Instant::now();
        w.press(number, &button);
        loop {
            if w.odoo.field("sale.order", *order, "state") == json!("sale") {
                confirmed.push(start.elapsed());
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "order {order} not confirmed"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
    }
    println!(
        "press → confirmed, stand-in ({} presses): p50 {:?}, p90 {:?}, max {:?}",
        confirmed.len(),
        percentile(confirmed.clone(), 0.5),
        percentile(confirmed.clone(), 0.9),
        percentile(confirmed, 1.0)
    );
    w.stop_daemon().await;
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

async fn bulk(n: usize) {
    let mut w = World::new(1000).await;
    w.config.default_intervals();
    w.config.set("log.filter", "warn");
    // Only the automations work during the measure: the others poll once an hour.
    w.config.set("outbox.poll_interval_secs", 3600.0);
    w.config.set("actions.poll_interval_ms", 3_600_000);
    w.config.set("accounts.poll_interval_secs", 3600.0);
    w.config.set("inbound.poll_interval_ms", 3_600_000);
    w.send_new_orders();
    let partners: Vec<i64> = (0..n).map(|i| customer(&w, 100_000 + i).0).collect();
    w.start_daemon().await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    w.odoo.reset_counters();
    let start = Instant::now();
    let orders: Vec<i64> = partners.iter().map(|p| w.order(*p, 1.0, 10.0)).collect();
    let inserted = start.elapsed();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let queued = w
            .odoo
            .search(MESSAGE, json!([["trigger", "=", "order_creation"]]))
            .len();
        if queued >= orders.len() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "only {queued} of {} queued after 60 s",
            orders.len()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let took = start.elapsed();
    let calls = w.odoo.call_counts();
    let total: u64 = calls.values().sum();
    println!(
        "bulk: {} orders created in {:?} (stand-in inserts), all queued {:?} after the first insert",
        orders.len(),
        inserted,
        took
    );
    for ((model, method), c) in &calls {
        println!("  {model}.{method}: {c}");
    }
    println!(
        "  {total} Odoo calls for detection and queuing: {:.4} per order",
        total as f64 / orders.len() as f64
    );
    w.stop_daemon().await;
}

async fn real_presses(n: usize, settings: &[String]) {
    use e2e_support::{DaemonConfig, RealOdoo};
    use whatsapp_sidecar::odoo::Domain;
    let real = match RealOdoo::setup(80).await {
        Ok(r) => r,
        Err(reason) => {
            println!("SKIPPED: {reason}");
            return;
        }
    };
    let uid = real.client.uid().await.expect("uid");
    let home = real
        .read("whatsapp.account", &[real.account], &["company_id"])
        .await[0]["company_id"][0]
        .as_i64()
        .expect("company");
    let company = real
        .create(
            "res.company",
            json!({"name": format!("whatsapp-sidecar bench {}", real.stamp)}),
        )
        .await
        .expect("company");
    real.client
        .write("res.users", &[uid], &json!({"company_ids": [[4, company]]}))
        .await
        .expect("user");
    real.client
        .write(
            "whatsapp.account",
            &[real.account],
            &json!({"company_id": company, "is_default": true, "auto_send_order_creation": true}),
        )
        .await
        .expect("account");
    let (meta, _stop) = e2e_support::start_meta(real.meta_config(80)).await;
    let mut config = DaemonConfig::new(&real.target, &meta.base_url());
    config.default_intervals();
    config.set("odoo.timeout_secs", 30);
    config.set("log.filter", "warn");
    config.apply(settings);
    let (daemon, _logs, _keep) = real.start_daemon(&meta, &config).await;
    let product = real
        .client
        .search(
            "product.product",
            &Domain::leaf("sale_ok", "=", true).and("type", "=", "service"),
            &whatsapp_sidecar::odoo::SearchOptions::new().limit(1),
        )
        .await
        .expect("product")[0];
    let mut times = Vec::new();
    let mut recorded = Vec::new();
    for i in 0..n {
        let e164 = format!("+3361{:07}", (real.stamp.len() * 1000 + i) % 10_000_000);
        let partner = real.partner(&format!("Bench {i}"), &e164, true).await;
        real.client
            .write(
                "res.partner",
                &[partner],
                &json!({"company_id": company, "whatsapp_number_e164": e164}),
            )
            .await
            .expect("partner");
        meta.inject(&whatsapp_sidecar::sandbox::InjectRequest {
            from: e164.clone(),
            text: Some("Bonjour".into()),
            ..Default::default()
        })
        .expect("inject");
        tokio::time::sleep(Duration::from_secs(2)).await;
        let order = real
            .create(
                "sale.order",
                json!({"partner_id": partner, "company_id": company,
                       "order_line": [[0, 0, {"product_id": product, "product_uom_qty": 1}]]}),
            )
            .await
            .expect("order");
        let deadline = Instant::now() + Duration::from_secs(60);
        let button = loop {
            let found = meta
                .messages(&whatsapp_sidecar::sandbox::RecordFilter {
                    to: Some(e164.clone()),
                    kind: Some("interactive".into()),
                    ..Default::default()
                })
                .expect("record")
                .iter()
                .filter_map(|m| serde_json::from_slice::<Value>(&m.body).ok())
                .find_map(|b| {
                    b["interactive"]["action"]["buttons"][0]["reply"]["id"]
                        .as_str()
                        .map(str::to_owned)
                });
            if let Some(b) = found {
                break b;
            }
            assert!(Instant::now() < deadline, "no buttons for order {order}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        tokio::time::sleep(Duration::from_millis(fastrand::u64(..1000))).await;
        let start = Instant::now();
        meta.inject(&whatsapp_sidecar::sandbox::InjectRequest {
            from: e164.clone(),
            button_reply: Some(whatsapp_sidecar::sandbox::ReplyRef {
                id: button,
                title: Some("Validate".into()),
            }),
            ..Default::default()
        })
        .expect("press");
        let mut recorded_at = None;
        loop {
            if recorded_at.is_none() {
                let found = real
                    .client
                    .search_count(
                        "whatsapp.message",
                        &Domain::leaf("account_id", "=", real.account)
                            .and("direction", "=", "in")
                            .and("button_payload", "!=", false),
                    )
                    .await
                    .unwrap_or(0);
                if found as usize > i {
                    recorded_at = Some(start.elapsed());
                }
            }
            let state = real.read("sale.order", &[order], &["state"]).await[0]["state"].clone();
            if state == "sale" {
                times.push(start.elapsed());
                if let Some(r) = recorded_at {
                    recorded.push(r);
                }
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "order {order} not confirmed"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let _: Result<Value, _> = real
            .client
            .with_context(
                whatsapp_sidecar::odoo::Context::new().set("disable_cancel_warning", json!(true)),
            )
            .call("sale.order", "action_cancel", json!([[order]]), json!({}))
            .await;
    }
    println!(
        "press → recorded as a received message by inbound processing: p50 {:?}",
        percentile(recorded, 0.5)
    );
    println!(
        "press → confirmed, real Odoo ({} presses): p50 {:?}, p90 {:?}, max {:?}",
        times.len(),
        percentile(times.clone(), 0.5),
        percentile(times.clone(), 0.9),
        percentile(times, 1.0)
    );
    let _ = daemon.terminate(Duration::from_secs(20)).await;
    let _ = real
        .client
        .write(
            "whatsapp.account",
            &[real.account],
            &json!({"is_default": false, "auto_send_order_creation": false, "company_id": home}),
        )
        .await;
    real.cleanup().await;
}
