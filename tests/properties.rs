//! Property tests (proptest) of the pure parts everything else stands on:
//!
//! - the webhook parsers never panic, on arbitrary bytes or on arbitrary JSON shaped like
//!   Meta's payloads;
//! - any permutation and duplication of a message's statuses, applied in any split into
//!   batches, ends in the same state with the same timestamps;
//! - signature verification accepts exactly the right secret (and body);
//! - phone normalisation is idempotent.
//!
//! `cargo test --test properties` runs each property on proptest's default number of cases
//! (256, or `PROPTEST_CASES`); the long run, a million cases each, is the ignored test:
//! `cargo test --release --test properties -- --ignored` (see the README).

use chrono::{DateTime, TimeZone, Utc};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::{json, Value};
use whatsapp_sidecar::inbound::model::{MessageState, StatusKind, StatusUpdate};
use whatsapp_sidecar::inbound::status::{merge, MessageRow};
use whatsapp_sidecar::secret::Secret;
use whatsapp_sidecar::whatsapp::signature::{sign, verify_signature};

fn runner(cases: u32) -> TestRunner {
    TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    })
}

fn t(secs: i64) -> DateTime<Utc> {
    Utc.timestamp_opt(1_765_000_000 + secs, 0).unwrap()
}

// ----- webhook parsers ------------------------------------------------------------------------

/// JSON values shaped like Meta's webhooks: the right keys at the right places, with values
/// that may be of any type.
fn meta_like() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        "[a-z0-9._ -]{0,12}".prop_map(Value::from),
        Just(json!("1765000000")),
        Just(json!("wamid.X")),
    ];
    let any_json = leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            prop::collection::btree_map(
                prop_oneof![
                    Just("id".to_owned()),
                    Just("status".to_owned()),
                    Just("timestamp".to_owned()),
                    Just("type".to_owned()),
                    Just("text".to_owned()),
                    Just("errors".to_owned()),
                    "[a-z_]{1,8}"
                ],
                inner,
                0..4
            )
            .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    });
    let status = (any_json.clone(), any_json.clone(), any_json.clone()).prop_map(|(id, st, ts)| {
        json!({"id": id, "status": st, "timestamp": ts, "recipient_id": "33612345678"})
    });
    let message = (any_json.clone(), any_json.clone(), any_json.clone()).prop_map(|(ty, body, from)| {
        json!({"from": from, "id": "wamid.IN", "timestamp": "1765000000", "type": ty, "text": {"body": body}, "interactive": body})
    });
    let value = (
        prop::collection::vec(status, 0..3),
        prop::collection::vec(message, 0..3),
        any_json.clone(),
    )
        .prop_map(|(statuses, messages, extra)| {
            json!({"messaging_product": "whatsapp",
                   "metadata": {"display_phone_number": "15550100", "phone_number_id": "1"},
                   "statuses": statuses, "messages": messages, "contacts": extra})
        });
    (
        prop_oneof![
            Just("messages".to_owned()),
            Just("message_template_status_update".to_owned()),
            Just("account_update".to_owned()),
            "[a-z_]{1,10}"
        ],
        prop_oneof![value, any_json.clone()],
        any_json,
    )
        .prop_map(|(field, value, id)| {
            json!({"object": "whatsapp_business_account",
                   "entry": [{"id": id, "changes": [{"field": field, "value": value}]}]})
        })
}

fn parsers_never_panic(cases: u32) {
    let mut runner = runner(cases);
    let outcome = runner.run(&prop::collection::vec(any::<u8>(), 0..512), |bytes| {
        let text = String::from_utf8_lossy(&bytes);
        let _ = whatsapp_sidecar::inbound::parse::items(&text, t(0));
        let _ = whatsapp_sidecar::whatsapp::parse_webhook(&bytes);
        Ok(())
    });
    if let Err(e) = outcome {
        panic!("arbitrary bytes: {e}");
    }
    let outcome = runner.run(&meta_like(), |value| {
        let text = value.to_string();
        let _ = whatsapp_sidecar::inbound::parse::items(&text, t(0));
        let _ = whatsapp_sidecar::whatsapp::parse_webhook(text.as_bytes());
        Ok(())
    });
    if let Err(e) = outcome {
        panic!("Meta-shaped JSON: {e}");
    }
}

// ----- statuses ------------------------------------------------------------------------------

fn sent_row() -> MessageRow {
    MessageRow {
        id: 7,
        state: Some(MessageState::Sending),
        inbound: false,
        wamid: Some("wamid.P".into()),
        callback_data: Some("7".into()),
        wa_id: None,
        sent_at: None,
        delivered_at: None,
        read_at: None,
        failed_at: None,
        pricing_category: None,
    }
}

fn status(kind: StatusKind, at: DateTime<Utc>) -> StatusUpdate {
    StatusUpdate {
        wamid: "wamid.P".into(),
        status: kind,
        timestamp: at,
        recipient_id: Some("33612345678".into()),
        recipient_user_id: None,
        callback_data: Some("7".into()),
        pricing_category: Some("utility".into()),
        error: None,
    }
}

