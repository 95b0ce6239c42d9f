//! Status-webhook intake on a real Odoo 17, the sidecar side by side with a peer module that
//! handles Meta's webhooks inside Odoo's own request (`skillbridge_whatsapp_cloud`, its
//! `POST /whatsapp/webhook`), in one run.
//!
//! ```text
//! cargo build --release
//! ODOO_URL=http://127.0.0.1:8069 ODOO_DB=wa17lead ODOO_LOGIN=admin ODOO_PASSWORD=admin \
//!   cargo run --release --example webhook_real_bench -- [--levels 1,8,32] [--reps 2] \
//!   [--seconds 10] [--peer-url http://127.0.0.1:8169] [--peer-db peer17] [--peer-login admin] \
//!   [--peer-password admin] [--no-peer] [--set section.key=value ...]
//! ```
//!
//! The sidecar's Odoo (the addon installed, the user in "WhatsApp Sidecar (technical)") comes
//! from `ODOO_*` (`SKIPPED` when unset); the daemon binary (`target/release/whatsapp-sidecar`)
//! runs as its own process in cloud mode against the sandbox (in this process), started by
//! `RealOdoo::start_daemon` with the shipped intervals (`--set` changes its configuration, as in
//! `real_odoo_bench`), and talks to Odoo directly. The peer is a second Odoo of the same tree
//! with the module installed in `--peer-db`; its app secret is read from its
//! `skillbridge_whatsapp_cloud.app_secret` parameter. Give the peer its database with
//! `db_name`, not a `dbfilter`: with a `dbfilter`, Odoo lists the databases through a new
//! PostgreSQL connection for every request without a session cookie, i.e. for every webhook
//! (measured: 100 sequential webhooks took 1.69 s instead of 0.69 s).
//!
//! **Load.** For each level of concurrent senders and each repetition: the sidecar for
//! `--seconds`, then the peer for as long, then the next repetition. Each sender is closed
//! loop: it POSTs one signed `delivered` status webhook (one status per POST, Meta's shape,
//! `X-Hub-Signature-256` = HMAC-SHA256 of the body with that side's app secret), waits for the
//! answer, then the next. Every webhook is about a different `sent` message, never one twice:
//! before the runs the bench seeds `whatsapp.message` records (state `sent`, a unique wamid, on
//! an account of its own, one of 200 partners; `create` 1,000 at a time) and peer
//! `whatsapp.message.log` records (`status = sent`, outbound, one of 200 partners, as the
//! module logs a sent template) — per run, `--seconds` × the highest plausible rate
//! (`--rate-per-sender` × senders, at most `--max-rate` for the sidecar and `--peer-max-rate`
//! for the peer), plus 50 each for an untimed warm-up. A run that uses up its messages stops
//! early and says so.
//!
//! **Measured, per run and per level (all repetitions together):** webhooks answered 200 per
//! second (over the run, until the last sender has its answer), latency p50 / p90 / p99 / max
//! of those, errors (every non-200 answer or failed request), and CPU per webhook answered
//! 200: the Odoo server process (`utime + stime` of `/proc/<pid>/stat`, every thread; pid
//! from `--odoo-pidfile` / `--peer-pidfile`, or `--odoo-pid` / `--peer-pid`), PostgreSQL
//! (the postmaster's `utime + stime + cutime + cstime` plus `utime + stime` of its live
//! children: backends that exited are in `cutime`; pid from `/var/run/postgresql/*.pid` or
//! `--pg-pid`; the one server both Odoos use, so it counts whatever else runs on it), and the
//! daemon's CPU for the sidecar. The sidecar answers a webhook once its event is stored and
//! applies the status after, so after each sidecar run the bench checks that the run's
//! `whatsapp.webhook.event`s (events of its account with a higher id than before the run) are
//! at least the 200s (when the run ends and after the settle), waiting (at most
//! `--settle-max-secs`, 60 s by default, polling twice a second) until they are, until they
//! are all processed and until as many of the run's messages are `delivered` as webhooks were
//! answered 200; it reports how many and how long that took. **The sidecar's CPU figures in
//! the tables include that settle** (the run's CPU plus the settle's, divided by the 200s);
//! each run's line gives the two parts. The peer applies
//! the status within the request: after its run the bench counts the run's logs now
//! `delivered`. Each run's line also gives the other side's Odoo CPU meanwhile (the daemon's
//! idle polls load the sidecar's Odoo during the peer's runs).
//!
//! At the end the bench deletes what it made: its account with its messages and events,
//! partners and template (`RealOdoo::cleanup`), and its peer logs and partners.

#[path = "../tests/e2e_support/mod.rs"]
mod e2e_support;
#[path = "../tests/support/mod.rs"]
mod support;

use clap::Parser;
use e2e_support::{
    clock_ticks, odoo_time, proc_sample, DaemonConfig, OdooTarget, RealOdoo, EVENT, MESSAGE,
};
use futures_util::FutureExt;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::panic::AssertUnwindSafe;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use whatsapp_sidecar::odoo::{Domain, OdooClient, SearchOptions};
use whatsapp_sidecar::secret::Secret;
use whatsapp_sidecar::whatsapp::signature::{sign, SIGNATURE_HEADER};

