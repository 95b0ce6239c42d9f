//! The housekeeping against the Odoo stand-in: which webhook events the retention deletes (and
//! which it keeps), in batches, with the messages they created kept; and the hourly template
//! sync asked for on every active account.

mod support;

use chrono::{TimeDelta, Utc};
use serde_json::json;
use support::{client_config, OdooStandin};
use tokio_util::sync::CancellationToken;
use whatsapp_sidecar::housekeeping::{
    request_template_sync, retention_once, HousekeepingContext, HousekeepingSettings,
};
use whatsapp_sidecar::odoo::{format_datetime, OdooClient};

const EVENT: &str = "whatsapp.webhook.event";

fn event(odoo: &OdooStandin, days_ago: i64, processed: bool, error: Option<&str>) -> i64 {
    let at = format_datetime(Utc::now() - TimeDelta::days(days_ago));
    odoo.insert(
        EVENT,
        json!({"raw_body": "{}", "received_at": at, "signature_ok": true,
               "processed": processed, "processing_error": error.map_or(json!(false), |e| json!(e))}),
    )
}

#[tokio::test]
async fn old_processed_events_go_failed_ones_stay_ninety_days_and_messages_stay() {
    let odoo = OdooStandin::start().await;
    let account = odoo.add_account("Main", "100200300", 80);
    let partner = odoo.add_partner("Awa", "+2250700000001", true);
    let old_done = [
        event(&odoo, 31, true, None),
        event(&odoo, 45, true, None),
        event(&odoo, 400, true, None),
    ];
    let recent_done = event(&odoo, 29, true, None);
    let failed_young = event(&odoo, 60, true, Some("unknown message"));
    let waiting_young = event(&odoo, 89, false, Some("waiting for the outbox"));
    let unprocessed_young = event(&odoo, 89, false, None);
    let failed_old = event(&odoo, 91, true, Some("unknown message"));
    let unprocessed_old = event(&odoo, 120, false, None);
    // A received message from an old event: kept, its link cleared.
    let message = odoo.insert(
        "whatsapp.message",
        json!({"account_id": account, "partner_id": partner, "direction": "in",
               "message_type": "text", "state": "received", "body": "Bonjour",
               "webhook_event_id": old_done[0]}),
    );

    let ctx = HousekeepingContext {
        odoo: OdooClient::new(client_config(&odoo)).unwrap(),
        settings: HousekeepingSettings {
            batch_size: 2,
            ..HousekeepingSettings::default()
        },
    };
    let stop = CancellationToken::new();
    let done = retention_once(&ctx, Utc::now(), &stop).await.unwrap();
    assert_eq!(done.deleted, 5);
    // Batches of 2: search+unlink, search+unlink, search+unlink (1), and no last search
    // since the third batch was short.
    assert_eq!(done.calls, 6);
    let mut left = odoo.search(EVENT, json!([]));
    left.sort_unstable();
    let mut kept = vec![recent_done, failed_young, waiting_young, unprocessed_young];
    kept.sort_unstable();
    assert_eq!(left, kept);
    for gone in old_done.iter().chain([&failed_old, &unprocessed_old]) {
        assert!(odoo.record(EVENT, *gone).is_none(), "event {gone} kept");
    }
    let m = odoo
        .record("whatsapp.message", message)
        .expect("the message is kept");
    assert_eq!(m["webhook_event_id"], json!(false));

    // Again: nothing to do, one search.
    let again = retention_once(&ctx, Utc::now(), &stop).await.unwrap();
    assert_eq!((again.deleted, again.calls), (0, 1));

    // processed_event_days = 0: processed events are kept for ever.
    let forever = HousekeepingContext {
        settings: HousekeepingSettings {
            processed_event_days: 0,
            ..ctx.settings.clone()
        },
        ..ctx.clone()
    };
    let ancient = event(&odoo, 1000, true, None);
    let done = retention_once(&forever, Utc::now(), &stop).await.unwrap();
    assert_eq!(done.deleted, 0);
    assert!(odoo.record(EVENT, ancient).is_some());
}

#[tokio::test]
async fn the_template_sync_is_asked_for_on_every_active_account_not_asking_already() {
    let odoo = OdooStandin::start().await;
    let a = odoo.add_account("A", "1001", 80);
    let b = odoo.add_account("B", "1002", 80);
    let archived = odoo.add_account("Old", "1003", 80);
    odoo.update("whatsapp.account", archived, json!({"active": false}));
    odoo.update("whatsapp.account", b, json!({"sync_requested": true}));
    let ctx = HousekeepingContext {
        odoo: OdooClient::new(client_config(&odoo)).unwrap(),
        settings: HousekeepingSettings::default(),
    };
    let writes_b = odoo.write_count("whatsapp.account", b);
    let rows_before = odoo.bus_rows().len();
    assert_eq!(request_template_sync(&ctx).await.unwrap(), 1);
    assert_eq!(
        odoo.field("whatsapp.account", a, "sync_requested"),
        json!(true)
    );
    assert_eq!(
        odoo.field("whatsapp.account", archived, "sync_requested"),
        json!(false)
    );
    assert_eq!(
        odoo.write_count("whatsapp.account", b),
        writes_b,
        "B was asking already"
    );
    // The addon tells the daemon's accounts component through the bus: one notification.
    let rows = odoo.bus_rows();
    let new: Vec<_> = rows[rows_before..]
        .iter()
        .map(|r| r["message"]["payload"].clone())
        .collect();
    assert_eq!(
        new,
        [json!({"model": "whatsapp.account", "ids": [a], "count": 1})]
    );
    assert_eq!(request_template_sync(&ctx).await.unwrap(), 0);
}
