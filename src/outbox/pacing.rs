//! Pacing: how fast each number sends, with `governor` token buckets.
//!
//! Meta limits a business number to its throughput (80 messages/s by default, 1,000 after an
//! upgrade; over it: error 130429) and a (number, recipient) pair to about one message every 6
//! seconds (over it: 131056). The [`Pacer`] keeps, per account:
//!
//! - a token bucket at the account's current rate (`throughput_mps`, lowered after a 130429 and
//!   raised back step by step while none comes);
//! - one keyed bucket for all (account, recipient) pairs, one message per `pair_interval`, plus a
//!   rising penalty for a recipient that got a 131056 (6 s, 12 s, 24 s ..., other recipients are
//!   unaffected, as the fact sheet asks).
//!
//! The clock is tokio's ([`TokioClock`]), so the pacing can be tested under
//! `tokio::time::pause()` and the waits are plain `tokio::time::sleep`s.

use governor::clock::{Clock, Reference};
use governor::middleware::NoOpMiddleware;
use governor::nanos::Nanos;
use governor::state::keyed::HashMapStateStore;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use std::collections::HashMap;
use std::num::NonZeroU32;
use std::ops::Add;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::time::Instant;

/// A `governor` time reference on tokio's clock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct TokioInstant(Instant);

impl Add<Nanos> for TokioInstant {
    type Output = TokioInstant;

    fn add(self, other: Nanos) -> TokioInstant {
        TokioInstant(self.0 + Duration::from(other))
    }
}

impl Reference for TokioInstant {
    fn duration_since(&self, earlier: Self) -> Nanos {
        self.0.saturating_duration_since(earlier.0).into()
    }

    fn saturating_sub(&self, duration: Nanos) -> Self {
        TokioInstant(
            self.0
                .checked_sub(Duration::from(duration))
                .unwrap_or(self.0),
        )
    }
}

/// `governor`'s clock on `tokio::time::Instant` (which `tokio::time::pause()` controls).
#[derive(Debug, Clone, Copy, Default)]
pub struct TokioClock;

impl Clock for TokioClock {
    type Instant = TokioInstant;

    fn now(&self) -> TokioInstant {
        TokioInstant(Instant::now())
    }
}

type Direct = RateLimiter<NotKeyed, InMemoryState, TokioClock, NoOpMiddleware<TokioInstant>>;
type Keyed =
    RateLimiter<PairKey, HashMapStateStore<PairKey>, TokioClock, NoOpMiddleware<TokioInstant>>;

/// (account id, recipient's E.164 digits).
type PairKey = (i64, u64);

/// How the adaptive rate moves.
#[derive(Debug, Clone, Copy)]
pub struct PacingSettings {
    /// At most one message per recipient per this interval (Meta: about 6 s).
    pub pair_interval: Duration,
    /// After a 130429 the rate is multiplied by this (0.5 halves it).
    pub slowdown_factor: f64,
    /// Two 130429 closer than this count as one (many in-flight sends fail together).
    pub slowdown_debounce: Duration,
    /// While no 130429 comes for this long, the rate goes up by a tenth of the configured one.
    pub recovery_step: Duration,
    /// The longest penalty a recipient gets after repeated 131056.
    pub max_pair_penalty: Duration,
}

impl Default for PacingSettings {
    fn default() -> Self {
        PacingSettings {
            pair_interval: Duration::from_secs(6),
            slowdown_factor: 0.5,
            slowdown_debounce: Duration::from_secs(1),
            recovery_step: Duration::from_secs(10),
            max_pair_penalty: Duration::from_secs(600),
        }
    }
}

struct AccountPace {
    configured_mps: u32,
    current_mps: u32,
    limiter: Arc<Direct>,
    last_change: Instant,
    last_slowdown: Option<Instant>,
}

fn account_quota(mps: u32) -> Quota {
    let mps = NonZeroU32::new(mps.max(1)).unwrap_or(NonZeroU32::MIN);
    // A burst of a tenth of a second's worth: Meta counts over short windows.
    let burst = NonZeroU32::new((mps.get() / 10).max(1)).unwrap_or(NonZeroU32::MIN);
    Quota::per_second(mps).allow_burst(burst)
}

