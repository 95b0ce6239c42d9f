//! End-to-end harness: the real `whatsapp-sidecar` binary between the Odoo stand-in (or a real
//! Odoo) and the sandbox playing Meta, everything on 127.0.0.1.
//!
//! - The **sandbox** runs in the test process ([`start_meta`]), so its record of what reached
//!   "the phone" outlives any daemon that is killed; its status webhooks are signed with the
//!   account's app secret and POSTed to the daemon's `/webhook`.
//! - The **daemon** is the binary Cargo built (`CARGO_BIN_EXE_whatsapp-sidecar`), started with
//!   `tokio::process` and a configuration file written to a temporary directory
//!   ([`DaemonConfig`]: `mode = "cloud"`, `graph_url` = the sandbox, short poll intervals). Its
//!   output is kept in [`Logs`] (printed when a test fails, or live with `E2E_LOG=1`).
//! - [`World`] puts them together around an [`OdooStandin`] with one account.
//!
//! The stand-in and the sandbox run on the test's tokio runtime: use
//! `#[tokio::test(flavor = "multi_thread")]`.
//!
//! Test-only; each test binary uses a part of it, hence `dead_code` is allowed.
#![allow(dead_code)]

pub mod failover;

use crate::support::OdooStandin;
use serde_json::{json, Value};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio_util::sync::CancellationToken;
use whatsapp_sidecar::sandbox::config::{PhoneNumberConfig, DEFAULT_PHONE_NUMBER_ID};
use whatsapp_sidecar::sandbox::{SandboxConfig, SandboxHandle};
use whatsapp_sidecar::secret::Secret;
use whatsapp_sidecar::whatsapp::signature::{sign, SIGNATURE_HEADER};

/// The daemon binary: the one Cargo built for this test (integration tests), else
/// `$E2E_DAEMON_BIN`, else `whatsapp-sidecar` beside the running example's directory
/// (`target/release/examples/x` → `target/release/whatsapp-sidecar`: build it first with
/// `cargo build --release`).
pub fn daemon_binary() -> PathBuf {
    if let Some(bin) = option_env!("CARGO_BIN_EXE_whatsapp-sidecar") {
        return PathBuf::from(bin);
    }
    if let Some(bin) = std::env::var_os("E2E_DAEMON_BIN") {
        return PathBuf::from(bin);
    }
    let beside = std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.join("whatsapp-sidecar")));
    match beside {
        Some(bin) if bin.is_file() => bin,
        other => panic!(
            "no daemon binary at {other:?}: run `cargo build --release` first (or set E2E_DAEMON_BIN)"
        ),
    }
}
/// The sandbox's phone number id, used for the account in Odoo.
pub const PHONE_ID: &str = DEFAULT_PHONE_NUMBER_ID;
/// What `OdooStandin::add_account` sets as the app secret and the verify token.
pub const APP_SECRET: &str = "sandbox-secret";
pub const VERIFY_TOKEN: &str = "sandbox-verify";
pub const MESSAGE: &str = "whatsapp.message";
pub const EVENT: &str = "whatsapp.webhook.event";
pub const CONVERSATION: &str = "whatsapp.conversation";
pub const CAMPAIGN: &str = "whatsapp.campaign";
pub const RECIPIENT: &str = "whatsapp.campaign.recipient";

/// A port on 127.0.0.1 that was free a moment ago (bound, then released). The daemon keeps it
/// across restarts, so the sandbox's callback URL stays valid.
pub fn free_port() -> u16 {
    match std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()) {
        Ok(addr) => addr.port(),
        Err(e) => panic!("cannot find a free port on 127.0.0.1: {e}"),
    }
}

