//! Unpaid invoice reminders: the schedule (croner), the rules, and the scheduler loop.
//!
//! Each account with "Send unpaid invoice reminders" on has a five-field cron schedule
//! (`unpaid_reminder_schedule`, default `0 9 * * *`) evaluated in its time zone: the account's
//! `unpaid_reminder_tz`, else the time zone of the company's address contact (Odoo 17's
//! `res.company` has no time zone of its own), else UTC. At each scheduled time the daemon
//! looks for the company's posted customer invoices that are `not_paid` or `partial` and due
//! more than `unpaid_invoice_days` days ago (in that time zone's today), and queues one
//! reminder for each, unless one was queued less than `unpaid_reminder_interval_days` days ago
//! (calendar days in that time zone). A paid invoice is never reminded: it is no longer found,
//! and the invoice loop cancels a reminder still queued when the invoice gets paid.
//!
//! The time of each account's last run is kept in Odoo (`whatsapp.cursor`, named
//! `unpaid_reminders:<account id>`). At start-up, a scheduled time missed since then (the
//! daemon was down at 9:00) makes one run at once, however many were missed. An account seen
//! for the first time has no last run: its first reminders go at its next scheduled time.
//!
//! `dedupe_key = unpaid_reminder:account.move:<id>:<n>` with `n` the reminder's number (the
//! invoice's reminders so far plus one), so a run repeated after a crash queues nothing twice;
//! `x_whatsapp_unpaid_reminder_count` is set to `n`, and the outbox writes
//! `x_whatsapp_unpaid_reminder_sent` (+ date) once it is sent.
//!
//! The scheduler ([`schedule_loop`]) reads the time from a [`Clock`] and does its I/O through
//! [`ReminderIo`], so its timing is tested under `tokio::time::pause()` with [`TokioClock`].

use super::invoices::InvoiceAccount;
use crate::invoices::Invoice;
use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use chrono_tz::Tz;
use croner::Cron;
use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The cursor name of an account's last reminder run.
pub fn cursor_name(account_id: i64) -> String {
    format!("unpaid_reminders:{account_id}")
}

/// A schedule that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("the reminder schedule '{pattern}' is not a five-field cron expression ({message}): write minute, hour, day of month, month and day of week, e.g. 0 9 * * * for every day at 9:00, in 'Reminder schedule' on the WhatsApp account")]
    Cron { pattern: String, message: String },
    #[error("'{name}' is not a time zone the daemon knows: choose one in 'Reminder time zone' on the WhatsApp account (e.g. Africa/Abidjan)")]
    TimeZone { name: String },
    #[error("the reminder schedule '{pattern}' never fires: write one that does, e.g. 0 9 * * *")]
    Never { pattern: String },
}

/// An account's reminder schedule in its time zone.
#[derive(Debug, Clone)]
pub struct Schedule {
    cron: Cron,
    pattern: String,
    tz: Tz,
}

impl Schedule {
    /// Parses a five-field cron expression (or `@daily` and the like); six fields (seconds)
    /// and years are refused.
    pub fn new(pattern: &str, tz: Tz) -> Result<Schedule, ScheduleError> {
        let cron = crate::schedule::parse(pattern).map_err(|message| ScheduleError::Cron {
            pattern: pattern.trim().to_owned(),
            message,
        })?;
        let schedule = Schedule {
            cron,
            pattern: pattern.trim().to_owned(),
            tz,
        };
        // A pattern such as "0 0 31 2 *" parses but never fires.
        if schedule.next_after(Utc::now()).is_none() {
            return Err(ScheduleError::Never {
                pattern: schedule.pattern,
            });
        }
        Ok(schedule)
    }

    /// The schedule of an account whose company's address contact has `company_tz`.
    pub fn for_account(
        account: &InvoiceAccount,
        company_tz: Option<&str>,
    ) -> Result<Schedule, ScheduleError> {
        Schedule::new(&account.schedule, zone(account.tz.as_deref(), company_tz)?)
    }

