//! Odoo client benchmark: per-call overhead and batching throughput.
//!
//! `cargo run --release --example odoo_rpc_bench` runs against the in-process Odoo stand-in;
//! with `ODOO_URL`, `ODOO_DB`, `ODOO_LOGIN` and `ODOO_API_KEY` or `ODOO_PASSWORD` set it also
//! runs against that real Odoo (it creates records named `odoo_rpc_bench ...` and deletes
//! them). Figures:
//!
//! 1. latency of one `search_read` through the client against the same request sent with a
//!    bare reqwest client (prebuilt body, same connection pool): the client's overhead;
//! 2. records per second for 200 records: one `write` per record, one `write` for all (same
//!    values), one `create` for all, and `write_each` with different values (one `load`);
//! 3. `load` against grouped `write`s for 200 records in groups of identical values, which sets
//!    `odoo::batch::GROUP_WRITE_MIN`.
//!
//! Options: `--quick` (fewer iterations), `--real-only`, `--standin-only`.

#[path = "../tests/support/mod.rs"]
mod support;

use serde_json::{json, Map, Value};
use std::time::{Duration, Instant};
use whatsapp_sidecar::odoo::batch::GROUP_WRITE_MIN;
use whatsapp_sidecar::odoo::{ClientConfig, Domain, OdooClient, SearchOptions};
use whatsapp_sidecar::secret::Secret;

struct Target {
    label: String,
    cfg: ClientConfig,
    /// Model and field used for the write benchmarks.
    model: &'static str,
    seed: fn(usize, &str) -> Value,
    distinct: fn(usize, i64) -> Value,
    /// Values shared by a group (no unique field).
    grouped: fn(usize) -> Value,
    same: Value,
}

fn partner_seed(i: usize, tag: &str) -> Value {
    json!({"name": format!("{tag} #{i}")})
}
fn partner_distinct(round: usize, id: i64) -> Value {
    json!({"phone": format!("+32 2 {round} {id}"), "ref": format!("r{round}-{id}")})
}
fn message_seed(i: usize, tag: &str) -> Value {
    json!({"to_number": format!("+3361234{i:04}"), "body": format!("{tag} #{i}"), "direction": "out", "message_type": "text"})
}
fn message_distinct(round: usize, id: i64) -> Value {
    json!({"state": "sent", "wamid": format!("wamid.bench.{round}.{id}"), "sent_at": "2026-07-01 12:00:00", "attempt_count": 1})
}

fn partner_grouped(k: usize) -> Value {
    json!({"ref": format!("g{k}"), "phone": format!("+32 2 555 {k:04}")})
}
fn message_grouped(k: usize) -> Value {
    json!({"state": "delivered", "delivered_at": format!("2026-07-01 12:{:02}:{:02}", (k / 60) % 60, k % 60),
           "attempt_count": k, "pricing_category": "utility"})
}

fn stats(mut samples: Vec<Duration>) -> (f64, f64, f64) {
    samples.sort();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    let median = us(samples[samples.len() / 2]);
    let p95 = us(samples[(samples.len() * 95 / 100).min(samples.len() - 1)]);
    let mean = samples.iter().map(|d| us(*d)).sum::<f64>() / samples.len() as f64;
    (median, mean, p95)
}

