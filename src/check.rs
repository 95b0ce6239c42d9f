//! `whatsapp-sidecar check`: one line per check, `OK` or `FAIL` with the reason (and `WARN` for
//! what works but needs attention), so an administrator sees at once what to fix. Returns false
//! when any check failed.
//!
//! Order: the configuration; Odoo (reachable, version, database, login, report session, addon,
//! rights: [`crate::odoo::diagnose`]); then, with `mode = "cloud"`, every active WhatsApp account
//! stored in Odoo (token, ids, Graph API version, quality, throughput:
//! [`crate::whatsapp::CloudClient::check_account`]), each called with the account's own Graph API
//! version. When Odoo answers, whether invoice details can carry a payment link (Odoo's
//! `payment` module and the right to create `payment.link.wizard`): a warning otherwise, since
//! the portal link still goes. With `webhook.spool_file`, whether the file can be used and the
//! addon knows `spool_key`. Then the daemon's Odoo user (the technical group, the companies of
//! the accounts), whether `server.listen` can be used, and with `[alerts]` the SMTP server
//! (connection and login, no mail). Each account's check includes its WABA's webhook
//! subscription and the token's expiry as Meta reports them.

use crate::accounts::mapping;
use crate::config::{Config, Mode};
use crate::odoo::{Access, CheckLine, Domain, OdooClient, OdooError, SearchOptions};
use crate::whatsapp::{CheckStatus, CloudClient};
use serde_json::Value;
use std::io::Write;
use std::path::Path;

/// Runs every check and prints each line to `out` as soon as it is known.
pub async fn run(config_path: Option<&Path>, out: &mut impl Write) -> bool {
    let config = match Config::load(config_path) {
        Ok(config) => config,
        Err(err) => {
            for problem in &err.problems {
                print(out, CheckLine::fail("config", problem));
            }
            return false;
        }
    };
    let source = config
        .source
        .as_deref()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "environment only".to_owned());
    let mut all_ok = print(out, CheckLine::ok("config", format!("valid ({source})")));

    let odoo_lines = crate::odoo::diagnose(&config.odoo.client_config()).await;
    let odoo_ok = odoo_lines.iter().all(|line| line.ok);
    for line in odoo_lines {
        all_ok &= print(out, line);
    }

    if odoo_ok {
        if let Ok(odoo) = OdooClient::new(config.odoo.client_config()) {
            let access = odoo
                .check_access_rights(crate::invoices::PAYMENT_LINK_MODEL, Access::Create)
                .await;
            print(out, payment_links_line(access));
        }
    }

    if let Some(path) = &config.webhook.spool_file {
        all_ok &= print(out, spool_line(path));
        if odoo_ok {
            if let Ok(odoo) = OdooClient::new(config.odoo.client_config()) {
                let fields = odoo.fields_get(SPOOLED_MODEL, &["type"]).await;
                all_ok &= print(
                    out,
                    spool_key_line(fields.map(|f| f.contains_key("spool_key"))),
                );
            }
        }
    }

    if odoo_ok {
        print(out, bus_line(&config).await);
        if let Ok(odoo) = OdooClient::new(config.odoo.client_config()) {
            for line in user_lines(&odoo, &config.odoo.login).await {
                all_ok &= print(out, line);
            }
            all_ok &= print(out, lease_line(&odoo, &config.lease.name).await);
        }
    }
    all_ok &= print(out, listen_line(config.server.listen).await);
    if config.alerts.enabled {
        all_ok &= print(out, smtp_line(&config.alerts).await);
    }

    match config.whatsapp.mode {
        Mode::Sandbox => {
            print(
                out,
                CheckLine::ok(
                    "whatsapp",
                    "mode = \"sandbox\": the built-in simulator answers; no Meta account is checked",
                ),
            );
        }
        Mode::Cloud if !odoo_ok => {
            all_ok &= print(
                out,
                CheckLine::fail(
                    "whatsapp accounts",
                    "not checked: the accounts (and their tokens) are read from Odoo, which failed above",
                ),
            );
        }
        Mode::Cloud => all_ok &= check_cloud_accounts(&config, out).await,
    }
    all_ok
}

