//! Who is told that a customer wrote, and what they read (pure).
//!
//! Every new message a customer writes is logged as an internal note on the contact's chatter,
//! and on the chatter of the order or invoice it answers (the document of the outbound message
//! its reply context names). A message from a number no contact has is noted on its
//! conversation (when conversations have a chatter, as `ir.model` says: an older addon gave
//! them none). Notes are created together, one `mail.message` `create` per batch, in the
//! language of the account's company (its partner's `lang`), with the contact as author, as an
//! e-mail from them would be.
//!
//! One user is also told, at most once per conversation per hour ([`may_notify`], the
//! conversation's `last_notified_at`): the contact's salesperson, else the account's
//! responsible user, else nobody ([`recipient`]). The account's `inbound_notification` says
//! how ([`Mode`]): a "To do" activity "Reply on WhatsApp to ..." due today, on the order or
//! invoice answered, else on the contact, else on the conversation; or a Discuss message
//! (`message_notify`: in the user's inbox, or by e-mail if their preferences say so), about
//! the same record. What a user reads is in their language. Reactions, button and list-row
//! presses (answered by the button actions), opt-out keywords and WhatsApp's own system
//! messages tell no one (all but the last are noted).

use crate::odoo::escape_html;
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{json, Map, Value};
use std::collections::HashMap;

use super::plan::{AccountRow, ConversationRow, Routed};
use crate::lang::Lang;

pub const PARTNER: &str = "res.partner";
pub const CONVERSATION: &str = "whatsapp.conversation";

/// How often a conversation may tell someone: once an hour.
pub fn notify_every() -> TimeDelta {
    TimeDelta::hours(1)
}

/// `whatsapp.account.inbound_notification`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Notes only.
    None,
    /// A "To do" activity for the user.
    #[default]
    Activity,
    /// A Discuss message to the user.
    Message,
}

impl Mode {
    /// The selection value; an empty one (an addon without the field) is the default.
    pub fn from_odoo(value: Option<&str>) -> Mode {
        match value {
            Some("none") => Mode::None,
            Some("message") => Mode::Message,
            _ => Mode::Activity,
        }
    }
}

/// A contact, as notes and notifications name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    pub id: i64,
    pub name: String,
    /// The salesperson (`res.partner.user_id`).
    pub user_id: Option<i64>,
    pub lang: Option<String>,
}

/// A user to tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub id: i64,
    pub partner_id: Option<i64>,
    pub lang: Option<String>,
    pub tz: Option<String>,
}

/// A record of Odoo.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Record {
    pub model: String,
    pub id: i64,
}

impl Record {
    pub fn new(model: &str, id: i64) -> Record {
        Record {
            model: model.to_owned(),
            id,
        }
    }
}

/// What Odoo says about a model (`ir.model`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelInfo {
    pub id: i64,
    /// `is_mail_thread`: it has a chatter.
    pub thread: bool,
    /// `is_mail_activity`: it has activities.
    pub activities: bool,
}

/// True for messages worth a note: all but WhatsApp's system messages and welcome requests
/// (a user opening the chat, who wrote nothing).
pub fn worth_a_note(message_type: &str) -> bool {
    !matches!(message_type, "system" | "request_welcome")
}

/// True for messages someone should answer: those worth a note, but reactions and presses of
/// buttons or list rows (`interactive`, `button`), which the button actions answer (and which
/// tell the account's responsible themselves when an action fails).
pub fn calls_for_reply(message_type: &str) -> bool {
    worth_a_note(message_type) && !matches!(message_type, "reaction" | "interactive" | "button")
}

/// The users who may be told about a customer of `account`, in order: the contact's
/// salesperson, then the account's responsible user.
pub fn candidates(account: &AccountRow, contact: Option<&Contact>) -> Vec<i64> {
    contact
        .and_then(|c| c.user_id)
        .into_iter()
        .chain(account.responsible_user_id)
        .collect()
}

/// The user to tell about a customer of `account`: the contact's salesperson, else the
/// account's responsible user, whichever is in `users` (the active internal users read).
pub fn recipient<'u>(
    account: &AccountRow,
    contact: Option<&Contact>,
    users: &'u HashMap<i64, User>,
) -> Option<&'u User> {
    candidates(account, contact)
        .into_iter()
        .find_map(|id| users.get(&id))
}

/// Whether a conversation last notified at `last` may tell someone again at `now`.
pub fn may_notify(last: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
    last.is_none_or(|t| now - t >= notify_every())
}

