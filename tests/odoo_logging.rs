//! What the client logs: retries as warnings with the attempt number, inside spans that carry
//! the model, method and ids; never a secret.

mod support;

use serde_json::json;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use support::{client_config, Fault, OdooStandin};
use whatsapp_sidecar::odoo::{Domain, OdooClient};

#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn retries_are_logged_with_context_and_without_secrets() {
    let captured = Captured::default();
    let sink = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || sink.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::DEBUG)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let s = OdooStandin::start().await;
    let client = OdooClient::new(client_config(&s))
        .unwrap()
        .with_retry_delays(Duration::from_millis(1), Duration::from_millis(2));
    s.fail_next_call("res.partner", "write", 2, Fault::Http(503));
    client
        .write("res.partner", &[14, 10], &json!({"ref": "x"}))
        .await
        .unwrap();
    s.fail_next_call(
        "res.partner",
        "search_count",
        1,
        Fault::serialization_failure(),
    );
    client
        .search_count("res.partner", &Domain::all())
        .await
        .unwrap();
    client
        .report_pdf("sale.report_saleorder", &[2])
        .await
        .unwrap();

    let text = String::from_utf8(captured.0.lock().unwrap().clone()).unwrap();
    let warnings: Vec<&str> = text.lines().filter(|l| l.contains("WARN")).collect();
    println!("{}", warnings.join("\n"));
    assert_eq!(warnings.len(), 3, "{text}");
    assert!(
        warnings[0].contains("attempt=1") && warnings[1].contains("attempt=2"),
        "{text}"
    );
    assert!(
        warnings[0].contains("model=res.partner") && warnings[0].contains("method=write"),
        "{text}"
    );
    assert!(warnings[0].contains("ids=14,10"), "{text}");
    assert!(warnings[0].contains("HTTP 503"), "{text}");
    assert!(warnings[2].contains("SerializationFailure"), "{text}");
    for secret in [s.api_key(), "password\":\"admin", "session_id="] {
        assert!(!text.contains(secret), "{secret} leaked: {text}");
    }
}
