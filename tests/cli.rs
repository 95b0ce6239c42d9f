//! Black-box tests of the `whatsapp-sidecar` binary: configuration errors, `check` against an
//! unreachable Odoo, and `run` starting, answering health checks and stopping on SIGTERM.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_whatsapp-sidecar");

/// A port on 127.0.0.1 that nothing listens on (bound, then released).
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    port
}

fn write_config(dir: &Path, odoo_url: &str, listen: &str, extra: &str) -> PathBuf {
    let path = dir.join("whatsapp-sidecar.toml");
    let text = format!(
        "[odoo]\nurl = \"{odoo_url}\"\ndatabase = \"wa17\"\nlogin = \"admin\"\napi_key = \"k-123\"\n\
         timeout_secs = 2\nmax_retries = 0\n{extra}\n[server]\nlisten = \"{listen}\"\nshutdown_timeout_secs = 5\n\
         [sandbox]\nlisten = \"127.0.0.1:0\"\n"
    );
    std::fs::write(&path, text).expect("write config");
    path
}

/// The binary with a clean environment: no inherited WHATSAPP_SIDECAR_* variables.
fn command(dir: &Path) -> Command {
    let mut cmd = Command::new(BIN);
    cmd.current_dir(dir);
    for (key, _) in std::env::vars() {
        if key.starts_with("WHATSAPP_SIDECAR_") || key == "RUST_LOG" {
            cmd.env_remove(key);
        }
    }
    cmd
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn check_against_an_unreachable_odoo_names_the_url_and_fails() {
    let dir = tempfile::tempdir().expect("tempdir");
    let url = format!("http://127.0.0.1:{}", closed_port());
    let config = write_config(dir.path(), &url, "127.0.0.1:0", "");
    let output = command(dir.path())
        .args(["check", "--config"])
        .arg(&config)
        .output()
        .expect("run check");
    let out = text(&output);
    assert!(!output.status.success(), "check must fail:\n{out}");
    assert!(out.contains("OK   config: valid"), "{out}");
    let fail = out
        .lines()
        .find(|line| line.starts_with("FAIL"))
        .unwrap_or_else(|| panic!("no FAIL line in:\n{out}"));
    assert!(fail.contains(&url), "the FAIL line must name {url}: {fail}");
}

#[test]
fn a_bad_config_key_is_named_by_check_and_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(
        dir.path(),
        "http://127.0.0.1:8069",
        "127.0.0.1:0",
        "urll = \"x\"",
    );
    for sub in ["check", "run"] {
        let output = command(dir.path())
            .args([sub, "--config"])
            .arg(&config)
            .output()
            .expect("run");
        let out = text(&output);
        assert!(!output.status.success(), "{sub} must fail:\n{out}");
        assert!(out.contains("odoo.urll: unknown key"), "{sub}:\n{out}");
    }
}

#[test]
fn a_bad_value_is_named_with_its_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), "htp://x", "127.0.0.1:0", "");
    let output = command(dir.path())
        .args(["check", "--config"])
        .arg(&config)
        .output()
        .expect("run");
    let out = text(&output);
    assert!(!output.status.success());
    assert!(
        out.contains(r#"FAIL config: odoo.url: "htp://x" is not an http(s) URL"#),
        "{out}"
    );
}

#[test]
fn environment_variables_override_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), "htp://bad", "127.0.0.1:0", "");
    let url = format!("http://127.0.0.1:{}", closed_port());
    let output = command(dir.path())
        .args(["check", "--config"])
        .arg(&config)
        .env("WHATSAPP_SIDECAR_ODOO__URL", &url)
        .output()
        .expect("run");
    let out = text(&output);
    assert!(out.contains("OK   config: valid"), "{out}");
    assert!(out.contains(&url), "{out}");
}

async fn get_status(url: &str) -> Option<u16> {
    reqwest::get(url).await.ok().map(|r| r.status().as_u16())
}

#[tokio::test]
async fn run_serves_health_while_odoo_is_down_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let listen_port = closed_port();
    let listen = format!("127.0.0.1:{listen_port}");
    let url = format!("http://127.0.0.1:{}", closed_port());
    let config = write_config(dir.path(), &url, &listen, "");
    let mut child = command(dir.path())
        .args(["run", "--config"])
        .arg(&config)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn run");

    let healthz = format!("http://{listen}/healthz");
    let started = Instant::now();
    let mut health = None;
    while started.elapsed() < Duration::from_secs(20) {
        health = get_status(&healthz).await;
        if health.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(health, Some(200), "/healthz must answer while Odoo is down");
    assert_eq!(
        get_status(&format!("http://{listen}/readyz")).await,
        Some(503),
        "/readyz must say not ready while Odoo is down"
    );

    // The log, read as it comes: stop the daemon only once it has said it retries.
    let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let stderr = child.stderr.take().expect("stderr");
    let reader = {
        let log = log.clone();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stderr)
                .lines()
                .map_while(Result::ok)
            {
                let mut log = log.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        })
    };
    let waiting = Instant::now();
    while !log.lock().unwrap().contains("retrying") {
        assert!(
            waiting.elapsed() < Duration::from_secs(20),
            "the Odoo outage must be logged:\n{}",
            log.lock().unwrap()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let pid = child.id().to_string();
    let killed = Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .expect("kill");
    assert!(killed.success());
    let stopping = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        assert!(
            stopping.elapsed() < Duration::from_secs(15),
            "the daemon did not stop within 15 s of SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let output = child.wait_with_output().expect("output");
    reader.join().expect("log reader");
    let out = format!("{}{}", text(&output), log.lock().unwrap());
    assert!(status.success(), "exit status {status:?}:\n{out}");
    assert!(out.contains(&url), "the log must name the Odoo URL:\n{out}");
}
