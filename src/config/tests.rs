#![allow(clippy::result_large_err)] // figment::Jail closures return figment::Error by design.

use super::*;
use figment::Jail;

const VALID: &str = r#"
[odoo]
url = "http://127.0.0.1:8069"
database = "wa17"
login = "sidecar"
api_key = "abc123secret"

[server]
listen = "127.0.0.1:8787"

[whatsapp]
mode = "sandbox"
"#;

fn problems(jail_file: &str) -> Vec<String> {
    let mut out = Vec::new();
    Jail::expect_with(|jail| {
        jail.create_file("whatsapp-sidecar.toml", jail_file)?;
        out = match Config::load(None) {
            Ok(_) => Vec::new(),
            Err(err) => err.problems,
        };
        Ok(())
    });
    out
}

#[test]
fn a_valid_file_loads_with_defaults() {
    Jail::expect_with(|jail| {
        jail.create_file("whatsapp-sidecar.toml", VALID)?;
        let config = Config::load(None).map_err(|e| e.to_string())?;
        assert_eq!(config.odoo.url.as_str(), "http://127.0.0.1:8069/");
        assert_eq!(config.odoo.database, "wa17");
        assert_eq!(
            config.odoo.api_key.as_ref().map(Secret::expose),
            Some("abc123secret")
        );
        assert_eq!(config.odoo.password, None);
        assert_eq!(config.odoo.max_concurrent_requests, 8);
        assert_eq!(config.server.listen.port(), 8787);
        assert_eq!(config.whatsapp.mode, Mode::Sandbox);
        assert_eq!(config.whatsapp.api_version, "v26.0");
        assert_eq!(config.log.format, LogFormat::Pretty);
        assert_eq!(config.accounts.poll_interval, Duration::from_secs(5));
        assert_eq!(
            config.source.as_deref(),
            Some(Path::new("./whatsapp-sidecar.toml"))
        );
        Ok(())
    });
}

#[test]
fn environment_overrides_the_file_with_double_underscores() {
    Jail::expect_with(|jail| {
        jail.create_file("whatsapp-sidecar.toml", VALID)?;
        jail.set_env("WHATSAPP_SIDECAR_ODOO__URL", "https://odoo.example.com");
        jail.set_env("WHATSAPP_SIDECAR_WHATSAPP__MODE", "cloud");
        jail.set_env("WHATSAPP_SIDECAR_ODOO__PASSWORD", "123456");
        jail.set_env("WHATSAPP_SIDECAR_ODOO__DATABASE", "2024");
        let config = Config::load(None).map_err(|e| e.to_string())?;
        assert_eq!(config.odoo.url.host_str(), Some("odoo.example.com"));
        assert_eq!(config.whatsapp.mode, Mode::Cloud);
        assert_eq!(
            config.odoo.password.as_ref().map(Secret::expose),
            Some("123456")
        );
        assert_eq!(config.odoo.database, "2024");
        Ok(())
    });
}