/// The peer module's message log.
const PEER_LOG: &str = "whatsapp.message.log";
/// Partners the seeded messages go to, on each side.
const PARTNERS: usize = 200;
/// Untimed webhooks to each side before the first run.
const WARMUP: usize = 50;
/// Longest wait for a sidecar run's statuses to be applied.

#[derive(Parser, Debug)]
struct Args {
    /// Concurrent senders, one level after the other.
    #[arg(long, value_delimiter = ',', default_values_t = [1usize, 8, 32])]
    levels: Vec<usize>,
    /// Repetitions of each level (sidecar, then peer, each time).
    #[arg(long, default_value_t = 2)]
    reps: usize,
    /// Length of each run.
    #[arg(long, default_value_t = 10)]
    seconds: u64,
    #[arg(long, default_value = "http://127.0.0.1:8169")]
    peer_url: String,
    #[arg(long, default_value = "peer17")]
    peer_db: String,
    #[arg(long, default_value = "admin")]
    peer_login: String,
    #[arg(long, default_value = "admin")]
    peer_password: String,
    /// Only the sidecar.
    #[arg(long)]
    no_peer: bool,
    /// Extra daemon settings, `section.key=value` (TOML value), repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    settings: Vec<String>,
    /// The sidecar's Odoo server pid (else read from --odoo-pidfile).
    #[arg(long)]
    odoo_pid: Option<u32>,
    #[arg(long, default_value = "/work/odoo/odoo.pid")]
    odoo_pidfile: PathBuf,
    /// The peer's Odoo server pid (else read from --peer-pidfile).
    #[arg(long)]
    peer_pid: Option<u32>,
    #[arg(long, default_value = "/work/peer/odoo.pid")]
    peer_pidfile: PathBuf,
    /// The PostgreSQL postmaster pid (else from /var/run/postgresql/*.pid).
    #[arg(long)]
    pg_pid: Option<u32>,
    /// Seeding: the highest plausible rate per sender (webhooks/s).
    #[arg(long, default_value_t = 250)]
    rate_per_sender: usize,
    /// Seeding: the highest plausible sidecar rate at any level (webhooks/s).
    #[arg(long, default_value_t = 1500)]
    max_rate: usize,
    /// Seeding: the highest plausible peer rate at any level (webhooks/s).
    #[arg(long, default_value_t = 400)]
    peer_max_rate: usize,
    /// The longest the bench waits after a sidecar run for its webhooks to be stored and
    /// applied (with a spool, a backlog accepted at 10,000/s drains at Odoo's pace).
    #[arg(long, default_value_t = 60)]
    settle_max_secs: u64,
}

impl Args {
    /// Messages seeded for one run of `side` at `senders`.
    fn seed_per_run(&self, side: Side, senders: usize) -> usize {
        let max = match side {
            Side::Sidecar => self.max_rate,
            Side::Peer => self.peer_max_rate,
        };
        (self.rate_per_sender * senders).min(max).max(1) * self.seconds as usize
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Side {
    Sidecar,
    Peer,
}

impl Side {
    fn name(self) -> &'static str {
        match self {
            Side::Sidecar => "sidecar",
            Side::Peer => "peer",
        }
    }
}

/// A seeded `sent` message: its record id, wamid and the recipient's WhatsApp id.
#[derive(Clone, Debug)]
struct Item {
    id: i64,
    wamid: String,
    wa_id: String,
}

/// Where one side's webhooks go and how they are signed.
struct Target {
    url: String,
    secret: Secret,
    phone_id: String,
    waba_id: String,
}

/// A `delivered` status webhook as Meta sends it, one status per POST.
fn status_body(target: &Target, item: &Item) -> String {
    let ts = chrono::Utc::now().timestamp();
    format!(
        r#"{{"object":"whatsapp_business_account","entry":[{{"id":"{waba}","changes":[{{"value":{{"messaging_product":"whatsapp","metadata":{{"display_phone_number":"15550000001","phone_number_id":"{phone}"}},"statuses":[{{"id":"{wamid}","status":"delivered","timestamp":"{ts}","recipient_id":"{wa_id}","recipient_user_id":"FR.{wa_id}","biz_opaque_callback_data":"","pricing":{{"billable":true,"pricing_model":"PMP","type":"regular","category":"utility"}}}}]}},"field":"messages"}}]}}]}}"#,
        waba = target.waba_id,
        phone = target.phone_id,
        wamid = item.wamid,
        wa_id = item.wa_id,
    )
}

// ----- CPU figures --------------------------------------------------------------------------

/// `(ppid, utime, stime, cutime, cstime)` in ticks from `/proc/<pid>/stat`.
fn stat_ticks(pid: u32) -> Option<(u32, u64, u64, u64, u64)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After the command name (which may hold spaces): state, ppid, ... utime is field 14.
    let fields: Vec<&str> = stat[stat.rfind(')')? + 1..].split_whitespace().collect();
    let n = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
    Some((n(1)? as u32, n(11)?, n(12)?, n(13)?, n(14)?))
}

fn ticks(t: u64) -> Duration {
    Duration::from_micros(t * 1_000_000 / clock_ticks())
}

