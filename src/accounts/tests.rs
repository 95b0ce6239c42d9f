//! Unit tests of the pure mapping and diff.

use super::mapping::*;
use crate::whatsapp::account::{CheckLine, CheckStatus, PhoneNumberInfo};
use crate::whatsapp::{AccountCheck, MessageTemplate, TemplateList};
use chrono::{TimeZone, Utc};
use serde_json::{json, Value};

fn now() -> chrono::DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 4, 5, 6, 7)
        .single()
        .expect("valid time")
}

fn template(v: Value) -> MessageTemplate {
    MessageTemplate::from_json(&v).expect("template")
}

fn invoice() -> MessageTemplate {
    template(json!({
        "id": "111", "name": "invoice", "language": "en_US", "status": "APPROVED",
        "category": "UTILITY", "parameter_format": "POSITIONAL",
        "quality_score": {"score": "YELLOW"},
        "components": [
            {"type": "HEADER", "format": "TEXT", "text": "Invoice {{1}}"},
            {"type": "BODY", "text": "Hello {{1}}, you owe {{2}}."},
            {"type": "BUTTONS", "buttons": [
                {"type": "QUICK_REPLY", "text": "OK"},
                {"type": "URL", "text": "Pay", "url": "https://pay.example/{{1}}"}
            ]}
        ]
    }))
}

fn list(templates: Vec<MessageTemplate>) -> TemplateList {
    TemplateList {
        templates,
        skipped: Vec::new(),
    }
}

/// The record Odoo would hold after creating `t` with the plan's values.
fn stored(id: i64, t: &MessageTemplate, with_variables: bool) -> ExistingTemplate {
    let mut values = template_values(t);
    values.insert("id".into(), json!(id));
    let mut record = ExistingTemplate::from_record(&Value::Object(values)).expect("record");
    if with_variables {
        record.variables = expected_variables(t).into_iter().collect();
    }
    record
}

#[test]
fn quality_maps_to_the_addon_selection() {
    assert_eq!(quality_value(Some("GREEN")), "green");
    assert_eq!(quality_value(Some("yellow")), "yellow");
    assert_eq!(quality_value(Some("RED")), "red");
    assert_eq!(quality_value(Some("UNKNOWN")), "unknown");
    assert_eq!(quality_value(Some("NA")), "unknown");
    assert_eq!(quality_value(None), "unknown");
}

#[test]
fn check_values_fill_the_read_only_fields_and_clear_the_flag() {
    let phone: PhoneNumberInfo = serde_json::from_value(json!({
        "display_phone_number": "+1 555 000 0001", "verified_name": "Shop",
        "quality_rating": "GREEN", "messaging_limit_tier": "TIER_250"
    }))
    .expect("phone");
    let report = AccountCheck {
        lines: vec![CheckLine {
            status: CheckStatus::Ok,
            item: "access token".into(),
            detail: "accepted".into(),
        }],
        phone: Some(phone),
    };
    let v = check_values(&report, now());
    assert_eq!(v["display_phone_number"], "+1 555 000 0001");
    assert_eq!(v["verified_name"], "Shop");
    assert_eq!(v["quality_rating"], "green");
    assert_eq!(v["messaging_limit"], "TIER_250");
    assert_eq!(v["last_check_at"], "2026-03-04 05:06:07");
    assert_eq!(v["last_check_ok"], true);
    assert_eq!(v["last_check_message"], "OK   access token: accepted");
    assert_eq!(v["check_requested"], false);
}

#[test]
fn a_failed_check_without_phone_leaves_the_phone_fields_alone() {
    let report = AccountCheck {
        lines: vec![CheckLine {
            status: CheckStatus::Fail,
            item: "access token".into(),
            detail: "Meta refused the access token".into(),
        }],
        phone: None,
    };
    let v = check_values(&report, now());
    assert_eq!(v["last_check_ok"], false);
    assert!(v["last_check_message"]
        .as_str()
        .is_some_and(|m| m.contains("refused")));
    assert!(!v.contains_key("quality_rating"));
    assert!(!v.contains_key("display_phone_number"));
}