/// Waits until `check` holds, polling every 20 ms; fails the test naming `what` after `timeout`.
pub async fn eventually(what: &str, timeout: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    loop {
        if check() {
            return;
        }
        if Instant::now() >= deadline {
            panic!("timed out after {timeout:?} waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Odoo time (`YYYY-MM-DD HH:MM:SS`, UTC).
pub fn odoo_time(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S").to_string()
}

/// A JSON value as text (`false` / missing → empty).
pub fn text(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_owned()
}

// ----- Odoo ---------------------------------------------------------------------------------

/// Where the daemon finds Odoo and how it logs in.
#[derive(Clone)]
pub struct OdooTarget {
    pub url: String,
    pub database: String,
    pub login: String,
    pub api_key: Option<String>,
    pub password: Option<String>,
}

impl std::fmt::Debug for OdooTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OdooTarget")
            .field("url", &self.url)
            .field("database", &self.database)
            .field("login", &self.login)
            .field("api_key", &self.api_key.as_ref().map(|_| "***"))
            .field("password", &self.password.as_ref().map(|_| "***"))
            .finish()
    }
}

impl OdooTarget {
    /// The stand-in, with its API key and password.
    pub fn standin(odoo: &OdooStandin) -> OdooTarget {
        OdooTarget {
            url: odoo.url(),
            database: odoo.database().to_owned(),
            login: odoo.login().to_owned(),
            api_key: Some(odoo.api_key().to_owned()),
            password: Some(odoo.password().to_owned()),
        }
    }

    /// A real Odoo from `ODOO_URL`, `ODOO_DB`, `ODOO_LOGIN` and `ODOO_API_KEY` and/or
    /// `ODOO_PASSWORD`; `Err` says what is missing (the test then prints it and skips).
    pub fn from_env() -> Result<OdooTarget, String> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        let Some(url) = var("ODOO_URL") else {
            return Err("ODOO_URL is not set (also set ODOO_DB, ODOO_LOGIN and ODOO_PASSWORD or ODOO_API_KEY to run against a real Odoo)".into());
        };
        let database = var("ODOO_DB").ok_or("ODOO_URL is set but ODOO_DB is not")?;
        let login = var("ODOO_LOGIN").ok_or("ODOO_URL is set but ODOO_LOGIN is not")?;
        let api_key = var("ODOO_API_KEY");
        let password = var("ODOO_PASSWORD");
        if api_key.is_none() && password.is_none() {
            return Err("ODOO_URL is set but neither ODOO_PASSWORD nor ODOO_API_KEY is".into());
        }
        Ok(OdooTarget {
            url,
            database,
            login,
            api_key,
            password,
        })
    }

    /// A client configuration for tests that read and write Odoo themselves.
    pub fn client_config(&self) -> whatsapp_sidecar::odoo::ClientConfig {
        let url = match self.url.parse() {
            Ok(u) => u,
            Err(e) => panic!("Odoo URL {}: {e}", self.url),
        };
        let mut cfg = whatsapp_sidecar::odoo::ClientConfig::new(url, &self.database, &self.login);
        cfg.api_key = self.api_key.as_deref().map(Secret::new);
        cfg.password = self.password.as_deref().map(Secret::new);
        cfg.timeout = Duration::from_secs(30);
        cfg
    }
}

// ----- Meta (the sandbox, in the test process) ----------------------------------------------

/// The sandbox settings the end-to-end tests use: the default number at `throughput_mps`,
/// statuses within a few hundred milliseconds, fast webhook retries (the daemon is killed and
/// restarted under it), every message read.
pub fn meta_config(throughput_mps: u32) -> SandboxConfig {
    let mut config = SandboxConfig {
        phone_numbers: vec![PhoneNumberConfig {
            throughput_mps,
            // These runs send to thousands of new customers: no daily messaging limit.
            messaging_limit_tier: "TIER_UNLIMITED".into(),
            ..PhoneNumberConfig::default()
        }],
        ..SandboxConfig::default()
    };
    let w = &mut config.webhooks;
    w.sent_delay_ms = 20;
    w.delivered_delay_ms = 60;
    w.read_delay_ms = 120;
    w.jitter_ms = 20;
    w.read_ratio = 1.0;
    w.timeout_ms = 5_000;
    w.retry_initial_ms = 100;
    w.retry_max_delay_ms = 1_000;
    w.retry_for_secs = 600;
    w.concurrency = 64;
    config
}

/// A sandbox on 127.0.0.1:0 in this process; it stops when the returned token is cancelled
/// (or dropped, through its guard).
pub async fn start_meta(config: SandboxConfig) -> (SandboxHandle, tokio_util::sync::DropGuard) {
    let listener = match tokio::net::TcpListener::bind("127.0.0.1:0").await {
        Ok(l) => l,
        Err(e) => panic!("the sandbox cannot bind 127.0.0.1:0: {e}"),
    };
    let shutdown = CancellationToken::new();
    match SandboxHandle::start(listener, config, shutdown.clone()).await {
        Ok(handle) => (handle, shutdown.drop_guard()),
        Err(e) => panic!("the sandbox does not start: {e}"),
    }
}

// ----- the daemon ---------------------------------------------------------------------------

/// The daemon's configuration file, as a TOML table tests can change key by key.
#[derive(Clone, Debug)]
pub struct DaemonConfig {
    pub table: toml::Table,
    pub listen: SocketAddr,
}

impl DaemonConfig {
    /// `mode = "cloud"` against `graph_url`, Odoo at `odoo`, listening on a free port, with
    /// short intervals so tests do not wait for polls.
    pub fn new(odoo: &OdooTarget, graph_url: &str) -> DaemonConfig {
        let listen: SocketAddr = ([127, 0, 0, 1], free_port()).into();
        let mut config = DaemonConfig {
            table: toml::Table::new(),
            listen,
        };
        config.set("odoo.url", odoo.url.as_str());
        config.set("odoo.database", odoo.database.as_str());
        config.set("odoo.login", odoo.login.as_str());
        if let Some(key) = &odoo.api_key {
            config.set("odoo.api_key", key.as_str());
        }
        if let Some(password) = &odoo.password {
            config.set("odoo.password", password.as_str());
        }
        config.set("odoo.timeout_secs", 5);
        config.set("odoo.max_retries", 2);
        config.set("server.listen", listen.to_string());
        config.set("server.shutdown_timeout_secs", 5);
        config.set("whatsapp.mode", "cloud");
        config.set("whatsapp.graph_url", graph_url);
        config.set("whatsapp.timeout_secs", 5);
        config.set("webhook.reply_timeout_secs", 3);
        config.set("webhook.keys_refresh_secs", 1);
        config.set("inbound.poll_interval_ms", 100);
        config.set("inbound.min_batch_interval_ms", 50);
        config.set("inbound.status_batch_interval_ms", 200);
        config.set("metrics.odoo_refresh_secs", 0.05);
        config.set("outbox.poll_interval_secs", 0.1);
        config.set("outbox.flush_interval_secs", 0.05);
        config.set("log.filter", "info");
        config
    }

    /// Sets `section.key` (creating the section).
    pub fn set(&mut self, key: &str, value: impl Into<toml::Value>) {
        let Some((section, name)) = key.split_once('.') else {
            panic!("DaemonConfig::set: {key:?} is not section.key");
        };
        let entry = self
            .table
            .entry(section.to_owned())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        match entry {
            toml::Value::Table(t) => {
                t.insert(name.to_owned(), value.into());
            }
            other => panic!("DaemonConfig::set: {section} is {other:?}, not a table"),
        }
    }

    /// Applies the benches' `--set section.key=value` settings; the value is read as a TOML
    /// value (`500`, `1.5`, `true`, `"text"`), else taken as a string.
    pub fn apply(&mut self, settings: &[String]) {
        for setting in settings {
            let Some((key, value)) = setting.split_once('=') else {
                panic!("--set {setting}: expected section.key=value");
            };
            let value: toml::Value = match format!("v = {value}").parse::<toml::Table>() {
                Ok(mut t) => t
                    .remove("v")
                    .unwrap_or(toml::Value::String(value.to_owned())),
                Err(_) => toml::Value::String(value.to_owned()),
            };
            self.set(key, value);
        }
    }

    /// Drops the short test intervals: the daemon's defaults (the shipped configuration's)
    /// apply, as benchmarks want.
    pub fn default_intervals(&mut self) {
        for key in [
            "webhook.keys_refresh_secs",
            "inbound.poll_interval_ms",
            "inbound.min_batch_interval_ms",
            "inbound.status_batch_interval_ms",
            "metrics.odoo_refresh_secs",
            "outbox.poll_interval_secs",
            "outbox.flush_interval_secs",
        ] {
            self.remove(key);
        }
    }

    /// Removes `section.key`.
    pub fn remove(&mut self, key: &str) {
        if let Some((section, name)) = key.split_once('.') {
            if let Some(toml::Value::Table(t)) = self.table.get_mut(section) {
                t.remove(name);
            }
        }
    }

    /// Writes `whatsapp-sidecar.toml` into `dir`.
    pub fn write(&self, dir: &Path) -> PathBuf {
        let path = dir.join("whatsapp-sidecar.toml");
        let text = match toml::to_string(&self.table) {
            Ok(t) => t,
            Err(e) => panic!("the daemon configuration does not serialize: {e}"),
        };
        if let Err(e) = std::fs::write(&path, text) {
            panic!("cannot write {}: {e}", path.display());
        }
        path
    }

    /// `http://127.0.0.1:<port><path>`
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.listen)
    }
}

/// The daemons' output lines (every run of one test, each prefixed with its run number).
#[derive(Clone, Default)]
pub struct Logs {
    lines: Arc<Mutex<VecDeque<String>>>,
}

/// Lines kept (the oldest are dropped beyond it).
const LOG_LINES: usize = 20_000;

impl Logs {
    fn push(&self, line: String) {
        if std::env::var_os("E2E_LOG").is_some() {
            eprintln!("{line}");
        }
        let mut lines = self.lines.lock().unwrap_or_else(|p| p.into_inner());
        if lines.len() == LOG_LINES {
            lines.pop_front();
        }
        lines.push_back(line);
    }

    /// Every kept line.
    pub fn lines(&self) -> Vec<String> {
        self.lines
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .cloned()
            .collect()
    }

    /// The lines containing every one of `parts`.
    pub fn matching(&self, parts: &[&str]) -> Vec<String> {
        self.lines()
            .into_iter()
            .filter(|l| parts.iter().all(|p| l.contains(p)))
            .collect()
    }

    /// Prints the last 200 lines to stderr.
    pub fn print_tail(&self) {
        eprintln!(
            "----- daemon output (last 200 lines) -----\n{}\n-----",
            self.tail(200)
        );
    }

    /// The last `n` lines, one string.
    pub fn tail(&self, n: usize) -> String {
        let lines = self.lines();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }
}

/// A running daemon process.
pub struct Daemon {
    child: Child,
    pid: u32,
    pub run: usize,
    pub listen: SocketAddr,
}

