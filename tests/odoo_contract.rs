//! The contract between the client, the stand-in and a real Odoo 17.
//!
//! 1. Every recorded request in `tests/fixtures/odoo17-jsonrpc/` (real Odoo 17 answers) is sent
//!    as recorded to a fresh stand-in, after the steps that recreate the recorded state, and
//!    the answer must have the recorded shape: HTTP status, content type, JSON keys and types,
//!    error `code`, `data.name` and `data.message`, and the very values where the stand-in's
//!    seed mirrors the recording's database.
//! 2. Every recorded error body maps to the expected [`OdooError`] variant.

mod support;

use serde_json::{json, Value};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use support::OdooStandin;
use whatsapp_sidecar::odoo::error::{classify, CallSite, Credential, RpcError};
use whatsapp_sidecar::odoo::OdooError;

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/odoo17-jsonrpc")
}

fn load(name: &str) -> Value {
    let path = fixtures().join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name} is not JSON: {e}"))
}

fn transcript_files() -> Vec<String> {
    let mut files: Vec<String> = std::fs::read_dir(fixtures())
        .expect("fixtures directory")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".json") && !n.starts_with('_'))
        .collect();
    files.sort();
    files
}

/// Transcripts that are not requests the client makes, with the reason.
const NOT_REPLAYED: &[(&str, &str)] = &[
    (
        "j_websocket_bus_subscribe.json",
        "websocket bus: the daemon does not use it",
    ),
    (
        "j_websocket_health.json",
        "websocket bus: the daemon does not use it",
    ),
    (
        "j_websocket_peek_notifications_first_poll.json",
        "websocket bus: the daemon does not use it",
    ),
    (
        "j_websocket_peek_notifications_no_session.json",
        "websocket bus: the daemon does not use it",
    ),
    (
        "j_websocket_whatsapp_sidecar_channel.json",
        "websocket: replayed by the_bus_websocket_answers_as_recorded",
    ),
    ("k_latency_summary.json", "figures, not a request"),
    (
        "p_account_payment_register_create.json",
        "account.payment.register: how tests/e2e_real.rs registers a payment; not a daemon call",
    ),
    (
        "p_account_payment_register_action_create_payments.json",
        "account.payment.register: how tests/e2e_real.rs registers a payment; not a daemon call",
    ),
    (
        "h_report_action_via_execute_kw.json",
        "ir.actions.report.report_action: the client downloads PDFs from /report/pdf instead",
    ),
];

