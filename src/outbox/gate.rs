//! The gates: everything checked before a message may go to Meta, as one pure function.
//!
//! [`gate`] takes a queued [`Message`] and a [`Snapshot`] of the records it refers to (read for
//! the whole batch beforehand) and returns either a [`SendPlan`] (who, from which account, what
//! content) or a [`GateFailure`] whose `help` tells a person, in plain words, what to change. The
//! checks, in order:
//!
//! 1. **account**: the message's own, else the company's default; none is a failure, a paused
//!    account is not (the message is requeued until someone resumes the account);
//! 2. **number**: normalised to E.164 with the company's country as default region; the
//!    normalised number is part of the plan so the result write stores it;
//! 3. **consent**: the contact ticked WhatsApp opt-in, or the customer wrote to us in the last 24
//!    hours (a reply inside a conversation they opened);
//! 4. **content**: text, media, interactive or template, each with what it needs;
//! 5. **the 24-hour window**: free-form content only inside it; outside, the account's template
//!    for that kind of message replaces it, or the message fails saying which setting is missing;
//! 6. **template**: known, of this account, APPROVED. Its parameters are checked once they are
//!    rendered ([`super::render`]).

use super::model::{Account, Company, Conversation, Message, Partner, Template};
use crate::phone::{self, E164};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use std::collections::HashMap;
use std::fmt;

/// The records a batch of messages refers to, read once for the batch.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Active accounts by id.
    pub accounts: HashMap<i64, Account>,
    pub companies: HashMap<i64, Company>,
    pub partners: HashMap<i64, Partner>,
    pub conversations: HashMap<i64, Conversation>,
    /// Active templates by id, with their variables.
    pub templates: HashMap<i64, Template>,
}

impl Snapshot {
    /// The company's default account, if it has an active one.
    pub fn default_account(&self, company_id: i64) -> Option<&Account> {
        self.accounts
            .values()
            .filter(|a| a.active && a.is_default && a.company_id == Some(company_id))
            .min_by_key(|a| a.id)
    }

    /// The conversation of the message: its own, else the account's conversation with this
    /// WhatsApp id (the E.164 digits).
    pub fn conversation_for(
        &self,
        message: &Message,
        account_id: i64,
        to: &E164,
    ) -> Option<&Conversation> {
        if let Some(c) = message
            .conversation_id
            .and_then(|id| self.conversations.get(&id))
        {
            return Some(c);
        }
        self.conversations
            .values()
            .filter(|c| c.account_id == Some(account_id) && c.wa_id.as_deref() == Some(to.digits()))
            .max_by_key(|c| c.last_inbound_at)
    }
}

/// What a gate found wrong. `code()` goes to the message's `error_code`, `title()` to
/// `error_title`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GateKind {
    NoAccount,
    AccountUnavailable,
    /// The account is paused: not a failure, the message waits.
    AccountPaused,
    BadNumber,
    NotOptedIn,
    NoConsent,
    WindowClosed,
    NoTemplate,
    TemplateUnavailable,
    TemplateNotApproved,
    TemplateParams,
    EmptyMessage,
    NoMedia,
    BadContent,
    UnsupportedType,
    /// The document could not be produced or uploaded.
    Media,
}

