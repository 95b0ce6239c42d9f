//! Group commit: many concurrent webhook requests share one `create` call.
//!
//! Each request hands its event to [`Ingest::submit`] and waits. One batcher task takes the first
//! waiting event and keeps collecting while events keep coming; it stores the batch with a single
//! [`EventStore::store`] call as soon as one of these happens, whichever comes first:
//!
//! - no new event arrived for `idle` (the receiver went quiet: don't keep anyone waiting),
//! - `linger` has passed since the first event of the batch (the longest anyone waits for
//!   company, so a steady stream is cut into batches of `linger`),
//! - the batch holds `max_batch` events.
//!
//! So a lone webhook is stored after `idle` (5 ms by default; status webhooks from Meta come in bursts a few ms apart), a steady stream of 3,000 events/s
//! makes one `create` per `linger` (50 ms by default: about 20 calls/s), and a burst from
//! closed-loop senders is stored as soon as the burst ends. Each request then gets its own answer
//! (the new record id, or the error) through a oneshot channel. Up to `max_in_flight` batches are
//! stored at once; while all of them are busy, new events queue up and make the next batch
//! bigger, which is what keeps the number of Odoo calls low when Odoo is slow.
//!
//! Nothing is answered before the store call returned: a request that gets `Ok` has its body in
//! Odoo. On shutdown the queue is closed (new requests get [`IngestError::Closed`]) and what is
//! already queued is stored at once, without waiting for company.
//!
//! A request that stopped waiting (it answered 503 after `reply_timeout`, or its client went
//! away) may still have its body stored by the call under way, and Meta then sends the same
//! body again. [`Copies`] knows these bodies by their SHA-256: a copy that arrives while the
//! call is still under way waits for that call's answer instead of being stored again; one
//! that arrives after it stored the body (remembered for Meta's 7 days of retries, the newest
//! 100,000) is answered with the stored record's id. So without the local spool too, a body
//! answered 503 is stored once. (Copies that Meta delivers while the first is still waiting are
//! stored each: Meta delivers at least once, and processing reads each message once.)

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::warn::RateLimitedWarning;

/// A verified webhook body, ready to be stored as a `whatsapp.webhook.event` (kept as JSON in
/// the local spool, when there is one).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct NewEvent {
    /// The body as received (invalid UTF-8, if any, replaced and noted in `processing_error`).
    pub raw_body: String,
    pub received_at: DateTime<Utc>,
    /// The account the payload is about, when its phone number id or WABA id is known.
    pub account_id: Option<i64>,
    /// Set when the body cannot be processed (not JSON): the event is stored as processed, with
    /// this error, for people to look at.
    pub processing_error: Option<String>,
}

/// Why a batch could not be stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    /// Odoo could not be reached or did not answer in time; Meta should retry.
    #[error("Odoo is unreachable: {0}")]
    Unavailable(String),
    /// Odoo answered with an error.
    #[error("Odoo refused to store the webhook events: {0}")]
    Refused(String),
}

impl StoreError {
    /// Both are worth a retry by Meta: an outage ends, a refused create (e.g. a missing access
    /// right) ends once someone fixes it, and Meta retries for days.
    pub fn is_retryable(&self) -> bool {
        true
    }
}

/// Where events are stored: Odoo in the daemon, a fake in unit tests.
pub trait EventStore: Send + Sync + 'static {
    /// Stores all `events` at once and returns their record ids, in the same order.
    fn store(
        &self,
        events: Vec<NewEvent>,
    ) -> impl Future<Output = Result<Vec<i64>, StoreError>> + Send;
}

/// Why an event was not stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IngestError {
    /// More events are waiting than the queue holds.
    #[error("too many webhook events are waiting to be stored ({0} queued)")]
    Busy(usize),
    /// The daemon is shutting down.
    #[error("the daemon is shutting down")]
    Closed,
    /// The store did not answer within the reply timeout.
    #[error("storing the webhook event took longer than {0:?}")]
    Timeout(Duration),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl IngestError {
    /// All of them are temporary: the sender should try again later.
    pub fn is_retryable(&self) -> bool {
        true
    }
}

