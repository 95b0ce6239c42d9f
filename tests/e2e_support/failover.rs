//! Failover between two daemons on one Odoo stand-in and one sandbox, shared by the failover
//! test (`tests/e2e_failover.rs`, a short lease) and the failover bench
//! (`examples/failover_bench.rs`, the shipped settings).
//!
//! [`run`] queues messages, starts two daemons (`wa-a`, `wa-b`) each reaching Odoo through its
//! own [`OdooLink`], and, each time Meta has accepted the next share of the messages, makes the
//! leader fail in one of the [`Failure`] ways; it measures how long the standby takes to say it
//! leads (`/readyz`), brings the failed daemon back as the new standby, and at the end checks
//! that every message was sent and that Meta received each exactly once.

use super::{eventually, Daemon, DaemonConfig, World, APP_SECRET};
use serde_json::json;
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use whatsapp_sidecar::secret::Secret;

/// How the leader fails.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Failure {
    /// `kill -9`; restarted as the standby after the takeover.
    Kill,
    /// SIGSTOP (a stalled VM); SIGCONT after the takeover. It still believes it leads for a
    /// moment and holds claimed messages in memory: its own clock says its lease's time is up,
    /// and Odoo refuses its claims (the epoch moved on).
    Freeze,
    /// Cut off from Odoo (its [`OdooLink`] drops the connections and answers nothing more),
    /// still running and still sent webhooks for a moment; healed after the takeover.
    Cut,
}

impl Failure {
    pub fn name(self) -> &'static str {
        match self {
            Failure::Kill => "kill -9",
            Failure::Freeze => "frozen",
            Failure::Cut => "cut from Odoo",
        }
    }
}

/// What to run.
pub struct Plan {
    /// Messages queued before the start, to distinct recipients.
    pub messages: usize,
    /// One failure per round; the rounds are spread evenly over the messages.
    pub failures: Vec<Failure>,
    /// The account's throughput (stand-in and sandbox).
    pub mps: u32,
    /// `lease.ttl_secs` and `lease.renew_secs`; `None`: the shipped defaults.
    pub lease: Option<(f64, f64)>,
    /// The daemons' shipped intervals and Odoo timeout rather than the tests' short ones.
    pub shipped_settings: bool,
    /// `outbox.reconcile_delay_secs`; `None`: the shipped default.
    pub reconcile_delay_secs: Option<f64>,
    /// Wake (or heal) a frozen (or cut) leader only once the new leader has reconciled what it
    /// had claimed, the order in which sending what it still holds would be a duplicate;
    /// otherwise right after the takeover.
    pub wake_after_reconcile: bool,
}

/// What it measured.
pub struct Report {
    /// Each failure and the time from it to the standby saying it leads.
    pub takeovers: Vec<(Failure, Duration)>,
    /// Messages in `sending` at each failure.
    pub sending_at_failure: Vec<usize>,
    /// Log lines of a daemon learning it was fenced.
    pub fenced: usize,
    /// The lease's epoch at the end.
    pub epoch: i64,
    /// The whole run.
    pub elapsed: Duration,
}

fn signal(daemon: &Daemon, sig: &str) {
    let sent = std::process::Command::new("kill")
        .args([sig, &daemon.pid().to_string()])
        .status();
    assert!(
        matches!(sent, Ok(s) if s.success()),
        "kill {sig} {}: {sent:?}",
        daemon.pid()
    );
}

/// Whether the daemon on `config.listen` says it holds the lease.
async fn leads(w: &World, config: &DaemonConfig) -> bool {
    w.readyz_of(config.listen)
        .await
        .is_some_and(|(status, body)| status == 200 && body.contains("(leader:"))
}

/// Points Meta's webhooks at `config`'s daemon (a load balancer taking the other out).
fn webhooks_to(w: &World, config: &DaemonConfig) {
    let url = config.url("/webhook").parse().expect("callback URL");
    w.meta
        .set_callback(Some(url), Some(Secret::new(APP_SECRET)));
}