/// A process's own CPU time (every thread).
fn own_cpu(pid: u32) -> Option<Duration> {
    stat_ticks(pid).map(|(_, u, s, _, _)| ticks(u + s))
}

/// PostgreSQL's CPU time: the postmaster's own and that of its reaped children (backends that
/// exited), plus its live children's.
fn pg_cpu(postmaster: u32) -> Option<Duration> {
    let (_, u, s, cu, cs) = stat_ticks(postmaster)?;
    let mut total = u + s + cu + cs;
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if let Some((ppid, u, s, _, _)) = stat_ticks(pid) {
            if ppid == postmaster {
                total += u + s;
            }
        }
    }
    Some(ticks(total))
}

/// A live process's pid from its pid file (first line).
fn pid_from_file(path: &Path) -> Option<u32> {
    let text = std::fs::read_to_string(path).ok()?;
    let pid: u32 = text.lines().next()?.trim().parse().ok()?;
    Path::new(&format!("/proc/{pid}")).exists().then_some(pid)
}

/// The postmaster: `/var/run/postgresql/15-main.pid`, any other `*.pid` there, or the first line
/// of a cluster's `postmaster.pid` under `/var/lib/postgresql`.
fn postmaster_pid() -> Option<u32> {
    let mut candidates = vec![PathBuf::from("/var/run/postgresql/15-main.pid")];
    if let Ok(dir) = std::fs::read_dir("/var/run/postgresql") {
        let mut pids: Vec<PathBuf> = dir
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|e| e == "pid"))
            .collect();
        pids.sort();
        candidates.extend(pids);
    }
    if let Ok(versions) = std::fs::read_dir("/var/lib/postgresql") {
        for v in versions.flatten() {
            candidates.push(v.path().join("main/postmaster.pid"));
        }
    }
    candidates.iter().find_map(|p| pid_from_file(p))
}

/// A process's command line, for the report.
fn cmdline(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|b| {
            String::from_utf8_lossy(&b)
                .replace('\0', " ")
                .trim()
                .to_owned()
        })
        .unwrap_or_default()
}

#[derive(Clone, Copy, Debug)]
struct Pids {
    odoo: Option<u32>,
    peer: Option<u32>,
    pg: Option<u32>,
    daemon: Option<u32>,
}

/// CPU time so far of each process measured (`None`: not known or gone).
#[derive(Clone, Copy, Debug, Default)]
struct Cpu {
    odoo: Option<Duration>,
    peer: Option<Duration>,
    pg: Option<Duration>,
    daemon: Option<Duration>,
}

impl Cpu {
    fn sample(p: &Pids) -> Cpu {
        Cpu {
            odoo: p.odoo.and_then(own_cpu),
            peer: p.peer.and_then(own_cpu),
            pg: p.pg.and_then(pg_cpu),
            daemon: p.daemon.and_then(proc_sample).map(|s| s.cpu),
        }
    }

    /// What was spent from `earlier` to `self`.
    fn since(&self, earlier: &Cpu) -> Cpu {
        let d = |a: Option<Duration>, b: Option<Duration>| Some(a?.saturating_sub(b?));
        Cpu {
            odoo: d(self.odoo, earlier.odoo),
            peer: d(self.peer, earlier.peer),
            pg: d(self.pg, earlier.pg),
            daemon: d(self.daemon, earlier.daemon),
        }
    }

    fn plus(&self, other: &Cpu) -> Cpu {
        let s = |a: Option<Duration>, b: Option<Duration>| Some(a? + b?);
        Cpu {
            odoo: s(self.odoo, other.odoo),
            peer: s(self.peer, other.peer),
            pg: s(self.pg, other.pg),
            daemon: s(self.daemon, other.daemon),
        }
    }

    /// The CPU of the Odoo serving `side`, and of the other one.
    fn odoo_of(&self, side: Side) -> (Option<Duration>, Option<Duration>) {
        match side {
            Side::Sidecar => (self.odoo, self.peer),
            Side::Peer => (self.peer, self.odoo),
        }
    }
}

fn secs(d: Option<Duration>) -> String {
    d.map(|d| format!("{:.2} s", d.as_secs_f64()))
        .unwrap_or_else(|| "n/a".into())
}

/// `d` per `n` webhooks in `unit` seconds (1e3: ms, 1e6: µs), or "n/a".
fn per(d: Option<Duration>, n: usize, unit: f64, decimals: usize) -> String {
    match d {
        Some(d) if n > 0 => format!("{:.*}", decimals, d.as_secs_f64() * unit / n as f64),
        _ => "n/a".into(),
    }
}

// ----- the load -----------------------------------------------------------------------------

/// What one run's senders saw.
#[derive(Default)]
struct Outcome {
    /// Latencies of the webhooks answered 200, sorted.
    latencies: Vec<Duration>,
    /// Non-200 answers and failed requests, by kind.
    errors: BTreeMap<String, u64>,
    /// Messages handed to a sender (each POSTed once).
    posted: usize,
    /// The run used up its messages before its time.
    ran_out: bool,
    elapsed: Duration,
}

impl Outcome {
    fn ok(&self) -> usize {
        self.latencies.len()
    }

