//! Failover bench with the shipped settings: two release daemons on one Odoo stand-in and one
//! sandbox (both in this process), the shipped lease (`ttl_secs` 15, `renew_secs` 5), the
//! shipped intervals and reconciliation delay (120 s), messages queued to distinct
//! recipients, and the leader failing again and again while they go out: `kill -9`ed
//! (restarted as the standby) and cut off from Odoo (its own TCP link to Odoo dropped and
//! blackholed, healed once the other took over), in turn. It prints each takeover time (from
//! the failure to the standby's `/readyz` saying `leader`) and checks what the failover test
//! checks: every message sent, each received by Meta exactly once, the lease's epoch up once per
//! failure ([`e2e_support::failover`]).
//!
//! ```text
//! cargo build --release
//! cargo run --release --example failover_bench -- [--failures 10] [--messages 10000] [--mps 80]
//! ```

#[path = "../tests/e2e_support/mod.rs"]
mod e2e_support;
#[path = "../tests/support/mod.rs"]
mod support;

use clap::Parser;
use e2e_support::failover::{run, Failure, Plan};

#[derive(Parser, Debug)]
struct Args {
    /// Failures of the leader, `kill -9` and cut from Odoo in turn.
    #[arg(long, default_value_t = 10)]
    failures: usize,
    /// Messages queued at the start.
    #[arg(long, default_value_t = 10_000)]
    messages: usize,
    /// The account's throughput.
    #[arg(long, default_value_t = 80)]
    mps: u32,
}

fn main() {
    let args = Args::parse();
    if args.failures == 0 || args.messages < 100 || args.mps == 0 {
        eprintln!("--failures and --mps must be at least 1, --messages at least 100");
        std::process::exit(2);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"));
    let plan = Plan {
        messages: args.messages,
        failures: (0..args.failures)
            .map(|i| {
                if i % 2 == 0 {
                    Failure::Kill
                } else {
                    Failure::Cut
                }
            })
            .collect(),
        mps: args.mps,
        lease: None,
        shipped_settings: true,
        reconcile_delay_secs: None,
        wake_after_reconcile: false,
    };
    println!(
        "failover bench: {} messages at {} msg/s, {} failures (kill -9 and cut from Odoo in turn), \
         the shipped settings (lease 15 s, renewed every 5 s)",
        args.messages, args.mps, args.failures
    );
    let report = runtime.block_on(run(&plan));
    println!(
        "{:>7}  {:>14}  {:>15}  {:>14}",
        "failure", "how", "in 'sending'", "taken over s"
    );
    for (i, ((failure, took), sending)) in report
        .takeovers
        .iter()
        .zip(&report.sending_at_failure)
        .enumerate()
    {
        println!(
            "{:>7}  {:>14}  {:>15}  {:>14.2}",
            i + 1,
            failure.name(),
            sending,
            took.as_secs_f64()
        );
    }
    for kind in [Failure::Kill, Failure::Cut] {
        let times: Vec<f64> = report
            .takeovers
            .iter()
            .filter(|(f, _)| *f == kind)
            .map(|(_, t)| t.as_secs_f64())
            .collect();
        if times.is_empty() {
            continue;
        }
        let max = times.iter().copied().fold(0.0, f64::max);
        let min = times.iter().copied().fold(f64::INFINITY, f64::min);
        let mean = times.iter().sum::<f64>() / times.len() as f64;
        println!(
            "{}: {} failures, taken over after {min:.2} to {max:.2} s (mean {mean:.2} s)",
            kind.name(),
            times.len()
        );
    }
    println!(
        "every message sent once ({} messages), lease epoch {}, {} fencing log lines, {:.0} s in all",
        args.messages,
        report.epoch,
        report.fenced,
        report.elapsed.as_secs_f64()
    );
}
