//! Invoices on a real Odoo 17 (the addon installed, the user in the group "WhatsApp Sidecar
//! (technical)"), with the daemon binary running against it and the sandbox (in this process)
//! as Meta.
//!
//! ```text
//! cargo build --release
//! ODOO_URL=http://127.0.0.1:8069 ODOO_DB=wa17 ODOO_LOGIN=admin ODOO_PASSWORD=admin \
//!   cargo run --release --example invoices_bench -- [--posting 200] [--rounds 2] \
//!   [--burst 1000] [--seconds 120]
//! ```
//!
//! 1. **Posting with the automations on and off.** `--rounds` times each, alternating: 200
//!    draft invoices (made beforehand, not timed) are posted, once in one `action_post` call
//!    (an accountant's "Post entries" on a selection) and once one call per invoice, with the
//!    bench account's invoice automations (posted invoices, payments, reminders) on, then off.
//!    The daemon runs in both; the account is paused during this part, so the daemon detects
//!    and queues the messages while the invoices are posted but renders no PDF (that is part
//!    2). Reported: the median posting time of each variant, on and off.
//! 2. **A burst of posted invoices.** `--burst` invoices (one customer each, outside their
//!    window: the account's `sidecar_invoice` template with the PDF as header) posted in one
//!    call; reported: the time until all are queued in Odoo, and the PDFs sent per second over
//!    `--seconds` (rendered by Odoo, `odoo.max_concurrent_reports` at a time), beside the
//!    rate at which this Odoo renders the invoice report with the same concurrency when asked
//!    directly (20 PDFs).
//!
//! The bench makes its own account, template, customers and invoices; it deletes the account's
//! messages, the template and the account at the end, cancels its invoices (posted entries
//! cannot be deleted) and switches back on the company's other accounts that sent posted
//! invoices (the demo data's default does; they are off during the run so the bench's account
//! is the one that sends).

#[path = "../tests/e2e_support/mod.rs"]
mod e2e_support;
#[path = "../tests/support/mod.rs"]
mod support;

use clap::Parser;
use e2e_support::{DaemonConfig, RealOdoo, MESSAGE};
use futures_util::stream::{self, StreamExt};
use futures_util::FutureExt;
use serde_json::{json, Value};
use std::panic::AssertUnwindSafe;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use whatsapp_sidecar::odoo::{Domain, SearchOptions};

#[derive(Parser, Debug)]
struct Args {
    /// Invoices posted per round in part 1 (0: skip part 1).
    #[arg(long, default_value_t = 200)]
    posting: usize,
    /// Rounds of each variant in part 1.
    #[arg(long, default_value_t = 2)]
    rounds: usize,
    /// Invoices posted at once in part 2 (0: skip part 2).
    #[arg(long, default_value_t = 1000)]
    burst: usize,
    /// How long part 2 watches the sending.
    #[arg(long, default_value_t = 120)]
    seconds: u64,
    /// PDFs Odoo renders at once for the daemon (odoo.max_concurrent_reports).
    #[arg(long, default_value_t = 2)]
    reports: usize,
}

const MOVE: &str = "account.move";

