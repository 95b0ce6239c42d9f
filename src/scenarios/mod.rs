//! Interactive scenarios: keyword menus, their options, and the default reply.
//!
//! A `whatsapp.interactive.scenario` is a menu: a message with up to 3 reply buttons or a list
//! of up to 10 rows (in sections), each option with a button action, a reply text and a next
//! scenario. The button-action runner ([`crate::actions`]) reads every inbound text and press
//! not yet acted on and asks this module what they mean:
//!
//! - **a text** equal to a scenario's `trigger_keywords` (case-, accent- and
//!   surrounding-space-insensitive: "Menu", "MENU ", "ménu" match "menu"; the scenarios of the
//!   message's account or of none, of its company or of none; the first by sequence) sends that
//!   scenario's menu. A text that matches nothing gets the account's welcome scenario when its
//!   default reply is on, at most once per 24 hours per conversation (never a loop of "I did
//!   not understand"). Opt-out keywords are left to inbound processing.
//! - **a press** of an option id: the option of the conversation's current menu, else the only
//!   menu that has that id, runs in order its button action, its reply text and its next
//!   scenario ([`plan::chain`]), at most `scenarios.max_messages_per_press` messages (more is cut
//!   and logged). A press while the conversation's menu is older than
//!   `scenarios.stale_after_hours` gets the current menu again instead of acting; an id several
//!   menus have, none of them current, too. A press of an id no scenario has goes to the button
//!   actions.
//!
//! Every menu is built as Meta's `interactive` object and checked against Meta's limits
//! ([`crate::whatsapp::payload`]) before it is queued; a scenario that breaks one (the addon
//! refuses them when saved, so only one written around it) is logged and skipped. The
//! conversation records the menu sent last and when (`scenario_id`, `scenario_started_at`), and
//! `default_reply_at`.
//!
//! | file | what |
//! |---|---|
//! | `plan.rs` | pure: keywords, menus and their limits, the state machine, the chain cap |
//! | `run.rs` | reading scenarios, accounts and conversations from Odoo; the menu messages |

pub mod plan;
mod run;

pub use run::{conversations, menu_message, state_values, MenuCache, MenuError};

use std::time::Duration;

/// The `[scenarios]` settings.
#[derive(Debug, Clone, PartialEq)]
pub struct ScenarioSettings {
    /// A press while the conversation's menu is older than this gets the menu again.
    pub stale_after: Duration,
    /// Messages one press may queue (button action, reply text, next menus).
    pub max_messages_per_press: usize,
}

impl Default for ScenarioSettings {
    fn default() -> Self {
        ScenarioSettings {
            stale_after: Duration::from_secs(24 * 3600),
            max_messages_per_press: 4,
        }
    }
}