/// Whether `messages` (one conversation's, with `account`) should tell someone now: the
/// account notifies, the conversation has not told anyone in the last hour, and one of them
/// is new and calls for a reply (not a reaction nor an opt-out keyword, as `opted_out` says).
pub fn wants_notice(
    account: &AccountRow,
    last_notified_at: Option<DateTime<Utc>>,
    messages: &[&Routed<'_>],
    opted_out: &dyn Fn(&Routed<'_>) -> bool,
    now: DateTime<Utc>,
) -> bool {
    account.inbound_notification != Mode::None
        && may_notify(last_notified_at, now)
        && messages
            .iter()
            .any(|r| r.new && calls_for_reply(r.inbound.message_type) && !opted_out(r))
}

/// Whether one conversation's new messages of a batch tell someone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Due {
    /// No: notifications are off, the hour is not over, or nothing calls for a reply.
    No,
    /// It would, but the contact has no salesperson and the account no responsible user
    /// (among the active internal users).
    Nobody,
    /// This user is told.
    User(i64),
}

/// Whom `messages` (one conversation's, with `account`) tell now ([`wants_notice`],
/// [`recipient`]).
pub fn due(
    account: &AccountRow,
    contact: Option<&Contact>,
    last_notified_at: Option<DateTime<Utc>>,
    messages: &[&Routed<'_>],
    opted_out: &dyn Fn(&Routed<'_>) -> bool,
    users: &HashMap<i64, User>,
    now: DateTime<Utc>,
) -> Due {
    if !wants_notice(account, last_notified_at, messages, opted_out, now) {
        return Due::No;
    }
    match recipient(account, contact, users) {
        Some(user) => Due::User(user.id),
        None => Due::Nobody,
    }
}

/// The message a notification is about: the latest of `messages` calling for a reply.
pub fn subject_of<'a, 'b>(
    messages: &[&'b Routed<'a>],
    opted_out: &dyn Fn(&Routed<'_>) -> bool,
) -> Option<&'b Routed<'a>> {
    messages
        .iter()
        .filter(|r| r.new && calls_for_reply(r.inbound.message_type) && !opted_out(r))
        .max_by_key(|r| r.inbound.timestamp)
        .copied()
}

/// A received message, with what notes and notifications say about it.
#[derive(Debug, Clone)]
pub struct Written<'a> {
    pub routed: &'a Routed<'a>,
    pub conversation: Option<&'a ConversationRow>,
    pub contact: Option<&'a Contact>,
    /// The document it answers, with its name.
    pub answers: Option<(&'a Record, &'a str)>,
    /// It is one of the account's opt-out keywords.
    pub opted_out: bool,
}

impl Written<'_> {
    /// Who wrote: the contact, else their WhatsApp profile name, else their number.
    pub fn who(&self) -> String {
        self.contact
            .map(|c| c.name.clone())
            .filter(|n| !n.trim().is_empty())
            .or_else(|| self.routed.inbound.profile_name.clone())
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| self.number())
    }

    /// Their number (`+` and the digits), else their business-scoped user id.
    pub fn number(&self) -> String {
        let m = self.routed.inbound;
        match (&m.wa_id, &m.user_id) {
            (Some(w), _) => format!("+{w}"),
            (None, Some(u)) => u.clone(),
            (None, None) => "?".to_owned(),
        }
    }

    fn account(&self) -> String {
        let a = self.routed.account;
        match a.display_phone_number.as_deref().filter(|n| !n.is_empty()) {
            Some(n) if !a.name.is_empty() => format!("{} ({n})", a.name),
            Some(n) => n.to_owned(),
            None => a.name.clone(),
        }
    }
}

/// A note to log on a record's chatter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub record: Record,
    /// The contact who wrote, when known.
    pub author_id: Option<i64>,
    /// HTML.
    pub body: String,
}

/// The notes of a batch's new messages: on the contact, on the document answered (when it has
/// a chatter), else on the conversation (when conversations have one). `lang` gives each
/// account's language, `thread` says whether a model has a chatter.
pub fn notes(
    written: &[Written<'_>],
    lang: &dyn Fn(&AccountRow) -> Lang,
    thread: &dyn Fn(&str) -> bool,
) -> Vec<Note> {
    let mut out = Vec::new();
    for w in written {
        if !w.routed.new || !worth_a_note(w.routed.inbound.message_type) {
            continue;
        }
        let body = note_html(w, lang(w.routed.account));
        let author_id = w.contact.map(|c| c.id);
        let mut on = |record: Record| {
            out.push(Note {
                record,
                author_id,
                body: body.clone(),
            })
        };
        match (w.contact, w.conversation) {
            (Some(c), _) => on(Record::new(PARTNER, c.id)),
            (None, Some(c)) if thread(CONVERSATION) => on(Record::new(CONVERSATION, c.id)),
            _ => {}
        }
        if let Some((record, _)) = w.answers.filter(|(r, _)| thread(&r.model)) {
            on(record.clone());
        }
    }
    out
}

/// `mail.message` values of a note: an internal note (`subtype_id`: the id of `mail.mt_note`).
pub fn note_values(note: &Note, subtype_id: i64) -> Map<String, Value> {
    let mut v = Map::new();
    v.insert("model".into(), json!(note.record.model));
    v.insert("res_id".into(), json!(note.record.id));
    v.insert("message_type".into(), json!("comment"));
    v.insert("subtype_id".into(), json!(subtype_id));
    v.insert("body".into(), json!(note.body));
    if let Some(author) = note.author_id {
        v.insert("author_id".into(), json!(author));
    }
    v
}

/// How a user is told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// A "To do" activity assigned to the user, due today in their time zone.
    Activity {
        record: Record,
        user_id: i64,
        tz: Option<String>,
        summary: String,
        /// HTML.
        note: String,
    },
    /// A Discuss message to the user's partner, about the record.
    Message {
        record: Record,
        /// Its name, shown in the user's inbox.
        record_name: String,
        partner_id: i64,
        subject: String,
        /// Plain text (Odoo escapes it).
        body: String,
    },
}

