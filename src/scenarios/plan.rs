//! The scenarios' decisions, as pure functions: keywords, the menu a scenario sends (checked
//! against Meta's limits), and the state machine of a conversation's menu (which option a press
//! means, stale menus, the chain of messages one press may send).

use crate::whatsapp::payload::{
    ButtonReply, ButtonsAction, Interactive, InteractiveHeader, ListAction, ListMessage, ListRow,
    ListSection, PayloadError, ReplyButton, ReplyButtons, TextObject,
};
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{Map, Value};
use unicode_normalization::char::is_combining_mark;
use unicode_normalization::UnicodeNormalization;

fn m2o(r: &Map<String, Value>, f: &str) -> Option<i64> {
    match r.get(f) {
        Some(Value::Array(items)) => items.first().and_then(Value::as_i64),
        Some(Value::Number(n)) => n.as_i64(),
        _ => None,
    }
}

fn text(r: &Map<String, Value>, f: &str) -> Option<String> {
    r.get(f)
        .and_then(Value::as_str)
        .filter(|s| !s.trim().is_empty())
        .map(str::to_owned)
}

fn time(r: &Map<String, Value>, f: &str) -> Option<DateTime<Utc>> {
    text(r, f).and_then(|s| crate::odoo::parse_datetime(&s))
}

/// A text as keywords compare it: without surrounding spaces and punctuation, inner spaces
/// collapsed, lower case, accents removed ("  Ménu! " → "menu").
pub fn normalise(text: &str) -> String {
    let folded: String = text
        .nfd()
        .filter(|c| !is_combining_mark(*c))
        .flat_map(char::to_lowercase)
        .collect();
    folded
        .trim_matches(|c: char| c.is_whitespace() || c.is_ascii_punctuation())
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

/// The keywords of a comma-separated field, normalised; blanks dropped.
pub fn keywords(field: Option<&str>) -> Vec<String> {
    let mut list: Vec<String> = field
        .unwrap_or("")
        .split(',')
        .map(normalise)
        .filter(|k| !k.is_empty())
        .collect();
    list.sort();
    list.dedup();
    list
}

/// How a scenario shows its options.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Kind {
    #[default]
    Buttons,
    List,
}

/// A `whatsapp.interactive.scenario.option`, in the language it was read in.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct OptionRow {
    pub id: i64,
    pub scenario_id: i64,
    pub sequence: i64,
    pub button_id: String,
    pub title: String,
    pub description: Option<String>,
    pub section_title: Option<String>,
    pub reply_text: Option<String>,
    pub next_scenario_id: Option<i64>,
    pub button_action_id: Option<i64>,
}

impl OptionRow {
    pub const MODEL: &'static str = "whatsapp.interactive.scenario.option";
    pub const FIELDS: &'static [&'static str] = &[
        "scenario_id",
        "sequence",
        "button_id",
        "title",
        "description",
        "section_title",
        "reply_text",
        "next_scenario_id",
        "button_action_id",
    ];

    pub fn from_record(value: &Value) -> Option<OptionRow> {
        let r = value.as_object()?;
        Some(OptionRow {
            id: r.get("id")?.as_i64()?,
            scenario_id: m2o(r, "scenario_id")?,
            sequence: r.get("sequence").and_then(Value::as_i64).unwrap_or(10),
            // Ids are sent as written (the addon refuses surrounding spaces).
            button_id: r.get("button_id")?.as_str()?.to_owned(),
            title: text(r, "title").unwrap_or_default(),
            description: text(r, "description"),
            section_title: text(r, "section_title"),
            reply_text: text(r, "reply_text"),
            next_scenario_id: m2o(r, "next_scenario_id"),
            button_action_id: m2o(r, "button_action_id"),
        })
    }
}

/// A `whatsapp.interactive.scenario` with its options (by sequence), in one language.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Scenario {
    pub id: i64,
    pub name: String,
    pub sequence: i64,
    pub company_id: Option<i64>,
    pub account_id: Option<i64>,
    /// Normalised.
    pub keywords: Vec<String>,
    pub kind: Kind,
    pub header: Option<String>,
    pub body: String,
    pub footer: Option<String>,
    pub list_label: Option<String>,
    pub options: Vec<OptionRow>,
}

