//! The webhook task: the only part of the sandbox that makes outgoing HTTP calls.
//!
//! Accepted sends hand it a [`Job::Statuses`] plan (status + delay) through an unbounded channel,
//! so the send path never waits for it. The task keeps the due statuses in a heap ordered by time;
//! when some are due it records them, groups those of the same number (up to
//! `webhooks.batch_max` per POST, as Meta may batch), signs each body with the app secret and
//! POSTs it in its own task. A POST that is not answered `200` is retried with exponential
//! back-off (`backon`, jittered, from `retry_initial_ms` doubling up to `retry_max_delay_ms`, for
//! at most `retry_for_secs`), with the same bytes and signature, as Meta does, to the callback
//! URL configured at the time of each try (Meta retries to the app's URL; a test that moves the
//! callback plays a load balancer taking a failed server out; a new URL's app secret signs it).
//! The duplicate
//! chaos sends some bodies twice. At shutdown, statuses not yet due are dropped with a log line
//! saying how many.

use super::error::SandboxError;
use super::state::{now_ms, CallbackTarget, Job, Shared};
use super::webhook::{self, OutboundFacts, StatusEvent};
use crate::whatsapp::signature::{sign, SIGNATURE_HEADER};
use backon::{ExponentialBuilder, Retryable};
use bytes::Bytes;
use std::cmp::Ordering as CmpOrdering;
use std::collections::{BinaryHeap, HashMap};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// How often limiter buckets and closed windows are dropped.
const HOUSEKEEPING_EVERY: Duration = Duration::from_secs(60);

/// A status waiting for its time.
struct Due {
    at: Instant,
    seq: u64,
    facts: Arc<OutboundFacts>,
    event: StatusEvent,
}

impl PartialEq for Due {
    fn eq(&self, other: &Self) -> bool {
        self.at == other.at && self.seq == other.seq
    }
}

impl Eq for Due {}

impl PartialOrd for Due {
    fn partial_cmp(&self, other: &Self) -> Option<CmpOrdering> {
        Some(self.cmp(other))
    }
}

