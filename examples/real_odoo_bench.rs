//! End-to-end benchmark on a real Odoo 17 (the addon installed, the user in the group "WhatsApp
//! Sidecar (technical)"): the daemon binary sends queued template messages from that Odoo to
//! the sandbox (in this process) at the account's throughput, and every `sent`, `delivered` and
//! `read` status comes back into Odoo.
//!
//! ```text
//! cargo build --release
//! ODOO_URL=http://127.0.0.1:8069 ODOO_DB=wa17 ODOO_LOGIN=admin ODOO_PASSWORD=admin \
//!   cargo run --release --example real_odoo_bench -- [--seconds 60] [--mps 80]
//! ```
//!
//! The daemon talks to Odoo through a counting proxy (in this process) that forwards every
//! request unchanged and counts the JSON-RPC calls, and for each `whatsapp.message` the writes
//! (`write` ids, `load` rows; a `load` Odoo answered with row errors wrote nothing and is counted
//! apart) after its claim (`whatsapp.lease.claim` with `state = sending`). Reported:
//! the sustained rate (messages Meta accepted per second), the backlog in Odoo every 5 s
//! (accepted but not yet `sent`-or-later; accepted more than 2 s ago but not yet `read`), the
//! time until every status is written back, Odoo calls per message, writes per message after
//! its claim (target: at most 2), and the daemon's CPU and peak memory. The bench makes its own
//! account, template, partners and messages, and deletes them at the end.

#[path = "../tests/e2e_support/mod.rs"]
mod e2e_support;
#[path = "../tests/support/mod.rs"]
mod support;

use clap::Parser;
use e2e_support::{proc_sample, DaemonConfig, OdooProxy, RealOdoo, MESSAGE};
use serde_json::json;
use std::time::{Duration, Instant};
use whatsapp_sidecar::odoo::Domain;

#[derive(Parser, Debug)]
struct Args {
    /// Length of the run: messages queued = mps × seconds.
    #[arg(long, default_value_t = 60)]
    seconds: u64,
    /// The account's (and the sandbox number's) throughput.
    #[arg(long, default_value_t = 80)]
    mps: u32,
    /// When Meta sends the `sent`, `delivered` and `read` statuses, in milliseconds after it
    /// accepted the message (each with up to 20 ms of jitter).
    #[arg(long, default_value_t = 20)]
    sent_ms: u64,
    #[arg(long, default_value_t = 60)]
    delivered_ms: u64,
    #[arg(long, default_value_t = 120)]
    read_ms: u64,
    /// Extra daemon settings, `section.key=value` (TOML value), repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    settings: Vec<String>,
}

fn main() {
    let args = Args::parse();
    RealOdoo::run_bench(args.mps, async |real| bench(args, real).await);
}

