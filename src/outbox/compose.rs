//! From a plan to the Cloud API request, and from the Cloud API's answer to an outcome; pure.
//!
//! - [`meta_template`] reads an Odoo `whatsapp.template` as the client's `MessageTemplate`
//!   (Meta's components as synced), [`template_payload`] fills it with the rendered parameters
//!   and checks them with the client's `check_params` (count, names, header type, buttons), so a
//!   template that does not fit fails here with plain words, never as a 132000 from Meta;
//! - [`outbound`] builds the whole request (content, reply context, callback data) with the
//!   client's payload builders, which check Meta's limits;
//! - [`rendered_text`] is the text a template shows the customer with its parameters filled
//!   in (header text and body), which the record keeps when an account template replaced what
//!   was typed;
//! - [`after_send_error`] turns a failed send into the message's [`Outcome`] and the
//!   [`Effect`] on the account (slow down, hold a recipient, pause the account).

use super::gate::{GateFailure, GateKind, MediaKind, ParamValue, TemplateParams};
use super::model::Template;
use super::retry::{RetryDecision, RetryPolicy};
use super::writeback::{callback_data, About, ErrorInfo, Outcome};
use crate::lang::Lang;
use crate::whatsapp::payload::{self, Document, Image, Interactive, Parameter, Text, Video};
use crate::whatsapp::templates::{ButtonKind, HeaderFormat, MessageTemplate, ParameterFormat};
use crate::whatsapp::{check_params, Disposition, OutboundMessage, WhatsAppError};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

/// A media file as the request names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MediaRef {
    /// Uploaded to Meta.
    Id(String),
    /// A public HTTPS link.
    Link(String),
}

/// Content whose media and parameters are resolved.
#[derive(Debug, Clone, PartialEq)]
pub enum Ready<'a> {
    Text {
        body: &'a str,
        preview_url: bool,
    },
    Media {
        kind: MediaKind,
        media: MediaRef,
        caption: Option<&'a str>,
        filename: Option<&'a str>,
    },
    Interactive(&'a Value),
    Template {
        template: &'a Template,
        params: &'a TemplateParams,
        header_media: Option<MediaRef>,
        filename: Option<&'a str>,
    },
}

fn params_failure(template: &Template, problem: impl std::fmt::Display, lang: Lang) -> GateFailure {
    GateFailure::new(
        GateKind::TemplateParams,
        tr!(
            lang,
            "Template {} ({}) does not fit this message: {problem}. Check the template's \
             variables in WhatsApp > Templates (and 'Sync templates' on the account if the \
             template changed at Meta).",
            "Le modèle {} ({}) ne convient pas à ce message : {problem}. Vérifiez les variables \
             du modèle dans WhatsApp > Modèles (et « Synchroniser les modèles » sur le compte si \
             le modèle a changé chez Meta).",
            template.name,
            template.language
        ),
    )
}

/// The template as the Cloud API client models it, from the synced record.
pub fn meta_template(template: &Template, lang: Lang) -> Result<MessageTemplate, GateFailure> {
    let components: Value = match template.components_json.as_deref().map(str::trim) {
        None | Some("") => json!([]),
        Some(text) => serde_json::from_str(text).map_err(|e| {
            let problem = tr!(
                lang,
                "its components are not valid JSON ({e}); run 'Sync templates'",
                "ses composants ne sont pas du JSON valide ({e}) ; lancez « Synchroniser les \
                 modèles »"
            );
            params_failure(template, problem, lang)
        })?,
    };
    let entry = json!({
        "name": template.name,
        "language": template.language,
        "status": template.status.to_ascii_uppercase(),
        "parameter_format": template.parameter_format.to_ascii_uppercase(),
        "components": components,
    });
    MessageTemplate::from_json(&entry).map_err(|e| params_failure(template, e, lang))
}