async fn latency(t: &Target, n: usize) {
    let client = OdooClient::new(t.cfg.clone()).expect("client");
    let uid = client.uid().await.expect("login");
    let secret = t
        .cfg
        .api_key
        .as_ref()
        .or(t.cfg.password.as_ref())
        .map(|s| s.expose().to_owned())
        .unwrap_or_default();
    let http = reqwest::Client::builder()
        .timeout(t.cfg.timeout)
        .tcp_nodelay(true)
        .build()
        .expect("reqwest");
    let url = format!("{}/jsonrpc", t.cfg.url.as_str().trim_end_matches('/'));
    let body = serde_json::to_vec(&json!({"jsonrpc": "2.0", "method": "call", "id": 1, "params": {
        "service": "object", "method": "execute_kw",
        "args": [t.cfg.database, uid, secret, "res.partner", "search_read", [[["is_company", "=", true]]],
                 {"fields": ["name", "email", "phone", "parent_id"], "limit": 1}]}}))
    .expect("body");
    let domain = Domain::leaf("is_company", "=", true);
    let opts = SearchOptions::new().limit(1);
    // Warm both paths (connections, caches).
    for _ in 0..20 {
        let _: Vec<Value> = client
            .search_read(
                "res.partner",
                &domain,
                &["name", "email", "phone", "parent_id"],
                &opts,
            )
            .await
            .expect("search_read");
        let _ = http
            .post(&url)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .expect("raw")
            .bytes()
            .await;
    }
    let mut raw = Vec::with_capacity(n);
    let mut ours = Vec::with_capacity(n);
    for i in 0..n {
        // Alternate which goes first, so drift and ordering effects cancel out.
        for step in 0..2 {
            if (i + step) % 2 == 0 {
                let t0 = Instant::now();
                let resp = http
                    .post(&url)
                    .header("content-type", "application/json")
                    .body(body.clone())
                    .send()
                    .await
                    .expect("raw");
                let bytes = resp.bytes().await.expect("raw body");
                raw.push(t0.elapsed());
                assert!(bytes.len() > 10);
            } else {
                let t0 = Instant::now();
                let rows: Vec<Value> = client
                    .search_read(
                        "res.partner",
                        &domain,
                        &["name", "email", "phone", "parent_id"],
                        &opts,
                    )
                    .await
                    .expect("search_read");
                ours.push(t0.elapsed());
                assert_eq!(rows.len(), 1);
            }
        }
    }
    let mut diffs: Vec<f64> = ours
        .iter()
        .zip(&raw)
        .map(|(c, r)| (c.as_secs_f64() - r.as_secs_f64()) * 1e6)
        .collect();
    diffs.sort_by(|a, b| a.total_cmp(b));
    let paired = diffs[diffs.len() / 2];
    let (rm, rmean, rp95) = stats(raw);
    let (cm, cmean, cp95) = stats(ours);
    println!("  latency of search_read(limit=1), {n} calls each, alternating:");
    println!("    raw reqwest   median {rm:8.1} us  mean {rmean:8.1} us  p95 {rp95:8.1} us");
    println!("    OdooClient    median {cm:8.1} us  mean {cmean:8.1} us  p95 {cp95:8.1} us");
    println!(
        "    client overhead: median of paired differences {paired:+.1} us = {:+.2}% of the median round trip",
        paired / rm * 100.0
    );
}