/// How `user` is told about `w` (the conversation's latest message calling for a reply), in
/// their language. An activity goes on the document answered, else the contact, else the
/// conversation, whichever first has activities; without any, the user gets a Discuss message
/// instead. `None` when a Discuss message is due to a user without a partner.
pub fn notice(
    w: &Written<'_>,
    user: &User,
    mode: Mode,
    model: &dyn Fn(&str) -> Option<ModelInfo>,
) -> Option<Notice> {
    let lang = Lang::from_odoo(user.lang.as_deref());
    let who = w.who();
    let mut targets: Vec<(Record, String)> = Vec::new();
    if let Some((record, name)) = w.answers {
        targets.push((record.clone(), name.to_owned()));
    }
    if let Some(c) = w.contact {
        targets.push((Record::new(PARTNER, c.id), c.name.clone()));
    }
    if let Some(c) = w.conversation {
        targets.push((
            Record::new(CONVERSATION, c.id),
            format!("{who} ({})", w.number()),
        ));
    }
    if mode == Mode::Activity {
        let target = targets
            .iter()
            .find(|(r, _)| model(&r.model).is_some_and(|m| m.activities));
        if let Some((record, _)) = target {
            return Some(Notice::Activity {
                record: record.clone(),
                user_id: user.id,
                tz: user.tz.clone(),
                summary: lang
                    .pick(
                        "Reply on WhatsApp to {who}",
                        "Répondre sur WhatsApp à {who}",
                    )
                    .replace("{who}", &who),
                note: note_html(w, lang),
            });
        }
    }
    if mode == Mode::None {
        return None;
    }
    let (record, record_name) = targets.into_iter().next()?;
    Some(Notice::Message {
        record,
        record_name,
        partner_id: user.partner_id?,
        subject: lang
            .pick("WhatsApp message from {who}", "Message WhatsApp de {who}")
            .replace("{who}", &who),
        body: message_text(w, lang),
    })
}

/// `mail.activity` values of an activity notice (`res_model_id`: the `ir.model` id of its
/// record's model; `activity_type_id`: "To do"). The due date is Odoo's default, today in the
/// `tz` of the call's context.
pub fn activity_values(
    notice: &Notice,
    res_model_id: i64,
    activity_type_id: Option<i64>,
) -> Option<Map<String, Value>> {
    let Notice::Activity {
        record,
        user_id,
        summary,
        note,
        ..
    } = notice
    else {
        return None;
    };
    let mut v = Map::new();
    v.insert("res_model_id".into(), json!(res_model_id));
    v.insert("res_id".into(), json!(record.id));
    if let Some(t) = activity_type_id {
        v.insert("activity_type_id".into(), json!(t));
    }
    v.insert("summary".into(), json!(summary));
    v.insert("note".into(), json!(note));
    v.insert("user_id".into(), json!(user_id));
    v.insert("automated".into(), json!(true));
    Some(v)
}

/// The keyword arguments of `message_notify` for a Discuss message notice.
pub fn message_kwargs(notice: &Notice) -> Option<Map<String, Value>> {
    let Notice::Message {
        record,
        record_name,
        partner_id,
        subject,
        body,
    } = notice
    else {
        return None;
    };
    let mut v = Map::new();
    v.insert("model".into(), json!(record.model));
    v.insert("res_id".into(), json!(record.id));
    v.insert("record_name".into(), json!(record_name));
    v.insert("partner_ids".into(), json!([partner_id]));
    v.insert("subject".into(), json!(subject));
    v.insert("body".into(), json!(body));
    // The daemon's own user may be the one to tell (a small company's only user).
    v.insert("notify_author".into(), json!(true));
    Some(v)
}

