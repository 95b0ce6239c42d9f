//! Failover between two daemons on one Odoo: messages queued, the daemon holding the sending
//! lease `kill -9`ed (or frozen with SIGSTOP and woken after the standby took over) again and
//! again while they go out. At the end every message is sent, Meta (the sandbox, in the test
//! process) received each exactly once, and after each failure the standby took the lease.
//!
//! A frozen leader is the case fencing is for: when it wakes up it still believes it leads,
//! holds claimed messages in memory and has claims on their way; its lease's time is up by its
//! own clock (so it sends nothing more) and Odoo refuses its claims (the epoch moved on).
//!
//! The default run (CI) is 1,200 messages and 3 failovers; the ignored long run is the issue's
//! 10,000 messages and 10 failovers (`cargo test --test e2e_failover -- --ignored`, about 100 s).

mod e2e_support;
mod support;

use e2e_support::{eventually, Daemon, DaemonConfig, World, APP_SECRET, MESSAGE};
use serde_json::json;
use std::time::{Duration, Instant};
use whatsapp_sidecar::secret::Secret;

/// Account throughput (stand-in and sandbox): low enough that failovers happen mid-stream.
const MPS: u32 = 150;
/// The lease in these tests: a failover takes about ttl + renew.
const TTL_SECS: f64 = 2.0;
const RENEW_SECS: f64 = 0.5;

fn accepted(w: &World) -> u64 {
    w.meta.stats()["accepted"].as_u64().unwrap_or(0)
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

async fn failovers(messages: usize, rounds: usize) {
    let started = Instant::now();
    let mut meta = e2e_support::meta_config(MPS);
    meta.webhooks.batch_max = 20;
    // A status POST stuck in a frozen daemon is given up after a second and sent again to the
    // webhook URL of the moment (the other daemon), as Meta's retry through a load balancer
    // would: the proofs of what the frozen one sent reach the new leader before it reconciles.
    meta.webhooks.timeout_ms = 1_000;
    meta.webhooks.retry_initial_ms = 200;
    let mut w = World::with_meta(meta, MPS).await;
    w.config.set("outbox.reconcile_delay_secs", 3.0);
    w.config.set("lease.ttl_secs", TTL_SECS);
    w.config.set("lease.renew_secs", RENEW_SECS);
    let template = w.hello_template("approved");
    let ids = w.queue_to_many(messages, "Failover", 41, template);

    let configs = [w.peer_config("wa-a"), w.peer_config("wa-b")];
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

    let mut leader = 0;
    let mut took = Vec::new();
    let mut sending_at_failure = Vec::new();
    for round in 1..=rounds {
        let target = (messages * round / (rounds + 1)) as u64;
        eventually(
            &format!("{target} messages accepted by Meta before failover {round}"),
            Duration::from_secs(120),
            || accepted(&w) >= target,
        )
        .await;
        let standby = 1 - leader;
        webhooks_to(&w, &configs[standby]);
        let frozen = round % 3 == 2;
        let down = daemons[leader].take().expect("the leader runs");
        let failed_at = Instant::now();
        let frozen_daemon = if frozen {
            signal(&down, "-STOP");
            Some(down)
        } else {
            down.kill9().await;
            None
        };
        sending_at_failure.push(
            w.odoo
                .search(MESSAGE, json!([["state", "=", "sending"]]))
                .len(),
        );
        let deadline = Instant::now() + Duration::from_secs(30);
        while !leads(&w, &configs[standby]).await {
            assert!(
                Instant::now() < deadline,
                "failover {round}: the standby did not take the lease within 30 s"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        took.push(failed_at.elapsed().as_secs_f64());
        if let Some(down) = frozen_daemon {
            // Woken only once the new leader has requeued and sent again what the frozen one
            // had claimed: were it to send what it still holds in memory, Meta would get those
            // messages twice.
            let reconciled = |w: &World| {
                w.logs
                    .matching(&["reconciled messages left in 'sending'"])
                    .len()
            };
            let before = reconciled(&w);
            eventually(
                &format!("failover {round}: the new leader reconciles the frozen one's claims"),
                Duration::from_secs(30),
                || reconciled(&w) > before,
            )
            .await;
            tokio::time::sleep(Duration::from_millis(500)).await;
            // Woken up: it believes it leads for a moment, then learns it does not.
            signal(&down, "-CONT");
            let deadline = Instant::now() + Duration::from_secs(10);
            while leads(&w, &configs[leader]).await {
                assert!(
                    Instant::now() < deadline,
                    "failover {round}: the woken former leader still says it leads"
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
        "no failure happened with messages in flight ({sending_at_failure:?} in 'sending'): the test proves nothing"
    );

    w.until_all(
        &ids,
        &["sent", "delivered", "read"],
        Duration::from_secs(120),
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
        .map(|id| w.odoo.field("whatsapp.lease", *id, "epoch"))
        .unwrap_or_default();
    assert_eq!(
        epoch,
        json!(rounds as i64 + 1),
        "the lease changed hands once per failover after the first taking"
    );
    eprintln!(
        "failover test: {messages} messages, {rounds} failovers (every third a frozen leader woken \
         after the takeover), messages in 'sending' at each failure {sending_at_failure:?}, \
         lease taken over after {took:.2?} s, each message sent exactly once, {fenced} fencing \
         log lines, done in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_standby_takes_over_three_times_and_no_message_is_sent_twice() {
    failovers(1_200, 3).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "the issue's long run: 10,000 messages, 10 failovers (about 100 s)"]
async fn ten_failovers_in_ten_thousand_messages_and_no_message_is_sent_twice() {
    failovers(10_000, 10).await;
}