/// Steps that recreate the state a transcript was recorded in.
enum Step {
    /// Replay another transcript first (its answer is not checked).
    Replay(&'static str),
    /// Open a web session; its cookie replaces `<SESSION_ID>`.
    WebLogin,
    /// Fail the web login this many times (login cool-down).
    FailWebLogins(u32),
    /// Fail `execute_kw` with a wrong password this many times.
    FailRpcLogins(u32),
    /// Put records in the stand-in that the recording database had.
    Seed(fn(&OdooStandin)),
}

/// The WhatsApp account of the recording database (id 1), with its French opt-out text.
fn seed_account(standin: &OdooStandin) {
    let id = standin.add_account("Sandbox", "sandbox-0001", 80);
    standin.set_translation(
        "whatsapp.account",
        id,
        "opt_out_confirmation",
        "fr_FR",
        "Vous ne recevrez plus de messages WhatsApp de notre part.",
    );
}

/// The records the `p_*` (invoice) transcripts were recorded with: customer 42, draft invoice
/// 25 (two lines, 1,180.00 USD), and a queued reminder (message 1).
fn invoice_25(standin: &OdooStandin) {
    standin.insert_with_id(
        "res.partner",
        42,
        json!({"name": "Awa Kouassi (p transcripts)", "mobile": "+2250700000311",
               "whatsapp_opt_in": true}),
    );
    standin.insert_with_id(
        "account.move",
        25,
        json!({"name": "/", "move_type": "out_invoice", "state": "draft", "partner_id": 42,
               "company_id": 1, "date": "2026-12-06", "invoice_date_due": "2026-12-06",
               "amount_untaxed": 1180.0, "amount_tax": 0.0, "amount_total": 1180.0,
               "amount_residual": 1180.0, "currency_id": 1}),
    );
    for (id, name, qty, price) in [
        (69, "Office chair", 2.0, 500.0),
        (70, "Delivery", 1.0, 180.0),
    ] {
        standin.insert_with_id(
            "account.move.line",
            id,
            json!({"move_id": 25, "name": name, "display_type": "product", "quantity": qty,
                   "price_unit": price}),
        );
    }
    standin.insert_with_id(
        "whatsapp.message",
        1,
        json!({"partner_id": 42, "to_number": "+2250700000311", "body": "p transcripts: a queued reminder",
               "trigger": "unpaid_reminder", "res_model": "account.move", "res_id": 25}),
    );
}

/// The messages the `t_*` (lease and forward-only state) transcripts were recorded with: 1004578
/// queued (claimed by the lease transcripts), 1004579 delivered.
fn lease_messages(standin: &OdooStandin) {
    standin.insert_with_id(
        "whatsapp.message",
        1_004_578,
        json!({"to_number": "+2250700000312", "body": "t transcripts: a queued message to claim"}),
    );
    standin.insert_with_id(
        "whatsapp.message",
        1_004_579,
        json!({"to_number": "+2250700000313", "body": "t transcripts: a delivered message",
               "wamid": "wamid.T-TRANSCRIPT-DELIVERED", "state": "delivered"}),
    );
}

/// The recording's campaign 2 (campaign 1 is the demo one) and its four recipients: one
/// pending, two read, one sent.
fn campaign_with_recipients(odoo: &OdooStandin) {
    let mut campaign = 0;
    while campaign < 2 {
        campaign = odoo.insert(
            "whatsapp.campaign",
            json!({"name": "r_ transcript campaign"}),
        );
    }
    for state in ["pending", "sent", "read", "read"] {
        let partner = odoo.insert("res.partner", json!({"name": format!("Recipient {state}")}));
        odoo.insert(
            "whatsapp.campaign.recipient",
            json!({"campaign_id": campaign, "partner_id": partner, "state": state}),
        );
    }
}

/// The recording's campaign 16 (`r_whatsapp_campaign_*`): a draft of the database's account
/// with one template step, an audience matching no one.
fn campaign_16(odoo: &OdooStandin) {
    let account = odoo.add_account("Sandbox", "sandbox-0001", 80);
    let template = odoo.insert(
        "whatsapp.template",
        json!({"name": "sidecar_hello", "language": "en_US", "account_id": account,
               "status": "approved"}),
    );
    odoo.insert_with_id(
        "whatsapp.campaign",
        16,
        json!({"name": "r_ transcript campaign (buttons)", "account_id": account,
               "state": "draft", "partner_domain": "[(\"id\", \"=\", 0)]",
               "send_window_start": 0.0, "send_window_end": 24.0, "send_on_weekends": true,
               "throttle_per_minute": 600, "daily_cap": 0}),
    );
    odoo.insert(
        "whatsapp.campaign.step",
        json!({"campaign_id": 16, "name": "Hello", "message_type": "template",
               "template_id": template}),
    );
}

fn given(file: &str) -> Vec<Step> {
    use Step::*;
    match file {
        "a_web_dataset_call_kw_with_session.json"
        | "a_web_session_get_session_info.json"
        | "e_web_dataset_call_kw_bogus_session.json"
        | "h_report_pdf_invoice_with_cookie.json"
        | "h_report_pdf_sale_order_with_cookie.json" => vec![WebLogin],
        "d_read_after_write.json" => vec![Replay("d_write_res_partner_comment.json")],
        "d_unlink_res_partner.json" => vec![Replay("d_create_res_partner.json")],
        "d_create_res_partner_vals_list.json" => vec![Replay("d_create_res_partner.json")],
        "e_action_cancel_sent_quotation_returns_wizard.json"
        | "e_action_cancel_with_disable_cancel_warning.json" => {
            vec![Replay("e_setup_action_quotation_sent.json")]
        }
        "e_read_state_after_cancel.json" | "e_user_error_confirm_cancelled_order.json" => vec![
            Replay("e_setup_action_quotation_sent.json"),
            Replay("e_action_cancel_with_disable_cancel_warning.json"),
        ],
        "f_read_state_after_confirm.json" => vec![Replay("f_action_confirm_draft_order.json")],
        "s_webhook_event_search_read_spool_keys.json" => {
            vec![Replay("s_webhook_event_create_with_spool_key.json")]
        }
        "n_inbound_search_open_activities.json" => {
            vec![Replay("n_inbound_create_activity.json")]
        }
        "n_inbound_read_confirmation_fr.json" => vec![Seed(seed_account)],
        "q_read_partner_after_server_action.json" => {
            vec![Replay("q_ir_actions_server_run_object_write.json")]
        }
        "e_cooldown_web_session_authenticate_correct_password.json"
        | "e_cooldown_jsonrpc_login_during_web_cooldown.json" => vec![FailWebLogins(10)],
        "e_no_cooldown_on_jsonrpc_after_10_failures.json" => vec![FailRpcLogins(10)],
        "p_account_move_read_draft_invoice.json"
        | "p_account_move_action_post.json"
        | "p_account_move_get_portal_url.json"
        | "p_account_move_get_base_url.json"
        | "p_account_move_write_residual_baseline.json"
        | "p_payment_link_wizard_check_access_rights.json"
        | "p_payment_link_wizard_create.json"
        | "p_whatsapp_message_action_cancel.json"
        | "p_account_move_whatsapp_portal_paths.json" => vec![Seed(invoice_25)],
        "p_account_move_action_post_already_posted.json"
        | "p_account_move_read_posted_invoice.json"
        | "p_account_move_read_after_partial_payment.json"
        | "p_account_move_line_search_read.json"
        | "p_account_move_search_read_changed_invoices.json" => {
            vec![Seed(invoice_25), Replay("p_account_move_action_post.json")]
        }
        "p_payment_link_wizard_read_over_jsonrpc.json" => {
            vec![
                Seed(invoice_25),
                Replay("p_payment_link_wizard_create.json"),
            ]
        }
        "p_web_payment_link_wizard_create.json" => vec![Seed(invoice_25), WebLogin],
        "p_web_payment_link_wizard_read.json" => vec![
            Seed(invoice_25),
            WebLogin,
            Replay("p_payment_link_wizard_create.json"),
            Replay("p_web_payment_link_wizard_create.json"),
        ],
        "r_read_group_recipients_by_state.json" => vec![Seed(campaign_with_recipients)],
        "r_whatsapp_campaign_action_generate_queue.json" => vec![Seed(campaign_16)],
        "r_whatsapp_campaign_read_after_generate_queue.json"
        | "r_whatsapp_campaign_action_start.json" => vec![
            Seed(campaign_16),
            Replay("r_whatsapp_campaign_action_generate_queue.json"),
        ],
        "r_whatsapp_campaign_read_after_start.json"
        | "r_whatsapp_campaign_action_start_running.json"
        | "r_whatsapp_campaign_action_generate_queue_running.json" => vec![
            Seed(campaign_16),
            Replay("r_whatsapp_campaign_action_generate_queue.json"),
            Replay("r_whatsapp_campaign_action_start.json"),
        ],
        "t_whatsapp_lease_acquire_standby.json"
        | "t_whatsapp_lease_acquire_renewed.json"
        | "t_whatsapp_lease_release.json" => vec![Replay("t_whatsapp_lease_acquire_taken.json")],
        "t_whatsapp_lease_acquire_after_release.json" => vec![
            Replay("t_whatsapp_lease_acquire_taken.json"),
            Replay("t_whatsapp_lease_release.json"),
        ],
        "t_whatsapp_lease_claim.json" | "t_whatsapp_lease_claim_lost.json" => vec![
            Seed(lease_messages),
            Replay("t_whatsapp_lease_acquire_taken.json"),
        ],
        "t_whatsapp_lease_claim_again.json" => vec![
            Seed(lease_messages),
            Replay("t_whatsapp_lease_acquire_taken.json"),
            Replay("t_whatsapp_lease_claim.json"),
        ],
        "t_whatsapp_message_write_state_backwards.json" => vec![Seed(lease_messages)],
        "t_whatsapp_message_read_after_backwards_write.json" => vec![
            Seed(lease_messages),
            Replay("t_whatsapp_message_write_state_backwards.json"),
        ],
        _ => Vec::new(),
    }
}

/// Transcripts whose values (not only shapes) the stand-in reproduces.
const SAME_VALUES: &[&str] = &[
    "t_whatsapp_lease_acquire_taken.json",
    "t_whatsapp_lease_acquire_renewed.json",
    "t_whatsapp_lease_acquire_after_release.json",
    "t_whatsapp_lease_claim.json",
    "t_whatsapp_lease_claim_again.json",
    "t_whatsapp_lease_claim_lost.json",
    "t_whatsapp_lease_release.json",
    "t_whatsapp_message_write_state_backwards.json",
    "t_whatsapp_message_read_after_backwards_write.json",
    "r_read_group_recipients_by_state.json",
    "r_whatsapp_campaign_action_generate_queue.json",
    "r_whatsapp_campaign_read_after_generate_queue.json",
    "r_whatsapp_campaign_action_start.json",
    "r_whatsapp_campaign_action_start_running.json",
    "r_whatsapp_campaign_action_generate_queue_running.json",
    "a_web_dataset_call_kw_with_session.json",
    "b_common_authenticate.json",
    "b_common_login.json",
    "b_common_version.json",
    "c_read_res_partner.json",
    "c_search_count_sale_order.json",
    "c_search_count_sale_order_domain.json",
    "d_create_res_partner.json",
    "d_create_res_partner_vals_list.json",
    "d_read_after_write.json",
    "d_read_unlinked_record.json",
    "d_unlink_res_partner.json",
    "d_write_res_partner_comment.json",
    "e_action_cancel_sent_quotation_returns_wizard.json",
    "e_action_cancel_with_disable_cancel_warning.json",
    "e_common_login_wrong_password.json",
    "e_cooldown_jsonrpc_login_during_web_cooldown.json",
    "e_missing_record.json",
    "e_no_cooldown_on_jsonrpc_after_10_failures.json",
    "e_read_state_after_cancel.json",
    "e_setup_action_quotation_sent.json",
    "f_action_confirm_draft_order.json",
    "f_read_draft_order_before_confirm.json",
    "g_read_customer_invoice.json",
    "p_account_move_action_post.json",
    "p_account_move_action_post_already_posted.json",
    "p_account_move_line_search_read.json",
    "p_account_move_write_residual_baseline.json",
    "p_payment_link_wizard_check_access_rights.json",
    "p_payment_link_wizard_create.json",
    "p_payment_link_wizard_read_over_jsonrpc.json",
    "p_whatsapp_message_action_cancel.json",
    "g_search_read_customer_invoices.json",
    "i_common_login_with_apikey.json",
    "i_execute_kw_with_apikey.json",
    "n_inbound_lookup_companies.json",
    "n_inbound_read_confirmation_fr.json",
    "n_inbound_read_contacts.json",
    "n_inbound_read_document_names.json",
    "l_read_res_currency.json",
    "l_search_read_res_lang_fr.json",
    "l_search_read_sale_order_lines.json",
    "l_search_read_whatsapp_text_fr.json",
    "q_ir_actions_server_run_code_raises.json",
    "q_ir_actions_server_run_missing.json",
    "q_ir_actions_server_run_object_write.json",
    "q_read_partner_after_server_action.json",
];

/// Replaces the placeholders of a recorded value.
fn substitute(v: &Value, api_key: &str, session: &str) -> Value {
    match v {
        Value::String(s) => Value::from(
            s.replace("<API_KEY>", api_key)
                .replace("<SESSION_ID>", session),
        ),
        Value::Array(a) => {
            Value::Array(a.iter().map(|x| substitute(x, api_key, session)).collect())
        }
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, x)| (k.clone(), substitute(x, api_key, session)))
                .collect(),
        ),
        other => other.clone(),
    }
}

