//! The sending lease: which of several daemons on one Odoo database claims and sends.
//!
//! Every daemon receives and stores Meta's webhooks (a load balancer may send them to any), but
//! exactly one at a time does the work that claims and sends: the outbox, inbound processing,
//! the automations, campaigns, button actions, account requests, housekeeping and alerts. The
//! lease lives in Odoo's PostgreSQL (the addon's `whatsapp.lease`): [`run`] asks for it every
//! `lease.renew_secs` (`acquire`: renew, take a free or expired one, or learn who holds it), and
//! every claim goes through [`Lease::claim`] with the epoch the lease was taken with, checked by
//! Odoo in the claim's own transaction (fencing): a daemon that was paused or cut off from Odoo
//! and lost the lease meanwhile cannot claim once another has taken it.
//!
//! - `mod.rs`: the [`Lease`] handle the components hold (role, epoch, the fenced claim) and the
//!   pure rule that turns Odoo's answer into a [`Role`];
//! - `run.rs`: the loop that asks Odoo, and the release at shutdown.
//!
//! Timing, with the defaults (`ttl_secs = 15`, `renew_secs = 5`): a leader renews every 5 s; it
//! counts its lease as held until 90 % of the ttl after it *asked* (Odoo stamps the expiry
//! later than that, so the leader stops first) and, past that point, sends nothing more and
//! writes no message back to `queued` (those it claimed and did not send stay `sending` for
//! the new leader's reconciliation). A standby asks again when the lease it saw runs out, so a
//! leader killed with `kill -9` or cut off from Odoo is replaced within the ttl plus one renew
//! interval (≤ 20 s). A daemon restarted under the same `lease.name` takes its lease back at
//! once (one epoch up, which fences the former process).

mod config;
mod run;

pub use config::LeaseConfig;
pub use run::{run, LeaseDriver};

use crate::odoo::{OdooClient, OdooError};
use serde::Deserialize;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::watch;
use tokio::time::Instant;

/// The addon's model.
pub const MODEL: &str = "whatsapp.lease";
/// The lease the senders share.
pub const NAME: &str = "sending";

/// What this daemon is doing, as far as the lease says.
#[derive(Debug, Clone, PartialEq)]
pub enum Role {
    /// Not known yet (Odoo not asked, or not answering and no lease held).
    Starting,
    /// This daemon holds the lease taken at `epoch`, until `until` by its own clock.
    Leader { epoch: i64, until: Instant },
    /// This daemon held the lease at `epoch` but could not renew it in time (Odoo does not
    /// answer): it sends nothing until Odoo gives it back with the same epoch (nobody held it
    /// in between: the work goes on where it was) or says another daemon holds it.
    Suspended { epoch: i64 },
    /// Another daemon holds it (`holder`, its `lease.name`), for `expires_in` more.
    Standby {
        holder: Option<String>,
        expires_in: Duration,
    },
}

impl Role {
    pub fn is_leader(&self) -> bool {
        matches!(self, Role::Leader { .. })
    }

    /// The role in words, for `/readyz` and the logs.
    pub fn describe(&self) -> String {
        match self {
            Role::Starting => "starting: the sending lease is not known yet".to_owned(),
            Role::Leader { epoch, .. } => {
                format!("leader: this daemon holds the sending lease (epoch {epoch})")
            }
            Role::Suspended { epoch } => format!(
                "suspended: this daemon could not renew the sending lease (epoch {epoch}) in time \
                 and sends nothing until Odoo answers again"
            ),
            Role::Standby { holder, .. } => format!(
                "standby: {} holds the sending lease; this daemon stores webhooks and takes over \
                 if it stops renewing",
                holder.as_deref().unwrap_or("another daemon")
            ),
        }
    }
}

/// Odoo's answer to `acquire`.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Answer {
    pub leader: bool,
    pub epoch: i64,
    #[serde(default, deserialize_with = "crate::odoo::de::false_as_none")]
    pub holder: Option<String>,
    pub expires_in: f64,
}

