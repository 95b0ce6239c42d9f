//! Sandbox send-path benchmark: many concurrent HTTP clients on loopback POST template messages
//! to the sandbox and the program reports accepted messages per second and latency percentiles.
//!
//! ```text
//! cargo run --release --example sandbox_bench -- [--messages 200000] [--seconds 20]
//!     [--concurrency 64] [--sandbox-mps 1000000] [--webhooks] [--url http://127.0.0.1:8788]
//! ```
//!
//! Without `--url` the sandbox runs in this process on its own Tokio runtime (2 worker threads),
//! its throughput limit raised to `--sandbox-mps` and its pair rate out of the way; the clients
//! run on a second runtime. `--webhooks` adds a local receiver as callback URL, so each accepted
//! message also produces its three signed status webhooks. `--sandbox-mps 80` shows the
//! throughput limit at work (the excess is answered 130429). Stops at `--messages` or
//! `--seconds`, whichever comes first. Loopback only.

use clap::Parser;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;
use whatsapp_sidecar::sandbox::{SandboxConfig, SandboxHandle};

#[derive(Parser, Debug)]
struct Args {
    /// Stop after this many requests.
    #[arg(long, default_value_t = 200_000)]
    messages: u64,
    /// Stop after this many seconds.
    #[arg(long, default_value_t = 20)]
    seconds: u64,
    /// Concurrent clients.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// The in-process sandbox's throughput limit (messages/s per number).
    #[arg(long, default_value_t = 1_000_000)]
    sandbox_mps: u32,
    /// Also send status webhooks to a local receiver.
    #[arg(long)]
    webhooks: bool,
    /// Benchmark a sandbox that is already running there instead of an in-process one.
    #[arg(long)]
    url: Option<String>,
}

struct InProcess {
    url: String,
    shutdown: CancellationToken,
    thread: std::thread::JoinHandle<()>,
    webhooks: Arc<AtomicU64>,
}

/// Starts the sandbox (and a webhook receiver) on a runtime of their own.
fn start_in_process(args: &Args) -> InProcess {
    let shutdown = CancellationToken::new();
    let webhooks = Arc::new(AtomicU64::new(0));
    let (tx, rx) = std::sync::mpsc::channel();
    let mps = args.sandbox_mps;
    let with_webhooks = args.webhooks;
    let token = shutdown.clone();
    let counter = Arc::clone(&webhooks);
    let thread = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("sandbox runtime");
        runtime.block_on(async move {
            let mut config = SandboxConfig::default();
            config.phone_numbers[0].throughput_mps = mps;
            config.limits.pair_rate_burst = 1_000_000;
            config.record_limit = 300_000;
            config.webhooks.sent_delay_ms = 50;
            config.webhooks.delivered_delay_ms = 100;
            config.webhooks.read_delay_ms = 200;
            config.webhooks.jitter_ms = 0;
            config.webhooks.concurrency = 128;
            if with_webhooks {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind receiver");
                let addr = listener.local_addr().expect("receiver address");
                let counter = Arc::clone(&counter);
                let app = axum::Router::new().route(
                    "/webhook",
                    axum::routing::post(move |body: axum::body::Bytes| {
                        let counter = Arc::clone(&counter);
                        async move {
                            let value: serde_json::Value =
                                serde_json::from_slice(&body).unwrap_or_default();
                            let n = value["entry"][0]["changes"][0]["value"]["statuses"]
                                .as_array()
                                .map_or(0, Vec::len);
                            counter.fetch_add(n as u64, Ordering::Relaxed);
                            "ok"
                        }
                    }),
                );
                let stop = token.clone();
                tokio::spawn(async move {
                    let _ = axum::serve(listener, app)
                        .with_graceful_shutdown(async move { stop.cancelled().await })
                        .await;
                });
                config.webhooks.callback_url =
                    Some(format!("http://{addr}/webhook").parse().expect("url"));
            }
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind sandbox");
            let handle = SandboxHandle::start(listener, config, token)
                .await
                .expect("start sandbox");
            tx.send(handle.base_url()).expect("report the URL");
            let _ = handle.stopped().await;
        });
    });
    let url = rx.recv().expect("sandbox started");
    InProcess {
        url,
        shutdown,
        thread,
        webhooks,
    }
}

fn percentile(sorted: &[u32], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * (sorted.len() - 1) as f64).round() as usize;
    sorted[rank.min(sorted.len() - 1)] as f64 / 1000.0
}

