//! The accounts' webhook keys (app secrets, verify tokens) and routing ids, loaded from Odoo and
//! kept fresh.
//!
//! [`Keys`] is an immutable snapshot with the pure checks: a POST signature is accepted when it
//! matches the app secret of any account (several numbers usually share one Meta app); a GET
//! handshake when its token equals any account's verify token. [`KeyCache`] hands out the
//! current snapshot; [`spawn_refresher`] reloads it from a [`KeySource`] every
//! `refresh_interval`, and sooner when a refused signature suggests a secret was just changed
//! (at most once per `min_reload_gap`). Until the first load succeeds there is no snapshot and
//! the receiver answers 503, so Meta keeps the events for later.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{watch, Notify};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::secret::Secret;
use crate::whatsapp::signature::{verify_challenge, verify_signature, SignatureError};

/// One `whatsapp.account`, as far as webhooks are concerned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountKey {
    pub account_id: i64,
    pub phone_number_id: Option<String>,
    pub waba_id: Option<String>,
    pub app_secret: Option<Secret>,
    pub verify_token: Option<Secret>,
}

/// Why a POST was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// No account has an app secret: nothing can be verified (answer 503; Meta keeps retrying
    /// until someone sets it).
    #[error("no WhatsApp account has an app secret, so webhook signatures cannot be checked: set the App Secret (Meta app > Basic settings) on the account in Odoo (WhatsApp > Configuration > Accounts)")]
    NoSecret,
    /// The signature is missing, malformed or matches no app secret (answer 401).
    #[error(transparent)]
    Signature(SignatureError),
}

/// A snapshot of every account's keys.
#[derive(Debug, Default)]
pub struct Keys {
    accounts: Vec<AccountKey>,
    secrets: Vec<Secret>,
    tokens: Vec<Secret>,
}

impl Keys {
    pub fn new(accounts: Vec<AccountKey>) -> Self {
        let mut secrets: Vec<Secret> = Vec::new();
        let mut tokens: Vec<Secret> = Vec::new();
        for account in &accounts {
            for (value, list) in [
                (&account.app_secret, &mut secrets),
                (&account.verify_token, &mut tokens),
            ] {
                if let Some(v) = value.as_ref().filter(|v| !v.is_blank()) {
                    if !list.contains(v) {
                        list.push(v.clone());
                    }
                }
            }
        }
        Keys {
            accounts,
            secrets,
            tokens,
        }
    }

    /// Number of accounts in the snapshot.
    pub fn len(&self) -> usize {
        self.accounts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.accounts.is_empty()
    }

    /// Checks `X-Hub-Signature-256` against every known app secret.
    pub fn verify_post(&self, raw_body: &[u8], header: Option<&str>) -> Result<(), Refusal> {
        let mut refusal = Refusal::NoSecret;
        for secret in &self.secrets {
            match verify_signature(secret, raw_body, header) {
                Ok(()) => return Ok(()),
                // A malformed or missing header fails the same way for every secret.
                Err(
                    e @ (SignatureError::MissingHeader
                    | SignatureError::WrongPrefix
                    | SignatureError::BadHex),
                ) => return Err(Refusal::Signature(e)),
                Err(e) => refusal = Refusal::Signature(e),
            }
        }
        Err(refusal)
    }

    /// The GET handshake: the challenge to echo when `mode` is `subscribe` and `token` is some
    /// account's verify token.
    pub fn verify_get<'a>(
        &self,
        mode: Option<&str>,
        token: Option<&str>,
        challenge: Option<&'a str>,
    ) -> Option<&'a str> {
        self.tokens
            .iter()
            .find_map(|expected| verify_challenge(mode, token, challenge, expected).ok())
    }

    /// The account a payload is about: by phone number id, else by WABA id when exactly one
    /// account has it.
    pub fn account_for(&self, phone_number_ids: &[String], waba_ids: &[String]) -> Option<i64> {
        let by_phone = phone_number_ids.iter().find_map(|id| {
            self.accounts
                .iter()
                .find(|a| a.phone_number_id.as_deref() == Some(id.as_str()))
                .map(|a| a.account_id)
        });
        by_phone.or_else(|| {
            waba_ids.iter().find_map(|id| {
                let mut matching = self
                    .accounts
                    .iter()
                    .filter(|a| a.waba_id.as_deref() == Some(id.as_str()));
                match (matching.next(), matching.next()) {
                    (Some(a), None) => Some(a.account_id),
                    _ => None,
                }
            })
        })
    }
}

/// Why the keys could not be loaded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot load the WhatsApp accounts' webhook keys from Odoo: {0}")]
pub struct KeyError(pub String);

impl KeyError {
    /// Loading is retried on the next refresh.
    pub fn is_retryable(&self) -> bool {
        true
    }
}