impl Daemon {
    /// Starts `whatsapp-sidecar run --config <config>` with a clean environment (no inherited
    /// `WHATSAPP_SIDECAR_*` or `RUST_LOG`), its output going to `logs`.
    pub fn spawn(config: &Path, listen: SocketAddr, logs: &Logs, run: usize) -> Daemon {
        let bin = daemon_binary();
        let mut cmd = Command::new(&bin);
        cmd.arg("run").arg("--config").arg(config);
        if let Some(dir) = config.parent() {
            cmd.current_dir(dir);
        }
        for (key, _) in std::env::vars() {
            if key.starts_with("WHATSAPP_SIDECAR_") || key == "RUST_LOG" || key == "NOTIFY_SOCKET" {
                cmd.env_remove(key);
            }
        }
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => panic!("cannot start {}: {e}", bin.display()),
        };
        let Some(pid) = child.id() else {
            panic!("the daemon exited at once");
        };
        if let Some(out) = child.stdout.take() {
            forward(out, logs.clone(), run);
        }
        if let Some(err) = child.stderr.take() {
            forward(err, logs.clone(), run);
        }
        Daemon {
            child,
            pid,
            run,
            listen,
        }
    }

    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Waits until `/readyz` answers 200 (Odoo reachable, logged in) and the webhook receiver
    /// has its keys (the verification handshake with `verify_token` succeeds). Fails the test
    /// if the process exits or `timeout` passes.
    pub async fn ready(&mut self, verify_token: &str, timeout: Duration) {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .unwrap_or_default();
        let readyz = format!("http://{}/readyz", self.listen);
        let handshake = format!(
            "http://{}/webhook?hub.mode=subscribe&hub.verify_token={verify_token}&hub.challenge=42",
            self.listen
        );
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "the daemon (run {}) exited before it was ready: {status}",
                    self.run
                );
            }
            let ok = |r: Result<reqwest::Response, reqwest::Error>| {
                r.map(|r| r.status().as_u16() == 200).unwrap_or(false)
            };
            if ok(http.get(&readyz).send().await) && ok(http.get(&handshake).send().await) {
                return;
            }
            if Instant::now() >= deadline {
                panic!(
                    "the daemon (run {}) was not ready within {timeout:?}",
                    self.run
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `kill -9`: no chance to write anything back.
    pub async fn kill9(mut self) {
        if let Err(e) = self.child.start_kill() {
            panic!("cannot SIGKILL the daemon {}: {e}", self.pid);
        }
        let _ = self.child.wait().await;
    }

    /// SIGTERM, then waits for the exit (at most `timeout`, else SIGKILL and a failed test).
    pub async fn terminate(mut self, timeout: Duration) -> ExitStatus {
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &self.pid.to_string()])
            .status();
        if !matches!(sent, Ok(s) if s.success()) {
            panic!("cannot SIGTERM the daemon {}: {sent:?}", self.pid);
        }
        match tokio::time::timeout(timeout, self.child.wait()).await {
            Ok(Ok(status)) => status,
            Ok(Err(e)) => panic!("waiting for the daemon: {e}"),
            Err(_) => {
                let _ = self.child.start_kill();
                panic!("the daemon did not stop within {timeout:?} of SIGTERM");
            }
        }
    }

    /// The exit status, if it has exited.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        self.child.try_wait().ok().flatten()
    }
}

fn forward(stream: impl tokio::io::AsyncRead + Unpin + Send + 'static, logs: Logs, run: usize) {
    tokio::spawn(async move {
        let mut lines = BufReader::new(stream).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            logs.push(format!("[run {run}] {line}"));
        }
    });
}

// ----- the world ----------------------------------------------------------------------------

/// The stand-in with one WhatsApp account, the sandbox as Meta, and the daemon between them.
pub struct World {
    pub odoo: OdooStandin,
    pub meta: SandboxHandle,
    pub account: i64,
    pub config: DaemonConfig,
    pub logs: Logs,
    pub http: reqwest::Client,
    daemon: Option<Daemon>,
    runs: usize,
    dir: tempfile::TempDir,
    _meta_stop: tokio_util::sync::DropGuard,
}

impl World {
    /// The stand-in and the sandbox, one account (`PHONE_ID`, default of company 1) at
    /// `throughput_mps` on both sides. The daemon is not started yet: change `config`, then
    /// call [`World::start_daemon`].
    pub async fn new(throughput_mps: u32) -> World {
        Self::with_meta(meta_config(throughput_mps), throughput_mps).await
    }

    /// As [`World::new`] with a sandbox configuration of one's own.
    pub async fn with_meta(meta_config: SandboxConfig, throughput_mps: u32) -> World {
        let odoo = OdooStandin::start().await;
        let account = odoo.add_account("Main", PHONE_ID, throughput_mps as i64);
        odoo.update(
            "whatsapp.account",
            account,
            json!({"waba_id": whatsapp_sidecar::sandbox::config::DEFAULT_WABA_ID}),
        );
        let (meta, meta_stop) = start_meta(meta_config).await;
        let config = DaemonConfig::new(&OdooTarget::standin(&odoo), &meta.base_url());
        let callback = match config.url("/webhook").parse() {
            Ok(u) => u,
            Err(e) => panic!("callback URL: {e}"),
        };
        meta.set_callback(Some(callback), Some(Secret::new(APP_SECRET)));
        let dir = match tempfile::tempdir() {
            Ok(d) => d,
            Err(e) => panic!("tempdir: {e}"),
        };
        World {
            odoo,
            meta,
            account,
            config,
            logs: Logs::default(),
            http: reqwest::Client::new(),
            daemon: None,
            runs: 0,
            dir,
            _meta_stop: meta_stop,
        }
    }

    /// Keeps webhooks in a local spool before Odoo (`webhook.spool_file`, in the world's
    /// directory, kept across restarts).
    pub fn use_spool(&mut self) {
        self.config.set("webhook.spool_file", "webhooks.redb");
    }

    /// How many `whatsapp.webhook.event` records hold each raw body.
    pub fn event_bodies(&self) -> std::collections::HashMap<String, usize> {
        let mut bodies = std::collections::HashMap::new();
        for id in self.odoo.search(EVENT, json!([])) {
            *bodies
                .entry(text(&self.odoo.field(EVENT, id, "raw_body")))
                .or_insert(0) += 1;
        }
        bodies
    }

    /// Writes the configuration and starts the daemon (again); waits until it is ready.
    pub async fn start_daemon(&mut self) {
        assert!(self.daemon.is_none(), "the daemon is already running");
        self.runs += 1;
        let path = self.config.write(self.dir.path());
        let mut daemon = Daemon::spawn(&path, self.config.listen, &self.logs, self.runs);
        daemon.ready(VERIFY_TOKEN, Duration::from_secs(20)).await;
        self.daemon = Some(daemon);
    }

    /// Starts the daemon without waiting until it is ready (for a daemon that must not be).
    pub fn spawn_daemon(&mut self) {
        assert!(self.daemon.is_none(), "the daemon is already running");
        self.runs += 1;
        let path = self.config.write(self.dir.path());
        self.daemon = Some(Daemon::spawn(
            &path,
            self.config.listen,
            &self.logs,
            self.runs,
        ));
    }

    /// The configuration of another daemon on the same Odoo and Meta (a standby): its own port
    /// and `lease.name`.
    pub fn peer_config(&self, lease_name: &str) -> DaemonConfig {
        let mut peer = self.config.clone();
        peer.listen = ([127, 0, 0, 1], free_port()).into();
        peer.set("server.listen", peer.listen.to_string());
        peer.set("lease.name", lease_name);
        peer
    }

    /// Starts a daemon of `config` (from [`World::peer_config`], or the world's own) in its
    /// own directory (named after its `lease.name`), its output in the world's logs; waits
    /// until it is ready. The test owns it.
    pub async fn start_peer(&mut self, config: &DaemonConfig) -> Daemon {
        self.runs += 1;
        let name = config
            .table
            .get("lease")
            .and_then(|l| l.get("name"))
            .and_then(toml::Value::as_str)
            .unwrap_or("peer")
            .to_owned();
        let dir = self.dir.path().join(name);
        if let Err(e) = std::fs::create_dir_all(&dir) {
            panic!("cannot create {}: {e}", dir.display());
        }
        let path = config.write(&dir);
        let mut daemon = Daemon::spawn(&path, config.listen, &self.logs, self.runs);
        daemon.ready(VERIFY_TOKEN, Duration::from_secs(20)).await;
        daemon
    }

    /// `/readyz` of the daemon listening on `listen`: its status and body (`None` while it
    /// does not answer).
    pub async fn readyz_of(&self, listen: SocketAddr) -> Option<(u16, String)> {
        let response = self
            .http
            .get(format!("http://{listen}/readyz"))
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .ok()?;
        let status = response.status().as_u16();
        Some((status, response.text().await.unwrap_or_default()))
    }

    /// `/readyz`: its status and body (`None` while it does not answer).
    pub async fn readyz(&self) -> Option<(u16, String)> {
        self.readyz_of(self.config.listen).await
    }

    /// The running daemon.
    pub fn daemon(&mut self) -> &mut Daemon {
        match self.daemon.as_mut() {
            Some(d) => d,
            None => panic!("the daemon is not running"),
        }
    }

    /// `kill -9` the daemon.
    pub async fn kill9(&mut self) {
        if let Some(d) = self.daemon.take() {
            d.kill9().await;
        }
    }

    /// SIGTERM; the exit status.
    pub async fn stop_daemon(&mut self) -> ExitStatus {
        match self.daemon.take() {
            Some(d) => d.terminate(Duration::from_secs(15)).await,
            None => panic!("the daemon is not running"),
        }
    }

