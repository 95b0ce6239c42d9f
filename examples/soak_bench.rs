//! Soak benchmark: the real daemon binary sending at a steady 80 messages/s for a long time,
//! to see whether its memory or its CPU time per message creep up.
//!
//! The Odoo stand-in (in this process) is kept topped up with queued template messages (about
//! two seconds' worth waiting at any time, to 2,000 recipients in turn), the sandbox (in this
//! process) plays Meta at the account's throughput and sends `sent`, `delivered` and `read`
//! webhooks for every message, and `whatsapp-sidecar run` (a separate process, release build)
//! sends them and writes everything back with the shipped polling intervals. Like an Odoo
//! administrator's clean-up, messages read more than a minute ago, their processed webhook
//! events and the chatter notes are deleted from the stand-in as the run goes, so that this
//! process stays the same size for hours.
//!
//! ```text
//! cargo build --release
//! cargo run --release --example soak_bench -- [--minutes 60] [--window-secs 600] [--mps 80]
//! cargo run --release --example soak_bench -- --minutes 2 --window-secs 30   # a quick check
//! ```
//!
//! Every window (10 minutes by default) it prints the messages Meta accepted in it and in all,
//! the daemon's resident memory (`VmRSS` of `/proc/<pid>/status`) and its peak (`VmHWM`), and
//! the daemon's CPU time (utime + stime of `/proc/<pid>/stat`) per message in that window; at
//! the end a table of every window and the drift between the first and the last.

/// jemalloc, as the daemon: over an hour the system allocator's free lists in this process
/// (the stand-in and the sandbox allocate and free for every call) made its CPU per message
/// creep up by a third, on the core it shares with the daemon.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

#[path = "../tests/e2e_support/mod.rs"]
mod e2e_support;
#[path = "../tests/support/mod.rs"]
mod support;

use clap::Parser;
use e2e_support::{proc_sample, World, EVENT, MESSAGE};
use serde_json::json;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Parser, Debug)]
struct Args {
    /// How long to send.
    #[arg(long, default_value_t = 60)]
    minutes: u64,
    /// A line every this many seconds (10 minutes by default).
    #[arg(long, default_value_t = 600)]
    window_secs: u64,
    /// The account's (and the sandbox number's) throughput, the rate sent at.
    #[arg(long, default_value_t = 80)]
    mps: u32,
    /// Distinct recipients, in turn (Meta allows one message per recipient per 6 s).
    #[arg(long, default_value_t = 2000)]
    recipients: usize,
    /// Latency the stand-in adds to every request, in milliseconds.
    #[arg(long, default_value_t = 0)]
    odoo_latency_ms: u64,
    /// Extra daemon settings, `section.key=value` (TOML value), repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    settings: Vec<String>,
}

/// What one window measured.
struct Window {
    end_secs: u64,
    sent: u64,
    total: u64,
    rss_kib: u64,
    peak_kib: u64,
    cpu_us_per_message: f64,
    own_rss_kib: u64,
    own_cpu_us_per_message: f64,
    odoo_calls_per_message: f64,
}