impl GateKind {
    /// A stable code stored in `error_code` (Meta's codes are numbers, these are words).
    pub fn code(self) -> &'static str {
        match self {
            GateKind::NoAccount => "no_account",
            GateKind::AccountUnavailable => "account_unavailable",
            GateKind::AccountPaused => "account_paused",
            GateKind::BadNumber => "bad_number",
            GateKind::NotOptedIn => "not_opted_in",
            GateKind::NoConsent => "no_consent",
            GateKind::WindowClosed => "window_closed",
            GateKind::NoTemplate => "no_template",
            GateKind::TemplateUnavailable => "template_unavailable",
            GateKind::TemplateNotApproved => "template_not_approved",
            GateKind::TemplateParams => "template_params",
            GateKind::EmptyMessage => "empty_message",
            GateKind::NoMedia => "no_media",
            GateKind::BadContent => "bad_content",
            GateKind::UnsupportedType => "unsupported_type",
            GateKind::Media => "media",
        }
    }

    /// A short title for `error_title`.
    pub fn title(self) -> &'static str {
        match self {
            GateKind::NoAccount => "No WhatsApp account",
            GateKind::AccountUnavailable => "WhatsApp account unavailable",
            GateKind::AccountPaused => "WhatsApp account paused",
            GateKind::BadNumber => "Invalid phone number",
            GateKind::NotOptedIn => "No WhatsApp opt-in",
            GateKind::NoConsent => "No consent",
            GateKind::WindowClosed => "Outside the 24-hour window",
            GateKind::NoTemplate => "No template",
            GateKind::TemplateUnavailable => "Template unavailable",
            GateKind::TemplateNotApproved => "Template not approved",
            GateKind::TemplateParams => "Template parameters invalid",
            GateKind::EmptyMessage => "Empty message",
            GateKind::NoMedia => "No media",
            GateKind::BadContent => "Invalid content",
            GateKind::UnsupportedType => "Unsupported message type",
            GateKind::Media => "Media not available",
        }
    }
}

impl fmt::Display for GateKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// A message that must not be sent as it is, and what a person should do about it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: {help}")]
pub struct GateFailure {
    pub kind: GateKind,
    /// Plain words for `error_help`: what is wrong and how to fix it.
    pub help: String,
}

impl GateFailure {
    pub fn new(kind: GateKind, help: impl Into<String>) -> Self {
        GateFailure {
            kind,
            help: help.into(),
        }
    }

    /// True when the message should wait (requeued) instead of failing: only a paused account.
    pub fn is_retryable(&self) -> bool {
        self.kind == GateKind::AccountPaused
    }
}

/// Where a media file comes from.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum MediaSource {
    /// Already uploaded to Meta.
    Id(String),
    /// A public HTTPS link.
    Url(String),
    /// An `ir.attachment` in Odoo, uploaded through the media cache.
    Attachment(i64),
    /// The PDF of a report on the source record, uploaded through the media cache.
    Report {
        report: String,
        model: String,
        id: i64,
    },
}

/// The media kinds a message can carry (what the Cloud API client sends).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MediaKind {
    Image,
    Document,
}

impl MediaKind {
    fn from_type(message_type: &str) -> Option<MediaKind> {
        Some(match message_type {
            "image" => MediaKind::Image,
            "document" => MediaKind::Document,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            MediaKind::Image => "image",
            MediaKind::Document => "document",
        }
    }
}

/// One template parameter value, as stored in `template_params_json` / `header_params_json`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ParamValue {
    #[serde(deserialize_with = "de_name")]
    pub name: String,
    #[serde(default, deserialize_with = "de_text")]
    pub value: String,
}

/// A button parameter (`template_params_json.buttons`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ButtonParam {
    #[serde(default)]
    pub index: u32,
    #[serde(default, deserialize_with = "de_name")]
    pub name: String,
    #[serde(default, deserialize_with = "de_text")]
    pub value: String,
}

/// The parameter values of a template message, per component.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
pub struct TemplateParams {
    #[serde(default)]
    pub header: Vec<ParamValue>,
    #[serde(default)]
    pub body: Vec<ParamValue>,
    #[serde(default)]
    pub buttons: Vec<ButtonParam>,
}

fn de_name<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    match serde_json::Value::deserialize(d)? {
        serde_json::Value::String(s) => Ok(s),
        serde_json::Value::Number(n) => Ok(n.to_string()),
        other => Err(serde::de::Error::custom(format!(
            "a parameter name must be a string or a number, not {other}"
        ))),
    }
}

fn de_text<'de, D: serde::Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    match serde_json::Value::deserialize(d)? {
        serde_json::Value::String(s) => Ok(s),
        serde_json::Value::Bool(false) | serde_json::Value::Null => Ok(String::new()),
        serde_json::Value::Number(n) => Ok(n.to_string()),
        other => Err(serde::de::Error::custom(format!(
            "a parameter value must be text, not {other}"
        ))),
    }
}