    fn error_count(&self) -> u64 {
        self.errors.values().sum()
    }
}

/// `senders` closed-loop senders POST one webhook each about the next message of `items` until
/// `duration` has passed or the messages run out.
async fn drive(
    target: &Arc<Target>,
    items: Arc<Vec<Item>>,
    senders: usize,
    duration: Duration,
) -> Outcome {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(senders)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap_or_else(|e| panic!("http client: {e}"));
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let deadline = started + duration;
    let workers: Vec<_> = (0..senders)
        .map(|_| {
            let (http, target, items, next) =
                (http.clone(), target.clone(), items.clone(), next.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut errors: BTreeMap<String, u64> = BTreeMap::new();
                let mut ran_out = false;
                while Instant::now() < deadline {
                    let Some(item) = items.get(next.fetch_add(1, Ordering::Relaxed)) else {
                        ran_out = true;
                        break;
                    };
                    let body = status_body(&target, item);
                    let signature = sign(&target.secret, body.as_bytes());
                    let sent = Instant::now();
                    let result = http
                        .post(&target.url)
                        .header(SIGNATURE_HEADER, signature)
                        .header("content-type", "application/json")
                        .body(body)
                        .send()
                        .await;
                    let kind = match result {
                        Ok(r) => {
                            let status = r.status();
                            let _ = r.bytes().await;
                            if status == 200 {
                                latencies.push(sent.elapsed());
                                continue;
                            }
                            format!("HTTP {}", status.as_u16())
                        }
                        Err(e) if e.is_timeout() => "timeout".to_owned(),
                        Err(e) if e.is_connect() => "connect".to_owned(),
                        Err(_) => "request failed".to_owned(),
                    };
                    *errors.entry(kind).or_insert(0) += 1;
                }
                (latencies, errors, ran_out)
            })
        })
        .collect();
    let mut outcome = Outcome::default();
    for worker in workers {
        match worker.await {
            Ok((latencies, errors, ran_out)) => {
                outcome.latencies.extend(latencies);
                for (k, n) in errors {
                    *outcome.errors.entry(k).or_insert(0) += n;
                }
                outcome.ran_out |= ran_out;
            }
            Err(e) => panic!("a sender failed: {e}"),
        }
    }
    outcome.elapsed = started.elapsed();
    outcome.posted = next.load(Ordering::Relaxed).min(items.len());
    outcome.latencies.sort_unstable();
    outcome
}

fn pct(sorted: &[Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 * p) as usize).min(sorted.len() - 1);
    sorted[i].as_secs_f64() * 1e3
}

// ----- the runs ------------------------------------------------------------------------------

/// One run's figures.
struct Run {
    senders: usize,
    rep: usize,
    side: Side,
    outcome: Outcome,
    /// CPU over the run (senders sending), then over the settle (sidecar only).
    cpu_run: Cpu,
    cpu_settle: Option<Cpu>,
}

impl Run {
    /// The CPU counted per webhook: the run's and its settle's.
    fn cpu(&self) -> Cpu {
        match &self.cpu_settle {
            Some(settle) => self.cpu_run.plus(settle),
            None => self.cpu_run,
        }
    }
}

/// The peer: its client and where its webhooks go.
struct Peer {
    client: OdooClient,
    target: Arc<Target>,
    stamp: String,
}

impl Peer {
    async fn connect(args: &Args, stamp: &str) -> Result<Peer, String> {
        let target = OdooTarget {
            url: args.peer_url.trim_end_matches('/').to_owned(),
            database: args.peer_db.clone(),
            login: args.peer_login.clone(),
            api_key: None,
            password: Some(args.peer_password.clone()),
        };
        let client = OdooClient::new(target.client_config())
            .map_err(|e| format!("cannot build a client for {}: {e}", target.url))?;
        let secret: Value = client
            .call(
                "ir.config_parameter",
                "get_param",
                json!(["skillbridge_whatsapp_cloud.app_secret"]),
                json!({}),
            )
            .await
            .map_err(|e| {
                format!(
                    "cannot read the peer's app secret on {} ({}): {e}",
                    target.url, target.database
                )
            })?;
        let Some(secret) = secret.as_str().filter(|s| !s.is_empty()) else {
            return Err(format!(
                "the peer's skillbridge_whatsapp_cloud.app_secret is not set in {}",
                target.database
            ));
        };
        Ok(Peer {
            client,
            target: Arc::new(Target {
                url: format!("{}/whatsapp/webhook", target.url),
                secret: Secret::new(secret),
                phone_id: format!("peer-bench-{stamp}"),
                waba_id: format!("peer-bench-waba-{stamp}"),
            }),
            stamp: stamp.to_owned(),
        })
    }

    fn tag(&self) -> String {
        format!("(whatsapp-sidecar bench {})", self.stamp)
    }

    fn wamid_prefix(&self) -> String {
        format!("wamid.PEERBENCH{}.", self.stamp)
    }

