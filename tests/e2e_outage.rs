//! Odoo stops answering for 10 s in the middle of a run (the port closed, or every request
//! frozen): the daemon says so in its log, answers Meta's webhooks 503 so Meta retries them,
//! carries on once Odoo is back, and nothing is lost: every queued message ends read, sent
//! exactly once, and every webhook refused during the outage is stored after it. The same with
//! a local spool (`webhook.spool_file`): the webhooks answered 200 before the daemon noticed
//! the outage (all of them while Odoo hangs) wait there and are stored after it.

mod e2e_support;
mod support;

use e2e_support::{eventually, World, APP_SECRET, MESSAGE};
use serde_json::json;
use std::time::{Duration, Instant};
use support::Outage;
use whatsapp_sidecar::sandbox::{InjectRequest, RecordFilter};

const MESSAGES: i64 = 240;
const OUTAGE: Duration = Duration::from_secs(10);

/// One test of this file at a time: they stop and restart daemons and Odoo's port, and a port
/// one of them frees for a moment can be handed to the other's new daemon or stand-in.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn odoo_goes_away_for_ten_seconds(mode: Outage, spool: bool) {
    let _turn = ONE_AT_A_TIME.lock().await;
    let mut w = World::new(80).await;
    if spool {
        w.use_spool();
    }
    let template = w.hello_template("approved");
    let ids: Vec<i64> = (0..MESSAGES)
        .map(|i| {
            let partner = w.partner(
                &format!("Outage {i}"),
                &format!("+33 6 30 00 {:02} {:02}", i / 100, i % 100),
                true,
            );
            w.queue_template(partner, template)
        })
        .collect();
    w.start_daemon().await;

    // Odoo goes away while messages are going out.
    let odoo = &w.odoo;
    let on_the_way = || {
        ids.iter()
            .filter(|id| odoo.field(MESSAGE, **id, "state") != json!("queued"))
            .count()
    };
    eventually("sending under way", Duration::from_secs(20), || {
        on_the_way() >= 20
    })
    .await;
    let lines_before = w.logs.lines().len();
    w.odoo.go_down(mode).await;
    let down_at = Instant::now();

    // Meanwhile: a customer writes (Meta retries until the daemon takes it) ...
    w.meta
        .inject(&InjectRequest {
            from: "+33699000001".into(),
            text: Some("sent during the outage".into()),
            ..Default::default()
        })
        .expect("inject");
    // ... and a webhook is answered 503, not 200: it could not be stored. With a spool, the
    // first ones are kept there until the forwarder finds Odoo gone (at once when Odoo refuses
    // connections); those are stored after the outage.
    let refused =
        e2e_support::inbound_text_webhook("wamid.OUTAGE-1", "33699000002", "answered 503");
    let mut spooled = Vec::new();
    if spool && mode == Outage::Refuse {
        for n in 0.. {
            let early = e2e_support::inbound_text_webhook(
                &format!("wamid.SPOOLED-{n}"),
                "33699000003",
                "spooled",
            );
            if w.post_webhook(&early, Some(APP_SECRET)).await != 200 {
                break;
            }
            assert!(
                down_at.elapsed() < Duration::from_secs(5),
                "still answered 200 after 5 s"
            );
            spooled.push(format!("wamid.SPOOLED-{n}"));
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    if !spool || mode == Outage::Refuse {
        assert_eq!(
            w.post_webhook(&refused, Some(APP_SECRET)).await,
            503,
            "a webhook that cannot be stored is answered 503 so Meta retries it"
        );
    }
    if mode == Outage::Refuse {
        let readyz = w.http.get(w.config.url("/readyz")).send().await.unwrap();
        assert_eq!(readyz.status(), 503, "/readyz says Odoo is unreachable");
    }

    tokio::time::sleep(OUTAGE.saturating_sub(down_at.elapsed())).await;
    assert!(w.daemon().exited().is_none(), "the daemon rides it out");
    let url = w.odoo.url();
    let during: Vec<String> = w.logs.lines()[lines_before..]
        .iter()
        .filter(|l| (l.contains("WARN") || l.contains("ERROR")) && l.contains(&url))
        .cloned()
        .collect();
    assert!(
        !during.is_empty(),
        "the outage is in the log, naming {url}:\n{}",
        w.logs.tail(40)
    );
    w.odoo.come_back().await;

    // Meta retries the refused webhook: stored now (with a spool, once the forwarder has found
    // Odoo back: its retries are at most 2 s apart).
    let back = Instant::now();
    loop {
        let status = w.post_webhook(&refused, Some(APP_SECRET)).await;
        if status == 200 {
            break;
        }
        assert!(
            spool && back.elapsed() < Duration::from_secs(5),
            "the retried webhook is answered {status} after Odoo came back"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Nothing lost: every message read, each sent once; both inbound messages received once.
    w.until_all(&ids, &["read"], Duration::from_secs(40)).await;
    let record = w
        .meta
        .messages(&RecordFilter {
            limit: Some(10_000),
            ..RecordFilter::default()
        })
        .expect("sandbox record");
    assert_eq!(record.len(), MESSAGES as usize, "each message sent once");
    for id in &ids {
        let m = w.odoo.record(MESSAGE, *id).unwrap();
        let sent: Vec<_> = record
            .iter()
            .filter(|r| r.callback_data.as_deref() == Some(id.to_string().as_str()))
            .collect();
        assert_eq!(sent.len(), 1, "message {id} sent {} times", sent.len());
        assert_eq!(m["wamid"], json!(sent[0].wamid));
        let stamps: Vec<String> = ["sent_at", "delivered_at", "read_at"]
            .iter()
            .map(|f| e2e_support::text(&m[*f]))
            .collect();
        assert!(
            stamps.iter().all(|s| s.len() == 19),
            "message {id} lacks a timestamp: {stamps:?}"
        );
        assert!(
            stamps[0] <= stamps[1] && stamps[1] <= stamps[2],
            "message {id}: sent ≤ delivered ≤ read, as Meta reported them: {stamps:?}"
        );
    }
    let mut expected = vec![
        ("wamid.OUTAGE-1", "wamid"),
        ("sent during the outage", "body"),
    ];
    expected.extend(spooled.iter().map(|w| (w.as_str(), "wamid")));
    for (wamid_or_body, field) in expected {
        eventually(
            &format!("the inbound message {wamid_or_body}"),
            Duration::from_secs(15),
            || {
                w.odoo
                    .search(MESSAGE, json!([[field, "=", wamid_or_body]]))
                    .len()
                    == 1
            },
        )
        .await;
    }

    let status = w.stop_daemon().await;
    assert!(status.success(), "clean stop after the outage: {status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odoo_refusing_connections_for_ten_seconds_loses_nothing() {
    odoo_goes_away_for_ten_seconds(Outage::Refuse, false).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_spool_odoo_refusing_connections_for_ten_seconds_loses_nothing() {
    odoo_goes_away_for_ten_seconds(Outage::Refuse, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_a_spool_odoo_hanging_for_ten_seconds_loses_nothing() {
    odoo_goes_away_for_ten_seconds(Outage::Hang, true).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn odoo_hanging_for_ten_seconds_loses_nothing() {
    odoo_goes_away_for_ten_seconds(Outage::Hang, false).await;
}
