use super::*;
use chrono::DateTime;
use std::collections::VecDeque;
use std::sync::Mutex;

fn event(n: i64, body: &str) -> NewEvent {
    NewEvent {
        raw_body: body.to_owned(),
        received_at: DateTime::from_timestamp(1_750_000_000 + n, 0).unwrap(),
        account_id: None,
        processing_error: None,
    }
}

/// Odoo as the forwarder sees it: stored events by key, and scripted failures.
#[derive(Default)]
struct FakeOdoo {
    stored: Mutex<Vec<KeyedEvent>>,
    creates: Mutex<Vec<usize>>,
    /// The next `create` calls fail this way, in order.
    failures: Mutex<VecDeque<Failure>>,
}

#[derive(Clone)]
enum Failure {
    /// Nothing stored, Odoo unreachable.
    Down,
    /// Stored, but the answer was lost (a timeout).
    StoredThenLost,
}

impl FakeOdoo {
    fn bodies(&self) -> Vec<String> {
        self.stored
            .lock()
            .unwrap()
            .iter()
            .map(|k| k.event.raw_body.clone())
            .collect()
    }
}

impl EventSink for Arc<FakeOdoo> {
    async fn create(&self, events: Vec<KeyedEvent>) -> Result<(), SinkError> {
        self.creates.lock().unwrap().push(events.len());
        // PostgreSQL keeps no NUL in text: the whole transaction fails.
        if events.iter().any(|e| e.event.raw_body.contains('\0')) {
            return Err(SinkError::Refused(
                "ValueError: A string literal cannot contain NUL (0x00) characters.".into(),
            ));
        }
        match self.failures.lock().unwrap().pop_front() {
            Some(Failure::Down) => Err(SinkError::Unavailable("connection refused".into())),
            Some(Failure::StoredThenLost) => {
                self.stored.lock().unwrap().extend(events);
                Err(SinkError::Unavailable("no answer within 30.0 s".into()))
            }
            None => {
                self.stored.lock().unwrap().extend(events);
                Ok(())
            }
        }
    }

    async fn stored_keys(&self, keys: Vec<String>) -> Result<HashSet<String>, SinkError> {
        let stored = self.stored.lock().unwrap();
        Ok(keys
            .into_iter()
            .filter(|k| stored.iter().any(|s| &s.key == k))
            .collect())
    }
}

struct Setup {
    _dir: tempfile::TempDir,
    path: std::path::PathBuf,
    odoo: Arc<FakeOdoo>,
    gate: Arc<OdooGate>,
    stored: Arc<Notify>,
}

fn setup() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("spool.redb");
    Setup {
        _dir: dir,
        path,
        odoo: Arc::new(FakeOdoo::default()),
        gate: Arc::new(OdooGate::default()),
        stored: Arc::new(Notify::new()),
    }
}

impl Setup {
    fn forwarder(&self, spool: &Arc<Spool>, batch_max: usize) -> Forwarder<Arc<FakeOdoo>> {
        Forwarder::new(
            spool.clone(),
            self.odoo.clone(),
            self.gate.clone(),
            self.stored.clone(),
            batch_max,
        )
    }
}

fn append(spool: &Spool, range: std::ops::Range<i64>) {
    let events: Vec<NewEvent> = range.map(|n| event(n, &format!("{{\"n\":{n}}}"))).collect();
    spool.append(&events).unwrap();
}

#[tokio::test]
async fn spooled_webhooks_go_to_odoo_in_batches_with_their_keys_and_leave_the_spool() {
    let s = setup();
    let spool = Arc::new(Spool::open(&s.path).unwrap());
    append(&spool, 0..5);
    let mut f = s.forwarder(&spool, 2);
    let full = |count| Step::Forwarded { count, full: true };
    let partial = |count| Step::Forwarded { count, full: false };
    assert_eq!(f.step().await, full(2));
    assert_eq!(f.step().await, full(2));
    assert_eq!(f.step().await, partial(1));
    assert_eq!(f.step().await, Step::Empty);
    assert!(spool.is_empty());
    assert_eq!(*s.odoo.creates.lock().unwrap(), vec![2, 2, 1]);
    let keys: Vec<String> = s
        .odoo
        .stored
        .lock()
        .unwrap()
        .iter()
        .map(|k| k.key.clone())
        .collect();
    assert_eq!(keys, (1..=5).map(|seq| spool.key(seq)).collect::<Vec<_>>());
    // Inbound processing is told.
    tokio::time::timeout(Duration::from_secs(1), s.stored.notified())
        .await
        .unwrap();
}