    /// A partner opted in (or not) with a French mobile number.
    pub fn partner(&self, name: &str, phone: &str, opted_in: bool) -> i64 {
        self.odoo.add_partner(name, phone, opted_in)
    }

    /// The account's `sidecar_hello` template (the sandbox knows it: no parameters).
    pub fn hello_template(&self, status: &str) -> i64 {
        self.odoo.insert(
            "whatsapp.template",
            json!({"name": "sidecar_hello", "language": "en_US", "account_id": self.account,
                   "status": status, "parameter_format": "positional",
                   "components_json": json!([{"type": "BODY", "text": "Hello! Thanks for choosing us."}]).to_string()}),
        )
    }

    /// `count` opted-in partners (`"{name} {i}"`, mobiles `+33 6 {block} xx xx xx` numbered
    /// from 0), each with one queued message of `template`: the messages' ids.
    pub fn queue_to_many(&self, count: usize, name: &str, block: u32, template: i64) -> Vec<i64> {
        (0..count)
            .map(|i| {
                let phone = format!(
                    "+33 6 {block:02} {:02} {:02} {:02}",
                    i / 10_000,
                    (i / 100) % 100,
                    i % 100
                );
                let partner = self.partner(&format!("{name} {i}"), &phone, true);
                self.queue_template(partner, template)
            })
            .collect()
    }

    /// A template message queued for `partner`.
    pub fn queue_template(&self, partner: i64, template: i64) -> i64 {
        self.odoo.queue_message_with(
            self.account,
            partner,
            json!({"message_type": "template", "template_id": template,
                   "res_model": "res.partner", "res_id": partner}),
        )
    }

    /// A message's state.
    pub fn state(&self, id: i64) -> String {
        text(&self.odoo.field(MESSAGE, id, "state"))
    }

    /// How many of `ids` are in each state.
    pub fn states(&self, ids: &[i64]) -> std::collections::BTreeMap<String, usize> {
        let mut by_state = std::collections::BTreeMap::new();
        for id in ids {
            *by_state.entry(self.state(*id)).or_insert(0) += 1;
        }
        by_state
    }

