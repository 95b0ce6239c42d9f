//! The forwarder: moves spooled webhooks ([`super::spool`]) to Odoo, many per call.
//!
//! One step ([`Forwarder::step`]) takes the oldest entries (at most `batch_max`), asks Odoo
//! which of them it already has when that is unsure (left by a crash, or a call that failed
//! without a clear answer), creates the others with their spool keys in one call, and removes
//! them from the spool. The loop ([`run`]) starts a step as soon as a webhook is spooled, but
//! at most one per `interval` after a partial batch: a lone webhook goes to Odoo at once, a
//! stream goes in batches of `interval` (2 calls a second by default, whatever the rate;
//! inbound processing takes at most 2 batches a second too), and a backlog (full batches) goes
//! as fast as Odoo takes it.
//!
//! When a call fails, the [`OdooGate`] closes (new webhooks are answered 503, Meta retries
//! them) and the step is tried again after a jittered exponential delay (0.5 s to 2 s: new
//! webhooks are refused until Odoo is found back); the first step that works opens it again.
//! When Odoo refuses a batch (an error, not an outage), the entries are tried one at a time;
//! an entry Odoo refuses on its own is stored with its NUL characters replaced and the refusal
//! as its processing error (PostgreSQL keeps no NUL in text), so one bad body cannot hold up
//! the others. On shutdown, what is spooled is forwarded
//! for at most a few seconds; the rest waits in the spool for the next start.

use backon::{BackoffBuilder, ExponentialBuilder};
use std::collections::HashSet;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::ingest::NewEvent;
use super::spool::{Entry, OdooGate, Spool, SpoolError};

/// An event and the key it is stored with.
#[derive(Debug, Clone, PartialEq)]
pub struct KeyedEvent {
    pub key: String,
    pub event: NewEvent,
}

/// Why Odoo did not take a batch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SinkError {
    /// Unreachable, timed out or answered 5xx: the batch may or may not have been stored.
    #[error("Odoo is unreachable: {0}")]
    Unavailable(String),
    /// Odoo answered with an error: nothing of the batch was stored.
    #[error("Odoo refused to store the webhook events: {0}")]
    Refused(String),
}

impl SinkError {
    /// Both pass: an outage ends, a refusal is retried one entry at a time.
    pub fn is_retryable(&self) -> bool {
        true
    }
}

/// Where spooled events go: Odoo in the daemon, a fake in the tests.
pub trait EventSink: Send + Sync + 'static {
    /// Stores the events, in one transaction.
    fn create(&self, events: Vec<KeyedEvent>)
        -> impl Future<Output = Result<(), SinkError>> + Send;
    /// Which of `keys` are stored already.
    fn stored_keys(
        &self,
        keys: Vec<String>,
    ) -> impl Future<Output = Result<HashSet<String>, SinkError>> + Send;
}

/// `[webhook]` settings of the forwarder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForwardConfig {
    /// Most events per `create`.
    pub batch_max: usize,
    /// At most one `create` per this long.
    pub interval: Duration,
    /// Most events in the spool; beyond, webhooks are answered 503.
    pub max_events: usize,
}

impl Default for ForwardConfig {
    fn default() -> Self {
        ForwardConfig {
            batch_max: 500,
            interval: Duration::from_millis(500),
            max_events: 100_000,
        }
    }
}

/// What one step did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// The spool is empty.
    Empty,
    /// This many entries are now in Odoo (some may have been there already); `full` when the
    /// batch was as large as allowed (more may be waiting).
    Forwarded { count: usize, full: bool },
    /// Nothing moved; try again after a delay.
    Failed(String),
}

/// The forwarder's state between steps.
pub struct Forwarder<S> {
    spool: Arc<Spool>,
    sink: S,
    gate: Arc<OdooGate>,
    /// Told after each step that stored events (inbound processing waits on it).
    stored: Arc<Notify>,
    batch_max: usize,
    /// Entries up to this sequence may be in Odoo already (a crash, a failed call).
    unsure_up_to: u64,
    /// Odoo refused a batch: entries go one at a time until one is stored.
    one_at_a_time: bool,
}

