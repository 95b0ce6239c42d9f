//! The Odoo stand-in's own behaviour (domains, order, load time zones, outages, counters).

mod support;

use serde_json::json;
use support::OdooStandin;

#[tokio::test]
async fn starts_with_the_demo_data() {
    let s = OdooStandin::start().await;
    assert_eq!(s.field("res.partner", 14, "name"), json!("Azure Interior"));
    assert_eq!(s.count("sale.order"), 20);
}