    /// Waits until every one of `ids` is in one of `states`; on timeout fails the test with
    /// the count by state and the first few records that are not.
    pub async fn until_all(&self, ids: &[i64], states: &[&str], timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let behind: Vec<i64> = ids
                .iter()
                .copied()
                .filter(|id| !states.contains(&self.state(*id).as_str()))
                .collect();
            if behind.is_empty() {
                return;
            }
            if Instant::now() >= deadline {
                let samples: Vec<String> = behind
                    .iter()
                    .take(3)
                    .filter_map(|id| self.odoo.record(MESSAGE, *id))
                    .map(|r| {
                        let keep = [
                            "id",
                            "state",
                            "wamid",
                            "claimed_at",
                            "sent_at",
                            "delivered_at",
                            "read_at",
                            "failed_at",
                            "attempt_count",
                            "next_attempt_at",
                            "error_code",
                            "error_help",
                            "callback_data",
                        ];
                        let r: serde_json::Map<String, Value> = r
                            .into_iter()
                            .filter(|(k, _)| keep.contains(&k.as_str()))
                            .collect();
                        Value::Object(r).to_string()
                    })
                    .collect();
                panic!(
                    "timed out after {timeout:?}: {} of {} messages not in {states:?}; by state: {:?}; e.g.\n{}",
                    behind.len(),
                    ids.len(),
                    self.states(ids),
                    samples.join("\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    // ----- sale orders ------------------------------------------------------------------

    /// Turns "Send new sale orders" on for the account, as the addon does: the switch and the
    /// time it was turned on (orders created before it are never sent).
    pub fn send_new_orders(&self) {
        self.odoo.update(
            "whatsapp.account",
            self.account,
            json!({"auto_send_order_creation": true,
                   "order_creation_enabled_at": odoo_time(chrono::Utc::now())}),
        );
    }

    /// A quotation of company 1 for `partner` with one line (`qty` × `price`), totals set.
    pub fn order(&self, partner: i64, qty: f64, price: f64) -> i64 {
        let total = qty * price;
        // Its final name at once: the daemon (woken by the bus) may read the order as soon as
        // it exists.
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(90_001);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let id = self.odoo.insert(
            "sale.order",
            json!({"name": format!("S{n:05}"), "partner_id": partner, "company_id": 1, "currency_id": 1,
                   "user_id": 2, "state": "draft", "amount_untaxed": total, "amount_tax": 0.0,
                   "amount_total": total}),
        );
        self.odoo.insert(
            "sale.order.line",
            json!({"order_id": id, "name": "Office chair", "product_uom_qty": qty, "price_unit": price}),
        );
        id
    }

    /// The customer writes first: their 24-hour window opens (in the sandbox and, once
    /// processed, in Odoo).
    pub async fn customer_writes(&self, number: &str) {
        self.meta
            .inject(&whatsapp_sidecar::sandbox::InjectRequest {
                from: number.into(),
                text: Some("Bonjour".into()),
                ..Default::default()
            })
            .expect("inject");
        let digits: String = number.chars().filter(char::is_ascii_digit).collect();
        eventually(
            "the customer's window open in Odoo",
            Duration::from_secs(15),
            || {
                !self
                    .odoo
                    .search(
                        CONVERSATION,
                        json!([
                            ["wa_id", "=", digits.clone()],
                            ["window_expires_at", "!=", false]
                        ]),
                    )
                    .is_empty()
            },
        )
        .await;
    }

    /// What reached `number` in the sandbox, oldest first, as request bodies.
    pub fn received(&self, number: &str) -> Vec<Value> {
        self.meta
            .messages(&whatsapp_sidecar::sandbox::RecordFilter {
                to: Some(number.into()),
                limit: Some(1000),
                ..Default::default()
            })
            .expect("sandbox record")
            .iter()
            .filter_map(|m| serde_json::from_slice(&m.body).ok())
            .collect()
    }

    /// The reply-button ids of the interactive messages that reached `number`.
    pub fn buttons_received(&self, number: &str) -> Vec<String> {
        self.received(number)
            .iter()
            .filter_map(|b| b["interactive"]["action"]["buttons"].as_array().cloned())
            .flatten()
            .filter_map(|b| b["reply"]["id"].as_str().map(str::to_owned))
            .collect()
    }

    /// The customer taps the reply button `id`.
    pub fn press(&self, number: &str, id: &str) {
        self.meta
            .inject(&whatsapp_sidecar::sandbox::InjectRequest {
                from: number.into(),
                button_reply: Some(whatsapp_sidecar::sandbox::ReplyRef {
                    id: id.into(),
                    title: Some("Button".into()),
                }),
                ..Default::default()
            })
            .expect("inject a button reply");
    }

    /// The received button presses, newest last.
    pub fn presses(&self) -> Vec<serde_json::Map<String, Value>> {
        let mut ids = self.odoo.search(
            MESSAGE,
            json!([["direction", "=", "in"], ["button_payload", "!=", false]]),
        );
        ids.sort_unstable();
        ids.iter()
            .filter_map(|id| self.odoo.record(MESSAGE, *id))
            .collect()
    }

    /// Waits until every button press has an `action_state`.
    pub async fn presses_handled(&self, count: usize) {
        eventually(
            &format!("{count} button presses acted on"),
            Duration::from_secs(20),
            || {
                let p = self.presses();
                p.len() >= count && p.iter().all(|m| m["action_state"].is_string())
            },
        )
        .await;
    }

    // ----- invoices -----------------------------------------------------------------------

    /// Turns "Send posted invoices" on for the account, as the addon does: the switch and the
    /// time it was turned on (invoices posted before it are never sent).
    pub fn send_posted_invoices(&self) {
        self.odoo.update(
            "whatsapp.account",
            self.account,
            json!({"auto_send_invoice_posted": true,
                   "invoice_posted_enabled_at": odoo_time(chrono::Utc::now())}),
        );
    }

    /// A draft customer invoice of company 1 for `partner`: one line of `amount` (USD).
    pub fn invoice(&self, partner: i64, amount: f64) -> i64 {
        let id = self.odoo.insert(
            "account.move",
            json!({"name": "/", "move_type": "out_invoice", "state": "draft",
                   "partner_id": partner, "company_id": 1, "currency_id": 1,
                   "amount_untaxed": amount, "amount_tax": 0.0, "amount_total": amount,
                   "amount_residual": amount}),
        );
        self.odoo.insert(
            "account.move.line",
            json!({"move_id": id, "name": "Consulting", "display_type": "product",
                   "quantity": 1.0, "price_unit": amount}),
        );
        id
    }

    /// A posted invoice's number.
    pub fn invoice_name(&self, id: i64) -> String {
        text(&self.odoo.field("account.move", id, "name"))
    }

    /// The messages queued about an invoice, oldest first.
    pub fn invoice_messages(&self, invoice: i64) -> Vec<serde_json::Map<String, Value>> {
        let mut ids = self.odoo.search(
            MESSAGE,
            json!([["res_model", "=", "account.move"], ["res_id", "=", invoice]]),
        );
        ids.sort_unstable();
        ids.iter()
            .filter_map(|id| self.odoo.record(MESSAGE, *id))
            .collect()
    }

    /// A media's MIME type and bytes as the phone downloads it from the sandbox.
    pub async fn download_media(&self, media_id: &str) -> (String, Vec<u8>) {
        let base = self.meta.base_url();
        let token = "sandbox-token";
        let info: Value = match self
            .http
            .get(format!("{base}/v26.0/{media_id}"))
            .bearer_auth(token)
            .send()
            .await
        {
            Ok(r) => r.json().await.unwrap_or(Value::Null),
            Err(e) => panic!("media {media_id}: {e}"),
        };
        let url = text(&info["url"]);
        let bytes = match self.http.get(&url).bearer_auth(token).send().await {
            Ok(r) => r.bytes().await.map(|b| b.to_vec()).unwrap_or_default(),
            Err(e) => panic!("media {media_id} at {url}: {e}"),
        };
        (text(&info["mime_type"]), bytes)
    }

    // ----- campaigns ----------------------------------------------------------------------

    /// `count` opted-in contacts with `ref = tag` and the mobiles `+3361xxxxxxx` numbered from
    /// `first`: (partner, number).
    pub fn audience(&self, tag: &str, count: usize, first: usize) -> Vec<(i64, String)> {
        (first..first + count)
            .map(|i| {
                let number = format!("+3361{i:07}");
                let id = self.partner(&format!("Customer {i}"), &number, true);
                self.odoo.update("res.partner", id, json!({"ref": tag}));
                (id, number)
            })
            .collect()
    }

    /// A draft campaign of the account to the contacts with `ref = tag`: one template step per
    /// `(delay hours, condition)`, the whole day as its window, `throttle` messages a minute.
    pub fn campaign(&self, tag: &str, template: i64, steps: &[(f64, &str)], throttle: i64) -> i64 {
        let id = self.odoo.insert(
            CAMPAIGN,
            json!({"name": format!("Campaign {tag}"), "account_id": self.account, "company_id": 1,
                   "user_id": 2, "state": "draft",
                   "partner_domain": format!("[(\"ref\", \"=\", '{tag}'), ('active', '=', True)]"),
                   "send_window_start": 0.0, "send_window_end": 24.0, "send_on_weekends": true,
                   "timezone_rule": "recipient", "throttle_per_minute": throttle, "daily_cap": 0}),
        );
        for (n, (delay, condition)) in steps.iter().enumerate() {
            self.odoo.insert(
                "whatsapp.campaign.step",
                json!({"campaign_id": id, "sequence": 10 * (n + 1), "name": format!("Step {}", n + 1),
                       "delay_hours": delay, "condition": condition, "message_type": "template",
                       "template_id": template}),
            );
        }
        id
    }

    /// "Generate queue", then waits until the daemon has built it.
    pub async fn generate_queue(&self, campaign: i64) {
        self.odoo
            .update(CAMPAIGN, campaign, json!({"queue_requested": true}));
        eventually(
            "the campaign queue generated",
            Duration::from_secs(30),
            || {
                self.odoo
                    .field(CAMPAIGN, campaign, "queue_generated_at")
                    .is_string()
            },
        )
        .await;
    }

    /// "Start", as the button does it.
    pub fn start_campaign(&self, campaign: i64) {
        self.odoo.update(
            CAMPAIGN,
            campaign,
            json!({"state": "running", "started_at": odoo_time(chrono::Utc::now())}),
        );
    }

    // ----- invoices (the account's side) -------------------------------------------------

    /// A customer whose WhatsApp number is known (`whatsapp_number_e164`, as the addon
    /// computes it).
    pub fn customer(&self, name: &str, number: &str) -> i64 {
        let id = self.partner(name, number, true);
        self.odoo
            .update("res.partner", id, json!({"whatsapp_number_e164": number}));
        id
    }

    /// The account's "Template for posted invoices": the sandbox's `sidecar_invoice` (a
    /// document header, the customer, number and total in its body).
    pub fn invoice_template(&self) -> i64 {
        let template = self.odoo.insert(
            "whatsapp.template",
            json!({"name": "sidecar_invoice", "language": "en_US", "account_id": self.account,
                   "status": "approved", "parameter_format": "positional", "header_type": "document",
                   "components_json": json!([
                       {"type": "HEADER", "format": "DOCUMENT"},
                       {"type": "BODY", "text": "Hello {{1}}, your invoice {{2}} of {{3}} is ready: the PDF is attached."},
                       {"type": "BUTTONS", "buttons": [
                           {"type": "QUICK_REPLY", "text": "Pay now"},
                           {"type": "QUICK_REPLY", "text": "Talk to us"}]}]).to_string()}),
        );
        for (n, path) in [(1, "partner_id.name"), (2, "name"), (3, "amount_total")] {
            self.odoo.insert(
                "whatsapp.template.variable",
                json!({"template_id": template, "component": "body", "name": n.to_string(),
                       "sequence": n, "field_path": path}),
            );
        }
        self.odoo.update(
            "whatsapp.account",
            self.account,
            json!({"template_invoice_posted_id": template}),
        );
        template
    }

    // ----- what reached Meta -------------------------------------------------------------

    /// Every send the sandbox accepted (at most 100,000), oldest first.
    pub fn accepted_sends(&self) -> Vec<whatsapp_sidecar::sandbox::RecordedMessage> {
        self.meta
            .messages(&whatsapp_sidecar::sandbox::RecordFilter {
                limit: Some(100_000),
                ..Default::default()
            })
            .expect("sandbox record")
    }

    /// How many sends Meta accepted.
    pub fn accepted(&self) -> u64 {
        self.meta.stats()["accepted"].as_u64().unwrap_or(0)
    }

    /// How many messages are in `state` in Odoo.
    pub fn in_state(&self, state: &str) -> usize {
        self.odoo
            .search(MESSAGE, json!([["state", "=", state]]))
            .len()
    }

    /// How many sends Meta accepted for each recipient (digits).
    pub fn accepted_per_recipient(&self) -> std::collections::BTreeMap<String, usize> {
        let mut counts = std::collections::BTreeMap::new();
        for m in self.accepted_sends() {
            *counts.entry(m.wa_id).or_insert(0) += 1;
        }
        counts
    }

    /// Fails the test unless Meta accepted each of `ids` exactly once (by its callback data,
    /// the Odoo message id), accepted nothing else, and Odoo holds the wamid Meta answered.
    pub fn assert_each_sent_once(&self, ids: &[i64]) {
        for (id, wamid) in accepted_once(&self.accepted_sends(), ids) {
            assert_eq!(
                self.odoo.field(MESSAGE, id, "wamid"),
                json!(wamid),
                "message {id}: Odoo's wamid is the one Meta answered"
            );
        }
    }

    /// POSTs `body` to the daemon's `/webhook`, signed with `secret` (none: no signature).
    pub async fn post_webhook(&self, body: &str, secret: Option<&str>) -> u16 {
        let mut request = self
            .http
            .post(self.config.url("/webhook"))
            .timeout(Duration::from_secs(30))
            .header("content-type", "application/json")
            .body(body.to_owned());
        if let Some(secret) = secret {
            request = request.header(
                SIGNATURE_HEADER,
                sign(&Secret::new(secret), body.as_bytes()),
            );
        }
        match request.send().await {
            Ok(r) => r.status().as_u16(),
            Err(e) => panic!("POST /webhook: {e}"),
        }
    }

    /// `GET /metrics`, parsed (the test fails on an answer other than 200 or text that does not
    /// parse).
    pub async fn scrape(&self) -> Scrape {
        let response = match self.http.get(self.config.url("/metrics")).send().await {
            Ok(r) => r,
            Err(e) => panic!("GET /metrics: {e}"),
        };
        assert_eq!(response.status().as_u16(), 200, "GET /metrics");
        let body = response.text().await.unwrap_or_default();
        match prometheus_parse::Scrape::parse(body.lines().map(|l| Ok(l.to_owned()))) {
            Ok(parsed) => Scrape(parsed),
            Err(e) => panic!("/metrics does not parse ({e}):\n{body}"),
        }
    }
}

/// A parsed `/metrics` answer.
pub struct Scrape(pub prometheus_parse::Scrape);

impl Scrape {
    /// The value of `name` for the sample whose labels include `labels` (counters, gauges; a
    /// histogram's `_count` and `_sum` are their own names). 0 when there is none: a counter
    /// never incremented is absent.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.0
            .samples
            .iter()
            .filter(|s| s.metric == name && labels.iter().all(|(k, v)| s.labels.get(k) == Some(*v)))
            .map(|s| match s.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => v,
                _ => 0.0,
            })
            .sum()
    }

    /// Whether a sample named `name` is there at all.
    pub fn has(&self, name: &str) -> bool {
        self.0.samples.iter().any(|s| s.metric == name)
    }
}

impl Drop for World {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.logs.print_tail();
        }
    }
}

