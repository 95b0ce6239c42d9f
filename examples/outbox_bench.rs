//! Outbox send-path benchmark: the Odoo stand-in holds N queued template messages, the sandbox
//! plays Meta at 1,000 messages/s, and the outbox sends them all. Reports the sustained rate,
//! Odoo calls per message (with the breakdown by model and method), and the outbox's CPU time
//! per message (its own runtime's threads only, from /proc/self/task/*/schedstat).
//!
//! ```text
//! cargo run --release --example outbox_bench -- [--messages 60000] [--mps 1000]
//!     [--recipients 8000] [--batch-size 200] [--concurrency 64] [--no-notes]
//! ```
//!
//! The stand-in and the sandbox run on one runtime (2 threads, named `peers`), the outbox on
//! another (2 threads, named `outbox`). Loopback only. Linux only for the CPU figures.

#[path = "../tests/support/mod.rs"]
mod support;

use clap::Parser;
use serde_json::json;
use std::collections::HashMap;
use std::time::{Duration, Instant};
use support::{client_config, OdooStandin};
use tokio_util::sync::CancellationToken;
use whatsapp_sidecar::odoo::OdooClient;
use whatsapp_sidecar::outbox::{run, OutboxContext, OutboxSettings};
use whatsapp_sidecar::sandbox::{SandboxConfig, SandboxHandle};
use whatsapp_sidecar::whatsapp::{ClientConfig, CloudClient};

#[derive(Parser, Debug)]
struct Args {
    /// Messages queued before the outbox starts.
    #[arg(long, default_value_t = 60_000)]
    messages: usize,
    /// The account's (and the sandbox number's) throughput.
    #[arg(long, default_value_t = 1000)]
    mps: u32,
    /// Distinct recipients (the pair rate allows one message per recipient per 6 s, so at
    /// 1,000/s at least 6,000 are needed).
    #[arg(long, default_value_t = 8000)]
    recipients: usize,
    #[arg(long, default_value_t = 200)]
    batch_size: usize,
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// Do not post chatter notes.
    #[arg(long)]
    no_notes: bool,
}

/// Nanoseconds on CPU of this process's threads whose name starts with `prefix`.
fn cpu_ns(prefix: &str) -> u64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .flatten()
        .filter(|t| {
            std::fs::read_to_string(t.path().join("comm"))
                .map(|c| c.trim().starts_with(prefix))
                .unwrap_or(false)
        })
        .filter_map(|t| std::fs::read_to_string(t.path().join("schedstat")).ok())
        .filter_map(|s| s.split_whitespace().next()?.parse::<u64>().ok())
        .sum()
}

fn peak_rss_mb() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map(|kb| kb / 1024.0)
        .unwrap_or(0.0)
}