/// Settings of the group commit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestConfig {
    /// Most events in one `create` call.
    pub max_batch: usize,
    /// The longest a batch waits for company: it is stored at the latest this long after its
    /// first event.
    pub linger: Duration,
    /// The batch is stored as soon as no new event arrived for this long. At most `linger`.
    pub idle: Duration,
    /// `create` calls in flight at once.
    pub max_in_flight: usize,
    /// Events waiting to be stored before new requests are refused (503).
    pub queue_capacity: usize,
    /// How long a request waits for its event to be stored before it answers 503.
    pub reply_timeout: Duration,
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            max_batch: 500,
            linger: Duration::from_millis(50),
            idle: Duration::from_millis(5),
            max_in_flight: 4,
            queue_capacity: 20_000,
            reply_timeout: Duration::from_secs(20),
        }
    }
}

struct Pending {
    event: NewEvent,
    /// SHA-256 of the body.
    digest: Digest32,
    reply: oneshot::Sender<Result<i64, IngestError>>,
}

type Digest32 = [u8; 32];

/// How long a body stored after its request stopped waiting is remembered: Meta retries a
/// webhook for up to 7 days.
const LATE_KEEP: Duration = Duration::from_secs(7 * 24 * 3600);
/// The most such bodies remembered (the oldest are forgotten first).
const LATE_MAX: usize = 100_000;

/// What a request's answer goes through.
type Reply = oneshot::Sender<Result<i64, IngestError>>;

/// Bodies whose request stopped waiting before they were stored, by SHA-256.
#[derive(Default)]
pub struct Copies {
    /// Still being stored: the copies waiting for that answer.
    orphans: HashMap<Digest32, Vec<Reply>>,
    /// Stored after their request stopped waiting.
    late: LateStores,
}

impl Copies {
    /// A request stopped waiting for its body's store call, still under way.
    fn orphaned(&mut self, digest: Digest32) {
        self.orphans.entry(digest).or_default();
    }

    /// The store call of a body ended, and its request had stopped waiting: the copies that
    /// came meanwhile get the answer; if none took it, a stored body is remembered.
    fn ended(&mut self, digest: Digest32, result: &Result<i64, IngestError>, now: Instant) {
        let mut taken = false;
        for reply in self.orphans.remove(&digest).unwrap_or_default() {
            taken |= reply.send(result.clone()).is_ok();
        }
        if let (Ok(id), false) = (result, taken) {
            self.late.remember(digest, *id, now);
        }
    }

    /// Bodies remembered as stored late.
    pub fn late_len(&self) -> usize {
        self.late.len()
    }
}

/// Bodies stored after their request had stopped waiting, by SHA-256: the record id and when.
#[derive(Default)]
struct LateStores {
    ids: HashMap<Digest32, i64>,
    order: VecDeque<(Instant, Digest32)>,
}

impl LateStores {
    fn remember(&mut self, digest: Digest32, id: i64, now: Instant) {
        if self.ids.insert(digest, id).is_none() {
            self.order.push_back((now, digest));
        }
        while let Some((at, old)) = self.order.front().copied() {
            if self.order.len() <= LATE_MAX && now.saturating_duration_since(at) < LATE_KEEP {
                break;
            }
            self.order.pop_front();
            self.ids.remove(&old);
        }
    }

    /// The id the body was stored under, once: a further copy is stored again (Meta delivers
    /// at least once, and processing reads each message once whatever the copies).
    fn take(&mut self, digest: &Digest32) -> Option<i64> {
        let id = self.ids.remove(digest)?;
        self.order.retain(|(_, d)| d != digest);
        Some(id)
    }

    fn len(&self) -> usize {
        self.ids.len()
    }
}

fn lock(copies: &Mutex<Copies>) -> std::sync::MutexGuard<'_, Copies> {
    copies.lock().unwrap_or_else(|p| p.into_inner())
}

/// The handle requests submit their events to. Cheap to clone.
#[derive(Clone)]
pub struct Ingest {
    tx: mpsc::Sender<Pending>,
    capacity: usize,
    reply_timeout: Duration,
    copies: Arc<Mutex<Copies>>,
}