async fn bench(args: Args, real: &RealOdoo) {
    let account = real.account;
    let total = args.mps as usize * args.seconds as usize;
    // One message per recipient per 6.5 s at most: enough recipients for 8 s of sending.
    let recipients = (args.mps as usize * 8).max(1);
    let partner_values: Vec<serde_json::Value> = (0..recipients)
        .map(|i| {
            let mut v = json!({"name": format!("R{i} (whatsapp-sidecar e2e {})", real.stamp),
                               "mobile": format!("+3361{i:07}"), "whatsapp_opt_in": true});
            if let Some(fr) = real.france {
                v["country_id"] = json!(fr);
            }
            v
        })
        .collect();
    let seeding = Instant::now();
    let mut partners = Vec::new();
    for chunk in partner_values.chunks(500) {
        match real.create_many("res.partner", chunk).await {
            Ok(ids) => partners.extend(ids),
            Err(e) => panic!("cannot create partners: {e}"),
        }
    }
    let messages: Vec<serde_json::Value> = (0..total)
        .map(|i| {
            let p = partners[i % partners.len()];
            json!({"account_id": account, "partner_id": p, "direction": "out",
                   "message_type": "template", "template_id": real.template, "state": "queued",
                   "to_number": format!("+3361{:07}", i % partners.len()),
                   "res_model": "res.partner", "res_id": p})
        })
        .collect();
    let mut ids = Vec::new();
    for chunk in messages.chunks(500) {
        match real.create_many(MESSAGE, chunk).await {
            Ok(new) => ids.extend(new),
            Err(e) => panic!("cannot queue messages: {e}"),
        }
    }
    println!(
        "queued {total} template messages to {recipients} recipients in {:.1} s on {} ({}); account and sandbox at {} msg/s; statuses sent/delivered/read {}/{}/{} ms after acceptance",
        seeding.elapsed().as_secs_f64(),
        real.target.url,
        real.target.database,
        args.mps,
        args.sent_ms,
        args.delivered_ms,
        args.read_ms
    );

    let mut meta_config = real.meta_config(args.mps);
    meta_config.webhooks.sent_delay_ms = args.sent_ms;
    meta_config.webhooks.delivered_delay_ms = args.delivered_ms;
    meta_config.webhooks.read_delay_ms = args.read_ms;
    meta_config.record_limit = total + 10;
    let (meta, _meta_stop) = e2e_support::start_meta(meta_config).await;
    let proxy = OdooProxy::start(&real.target.url).await;
    let mut proxied = real.target.clone();
    proxied.url = proxy.url.clone();
    let mut config = DaemonConfig::new(&proxied, &meta.base_url());
    config.set("odoo.timeout_secs", 30);
    config.default_intervals();
    config.set("log.filter", "warn");
    // Odoo's bus straight to Odoo (the counting proxy forwards plain requests only).
    config.set("bus.url", real.target.url.as_str());
    config.apply(&args.settings);
    let (mut daemon, logs, _keep) = real.start_daemon(&meta, &config).await;
    let pid = daemon.pid();
    let p0 = proc_sample(pid).unwrap_or_default();
    let r0 = proxy.counts.lock().map(|c| c.requests).unwrap_or(0);
    let t0 = Instant::now();

    let accepted = || meta.stats()["accepted"].as_u64().unwrap_or(0);
    let mine = Domain::leaf("account_id", "=", account).and("direction", "=", "out");
    let count = |states: &'static [&'static str]| {
        let client = real.client.clone();
        let domain = mine.clone().and("state", "in", json!(states));
        async move { client.search_count(MESSAGE, &domain).await.unwrap_or(0) }
    };
    println!("   t   accepted   rate/s   not yet sent in Odoo   not yet read in Odoo (accepted > 2 s ago)");
    let mut history: Vec<(f64, u64)> = vec![(0.0, 0)];
    let mut peak_rss = p0.peak_rss_kib;
    let mut first_all_accepted = None;
    loop {
        tokio::time::sleep(Duration::from_secs(5)).await;
        let t = t0.elapsed().as_secs_f64();
        let a = accepted();
        if a as usize >= total && first_all_accepted.is_none() {
            first_all_accepted = Some(t);
        }
        let sent_or_later = count(&["sent", "delivered", "read"]).await;
        let read = count(&["read"]).await;
        let old = history
            .iter()
            .rev()
            .find(|(ts, _)| *ts + 2.0 <= t)
            .map(|(_, a)| *a)
            .unwrap_or(0);
        let last = history.last().copied().unwrap_or((0.0, 0));
        history.push((t, a));
        if let Some(s) = proc_sample(pid) {
            peak_rss = peak_rss.max(s.peak_rss_kib);
        }
        println!(
            "{t:>4.0}   {a:>8}   {:>6.1}   {:>20}   {:>20}",
            (a - last.1) as f64 / (t - last.0),
            a.saturating_sub(sent_or_later),
            old.saturating_sub(read)
        );
        if read as usize >= total {
            break;
        }
        if let Some(status) = daemon.exited() {
            panic!("the daemon exited: {status}\n{}", logs.tail(50));
        }
        if t > args.seconds as f64 * 4.0 + 120.0 {
            println!("ERROR: not every message read after {t:.0} s");
            break;
        }
    }
    let done = t0.elapsed().as_secs_f64();
    let p1 = proc_sample(pid).unwrap_or_default();
    peak_rss = peak_rss.max(p1.peak_rss_kib);
    let sending_time = first_all_accepted.unwrap_or(done);
    // The sending rate: from the first to the last acceptance, from the sandbox's record.
    let record = meta
        .messages(&whatsapp_sidecar::sandbox::RecordFilter {
            limit: Some(10_000),
            ..Default::default()
        })
        .unwrap_or_default();
    let first = record.iter().map(|r| r.accepted_at_ms).min().unwrap_or(0);
    let last = record.iter().map(|r| r.accepted_at_ms).max().unwrap_or(0);
    let rate = record.len().saturating_sub(1) as f64 / ((last - first) as f64 / 1000.0).max(0.001);
    let over = report(&proxy, r0, &ids, total);
    println!(
        "sending: {} accepted by Meta from first to last in {:.1} s = {rate:.1} msg/s (all accepted by t = {sending_time:.0} s)",
        record.len(),
        (last - first) as f64 / 1000.0
    );
    println!("every status written back by t = {done:.0} s");
    println!(
        "daemon: CPU {:.2} s = {:.0} µs per message; peak RSS {:.1} MB",
        p1.cpu.saturating_sub(p0.cpu).as_secs_f64(),
        p1.cpu.saturating_sub(p0.cpu).as_secs_f64() * 1e6 / total as f64,
        peak_rss as f64 / 1024.0
    );
    println!(
        "targets: >= 80 msg/s {}, <= 2 writes per message after its claim {}",
        if rate >= 80.0 * 0.98 {
            "met"
        } else {
            "NOT met"
        },
        if over == 0 { "met" } else { "NOT met" }
    );
    // What `/metrics` says at the end (its Odoo side read from the real Odoo).
    let scraped = reqwest::get(config.url("/metrics")).await;
    let text = match scraped {
        Ok(r) => r.text().await.unwrap_or_default(),
        Err(e) => format!("GET /metrics: {e}"),
    };
    println!("/metrics at the end:");
    for line in text.lines().filter(|l| {
        [
            "whatsapp_messages_sent_total",
            "whatsapp_outbox_",
            "whatsapp_inbound_",
            "whatsapp_account_paused",
            "whatsapp_webhook_requests_total",
            "odoo_bus_connected",
        ]
        .iter()
        .any(|p| l.starts_with(p))
    }) {
        println!("  {line}");
    }
    let status = daemon.terminate(Duration::from_secs(30)).await;
    if !status.success() {
        println!("the daemon exited with {status}:\n{}", logs.tail(30));
    }
}