impl<S: EventSink> Forwarder<S> {
    pub fn new(
        spool: Arc<Spool>,
        sink: S,
        gate: Arc<OdooGate>,
        stored: Arc<Notify>,
        batch_max: usize,
    ) -> Self {
        Forwarder {
            unsure_up_to: spool.left_up_to(),
            spool,
            sink,
            gate,
            stored,
            batch_max: batch_max.max(1),
            one_at_a_time: false,
        }
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Spool) -> Result<T, SpoolError> + Send + 'static,
    ) -> Result<T, String> {
        let spool = self.spool.clone();
        match tokio::task::spawn_blocking(move || f(&spool)).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(e)) => Err(e.to_string()),
            Err(e) => Err(format!("the spool task did not finish: {e}")),
        }
    }

    /// Forwards the oldest entries (see the module documentation).
    pub async fn step(&mut self) -> Step {
        let max = if self.one_at_a_time {
            1
        } else {
            self.batch_max
        };
        let mut entries = match self.blocking(move |s| s.oldest(max)).await {
            Ok(entries) => entries,
            Err(e) => return Step::Failed(e),
        };
        let Some(last) = entries.last().map(|e| e.seq) else {
            return Step::Empty;
        };
        let count = entries.len();
        let full = count >= max;
        if entries[0].seq <= self.unsure_up_to {
            let unsure: Vec<String> = entries
                .iter()
                .filter(|e| e.seq <= self.unsure_up_to)
                .map(|e| self.spool.key(e.seq))
                .collect();
            let there = match self.sink.stored_keys(unsure).await {
                Ok(there) => there,
                Err(e) => return self.failed(e, None),
            };
            if !there.is_empty() {
                let (stored, rest): (Vec<Entry>, Vec<Entry>) = entries
                    .into_iter()
                    .partition(|e| there.contains(&self.spool.key(e.seq)));
                let seqs: Vec<u64> = stored.iter().map(|e| e.seq).collect();
                tracing::info!(
                    count = seqs.len(),
                    "webhooks found in Odoo already (left in the spool by a crash or a failed call); not stored again"
                );
                if let Err(e) = self.blocking(move |s| s.remove(&seqs)).await {
                    return Step::Failed(e);
                }
                entries = rest;
            }
        }
        if !entries.is_empty() {
            let batch: Vec<KeyedEvent> = entries
                .iter()
                .map(|e| KeyedEvent {
                    key: self.spool.key(e.seq),
                    event: e.event.clone(),
                })
                .collect();
            if let Err(e) = self.sink.create(batch.clone()).await {
                return match e {
                    SinkError::Refused(_) if batch.len() == 1 => {
                        self.store_refused(batch, e, last).await
                    }
                    SinkError::Refused(_) => {
                        self.one_at_a_time = true;
                        self.failed(e, None)
                    }
                    SinkError::Unavailable(_) => self.failed(e, Some(last)),
                };
            }
            let seqs: Vec<u64> = entries.iter().map(|e| e.seq).collect();
            if let Err(e) = self.blocking(move |s| s.remove(&seqs)).await {
                // In Odoo but still spooled: the next step finds their keys there.
                self.unsure_up_to = self.unsure_up_to.max(last);
                return Step::Failed(e);
            }
        }
        self.stored_now();
        Step::Forwarded { count, full }
    }

    /// A lone entry Odoo refused: stored with NUL characters replaced and the refusal noted.
    async fn store_refused(
        &mut self,
        mut batch: Vec<KeyedEvent>,
        why: SinkError,
        last: u64,
    ) -> Step {
        let Some(mut item) = batch.pop() else {
            return Step::Failed(why.to_string());
        };
        let event = &mut item.event;
        event.raw_body = event.raw_body.replace('\0', "\u{FFFD}");
        event.processing_error = Some(format!(
            "Odoo refused this webhook body as received ({why}); it is stored with its NUL \
             characters replaced and is not processed{}",
            event
                .processing_error
                .as_ref()
                .map(|e| format!("; earlier: {e}"))
                .unwrap_or_default()
        ));
        tracing::error!(key = %item.key, error = %why, "Odoo refused a webhook body; storing it with its NUL characters replaced, marked not processable");
        if let Err(e) = self.sink.create(vec![item]).await {
            // Not the body then (e.g. a missing access right): wait and try again.
            let unsure = matches!(e, SinkError::Unavailable(_)).then_some(last);
            return self.failed(e, unsure);
        }
        if let Err(e) = self.blocking(move |s| s.remove(&[last])).await {
            self.unsure_up_to = self.unsure_up_to.max(last);
            return Step::Failed(e);
        }
        self.stored_now();
        // One at a time: the batch of one was full, the others come next at once.
        Step::Forwarded {
            count: 1,
            full: true,
        }
    }

    fn stored_now(&mut self) {
        self.one_at_a_time = false;
        self.stored.notify_one();
        if self.gate.open() {
            tracing::info!("Odoo stores webhook events again: webhooks are answered 200 again");
        }
    }

    fn failed(&mut self, e: SinkError, unsure: Option<u64>) -> Step {
        if let Some(last) = unsure {
            self.unsure_up_to = self.unsure_up_to.max(last);
        }
        let reason = e.to_string();
        if self.gate.refusing().is_none() {
            tracing::warn!(
                error = %reason,
                spooled = self.spool.len(),
                "webhooks cannot be stored in Odoo; the spooled ones are kept and retried, new ones are answered 503 so Meta retries them"
            );
        }
        self.gate.close(reason.clone());
        Step::Failed(reason)
    }
}