#[test]
fn a_bad_url_names_the_key_and_the_value() {
    let found = problems(&VALID.replace("http://127.0.0.1:8069", "htp://x"));
    assert_eq!(found, vec![r#"odoo.url: "htp://x" is not an http(s) URL"#]);
}

#[test]
fn unknown_keys_are_reported_not_ignored() {
    let found = problems(&format!("{VALID}\n[odoo.extra]\n"));
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(found[0].starts_with("odoo.extra: unknown key"), "{found:?}");

    let found = problems(&VALID.replace("[server]", "[server]\nlisten_port = 1"));
    assert!(
        found[0].starts_with("server.listen_port: unknown key"),
        "{found:?}"
    );
    assert!(found[0].contains("whatsapp-sidecar.toml"), "{found:?}");

    let found = problems(&format!("{VALID}\n[webhooks]\nx = 1\n"));
    assert!(found[0].starts_with("webhooks: unknown key"), "{found:?}");
}

#[test]
fn unknown_environment_keys_are_reported_with_the_variable_name() {
    Jail::expect_with(|jail| {
        jail.create_file("whatsapp-sidecar.toml", VALID)?;
        jail.set_env("WHATSAPP_SIDECAR_ODOO__URLL", "http://x");
        let err = Config::load(None).expect_err("unknown env key must fail");
        assert!(
            err.problems[0].starts_with("odoo.urll: unknown key"),
            "{err}"
        );
        assert!(
            err.problems[0].contains("WHATSAPP_SIDECAR_ODOO__URLL"),
            "{err}"
        );
        Ok(())
    });
}

#[test]
fn every_problem_is_reported_at_once() {
    let file = r#"
[odoo]
url = "ftp://odoo"
login = "x"
api_key = "k"
timeout_secs = -1
[server]
listen = "localhost"
[whatsapp]
mode = "meta"
api_version = "25"
[log]
format = "xml"
"#;
    let found = problems(file);
    let keys: Vec<&str> = found
        .iter()
        .map(|p| p.split(':').next().unwrap_or_default())
        .collect();
    assert_eq!(
        keys,
        vec![
            "odoo.url",
            "odoo.database",
            "odoo.timeout_secs",
            "server.listen",
            "whatsapp.mode",
            "whatsapp.api_version",
            "log.format"
        ],
        "{found:#?}"
    );
    assert!(found[1].contains("WHATSAPP_SIDECAR_ODOO__DATABASE"));
}

#[test]
fn secrets_come_from_files_relative_to_the_config_and_are_trimmed() {
    Jail::expect_with(|jail| {
        jail.create_dir("etc")?;
        jail.create_file(
            "etc/whatsapp-sidecar.toml",
            &VALID.replace(
                "api_key = \"abc123secret\"",
                "api_key_file = \"key\"\npassword_file = \"pw\"",
            ),
        )?;
        jail.create_file("etc/key", "from-file-key\n")?;
        jail.create_file("etc/pw", "  pass word \n")?;
        let config = Config::load(Some(Path::new("etc/whatsapp-sidecar.toml")))
            .map_err(|e| e.to_string())?;
        assert_eq!(
            config.odoo.api_key.as_ref().map(Secret::expose),
            Some("from-file-key")
        );
        assert_eq!(
            config.odoo.password.as_ref().map(Secret::expose),
            Some("pass word")
        );
        Ok(())
    });
}

#[test]
fn secret_file_problems_name_the_key_and_the_path() {
    let found = problems(&VALID.replace(
        "api_key = \"abc123secret\"",
        "api_key_file = \"/nonexistent/key\"",
    ));
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with("odoo.api_key_file: cannot read /nonexistent/key"),
        "{found:?}"
    );

    let found = problems(&VALID.replace(
        "api_key = \"abc123secret\"",
        "api_key = \"a\"\napi_key_file = \"/k\"",
    ));
    assert_eq!(
        found,
        vec!["odoo.api_key: set either odoo.api_key or odoo.api_key_file, not both"]
    );
}

#[test]
fn a_missing_credential_says_what_to_set() {
    let found = problems(&VALID.replace("api_key = \"abc123secret\"", ""));
    assert_eq!(found.len(), 1);
    assert!(found[0].starts_with("odoo.api_key: missing"), "{found:?}");
}

#[test]
fn an_explicit_config_path_must_exist() {
    let err = Config::load(Some(Path::new("/nonexistent/whatsapp-sidecar.toml")))
        .expect_err("missing file");
    assert!(err
        .to_string()
        .contains("/nonexistent/whatsapp-sidecar.toml: no such file"));
}

#[test]
fn debug_output_never_shows_secrets() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "whatsapp-sidecar.toml",
            &VALID.replace("[server]", "password = \"pw-very-secret\"\n[server]"),
        )?;
        let config = Config::load(None).map_err(|e| e.to_string())?;
        let debug = format!("{config:?}");
        assert!(!debug.contains("abc123secret"), "{debug}");
        assert!(!debug.contains("pw-very-secret"), "{debug}");
        Ok(())
    });
}

