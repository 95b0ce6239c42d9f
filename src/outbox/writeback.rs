//! Write-back: what the outbox writes to Odoo after each message, planned as pure functions so a
//! whole flush goes out in a handful of calls.
//!
//! Every claimed message ends with one [`Outcome`]. A flush turns a list of them into:
//!
//! - [`report_attachments`]: the PDFs of the reports that were sent, as `ir.attachment`s on
//!   their source documents (one per document and content), created together in one `create`
//!   before the result write, which links them as `media_attachment_id`;
//! - [`message_updates`]: one `(id, values)` per message for `whatsapp.message`, handed to the
//!   Odoo client's `write_each`, which sends records with identical values as one `write` and
//!   the rest (sent messages differ by wamid) in one `load`. The result write carries everything
//!   about the message (state, wamid, E.164 number, errors, the account used and the
//!   customer's conversation when the message had none, the file sent: Meta's media id, MIME
//!   type, file name), so a message's record is written once after its claim. When the
//!   daemon replaced free-form content by an account template outside the 24-hour window
//!   ([`Rewrite`]), the record is made to say what went out: type template, the template, its
//!   text with the parameters filled in as the body, and the typed wording and type kept in
//!   `original_body` and `original_message_type`;
//! - [`chatter_notes`]: the short notes posted on the source documents (order, invoice, else
//!   the contact), created together in one `mail.message` `create`, in the language of the user
//!   who queued each message (a note naming the template when one replaced the content);
//! - [`source_flags`]: the `x_whatsapp_*_sent` indicators of the source documents, one `write`
//!   per (model, indicator) with the same values for all its records.

use crate::lang::Lang;
use crate::odoo::escape_html;
use crate::odoo::format_datetime;
use base64::Engine;
use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};
use std::collections::{BTreeMap, HashMap};

/// The callback data sent with a message (`biz_opaque_callback_data`); status webhooks echo
/// it. It is the `whatsapp.message` id in decimal, which is what the inbound processor reads
/// (`inbound::status::callback_message_id`).
pub fn callback_data(message_id: i64) -> String {
    message_id.to_string()
}

/// The document a message is about, for its chatter note and indicators.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// `sale.order`, `account.move`, `res.partner`, ...
    pub model: String,
    pub id: i64,
    /// What queued the message (`invoice_posted`, `manual`, ...).
    pub trigger: String,
    /// Notes are skipped for campaign messages (the campaign has its own figures).
    pub note: bool,
}

/// What the result write and the chatter note of a sent or failed message need besides the
/// result itself.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct About {
    /// The number it went (or was to go) to.
    pub to: Option<String>,
    pub source: Option<Source>,
    /// The language of the user who queued it: its note and help texts are in it.
    pub lang: Lang,
    /// The account it was sent from (for the log), when known.
    pub account_id: Option<i64>,
    /// True when the message named no account: the result write records the one used.
    pub write_account: bool,
    /// The account's conversation with the customer, to record on a message that had none.
    pub conversation_id: Option<i64>,
}

impl About {
    fn put(&self, values: &mut Map<String, Value>) {
        if let (true, Some(account)) = (self.write_account, self.account_id) {
            values.insert("account_id".into(), json!(account));
        }
        if let Some(conversation) = self.conversation_id {
            values.insert("conversation_id".into(), json!(conversation));
        }
    }
}

/// An account template that replaced free-form content outside the 24-hour window: what the
/// record says instead of what was typed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rewrite {
    pub template_id: i64,
    /// `name (language)`, for the note.
    pub template_label: String,
    /// The template's text with its parameters filled in: what the customer received.
    pub body: String,
    /// The typed text or caption, kept in `original_body`.
    pub original_body: Option<String>,
    /// The type the message was queued with (`text`, `document`, ...).
    pub original_type: String,
}

/// The file a message carried, recorded on the message once sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SentMedia {
    /// Meta's media id (uploaded), when the file was uploaded.
    pub media_id: Option<String>,
    pub mime_type: Option<String>,
    pub filename: Option<String>,
    /// A report rendered for this send, to keep as an attachment of its document.
    pub report: Option<ReportFile>,
}

/// A rendered report PDF, attached to its source document after the send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReportFile {
    pub pdf: bytes::Bytes,
    /// The SHA-256 of the PDF (hex): the same PDF sent twice about one document is attached
    /// once.
    pub sha256: String,
    pub name: String,
    pub res_model: String,
    pub res_id: i64,
}