impl AccountPace {
    fn new(mps: u32, now: Instant) -> Self {
        AccountPace {
            configured_mps: mps,
            current_mps: mps,
            limiter: Arc::new(RateLimiter::direct_with_clock(
                account_quota(mps),
                TokioClock,
            )),
            last_change: now,
            last_slowdown: None,
        }
    }

    fn set_rate(&mut self, mps: u32, now: Instant) {
        let mps = mps.clamp(1, self.configured_mps.max(1));
        if mps != self.current_mps {
            self.current_mps = mps;
            self.limiter = Arc::new(RateLimiter::direct_with_clock(
                account_quota(mps),
                TokioClock,
            ));
        }
        self.last_change = now;
    }
}

/// Why a message may not go yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Hold {
    /// This recipient got a message (or a 131056) too recently; retry after the duration.
    Recipient(Duration),
}

/// Per-account and per-recipient pacing, shared by all send tasks.
pub struct Pacer {
    settings: PacingSettings,
    accounts: Mutex<HashMap<i64, AccountPace>>,
    pairs: Keyed,
    /// (account, recipient) → (131056 strikes, blocked until).
    penalties: Mutex<HashMap<PairKey, (u32, Instant)>>,
    /// (account, recipient) → when its slot is free again: a hint read without taking anything,
    /// so a message for a busy recipient does not use up a slot of the account while it waits.
    busy: Mutex<HashMap<PairKey, Instant>>,
    /// Per account: the queue of messages waiting for its bucket.
    queues: Mutex<HashMap<i64, Arc<tokio::sync::Mutex<()>>>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding the lock leaves plain data behind: keep using it.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn pair_key(account_id: i64, digits: &str) -> PairKey {
    (account_id, digits.parse().unwrap_or(u64::MAX))
}

impl Pacer {
    pub fn new(settings: PacingSettings) -> Self {
        let period = settings.pair_interval.max(Duration::from_millis(1));
        let quota = Quota::with_period(period)
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
            .allow_burst(NonZeroU32::MIN);
        Pacer {
            settings,
            accounts: Mutex::new(HashMap::new()),
            pairs: RateLimiter::hashmap_with_clock(quota, TokioClock),
            penalties: Mutex::new(HashMap::new()),
            busy: Mutex::new(HashMap::new()),
            queues: Mutex::new(HashMap::new()),
        }
    }

    /// The limiter of an account at its current rate; a changed `throughput_mps` (the account
    /// was upgraded to 1,000) takes effect at once.
    fn account_limiter(&self, account_id: i64, mps: u32) -> Arc<Direct> {
        let now = Instant::now();
        let mut accounts = lock(&self.accounts);
        let pace = accounts
            .entry(account_id)
            .or_insert_with(|| AccountPace::new(mps, now));
        if pace.configured_mps != mps {
            *pace = AccountPace::new(mps, now);
        } else if pace.current_mps < pace.configured_mps
            && now.duration_since(pace.last_change) >= self.settings.recovery_step
        {
            let step = (pace.configured_mps / 10).max(1);
            let next = pace.current_mps.saturating_add(step);
            pace.set_rate(next, now);
        }
        pace.limiter.clone()
    }

    /// The rate the account sends at now (messages per second).
    pub fn current_rate(&self, account_id: i64) -> Option<u32> {
        lock(&self.accounts).get(&account_id).map(|p| p.current_mps)
    }

    /// How long the recipient is still busy (a 131056 penalty, or its last message), without
    /// taking anything; `None` when it is free.
    fn recipient_wait(&self, key: PairKey, now: Instant) -> Option<Duration> {
        let penalty = {
            let mut penalties = lock(&self.penalties);
            // Keep the strikes (the next 131056 waits longer) for a while, then forget them.
            if penalties.len() > 1024 {
                let keep = self.settings.max_pair_penalty;
                penalties.retain(|_, (_, until)| *until + keep > now);
            }
            penalties.get(&key).map(|(_, until)| *until)
        };
        let busy = lock(&self.busy).get(&key).copied();
        let until = penalty.into_iter().chain(busy).max()?;
        (until > now).then(|| until - now)
    }

