//! Five-field cron schedules (minute, hour, day of month, month, day of week, or `@daily` and
//! the like), as users type them, with croner. Seconds and years are refused. Shared by the
//! unpaid reminders and the housekeeping.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use croner::parser::{CronParser, Seconds, Year};
use croner::Cron;

/// Parses a five-field cron expression; the error is croner's, in words.
pub fn parse(pattern: &str) -> Result<Cron, String> {
    CronParser::builder()
        .seconds(Seconds::Disallowed)
        .year(Year::Disallowed)
        .build()
        .parse(pattern.trim())
        .map_err(|e| e.to_string())
}

/// The first time of `cron` in `tz` strictly after `t`.
pub fn next_after(cron: &Cron, tz: Tz, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
    cron.find_next_occurrence(&t.with_timezone(&tz), false)
        .ok()
        .map(|d| d.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn five_fields_only_and_the_next_time_in_the_zone() {
        assert!(parse("30 3 * * *").is_ok());
        assert!(parse("@hourly").is_ok());
        assert!(parse("0 30 3 * * *").is_err(), "seconds refused");
        assert!(parse("every day").is_err());
        let cron = parse("30 3 * * *").unwrap();
        let t = Utc.with_ymd_and_hms(2026, 12, 6, 12, 0, 0).unwrap();
        assert_eq!(
            next_after(&cron, Tz::UTC, t),
            Some(Utc.with_ymd_and_hms(2026, 12, 7, 3, 30, 0).unwrap())
        );
        // 03:30 in Paris is 02:30 UTC in winter.
        assert_eq!(
            next_after(&cron, chrono_tz::Europe::Paris, t),
            Some(Utc.with_ymd_and_hms(2026, 12, 7, 2, 30, 0).unwrap())
        );
    }
}
