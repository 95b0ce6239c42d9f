//! `whatsapp-sidecar sandbox`: run the sandbox, or inject an inbound message into a running one.
//!
//! ```text
//! whatsapp-sidecar sandbox [--listen 127.0.0.1:8788] [--config sandbox.toml]
//!                          [--callback-url URL] [--app-secret-file F]
//! whatsapp-sidecar sandbox inject --from +2250700000001 --text "hi"
//! whatsapp-sidecar sandbox inject --from +2250700000001 --button-reply ID [--title T]
//! whatsapp-sidecar sandbox inject --from +2250700000001 --list-reply ID [--title T]
//! whatsapp-sidecar sandbox inject --from +2250700000001 --button-payload PAYLOAD [--title T]
//!                                 [--name "Awa"] [--sandbox-url http://127.0.0.1:8788]
//! ```

use super::config::SandboxConfig;
use super::error::SandboxError;
use super::state::{InjectRequest, ListRef, ReplyRef, TemplateButtonRef};
use super::SandboxHandle;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use url::Url;

/// `whatsapp-sidecar sandbox`.
#[derive(Debug, Clone, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct SandboxArgs {
    /// Inject a message into a running sandbox instead of starting one.
    #[command(subcommand)]
    pub command: Option<SandboxCommand>,
    /// Address to listen on.
    #[arg(
        long,
        default_value = "127.0.0.1:8788",
        env = "WHATSAPP_SIDECAR_SANDBOX_LISTEN"
    )]
    pub listen: SocketAddr,
    /// Sandbox configuration file (TOML); without it the built-in default is used.
    #[arg(long, env = "WHATSAPP_SIDECAR_SANDBOX_CONFIG")]
    pub config: Option<PathBuf>,
    /// Where to POST webhooks (overrides webhooks.callback_url).
    #[arg(long)]
    pub callback_url: Option<Url>,
    /// File holding the app secret that signs webhooks (overrides webhooks.app_secret_file).
    #[arg(long)]
    pub app_secret_file: Option<PathBuf>,
}

/// Sub-commands of `sandbox`.
#[derive(Debug, Clone, clap::Subcommand)]
pub enum SandboxCommand {
    /// Inject an inbound message (as if a user wrote to the business) into a running sandbox.
    Inject(InjectArgs),
}

/// `whatsapp-sidecar sandbox inject`.
#[derive(Debug, Clone, clap::Args)]
#[command(group(clap::ArgGroup::new("content").required(true).args(["text", "button_reply", "list_reply", "button_payload"])))]
pub struct InjectArgs {
    /// The user's number, e.g. +2250700000001.
    #[arg(long)]
    pub from: String,
    /// A text message.
    #[arg(long)]
    pub text: Option<String>,
    /// A tap on the reply button with this id.
    #[arg(long)]
    pub button_reply: Option<String>,
    /// A choice of the list row with this id.
    #[arg(long)]
    pub list_reply: Option<String>,
    /// A tap on a template quick-reply button that was sent with this payload.
    #[arg(long)]
    pub button_payload: Option<String>,
    /// The button or row title (looked up in the sent message when omitted).
    #[arg(long)]
    pub title: Option<String>,
    /// The user's profile name.
    #[arg(long)]
    pub name: Option<String>,
    /// The receiving phone number id (default: the sandbox's first number).
    #[arg(long)]
    pub phone_number_id: Option<String>,
    /// The running sandbox.
    #[arg(
        long,
        default_value = "http://127.0.0.1:8788",
        env = "WHATSAPP_SIDECAR_SANDBOX_URL"
    )]
    pub sandbox_url: Url,
}

impl InjectArgs {
    /// The request body for `POST /sandbox/inject`.
    pub fn request(&self) -> InjectRequest {
        InjectRequest {
            from: self.from.clone(),
            name: self.name.clone(),
            phone_number_id: self.phone_number_id.clone(),
            text: self.text.clone(),
            button_reply: self.button_reply.clone().map(|id| ReplyRef {
                id,
                title: self.title.clone(),
            }),
            list_reply: self.list_reply.clone().map(|id| ListRef {
                id,
                title: self.title.clone(),
                description: None,
            }),
            button: self
                .button_payload
                .clone()
                .map(|payload| TemplateButtonRef {
                    payload,
                    text: self.title.clone(),
                }),
            context: None,
        }
    }
}

/// Loads the configuration the command line asks for.
pub fn load_config(args: &SandboxArgs) -> Result<SandboxConfig, SandboxError> {
    let mut config = match &args.config {
        Some(path) => SandboxConfig::from_file(path)?,
        None => SandboxConfig::default(),
    };
    if let Some(url) = &args.callback_url {
        config.webhooks.callback_url = Some(url.clone());
    }
    if let Some(path) = &args.app_secret_file {
        config.webhooks.app_secret_file = Some(path.clone());
    }
    config.load_files()?;
    config.validate()?;
    Ok(config)
}

/// Runs `whatsapp-sidecar sandbox [...]` until `shutdown` (listening), or one injection.
pub async fn run_cli(args: SandboxArgs, shutdown: CancellationToken) -> Result<(), SandboxError> {
    match &args.command {
        Some(SandboxCommand::Inject(inject)) => run_inject(inject).await,
        None => {
            let config = load_config(&args)?;
            let callback = config.webhooks.callback_url.clone();
            let handle = SandboxHandle::bind(args.listen, config, shutdown).await?;
            println!("sandbox listening on {}", handle.base_url());
            match callback {
                Some(url) => println!("webhooks go to {url}"),
                None => println!(
                    "no callback URL: statuses are kept in the record only (GET /sandbox/messages)"
                ),
            }
            handle.stopped().await
        }
    }
}