impl Ord for Due {
    /// Reversed, so the `BinaryHeap` pops the earliest first.
    fn cmp(&self, other: &Self) -> CmpOrdering {
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

/// The POST side: client, concurrency, retry settings.
#[derive(Clone)]
struct Poster {
    client: reqwest::Client,
    permits: Arc<Semaphore>,
    shared: Arc<Shared>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
}

/// Builds the HTTP client webhooks go out with.
pub fn http_client(timeout: Duration) -> Result<reqwest::Client, SandboxError> {
    reqwest::Client::builder()
        .timeout(timeout)
        .no_proxy()
        .pool_max_idle_per_host(256)
        .user_agent("facebookexternalua")
        .build()
        .map_err(|e| SandboxError::Config(format!("cannot build the webhook HTTP client: {e}")))
}

/// Runs the webhook task until `shutdown`; POSTs run in `tracker` with `client`.
pub async fn run(
    shared: Arc<Shared>,
    client: reqwest::Client,
    mut jobs: mpsc::UnboundedReceiver<Job>,
    shutdown: CancellationToken,
    tracker: TaskTracker,
) {
    let poster = Poster {
        client,
        permits: Arc::new(Semaphore::new(shared.webhooks.concurrency)),
        shared: Arc::clone(&shared),
        shutdown: shutdown.clone(),
        tracker,
    };
    let mut heap: BinaryHeap<Due> = BinaryHeap::new();
    let mut housekeeping = tokio::time::interval(HOUSEKEEPING_EVERY);
    housekeeping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut seq: u64 = 0;
    let mut take_job = |job: Job, heap: &mut BinaryHeap<Due>, poster: &Poster| match job {
        Job::Statuses {
            facts,
            plan,
            accepted,
        } => {
            for (delay, event) in plan {
                seq += 1;
                heap.push(Due {
                    at: accepted + delay,
                    seq,
                    facts: Arc::clone(&facts),
                    event,
                });
            }
        }
        Job::Payload { body } => match poster.shared.callback() {
            Some(target) => match serde_json::to_vec(&body) {
                Ok(bytes) => poster.spawn_post(target, Bytes::from(bytes)),
                Err(e) => tracing::error!("cannot serialise a webhook body: {e}"),
            },
            None => {
                tracing::warn!("no callback URL is configured: an inbound webhook was not sent")
            }
        },
    };
    loop {
        let next = heap.peek().map(|due| due.at);
        tokio::select! {
            biased;
            _ = shutdown.cancelled() => break,
            job = jobs.recv() => {
                let Some(job) = job else { break };
                take_job(job, &mut heap, &poster);
                // Take whatever else is waiting without going back through select.
                for _ in 0..1024 {
                    match jobs.try_recv() {
                        Ok(job) => take_job(job, &mut heap, &poster),
                        Err(_) => break,
                    }
                }
            }
            _ = housekeeping.tick() => shared.housekeeping(),
            _ = sleep_until_opt(next) => {
                let now = Instant::now();
                let mut due = Vec::new();
                while heap.peek().is_some_and(|d| d.at <= now) {
                    if let Some(d) = heap.pop() {
                        due.push(d);
                    }
                }
                poster.emit(due);
            }
        }
    }
    if !heap.is_empty() {
        tracing::info!(
            pending = heap.len(),
            "sandbox stopping: {} status webhook(s) not yet due are dropped",
            heap.len()
        );
    }
}

async fn sleep_until_opt(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

impl Poster {
    /// Records due statuses and sends them, batched per number.
    fn emit(&self, due: Vec<Due>) {
        let target = self.shared.callback();
        let timestamp = now_ms() / 1000;
        let batch_max = self.shared.webhooks.batch_max;
        let mut batches: Vec<(webhook::Business, Vec<serde_json::Value>)> = Vec::new();
        // The open (not yet full) batch of each phone number.
        let mut open: HashMap<String, usize> = HashMap::new();
        for d in due {
            self.shared.record_status(&d.facts.wamid, &d.event);
            if target.is_none() {
                continue;
            }
            let status = webhook::status_json(&d.facts, &d.event, timestamp);
            let business = &d.facts.business;
            match open.get(&business.phone_number_id).copied() {
                Some(i) if batches[i].1.len() < batch_max => batches[i].1.push(status),
                _ => {
                    open.insert(business.phone_number_id.clone(), batches.len());
                    batches.push((business.clone(), vec![status]));
                }
            }
        }
        let Some(target) = target else { return };
        for (business, statuses) in batches {
            let body = webhook::envelope(
                &business.waba_id,
                vec![webhook::statuses_change(&business, statuses)],
            );
            match serde_json::to_vec(&body) {
                Ok(bytes) => self.spawn_post(Arc::clone(&target), Bytes::from(bytes)),
                Err(e) => tracing::error!("cannot serialise a status webhook: {e}"),
            }
        }
    }

    /// Sends a body in its own task (twice when the duplicate chaos says so).
    fn spawn_post(&self, target: Arc<CallbackTarget>, body: Bytes) {
        let signature = sign(&target.app_secret, &body);
        let copies =
            if self.shared.duplicate_ratio > 0.0 && fastrand::f64() < self.shared.duplicate_ratio {
                self.shared
                    .stats
                    .webhook_duplicates
                    .fetch_add(1, Ordering::Relaxed);
                2
            } else {
                1
            };
        for copy in 0..copies {
            let poster = self.clone();
            let target = Arc::clone(&target);
            let body = body.clone();
            let signature = signature.clone();
            self.tracker.spawn(async move {
                if copy > 0 {
                    tokio::time::sleep(Duration::from_millis(fastrand::u64(1..50))).await;
                }
                poster.post_with_retries(&target, body, &signature).await;
            });
        }
    }

    async fn post_with_retries(&self, target: &CallbackTarget, body: Bytes, signature: &str) {
        let settings = &self.shared.webhooks;
        let backoff = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(settings.retry_initial_ms))
            .with_max_delay(Duration::from_millis(
                settings.retry_max_delay_ms.max(settings.retry_initial_ms),
            ))
            .with_factor(2.0)
            .with_jitter()
            .without_max_times()
            .with_total_delay(Some(Duration::from_secs(settings.retry_for_secs)));
        let attempt = || async {
            let _permit = self
                .permits
                .acquire()
                .await
                .map_err(|_| "shutting down".to_string())?;
            // Each try goes to the callback configured now, as Meta retries to the app's URL
            // (behind which a load balancer may have taken a failed server out).
            let now = self.shared.callback();
            let (url, signature) = match &now {
                Some(current) if current.url != target.url => {
                    (current.url.clone(), sign(&current.app_secret, &body))
                }
                _ => (target.url.clone(), signature.to_owned()),
            };
            let response = self
                .client
                .post(url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .header(SIGNATURE_HEADER, signature)
                .body(body.clone())
                .send()
                .await
                .map_err(|e| format!("unreachable: {e}"))?;
            if response.status() == reqwest::StatusCode::OK {
                Ok(())
            } else {
                Err(format!("answered {}", response.status()))
            }
        };
        let stats = &self.shared.stats;
        let retried = attempt
            .retry(backoff)
            .sleep(tokio::time::sleep)
            .notify(|error: &String, delay: Duration| {
                stats.webhook_failed_attempts.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(url = %target.url, "webhook not accepted ({error}); retrying in {delay:?}");
            });
        tokio::select! {
            result = retried => match result {
                Ok(()) => {
                    stats.webhooks_delivered.fetch_add(1, Ordering::Relaxed);
                }
                Err(error) => {
                    stats.webhook_failed_attempts.fetch_add(1, Ordering::Relaxed);
                    stats.webhooks_given_up.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(url = %target.url, "webhook given up after retrying for {}s: {error}", settings.retry_for_secs);
                }
            },
            _ = self.shutdown.cancelled() => {
                tracing::debug!(url = %target.url, "sandbox stopping: a webhook still being retried is dropped");
            }
        }
    }
}

/// Meta's verification handshake against a callback URL: `GET ?hub.mode=subscribe&
/// hub.challenge=<random>&hub.verify_token=<token>` must answer 200 with the challenge as body.
pub async fn verify_callback(
    url: &url::Url,
    verify_token: &str,
    timeout: Duration,
) -> Result<(), SandboxError> {
    let client = http_client(timeout)?;
    let challenge = fastrand::u64(1_000_000_000..u64::MAX / 2).to_string();
    let mut request_url = url.clone();
    request_url
        .query_pairs_mut()
        .append_pair("hub.mode", "subscribe")
        .append_pair("hub.challenge", &challenge)
        .append_pair("hub.verify_token", verify_token);
    let response = client
        .get(request_url)
        .send()
        .await
        .map_err(|e| SandboxError::Verify(format!("{url} is unreachable: {e}")))?;
    let status = response.status();
    let text = response
        .text()
        .await
        .map_err(|e| SandboxError::Verify(format!("{url} answered an unreadable body: {e}")))?;
    if status != reqwest::StatusCode::OK {
        return Err(SandboxError::Verify(format!(
            "{url} answered {status} to the verification request (is the verify token the same on both sides?)"
        )));
    }
    if text != challenge {
        return Err(SandboxError::Verify(format!(
            "{url} answered 200 but not with the hub.challenge value as plain text"
        )));
    }
    Ok(())
}