/// Where a template's parameter values come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParamSource {
    /// Given on the message (`template_params_json`, `header_params_json`).
    Given(TemplateParams),
    /// Resolved through the template's variables on this record (or from their fixed values
    /// when there is none).
    Variables { record: Option<(String, i64)> },
    /// The body and header through the variables, the buttons given on the message
    /// (`template_params_json` with only `buttons`, e.g. per-order quick-reply payloads).
    VariablesWithButtons {
        record: Option<(String, i64)>,
        buttons: Vec<ButtonParam>,
    },
}

/// What to send.
#[derive(Debug, Clone, PartialEq)]
pub enum Content {
    Text {
        body: String,
        preview_url: bool,
    },
    Media {
        kind: MediaKind,
        source: MediaSource,
        caption: Option<String>,
        filename: Option<String>,
    },
    /// Meta's `interactive` object, as composed in Odoo.
    Interactive(serde_json::Value),
    Template {
        template_id: i64,
        params: ParamSource,
        /// The media of an image/video/document header.
        header_media: Option<MediaSource>,
        filename: Option<String>,
    },
}

/// A message that passed the gates.
#[derive(Debug, Clone, PartialEq)]
pub struct SendPlan {
    pub message_id: i64,
    pub account_id: i64,
    pub to: E164,
    /// True when `to` differs from the stored `to_e164`, so the result write stores it.
    pub write_e164: bool,
    pub content: Content,
    /// Quote this earlier message (reply context).
    pub reply_to: Option<String>,
    /// True when the account's template replaced free-form content (outside the window).
    pub window_template: bool,
    /// True when the message is a template sent while the customer service window is not
    /// known to be open: a business-initiated message, counted by Meta's daily messaging limit
    /// ([`super::limit`]).
    pub outside_window: bool,
}

/// The report printed for a document message about `model` when the message names none.
pub fn default_report(model: &str) -> Option<&'static str> {
    match model {
        "sale.order" => Some("sale.report_saleorder"),
        "account.move" => Some("account.report_invoice"),
        _ => None,
    }
}

/// The final state of a queued message that already has a wamid (it was sent; a crash or a
/// requeue raced with the proof): the furthest state its timestamps show.
pub fn already_sent_state(message: &Message) -> Option<&'static str> {
    message.wamid.as_ref()?;
    Some(if message.failed_at.is_some() {
        "failed"
    } else if message.read_at.is_some() {
        "read"
    } else if message.delivered_at.is_some() {
        "delivered"
    } else {
        "sent"
    })
}

/// Resolves the account a message is sent from.
pub fn pick_account<'a>(
    snapshot: &'a Snapshot,
    message: &Message,
) -> Result<&'a Account, GateFailure> {
    if let Some(id) = message.account_id {
        return snapshot
            .accounts
            .get(&id)
            .filter(|a| a.active)
            .ok_or_else(|| {
                GateFailure::new(
                    GateKind::AccountUnavailable,
                    format!(
                        "The WhatsApp account of this message (id {id}) is archived or no longer \
                         exists: choose another account on the message, or restore the account \
                         in WhatsApp > Configuration > Accounts, then retry."
                    ),
                )
            });
    }
    let company = message
        .company_id
        .and_then(|c| snapshot.companies.get(&c))
        .map(|c| c.name.clone())
        .unwrap_or_else(|| "The company".to_owned());
    message
        .company_id
        .and_then(|c| snapshot.default_account(c))
        .ok_or_else(|| {
            GateFailure::new(
                GateKind::NoAccount,
                format!(
                    "No WhatsApp account: the message names none and {company} has no default \
                     account. Create one in WhatsApp > Configuration > Accounts and tick \
                     'Default for the company', then retry."
                ),
            )
        })
}