/// An error to store on a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ErrorInfo {
    /// Meta's numeric code, or a gate's word (`not_opted_in`).
    pub code: String,
    pub title: String,
    pub details: Option<String>,
    /// Plain words for people: what happened and what to do.
    pub help: String,
    /// Meta's raw error body, when there was one.
    pub raw: Option<String>,
}

/// How a claimed message ended this round.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Meta accepted it.
    Sent {
        id: i64,
        wamid: String,
        /// When Meta accepted it (written as `sent_at`, whenever the write-back happens).
        sent_at: DateTime<Utc>,
        /// WhatsApp's id for the recipient, from the send response.
        wa_id: Option<String>,
        /// The normalised number, when it differs from the stored one.
        to_e164: Option<String>,
        /// The account's template that replaced free-form content outside the window.
        rewrite: Option<Box<Rewrite>>,
        /// The file sent, to record on the message.
        media: Option<Box<SentMedia>>,
        /// An earlier attempt left error fields to clear.
        clear_error: bool,
        about: About,
    },
    /// Final failure: a gate, or an error Meta says not to retry.
    Failed {
        id: i64,
        error: ErrorInfo,
        about: About,
    },
    /// A passing failure: back to `queued`, due at `next_attempt_at`.
    Retry {
        id: i64,
        attempt_count: u32,
        next_attempt_at: DateTime<Utc>,
        error: ErrorInfo,
    },
    /// Not tried (paused account, recipient busy, shutting down): back to `queued`, no attempt
    /// counted.
    Requeue {
        id: i64,
        next_attempt_at: Option<DateTime<Utc>>,
    },
    /// Held by a local limit (Meta's daily messaging limit): back to `queued`, due at
    /// `next_attempt_at`, with the reason in the error fields for people; no attempt counted.
    Held {
        id: i64,
        next_attempt_at: DateTime<Utc>,
        error: ErrorInfo,
    },
    /// It already had a wamid: only its state is set right.
    AlreadySent { id: i64, state: &'static str },
    /// Meta may or may not have accepted it (the answer was lost). Nothing is written: the
    /// message stays `sending` and the reconciliation decides.
    Unknown { id: i64 },
    /// Not sent: this daemon lost the sending lease first. Nothing is written: the message stays
    /// `sending` and the lease's holder reconciles it.
    Left { id: i64 },
}

impl Outcome {
    pub fn id(&self) -> i64 {
        match self {
            Outcome::Sent { id, .. }
            | Outcome::Failed { id, .. }
            | Outcome::Retry { id, .. }
            | Outcome::Requeue { id, .. }
            | Outcome::Held { id, .. }
            | Outcome::AlreadySent { id, .. }
            | Outcome::Unknown { id }
            | Outcome::Left { id } => *id,
        }
    }

    /// A short name for logs and counters.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Sent { .. } => "sent",
            Outcome::Failed { .. } => "failed",
            Outcome::Retry { .. } => "retry",
            Outcome::Requeue { .. } => "requeue",
            Outcome::Held { .. } => "held",
            Outcome::AlreadySent { .. } => "already_sent",
            Outcome::Unknown { .. } => "unknown",
            Outcome::Left { .. } => "left_for_the_leader",
        }
    }
}

/// What one flush wrote, for its log line: counts by outcome, and per account (when known)
/// the sent and failed messages.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub counts: BTreeMap<&'static str, usize>,
    /// Account id → (sent, failed).
    pub accounts: BTreeMap<i64, (usize, usize)>,
}

impl Summary {
    pub fn of(outcomes: &[Outcome]) -> Summary {
        let mut summary = Summary::default();
        for outcome in outcomes {
            *summary.counts.entry(outcome.label()).or_default() += 1;
            let (about, sent) = match outcome {
                Outcome::Sent { about, .. } => (about, true),
                Outcome::Failed { about, .. } => (about, false),
                _ => continue,
            };
            if let Some(account) = about.account_id {
                let entry = summary.accounts.entry(account).or_default();
                if sent {
                    entry.0 += 1;
                } else {
                    entry.1 += 1;
                }
            }
        }
        summary
    }