    /// Deletes the logs and partners this bench made (found by their wamid prefix and name).
    async fn cleanup(&self) {
        let logs = self
            .client
            .search(
                PEER_LOG,
                &Domain::leaf("message_id", "=like", format!("{}%", self.wamid_prefix())),
                &SearchOptions::new(),
            )
            .await
            .unwrap_or_default();
        for chunk in logs.chunks(1000) {
            if let Err(e) = self.client.unlink(PEER_LOG, chunk).await {
                eprintln!("peer cleanup: cannot delete {} logs: {e}", chunk.len());
            }
        }
        let partners = self
            .client
            .search(
                "res.partner",
                &Domain::leaf("name", "like", self.tag()),
                &SearchOptions::new(),
            )
            .await
            .unwrap_or_default();
        if partners.is_empty() {
            return;
        }
        if let Err(e) = self.client.unlink("res.partner", &partners).await {
            eprintln!(
                "peer cleanup: cannot delete {} partners: {e}",
                partners.len()
            );
        }
    }
}

fn main() {
    let args = Args::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"));
    runtime.block_on(async {
        let real = match RealOdoo::setup(80).await {
            Ok(real) => real,
            Err(reason) => {
                println!("SKIPPED: {reason}");
                return;
            }
        };
        let peer = if args.no_peer {
            None
        } else {
            match Peer::connect(&args, &real.stamp).await {
                Ok(p) => Some(p),
                Err(e) => {
                    println!("ERROR: peer: {e} (start it, or pass --no-peer)");
                    real.cleanup().await;
                    std::process::exit(1);
                }
            }
        };
        let outcome = AssertUnwindSafe(bench(&args, &real, peer.as_ref()))
            .catch_unwind()
            .await;
        let cleaning = Instant::now();
        real.cleanup().await;
        if let Some(peer) = &peer {
            peer.cleanup().await;
        }
        println!(
            "cleaned up what the bench made in {:.1} s",
            cleaning.elapsed().as_secs_f64()
        );
        if outcome.is_err() {
            eprintln!("the bench failed (what it made in Odoo is deleted)");
            std::process::exit(1);
        }
    });
}

/// The slices of seeded messages: the warm-up's, then one per run in run order.
fn slices(all: Vec<Item>, sizes: &[usize]) -> Vec<Arc<Vec<Item>>> {
    let mut rest = all.into_iter();
    sizes
        .iter()
        .map(|n| Arc::new(rest.by_ref().take(*n).collect()))
        .collect()
}

async fn seed_sidecar(real: &RealOdoo, total: usize) -> Vec<Item> {
    let partners: Vec<Value> = (0..PARTNERS)
        .map(|i| {
            let mut v = json!({"name": format!("W{i} (whatsapp-sidecar e2e {})", real.stamp),
                               "mobile": format!("+3361{i:07}"), "whatsapp_opt_in": true});
            if let Some(fr) = real.france {
                v["country_id"] = json!(fr);
            }
            v
        })
        .collect();
    let partners = match real.create_many("res.partner", &partners).await {
        Ok(ids) => ids,
        Err(e) => panic!("cannot create partners: {e}"),
    };
    let now = odoo_time(chrono::Utc::now());
    let mut items = Vec::with_capacity(total);
    for start in (0..total).step_by(1000) {
        let end = (start + 1000).min(total);
        let chunk: Vec<(Value, Item)> = (start..end)
            .map(|n| {
                let p = n % PARTNERS;
                let wamid = format!("wamid.SCBENCH{}.{n:07}", real.stamp);
                let wa_id = format!("3361{p:07}");
                let values = json!({"account_id": real.account, "partner_id": partners[p],
                    "direction": "out", "message_type": "template", "template_id": real.template,
                    "state": "sent", "wamid": wamid, "to_number": format!("+{wa_id}"),
                    "to_e164": format!("+{wa_id}"), "wa_id": wa_id, "sent_at": now,
                    "res_model": "res.partner", "res_id": partners[p]});
                (
                    values,
                    Item {
                        id: 0,
                        wamid,
                        wa_id,
                    },
                )
            })
            .collect();
        let values: Vec<Value> = chunk.iter().map(|(v, _)| v.clone()).collect();
        let ids = match real.create_many(MESSAGE, &values).await {
            Ok(ids) => ids,
            Err(e) => panic!("cannot create sent messages: {e}"),
        };
        items.extend(
            chunk
                .into_iter()
                .zip(ids)
                .map(|((_, item), id)| Item { id, ..item }),
        );
    }
    items
}

async fn seed_peer(peer: &Peer, total: usize) -> Vec<Item> {
    let partners: Vec<Value> = (0..PARTNERS)
        .map(|i| json!({"name": format!("W{i} {}", peer.tag()), "mobile": format!("+3361{i:07}")}))
        .collect();
    let partners = match peer.client.create_many("res.partner", &partners).await {
        Ok(ids) => ids,
        Err(e) => panic!("cannot create peer partners: {e}"),
    };
    let mut items = Vec::with_capacity(total);
    for start in (0..total).step_by(1000) {
        let end = (start + 1000).min(total);
        let chunk: Vec<(Value, Item)> = (start..end)
            .map(|n| {
                let p = n % PARTNERS;
                let wamid = format!("{}{n:07}", peer.wamid_prefix());
                let values = json!({"message_id": wamid, "partner_id": partners[p],
                    "direction": "outbound", "status": "sent", "message_type": "template",
                    "template_name": "sidecar_hello", "message_body": ""});
                let wa_id = format!("3361{p:07}");
                (
                    values,
                    Item {
                        id: 0,
                        wamid,
                        wa_id,
                    },
                )
            })
            .collect();
        let values: Vec<Value> = chunk.iter().map(|(v, _)| v.clone()).collect();
        let ids = match peer.client.create_many(PEER_LOG, &values).await {
            Ok(ids) => ids,
            Err(e) => panic!("cannot create peer logs: {e}"),
        };
        items.extend(
            chunk
                .into_iter()
                .zip(ids)
                .map(|((_, item), id)| Item { id, ..item }),
        );
    }
    items
}