impl Ingest {
    /// Starts the batcher on `tracker`. It stops once `shutdown` is cancelled and the events
    /// already queued are stored, or when every handle is dropped.
    pub fn spawn<S: EventStore>(
        store: S,
        config: IngestConfig,
        tracker: &TaskTracker,
        shutdown: CancellationToken,
    ) -> Self {
        let capacity = config.queue_capacity.max(1);
        let (tx, rx) = mpsc::channel(capacity);
        let ingest = Ingest {
            tx,
            capacity,
            reply_timeout: config.reply_timeout,
            copies: Arc::default(),
        };
        tracker.spawn(batcher(
            Arc::new(store),
            rx,
            config,
            tracker.clone(),
            shutdown,
            ingest.copies.clone(),
        ));
        ingest
    }

    /// Stores one event (together with whatever else is waiting) and returns its record id.
    /// A body whose earlier request stopped waiting is not stored again: the answer is that
    /// request's store call's.
    pub async fn submit(&self, event: NewEvent) -> Result<i64, IngestError> {
        let digest: Digest32 = Sha256::digest(event.raw_body.as_bytes()).into();
        let (reply, answer) = oneshot::channel();
        // Some(reply): not a copy of a body whose request stopped waiting.
        let reply = {
            let mut copies = lock(&self.copies);
            if let Some(id) = copies.late.take(&digest) {
                tracing::info!(
                    id,
                    "webhook already stored after its earlier delivery was answered 503: not stored again"
                );
                return Ok(id);
            }
            match copies.orphans.get_mut(&digest) {
                Some(waiting) => {
                    waiting.push(reply);
                    None
                }
                None => Some(reply),
            }
        };
        let Some(reply) = reply else {
            tracing::info!(
                "webhook still being stored from its earlier delivery (answered 503): waiting for that"
            );
            return self.answer(answer, digest).await;
        };
        self.tx
            .try_send(Pending {
                event,
                digest,
                reply,
            })
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => IngestError::Busy(self.capacity),
                mpsc::error::TrySendError::Closed(_) => IngestError::Closed,
            })?;
        self.answer(answer, digest).await
    }

    async fn answer(
        &self,
        answer: oneshot::Receiver<Result<i64, IngestError>>,
        digest: Digest32,
    ) -> Result<i64, IngestError> {
        let mut answer = std::pin::pin!(answer);
        match tokio::time::timeout(self.reply_timeout, answer.as_mut()).await {
            Ok(Ok(result)) => result,
            // The batcher dropped the reply: it is gone (shutdown).
            Ok(Err(_)) => Err(IngestError::Closed),
            Err(_) => {
                // Answers are sent under this lock ([`answer`]): none can come between the
                // look below and the closing of the channel.
                let mut copies = lock(&self.copies);
                match answer.try_recv() {
                    // It came right at the deadline.
                    Ok(result) => result,
                    Err(oneshot::error::TryRecvError::Closed) => Err(IngestError::Closed),
                    Err(oneshot::error::TryRecvError::Empty) => {
                        answer.close();
                        copies.orphaned(digest);
                        Err(IngestError::Timeout(self.reply_timeout))
                    }
                }
            }
        }
    }
}

