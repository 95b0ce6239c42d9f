//! The `whatsapp-sidecar sandbox` command as a real process: it starts with no configuration,
//! prints where it listens, accepts `sandbox inject`, and stops cleanly on SIGTERM.

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_whatsapp-sidecar");

#[tokio::test]
async fn the_sandbox_command_listens_injects_and_stops() {
    let mut child = Command::new(BIN)
        .args(["sandbox", "--listen", "127.0.0.1:0"])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let first = lines.next().unwrap().unwrap();
    let url = first
        .strip_prefix("sandbox listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {first:?}"))
        .to_string();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    assert!(!url.ends_with(":0"), "the real port is printed: {url}");

    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let info: Value = http
        .get(format!("{url}/sandbox"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(info["phone_numbers"][0]["id"], "sandbox-0001");

    let inject = Command::new(BIN)
        .args([
            "sandbox",
            "inject",
            "--from",
            "+2250700000001",
            "--text",
            "hi",
            "--name",
            "Awa",
        ])
        .args(["--sandbox-url", &url])
        .output()
        .unwrap();
    assert!(
        inject.status.success(),
        "{}",
        String::from_utf8_lossy(&inject.stderr)
    );
    assert!(String::from_utf8_lossy(&inject.stdout).contains("injected wamid."));

    let inbound: Value = http
        .get(format!("{url}/sandbox/inbound"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(inbound["count"], 1);
    let message = &inbound["data"][0]["webhook"]["entry"][0]["changes"][0]["value"];
    assert_eq!(message["messages"][0]["text"]["body"], "hi");
    assert_eq!(message["contacts"][0]["profile"]["name"], "Awa");

    // A reply to a button that was never sent is refused with the reason, and a non-zero exit.
    let refused = Command::new(BIN)
        .args([
            "sandbox",
            "inject",
            "--from",
            "+2250700000001",
            "--button-reply",
            "nope",
        ])
        .args(["--sandbox-url", &url])
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("send one first"));

    // A number that is not one: the reason, said once (it read "cannot inject: cannot inject:").
    let bad_number = Command::new(BIN)
        .args(["sandbox", "inject", "--from", "123", "--text", "hi"])
        .args(["--sandbox-url", &url])
        .output()
        .unwrap();
    assert!(!bad_number.status.success());
    let stderr = String::from_utf8_lossy(&bad_number.stderr);
    assert!(stderr.contains("\"123\" is not a phone number"), "{stderr}");
    assert_eq!(stderr.matches("cannot inject").count(), 1, "{stderr}");

    // SIGTERM stops it cleanly.
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "exit status {status}");
            break;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the sandbox did not stop on SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_bad_config_file_is_named_in_the_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sandbox.toml");
    std::fs::write(&path, "[webhooks]\nsent_delay = 5\n").unwrap();
    let output = Command::new(BIN)
        .args(["sandbox", "--listen", "127.0.0.1:0", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("sandbox.toml"), "{stderr}");
    assert!(stderr.contains("sent_delay"), "{stderr}");
}
