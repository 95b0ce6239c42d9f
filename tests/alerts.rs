//! Email alerts through a real SMTP conversation (lettre's SMTP transport to a receiver on
//! 127.0.0.1), the Odoo stand-in and the sandbox playing Meta: what the mails say, that a
//! condition is mailed once (and once more when it clears), and that a mail the server does not
//! take goes out when it does.

mod support;

use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use support::smtp::SmtpReceiver;
use support::{client_config, OdooStandin};
use tokio_util::sync::CancellationToken;
use whatsapp_sidecar::alerts::{self, AlertKind, AlertSettings, AlertsContext, Mailer};
use whatsapp_sidecar::metrics::Metrics;
use whatsapp_sidecar::odoo::OdooClient;
use whatsapp_sidecar::sandbox::{SandboxConfig, SandboxHandle};
use whatsapp_sidecar::secret::Secret;
use whatsapp_sidecar::whatsapp::{ClientConfig, CloudClient};

const ACCOUNT: &str = "whatsapp.account";

struct World {
    odoo: OdooStandin,
    account: i64,
    smtp: SmtpReceiver,
    ctx: Option<AlertsContext>,
    _meta_stop: tokio_util::sync::DropGuard,
}

fn settings(smtp: &SmtpReceiver) -> AlertSettings {
    AlertSettings {
        enabled: true,
        smtp_url: Some(smtp.url().parse().expect("url")),
        smtp_user: Some("sidecar".into()),
        smtp_password: Some(Secret::new("smtp-secret")),
        from: "whatsapp-sidecar <sidecar@example.com>".into(),
        to: vec!["Ops <ops@example.com>".into()],
        check_interval: Duration::from_millis(50),
        ..AlertSettings::default()
    }
}

async fn world(meta: SandboxConfig) -> World {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let stop = CancellationToken::new();
    let handle = SandboxHandle::start(listener, meta, stop.clone())
        .await
        .expect("sandbox");
    let odoo = OdooStandin::start().await;
    let account = odoo.add_account("Main", "sandbox-0001", 80);
    odoo.update(ACCOUNT, account, json!({"waba_id": "sandbox-waba"}));
    let mut cfg = client_config(&odoo);
    cfg.max_retries = 0;
    let smtp = SmtpReceiver::start().await;
    let settings = settings(&smtp);
    let mailer = Mailer::new(&settings, "Odoo database test at http://127.0.0.1").expect("mailer");
    let ctx = AlertsContext {
        odoo: OdooClient::new(cfg).expect("odoo"),
        whatsapp: CloudClient::new(ClientConfig::new(
            handle.base_url().parse().expect("url"),
            "v25.0",
        ))
        .expect("cloud"),
        settings,
        mailer: Arc::new(mailer),
        metrics: Metrics::new("test"),
    };
    World {
        odoo,
        account,
        smtp,
        ctx: Some(ctx),
        _meta_stop: stop.drop_guard(),
    }
}