/// The recipient's E.164 number: the stored one, else the number typed on the message, else the
/// contact's.
pub fn recipient(
    snapshot: &Snapshot,
    message: &Message,
    account: &Account,
) -> Result<E164, GateFailure> {
    let partner = message.partner_id.and_then(|p| snapshot.partners.get(&p));
    let raw = message
        .to_e164
        .as_deref()
        .or(message.to_number.as_deref())
        .or_else(|| partner.and_then(Partner::whatsapp_number))
        .unwrap_or("");
    let region = message
        .company_id
        .or(account.company_id)
        .and_then(|c| snapshot.companies.get(&c))
        .and_then(|c| c.country_code.as_deref());
    phone::normalize(raw, region).map_err(|e| {
        let who = match partner {
            Some(p) if !p.name.is_empty() => format!(" (contact {})", p.name),
            _ => String::new(),
        };
        GateFailure::new(GateKind::BadNumber, format!("{e}{who}"))
    })
}

fn non_empty(s: &Option<String>) -> Option<String> {
    s.as_deref()
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// The media of the message itself, if any: an uploaded id, an attachment, a report of the
/// source record, or a link.
fn message_media(message: &Message, default_document_report: bool) -> Option<MediaSource> {
    if let Some(id) = non_empty(&message.media_id) {
        return Some(MediaSource::Id(id));
    }
    if let Some(id) = message.media_attachment_id {
        return Some(MediaSource::Attachment(id));
    }
    if let (Some(model), Some(id)) = (non_empty(&message.res_model), message.res_id) {
        let report = non_empty(&message.report_name).or_else(|| {
            default_document_report
                .then(|| default_report(&model).map(str::to_owned))
                .flatten()
        });
        if let Some(report) = report {
            return Some(MediaSource::Report { report, model, id });
        }
    }
    non_empty(&message.media_url).map(MediaSource::Url)
}

fn parse_params(message: &Message) -> Result<Option<TemplateParams>, GateFailure> {
    let body = non_empty(&message.template_params_json);
    let header = non_empty(&message.header_params_json);
    if body.is_none() && header.is_none() {
        return Ok(None);
    }
    let bad = |field: &str, e: serde_json::Error| {
        GateFailure::new(
            GateKind::BadContent,
            format!(
                "The template parameters in {field} are not valid JSON of the expected shape \
                 ({e}): re-create the message from the composer, or empty {field} so the \
                 template's variables are used."
            ),
        )
    };
    let mut params = match &body {
        Some(json) => serde_json::from_str::<TemplateParams>(json)
            .map_err(|e| bad("template_params_json", e))?,
        None => TemplateParams::default(),
    };
    if let Some(json) = &header {
        params.header = serde_json::from_str::<Vec<ParamValue>>(json)
            .map_err(|e| bad("header_params_json", e))?;
    }
    Ok(Some(params))
}

fn usable_template<'a>(
    snapshot: &'a Snapshot,
    template_id: i64,
    account: &Account,
) -> Result<&'a Template, GateFailure> {
    let template = snapshot
        .templates
        .get(&template_id)
        .filter(|t| t.active)
        .ok_or_else(|| {
            GateFailure::new(
                GateKind::TemplateUnavailable,
                format!(
                    "The template (id {template_id}) is archived or no longer exists: choose \
                     another template, or run 'Sync templates' on the account {}.",
                    account.name
                ),
            )
        })?;
    if template.account_id.is_some_and(|a| a != account.id) {
        return Err(GateFailure::new(
            GateKind::TemplateUnavailable,
            format!(
                "The template {} ({}) belongs to another WhatsApp account than {}: choose a \
                 template of this account.",
                template.name, template.language, account.name
            ),
        ));
    }
    if !template.is_approved() {
        return Err(GateFailure::new(
            GateKind::TemplateNotApproved,
            format!(
                "The template {} ({}) is {} at Meta, not approved, and WhatsApp only sends \
                 approved templates: wait for Meta's approval (then 'Sync templates' on the \
                 account), or choose an approved template.",
                template.name,
                template.language,
                if template.status.is_empty() {
                    "of unknown status"
                } else {
                    template.status.as_str()
                }
            ),
        ));
    }
    Ok(template)
}