    /// `sent 198, failed 2`.
    pub fn counts_text(&self) -> String {
        self.counts
            .iter()
            .map(|(label, n)| format!("{label} {n}"))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// `account 3: 198 sent, 2 failed; account 4: 10 sent, 0 failed`.
    pub fn accounts_text(&self) -> String {
        self.accounts
            .iter()
            .map(|(id, (sent, failed))| format!("account {id}: {sent} sent, {failed} failed"))
            .collect::<Vec<_>>()
            .join("; ")
    }
}

const ERROR_FIELDS: [&str; 5] = [
    "error_code",
    "error_title",
    "error_details",
    "error_help",
    "meta_response_json",
];

fn opt(value: &Option<String>) -> Value {
    match value {
        Some(v) => Value::String(v.clone()),
        None => Value::Bool(false),
    }
}

fn put_error(values: &mut Map<String, Value>, error: &ErrorInfo) {
    values.insert("error_code".into(), json!(error.code));
    values.insert("error_title".into(), json!(error.title));
    values.insert("error_details".into(), opt(&error.details));
    values.insert("error_help".into(), json!(error.help));
    if let Some(raw) = &error.raw {
        values.insert("meta_response_json".into(), json!(raw));
    }
}

/// The smallest write that still records what matters of a result, for when Odoo refused the
/// full one (a custom constraint on another field, a field removed by an upgrade): the state,
/// and for a sent message its wamid, which keeps the reconciliation from sending it again.
pub fn essential_values(values: &Map<String, Value>) -> Option<Map<String, Value>> {
    let essential: Map<String, Value> = values
        .iter()
        .filter(|(key, _)| matches!(key.as_str(), "state" | "wamid"))
        .map(|(key, value)| (key.clone(), value.clone()))
        .collect();
    (essential.len() < values.len() && !essential.is_empty()).then_some(essential)
}

/// The `ir.attachment` values of the report PDFs among the sent outcomes, one per source
/// document and content, each with the ids of the messages that sent it. Created in one call
/// before the result write, which links them ([`message_updates`]'s `attachments`).
pub fn report_attachments(outcomes: &[Outcome]) -> Vec<(Vec<i64>, Map<String, Value>)> {
    let mut groups: BTreeMap<(String, i64, String), (Vec<i64>, &ReportFile)> = BTreeMap::new();
    for outcome in outcomes {
        if let Outcome::Sent {
            id,
            media: Some(media),
            ..
        } = outcome
        {
            let Some(report) = &media.report else {
                continue;
            };
            let key = (
                report.res_model.clone(),
                report.res_id,
                report.sha256.clone(),
            );
            groups
                .entry(key)
                .or_insert((Vec::new(), report))
                .0
                .push(*id);
        }
    }
    groups
        .into_values()
        .map(|(ids, report)| {
            let mut v = Map::new();
            v.insert("name".into(), json!(report.name));
            v.insert("type".into(), json!("binary"));
            v.insert(
                "datas".into(),
                json!(base64::engine::general_purpose::STANDARD.encode(&report.pdf)),
            );
            v.insert("mimetype".into(), json!("application/pdf"));
            v.insert("res_model".into(), json!(report.res_model));
            v.insert("res_id".into(), json!(report.res_id));
            (ids, v)
        })
        .collect()
}

/// The `whatsapp.message` values of each outcome (none for [`Outcome::Unknown`]);
/// `attachments` maps a message id to the attachment created for the report it sent.
pub fn message_updates(
    outcomes: &[Outcome],
    now: DateTime<Utc>,
    attachments: &HashMap<i64, i64>,
) -> Vec<(i64, Map<String, Value>)> {
    let now = format_datetime(now);
    outcomes
        .iter()
        .filter_map(|outcome| {
            let mut v = Map::new();
            match outcome {
                Outcome::Sent {
                    id,
                    wamid,
                    sent_at,
                    wa_id,
                    to_e164,
                    rewrite,
                    media,
                    clear_error,
                    about,
                } => {
                    v.insert("state".into(), json!("sent"));
                    v.insert("wamid".into(), json!(wamid));
                    v.insert("sent_at".into(), json!(format_datetime(*sent_at)));
                    v.insert("callback_data".into(), json!(callback_data(*id)));
                    if let Some(wa_id) = wa_id {
                        v.insert("wa_id".into(), json!(wa_id));
                    }
                    if let Some(e164) = to_e164 {
                        v.insert("to_e164".into(), json!(e164));
                    }
                    if let Some(r) = rewrite {
                        v.insert("message_type".into(), json!("template"));
                        v.insert("template_id".into(), json!(r.template_id));
                        v.insert("body".into(), json!(r.body));
                        v.insert("original_body".into(), opt(&r.original_body));
                        v.insert("original_message_type".into(), json!(r.original_type));
                    }
                    if let Some(m) = media {
                        for (field, value) in [
                            ("media_id", &m.media_id),
                            ("media_mime_type", &m.mime_type),
                            ("media_filename", &m.filename),
                        ] {
                            if let Some(value) = value {
                                v.insert(field.into(), json!(value));
                            }
                        }
                    }
                    if let Some(attachment) = attachments.get(id) {
                        v.insert("media_attachment_id".into(), json!(attachment));
                    }
                    about.put(&mut v);
                    if *clear_error {
                        for field in ERROR_FIELDS {
                            v.insert(field.into(), Value::Bool(false));
                        }
                        v.insert("next_attempt_at".into(), Value::Bool(false));
                        // A message retried after it failed: it did not fail in the end.
                        v.insert("failed_at".into(), Value::Bool(false));
                    }
                    Some((*id, v))
                }
                Outcome::Failed { id, error, about } => {
                    v.insert("state".into(), json!("failed"));
                    v.insert("failed_at".into(), json!(now));
                    put_error(&mut v, error);
                    about.put(&mut v);
                    Some((*id, v))
                }
                Outcome::Retry {
                    id,
                    attempt_count,
                    next_attempt_at,
                    error,
                } => {
                    v.insert("state".into(), json!("queued"));
                    v.insert("attempt_count".into(), json!(attempt_count));
                    v.insert(
                        "next_attempt_at".into(),
                        json!(format_datetime(*next_attempt_at)),
                    );
                    put_error(&mut v, error);
                    Some((*id, v))
                }
                Outcome::Requeue {
                    id,
                    next_attempt_at,
                } => {
                    v.insert("state".into(), json!("queued"));
                    v.insert(
                        "next_attempt_at".into(),
                        next_attempt_at
                            .map(|t| json!(format_datetime(t)))
                            .unwrap_or(Value::Bool(false)),
                    );
                    Some((*id, v))
                }
                Outcome::Held {
                    id,
                    next_attempt_at,
                    error,
                } => {
                    v.insert("state".into(), json!("queued"));
                    v.insert(
                        "next_attempt_at".into(),
                        json!(format_datetime(*next_attempt_at)),
                    );
                    put_error(&mut v, error);
                    Some((*id, v))
                }
                Outcome::AlreadySent { id, state } => {
                    v.insert("state".into(), json!(state));
                    Some((*id, v))
                }
                Outcome::Unknown { .. } | Outcome::Left { .. } => None,
            }
        })
        .collect()
}

/// A chatter note to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    pub model: String,
    pub res_id: i64,
    /// Plain text (escaped into HTML by [`note_values`]).
    pub text: String,
}