/// Prints the daemon's output when the test fails (dropped while panicking).
pub struct LogsOnPanic(pub Logs);

/// What a daemon started by [`RealOdoo::start_daemon`] needs kept: its config directory, and
/// its logs printed on a panic.
pub struct DaemonKeep {
    _dir: tempfile::TempDir,
    _print: LogsOnPanic,
}

impl Drop for LogsOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.print_tail();
        }
    }
}

/// A status webhook body as Meta sends it, for the account's number.
/// Fails unless Meta's `record` holds each of `ids` exactly once (by its callback data, the
/// Odoo message id) and nothing else; gives the wamid Meta answered for each.
pub fn accepted_once(
    record: &[whatsapp_sidecar::sandbox::RecordedMessage],
    ids: &[i64],
) -> std::collections::HashMap<i64, String> {
    let mut by_message: std::collections::HashMap<String, Vec<String>> = Default::default();
    for r in record {
        by_message
            .entry(r.callback_data.clone().unwrap_or_default())
            .or_default()
            .push(r.wamid.clone());
    }
    let twice: Vec<(&String, &Vec<String>)> =
        by_message.iter().filter(|(_, w)| w.len() > 1).collect();
    assert!(
        twice.is_empty(),
        "DUPLICATE SENDS: {} messages accepted more than once by Meta, e.g. {:?}",
        twice.len(),
        &twice[..twice.len().min(5)]
    );
    let mut missing = Vec::new();
    let mut wamids = std::collections::HashMap::new();
    for id in ids {
        match by_message.get(&id.to_string()) {
            Some(w) => {
                wamids.insert(*id, w[0].clone());
            }
            None => missing.push(*id),
        }
    }
    assert!(
        missing.is_empty(),
        "{} messages never accepted by Meta: {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
    assert_eq!(
        record.len(),
        ids.len(),
        "Meta accepted nothing but these messages"
    );
    wamids
}

pub fn status_webhook(wamid: &str, status: &str, callback_data: Option<&str>) -> String {
    let mut s = json!({"id": wamid, "status": status,
                       "timestamp": chrono::Utc::now().timestamp().to_string(),
                       "recipient_id": "33612345678"});
    if let Some(data) = callback_data {
        s["biz_opaque_callback_data"] = json!(data);
    }
    json!({"object": "whatsapp_business_account", "entry": [{"id": whatsapp_sidecar::sandbox::config::DEFAULT_WABA_ID, "changes": [{
        "field": "messages", "value": {"messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550000001", "phone_number_id": PHONE_ID},
            "statuses": [s]}}]}]})
    .to_string()
}

/// An inbound text from `from` (digits) as Meta's webhook carries it, for the account's number.
pub fn inbound_text_webhook(wamid: &str, from: &str, body: &str) -> String {
    json!({"object": "whatsapp_business_account", "entry": [{"id": whatsapp_sidecar::sandbox::config::DEFAULT_WABA_ID, "changes": [{
        "field": "messages", "value": {"messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550000001", "phone_number_id": PHONE_ID},
            "contacts": [{"profile": {"name": "Dominique"}, "wa_id": from}],
            "messages": [{"from": from, "id": wamid, "timestamp": chrono::Utc::now().timestamp().to_string(),
                          "type": "text", "text": {"body": body}}]}}]}]})
    .to_string()
}

// ----- a real Odoo --------------------------------------------------------------------------

/// What a test made in a real Odoo: its own WhatsApp account (a phone number id no one else
/// uses, not the company's default), an approved `sidecar_hello` template on it, and whatever
/// it adds through [`RealOdoo::create`]; [`RealOdoo::cleanup`] deletes it all.
pub struct RealOdoo {
    pub target: OdooTarget,
    pub client: whatsapp_sidecar::odoo::OdooClient,
    pub account: i64,
    pub template: i64,
    pub phone_id: String,
    pub waba_id: String,
    pub app_secret: String,
    pub verify_token: String,
    pub stamp: String,
    /// The French country record, for partners.
    pub france: Option<i64>,
    created: Mutex<Vec<(String, i64)>>,
}

impl RealOdoo {
    /// Connects with `ODOO_*` and prepares the account and template. `Err(reason)` when the
    /// test must be skipped (no `ODOO_URL`, addon not installed, user not in the technical
    /// group).
    pub async fn setup(throughput_mps: u32) -> Result<RealOdoo, String> {
        use whatsapp_sidecar::odoo::{Domain, OdooClient};
        let target = OdooTarget::from_env()?;
        let client = OdooClient::new(target.client_config())
            .map_err(|e| format!("cannot build an Odoo client for {}: {e}", target.url))?;
        let installed = client
            .search_count(
                "ir.module.module",
                &Domain::leaf("name", "=", "whatsapp_sidecar").and("state", "=", "installed"),
            )
            .await
            .map_err(|e| format!("cannot query {} ({}): {e}", target.url, target.database))?;
        if installed == 0 {
            return Err(format!(
                "the addon whatsapp_sidecar is not installed in {} on {}",
                target.database, target.url
            ));
        }
        let stamp = format!(
            "{}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_micros())
                .unwrap_or(0)
        );
        let phone_id = format!("e2e-{stamp}");
        let waba_id = format!("e2e-waba-{stamp}");
        let app_secret = format!("e2e-secret-{stamp}");
        let verify_token = format!("e2e-verify-{stamp}");
        let account = client
            .create(
                "whatsapp.account",
                &json!({"name": format!("whatsapp-sidecar e2e {stamp}"), "phone_number_id": phone_id,
                        "waba_id": waba_id, "access_token": "e2e-token", "app_secret": app_secret,
                        "verify_token": verify_token, "throughput_mps": throughput_mps,
                        "is_default": false}),
            )
            .await
            .map_err(|e| {
                format!(
                    "cannot create a whatsapp.account as {} (is the user in the group \
                     'WhatsApp Sidecar (technical)'?): {e}",
                    target.login
                )
            })?;
        let fixture = RealOdoo {
            target,
            client,
            account,
            template: 0,
            phone_id,
            waba_id,
            app_secret,
            verify_token,
            stamp,
            france: None,
            created: Mutex::new(vec![("whatsapp.account".to_owned(), account)]),
        };
        let template = match fixture
            .create(
                "whatsapp.template",
                json!({"name": "sidecar_hello", "language": "en_US", "account_id": account,
                       "status": "approved", "parameter_format": "positional",
                       "components_json": json!([{"type": "BODY", "text": "Hello! Thanks for choosing us."}]).to_string()}),
            )
            .await
        {
            Ok(id) => id,
            Err(e) => {
                fixture.cleanup().await;
                return Err(format!("cannot create a template: {e}"));
            }
        };
        let france = fixture
            .client
            .search(
                "res.country",
                &Domain::leaf("code", "=", "FR"),
                &whatsapp_sidecar::odoo::SearchOptions::new(),
            )
            .await
            .ok()
            .and_then(|ids| ids.first().copied());
        Ok(RealOdoo {
            template,
            france,
            ..fixture
        })
    }

