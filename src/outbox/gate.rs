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
//! 5. **the 24-hour window**: free-form content only inside it. Outside, WhatsApp only takes an
//!    approved template, so an account template replaces the content (the result write then
//!    says so on the record: type template, the template, its text, and the original wording
//!    kept aside), and never one that loses the file:
//!    - a **text** (or interactive) message goes as the account's template for its trigger
//!      ("Template for posted invoices", ...), else its "Generic template"; a media header of
//!      that template takes the message's file, the source document's PDF or the account's
//!      default media URL, as for any template;
//!    - a **document** (a PDF, an order or invoice report, any file) goes as the template for
//!      its trigger when that template's header is a document, else as the account's
//!      "Template for documents", which must have a document header; the file goes in the
//!      header. Without one the message fails naming the setting: a template without the file
//!      would tell the customer about a document they never get;
//!    - an **image** goes only as the template for its trigger (or the generic one) when that
//!      template's header is an image, with the image in it; otherwise it fails naming the
//!      setting (there is no image-only setting: an image without its picture means nothing);
//!    - with no template set the message fails, naming the setting to fill;
//! 6. **template**: known, of this account, APPROVED. Its parameters are checked once they are
//!    rendered ([`super::render`]).
//!
//! Every text for people is in the language of the user who queued the message
//! ([`Snapshot::lang_of`]: the author's, else the company's, else English).

use super::model::{
    Account, Company, Conversation, Message, Partner, Setting, Template, DOCUMENT_TEMPLATE,
};
use crate::lang::Lang;
use crate::phone::{self, PhoneError, E164};
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
    /// The language (`res.users.lang`) of the users who queued the messages, by user id.
    pub user_langs: HashMap<i64, String>,
}

impl Snapshot {
    /// Takes the accounts, companies and templates of `fresh` (read later) and adds its
    /// partners, conversations and users.
    pub fn merge(&mut self, fresh: Snapshot) {
        self.accounts = fresh.accounts;
        self.companies = fresh.companies;
        self.templates.extend(fresh.templates);
        self.partners.extend(fresh.partners);
        self.conversations.extend(fresh.conversations);
        self.user_langs.extend(fresh.user_langs);
    }

    /// The language of the texts written about `message` for people: its author's, else its
    /// company's, else English.
    pub fn lang_of(&self, message: &Message) -> Lang {
        let user = message
            .create_uid
            .and_then(|uid| self.user_langs.get(&uid))
            .map(String::as_str);
        let company = message
            .company_id
            .and_then(|c| self.companies.get(&c))
            .and_then(|c| c.lang.as_deref());
        Lang::first_of([user, company])
    }

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

    /// A short title for `error_title`, in `lang`.
    pub fn title(self, lang: Lang) -> &'static str {
        let (en, fr) = match self {
            GateKind::NoAccount => ("No WhatsApp account", "Aucun compte WhatsApp"),
            GateKind::AccountUnavailable => (
                "WhatsApp account unavailable",
                "Compte WhatsApp indisponible",
            ),
            GateKind::AccountPaused => ("WhatsApp account paused", "Compte WhatsApp en pause"),
            GateKind::BadNumber => ("Invalid phone number", "Numéro de téléphone invalide"),
            GateKind::NotOptedIn => ("No WhatsApp opt-in", "Pas d'accord WhatsApp"),
            GateKind::NoConsent => ("No consent", "Pas de consentement"),
            GateKind::WindowClosed => (
                "Outside the 24-hour window",
                "Hors de la fenêtre de 24 heures",
            ),
            GateKind::NoTemplate => ("No template", "Aucun modèle"),
            GateKind::TemplateUnavailable => ("Template unavailable", "Modèle indisponible"),
            GateKind::TemplateNotApproved => ("Template not approved", "Modèle non approuvé"),
            GateKind::TemplateParams => (
                "Template parameters invalid",
                "Paramètres du modèle invalides",
            ),
            GateKind::EmptyMessage => ("Empty message", "Message vide"),
            GateKind::NoMedia => ("No media", "Aucun fichier"),
            GateKind::BadContent => ("Invalid content", "Contenu invalide"),
            GateKind::UnsupportedType => (
                "Unsupported message type",
                "Type de message non pris en charge",
            ),
            GateKind::Media => ("Media not available", "Fichier indisponible"),
        };
        lang.pick(en, fr)
    }
}