/// The notes for the sent and failed messages that have a source document, each in the
/// language of the user who queued the message.
pub fn chatter_notes(outcomes: &[Outcome]) -> Vec<Note> {
    outcomes
        .iter()
        .filter_map(|outcome| {
            let (about, text) = match outcome {
                Outcome::Sent { about, rewrite, .. } => {
                    (about, sent_note(about, rewrite.as_deref()))
                }
                Outcome::Failed { about, error, .. } => (about, failed_note(about, error)),
                _ => return None,
            };
            let source = about.source.as_ref().filter(|s| s.note)?;
            Some(Note {
                model: source.model.clone(),
                res_id: source.id,
                text,
            })
        })
        .collect()
}

fn sent_note(about: &About, rewrite: Option<&Rewrite>) -> String {
    let to = about.to.as_deref().unwrap_or_default();
    match rewrite {
        None => tr!(
            about.lang,
            "WhatsApp message sent to {to}.",
            "Message WhatsApp envoyé au {to}."
        ),
        Some(r) => tr!(
            about.lang,
            "WhatsApp message sent to {to} as the template {}, because the customer had not \
             written in the last 24 hours (WhatsApp then only accepts approved templates); the \
             typed text is kept in 'Original wording' on the message.",
            "Message WhatsApp envoyé au {to} sous la forme du modèle {}, car le client n'avait \
             pas écrit dans les dernières 24 heures (WhatsApp n'accepte alors que des modèles \
             approuvés) ; le texte saisi est conservé dans « Texte d'origine » sur le message.",
            r.template_label
        ),
    }
}

