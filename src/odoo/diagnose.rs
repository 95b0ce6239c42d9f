//! The Odoo part of `whatsapp-sidecar check`: one line per check, OK or FAIL with the reason.
//!
//! The checks run in order and later ones say "not checked" when an earlier one makes them
//! meaningless (no point checking rights when Odoo is unreachable). They never retry: `check`
//! answers quickly.

use super::client::{ClientConfig, OdooClient};
use super::error::OdooError;
use super::types::{Access, Domain, SearchOptions};
use serde_json::Value;
use std::fmt;

/// The addon the daemon needs.
pub const ADDON: &str = "whatsapp_sidecar";

/// Odoo versions the client is built for.
pub const SUPPORTED_MAJORS: [u32; 3] = [16, 17, 18];

/// The rights the daemon's user needs on the addon's models.
const RIGHTS: &[(&str, &[Access])] = &[
    (
        "whatsapp.message",
        &[Access::Read, Access::Write, Access::Create],
    ),
    (
        "whatsapp.webhook.event",
        &[Access::Read, Access::Write, Access::Create],
    ),
    ("whatsapp.account", &[Access::Read, Access::Write]),
];

/// One line of `check`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckLine {
    pub name: String,
    pub ok: bool,
    pub detail: String,
}

impl CheckLine {
    pub fn ok(name: &str, detail: impl Into<String>) -> Self {
        CheckLine {
            name: name.to_owned(),
            ok: true,
            detail: detail.into(),
        }
    }

    pub fn fail(name: &str, detail: impl Into<String>) -> Self {
        CheckLine {
            name: name.to_owned(),
            ok: false,
            detail: detail.into(),
        }
    }
}

impl fmt::Display for CheckLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let status = if self.ok { "OK  " } else { "FAIL" };
        write!(f, "{status} {}: {}", self.name, self.detail)
    }
}

const REACHABLE: &str = "Odoo reachable";
const VERSION: &str = "Odoo version";
const DATABASE: &str = "database exists";
const LOGIN_KEY: &str = "login with the API key";
const LOGIN_PASSWORD: &str = "login with the password (no API key set)";
const REPORT: &str = "report session with the password";
const ADDON_LINE: &str = "addon whatsapp_sidecar installed";
const RIGHTS_LINE: &str = "rights on the WhatsApp models";

