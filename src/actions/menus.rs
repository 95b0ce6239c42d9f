//! Texts and presses as scenarios see them ([`crate::scenarios`]): keywords start menus, the
//! default reply, options run (their button action is handed back to the runner), stale and
//! ambiguous presses get the current menu again. What is left goes to the button actions.

use super::plan::{ActionRow, Outcome, Press, State};
use super::run::{reply, ActionsContext, ActionsState, Effects, StepError};
use crate::odoo::{format_datetime, OdooError};
use crate::scenarios::plan::{
    chain, on_press, on_text, AccountMenus, ConversationState, PressDecision, Scenario, Step,
    TextDecision,
};
use crate::scenarios::{conversations, menu_message, state_values};
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{json, Map, Value};
use std::collections::HashMap;

/// The partners' languages (`res.partner.lang`), one `read`.
pub(super) async fn partner_langs(
    ctx: &ActionsContext,
    ids: impl IntoIterator<Item = i64>,
) -> Result<HashMap<i64, String>, OdooError> {
    let mut ids: Vec<i64> = ids.into_iter().collect();
    ids.sort_unstable();
    ids.dedup();
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<Value> = ctx.odoo.read("res.partner", &ids, &["lang"]).await?;
    Ok(rows
        .iter()
        .filter_map(|r| {
            Some((
                r.get("id")?.as_i64()?,
                r.get("lang")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_owned(),
            ))
        })
        .collect())
}

/// The scenarios in the customer's language, else in English.
async fn scenarios_for(
    ctx: &ActionsContext,
    state: &mut ActionsState,
    langs: &HashMap<i64, String>,
    press: &Press,
) -> Result<Vec<Scenario>, OdooError> {
    let lang = press
        .partner_id
        .and_then(|p| langs.get(&p))
        .cloned()
        .unwrap_or_default();
    state.menus.scenarios(&ctx.odoo, &lang).await
}

/// Queues `scenario_id`'s menu for `press` under `key` and records it on the conversation.
/// The words for the press's result.
#[allow(clippy::too_many_arguments)]
pub(super) fn send_menu(
    press: &Press,
    scenarios: &[Scenario],
    scenario_id: i64,
    key: String,
    now: DateTime<Utc>,
    later: bool,
    effects: &mut Effects,
) -> String {
    let Some(scenario) = scenarios.iter().find(|s| s.id == scenario_id) else {
        return format!("The scenario {scenario_id} is archived or deleted: no menu was sent.");
    };
    let base = reply(press, None, "scenario", String::new(), None);
    match menu_message(base, scenario, key) {
        Ok(message) => {
            if later {
                effects.later.push(message);
            } else {
                effects.replies.push(message);
            }
            if let Some(c) = press.conversation_id {
                effects
                    .conversations
                    .push((c, state_values(scenario.id, now)));
            }
            format!("Menu '{}' sent.", scenario.name)
        }
        Err(e) => {
            tracing::error!(scenario = %scenario.name, error = %e, "scenarios: the menu breaks Meta's limits and is not sent; fix it in WhatsApp > Interactive scenarios");
            format!(
                "The menu '{}' breaks Meta's limits ({e}) and was not sent: fix it in WhatsApp > Interactive scenarios.",
                scenario.name
            )
        }
    }
}

fn outcome(state: State, result: String, action: Option<i64>) -> Outcome {
    Outcome {
        state,
        result,
        action_id: action,
        order_id: None,
    }
}