async fn bench(args: &Args, real: &RealOdoo, peer: Option<&Peer>) {
    let levels: Vec<usize> = args.levels.iter().copied().filter(|l| *l > 0).collect();
    let sides: Vec<Side> = if peer.is_some() {
        vec![Side::Sidecar, Side::Peer]
    } else {
        vec![Side::Sidecar]
    };
    // Run order, and the messages each run gets.
    let mut plan = Vec::new();
    for &senders in &levels {
        for rep in 1..=args.reps {
            for &side in &sides {
                plan.push((senders, rep, side));
            }
        }
    }
    let sizes = |side: Side| -> Vec<usize> {
        std::iter::once(WARMUP)
            .chain(
                plan.iter()
                    .filter(|(_, _, s)| *s == side)
                    .map(|(senders, _, _)| args.seed_per_run(side, *senders)),
            )
            .collect()
    };

    let seeding = Instant::now();
    let sidecar_sizes = sizes(Side::Sidecar);
    let total: usize = sidecar_sizes.iter().sum();
    let mut sidecar_slices = slices(seed_sidecar(real, total).await, &sidecar_sizes).into_iter();
    println!(
        "sidecar: {total} `sent` whatsapp.message seeded in {:.1} s on {} ({}), account {} (phone number id {})",
        seeding.elapsed().as_secs_f64(),
        real.target.url,
        real.target.database,
        real.account,
        real.phone_id
    );
    let mut peer_slices = match peer {
        Some(peer) => {
            let seeding = Instant::now();
            let peer_sizes = sizes(Side::Peer);
            let total: usize = peer_sizes.iter().sum();
            let items = seed_peer(peer, total).await;
            println!(
                "peer: {total} `sent` {PEER_LOG} seeded in {:.1} s on {} ({})",
                seeding.elapsed().as_secs_f64(),
                args.peer_url,
                args.peer_db
            );
            slices(items, &peer_sizes).into_iter()
        }
        None => Vec::new().into_iter(),
    };

    // The daemon, in cloud mode against the sandbox, with its account's webhook secret.
    let meta_config = real.meta_config(80);
    let (meta, _meta_stop) = e2e_support::start_meta(meta_config).await;
    let mut config = DaemonConfig::new(&real.target, &meta.base_url());
    config.set("odoo.timeout_secs", 30);
    config.default_intervals();
    config.set("log.filter", "warn");
    config.apply(&args.settings);
    let (mut daemon, logs, _keep) = real.start_daemon(&meta, &config).await;
    let sidecar = Arc::new(Target {
        url: config.url("/webhook"),
        secret: Secret::new(real.app_secret.as_str()),
        phone_id: real.phone_id.clone(),
        waba_id: real.waba_id.clone(),
    });

    let pids = Pids {
        odoo: args.odoo_pid.or_else(|| pid_from_file(&args.odoo_pidfile)),
        peer: if peer.is_some() {
            args.peer_pid.or_else(|| pid_from_file(&args.peer_pidfile))
        } else {
            None
        },
        pg: args.pg_pid.or_else(postmaster_pid),
        daemon: Some(daemon.pid()),
    };
    let describe = |name: &str, pid: Option<u32>| match pid {
        Some(pid) => println!("{name}: pid {pid} ({})", cmdline(pid)),
        None => println!("{name}: pid not found: its CPU is reported as n/a"),
    };
    describe("sidecar's Odoo", pids.odoo);
    if peer.is_some() {
        describe("peer's Odoo", pids.peer);
    }
    describe("PostgreSQL postmaster", pids.pg);
    describe("daemon", pids.daemon);
    if let Ok(load) = std::fs::read_to_string("/proc/loadavg") {
        println!(
            "load average before the runs: {}",
            load.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        );
    }

    // Warm-up: a few webhooks to each side, untimed.
    let warm = |target: Arc<Target>, items: Option<Arc<Vec<Item>>>| async move {
        if let Some(items) = items {
            let o = drive(&target, items, 1, Duration::from_secs(30)).await;
            o.ok()
        } else {
            0
        }
    };
    let warm_sidecar = warm(sidecar.clone(), sidecar_slices.next()).await;
    let warm_peer = match peer {
        Some(p) => warm(p.target.clone(), peer_slices.next()).await,
        None => 0,
    };
    println!(
        "warm-up: {warm_sidecar} webhooks to the sidecar, {warm_peer} to the peer; runs of {} s, levels {levels:?} x {} repetitions",
        args.seconds, args.reps
    );

    let mut runs: Vec<Run> = Vec::new();
    for (senders, rep, side) in plan {
        let run = match (side, peer) {
            (Side::Sidecar, _) => {
                let items = sidecar_slices.next().unwrap_or_default();
                sidecar_run(args, real, &sidecar, items, senders, rep, &pids).await
            }
            (Side::Peer, Some(peer)) => {
                let items = peer_slices.next().unwrap_or_default();
                peer_run(args, peer, items, senders, rep, &pids).await
            }
            (Side::Peer, None) => continue,
        };
        runs.push(run);
        if let Some(status) = daemon.exited() {
            panic!("the daemon exited: {status}\n{}", logs.tail(50));
        }
    }

    println!("\n## every run (sidecar CPU includes the settle after its run)\n");
    print_table(
        runs.iter().map(|r| {
            (
                format!("{} | {} | {}", r.senders, r.side.name(), r.rep),
                Figures::of(&[r]),
            )
        }),
        "| senders | side | rep |",
    );
    println!(
        "\n## per level, the {} repetitions together (sidecar CPU includes the settles)\n",
        args.reps
    );
    let mut groups: BTreeMap<(usize, Side), Vec<&Run>> = BTreeMap::new();
    for r in &runs {
        groups.entry((r.senders, r.side)).or_default().push(r);
    }
    print_table(
        groups
            .iter()
            .map(|((senders, side), rs)| (format!("{senders} | {}", side.name()), Figures::of(rs))),
        "| senders | side |",
    );
    let status = daemon.terminate(Duration::from_secs(30)).await;
    if !status.success() {
        println!("the daemon exited with {status}:\n{}", logs.tail(30));
    }
    let warnings = logs.matching(&["WARN"]).len() + logs.matching(&["ERROR"]).len();
    if warnings > 0 {
        println!(
            "the daemon logged {warnings} warnings/errors; the last ones:\n{}",
            logs.tail(10)
        );
    }
}