impl Scenario {
    pub const MODEL: &'static str = "whatsapp.interactive.scenario";
    pub const FIELDS: &'static [&'static str] = &[
        "name",
        "sequence",
        "company_id",
        "account_id",
        "trigger_keywords",
        "interaction_type",
        "header_text",
        "body",
        "footer_text",
        "list_button_label",
    ];

    /// A scenario record; its options are added by [`Scenario::with_options`].
    pub fn from_record(value: &Value) -> Option<Scenario> {
        let r = value.as_object()?;
        Some(Scenario {
            id: r.get("id")?.as_i64()?,
            name: text(r, "name").unwrap_or_default(),
            sequence: r.get("sequence").and_then(Value::as_i64).unwrap_or(10),
            company_id: m2o(r, "company_id"),
            account_id: m2o(r, "account_id"),
            keywords: keywords(r.get("trigger_keywords").and_then(Value::as_str)),
            kind: match text(r, "interaction_type").as_deref() {
                Some("list") => Kind::List,
                _ => Kind::Buttons,
            },
            header: text(r, "header_text"),
            body: text(r, "body").unwrap_or_default(),
            footer: text(r, "footer_text"),
            list_label: text(r, "list_button_label"),
            options: Vec::new(),
        })
    }

    /// Scenarios with their options attached (by sequence, then id).
    pub fn with_options(mut scenarios: Vec<Scenario>, options: Vec<OptionRow>) -> Vec<Scenario> {
        for option in options {
            if let Some(s) = scenarios.iter_mut().find(|s| s.id == option.scenario_id) {
                s.options.push(option);
            }
        }
        for s in &mut scenarios {
            s.options.sort_by_key(|o| (o.sequence, o.id));
        }
        scenarios.sort_by_key(|s| (s.sequence, s.id));
        scenarios
    }

    /// The scenario works for this account and company: its own, or none.
    pub fn applies(&self, account: Option<i64>, company: Option<i64>) -> bool {
        (self.account_id.is_none() || self.account_id == account)
            && (self.company_id.is_none() || self.company_id == company)
    }

    /// The option with this id.
    pub fn option(&self, button_id: &str) -> Option<&OptionRow> {
        self.options.iter().find(|o| o.button_id == button_id)
    }

    /// The menu Meta receives, checked against its limits (buttons: 1 to 3, titles ≤ 20,
    /// ids ≤ 256; lists: 1 to 10 rows in at most 10 sections, titles ≤ 24, descriptions
    /// ≤ 72, ids ≤ 200, label ≤ 20; body ≤ 1024, header and footer ≤ 60).
    pub fn interactive(&self) -> Result<Interactive, PayloadError> {
        let header = self.header.as_ref().map(InteractiveHeader::text);
        let footer = self.footer.as_ref().map(|t| TextObject { text: t.clone() });
        let body = TextObject {
            text: self.body.clone(),
        };
        let interactive = match self.kind {
            Kind::Buttons => {
                if let Some(o) = self.options.iter().find(|o| o.description.is_some()) {
                    return Err(PayloadError::Invalid {
                        what: format!("option '{}'", o.title),
                        problem: "only list rows have a description: remove it or make the scenario a list".into(),
                    });
                }
                Interactive::Button(ReplyButtons {
                    header,
                    body,
                    footer,
                    action: ButtonsAction {
                        buttons: self
                            .options
                            .iter()
                            .map(|o| ReplyButton {
                                kind: "reply".into(),
                                reply: ButtonReply {
                                    id: o.button_id.clone(),
                                    title: o.title.clone(),
                                },
                            })
                            .collect(),
                    },
                })
            }
            Kind::List => {
                let label = self.list_label.clone().unwrap_or_default();
                let mut sections: Vec<ListSection> = Vec::new();
                for o in &self.options {
                    let title = o.section_title.clone();
                    if sections.last().is_none_or(|s| s.title != title) {
                        sections.push(ListSection {
                            title: title.clone(),
                            rows: Vec::new(),
                        });
                    }
                    if let Some(s) = sections.last_mut() {
                        s.rows.push(ListRow {
                            id: o.button_id.clone(),
                            title: o.title.clone(),
                            description: o.description.clone(),
                        });
                    }
                }
                // As the addon builds it: one untitled section stays untitled; with several,
                // an untitled one takes the list's label.
                if sections.len() > 1 {
                    for s in &mut sections {
                        if s.title.is_none() {
                            s.title = Some(label.clone());
                        }
                    }
                }
                Interactive::List(ListMessage {
                    header,
                    body,
                    footer,
                    action: ListAction {
                        button: label,
                        sections,
                    },
                })
            }
        };
        interactive.validate()?;
        Ok(interactive)
    }
}