async fn batcher<S: EventStore>(
    store: Arc<S>,
    mut rx: mpsc::Receiver<Pending>,
    config: IngestConfig,
    tracker: TaskTracker,
    shutdown: CancellationToken,
    copies: Arc<Mutex<Copies>>,
) {
    let max_batch = config.max_batch.max(1);
    let slots = Arc::new(Semaphore::new(config.max_in_flight.max(1)));
    // Every batch fails the same way while Odoo refuses (a missing right) or is away: one line
    // a minute says so, with how many batches it stood for.
    let refused = Arc::new(RateLimitedWarning::new(FAILURE_LOG_PERIOD));
    let mut closing = false;
    loop {
        let Ok(slot) = slots.clone().acquire_owned().await else {
            break;
        };
        let first = tokio::select! {
            biased;
            item = rx.recv() => match item {
                Some(item) => item,
                None => break,
            },
            () = shutdown.cancelled(), if !closing => {
                // Refuse new events, store the queued ones, then stop (recv gives None).
                rx.close();
                closing = true;
                continue;
            }
        };
        let mut batch = vec![first];
        let linger_end = Instant::now() + config.linger;
        let gap = tokio::time::sleep_until(linger_end);
        tokio::pin!(gap);
        while batch.len() < max_batch {
            match rx.try_recv() {
                Ok(item) => {
                    batch.push(item);
                    continue;
                }
                Err(mpsc::error::TryRecvError::Disconnected) => break,
                Err(mpsc::error::TryRecvError::Empty) if closing => break,
                Err(mpsc::error::TryRecvError::Empty) => {}
            }
            // The queue is empty and an event just arrived: wait at most `idle` for the next one,
            // and never beyond `linger` after the first.
            gap.as_mut()
                .reset(linger_end.min(Instant::now() + config.idle));
            tokio::select! {
                biased;
                () = &mut gap => break,
                // Shutting down: store what is there without waiting for company.
                () = shutdown.cancelled() => break,
                item = rx.recv() => match item {
                    Some(item) => batch.push(item),
                    None => break,
                },
            }
        }
        let store = store.clone();
        let refused = refused.clone();
        let copies = copies.clone();
        tracker.spawn(async move {
            store_batch(store.as_ref(), batch, &refused, &copies).await;
            drop(slot);
        });
    }
}

/// At most one log line per this period about batches that could not be stored.
const FAILURE_LOG_PERIOD: Duration = Duration::from_secs(60);

/// `text` on one line: Odoo's error messages span several.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

async fn store_batch<S: EventStore>(
    store: &S,
    batch: Vec<Pending>,
    refused: &RateLimitedWarning,
    copies: &Mutex<Copies>,
) {
    let mut events = Vec::with_capacity(batch.len());
    let mut replies = Vec::with_capacity(batch.len());
    for p in batch {
        events.push(p.event);
        replies.push((p.digest, p.reply));
    }
    let count = events.len();
    let result = store.store(events).await;
    match result {
        Ok(ids) if ids.len() == count => {
            tracing::debug!(count, "webhook events stored");
            for ((digest, reply), id) in replies.into_iter().zip(ids) {
                answer(copies, digest, reply, Ok(id));
            }
        }
        Ok(ids) => {
            let error = StoreError::Refused(format!(
                "{count} events were sent but Odoo returned {} ids",
                ids.len()
            ));
            tracing::error!(%error, "webhook events: unexpected answer from Odoo");
            for (digest, reply) in replies {
                answer(copies, digest, reply, Err(error.clone().into()));
            }
        }
        Err(error) => {
            if let Some(held_back) = refused.occurrence() {
                tracing::warn!(
                    error = %one_line(&error.to_string()),
                    count,
                    held_back,
                    "webhook events not stored; answering 503 so Meta retries (said at most once a minute; held_back: failed batches since the last line)"
                );
            } else {
                tracing::debug!(error = %one_line(&error.to_string()), count, "webhook events not stored");
            }
            for (digest, reply) in replies {
                answer(copies, digest, reply, Err(error.clone().into()));
            }
        }
    }
}

