//! Campaign benchmark against the real daemon binary (release build), with the sandbox in this
//! process and the daemon's shipped intervals.
//!
//! ```text
//! cargo build --release
//! cargo run --release --example campaigns_bench -- [--recipients 100000]
//! ODOO_URL=... ODOO_DB=... ODOO_LOGIN=... ODOO_PASSWORD=... \
//!   cargo run --release --example campaigns_bench -- --real 1000
//! ```
//!
//! **Stand-in** (default): `--recipients` opted-in contacts with distinct numbers in the Odoo
//! stand-in (in this process), an account and a sandbox number at 1,000 msg/s, one campaign
//! with one approved-template step, a throttle above the number's rate, the whole day as send
//! window (weekends too). Measured:
//! 1. "Generate queue" (`queue_requested`) → `queue_generated_at` set;
//! 2. Start → every campaign message accepted by the sandbox, and the send rate (overall, and
//!    between 10 % and 90 % accepted);
//! 3. the daemon's peak RSS (`VmRSS` of `/proc/<pid>/status` every 250 ms, and `VmHWM`) and
//!    its CPU time;
//! 4. the stand-in's Odoo calls (`call_counts`), by model and method, total and per message;
//! 5. a transactional message (a template with the default priority, as an order confirmation
//!    is queued) queued once 20 % of the campaign is accepted: queued → accepted by the
//!    sandbox.
//!
//! **Real Odoo** (`--real N` with `ODOO_*`): the bench's own account and template
//! (`RealOdoo::setup`), `N` opted-in contacts created in one call (`ref` = the bench's stamp),
//! one campaign whose audience filter selects exactly them, the sandbox at 80 msg/s; "Generate
//! queue" and "Start" pressed as the buttons do (`action_generate_queue`, `action_start` over
//! JSON-RPC). Measured: generation time, Start → all `N` accepted by the sandbox, the KPI
//! fields at the end. Everything made is deleted (contacts that cannot be are archived).

#[path = "../tests/e2e_support/mod.rs"]
mod e2e_support;
#[path = "../tests/support/mod.rs"]
mod support;

use clap::Parser;
use e2e_support::{text, World, MESSAGE};
use futures_util::FutureExt;
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashSet};
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use whatsapp_sidecar::sandbox::RecordFilter;

const CAMPAIGN: &str = "whatsapp.campaign";
const STEP: &str = "whatsapp.campaign.step";
const RECIPIENT: &str = "whatsapp.campaign.recipient";
const TAG: &str = "bench13";