    pub fn pattern(&self) -> &str {
        &self.pattern
    }

    pub fn tz(&self) -> Tz {
        self.tz
    }

    /// The first scheduled time strictly after `t`.
    pub fn next_after(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        crate::schedule::next_after(&self.cron, self.tz, t)
    }

    /// The last scheduled time at or before `t`.
    pub fn last_until(&self, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        self.cron
            .find_previous_occurrence(&t.with_timezone(&self.tz), true)
            .ok()
            .map(|d| d.with_timezone(&Utc))
    }

    /// True when a scheduled time passed after `last_run` and by `now`: one run, however many
    /// were missed. Without a last run, nothing is due (the first run is the next scheduled
    /// time).
    pub fn due(&self, last_run: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
        match last_run {
            Some(last) => self.last_until(now).is_some_and(|fire| fire > last),
            None => false,
        }
    }

    /// The date in the schedule's time zone at `now`.
    pub fn today(&self, now: DateTime<Utc>) -> NaiveDate {
        now.with_timezone(&self.tz).date_naive()
    }

    /// The date in the schedule's time zone of a moment.
    pub fn date_of(&self, t: DateTime<Utc>) -> NaiveDate {
        t.with_timezone(&self.tz).date_naive()
    }
}

/// The reminders' time zone: the account's, else the company's, else UTC. A wrong account time
/// zone is an error (someone chose it); a wrong company one falls back to UTC.
pub fn zone(account_tz: Option<&str>, company_tz: Option<&str>) -> Result<Tz, ScheduleError> {
    if let Some(name) = account_tz.map(str::trim).filter(|n| !n.is_empty()) {
        return name.parse::<Tz>().map_err(|_| ScheduleError::TimeZone {
            name: name.to_owned(),
        });
    }
    Ok(company_tz
        .map(str::trim)
        .and_then(|n| n.parse::<Tz>().ok())
        .unwrap_or(Tz::UTC))
}

/// Days an invoice is overdue on `today` (negative: not yet due).
pub fn overdue_days(due: NaiveDate, today: NaiveDate) -> i64 {
    (today - due).num_days()
}

/// What is known of an invoice's earlier reminders.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Reminded {
    /// Reminders queued so far (any state): the next one is number `count + 1`.
    pub count: i64,
    /// The date (schedule's time zone) of the last one not cancelled.
    pub last: Option<NaiveDate>,
}

/// A reminder to queue: the invoice, its number, and how many days it is overdue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Due {
    pub invoice_id: i64,
    pub n: i64,
    pub overdue_days: i64,
}

/// Whether `invoice` gets a reminder on `today`: an unpaid posted customer invoice, due more
/// than `account.unpaid_days` days ago, with no reminder in the last
/// `account.interval_days` days.
pub fn reminder_due(
    invoice: &Invoice,
    account: &InvoiceAccount,
    today: NaiveDate,
    reminded: Reminded,
) -> Option<Due> {
    if !invoice.is_customer_invoice() || !invoice.is_unpaid() {
        return None;
    }
    let due = invoice.invoice_date_due?;
    let days = overdue_days(due, today);
    if days <= account.unpaid_days {
        return None;
    }
    if let Some(last) = reminded.last {
        if (today - last).num_days() < account.interval_days {
            return None;
        }
    }
    Some(Due {
        invoice_id: invoice.id,
        n: reminded.count + 1,
        overdue_days: days,
    })
}

/// The latest due date an invoice may have to be reminded on `today` (for the search):
/// due dates before `today - unpaid_days`.
pub fn due_before(today: NaiveDate, unpaid_days: i64) -> NaiveDate {
    today - TimeDelta::days(unpaid_days)
}

/// Where the scheduler reads the time.
pub trait Clock: Send + Sync {
    fn now(&self) -> DateTime<Utc>;
}

