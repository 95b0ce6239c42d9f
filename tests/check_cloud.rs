//! `whatsapp-sidecar check` with `mode = "cloud"`: the binary reads the WhatsApp accounts from Odoo
//! (the stand-in) and checks each against the Cloud API (the sandbox, playing Meta), one line per
//! finding, non-zero exit on a FAIL.

mod support;

use support::odoo_standin::OdooStandin;
use tokio_util::sync::CancellationToken;
use whatsapp_sidecar::sandbox::{SandboxConfig, SandboxHandle};

const BIN: &str = env!("CARGO_BIN_EXE_whatsapp-sidecar");

async fn check(odoo: &OdooStandin, graph_url: &str) -> (bool, String) {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("whatsapp-sidecar.toml");
    let text = format!(
        "[odoo]\nurl = \"{}\"\ndatabase = \"{}\"\nlogin = \"{}\"\napi_key = \"{}\"\npassword = \"{}\"\n\
         max_retries = 0\n[whatsapp]\nmode = \"cloud\"\ngraph_url = \"{graph_url}\"\n",
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
    let shutdown = CancellationToken::new();
    let config = SandboxConfig::from_toml_str(&format!("tokens = [{tokens}]")).expect("config");
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