/// Runs `plan`; panics when a takeover takes more than `ttl + renew + 10 s`, when a message is
/// not sent or sent twice, or when the lease did not change hands once per failure.
pub async fn run(plan: &Plan) -> Report {
    let started = Instant::now();
    let mut meta = super::meta_config(plan.mps);
    meta.webhooks.batch_max = 20;
    meta.record_limit = plan.messages + 1_000;
    // A status POST stuck in a frozen daemon is given up after a second and sent again to the
    // webhook URL of the moment (the other daemon), as Meta's retry through a load balancer
    // would: the proofs of what the frozen one sent reach the new leader before it reconciles.
    meta.webhooks.timeout_ms = 1_000;
    meta.webhooks.retry_initial_ms = 200;
    let mut w = World::with_meta(meta, plan.mps).await;
    if plan.shipped_settings {
        w.config.default_intervals();
        w.config.remove("odoo.timeout_secs");
        w.config.remove("odoo.max_retries");
    }
    if let Some(delay) = plan.reconcile_delay_secs {
        w.config.set("outbox.reconcile_delay_secs", delay);
    }
    if let Some((ttl, renew)) = plan.lease {
        w.config.set("lease.ttl_secs", ttl);
        w.config.set("lease.renew_secs", renew);
    }
    let (ttl, renew) = plan.lease.unwrap_or((15.0, 5.0));
    let takeover_limit = Duration::from_secs_f64(ttl + renew + 10.0);
    let template = w.hello_template("approved");
    let ids = w.queue_to_many(plan.messages, "Failover", 41, template);

    let odoo = w.odoo.url();
    let links = [OdooLink::start(&odoo).await, OdooLink::start(&odoo).await];
    let configs: Vec<DaemonConfig> = [w.peer_config("wa-a"), w.peer_config("wa-b")]
        .into_iter()
        .zip(&links)
        .map(|(mut c, link)| {
            c.set("odoo.url", link.url.as_str());
            c
        })
        .collect();
    webhooks_to(&w, &configs[0]);
    let mut daemons: [Option<Daemon>; 2] = [None, None];
    daemons[0] = Some(w.start_peer(&configs[0]).await);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !leads(&w, &configs[0]).await {
        assert!(Instant::now() < deadline, "wa-a never took the lease");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    daemons[1] = Some(w.start_peer(&configs[1]).await);
    assert!(
        !leads(&w, &configs[1]).await,
        "two leaders: wa-b took the lease wa-a holds"
    );
    let body = w.readyz_of(configs[1].listen).await.unwrap_or_default().1;
    assert!(body.contains("standby: wa-a holds"), "{body}");

    let rounds = plan.failures.len();
    let mut leader = 0;
    let mut takeovers = Vec::new();
    let mut sending_at_failure = Vec::new();
    for (round, failure) in plan.failures.iter().copied().enumerate() {
        let round = round + 1;
        let target = (plan.messages * round / (rounds + 1)) as u64;
        eventually(
            &format!("{target} messages accepted by Meta before failover {round}"),
            Duration::from_secs(120 + plan.messages as u64 / u64::from(plan.mps)),
            || w.accepted() >= target,
        )
        .await;
        let standby = 1 - leader;
        webhooks_to(&w, &configs[standby]);
        let down = daemons[leader].take().expect("the leader runs");
        let failed_at = Instant::now();
        let still_running = match failure {
            Failure::Kill => {
                down.kill9().await;
                None
            }
            Failure::Freeze => {
                signal(&down, "-STOP");
                Some(down)
            }
            Failure::Cut => {
                links[leader].cut();
                Some(down)
            }
        };
        sending_at_failure.push(w.in_state("sending"));
        let deadline = Instant::now() + takeover_limit;
        while !leads(&w, &configs[standby]).await {
            assert!(
                Instant::now() < deadline,
                "failover {round} ({}): the standby did not take the lease within {takeover_limit:?}",
                failure.name()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let took = failed_at.elapsed();
        eprintln!(
            "failover {round} of {rounds} ({}): taken over after {:.2} s",
            failure.name(),
            took.as_secs_f64()
        );
        takeovers.push((failure, took));
        if let Some(down) = still_running {
            if plan.wake_after_reconcile {
                // Woken only once the new leader has requeued and sent again what the failed
                // one had claimed: were it to send what it still holds in memory, Meta would
                // get those messages twice.
                let reconciled = |w: &World| {
                    w.logs
                        .matching(&["reconciled messages left in 'sending'"])
                        .len()
                };
                let before = reconciled(&w);
                eventually(
                    &format!("failover {round}: the new leader reconciles the failed one's claims"),
                    Duration::from_secs_f64(30.0 + plan.reconcile_delay_secs.unwrap_or(120.0)),
                    || reconciled(&w) > before,
                )
                .await;
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            // Back: it believes it leads for a moment (or asks Odoo again), then learns it
            // does not.
            match failure {
                Failure::Freeze => signal(&down, "-CONT"),
                _ => links[leader].heal(),
            }
            let deadline = Instant::now() + Duration::from_secs_f64(ttl + 10.0);
            while leads(&w, &configs[leader]).await {
                assert!(
                    Instant::now() < deadline,
                    "failover {round} ({}): the former leader still says it leads",
                    failure.name()
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            daemons[leader] = Some(down);
        } else {
            daemons[leader] = Some(w.start_peer(&configs[leader]).await);
        }
        leader = standby;
    }
    assert!(
        sending_at_failure.iter().any(|n| *n > 0),
        "no failure happened with messages in flight ({sending_at_failure:?} in 'sending'): the run proves nothing"
    );

    w.until_all(
        &ids,
        &["sent", "delivered", "read"],
        Duration::from_secs_f64(120.0 + plan.reconcile_delay_secs.unwrap_or(120.0)),
    )
    .await;
    for d in daemons.into_iter().flatten() {
        let status = d.terminate(Duration::from_secs(15)).await;
        assert!(status.success(), "clean stop: {status}");
    }

    w.assert_each_sent_once(&ids);
    let fenced = w
        .logs
        .matching(&["no longer holds the sending lease"])
        .len()
        + w.logs.matching(&["claim refused"]).len();
    let epoch = w
        .odoo
        .search("whatsapp.lease", json!([["name", "=", "sending"]]))
        .first()
        .and_then(|id| w.odoo.field("whatsapp.lease", *id, "epoch").as_i64())
        .unwrap_or_default();
    assert_eq!(
        epoch,
        rounds as i64 + 1,
        "the lease changed hands once per failover after the first taking"
    );
    Report {
        takeovers,
        sending_at_failure,
        fenced,
        epoch,
        elapsed: started.elapsed(),
    }
}

/// A TCP link from a daemon to Odoo that can be cut (a network partition) and healed. Cutting
/// drops the connections open through it; while cut, a new connection is accepted and held
/// without an answer (packets lost, not refused), so the daemon waits for its Odoo timeout.
pub struct OdooLink {
    /// `http://127.0.0.1:port`, for `odoo.url`.
    pub url: String,
    cut: watch::Sender<bool>,
    _stop: tokio_util::sync::DropGuard,
}

impl OdooLink {
    /// A link to the Odoo at `odoo_url` (`http://host:port`, plain HTTP).
    pub async fn start(odoo_url: &str) -> OdooLink {
        let upstream = odoo_url
            .trim_start_matches("http://")
            .split('/')
            .next()
            .unwrap_or_default()
            .to_owned();
        assert!(
            !odoo_url.starts_with("https://") && !upstream.is_empty(),
            "OdooLink: {odoo_url} is not http://host:port"
        );
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("OdooLink: bind: {e}"));
        let url = format!(
            "http://{}",
            listener.local_addr().expect("OdooLink: local address")
        );
        let (cut, _) = watch::channel(false);
        let stop = tokio_util::sync::CancellationToken::new();
        let (cuts, token) = (cut.clone(), stop.clone());
        tokio::spawn(async move {
            loop {
                let accepted = tokio::select! {
                    _ = token.cancelled() => return,
                    a = listener.accept() => a,
                };
                let Ok((client, _)) = accepted else { continue };
                let (mut cut, token, upstream) =
                    (cuts.subscribe(), token.clone(), upstream.clone());
                tokio::spawn(async move {
                    if *cut.borrow_and_update() {
                        // Lost: held unanswered until the link heals, then closed (what was
                        // sent on it never reaches Odoo).
                        tokio::select! {
                            _ = token.cancelled() => {}
                            _ = cut.wait_for(|c| !*c) => {}
                        }
                        drop(client);
                        return;
                    }
                    let Ok(mut server) = TcpStream::connect(upstream.as_str()).await else {
                        return;
                    };
                    let mut client = client;
                    tokio::select! {
                        _ = token.cancelled() => {}
                        _ = cut.wait_for(|c| *c) => {}
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                    }
                });
            }
        });
        OdooLink {
            url,
            cut,
            _stop: stop.drop_guard(),
        }
    }

    /// Cuts the link: open connections are dropped, new ones get no answer.
    pub fn cut(&self) {
        self.cut.send_replace(true);
    }

    /// Heals it.
    pub fn heal(&self) {
        self.cut.send_replace(false);
    }
}
