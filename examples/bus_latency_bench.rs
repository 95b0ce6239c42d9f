//! Odoo's bus on a real Odoo 17 (issue 15): how long a message queued from the composer takes to
//! reach Meta (the sandbox, in this process), and how many calls an idle daemon makes to Odoo,
//! with the bus and without it (polling only).
//!
//! ```text
//! cargo build --release
//! ODOO_URL=http://127.0.0.1:8069 ODOO_DB=wa17 ODOO_LOGIN=admin ODOO_PASSWORD=admin \
//!   cargo run --release --example bus_latency_bench -- [--messages 10] [--idle-secs 60]
//! ```
//!
//! For each mode the daemon binary runs with its default intervals, talking JSON-RPC to Odoo
//! through a counting proxy (in this process); with the bus, its websocket goes straight to
//! Odoo (`bus.url`). After the daemon settled, the proxy counts the requests of an idle minute
//! (`--idle-secs`). Then `--messages` messages are sent one after another, as a user does: the
//! contact composer (`whatsapp.send.partner.message`, one contact, the account's template) is
//! created and its Send pressed over JSON-RPC; the latency runs from the moment Send returned
//! (Odoo committed the message) until the sandbox accepted the message, and the next Send
//! follows a random 0.5 to 1.5 s later (so the clicks fall anywhere between two polls). The
//! bench makes its own account, template, partners and messages, and deletes them at the end.

#[path = "../tests/e2e_support/mod.rs"]
mod e2e_support;
#[path = "../tests/support/mod.rs"]
mod support;

use clap::Parser;
use e2e_support::{DaemonConfig, OdooProxy, RealOdoo};
use serde_json::json;
use std::time::{Duration, Instant};

#[derive(Parser, Debug)]
struct Args {
    /// Messages sent one after another per mode.
    #[arg(long, default_value_t = 10)]
    messages: usize,
    /// Seconds of idle daemon whose Odoo requests are counted, per mode.
    #[arg(long, default_value_t = 60)]
    idle_secs: u64,
    /// Only the mode with the bus (`bus`) or without (`poll`); default: both.
    #[arg(long)]
    only: Option<String>,
    /// Extra daemon settings, `section.key=value` (TOML value), repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    settings: Vec<String>,
}

fn main() {
    let args = Args::parse();
    RealOdoo::run_bench(80, async |real| bench(&args, real).await);
}

/// What one mode measured.
struct Figures {
    idle_per_minute: f64,
    latencies_ms: Vec<f64>,
}

async fn bench(args: &Args, real: &RealOdoo) {
    let modes: Vec<bool> = match args.only.as_deref() {
        Some("bus") => vec![true],
        Some("poll") => vec![false],
        _ => vec![true, false],
    };
    let mut results = Vec::new();
    for bus in modes {
        results.push((bus, run(args, real, bus).await));
    }
    println!();
    println!("mode            idle Odoo requests/min   latency p50   p99 (ms)   worst (ms)   of");
    for (bus, f) in &results {
        println!(
            "{:<15} {:>24.1}   {:>11.0}   {:>8.0}   {:>10.0}   {}",
            if *bus { "with the bus" } else { "polling only" },
            f.idle_per_minute,
            percentile(&f.latencies_ms, 0.5),
            percentile(&f.latencies_ms, 0.99),
            f.latencies_ms.iter().copied().fold(0.0, f64::max),
            f.latencies_ms.len()
        );
    }
    if let (Some((_, with)), Some((_, without))) = (
        results.iter().find(|(b, _)| *b),
        results.iter().find(|(b, _)| !*b),
    ) {
        println!(
            "idle requests: {:.1}x fewer with the bus (target: 10x)",
            without.idle_per_minute / with.idle_per_minute.max(0.001)
        );
    }
    if let Some((_, with)) = results.iter().find(|(b, _)| *b) {
        let p50 = percentile(&with.latencies_ms, 0.5);
        let worst = with.latencies_ms.iter().copied().fold(0.0, f64::max);
        println!(
            "targets with the bus: median <= 100 ms {}, worst <= 300 ms {}",
            if p50 <= 100.0 { "met" } else { "NOT met" },
            if worst <= 300.0 { "met" } else { "NOT met" }
        );
    }
}