    /// Takes the recipient's slot if it is free; else says how long to wait.
    pub fn check_recipient(&self, account_id: i64, digits: &str) -> Result<(), Hold> {
        let key = pair_key(account_id, digits);
        let now = Instant::now();
        if let Some(wait) = self.recipient_wait(key, now) {
            return Err(Hold::Recipient(wait));
        }
        match self.pairs.check_key(&key) {
            Ok(()) => {
                lock(&self.busy).insert(key, now + self.settings.pair_interval);
                Ok(())
            }
            Err(not_until) => Err(Hold::Recipient(not_until.wait_time_from(TokioClock.now()))),
        }
    }

    /// Waits for a send slot of the account (the throughput bucket).
    pub async fn until_account_ready(&self, account_id: i64, mps: u32) {
        // One waiter at a time per account, the others queue in order behind it: each slot
        // then costs one check, however many messages wait.
        let queue = lock(&self.queues).entry(account_id).or_default().clone();
        let _turn = queue.lock().await;
        loop {
            let limiter = self.account_limiter(account_id, mps);
            match limiter.check() {
                Ok(()) => return,
                Err(not_until) => {
                    let wait = not_until.wait_time_from(TokioClock.now());
                    tokio::time::sleep(wait.max(Duration::from_micros(100))).await;
                }
            }
        }
    }

    /// Waits until the message may go: the recipient free (waiting at most `max_hold`), a slot
    /// of the account's bucket, then the recipient's slot taken right before the send, so the
    /// 6 seconds are counted between sends as Meta sees them. If another message to the same
    /// recipient took it meanwhile, the account slot is let go and a fresh one taken after the
    /// wait: a slot is only good for a send made at once, or sends held back this way would all
    /// go out together on top of the account's rate (and Meta answers 130429). `Err` gives the
    /// wait that was too long: requeue the message for then.
    pub async fn acquire(
        &self,
        account_id: i64,
        mps: u32,
        digits: &str,
        max_hold: Duration,
    ) -> Result<(), Duration> {
        let key = pair_key(account_id, digits);
        loop {
            while let Some(wait) = self.recipient_wait(key, Instant::now()) {
                if wait > max_hold {
                    return Err(wait);
                }
                tokio::time::sleep(wait).await;
            }
            self.until_account_ready(account_id, mps).await;
            match self.check_recipient(account_id, digits) {
                Ok(()) => return Ok(()),
                Err(Hold::Recipient(wait)) if wait > max_hold => return Err(wait),
                Err(Hold::Recipient(_)) => continue,
            }
        }
    }

    /// Meta answered 130429 (throughput): lower the account's rate (once per debounce window).
    pub fn throughput_exceeded(&self, account_id: i64) {
        let now = Instant::now();
        let mut accounts = lock(&self.accounts);
        let Some(pace) = accounts.get_mut(&account_id) else {
            return;
        };
        if pace
            .last_slowdown
            .is_some_and(|t| now.duration_since(t) < self.settings.slowdown_debounce)
        {
            return;
        }
        pace.last_slowdown = Some(now);
        let lowered = (f64::from(pace.current_mps) * self.settings.slowdown_factor).floor() as u32;
        pace.set_rate(lowered.max(1), now);
    }

    /// Meta answered 131056 (pair rate): hold this recipient for a rising time (the pair
    /// interval, doubled at each strike); returns that time.
    pub fn pair_rate_hit(&self, account_id: i64, digits: &str) -> Duration {
        let key = pair_key(account_id, digits);
        let now = Instant::now();
        let mut penalties = lock(&self.penalties);
        let (strikes, until) = penalties.entry(key).or_insert((0, now));
        let factor = 2u32.saturating_pow(*strikes);
        let hold = self
            .settings
            .pair_interval
            .saturating_mul(factor)
            .min(self.settings.max_pair_penalty);
        *strikes = strikes.saturating_add(1);
        *until = now + hold;
        hold
    }

    /// Drops the state of recipients not seen for a while (call it now and then).
    pub fn housekeeping(&self) {
        self.pairs.retain_recent();
        self.pairs.shrink_to_fit();
        let now = Instant::now();
        lock(&self.busy).retain(|_, until| *until > now);
        let keep = self.settings.max_pair_penalty;
        lock(&self.penalties).retain(|_, (_, until)| *until + keep > now);
    }

