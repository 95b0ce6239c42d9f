//! Send-path benchmark against the real daemon binary: the Odoo stand-in (in this process)
//! holds queued template messages, the sandbox (in this process) plays Meta at the account's
//! throughput and sends `sent`, `delivered` and `read` webhooks for every message, and
//! `whatsapp-sidecar run` (a separate process, release build) sends them and writes everything
//! back.
//!
//! ```text
//! cargo build --release
//! cargo run --release --example daemon_send_bench -- [--seconds 60] [--mps 1000]
//! ```
//!
//! Measured over the window (after a 2 s warm-up):
//! - the sustained rate: messages Meta accepted per second;
//! - the write-back backlog, sampled every second and shown as the highest of each 5 s: accepted by Meta but not yet `sent` (or further) in Odoo,
//!   and accepted more than 1 s ago but not yet `read` in Odoo (the sandbox reads each message
//!   within 140 ms): both must stay flat;
//! - Odoo calls per message: HTTP requests the stand-in received (every call: polls, claims,
//!   write-backs, notes, webhook event creates, inbound processing) / messages accepted;
//! - daemon CPU per message: utime + stime of the daemon process (`/proc/<pid>/stat`) / messages
//!   accepted, which includes receiving, storing and applying the three status webhooks of
//!   each message;
//! - the daemon's peak resident memory (`VmHWM`).

#[path = "../tests/e2e_support/mod.rs"]
mod e2e_support;
#[path = "../tests/support/mod.rs"]
mod support;

use clap::Parser;
use e2e_support::{proc_sample, World, MESSAGE};
use serde_json::json;
use std::time::{Duration, Instant};

#[derive(Parser, Debug)]
struct Args {
    /// Length of the measured window.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// The account's (and the sandbox number's) throughput.
    #[arg(long, default_value_t = 1000)]
    mps: u32,
    /// Distinct recipients (one message per recipient per 6.5 s: at 1,000/s at least 6,500).
    #[arg(long, default_value_t = 8000)]
    recipients: usize,
    /// Statuses Meta puts in one webhook POST when they are due together (1: one each).
    #[arg(long, default_value_t = 1)]
    webhook_batch: usize,
    /// Latency the stand-in adds to every request, in milliseconds (a real Odoo takes a few
    /// milliseconds per call; 0: answer at once).
    #[arg(long, default_value_t = 0)]
    odoo_latency_ms: u64,
    /// Webhook POSTs Meta (the sandbox) has in flight at once.
    #[arg(long, default_value_t = 512)]
    meta_concurrency: usize,
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
    runtime.block_on(bench(args));
}