fn main() {
    let args = Args::parse();
    if args.minutes == 0 || args.window_secs == 0 || args.mps == 0 {
        eprintln!("--minutes, --window-secs and --mps must be at least 1");
        std::process::exit(2);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"));
    runtime.block_on(bench(args));
}

async fn bench(args: Args) {
    let mut meta = e2e_support::meta_config(args.mps);
    // The record keeps the newest 20,000 accepted messages: bounded, whatever the length.
    meta.record_limit = 20_000;
    let mut w = World::with_meta(meta, args.mps).await;
    w.config.default_intervals();
    w.config.set("log.filter", "warn");
    w.config.apply(&args.settings);
    let template = w.hello_template("approved");
    let partners: Vec<i64> = (0..args.recipients)
        .map(|i| w.partner(&format!("S{i}"), &format!("+3362{i:07}"), true))
        .collect();
    let w = Arc::new(tokio::sync::Mutex::new(w));
    let (odoo_url, pid) = {
        let mut w = w.lock().await;
        w.odoo
            .set_latency(Duration::from_millis(args.odoo_latency_ms));
        // Two seconds' worth queued before the start.
        top_up(&w, &partners, template, u64::from(args.mps) * 2, &mut 0);
        w.start_daemon().await;
        (w.odoo.url(), w.daemon().pid())
    };
    let window = Duration::from_secs(args.window_secs);
    let length = Duration::from_secs(args.minutes * 60);
    println!(
        "soak: daemon pid {pid} sending at {} msg/s for {} min to {} recipients, a line every {} s; \
         Odoo stand-in at {odoo_url} (latency {} ms); settings {:?}",
        args.mps, args.minutes, args.recipients, args.window_secs, args.odoo_latency_ms, args.settings
    );

    // The feeder keeps about two seconds of messages queued; the cleaner deletes what is done.
    let stop = Arc::new(AtomicBool::new(false));
    let feeder = {
        let (w, stop, partners) = (w.clone(), stop.clone(), partners.clone());
        let backlog = u64::from(args.mps) * 2;
        tokio::spawn(async move {
            let mut next = 0usize;
            while !stop.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(200)).await;
                let w = w.lock().await;
                top_up(&w, &partners, template, backlog, &mut next);
            }
        })
    };
    let cleaner = {
        let (w, stop) = (w.clone(), stop.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_secs(10)).await;
                let w = w.lock().await;
                clean(&w);
            }
        })
    };

    let (a0, r0) = {
        let w = w.lock().await;
        (w.accepted(), w.odoo.requests())
    };
    let p0 = proc_sample(pid).unwrap_or_default();
    let own0 = proc_sample(std::process::id()).unwrap_or_default();
    let t0 = Instant::now();
    let mut windows: Vec<Window> = Vec::new();
    let mut last = (a0, r0, p0);
    let mut own_last = own0;
    let mut previous_end = 0.0f64;
    println!(
        "{:>7}  {:>9}  {:>7}  {:>10}  {:>14}  {:>14}  {:>15}  {:>17}  {:>16}  {:>21}",
        "t (s)",
        "sent",
        "rate/s",
        "sent total",
        "daemon RSS MB",
        "daemon peak MB",
        "CPU µs/message",
        "Odoo calls/message",
        "bench RSS MB",
        "bench CPU µs/message"
    );
    while t0.elapsed() < length {
        let next_end = t0 + window * (windows.len() as u32 + 1);
        let until = next_end.min(t0 + length);
        tokio::time::sleep_until(tokio::time::Instant::from_std(until)).await;
        let (a, r) = {
            let mut w = w.lock().await;
            if let Some(status) = w.daemon().exited() {
                println!("ERROR: the daemon exited with {status}");
                std::process::exit(1);
            }
            (w.accepted(), w.odoo.requests())
        };
        let Some(p) = proc_sample(pid) else {
            println!("ERROR: cannot read /proc/{pid}");
            std::process::exit(1);
        };
        let own = proc_sample(std::process::id()).unwrap_or_default();
        let sent = a - last.0;
        let elapsed = t0.elapsed().as_secs_f64();
        let span = elapsed - previous_end;
        previous_end = elapsed;
        let row = Window {
            end_secs: elapsed.round() as u64,
            sent,
            total: a - a0,
            rss_kib: p.rss_kib,
            peak_kib: p.peak_rss_kib,
            cpu_us_per_message: p.cpu.saturating_sub(last.2.cpu).as_secs_f64() * 1e6
                / sent.max(1) as f64,
            own_rss_kib: own.rss_kib,
            own_cpu_us_per_message: own.cpu.saturating_sub(own_last.cpu).as_secs_f64() * 1e6
                / sent.max(1) as f64,
            odoo_calls_per_message: (r - last.1) as f64 / sent.max(1) as f64,
        };
        println!(
            "{:>7}  {:>9}  {:>7.1}  {:>10}  {:>14.1}  {:>14.1}  {:>15.0}  {:>17.3}  {:>16.1}  {:>21.0}",
            row.end_secs,
            row.sent,
            sent as f64 / span.max(0.001),
            row.total,
            row.rss_kib as f64 / 1024.0,
            row.peak_kib as f64 / 1024.0,
            row.cpu_us_per_message,
            row.odoo_calls_per_message,
            row.own_rss_kib as f64 / 1024.0,
            row.own_cpu_us_per_message
        );
        last = (a, r, p);
        own_last = own;
        windows.push(row);
    }
    stop.store(true, Ordering::Relaxed);
    let _ = feeder.await;
    let _ = cleaner.await;

    let mut w = w.lock().await;
    let states: Vec<String> = ["queued", "sending", "sent", "delivered", "read", "failed"]
        .iter()
        .map(|s| {
            format!(
                "{s} {}",
                w.odoo.search(MESSAGE, json!([["state", "=", s]])).len()
            )
        })
        .collect();
    let stats = w.meta.stats();
    let status = w.stop_daemon().await;
    let elapsed = t0.elapsed().as_secs_f64();

    println!("--- summary over {elapsed:.0} s ---");
    println!(
        "{:>7}  {:>9}  {:>7}  {:>14}  {:>15}  {:>13}  {:>21}",
        "window",
        "sent",
        "rate/s",
        "daemon RSS MB",
        "CPU µs/message",
        "bench RSS MB",
        "bench CPU µs/message"
    );
    let mut start = 0;
    for row in &windows {
        println!(
            "{:>7}  {:>9}  {:>7.1}  {:>14.1}  {:>15.0}  {:>13.1}  {:>21.0}",
            format!("{start}-{}", row.end_secs),
            row.sent,
            row.sent as f64 / (row.end_secs - start).max(1) as f64,
            row.rss_kib as f64 / 1024.0,
            row.cpu_us_per_message,
            row.own_rss_kib as f64 / 1024.0,
            row.own_cpu_us_per_message
        );
        start = row.end_secs;
    }
    let total = windows.last().map(|r| r.total).unwrap_or(0);
    let cpu_total = last.2.cpu.saturating_sub(p0.cpu).as_secs_f64();
    println!(
        "all: {total} messages = {:.1}/s (target {}), daemon CPU {cpu_total:.1} s = {:.0} µs per message, \
         peak RSS {:.1} MB",
        total as f64 / elapsed,
        args.mps,
        cpu_total * 1e6 / total.max(1) as f64,
        last.2.peak_rss_kib as f64 / 1024.0
    );
    if let (Some(first), Some(last_row)) = (windows.first(), windows.last()) {
        println!(
            "drift, first window to last: RSS {:+.1} MB, CPU per message {:+.0} µs",
            (last_row.rss_kib as f64 - first.rss_kib as f64) / 1024.0,
            last_row.cpu_us_per_message - first.cpu_us_per_message
        );
    }
    println!(
        "left in the stand-in: messages {} ({}), webhook events {}; sandbox: {stats}",
        w.odoo.count(MESSAGE),
        states.join(", "),
        w.odoo.count(EVENT)
    );
    println!(
        "stand-in rows (the most): {}",
        w.odoo
            .sizes()
            .iter()
            .take(8)
            .map(|(table, n)| format!("{table} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let mut calls: Vec<((String, String), u64)> = w.odoo.call_counts().into_iter().collect();
    calls.sort_by_key(|c| std::cmp::Reverse(c.1));
    println!(
        "Odoo calls by model.method (the most): {}",
        calls
            .iter()
            .take(15)
            .map(|((model, method), n)| format!("{model}.{method} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    if !status.success() {
        println!("ERROR: the daemon exited with {status}");
        std::process::exit(1);
    }
}

/// Queues template messages (recipients in turn from `next`) until `backlog` wait.
fn top_up(w: &World, partners: &[i64], template: i64, backlog: u64, next: &mut usize) {
    let queued = w.in_state("queued") as u64;
    for _ in queued..backlog {
        w.queue_template(partners[*next % partners.len()], template);
        *next += 1;
    }
}

/// Deletes what an administrator would clean up: messages read more than a minute ago,
/// processed webhook events, and the chatter notes.
fn clean(w: &World) {
    let before = e2e_support::odoo_time(chrono::Utc::now() - chrono::TimeDelta::seconds(60));
    let read = w.odoo.search(
        MESSAGE,
        json!([["state", "=", "read"], ["read_at", "<", before]]),
    );
    for chunk in read.chunks(1000) {
        w.odoo.unlink(MESSAGE, chunk);
    }
    let events = w.odoo.search(
        EVENT,
        json!([["processed", "=", true], ["received_at", "<", before]]),
    );
    for chunk in events.chunks(1000) {
        w.odoo.unlink(EVENT, chunk);
    }
    let notes = w
        .odoo
        .search("mail.message", json!([["model", "=", "res.partner"]]));
    for chunk in notes.chunks(1000) {
        w.odoo.unlink("mail.message", chunk);
    }
}
