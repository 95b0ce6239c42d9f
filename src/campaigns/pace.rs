//! How many messages a campaign may queue now: its throttle, its daily cap, and "just in time".
//!
//! A campaign's rate is its `throttle_per_minute`, never above its number's own throughput
//! (`throughput_mps`). Messages are created just in time: a [`Pace`] holds a bucket of at most
//! `ahead` seconds of sending at that rate, refilled continuously, and the messages the
//! campaign already has waiting in the queue count against it. So a paused campaign has at
//! most a few seconds of messages queued, and a 100,000-recipient campaign never fills the
//! outbox. The daily cap (`daily_cap`, 0 = none) counts the messages queued since the last
//! midnight in the company's time zone; at the cap the campaign waits for the next day.

use chrono::{DateTime, Duration as TimeDelta, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use std::time::Duration;
use tokio::time::Instant;

/// Messages per second a campaign may send: its throttle, at most the account's throughput.
pub fn rate_per_second(throttle_per_minute: i64, account_mps: i64) -> f64 {
    let throttle = throttle_per_minute.max(1) as f64 / 60.0;
    if account_mps > 0 {
        throttle.min(account_mps as f64)
    } else {
        throttle
    }
}

/// One campaign's bucket.
#[derive(Debug, Clone)]
pub struct Pace {
    rate: f64,
    capacity: f64,
    tokens: f64,
    at: Instant,
    /// (day start, messages queued since) for the daily cap.
    day: Option<(DateTime<Utc>, u64)>,
}

impl Pace {
    /// A bucket at `rate` messages a second holding `ahead` of sending (at least one message).
    /// It starts with one tick's worth, not full: a restart does not burst.
    pub fn new(rate: f64, ahead: Duration, now: Instant) -> Pace {
        let capacity = (rate * ahead.as_secs_f64()).max(1.0);
        Pace {
            rate,
            capacity,
            tokens: rate.min(capacity),
            at: now,
            day: None,
        }
    }

    /// Changes the rate (the throttle or the account's throughput was edited).
    pub fn set_rate(&mut self, rate: f64, ahead: Duration, now: Instant) {
        if (rate - self.rate).abs() > f64::EPSILON {
            self.refill(now);
            self.rate = rate;
            self.capacity = (rate * ahead.as_secs_f64()).max(1.0);
            self.tokens = self.tokens.min(self.capacity);
        }
    }

    pub fn rate(&self) -> f64 {
        self.rate
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.rate).min(self.capacity);
        self.at = now;
    }

    /// The daily count is known for the day starting at `day_start`.
    pub fn knows_day(&self, day_start: DateTime<Utc>) -> bool {
        self.day.is_some_and(|(d, _)| d == day_start)
    }

    /// Sets the count of messages queued since `day_start` (read from Odoo).
    pub fn set_day(&mut self, day_start: DateTime<Utc>, queued: u64) {
        self.day = Some((day_start, queued));
    }

    /// How many messages may be queued now, with `waiting` of this campaign's messages still in
    /// the queue and a daily cap of `daily_cap` (0: none).
    pub fn allowance(&mut self, now: Instant, waiting: u64, daily_cap: u64) -> u64 {
        self.refill(now);
        let room = (self.capacity - waiting as f64).max(0.0);
        let mut n = self.tokens.min(room).floor().max(0.0) as u64;
        if daily_cap > 0 {
            let today = self.day.map_or(0, |(_, c)| c);
            n = n.min(daily_cap.saturating_sub(today));
        }
        n
    }

    /// How many messages may be queued now when the account's own pace (the outbox's) is the
    /// slower one (the throttle is at or above the number's throughput): the queue is kept
    /// `ahead` seconds full whatever was queued before, so the outbox never waits for the next
    /// round (queuing exactly the account's rate each round lost 2-5 % of it to the rounds'
    /// jitter); the daily cap still holds.
    pub fn allowance_unthrottled(&mut self, now: Instant, waiting: u64, daily_cap: u64) -> u64 {
        self.refill(now);
        let mut n = (self.capacity - waiting as f64).max(0.0).floor() as u64;
        if daily_cap > 0 {
            let today = self.day.map_or(0, |(_, c)| c);
            n = n.min(daily_cap.saturating_sub(today));
        }
        n
    }

    /// `n` messages were queued.
    pub fn took(&mut self, n: u64) {
        self.tokens = (self.tokens - n as f64).max(0.0);
        if let Some((_, count)) = &mut self.day {
            *count += n;
        }
    }

    /// The daily cap is reached for the day this pace counts.
    pub fn capped(&self, daily_cap: u64) -> bool {
        daily_cap > 0 && self.day.is_some_and(|(_, c)| c >= daily_cap)
    }
}

