//! `whatsapp-sidecar check` with `mode = "cloud"`: the binary reads the WhatsApp accounts from Odoo
//! (the stand-in) and checks each against the Cloud API (the sandbox, playing Meta), one line per
//! finding, non-zero exit on a FAIL.

mod support;

use support::odoo_standin::OdooStandin;
use tokio_util::sync::CancellationToken;
use whatsapp_sidecar::sandbox::{SandboxConfig, SandboxHandle};

const BIN: &str = env!("CARGO_BIN_EXE_whatsapp-sidecar");

async fn check(odoo: &OdooStandin, graph_url: &str) -> (bool, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port");
    check_with(
        odoo,
        graph_url,
        &format!("[server]\nlisten = \"127.0.0.1:{port}\"\n"),
    )
    .await
}

/// `check` with more configuration (whole sections) after the Odoo and WhatsApp ones.
async fn check_with(odoo: &OdooStandin, graph_url: &str, extra: &str) -> (bool, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("whatsapp-sidecar.toml");
    let text = format!(
        "[odoo]\nurl = \"{}\"\ndatabase = \"{}\"\nlogin = \"{}\"\napi_key = \"{}\"\npassword = \"{}\"\n\
         max_retries = 0\n[whatsapp]\nmode = \"cloud\"\ngraph_url = \"{graph_url}\"\n{extra}",
        odoo.url(),
        odoo.database(),
        odoo.login(),
        odoo.api_key(),
        odoo.password()
    );
    std::fs::write(&config, text).expect("write config");
    let mut cmd = tokio::process::Command::new(BIN);
    cmd.arg("check")
        .arg("--config")
        .arg(&config)
        .current_dir(dir.path());
    for (key, _) in std::env::vars() {
        if key.starts_with("WHATSAPP_SIDECAR_") {
            cmd.env_remove(key);
        }
    }
    let output = cmd.output().await.expect("run check");
    let out = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), out)
}

async fn sandbox(tokens: &str) -> (SandboxHandle, CancellationToken) {
    sandbox_with(&format!("tokens = [{tokens}]")).await
}

async fn sandbox_with(toml: &str) -> (SandboxHandle, CancellationToken) {
    let shutdown = CancellationToken::new();
    let config = SandboxConfig::from_toml_str(toml).expect("config");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let handle = SandboxHandle::start(listener, config, shutdown.clone())
        .await
        .expect("sandbox");
    (handle, shutdown)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_good_account_passes_and_a_bad_token_or_id_fails_in_plain_words() {
    let odoo = OdooStandin::start().await;
    let (meta, stop) = sandbox("\"sandbox-token\"").await;

    let good = odoo.add_account("Main", "sandbox-0001", 80);
    odoo.update(
        "whatsapp.account",
        good,
        serde_json::json!({"waba_id": "sandbox-waba"}),
    );
    let (ok, out) = check(&odoo, &meta.base_url()).await;
    assert!(ok, "a correct account must pass:\n{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("OK   account \"Main\": access token")),
        "{out}"
    );

    // A token Meta refuses (190).
    odoo.update(
        "whatsapp.account",
        good,
        serde_json::json!({"name": "Old token", "access_token": "expired-token"}),
    );
    let (ok, out) = check(&odoo, &meta.base_url()).await;
    assert!(!ok, "a refused token must fail the check:\n{out}");
    let fail = out
        .lines()
        .find(|l| l.starts_with("FAIL account \"Old token\""))
        .unwrap_or_else(|| panic!("no FAIL line for the bad token:\n{out}"));
    assert!(fail.to_lowercase().contains("token"), "{fail}");
    assert!(
        !out.contains("expired-token"),
        "the token must never be printed:\n{out}"
    );
    // A phone number id Meta does not know.
    odoo.update(
        "whatsapp.account",
        good,
        serde_json::json!({"access_token": "sandbox-token", "phone_number_id": "no-such-number"}),
    );
    let (ok, out) = check(&odoo, &meta.base_url()).await;
    assert!(!ok, "a wrong phone number id must fail the check:\n{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("FAIL account \"Old token\"") && l.contains("no-such-number")),
        "{out}"
    );
    // A Graph API version that is not one: refused before any call, with the fix.
    odoo.update(
        "whatsapp.account",
        good,
        serde_json::json!({"phone_number_id": "sandbox-0001", "graph_api_version": "25.0"}),
    );
    let (ok, out) = check(&odoo, &meta.base_url()).await;
    assert!(
        !ok,
        "a malformed Graph API version must fail the check:\n{out}"
    );
    assert!(
        out.lines().any(
            |l| l.starts_with("FAIL account \"Old token\": Graph API version: '25.0'")
                && l.contains("set Graph API version on the WhatsApp account to e.g. v26.0")
        ),
        "{out}"
    );
    stop.cancel();
}

