use super::*;
use chrono::TimeZone;

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap()
}

fn account(id: i64, waba: Option<&str>) -> Account {
    let mut a = Account::from_record(&json!({"id": id, "name": format!("Number {id}")})).unwrap();
    a.waba_id = waba.map(str::to_owned);
    a.messaging_limit = Some("TIER_250".into());
    a
}

#[test]
fn tiers_in_every_shape() {
    for (tier, limit) in [
        ("TIER_250", Some(250)),
        ("TIER_1K", Some(1_000)),
        ("TIER_2K", Some(2_000)),
        ("TIER_10K", Some(10_000)),
        ("TIER_100K", Some(100_000)),
        (" tier_2k ", Some(2_000)),
        ("2000", Some(2_000)),
        ("2,000", None),
        ("TIER 2K", None),
        ("250", Some(250)),
        ("TIER_UNLIMITED", None),
        ("UNLIMITED", None),
        ("", None),
        ("   ", None),
        ("TIER_0", None),
        ("TIER_", None),
        ("TIER_ABC", None),
        ("{\"foo\":1}", None),
        ("99999999K", None),
    ] {
        assert_eq!(tier_limit(tier), limit, "{tier:?}");
    }
    let mut a = account(1, None);
    a.messaging_limit = None;
    assert_eq!(account_limit(&a), None);
    a.messaging_limit = Some("TIER_2K".into());
    assert_eq!(account_limit(&a), Some(2_000));
}

#[test]
fn groups_follow_the_waba_and_keys_the_digits() {
    assert_eq!(group_of(&account(1, Some("W1"))), "waba:W1");
    assert_eq!(group_of(&account(2, Some(" "))), "account:2");
    assert_eq!(group_of(&account(3, None)), "account:3");
    assert_eq!(
        recipient_key(Some("+33 6 12"), Some("999")),
        Some("33612".into())
    );
    assert_eq!(recipient_key(None, Some("22507")), Some("22507".into()));
    assert_eq!(recipient_key(Some("+"), None), None);
}

#[test]
fn rows_decode_and_odd_rows_count_for_nothing() {
    let r = Reach::from_record(
        &json!({"id": 1, "account_id": [4, "Main"], "to_e164": false,
        "wa_id": "2250700000001", "sent_at": "2026-03-01 10:00:00"}),
    )
    .unwrap();
    assert_eq!(r.account_id, 4);
    assert_eq!(r.recipient, "2250700000001");
    assert_eq!(
        r.sent_at,
        Utc.with_ymd_and_hms(2026, 3, 1, 10, 0, 0).unwrap()
    );
    assert_eq!(
        Reach::from_record(&json!({"id": 2, "account_id": 4, "to_e164": "+1", "sent_at": false})),
        None
    );
    let d = reach_domain(now(), &[4, 5]).to_value();
    assert_eq!(d[2], json!(["sent_at", ">", "2026-02-28 12:00:00"]));
    assert_eq!(d[3], json!(["account_id", "in", [4, 5]]));
}

/// `n` customers reached by account 1, the oldest 23 hours ago, then one a minute.
fn ledger_with(n: usize, accounts: &HashMap<i64, Account>) -> Ledger {
    let rows: Vec<Reach> = (0..n)
        .map(|i| Reach {
            account_id: 1,
            recipient: format!("3361000{i:04}"),
            // The oldest was reached 23 hours ago, the others later.
            sent_at: now() - TimeDelta::hours(23) + TimeDelta::minutes(i as i64),
        })
        .collect();
    let mut ledger = Ledger::default();
    ledger.replace(&rows, accounts, now());
    ledger
}

#[test]
fn a_new_customer_waits_once_the_group_reached_its_limit() {
    let one = account(1, Some("W"));
    let two = account(2, Some("W"));
    let other = account(3, Some("X"));
    let accounts: HashMap<i64, Account> = [(1, one.clone()), (2, two.clone()), (3, other.clone())]
        .into_iter()
        .collect();
    let mut ledger = ledger_with(250, &accounts);
    assert_eq!(
        ledger.count(&two, now()),
        250,
        "the numbers of a WABA share the count"
    );

    // Already reached: always sent, from any number of the group.
    assert_eq!(
        ledger.decide(&two, 250, "33610000017", now()),
        Decision::Send { new: false }
    );
    // A new customer: held until the oldest leaves the 24 hours (in one hour).
    assert_eq!(
        ledger.decide(&one, 250, "33699999999", now()),
        Decision::Hold {
            limit: 250,
            until: now() + TimeDelta::hours(1)
        }
    );
    // Another group is not concerned; a higher tier leaves room.
    assert_eq!(
        ledger.decide(&other, 250, "33699999999", now()),
        Decision::Send { new: true }
    );
    assert_eq!(
        ledger.decide(&one, 2_000, "33699999999", now()),
        Decision::Send { new: true }
    );
    // An hour later the oldest left: one place is free.
    let later = now() + TimeDelta::hours(1) + TimeDelta::seconds(1);
    assert_eq!(
        ledger.decide(&one, 250, "33699999999", later),
        Decision::Send { new: true }
    );
    assert_eq!(ledger.count(&one, later), 249);
}