fn main() {
    let args = Args::parse();
    let peers = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("peers")
        .enable_all()
        .build()
        .expect("peers runtime");
    let outbox_rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("outbox")
        .enable_all()
        .build()
        .expect("outbox runtime");

    let peers_stop = CancellationToken::new();
    let (standin, sandbox) = peers.block_on(async {
        let standin = OdooStandin::start().await;
        let mut config = SandboxConfig::default();
        config.phone_numbers[0].throughput_mps = args.mps;
        config.record_limit = args.messages + 10;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind sandbox");
        let sandbox = SandboxHandle::start(listener, config, peers_stop.clone())
            .await
            .expect("sandbox");
        (standin, sandbox)
    });

    // Seed: one account at the target rate, an approved template, opted-in recipients.
    let account = standin.add_account("Bench", "sandbox-0001", i64::from(args.mps));
    let template = standin.insert(
        "whatsapp.template",
        json!({"name": "sidecar_hello", "language": "en_US", "account_id": account,
               "status": "approved",
               "components_json": "[{\"type\": \"BODY\", \"text\": \"Hello! Thanks for choosing us.\"}]"}),
    );
    let partners: Vec<i64> = (0..args.recipients)
        .map(|i| standin.add_partner(&format!("R{i}"), &format!("+3361{i:07}"), true))
        .collect();
    let seeded = Instant::now();
    for i in 0..args.messages {
        let partner = partners[i % partners.len()];
        standin.queue_message_with(
            account,
            partner,
            json!({"message_type": "template", "template_id": template,
                   "res_model": "res.partner", "res_id": partner}),
        );
    }
    println!(
        "seeded {} messages to {} recipients in {:.1}s",
        args.messages,
        args.recipients,
        seeded.elapsed().as_secs_f64()
    );

    let settings = OutboxSettings {
        batch_size: args.batch_size,
        max_in_flight: args.batch_size * 3,
        concurrency: args.concurrency,
        chatter_notes: !args.no_notes,
        ..OutboxSettings::default()
    };
    let odoo = OdooClient::new(client_config(&standin)).expect("odoo client");
    let graph = sandbox.base_url().parse().expect("url");
    let whatsapp = CloudClient::new(ClientConfig::new(graph, "v25.0")).expect("cloud client");
    let ctx = OutboxContext::new(odoo, whatsapp, settings);
    let stats = ctx.stats.clone();
    let shutdown = CancellationToken::new();

    standin.reset_counters();
    let requests_before = standin.requests();
    let cpu_before = cpu_ns("outbox");
    let peers_before = cpu_ns("peers");
    let started = Instant::now();
    let task = outbox_rt.spawn(run(ctx, shutdown.clone()));

    let mut per_second: Vec<u64> = Vec::new();
    let mut last = 0u64;
    loop {
        std::thread::sleep(Duration::from_secs(1));
        let sent = stats.snapshot().sent;
        per_second.push(sent - last);
        last = sent;
        if sent as usize >= args.messages || started.elapsed() > Duration::from_secs(600) {
            break;
        }
    }
    let elapsed = started.elapsed();
    // Let the last write-back land.
    std::thread::sleep(Duration::from_millis(800));
    let cpu = cpu_ns("outbox").saturating_sub(cpu_before);
    let peers_cpu = cpu_ns("peers").saturating_sub(peers_before);
    shutdown.cancel();
    outbox_rt.block_on(async {
        let _ = task.await;
    });
    let calls = standin.requests() - requests_before;
    let sent_in_odoo = standin
        .search("whatsapp.message", json!([["state", "=", "sent"]]))
        .len();
    let snapshot = stats.snapshot();

    let steady: Vec<u64> = if per_second.len() > 2 {
        per_second[1..per_second.len() - 1].to_vec()
    } else {
        per_second.clone()
    };
    let steady_rate = steady.iter().sum::<u64>() as f64 / steady.len().max(1) as f64;
    let n = snapshot.sent.max(1) as f64;
    println!("--- outbox_bench ---");
    println!(
        "sent {} (written sent in Odoo: {sent_in_odoo}), retried {}, failed {}, requeued {}",
        snapshot.sent, snapshot.retried, snapshot.failed, snapshot.requeued
    );
    println!(
        "elapsed {:.1}s, overall {:.0} msg/s, steady {:.0} msg/s (min {} max {} per second)",
        elapsed.as_secs_f64(),
        snapshot.sent as f64 / elapsed.as_secs_f64(),
        steady_rate,
        steady.iter().min().copied().unwrap_or(0),
        steady.iter().max().copied().unwrap_or(0)
    );
    println!(
        "odoo calls {calls} = {:.4} per message; polls {}, flushes {}",
        calls as f64 / n,
        snapshot.polls,
        snapshot.flushes
    );
    let mut by_call: Vec<((String, String), u64)> = standin.call_counts().into_iter().collect();
    by_call.sort_by_key(|c| std::cmp::Reverse(c.1));
    let breakdown: HashMap<String, u64> = by_call
        .iter()
        .map(|((m, f), c)| (format!("{m}.{f}"), *c))
        .collect();
    println!("  by call: {breakdown:?}");
    println!(
        "outbox CPU {:.2}s = {:.1} µs per message (outbox runtime threads only)",
        cpu as f64 / 1e9,
        cpu as f64 / 1e3 / n
    );
    println!(
        "stand-in + sandbox CPU {:.2}s ({:.1} µs per message)",
        peers_cpu as f64 / 1e9,
        peers_cpu as f64 / 1e3 / n
    );
    println!("sent per second: {per_second:?}");
    println!(
        "peak RSS of the whole process (outbox + stand-in + sandbox): {:.0} MB",
        peak_rss_mb()
    );
    println!("sandbox: {}", sandbox.stats());
    peers_stop.cancel();
}
