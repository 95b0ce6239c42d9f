//! Webhook ingest benchmark: signed status webhooks POSTed to the receiver as fast as it takes
//! them, with the Odoo stand-in as the store, everything on 127.0.0.1 in one process.
//!
//! ```text
//! cargo run --release --example webhook_bench -- [seconds=10] [concurrency=64]
//! ```
//!
//! Prints the rate of answered POSTs, latency percentiles, the `create` calls the stand-in
//! received, and checks that every 200 corresponds to a stored `whatsapp.webhook.event`.
//! Target: at least 5,000 POSTs/s with a p99 under 50 ms.

#[path = "../tests/support/mod.rs"]
mod support;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::{client_config, OdooStandin};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use whatsapp_sidecar::odoo::OdooClient;
use whatsapp_sidecar::secret::Secret;
use whatsapp_sidecar::webhook::{
    self, Ingest, OdooEventStore, OdooKeySource, WebhookConfig, WebhookState,
};
use whatsapp_sidecar::whatsapp::signature::sign;

const PHONE_ID: &str = "106540352242922";

fn body(n: usize) -> String {
    format!(
        r#"{{"object":"whatsapp_business_account","entry":[{{"id":"waba-{PHONE_ID}","changes":[{{"field":"messages","value":{{"messaging_product":"whatsapp","metadata":{{"display_phone_number":"15550100","phone_number_id":"{PHONE_ID}"}},"statuses":[{{"id":"wamid.HBgLMTY1MDM4Nzk0MzkVAgARGBI{n:08}","status":"delivered","timestamp":"1750857384","recipient_id":"16505551234","recipient_user_id":"US.13491208655302741918","biz_opaque_callback_data":"{n}","pricing":{{"pricing_model":"PMP","type":"regular","category":"utility"}}}}]}}}}]}}]}}"#
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
    let seconds = arg(1, 10);
    let concurrency = arg(2, 64) as usize;

    let odoo = OdooStandin::start().await;
    odoo.add_account("Bench", PHONE_ID, 1000);
    let mut cfg = client_config(&odoo);
    cfg.max_concurrent_requests = 8;
    let client = match OdooClient::new(cfg) {
        Ok(c) => c,
        Err(e) => panic!("Odoo client: {e}"),
    };
    let tracker = TaskTracker::new();
    let shutdown = CancellationToken::new();
    let config = WebhookConfig::default();
    let ingest = Ingest::spawn(
        OdooEventStore::new(client.clone()),
        config.ingest.clone(),
        &tracker,
        shutdown.clone(),
    );
    let keys = webhook::spawn_refresher(
        OdooKeySource::new(client),
        config.keys.clone(),
        &tracker,
        shutdown.clone(),
    );
    if keys.loaded().await.is_none() {
        panic!("webhook keys did not load");
    }
    let app = webhook::router(WebhookState::new(keys, ingest, &config));
    let listener = match tokio::net::TcpListener::bind("127.0.0.1:0").await {
        Ok(l) => l,
        Err(e) => panic!("bind: {e}"),
    };
    let url = match listener.local_addr() {
        Ok(a) => format!("http://{a}{}", webhook::PATH),
        Err(e) => panic!("address: {e}"),
    };
    let token = shutdown.clone();
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move { token.cancelled().await })
            .await
    });

    let secret = Secret::new("sandbox-secret");
    let bodies: Arc<Vec<(String, String)>> = Arc::new(
        (0..1000)
            .map(|n| {
                let b = body(n);
                let s = sign(&secret, b.as_bytes());
                (b, s)
            })
            .collect(),
    );
    println!(
        "webhook ingest: {concurrency} concurrent senders for {seconds} s, {} byte bodies",
        bodies[0].0.len()
    );

    let started = Instant::now();
    let senders = support::webhook_load::start(&url, bodies.clone(), concurrency);
    let failures = senders.failures.clone();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let latencies = senders.finish().await;
    let elapsed = started.elapsed();
    let ok = latencies.len();
    let pct = |p: f64| {
        latencies
            .get(((ok as f64 * p) as usize).min(ok.saturating_sub(1)))
            .copied()
            .unwrap_or_default()
    };
    let stored = odoo.count("whatsapp.webhook.event");
    let creates = odoo.calls("whatsapp.webhook.event", "create");
    let rate = ok as f64 / elapsed.as_secs_f64();
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
        "failed requests: {}; events stored: {stored}; create calls: {creates} ({:.0} events per call)",
        failures.load(Ordering::Relaxed),
        stored as f64 / creates.max(1) as f64
    );
    let verdict = rate >= 5000.0 && pct(0.99) < Duration::from_millis(50);
    println!(
        "target (>= 5000/s, p99 < 50 ms): {}",
        if verdict { "met" } else { "NOT met" }
    );
    if stored < ok {
        println!("ERROR: {} answered 200 but not stored", ok - stored);
        std::process::exit(1);
    }
    shutdown.cancel();
}