#[test]
fn reservations_count_between_reads_and_failed_sends_give_them_back() {
    let one = account(1, Some("W"));
    let accounts: HashMap<i64, Account> = [(1, one.clone())].into_iter().collect();
    let mut ledger = ledger_with(248, &accounts);
    for who in ["33700000001", "33700000002"] {
        assert_eq!(
            ledger.decide(&one, 250, who, now()),
            Decision::Send { new: true }
        );
        ledger.reserve(&one, who, now());
    }
    assert!(matches!(
        ledger.decide(&one, 250, "33700000003", now()),
        Decision::Hold { .. }
    ));
    // A read of Odoo that does not have the two sends yet keeps them counted.
    let rows: Vec<Reach> = (0..248)
        .map(|i| Reach {
            account_id: 1,
            recipient: format!("3361000{i:04}"),
            sent_at: now() - TimeDelta::hours(23),
        })
        .collect();
    ledger.replace(&rows, &accounts, now());
    assert_eq!(ledger.count(&one, now()), 250);
    // Once Odoo has one of them, it is counted once.
    let mut with_one = rows.clone();
    with_one.push(Reach {
        account_id: 1,
        recipient: "33700000001".into(),
        sent_at: now(),
    });
    ledger.replace(&with_one, &accounts, now());
    assert_eq!(ledger.count(&one, now()), 250);
    // The second send failed for good: its place is free again.
    ledger.release(&one, "33700000002", now());
    assert_eq!(ledger.count(&one, now()), 249);
    assert_eq!(
        ledger.decide(&one, 250, "33700000003", now()),
        Decision::Send { new: true }
    );
}

#[test]
fn the_help_says_the_limit_the_time_and_how_to_raise_it() {
    let help = hold_help(250, &account(1, Some("W1")), now(), Lang::En);
    assert!(
        help.contains("daily limit of 250 unique customers"),
        "{help}"
    );
    assert!(help.contains("outside a conversation window"), "{help}");
    assert!(help.contains("after 2026-03-01 12:00:00 UTC"), "{help}");
    assert!(help.contains("WhatsApp Business Account W1"), "{help}");
    assert!(help.contains("verify the business"), "{help}");
    assert!(help.contains("quality rating"), "{help}");
    let aide = hold_help(250, &account(1, Some("W1")), now(), Lang::Fr);
    assert!(
        aide.contains("limite quotidienne de Meta de 250 clients uniques"),
        "{aide}"
    );
    assert!(aide.contains("après 2026-03-01 12:00:00 UTC"), "{aide}");
    assert!(aide.contains("compte WhatsApp Business W1"), "{aide}");
}

#[test]
fn the_hold_time_follows_the_customers_who_leave_the_24_hours() {
    let a = account(1, Some("W"));
    let accounts: HashMap<i64, Account> = [(1, a.clone())].into_iter().collect();
    let reached = |recipient: &str, hours: i64| Reach {
        account_id: 1,
        recipient: recipient.into(),
        sent_at: now() + TimeDelta::hours(hours),
    };
    let rows = vec![reached("1", 0), reached("2", 1), reached("3", 2)];
    let mut ledger = Ledger::default();
    ledger.replace(&rows, &accounts, now() + TimeDelta::hours(2));
    let first = ledger.decide(&a, 2, "4", now() + TimeDelta::hours(3));
    assert_eq!(
        first,
        Decision::Hold {
            limit: 2,
            until: now() + TimeDelta::hours(24)
        }
    );
    // Customer 1 leaves the 24 hours; still two counted, so the next place frees with 2.
    let later = ledger.decide(
        &a,
        2,
        "4",
        now() + TimeDelta::hours(24) + TimeDelta::minutes(1),
    );
    assert_eq!(
        later,
        Decision::Hold {
            limit: 2,
            until: now() + TimeDelta::hours(25)
        }
    );
}
