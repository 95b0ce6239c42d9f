//! Menu press benchmark against the real daemon binary: a customer presses an option of a menu
//! (a button-reply webhook from the sandbox) and the time until the daemon's reply is accepted
//! by the sandbox is measured, with the shipped settings (poll intervals, batches), the Odoo
//! stand-in as Odoo.
//!
//! ```text
//! cargo build --release
//! cargo run --release --example scenario_bench -- [presses=200] [gap_ms=250] [section.key=value...]
//! ```
//!
//! `section.key=value` arguments change the daemon's configuration (e.g.
//! `outbox.poll_interval_secs=0.25`) to compare settings.
//!
//! Each press comes from its own customer (so Meta's pair rate never delays a reply), `gap_ms`
//! apart plus a random 0-100 ms, alternating two options: a pure reply (the option's reply
//! text) and a server action on the customer's contact (one more Odoo call, then the action's
//! reply text). Prints p50, p90, p99 and max per kind. Target: p50 ≤ 1 s.

#[path = "../tests/e2e_support/mod.rs"]
mod e2e_support;
#[path = "../tests/support/mod.rs"]
mod support;

use e2e_support::World;
use serde_json::json;
use std::time::{Duration, Instant};
use whatsapp_sidecar::sandbox::{InjectRequest, RecordFilter, ReplyRef};

fn arg(n: usize, default: u64) -> u64 {
    std::env::args()
        .nth(n)
        .and_then(|a| a.parse().ok())
        .unwrap_or(default)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() {
    let presses = arg(1, 200) as usize;
    let gap = Duration::from_millis(arg(2, 250));

    let mut w = World::new(80).await;
    // The shipped settings, not the tests' short intervals.
    w.config.default_intervals();
    w.config.set("log.filter", "warn");
    for setting in std::env::args().skip(3) {
        let Some((key, value)) = setting.split_once('=') else {
            panic!("{setting}: expected section.key=value");
        };
        match value.parse::<i64>() {
            Ok(n) => w.config.set(key, n),
            Err(_) => match value.parse::<f64>() {
                Ok(f) => w.config.set(key, f),
                Err(_) => w.config.set(key, value),
            },
        }
    }
    let reply_action = w.odoo.insert(
        "whatsapp.button.action",
        json!({"name": "Thanks", "button_id": "bench_thanks", "action_type": "server_action",
               "server_action_id": 345, "reply_text": "Noted, thank you!"}),
    );
    let menu = w.odoo.insert(
        "whatsapp.interactive.scenario",
        json!({"name": "Bench", "trigger_keywords": "bench", "interaction_type": "buttons", "body": "Choose"}),
    );
    w.odoo.insert(
        "whatsapp.interactive.scenario.option",
        json!({"scenario_id": menu, "sequence": 1, "button_id": "bench_reply", "title": "Talk to us",
               "reply_text": "A member of our team will answer you shortly."}),
    );
    w.odoo.insert(
        "whatsapp.interactive.scenario.option",
        json!({"scenario_id": menu, "sequence": 2, "button_id": "bench_thanks", "title": "Mark me",
               "button_action_id": reply_action}),
    );
    let numbers: Vec<String> = (0..presses).map(|i| format!("+3361{:07}", i)).collect();
    for (i, n) in numbers.iter().enumerate() {
        w.partner(&format!("Bench {i}"), n, true);
    }
    w.start_daemon().await;
    tokio::time::sleep(Duration::from_secs(2)).await;

    let mut reply = Vec::new();
    let mut server = Vec::new();
    let mut pending: Vec<(usize, Instant)> = Vec::new();
    let started = Instant::now();
    for (i, number) in numbers.iter().enumerate() {
        let (id, title) = if i % 2 == 0 {
            ("bench_reply", "Talk to us")
        } else {
            ("bench_thanks", "Mark me")
        };
        let at = Instant::now();
        if let Err(e) = w.meta.inject(&InjectRequest {
            from: number.clone(),
            button_reply: Some(ReplyRef {
                id: id.into(),
                title: Some(title.into()),
            }),
            ..Default::default()
        }) {
            panic!("inject: {e}");
        }
        if std::env::var_os("E2E_LOG").is_some() {
            eprintln!(
                "{} press {i} injected",
                chrono::Utc::now().format("%H:%M:%S%.3f")
            );
        }
        pending.push((i, at));
        let jitter = Duration::from_millis(fastrand::u64(0..100));
        let until = Instant::now() + gap + jitter;
        while Instant::now() < until {
            pending.retain(|(i, at)| {
                let got = w
                    .meta
                    .messages(&RecordFilter {
                        to: Some(numbers[*i].clone()),
                        ..RecordFilter::default()
                    })
                    .map(|m| !m.is_empty())
                    .unwrap_or(false);
                if got {
                    let took = at.elapsed();
                    if i % 2 == 0 {
                        reply.push(took);
                    } else {
                        server.push(took);
                    }
                }
                !got
            });
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while !pending.is_empty() && Instant::now() < deadline {
        pending.retain(|(i, at)| {
            let got = w
                .meta
                .messages(&RecordFilter {
                    to: Some(numbers[*i].clone()),
                    ..RecordFilter::default()
                })
                .map(|m| !m.is_empty())
                .unwrap_or(false);
            if got {
                let took = at.elapsed();
                if i % 2 == 0 {
                    reply.push(took);
                } else {
                    server.push(took);
                }
            }
            !got
        });
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    println!(
        "{presses} presses in {:.1} s, {} without a reply after 30 s",
        started.elapsed().as_secs_f64(),
        pending.len()
    );
    for (name, mut v) in [("pure reply", reply), ("server action", server)] {
        v.sort();
        println!(
            "{name:>13}: {} presses, press webhook → reply accepted by the sandbox: p50 {:.0} ms, p90 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
            v.len(),
            percentile(&v, 0.5).as_secs_f64() * 1e3,
            percentile(&v, 0.9).as_secs_f64() * 1e3,
            percentile(&v, 0.99).as_secs_f64() * 1e3,
            v.last().copied().unwrap_or_default().as_secs_f64() * 1e3,
        );
    }
    println!(
        "Odoo calls: ir.actions.server.run {}",
        w.odoo.calls("ir.actions.server", "run")
    );
    let _ = w.stop_daemon().await;
}