async fn check_cloud_accounts(config: &Config, out: &mut impl Write) -> bool {
    let odoo = match OdooClient::new(config.odoo.client_config()) {
        Ok(odoo) => odoo,
        Err(err) => return print(out, CheckLine::fail("whatsapp accounts", err.to_string())),
    };
    let accounts: Vec<Value> = match odoo
        .search_read(
            mapping::ACCOUNT_MODEL,
            &Domain::all(),
            mapping::ACCOUNT_FIELDS,
            &SearchOptions::new().order("id"),
        )
        .await
    {
        Ok(rows) => rows,
        Err(err) => {
            return print(
                out,
                CheckLine::fail(
                    "whatsapp accounts",
                    format!("cannot read whatsapp.account from Odoo: {err}"),
                ),
            )
        }
    };
    if accounts.is_empty() {
        return print(
            out,
            CheckLine::fail(
                "whatsapp accounts",
                "none in Odoo: create one in WhatsApp > Configuration > Accounts",
            ),
        );
    }
    let client = match CloudClient::new(config.whatsapp.client_config()) {
        Ok(client) => client,
        Err(err) => return print(out, CheckLine::fail("whatsapp client", err.to_string())),
    };
    let mut all_ok = true;
    for record in accounts {
        // The same reading (and token handling) as the account buttons.
        let account = match mapping::AccountRow::from_record(&record) {
            Ok(account) => account,
            Err(err) => {
                all_ok &= print(out, CheckLine::fail("whatsapp account", err));
                continue;
            }
        };
        let handle = account.handle();
        let report = client.check_account(&handle).await;
        for line in report.lines {
            let name = format!("account {:?}: {}", account.name, line.item);
            let printed = match line.status {
                CheckStatus::Ok => CheckLine::ok(&name, line.detail),
                CheckStatus::Warn => CheckLine::ok(&name, format!("(warning) {}", line.detail)),
                CheckStatus::Fail => CheckLine::fail(&name, line.detail),
            };
            all_ok &= print(out, printed);
        }
    }
    all_ok
}

/// Whether invoice details can carry Odoo's payment links: never a failure (the portal link
/// still goes), a warning that says what to do otherwise.
fn payment_links_line(access: Result<bool, OdooError>) -> CheckLine {
    const NAME: &str = "payment links";
    match access {
        Ok(true) => CheckLine::ok(
            NAME,
            "payment.link.wizard available: invoice details carry a link to pay the amount due",
        ),
        Ok(false) => CheckLine::ok(
            NAME,
            "(warning) the daemon's user may not create payment links (payment.link.wizard): \
             invoice details carry the portal link only; give the user the Invoicing right \
             (Accounting > Billing), which the group 'WhatsApp Sidecar (technical)' implies",
        ),
        Err(OdooError::UnknownModel { .. }) => CheckLine::ok(
            NAME,
            "(warning) Odoo's 'payment' module is not installed: invoice details carry the \
             portal link only; install 'Payment Providers' (with Invoicing's online payment) \
             for a link to pay the amount due",
        ),
        Err(e) => CheckLine::ok(
            NAME,
            format!("(warning) cannot tell whether payment links work ({e}): invoice details carry the portal link at least"),
        ),
    }
}

const SPOOL: &str = "webhook spool";
const SPOOLED_MODEL: &str = "whatsapp.webhook.event";

/// Whether the spool file can be used: opened (and closed again) when it exists, its directory
/// written to when it does not; held by a running daemon is fine.
fn spool_line(path: &Path) -> CheckLine {
    if !path.exists() {
        let probe = path.with_file_name(format!(".whatsapp-sidecar-check-{}", std::process::id()));
        return match std::fs::write(&probe, b"") {
            Ok(()) => {
                let _ = std::fs::remove_file(&probe);
                CheckLine::ok(
                    SPOOL,
                    format!("{} does not exist yet; the daemon creates it at start", path.display()),
                )
            }
            Err(e) => CheckLine::fail(
                SPOOL,
                format!(
                    "cannot create files in {} ({e}): give the daemon's user a writable directory for webhook.spool_file",
                    path.parent().unwrap_or(path).display()
                ),
            ),
        };
    }
    match crate::webhook::Spool::open(path) {
        Ok(spool) => CheckLine::ok(
            SPOOL,
            format!(
                "{} ({} webhooks not in Odoo yet)",
                path.display(),
                spool.len()
            ),
        ),
        Err(crate::webhook::SpoolError::InUse { .. }) => CheckLine::ok(
            SPOOL,
            format!("{} is open in a running daemon", path.display()),
        ),
        Err(e) => CheckLine::fail(SPOOL, e.to_string()),
    }
}