/// What kind of message it is, in words; `None` for a text.
fn kind(message_type: &str, lang: Lang) -> Option<&'static str> {
    Some(match message_type {
        "text" => return None,
        "image" => lang.pick("an image", "une image"),
        "video" => lang.pick("a video", "une vidéo"),
        "audio" => lang.pick("an audio message", "un message audio"),
        "sticker" => lang.pick("a sticker", "un sticker"),
        "document" => lang.pick("a document", "un document"),
        "location" => lang.pick("a location", "une position"),
        "contacts" => lang.pick("a contact card", "une fiche de contact"),
        "interactive" | "button" => lang.pick("a button reply", "une réponse par bouton"),
        "reaction" => lang.pick("a reaction", "une réaction"),
        "order" => lang.pick("an order", "une commande"),
        _ => lang.pick(
            "a message the daemon cannot show (see the conversation)",
            "un message que le démon ne peut pas afficher (voir la conversation)",
        ),
    })
}

/// The note about a message, in HTML: who wrote to which account, about what, the text (or
/// what was sent, with its caption), and a link to the conversation.
pub fn note_html(w: &Written<'_>, lang: Lang) -> String {
    let m = w.routed.inbound;
    let mut html = String::new();
    html.push_str("<p>");
    html.push_str(&escape_html(
        &lang
            .pick(
                "WhatsApp message from {who} ({number}) to {account}",
                "Message WhatsApp de {who} ({number}) vers {account}",
            )
            .replace("{who}", &w.who())
            .replace("{number}", &w.number())
            .replace("{account}", &w.account()),
    ));
    if let Some((_, name)) = w.answers {
        html.push_str(&escape_html(
            &lang
                .pick(", in reply to {doc}", ", en réponse à {doc}")
                .replace("{doc}", name),
        ));
    }
    html.push_str(lang.pick(":", " :"));
    html.push_str("</p>");
    // The words in a paragraph of their own, in quotes (not a <blockquote>: Odoo's chatter
    // folds those away as quoted e-mail).
    let body = m.body.as_deref().map(str::trim).filter(|b| !b.is_empty());
    let kind = kind(m.message_type, lang);
    if kind.is_some() || body.is_some() {
        html.push_str("<p>");
        if let Some(kind) = kind {
            html.push_str("<i>");
            html.push_str(&escape_html(kind));
            html.push_str("</i>");
            if body.is_some() {
                html.push_str(lang.pick(": ", " : "));
            }
        }
        if let Some(body) = body {
            let (open, close) = quotes(lang);
            html.push_str(open);
            html.push_str(&escape_html(body).replace('\n', "<br>"));
            html.push_str(close);
        }
        html.push_str("</p>");
    }
    if w.opted_out && w.contact.is_some() {
        html.push_str("<p>");
        html.push_str(lang.pick(
            "They asked for no more WhatsApp messages: the contact is opted out.",
            "Le client a demandé à ne plus recevoir de messages WhatsApp : le contact est \
             désinscrit.",
        ));
        html.push_str("</p>");
    }
    if let Some(c) = w.conversation {
        html.push_str(&format!(
            "<p><a href=\"/web#id={id}&amp;model={CONVERSATION}&amp;view_type=form\" \
             data-oe-model=\"{CONVERSATION}\" data-oe-id=\"{id}\">{open}</a></p>",
            id = c.id,
            open = lang.pick("Open the conversation", "Ouvrir la conversation"),
        ));
    }
    html
}

/// The longest text quoted in a Discuss message.
const QUOTE_MAX: usize = 500;

/// A Discuss message about a message, in plain text.
pub fn message_text(w: &Written<'_>, lang: Lang) -> String {
    let m = w.routed.inbound;
    let mut text = lang
        .pick(
            "{who} ({number}) wrote on WhatsApp to {account}",
            "{who} ({number}) a écrit sur WhatsApp à {account}",
        )
        .replace("{who}", &w.who())
        .replace("{number}", &w.number())
        .replace("{account}", &w.account());
    if let Some((_, name)) = w.answers {
        text.push_str(
            &lang
                .pick(", in reply to {doc}", ", en réponse à {doc}")
                .replace("{doc}", name),
        );
    }
    text.push_str(lang.pick(": ", " : "));
    let body = m.body.as_deref().map(str::trim).filter(|b| !b.is_empty());
    let (open, close) = quotes(lang);
    if let Some(kind) = kind(m.message_type, lang) {
        text.push_str(kind);
        if body.is_some() {
            text.push_str(lang.pick(": ", " : "));
        }
    }
    if let Some(body) = body {
        text.push_str(open);
        text.push_str(&shorten(body, QUOTE_MAX));
        text.push_str(close);
    }
    text.push_str(lang.pick(
        ". Reply from WhatsApp > Conversations.",
        ". Répondez depuis WhatsApp > Conversations.",
    ));
    text
}

/// Quotation marks around a customer's words.
fn quotes(lang: Lang) -> (&'static str, &'static str) {
    lang.pick(("“", "”"), ("« ", " »"))
}

fn shorten(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests;