/// The scenario an inbound text starts: the first (by sequence) of the account's and
/// company's scenarios with that keyword.
pub fn triggered<'a>(
    scenarios: &'a [Scenario],
    account: Option<i64>,
    company: Option<i64>,
    text: &str,
) -> Option<&'a Scenario> {
    let word = normalise(text);
    if word.is_empty() {
        return None;
    }
    scenarios
        .iter()
        .filter(|s| s.applies(account, company))
        .find(|s| s.keywords.contains(&word))
}

/// The menu settings of a `whatsapp.account`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct AccountMenus {
    pub id: i64,
    pub default_reply: bool,
    pub welcome_scenario_id: Option<i64>,
    pub responsible_user_id: Option<i64>,
    /// Normalised opt-out keywords (inbound processing answers them).
    pub opt_out: Vec<String>,
}

impl AccountMenus {
    pub const MODEL: &'static str = "whatsapp.account";
    pub const FIELDS: &'static [&'static str] = &[
        "default_reply_enabled",
        "welcome_scenario_id",
        "responsible_user_id",
        "opt_out_keywords",
    ];

    pub fn from_record(value: &Value) -> Option<AccountMenus> {
        let r = value.as_object()?;
        let opt_out = r
            .get("opt_out_keywords")
            .and_then(Value::as_str)
            .filter(|s| !s.trim().is_empty())
            .unwrap_or(crate::inbound::optout::DEFAULT_KEYWORDS);
        Some(AccountMenus {
            id: r.get("id")?.as_i64()?,
            default_reply: matches!(r.get("default_reply_enabled"), Some(Value::Bool(true))),
            welcome_scenario_id: m2o(r, "welcome_scenario_id"),
            responsible_user_id: m2o(r, "responsible_user_id"),
            opt_out: keywords(Some(opt_out)),
        })
    }
}

/// A conversation's menu state (`whatsapp.conversation`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ConversationState {
    pub id: i64,
    pub scenario_id: Option<i64>,
    pub started_at: Option<DateTime<Utc>>,
    pub default_reply_at: Option<DateTime<Utc>>,
}

impl ConversationState {
    pub const MODEL: &'static str = "whatsapp.conversation";
    pub const FIELDS: &'static [&'static str] =
        &["scenario_id", "scenario_started_at", "default_reply_at"];

    pub fn from_record(value: &Value) -> Option<ConversationState> {
        let r = value.as_object()?;
        Some(ConversationState {
            id: r.get("id")?.as_i64()?,
            scenario_id: m2o(r, "scenario_id"),
            started_at: time(r, "scenario_started_at"),
            default_reply_at: time(r, "default_reply_at"),
        })
    }
}

/// How long between two default replies to one customer.
pub const DEFAULT_REPLY_EVERY: TimeDelta = TimeDelta::hours(24);

/// What an inbound text does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TextDecision {
    /// A keyword: this scenario starts.
    Start(i64),
    /// Nothing matched: the account's welcome scenario, as its default reply.
    DefaultReply(i64),
    /// An opt-out keyword: inbound processing answers it.
    OptOut,
    /// Nothing matched and the default reply is off, or was sent less than 24 hours ago.
    Nothing { default_reply_recent: bool },
}