    /// Creates a record and remembers it for [`RealOdoo::cleanup`].
    pub async fn create(
        &self,
        model: &str,
        values: Value,
    ) -> Result<i64, whatsapp_sidecar::odoo::OdooError> {
        let id = self.client.create(model, &values).await?;
        self.created
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push((model.to_owned(), id));
        Ok(id)
    }

    /// Creates records in one call and remembers them.
    pub async fn create_many(
        &self,
        model: &str,
        values: &[Value],
    ) -> Result<Vec<i64>, whatsapp_sidecar::odoo::OdooError> {
        let ids = self.client.create_many(model, values).await?;
        let mut created = self.created.lock().unwrap_or_else(|p| p.into_inner());
        created.extend(ids.iter().map(|id| (model.to_owned(), *id)));
        Ok(ids)
    }

    /// An opted-in (or not) partner with a French mobile number.
    pub async fn partner(&self, name: &str, phone: &str, opted_in: bool) -> i64 {
        let mut values = json!({"name": format!("{name} (whatsapp-sidecar e2e {})", self.stamp),
                                "phone": phone, "mobile": phone, "whatsapp_opt_in": opted_in});
        if let Some(fr) = self.france {
            values["country_id"] = json!(fr);
        }
        match self.create("res.partner", values).await {
            Ok(id) => id,
            Err(e) => panic!("cannot create a partner in the real Odoo: {e}"),
        }
    }

    /// The values of a template message queued on this account for `partner`.
    pub fn template_message(&self, partner: i64, phone: &str) -> Value {
        json!({"account_id": self.account, "partner_id": partner, "direction": "out",
               "message_type": "template", "template_id": self.template, "state": "queued",
               "to_number": phone, "res_model": "res.partner", "res_id": partner})
    }

    /// Reads `fields` of `model` records.
    pub async fn read(&self, model: &str, ids: &[i64], fields: &[&str]) -> Vec<Value> {
        match self.client.read::<Value>(model, ids, fields).await {
            Ok(rows) => rows,
            Err(e) => panic!("cannot read {model} from the real Odoo: {e}"),
        }
    }

    /// The sandbox settings for this account: its number at `throughput_mps`, the demo
    /// templates under its WABA, statuses within a few hundred milliseconds.
    /// Starts the daemon binary on this Odoo with `config`, `meta` calling back its webhook
    /// with this account's app secret, and waits until it is ready. Keep the third value alive
    /// as long as the daemon runs: it holds the config's directory and prints the logs on a
    /// panic.
    pub async fn start_daemon(
        &self,
        meta: &SandboxHandle,
        config: &DaemonConfig,
    ) -> (Daemon, Logs, DaemonKeep) {
        meta.set_callback(
            Some(config.url("/webhook").parse().expect("callback URL")),
            Some(whatsapp_sidecar::secret::Secret::new(
                self.app_secret.as_str(),
            )),
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let logs = Logs::default();
        let print = LogsOnPanic(logs.clone());
        let mut daemon = Daemon::spawn(&config.write(dir.path()), config.listen, &logs, 1);
        daemon
            .ready(&self.verify_token, Duration::from_secs(60))
            .await;
        (
            daemon,
            logs,
            DaemonKeep {
                _dir: dir,
                _print: print,
            },
        )
    }

    pub fn meta_config(&self, throughput_mps: u32) -> SandboxConfig {
        let mut config = meta_config(throughput_mps);
        config.phone_numbers = vec![PhoneNumberConfig {
            id: self.phone_id.clone(),
            waba_id: self.waba_id.clone(),
            throughput_mps,
            messaging_limit_tier: "TIER_UNLIMITED".into(),
            ..PhoneNumberConfig::default()
        }];
        for t in &mut config.templates {
            t.waba_id = self.waba_id.clone();
        }
        config.webhooks.app_secret = Some(Secret::new(self.app_secret.as_str()));
        config
    }

    /// Runs a benchmark on the real Odoo of `ODOO_*`: sets up its account at `throughput_mps`,
    /// runs `bench`, deletes what was made (also when `bench` panics, then exits 1). Prints
    /// `SKIPPED: ...` when no real Odoo is configured.
    pub fn run_bench(throughput_mps: u32, bench: impl AsyncFnOnce(&RealOdoo)) {
        use futures_util::FutureExt;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("runtime: {e}"));
        runtime.block_on(async {
            let real = match RealOdoo::setup(throughput_mps).await {
                Ok(real) => real,
                Err(reason) => {
                    println!("SKIPPED: {reason}");
                    return;
                }
            };
            let outcome = std::panic::AssertUnwindSafe(bench(&real))
                .catch_unwind()
                .await;
            real.cleanup().await;
            if outcome.is_err() {
                eprintln!("the bench failed (what it made in Odoo is deleted)");
                std::process::exit(1);
            }
        });
    }

    /// Deletes what the test made (messages, conversations and webhook events of its account
    /// first; then the rest, newest first). Problems are printed, not raised.
    pub async fn cleanup(&self) {
        use whatsapp_sidecar::odoo::{Context, Domain, SearchOptions};
        let client = self.client.with_context(Context::new().active_test(false));
        for model in [
            "whatsapp.message",
            "whatsapp.conversation",
            "whatsapp.webhook.event",
        ] {
            let ids = client
                .search(
                    model,
                    &Domain::leaf("account_id", "=", self.account),
                    &SearchOptions::new(),
                )
                .await
                .unwrap_or_default();
            for chunk in ids.chunks(1000) {
                if let Err(e) = client.unlink(model, chunk).await {
                    eprintln!("cleanup: cannot delete {model} {chunk:?}: {e}");
                }
            }
        }
        let created: Vec<(String, i64)> = self
            .created
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .drain(..)
            .rev()
            .collect();
        let mut by_model: Vec<(String, Vec<i64>)> = Vec::new();
        for (model, id) in created {
            match by_model.last_mut() {
                Some((m, ids)) if *m == model => ids.push(id),
                _ => by_model.push((model, vec![id])),
            }
        }
        for (model, ids) in by_model {
            if model == "whatsapp.message" {
                continue; // deleted above with the account's messages
            }
            if model == "res.company" {
                // Deleting a company Odoo let go of left records pointing at it (creating an
                // invoice then failed on "res.company(3,) does not exist"): archive it.
                if let Err(e) = client
                    .write(&model, &ids, &serde_json::json!({"active": false}))
                    .await
                {
                    eprintln!("cleanup: cannot archive {model} {ids:?}: {e}");
                }
                continue;
            }
            for chunk in ids.chunks(1000) {
                if let Err(e) = client.unlink(&model, chunk).await {
                    eprintln!("cleanup: cannot delete {model} {chunk:?}: {e}");
                }
            }
        }
    }
}

// ----- process figures (benchmarks) ---------------------------------------------------------

/// CPU time and memory of a process, from `/proc/<pid>/stat` and `/proc/<pid>/status`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcSample {
    /// User + system CPU time so far.
    pub cpu: Duration,
    /// Resident memory now (`VmRSS`), KiB.
    pub rss_kib: u64,
    /// Peak resident memory (`VmHWM`), KiB.
    pub peak_rss_kib: u64,
}