/// The bus line: subscribed when Odoo serves its websocket; when it does not, a warning that
/// says polling will be used, and `check` still passes (the daemon works without the bus).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_says_whether_the_bus_is_reachable_and_that_polling_is_used_when_not() {
    let odoo = OdooStandin::start().await;
    let (meta, stop) = sandbox("\"sandbox-token\"").await;
    let account = odoo.add_account("Main", "sandbox-0001", 80);
    odoo.update(
        "whatsapp.account",
        account,
        serde_json::json!({"waba_id": "sandbox-waba"}),
    );
    let (ok, out) = check(&odoo, &meta.base_url()).await;
    assert!(ok, "{out}");
    let line = out
        .lines()
        .find(|l| l.contains("odoo bus"))
        .unwrap_or_else(|| panic!("no bus line:\n{out}"));
    assert!(
        line.starts_with("OK   odoo bus: subscribed at ") && line.contains("whatsapp_sidecar"),
        "{line}"
    );
    assert_eq!(odoo.websocket_subscriptions(), 1);

    odoo.set_websocket(false);
    let (ok, out) = check(&odoo, &meta.base_url()).await;
    assert!(ok, "no bus is not a failure:\n{out}");
    let line = out
        .lines()
        .find(|l| l.contains("odoo bus"))
        .unwrap_or_else(|| panic!("no bus line:\n{out}"));
    assert!(
        line.contains("(warning) not reachable")
            && line.contains("HTTP 404")
            && line.contains("will poll"),
        "{line}"
    );
    stop.cancel();
}