/// Prints the proxy's figures; the number of messages written more than twice after their claim.
fn report(proxy: &OdooProxy, r0: u64, ids: &[i64], total: usize) -> usize {
    let counts = proxy.counts.lock().unwrap_or_else(|e| e.into_inner());
    let calls = counts.requests - r0;
    let mut histogram = std::collections::BTreeMap::new();
    for id in ids {
        let n = counts.writes_after_claim.get(id).copied().unwrap_or(0);
        *histogram.entry(n).or_insert(0usize) += 1;
    }
    let over = ids
        .iter()
        .filter(|id| counts.writes_after_claim.get(id).copied().unwrap_or(0) > 2)
        .count();
    let not_claimed = ids.iter().filter(|id| !counts.claimed.contains(id)).count();
    println!("--- {total} messages ---");
    println!(
        "Odoo calls: {calls} = {:.3} per message; by model.method: {}",
        calls as f64 / total as f64,
        counts
            .calls
            .iter()
            .map(|((m, f), n)| format!("{m}.{f} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    );
    println!(
        "writes per message after its claim: {histogram:?} (writes: count of messages); more than 2: {over}; never claimed: {not_claimed}"
    );
    let rolled_back: u32 = counts.rolled_back_loads.values().sum();
    println!(
        "loads Odoo rolled back (row errors: a concurrent write of the same records), not counted \
         as writes: {} messages in {rolled_back} load rows",
        counts.rolled_back_loads.len()
    );
    for id in ids
        .iter()
        .filter(|id| counts.writes_after_claim.get(id).copied().unwrap_or(0) > 2)
        .take(3)
    {
        println!("  message {id} written after its claim:");
        for what in counts.write_log.get(id).into_iter().flatten() {
            println!("    {what}");
        }
    }
    over
}