async fn run(args: &Args, real: &RealOdoo, bus: bool) -> Figures {
    let name = if bus { "with the bus" } else { "polling only" };
    let (meta, _meta_stop) = e2e_support::start_meta(real.meta_config(80)).await;
    let proxy = OdooProxy::start(&real.target.url).await;
    let mut proxied = real.target.clone();
    proxied.url = proxy.url.clone();
    let mut config = DaemonConfig::new(&proxied, &meta.base_url());
    config.set("odoo.timeout_secs", 30);
    config.default_intervals();
    config.set("log.filter", "warn,whatsapp_sidecar::bus=info");
    if bus {
        // The websocket straight to Odoo; JSON-RPC through the counting proxy.
        config.set("bus.url", real.target.url.as_str());
    } else {
        config.set("bus.enabled", false);
    }
    config.apply(&args.settings);
    let (mut daemon, logs, _keep) = real.start_daemon(&meta, &config).await;
    if bus {
        let deadline = Instant::now() + Duration::from_secs(30);
        while logs.matching(&["subscribed to Odoo's bus"]).is_empty() {
            assert!(
                Instant::now() < deadline,
                "the daemon did not subscribe to the bus:\n{}",
                logs.tail(20)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    // Let the start-up work (the accounts' first check, caches) pass.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let requests = || proxy.counts.lock().map(|c| c.requests).unwrap_or(0);
    let r0 = requests();
    tokio::time::sleep(Duration::from_secs(args.idle_secs)).await;
    let idle = requests() - r0;
    let idle_per_minute = idle as f64 * 60.0 / args.idle_secs as f64;
    println!(
        "{name}: {idle} requests to Odoo in {} s of idle daemon = {idle_per_minute:.1}/min",
        args.idle_secs
    );

    let mut latencies_ms = Vec::new();
    for i in 0..args.messages {
        let phone = format!("+3361{:07}", 9_000_000 + i + if bus { 0 } else { 500 });
        let partner = real.partner(&format!("Bus bench {i}"), &phone, true).await;
        let wizard = real
            .create(
                "whatsapp.send.partner.message",
                json!({"account_id": real.account, "partner_ids": [[6, 0, [partner]]],
                       "message_type": "template", "template_id": real.template}),
            )
            .await
            .unwrap_or_else(|e| panic!("cannot open the composer: {e}"));
        let accepted = || meta.stats()["accepted"].as_u64().unwrap_or(0);
        let before = accepted();
        let _: serde_json::Value = real
            .client
            .call(
                "whatsapp.send.partner.message",
                "action_send",
                json!([[wizard]]),
                json!({}),
            )
            .await
            .unwrap_or_else(|e| panic!("Send failed: {e}"));
        let clicked = Instant::now();
        let deadline = clicked + Duration::from_secs(30);
        while accepted() == before {
            assert!(
                Instant::now() < deadline,
                "message {i} not accepted within 30 s:\n{}",
                logs.tail(20)
            );
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let ms = clicked.elapsed().as_secs_f64() * 1000.0;
        println!("{name}: message {i}: accepted by Meta {ms:.0} ms after Send");
        latencies_ms.push(ms);
        let gap = 500 + fastrand::u64(..1000);
        tokio::time::sleep(Duration::from_millis(gap)).await;
    }
    if let Some(status) = daemon.exited() {
        panic!("the daemon exited: {status}\n{}", logs.tail(50));
    }
    let status = daemon.terminate(Duration::from_secs(30)).await;
    if !status.success() {
        println!("the daemon exited with {status}:\n{}", logs.tail(30));
    }
    Figures {
        idle_per_minute,
        latencies_ms,
    }
}

/// The `q` quantile (nearest rank) of `values`.
fn percentile(values: &[f64], q: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}