/// A table row's figures, over one run or several.
struct Figures {
    ok: usize,
    elapsed: Duration,
    latencies: Vec<Duration>,
    errors: u64,
    cpu: Cpu,
    side: Side,
    ran_out: bool,
}

impl Figures {
    fn of(runs: &[&Run]) -> Figures {
        let mut latencies: Vec<Duration> = runs
            .iter()
            .flat_map(|r| r.outcome.latencies.iter().copied())
            .collect();
        latencies.sort_unstable();
        let mut cpu = runs.first().map(|r| r.cpu()).unwrap_or_default();
        for r in runs.iter().skip(1) {
            cpu = cpu.plus(&r.cpu());
        }
        Figures {
            ok: latencies.len(),
            elapsed: runs.iter().map(|r| r.outcome.elapsed).sum(),
            latencies,
            errors: runs.iter().map(|r| r.outcome.error_count()).sum(),
            cpu,
            side: runs.first().map(|r| r.side).unwrap_or(Side::Sidecar),
            ran_out: runs.iter().any(|r| r.outcome.ran_out),
        }
    }
}

fn print_table(rows: impl Iterator<Item = (String, Figures)>, head: &str) {
    let key_columns = head.matches('|').count() - 1;
    println!(
        "{head} rate/s | p50 ms | p90 ms | p99 ms | max ms | errors | Odoo ms/webhook | PG ms/webhook | daemon µs/webhook |"
    );
    println!("{}|", "|---".repeat(key_columns + 9));
    for (key, f) in rows {
        let (odoo, _) = f.cpu.odoo_of(f.side);
        let daemon = match f.side {
            Side::Sidecar => per(f.cpu.daemon, f.ok, 1e6, 0),
            Side::Peer => "-".into(),
        };
        println!(
            "| {key} | {:.1}{} | {:.1} | {:.1} | {:.1} | {:.1} | {} | {} | {} | {daemon} |",
            f.ok as f64 / f.elapsed.as_secs_f64().max(1e-9),
            if f.ran_out { " (ran out)" } else { "" },
            pct(&f.latencies, 0.50),
            pct(&f.latencies, 0.90),
            pct(&f.latencies, 0.99),
            pct(&f.latencies, 1.0),
            f.errors,
            per(odoo, f.ok, 1e3, 2),
            per(f.cpu.pg, f.ok, 1e3, 2),
        );
    }
}

