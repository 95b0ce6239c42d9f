use super::*;

fn parse(text: &str) -> prometheus_parse::Scrape {
    prometheus_parse::Scrape::parse(text.lines().map(|l| Ok(l.to_owned()))).expect("exposition")
}

fn value(scrape: &prometheus_parse::Scrape, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    scrape
        .samples
        .iter()
        .find(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
        .map(|s| match s.value {
            prometheus_parse::Value::Counter(v)
            | prometheus_parse::Value::Gauge(v)
            | prometheus_parse::Value::Untyped(v) => v,
            _ => f64::NAN,
        })
}

#[test]
fn off_records_nothing_and_renders_nothing() {
    let m = Metrics::default();
    m.odoo_call("res.partner", "read", Duration::from_millis(3), None);
    m.message_sent(1, false);
    assert!(!m.is_on());
    assert_eq!(m.render(), "");
}

#[test]
fn the_exposition_parses_and_counts_what_was_recorded() {
    let m = Metrics::new("1.2.3");
    m.odoo_call("whatsapp.message", "write", Duration::from_millis(4), None);
    m.odoo_call(
        "whatsapp.message",
        "write",
        Duration::from_millis(40),
        Some("unreachable"),
    );
    m.api_call("send message", Duration::from_millis(90), None);
    m.api_call(
        "send message",
        Duration::from_millis(10),
        Some("131026".into()),
    );
    m.message_sent(7, true);
    m.message_sent(7, false);
    m.message_failed(Some(7), "131026");
    m.message_retry(7, "130429");
    m.pacing_slowdown(7, 130429);
    m.webhook_request("stored", Duration::from_millis(12));
    m.webhook_request("bad_signature", Duration::from_millis(1));
    m.events_created(40);
    m.inbound_processed(5, 1, 0);
    m.bus_connected(true);
    m.bus_notification();
    m.set_odoo_state(&OdooState {
        queued_due: 12,
        sending: 3,
        oldest_due_age_secs: 2.5,
        unprocessed_events: 4,
        oldest_unprocessed_age_secs: 0.75,
        accounts_paused: vec![(7, false), (8, true)],
        running_campaigns: vec![(3, 120)],
    });
    let text = m.render();
    let s = parse(&text);
    let v = |name: &str, labels: &[(&str, &str)]| value(&s, name, labels);
    assert_eq!(
        v("whatsapp_sidecar_build_info", &[("version", "1.2.3")]),
        Some(1.0)
    );
    let write = [("model", "whatsapp.message"), ("method", "write")];
    assert_eq!(v("odoo_calls_total", &write), Some(2.0));
    assert_eq!(
        v(
            "odoo_call_errors_total",
            &[("method", "write"), ("kind", "unreachable")]
        ),
        Some(1.0)
    );
    assert_eq!(
        v("whatsapp_api_calls_total", &[("endpoint", "send message")]),
        Some(2.0)
    );
    assert_eq!(
        v("whatsapp_api_errors_total", &[("code", "131026")]),
        Some(1.0)
    );
    assert_eq!(
        v("whatsapp_messages_sent_total", &[("account", "7")]),
        Some(2.0)
    );
    assert_eq!(
        v("whatsapp_campaign_messages_sent_total", &[("account", "7")]),
        Some(1.0)
    );
    assert_eq!(
        v(
            "whatsapp_messages_failed_total",
            &[("account", "7"), ("code", "131026")]
        ),
        Some(1.0)
    );
    assert_eq!(
        v("whatsapp_message_retries_total", &[("code", "130429")]),
        Some(1.0)
    );
    assert_eq!(
        v("whatsapp_pacing_slowdowns_total", &[("code", "130429")]),
        Some(1.0)
    );
    assert_eq!(
        v("whatsapp_webhook_requests_total", &[("result", "stored")]),
        Some(1.0)
    );
    assert_eq!(
        v(
            "whatsapp_webhook_requests_total",
            &[("result", "bad_signature")]
        ),
        Some(1.0)
    );
    assert_eq!(
        v(
            "whatsapp_inbound_events_processed_total",
            &[("outcome", "done")]
        ),
        Some(5.0)
    );
    assert_eq!(v("whatsapp_outbox_queued_due", &[]), Some(12.0));
    assert_eq!(v("whatsapp_outbox_sending", &[]), Some(3.0));
    assert_eq!(v("whatsapp_outbox_oldest_due_age_seconds", &[]), Some(2.5));
    assert_eq!(v("whatsapp_inbound_unprocessed_events", &[]), Some(4.0));
    assert_eq!(v("whatsapp_account_paused", &[("account", "8")]), Some(1.0));
    assert_eq!(v("whatsapp_account_paused", &[("account", "7")]), Some(0.0));
    assert_eq!(v("whatsapp_campaigns_running", &[]), Some(1.0));
    assert_eq!(
        v("whatsapp_campaign_sent", &[("campaign", "3")]),
        Some(120.0)
    );
    assert_eq!(v("odoo_bus_connected", &[]), Some(1.0));
    assert_eq!(v("odoo_bus_notifications_total", &[]), Some(1.0));
    // Histograms: the count of observations.
    assert!(
        text.contains(
            "odoo_call_duration_seconds_count{model=\"whatsapp.message\",method=\"write\"} 2"
        ),
        "{text}"
    );
    assert!(
        text.contains("whatsapp_webhook_intake_duration_seconds_count 1"),
        "{text}"
    );
    assert!(
        text.contains("whatsapp_webhook_events_per_create_sum 40"),
        "{text}"
    );

    // A later reading replaces the per-account and per-campaign values.
    m.set_odoo_state(&OdooState {
        accounts_paused: vec![(7, true)],
        ..Default::default()
    });
    let s = parse(&m.render());
    assert_eq!(
        value(&s, "whatsapp_account_paused", &[("account", "8")]),
        None
    );
    assert_eq!(
        value(&s, "whatsapp_campaign_sent", &[("campaign", "3")]),
        None
    );
    assert_eq!(value(&s, "whatsapp_campaigns_running", &[]), Some(0.0));
}

/// Every metric the shipped Grafana dashboard queries is one the daemon exposes.
#[test]
fn the_dashboard_queries_only_metrics_that_exist() {
    let m = Metrics::new("0");
    // One of each labelled family, so every name is in the exposition.
    m.odoo_call(
        "res.partner",
        "read",
        Duration::from_millis(1),
        Some("unreachable"),
    );
    m.api_call(
        "send message",
        Duration::from_millis(1),
        Some("131026".into()),
    );
    m.message_sent(1, true);
    m.message_failed(Some(1), "not_opted_in");
    m.message_retry(1, "130429");
    m.pacing_slowdown(1, 130429);
    m.webhook_request("stored", Duration::from_millis(1));
    m.inbound_processed(1, 0, 0);
    m.set_odoo_state(&OdooState {
        accounts_paused: vec![(1, false)],
        running_campaigns: vec![(1, 1)],
        ..Default::default()
    });
    let text = m.render();
    let exposed: std::collections::HashSet<&str> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next())
        .collect();
    let dashboard: serde_json::Value =
        serde_json::from_str(include_str!("../../deploy/grafana-dashboard.json"))
            .expect("the dashboard is JSON");
    let mut queried = 0;
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().expect("targets") {
            let expr = target["expr"].as_str().expect("expr");
            for word in expr.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
                if word.starts_with("whatsapp_") || word.starts_with("odoo_") {
                    queried += 1;
                    assert!(
                        exposed.contains(word),
                        "the dashboard's panel {:?} queries {word}, which /metrics does not expose",
                        panel["title"]
                    );
                }
            }
        }
    }
    assert!(queried >= 20, "{queried} metric references checked");
}