/// Handles the texts and the presses of scenario options; returns the presses left for the
/// button actions, each with the action its option names (if any).
pub(super) async fn route<'a>(
    ctx: &ActionsContext,
    state: &mut ActionsState,
    items: &'a [Press],
    actions: &[ActionRow],
    now: DateTime<Utc>,
    effects: &mut Effects,
) -> Result<Vec<(&'a Press, Option<ActionRow>)>, StepError> {
    let langs = partner_langs(ctx, items.iter().filter_map(|p| p.partner_id)).await?;
    let accounts: HashMap<i64, AccountMenus> = {
        let ids: Vec<i64> = items.iter().filter_map(|p| p.account_id).collect();
        state.menus.accounts(&ctx.odoo, &ids).await?
    };
    let convs: HashMap<i64, ConversationState> = conversations(
        &ctx.odoo,
        &items
            .iter()
            .filter_map(|p| p.conversation_id)
            .collect::<Vec<_>>(),
    )
    .await?;
    let stale_after =
        TimeDelta::from_std(ctx.scenarios.stale_after).unwrap_or(TimeDelta::hours(24));
    let cap = ctx.scenarios.max_messages_per_press.max(1);
    let max_age = TimeDelta::from_std(ctx.settings.max_age).unwrap_or(TimeDelta::hours(24));
    let mut left = Vec::new();
    for press in items {
        // A press handled days late (the daemon was stopped): refused by the button actions,
        // no menu sent out of the blue.
        if !press.payload.is_empty() && press.received_at.is_some_and(|t| now - t > max_age) {
            left.push((press, None));
            continue;
        }
        let scenarios = scenarios_for(ctx, state, &langs, press).await?;
        let account = press.account_id.and_then(|a| accounts.get(&a));
        let conv = press.conversation_id.and_then(|c| convs.get(&c));
        if press.payload.is_empty() {
            // A text.
            let body = press.body.clone().unwrap_or_default();
            let decision = on_text(&body, &scenarios, account, press.company_id, conv, now);
            let (state_, result) = match decision {
                TextDecision::Start(s) => (
                    State::Done,
                    send_menu(
                        press,
                        &scenarios,
                        s,
                        format!("scenario:{}", press.id),
                        now,
                        false,
                        effects,
                    ),
                ),
                TextDecision::DefaultReply(s) => {
                    let sent = send_menu(
                        press,
                        &scenarios,
                        s,
                        format!("scenario:{}", press.id),
                        now,
                        false,
                        effects,
                    );
                    if let Some(c) = press.conversation_id {
                        let mut v = Map::new();
                        v.insert("default_reply_at".into(), json!(format_datetime(now)));
                        effects.conversations.push((c, v));
                    }
                    (State::Done, format!("Default reply: {sent}"))
                }
                TextDecision::OptOut => (
                    State::Ignored,
                    "An opt-out keyword: inbound processing answers it.".to_owned(),
                ),
                TextDecision::Nothing {
                    default_reply_recent,
                } => (
                    State::Ignored,
                    if default_reply_recent {
                        "No scenario keyword matches; the welcome menu was already sent in the last 24 hours.".to_owned()
                    } else {
                        "No scenario keyword matches this text.".to_owned()
                    },
                ),
            };
            effects
                .outcomes
                .push((press.id, outcome(state_, result, None)));
            continue;
        }
        let decision = on_press(
            &press.payload,
            &scenarios,
            press.account_id,
            press.company_id,
            conv,
            now,
            stale_after,
        );
        match decision {
            PressDecision::NotAnOption => left.push((press, None)),
            PressDecision::Stale(s) => {
                let hours = ctx.scenarios.stale_after.as_secs() / 3600;
                let sent = send_menu(
                    press,
                    &scenarios,
                    s,
                    format!("button:{}:menu:{s}", press.id),
                    now,
                    false,
                    effects,
                );
                effects.outcomes.push((
                    press.id,
                    outcome(
                        State::Refused,
                        format!("Not acted on: the conversation's menu is more than {hours} hours old (scenarios.stale_after_hours). {sent}"),
                        None,
                    ),
                ));
            }
            PressDecision::Ambiguous(current) => {
                let result = match current {
                    Some(s) => {
                        let sent = send_menu(
                            press,
                            &scenarios,
                            s,
                            format!("button:{}:menu:{s}", press.id),
                            now,
                            false,
                            effects,
                        );
                        format!("Not acted on: several menus have the option '{}'. The current menu again: {sent}", press.payload)
                    }
                    None => format!("Not acted on: several menus have the option '{}' and the conversation has no current menu: give the options distinct ids.", press.payload),
                };
                effects
                    .outcomes
                    .push((press.id, outcome(State::Refused, result, None)));
            }
            PressDecision::Run(option) => {
                let start_of = |a: i64| {
                    actions
                        .iter()
                        .find(|x| x.id == a && x.action_type == "start_scenario")
                        .and_then(|x| x.scenario_id)
                };
                let (steps, cut) = chain(&option, start_of, cap);
                let scenario_name = scenarios
                    .iter()
                    .find(|s| s.id == option.scenario_id)
                    .map(|s| s.name.clone())
                    .unwrap_or_default();
                let mut words: Vec<String> = Vec::new();
                let mut forced = None;
                for (i, step) in steps.iter().enumerate() {
                    match step {
                        Step::Action(a) => match actions.iter().find(|x| x.id == *a) {
                            Some(action) => forced = Some(action.clone()),
                            None => {
                                words.push(format!("its button action {a} is archived: not run."))
                            }
                        },
                        Step::Reply(text) => {
                            let mut r = reply(press, None, "scenario", text.clone(), None);
                            r.insert(
                                "dedupe_key".into(),
                                json!(format!("button:{}:{i}", press.id)),
                            );
                            effects.later.push(r);
                            words.push("reply queued.".into());
                        }
                        Step::Menu(s) => {
                            words.push(send_menu(
                                press,
                                &scenarios,
                                *s,
                                format!("button:{}:menu:{s}", press.id),
                                now,
                                true,
                                effects,
                            ));
                        }
                    }
                }
                if cut {
                    tracing::warn!(press = press.id, option = %option.title, cap, "scenarios: the option's chain sends more than scenarios.max_messages_per_press messages; the rest is not sent");
                    words.push(format!(
                        "stopped after {cap} messages (scenarios.max_messages_per_press)."
                    ));
                }
                let head = format!("Option '{}' of '{scenario_name}'", option.title);
                let text = if words.is_empty() {
                    format!("({head}.)")
                } else {
                    format!("{head}: {}", words.join(" "))
                };
                match forced {
                    Some(action) => {
                        effects.suffix.insert(press.id, text);
                        left.push((press, Some(action)));
                    }
                    None => {
                        let nothing = steps.is_empty();
                        effects.outcomes.push((
                            press.id,
                            outcome(
                                if nothing { State::Ignored } else { State::Done },
                                if nothing {
                                    format!("{head}: it has no action, reply or next scenario.")
                                } else {
                                    text
                                },
                                None,
                            ),
                        ));
                    }
                }
            }
        }
    }
    Ok(left)
}