#[test]
fn the_shipped_config_file_is_valid() {
    let shipped = include_str!("../../whatsapp-sidecar.toml");
    Jail::expect_with(|jail| {
        jail.create_file("whatsapp-sidecar.toml", shipped)?;
        jail.create_file("odoo_api_key", "k")?;
        jail.set_env("WHATSAPP_SIDECAR_ODOO__API_KEY_FILE", "odoo_api_key");
        let config = Config::load(None).map_err(|e| e.to_string())?;
        assert_eq!(config.odoo.url.as_str(), "http://127.0.0.1:8069/");
        assert_eq!(config.whatsapp.mode, Mode::Sandbox);
        Ok(())
    });
}

#[test]
fn the_accounts_poll_interval_is_read_and_checked() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "whatsapp-sidecar.toml",
            &format!("{VALID}\n[accounts]\npoll_interval_secs = 2.5\n"),
        )?;
        let config = Config::load(None).map_err(|e| e.to_string())?;
        assert_eq!(config.accounts.poll_interval, Duration::from_millis(2500));
        Ok(())
    });
    let found = problems(&format!("{VALID}\n[accounts]\npoll_interval_secs = 0\n"));
    assert!(
        found
            .iter()
            .any(|p| p.starts_with("accounts.poll_interval_secs: 0")),
        "{found:?}"
    );
}

#[test]
fn the_inbound_status_settings_are_read_and_checked() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "whatsapp-sidecar.toml",
            &format!("{VALID}\n[inbound]\nstatus_linger_ms = 250\nstatus_batch_interval_ms = 0\n"),
        )?;
        let config = Config::load(None).map_err(|e| e.to_string())?;
        assert_eq!(config.inbound.status_linger, Duration::from_millis(250));
        assert_eq!(config.inbound.status_batch_interval, Duration::ZERO);
        Ok(())
    });
    let found = problems(&format!(
        "{VALID}\n[inbound]\nstatus_batch_interval_ms = 600000\n"
    ));
    assert!(
        found
            .iter()
            .any(|p| p.starts_with("inbound.status_batch_interval_ms: 600000")),
        "{found:?}"
    );
}

#[test]
fn the_shipped_inbound_settings_are_the_built_in_defaults() {
    let shipped = include_str!("../../whatsapp-sidecar.toml");
    Jail::expect_with(|jail| {
        jail.create_file("whatsapp-sidecar.toml", shipped)?;
        jail.create_file("odoo_api_key", "k")?;
        jail.set_env("WHATSAPP_SIDECAR_ODOO__API_KEY_FILE", "odoo_api_key");
        let config = Config::load(None).map_err(|e| e.to_string())?;
        assert_eq!(config.inbound, crate::inbound::InboundConfig::default());
        Ok(())
    });
}

#[test]
fn the_webhook_batch_idle_time_is_read_and_checked_against_the_linger() {
    Jail::expect_with(|jail| {
        jail.create_file("whatsapp-sidecar.toml", VALID)?;
        let config = Config::load(None).map_err(|e| e.to_string())?;
        assert_eq!(config.webhook.ingest.idle, Duration::from_millis(5));
        assert_eq!(config.webhook.ingest.linger, Duration::from_millis(50));

        jail.create_file(
            "whatsapp-sidecar.toml",
            &format!("{VALID}\n[webhook]\nbatch_idle_ms = 5\nbatch_linger_ms = 100\n"),
        )?;
        let config = Config::load(None).map_err(|e| e.to_string())?;
        assert_eq!(config.webhook.ingest.idle, Duration::from_millis(5));
        assert_eq!(config.webhook.ingest.linger, Duration::from_millis(100));
        Ok(())
    });

    let found = problems(&format!(
        "{VALID}\n[webhook]\nbatch_idle_ms = 80\nbatch_linger_ms = 50\n"
    ));
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].starts_with("webhook.batch_idle_ms: 80 is above webhook.batch_linger_ms (50)"),
        "{found:?}"
    );
    assert!(found[0].contains("use at most the linger"), "{found:?}");

    let found = problems(&format!("{VALID}\n[webhook]\nbatch_idle = 2\n"));
    assert!(
        found[0].starts_with("webhook.batch_idle: unknown key"),
        "{found:?}"
    );
}