/// Clock ticks per second for `/proc/<pid>/stat` (`getconf CLK_TCK`, 100 when unknown).
pub fn clock_ticks() -> u64 {
    static TICKS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .filter(|t| *t > 0)
            .unwrap_or(100)
    })
}

/// The process's figures now; `None` when it is gone or `/proc` is not there.
pub fn proc_sample(pid: u32) -> Option<ProcSample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces): state is field 3, utime 14,
    // stime 15.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    let ticks = clock_ticks();
    let cpu = Duration::from_micros((utime + stime) * 1_000_000 / ticks);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib = |key: &str| {
        status
            .lines()
            .find(|l| l.starts_with(key))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    Some(ProcSample {
        cpu,
        rss_kib: kib("VmRSS:"),
        peak_rss_kib: kib("VmHWM:"),
    })
}

// ----- a counting proxy in front of Odoo (benchmarks) ---------------------------------------

/// What the proxy saw.
#[derive(Debug, Default)]
pub struct ProxyCounts {
    /// HTTP requests forwarded.
    pub requests: u64,
    /// `execute_kw` calls by `(model, method)`.
    pub calls: std::collections::BTreeMap<(String, String), u64>,
    /// `whatsapp.message` ids claimed (written with `state = sending`, or through the lease's
    /// `claim`).
    pub claimed: std::collections::HashSet<i64>,
    /// Writes (`write` or `load` rows) of each `whatsapp.message` after its claim.
    pub writes_after_claim: std::collections::HashMap<i64, u32>,
    /// What those writes set, per message: `method: field=value, ...` (for looking into why a
    /// message was written more often than expected).
    pub write_log: std::collections::HashMap<i64, Vec<String>>,
    /// `load`s Odoo answered with row errors (it rolls the whole call back: nothing written),
    /// by message: the client sends such a `load` again when the errors are serialization
    /// failures (another transaction wrote the same records).
    pub rolled_back_loads: std::collections::HashMap<i64, u32>,
}

/// An HTTP proxy on 127.0.0.1 in front of Odoo that forwards everything unchanged and counts
/// the JSON-RPC calls, and the writes of each `whatsapp.message` after its claim.
pub struct OdooProxy {
    pub url: String,
    pub counts: Arc<Mutex<ProxyCounts>>,
    _stop: tokio_util::sync::DropGuard,
}

impl OdooProxy {
    pub async fn start(upstream: &str) -> OdooProxy {
        use axum::body::Bytes;
        use axum::extract::State;
        use axum::http::{HeaderMap, Method, StatusCode, Uri};
        use axum::response::{IntoResponse, Response};

        #[derive(Clone)]
        struct Proxy {
            upstream: String,
            http: reqwest::Client,
            counts: Arc<Mutex<ProxyCounts>>,
        }

        async fn forward(
            State(p): State<Proxy>,
            method: Method,
            uri: Uri,
            headers: HeaderMap,
            body: Bytes,
        ) -> Response {
            let jsonrpc = uri.path() == "/jsonrpc";
            if !jsonrpc {
                p.counts.lock().unwrap_or_else(|e| e.into_inner()).requests += 1;
            }
            let path = uri.path_and_query().map(|pq| pq.as_str()).unwrap_or("/");
            let mut request = p
                .http
                .request(method, format!("{}{path}", p.upstream))
                .body(body.clone());
            for (name, value) in &headers {
                if name != "host" && name != "content-length" {
                    request = request.header(name, value);
                }
            }
            match request.send().await {
                Ok(r) => {
                    let status = r.status();
                    let headers = r.headers().clone();
                    let bytes = r.bytes().await.unwrap_or_default();
                    if jsonrpc {
                        count(&p.counts, &body, &bytes);
                    }
                    let mut response = (status, bytes).into_response();
                    for (name, value) in &headers {
                        if name != "content-length" && name != "transfer-encoding" {
                            response.headers_mut().append(name, value.clone());
                        }
                    }
                    response
                }
                Err(e) => {
                    if jsonrpc {
                        count(&p.counts, &body, b"");
                    }
                    (StatusCode::BAD_GATEWAY, format!("proxy: {e}")).into_response()
                }
            }
        }

        fn count(counts: &Mutex<ProxyCounts>, body: &[u8], answer: &[u8]) {
            let mut c = counts.lock().unwrap_or_else(|e| e.into_inner());
            c.requests += 1;
            let Ok(request) = serde_json::from_slice::<Value>(body) else {
                return;
            };
            let params = &request["params"];
            if params["service"] != "object" {
                return;
            }
            let args = &params["args"];
            let (Some(model), Some(method)) = (args[3].as_str(), args[4].as_str()) else {
                return;
            };
            *c.calls
                .entry((model.to_owned(), method.to_owned()))
                .or_insert(0) += 1;
            let call = &args[5];
            // The outbox's claim, fenced by the lease: `claim(epoch, model, ids, domain, values)`.
            if model == "whatsapp.lease" && method == "claim" {
                if call[1] == MESSAGE && call[4]["state"] == "sending" {
                    c.claimed.extend(
                        call[2]
                            .as_array()
                            .into_iter()
                            .flatten()
                            .filter_map(Value::as_i64),
                    );
                }
                return;
            }
            if model != MESSAGE {
                return;
            }
            let touched: Vec<(i64, String)> = match method {
                "write" => {
                    let ids: Vec<i64> = call[0]
                        .as_array()
                        .map(|a| a.iter().filter_map(Value::as_i64).collect())
                        .unwrap_or_default();
                    if call[1]["state"] == "sending" {
                        c.claimed.extend(ids.iter().copied());
                        return;
                    }
                    let what = format!("write {}", call[1]);
                    ids.into_iter().map(|id| (id, what.clone())).collect()
                }
                "load" => {
                    let fields: Vec<&str> = call[0]
                        .as_array()
                        .map(|a| a.iter().filter_map(Value::as_str).collect())
                        .unwrap_or_default();
                    let Some(col) = fields.iter().position(|f| *f == "id" || *f == ".id") else {
                        return;
                    };
                    call[1]
                        .as_array()
                        .map(|rows| {
                            rows.iter()
                                .filter_map(|r| {
                                    let id = r[col].as_str()?.parse().ok()?;
                                    let what: Vec<String> = fields
                                        .iter()
                                        .zip(r.as_array()?.iter())
                                        .map(|(f, v)| format!("{f}={v}"))
                                        .collect();
                                    Some((id, format!("load {}", what.join(", "))))
                                })
                                .collect()
                        })
                        .unwrap_or_default()
                }
                _ => return,
            };
            // A `load` answered with row errors wrote nothing (Odoo rolled it back).
            let rolled_back = method == "load"
                && serde_json::from_slice::<Value>(answer).is_ok_and(|a| {
                    a["result"]["messages"]
                        .as_array()
                        .is_some_and(|m| !m.is_empty())
                });
            for (id, what) in touched {
                if rolled_back {
                    if c.claimed.contains(&id) {
                        *c.rolled_back_loads.entry(id).or_insert(0) += 1;
                    }
                    continue;
                }
                if c.claimed.contains(&id) {
                    *c.writes_after_claim.entry(id).or_insert(0) += 1;
                    c.write_log.entry(id).or_default().push(what);
                }
            }
        }

        let listener = match tokio::net::TcpListener::bind("127.0.0.1:0").await {
            Ok(l) => l,
            Err(e) => panic!("the proxy cannot bind 127.0.0.1:0: {e}"),
        };
        let url = match listener.local_addr() {
            Ok(a) => format!("http://{a}"),
            Err(e) => panic!("proxy address: {e}"),
        };
        let counts = Arc::new(Mutex::new(ProxyCounts::default()));
        let state = Proxy {
            upstream: upstream.trim_end_matches('/').to_owned(),
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .pool_max_idle_per_host(32)
                .build()
                .unwrap_or_default(),
            counts: counts.clone(),
        };
        let app = axum::Router::new().fallback(forward).with_state(state);
        let stop = CancellationToken::new();
        let token = stop.clone();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move { token.cancelled().await })
                .await;
        });
        OdooProxy {
            url,
            counts,
            _stop: stop.drop_guard(),
        }
    }
}
