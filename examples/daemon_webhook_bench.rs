//! Webhook ingest benchmark against the real daemon binary: signed status webhooks POSTed to
//! `whatsapp-sidecar run` (a separate process, as in production) as fast as it takes them, with
//! the Odoo stand-in (in this process) as Odoo. Inbound processing runs as usual: the statuses
//! are about 1,000 sent messages, so they are applied (or ignored as duplicates) meanwhile.
//!
//! ```text
//! cargo build --release
//! cargo run --release --example daemon_webhook_bench -- [seconds=20] [concurrency=64]
//! ```
//!
//! Prints the rate of POSTs answered 200, latency percentiles, the daemon's CPU time per POST
//! and its peak resident memory, and checks that every 200 corresponds to a stored
//! `whatsapp.webhook.event`. Target: at least 5,000 POSTs/s with a p99 under 50 ms.

#[path = "../tests/e2e_support/mod.rs"]
mod e2e_support;
#[path = "../tests/support/mod.rs"]
mod support;

use e2e_support::{proc_sample, World, APP_SECRET, EVENT, MESSAGE, PHONE_ID};
use serde_json::json;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use whatsapp_sidecar::secret::Secret;
use whatsapp_sidecar::whatsapp::signature::sign;

const MESSAGES: usize = 1_000;

fn body(n: usize) -> String {
    let status = if (n / MESSAGES) % 2 == 0 {
        "delivered"
    } else {
        "read"
    };
    let m = n % MESSAGES;
    format!(
        r#"{{"object":"whatsapp_business_account","entry":[{{"id":"sandbox-waba","changes":[{{"field":"messages","value":{{"messaging_product":"whatsapp","metadata":{{"display_phone_number":"15550000001","phone_number_id":"{PHONE_ID}"}},"statuses":[{{"id":"wamid.BENCH{m:06}","status":"{status}","timestamp":"{}","recipient_id":"3361{m:07}","recipient_user_id":"FR.1349120865530{m:06}","biz_opaque_callback_data":"","pricing":{{"pricing_model":"PMP","type":"regular","category":"utility"}}}}]}}}}]}}]}}"#,
        1_750_857_384 + n
    )
}

fn arg(n: usize, default: u64) -> u64 {
    std::env::args()
        .nth(n)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

#[tokio::main]
async fn main() {
    let seconds = arg(1, 20);
    let concurrency = arg(2, 64) as usize;

    let mut w = World::new(1000).await;
    let partner = w.partner("Bench", "+33 6 12 34 56 78", true);
    for m in 0..MESSAGES {
        let id = w.odoo.queue_message(w.account, partner, "bench");
        w.odoo.update(
            MESSAGE,
            id,
            json!({"state": "sent", "wamid": format!("wamid.BENCH{m:06}"),
                   "sent_at": "2025-06-25 13:29:44", "to_e164": "+33612345678"}),
        );
    }
    w.config.default_intervals();
    w.config.set("log.filter", "warn");
    w.start_daemon().await;
    let pid = w.daemon().pid();
    w.odoo.reset_counters();

    let secret = Secret::new(APP_SECRET);
    let bodies: Arc<Vec<(String, String)>> = Arc::new(
        (0..MESSAGES * 2)
            .map(|n| {
                let b = body(n);
                let s = sign(&secret, b.as_bytes());
                (b, s)
            })
            .collect(),
    );
    let url = w.config.url("/webhook");
    println!(
        "webhook ingest against the daemon binary (pid {pid}): {concurrency} concurrent senders for {seconds} s, {} byte bodies",
        bodies[0].0.len()
    );
    let before = proc_sample(pid).unwrap_or_default();
    let started = Instant::now();
    let senders = support::webhook_load::start(&url, bodies.clone(), concurrency);
    let failures = senders.failures.clone();
    let mut peak_rss = 0;
    while started.elapsed() < Duration::from_secs(seconds) {
        tokio::time::sleep(Duration::from_millis(500)).await;
        if let Some(s) = proc_sample(pid) {
            peak_rss = peak_rss.max(s.peak_rss_kib);
        }
    }
    let latencies = senders.finish().await;
    let elapsed = started.elapsed();
    let after = proc_sample(pid).unwrap_or_default();
    peak_rss = peak_rss.max(after.peak_rss_kib);
    let ok = latencies.len();
    let pct = |p: f64| {
        latencies
            .get(((ok as f64 * p) as usize).min(ok.saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    let stored = w.odoo.count(EVENT);
    let creates = w.odoo.calls(EVENT, "create");
    let rate = ok as f64 / elapsed.as_secs_f64();
    let cpu = after.cpu.saturating_sub(before.cpu);
    println!(
        "answered 200: {ok} in {:.1} s = {rate:.0} POSTs/s",
        elapsed.as_secs_f64()
    );
    println!(
        "latency: p50 {:.1} ms, p90 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        pct(0.50).as_secs_f64() * 1e3,
        pct(0.90).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        pct(1.0).as_secs_f64() * 1e3
    );
    println!(
        "failed requests: {}; events stored: {stored}; create calls: {creates} ({:.0} events per call); Odoo requests in all: {}",
        failures.load(Ordering::Relaxed),
        stored as f64 / creates.max(1) as f64,
        w.odoo.requests()
    );
    println!(
        "daemon: CPU {:.2} s = {:.0} µs per POST (receiving, storing and processing); peak RSS {:.1} MB",
        cpu.as_secs_f64(),
        cpu.as_secs_f64() * 1e6 / ok.max(1) as f64,
        peak_rss as f64 / 1024.0
    );
    let processed = w
        .odoo
        .search(EVENT, json!([["processed", "=", true]]))
        .len();
    println!("events processed by the daemon meanwhile: {processed} of {stored}");
    let verdict = rate >= 5000.0 && pct(0.99) < Duration::from_millis(50);
    println!(
        "target (>= 5000/s, p99 < 50 ms): {}",
        if verdict { "met" } else { "NOT met" }
    );
    let status = w.stop_daemon().await;
    if stored < ok {
        println!("ERROR: {} answered 200 but not stored", ok - stored);
        std::process::exit(1);
    }
    if !status.success() {
        println!("ERROR: the daemon exited with {status}");
        std::process::exit(1);
    }
}