fn header_media_for(
    template: &Template,
    message: &Message,
    account: &Account,
) -> Result<Option<MediaSource>, GateFailure> {
    if !template.has_media_header() {
        return Ok(None);
    }
    let document = template.header_type == "document";
    if let Some(source) = message_media(message, document) {
        return Ok(Some(source));
    }
    if let Some(url) =
        non_empty(&account.default_media_url).filter(|_| template.header_type == "image")
    {
        return Ok(Some(MediaSource::Url(url)));
    }
    Err(GateFailure::new(
        GateKind::NoMedia,
        format!(
            "The template {} ({}) has a {} header, but the message has no file for it: attach \
             a file or a media URL to the message{}.",
            template.name,
            template.language,
            template.header_type,
            if template.header_type == "image" {
                ", or set 'Default media URL' on the WhatsApp account"
            } else {
                ""
            }
        ),
    ))
}

/// Checks a queued message against every gate and plans its send.
pub fn gate(
    snapshot: &Snapshot,
    message: &Message,
    now: DateTime<Utc>,
) -> Result<SendPlan, GateFailure> {
    let account = pick_account(snapshot, message)?;
    if account.paused {
        return Err(GateFailure::new(
            GateKind::AccountPaused,
            format!(
                "The WhatsApp account {} is paused ({}): the message waits and is sent once \
                 someone fixes the cause and clicks 'Resume' on the account.",
                account.name,
                account
                    .paused_reason
                    .as_deref()
                    .unwrap_or("no reason given")
            ),
        ));
    }
    let to = recipient(snapshot, message, account)?;
    let partner = message.partner_id.and_then(|p| snapshot.partners.get(&p));
    let window_open = snapshot
        .conversation_for(message, account.id, &to)
        .is_some_and(|c| c.window_open(now));

    // Consent. Without opt-in, only a reply inside a window the customer opened is allowed, never
    // a campaign, and nothing but the confirmation once the customer opted out.
    match partner {
        Some(p) if p.opt_in => {}
        _ if message.trigger == "opt_out" => {}
        Some(p) if p.opted_out => {
            return Err(GateFailure::new(
                GateKind::NotOptedIn,
                format!(
                    "{} opted out of WhatsApp messages (for example by answering STOP): nothing \
                     more is sent to them until they agree again and 'WhatsApp opt-in' is ticked \
                     on the contact.",
                    if p.name.is_empty() {
                        "The customer"
                    } else {
                        p.name.as_str()
                    }
                ),
            ));
        }
        _ if window_open && message.trigger != "campaign" => {}
        Some(p) => {
            let contact = if p.name.is_empty() {
                "the contact".to_owned()
            } else {
                format!("the contact {}", p.name)
            };
            return Err(GateFailure::new(
                GateKind::NotOptedIn,
                format!(
                    "The customer has not opted in to WhatsApp messages: tick 'WhatsApp opt-in' \
                     on {contact} once they agreed, then retry. (Replies are allowed without \
                     opt-in while the customer has written in the last 24 hours.)"
                ),
            ));
        }
        None => {
            return Err(GateFailure::new(
                GateKind::NoConsent,
                format!(
                    "{to} is not linked to a contact, so there is no WhatsApp opt-in to check: \
                     send the message to the contact (with 'WhatsApp opt-in' ticked) instead of \
                     the bare number. (Replies are allowed while the customer has written in \
                     the last 24 hours.)"
                ),
            ))
        }
    }

    let reply_to = non_empty(&message.reply_to_wamid);
    let write_e164 = message.to_e164.as_deref() != Some(to.as_str());
    let plan = |content: Content, window_template: bool| SendPlan {
        outside_window: !window_open && matches!(content, Content::Template { .. }),
        message_id: message.id,
        account_id: account.id,
        to: to.clone(),
        write_e164,
        content,
        reply_to: reply_to.clone(),
        window_template,
    };

    // Templates are allowed at any time.
    if message.message_type == "template" {
        let template_id = message.template_id.ok_or_else(|| {
            GateFailure::new(
                GateKind::NoTemplate,
                "This is a template message without a template: choose the template on the \
                 message (or re-create it from the composer), then retry.",
            )
        })?;
        let template = usable_template(snapshot, template_id, account)?;
        let params = match parse_params(message)? {
            Some(given) if given.body.is_empty() && given.header.is_empty() => {
                ParamSource::VariablesWithButtons {
                    record: message.target_record(),
                    buttons: given.buttons,
                }
            }
            Some(given) => ParamSource::Given(given),
            None => ParamSource::Variables {
                record: message.target_record(),
            },
        };
        let header_media = header_media_for(template, message, account)?;
        return Ok(plan(
            Content::Template {
                template_id,
                params,
                header_media,
                filename: non_empty(&message.media_filename),
            },
            false,
        ));
    }

    // Free-form content.
    let content = free_form(message)?;
    if window_open {
        return Ok(plan(content, false));
    }
    let (template_id, label) = account.window_template(&message.trigger);
    let Some(template_id) = template_id else {
        return Err(GateFailure::new(
            GateKind::WindowClosed,
            format!(
                "The customer has not written in the last 24 hours, so WhatsApp only accepts an \
                 approved template, and the WhatsApp account {} has none for this kind of \
                 message: set '{label}' on the account (it is used outside the 24-hour window), \
                 or send a template.",
                account.name
            ),
        ));
    };
    let template = usable_template(snapshot, template_id, account).map_err(|f| GateFailure {
        help: format!(
            "Outside the 24-hour window the account's '{label}' is used instead, but: {}",
            f.help
        ),
        ..f
    })?;
    let header_media = header_media_for(template, message, account)?;
    Ok(plan(
        Content::Template {
            template_id,
            params: ParamSource::Variables {
                record: message.target_record(),
            },
            header_media,
            filename: non_empty(&message.media_filename),
        },
        true,
    ))
}