/// The decision for an inbound text.
pub fn on_text(
    text: &str,
    scenarios: &[Scenario],
    account: Option<&AccountMenus>,
    company: Option<i64>,
    conversation: Option<&ConversationState>,
    now: DateTime<Utc>,
) -> TextDecision {
    let word = normalise(text);
    if account.is_some_and(|a| a.opt_out.contains(&word)) {
        return TextDecision::OptOut;
    }
    if let Some(s) = triggered(scenarios, account.map(|a| a.id), company, text) {
        return TextDecision::Start(s.id);
    }
    let Some(account) = account.filter(|a| a.default_reply) else {
        return TextDecision::Nothing {
            default_reply_recent: false,
        };
    };
    let Some(welcome) = account
        .welcome_scenario_id
        .filter(|w| scenarios.iter().any(|s| s.id == *w))
    else {
        return TextDecision::Nothing {
            default_reply_recent: false,
        };
    };
    let recent = conversation
        .and_then(|c| c.default_reply_at)
        .is_some_and(|at| now - at < DEFAULT_REPLY_EVERY);
    if recent {
        TextDecision::Nothing {
            default_reply_recent: true,
        }
    } else {
        TextDecision::DefaultReply(welcome)
    }
}

/// What a press does, as far as scenarios go.
#[derive(Debug, Clone, PartialEq)]
pub enum PressDecision {
    /// No scenario has an option with this id: button actions decide.
    NotAnOption,
    /// Run this option (of the current menu, or of an older one when only one menu has it).
    Run(OptionRow),
    /// The menu is older than the stale setting: this menu goes out again, nothing runs.
    Stale(i64),
    /// Several menus have this option and none is the current one: the current menu goes
    /// out again (`None`: there is none; nothing is sent).
    Ambiguous(Option<i64>),
}

/// The decision for a press of `payload` in a conversation whose menu state is `state`.
pub fn on_press(
    payload: &str,
    scenarios: &[Scenario],
    account: Option<i64>,
    company: Option<i64>,
    state: Option<&ConversationState>,
    now: DateTime<Utc>,
    stale_after: TimeDelta,
) -> PressDecision {
    let candidates: Vec<&Scenario> = scenarios
        .iter()
        .filter(|s| s.applies(account, company))
        .filter(|s| s.option(payload).is_some())
        .collect();
    if candidates.is_empty() {
        return PressDecision::NotAnOption;
    }
    let current = state
        .and_then(|s| s.scenario_id)
        .filter(|id| scenarios.iter().any(|s| s.id == *id));
    // The menu state is stale: every menu of this conversation is at least that old.
    let stale = state
        .and_then(|s| s.started_at)
        .is_some_and(|at| now - at > stale_after);
    let chosen = match candidates.iter().find(|s| Some(s.id) == current) {
        Some(s) => Some(*s),
        None if candidates.len() == 1 => Some(candidates[0]),
        None => None,
    };
    match chosen {
        Some(s) if stale => PressDecision::Stale(current.unwrap_or(s.id)),
        Some(s) => match s.option(payload) {
            Some(o) => PressDecision::Run(o.clone()),
            None => PressDecision::NotAnOption,
        },
        None => PressDecision::Ambiguous(current),
    }
}

/// One thing an option does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Run this button action (its messages count as one).
    Action(i64),
    /// Reply with this text.
    Reply(String),
    /// Send this scenario's menu.
    Menu(i64),
}