async fn until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !check() {
        assert!(tokio::time::Instant::now() < deadline, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_paused_account_is_mailed_once_and_again_when_it_is_resumed() {
    let mut w = world(SandboxConfig::default()).await;
    w.odoo.update(
        ACCOUNT,
        w.account,
        json!({"paused": true, "paused_reason": "Meta refused the access token (190): it expired."}),
    );
    let stop = CancellationToken::new();
    let task = tokio::spawn(alerts::run(w.ctx.take().expect("ctx"), stop.clone()));
    until("the alert mail", || w.smtp.mails().len() == 1).await;
    // Many rounds later (50 ms apart), still one mail: one per condition per hour.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mails = w.smtp.mails();
    assert_eq!(mails.len(), 1, "{mails:#?}");
    let mail = &mails[0];
    assert_eq!(
        mail.subject(),
        "[whatsapp-sidecar] WhatsApp account Main is paused"
    );
    assert_eq!(mail.from, "<sidecar@example.com>");
    assert_eq!(mail.to, vec!["<ops@example.com>".to_owned()]);
    assert_eq!(
        mail.auth.as_deref(),
        Some("\0sidecar\0smtp-secret"),
        "logged in with the configured credentials"
    );
    let body = mail.body();
    assert!(
        body.contains("Meta refused the access token (190): it expired."),
        "{body}"
    );
    assert!(body.contains("untick Paused"), "{body}");
    assert!(body.contains("Odoo database test"), "{body}");

    // Resumed: one "resolved" mail.
    w.odoo.update(
        ACCOUNT,
        w.account,
        json!({"paused": false, "paused_reason": false}),
    );
    until("the resolved mail", || w.smtp.mails().len() == 2).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mails = w.smtp.mails();
    assert_eq!(mails.len(), 2);
    assert_eq!(
        mails[1].subject(),
        "[whatsapp-sidecar] Resolved: WhatsApp account Main is paused"
    );
    stop.cancel();
    task.await.expect("the loop stops");
}

#[tokio::test]
async fn a_mail_the_server_does_not_take_goes_out_when_it_does() {
    let mut w = world(SandboxConfig::default()).await;
    w.smtp.refuse(true);
    w.odoo.update(
        ACCOUNT,
        w.account,
        json!({"paused": true, "paused_reason": "policy"}),
    );
    let stop = CancellationToken::new();
    let task = tokio::spawn(alerts::run(w.ctx.take().expect("ctx"), stop.clone()));
    until("tried twice", || w.smtp.connections() >= 2).await;
    assert!(w.smtp.mails().is_empty());
    w.smtp.refuse(false);
    until("the mail, once the server takes it", || {
        w.smtp.mails().len() == 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(w.smtp.mails().len(), 1, "sent once");
    stop.cancel();
    task.await.expect("the loop stops");
}

#[tokio::test]
async fn a_token_meta_says_expires_within_a_week_is_mailed() {
    let in_three_days = chrono::Utc::now() + chrono::Duration::days(3);
    let meta = SandboxConfig {
        token_expires_at: in_three_days.timestamp(),
        ..SandboxConfig::default()
    };
    let mut w = world(meta).await;
    let mut ctx = w.ctx.take().expect("ctx");
    ctx.settings.kinds = [AlertKind::TokenExpiring].into_iter().collect();
    let stop = CancellationToken::new();
    let task = tokio::spawn(alerts::run(ctx, stop.clone()));
    until("the token mail", || w.smtp.mails().len() == 1).await;
    let mail = &w.smtp.mails()[0];
    let day = in_three_days.format("%Y-%m-%d").to_string();
    assert!(
        mail.subject()
            .starts_with("[whatsapp-sidecar] The access token of WhatsApp account Main expires on"),
        "{}",
        mail.subject()
    );
    assert!(mail.subject().contains(&day), "{}", mail.subject());
    stop.cancel();
    task.await.expect("the loop stops");
}

#[tokio::test]
async fn odoo_unreachable_for_longer_than_the_setting_is_mailed_and_resolved() {
    let mut w = world(SandboxConfig::default()).await;
    let mut ctx = w.ctx.take().expect("ctx");
    ctx.settings.odoo_unreachable_after = Duration::from_millis(200);
    let stop = CancellationToken::new();
    w.odoo.go_down(support::Outage::Refuse).await;
    let task = tokio::spawn(alerts::run(ctx, stop.clone()));
    // Not at once: only after the setting.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(w.smtp.mails().is_empty());
    until("the Odoo mail", || w.smtp.mails().len() == 1).await;
    assert!(
        w.smtp.mails()[0]
            .subject()
            .starts_with("[whatsapp-sidecar] Odoo has been unreachable for"),
        "{}",
        w.smtp.mails()[0].subject()
    );
    w.odoo.come_back().await;
    until("the resolved mail", || w.smtp.mails().len() == 2).await;
    assert!(w.smtp.mails()[1].subject().contains("Resolved: Odoo"));
    stop.cancel();
    task.await.expect("the loop stops");
}

#[tokio::test]
async fn the_connection_test_logs_in_without_sending_and_names_a_server_that_is_down() {
    let w = world(SandboxConfig::default()).await;
    let mailer = &w.ctx.as_ref().expect("ctx").mailer;
    mailer
        .test_connection()
        .await
        .expect("the receiver answers");
    assert_eq!(w.smtp.connections(), 1);
    assert!(w.smtp.mails().is_empty(), "no mail sent");

    let port = w.smtp.port;
    drop(w);
    let down = SmtpReceiver::start().await;
    let mut gone = settings(&down);
    gone.smtp_url = Some(format!("smtp://127.0.0.1:{port}").parse().expect("url"));
    let mailer = Mailer::new(&gone, "test").expect("mailer");
    let error = mailer.test_connection().await.expect_err("nothing listens");
    assert!(error.is_retryable(), "{error}");
    assert!(
        error.to_string().contains(&format!("127.0.0.1:{port}")),
        "{error}"
    );
}