async fn run_inject(args: &InjectArgs) -> Result<(), SandboxError> {
    let url = args
        .sandbox_url
        .join("sandbox/inject")
        .map_err(|e| SandboxError::Config(format!("--sandbox-url {}: {e}", args.sandbox_url)))?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .no_proxy()
        .build()
        .map_err(|e| SandboxError::Config(format!("cannot build an HTTP client: {e}")))?;
    let client_error = |message: String, retryable: bool| SandboxError::Client {
        url: args.sandbox_url.to_string(),
        message,
        retryable,
    };
    let response = client
        .post(url)
        .json(&inject_body(&args.request()))
        .send()
        .await
        .map_err(|e| {
            client_error(
                format!("{e} (is `whatsapp-sidecar sandbox` running there?)"),
                true,
            )
        })?;
    let status = response.status();
    let body: serde_json::Value = response
        .json()
        .await
        .map_err(|e| client_error(format!("unreadable answer: {e}"), false))?;
    if !status.is_success() {
        let message = body["error"]["message"].as_str().unwrap_or("unknown error");
        return Err(SandboxError::Inject(refusal_reason(message).to_owned()));
    }
    let wamid = body["wamid"].as_str().unwrap_or("?");
    if body["queued"].as_bool() == Some(true) {
        println!("injected {wamid}; the webhook is on its way to the callback URL");
    } else {
        println!("injected {wamid}; no callback URL is configured, so no webhook was sent");
    }
    Ok(())
}

/// The reason in a refusal from the sandbox, without the "cannot inject: " its server already
/// put in front ([`SandboxError::Inject`] adds it once).
fn refusal_reason(message: &str) -> &str {
    let prefix = "cannot inject: ";
    match message.get(..prefix.len()) {
        Some(head) if head.eq_ignore_ascii_case(prefix) => message[prefix.len()..].trim_start(),
        _ => message,
    }
}

fn inject_body(request: &InjectRequest) -> serde_json::Value {
    serde_json::to_value(request).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(subcommand)]
        command: Top,
    }

    #[derive(clap::Subcommand)]
    enum Top {
        Sandbox(SandboxArgs),
    }

    fn parse(args: &[&str]) -> Result<SandboxArgs, clap::Error> {
        let mut full = vec!["whatsapp-sidecar", "sandbox"];
        full.extend_from_slice(args);
        Cli::try_parse_from(full).map(|cli| match cli.command {
            Top::Sandbox(args) => args,
        })
    }

    #[test]
    fn defaults() {
        let args = parse(&[]).unwrap();
        assert_eq!(args.listen.to_string(), "127.0.0.1:8788");
        assert!(args.command.is_none());
        let config = load_config(&args).unwrap();
        assert_eq!(config.phone_numbers[0].id, "sandbox-0001");
    }

    #[test]
    fn overrides() {
        let args = parse(&[
            "--listen",
            "127.0.0.1:0",
            "--callback-url",
            "http://127.0.0.1:9/hook",
        ])
        .unwrap();
        let config = load_config(&args).unwrap();
        assert_eq!(
            config.webhooks.callback_url.unwrap().as_str(),
            "http://127.0.0.1:9/hook"
        );
    }

    #[test]
    fn inject_variants() {
        let args = parse(&["inject", "--from", "+2250700000001", "--text", "hi"]).unwrap();
        let Some(SandboxCommand::Inject(inject)) = args.command else {
            panic!("not inject")
        };
        let body = inject_body(&inject.request());
        assert_eq!(body["from"], "+2250700000001");
        assert_eq!(body["text"], "hi");
        assert!(body.get("button_reply").is_none());

        let args = parse(&[
            "inject",
            "--from",
            "+2250700000001",
            "--button-reply",
            "yes",
            "--title",
            "Yes",
        ])
        .unwrap();
        let Some(SandboxCommand::Inject(inject)) = args.command else {
            panic!("not inject")
        };
        let body = inject_body(&inject.request());
        assert_eq!(body["button_reply"]["id"], "yes");
        assert_eq!(body["button_reply"]["title"], "Yes");

        let args = parse(&["inject", "--from", "+2250700000001", "--list-reply", "r1"]).unwrap();
        let Some(SandboxCommand::Inject(inject)) = args.command else {
            panic!("not inject")
        };
        assert_eq!(inject_body(&inject.request())["list_reply"]["id"], "r1");

        assert!(parse(&["inject", "--from", "+2250700000001"]).is_err());
        assert!(parse(&["inject", "--from", "+1", "--text", "a", "--list-reply", "b"]).is_err());
    }

    #[test]
    fn a_refusal_says_cannot_inject_once() {
        let from_server = SandboxError::Inject("from \"123\" is not a phone number".into());
        let shown = SandboxError::Inject(refusal_reason(&from_server.to_string()).to_owned());
        assert_eq!(
            shown.to_string(),
            "cannot inject: from \"123\" is not a phone number"
        );
        assert_eq!(refusal_reason("text is empty"), "text is empty");
    }

    #[test]
    fn a_missing_config_file_is_named() {
        let args = parse(&["--config", "/nonexistent/sandbox.toml"]).unwrap();
        let err = load_config(&args).unwrap_err();
        assert!(
            err.to_string().contains("/nonexistent/sandbox.toml"),
            "{err}"
        );
    }
}