async fn bench(args: Args) {
    let total = args.mps as usize * (args.seconds as usize + 10);
    let mut meta = e2e_support::meta_config(args.mps);
    meta.record_limit = total + 10;
    meta.webhooks.batch_max = args.webhook_batch.max(1);
    meta.webhooks.concurrency = args.meta_concurrency.max(1);
    let mut w = World::with_meta(meta, args.mps).await;
    w.config.default_intervals();
    w.config.set("log.filter", "warn");
    w.config.apply(&args.settings);
    let template = w.hello_template("approved");
    let partners: Vec<i64> = (0..args.recipients)
        .map(|i| w.partner(&format!("R{i}"), &format!("+3361{i:07}"), true))
        .collect();
    let seeding = Instant::now();
    for i in 0..total {
        w.queue_template(partners[i % partners.len()], template);
    }
    println!(
        "queued {total} template messages to {} recipients in {:.1} s; account and sandbox at {} msg/s; {} status(es) per webhook POST; stand-in latency {} ms; settings {:?}",
        args.recipients,
        seeding.elapsed().as_secs_f64(),
        args.mps,
        args.webhook_batch,
        args.odoo_latency_ms,
        args.settings
    );

    w.odoo
        .set_latency(Duration::from_millis(args.odoo_latency_ms));
    w.start_daemon().await;
    let pid = w.daemon().pid();
    let count = |w: &World, states: &[&str]| {
        w.odoo
            .search(MESSAGE, json!([["state", "in", states]]))
            .len() as u64
    };
    // Warm-up.
    let warm = Instant::now();
    while w.accepted() < u64::from(args.mps) * 2 && warm.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let a0 = w.accepted();
    let r0 = w.odoo.requests();
    let p0 = proc_sample(pid).unwrap_or_default();
    let me0 = proc_sample(std::process::id()).unwrap_or_default();
    let t0 = Instant::now();
    let mut peak_rss = p0.peak_rss_kib;
    let mut read_lag_at: Vec<(u64, u64)> = Vec::new(); // (t, accepted) to know what is 1 s old
                                                       // The backlog is sampled every second (the write-back runs every 0.5 s, so 5 s samples alone
                                                       // alias into a slow sawtooth); each line shows the highest of its five samples.
    println!("   t   accepted   rate/s   not yet sent in Odoo (max of 5 s)   not yet read in Odoo, accepted > 1 s ago (max of 5 s)   statuses not yet POSTed by Meta");
    let mut last = (0.0f64, a0);
    let mut backlogs = Vec::new();
    let mut window = (0u64, 0u64);
    let mut next_report = 5;
    while t0.elapsed() < Duration::from_secs(args.seconds) {
        // About a second apart, at random offsets: the write-back runs every 0.5 s, and samples
        // taken at a fixed period beat against it into a slow sawtooth that looks like growth.
        tokio::time::sleep(Duration::from_millis(700 + fastrand::u64(0..600))).await;
        let t = t0.elapsed().as_secs();
        let a = w.accepted();
        read_lag_at.push((t, a));
        if let Some(s) = proc_sample(pid) {
            peak_rss = peak_rss.max(s.peak_rss_kib);
        }
        let sent_or_later = count(&w, &["sent", "delivered", "read"]);
        let read = count(&w, &["read"]);
        let old = read_lag_at
            .iter()
            .rev()
            .find(|(ts, _)| *ts < t)
            .map(|(_, a)| *a)
            .unwrap_or(a0);
        let not_sent = a.saturating_sub(sent_or_later);
        let not_read = old.saturating_sub(read);
        backlogs.push((t0.elapsed().as_secs_f64(), not_sent, not_read));
        window = (window.0.max(not_sent), window.1.max(not_read));
        if t >= next_report {
            next_report += 5;
            println!(
                "{t:>4}   {a:>8}   {:>6.0}   {:>33}   {:>55}   {:>31}",
                (a - last.1) as f64 / (t0.elapsed().as_secs_f64() - last.0).max(0.001),
                window.0,
                window.1,
                w.meta.stats()["statuses_pending"]
            );
            window = (0, 0);
            last = (t0.elapsed().as_secs_f64(), a);
        }
    }
    let elapsed = t0.elapsed().as_secs_f64();
    let states: Vec<String> = ["queued", "sending", "sent", "delivered", "read", "failed"]
        .iter()
        .map(|s| format!("{s} {}", count(&w, &[s])))
        .collect();
    let a1 = w.accepted();
    let r1 = w.odoo.requests();
    let p1 = proc_sample(pid).unwrap_or_default();
    let me1 = proc_sample(std::process::id()).unwrap_or_default();
    peak_rss = peak_rss.max(p1.peak_rss_kib);
    let sent = a1 - a0;
    let rate = sent as f64 / elapsed;
    let calls = (r1 - r0) as f64 / sent.max(1) as f64;
    let cpu_us = p1.cpu.saturating_sub(p0.cpu).as_secs_f64() * 1e6 / sent.max(1) as f64;
    println!("--- over {elapsed:.1} s ---");
    println!(
        "messages by state at the end: {} (Meta accepted {a1})",
        states.join(", ")
    );
    println!(
        "rate: {sent} messages = {rate:.1}/s ({:+.1}% of {})",
        (rate / f64::from(args.mps) - 1.0) * 100.0,
        args.mps
    );
    println!("Odoo calls: {} = {calls:.4} per message", r1 - r0);
    println!(
        "daemon CPU: {:.2} s = {cpu_us:.0} µs per message (with its three status webhooks)",
        p1.cpu.saturating_sub(p0.cpu).as_secs_f64()
    );
    println!("daemon peak RSS: {:.1} MB", peak_rss as f64 / 1024.0);
    println!(
        "this process (stand-in, sandbox, its webhooks): CPU {:.2} s = {:.0}% of one core",
        me1.cpu.saturating_sub(me0.cpu).as_secs_f64(),
        me1.cpu.saturating_sub(me0.cpu).as_secs_f64() * 100.0 / elapsed
    );
    let mut by_call: Vec<((String, String), u64)> = w.odoo.call_counts().into_iter().collect();
    by_call.sort_by_key(|c| std::cmp::Reverse(c.1));
    println!(
        "calls by model.method (whole run): {}",
        by_call
            .iter()
            .take(12)
            .map(|((m, f), n)| format!("{m}.{f} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    // The backlog's trend (least squares over the per-second samples, against their real
    // times): flat when it grows by less than 1% of the rate.
    let slope = |points: Vec<(f64, f64)>| -> f64 {
        let n = points.len() as f64;
        if n < 3.0 {
            return 0.0;
        }
        let mean_x = points.iter().map(|p| p.0).sum::<f64>() / n;
        let mean_y = points.iter().map(|p| p.1).sum::<f64>() / n;
        let (mut num, mut den) = (0.0, 0.0);
        for (x, y) in &points {
            num += (x - mean_x) * (y - mean_y);
            den += (x - mean_x) * (x - mean_x);
        }
        if den == 0.0 {
            0.0
        } else {
            num / den
        }
    };
    let sent_trend = slope(backlogs.iter().map(|b| (b.0, b.1 as f64)).collect());
    let read_trend = slope(backlogs.iter().map(|b| (b.0, b.2 as f64)).collect());
    println!(
        "backlog trend: not yet sent {sent_trend:+.1} messages/s, not yet read {read_trend:+.1} messages/s"
    );
    let growing = sent_trend.max(read_trend) > f64::from(args.mps) * 0.01;
    println!(
        "targets: rate within 5% {}, backlog flat {}, calls <= 0.05 {}, CPU <= 150 µs {}, RSS < 60 MB {}",
        verdict((rate - f64::from(args.mps)).abs() <= f64::from(args.mps) * 0.05),
        verdict(!growing),
        verdict(calls <= 0.05),
        verdict(cpu_us <= 150.0),
        verdict(peak_rss < 60 * 1024)
    );
    let status = w.stop_daemon().await;
    if !status.success() {
        println!("ERROR: the daemon exited with {status}");
        std::process::exit(1);
    }
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "NOT met"
    }
}