#[tokio::test]
async fn an_outage_closes_the_gate_keeps_the_entries_and_a_lost_answer_stores_nothing_twice() {
    let s = setup();
    let spool = Arc::new(Spool::open(&s.path).unwrap());
    append(&spool, 0..3);
    let mut f = s.forwarder(&spool, 10);
    s.odoo
        .failures
        .lock()
        .unwrap()
        .extend([Failure::Down, Failure::StoredThenLost]);
    assert!(matches!(f.step().await, Step::Failed(r) if r.contains("connection refused")));
    assert!(
        s.gate.refusing().is_some(),
        "new webhooks are refused while Odoo is down"
    );
    assert_eq!(spool.len(), 3);
    // Odoo stored them but the answer was lost: they stay spooled, unsure.
    assert!(matches!(f.step().await, Step::Failed(_)));
    assert_eq!(spool.len(), 3);
    append(&spool, 3..4);
    // Odoo is asked which it has; only the new one is created.
    assert_eq!(
        f.step().await,
        Step::Forwarded {
            count: 4,
            full: false
        }
    );
    assert!(spool.is_empty());
    assert_eq!(
        s.odoo.bodies(),
        ["{\"n\":0}", "{\"n\":1}", "{\"n\":2}", "{\"n\":3}"]
    );
    assert_eq!(*s.odoo.creates.lock().unwrap(), vec![3, 3, 1]);
    assert!(s.gate.refusing().is_none(), "the gate opens again");
}

#[tokio::test]
async fn what_a_crash_left_in_the_spool_is_checked_against_odoo_before_it_is_sent_again() {
    let s = setup();
    {
        let spool = Arc::new(Spool::open(&s.path).unwrap());
        append(&spool, 0..4);
        // The crashed run had stored the first two in Odoo, and died before removing them.
        let first_two: Vec<KeyedEvent> = spool
            .oldest(2)
            .unwrap()
            .into_iter()
            .map(|e| KeyedEvent {
                key: spool.key(e.seq),
                event: e.event,
            })
            .collect();
        s.odoo.stored.lock().unwrap().extend(first_two);
    }
    let spool = Arc::new(Spool::open(&s.path).unwrap());
    assert_eq!(spool.left_up_to(), 4);
    // Batches smaller than what was left: every leftover is checked, not only the first batch.
    let mut f = s.forwarder(&spool, 1);
    while f.step().await != Step::Empty {}
    assert_eq!(
        s.odoo.bodies(),
        ["{\"n\":0}", "{\"n\":1}", "{\"n\":2}", "{\"n\":3}"]
    );
    assert_eq!(
        *s.odoo.creates.lock().unwrap(),
        vec![1, 1],
        "only the two missing were created"
    );
}

#[tokio::test]
async fn a_body_odoo_refuses_is_stored_marked_and_does_not_hold_up_the_others() {
    let s = setup();
    let spool = Arc::new(Spool::open(&s.path).unwrap());
    spool
        .append(&[
            event(0, "a"),
            event(1, "b\0c"),
            event(2, "d"),
            event(3, "e"),
        ])
        .unwrap();
    let mut f = s.forwarder(&spool, 10);
    // The batch is refused: entries go one at a time until one is stored.
    assert!(matches!(f.step().await, Step::Failed(_)));
    assert_eq!(
        f.step().await,
        Step::Forwarded {
            count: 1,
            full: true
        }
    ); // "a"
    s.gate.open();
    assert!(
        matches!(f.step().await, Step::Failed(_)),
        "refused as a batch again"
    );
    assert_eq!(
        f.step().await,
        Step::Forwarded {
            count: 1,
            full: true
        },
        "the bad one, marked"
    );
    assert_eq!(
        f.step().await,
        Step::Forwarded {
            count: 2,
            full: false
        },
        "batches again"
    );
    assert_eq!(f.step().await, Step::Empty);
    let stored = s.odoo.stored.lock().unwrap().clone();
    let bodies: Vec<&str> = stored.iter().map(|k| k.event.raw_body.as_str()).collect();
    assert_eq!(bodies, ["a", "b\u{FFFD}c", "d", "e"]);
    let error = stored[1].event.processing_error.as_deref().unwrap();
    assert!(
        error.contains("NUL (0x00)") && error.contains("not processed"),
        "{error}"
    );
    assert!(
        stored
            .iter()
            .filter(|k| k.event.processing_error.is_some())
            .count()
            == 1
    );
}

#[tokio::test]
async fn the_loop_forwards_when_woken_and_flushes_at_shutdown() {
    let s = setup();
    let spool = Arc::new(Spool::open(&s.path).unwrap());
    let wake = Arc::new(Notify::new());
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(run(
        s.forwarder(&spool, 500),
        Duration::from_millis(20),
        wake.clone(),
        shutdown.clone(),
    ));
    append(&spool, 0..3);
    wake.notify_one();
    let deadline = Instant::now() + Duration::from_secs(5);
    while !spool.is_empty() {
        assert!(Instant::now() < deadline, "not forwarded");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    append(&spool, 3..5);
    // No wake-up: the shutdown flush forwards them.
    shutdown.cancel();
    task.await.unwrap();
    assert!(spool.is_empty());
    assert_eq!(s.odoo.bodies().len(), 5);
}
