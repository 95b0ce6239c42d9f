//! Crash safety: 2,000 queued messages, the daemon `kill -9`ed three times while they go out
//! and restarted each time. At the end every message is sent (or further), and Meta (the
//! sandbox, which lives in the test process and outlives every daemon) received each exactly
//! once: a message claimed but not sent is requeued after the reconcile delay; one sent but not
//! written back is proven sent by its status webhook (the callback data names it) and is not
//! sent again.

mod e2e_support;
mod support;

use e2e_support::{eventually, World, APP_SECRET};
use std::time::{Duration, Instant};

const MESSAGES: usize = 2_000;
const KILLS: usize = 3;
/// Account throughput (stand-in and sandbox): high, so 2,000 messages take seconds.
const MPS: u32 = 1_000;

/// One test of this file at a time: they stop and restart daemons and Odoo's port, and a port
/// one of them frees for a moment can be handed to the other's new daemon or stand-in.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_three_times_mid_stream_and_every_message_is_sent_exactly_once() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let started = Instant::now();
    let mut meta = e2e_support::meta_config(MPS);
    // Meta groups statuses of one number in one POST when they are due together.
    meta.webhooks.batch_max = 20;
    let mut w = World::with_meta(meta, MPS).await;
    w.config.set("outbox.reconcile_delay_secs", 3.0);
    let template = w.hello_template("approved");
    let ids = w.queue_to_many(MESSAGES, "Crash", 40, template);

    // Kill the daemon each time another slice of the messages has reached Meta.
    let mut caught_sending = Vec::new();
    w.start_daemon().await;
    for kill in 1..=KILLS {
        let target = (MESSAGES * kill / (KILLS + 1)) as u64;
        eventually(
            &format!("{target} messages accepted by Meta before kill {kill}"),
            Duration::from_secs(30),
            || w.accepted() >= target,
        )
        .await;
        w.kill9().await;
        let sending = w.in_state("sending");
        caught_sending.push(sending);
        w.start_daemon().await;
    }
    assert!(
        caught_sending.iter().any(|n| *n > 0),
        "no kill happened with messages in flight ({caught_sending:?} in 'sending'): the test proves nothing"
    );

    // Everything ends sent or further.
    w.until_all(
        &ids,
        &["sent", "delivered", "read"],
        Duration::from_secs(40),
    )
    .await;
    let status = w.stop_daemon().await;
    assert!(status.success(), "clean stop: {status}");

    // Meta received each exactly once (and nothing else), Odoo holds the wamid Meta answered.
    w.assert_each_sent_once(&ids);
    let reconciled: u64 = w
        .logs
        .matching(&["reconciled messages left in 'sending'"])
        .iter()
        .filter_map(|l| {
            l.split("count=")
                .nth(1)?
                .split_whitespace()
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum();
    eprintln!(
        "crash test: {MESSAGES} messages, {KILLS} kill -9 (messages in 'sending' at each: {caught_sending:?}), \
         {reconciled} reconciled at restarts (proven sent by a status webhook, or requeued after the delay), \
         each sent exactly once, done in {:.1} s",
        started.elapsed().as_secs_f64()
    );
}

/// `kill -9` with webhooks answered 200 but still in the local spool (`webhook.spool_file`), and
/// again right after the spool was forwarded (its removals not yet flushed to disk): after each
/// restart, every webhook answered 200 is in Odoo exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_with_webhooks_in_the_spool_loses_none_and_stores_none_twice() {
    let _turn = ONE_AT_A_TIME.lock().await;
    let mut w = World::new(80).await;
    w.use_spool();
    // Slow forwarding, so that the spool holds a backlog when the daemon is killed.
    w.config.set("webhook.forward_interval_ms", 1500);
    w.start_daemon().await;
    // Each body made once: a body carries the time it was made, so making it again (for the
    // list of accepted ones) a second later would not match what was posted.
    let bodies: Vec<String> = (0..200)
        .map(|n| e2e_support::status_webhook(&format!("wamid.SPOOL-{n:04}"), "delivered", None))
        .collect();
    let body = |n: usize| bodies[n].clone();
    let mut accepted = Vec::new();
    for (n, status) in post_all(&w, 0..150, body).await {
        assert_eq!(status, 200, "webhook {n}");
        accepted.push(body(n));
    }
    let before = w.event_bodies().len();
    w.kill9().await;
    assert!(
        before < accepted.len(),
        "some webhooks were still in the spool at the kill ({before} of {} in Odoo)",
        accepted.len()
    );
    w.start_daemon().await;
    for (n, status) in post_all(&w, 150..200, body).await {
        assert_eq!(status, 200, "webhook {n}");
        accepted.push(body(n));
    }
    let all_in_odoo = |w: &World| {
        let stored = w.event_bodies();
        accepted.iter().all(|b| stored.contains_key(b))
    };
    eventually(
        "every accepted webhook in Odoo",
        Duration::from_secs(20),
        || all_in_odoo(&w),
    )
    .await;
    // Killed right after forwarding: the spool may bring those entries back at the next start.
    w.kill9().await;
    w.start_daemon().await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    let stored = w.event_bodies();
    for b in &accepted {
        assert_eq!(stored.get(b), Some(&1), "stored once: {b}");
    }
    let found = w.logs.matching(&["found in Odoo already"]);
    println!("entries found in Odoo already after a restart: {found:?}");
    let status = w.stop_daemon().await;
    assert!(status.success(), "clean stop: {status}");
}

/// POSTs the bodies of `range` at once; each number with its answer.
async fn post_all(
    w: &World,
    range: std::ops::Range<usize>,
    body: impl Fn(usize) -> String,
) -> Vec<(usize, u16)> {
    let posts: Vec<_> = range
        .map(|n| {
            let body = body(n);
            async move { (n, w.post_webhook(&body, Some(APP_SECRET)).await) }
        })
        .collect();
    futures_util::future::join_all(posts).await
}
