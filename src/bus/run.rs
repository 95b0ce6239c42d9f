//! The bus task: connect, subscribe, wake the loops a notification concerns, and reconnect
//! with backoff when the connection ends, asking for the notifications missed meanwhile.

use super::client::{BusClient, Connection};
use super::{BusError, Hub};
use backon::{BackoffBuilder, ExponentialBuilder};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// After a refusal that needs a fix (a missing route, a refused login), try again this often.
const RETRY_AFTER_REFUSAL: Duration = Duration::from_secs(300);

/// How one connection ended.
enum Ended {
    Shutdown,
    Lost(BusError),
}

/// Keeps the daemon subscribed to Odoo's bus until `shutdown`.
pub async fn run(client: BusClient, hub: Arc<Hub>, shutdown: CancellationToken) {
    let mut last: i64 = 0;
    let mut failures: u32 = 0;
    let mut ever_connected = false;
    let new_backoff = || {
        ExponentialBuilder::default()
            .with_min_delay(Duration::from_secs(1))
            .with_max_delay(Duration::from_secs(60))
            .with_jitter()
            .without_max_times()
            .build()
    };
    let mut backoff = new_backoff();
    loop {
        let connected = tokio::select! {
            _ = shutdown.cancelled() => break,
            connected = client.connect(last) => connected,
        };
        let error = match connected {
            Ok(connection) => {
                hub.set_up(true);
                if !ever_connected {
                    tracing::info!(
                        url = client.url(),
                        slow_poll = ?hub.slow(),
                        "subscribed to Odoo's bus: changes made in Odoo wake the daemon at once; \
                         idle components poll only at the slow rate"
                    );
                } else if failures > 0 {
                    tracing::info!(
                        url = client.url(),
                        failed_attempts = failures,
                        "subscribed to Odoo's bus again"
                    );
                } else {
                    tracing::debug!(url = client.url(), "subscribed to Odoo's bus again");
                }
                ever_connected = true;
                failures = 0;
                backoff = new_backoff();
                let ended = listen(&client, connection, &hub, &mut last, &shutdown).await;
                hub.set_up(false);
                match ended {
                    Ended::Shutdown => break,
                    Ended::Lost(error) => {
                        if matches!(&error, BusError::Closed { code, .. }
                            if *code == super::protocol::CLOSE_KEEP_ALIVE_TIMEOUT)
                        {
                            // Odoo's hourly renewal: reconnect at once.
                            tracing::debug!("Odoo renewed the bus connection");
                            continue;
                        }
                        tracing::warn!(
                            error = %error,
                            "lost Odoo's bus; polling at the usual rates until it is back"
                        );
                        error
                    }
                }
            }
            Err(error) => {
                if failures == 0 && ever_connected {
                    tracing::debug!(error = %error, "cannot subscribe to Odoo's bus again yet");
                } else if failures == 0 {
                    tracing::warn!(
                        error = %error,
                        url = client.url(),
                        "cannot subscribe to Odoo's bus; the daemon polls at the usual rates \
                         and tries again"
                    );
                } else {
                    tracing::debug!(error = %error, failures, "Odoo's bus still unavailable");
                }
                failures = failures.saturating_add(1);
                error
            }
        };
        let delay = if error.is_retryable() {
            backoff.next().unwrap_or(Duration::from_secs(60))
        } else {
            RETRY_AFTER_REFUSAL
        };
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tokio::time::sleep(delay) => {}
        }
    }
    hub.set_up(false);
    tracing::debug!("bus subscription stopped");
}

/// Reads notifications until the connection ends or `shutdown`.
async fn listen(
    client: &BusClient,
    mut connection: Connection,
    hub: &Hub,
    last: &mut i64,
    shutdown: &CancellationToken,
) -> Ended {
    loop {
        let next = tokio::select! {
            _ = shutdown.cancelled() => {
                connection.close().await;
                return Ended::Shutdown;
            }
            next = connection.next() => next,
        };
        match next {
            Ok(notifications) => {
                for n in notifications {
                    *last = (*last).max(n.id);
                    if let Some(model) = &n.model {
                        let woken = hub.deliver(model);
                        tracing::debug!(model = %model, count = n.count, woken, "bus notification");
                    }
                }
            }
            Err(error) => {
                if Connection::session_expired(&error) {
                    let cookie = connection.cookie();
                    drop(connection);
                    client.session_ended(&cookie).await;
                }
                return Ended::Lost(error);
            }
        }
    }
}