/// Who holds the sending lease, and whether the addon has it at all (without it the daemon
/// never sends).
async fn lease_line(odoo: &OdooClient, name: &str) -> CheckLine {
    const NAME: &str = "sending lease";
    let rows = odoo
        .search_read::<Value>(
            crate::lease::MODEL,
            &Domain::leaf("name", "=", crate::lease::NAME),
            &["holder", "epoch", "expires_at"],
            &SearchOptions::new().limit(1),
        )
        .await;
    let rows = match rows {
        Ok(rows) => rows,
        Err(OdooError::UnknownModel { .. }) => {
            return CheckLine::fail(
                NAME,
                "the addon in Odoo has no whatsapp.lease: it is older than this daemon, which \
                 sends nothing without it; upgrade it (Apps > WhatsApp Sidecar > Upgrade, or \
                 odoo-bin -u whatsapp_sidecar)",
            )
        }
        Err(e) => return CheckLine::fail(NAME, e.to_string()),
    };
    let Some(row) = rows.first() else {
        return CheckLine::ok(
            NAME,
            format!(
                "free: no daemon has held it yet; this one (lease.name = {name}) takes it at start"
            ),
        );
    };
    let holder = row.get("holder").and_then(Value::as_str).unwrap_or("");
    let epoch = row.get("epoch").and_then(Value::as_i64).unwrap_or(0);
    let live = row
        .get("expires_at")
        .and_then(Value::as_str)
        .and_then(crate::odoo::parse_datetime)
        .is_some_and(|at| at > chrono::Utc::now());
    if !live {
        return CheckLine::ok(
            NAME,
            format!("free (last held by {holder}, epoch {epoch}); this daemon (lease.name = {name}) takes it at start"),
        );
    }
    if holder == name {
        return CheckLine::ok(
            NAME,
            format!(
                "(warning) held by a daemon named {name}, like this one (epoch {epoch}): fine if \
                 it is this daemon running or just restarted; two daemons on one database need \
                 their own lease.name each"
            ),
        );
    }
    CheckLine::ok(
        NAME,
        format!("held by {holder} (epoch {epoch}): this daemon (lease.name = {name}) starts as its standby"),
    )
}

/// Whether the addon in Odoo knows the spool's keys (`whatsapp.webhook.event.spool_key`).
fn spool_key_line(has_field: Result<bool, OdooError>) -> CheckLine {
    const NAME: &str = "addon ready for the webhook spool";
    match has_field {
        Ok(true) => CheckLine::ok(NAME, "whatsapp.webhook.event has spool_key"),
        Ok(false) => CheckLine::fail(
            NAME,
            "whatsapp.webhook.event has no spool_key: the addon in Odoo is older than \
             webhook.spool_file; upgrade it (Apps > WhatsApp Sidecar > Upgrade, or odoo-bin -u \
             whatsapp_sidecar), or remove webhook.spool_file",
        ),
        Err(e) => CheckLine::fail(NAME, e.to_string()),
    }
}