fn free_form(message: &Message) -> Result<Content, GateFailure> {
    let body = non_empty(&message.body);
    if message.message_type == "text" {
        let body = body.ok_or_else(|| {
            GateFailure::new(
                GateKind::EmptyMessage,
                "The text message is empty: write its text, then retry.",
            )
        })?;
        let preview_url = body.contains("https://") || body.contains("http://");
        return Ok(Content::Text { body, preview_url });
    }
    if message.message_type == "interactive" {
        let json = non_empty(&message.interactive_json).ok_or_else(|| {
            GateFailure::new(
                GateKind::EmptyMessage,
                "The interactive message has no buttons or list (interactive_json is empty): \
                 re-create it from the composer, then retry.",
            )
        })?;
        let value: serde_json::Value = serde_json::from_str(&json).map_err(|e| {
            GateFailure::new(
                GateKind::BadContent,
                format!(
                    "The interactive content is not valid JSON ({e}): re-create the message \
                     from the composer."
                ),
            )
        })?;
        if !value.is_object() {
            return Err(GateFailure::new(
                GateKind::BadContent,
                "The interactive content must be a JSON object (Meta's 'interactive' object \
                 with type, body and action): re-create the message from the composer.",
            ));
        }
        return Ok(Content::Interactive(value));
    }
    if let Some(kind) = MediaKind::from_type(&message.message_type) {
        let source = message_media(message, kind == MediaKind::Document).ok_or_else(|| {
            GateFailure::new(
                GateKind::NoMedia,
                format!(
                    "The {} message has no file: attach one, give a media URL{}, then retry.",
                    kind.as_str(),
                    if kind == MediaKind::Document {
                        ", or a report of the document"
                    } else {
                        ""
                    }
                ),
            )
        })?;
        return Ok(Content::Media {
            kind,
            source,
            caption: body,
            filename: non_empty(&message.media_filename),
        });
    }
    Err(GateFailure::new(
        GateKind::UnsupportedType,
        format!(
            "The daemon does not send messages of type '{}': use a text, template, image, \
             document or interactive message.",
            message.message_type
        ),
    ))
}

#[cfg(test)]
mod tests;