struct Answer {
    status: u16,
    content_type: String,
    location: Option<String>,
    set_cookie: Vec<String>,
    body: Vec<u8>,
}

async fn send(http: &reqwest::Client, base: &str, request: &Value) -> Answer {
    let method = request["method"].as_str().unwrap_or("POST");
    let path = request["path"].as_str().unwrap_or("/");
    let url = format!("{base}{path}");
    let mut rb = match method {
        "GET" => http.get(&url),
        _ => http.post(&url),
    };
    if let Some(headers) = request["headers"].as_object() {
        for (k, v) in headers {
            if let Some(v) = v.as_str() {
                rb = rb.header(k.as_str(), v);
            }
        }
    }
    match &request["body"] {
        Value::Null => {}
        Value::Object(o) if o.contains_key("_raw_body_sent") => {
            rb = rb.body(o["_raw_body_sent"].as_str().unwrap_or("").to_owned());
        }
        body => rb = rb.body(body.to_string()),
    }
    let resp = rb.send().await.unwrap_or_else(|e| panic!("{url}: {e}"));
    let status = resp.status().as_u16();
    let h = resp.headers().clone();
    let header = |n: &str| h.get(n).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let set_cookie = h
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_owned))
        .collect();
    Answer {
        status,
        content_type: header("content-type").unwrap_or_default(),
        location: header("location"),
        set_cookie,
        body: resp.bytes().await.map(|b| b.to_vec()).unwrap_or_default(),
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// Differences in shape between the recorded and the actual value, with their paths.
fn shape_diff(path: &str, recorded: &Value, actual: &Value, out: &mut Vec<String>) {
    if type_name(recorded) != type_name(actual) {
        out.push(format!(
            "{path}: recorded {} {}, got {} {}",
            type_name(recorded),
            short(recorded),
            type_name(actual),
            short(actual)
        ));
        return;
    }
    match (recorded, actual) {
        (Value::Object(r), Value::Object(a)) => {
            let rk: BTreeSet<&String> = r.keys().collect();
            let ak: BTreeSet<&String> = a.keys().collect();
            for k in rk.difference(&ak) {
                out.push(format!("{path}.{k}: missing"));
            }
            for k in ak.difference(&rk) {
                out.push(format!("{path}.{k}: not in the recording"));
            }
            for k in rk.intersection(&ak) {
                shape_diff(&format!("{path}.{k}"), &r[*k], &a[*k], out);
            }
        }
        (Value::Array(r), Value::Array(a)) => {
            if r.len() != a.len() {
                out.push(format!(
                    "{path}: recorded {} items, got {}",
                    r.len(),
                    a.len()
                ));
            }
            for (i, (x, y)) in r.iter().zip(a).enumerate() {
                shape_diff(&format!("{path}[{i}]"), x, y, out);
            }
        }
        _ => {}
    }
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 80 {
        format!("{}...", &s[..80])
    } else {
        s
    }
}

/// A value without the fields that hold the time of the recording.
fn without_clock(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| !["write_date", "create_date", "date_order"].contains(&k.as_str()))
                .map(|(k, x)| (k.clone(), without_clock(x)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(without_clock).collect()),
        other => other.clone(),
    }
}

