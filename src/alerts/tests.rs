use super::rules::{conditions, AccountState, Ledger, MailKind, Observation, MIN_SENDS_FOR_RATIO};
use super::*;
use chrono::{DateTime, Duration as Delta, TimeZone, Utc};

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 7, 9, 0, 0).unwrap()
}

fn paused(id: i64) -> AccountState {
    AccountState {
        id,
        name: format!("Account {id}"),
        paused: true,
        paused_reason: Some("token refused (190)".into()),
        ..Default::default()
    }
}

fn seen_accounts(accounts: Vec<AccountState>) -> Observation {
    Observation {
        accounts: Some(accounts),
        auto_paused_campaigns: Some(vec![]),
        bad_signatures_last_hour: Some(0),
        sends_last_15_min: Some((0, 0)),
        ..Default::default()
    }
}

fn kinds(seen: &Observation, now: DateTime<Utc>) -> Vec<(AlertKind, String)> {
    let (found, _) = conditions(&AlertSettings::default(), seen, now);
    found.into_iter().map(|c| (c.kind, c.subject)).collect()
}

#[test]
fn each_condition_holds_from_its_threshold() {
    let now = t0();
    // Odoo: only after the setting (5 minutes).
    let mut seen = seen_accounts(vec![]);
    seen.odoo_down_since = Some(now - Delta::seconds(299));
    assert!(kinds(&seen, now).is_empty());
    seen.odoo_down_since = Some(now - Delta::seconds(300));
    assert_eq!(
        kinds(&seen, now),
        vec![(AlertKind::OdooUnreachable, "Odoo".into())]
    );

    // Bad signatures: 20 an hour.
    let mut seen = seen_accounts(vec![]);
    seen.bad_signatures_last_hour = Some(19);
    assert!(kinds(&seen, now).is_empty());
    seen.bad_signatures_last_hour = Some(20);
    assert_eq!(kinds(&seen, now)[0].0, AlertKind::BadSignatures);

    // Send errors: 20 % of at least MIN_SENDS_FOR_RATIO.
    let mut seen = seen_accounts(vec![]);
    seen.sends_last_15_min = Some((0, MIN_SENDS_FOR_RATIO - 1));
    assert!(kinds(&seen, now).is_empty(), "too few sends to judge");
    seen.sends_last_15_min = Some((81, 19));
    assert!(kinds(&seen, now).is_empty());
    seen.sends_last_15_min = Some((80, 20));
    assert_eq!(kinds(&seen, now)[0].0, AlertKind::SendErrors);

    // Accounts: paused, token within 7 days, messages held by the messaging limit.
    let token = |days: i64| AccountState {
        id: 2,
        name: "B".into(),
        token_expires_at: Some(now + Delta::days(days)),
        ..Default::default()
    };
    assert!(kinds(&seen_accounts(vec![token(8)]), now).is_empty());
    assert_eq!(
        kinds(&seen_accounts(vec![token(7)]), now),
        vec![(AlertKind::TokenExpiring, "account 2".into())]
    );
    let held = AccountState {
        id: 3,
        held_by_limit: 4,
        ..Default::default()
    };
    assert_eq!(
        kinds(&seen_accounts(vec![paused(1), held]), now),
        vec![
            (AlertKind::AccountPaused, "account 1".into()),
            (AlertKind::MessagingLimit, "account 3".into())
        ]
    );

    // Campaigns paused by the daemon.
    let mut seen = seen_accounts(vec![]);
    seen.auto_paused_campaigns = Some(vec![(5, "Winter sale".into(), "template paused".into())]);
    assert_eq!(
        kinds(&seen, now),
        vec![(AlertKind::CampaignPaused, "campaign 5".into())]
    );

    // A kind switched off is never raised.
    let settings = AlertSettings {
        kinds: [AlertKind::SendErrors].into_iter().collect(),
        ..AlertSettings::default()
    };
    let (found, _) = conditions(&settings, &seen_accounts(vec![paused(1)]), now);
    assert!(found.is_empty());
}

#[test]
fn a_condition_is_mailed_once_an_hour_at_most_and_once_when_it_clears() {
    let settings = AlertSettings::default();
    let remind = Delta::hours(24);
    let mut ledger = Ledger::default();
    let eval = |ledger: &mut Ledger, accounts: Vec<AccountState>, at: DateTime<Utc>| {
        let (found, unknown) = conditions(&settings, &seen_accounts(accounts), at);
        ledger
            .evaluate(found, &unknown, remind, at)
            .into_iter()
            .map(|m| m.kind)
            .collect::<Vec<_>>()
    };
    let t = t0();
    assert_eq!(
        eval(&mut ledger, vec![paused(1)], t),
        vec![MailKind::Firing]
    );
    assert!(eval(&mut ledger, vec![paused(1)], t + Delta::minutes(1)).is_empty());
    // Clears: resolved. Back 5 minutes later: not mailed within the hour of the first mail.
    assert_eq!(
        eval(&mut ledger, vec![], t + Delta::minutes(10)),
        vec![MailKind::Resolved]
    );
    assert!(eval(&mut ledger, vec![paused(1)], t + Delta::minutes(15)).is_empty());
    // Clears again: it was not mailed in this episode, so no resolved mail either.
    assert!(eval(&mut ledger, vec![], t + Delta::minutes(20)).is_empty());
    // Back after the hour: mailed.
    assert_eq!(
        eval(&mut ledger, vec![paused(1)], t + Delta::minutes(61)),
        vec![MailKind::Firing]
    );
    // Still holding a day later: a reminder.
    assert!(eval(&mut ledger, vec![paused(1)], t + Delta::hours(12)).is_empty());
    assert_eq!(
        eval(
            &mut ledger,
            vec![paused(1)],
            t + Delta::minutes(61) + remind
        ),
        vec![MailKind::Reminder]
    );
    // Two accounts are two conditions.
    assert_eq!(
        eval(
            &mut ledger,
            vec![paused(1), paused(2)],
            t + Delta::hours(30)
        ),
        vec![MailKind::Firing]
    );
    assert_eq!(ledger.active().len(), 2);
}

#[test]
fn a_source_that_cannot_be_read_neither_raises_nor_resolves() {
    let settings = AlertSettings::default();
    let mut ledger = Ledger::default();
    let t = t0();
    let (found, unknown) = conditions(&settings, &seen_accounts(vec![paused(1)]), t);
    assert_eq!(
        ledger.evaluate(found, &unknown, Delta::hours(24), t).len(),
        1
    );
    // Odoo down: the accounts are unknown; the paused account is not "resolved".
    let down = Observation {
        odoo_down_since: Some(t),
        bad_signatures_last_hour: Some(0),
        sends_last_15_min: Some((0, 0)),
        ..Default::default()
    };
    let (found, unknown) = conditions(&settings, &down, t + Delta::minutes(1));
    assert!(unknown.contains(&AlertKind::AccountPaused));
    assert!(ledger
        .evaluate(found, &unknown, Delta::hours(24), t + Delta::minutes(1))
        .is_empty());
    assert_eq!(ledger.active().len(), 1);
}

#[test]
fn kinds_have_names_for_the_configuration() {
    for kind in AlertKind::ALL {
        assert_eq!(AlertKind::from_name(kind.name()), Some(kind));
    }
    assert_eq!(AlertKind::from_name("everything"), None);
}