/// The role Odoo's `answer` gives, asked at `asked` for a lease of `ttl`: a leader counts its
/// lease until 90 % of the ttl after it asked (Odoo's expiry is at least the ttl after that).
pub fn role_after(answer: &Answer, asked: Instant, ttl: Duration) -> Role {
    if answer.leader {
        Role::Leader {
            epoch: answer.epoch,
            until: asked + ttl.mul_f64(0.9),
        }
    } else {
        let expires_in = if answer.expires_in.is_finite() && answer.expires_in > 0.0 {
            Duration::from_secs_f64(answer.expires_in.min(86_400.0))
        } else {
            Duration::ZERO
        };
        Role::Standby {
            holder: answer.holder.clone(),
            expires_in,
        }
    }
}

/// The role after Odoo could not be asked at `now`: a leader keeps its lease until its time is
/// up, then is suspended (it sends nothing; who holds the lease is not known).
pub fn role_without_answer(role: &Role, now: Instant) -> Role {
    match role {
        Role::Leader { until, .. } if now < *until => role.clone(),
        Role::Leader { epoch, .. } => Role::Suspended { epoch: *epoch },
        other => other.clone(),
    }
}

/// The epoch of the lease this daemon works under: held, or suspended.
pub fn term_of(role: &Role) -> Option<i64> {
    match role {
        Role::Leader { epoch, .. } | Role::Suspended { epoch } => Some(*epoch),
        _ => None,
    }
}

/// What a fenced claim did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claimed {
    /// The records written (those of the ids that still matched the domain).
    Ids(Vec<i64>),
    /// This daemon no longer holds the lease: nothing was written.
    Lost { holder: Option<String> },
}

/// The components' view of the lease. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Lease(Option<Arc<Shared>>);

#[derive(Debug)]
struct Shared {
    role: watch::Receiver<Role>,
}

impl Lease {
    /// No lease: always the leader, claims written as plain `write`s. For tests and tools that
    /// run one component alone; the daemon always runs with a lease.
    pub fn unfenced() -> Lease {
        Lease(None)
    }

    fn with(role: watch::Receiver<Role>) -> Lease {
        Lease(Some(Arc::new(Shared { role })))
    }

    /// The current role (`Leader` with no epoch check when unfenced).
    pub fn role(&self) -> Role {
        match &self.0 {
            None => Role::Leader {
                epoch: 0,
                until: Instant::now() + Duration::from_secs(86_400),
            },
            Some(shared) => shared.role.borrow().clone(),
        }
    }

    /// A receiver of role changes (`None` when unfenced: the role never changes).
    pub fn watch(&self) -> Option<watch::Receiver<Role>> {
        self.0.as_ref().map(|s| s.role.clone())
    }

    /// True while this daemon may send: it holds the lease and its time is not up.
    pub fn holds(&self) -> bool {
        match &self.0 {
            None => true,
            Some(shared) => match &*shared.role.borrow() {
                Role::Leader { until, .. } => Instant::now() < *until,
                _ => false,
            },
        }
    }

    /// Waits until this daemon may send again under the epoch it holds now: `true` once Odoo
    /// gave the lease back with that epoch, `false` as soon as it is clear it will not (another
    /// daemon holds it, or it was taken again with another epoch). Unfenced: `true`.
    pub async fn until_held(&self) -> bool {
        let Some(shared) = &self.0 else { return true };
        let mut role = shared.role.clone();
        let Some(epoch) = term_of(&role.borrow()) else {
            return false;
        };
        loop {
            {
                let now = role.borrow_and_update().clone();
                match now {
                    Role::Leader { epoch: e, until } if e == epoch && Instant::now() < until => {
                        return true
                    }
                    Role::Leader { epoch: e, .. } | Role::Suspended { epoch: e } if e == epoch => {}
                    _ => return false,
                }
            }
            if role.changed().await.is_err() {
                return false;
            }
        }
    }