#[test]
fn statuses_and_categories_use_the_addon_values() {
    let t = template(json!({"name": "a", "language": "fr", "status": "PAUSED",
                            "category": "MARKETING", "components": []}));
    let v = template_values(&t);
    assert_eq!(v["status"], "paused");
    assert_eq!(v["category"], "marketing");
    assert!(
        !v.contains_key("quality_rating"),
        "no quality_score: left as stored"
    );
    assert_eq!(v["parameter_format"], "positional");
    assert_eq!(v["meta_template_id"], false);
    let flagged = template(json!({"name": "a", "language": "fr", "status": "FLAGGED"}));
    assert_eq!(template_values(&flagged)["status"], "approved");
    let odd = template(
        json!({"name": "a", "language": "fr", "status": "SOMETHING_NEW",
                              "category": "NEWKIND"}),
    );
    let v = template_values(&odd);
    assert!(!v.contains_key("status"));
    assert!(!v.contains_key("category"));
}

#[test]
fn template_values_keep_metas_components() {
    let t = invoice();
    let v = template_values(&t);
    assert_eq!(v["meta_template_id"], "111");
    assert_eq!(v["quality_rating"], "yellow");
    let components: Value =
        serde_json::from_str(v["components_json"].as_str().expect("text")).expect("json");
    assert_eq!(components, t.components);
}

#[test]
fn variables_cover_text_header_body_and_url_buttons() {
    let keys: Vec<String> = expected_variables(&invoice())
        .iter()
        .map(ToString::to_string)
        .collect();
    assert_eq!(
        keys,
        ["header {{1}}", "body {{1}}", "body {{2}}", "button 1 {{1}}"]
    );
    let named = template(
        json!({"name": "n", "language": "en", "parameter_format": "NAMED",
        "components": [{"type": "BODY", "text": "Hi {{first_name}}, order {{order}}"}]}),
    );
    let names: Vec<String> = expected_variables(&named)
        .into_iter()
        .map(|k| k.name)
        .collect();
    assert_eq!(names, ["first_name", "order"]);
    let media = template(json!({"name": "m", "language": "en", "components": [
        {"type": "HEADER", "format": "DOCUMENT"}, {"type": "BODY", "text": "No variables"}]}));
    assert!(expected_variables(&media).is_empty());
}

#[test]
fn new_variables_are_left_unmapped() {
    let key = &expected_variables(&invoice())[3];
    let v = variable_values(key, 4);
    assert_eq!(v["component"], "button");
    assert_eq!(v["button_index"], 1);
    assert!(!v.contains_key("fixed_value") && !v.contains_key("field_path"));
    assert_eq!(v["sequence"], 4);
}

#[test]
fn a_first_sync_creates_every_template_with_its_variables() {
    let hello = template(json!({"id": "1", "name": "hello", "language": "en_US",
        "status": "APPROVED", "components": [{"type": "BODY", "text": "Hi"}]}));
    let plan = plan_sync(7, &list(vec![hello, invoice()]), &[], now());
    assert_eq!(plan.creates.len(), 2);
    assert!(plan.updates.is_empty() && plan.new_variables.is_empty());
    assert_eq!(plan.creates[0]["account_id"], 7);
    assert_eq!(plan.creates[0]["last_sync_at"], "2026-03-04 05:06:07");
    assert!(!plan.creates[0].contains_key("variable_ids"));
    let lines = plan.creates[1]["variable_ids"].as_array().expect("lines");
    assert_eq!(lines.len(), 4);
    assert_eq!(
        lines[1],
        json!([0, 0, {"name": "1", "component": "body", "sequence": 2}])
    );
    assert!(plan.summary().starts_with(
        "Templates synced: 2 at Meta, 2 created, 0 updated, 0 marked deleted (gone from Meta), \
         4 variables added."
    ));
}

#[test]
fn an_unchanged_template_needs_no_write() {
    let t = invoice();
    let mut record = stored(5, &t, true);
    // Odoo may store the JSON with other spacing.
    let pretty = serde_json::to_string_pretty(&t.components).expect("json");
    record
        .values
        .insert("components_json".into(), json!(pretty));
    let plan = plan_sync(7, &list(vec![t]), &[record], now());
    assert_eq!(
        plan,
        SyncPlan {
            listed: 1,
            ..SyncPlan::default()
        }
    );
}