#[derive(Parser, Debug)]
struct Args {
    /// Recipients of the stand-in campaign.
    #[arg(long, default_value_t = 100_000)]
    recipients: usize,
    /// Run against the real Odoo of `ODOO_*` with this many recipients (0: the stand-in).
    #[arg(long, default_value_t = 0, num_args = 0..=1, default_missing_value = "1000")]
    real: usize,
    /// Give up waiting for the campaign after this many seconds.
    #[arg(long, default_value_t = 600)]
    timeout_secs: u64,
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
        if args.real > 0 {
            real(&args).await;
        } else {
            standin(&args).await;
        }
    });
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// `VmRSS` of a process every 250 ms, the highest kept, until dropped.
struct RssSampler {
    peak_kib: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl RssSampler {
    fn start(pid: u32) -> RssSampler {
        let peak_kib = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (peak, done) = (peak_kib.clone(), stop.clone());
        tokio::spawn(async move {
            while !done.load(Ordering::Relaxed) {
                if let Some(s) = e2e_support::proc_sample(pid) {
                    peak.fetch_max(s.rss_kib, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
        });
        RssSampler { peak_kib, stop }
    }

    fn peak_mib(&self) -> f64 {
        self.peak_kib.load(Ordering::Relaxed) as f64 / 1024.0
    }
}

impl Drop for RssSampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn print_calls(calls: &BTreeMap<(String, String), u64>, messages: u64) {
    let total: u64 = calls.values().sum();
    let mut sorted: Vec<_> = calls.iter().collect();
    sorted.sort_by(|a, b| b.1.cmp(a.1));
    for ((model, method), n) in sorted {
        println!("    {model}.{method}: {n}");
    }
    println!(
        "    total {total}: {:.4} calls per message sent",
        total as f64 / messages.max(1) as f64
    );
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

async fn standin(args: &Args) {
    let n = args.recipients;
    let mut meta = e2e_support::meta_config(1000);
    meta.webhooks.read_ratio = 0.5;
    meta.record_limit = n + 1000;
    let mut w = World::with_meta(meta, 1000).await;
    w.config.default_intervals();
    w.config.set("log.filter", "warn");
    w.config.apply(&args.settings);
    let template = w.hello_template("approved");

    let made = Instant::now();
    let opted_in_at = e2e_support::odoo_time(chrono::Utc::now());
    for i in 0..n {
        let number = format!("+3361{i:07}");
        w.odoo.insert(
            "res.partner",
            json!({"name": format!("Customer {i}"), "phone": number, "mobile": number,
                   "whatsapp_opt_in": true, "whatsapp_opt_in_date": opted_in_at,
                   "country_id": 75, "ref": TAG}),
        );
    }
    // The customer of the transactional message, not in the audience.
    let tx_number = "+33619999999";
    let tx_partner = w.partner("Order customer", tx_number, true);
    let c = w.odoo.insert(
        CAMPAIGN,
        json!({"name": "Bench campaign", "account_id": w.account, "company_id": 1,
               "user_id": 2, "state": "draft",
               "partner_domain": format!("[(\"ref\", \"=\", \"{TAG}\")]"),
               "send_window_start": 0.0, "send_window_end": 24.0, "send_on_weekends": true,
               "timezone_rule": "recipient", "throttle_per_minute": 600_000, "daily_cap": 0}),
    );
    w.odoo.insert(
        STEP,
        json!({"campaign_id": c, "sequence": 10, "name": "Hello", "delay_hours": 0.0,
               "condition": "always", "message_type": "template", "template_id": template}),
    );
    println!(
        "{n} contacts in the stand-in in {:?}; load average {}",
        made.elapsed(),
        load_average()
    );

    w.start_daemon().await;
    let pid = w.daemon().pid();
    let rss = RssSampler::start(pid);
    let timeout = Duration::from_secs(args.timeout_secs);

    // 1. Generate queue.
    tokio::time::sleep(Duration::from_secs(2)).await;
    w.odoo.reset_counters();
    let t = Instant::now();
    w.odoo.update(CAMPAIGN, c, json!({"queue_requested": true}));
    loop {
        if w.odoo.field(CAMPAIGN, c, "queue_generated_at").is_string() {
            break;
        }
        if t.elapsed() > timeout {
            println!("queue NOT generated after {timeout:?}");
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let generation = t.elapsed();
    println!(
        "Generate queue → queue_generated_at: {generation:?} ({}), daemon RSS peak so far {:.1} MiB",
        text(&w.odoo.field(CAMPAIGN, c, "queue_message")),
        rss.peak_mib()
    );
    let generation_calls = w.odoo.call_counts();
    println!("  Odoo calls for the generation:");
    print_calls(&generation_calls, n as u64);

    // 2. Start → all accepted, with a transactional message at 20 %.
    w.odoo.reset_counters();
    let cpu_before = e2e_support::proc_sample(pid)
        .map(|s| s.cpu)
        .unwrap_or_default();
    let start = Instant::now();
    w.odoo.update(
        CAMPAIGN,
        c,
        json!({"state": "running", "started_at": e2e_support::odoo_time(chrono::Utc::now())}),
    );
    let mut first: Option<Duration> = None;
    let mut at10: Option<Duration> = None;
    let mut at90: Option<Duration> = None;
    let mut tx: Option<(i64, u64)> = None;
    let mut tx_latency: Option<Duration> = None;
    let mut last_report = Instant::now();
    let target = n as u64;
    loop {
        let all = w.accepted();
        let campaign_accepted = all.saturating_sub(u64::from(tx_latency.is_some()));
        let elapsed = start.elapsed();
        if campaign_accepted > 0 && first.is_none() {
            first = Some(elapsed);
        }
        if campaign_accepted * 10 >= target && at10.is_none() {
            at10 = Some(elapsed);
        }
        if campaign_accepted * 10 >= target * 9 && at90.is_none() {
            at90 = Some(elapsed);
        }
        if tx.is_none() && campaign_accepted * 5 >= target {
            let queued_ms = now_ms();
            let id = w.queue_template(tx_partner, template);
            tx = Some((id, queued_ms));
        }
        if let (Some((_, queued_ms)), None) = (tx, tx_latency) {
            let got = w
                .meta
                .messages(&RecordFilter {
                    to: Some(tx_number.into()),
                    ..Default::default()
                })
                .expect("record");
            if let Some(m) = got.first() {
                tx_latency = Some(Duration::from_millis(
                    m.accepted_at_ms.saturating_sub(queued_ms),
                ));
                continue;
            }
        }
        if campaign_accepted >= target && tx_latency.is_some() {
            break;
        }
        if last_report.elapsed() >= Duration::from_secs(10) {
            last_report = Instant::now();
            println!(
                "  {elapsed:.1?}: {campaign_accepted} accepted ({:.0}/s), daemon RSS peak {:.1} MiB, load average {}",
                campaign_accepted as f64 / elapsed.as_secs_f64(),
                rss.peak_mib(),
                load_average()
            );
        }
        if elapsed > timeout {
            println!("NOT all sent after {timeout:?}: {campaign_accepted} of {n} accepted");
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let took = start.elapsed();
    let sent = w.accepted().saturating_sub(u64::from(tx_latency.is_some()));
    let send_calls = w.odoo.call_counts();
    let cpu = e2e_support::proc_sample(pid)
        .map(|s| s.cpu.saturating_sub(cpu_before))
        .unwrap_or_default();
    println!(
        "Start → {sent} of {n} accepted by the sandbox: {took:?}; first after {:?}; {:.0} msg/s overall",
        first.unwrap_or_default(),
        sent as f64 / took.as_secs_f64()
    );
    if let (Some(a), Some(b)) = (at10, at90) {
        println!(
            "  between 10 % and 90 % accepted: {:.0} msg/s",
            (target as f64 * 0.8) / (b - a).as_secs_f64().max(0.001)
        );
    }
    match tx_latency {
        Some(l) => {
            println!("transactional message queued at 20 % → accepted by the sandbox: {l:?}")
        }
        None => println!("transactional message NOT accepted"),
    }
    println!("  Odoo calls from Start until all accepted:");
    print_calls(&send_calls, sent);
    let mut all_calls = generation_calls.clone();
    for (k, v) in &send_calls {
        *all_calls.entry(k.clone()).or_insert(0) += v;
    }
    println!(
        "  generation and sending together: {} calls, {:.4} per message sent",
        all_calls.values().sum::<u64>(),
        all_calls.values().sum::<u64>() as f64 / sent.max(1) as f64
    );
    println!(
        "daemon CPU while sending: {cpu:?} ({:.0} % of one core); load average {}",
        100.0 * cpu.as_secs_f64() / took.as_secs_f64(),
        load_average()
    );

    // The campaign ends, and its KPIs catch up with the statuses (every delivery receipt
    // processed and followed), at most two minutes more.
    let all_sent = Instant::now();
    let deadline = all_sent + Duration::from_secs(120);
    let mut done_after = None;
    let mut caught_up = None;
    while Instant::now() < deadline {
        if done_after.is_none() && text(&w.odoo.field(CAMPAIGN, c, "state")) == "done" {
            done_after = Some(all_sent.elapsed());
        }
        let delivered = w
            .odoo
            .field(CAMPAIGN, c, "kpi_delivered")
            .as_u64()
            .unwrap_or(0);
        if done_after.is_some() && delivered >= sent {
            caught_up = Some(all_sent.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!(
        "after the last acceptance: campaign done after {done_after:?}; KPIs delivered = every message sent after {caught_up:?} (None: not within 120 s)"
    );
    let record = w.odoo.record(CAMPAIGN, c).unwrap_or_default();
    let kpis: BTreeMap<&String, &Value> = record
        .iter()
        .filter(|(k, _)| k.starts_with("kpi_") || *k == "state")
        .collect();
    println!("campaign at the end: {kpis:?}");
    let peak = e2e_support::proc_sample(pid)
        .map(|s| s.peak_rss_kib)
        .unwrap_or(0);
    println!(
        "daemon peak RSS: {:.1} MiB sampled every 250 ms, VmHWM {:.1} MiB",
        rss.peak_mib(),
        peak as f64 / 1024.0
    );
    drop(rss);
    w.stop_daemon().await;
}

async fn real(args: &Args) {
    use e2e_support::RealOdoo;
    let real = match RealOdoo::setup(80).await {
        Ok(r) => r,
        Err(reason) => {
            println!("SKIPPED: {reason}");
            return;
        }
    };
    let outcome = AssertUnwindSafe(real_campaign(&real, args))
        .catch_unwind()
        .await;
    real.cleanup().await;
    // Contacts that could not be deleted are archived.
    let client = real
        .client
        .with_context(whatsapp_sidecar::odoo::Context::new().active_test(false));
    let left = client
        .search(
            "res.partner",
            &whatsapp_sidecar::odoo::Domain::leaf("ref", "=", real.stamp.as_str()),
            &whatsapp_sidecar::odoo::SearchOptions::new(),
        )
        .await
        .unwrap_or_default();
    if !left.is_empty() {
        println!("{} contacts could not be deleted: archived", left.len());
        if let Err(e) = client
            .write("res.partner", &left, &json!({"active": false}))
            .await
        {
            println!("cannot archive them either: {e}");
        }
    }
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

async fn real_campaign(real: &e2e_support::RealOdoo, args: &Args) {
    use e2e_support::DaemonConfig;
    let n = args.real;
    assert!(n <= 10_000, "--real: at most 10,000 recipients");
    let tail = &real.stamp[real.stamp.len() - 3..];
    let numbers: Vec<String> = (0..n).map(|i| format!("+3364{tail}{i:04}")).collect();
    let values: Vec<Value> = numbers
        .iter()
        .enumerate()
        .map(|(i, number)| {
            let mut v = json!({"name": format!("Bench customer {i} (whatsapp-sidecar bench {})", real.stamp),
                               "mobile": number, "whatsapp_opt_in": true, "ref": real.stamp});
            if let Some(fr) = real.france {
                v["country_id"] = json!(fr);
            }
            v
        })
        .collect();
    let made = Instant::now();
    let partners = real
        .create_many("res.partner", &values)
        .await
        .expect("the contacts, in one create");
    println!(
        "{} contacts created in one call in {:?}",
        partners.len(),
        made.elapsed()
    );
    let campaign = real
        .create(
            CAMPAIGN,
            json!({"name": format!("whatsapp-sidecar bench {}", real.stamp),
                   "account_id": real.account,
                   "partner_domain": format!("[(\"ref\", \"=\", \"{}\")]", real.stamp),
                   "send_window_start": 0.0, "send_window_end": 24.0, "send_on_weekends": true,
                   "timezone_rule": "recipient", "throttle_per_minute": 600_000, "daily_cap": 0,
                   "step_ids": [[0, 0, {"name": "Hello", "message_type": "template",
                                        "template_id": real.template}]]}),
        )
        .await
        .expect("the campaign");

    let mut meta_config = real.meta_config(80);
    meta_config.webhooks.read_ratio = 0.5;
    let (meta, _meta_stop) = e2e_support::start_meta(meta_config).await;
    let mut config = DaemonConfig::new(&real.target, &meta.base_url());
    config.default_intervals();
    config.set("odoo.timeout_secs", 30);
    config.set("log.filter", "warn");
    config.apply(&args.settings);
    let (daemon, _logs, _keep) = real.start_daemon(&meta, &config).await;
    let rss = RssSampler::start(daemon.pid());
    let timeout = Duration::from_secs(args.timeout_secs);
    let read_campaign = move || async move {
        real.read(
            CAMPAIGN,
            &[campaign],
            &[
                "state",
                "queue_generated_at",
                "queue_message",
                "paused_reason",
                "kpi_recipients",
                "kpi_sent",
                "kpi_delivered",
                "kpi_read",
                "kpi_replied",
                "kpi_failed",
                "kpi_opted_out",
            ],
        )
        .await
        .into_iter()
        .next()
        .expect("the campaign")
    };

    // Generate queue, as the button does.
    let t = Instant::now();
    let _: Value = real
        .client
        .call(
            CAMPAIGN,
            "action_generate_queue",
            json!([[campaign]]),
            json!({}),
        )
        .await
        .expect("Generate queue");
    loop {
        let c = read_campaign().await;
        if c["queue_generated_at"].is_string() {
            println!(
                "Generate queue → queue_generated_at: {:?} ({})",
                t.elapsed(),
                text(&c["queue_message"])
            );
            break;
        }
        assert!(t.elapsed() < timeout, "queue not generated: {c}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let recipients = real
        .client
        .search_count(
            RECIPIENT,
            &whatsapp_sidecar::odoo::Domain::leaf("campaign_id", "=", campaign),
        )
        .await
        .expect("recipients");
    println!("  {recipients} recipients");

    // Start, as the button does.
    let ours: HashSet<String> = numbers
        .iter()
        .map(|n| n.trim_start_matches('+').to_owned())
        .collect();
    let count_ours = || {
        meta.messages(&RecordFilter {
            limit: Some(10_000),
            ..Default::default()
        })
        .expect("record")
        .iter()
        .filter(|m| ours.contains(&m.wa_id))
        .count()
    };
    let start = Instant::now();
    let _: Value = real
        .client
        .call(CAMPAIGN, "action_start", json!([[campaign]]), json!({}))
        .await
        .expect("Start");
    let mut first = None;
    loop {
        let got = count_ours();
        if got > 0 && first.is_none() {
            first = Some(start.elapsed());
        }
        if got >= n {
            break;
        }
        if start.elapsed() > timeout {
            println!("NOT all sent after {timeout:?}: {got} of {n}");
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let took = start.elapsed();
    let got = count_ours();
    println!(
        "Start → {got} of {n} accepted by the sandbox: {took:?} (first after {:?}); {:.1} msg/s; pure pacing at 80 msg/s: {:.1} s",
        first.unwrap_or_default(),
        got as f64 / took.as_secs_f64(),
        n as f64 / 80.0
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut c = read_campaign().await;
    while c["state"] != "done" && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(500)).await;
        c = read_campaign().await;
    }
    // Late statuses: a few seconds for the last read receipts.
    tokio::time::sleep(Duration::from_secs(8)).await;
    c = read_campaign().await;
    let sandbox_read = meta
        .messages(&RecordFilter {
            limit: Some(10_000),
            ..Default::default()
        })
        .expect("record")
        .iter()
        .filter(|m| ours.contains(&m.wa_id) && m.status.as_str() == "read")
        .count();
    println!("campaign at the end: {c}");
    println!("  the sandbox read {sandbox_read} of them");
    let messages = real
        .client
        .search_count(
            MESSAGE,
            &whatsapp_sidecar::odoo::Domain::leaf("campaign_id", "=", campaign),
        )
        .await
        .unwrap_or(0);
    println!(
        "  {messages} campaign messages in Odoo; daemon peak RSS {:.1} MiB",
        rss.peak_mib()
    );
    drop(rss);
    let _ = daemon.terminate(Duration::from_secs(20)).await;
}