/// Answers the request of a body; if it stopped waiting (answered 503, or its client went
/// away), the copies Meta sent meanwhile get the answer, or the stored body is remembered.
fn answer(
    copies: &Mutex<Copies>,
    digest: Digest32,
    reply: Reply,
    result: Result<i64, IngestError>,
) {
    // Under the lock: a request that stops waiting now sees the call ended (its channel closed).
    let mut copies = lock(copies);
    if let Err(unsent) = reply.send(result) {
        copies.ended(digest, &unsent, Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn odoo_errors_are_logged_on_one_line() {
        let access = "You are not allowed to create 'WhatsApp Webhook Event' (whatsapp.webhook.event) records.\n\nThis operation is allowed for the following groups:\n\t- WhatsApp Sidecar (technical)\n\nContact your administrator to request access if necessary.";
        assert_eq!(
            one_line(access),
            "You are not allowed to create 'WhatsApp Webhook Event' (whatsapp.webhook.event) \
             records. This operation is allowed for the following groups: - WhatsApp Sidecar \
             (technical) Contact your administrator to request access if necessary."
        );
    }
    use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
    use std::sync::Mutex;

    #[derive(Default)]
    struct FakeStore {
        calls: Mutex<Vec<Vec<String>>>,
        /// When each call came in.
        called_at: Mutex<Vec<Instant>>,
        next_id: AtomicI64,
        failing: AtomicBool,
        delay: Option<Duration>,
    }

    impl EventStore for Arc<FakeStore> {
        async fn store(&self, events: Vec<NewEvent>) -> Result<Vec<i64>, StoreError> {
            self.called_at.lock().unwrap().push(Instant::now());
            if let Some(delay) = self.delay {
                tokio::time::sleep(delay).await;
            }
            if self.failing.load(Ordering::SeqCst) {
                return Err(StoreError::Unavailable("connection refused".into()));
            }
            let n = events.len() as i64;
            self.calls
                .lock()
                .unwrap()
                .push(events.into_iter().map(|e| e.raw_body).collect());
            let first = self.next_id.fetch_add(n, Ordering::SeqCst) + 1;
            Ok((first..first + n).collect())
        }
    }

    fn event(body: &str) -> NewEvent {
        NewEvent {
            raw_body: body.into(),
            received_at: DateTime::from_timestamp(1_750_000_000, 0).unwrap(),
            account_id: None,
            processing_error: None,
        }
    }

    fn start(
        store: Arc<FakeStore>,
        config: IngestConfig,
    ) -> (Ingest, TaskTracker, CancellationToken) {
        let tracker = TaskTracker::new();
        let shutdown = CancellationToken::new();
        let ingest = Ingest::spawn(store, config, &tracker, shutdown.clone());
        (ingest, tracker, shutdown)
    }

    /// Submits `count` events, one every `every`, each from its own task (as concurrent requests
    /// do), and returns the tasks.
    async fn stream(
        ingest: &Ingest,
        count: usize,
        every: Duration,
    ) -> Vec<tokio::task::JoinHandle<Result<i64, IngestError>>> {
        let mut handles = Vec::new();
        for i in 0..count {
            if i > 0 {
                tokio::time::sleep(every).await;
            }
            let ingest = ingest.clone();
            handles.push(tokio::spawn(async move {
                ingest.submit(event(&format!("s{i}"))).await
            }));
        }
        handles
    }

    fn sizes(store: &FakeStore) -> Vec<usize> {
        store.calls.lock().unwrap().iter().map(Vec::len).collect()
    }

    /// When each call came in, in ms after `start`.
    fn call_times_ms(store: &FakeStore, start: Instant) -> Vec<u128> {
        let at = store.called_at.lock().unwrap();
        at.iter().map(|t| (*t - start).as_millis()).collect()
    }

    /// A store taking `delay_secs` per call (failing if `failing`), and requests that wait
    /// `reply_secs` for it.
    fn slow_store(delay_secs: u64, reply_secs: u64, failing: bool) -> (Arc<FakeStore>, Ingest) {
        let store = Arc::new(FakeStore {
            delay: Some(Duration::from_secs(delay_secs)),
            failing: AtomicBool::new(failing),
            ..FakeStore::default()
        });
        let config = IngestConfig {
            reply_timeout: Duration::from_secs(reply_secs),
            ..IngestConfig::default()
        };
        let (ingest, _, _) = start(store.clone(), config);
        (store, ingest)
    }

    fn idle_and_linger(idle_ms: u64, linger_ms: u64) -> IngestConfig {
        IngestConfig {
            idle: Duration::from_millis(idle_ms),
            linger: Duration::from_millis(linger_ms),
            ..IngestConfig::default()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_lone_event_is_stored_after_the_idle_gap_not_the_linger() {
        let store = Arc::new(FakeStore::default());
        let (ingest, _, _) = start(store.clone(), idle_and_linger(2, 50));
        let start = Instant::now();
        assert_eq!(ingest.submit(event("alone")).await, Ok(1));
        let waited = start.elapsed();
        assert!(
            waited >= Duration::from_millis(2) && waited <= Duration::from_millis(3),
            "answered after {waited:?}"
        );
        assert_eq!(sizes(&store), vec![1]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_steady_stream_is_cut_into_batches_by_the_linger() {
        let store = Arc::new(FakeStore::default());
        let (ingest, _, _) = start(store.clone(), idle_and_linger(2, 50));
        let start = Instant::now();
        // 100 events, one per ms: every gap is below the idle time.
        let handles = stream(&ingest, 100, Duration::from_millis(1)).await;
        for h in handles {
            h.await.unwrap().unwrap();
        }
        let sizes = sizes(&store);
        let times = call_times_ms(&store, start);
        assert!((2..=3).contains(&sizes.len()), "{sizes:?} at {times:?} ms");
        assert_eq!(sizes.iter().sum::<usize>(), 100);
        // The first batch is cut by the linger (50 ms after its first event, at 0 ms), not by
        // the idle time; the last one goes by the next linger (100 ms) or by the idle gap after
        // the last event (99 ms + 2 ms), whichever comes first.
        assert!((50..=51).contains(&sizes[0]), "{sizes:?} at {times:?} ms");
        assert!((50..=51).contains(&times[0]), "{sizes:?} at {times:?} ms");
        let last = times[times.len() - 1];
        assert!((100..=101).contains(&last), "{sizes:?} at {times:?} ms");
    }

    #[tokio::test(start_paused = true)]
    async fn a_burst_is_stored_as_soon_as_it_ends() {
        let store = Arc::new(FakeStore::default());
        let (ingest, _, _) = start(store.clone(), idle_and_linger(2, 50));
        let start = Instant::now();
        // 20 events 1 ms apart (0..=19 ms), then silence.
        let handles = stream(&ingest, 20, Duration::from_millis(1)).await;
        for h in handles {
            h.await.unwrap().unwrap();
        }
        let times = call_times_ms(&store, start);
        assert_eq!(sizes(&store), vec![20], "at {times:?} ms");
        // Stored once the 2 ms gap after the last event passed, long before the 50 ms linger.
        assert!((21..=22).contains(&times[0]), "at {times:?} ms");
        assert!(start.elapsed() < Duration::from_millis(25));
    }

    #[tokio::test(start_paused = true)]
    async fn max_batch_cuts_a_stream_before_the_linger() {
        let store = Arc::new(FakeStore::default());
        let config = IngestConfig {
            max_batch: 10,
            ..idle_and_linger(2, 50)
        };
        let (ingest, _, _) = start(store.clone(), config);
        let start = Instant::now();
        let handles = stream(&ingest, 35, Duration::from_millis(1)).await;
        for h in handles {
            h.await.unwrap().unwrap();
        }
        let times = call_times_ms(&store, start);
        assert_eq!(sizes(&store), vec![10, 10, 10, 5], "at {times:?} ms");
        // Each full batch goes as soon as its tenth event arrives (9, 19, 29 ms), the rest after
        // the idle gap.
        assert_eq!(&times[..3], &[9, 19, 29], "at {times:?} ms");
        assert!((36..=37).contains(&times[3]), "at {times:?} ms");
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_stores_a_collecting_batch_without_waiting_for_the_linger() {
        let store = Arc::new(FakeStore::default());
        let (ingest, _, shutdown) = start(store.clone(), idle_and_linger(50, 50));
        let start = Instant::now();
        let handles = stream(&ingest, 3, Duration::from_millis(1)).await;
        shutdown.cancel();
        for h in handles {
            h.await.unwrap().unwrap();
        }
        // Cancelled at 2 ms, when the last event was just sent: everything is stored then,
        // not at the linger (50 ms).
        let times = call_times_ms(&store, start);
        assert_eq!(sizes(&store).iter().sum::<usize>(), 3, "at {times:?} ms");
        assert!(times.iter().all(|&t| t == 2), "at {times:?} ms");
    }

    #[tokio::test(start_paused = true)]
    async fn concurrent_events_share_one_call_and_each_gets_its_id() {
        let store = Arc::new(FakeStore::default());
        let (ingest, _, _) = start(store.clone(), IngestConfig::default());
        let mut handles = Vec::new();
        for i in 0..50 {
            let ingest = ingest.clone();
            handles.push(tokio::spawn(async move {
                ingest.submit(event(&format!("b{i}"))).await
            }));
        }
        let mut ids = Vec::new();
        for h in handles {
            ids.push(h.await.unwrap().unwrap());
        }
        ids.sort_unstable();
        assert_eq!(ids, (1..=50).collect::<Vec<_>>());
        let calls = store.calls.lock().unwrap();
        assert_eq!(calls.len(), 1, "{} calls", calls.len());
        assert_eq!(calls[0].len(), 50);
    }

    #[tokio::test(start_paused = true)]
    async fn batches_are_capped_and_events_after_the_idle_gap_go_in_the_next_call() {
        let store = Arc::new(FakeStore::default());
        let config = IngestConfig {
            max_batch: 4,
            ..IngestConfig::default()
        };
        let (ingest, _, _) = start(store.clone(), config);
        let mut handles = Vec::new();
        for i in 0..10 {
            let ingest = ingest.clone();
            handles.push(tokio::spawn(async move {
                ingest.submit(event(&format!("b{i}"))).await
            }));
        }
        for h in handles {
            h.await.unwrap().unwrap();
        }
        let sizes: Vec<usize> = store.calls.lock().unwrap().iter().map(Vec::len).collect();
        assert_eq!(sizes, vec![4, 4, 2]);

        tokio::time::sleep(Duration::from_millis(10)).await;
        ingest.submit(event("late")).await.unwrap();
        assert_eq!(store.calls.lock().unwrap().len(), 4);
    }

    #[tokio::test(start_paused = true)]
    async fn a_failing_store_fails_every_waiting_request() {
        let store = Arc::new(FakeStore::default());
        store.failing.store(true, Ordering::SeqCst);
        let (ingest, _, _) = start(store.clone(), IngestConfig::default());
        let (a, b) = tokio::join!(ingest.submit(event("a")), ingest.submit(event("b")));
        for r in [a, b] {
            assert!(
                matches!(r, Err(IngestError::Store(StoreError::Unavailable(_)))),
                "{r:?}"
            );
        }
        store.failing.store(false, Ordering::SeqCst);
        assert_eq!(ingest.submit(event("c")).await, Ok(1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_store_answers_503_after_the_reply_timeout() {
        let (_, ingest) = slow_store(60, 5, false);
        assert_eq!(
            ingest.submit(event("a")).await,
            Err(IngestError::Timeout(Duration::from_secs(5)))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_body_stored_after_its_request_stopped_waiting_is_not_stored_again() {
        let (store, ingest) = slow_store(8, 10, false);
        // The request stops waiting after a second (as after the reply timeout, answered 503).
        assert!(
            tokio::time::timeout(Duration::from_secs(1), ingest.submit(event("late")))
                .await
                .is_err()
        );
        // The call under way stores it anyway, after the request stopped waiting.
        tokio::time::sleep(Duration::from_secs(8)).await;
        assert_eq!(store.calls.lock().unwrap().len(), 1);
        assert_eq!(lock(&ingest.copies).late_len(), 1);
        // Meta's retry of the same body: answered with its id, no second create.
        assert_eq!(ingest.submit(event("late")).await, Ok(1));
        assert_eq!(store.calls.lock().unwrap().len(), 1);
        assert_eq!(lock(&ingest.copies).late_len(), 0);
        // Another body, and a later copy of this one (Meta delivers at least once): stored.
        assert_eq!(ingest.submit(event("other")).await, Ok(2));
        assert_eq!(ingest.submit(event("late")).await, Ok(3));
        assert_eq!(sizes(&store), vec![1, 1, 1]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_copy_of_a_body_answered_503_and_still_being_stored_waits_for_that_store() {
        let (store, ingest) = slow_store(8, 5, false);
        let start = Instant::now();
        assert_eq!(
            ingest.submit(event("slow")).await,
            Err(IngestError::Timeout(Duration::from_secs(5)))
        );
        // Meta's retry a second later, the first create still under way: it gets that
        // create's answer (at 8 s), and nothing is stored twice.
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert_eq!(ingest.submit(event("slow")).await, Ok(1));
        assert!(
            start.elapsed() >= Duration::from_secs(8) && start.elapsed() < Duration::from_secs(9)
        );
        assert_eq!(sizes(&store), vec![1]);
        let copies = lock(&ingest.copies);
        assert_eq!((copies.orphans.len(), copies.late_len()), (0, 0));
    }

    #[tokio::test(start_paused = true)]
    async fn a_copy_of_a_body_answered_503_whose_store_failed_is_stored() {
        let (store, ingest) = slow_store(8, 5, true);
        assert!(ingest.submit(event("lost")).await.is_err());
        // The retry joins the failing create and is answered its error (503 again)...
        tokio::time::sleep(Duration::from_secs(1)).await;
        assert!(matches!(
            ingest.submit(event("lost")).await,
            Err(IngestError::Store(StoreError::Unavailable(_)))
        ));
        // ...and the next retry, Odoo back (and slow), stores it: answered 503 again, then
        // the one after gets the id of what was stored meanwhile.
        store.failing.store(false, Ordering::SeqCst);
        assert!(ingest.submit(event("lost")).await.is_err());
        tokio::time::sleep(Duration::from_secs(4)).await;
        assert_eq!(ingest.submit(event("lost")).await, Ok(1));
        assert_eq!(store.calls.lock().unwrap().len(), 1);
        let copies = lock(&ingest.copies);
        assert_eq!((copies.orphans.len(), copies.late_len()), (0, 0));
    }

    #[test]
    fn late_stores_forget_the_oldest_beyond_the_limit_and_after_seven_days() {
        let mut late = LateStores::default();
        let start = Instant::now();
        let digest = |i: u32| -> Digest32 { Sha256::digest(i.to_be_bytes()).into() };
        for i in 0..(LATE_MAX as u32 + 10) {
            late.remember(digest(i), i64::from(i), start);
        }
        assert_eq!(late.len(), LATE_MAX);
        assert_eq!(late.take(&digest(9)), None, "among the oldest, forgotten");
        assert_eq!(late.take(&digest(10)), Some(10));
        late.remember(digest(1), 1, start + LATE_KEEP);
        assert_eq!(late.len(), 1, "the others are 7 days old");
        assert_eq!(late.take(&digest(1)), Some(1));
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_queue_refuses_at_once() {
        let store = Arc::new(FakeStore {
            delay: Some(Duration::from_secs(1)),
            ..FakeStore::default()
        });
        let config = IngestConfig {
            max_batch: 1,
            max_in_flight: 1,
            queue_capacity: 2,
            ..IngestConfig::default()
        };
        let (ingest, _, _) = start(store.clone(), config);
        let mut handles = Vec::new();
        for i in 0..3 {
            let ingest = ingest.clone();
            handles.push(tokio::spawn(async move {
                ingest.submit(event(&format!("b{i}"))).await
            }));
            tokio::task::yield_now().await;
        }
        // One in the store, two queued: the next is refused without waiting.
        assert_eq!(ingest.submit(event("x")).await, Err(IngestError::Busy(2)));
        for h in handles {
            h.await.unwrap().unwrap();
        }
        assert_eq!(store.calls.lock().unwrap().len(), 3);
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_stores_what_is_queued_then_refuses() {
        let store = Arc::new(FakeStore {
            delay: Some(Duration::from_millis(100)),
            ..FakeStore::default()
        });
        let config = IngestConfig {
            max_batch: 1,
            max_in_flight: 1,
            ..IngestConfig::default()
        };
        let (ingest, tracker, shutdown) = start(store.clone(), config);
        let mut handles = Vec::new();
        for i in 0..3 {
            let ingest = ingest.clone();
            handles.push(tokio::spawn(async move {
                ingest.submit(event(&format!("b{i}"))).await
            }));
        }
        tokio::task::yield_now().await;
        shutdown.cancel();
        for h in handles {
            assert!(h.await.unwrap().is_ok());
        }
        assert_eq!(ingest.submit(event("late")).await, Err(IngestError::Closed));
        tracker.close();
        tracker.wait().await;
        assert_eq!(store.calls.lock().unwrap().len(), 3);
    }
}
