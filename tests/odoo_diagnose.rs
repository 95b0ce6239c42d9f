//! `diagnose`: the Odoo lines of `whatsapp-sidecar check`, against the stand-in.

mod support;

use support::{client_config, OdooStandin};
use whatsapp_sidecar::odoo::{diagnose, CheckLine};
use whatsapp_sidecar::secret::Secret;

fn line<'a>(lines: &'a [CheckLine], name: &str) -> &'a CheckLine {
    lines
        .iter()
        .find(|l| l.name.starts_with(name))
        .unwrap_or_else(|| panic!("no line {name:?} in {lines:#?}"))
}

#[tokio::test]
async fn everything_ok_against_a_good_setup() {
    let s = OdooStandin::start().await;
    let lines = diagnose(&client_config(&s)).await;
    let names: Vec<&str> = lines.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(
        names,
        vec![
            "Odoo reachable",
            "Odoo version",
            "database exists",
            "login with the API key",
            "report session with the password",
            "addon whatsapp_sidecar installed",
            "rights on the WhatsApp models"
        ]
    );
    for l in &lines {
        assert!(l.ok, "{l}");
    }
    assert!(line(&lines, "Odoo version").detail.starts_with("17.0"));
    assert!(line(&lines, "login").detail.contains("uid 2"));
}

#[tokio::test]
async fn unreachable_odoo_names_the_url_and_skips_the_rest() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let s = OdooStandin::start().await;
    let mut cfg = client_config(&s);
    cfg.url = format!("http://{addr}").parse().unwrap();
    let lines = diagnose(&cfg).await;
    for l in &lines {
        println!("{l}");
    }
    let reach = line(&lines, "Odoo reachable");
    assert!(!reach.ok);
    assert!(reach.detail.contains(&format!("http://{addr}/")), "{reach}");
    assert!(reach.detail.contains("connection"), "{reach}");
    assert_eq!(lines.len(), 7);
    assert!(lines[1..]
        .iter()
        .all(|l| !l.ok && l.detail.contains("not checked")));
}

#[tokio::test]
async fn database_listing_disabled_falls_back() {
    let s = OdooStandin::start().await;
    s.set_list_db(false);
    let lines = diagnose(&client_config(&s)).await;
    let db = line(&lines, "database exists");
    assert!(db.ok, "{db}");
    assert!(db.detail.contains("listing is disabled"), "{db}");

    let mut cfg = client_config(&s);
    cfg.database = "nosuchdb".into();
    let lines = diagnose(&cfg).await;
    let db = line(&lines, "database exists");
    assert!(!db.ok);
    assert!(db.detail.contains("'nosuchdb' not found"), "{db}");
    assert!(!line(&lines, "login").ok);
}

#[tokio::test]
async fn wrong_database_with_listing_names_the_databases() {
    let s = OdooStandin::start().await;
    let mut cfg = client_config(&s);
    cfg.database = "prod".into();
    let lines = diagnose(&cfg).await;
    let db = line(&lines, "database exists");
    assert!(!db.ok);
    assert!(db.detail.contains("this Odoo has: wa17"), "{db}");
}

#[tokio::test]
async fn bad_api_key_and_missing_password() {
    let s = OdooStandin::start().await;
    let mut cfg = client_config(&s);
    cfg.api_key = Some(Secret::new("badbadbadbadbadbadbadbadbadbadbadbadbadb"));
    cfg.password = None;
    let lines = diagnose(&cfg).await;
    let login = line(&lines, "login with the API key");
    assert!(!login.ok);
    assert!(login.detail.contains("odoo.api_key"), "{login}");
    assert!(!login.detail.contains("badbad"), "{login}");
    let report = line(&lines, "report session");
    assert!(!report.ok);
    assert!(
        report.detail.contains("odoo.password is not set"),
        "{report}"
    );
    assert!(line(&lines, "addon").detail.contains("not checked"));
}

#[tokio::test]
async fn wrong_password_fails_the_report_session_only() {
    let s = OdooStandin::start().await;
    let mut cfg = client_config(&s);
    cfg.password = Some(Secret::new("not-the-password"));
    let lines = diagnose(&cfg).await;
    assert!(line(&lines, "login with the API key").ok);
    let report = line(&lines, "report session");
    assert!(!report.ok);
    assert!(report.detail.contains("odoo.password"), "{report}");
    assert!(!report.detail.contains("not-the-password"), "{report}");
}

#[tokio::test]
async fn addon_missing_or_not_installed() {
    let s = OdooStandin::start().await;
    s.set_addon_state(Some("uninstalled"));
    let lines = diagnose(&client_config(&s)).await;
    let addon = line(&lines, "addon");
    assert!(!addon.ok);
    assert!(
        addon.detail.contains("'uninstalled'") && addon.detail.contains("-i whatsapp_sidecar"),
        "{addon}"
    );
    s.set_addon_state(None);
    let lines = diagnose(&client_config(&s)).await;
    assert!(line(&lines, "addon").detail.contains("addons_path"));
}

#[tokio::test]
async fn missing_rights_are_listed() {
    let s = OdooStandin::start().await;
    let mut cfg = client_config(&s);
    cfg.login = "demo".into();
    cfg.api_key = None;
    cfg.password = Some(Secret::new("demo"));
    let lines = diagnose(&cfg).await;
    assert!(line(&lines, "login with the password").ok);
    let rights = line(&lines, "rights");
    assert!(!rights.ok);
    assert!(
        rights.detail.contains("write on whatsapp.message"),
        "{rights}"
    );
    assert!(
        rights.detail.contains("create on whatsapp.webhook.event"),
        "{rights}"
    );
    assert!(
        rights.detail.contains("WhatsApp Sidecar (technical)"),
        "{rights}"
    );
}