/// Whether Odoo's bus can be subscribed to. Never a failure: without it the daemon polls.
async fn bus_line(config: &Config) -> CheckLine {
    const NAME: &str = "odoo bus";
    let polls = "the daemon will poll Odoo at the usual rates (a change made in Odoo waits for \
                 the next poll)";
    if !config.bus.enabled {
        return CheckLine::ok(NAME, format!("bus.enabled = false: {polls}"));
    }
    if config.odoo.password.as_ref().is_none_or(|p| p.is_blank()) {
        return CheckLine::ok(
            NAME,
            format!(
                "(warning) not used: it needs odoo.password (Odoo's web session refuses API \
                 keys); {polls}"
            ),
        );
    }
    let odoo = match OdooClient::new(config.odoo.client_config()) {
        Ok(odoo) => odoo,
        Err(e) => return CheckLine::ok(NAME, format!("(warning) {e}; {polls}")),
    };
    let url = config.bus.url.as_ref().unwrap_or(&config.odoo.url);
    let client = match crate::bus::BusClient::new(odoo, url, config.odoo.timeout) {
        Ok(client) => client,
        Err(e) => return CheckLine::ok(NAME, format!("(warning) {e}; {polls}")),
    };
    match client.connect(0).await {
        Ok(connection) => {
            connection.close().await;
            CheckLine::ok(
                NAME,
                format!(
                    "subscribed at {} (channel {}): changes made in Odoo wake the daemon at \
                     once; idle components poll every {} s",
                    client.url(),
                    crate::bus::protocol::CHANNEL,
                    config.bus.slow_poll_interval.as_secs_f64()
                ),
            )
        }
        Err(e) => CheckLine::ok(NAME, format!("(warning) not reachable: {e}; {polls}")),
    }
}

/// The daemon's Odoo user: in the group "WhatsApp Sidecar (technical)" and allowed in the
/// company of every active account (else it cannot read that account's messages).
async fn user_lines(odoo: &OdooClient, login: &str) -> Vec<CheckLine> {
    const NAME: &str = "odoo user";
    let users: Result<Vec<Value>, OdooError> = odoo
        .search_read(
            "res.users",
            &Domain::leaf("login", "=", login),
            &["groups_id", "company_ids"],
            &SearchOptions::new().limit(1),
        )
        .await;
    let group: Result<Vec<Value>, OdooError> = odoo
        .search_read(
            "ir.model.data",
            &Domain::leaf("module", "=", "whatsapp_sidecar")
                .and("name", "=", "group_whatsapp_technical")
                .and("model", "=", "res.groups"),
            &["res_id"],
            &SearchOptions::new().limit(1),
        )
        .await;
    let accounts: Result<Vec<Value>, OdooError> = odoo
        .search_read(
            mapping::ACCOUNT_MODEL,
            &Domain::leaf("active", "=", true),
            &["name", "company_id"],
            &SearchOptions::new().order("id"),
        )
        .await;
    let (user, group, accounts) = match (users, group, accounts) {
        (Ok(u), Ok(g), Ok(a)) => (u, g, a),
        (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
            return vec![CheckLine::fail(
                NAME,
                format!("cannot read the user's groups and companies: {e}"),
            )]
        }
    };
    let Some(user) = user.first() else {
        return vec![CheckLine::fail(
            NAME,
            format!("no user with the login '{login}'"),
        )];
    };
    let ids = |v: &Value| -> Vec<i64> {
        v.as_array()
            .map(|a| a.iter().filter_map(Value::as_i64).collect())
            .unwrap_or_default()
    };
    let groups = ids(&user["groups_id"]);
    let companies = ids(&user["company_ids"]);
    let mut lines = Vec::new();
    match group.first().and_then(|g| g["res_id"].as_i64()) {
        None => lines.push(CheckLine::fail(
            NAME,
            "the group whatsapp_sidecar.group_whatsapp_technical does not exist: install or upgrade the whatsapp_sidecar addon",
        )),
        Some(g) if !groups.contains(&g) => lines.push(CheckLine::fail(
            NAME,
            format!(
                "'{login}' is not in the group \"WhatsApp Sidecar (technical)\": add it (Settings > Users & Companies > Groups, in developer mode)"
            ),
        )),
        Some(_) => {}
    }
    let mut outside = Vec::new();
    for a in &accounts {
        let company = &a["company_id"];
        if let Some(id) = company.get(0).and_then(Value::as_i64) {
            if !companies.contains(&id) {
                outside.push(format!(
                    "account {} belongs to {}",
                    a["name"].as_str().unwrap_or("?"),
                    company.get(1).and_then(Value::as_str).unwrap_or("?")
                ));
            }
        }
    }
    if !outside.is_empty() {
        lines.push(CheckLine::fail(
            NAME,
            format!(
                "'{login}' is not allowed in every company of an account ({}): add those companies to its Allowed Companies (Settings > Users)",
                outside.join("; ")
            ),
        ));
    }
    if lines.is_empty() {
        lines.push(CheckLine::ok(
            NAME,
            format!(
                "'{login}' is in the group \"WhatsApp Sidecar (technical)\" and in the companies of the {} active account(s)",
                accounts.len()
            ),
        ));
    }
    lines
}

