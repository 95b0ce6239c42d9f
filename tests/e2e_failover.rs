//! Failover between two daemons on one Odoo: messages queued, the daemon holding the sending
//! lease `kill -9`ed, frozen with SIGSTOP, or cut off from Odoo, again and again while they go
//! out. At the end every message is sent, Meta (the sandbox, in the test process) received each
//! exactly once, and after each failure the standby took the lease
//! ([`e2e_support::failover`]).
//!
//! A frozen or cut-off leader is the case fencing is for: when it comes back it may still
//! believe it leads, holds claimed messages in memory and may have claims on their way; its
//! lease's time is up by its own clock (so it sends nothing more) and Odoo refuses its claims
//! (the epoch moved on). The tests bring it back only once the new leader has sent again what
//! it had claimed, the order in which sending what it holds would be a duplicate.
//!
//! The default run (CI) is 1,200 messages and 3 failovers with a 2 s lease; the ignored long
//! run is the 10,000 messages and 10 failovers (`cargo test --test e2e_failover --
//! --ignored`, about 100 s). The shipped settings (a 15 s lease) are measured by
//! `examples/failover_bench.rs`.

mod e2e_support;
mod support;

use e2e_support::failover::{run, Failure, Plan};

/// The lease in these tests: a failover takes about ttl + renew.
const LEASE: (f64, f64) = (2.0, 0.5);

fn plan(messages: usize, rounds: usize) -> Plan {
    Plan {
        messages,
        failures: (1..=rounds)
            .map(|round| match round % 3 {
                1 => Failure::Kill,
                2 => Failure::Freeze,
                _ => Failure::Cut,
            })
            .collect(),
        // Low enough that failovers happen mid-stream.
        mps: 150,
        lease: Some(LEASE),
        shipped_settings: false,
        reconcile_delay_secs: Some(3.0),
        wake_after_reconcile: true,
    }
}

async fn failovers(messages: usize, rounds: usize) {
    let report = run(&plan(messages, rounds)).await;
    let limit = LEASE.0 + LEASE.1 + 3.0;
    for (failure, took) in &report.takeovers {
        assert!(
            took.as_secs_f64() <= limit,
            "{}: taken over after {took:.2?}, more than ttl + renew + 3 s = {limit} s",
            failure.name()
        );
    }
    eprintln!(
        "failover test: {messages} messages, {rounds} failovers, messages in 'sending' at each \
         failure {:?}, taken over after {:.2?}, each message sent exactly once, epoch {}, \
         {} fencing log lines, done in {:.1} s",
        report.sending_at_failure,
        report.takeovers,
        report.epoch,
        report.fenced,
        report.elapsed.as_secs_f64()
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