/// The last midnight at or before `now` in `tz`, and the next one.
pub fn day_bounds(tz: Tz, now: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
    let day = now.with_timezone(&tz).date_naive();
    let midnight = |d: chrono::NaiveDate| {
        let local = d.and_time(NaiveTime::MIN);
        // Midnight may not exist (a few zones change clocks at 00:00): take the first instant.
        (0..180)
            .find_map(|m| {
                tz.from_local_datetime(&(local + TimeDelta::minutes(m)))
                    .earliest()
            })
            .map_or_else(|| Utc.from_utc_datetime(&local), |t| t.with_timezone(&Utc))
    };
    (midnight(day), midnight(day + TimeDelta::days(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rate_is_the_throttle_below_the_numbers_throughput() {
        assert_eq!(rate_per_second(60, 80), 1.0);
        assert_eq!(rate_per_second(600_000, 80), 80.0);
        assert_eq!(rate_per_second(120, 0), 2.0);
        assert_eq!(rate_per_second(0, 80), 1.0 / 60.0);
    }

    #[tokio::test]
    async fn without_a_binding_throttle_the_queue_is_kept_a_few_seconds_ahead_at_once() {
        let now = Instant::now();
        // 1,000 a second (the number's rate), 5 seconds ahead: 5,000 may wait in the queue.
        let mut pace = Pace::new(1000.0, Duration::from_secs(5), now);
        assert_eq!(pace.allowance_unthrottled(now, 0, 0), 5000);
        pace.took(5000);
        assert_eq!(
            pace.allowance_unthrottled(now, 4200, 0),
            800,
            "what was sent is topped up"
        );
        assert_eq!(pace.allowance_unthrottled(now, 6000, 0), 0);
        pace.set_day(Utc::now(), 9_500);
        assert_eq!(
            pace.allowance_unthrottled(now, 0, 10_000),
            500,
            "the daily cap holds"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn the_throttle_refills_with_time_and_keeps_a_few_seconds_ahead() {
        let start = Instant::now();
        // 600 a minute = 10 a second, 5 seconds ahead.
        let mut pace = Pace::new(10.0, Duration::from_secs(5), start);
        assert_eq!(pace.allowance(Instant::now(), 0, 0), 10);
        pace.took(10);
        assert_eq!(pace.allowance(Instant::now(), 10, 0), 0);
        tokio::time::advance(Duration::from_millis(500)).await;
        assert_eq!(pace.allowance(Instant::now(), 10, 0), 5);
        pace.took(5);
        // A long idle time fills the bucket to five seconds' worth, no more.
        tokio::time::advance(Duration::from_secs(3600)).await;
        assert_eq!(pace.allowance(Instant::now(), 0, 0), 50);
        // Messages still waiting in the queue count against it.
        assert_eq!(pace.allowance(Instant::now(), 45, 0), 5);
        assert_eq!(pace.allowance(Instant::now(), 80, 0), 0);
        // Over a minute, no more than the throttle (plus the first tick) is handed out.
        let mut pace = Pace::new(10.0, Duration::from_secs(5), Instant::now());
        let mut total = 0;
        for _ in 0..60 {
            let n = pace.allowance(Instant::now(), 0, 0);
            pace.took(n);
            total += n;
            tokio::time::advance(Duration::from_secs(1)).await;
        }
        assert_eq!(total, 600);
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_throttle_sends_one_message_at_a_time() {
        // 6 a minute: one every ten seconds.
        let mut pace = Pace::new(0.1, Duration::from_secs(5), Instant::now());
        assert_eq!(pace.allowance(Instant::now(), 0, 0), 0);
        tokio::time::advance(Duration::from_secs(9)).await;
        assert_eq!(pace.allowance(Instant::now(), 0, 0), 1);
        pace.took(1);
        tokio::time::advance(Duration::from_secs(5)).await;
        assert_eq!(pace.allowance(Instant::now(), 0, 0), 0);
        tokio::time::advance(Duration::from_secs(5)).await;
        assert_eq!(pace.allowance(Instant::now(), 0, 0), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn the_daily_cap_stops_at_its_count_until_the_next_day() {
        let mut pace = Pace::new(100.0, Duration::from_secs(5), Instant::now());
        let day = DateTime::parse_from_rfc3339("2025-01-15T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        assert!(!pace.knows_day(day));
        pace.set_day(day, 95);
        assert!(pace.knows_day(day));
        assert_eq!(pace.allowance(Instant::now(), 0, 100), 5);
        pace.took(5);
        assert!(pace.capped(100));
        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(pace.allowance(Instant::now(), 0, 100), 0);
        // No cap: the bucket alone.
        assert_eq!(pace.allowance(Instant::now(), 0, 0), 500);
        // A new day starts from the count read for it.
        let next = day + TimeDelta::days(1);
        pace.set_day(next, 0);
        assert!(!pace.capped(100));
        assert_eq!(pace.allowance(Instant::now(), 0, 100), 100);
    }

    #[test]
    fn days_start_at_local_midnight() {
        let paris: Tz = "Europe/Paris".parse().unwrap();
        let now = DateTime::parse_from_rfc3339("2025-03-30T12:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let (start, end) = day_bounds(paris, now);
        assert_eq!(start.to_rfc3339(), "2025-03-29T23:00:00+00:00");
        // The spring-forward day is 23 hours long.
        assert_eq!(end.to_rfc3339(), "2025-03-30T22:00:00+00:00");
    }
}