#[test]
fn the_scenario_settings_are_read_and_checked() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "whatsapp-sidecar.toml",
            &format!("{VALID}\n[scenarios]\nstale_after_hours = 2\nmax_messages_per_press = 6\n"),
        )?;
        let config = Config::load(None).map_err(|e| e.to_string())?;
        assert_eq!(config.scenarios.stale_after, Duration::from_secs(7200));
        assert_eq!(config.scenarios.max_messages_per_press, 6);
        Ok(())
    });
    Jail::expect_with(|jail| {
        jail.create_file("whatsapp-sidecar.toml", VALID)?;
        let config = Config::load(None).map_err(|e| e.to_string())?;
        assert_eq!(config.scenarios.stale_after, Duration::from_secs(24 * 3600));
        assert_eq!(config.scenarios.max_messages_per_press, 4);
        Ok(())
    });
    let found = problems(&format!(
        "{VALID}\n[scenarios]\nstale_after_hours = -1\nmax_messages_per_press = 0\n"
    ));
    assert!(
        found
            .iter()
            .any(|p| p.starts_with("scenarios.stale_after_hours: -1")),
        "{found:?}"
    );
    assert!(
        found
            .iter()
            .any(|p| p.starts_with("scenarios.max_messages_per_press: must be at least 1")),
        "{found:?}"
    );
}

#[test]
fn the_webhook_spool_file_is_relative_to_the_config_and_its_directory_must_exist() {
    Jail::expect_with(|jail| {
        jail.create_dir("etc")?;
        jail.create_dir("etc/state")?;
        jail.create_file(
            "etc/whatsapp-sidecar.toml",
            &format!(
                "{VALID}\n[webhook]\nspool_file = \"state/webhooks.redb\"\nforward_interval_ms = 100\n"
            ),
        )?;
        let config = Config::load(Some(Path::new("etc/whatsapp-sidecar.toml")))
            .map_err(|e| e.to_string())?;
        assert_eq!(
            config.webhook.spool_file.as_deref(),
            Some(Path::new("etc/state/webhooks.redb"))
        );
        assert_eq!(config.webhook.forward.interval, Duration::from_millis(100));
        assert_eq!(config.webhook.forward.max_events, 100_000);
        jail.create_file(
            "etc/whatsapp-sidecar.toml",
            &format!("{VALID}\n[webhook]\nspool_file = \"/nonexistent/state/webhooks.redb\"\n"),
        )?;
        let err = Config::load(Some(Path::new("etc/whatsapp-sidecar.toml")))
            .expect_err("a spool in a missing directory")
            .to_string();
        assert!(
            err.contains("webhook.spool_file: the directory /nonexistent/state does not exist"),
            "{err}"
        );
        Ok(())
    });
}