/// Fills the `{{…}}` variables of `text` with `values`: `{{1}}` takes the value named `1`
/// (else the first), a named variable the value of that name. A variable without a value stays
/// as it is.
fn fill(text: &str, values: &[&ParamValue]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            out.push_str(&rest[start..]);
            return out;
        };
        let name = after[..end].trim();
        let by_name = values.iter().find(|p| p.name.trim() == name);
        let by_position = name
            .parse::<usize>()
            .ok()
            .filter(|n| *n >= 1)
            .and_then(|n| values.get(n - 1));
        match by_name.or(by_position) {
            Some(p) => out.push_str(&p.value),
            None => out.push_str(&rest[start..start + 2 + end + 2]),
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

/// What the customer reads of a template sent with `params`: its text header and its body with
/// the parameters filled in, separated by a blank line. `None` when the template's components
/// hold no text (not synced).
pub fn rendered_text(template: &Template, params: &TemplateParams) -> Option<String> {
    let meta = meta_template(template, Lang::En).ok()?;
    let header = meta
        .header
        .as_ref()
        .filter(|h| h.format == HeaderFormat::Text)
        .and_then(|h| h.text.as_deref())
        .map(|t| fill(t, &params.header.iter().collect::<Vec<_>>()));
    let body = meta
        .body
        .as_ref()
        .map(|b| fill(&b.text, &positional_order(params)));
    let parts: Vec<String> = [header, body]
        .into_iter()
        .flatten()
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
        .collect();
    (!parts.is_empty()).then(|| parts.join("\n\n"))
}

fn header_media_parameter(
    format: &HeaderFormat,
    media: MediaRef,
    filename: Option<&str>,
) -> Option<Parameter> {
    Some(match (format, media) {
        (HeaderFormat::Image, MediaRef::Id(id)) => Parameter::Image {
            image: Image::id(id),
        },
        (HeaderFormat::Image, MediaRef::Link(l)) => Parameter::Image {
            image: Image::link(l),
        },
        (HeaderFormat::Video, MediaRef::Id(id)) => Parameter::Video {
            video: Video::id(id),
        },
        (HeaderFormat::Video, MediaRef::Link(l)) => Parameter::Video {
            video: Video::link(l),
        },
        (HeaderFormat::Document, media) => {
            let mut d = match media {
                MediaRef::Id(id) => Document::id(id),
                MediaRef::Link(l) => Document::link(l),
            };
            if let Some(f) = filename {
                d = d.with_filename(f);
            }
            Parameter::Document { document: d }
        }
        _ => return None,
    })
}

fn positional_order(params: &TemplateParams) -> Vec<&ParamValue> {
    let mut body: Vec<&ParamValue> = params.body.iter().collect();
    // `{{1}}`, `{{2}}`...: by number when every name is one, else as given.
    if body.iter().all(|p| p.name.trim().parse::<u32>().is_ok()) {
        body.sort_by_key(|p| p.name.trim().parse::<u32>().unwrap_or(u32::MAX));
    }
    body
}

/// The template part of the request, checked against the template's definition.
pub fn template_payload(
    template: &Template,
    params: &TemplateParams,
    header_media: Option<MediaRef>,
    filename: Option<&str>,
    lang: Lang,
) -> Result<payload::Template, GateFailure> {
    let meta = meta_template(template, lang)?;
    let named = meta.parameter_format == ParameterFormat::Named;
    let text_param = |name: &str, value: &str| {
        if named {
            Parameter::named_text(name.trim(), value)
        } else {
            Parameter::text(value)
        }
    };
    let mut out = payload::Template::new(&template.name, &template.language);
    if let Some(header) = &meta.header {
        if header.format == HeaderFormat::Text {
            if let Some(p) = params.header.first() {
                out = out.with_header(text_param(&p.name, &p.value));
            }
        } else if let Some(media) = header_media {
            if let Some(p) = header_media_parameter(&header.format, media, filename) {
                out = out.with_header(p);
            }
        }
    }
    for p in positional_order(params) {
        out = out.with_body_parameter(text_param(&p.name, &p.value));
    }
    for b in &params.buttons {
        let index = u8::try_from(b.index).map_err(|_| {
            let problem = tr!(
                lang,
                "button index {} is too large",
                "l'index de bouton {} est trop grand",
                b.index
            );
            params_failure(template, problem, lang)
        })?;
        let kind = meta
            .buttons
            .iter()
            .find(|x| x.index == b.index as usize)
            .map(|x| &x.kind);
        out = match kind {
            Some(ButtonKind::QuickReply) => out.with_quick_reply(index, &b.value),
            Some(ButtonKind::Url) => out.with_url_button(index, &b.value),
            Some(other) => {
                let problem = tr!(
                    lang,
                    "button {} is a {} button, which takes no value from the daemon",
                    "le bouton {} est un bouton {}, qui ne prend pas de valeur du démon",
                    b.index,
                    other.as_str()
                );
                return Err(params_failure(template, problem, lang));
            }
            None => {
                let problem = tr!(
                    lang,
                    "it has no button at position {}",
                    "il n'a pas de bouton à la position {}",
                    b.index
                );
                return Err(params_failure(template, problem, lang));
            }
        };
    }
    check_params(&meta, &out).map_err(|e| params_failure(template, e.problem, lang))?;
    Ok(out)
}

fn content_failure(e: impl std::fmt::Display, lang: Lang) -> GateFailure {
    GateFailure::new(
        GateKind::BadContent,
        tr!(
            lang,
            "The message breaks a WhatsApp limit and was not sent: {e}. Change it and retry.",
            "Le message dépasse une limite de WhatsApp et n'a pas été envoyé : {e}. Modifiez-le \
             et réessayez."
        ),
    )
}

/// The whole request for one message (`lang`: the language of the failure texts).
pub fn outbound(
    message_id: i64,
    to: &str,
    content: Ready<'_>,
    reply_to: Option<&str>,
    lang: Lang,
) -> Result<OutboundMessage, GateFailure> {
    let content: payload::MessageContent = match content {
        Ready::Text { body, preview_url } => Text::new(body).with_preview(preview_url).into(),
        Ready::Media {
            kind: MediaKind::Image,
            media,
            caption,
            ..
        } => {
            let mut image = match media {
                MediaRef::Id(id) => Image::id(id),
                MediaRef::Link(l) => Image::link(l),
            };
            if let Some(c) = caption {
                image = image.with_caption(c);
            }
            image.into()
        }
        Ready::Media {
            kind: MediaKind::Document,
            media,
            caption,
            filename,
        } => {
            let mut document = match media {
                MediaRef::Id(id) => Document::id(id),
                MediaRef::Link(l) => Document::link(l),
            };
            if let Some(f) = filename {
                document = document.with_filename(f);
            }
            if let Some(c) = caption {
                document = document.with_caption(c);
            }
            document.into()
        }
        Ready::Interactive(value) => serde_json::from_value::<Interactive>(value.clone())
            .map_err(|e| {
                GateFailure::new(
                    GateKind::BadContent,
                    tr!(
                        lang,
                        "The interactive content is not Meta's interactive object ({e}): \
                         re-create the message from the composer.",
                        "Le contenu interactif n'est pas l'objet « interactive » de Meta ({e}) : \
                         recréez le message depuis l'assistant d'envoi."
                    ),
                )
            })?
            .into(),
        Ready::Template {
            template,
            params,
            header_media,
            filename,
        } => template_payload(template, params, header_media, filename, lang)?.into(),
    };
    let mut message = OutboundMessage::new(to, content).map_err(|e| content_failure(e, lang))?;
    if let Some(wamid) = reply_to {
        message = message
            .reply_to(wamid)
            .map_err(|e| content_failure(e, lang))?;
    }
    message
        .callback_data(callback_data(message_id))
        .map_err(|e| content_failure(e, lang))
}

/// What a failed send does to the account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    None,
    /// 130429: the number sends too fast.
    SlowDown,
    /// 131056: this recipient got too many messages.
    HoldRecipient,
    /// Token, permission or account problem: stop sending from this account.
    PauseAccount {
        reason: String,
    },
}