    /// Number of (account, recipient) pairs remembered.
    pub fn tracked_pairs(&self) -> usize {
        self.pairs.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sends `n` messages to recipients never used before (no pair-rate wait).
    async fn sent_within(pacer: &Pacer, n: usize, mps: u32) -> Duration {
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let start = Instant::now();
        for _ in 0..n {
            let i = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let digits = format!("336{i:08}");
            pacer
                .acquire(1, mps, &digits, Duration::from_secs(60))
                .await
                .unwrap();
        }
        start.elapsed()
    }

    #[tokio::test(start_paused = true)]
    async fn the_account_bucket_holds_the_configured_rate() {
        let pacer = Pacer::new(PacingSettings::default());
        // 80 mps: 8 at once (the burst), then one per 12.5 ms.
        let took = sent_within(&pacer, 808, 80).await;
        assert!(
            took >= Duration::from_millis(9_990) && took <= Duration::from_millis(10_100),
            "808 messages at 80/s took {took:?}"
        );
        assert_eq!(pacer.current_rate(1), Some(80));
    }

    #[tokio::test(start_paused = true)]
    async fn one_message_per_recipient_every_six_seconds() {
        let pacer = Pacer::new(PacingSettings::default());
        assert_eq!(pacer.check_recipient(1, "33612345678"), Ok(()));
        let Err(Hold::Recipient(wait)) = pacer.check_recipient(1, "33612345678") else {
            panic!("second message to the same recipient should wait")
        };
        assert!(wait > Duration::from_millis(5_990) && wait <= Duration::from_secs(6));
        // Another recipient, or the same recipient from another number, is not affected.
        assert_eq!(pacer.check_recipient(1, "33612345679"), Ok(()));
        assert_eq!(pacer.check_recipient(2, "33612345678"), Ok(()));

        // acquire waits when the hold is short enough ...
        let start = Instant::now();
        pacer
            .acquire(1, 80, "33612345678", Duration::from_secs(10))
            .await
            .unwrap();
        assert!(start.elapsed() >= Duration::from_millis(5_990));
        // ... and hands back the wait when it is longer than allowed.
        let err = pacer
            .acquire(1, 80, "33612345678", Duration::from_secs(1))
            .await
            .unwrap_err();
        assert!(err > Duration::from_secs(5));
    }

    #[tokio::test(start_paused = true)]
    async fn the_recipient_slot_is_taken_after_the_account_wait() {
        let pacer = Pacer::new(PacingSettings::default());
        let hold = Duration::from_secs(30);
        // 1 message/s, burst 1: the second message waits a second for the account.
        pacer.acquire(1, 1, "33612345678", hold).await.unwrap();
        pacer.acquire(1, 1, "33612345679", hold).await.unwrap();
        // ... so its six seconds start then, not when it began to wait.
        let Err(Hold::Recipient(wait)) = pacer.check_recipient(1, "33612345679") else {
            panic!("the recipient was just used")
        };
        assert!(wait > Duration::from_millis(5_990), "{wait:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_message_held_for_its_recipient_takes_a_fresh_account_slot() {
        let pacer = Arc::new(Pacer::new(PacingSettings::default()));
        let hold = Duration::from_secs(30);
        let sent = Arc::new(Mutex::new(Vec::new()));
        let start = Instant::now();
        let go = |digits: &'static str, after: Duration| {
            let (pacer, sent) = (pacer.clone(), sent.clone());
            tokio::spawn(async move {
                tokio::time::sleep(after).await;
                pacer.acquire(1, 1, digits, hold).await.unwrap();
                lock(&sent).push((start.elapsed(), digits));
            })
        };
        // 1 message/s. D takes the first slot; A and B, for the same recipient, both find it
        // free and queue for the account: A gets t = 1 s and the recipient, B gets t = 2 s,
        // finds the recipient taken and waits for it (until t = 7.5 s). C, for someone else,
        // asks at t = 7.4 s and gets a slot at once; B must then wait for the next one.
        let tasks = [
            go("33600000003", Duration::ZERO),
            go("33600000001", Duration::from_millis(1)),
            go("33600000001", Duration::from_millis(2)),
            go("33600000002", Duration::from_millis(7_400)),
        ];
        for task in tasks {
            task.await.unwrap();
        }
        let sent = lock(&sent).clone();
        assert_eq!(sent.len(), 4);
        // Whatever the order, never two sends within the account's one-second spacing.
        let mut times: Vec<Duration> = sent.iter().map(|(t, _)| *t).collect();
        times.sort();
        for pair in times.windows(2) {
            assert!(
                pair[1] - pair[0] >= Duration::from_millis(990),
                "sends too close together for 1 message/s: {sent:?}"
            );
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_busy_recipient_does_not_use_up_the_account() {
        let pacer = Pacer::new(PacingSettings::default());
        let hold = Duration::from_secs(1);
        pacer.acquire(1, 1, "33612345678", hold).await.unwrap();
        tokio::time::advance(Duration::from_secs(1)).await;
        // Busy for 5 more seconds: handed back at once, no account slot taken ...
        let err = pacer.acquire(1, 1, "33612345678", hold).await.unwrap_err();
        assert!(err > Duration::from_secs(4));
        // ... so another recipient goes without waiting.
        let start = Instant::now();
        pacer.acquire(1, 1, "33612345679", hold).await.unwrap();
        assert_eq!(start.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn throughput_errors_halve_the_rate_once_then_it_recovers() {
        let pacer = Pacer::new(PacingSettings::default());
        sent_within(&pacer, 1, 1000).await;
        pacer.throughput_exceeded(1);
        pacer.throughput_exceeded(1); // same burst: ignored
        assert_eq!(pacer.current_rate(1), Some(500));
        tokio::time::advance(Duration::from_secs(2)).await;
        pacer.throughput_exceeded(1);
        assert_eq!(pacer.current_rate(1), Some(250));

        // The lowered rate is what the bucket lets through.
        let took = sent_within(&pacer, 250 + 25, 1000).await;
        assert!(took >= Duration::from_millis(990), "{took:?}");

        // Ten seconds without 130429: +100 mps per step, back up to 1000.
        for expected in [350, 450, 550, 650, 750, 850, 950, 1000, 1000] {
            tokio::time::advance(Duration::from_secs(10)).await;
            sent_within(&pacer, 1, 1000).await;
            assert_eq!(pacer.current_rate(1), Some(expected));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_new_throughput_takes_effect_at_once() {
        let pacer = Pacer::new(PacingSettings::default());
        sent_within(&pacer, 1, 80).await;
        sent_within(&pacer, 1, 1000).await;
        assert_eq!(pacer.current_rate(1), Some(1000));
        let took = sent_within(&pacer, 1100, 1000).await;
        assert!(took <= Duration::from_millis(1_100), "{took:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn pair_rate_errors_hold_that_recipient_longer_each_time() {
        let pacer = Pacer::new(PacingSettings::default());
        assert_eq!(
            pacer.pair_rate_hit(1, "33612345678"),
            Duration::from_secs(6)
        );
        assert_eq!(
            pacer.pair_rate_hit(1, "33612345678"),
            Duration::from_secs(12)
        );
        assert_eq!(
            pacer.pair_rate_hit(1, "33612345678"),
            Duration::from_secs(24)
        );
        let Err(Hold::Recipient(wait)) = pacer.check_recipient(1, "33612345678") else {
            panic!("penalised recipient should wait")
        };
        assert_eq!(wait, Duration::from_secs(24));
        assert_eq!(pacer.check_recipient(1, "33612345679"), Ok(()));
        tokio::time::advance(Duration::from_secs(25)).await;
        assert_eq!(pacer.check_recipient(1, "33612345678"), Ok(()));
        // The rate of the account is untouched.
        assert_eq!(pacer.current_rate(1), None);
    }

    #[tokio::test(start_paused = true)]
    async fn the_penalty_is_capped() {
        let pacer = Pacer::new(PacingSettings::default());
        let mut last = Duration::ZERO;
        for _ in 0..20 {
            last = pacer.pair_rate_hit(1, "33612345678");
        }
        assert_eq!(last, Duration::from_secs(600));
    }

    #[tokio::test(start_paused = true)]
    async fn housekeeping_forgets_idle_recipients() {
        let pacer = Pacer::new(PacingSettings::default());
        for i in 0..100 {
            pacer.check_recipient(1, &format!("33612{i:06}")).unwrap();
        }
        assert_eq!(pacer.tracked_pairs(), 100);
        // governor forgets a key once its state is a full period older than a fresh one.
        tokio::time::advance(Duration::from_secs(7)).await;
        pacer.housekeeping();
        assert_eq!(pacer.tracked_pairs(), 100);
        tokio::time::advance(Duration::from_secs(6)).await;
        pacer.housekeeping();
        assert_eq!(pacer.tracked_pairs(), 0);
    }
}