async fn throughput(t: &Target, n: usize) {
    let client = OdooClient::new(t.cfg.clone()).expect("client");
    let tag = format!("odoo_rpc_bench {}", std::process::id());
    let rate = |d: Duration| n as f64 / d.as_secs_f64();
    // create: one by one vs one call
    let t0 = Instant::now();
    let mut single = Vec::with_capacity(n);
    for i in 0..n {
        single.push(
            client
                .create(t.model, &(t.seed)(i, &tag))
                .await
                .expect("create"),
        );
    }
    let create_one = t0.elapsed();
    let t0 = Instant::now();
    let many = client
        .create_many(
            t.model,
            &(0..n).map(|i| (t.seed)(i, &tag)).collect::<Vec<_>>(),
        )
        .await
        .expect("create_many");
    let create_many = t0.elapsed();
    // write: one call per record with its own values
    let t0 = Instant::now();
    for id in &many {
        client
            .write(t.model, &[*id], &(t.distinct)(1, *id))
            .await
            .expect("write");
    }
    let per_record = t0.elapsed();
    // one write, same values
    let t0 = Instant::now();
    client
        .write(t.model, &many, &t.same)
        .await
        .expect("write all");
    let one_write = t0.elapsed();
    // different values, one load
    let updates: Vec<(i64, Map<String, Value>)> = many
        .iter()
        .map(|id| {
            (
                *id,
                (t.distinct)(2, *id)
                    .as_object()
                    .cloned()
                    .unwrap_or_default(),
            )
        })
        .collect();
    let t0 = Instant::now();
    let calls = client
        .write_each(t.model, &updates)
        .await
        .expect("write_each");
    let load = t0.elapsed();
    println!("  {n} records of {}:", t.model);
    println!(
        "    create, one call per record      {:9.1} ms  {:8.0} records/s",
        create_one.as_secs_f64() * 1e3,
        rate(create_one)
    );
    println!(
        "    create, one call for all         {:9.1} ms  {:8.0} records/s  ({:.1}x)",
        create_many.as_secs_f64() * 1e3,
        rate(create_many),
        create_one.as_secs_f64() / create_many.as_secs_f64()
    );
    println!(
        "    write, one call per record       {:9.1} ms  {:8.0} records/s",
        per_record.as_secs_f64() * 1e3,
        rate(per_record)
    );
    println!(
        "    write, one call (same values)    {:9.1} ms  {:8.0} records/s  ({:.1}x)",
        one_write.as_secs_f64() * 1e3,
        rate(one_write),
        per_record.as_secs_f64() / one_write.as_secs_f64()
    );
    println!(
        "    write_each, own values ({calls} call)  {:9.1} ms  {:8.0} records/s  ({:.1}x, load)",
        load.as_secs_f64() * 1e3,
        rate(load),
        per_record.as_secs_f64() / load.as_secs_f64()
    );

    // load vs grouped writes, by group size
    println!("  {n} records with own values per group of g records: grouped writes vs one load:");
    for (round, g) in [1usize, 2, 4, 8, 16, 24, 32, 50].into_iter().enumerate() {
        let groups: Vec<Vec<i64>> = many.chunks(g).map(|c| c.to_vec()).collect();
        let t0 = Instant::now();
        for (k, ids) in groups.iter().enumerate() {
            client
                .write(t.model, ids, &(t.grouped)(round * 1000 + k))
                .await
                .expect("grouped write");
        }
        let grouped = t0.elapsed();
        let fields_rows = load_rows(t, &many, g, 50 + round);
        let t0 = Instant::now();
        client
            .load(t.model, &fields_rows.0, &fields_rows.1)
            .await
            .expect("load");
        let loaded = t0.elapsed();
        println!(
            "    g={g:3}: {:4} write calls {:9.1} ms | one load {:9.1} ms | {}",
            groups.len(),
            grouped.as_secs_f64() * 1e3,
            loaded.as_secs_f64() * 1e3,
            if loaded < grouped {
                "load wins"
            } else {
                "writes win"
            }
        );
    }
    println!("    (write_each sends groups of >= {GROUP_WRITE_MIN} identical records as a write, the rest in one load)");
    let mut all = single;
    all.extend(many);
    client.unlink(t.model, &all).await.expect("unlink");
}

/// The `load` matrix for records grouped by `g` (values shared within a group).
fn load_rows(t: &Target, ids: &[i64], g: usize, round: usize) -> (Vec<String>, Vec<Vec<String>>) {
    let sample = (t.grouped)(round);
    let keys: Vec<String> = sample
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    let mut fields = vec![".id".to_owned()];
    fields.extend(keys.iter().cloned());
    let rows = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let v = (t.grouped)(round * 1000 + i / g);
            let mut row = vec![id.to_string()];
            for k in &keys {
                row.push(match &v[k] {
                    Value::String(s) => s.clone(),
                    other => other.to_string(),
                });
            }
            row
        })
        .collect();
    (fields, rows)
}