/// Where the keys come from: Odoo in the daemon, a fixed list in tests.
pub trait KeySource: Send + Sync + 'static {
    fn load(&self) -> impl Future<Output = Result<Vec<AccountKey>, KeyError>> + Send;
}

/// The current snapshot, shared by the request handlers.
#[derive(Clone)]
pub struct KeyCache {
    current: watch::Receiver<Option<Arc<Keys>>>,
    reload: Arc<Notify>,
}

impl KeyCache {
    /// A cache that never changes (tests, and callers that manage keys themselves).
    pub fn fixed(keys: Keys) -> Self {
        let (_tx, current) = watch::channel(Some(Arc::new(keys)));
        KeyCache {
            current,
            reload: Arc::new(Notify::new()),
        }
    }

    /// The current snapshot; `None` until the first load succeeded.
    pub fn current(&self) -> Option<Arc<Keys>> {
        self.current.borrow().clone()
    }

    /// Asks the refresher to reload soon (a signature was refused: a secret may have changed).
    pub fn request_reload(&self) {
        self.reload.notify_one();
    }

    /// Waits until a snapshot is loaded (start-up, tests).
    pub async fn loaded(&self) -> Option<Arc<Keys>> {
        let mut rx = self.current.clone();
        let loaded = rx.wait_for(Option::is_some).await.ok()?.clone();
        loaded
    }
}

/// How often the keys are reloaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshConfig {
    /// Regular reload.
    pub refresh_interval: Duration,
    /// Reload on request (refused signature) at most this often; also the retry delay while
    /// the first load fails.
    pub min_reload_gap: Duration,
}

impl Default for RefreshConfig {
    fn default() -> Self {
        RefreshConfig {
            refresh_interval: Duration::from_secs(60),
            min_reload_gap: Duration::from_secs(10),
        }
    }
}