/// How long a step may take at shutdown, at most, to forward what is spooled.
const SHUTDOWN_FLUSH: Duration = Duration::from_secs(5);
/// With nothing spooled, the spool is looked at again after this long even without a wake-up.
const IDLE_RECHECK: Duration = Duration::from_secs(1);

fn delays() -> impl Iterator<Item = Duration> {
    ExponentialBuilder::default()
        .with_jitter()
        .with_min_delay(Duration::from_millis(500))
        .with_max_delay(Duration::from_secs(2))
        .without_max_times()
        .build()
}

/// Runs the forwarder until `shutdown`; `wake` is told when a webhook is spooled.
pub async fn run<S: EventSink>(
    mut forwarder: Forwarder<S>,
    interval: Duration,
    wake: Arc<Notify>,
    shutdown: CancellationToken,
) {
    let mut last_start: Option<Instant> = None;
    let mut backoff: Option<Box<dyn Iterator<Item = Duration> + Send>> = None;
    loop {
        if let Some(start) = last_start {
            // At most one step per interval, unless a backlog is being worked off.
            tokio::select! {
                () = tokio::time::sleep_until(start + interval) => {}
                () = shutdown.cancelled() => break,
            }
        }
        last_start = Some(Instant::now());
        match forwarder.step().await {
            Step::Forwarded { count, full } => {
                tracing::debug!(
                    count,
                    spooled = forwarder.spool.len(),
                    "webhooks forwarded to Odoo"
                );
                backoff = None;
                if full {
                    last_start = None;
                }
            }
            Step::Empty => {
                backoff = None;
                tokio::select! {
                    () = wake.notified() => {}
                    () = tokio::time::sleep(IDLE_RECHECK) => {}
                    () = shutdown.cancelled() => break,
                }
            }
            Step::Failed(reason) => {
                let delay = backoff
                    .get_or_insert_with(|| Box::new(delays()))
                    .next()
                    .unwrap_or(Duration::from_secs(2));
                tracing::debug!(%reason, retry_in_ms = delay.as_millis() as u64, "webhook forward failed");
                tokio::select! {
                    () = tokio::time::sleep(delay) => {}
                    () = shutdown.cancelled() => break,
                }
            }
        }
    }
    // Forward what is spooled now, briefly; what is left waits for the next start.
    let flush = async { while let Step::Forwarded { .. } = forwarder.step().await {} };
    if tokio::time::timeout(SHUTDOWN_FLUSH, flush).await.is_err() {
        tracing::warn!(
            spooled = forwarder.spool.len(),
            "webhooks still in the local spool at shutdown; they go to Odoo at the next start"
        );
    }
}

#[cfg(test)]
mod tests;