    /// Writes `values` on the records of `ids` that still match `domain`, only while this
    /// daemon holds the lease (checked by Odoo in the same transaction). Unfenced: a plain
    /// `write` of every id.
    pub async fn claim(
        &self,
        odoo: &OdooClient,
        model: &str,
        ids: &[i64],
        domain: Value,
        values: Value,
    ) -> Result<Claimed, OdooError> {
        let Some(_) = &self.0 else {
            odoo.write(model, ids, &values).await?;
            return Ok(Claimed::Ids(ids.to_vec()));
        };
        let epoch = match self.role() {
            Role::Leader { epoch, until } if Instant::now() < until => epoch,
            Role::Standby { holder, .. } => return Ok(Claimed::Lost { holder }),
            _ => return Ok(Claimed::Lost { holder: None }),
        };
        #[derive(Deserialize)]
        struct Answer {
            #[serde(default)]
            claimed: Vec<i64>,
            #[serde(default)]
            lost: bool,
            #[serde(default, deserialize_with = "crate::odoo::de::false_as_none")]
            holder: Option<String>,
        }
        let answer: Answer = odoo
            .call(
                MODEL,
                "claim",
                json!([epoch, model, ids, domain, values]),
                json!({}),
            )
            .await?;
        Ok(if answer.lost {
            Claimed::Lost {
                holder: answer.holder,
            }
        } else {
            Claimed::Ids(answer.claimed)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(leader: bool, epoch: i64, expires_in: f64) -> Answer {
        Answer {
            leader,
            epoch,
            holder: Some("host-a".into()),
            expires_in,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_leader_counts_its_lease_from_when_it_asked_with_a_margin() {
        let asked = Instant::now();
        let role = role_after(&answer(true, 4, 15.0), asked, Duration::from_secs(15));
        assert_eq!(
            role,
            Role::Leader {
                epoch: 4,
                until: asked + Duration::from_millis(13_500)
            }
        );
        // Odoo silent: still the leader until then, suspended after (same epoch).
        tokio::time::advance(Duration::from_secs(13)).await;
        assert!(role_without_answer(&role, Instant::now()).is_leader());
        tokio::time::advance(Duration::from_secs(1)).await;
        let suspended = role_without_answer(&role, Instant::now());
        assert_eq!(suspended, Role::Suspended { epoch: 4 });
        assert_eq!(term_of(&suspended), Some(4));
        assert!(!suspended.is_leader());
    }

    #[tokio::test(start_paused = true)]
    async fn a_suspended_sender_waits_for_its_own_epoch_and_no_other() {
        let (tx, rx) = watch::channel(Role::Suspended { epoch: 4 });
        let lease = Lease::with(rx);
        let waiting = tokio::spawn({
            let lease = lease.clone();
            async move { lease.until_held().await }
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        assert!(!waiting.is_finished(), "suspended: it waits");
        tx.send_replace(Role::Leader {
            epoch: 4,
            until: Instant::now() + Duration::from_secs(10),
        });
        assert!(
            waiting.await.unwrap(),
            "given back with the same epoch: it sends"
        );

        tx.send_replace(Role::Suspended { epoch: 4 });
        let waiting = tokio::spawn({
            let lease = lease.clone();
            async move { lease.until_held().await }
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        tx.send_replace(Role::Standby {
            holder: Some("host-b".into()),
            expires_in: Duration::from_secs(10),
        });
        assert!(!waiting.await.unwrap(), "another holder: it never sends");
    }

    #[tokio::test(start_paused = true)]
    async fn a_standby_knows_who_holds_it_and_for_how_long() {
        let role = role_after(
            &answer(false, 4, 7.5),
            Instant::now(),
            Duration::from_secs(15),
        );
        assert_eq!(
            role,
            Role::Standby {
                holder: Some("host-a".into()),
                expires_in: Duration::from_millis(7500)
            }
        );
        assert!(role.describe().contains("host-a holds the sending lease"));
        let odd = role_after(
            &answer(false, 4, f64::NAN),
            Instant::now(),
            Duration::from_secs(15),
        );
        assert!(matches!(odd, Role::Standby { expires_in, .. } if expires_in.is_zero()));
    }

    #[tokio::test(start_paused = true)]
    async fn holds_goes_false_when_the_time_is_up_without_any_change() {
        let (tx, rx) = watch::channel(Role::Starting);
        let lease = Lease::with(rx);
        assert!(!lease.holds());
        tx.send_replace(Role::Leader {
            epoch: 1,
            until: Instant::now() + Duration::from_secs(10),
        });
        assert!(lease.holds());
        tokio::time::advance(Duration::from_secs(10)).await;
        assert!(!lease.holds(), "the deadline alone ends it");
        assert!(Lease::unfenced().holds());
    }
}