/// What a message record holds after the writes of `batches`, in turn.
fn apply(batches: &[Vec<StatusUpdate>]) -> MessageRow {
    let mut row = sent_row();
    for batch in batches {
        let refs: Vec<&StatusUpdate> = batch.iter().collect();
        let w = merge(&row, &refs).write;
        if let Some(s) = w.state {
            row.state = Some(s);
        }
        row.sent_at = w.sent_at.or(row.sent_at);
        row.delivered_at = w.delivered_at.or(row.delivered_at);
        row.read_at = w.read_at.or(row.read_at);
        row.failed_at = w.failed_at.or(row.failed_at);
        row.wa_id = w.wa_id.or(row.wa_id);
        row.pricing_category = w.pricing_category.or(row.pricing_category);
    }
    row
}

/// The statuses Meta may send for one message (each kind at most once, with its own time),
/// then a sequence of them with repeats, in any order, cut into batches.
fn status_runs() -> impl Strategy<Value = (Vec<StatusUpdate>, Vec<Vec<StatusUpdate>>)> {
    let kinds = prop::sample::subsequence(
        vec![
            StatusKind::Sent,
            StatusKind::Delivered,
            StatusKind::Read,
            StatusKind::Failed,
        ],
        1..=4,
    );
    (kinds, any::<[u16; 4]>())
        .prop_flat_map(|(kinds, offsets)| {
            let set: Vec<StatusUpdate> = kinds
                .iter()
                .enumerate()
                .map(|(i, k)| status(*k, t(i64::from(offsets[i]))))
                .collect();
            let n = set.len();
            let picks = prop::collection::vec(0..n, n..n * 3);
            (Just(set), picks)
        })
        .prop_flat_map(|(set, picks)| {
            // Every kind at least once, plus repeats; then shuffled.
            let mut seq: Vec<StatusUpdate> = set.clone();
            seq.extend(picks.iter().map(|i| set[*i].clone()));
            let len = seq.len();
            (
                Just(set),
                Just(seq).prop_shuffle(),
                prop::collection::vec(any::<bool>(), len),
            )
        })
        .prop_map(|(set, seq, cuts)| {
            let mut batches = vec![Vec::new()];
            for (s, cut) in seq.into_iter().zip(cuts) {
                if cut && !batches.last().is_some_and(Vec::is_empty) {
                    batches.push(Vec::new());
                }
                if let Some(last) = batches.last_mut() {
                    last.push(s);
                }
            }
            (set, batches)
        })
}

fn statuses_commute(cases: u32) {
    let outcome = runner(cases).run(&status_runs(), |(set, batches)| {
        let once = apply(&[set]);
        let any_order = apply(&batches);
        prop_assert_eq!(&any_order.state, &once.state);
        prop_assert_eq!(any_order.sent_at, once.sent_at);
        prop_assert_eq!(any_order.delivered_at, once.delivered_at);
        prop_assert_eq!(any_order.read_at, once.read_at);
        prop_assert_eq!(any_order.failed_at, once.failed_at);
        Ok(())
    });
    if let Err(e) = outcome {
        panic!("statuses: {e}");
    }
}

// ----- signatures ----------------------------------------------------------------------------

fn signatures_accept_exactly_the_right_secret(cases: u32) {
    let strategy = (
        "[ -~]{1,40}",
        "[ -~]{1,40}",
        prop::collection::vec(any::<u8>(), 0..256),
        prop::collection::vec(any::<u8>(), 0..256),
    );
    let outcome = runner(cases).run(&strategy, |(secret, other, body, other_body)| {
        let right = Secret::new(secret.as_str());
        let header = sign(&right, &body);
        let with_right = verify_signature(&right, &body, Some(&header)).is_ok();
        prop_assert_eq!(with_right, !secret.trim().is_empty());
        if other != secret {
            prop_assert!(
                verify_signature(&Secret::new(other.as_str()), &body, Some(&header)).is_err()
            );
        }
        if other_body != body {
            prop_assert!(verify_signature(&right, &other_body, Some(&header)).is_err());
        }
        Ok(())
    });
    if let Err(e) = outcome {
        panic!("signatures: {e}");
    }
}

// ----- phone numbers -------------------------------------------------------------------------

fn phone_normalisation_is_idempotent(cases: u32) {
    let strategy = (
        prop_oneof![
            "[+0-9 ().-]{1,20}",
            "\\+[1-9][0-9]{7,14}",
            "0[1-9][0-9 ]{8,12}",
            "00[1-9][0-9]{8,13}",
        ],
        prop_oneof![
            Just(None),
            Just(Some("FR")),
            Just(Some("US")),
            Just(Some("BE"))
        ],
    );
    let outcome = runner(cases).run(&strategy, |(input, region)| {
        if let Ok(first) = whatsapp_sidecar::phone::normalize(&input, region) {
            let again = whatsapp_sidecar::phone::normalize(first.as_str(), region);
            prop_assert_eq!(again.as_ref().ok(), Some(&first), "{} → {:?}", input, again);
            let elsewhere = whatsapp_sidecar::phone::normalize(first.as_str(), None);
            prop_assert_eq!(elsewhere.ok(), Some(first));
        }
        Ok(())
    });
    if let Err(e) = outcome {
        panic!("phone numbers: {e}");
    }
}

fn all(cases: u32) {
    parsers_never_panic(cases);
    statuses_commute(cases);
    signatures_accept_exactly_the_right_secret(cases);
    phone_normalisation_is_idempotent(cases);
}

#[test]
fn the_properties_hold() {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    all(cases);
}

/// The long run: a million cases of each property (`--ignored`, in release mode).
#[test]
#[ignore]
fn the_properties_hold_for_a_million_cases() {
    all(1_000_000);
}