#[test]
fn bus_and_housekeeping_settings_are_checked_with_the_fix() {
    let found = problems(&format!(
        "{VALID}\n[bus]\nurl = \"ftp://odoo\"\nslow_poll_interval_secs = 0\n\
         [housekeeping]\nretention_schedule = \"every night\"\ntemplate_sync_schedule = \"0 0 * * * *\"\n\
         time_zone = \"Mars/Olympus\"\nfailed_event_days = 30\nbatch_size = 0\n"
    ));
    let keys: Vec<&str> = found
        .iter()
        .map(|p| p.split(':').next().unwrap_or_default())
        .collect();
    assert_eq!(
        keys,
        [
            "bus.url",
            "bus.slow_poll_interval_secs",
            "housekeeping.retention_schedule",
            "housekeeping.template_sync_schedule",
            "housekeeping.time_zone",
            "housekeeping.failed_event_days",
            "housekeeping.batch_size"
        ],
        "{found:#?}"
    );
    assert!(found[0].contains("gevent port"), "{}", found[0]);
    assert!(found[2].contains("30 3 * * *"), "{}", found[2]);
    assert!(found[5].contains("at least 90"), "{}", found[5]);

    // Defaults, and "" turns a chore off.
    Jail::expect_with(|jail| {
        jail.create_file(
            "whatsapp-sidecar.toml",
            &format!("{VALID}\n[housekeeping]\ntemplate_sync_schedule = \"\"\n"),
        )?;
        let config = Config::load(None).map_err(|e| e.to_string())?;
        assert!(config.bus.enabled && config.bus.url.is_none());
        assert_eq!(config.bus.slow_poll_interval, Duration::from_secs(30));
        assert!(config.housekeeping.retention.is_some());
        assert!(config.housekeeping.template_sync.is_none());
        assert_eq!(config.housekeeping.processed_event_days, 30);
        assert_eq!(config.housekeeping.failed_event_days, 90);
        Ok(())
    });
}

#[test]
fn the_alert_settings_are_read_and_checked() {
    Jail::expect_with(|jail| {
        jail.create_file("smtp.pass", "s3cret\n")?;
        jail.create_file(
            "whatsapp-sidecar.toml",
            &format!(
                "{VALID}\n[alerts]\nenabled = true\nsmtp_url = \"smtp://mail.example.com:587?tls=required\"\n\
                 smtp_user = \"sidecar\"\nsmtp_password_file = \"smtp.pass\"\nfrom = \"Sidecar <sidecar@example.com>\"\n\
                 to = [\"ops@example.com\"]\nkinds = [\"account_paused\", \"send_errors\"]\nodoo_unreachable_minutes = 2\n"
            ),
        )?;
        let config = Config::load(None).map_err(|e| e.to_string())?;
        let a = &config.alerts;
        assert!(a.enabled);
        assert_eq!(a.smtp_user.as_deref(), Some("sidecar"));
        assert_eq!(a.smtp_password.as_ref().map(|p| p.expose()), Some("s3cret"));
        assert_eq!(a.kinds.len(), 2);
        assert_eq!(a.odoo_unreachable_after, Duration::from_secs(120));
        assert!(
            !format!("{a:?}").contains("s3cret"),
            "the password stays out of Debug"
        );
        Ok(())
    });
    let found = problems(&format!(
        "{VALID}\n[alerts]\nenabled = true\nsmtp_url = \"http://mail.example.com\"\nfrom = \"not an address\"\nto = []\nkinds = [\"everything\"]\nsend_error_ratio = 2\n"
    ));
    for expected in [
        "alerts.smtp_url: not an smtp:// or smtps:// URL",
        "alerts.kinds: \"everything\" is not a kind of alert",
        "alerts.send_error_ratio: 2 is not a share",
        "alerts.smtp_url: not set",
    ] {
        assert!(
            found.iter().any(|p| p.starts_with(expected)),
            "{expected:?} in {found:?}"
        );
    }
    let found = problems(&format!(
        "{VALID}\n[alerts]\nenabled = true\nsmtp_url = \"smtps://u:pw@mail.example.com\"\nfrom = \"a@example.com\"\nto = [\"b@\"]\n"
    ));
    assert!(
        found
            .iter()
            .any(|p| p.starts_with("alerts.smtp_url: holds a password")),
        "{found:?}"
    );
    assert!(
        found
            .iter()
            .any(|p| p.starts_with("alerts.to: \"b@\" is not a mail address")),
        "{found:?}"
    );
}