/// The result of `fields_get` only has to describe the recorded fields it knows, the same way.
fn fields_get_diff(recorded: &Value, actual: &Value, out: &mut Vec<String>) {
    let (Some(r), Some(a)) = (recorded.as_object(), actual.as_object()) else {
        out.push("fields_get: not an object".into());
        return;
    };
    let mut common = 0;
    for (name, desc) in a {
        match r.get(name) {
            Some(rd) => {
                common += 1;
                shape_diff(&format!("result.{name}"), rd, desc, out);
                for key in ["type", "relation"] {
                    if rd.get(key) != desc.get(key) {
                        out.push(format!(
                            "result.{name}.{key}: recorded {:?}, got {:?}",
                            rd.get(key),
                            desc.get(key)
                        ));
                    }
                }
            }
            None if name.starts_with("x_whatsapp") => {}
            None => out.push(format!("result.{name}: a field real Odoo does not have")),
        }
    }
    if common < 20 {
        out.push(format!("fields_get: only {common} recorded fields served"));
    }
}

async fn replay(
    http: &reqwest::Client,
    standin: &OdooStandin,
    file: &str,
    session: &str,
) -> Answer {
    let t = load(file);
    let request = substitute(&t["request"], standin.api_key(), session);
    send(http, &standin.url(), &request).await
}

async fn web_login(http: &reqwest::Client, standin: &OdooStandin, password: &str) -> Answer {
    let body = json!({"jsonrpc": "2.0", "method": "call", "params": {"db": "wa17", "login": "admin", "password": password}, "id": 1});
    send(
        http,
        &standin.url(),
        &json!({"method": "POST", "path": "/web/session/authenticate", "headers": {"Content-Type": "application/json"}, "body": body}),
    )
    .await
}

