//! The mails and the SMTP conversation (lettre's SMTP transport): the only I/O of the alerts
//! besides the loop's reads.

use lettre::message::header::ContentType;
use lettre::message::Mailbox;
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use std::time::Duration;

use super::rules::{Mail, MailKind};
use super::AlertSettings;

/// How long one SMTP conversation may take.
const SMTP_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a mail did not go out. No variant carries the SMTP password.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// The `[alerts]` settings cannot make a mail (not retryable: fix the configuration).
    #[error("alerts.{key}: {detail}")]
    Config { key: &'static str, detail: String },
    /// The SMTP server could not be reached or refused the mail.
    #[error("the SMTP server {server} refused or could not be reached: {detail}")]
    Smtp {
        server: String,
        detail: String,
        /// False when the server refused for good (a rejected address, wrong credentials).
        retryable: bool,
    },
}

impl MailError {
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            MailError::Smtp {
                retryable: true,
                ..
            }
        )
    }
}

/// Sends the alert mails of one daemon.
pub struct Mailer {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    server: String,
    from: Mailbox,
    to: Vec<Mailbox>,
    /// Which daemon speaks (the Odoo database and URL), in every mail.
    about: String,
}

impl std::fmt::Debug for Mailer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mailer")
            .field("server", &self.server)
            .field("from", &self.from.to_string())
            .field("to", &self.to.len())
            .finish()
    }
}

fn mailbox(key: &'static str, value: &str) -> Result<Mailbox, MailError> {
    value
        .trim()
        .parse::<Mailbox>()
        .map_err(|e| MailError::Config {
            key,
            detail: format!(
                "{value:?} is not a mail address ({e}); write e.g. \"Ops <ops@example.com>\""
            ),
        })
}

impl Mailer {
    /// A mailer from the settings; `about` names the daemon in the mails.
    pub fn new(settings: &AlertSettings, about: &str) -> Result<Mailer, MailError> {
        let Some(url) = &settings.smtp_url else {
            return Err(MailError::Config {
                key: "smtp_url",
                detail: "not set; e.g. smtp://smtp.example.com:587?tls=required (STARTTLS) or \
                         smtps://smtp.example.com:465 (TLS)"
                    .into(),
            });
        };
        let mut shown = url.clone();
        let _ = shown.set_password(None);
        let server = format!(
            "{}:{}",
            url.host_str().unwrap_or("?"),
            url.port_or_known_default().unwrap_or(0)
        );
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::from_url(url.as_str())
            .map_err(|e| MailError::Config {
                key: "smtp_url",
                detail: format!("{shown} cannot be used ({e}); use smtp://host:587?tls=required or smtps://host:465"),
            })?;
        if let Some(password) = &settings.smtp_password {
            let user = settings
                .smtp_user
                .clone()
                .filter(|u| !u.is_empty())
                .or_else(|| Some(url.username().to_owned()).filter(|u| !u.is_empty()))
                .ok_or(MailError::Config {
                    key: "smtp_user",
                    detail: "a password is set but no user: set alerts.smtp_user".into(),
                })?;
            builder = builder.credentials(Credentials::new(user, password.expose().to_owned()));
        }
        let transport = builder.timeout(Some(SMTP_TIMEOUT)).build();
        let from = mailbox("from", &settings.from)?;
        if settings.to.is_empty() {
            return Err(MailError::Config {
                key: "to",
                detail: "no recipient; e.g. to = [\"ops@example.com\"]".into(),
            });
        }
        let to = settings
            .to
            .iter()
            .map(|t| mailbox("to", t))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Mailer {
            transport,
            server,
            from,
            to,
            about: about.to_owned(),
        })
    }

    /// The mail for `mail`, as sent.
    pub fn message(&self, mail: &Mail) -> Result<Message, MailError> {
        let c = &mail.condition;
        let (subject, opening) = match mail.kind {
            MailKind::Firing => (
                format!("[whatsapp-sidecar] {}", c.summary),
                "This needs a person:",
            ),
            MailKind::Reminder => (
                format!("[whatsapp-sidecar] Still: {}", c.summary),
                "This still needs a person:",
            ),
            MailKind::Resolved => (
                format!("[whatsapp-sidecar] Resolved: {}", c.summary),
                "This has cleared; nothing to do any more:",
            ),
        };
        let body = format!(
            "{opening}\n\n{}\n\n-- \nwhatsapp-sidecar {} ({})\nalert: {} ({})\n",
            c.details,
            env!("CARGO_PKG_VERSION"),
            self.about,
            c.kind.name(),
            c.subject
        );
        let mut builder = Message::builder()
            .from(self.from.clone())
            .subject(subject)
            .header(ContentType::TEXT_PLAIN);
        for to in &self.to {
            builder = builder.to(to.clone());
        }
        builder.body(body).map_err(|e| MailError::Config {
            key: "to",
            detail: format!("the mail cannot be built: {e}"),
        })
    }

    /// Sends one mail.
    pub async fn send(&self, mail: &Mail) -> Result<(), MailError> {
        let message = self.message(mail)?;
        self.transport
            .send(message)
            .await
            .map(|_| ())
            .map_err(|e| self.smtp_error(&e))
    }

    /// Connects, greets and logs in, and says goodbye: no mail sent (`check`).
    pub async fn test_connection(&self) -> Result<(), MailError> {
        match self.transport.test_connection().await {
            Ok(true) => Ok(()),
            Ok(false) => Err(MailError::Smtp {
                server: self.server.clone(),
                detail: "the server did not answer the greeting".into(),
                retryable: true,
            }),
            Err(e) => Err(self.smtp_error(&e)),
        }
    }

    /// Where mails go, for messages.
    pub fn server(&self) -> &str {
        &self.server
    }

    fn smtp_error(&self, e: &lettre::transport::smtp::Error) -> MailError {
        let mut detail = e.to_string();
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            detail.push_str(": ");
            detail.push_str(&s.to_string());
            source = s.source();
        }
        MailError::Smtp {
            server: self.server.clone(),
            detail,
            retryable: !e.is_permanent(),
        }
    }
}
