//! The load both webhook benchmarks send: `concurrency` senders POST signed bodies in turn until
//! told to stop, each keeping the latency of every request answered 200 and counting the others.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;
use whatsapp_sidecar::whatsapp::signature::SIGNATURE_HEADER;

/// Senders running until `stop` is set; join them for their latencies.
pub struct Senders {
    pub stop: Arc<AtomicBool>,
    pub failures: Arc<AtomicU64>,
    workers: Vec<JoinHandle<Vec<Duration>>>,
}

/// Starts the senders. `bodies` are `(body, X-Hub-Signature-256 value)` pairs, sent round-robin.
pub fn start(url: &str, bodies: Arc<Vec<(String, String)>>, concurrency: usize) -> Senders {
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()
        .unwrap_or_else(|e| panic!("http client: {e}"));
    let stop = Arc::new(AtomicBool::new(false));
    let failures = Arc::new(AtomicU64::new(0));
    let workers = (0..concurrency)
        .map(|n| {
            let (http, url, bodies, stop, failures) = (
                http.clone(),
                url.to_owned(),
                bodies.clone(),
                stop.clone(),
                failures.clone(),
            );
            tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut i = n;
                while !stop.load(Ordering::Relaxed) {
                    let (body, signature) = &bodies[i % bodies.len()];
                    i += concurrency;
                    let started = Instant::now();
                    let result = http
                        .post(&url)
                        .header(SIGNATURE_HEADER, signature.as_str())
                        .header("content-type", "application/json")
                        .body(body.clone())
                        .send()
                        .await;
                    match result {
                        Ok(r) if r.status() == 200 => latencies.push(started.elapsed()),
                        _ => {
                            failures.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                latencies
            })
        })
        .collect();
    Senders {
        stop,
        failures,
        workers,
    }
}

impl Senders {
    /// Stops the senders and returns every latency, sorted.
    pub async fn finish(self) -> Vec<Duration> {
        self.stop.store(true, Ordering::Relaxed);
        let mut latencies = Vec::new();
        for worker in self.workers {
            if let Ok(l) = worker.await {
                latencies.extend(l);
            }
        }
        latencies.sort_unstable();
        latencies
    }
}