#[tokio::test]
async fn every_recorded_request_gets_the_recorded_shape_from_the_stand_in() {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let mut failures = Vec::new();
    let mut replayed = 0;
    for file in transcript_files() {
        if NOT_REPLAYED.iter().any(|(f, _)| *f == file) {
            continue;
        }
        let t = load(&file);
        let standin = OdooStandin::start().await;
        let mut session = String::new();
        for step in given(&file) {
            match step {
                Step::Replay(other) => {
                    replay(&http, &standin, other, &session).await;
                }
                Step::WebLogin => {
                    let a = web_login(&http, &standin, "admin").await;
                    session = a
                        .set_cookie
                        .iter()
                        .find_map(|c| {
                            c.split(';')
                                .next()?
                                .strip_prefix("session_id=")
                                .map(str::to_owned)
                        })
                        .expect("session cookie");
                }
                Step::FailWebLogins(n) => {
                    for _ in 0..n {
                        web_login(&http, &standin, "wrong").await;
                    }
                }
                Step::Seed(seed) => seed(&standin),
                Step::FailRpcLogins(n) => {
                    for _ in 0..n {
                        let body = json!({"jsonrpc": "2.0", "method": "call", "params": {"service": "object", "method": "execute_kw", "args": ["wa17", 2, "wrong-password", "res.partner", "search_count", [[]]]}, "id": 1});
                        send(&http, &standin.url(), &json!({"method": "POST", "path": "/jsonrpc", "headers": {"Content-Type": "application/json"}, "body": body})).await;
                    }
                }
            }
        }
        let answer = replay(&http, &standin, &file, &session).await;
        replayed += 1;
        let mut diffs = Vec::new();
        let recorded = &t["response"];
        if recorded["status"].as_u64() != Some(u64::from(answer.status)) {
            diffs.push(format!(
                "status: recorded {}, got {}",
                recorded["status"], answer.status
            ));
        }
        let rec_ct = recorded["headers"]["Content-Type"].as_str().unwrap_or("");
        let mime = |ct: &str| ct.split(';').next().unwrap_or("").trim().to_owned();
        if mime(rec_ct) != mime(&answer.content_type) {
            diffs.push(format!(
                "content type: recorded {rec_ct}, got {}",
                answer.content_type
            ));
        }
        let rec_cookie = recorded["headers"]["Set-Cookie"].as_str().unwrap_or("");
        let has_session_cookie = answer.set_cookie.iter().any(|c| {
            c.starts_with("session_id=") && c.contains("HttpOnly") && c.contains("Path=/")
        });
        if rec_cookie.starts_with("session_id=")
            && (file.contains("authenticate") || file.contains("login_db"))
            && !has_session_cookie
        {
            diffs.push("no session_id cookie".into());
        }
        let body = &recorded["body"];
        if let Some(loc) = recorded["headers"]["Location"].as_str() {
            let path = |l: &str| l.splitn(4, '/').nth(3).unwrap_or("").to_owned();
            match &answer.location {
                Some(got) if path(got) == path(loc) => {}
                other => diffs.push(format!("Location: recorded {loc}, got {other:?}")),
            }
        }
        if body.get("_binary_omitted").is_some() || body.get("first_8_bytes").is_some() {
            let head = body["first_8_bytes"].as_str().unwrap_or("");
            let got =
                String::from_utf8_lossy(&answer.body[..answer.body.len().min(8)]).into_owned();
            if head[..5.min(head.len())] != got[..5.min(got.len())] {
                diffs.push(format!("body starts with {got:?}, recorded {head:?}"));
            }
            if let Some(text) = body["text_head"].as_str() {
                let got = String::from_utf8_lossy(&answer.body);
                if !got.starts_with(&text[..text.find("<h1>").unwrap_or(text.len())]) {
                    diffs.push(format!("body: recorded {text:?}, got {got:?}"));
                }
            }
        } else if let Some(text) = body.get("_non_json_body").and_then(Value::as_str) {
            let got = String::from_utf8_lossy(&answer.body);
            if got != text {
                diffs.push(format!("body: recorded {text:?}, got {got:?}"));
            }
        } else {
            match serde_json::from_slice::<Value>(&answer.body) {
                Err(e) => diffs.push(format!("body is not JSON: {e}")),
                Ok(got) => {
                    if file == "c_fields_get_sale_order.json" {
                        fields_get_diff(&body["result"], &got["result"], &mut diffs);
                    } else {
                        shape_diff("body", body, &got, &mut diffs);
                    }
                    if let Some(err) = body.get("error") {
                        for key in ["code", "message"] {
                            if err[key] != got["error"][key] {
                                diffs.push(format!(
                                    "error.{key}: recorded {}, got {}",
                                    err[key], got["error"][key]
                                ));
                            }
                        }
                        for key in ["name", "message", "arguments"] {
                            if err["data"][key] != got["error"]["data"][key] {
                                diffs.push(format!(
                                    "error.data.{key}: recorded {}, got {}",
                                    err["data"][key], got["error"]["data"][key]
                                ));
                            }
                        }
                    }
                    if SAME_VALUES.contains(&file.as_str())
                        && without_clock(&body["result"]) != without_clock(&got["result"])
                    {
                        diffs.push(format!(
                            "result: recorded {}, got {}",
                            short(&body["result"]),
                            short(&got["result"])
                        ));
                    }
                }
            }
        }
        if !diffs.is_empty() {
            failures.push(format!("{file}:\n  {}", diffs.join("\n  ")));
        }
    }
    assert!(replayed >= 55, "only {replayed} transcripts replayed");
    assert!(
        failures.is_empty(),
        "{} of {replayed} transcripts differ:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

/// What each recorded error body must become.
fn expected_variant(file: &str, e: &OdooError) -> bool {
    use OdooError::*;
    match file {
        "a_web_session_authenticate_with_apikey.json"
        | "e_cooldown_web_session_authenticate_correct_password.json"
        | "e_execute_kw_wrong_password.json"
        | "i_execute_kw_with_wrong_apikey.json" => matches!(e, AccessDenied { .. }),
        "e_access_error_demo_user.json"
        | "e_private_method.json"
        | "h_render_pdf_via_execute_kw_private.json" => {
            matches!(e, AccessError { .. })
        }
        "e_execute_kw_wrong_db.json" => {
            matches!(e, DatabaseMissing { database, .. } if database == "nosuchdb")
        }
        "e_execute_kw_wrong_uid.json" => matches!(e, MissingError { .. }),
        "e_invalid_domain_bad_operator.json" | "e_invalid_domain_malformed.json" => {
            matches!(e, BadDomain { .. })
        }
        "e_invalid_domain_unknown_field.json" => {
            matches!(e, UnknownField { field, .. } if field == "no_such_field")
        }
        "e_read_nonexistent_field.json" => {
            matches!(e, UnknownField { field, model, .. } if field == "no_such_field" && model == "res.partner")
        }
        "e_write_nonexistent_field.json" => {
            matches!(e, UnknownField { field, .. } if field == "x_no_such_field")
        }
        "e_jsonrpc_common_unknown_method.json" => matches!(e, UnknownMethod { .. }),
        "e_nonexistent_method.json" => {
            matches!(e, UnknownMethod { method, .. } if method == "no_such_method")
        }
        "e_nonexistent_model.json" => {
            matches!(e, UnknownModel { model } if model == "no.such.model")
        }
        "e_jsonrpc_unknown_service.json" => {
            matches!(e, Other { name, .. } if name == "builtins.KeyError")
        }
        "l_sale_order_get_portal_url_two_orders.json" => {
            matches!(e, Other { name, message, .. } if name == "builtins.ValueError" && message.contains("Expected singleton"))
        }
        "e_user_error_confirm_cancelled_order.json"
        | "e_user_error_unlink_confirmed_order.json"
        | "p_account_move_action_post_already_posted.json" => {
            matches!(e, UserError { .. })
        }
        "e_validation_error_recursive_partner.json" => matches!(e, ValidationError { .. }),
        // A claim of a model that is not the addon's: a bug, not retried.
        "t_whatsapp_lease_claim_not_whatsapp.json" => {
            matches!(e, UserError { .. }) && !e.is_retryable()
        }
        "q_ir_actions_server_run_code_raises.json" => matches!(e, UserError { .. }),
        // The campaign buttons refuse a campaign in the wrong state.
        "r_whatsapp_campaign_action_start_running.json"
        | "r_whatsapp_campaign_action_generate_queue_running.json" => {
            matches!(e, UserError { .. }) && !e.is_retryable()
        }
        "q_ir_actions_server_run_missing.json" => matches!(e, MissingError { .. }),
        // Not retryable: the daemon reads payment links through the web session instead.
        "p_payment_link_wizard_read_over_jsonrpc.json" => {
            matches!(e, Other { name, message, .. } if name == "builtins.RuntimeError" && message == "object unbound")
                && !e.is_retryable()
        }
        "e_wrong_selection_value.json" => {
            matches!(e, Other { name, .. } if name == "builtins.ValueError")
        }
        "e_web_dataset_call_kw_bogus_session.json"
        | "e_web_dataset_call_kw_no_session.json"
        | "j_websocket_peek_notifications_no_session.json" => matches!(e, SessionExpired { .. }),
        _ => false,
    }
}

#[test]
fn every_recorded_error_body_maps_to_its_variant() {
    let mut checked = 0;
    for file in transcript_files() {
        let t = load(&file);
        let Some(error) = t["response"]["body"].get("error") else {
            continue;
        };
        let rpc: RpcError = serde_json::from_value(error.clone()).expect("error object");
        let params = &t["request"]["body"]["params"];
        let args = params["args"].as_array().cloned().unwrap_or_default();
        let path = t["request"]["path"].as_str().unwrap_or("");
        let service = params["service"].as_str().unwrap_or("web");
        let (model, method) = match service {
            "object" => (
                args.get(3).and_then(Value::as_str).unwrap_or(""),
                args.get(4).and_then(Value::as_str).unwrap_or(""),
            ),
            "web" => (
                params["model"].as_str().unwrap_or("web"),
                params["method"].as_str().unwrap_or(path),
            ),
            s => (s, params["method"].as_str().unwrap_or("")),
        };
        let database = args.first().and_then(Value::as_str).unwrap_or("wa17");
        let site = CallSite {
            service,
            model,
            method,
            database,
            login: "admin",
            credential: if path.starts_with("/web/session") {
                Credential::WebPassword
            } else {
                Credential::ApiKey
            },
        };
        let e = classify(&rpc, &site);
        assert!(expected_variant(&file, &e), "{file}: got {e:?}");
        let shown = e.to_string();
        assert!(!shown.is_empty());
        checked += 1;
    }
    assert_eq!(checked, 33, "every recorded error body is checked");
}

#[test]
fn error_messages_say_what_to_do() {
    let t = load("i_execute_kw_with_wrong_apikey.json");
    let rpc: RpcError = serde_json::from_value(t["response"]["body"]["error"].clone()).unwrap();
    let site = CallSite {
        service: "object",
        model: "res.partner",
        method: "search_count",
        database: "wa17",
        login: "admin",
        credential: Credential::ApiKey,
    };
    assert_eq!(
        classify(&rpc, &site).to_string(),
        "Odoo refused the login for 'admin' on database 'wa17' with the API key: check odoo.login and odoo.api_key (Odoo said: Access Denied)"
    );
    let web = CallSite {
        credential: Credential::WebPassword,
        ..site
    };
    let text = classify(&rpc, &web).to_string();
    assert!(
        text.contains("odoo.password") && text.contains("refuses API keys"),
        "{text}"
    );

    let t = load("e_nonexistent_model.json");
    let rpc: RpcError = serde_json::from_value(t["response"]["body"]["error"].clone()).unwrap();
    let text = classify(
        &rpc,
        &CallSite {
            model: "no.such.model",
            method: "search_read",
            ..site
        },
    )
    .to_string();
    assert!(
        text.contains("no.such.model") && text.contains("install or upgrade"),
        "{text}"
    );

    let t = load("e_execute_kw_wrong_db.json");
    let rpc: RpcError = serde_json::from_value(t["response"]["body"]["error"].clone()).unwrap();
    let text = classify(
        &rpc,
        &CallSite {
            database: "nosuchdb",
            ..site
        },
    )
    .to_string();
    assert!(
        text.starts_with("Odoo has no database 'nosuchdb': check odoo.database"),
        "{text}"
    );
}

/// The addon's notifications of a recorded or received frame list: (type, model, count, ids
/// listed), in order; other channels' notifications are left out.
fn addon_notifications(frames: &[Value]) -> Vec<(String, String, u64, usize)> {
    frames
        .iter()
        .filter(|f| f["opcode"] == 1)
        .flat_map(|f| f["data"].as_array().cloned().unwrap_or_default())
        .filter(|n| n["message"]["type"] == "whatsapp_sidecar/changed")
        .map(|n| {
            let p = &n["message"]["payload"];
            (
                n["message"]["type"].as_str().unwrap_or("").to_owned(),
                p["model"].as_str().unwrap_or("").to_owned(),
                p["count"].as_u64().unwrap_or(0),
                p["ids"].as_array().map_or(0, Vec::len),
            )
        })
        .collect()
}

/// The text frames received within `wait`, as the recorder writes them.
async fn frames_within(
    ws: &mut tokio_tungstenite::WebSocketStream<tokio::net::TcpStream>,
    wait: std::time::Duration,
) -> Vec<Value> {
    use futures_util::StreamExt;
    let mut frames = Vec::new();
    let deadline = tokio::time::Instant::now() + wait;
    while let Ok(Some(Ok(message))) = tokio::time::timeout_at(deadline, ws.next()).await {
        if let tokio_tungstenite::tungstenite::Message::Text(text) = message {
            let data: Value = serde_json::from_str(&text).expect("a JSON frame");
            assert!(
                data.is_array(),
                "a frame is a list of notifications: {data}"
            );
            frames.push(json!({"opcode": 1, "data": data}));
        }
    }
    frames
}

/// Raw `GET /websocket` with `headers`: (status, content type, body).
async fn raw_handshake(
    addr: std::net::SocketAddr,
    headers: &[(&str, &str)],
) -> (u16, String, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let mut request = String::from("GET /websocket HTTP/1.1\r\n");
    for (k, v) in headers {
        request.push_str(&format!("{k}: {v}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes()).await.expect("write");
    let mut buf = vec![0u8; 8192];
    let mut got = Vec::new();
    loop {
        let n = tokio::time::timeout(std::time::Duration::from_secs(5), stream.read(&mut buf))
            .await
            .expect("an answer")
            .expect("read");
        got.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&got).to_string();
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let status: u16 = head
                .split_whitespace()
                .nth(1)
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            let length = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length: ")
                        .map(str::to_owned)
                })
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if status == 101 || body.len() >= length || n == 0 {
                let content_type = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-type: ")
                            .map(str::to_owned)
                    })
                    .unwrap_or_default();
                return (status, content_type, body.to_owned());
            }
        }
        if n == 0 {
            panic!(
                "connection closed before an answer: {}",
                String::from_utf8_lossy(&got)
            );
        }
    }
}