#[test]
fn a_changed_status_writes_only_what_changed() {
    let t = invoice();
    let record = stored(5, &t, true);
    let mut paused = t.clone();
    paused.status = crate::whatsapp::TemplateStatus::Paused;
    let plan = plan_sync(7, &list(vec![paused]), &[record], now());
    assert_eq!(plan.updates.len(), 1);
    let (id, values) = &plan.updates[0];
    assert_eq!(*id, 5);
    assert_eq!(
        Value::Object(values.clone()),
        json!({"status": "paused", "last_sync_at": "2026-03-04 05:06:07"})
    );
}

#[test]
fn only_missing_variables_are_added_and_mapped_ones_are_kept() {
    let t = invoice();
    let mut record = stored(5, &t, false);
    record.variables.insert(VariableKey {
        component: "body",
        name: "1".into(),
        button_index: 0,
    });
    let plan = plan_sync(7, &list(vec![t]), &[record], now());
    assert!(plan.updates.is_empty());
    let added: Vec<(Value, Value)> = plan
        .new_variables
        .iter()
        .map(|v| (v["component"].clone(), v["name"].clone()))
        .collect();
    assert_eq!(
        added,
        [
            (json!("header"), json!("1")),
            (json!("body"), json!("2")),
            (json!("button"), json!("1"))
        ]
    );
    assert!(plan.new_variables.iter().all(|v| v["template_id"] == 5));
}

#[test]
fn a_template_gone_from_meta_is_marked_deleted_never_removed() {
    let t = invoice();
    let gone = stored(5, &t, true);
    let mut already = stored(6, &t, true);
    already.name = "older".into();
    already.values.insert("status".into(), json!("deleted"));
    let plan = plan_sync(7, &list(vec![]), &[gone, already], now());
    assert_eq!(plan.gone, 1);
    assert_eq!(plan.updates.len(), 1);
    assert_eq!(plan.updates[0].0, 5);
    assert_eq!(plan.updates[0].1["status"], "deleted");
    assert!(plan.summary().contains("1 marked deleted"));
}

#[test]
fn unusable_entries_are_reported_not_synced() {
    let mut l = list(vec![
        template(json!({"name": "nolang", "status": "APPROVED"})),
        invoice(),
        invoice(),
    ]);
    l.skipped.push(crate::whatsapp::templates::SkippedTemplate {
        raw: json!({}),
        problem: "the entry has no 'name'".into(),
    });
    let plan = plan_sync(7, &l, &[], now());
    assert_eq!(plan.creates.len(), 1);
    assert_eq!(plan.problems.len(), 3, "{:?}", plan.problems);
    assert!(plan
        .summary()
        .contains("WARN template 'nolang' has no language"));
}

#[test]
fn check_and_sync_values_merge_into_one_write() {
    let check = failure_values("token refused", &["check_requested"], now());
    let plan = SyncPlan::default();
    let merged = merge_values(check, sync_done_values(&plan, now()));
    assert_eq!(merged["last_check_ok"], false);
    assert_eq!(merged["check_requested"], false);
    assert_eq!(merged["sync_requested"], false);
    let message = merged["last_check_message"].as_str().expect("text");
    assert!(message.starts_with("token refused\nTemplates synced: 0 at Meta"));
}

#[test]
fn account_rows_read_false_as_empty_and_hide_the_token() {
    let row = AccountRow::from_record(&json!({"id": 3, "name": "Main", "phone_number_id": "123",
        "waba_id": false, "access_token": "EAAG-secret", "check_requested": true,
        "sync_requested": false}))
    .expect("row");
    assert_eq!(row.waba_id, "");
    assert_eq!(
        row.handle().api_version,
        None,
        "no version read: the daemon's"
    );
    assert!(row.check_requested && !row.sync_requested);
    assert!(!format!("{row:?}").contains("EAAG-secret"));
    assert!(AccountRow::from_record(&json!({"name": "no id"})).is_err());
    let row =
        AccountRow::from_record(&json!({"id": 4, "graph_api_version": " v25.0 "})).expect("row");
    assert_eq!(row.handle().api_version.as_deref(), Some("v25.0"));
}

#[test]
fn variable_rows_are_read_by_template_and_key() {
    let (template, key) = read_variable(&json!({"template_id": [4, "invoice (en_US)"],
        "name": "2", "component": "body", "button_index": 0}))
    .expect("variable");
    assert_eq!(template, 4);
    assert_eq!(key.to_string(), "body {{2}}");
    assert!(read_variable(&json!({"template_id": 4, "name": "x", "component": "other"})).is_none());
}