/// The lines beyond Odoo and the tokens: the WABA's webhook subscription, the token's expiry,
/// the daemon's user (group, companies), `server.listen`, the alerts' SMTP server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn check_looks_at_the_subscription_the_token_expiry_the_user_the_port_and_smtp() {
    let odoo = OdooStandin::start().await;
    let (meta, stop) = sandbox("\"sandbox-token\"").await;
    let account = odoo.add_account("Main", "sandbox-0001", 80);
    odoo.update(
        "whatsapp.account",
        account,
        serde_json::json!({"waba_id": "sandbox-waba"}),
    );
    let (ok, out) = check(&odoo, &meta.base_url()).await;
    assert!(ok, "{out}");
    for expected in [
        "OK   account \"Main\": webhooks of WhatsApp Business Account sandbox-waba: subscribed app(s): Sidecar Sandbox",
        "OK   account \"Main\": access token expiry: does not expire (a System User token)",
        "OK   odoo user: 'admin' is in the group \"WhatsApp Sidecar (technical)\" and in the companies of the 1 active account(s)",
    ] {
        assert!(out.lines().any(|l| l == expected), "{expected:?} in\n{out}");
    }
    assert!(
        out.lines()
            .any(|l| l.starts_with("OK   server.listen: 127.0.0.1:") && l.ends_with("is free")),
        "{out}"
    );
    stop.cancel();

    // No app subscribed to the WABA, a token that expires in 3 days.
    let soon = chrono::Utc::now() + chrono::Duration::days(3);
    let (meta, stop) = sandbox_with(&format!(
        "tokens = [\"sandbox-token\"]\nwebhook_subscribed = false\ntoken_expires_at = {}",
        soon.timestamp()
    ))
    .await;
    let (ok, out) = check(&odoo, &meta.base_url()).await;
    assert!(!ok, "{out}");
    assert!(
        out.lines().any(|l| l.starts_with(
            "FAIL account \"Main\": webhooks of WhatsApp Business Account sandbox-waba: no app is subscribed"
        ) && l.contains("/sandbox-waba/subscribed_apps")),
        "{out}"
    );
    assert!(
        out.lines().any(|l| l
            .starts_with("OK   account \"Main\": access token expiry: (warning) expires on")
            && l.contains(&soon.format("%Y-%m-%d").to_string())),
        "{out}"
    );
    stop.cancel();
    let (meta, stop) = sandbox("\"sandbox-token\"").await;

    // The daemon's user outside the technical group and the account's company.
    let other = odoo.insert("res.company", serde_json::json!({"name": "Other Co"}));
    odoo.update(
        "whatsapp.account",
        account,
        serde_json::json!({"company_id": other}),
    );
    let admin = odoo.search("res.users", serde_json::json!([["login", "=", "admin"]]))[0];
    odoo.update("res.users", admin, serde_json::json!({"groups_id": []}));
    let (ok, out) = check(&odoo, &meta.base_url()).await;
    assert!(!ok, "{out}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("FAIL odoo user: 'admin' is not in the group")),
        "{out}"
    );
    assert!(
        out.lines().any(|l| l
            .starts_with("FAIL odoo user: 'admin' is not allowed in every company")
            && l.contains("account Main belongs to Other Co")),
        "{out}"
    );
    odoo.update(
        "res.users",
        admin,
        serde_json::json!({"groups_id": [70], "company_ids": [1, other]}),
    );

    // server.listen held by another program; the alerts' SMTP server up, then down.
    let held = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let held_port = held.local_addr().expect("addr").port();
    let smtp = support::smtp::SmtpReceiver::start().await;
    let alerts = |port: u16| {
        format!(
            "[server]\nlisten = \"127.0.0.1:{held_port}\"\n[alerts]\nenabled = true\n\
             smtp_url = \"smtp://127.0.0.1:{port}\"\nfrom = \"sidecar@example.com\"\nto = [\"ops@example.com\"]\n"
        )
    };
    let (ok, out) = check_with(&odoo, &meta.base_url(), &alerts(smtp.port)).await;
    assert!(!ok, "{out}");
    assert!(
        out.lines().any(|l| l.starts_with(&format!(
            "FAIL server.listen: 127.0.0.1:{held_port} cannot be used"
        ))),
        "{out}"
    );
    assert!(
        out.lines().any(|l| l.starts_with(&format!(
            "OK   alerts smtp: 127.0.0.1:{} accepts the connection",
            smtp.port
        ))),
        "{out}"
    );
    assert!(smtp.mails().is_empty(), "no mail sent by check");
    let smtp_port = smtp.port;
    drop(smtp);
    let (_, out) = check_with(&odoo, &meta.base_url(), &alerts(smtp_port)).await;
    assert!(
        out.lines().any(|l| l.starts_with(&format!("FAIL alerts smtp: the SMTP server 127.0.0.1:{smtp_port} refused or could not be reached"))),
        "{out}"
    );
    drop(held);
    stop.cancel();
}

#[tokio::test]
async fn check_says_who_holds_the_sending_lease() {
    let odoo = OdooStandin::start().await;
    let (meta, stop) = sandbox("\"sandbox-token\"").await;
    let account = odoo.add_account("Main", "sandbox-0001", 80);
    odoo.update(
        "whatsapp.account",
        account,
        serde_json::json!({"waba_id": "sandbox-waba"}),
    );
    let lease = "[lease]\nname = \"wa-check\"\n";
    let (_, out) = check_with(&odoo, &meta.base_url(), lease).await;
    assert!(
        out.lines().any(|l| l.starts_with(
            "OK   sending lease: free: no daemon has held it yet; this one (lease.name = wa-check)"
        )),
        "{out}"
    );

    // Another daemon holds it (as its acquire writes it).
    odoo.insert(
        "whatsapp.lease",
        serde_json::json!({"name": "sending", "holder": "wa-other", "epoch": 3,
                           "expires_at": odoo_time(chrono::Utc::now() + chrono::Duration::minutes(5))}),
    );
    let (_, out) = check_with(&odoo, &meta.base_url(), lease).await;
    assert!(
        out.lines().any(|l| l
            == "OK   sending lease: held by wa-other (epoch 3): this daemon (lease.name = wa-check) starts as its standby"),
        "{out}"
    );
    stop.cancel();
}

fn odoo_time(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}