const MESSAGE: &str = "whatsapp.message";

/// `j_websocket_whatsapp_sidecar_channel.json`: the stand-in's bus answers the handshake as the
/// real Odoo did (400 without `Origin`, 101 with an unknown or a real session) and, after the
/// same triggers, pushes the addon's notifications in the recorded shape: one per model and
/// transaction, nothing for a write that does not queue, the missed ones on a resubscription
/// with `last`.
#[tokio::test]
async fn the_bus_websocket_answers_as_recorded() {
    use futures_util::SinkExt;
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    use tokio_tungstenite::tungstenite::Message;
    let recorded = load("j_websocket_whatsapp_sidecar_channel.json");
    let standin = OdooStandin::start().await;
    let addr = standin.addr();
    let host = addr.to_string();
    let origin = format!("http://{addr}");
    let key = "dGhlIHNhbXBsZSBub25jZQ==";
    let base = [
        ("Host", host.as_str()),
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", key),
        ("Sec-WebSocket-Version", "13"),
    ];

    let (status, content_type, body) = raw_handshake(addr, &base).await;
    let want = &recorded["handshake_without_origin"];
    assert_eq!(json!(status), want["status"]);
    assert_eq!(json!(content_type), want["content_type"]);
    assert_eq!(json!(body), want["body"]);

    let unknown_cookie = format!("session_id={}", "0".repeat(40));
    let mut with_unknown = base.to_vec();
    with_unknown.push(("Origin", &origin));
    with_unknown.push(("Cookie", &unknown_cookie));
    let (status, _, _) = raw_handshake(addr, &with_unknown).await;
    assert_eq!(
        json!(status),
        recorded["handshake_with_unknown_session"]["status"]
    );

    // The same triggers as the recording, on the recording's account.
    seed_account(&standin);
    let account = 1;
    let partner = standin.add_partner("Bus recording", "+33612345678", true);
    // The recording's account was created long before (not in the last 50 s).
    standin.age_bus_rows(std::time::Duration::from_secs(60));
    let http = reqwest::Client::new();
    let login = web_login(&http, &standin, "admin").await;
    let sid = login
        .set_cookie
        .iter()
        .find_map(|c| {
            c.strip_prefix("session_id=")
                .and_then(|r| r.split(';').next())
        })
        .expect("a session cookie")
        .to_owned();
    let cookie = format!("session_id={sid}");
    let recorded_status = recorded["response"]["status"].clone();
    let connect = |last: i64| {
        let cookie = cookie.clone();
        let origin = origin.clone();
        let recorded_status = recorded_status.clone();
        async move {
            let mut request = format!("ws://{addr}/websocket")
                .into_client_request()
                .unwrap();
            request
                .headers_mut()
                .insert("Origin", origin.parse().unwrap());
            request
                .headers_mut()
                .insert("Cookie", cookie.parse().unwrap());
            let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
            let (mut ws, response) = tokio_tungstenite::client_async(request, stream)
                .await
                .expect("the stand-in accepts the handshake");
            assert_eq!(json!(response.status().as_u16()), recorded_status);
            for h in ["Upgrade", "Connection", "Set-Cookie"] {
                assert!(
                    response.headers().contains_key(h),
                    "the 101 answer lacks {h}, which Odoo sends"
                );
            }
            let subscribe = json!({"event_name": "subscribe",
                                   "data": {"channels": ["whatsapp_sidecar"], "last": last}});
            ws.send(Message::text(subscribe.to_string())).await.unwrap();
            ws
        }
    };
    let mut ws = connect(0).await;
    let wait = std::time::Duration::from_millis(700);
    let message = |body: &str| {
        json!({"account_id": account, "partner_id": partner, "direction": "out",
               "message_type": "text", "state": "queued", "to_number": "+33612345678",
               "body": body})
    };
    // The triggers go through the daemon's own client, as the recorder's went over /jsonrpc.
    let client =
        whatsapp_sidecar::odoo::OdooClient::new(support::client_config(&standin)).expect("client");
    let recorded_frames = &recorded["frames_received"];
    let mut steps: Vec<(&str, Vec<Value>)> = Vec::new();
    steps.push(("after_subscribe_1s", frames_within(&mut ws, wait).await));
    let one = client.create(MESSAGE, &message("one")).await.unwrap();
    steps.push((
        "after_queued_message_create_2s",
        frames_within(&mut ws, wait).await,
    ));
    let three = client
        .create_many(
            MESSAGE,
            &[message("two"), message("three"), message("four")],
        )
        .await
        .unwrap();
    steps.push((
        "after_three_queued_messages_in_one_create_2s",
        frames_within(&mut ws, wait).await,
    ));
    let mut created = vec![one];
    created.extend(three);
    client
        .write(MESSAGE, &created, &json!({"state": "cancelled"}))
        .await
        .unwrap();
    steps.push((
        "after_messages_written_cancelled_2s",
        frames_within(&mut ws, wait).await,
    ));
    // The addon's "Check settings" button sets check_requested.
    standin.update(
        "whatsapp.account",
        account,
        json!({"check_requested": true}),
    );
    steps.push((
        "after_account_check_settings_2s",
        frames_within(&mut ws, wait).await,
    ));
    standin.update(
        "whatsapp.account",
        account,
        json!({"check_requested": false}),
    );
    steps.push((
        "after_account_check_request_withdrawn_2s",
        frames_within(&mut ws, wait).await,
    ));
    let mut first_id = None;
    for (name, frames) in &steps {
        let want = recorded_frames[*name]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert_eq!(
            addon_notifications(frames),
            addon_notifications(&want),
            "{name}: the stand-in's notifications differ from the recording"
        );
        first_id = first_id.or_else(|| frames.first().map(|f| f["data"][0]["id"].clone()));
        for f in frames {
            for n in f["data"].as_array().unwrap() {
                let recorded_one = &want[0]["data"][0];
                let mut diffs = Vec::new();
                shape_diff("", recorded_one, n, &mut diffs);
                assert!(diffs.is_empty(), "{name}: {diffs:?}");
            }
        }
    }
    let _ = ws.close(None).await;

    // Resubscribing with the first notification's id brings the later ones, in one frame.
    let last = first_id
        .and_then(|v| v.as_i64())
        .expect("a first notification");
    let mut again = connect(last).await;
    let frames = frames_within(&mut again, wait).await;
    let want = recorded["resubscribe_with_last"]["frames_received"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(frames.len(), want.len(), "{frames:?}");
    assert_eq!(addon_notifications(&frames), addon_notifications(&want));
}