/// Starts the task that loads the keys now and keeps them fresh, until `shutdown`.
pub fn spawn_refresher<S: KeySource>(
    source: S,
    config: RefreshConfig,
    tracker: &TaskTracker,
    shutdown: CancellationToken,
) -> KeyCache {
    let (tx, current) = watch::channel(None);
    let reload = Arc::new(Notify::new());
    let cache = KeyCache {
        current,
        reload: reload.clone(),
    };
    tracker.spawn(async move {
        let mut last_error: Option<KeyError> = None;
        loop {
            let started = Instant::now();
            match source.load().await {
                Ok(accounts) => {
                    let keys = Keys::new(accounts);
                    if last_error.take().is_some() || tx.borrow().is_none() {
                        tracing::info!(accounts = keys.len(), "webhook keys loaded");
                    }
                    if keys.secrets.is_empty() {
                        tracing::warn!("{}", Refusal::NoSecret);
                    }
                    tx.send_replace(Some(Arc::new(keys)));
                }
                Err(error) => {
                    if last_error.as_ref() != Some(&error) {
                        tracing::warn!(%error, "webhook keys not refreshed; keeping the last ones");
                    }
                    last_error = Some(error);
                }
            }
            let gap = started + config.min_reload_gap;
            let next = if last_error.is_some() && tx.borrow().is_none() {
                gap
            } else {
                started + config.refresh_interval
            };
            tokio::select! {
                () = shutdown.cancelled() => break,
                () = tokio::time::sleep_until(next) => {}
                () = reload.notified() => {
                    tokio::select! {
                        () = shutdown.cancelled() => break,
                        () = tokio::time::sleep_until(gap) => {}
                    }
                }
            }
        }
    });
    cache
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::whatsapp::signature::sign;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Mutex;

    fn account(id: i64, phone: &str, waba: &str, secret: &str, token: &str) -> AccountKey {
        let opt = |s: &str| (!s.is_empty()).then(|| Secret::new(s));
        AccountKey {
            account_id: id,
            phone_number_id: Some(phone.into()),
            waba_id: Some(waba.into()),
            app_secret: opt(secret),
            verify_token: opt(token),
        }
    }

    #[test]
    fn any_accounts_app_secret_verifies_a_post() {
        let keys = Keys::new(vec![
            account(1, "111", "W1", "s1", "t1"),
            account(2, "222", "W2", "s2", ""),
        ]);
        let body = br#"{"entry":[]}"#;
        for secret in ["s1", "s2"] {
            let header = sign(&Secret::new(secret), body);
            assert_eq!(keys.verify_post(body, Some(&header)), Ok(()));
        }
        let forged = sign(&Secret::new("other"), body);
        assert_eq!(
            keys.verify_post(body, Some(&forged)),
            Err(Refusal::Signature(SignatureError::Mismatch))
        );
        let good = sign(&Secret::new("s1"), body);
        assert_eq!(
            keys.verify_post(b"{\"entry\":[1]}", Some(&good)),
            Err(Refusal::Signature(SignatureError::Mismatch))
        );
        assert_eq!(
            keys.verify_post(body, None),
            Err(Refusal::Signature(SignatureError::MissingHeader))
        );
        assert_eq!(
            keys.verify_post(body, Some("md5=00")),
            Err(Refusal::Signature(SignatureError::WrongPrefix))
        );
    }

    #[test]
    fn without_any_app_secret_nothing_verifies() {
        let keys = Keys::new(vec![account(1, "111", "W1", "", "t1")]);
        let header = sign(&Secret::new("s1"), b"{}");
        assert_eq!(
            keys.verify_post(b"{}", Some(&header)),
            Err(Refusal::NoSecret)
        );
    }

    #[test]
    fn handshake_needs_subscribe_and_a_known_token() {
        let keys = Keys::new(vec![
            account(1, "111", "W1", "s1", "t1"),
            account(2, "222", "W2", "s2", "t2"),
        ]);
        assert_eq!(
            keys.verify_get(Some("subscribe"), Some("t2"), Some("42")),
            Some("42")
        );
        assert_eq!(
            keys.verify_get(Some("subscribe"), Some("t3"), Some("42")),
            None
        );
        assert_eq!(
            keys.verify_get(Some("unsubscribe"), Some("t1"), Some("42")),
            None
        );
        assert_eq!(keys.verify_get(Some("subscribe"), None, Some("42")), None);
        assert_eq!(keys.verify_get(Some("subscribe"), Some("t1"), None), None);
        assert_eq!(
            Keys::new(vec![]).verify_get(Some("subscribe"), Some(""), Some("1")),
            None
        );
    }

    #[test]
    fn routing_by_phone_number_id_then_unambiguous_waba() {
        let keys = Keys::new(vec![
            account(1, "111", "W1", "s", "t"),
            account(2, "222", "W1", "s", "t"),
            account(3, "333", "W3", "s", "t"),
        ]);
        let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(keys.account_for(&v(&["222"]), &v(&["W1"])), Some(2));
        assert_eq!(keys.account_for(&v(&["999", "333"]), &[]), Some(3));
        assert_eq!(keys.account_for(&[], &v(&["W3"])), Some(3));
        assert_eq!(
            keys.account_for(&[], &v(&["W1"])),
            None,
            "two accounts share W1"
        );
        assert_eq!(keys.account_for(&v(&["999"]), &v(&["W9"])), None);
    }

    #[test]
    fn secrets_stay_out_of_debug_output() {
        let keys = Keys::new(vec![account(1, "111", "W1", "topsecret", "tok3n")]);
        let shown = format!("{keys:?}");
        assert!(
            !shown.contains("topsecret") && !shown.contains("tok3n"),
            "{shown}"
        );
    }

    struct Source {
        loads: AtomicUsize,
        results: Mutex<Vec<Result<Vec<AccountKey>, KeyError>>>,
    }

    impl KeySource for Arc<Source> {
        async fn load(&self) -> Result<Vec<AccountKey>, KeyError> {
            self.loads.fetch_add(1, Ordering::SeqCst);
            let mut results = self.results.lock().unwrap();
            if results.len() > 1 {
                results.remove(0)
            } else {
                results[0].clone()
            }
        }
    }

    #[tokio::test(start_paused = true)]
    async fn refresher_retries_until_loaded_then_refreshes_and_reloads_on_request() {
        let source = Arc::new(Source {
            loads: AtomicUsize::new(0),
            results: Mutex::new(vec![
                Err(KeyError("connection refused".into())),
                Ok(vec![account(1, "111", "W1", "s1", "t1")]),
                Ok(vec![account(1, "111", "W1", "s2", "t1")]),
            ]),
        });
        let tracker = TaskTracker::new();
        let shutdown = CancellationToken::new();
        let config = RefreshConfig::default();
        let cache = spawn_refresher(source.clone(), config.clone(), &tracker, shutdown.clone());
        tokio::task::yield_now().await;
        assert!(cache.current().is_none(), "first load failed");
        let keys = cache.loaded().await.unwrap();
        assert_eq!(source.loads.load(Ordering::SeqCst), 2);
        assert!(keys.secrets.contains(&Secret::new("s1")));

        // A refused signature asks for a reload: it comes after the minimum gap, not the hour.
        let mut rx = cache.current.clone();
        rx.borrow_and_update();
        let before = Instant::now();
        cache.request_reload();
        rx.changed().await.unwrap();
        assert!(Instant::now() - before <= config.min_reload_gap);
        assert!(cache
            .current()
            .unwrap()
            .secrets
            .contains(&Secret::new("s2")));

        // Then the regular interval.
        tokio::time::sleep(config.refresh_interval + Duration::from_secs(1)).await;
        assert_eq!(source.loads.load(Ordering::SeqCst), 4);

        shutdown.cancel();
        tracker.close();
        tracker.wait().await;
    }
}