/// What a press of `option` does, in order (its button action, its reply text, its next
/// scenario; an action of type `start_scenario` sends that scenario's menu), at most `cap`
/// messages. `true` when the chain was cut.
pub fn chain(
    option: &OptionRow,
    start_scenario_of: impl Fn(i64) -> Option<i64>,
    cap: usize,
) -> (Vec<Step>, bool) {
    let mut steps = Vec::new();
    if let Some(a) = option.button_action_id {
        match start_scenario_of(a) {
            Some(s) => steps.push(Step::Menu(s)),
            None => steps.push(Step::Action(a)),
        }
    }
    if let Some(t) = &option.reply_text {
        steps.push(Step::Reply(t.clone()));
    }
    if let Some(n) = option.next_scenario_id {
        steps.push(Step::Menu(n));
    }
    // The same menu twice in one chain is sent once.
    let mut seen = Vec::new();
    steps.retain(|s| match s {
        Step::Menu(id) if seen.contains(id) => false,
        Step::Menu(id) => {
            seen.push(*id);
            true
        }
        _ => true,
    });
    let cut = steps.len() > cap;
    steps.truncate(cap);
    (steps, cut)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn at(h: i64) -> DateTime<Utc> {
        DateTime::from_timestamp(1_800_000_000 + h * 3600, 0).unwrap()
    }

    fn option(id: i64, scenario: i64, button: &str) -> OptionRow {
        OptionRow {
            id,
            scenario_id: scenario,
            sequence: id,
            button_id: button.into(),
            title: format!("Option {id}"),
            ..OptionRow::default()
        }
    }

    fn scenario(id: i64, words: &str, options: Vec<OptionRow>) -> Scenario {
        Scenario {
            id,
            name: format!("S{id}"),
            sequence: id,
            keywords: keywords(Some(words)),
            body: "Choose".into(),
            options,
            ..Scenario::default()
        }
    }

    #[test]
    fn keywords_ignore_case_accents_and_surrounding_spaces() {
        let k = keywords(Some(" MENU, Aide ,,Main  Menu"));
        assert_eq!(k, vec!["aide", "main menu", "menu"]);
        for text in ["Menu", "MENU ", "ménu", " mÉnu!", "menu.", "\tMenu\n"] {
            assert!(k.contains(&normalise(text)), "{text:?}");
        }
        assert!(k.contains(&normalise("main    MENU")));
        assert!(k.contains(&normalise("AIDÉ")));
        for text in ["menus", "the menu", "", "  ", "m e n u"] {
            assert!(!k.contains(&normalise(text)), "{text:?}");
        }
        assert_eq!(normalise("Ça va"), "ca va");
    }

    #[test]
    fn a_keyword_starts_the_first_scenario_of_the_account_and_company() {
        let mut other_account = scenario(1, "menu", vec![]);
        other_account.account_id = Some(2);
        let mut other_company = scenario(2, "menu", vec![]);
        other_company.company_id = Some(2);
        let shared = scenario(3, "menu,help", vec![]);
        let later = scenario(4, "menu", vec![]);
        let list = vec![other_account, other_company, shared, later];
        assert_eq!(
            triggered(&list, Some(1), Some(1), " Ménu ").map(|s| s.id),
            Some(3)
        );
        assert_eq!(
            triggered(&list, Some(2), Some(1), "MENU").map(|s| s.id),
            Some(1)
        );
        assert!(triggered(&list, Some(1), Some(1), "hello").is_none());
    }

    #[test]
    fn menus_are_checked_against_metas_limits() {
        let four: Vec<OptionRow> = (1..=4).map(|i| option(i, 1, &format!("b{i}"))).collect();
        let mut s = scenario(1, "menu", four.clone());
        let err = s.interactive().unwrap_err().to_string();
        assert!(err.contains("4 given") && err.contains("3"), "{err}");
        s.options.truncate(3);
        assert!(s.interactive().is_ok());
        s.options[0].title = "x".repeat(21);
        assert!(s.interactive().unwrap_err().to_string().contains("20"));
        // A list: 10 rows in sections, descriptions; 11 rows refused.
        let mut list = scenario(
            2,
            "",
            (1..=10).map(|i| option(i, 2, &format!("r{i}"))).collect(),
        );
        list.kind = Kind::List;
        list.list_label = Some("Open".into());
        for o in list.options.iter_mut().take(5) {
            o.section_title = Some("Orders".into());
            o.description = Some("d".repeat(72));
        }
        let Interactive::List(l) = list.interactive().unwrap() else {
            panic!("a list")
        };
        assert_eq!(l.action.sections.len(), 2);
        assert_eq!(l.action.sections[0].title.as_deref(), Some("Orders"));
        assert_eq!(
            l.action.sections[1].title.as_deref(),
            Some("Open"),
            "an untitled section among several takes the label"
        );
        list.options.push(option(11, 2, "r11"));
        assert!(list.interactive().unwrap_err().to_string().contains("11"));
        list.options.pop();
        list.options[9].description = Some("d".repeat(73));
        assert!(list.interactive().unwrap_err().to_string().contains("72"));
        list.options[9].description = None;
        list.list_label = None;
        assert!(list.interactive().is_err(), "a list needs its button label");
        // The JSON is Meta's interactive object.
        let mut one = scenario(3, "", vec![option(1, 3, "only")]);
        one.header = Some("Hi".into());
        let v = serde_json::to_value(one.interactive().unwrap()).unwrap();
        assert_eq!(v["type"], "button");
        assert_eq!(v["action"]["buttons"][0]["reply"]["id"], "only");
        assert_eq!(v["header"]["text"], "Hi");
    }

    #[test]
    fn texts_start_scenarios_and_the_default_reply_goes_once_a_day() {
        let list = vec![scenario(1, "menu", vec![]), scenario(2, "", vec![])];
        let account = AccountMenus {
            id: 1,
            default_reply: true,
            welcome_scenario_id: Some(2),
            opt_out: keywords(Some("STOP,ARRÊT")),
            ..AccountMenus::default()
        };
        let conv = ConversationState {
            id: 9,
            ..ConversationState::default()
        };
        let now = at(100);
        assert_eq!(
            on_text("Menu", &list, Some(&account), None, Some(&conv), now),
            TextDecision::Start(1)
        );
        assert_eq!(
            on_text("stop", &list, Some(&account), None, Some(&conv), now),
            TextDecision::OptOut
        );
        assert_eq!(
            on_text(
                "where is my parcel?",
                &list,
                Some(&account),
                None,
                Some(&conv),
                now
            ),
            TextDecision::DefaultReply(2)
        );
        let replied = ConversationState {
            default_reply_at: Some(at(90)),
            ..conv.clone()
        };
        assert_eq!(
            on_text("hello?", &list, Some(&account), None, Some(&replied), now),
            TextDecision::Nothing {
                default_reply_recent: true
            },
            "never a loop of welcome menus"
        );
        let yesterday = ConversationState {
            default_reply_at: Some(at(75)),
            ..conv.clone()
        };
        assert_eq!(
            on_text("hello?", &list, Some(&account), None, Some(&yesterday), now),
            TextDecision::DefaultReply(2)
        );
        let off = AccountMenus {
            default_reply: false,
            ..account.clone()
        };
        assert_eq!(
            on_text("hello?", &list, Some(&off), None, Some(&conv), now),
            TextDecision::Nothing {
                default_reply_recent: false
            }
        );
    }

    fn menus() -> Vec<Scenario> {
        // A → B → A, and an option id both C and D have.
        let mut to_b = option(1, 1, "go_b");
        to_b.next_scenario_id = Some(2);
        let mut to_a = option(2, 2, "go_a");
        to_a.next_scenario_id = Some(1);
        vec![
            scenario(1, "a", vec![to_b, option(3, 1, "a_only")]),
            scenario(2, "b", vec![to_a]),
            scenario(3, "c", vec![option(4, 3, "shared")]),
            scenario(4, "d", vec![option(5, 4, "shared")]),
        ]
    }

    fn state(scenario: i64, hours_ago: i64) -> ConversationState {
        ConversationState {
            id: 1,
            scenario_id: Some(scenario),
            started_at: Some(at(100 - hours_ago)),
            default_reply_at: None,
        }
    }

    #[test]
    fn presses_run_options_of_the_current_or_an_unambiguous_older_menu() {
        let list = menus();
        let day = TimeDelta::hours(24);
        let run = |payload: &str, s: Option<&ConversationState>| {
            on_press(payload, &list, None, None, s, at(100), day)
        };
        // The loop A → B → A: each press follows the menu it is pressed in.
        let PressDecision::Run(o) = run("go_b", Some(&state(1, 1))) else {
            panic!("runs")
        };
        assert_eq!(o.next_scenario_id, Some(2));
        let PressDecision::Run(o) = run("go_a", Some(&state(2, 0))) else {
            panic!("runs")
        };
        assert_eq!(o.next_scenario_id, Some(1));
        // An option of the older menu A while B is current: only A has it, it runs.
        assert!(matches!(run("a_only", Some(&state(2, 1))), PressDecision::Run(o) if o.id == 3));
        // No state at all (a menu sent from the composer): unambiguous, it runs.
        assert!(matches!(run("go_b", None), PressDecision::Run(_)));
        // Two menus have the id and neither is current: the current menu again.
        assert_eq!(
            run("shared", Some(&state(1, 1))),
            PressDecision::Ambiguous(Some(1))
        );
        assert_eq!(run("shared", None), PressDecision::Ambiguous(None));
        // The current one of the two decides.
        assert!(matches!(run("shared", Some(&state(4, 1))), PressDecision::Run(o) if o.id == 5));
        // Not an option: button actions decide.
        assert_eq!(
            run("order_validate:1:x", Some(&state(1, 1))),
            PressDecision::NotAnOption
        );
    }

    #[test]
    fn a_press_on_a_stale_menu_gets_the_current_menu_again() {
        let list = menus();
        let day = TimeDelta::hours(24);
        assert_eq!(
            on_press("go_b", &list, None, None, Some(&state(1, 25)), at(100), day),
            PressDecision::Stale(1)
        );
        // An older menu's option, the current menu stale: the current one is sent.
        assert_eq!(
            on_press(
                "a_only",
                &list,
                None,
                None,
                Some(&state(2, 30)),
                at(100),
                day
            ),
            PressDecision::Stale(2)
        );
        // Just within the setting: it runs.
        assert!(matches!(
            on_press("go_b", &list, None, None, Some(&state(1, 23)), at(100), day),
            PressDecision::Run(_)
        ));
        // A shorter setting makes it stale.
        assert_eq!(
            on_press(
                "go_b",
                &list,
                None,
                None,
                Some(&state(1, 2)),
                at(100),
                TimeDelta::hours(1)
            ),
            PressDecision::Stale(1)
        );
    }

    #[test]
    fn one_press_sends_at_most_the_chain_cap() {
        let mut o = option(1, 1, "x");
        o.button_action_id = Some(7);
        o.reply_text = Some("Thanks".into());
        o.next_scenario_id = Some(2);
        let none = |_| None;
        let (steps, cut) = chain(&o, none, 5);
        assert_eq!(
            steps,
            vec![Step::Action(7), Step::Reply("Thanks".into()), Step::Menu(2)]
        );
        assert!(!cut);
        let (steps, cut) = chain(&o, none, 2);
        assert_eq!(steps, vec![Step::Action(7), Step::Reply("Thanks".into())]);
        assert!(cut, "the menu beyond the cap is not sent");
        // start_scenario: the action is that scenario's menu; the same menu is sent once.
        let (steps, _) = chain(&o, |a| (a == 7).then_some(2), 5);
        assert_eq!(steps, vec![Step::Menu(2), Step::Reply("Thanks".into())]);
        assert!(chain(&option(2, 1, "y"), none, 5).0.is_empty());
    }

    #[test]
    fn records_are_read_from_odoo() {
        let s = Scenario::from_record(&json!({"id": 4, "name": "Welcome", "sequence": 10,
            "company_id": false, "account_id": [1, "A"], "trigger_keywords": "MENU,Aide",
            "interaction_type": "list", "header_text": false, "body": "Choose",
            "footer_text": "f", "list_button_label": "Menu"}))
        .unwrap();
        assert_eq!(s.kind, Kind::List);
        assert_eq!(s.keywords, vec!["aide", "menu"]);
        let o = OptionRow::from_record(&json!({"id": 1, "scenario_id": [4, "W"], "sequence": 2,
            "button_id": "menu_orders", "title": "My orders", "description": false,
            "section_title": false, "reply_text": false, "next_scenario_id": false,
            "button_action_id": [3, "List"]}))
        .unwrap();
        let s = Scenario::with_options(vec![s], vec![o]);
        assert_eq!(
            s[0].option("menu_orders").unwrap().button_action_id,
            Some(3)
        );
        let c = ConversationState::from_record(&json!({"id": 2, "scenario_id": [4, "W"],
            "scenario_started_at": "2026-03-01 10:00:00", "default_reply_at": false}))
        .unwrap();
        assert_eq!(c.scenario_id, Some(4));
        assert!(c.started_at.is_some() && c.default_reply_at.is_none());
        let a = AccountMenus::from_record(&json!({"id": 1, "default_reply_enabled": true,
            "welcome_scenario_id": [4, "W"], "responsible_user_id": false,
            "opt_out_keywords": false}))
        .unwrap();
        assert!(a.opt_out.contains(&"stop".to_owned()));
    }
}