/// How the stand-in copes with a large outbox (for the daemon's end-to-end benchmarks).
async fn standin_scale(s: &support::OdooStandin, n: usize) {
    let account = s.add_account("Scale", "scale-1", 1000);
    let partner = s.add_partner("Scale", "+33612345678", true);
    let t0 = Instant::now();
    for i in 0..n {
        s.queue_message(account, partner, &format!("scale {i}"));
    }
    let seeded = t0.elapsed();
    let client = OdooClient::new(support::client_config(s)).expect("client");
    let due = Domain::leaf("state", "=", "queued")
        .and("direction", "=", "out")
        .and_domain(Domain::or(
            Domain::leaf("next_attempt_at", "=", false),
            Domain::leaf("next_attempt_at", "<=", "2026-07-01 12:00:00"),
        ));
    let mut poll = Vec::new();
    let mut poll_sorted = Vec::new();
    let mut claim = Vec::new();
    let mut back = Vec::new();
    for round in 0..10 {
        let t0 = Instant::now();
        let rows: Vec<Value> = client
            .search_read(
                "whatsapp.message",
                &due,
                &["to_number", "body", "partner_id"],
                &SearchOptions::new().limit(200).order("id"),
            )
            .await
            .expect("poll");
        poll.push(t0.elapsed());
        let t0 = Instant::now();
        let _: Vec<Value> = client
            .search_read(
                "whatsapp.message",
                &due,
                &["to_number"],
                &SearchOptions::new().limit(200).order("next_attempt_at, id"),
            )
            .await
            .expect("poll sorted");
        poll_sorted.push(t0.elapsed());
        let ids: Vec<i64> = rows.iter().filter_map(|r| r["id"].as_i64()).collect();
        let t0 = Instant::now();
        client
            .write(
                "whatsapp.message",
                &ids,
                &json!({"state": "sending", "claimed_at": "2026-07-01 12:00:00"}),
            )
            .await
            .expect("claim");
        claim.push(t0.elapsed());
        let updates: Vec<(i64, Map<String, Value>)> = ids
            .iter()
            .map(|id| {
                (
                    *id,
                    (message_distinct)(9000 + round, *id)
                        .as_object()
                        .cloned()
                        .unwrap_or_default(),
                )
            })
            .collect();
        let t0 = Instant::now();
        client
            .write_each("whatsapp.message", &updates)
            .await
            .expect("write back");
        back.push(t0.elapsed());
    }
    let ms = |v: Vec<Duration>| stats(v).0 / 1e3;
    println!(
        "  stand-in with {n} queued messages (inserted in {:.1} s), median of 10 rounds of 200:",
        seeded.as_secs_f64()
    );
    println!(
        "    poll search_read (order id) {:7.2} ms | (order next_attempt_at, id) {:7.2} ms | claim write {:7.2} ms | write-back write_each {:7.2} ms",
        ms(poll),
        ms(poll_sorted),
        ms(claim),
        ms(back)
    );
}

fn real_target() -> Option<Target> {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
    let url = var("ODOO_URL")?;
    let mut cfg = ClientConfig::new(url.parse().ok()?, var("ODOO_DB")?, var("ODOO_LOGIN")?);
    cfg.api_key = var("ODOO_API_KEY").map(Secret::new);
    cfg.password = var("ODOO_PASSWORD").map(Secret::new);
    if cfg.api_key.is_none() && cfg.password.is_none() {
        return None;
    }
    cfg.timeout = Duration::from_secs(120);
    Some(Target {
        label: format!("real Odoo at {url}"),
        cfg,
        model: "res.partner",
        seed: partner_seed,
        distinct: partner_distinct,
        grouped: partner_grouped,
        same: json!({"ref": "odoo_rpc_bench"}),
    })
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let n_latency = if quick { 100 } else { 1000 };
    let mut targets = Vec::new();
    let standin = if args.iter().any(|a| a == "--real-only") {
        None
    } else {
        Some(support::OdooStandin::start().await)
    };
    if let Some(s) = &standin {
        let account = s.add_account("Bench", "bench-1", 80);
        let _ = account;
        targets.push(Target {
            label: format!("Odoo stand-in at {}", s.url()),
            cfg: support::client_config(s),
            model: "whatsapp.message",
            seed: message_seed,
            distinct: message_distinct,
            grouped: message_grouped,
            same: json!({"state": "delivered"}),
        });
    }
    if !args.iter().any(|a| a == "--standin-only") {
        match real_target() {
            Some(mut t) => {
                let probe = OdooClient::new(t.cfg.clone()).expect("client");
                let has_addon = probe
                    .search_count(
                        "ir.module.module",
                        &Domain::leaf("name", "=", "whatsapp_sidecar").and("state", "=", "installed"),
                    )
                    .await
                    .unwrap_or(0)
                    > 0;
                if has_addon {
                    t.model = "whatsapp.message";
                    t.seed = message_seed;
                    t.distinct = message_distinct;
                    t.grouped = message_grouped;
                    t.same = json!({"state": "delivered"});
                }
                targets.push(t);
            }
            None => println!("(set ODOO_URL, ODOO_DB, ODOO_LOGIN and ODOO_API_KEY or ODOO_PASSWORD to also measure a real Odoo)\n"),
        }
    }
    for t in &targets {
        println!("== {}", t.label);
        let n = if t.label.starts_with("real") {
            n_latency.min(300)
        } else {
            n_latency
        };
        latency(t, n).await;
        throughput(t, 200).await;
        if let (Some(s), false) = (&standin, t.label.starts_with("real")) {
            standin_scale(s, if quick { 5_000 } else { 50_000 }).await;
        }
        println!();
    }
}