/// Whether `run` can listen on `server.listen`: free, or held by a daemon answering `/healthz`.
async fn listen_line(addr: std::net::SocketAddr) -> CheckLine {
    const NAME: &str = "server.listen";
    match tokio::net::TcpListener::bind(addr).await {
        Ok(_) => CheckLine::ok(NAME, format!("{addr} is free")),
        Err(e) => {
            let url = format!("http://{addr}/healthz");
            let ours = async {
                let client = reqwest::Client::builder()
                    .timeout(std::time::Duration::from_secs(2))
                    .build()
                    .ok()?;
                let body = client.get(&url).send().await.ok()?.text().await.ok()?;
                Some(body.trim() == "ok")
            };
            if ours.await == Some(true) {
                CheckLine::ok(
                    NAME,
                    format!("{addr} is in use by a running daemon (its /healthz answers)"),
                )
            } else {
                CheckLine::fail(
                    NAME,
                    format!(
                        "{addr} cannot be used ({e}): another program holds it; pick another server.listen or stop that program"
                    ),
                )
            }
        }
    }
}

/// The SMTP server of the alerts: reachable, greeting, accepting the credentials (no mail sent).
async fn smtp_line(settings: &crate::alerts::AlertSettings) -> CheckLine {
    const NAME: &str = "alerts smtp";
    let mailer = match crate::alerts::Mailer::new(settings, "check") {
        Ok(m) => m,
        Err(e) => return CheckLine::fail(NAME, e.to_string()),
    };
    match mailer.test_connection().await {
        Ok(()) => CheckLine::ok(
            NAME,
            format!(
                "{} accepts the connection{} (no mail sent)",
                mailer.server(),
                if settings.smtp_password.is_some() {
                    " and the credentials"
                } else {
                    ""
                }
            ),
        ),
        Err(e) => CheckLine::fail(NAME, e.to_string()),
    }
}

fn print(out: &mut impl Write, line: CheckLine) -> bool {
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
    line.ok
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spool_line_says_whether_the_file_can_be_used() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("webhooks.redb");
        let line = spool_line(&path);
        assert!(
            line.ok && line.detail.contains("does not exist yet"),
            "{line}"
        );
        assert!(!path.exists(), "check creates no spool");
        let spool = crate::webhook::Spool::open(&path).unwrap();
        let line = spool_line(&path);
        assert!(
            line.ok && line.detail.contains("open in a running daemon"),
            "{line}"
        );
        drop(spool);
        let line = spool_line(&path);
        assert!(
            line.ok && line.detail.contains("0 webhooks not in Odoo yet"),
            "{line}"
        );
        let line = spool_line(Path::new("/nonexistent-dir/webhooks.redb"));
        assert!(
            !line.ok && line.detail.contains("writable directory"),
            "{line}"
        );
    }

    #[test]
    fn an_addon_without_spool_key_is_a_failure_that_says_to_upgrade() {
        assert!(spool_key_line(Ok(true)).ok);
        let old = spool_key_line(Ok(false));
        assert!(
            !old.ok && old.detail.contains("-u whatsapp_sidecar"),
            "{old}"
        );
    }

    #[test]
    fn payment_links_are_a_warning_when_missing_never_a_failure() {
        let ok = payment_links_line(Ok(true));
        assert!(ok.ok && !ok.detail.contains("warning"));
        let denied = payment_links_line(Ok(false));
        assert!(
            denied.ok && denied.detail.contains("Invoicing right"),
            "{}",
            denied.detail
        );
        let missing = payment_links_line(Err(OdooError::UnknownModel {
            model: "payment.link.wizard".into(),
        }));
        assert!(missing.ok && missing.detail.contains("'payment' module is not installed"));
        assert!(missing.detail.contains("portal link only"));
    }
}