/// The system's wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// Wall time that moves with tokio's clock from a given start: under `tokio::time::pause()`
/// it jumps when the runtime is idle, so tests run days of schedule in milliseconds.
#[derive(Debug, Clone, Copy)]
pub struct TokioClock {
    wall: DateTime<Utc>,
    at: tokio::time::Instant,
}

impl TokioClock {
    pub fn starting_at(wall: DateTime<Utc>) -> TokioClock {
        TokioClock {
            wall,
            at: tokio::time::Instant::now(),
        }
    }
}

impl Clock for TokioClock {
    fn now(&self) -> DateTime<Utc> {
        let elapsed = tokio::time::Instant::now().saturating_duration_since(self.at);
        self.wall + TimeDelta::from_std(elapsed).unwrap_or(TimeDelta::zero())
    }
}

/// An account with reminders on, and the time zone of its company's address contact.
#[derive(Debug, Clone, PartialEq)]
pub struct ReminderAccount {
    pub account: InvoiceAccount,
    pub company_tz: Option<String>,
}

/// Why a reminder step failed.
#[derive(Debug, thiserror::Error)]
pub enum ReminderError {
    #[error("{0}")]
    Odoo(#[from] crate::odoo::OdooError),
    #[error("{0}")]
    Enqueue(#[from] crate::enqueue::EnqueueError),
    #[error("{0}")]
    Read(#[from] crate::invoices::InvoiceReadError),
}

impl ReminderError {
    pub fn is_retryable(&self) -> bool {
        match self {
            ReminderError::Odoo(e) => e.is_retryable(),
            ReminderError::Enqueue(e) => e.is_retryable(),
            ReminderError::Read(e) => e.is_retryable(),
        }
    }
}

/// What the scheduler does in Odoo (one implementation talks to Odoo; tests keep it in memory).
pub trait ReminderIo {
    /// The accounts with reminders on.
    fn accounts(&self) -> impl Future<Output = Result<Vec<ReminderAccount>, ReminderError>> + Send;
    /// The time of the account's last run, if any.
    fn last_run(
        &self,
        account_id: i64,
    ) -> impl Future<Output = Result<Option<DateTime<Utc>>, ReminderError>> + Send;
    fn save_run(
        &self,
        account_id: i64,
        at: DateTime<Utc>,
    ) -> impl Future<Output = Result<(), ReminderError>> + Send;
    /// Queues the reminders of the account's company due at `now`; returns how many.
    fn run(
        &self,
        account: &InvoiceAccount,
        schedule: &Schedule,
        now: DateTime<Utc>,
    ) -> impl Future<Output = Result<usize, ReminderError>> + Send;
}

/// How often the accounts are read again when no run is due sooner (a changed schedule or
/// switch takes effect within this).
pub const ACCOUNTS_REFRESH: Duration = Duration::from_secs(60);

/// Runs every account's reminders on its schedule until `shutdown`.
pub async fn schedule_loop<R: ReminderIo, C: Clock>(
    io: &R,
    clock: &C,
    shutdown: CancellationToken,
) {
    let mut last_runs: HashMap<i64, DateTime<Utc>> = HashMap::new();
    let mut told: HashSet<(i64, String)> = HashSet::new();
    let mut failures: u32 = 0;
    loop {
        let now = clock.now();
        let mut wake = now + TimeDelta::from_std(ACCOUNTS_REFRESH).unwrap_or(TimeDelta::minutes(1));
        match step(io, now, &mut last_runs, &mut told).await {
            Ok(next) => {
                failures = 0;
                if let Some(next) = next {
                    wake = wake.min(next);
                }
            }
            Err(e) => {
                failures = failures.saturating_add(1);
                if failures == 1 {
                    tracing::warn!(error = %e, "unpaid reminders: cannot work with Odoo; trying again until it answers");
                } else {
                    tracing::debug!(error = %e, failures, "unpaid reminders: Odoo still failing");
                }
                let backoff = Duration::from_secs(2u64.saturating_pow(failures.min(5)));
                wake = now + TimeDelta::from_std(backoff).unwrap_or(TimeDelta::seconds(30));
            }
        }
        let wait = (wake - clock.now()).to_std().unwrap_or(Duration::ZERO);
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(wait) => {}
        }
    }
    tracing::info!("unpaid reminders stopped");
}

/// One pass: the accounts whose scheduled time came are run; returns the next scheduled time.
async fn step<R: ReminderIo>(
    io: &R,
    now: DateTime<Utc>,
    last_runs: &mut HashMap<i64, DateTime<Utc>>,
    told: &mut HashSet<(i64, String)>,
) -> Result<Option<DateTime<Utc>>, ReminderError> {
    let accounts = io.accounts().await?;
    let mut next: Option<DateTime<Utc>> = None;
    for ReminderAccount {
        account,
        company_tz,
    } in accounts.iter().filter(|a| a.account.send_unpaid)
    {
        let schedule = match Schedule::for_account(account, company_tz.as_deref()) {
            Ok(s) => s,
            Err(e) => {
                if told.insert((account.id, e.to_string())) {
                    tracing::warn!(account = account.id, error = %e, "unpaid reminders: this account's reminders cannot run");
                }
                continue;
            }
        };
        let last = match last_runs.get(&account.id) {
            Some(l) => Some(*l),
            None => match io.last_run(account.id).await? {
                Some(l) => Some(l),
                None => {
                    // First time seen: nothing is missed, the first run is the next one.
                    io.save_run(account.id, now).await?;
                    Some(now)
                }
            },
        };
        if let Some(l) = last {
            last_runs.insert(account.id, l);
        }
        if schedule.due(last, now) {
            let queued = io.run(account, &schedule, now).await?;
            io.save_run(account.id, now).await?;
            last_runs.insert(account.id, now);
            tracing::info!(
                account = account.id,
                schedule = schedule.pattern(),
                tz = %schedule.tz(),
                queued,
                "unpaid reminders: run done"
            );
        }
        if let Some(fire) = schedule.next_after(now) {
            next = Some(next.map_or(fire, |n| n.min(fire)));
        }
    }
    Ok(next)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::odoo::parse_datetime;
    use std::sync::Mutex;

    fn at(s: &str) -> DateTime<Utc> {
        parse_datetime(s).unwrap()
    }

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn account(tz: Option<&str>) -> InvoiceAccount {
        InvoiceAccount {
            id: 1,
            company_id: Some(1),
            is_default: true,
            send_unpaid: true,
            unpaid_days: 7,
            interval_days: 7,
            schedule: "0 9 * * *".into(),
            tz: tz.map(str::to_owned),
            ..InvoiceAccount::default()
        }
    }

    #[test]
    fn schedules_are_five_field_crons_in_the_accounts_time_zone() {
        let kiritimati: Tz = "Pacific/Kiritimati".parse().unwrap(); // UTC+14
        let s = Schedule::new("0 9 * * *", kiritimati).unwrap();
        // 9:00 in Kiritimati is 19:00 UTC the day before.
        assert_eq!(
            s.next_after(at("2026-03-01 00:00:00")),
            Some(at("2026-03-01 19:00:00"))
        );
        assert_eq!(s.today(at("2026-03-01 19:00:00")), day("2026-03-02"));
        let pago: Tz = "Pacific/Pago_Pago".parse().unwrap(); // UTC-11
        let s = Schedule::new("0 9 * * *", pago).unwrap();
        assert_eq!(
            s.next_after(at("2026-03-01 00:00:00")),
            Some(at("2026-03-01 20:00:00"))
        );
        assert_eq!(s.today(at("2026-03-01 20:00:00")), day("2026-03-01"));
        for bad in ["0 0 9 * * *", "0 9 * *", "nonsense", "61 9 * * *", ""] {
            assert!(
                matches!(Schedule::new(bad, Tz::UTC), Err(ScheduleError::Cron { .. })),
                "{bad}"
            );
        }
        assert!(matches!(
            Schedule::new("0 0 31 2 *", Tz::UTC),
            Err(ScheduleError::Never { .. })
        ));
        assert!(Schedule::new("@daily", Tz::UTC).is_ok());
        assert!(Schedule::new("30 8 * * MON-FRI", Tz::UTC).is_ok());
    }

    #[test]
    fn the_time_zone_is_the_accounts_else_the_companys_else_utc() {
        assert_eq!(
            zone(Some("Africa/Abidjan"), Some("Europe/Paris")).unwrap(),
            Tz::Africa__Abidjan
        );
        assert_eq!(zone(None, Some("Europe/Paris")).unwrap(), Tz::Europe__Paris);
        assert_eq!(zone(None, Some("Mars/Olympus")).unwrap(), Tz::UTC);
        assert_eq!(zone(Some(" "), None).unwrap(), Tz::UTC);
        let e = zone(Some("Mars/Olympus"), None).unwrap_err();
        assert!(
            e.to_string().contains("'Mars/Olympus' is not a time zone"),
            "{e}"
        );
    }

    #[test]
    fn a_missed_run_is_due_once_and_a_first_start_waits() {
        let s = Schedule::new("0 9 * * *", Tz::UTC).unwrap();
        let now = at("2026-03-05 14:00:00");
        // Down since three days: one run (a boolean), now.
        assert!(s.due(Some(at("2026-03-02 09:00:00")), now));
        assert!(
            !s.due(Some(at("2026-03-05 09:00:00")), now),
            "ran at 9:00 today"
        );
        assert!(!s.due(Some(at("2026-03-05 09:00:01")), now));
        assert!(s.due(Some(at("2026-03-05 08:59:59")), now));
        assert!(!s.due(None, now), "first start: the next scheduled time");
    }

    fn unpaid(id: i64, due: &str) -> Invoice {
        Invoice {
            id,
            move_type: "out_invoice".into(),
            state: "posted".into(),
            payment_state: "not_paid".into(),
            amount_total: 100.0,
            amount_residual: 100.0,
            invoice_date_due: Some(day(due)),
            ..Invoice::default()
        }
    }

    #[test]
    fn due_date_boundaries_interval_and_payment() {
        let a = account(None);
        let today = day("2026-03-20");
        let none = Reminded::default();
        // Due more than 7 days ago: the 12th is 8 days ago, the 13th exactly 7.
        assert_eq!(
            reminder_due(&unpaid(1, "2026-03-12"), &a, today, none),
            Some(Due {
                invoice_id: 1,
                n: 1,
                overdue_days: 8
            })
        );
        assert_eq!(
            reminder_due(&unpaid(1, "2026-03-13"), &a, today, none),
            None
        );
        assert_eq!(
            due_before(today, 7),
            day("2026-03-13"),
            "searched: due before the 13th"
        );
        // No due date: never reminded.
        let no_date = Invoice {
            invoice_date_due: None,
            ..unpaid(1, "2026-01-01")
        };
        assert_eq!(reminder_due(&no_date, &a, today, none), None);
        // The interval: 7 days after the last reminder, not 6.
        let old = unpaid(2, "2026-02-01");
        let six = Reminded {
            count: 1,
            last: Some(day("2026-03-14")),
        };
        assert_eq!(reminder_due(&old, &a, today, six), None);
        let seven = Reminded {
            count: 1,
            last: Some(day("2026-03-13")),
        };
        assert_eq!(reminder_due(&old, &a, today, seven).map(|d| d.n), Some(2));
        // Partly paid: still reminded; paid or in payment: never.
        let partial = Invoice {
            payment_state: "partial".into(),
            ..old.clone()
        };
        assert!(reminder_due(&partial, &a, today, none).is_some());
        for state in ["paid", "in_payment", "reversed"] {
            let paid = Invoice {
                payment_state: state.into(),
                ..old.clone()
            };
            assert_eq!(reminder_due(&paid, &a, today, none), None, "{state}");
        }
        let refund = Invoice {
            move_type: "out_refund".into(),
            ..old.clone()
        };
        assert_eq!(reminder_due(&refund, &a, today, none), None);
        // N = 0: any overdue invoice (due yesterday), not one due today.
        let zero = InvoiceAccount {
            unpaid_days: 0,
            ..account(None)
        };
        assert!(reminder_due(&unpaid(3, "2026-03-19"), &zero, today, none).is_some());
        assert!(reminder_due(&unpaid(3, "2026-03-20"), &zero, today, none).is_none());
    }

    /// Reminders kept in memory, with the same rules as the Odoo side.
    struct Memory {
        accounts: Vec<ReminderAccount>,
        last: Mutex<HashMap<i64, DateTime<Utc>>>,
        invoices: Mutex<Vec<Invoice>>,
        reminded: Mutex<HashMap<i64, Reminded>>,
        /// (when, invoice, n) of every reminder queued.
        queued: Mutex<Vec<(DateTime<Utc>, i64, i64)>>,
        runs: Mutex<Vec<DateTime<Utc>>>,
    }

    impl Memory {
        fn new(tz: &str, invoices: Vec<Invoice>) -> Memory {
            Memory {
                accounts: vec![ReminderAccount {
                    account: account(Some(tz)),
                    company_tz: None,
                }],
                last: Mutex::new(HashMap::new()),
                invoices: Mutex::new(invoices),
                reminded: Mutex::new(HashMap::new()),
                queued: Mutex::new(Vec::new()),
                runs: Mutex::new(Vec::new()),
            }
        }
        fn runs(&self) -> Vec<DateTime<Utc>> {
            self.runs.lock().unwrap().clone()
        }
        fn queued(&self) -> Vec<(DateTime<Utc>, i64, i64)> {
            self.queued.lock().unwrap().clone()
        }
    }

    impl ReminderIo for Memory {
        async fn accounts(&self) -> Result<Vec<ReminderAccount>, ReminderError> {
            Ok(self.accounts.clone())
        }
        async fn last_run(&self, id: i64) -> Result<Option<DateTime<Utc>>, ReminderError> {
            Ok(self.last.lock().unwrap().get(&id).copied())
        }
        async fn save_run(&self, id: i64, at: DateTime<Utc>) -> Result<(), ReminderError> {
            self.last.lock().unwrap().insert(id, at);
            Ok(())
        }
        async fn run(
            &self,
            account: &InvoiceAccount,
            schedule: &Schedule,
            now: DateTime<Utc>,
        ) -> Result<usize, ReminderError> {
            self.runs.lock().unwrap().push(now);
            let today = schedule.today(now);
            let invoices = self.invoices.lock().unwrap().clone();
            let mut reminded = self.reminded.lock().unwrap();
            let mut n = 0;
            for i in &invoices {
                let r = reminded.get(&i.id).copied().unwrap_or_default();
                if let Some(due) = reminder_due(i, account, today, r) {
                    reminded.insert(
                        i.id,
                        Reminded {
                            count: due.n,
                            last: Some(today),
                        },
                    );
                    self.queued.lock().unwrap().push((now, i.id, due.n));
                    n += 1;
                }
            }
            Ok(n)
        }
    }

    async fn run_for(memory: &Memory, start: &str, for_hours: u64) {
        let clock = TokioClock::starting_at(at(start));
        let stop = CancellationToken::new();
        let stopper = stop.clone();
        tokio::join!(schedule_loop(memory, &clock, stop), async move {
            tokio::time::sleep(Duration::from_secs(for_hours * 3600)).await;
            stopper.cancel();
        });
    }

    #[tokio::test(start_paused = true)]
    async fn runs_at_nine_in_a_company_at_utc_plus_14() {
        let memory = Memory::new("Pacific/Kiritimati", vec![unpaid(1, "2026-02-01")]);
        // First start: no run, then every day at 9:00 local = 19:00 UTC the day before.
        run_for(&memory, "2026-03-01 00:00:00", 50).await;
        assert_eq!(
            memory.runs(),
            vec![at("2026-03-01 19:00:00"), at("2026-03-02 19:00:00")]
        );
        // One reminder (interval 7 days), on the local date 2026-03-02.
        assert_eq!(memory.queued(), vec![(at("2026-03-01 19:00:00"), 1, 1)]);
    }

    #[tokio::test(start_paused = true)]
    async fn runs_at_nine_in_a_company_at_utc_minus_11_and_respects_the_interval() {
        let memory = Memory::new("Pacific/Pago_Pago", vec![unpaid(1, "2026-02-01")]);
        run_for(&memory, "2026-03-01 00:00:00", 24 * 15).await;
        let runs = memory.runs();
        assert_eq!(runs.len(), 15);
        assert!(runs
            .iter()
            .all(|r| r.format("%H:%M:%S").to_string() == "20:00:00"));
        // Every 7 days: 1 March, 8 March, 15 March (local dates).
        let queued: Vec<(String, i64)> = memory
            .queued()
            .iter()
            .map(|(t, _, n)| (t.format("%Y-%m-%d").to_string(), *n))
            .collect();
        assert_eq!(
            queued,
            vec![
                ("2026-03-01".into(), 1),
                ("2026-03-08".into(), 2),
                ("2026-03-15".into(), 3)
            ]
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_missed_run_happens_once_at_start_up() {
        let memory = Memory::new("UTC", vec![unpaid(1, "2026-02-01")]);
        memory
            .last
            .lock()
            .unwrap()
            .insert(1, at("2026-02-25 09:00:00"));
        // Down for days; started at 14:00: one run now, the next at 9:00 tomorrow.
        run_for(&memory, "2026-03-01 14:00:00", 18).await;
        assert_eq!(memory.runs(), vec![at("2026-03-01 14:00:00")]);
        assert_eq!(memory.queued().len(), 1);
        assert_eq!(
            memory.last.lock().unwrap().get(&1).copied(),
            Some(at("2026-03-01 14:00:00"))
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_invoice_paid_in_between_gets_no_more_reminders() {
        let memory = Memory::new(
            "UTC",
            vec![unpaid(1, "2026-02-01"), unpaid(2, "2026-02-27")],
        );
        memory
            .last
            .lock()
            .unwrap()
            .insert(1, at("2026-02-28 09:00:00"));
        let clock = TokioClock::starting_at(at("2026-03-01 08:00:00"));
        let stop = CancellationToken::new();
        let stopper = stop.clone();
        tokio::join!(schedule_loop(&memory, &clock, stop), async {
            // After the first run (1 March 9:00): invoice 1 is paid.
            tokio::time::sleep(Duration::from_secs(2 * 3600)).await;
            memory.invoices.lock().unwrap()[0].payment_state = "paid".into();
            tokio::time::sleep(Duration::from_secs(20 * 24 * 3600)).await;
            stopper.cancel();
        });
        let queued: Vec<(String, i64, i64)> = memory
            .queued()
            .iter()
            .map(|(t, id, n)| (t.format("%Y-%m-%d").to_string(), *id, *n))
            .collect();
        // Invoice 1 once, before it was paid; invoice 2 (due 27 Feb) from 7 March (8 days
        // overdue), then every 7 days.
        assert_eq!(
            queued,
            vec![
                ("2026-03-01".into(), 1, 1),
                ("2026-03-07".into(), 2, 1),
                ("2026-03-14".into(), 2, 2),
                ("2026-03-21".into(), 2, 3),
            ]
        );
    }
}