fn failed_note(about: &About, error: &ErrorInfo) -> String {
    let (title, help) = (&error.title, &error.help);
    match (&about.to, about.lang) {
        (Some(to), Lang::En) => format!("WhatsApp message to {to} not sent: {title}. {help}"),
        (None, Lang::En) => format!("WhatsApp message not sent: {title}. {help}"),
        (Some(to), Lang::Fr) => format!("Message WhatsApp au {to} non envoyé : {title}. {help}"),
        (None, Lang::Fr) => format!("Message WhatsApp non envoyé : {title}. {help}"),
    }
}

/// `mail.message` values of an internal note (`subtype_id`: the id of `mail.mt_note`).
pub fn note_values(note: &Note, subtype_id: i64) -> Map<String, Value> {
    let mut v = Map::new();
    v.insert("model".into(), json!(note.model));
    v.insert("res_id".into(), json!(note.res_id));
    v.insert("message_type".into(), json!("comment"));
    v.insert("subtype_id".into(), json!(subtype_id));
    v.insert(
        "body".into(),
        json!(format!("<p>{}</p>", escape_html(&note.text))),
    );
    v
}

/// One `write` per (model, indicator) for the sources of the sent messages
/// ([`crate::indicators`]).
pub fn source_flags(
    outcomes: &[Outcome],
    now: DateTime<Utc>,
) -> Vec<(String, Vec<i64>, Map<String, Value>)> {
    crate::indicators::flag_writes(
        outcomes.iter().filter_map(|outcome| match outcome {
            Outcome::Sent { about, .. } => about
                .source
                .as_ref()
                .map(|s| (s.model.as_str(), s.id, s.trigger.as_str())),
            _ => None,
        }),
        now,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap()
    }

    #[test]
    fn the_essentials_of_a_result_are_its_state_and_wamid() {
        let full = json!({"state": "sent", "wamid": "wamid.A", "sent_at": "2026-03-01 12:00:00",
                          "to_e164": "+33612345601"});
        let essential = essential_values(full.as_object().unwrap()).unwrap();
        assert_eq!(
            Value::Object(essential),
            json!({"state": "sent", "wamid": "wamid.A"})
        );
        // Nothing smaller to try: already essential, or nothing essential in it.
        assert_eq!(
            essential_values(json!({"state": "sent", "wamid": "w"}).as_object().unwrap()),
            None
        );
        assert_eq!(
            essential_values(
                json!({"sent_at": "2026-03-01 12:00:00"})
                    .as_object()
                    .unwrap()
            ),
            None
        );
    }

    fn source(model: &str, id: i64, trigger: &str) -> Option<Source> {
        Some(Source {
            model: model.into(),
            id,
            trigger: trigger.into(),
            note: true,
        })
    }

    fn about(to: &str, source: Option<Source>) -> About {
        About {
            to: Some(to.into()),
            source,
            ..About::default()
        }
    }

    fn sent(id: i64, src: Option<Source>) -> Outcome {
        Outcome::Sent {
            id,
            wamid: format!("wamid.{id}"),
            sent_at: now(),
            wa_id: Some("2250700000001".into()),
            to_e164: None,
            rewrite: None,
            media: None,
            clear_error: false,
            about: about("+2250700000001", src),
        }
    }

    fn gate_failure(id: i64) -> Outcome {
        Outcome::Failed {
            id,
            error: ErrorInfo {
                code: "not_opted_in".into(),
                title: "No WhatsApp opt-in".into(),
                details: None,
                help: "Tick 'WhatsApp opt-in' <on> the contact.".into(),
                raw: None,
            },
            about: about("+2250700000002", source("sale.order", 8, "order_creation")),
        }
    }

    fn rewrite() -> Rewrite {
        Rewrite {
            template_id: 7,
            template_label: "sidecar_hello (en_US)".into(),
            body: "Hello! Thanks for choosing us.".into(),
            original_body: Some("Hello Awa, your quotation S00021 is ready".into()),
            original_type: "text".into(),
        }
    }

    #[test]
    fn callback_data_round_trips() {
        // What the outbox attaches is what inbound processing reads back.
        assert_eq!(callback_data(42), "42");
        assert_eq!(
            crate::inbound::status::callback_message_id(&callback_data(42)),
            Some(42)
        );
    }

    #[test]
    fn one_update_per_message_with_everything_in_it() {
        let outcomes = vec![
            Outcome::Sent {
                id: 1,
                wamid: "wamid.1".into(),
                // Accepted by Meta a minute before the write-back (e.g. Odoo was down).
                sent_at: now() - chrono::TimeDelta::seconds(60),
                wa_id: Some("2250700000001".into()),
                to_e164: Some("+2250700000001".into()),
                rewrite: Some(Box::new(rewrite())),
                media: None,
                clear_error: true,
                about: About {
                    account_id: Some(3),
                    write_account: true,
                    conversation_id: Some(12),
                    ..about("+2250700000001", None)
                },
            },
            gate_failure(2),
            Outcome::Retry {
                id: 3,
                attempt_count: 2,
                next_attempt_at: now() + chrono::TimeDelta::seconds(10),
                error: ErrorInfo {
                    code: "130429".into(),
                    title: "Throughput limit reached".into(),
                    details: Some("slow down".into()),
                    help: "Retried shortly.".into(),
                    raw: Some("{\"error\":{}}".into()),
                },
            },
            Outcome::Requeue {
                id: 4,
                next_attempt_at: None,
            },
            Outcome::AlreadySent {
                id: 5,
                state: "delivered",
            },
            Outcome::Unknown { id: 6 },
            Outcome::Held {
                id: 7,
                next_attempt_at: now() + chrono::TimeDelta::hours(1),
                error: ErrorInfo {
                    code: "messaging_limit".into(),
                    title: "Daily messaging limit reached".into(),
                    details: None,
                    help: "Goes out after 13:00 UTC.".into(),
                    raw: None,
                },
            },
        ];
        let updates = message_updates(&outcomes, now(), &HashMap::new());
        let ids: Vec<i64> = updates.iter().map(|(id, _)| *id).collect();
        assert_eq!(
            ids,
            [1, 2, 3, 4, 5, 7],
            "nothing is written for an unknown outcome"
        );

        let sent = &updates[0].1;
        assert_eq!(sent["state"], "sent");
        assert_eq!(sent["wamid"], "wamid.1");
        assert_eq!(
            sent["sent_at"], "2026-03-01 11:59:00",
            "when Meta accepted it, not when it was written"
        );
        assert_eq!(sent["callback_data"], "1");
        assert_eq!(sent["to_e164"], "+2250700000001");
        // The account's template replaced the typed text: the record says what went out.
        assert_eq!(sent["message_type"], "template");
        assert_eq!(sent["template_id"], 7);
        assert_eq!(sent["body"], "Hello! Thanks for choosing us.");
        assert_eq!(
            sent["original_body"],
            "Hello Awa, your quotation S00021 is ready"
        );
        assert_eq!(sent["original_message_type"], "text");
        assert_eq!(sent["account_id"], 3, "the account used");
        assert_eq!(sent["conversation_id"], 12);
        assert_eq!(sent["error_help"], false);
        assert_eq!(sent["next_attempt_at"], false);
        assert_eq!(
            sent["failed_at"], false,
            "sent in the end: no failure date left"
        );

        let failed = &updates[1].1;
        assert_eq!(failed["state"], "failed");
        assert!(
            failed.get("account_id").is_none() && failed.get("message_type").is_none(),
            "nothing beyond the result when the message had its account"
        );
        assert_eq!(failed["error_code"], "not_opted_in");
        assert_eq!(failed["error_details"], false);
        assert!(failed.get("meta_response_json").is_none());

        let retry = &updates[2].1;
        assert_eq!(retry["state"], "queued");
        assert_eq!(retry["attempt_count"], 2);
        assert_eq!(retry["next_attempt_at"], "2026-03-01 12:00:10");
        assert_eq!(retry["error_code"], "130429");
        assert_eq!(retry["meta_response_json"], "{\"error\":{}}");

        assert_eq!(updates[3].1["next_attempt_at"], false);
        assert_eq!(updates[4].1["state"], "delivered");
        assert_eq!(updates[4].1.len(), 1);

        let held = &updates[5].1;
        assert_eq!(held["state"], "queued");
        assert_eq!(held["next_attempt_at"], "2026-03-01 13:00:00");
        assert_eq!(held["error_code"], "messaging_limit");
        assert_eq!(held["error_help"], "Goes out after 13:00 UTC.");
        assert!(
            held.get("attempt_count").is_none(),
            "a held message is not an attempt"
        );
    }

    #[test]
    fn failures_of_the_same_kind_have_identical_values() {
        // So the client can send them in one `write`.
        let updates = message_updates(&[gate_failure(1), gate_failure(2)], now(), &HashMap::new());
        assert_eq!(updates[0].1, updates[1].1);
    }

    #[test]
    fn notes_go_to_the_source_document_escaped() {
        let mut no_note = source("res.partner", 3, "campaign");
        if let Some(s) = no_note.as_mut() {
            s.note = false;
        }
        let outcomes = vec![
            sent(1, source("account.move", 42, "invoice_posted")),
            gate_failure(2),
            sent(3, no_note),
            sent(4, None),
        ];
        let notes = chatter_notes(&outcomes);
        assert_eq!(notes.len(), 2);
        assert_eq!(notes[0].model, "account.move");
        assert_eq!(notes[0].text, "WhatsApp message sent to +2250700000001.");
        assert_eq!(notes[0].res_id, 42);
        assert!(notes[1]
            .text
            .starts_with("WhatsApp message to +2250700000002 not sent: No WhatsApp opt-in."));
        let v = note_values(&notes[1], 2);
        assert_eq!(v["subtype_id"], 2);
        assert_eq!(v["message_type"], "comment");
        assert!(v["body"]
            .as_str()
            .unwrap()
            .contains("Tick &#x27;WhatsApp opt-in&#x27; &lt;on&gt; the contact."));
    }

    #[test]
    fn indicators_are_grouped_per_model_and_field() {
        let outcomes = vec![
            sent(1, source("account.move", 42, "invoice_posted")),
            sent(2, source("account.move", 43, "invoice_details")),
            sent(3, source("sale.order", 8, "order_creation")),
            sent(4, source("account.move", 42, "invoice_posted")),
            // Wrong model for the trigger, manual sends, failures: nothing.
            sent(5, source("res.partner", 9, "invoice_posted")),
            sent(6, source("sale.order", 9, "manual")),
            gate_failure(7),
        ];
        let flags = source_flags(&outcomes, now());
        assert_eq!(flags.len(), 2);
        let (model, ids, values) = &flags[0];
        assert_eq!(model, "account.move");
        assert_eq!(ids, &[42, 43]);
        assert_eq!(values["x_whatsapp_invoice_sent"], true);
        assert_eq!(
            values["x_whatsapp_invoice_sent_date"],
            "2026-03-01 12:00:00"
        );
        assert_eq!(flags[1].0, "sale.order");
        assert_eq!(flags[1].1, [8]);
        assert!(flags[1].2.contains_key("x_whatsapp_creation_sent"));
    }

    #[test]
    fn notes_are_in_the_language_of_who_queued_the_message_and_name_the_template() {
        let in_french = |o: Outcome| match o {
            Outcome::Sent {
                id,
                wamid,
                sent_at,
                wa_id,
                to_e164,
                rewrite,
                media,
                clear_error,
                about,
            } => Outcome::Sent {
                id,
                wamid,
                sent_at,
                wa_id,
                to_e164,
                rewrite,
                media,
                clear_error,
                about: About {
                    lang: Lang::Fr,
                    ..about
                },
            },
            Outcome::Failed { id, error, about } => Outcome::Failed {
                id,
                error,
                about: About {
                    lang: Lang::Fr,
                    ..about
                },
            },
            other => other,
        };
        let replaced = match sent(1, source("sale.order", 21, "manual")) {
            Outcome::Sent { about, .. } => Outcome::Sent {
                id: 1,
                wamid: "wamid.1".into(),
                sent_at: now(),
                wa_id: None,
                to_e164: None,
                rewrite: Some(Box::new(rewrite())),
                media: None,
                clear_error: false,
                about,
            },
            _ => unreachable!(),
        };
        let english = chatter_notes(&[replaced.clone(), gate_failure(2)]);
        assert_eq!(
            english[0].text,
            "WhatsApp message sent to +2250700000001 as the template sidecar_hello (en_US), \
             because the customer had not written in the last 24 hours (WhatsApp then only \
             accepts approved templates); the typed text is kept in 'Original wording' on the \
             message."
        );
        let french = chatter_notes(&[
            in_french(replaced),
            in_french(gate_failure(2)),
            in_french(sent(3, source("res.partner", 5, "manual"))),
        ]);
        assert!(
            french[0].text.starts_with(
                "Message WhatsApp envoyé au +2250700000001 sous la forme du modèle \
                 sidecar_hello (en_US), car le client n'avait pas écrit dans les dernières 24 \
                 heures"
            ),
            "{}",
            french[0].text
        );
        assert!(french[1]
            .text
            .starts_with("Message WhatsApp au +2250700000002 non envoyé : No WhatsApp opt-in."));
        assert_eq!(french[2].text, "Message WhatsApp envoyé au +2250700000001.");
    }

    #[test]
    fn a_sent_file_is_recorded_and_a_report_attached_once_per_document() {
        let pdf = bytes::Bytes::from_static(b"%PDF-1.4 order");
        let report = |res_id: i64| ReportFile {
            pdf: pdf.clone(),
            sha256: "abc".into(),
            name: "S00004.pdf".into(),
            res_model: "sale.order".into(),
            res_id,
        };
        let with_media = |id: i64, media: SentMedia| match sent(id, None) {
            Outcome::Sent { about, .. } => Outcome::Sent {
                id,
                wamid: format!("wamid.{id}"),
                sent_at: now(),
                wa_id: None,
                to_e164: None,
                rewrite: None,
                media: Some(Box::new(media)),
                clear_error: false,
                about,
            },
            _ => unreachable!(),
        };
        let media = |id: &str, res_id: Option<i64>| SentMedia {
            media_id: Some(id.into()),
            mime_type: Some("application/pdf".into()),
            filename: Some("S00004.pdf".into()),
            report: res_id.map(report),
        };
        let outcomes = vec![
            with_media(1, media("m-1", Some(4))),
            // The same PDF of the same order, sent to someone else: one attachment.
            with_media(2, media("m-1", Some(4))),
            with_media(3, media("m-1", Some(5))),
            // A file that was already an attachment: only Meta's id and its type are recorded.
            with_media(4, media("m-2", None)),
        ];
        let attachments = report_attachments(&outcomes);
        assert_eq!(attachments.len(), 2);
        assert_eq!(attachments[0].0, [1, 2]);
        assert_eq!(attachments[1].0, [3]);
        let values = &attachments[0].1;
        assert_eq!(values["res_model"], "sale.order");
        assert_eq!(values["res_id"], 4);
        assert_eq!(values["mimetype"], "application/pdf");
        assert_eq!(values["name"], "S00004.pdf");
        assert_eq!(
            values["datas"],
            base64::engine::general_purpose::STANDARD.encode(b"%PDF-1.4 order")
        );

        let created: HashMap<i64, i64> = [(1, 70), (2, 70), (3, 71)].into_iter().collect();
        let updates = message_updates(&outcomes, now(), &created);
        assert_eq!(updates[0].1["media_id"], "m-1");
        assert_eq!(updates[0].1["media_mime_type"], "application/pdf");
        assert_eq!(updates[0].1["media_filename"], "S00004.pdf");
        assert_eq!(updates[0].1["media_attachment_id"], 70);
        assert_eq!(updates[2].1["media_attachment_id"], 71);
        assert_eq!(updates[3].1["media_id"], "m-2");
        assert!(updates[3].1.get("media_attachment_id").is_none());
    }

    #[test]
    fn a_flush_is_summed_up_by_outcome_and_account() {
        let mut first = sent(1, None);
        if let Outcome::Sent { about, .. } = &mut first {
            about.account_id = Some(3);
        }
        let mut failed = gate_failure(2);
        if let Outcome::Failed { about, .. } = &mut failed {
            about.account_id = Some(3);
        }
        let summary = Summary::of(&[
            first,
            failed,
            sent(3, None),
            Outcome::Requeue {
                id: 4,
                next_attempt_at: None,
            },
        ]);
        assert_eq!(summary.counts_text(), "failed 1, requeue 1, sent 2");
        assert_eq!(summary.accounts_text(), "account 3: 1 sent, 1 failed");
    }
}