fn main() {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"));
    runtime.block_on(async {
        let real = match RealOdoo::setup(1000).await {
            Ok(real) => real,
            Err(reason) => {
                println!("SKIPPED: {reason}");
                return;
            }
        };
        let made = Mutex::new(Vec::new());
        let paused = Mutex::new(Vec::new());
        let outcome = AssertUnwindSafe(bench(&args, &real, &made, &paused))
            .catch_unwind()
            .await;
        let invoices = made.lock().unwrap_or_else(|p| p.into_inner()).clone();
        for chunk in invoices.chunks(200) {
            for method in ["button_draft", "button_cancel"] {
                if let Err(e) = real
                    .client
                    .call::<Value>(MOVE, method, json!([chunk]), json!({}))
                    .await
                {
                    eprintln!("cleanup: {method}: {e}");
                }
            }
        }
        let paused = paused.lock().unwrap_or_else(|p| p.into_inner()).clone();
        if !paused.is_empty() {
            let _ = real
                .client
                .write(
                    "whatsapp.account",
                    &paused,
                    &json!({"auto_send_invoice_posted": true}),
                )
                .await;
        }
        real.cleanup().await;
        if outcome.is_err() {
            eprintln!("the bench failed (what it made in Odoo is cleaned up)");
            std::process::exit(1);
        }
    });
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// A client for the bench's own long calls: posting hundreds of invoices in one call takes
/// longer than the harness's 30 s, and a timed-out post must not be sent again.
fn long_client(real: &RealOdoo) -> whatsapp_sidecar::odoo::OdooClient {
    let mut cfg = real.target.client_config();
    cfg.timeout = Duration::from_secs(900);
    match whatsapp_sidecar::odoo::OdooClient::new(cfg) {
        Ok(c) => c.without_retries(),
        Err(e) => panic!("client: {e}"),
    }
}

async fn drafts(real: &RealOdoo, partners: &[i64], company: i64) -> Vec<i64> {
    let values: Vec<Value> = partners
        .iter()
        .enumerate()
        .map(|(i, p)| {
            json!({"move_type": "out_invoice", "partner_id": p, "company_id": company,
                   "invoice_line_ids": [[0, 0, {"name": "Consulting", "quantity": 1,
                                                "price_unit": 100.0 + i as f64}]]})
        })
        .collect();
    let mut ids = Vec::new();
    let client = long_client(real);
    for chunk in values.chunks(100) {
        match client.create_many(MOVE, chunk).await {
            Ok(new) => ids.extend(new),
            Err(e) => panic!("cannot create invoices: {e}"),
        }
    }
    ids
}

async fn post_one_call(real: &RealOdoo, ids: &[i64]) -> f64 {
    let client = long_client(real);
    let t = Instant::now();
    let _: Value = client
        .call(MOVE, "action_post", json!([ids]), json!({}))
        .await
        .unwrap_or_else(|e| panic!("action_post: {e}"));
    t.elapsed().as_secs_f64()
}

async fn post_each(real: &RealOdoo, ids: &[i64]) -> f64 {
    let client = long_client(real);
    let t = Instant::now();
    for id in ids {
        let _: Value = client
            .call(MOVE, "action_post", json!([[id]]), json!({}))
            .await
            .unwrap_or_else(|e| panic!("action_post: {e}"));
    }
    t.elapsed().as_secs_f64()
}

async fn set_automations(real: &RealOdoo, on: bool) {
    real.client
        .write(
            "whatsapp.account",
            &[real.account],
            &json!({"auto_send_invoice_posted": on, "auto_send_residual_change": on,
                    "auto_send_unpaid_invoices": on}),
        )
        .await
        .unwrap_or_else(|e| panic!("account: {e}"));
    // The daemon reads the accounts again within 10 s.
    tokio::time::sleep(Duration::from_secs(11)).await;
}

async fn queued(real: &RealOdoo, ids: &[i64]) -> u64 {
    real.client
        .search_count(
            MESSAGE,
            &Domain::leaf("trigger", "=", "invoice_posted")
                .and("res_model", "=", MOVE)
                .and("res_id", "in", json!(ids)),
        )
        .await
        .unwrap_or(0)
}

async fn bench(args: &Args, real: &RealOdoo, made: &Mutex<Vec<i64>>, paused: &Mutex<Vec<i64>>) {
    let company = real
        .read("whatsapp.account", &[real.account], &["company_id"])
        .await[0]["company_id"][0]
        .as_i64()
        .expect("the account's company");
    let others = real
        .client
        .search(
            "whatsapp.account",
            &Domain::leaf("company_id", "=", company)
                .and("id", "!=", real.account)
                .and("auto_send_invoice_posted", "=", true),
            &SearchOptions::new(),
        )
        .await
        .expect("accounts");
    if !others.is_empty() {
        real.client
            .write(
                "whatsapp.account",
                &others,
                &json!({"auto_send_invoice_posted": false}),
            )
            .await
            .expect("pause the other accounts' posted invoices");
        *paused.lock().unwrap_or_else(|p| p.into_inner()) = others;
    }
    // The invoice template: the sandbox's sidecar_invoice, the PDF as its header.
    let template = real
        .create(
            "whatsapp.template",
            json!({"name": "sidecar_invoice", "language": "en_US", "account_id": real.account,
                   "status": "approved", "parameter_format": "positional",
                   "components_json": json!([
                       {"type": "HEADER", "format": "DOCUMENT"},
                       {"type": "BODY", "text": "Hello {{1}}, your invoice {{2}} of {{3}} is ready: the PDF is attached."},
                       {"type": "BUTTONS", "buttons": [
                           {"type": "QUICK_REPLY", "text": "Pay now"},
                           {"type": "QUICK_REPLY", "text": "Talk to us"}]}]).to_string(),
                   "variable_ids": [
                       [0, 0, {"name": "1", "component": "body", "sequence": 1, "field_path": "partner_id.name"}],
                       [0, 0, {"name": "2", "component": "body", "sequence": 2, "field_path": "name"}],
                       [0, 0, {"name": "3", "component": "body", "sequence": 3, "field_path": "amount_total"}]]}),
        )
        .await
        .expect("template");
    real.client
        .write(
            "whatsapp.account",
            &[real.account],
            &json!({"template_invoice_posted_id": template, "paused": true,
                    "paused_reason": "invoices_bench part 1: no PDF rendering"}),
        )
        .await
        .expect("account");

    let customers = args.posting.max(args.burst);
    let values: Vec<Value> = (0..customers)
        .map(|i| {
            json!({"name": format!("C{i} (whatsapp-sidecar bench {})", real.stamp),
                   "mobile": format!("+3362{i:07}"),
                   "whatsapp_number_e164": format!("+3362{i:07}"), "whatsapp_opt_in": true})
        })
        .collect();
    let mut partners = Vec::new();
    for chunk in values.chunks(500) {
        match real.create_many("res.partner", chunk).await {
            Ok(ids) => partners.extend(ids),
            Err(e) => panic!("cannot create partners: {e}"),
        }
    }

    let mut meta_config = real.meta_config(1000);
    meta_config.record_limit = customers * 2 + 10;
    let (meta, _meta_stop) = e2e_support::start_meta(meta_config).await;
    let mut config = DaemonConfig::new(&real.target, &meta.base_url());
    config.set("odoo.timeout_secs", 120);
    config.set("odoo.max_concurrent_reports", args.reports as i64);
    config.set("log.filter", "warn");
    let (daemon, _logs, _keep) = real.start_daemon(&meta, &config).await;
    println!(
        "Odoo {} ({}); {} customers; daemon odoo.max_concurrent_reports = {}",
        real.target.url, real.target.database, customers, args.reports
    );

    if args.posting > 0 {
        let mut times: Vec<(bool, &str, f64)> = Vec::new();
        for round in 0..args.rounds {
            for on in [true, false] {
                set_automations(real, on).await;
                for variant in ["one call", "one call per invoice"] {
                    let ids = drafts(real, &partners[..args.posting], company).await;
                    made.lock().unwrap_or_else(|p| p.into_inner()).extend(&ids);
                    let secs = if variant == "one call" {
                        post_one_call(real, &ids).await
                    } else {
                        post_each(real, &ids).await
                    };
                    println!(
                        "round {round}: automations {:<3} {variant:<22} {} invoices posted in {secs:.2} s",
                        if on { "on" } else { "off" },
                        ids.len()
                    );
                    if on {
                        // The daemon queues their messages (and only then the next one starts).
                        let deadline = Instant::now() + Duration::from_secs(60);
                        while (queued(real, &ids).await as usize) < ids.len()
                            && Instant::now() < deadline
                        {
                            tokio::time::sleep(Duration::from_millis(200)).await;
                        }
                    }
                    times.push((on, variant, secs));
                }
            }
        }
        for variant in ["one call", "one call per invoice"] {
            let on = median(
                times
                    .iter()
                    .filter(|(o, v, _)| *o && *v == variant)
                    .map(|(_, _, s)| *s)
                    .collect(),
            );
            let off = median(
                times
                    .iter()
                    .filter(|(o, v, _)| !*o && *v == variant)
                    .map(|(_, _, s)| *s)
                    .collect(),
            );
            println!(
                "posting {} invoices, {variant}: median {on:.2} s with the automations on, {off:.2} s off ({:+.1} %)",
                args.posting,
                (on / off - 1.0) * 100.0
            );
        }
        // The part's messages are not sent: they leave with the account.
        let _ = real
            .client
            .call::<Value>(
                MESSAGE,
                "action_cancel",
                json!([real
                    .client
                    .search(
                        MESSAGE,
                        &Domain::leaf("account_id", "=", real.account).and("state", "=", "queued"),
                        &SearchOptions::new()
                    )
                    .await
                    .unwrap_or_default()]),
                json!({}),
            )
            .await;
    }

    if args.burst > 0 {
        // What Odoo renders when asked directly, with the same concurrency.
        let sample = drafts(real, &partners[..20.min(partners.len())], company).await;
        made.lock()
            .unwrap_or_else(|p| p.into_inner())
            .extend(&sample);
        let _ = post_one_call(real, &sample).await;
        let t = Instant::now();
        let rendered: Vec<usize> = stream::iter(sample.iter().copied())
            .map(|id| {
                let client = real.client.clone();
                async move {
                    client
                        .report_pdf("account.report_invoice", &[id])
                        .await
                        .map(|b| b.len())
                        .unwrap_or(0)
                }
            })
            .buffer_unordered(args.reports.max(1))
            .collect()
            .await;
        let direct = rendered.iter().filter(|n| **n > 0).count() as f64 / t.elapsed().as_secs_f64();
        println!(
            "Odoo renders the invoice report at {direct:.2} PDFs/s when asked directly, {} at a time",
            args.reports
        );

        set_automations(real, true).await;
        real.client
            .write(
                "whatsapp.account",
                &[real.account],
                &json!({"paused": false, "paused_reason": false}),
            )
            .await
            .expect("resume");
        let ids = drafts(real, &partners[..args.burst], company).await;
        made.lock().unwrap_or_else(|p| p.into_inner()).extend(&ids);
        let accepted0 = meta.stats()["accepted"].as_u64().unwrap_or(0);
        let posting = post_one_call(real, &ids).await;
        let t0 = Instant::now();
        let mut all_queued = None;
        println!(
            "{} invoices posted in one call in {posting:.1} s; then:",
            ids.len()
        );
        println!("     t   queued   PDFs sent");
        loop {
            tokio::time::sleep(Duration::from_secs(if all_queued.is_none() {
                1
            } else {
                10
            }))
            .await;
            let t = t0.elapsed().as_secs_f64();
            let q = queued(real, &ids).await as usize;
            if q >= ids.len() && all_queued.is_none() {
                all_queued = Some(t);
            }
            let sent = meta.stats()["accepted"].as_u64().unwrap_or(0) - accepted0;
            println!("{t:>6.1}   {q:>6}   {sent:>9}");
            if t > args.seconds as f64 || sent as usize >= ids.len() {
                break;
            }
        }
        match all_queued {
            Some(t) => println!(
                "all {} queued {t:.1} s after the posting returned",
                ids.len()
            ),
            None => println!("not all queued within the run"),
        }
        let times: Vec<u64> = meta
            .messages(&whatsapp_sidecar::sandbox::RecordFilter {
                limit: Some(ids.len() + 100),
                ..Default::default()
            })
            .unwrap_or_default()
            .iter()
            .filter(|m| m.kind == "template")
            .map(|m| m.accepted_at_ms)
            .collect();
        if let (Some(first), Some(last)) = (times.iter().min(), times.iter().max()) {
            let span = (last - first) as f64 / 1000.0;
            println!(
                "{} invoice PDFs sent between {:.1} s apart: {:.2} PDFs/s (Odoo alone: {direct:.2} PDFs/s)",
                times.len(),
                span,
                (times.len().saturating_sub(1)) as f64 / span.max(0.001)
            );
        }
    }
    let _ = daemon.terminate(Duration::from_secs(15)).await;
}
