//! Send windows: when a recipient may get a campaign message, in the recipient's own time.
//!
//! A window is `send_window_start`..`send_window_end` (hours of the day, `9.5` = 9:30) on every
//! day, or only on weekdays (`send_on_weekends` off: Saturday and Sunday are skipped), read in
//! a time zone (the partner's `tz`, else the company's, per the campaign's `timezone_rule`). A
//! window whose start is after its end runs across midnight (22:00 → 02:00: the evening of one
//! day and the early morning of the next; each part belongs to the day it is on for the
//! weekend rule). [`next_opening`] says whether now is inside, else when the window next opens,
//! as an instant: on a day when clocks jump forward over the opening hour, the window opens at
//! the first local time that exists after it; on a day when an hour repeats, at the first of
//! the two.

use chrono::{
    DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc, Weekday,
};
use chrono_tz::Tz;

/// A campaign's send window.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    /// Minutes after local midnight at which sending starts (0..=1440).
    pub start_minute: u32,
    /// Minutes after local midnight at which it stops (0..=1440).
    pub end_minute: u32,
    pub weekends: bool,
}

impl Window {
    /// From the campaign's fields (hours as floats, e.g. `9.5`). Hours are clamped to 0..=24.
    pub fn from_hours(start: f64, end: f64, weekends: bool) -> Window {
        let minute = |h: f64| -> u32 {
            if h.is_finite() {
                (h.clamp(0.0, 24.0) * 60.0).round() as u32
            } else {
                0
            }
        };
        Window {
            start_minute: minute(start),
            end_minute: minute(end),
            weekends,
        }
    }

    /// Every minute of every day.
    pub fn always() -> Window {
        Window {
            start_minute: 0,
            end_minute: 1440,
            weekends: true,
        }
    }

    /// The open parts of one day, as (from, to) minutes after its midnight.
    fn parts(&self) -> Vec<(u32, u32)> {
        let (s, e) = (self.start_minute, self.end_minute);
        if s < e {
            vec![(s, e)]
        } else if s > e {
            // Across midnight: the early morning up to the end, the evening from the start.
            let mut parts = Vec::new();
            if e > 0 {
                parts.push((0, e));
            }
            if s < 1440 {
                parts.push((s, 1440));
            }
            parts
        } else {
            Vec::new()
        }
    }

    /// Open for sending at all (a window of zero length never opens).
    pub fn is_empty(&self) -> bool {
        self.parts().is_empty()
    }
}

/// Whether to send now, or when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Opening {
    Now,
    At(DateTime<Utc>),
    /// The window never opens (zero length).
    Never,
}

/// The time zone of a recipient: the partner's if it names one, else the company's, else UTC.
/// With `company_rule` (the campaign's "Company's time zone"), the partner's is ignored.
pub fn zone(partner_tz: Option<&str>, company_tz: Option<&str>, company_rule: bool) -> Tz {
    let parse = |name: Option<&str>| name.and_then(|n| n.trim().parse::<Tz>().ok());
    let partner = if company_rule {
        None
    } else {
        parse(partner_tz)
    };
    partner.or_else(|| parse(company_tz)).unwrap_or(Tz::UTC)
}

/// The instant of a local date and minute in `tz`: the earlier of two in a repeated hour, the
/// first existing minute after it in a skipped hour.
fn instant(tz: Tz, day: NaiveDate, minute: u32) -> DateTime<Utc> {
    let local: NaiveDateTime = day.and_time(NaiveTime::MIN) + Duration::minutes(i64::from(minute));
    let mut probe = local;
    // A gap lasts at most a few hours (usually one); walk forward a minute at a time.
    for _ in 0..(6 * 60) {
        if let Some(t) = tz.from_local_datetime(&probe).earliest() {
            return t.with_timezone(&Utc);
        }
        probe += Duration::minutes(1);
    }
    // Not reachable with real zones; take the UTC reading rather than fail.
    Utc.from_utc_datetime(&local)
}

fn is_weekend(day: NaiveDate) -> bool {
    matches!(day.weekday(), Weekday::Sat | Weekday::Sun)
}