impl GateKind {
    /// True when the fix is a setting of the account or a template (rather than of the
    /// message or the contact): someone may just have made it.
    pub fn names_a_setting(self) -> bool {
        matches!(
            self,
            GateKind::NoAccount
                | GateKind::AccountUnavailable
                | GateKind::WindowClosed
                | GateKind::TemplateUnavailable
                | GateKind::TemplateNotApproved
                | GateKind::NoMedia
        )
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
    /// The account's conversation with this customer, when there is one.
    pub conversation_id: Option<i64>,
    /// The language of the texts written about the message for people.
    pub lang: Lang,
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
    let lang = snapshot.lang_of(message);
    if let Some(id) = message.account_id {
        return snapshot
            .accounts
            .get(&id)
            .filter(|a| a.active)
            .ok_or_else(|| {
                GateFailure::new(
                    GateKind::AccountUnavailable,
                    tr!(
                        lang,
                        "The WhatsApp account of this message (id {id}) is archived or no longer \
                         exists: choose another account on the message, or restore the account \
                         in WhatsApp > Configuration > Accounts, then retry.",
                        "Le compte WhatsApp de ce message (id {id}) est archivé ou n'existe plus : \
                         choisissez un autre compte sur le message, ou restaurez le compte dans \
                         WhatsApp > Configuration > Comptes, puis réessayez."
                    ),
                )
            });
    }
    let company = message
        .company_id
        .and_then(|c| snapshot.companies.get(&c))
        .map(|c| c.name.clone())
        .unwrap_or_else(|| lang.pick("The company", "la société").to_owned());
    message
        .company_id
        .and_then(|c| snapshot.default_account(c))
        .ok_or_else(|| {
            GateFailure::new(
                GateKind::NoAccount,
                tr!(
                    lang,
                    "No WhatsApp account: the message names none and {company} has no default \
                     account. Create one in WhatsApp > Configuration > Accounts and tick \
                     'Default for the company', then retry.",
                    "Aucun compte WhatsApp : le message n'en indique aucun et {company} n'a pas \
                     de compte par défaut. Créez-en un dans WhatsApp > Configuration > Comptes \
                     et cochez « Par défaut pour la société », puis réessayez."
                ),
            )
        })
}

/// A phone number problem in `lang` (the English words are [`PhoneError`]'s own).
fn phone_help(e: &PhoneError, lang: Lang) -> String {
    if lang == Lang::En {
        return e.to_string();
    }
    match e {
        PhoneError::Empty => "Aucun numéro de téléphone : ajoutez un numéro WhatsApp (ou un \
                              numéro de mobile) sur le contact, ou saisissez le numéro au format \
                              international, par ex. +2250700000001."
            .to_owned(),
        PhoneError::NoRegion { input } => format!(
            "{input:?} n'a pas d'indicatif de pays et la société n'a pas de pays dont le \
             prendre : saisissez le numéro au format international (avec + et l'indicatif, par \
             ex. +2250700000001), ou indiquez le pays de la société."
        ),
        PhoneError::Unreadable { input, reason } => format!(
            "{input:?} n'est pas un numéro de téléphone ({reason}) : corrigez-le sur le contact \
             ou le message, au format international, par ex. +2250700000001."
        ),
        PhoneError::Extension { input } => format!(
            "{input:?} a un numéro de poste, que WhatsApp ne peut pas joindre : utilisez un \
             numéro de mobile sans poste."
        ),
        PhoneError::Invalid { input, region } => {
            let region = if let Some(code) = region.strip_prefix(" for ") {
                format!(" pour {code}")
            } else if let Some(code) = region.strip_prefix(" with country code ") {
                format!(" avec l'indicatif {code}")
            } else {
                region.clone()
            };
            format!(
                "{input:?} n'est pas un numéro de téléphone valide{region} : vérifiez les \
                 chiffres et l'indicatif de pays sur le contact (format international, par ex. \
                 +2250700000001)."
            )
        }
    }
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
        let lang = snapshot.lang_of(message);
        let who = match partner {
            Some(p) if !p.name.is_empty() => {
                tr!(lang, " (contact {})", " (contact {})", p.name)
            }
            _ => String::new(),
        };
        GateFailure::new(
            GateKind::BadNumber,
            format!("{}{who}", phone_help(&e, lang)),
        )
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

fn parse_params(message: &Message, lang: Lang) -> Result<Option<TemplateParams>, GateFailure> {
    let body = non_empty(&message.template_params_json);
    let header = non_empty(&message.header_params_json);
    if body.is_none() && header.is_none() {
        return Ok(None);
    }
    let bad = |field: &str, e: serde_json::Error| {
        GateFailure::new(
            GateKind::BadContent,
            tr!(
                lang,
                "The template parameters in {field} are not valid JSON of the expected shape \
                 ({e}): re-create the message from the composer, or empty {field} so the \
                 template's variables are used.",
                "Les paramètres du modèle dans {field} ne sont pas du JSON de la forme attendue \
                 ({e}) : recréez le message depuis l'assistant d'envoi, ou videz {field} pour \
                 que les variables du modèle soient utilisées."
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

/// The status of a template as people read it.
fn status_words(template: &Template, lang: Lang) -> String {
    if template.status.is_empty() {
        lang.pick("of unknown status", "d'un statut inconnu")
            .to_owned()
    } else {
        template.status.clone()
    }
}

fn usable_template<'a>(
    snapshot: &'a Snapshot,
    template_id: i64,
    account: &Account,
    lang: Lang,
) -> Result<&'a Template, GateFailure> {
    let template = snapshot
        .templates
        .get(&template_id)
        .filter(|t| t.active)
        .ok_or_else(|| {
            GateFailure::new(
                GateKind::TemplateUnavailable,
                tr!(
                    lang,
                    "The template (id {template_id}) is archived or no longer exists: choose \
                     another template, or run 'Sync templates' on the account {}.",
                    "Le modèle (id {template_id}) est archivé ou n'existe plus : choisissez un \
                     autre modèle, ou lancez « Synchroniser les modèles » sur le compte {}.",
                    account.name
                ),
            )
        })?;
    if template.account_id.is_some_and(|a| a != account.id) {
        return Err(GateFailure::new(
            GateKind::TemplateUnavailable,
            tr!(
                lang,
                "The template {} ({}) belongs to another WhatsApp account than {}: choose a \
                 template of this account.",
                "Le modèle {} ({}) appartient à un autre compte WhatsApp que {} : choisissez un \
                 modèle de ce compte.",
                template.name,
                template.language,
                account.name
            ),
        ));
    }
    if !template.is_approved() {
        return Err(GateFailure::new(
            GateKind::TemplateNotApproved,
            tr!(
                lang,
                "The template {} ({}) is {} at Meta, not approved, and WhatsApp only sends \
                 approved templates: wait for Meta's approval (then 'Sync templates' on the \
                 account), or choose an approved template.",
                "Le modèle {} ({}) est {} chez Meta, pas approuvé, et WhatsApp n'envoie que des \
                 modèles approuvés : attendez l'approbation de Meta (puis « Synchroniser les \
                 modèles » sur le compte), ou choisissez un modèle approuvé.",
                template.name,
                template.language,
                status_words(template, lang)
            ),
        ));
    }
    Ok(template)
}

fn header_media_for(
    template: &Template,
    message: &Message,
    account: &Account,
    lang: Lang,
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
    let image = template.header_type == "image";
    Err(GateFailure::new(
        GateKind::NoMedia,
        tr!(
            lang,
            "The template {} ({}) has a {} header, but the message has no file for it: attach \
             a file or a media URL to the message{}.",
            "Le modèle {} ({}) a un en-tête de type {}, mais le message n'a pas de fichier pour \
             lui : joignez un fichier ou une URL de média au message{}.",
            template.name,
            template.language,
            template.header_type,
            match (image, lang) {
                (false, _) => "",
                (true, Lang::En) => ", or set 'Default media URL' on the WhatsApp account",
                (true, Lang::Fr) =>
                    ", ou renseignez « URL de média par défaut » sur le compte WhatsApp",
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
    let lang = snapshot.lang_of(message);
    let account = pick_account(snapshot, message)?;
    if account.paused {
        return Err(GateFailure::new(
            GateKind::AccountPaused,
            tr!(
                lang,
                "The WhatsApp account {} is paused ({}): the message waits and is sent once \
                 someone fixes the cause and clicks 'Resume' on the account.",
                "Le compte WhatsApp {} est en pause ({}) : le message attend et part dès que \
                 quelqu'un a corrigé la cause et cliqué sur « Reprendre » sur le compte.",
                account.name,
                account
                    .paused_reason
                    .as_deref()
                    .unwrap_or(lang.pick("no reason given", "aucune raison donnée"))
            ),
        ));
    }
    let to = recipient(snapshot, message, account)?;
    let partner = message.partner_id.and_then(|p| snapshot.partners.get(&p));
    let conversation = snapshot.conversation_for(message, account.id, &to);
    let window_open = conversation.is_some_and(|c| c.window_open(now));

    // Consent. Without opt-in, only a reply inside a window the customer opened is allowed, never
    // a campaign, and nothing but the confirmation once the customer opted out.
    match partner {
        Some(p) if p.opt_in => {}
        _ if message.trigger == "opt_out" => {}
        Some(p) if p.opted_out => {
            let who = if p.name.is_empty() {
                lang.pick("The customer", "Le client").to_owned()
            } else {
                p.name.clone()
            };
            return Err(GateFailure::new(
                GateKind::NotOptedIn,
                tr!(
                    lang,
                    "{who} opted out of WhatsApp messages (for example by answering STOP): nothing \
                     more is sent to them until they agree again and 'WhatsApp opt-in' is ticked \
                     on the contact.",
                    "{who} a refusé les messages WhatsApp (par exemple en répondant STOP) : plus \
                     rien ne lui est envoyé tant qu'il n'a pas donné à nouveau son accord et que \
                     « Accord WhatsApp » n'est pas coché sur le contact."
                ),
            ));
        }
        _ if window_open && message.trigger != "campaign" => {}
        Some(p) => {
            let contact = match (p.name.is_empty(), lang) {
                (true, Lang::En) => "the contact".to_owned(),
                (true, Lang::Fr) => "le contact".to_owned(),
                (false, Lang::En) => format!("the contact {}", p.name),
                (false, Lang::Fr) => format!("le contact {}", p.name),
            };
            return Err(GateFailure::new(
                GateKind::NotOptedIn,
                tr!(
                    lang,
                    "The customer has not opted in to WhatsApp messages: tick 'WhatsApp opt-in' \
                     on {contact} once they agreed, then retry. (Replies are allowed without \
                     opt-in while the customer has written in the last 24 hours.)",
                    "Le client n'a pas accepté les messages WhatsApp : cochez « Accord WhatsApp » \
                     sur {contact} une fois son accord obtenu, puis réessayez. (Les réponses sont \
                     permises sans accord tant que le client a écrit dans les dernières 24 \
                     heures.)"
                ),
            ));
        }
        None => {
            return Err(GateFailure::new(
                GateKind::NoConsent,
                tr!(
                    lang,
                    "{to} is not linked to a contact, so there is no WhatsApp opt-in to check: \
                     send the message to the contact (with 'WhatsApp opt-in' ticked) instead of \
                     the bare number. (Replies are allowed while the customer has written in \
                     the last 24 hours.)",
                    "{to} n'est lié à aucun contact, il n'y a donc pas d'accord WhatsApp à \
                     vérifier : envoyez le message au contact (avec « Accord WhatsApp » coché) \
                     plutôt qu'au numéro seul. (Les réponses sont permises tant que le client a \
                     écrit dans les dernières 24 heures.)"
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
        conversation_id: conversation.map(|c| c.id),
        lang,
    };

    // Templates are allowed at any time.
    if message.message_type == "template" {
        let template_id = message.template_id.ok_or_else(|| {
            GateFailure::new(
                GateKind::NoTemplate,
                lang.pick(
                    "This is a template message without a template: choose the template on the \
                     message (or re-create it from the composer), then retry.",
                    "C'est un message de type modèle sans modèle : choisissez le modèle sur le \
                     message (ou recréez-le depuis l'assistant d'envoi), puis réessayez.",
                ),
            )
        })?;
        let template = usable_template(snapshot, template_id, account, lang)?;
        let params = match parse_params(message, lang)? {
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
        let header_media = header_media_for(template, message, account, lang)?;
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
    let content = free_form(message, lang)?;
    if window_open {
        return Ok(plan(content, false));
    }
    let template = window_substitute(snapshot, message, account, &content, lang)?;
    let header_media = header_media_for(template, message, account, lang)?;
    Ok(plan(
        Content::Template {
            template_id: template.id,
            params: ParamSource::Variables {
                record: message.target_record(),
            },
            header_media,
            filename: non_empty(&message.media_filename),
        },
        true,
    ))
}

/// The header a template needs to carry this free-form content outside the window: a
/// document for a file, an image for an image, anything for a text.
fn required_header(content: &Content) -> Option<&'static str> {
    match content {
        Content::Media {
            kind: MediaKind::Document,
            ..
        } => Some("document"),
        Content::Media {
            kind: MediaKind::Image,
            ..
        } => Some("image"),
        _ => None,
    }
}

/// The account template that replaces free-form `content` outside the 24-hour window (see the
/// module's rules), or why there is none.
fn window_substitute<'a>(
    snapshot: &'a Snapshot,
    message: &Message,
    account: &Account,
    content: &Content,
    lang: Lang,
) -> Result<&'a Template, GateFailure> {
    let needed = required_header(content);
    let (template_id, setting) = match needed {
        // The trigger's own template when it carries a document, else the documents' one.
        Some("document") => match account.trigger_template(&message.trigger) {
            Some((Some(id), setting))
                if snapshot
                    .templates
                    .get(&id)
                    .is_some_and(|t| t.header_type == "document") =>
            {
                (Some(id), setting)
            }
            _ => (account.template_document_id, DOCUMENT_TEMPLATE),
        },
        _ => account.window_template(&message.trigger),
    };
    let label = setting.label(lang);
    let Some(template_id) = template_id else {
        return Err(GateFailure::new(
            GateKind::WindowClosed,
            missing_setting_help(account, needed, label, lang),
        ));
    };
    let template =
        usable_template(snapshot, template_id, account, lang).map_err(|f| GateFailure {
            help: tr!(
                lang,
                "Outside the 24-hour window the account's '{label}' is used instead, but: {}",
                "Hors de la fenêtre de 24 heures, le « {label} » du compte est utilisé à la \
                 place, mais : {}",
                f.help
            ),
            ..f
        })?;
    if let Some(header) = needed {
        if template.header_type != header {
            return Err(GateFailure::new(
                GateKind::WindowClosed,
                wrong_header_help(account, template, &setting, header, lang),
            ));
        }
    }
    Ok(template)
}

fn missing_setting_help(
    account: &Account,
    needed: Option<&str>,
    label: &str,
    lang: Lang,
) -> String {
    let name = &account.name;
    match needed {
        Some("document") => tr!(
            lang,
            "The customer has not written in the last 24 hours, so WhatsApp only accepts an \
             approved template, and a file can only go in the header of a template made for \
             documents: set '{label}' on the WhatsApp account {name} (an approved template whose \
             header is a document; the file goes in it), or send the file once the customer \
             writes. Nothing was sent.",
            "Le client n'a pas écrit dans les dernières 24 heures, WhatsApp n'accepte donc qu'un \
             modèle approuvé, et un fichier ne peut partir que dans l'en-tête d'un modèle prévu \
             pour les documents : renseignez « {label} » sur le compte WhatsApp {name} (un \
             modèle approuvé dont l'en-tête est un document ; le fichier y est placé), ou \
             envoyez le fichier quand le client aura écrit. Rien n'a été envoyé."
        ),
        Some(_) => tr!(
            lang,
            "The customer has not written in the last 24 hours, so WhatsApp only accepts an \
             approved template, and an image can only go in the header of a template whose \
             header is an image: set '{label}' on the WhatsApp account {name} to such a \
             template, or send the image once the customer writes. Nothing was sent.",
            "Le client n'a pas écrit dans les dernières 24 heures, WhatsApp n'accepte donc qu'un \
             modèle approuvé, et une image ne peut partir que dans l'en-tête d'un modèle dont \
             l'en-tête est une image : choisissez un tel modèle comme « {label} » sur le compte \
             WhatsApp {name}, ou envoyez l'image quand le client aura écrit. Rien n'a été \
             envoyé."
        ),
        None => tr!(
            lang,
            "The customer has not written in the last 24 hours, so WhatsApp only accepts an \
             approved template, and the WhatsApp account {name} has none for this kind of \
             message: set '{label}' on the account (it is used outside the 24-hour window), \
             or send a template.",
            "Le client n'a pas écrit dans les dernières 24 heures, WhatsApp n'accepte donc qu'un \
             modèle approuvé, et le compte WhatsApp {name} n'en a pas pour ce type de message : \
             renseignez « {label} » sur le compte (il est utilisé hors de la fenêtre de 24 \
             heures), ou envoyez un modèle."
        ),
    }
}

fn wrong_header_help(
    account: &Account,
    template: &Template,
    setting: &Setting,
    needed: &str,
    lang: Lang,
) -> String {
    let (name, label) = (&account.name, setting.label(lang));
    let (tname, tlang) = (&template.name, &template.language);
    let header = match (template.header_type.as_str(), lang) {
        ("none", Lang::En) => "no header".to_owned(),
        ("none", Lang::Fr) => "pas d'en-tête".to_owned(),
        ("image", Lang::En) => "an image header".to_owned(),
        (h, Lang::En) => format!("a {h} header"),
        (h, Lang::Fr) => format!("un en-tête de type {h}"),
    };
    let file = match (needed, lang) {
        ("document", Lang::En) => "the file",
        ("document", Lang::Fr) => "le fichier",
        (_, Lang::En) => "the image",
        (_, Lang::Fr) => "l'image",
    };
    tr!(
        lang,
        "The customer has not written in the last 24 hours, so WhatsApp only accepts an approved \
         template, but the account's '{label}' (template {tname} ({tlang})) has {header}, not a \
         {needed} header, and sending it would leave out {file}: choose as '{label}' on the \
         WhatsApp account {name} an approved template whose header is a {needed}. Nothing was \
         sent.",
        "Le client n'a pas écrit dans les dernières 24 heures, WhatsApp n'accepte donc qu'un \
         modèle approuvé, mais le « {label} » du compte (modèle {tname} ({tlang})) a {header}, \
         pas un en-tête de type {needed}, et l'envoyer laisserait de côté {file} : choisissez \
         comme « {label} » sur le compte WhatsApp {name} un modèle approuvé dont l'en-tête est \
         de type {needed}. Rien n'a été envoyé."
    )
}

fn free_form(message: &Message, lang: Lang) -> Result<Content, GateFailure> {
    let body = non_empty(&message.body);
    if message.message_type == "text" {
        let body = body.ok_or_else(|| {
            GateFailure::new(
                GateKind::EmptyMessage,
                lang.pick(
                    "The text message is empty: write its text, then retry.",
                    "Le message texte est vide : écrivez son texte, puis réessayez.",
                ),
            )
        })?;
        let preview_url = body.contains("https://") || body.contains("http://");
        return Ok(Content::Text { body, preview_url });
    }
    if message.message_type == "interactive" {
        let json = non_empty(&message.interactive_json).ok_or_else(|| {
            GateFailure::new(
                GateKind::EmptyMessage,
                lang.pick(
                    "The interactive message has no buttons or list (interactive_json is \
                     empty): re-create it from the composer, then retry.",
                    "Le message interactif n'a ni boutons ni liste (interactive_json est vide) : \
                     recréez-le depuis l'assistant d'envoi, puis réessayez.",
                ),
            )
        })?;
        let value: serde_json::Value = serde_json::from_str(&json).map_err(|e| {
            GateFailure::new(
                GateKind::BadContent,
                tr!(
                    lang,
                    "The interactive content is not valid JSON ({e}): re-create the message \
                     from the composer.",
                    "Le contenu interactif n'est pas du JSON valide ({e}) : recréez le message \
                     depuis l'assistant d'envoi."
                ),
            )
        })?;
        if !value.is_object() {
            return Err(GateFailure::new(
                GateKind::BadContent,
                lang.pick(
                    "The interactive content must be a JSON object (Meta's 'interactive' object \
                     with type, body and action): re-create the message from the composer.",
                    "Le contenu interactif doit être un objet JSON (l'objet « interactive » de \
                     Meta avec type, body et action) : recréez le message depuis l'assistant \
                     d'envoi.",
                ),
            ));
        }
        return Ok(Content::Interactive(value));
    }
    if let Some(kind) = MediaKind::from_type(&message.message_type) {
        let source = message_media(message, kind == MediaKind::Document).ok_or_else(|| {
            let document = kind == MediaKind::Document;
            GateFailure::new(
                GateKind::NoMedia,
                match lang {
                    Lang::En => format!(
                        "The {} message has no file: attach one, give a media URL{}, then retry.",
                        kind.as_str(),
                        if document {
                            ", or a report of the document"
                        } else {
                            ""
                        }
                    ),
                    Lang::Fr => format!(
                        "Le message de type {} n'a pas de fichier : joignez-en un, donnez une URL \
                         de média{}, puis réessayez.",
                        kind.as_str(),
                        if document {
                            " ou un rapport du document"
                        } else {
                            ""
                        }
                    ),
                },
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
        tr!(
            lang,
            "The daemon does not send messages of type '{}': use a text, template, image, \
             document or interactive message.",
            "Le démon n'envoie pas les messages de type « {} » : utilisez un message texte, \
             modèle, image, document ou interactif.",
            message.message_type
        ),
    ))
}

#[cfg(test)]
mod tests;