/// The error fields stored for a Cloud API error, the help in `lang`.
pub fn error_info(err: &WhatsAppError, lang: Lang) -> ErrorInfo {
    let (code, title) = match err {
        WhatsAppError::Meta { error, .. } => (error.code.to_string(), error.display_title()),
        WhatsAppError::Transport { .. } => ("network".into(), "Graph API unreachable".into()),
        WhatsAppError::Http { status, .. } => (
            format!("http_{status}"),
            format!("HTTP {status} from the Graph API"),
        ),
        WhatsAppError::Decode { .. } => ("bad_answer".into(), "Unexpected answer".into()),
        WhatsAppError::Payload(_) => ("payload".into(), "Message breaks a limit".into()),
        WhatsAppError::Media(_) => ("media".into(), "Media not accepted".into()),
        WhatsAppError::Config(_) => ("account_config".into(), "Account settings".into()),
    };
    let meta = err.meta();
    ErrorInfo {
        code,
        title,
        details: meta.and_then(|m| m.details()).map(str::to_owned),
        help: err.help_in(lang),
        raw: meta.map(|m| m.to_response_body().to_string()),
    }
}

/// True when Meta may have accepted the send although the answer says nothing of it.
pub fn is_ambiguous(err: &WhatsAppError) -> bool {
    matches!(
        err,
        WhatsAppError::Transport {
            may_have_reached_meta: true,
            ..
        } | WhatsAppError::Decode { .. }
    )
}

/// The message this decision is about.
#[derive(Debug, Clone)]
pub struct Attempt {
    pub id: i64,
    pub attempt_count: u32,
    /// Its recipient, source, language and links, as a failure records them.
    pub about: About,
}

/// The outcome of a failed send and its effect on the account.
pub fn after_send_error(
    err: &WhatsAppError,
    attempt: &Attempt,
    policy: &RetryPolicy,
    now: DateTime<Utc>,
) -> (Outcome, Effect) {
    if is_ambiguous(err) {
        return (Outcome::Unknown { id: attempt.id }, Effect::None);
    }
    let lang = attempt.about.lang;
    let info = error_info(err, lang);
    let effect = match err.code() {
        Some(130429) => Effect::SlowDown,
        Some(131056) => Effect::HoldRecipient,
        _ => Effect::None,
    };
    match err.disposition() {
        Disposition::PauseAccount => (
            Outcome::Requeue {
                id: attempt.id,
                next_attempt_at: None,
            },
            Effect::PauseAccount {
                reason: format!("{}: {}", info.title, info.help),
            },
        ),
        Disposition::Never => (
            Outcome::Failed {
                id: attempt.id,
                error: info,
                about: attempt.about.clone(),
            },
            effect,
        ),
        Disposition::RetryNow | Disposition::RetryLater | Disposition::RetryRecipientLater => {
            match policy.decide(attempt.attempt_count, err.retry_after(), now) {
                RetryDecision::Retry {
                    attempt_count,
                    next_attempt_at,
                } => (
                    Outcome::Retry {
                        id: attempt.id,
                        attempt_count,
                        next_attempt_at,
                        error: info,
                    },
                    effect,
                ),
                RetryDecision::GiveUp { attempt_count } => {
                    let help = policy.give_up_help(attempt_count, &info.help, lang);
                    (
                        Outcome::Failed {
                            id: attempt.id,
                            error: ErrorInfo { help, ..info },
                            about: attempt.about.clone(),
                        },
                        effect,
                    )
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