fn errors_text(o: &Outcome) -> String {
    if o.errors.is_empty() {
        "0 errors".into()
    } else {
        format!(
            "{} errors ({})",
            o.error_count(),
            o.errors
                .iter()
                .map(|(k, n)| format!("{k}: {n}"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    }
}

fn ran_out_text(o: &Outcome, items: usize) -> String {
    if o.ran_out {
        format!(
            "; RAN OUT of messages ({items} seeded for this run) after {:.1} s: stopped early",
            o.elapsed.as_secs_f64()
        )
    } else {
        String::new()
    }
}

async fn last_id(client: &OdooClient, model: &str) -> i64 {
    client
        .search(
            model,
            &Domain::all(),
            &SearchOptions::new().order("id desc").limit(1),
        )
        .await
        .ok()
        .and_then(|ids| ids.first().copied())
        .unwrap_or(0)
}

async fn count(client: &OdooClient, model: &str, domain: Domain) -> u64 {
    match client.search_count(model, &domain).await {
        Ok(n) => n,
        Err(e) => panic!("cannot count {model}: {e}"),
    }
}

async fn sidecar_run(
    args: &Args,
    real: &RealOdoo,
    target: &Arc<Target>,
    items: Arc<Vec<Item>>,
    senders: usize,
    rep: usize,
    pids: &Pids,
) -> Run {
    let client = &real.client;
    let last_event = last_id(client, EVENT).await;
    let c0 = Cpu::sample(pids);
    let outcome = drive(
        target,
        items.clone(),
        senders,
        Duration::from_secs(args.seconds),
    )
    .await;
    let c1 = Cpu::sample(pids);
    let ok = outcome.ok() as u64;
    let events_domain = Domain::leaf("account_id", "=", real.account).and("id", ">", last_event);
    let events_at_end = count(client, EVENT, events_domain.clone()).await;
    let posted: Vec<i64> = items[..outcome.posted].iter().map(|i| i.id).collect();
    let delivered_domain = Domain::leaf("id", "in", json!(posted)).and("state", "=", "delivered");
    // The settle: until every 200 has its event (with a spool, some reach Odoo after their
    // 200), the run's events are processed and as many messages delivered as 200s.
    let settle_start = Instant::now();
    let (mut events, mut delivered, mut unprocessed);
    loop {
        events = count(client, EVENT, events_domain.clone()).await;
        unprocessed = count(
            client,
            EVENT,
            events_domain.clone().and("processed", "=", false),
        )
        .await;
        delivered = count(client, MESSAGE, delivered_domain.clone()).await;
        let done = events >= ok && unprocessed == 0 && delivered >= ok;
        if done || settle_start.elapsed() >= Duration::from_secs(args.settle_max_secs) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let settle = settle_start.elapsed();
    let c2 = Cpu::sample(pids);
    let (cpu_run, cpu_settle) = (c1.since(&c0), c2.since(&c1));
    let settled = events >= ok && unprocessed == 0 && delivered >= ok;
    println!(
        "[{senders:>2} senders, rep {rep}, sidecar] {ok} answered 200 in {:.1} s = {:.1}/s; {} posted, {}{}; events of the run stored: {events_at_end} when it ended, {events} after the settle{}; {} in {:.1} s: {delivered} of the {} posted messages delivered, {unprocessed} events unprocessed; CPU run + settle: Odoo {} + {}, PG {} + {}, daemon {} + {}; peer's Odoo meanwhile {}",
        outcome.elapsed.as_secs_f64(),
        ok as f64 / outcome.elapsed.as_secs_f64(),
        outcome.posted,
        errors_text(&outcome),
        ran_out_text(&outcome, items.len()),
        if events >= ok { " (every 200 stored)".to_owned() } else { format!(" — ERROR: {} answered 200 but not stored", ok - events) },
        if settled { "settled" } else { "NOT settled" },
        settle.as_secs_f64(),
        outcome.posted,
        secs(cpu_run.odoo),
        secs(cpu_settle.odoo),
        secs(cpu_run.pg),
        secs(cpu_settle.pg),
        secs(cpu_run.daemon),
        secs(cpu_settle.daemon),
        secs(cpu_run.plus(&cpu_settle).peer),
    );
    Run {
        senders,
        rep,
        side: Side::Sidecar,
        outcome,
        cpu_run,
        cpu_settle: Some(cpu_settle),
    }
}

async fn peer_run(
    args: &Args,
    peer: &Peer,
    items: Arc<Vec<Item>>,
    senders: usize,
    rep: usize,
    pids: &Pids,
) -> Run {
    let c0 = Cpu::sample(pids);
    let outcome = drive(
        &peer.target,
        items.clone(),
        senders,
        Duration::from_secs(args.seconds),
    )
    .await;
    let c1 = Cpu::sample(pids);
    let cpu_run = c1.since(&c0);
    let ok = outcome.ok() as u64;
    let posted: Vec<i64> = items[..outcome.posted].iter().map(|i| i.id).collect();
    let delivered = count(
        &peer.client,
        PEER_LOG,
        Domain::leaf("id", "in", json!(posted)).and("status", "=", "delivered"),
    )
    .await;
    println!(
        "[{senders:>2} senders, rep {rep}, peer   ] {ok} answered 200 in {:.1} s = {:.1}/s; {} posted, {}{}; logs now delivered: {delivered} of the {} posted{}; CPU: Odoo {}, PG {}; sidecar's Odoo meanwhile {}, daemon meanwhile {}",
        outcome.elapsed.as_secs_f64(),
        ok as f64 / outcome.elapsed.as_secs_f64(),
        outcome.posted,
        errors_text(&outcome),
        ran_out_text(&outcome, items.len()),
        outcome.posted,
        if delivered >= ok { String::new() } else { format!(" — ERROR: {} answered 200 but not delivered", ok - delivered) },
        secs(cpu_run.peer),
        secs(cpu_run.pg),
        secs(cpu_run.odoo),
        secs(cpu_run.daemon),
    );
    Run {
        senders,
        rep,
        side: Side::Peer,
        outcome,
        cpu_run,
        cpu_settle: None,
    }
}