fn main() {
    let args = Args::parse();
    let in_process = match &args.url {
        Some(_) => None,
        None => Some(start_in_process(&args)),
    };
    let base = args
        .url
        .clone()
        .or_else(|| in_process.as_ref().map(|p| p.url.clone()))
        .expect("a sandbox URL");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("client runtime");

    let send_url = format!("{base}/v25.0/sandbox-0001/messages");
    let client = reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(args.concurrency)
        .timeout(Duration::from_secs(10))
        .build()
        .expect("client");
    let next = Arc::new(AtomicU64::new(0));
    let accepted = Arc::new(AtomicU64::new(0));
    let limited = Arc::new(AtomicU64::new(0));
    let other = Arc::new(AtomicU64::new(0));
    let latencies = Arc::new(Mutex::new(Vec::<u32>::with_capacity(
        args.messages as usize,
    )));
    let deadline = Instant::now() + Duration::from_secs(args.seconds);
    let started = Instant::now();

    runtime.block_on(async {
        let mut tasks = Vec::new();
        for _ in 0..args.concurrency {
            let (client, send_url) = (client.clone(), send_url.clone());
            let (next, accepted, limited, other) =
                (Arc::clone(&next), Arc::clone(&accepted), Arc::clone(&limited), Arc::clone(&other));
            let latencies = Arc::clone(&latencies);
            let total = args.messages;
            tasks.push(tokio::spawn(async move {
                let mut mine = Vec::with_capacity(4096);
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total || Instant::now() >= deadline {
                        break;
                    }
                    let body = format!(
                        r#"{{"messaging_product":"whatsapp","to":"+22507{:08}","type":"template","biz_opaque_callback_data":"bench:{i}","template":{{"name":"sidecar_hello","language":{{"code":"en_US"}}}}}}"#,
                        i % 100_000_000
                    );
                    let t0 = Instant::now();
                    let response = client
                        .post(&send_url)
                        .bearer_auth("bench-token")
                        .header("content-type", "application/json")
                        .body(body)
                        .send()
                        .await;
                    match response {
                        Ok(r) => {
                            let status = r.status();
                            let bytes = r.bytes().await.unwrap_or_default();
                            mine.push(t0.elapsed().as_micros().min(u32::MAX as u128) as u32);
                            if status.is_success() {
                                accepted.fetch_add(1, Ordering::Relaxed);
                            } else if bytes.windows(6).any(|w| w == b"130429") {
                                limited.fetch_add(1, Ordering::Relaxed);
                            } else {
                                other.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                        Err(_) => {
                            other.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                latencies.lock().expect("latencies").extend(mine);
            }));
        }
        for task in tasks {
            let _ = task.await;
        }
    });
    let elapsed = started.elapsed().as_secs_f64();
    let mut latencies = std::mem::take(&mut *latencies.lock().expect("latencies"));
    latencies.sort_unstable();
    let accepted = accepted.load(Ordering::Relaxed);
    println!(
        "sandbox send benchmark ({} concurrent clients, loopback)",
        args.concurrency
    );
    println!("  requests:        {}", latencies.len());
    println!("  accepted:        {accepted}");
    println!("  130429 answers:  {}", limited.load(Ordering::Relaxed));
    println!("  other failures:  {}", other.load(Ordering::Relaxed));
    println!("  elapsed:         {elapsed:.2} s");
    println!("  accepted/s:      {:.0}", accepted as f64 / elapsed);
    println!("  requests/s:      {:.0}", latencies.len() as f64 / elapsed);
    println!(
        "  latency ms:      p50 {:.2}  p90 {:.2}  p99 {:.2}  max {:.2}",
        percentile(&latencies, 50.0),
        percentile(&latencies, 90.0),
        percentile(&latencies, 99.0),
        percentile(&latencies, 100.0)
    );
    if let Some(process) = in_process {
        if args.webhooks {
            // Wait for the statuses still queued (three per accepted message) to arrive.
            let expected = accepted * 3;
            let mut last = process.webhooks.load(Ordering::Relaxed);
            let mut last_change = Instant::now();
            while last < expected && last_change.elapsed() < Duration::from_secs(3) {
                std::thread::sleep(Duration::from_millis(50));
                let now = process.webhooks.load(Ordering::Relaxed);
                if now != last {
                    last = now;
                    last_change = Instant::now();
                }
            }
            let total = started.elapsed().as_secs_f64();
            println!("  status webhooks: {last} of {expected} received after {total:.2} s");
            println!(
                "  webhooks/s:      {:.0} (over the whole run)",
                last as f64 / total
            );
        }
        process.shutdown.cancel();
        let _ = process.thread.join();
    }
}