/// Runs the Odoo checks against `cfg`.
pub async fn diagnose(cfg: &ClientConfig) -> Vec<CheckLine> {
    let mut cfg = cfg.clone();
    cfg.max_retries = 0;
    let login_line = if cfg.api_key.as_ref().is_some_and(|k| !k.is_blank()) {
        LOGIN_KEY
    } else {
        LOGIN_PASSWORD
    };
    let mut lines = Vec::new();
    let client = match OdooClient::new(cfg.clone()) {
        Ok(c) => c,
        Err(e) => {
            lines.push(CheckLine::fail(REACHABLE, e.to_string()));
            skip(
                &mut lines,
                &[
                    VERSION,
                    DATABASE,
                    login_line,
                    REPORT,
                    ADDON_LINE,
                    RIGHTS_LINE,
                ],
                "the client could not be set up",
            );
            return lines;
        }
    };

    // Reachable and version.
    match client.version().await {
        Ok(v) => {
            lines.push(CheckLine::ok(
                REACHABLE,
                format!("{} answers JSON-RPC", cfg.display_url()),
            ));
            let supported = v.major().is_some_and(|m| SUPPORTED_MAJORS.contains(&m));
            let detail = format!("{} (supported: 16, 17, 18)", v.server_version);
            lines.push(if supported {
                CheckLine::ok(VERSION, detail)
            } else {
                CheckLine::fail(VERSION, format!("{detail}: this version is not supported"))
            });
        }
        Err(e) => {
            lines.push(CheckLine::fail(REACHABLE, e.to_string()));
            skip(
                &mut lines,
                &[
                    VERSION,
                    DATABASE,
                    login_line,
                    REPORT,
                    ADDON_LINE,
                    RIGHTS_LINE,
                ],
                "Odoo is unreachable",
            );
            return lines;
        }
    }

    // Login first: its error also tells whether the database exists when listing is disabled.
    let login = client.authenticate().await;

    // Database.
    let db = &cfg.database;
    let db_line = match client.db_list().await {
        Ok(list) if list.iter().any(|d| d == db) => {
            CheckLine::ok(DATABASE, format!("'{db}' found"))
        }
        Ok(list) => CheckLine::fail(
            DATABASE,
            format!(
                "'{db}' not found; this Odoo has: {}: check odoo.database",
                if list.is_empty() {
                    "no database".to_owned()
                } else {
                    list.join(", ")
                }
            ),
        ),
        Err(OdooError::AccessDenied { .. }) => match client.db_exists(db).await {
            Ok(true) => CheckLine::ok(
                DATABASE,
                format!("'{db}' found (database listing is disabled on this server)"),
            ),
            Ok(false) => {
                CheckLine::fail(DATABASE, format!("'{db}' not found: check odoo.database"))
            }
            Err(_) => match &login {
                Err(e @ OdooError::DatabaseMissing { .. }) => {
                    CheckLine::fail(DATABASE, e.to_string())
                }
                _ => CheckLine::ok(
                    DATABASE,
                    format!("'{db}' answers logins (database listing is disabled on this server)"),
                ),
            },
        },
        Err(e) => CheckLine::fail(DATABASE, format!("cannot list the databases: {e}")),
    };
    let db_ok = db_line.ok;
    lines.push(db_line);

    // Login.
    let login_ok = match &login {
        Ok(uid) => {
            lines.push(CheckLine::ok(
                login_line,
                format!("'{}' is uid {uid}", cfg.login),
            ));
            true
        }
        Err(e) => {
            lines.push(CheckLine::fail(login_line, e.to_string()));
            false
        }
    };

    // Report session.
    if cfg.password.as_ref().is_none_or(|p| p.is_blank()) {
        lines.push(CheckLine::fail(
            REPORT,
            "odoo.password is not set: PDF documents (quotations, invoices) cannot be downloaded, and Odoo only opens web sessions with the real password, not an API key",
        ));
    } else if !db_ok {
        lines.push(CheckLine::fail(
            REPORT,
            "not checked: the database is missing",
        ));
    } else {
        lines.push(match client.web_session_check().await {
            Ok(uid) => CheckLine::ok(REPORT, format!("web session open for uid {uid}")),
            Err(e) => CheckLine::fail(REPORT, e.to_string()),
        });
    }

    if !login_ok {
        skip(&mut lines, &[ADDON_LINE, RIGHTS_LINE], "the login failed");
        return lines;
    }

    // Addon.
    let addon = client
        .search_read::<Value>(
            "ir.module.module",
            &Domain::leaf("name", "=", ADDON),
            &["name", "state", "latest_version"],
            &SearchOptions::new().limit(1),
        )
        .await;
    lines.push(match addon {
        Ok(rows) => match rows.first() {
            None => CheckLine::fail(
                ADDON_LINE,
                "Odoo does not know the addon: add the repository's odoo_addon directory to Odoo's addons_path, restart Odoo, update the Apps list and install 'whatsapp_sidecar'",
            ),
            Some(row) => {
                let state = row.get("state").and_then(Value::as_str).unwrap_or("unknown");
                let version = row
                    .get("latest_version")
                    .and_then(Value::as_str)
                    .unwrap_or("?");
                match state {
                    "installed" => CheckLine::ok(ADDON_LINE, format!("installed (version {version})")),
                    "to upgrade" => CheckLine::ok(ADDON_LINE, format!("installed (version {version}), an upgrade is pending")),
                    other => CheckLine::fail(
                        ADDON_LINE,
                        format!("the addon is '{other}': install it from Apps or with odoo-bin -i whatsapp_sidecar"),
                    ),
                }
            }
        },
        Err(e) => CheckLine::fail(ADDON_LINE, e.to_string()),
    });

    // Rights.
    let (missing, errors) = missing_rights(&client).await;
    let errors: Vec<String> = errors.iter().map(ToString::to_string).collect();
    let models: Vec<&str> = RIGHTS.iter().map(|(m, _)| *m).collect();
    lines.push(if missing.is_empty() && errors.is_empty() {
        CheckLine::ok(RIGHTS_LINE, format!("read/write on {}", models.join(", ")))
    } else if !missing.is_empty() {
        CheckLine::fail(
            RIGHTS_LINE,
            format!(
                "'{}' lacks {}: add the user to the group 'WhatsApp Sidecar (technical)'",
                cfg.login,
                missing.join(", ")
            ),
        )
    } else {
        CheckLine::fail(RIGHTS_LINE, errors.join("; "))
    });
    lines
}

/// What the daemon's user may not do of what the daemon needs (`create on
/// whatsapp.webhook.event`, ...), as `check_access_rights` answers, and the errors met asking.
/// The group 'WhatsApp Sidecar (technical)' grants all of it.
pub async fn missing_rights(client: &OdooClient) -> (Vec<String>, Vec<OdooError>) {
    let mut missing = Vec::new();
    let mut errors = Vec::new();
    for (model, accesses) in RIGHTS {
        for access in *accesses {
            match client.check_access_rights(model, *access).await {
                Ok(true) => {}
                Ok(false) => missing.push(format!("{} on {model}", access.as_str())),
                Err(OdooError::UnknownModel { .. }) => {
                    missing.push(format!("{model} (model missing: is the addon installed?)"));
                    break;
                }
                Err(e) => {
                    errors.push(e);
                    break;
                }
            }
        }
    }
    (missing, errors)
}

fn skip(lines: &mut Vec<CheckLine>, names: &[&str], why: &str) {
    for name in names {
        lines.push(CheckLine::fail(name, format!("not checked: {why}")));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_one_line_with_status() {
        assert_eq!(
            CheckLine::ok("Odoo version", "17.0").to_string(),
            "OK   Odoo version: 17.0"
        );
        assert_eq!(CheckLine::fail("x", "why").to_string(), "FAIL x: why");
    }
}