/// Whether `now` is inside the window in `tz`, else the next instant it opens.
pub fn next_opening(window: &Window, tz: Tz, now: DateTime<Utc>) -> Opening {
    let parts = window.parts();
    if parts.is_empty() {
        return Opening::Never;
    }
    let today = now.with_timezone(&tz).date_naive();
    // From yesterday (an across-midnight part of today's early morning is covered by today's
    // own (0, end) part; yesterday is only here for zones far from UTC) to 9 days ahead: a
    // week always has an open day.
    let mut day = today - Duration::days(1);
    for _ in 0..10 {
        if window.weekends || !is_weekend(day) {
            for &(from, to) in &parts {
                let open = instant(tz, day, from);
                let close = instant(tz, day, to);
                if now < open {
                    return Opening::At(open);
                }
                if now < close {
                    return Opening::Now;
                }
            }
        }
        day += Duration::days(1);
    }
    Opening::Never
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn tz(name: &str) -> Tz {
        name.parse().unwrap()
    }

    #[test]
    fn inside_and_outside_a_day_window_in_several_zones() {
        let w = Window::from_hours(9.0, 19.0, true);
        // 10:00 UTC on Wednesday 2025-01-15.
        let now = utc("2025-01-15T10:00:00Z");
        assert_eq!(next_opening(&w, tz("Africa/Abidjan"), now), Opening::Now);
        assert_eq!(next_opening(&w, tz("Europe/Paris"), now), Opening::Now); // 11:00
                                                                             // New York: 05:00 → opens 09:00 EST = 14:00 UTC.
        assert_eq!(
            next_opening(&w, tz("America/New_York"), now),
            Opening::At(utc("2025-01-15T14:00:00Z"))
        );
        // Tokyo: 19:00 → closed; opens tomorrow 09:00 JST = 00:00 UTC on the 16th.
        assert_eq!(
            next_opening(&w, tz("Asia/Tokyo"), now),
            Opening::At(utc("2025-01-16T00:00:00Z"))
        );
        // Kolkata (+05:30) with a half-hour window start: 15:30 local, inside 9:30-16:00.
        let half = Window::from_hours(9.5, 16.0, true);
        assert_eq!(next_opening(&half, tz("Asia/Kolkata"), now), Opening::Now);
        // Auckland (+13 in January): 23:00 → opens 09:30 on the 16th = 20:30 UTC on the 15th.
        assert_eq!(
            next_opening(&half, tz("Pacific/Auckland"), now),
            Opening::At(utc("2025-01-15T20:30:00Z"))
        );
    }

    #[test]
    fn the_end_is_excluded_and_the_start_included() {
        let w = Window::from_hours(9.0, 19.0, true);
        let paris = tz("Europe/Paris");
        assert_eq!(
            next_opening(&w, paris, utc("2025-01-15T08:00:00Z")),
            Opening::Now
        );
        assert_eq!(
            next_opening(&w, paris, utc("2025-01-15T18:00:00Z")),
            Opening::At(utc("2025-01-16T08:00:00Z"))
        );
    }

    #[test]
    fn weekends_are_skipped_in_the_recipients_own_calendar() {
        let w = Window::from_hours(9.0, 19.0, false);
        // Friday 2025-01-17 20:00 in Paris → Monday 09:00 (08:00 UTC).
        assert_eq!(
            next_opening(&w, tz("Europe/Paris"), utc("2025-01-17T19:00:00Z")),
            Opening::At(utc("2025-01-20T08:00:00Z"))
        );
        // Saturday noon UTC is Saturday evening in Tokyo, still Saturday morning in Hawaii:
        // both wait for their own Monday.
        let sat = utc("2025-01-18T12:00:00Z");
        assert_eq!(
            next_opening(&w, tz("Asia/Tokyo"), sat),
            Opening::At(utc("2025-01-20T00:00:00Z"))
        );
        assert_eq!(
            next_opening(&w, tz("Pacific/Honolulu"), sat),
            Opening::At(utc("2025-01-20T19:00:00Z"))
        );
        // Sunday 23:30 UTC is already Monday 08:30 in Tokyo: opens at 09:00 there.
        assert_eq!(
            next_opening(&w, tz("Asia/Tokyo"), utc("2025-01-19T23:30:00Z")),
            Opening::At(utc("2025-01-20T00:00:00Z"))
        );
        // With weekends allowed, Saturday is a day like another.
        let all = Window::from_hours(9.0, 19.0, true);
        assert_eq!(next_opening(&all, tz("Europe/Paris"), sat), Opening::Now);
    }

    #[test]
    fn windows_across_midnight() {
        let w = Window::from_hours(22.0, 2.0, true);
        let paris = tz("Europe/Paris");
        // 23:30 Paris: inside (evening part).
        assert_eq!(
            next_opening(&w, paris, utc("2025-01-15T22:30:00Z")),
            Opening::Now
        );
        // 01:30 Paris the next day: inside (morning part).
        assert_eq!(
            next_opening(&w, paris, utc("2025-01-16T00:30:00Z")),
            Opening::Now
        );
        // 03:00 Paris: opens at 22:00 the same day.
        assert_eq!(
            next_opening(&w, paris, utc("2025-01-16T02:00:00Z")),
            Opening::At(utc("2025-01-16T21:00:00Z"))
        );
        // Weekdays only: Friday 23:00 is open, Saturday 01:00 is not; next is Monday 00:00.
        let weekdays = Window::from_hours(22.0, 2.0, false);
        assert_eq!(
            next_opening(&weekdays, paris, utc("2025-01-17T22:00:00Z")),
            Opening::Now
        );
        assert_eq!(
            next_opening(&weekdays, paris, utc("2025-01-18T00:00:00Z")),
            Opening::At(utc("2025-01-19T23:00:00Z"))
        );
        // A whole-day window is always open; a zero-length one never.
        assert_eq!(
            next_opening(&Window::always(), paris, utc("2025-01-18T03:00:00Z")),
            Opening::Now
        );
        assert_eq!(
            next_opening(
                &Window::from_hours(9.0, 9.0, true),
                paris,
                utc("2025-01-18T03:00:00Z")
            ),
            Opening::Never
        );
    }

    #[test]
    fn daylight_saving_changes() {
        let paris = tz("Europe/Paris");
        let w = Window::from_hours(9.0, 19.0, true);
        // Spring forward on Sunday 2025-03-30: 09:00 is already CEST (+2) = 07:00 UTC.
        assert_eq!(
            next_opening(&w, paris, utc("2025-03-29T20:00:00Z")),
            Opening::At(utc("2025-03-30T07:00:00Z"))
        );
        // The day before it was +1: 09:00 = 08:00 UTC.
        assert_eq!(
            next_opening(&w, paris, utc("2025-03-28T20:00:00Z")),
            Opening::At(utc("2025-03-29T08:00:00Z"))
        );
        // An opening inside the skipped hour (02:30 does not exist on that day): 03:00 CEST.
        let night = Window::from_hours(2.5, 5.0, true);
        assert_eq!(
            next_opening(&night, paris, utc("2025-03-29T23:00:00Z")),
            Opening::At(utc("2025-03-30T01:00:00Z"))
        );
        // Fall back on 2025-10-26: 02:30 happens twice; the first (CEST, 00:30 UTC) counts.
        assert_eq!(
            next_opening(&night, paris, utc("2025-10-25T22:00:00Z")),
            Opening::At(utc("2025-10-26T00:30:00Z"))
        );
        // New York springs forward on 2025-03-09: 09:00 EDT = 13:00 UTC (not 14:00).
        assert_eq!(
            next_opening(&w, tz("America/New_York"), utc("2025-03-09T06:00:00Z")),
            Opening::At(utc("2025-03-09T13:00:00Z"))
        );
        // Southern hemisphere: Sydney leaves DST on 2025-04-06 (+11 → +10).
        assert_eq!(
            next_opening(&w, tz("Australia/Sydney"), utc("2025-04-05T12:00:00Z")),
            Opening::At(utc("2025-04-05T23:00:00Z"))
        );
    }

    #[test]
    fn the_zone_is_the_partners_else_the_companys_else_utc() {
        assert_eq!(
            zone(Some("Asia/Tokyo"), Some("Europe/Paris"), false),
            tz("Asia/Tokyo")
        );
        assert_eq!(
            zone(Some("Asia/Tokyo"), Some("Europe/Paris"), true),
            tz("Europe/Paris")
        );
        assert_eq!(zone(None, Some("Europe/Paris"), false), tz("Europe/Paris"));
        assert_eq!(
            zone(Some("Mars/Olympus"), Some("Europe/Paris"), false),
            tz("Europe/Paris")
        );
        assert_eq!(zone(None, None, false), Tz::UTC);
    }
}
