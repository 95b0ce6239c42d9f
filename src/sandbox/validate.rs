//! Validation of `POST /{phone-number-id}/messages` bodies, as Meta validates them. Pure
//! functions: JSON in, a [`ValidSend`] or the [`GraphError`] Meta would answer out.
//!
//! Which code for which mistake (Meta's own split, as far as the fact sheet and public error
//! samples show it):
//! - `100` Invalid parameter: not JSON, a missing or mistyped field, an unknown `type`, a text or
//!   caption past its length (`Param text['body'] must be at most 4096 characters long.`), both
//!   or neither of `id`/`link`, `biz_opaque_callback_data` over 512 characters, a template text
//!   parameter with a new line, a tab or more than 4 spaces in a row;
//! - `131009` Parameter value is not valid: the interactive limits (1–3 buttons, titles 1–20
//!   characters and unique, ids ≤ 256 without surrounding spaces, ≤ 10 sections, ≤ 10 rows in all,
//!   row title ≤ 24, description ≤ 72, row id ≤ 200, list button ≤ 20, footer ≤ 60, header rules);
//! - `131008` Required parameter is missing: an empty template text parameter;
//! - `132001` template unknown in that language or not approved, `132015` paused, `132016`
//!   disabled, `132000` parameter count or names do not match, `132012` a parameter of the wrong
//!   format (header media type), `132005` the filled-in body past 1024 characters or a header
//!   text parameter past 60.

use super::error::GraphError;
use super::templates::{HeaderSpec, Params, TemplateSpec};
use crate::whatsapp::payload::{
    BUTTON_ID_MAX, BUTTON_TITLE_MAX, CALLBACK_DATA_MAX, CAPTION_MAX, FOOTER_MAX, HEADER_TEXT_MAX,
    INTERACTIVE_BODY_MAX, LIST_BUTTON_MAX, LIST_ROWS_MAX, LIST_SECTIONS_MAX, PHONE_DIGITS_MAX,
    REPLY_BUTTONS_MAX, ROW_DESCRIPTION_MAX, ROW_ID_MAX, ROW_TITLE_MAX, SECTION_TITLE_MAX,
    TEXT_BODY_MAX,
};
use serde_json::{Map, Value};
use std::collections::HashSet;
use std::sync::Arc;

/// A send that passed validation.
#[derive(Debug, Clone)]
pub struct ValidSend {
    /// `to` exactly as sent (echoed as `contacts[0].input`).
    pub input: String,
    /// The recipient's digits (`contacts[0].wa_id`).
    pub wa_id: String,
    /// The message type (`text`, `template`, `interactive`, ...).
    pub kind: String,
    /// `biz_opaque_callback_data`, echoed in status webhooks.
    pub callback_data: Option<String>,
    /// For template sends, the template.
    pub template: Option<Arc<TemplateSpec>>,
    /// Uploaded media ids the message refers to, with the media type it uses them as.
    pub media_ids: Vec<(String, String)>,
    /// `context.message_id`, when the message quotes another.
    pub reply_to: Option<String>,
}

impl ValidSend {
    /// Free-form messages (everything but templates) need an open 24-hour window.
    pub fn is_free_form(&self) -> bool {
        self.template.is_none()
    }

    /// The pricing category of the `pricing` object (`service` for free-form messages).
    pub fn pricing_category(&self) -> String {
        match &self.template {
            Some(t) => t.category.to_ascii_lowercase(),
            None => "service".to_string(),
        }
    }
}

/// What the validation needs to know about the sending number.
pub struct SendContext<'a> {
    /// The sending number's display digits (a send to itself is refused with 131021).
    pub business_digits: &'a str,
    /// Looks a template up by name and language in the number's WABA.
    pub find_template: &'a dyn Fn(&str, &str) -> Option<Arc<TemplateSpec>>,
    /// The languages a template name exists in (for the 132001 details).
    pub template_languages: &'a dyn Fn(&str) -> Vec<String>,
}

type Check<T = ()> = Result<T, GraphError>;

/// The message types Meta accepts.
const TYPES: &[&str] = &[
    "audio",
    "contacts",
    "document",
    "image",
    "interactive",
    "location",
    "reaction",
    "sticker",
    "template",
    "text",
    "video",
];

/// The interactive types Meta accepts.
const INTERACTIVE_TYPES: &[&str] = &[
    "button",
    "list",
    "cta_url",
    "flow",
    "product",
    "product_list",
    "catalog_message",
    "location_request_message",
    "call_permission_request",
    "voice_call",
];

/// Normalises a recipient number to its digits: an optional leading `+`, then 7 to 15 digits.
pub fn normalise_recipient(to: &str) -> Option<String> {
    let digits = to.trim().strip_prefix('+').unwrap_or(to.trim());
    if (7..=PHONE_DIGITS_MAX).contains(&digits.len())
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0')
    {
        Some(digits.to_string())
    } else {
        None
    }
}

/// Validates a send body.
pub fn validate_send(body: &[u8], ctx: &SendContext<'_>) -> Check<ValidSend> {
    let value: Value = serde_json::from_slice(body).map_err(|e| {
        GraphError::invalid_parameter(format!("The request body is not valid JSON: {e}"))
    })?;
    let root = value
        .as_object()
        .ok_or_else(|| GraphError::invalid_parameter("The request body must be a JSON object."))?;

    match root.get("messaging_product") {
        None => {
            return Err(GraphError::invalid_parameter(
                "The parameter messaging_product is required.",
            ))
        }
        Some(Value::String(p)) if p == "whatsapp" => {}
        Some(other) => {
            return Err(GraphError::invalid_parameter(format!(
                "Param messaging_product must be one of {{WHATSAPP}} - got {other}."
            )))
        }
    }
    if let Some(kind) = root.get("recipient_type") {
        if kind.as_str() != Some("individual") {
            return Err(GraphError::invalid_parameter(format!(
                "Param recipient_type must be one of {{INDIVIDUAL}} - got {kind}."
            )));
        }
    }
    let input = match root.get("to") {
        None => {
            return Err(GraphError::invalid_parameter(
                "The parameter to is required.",
            ))
        }
        Some(Value::String(s)) => s.clone(),
        Some(_) => return Err(GraphError::invalid_parameter("Param to must be a string.")),
    };
    let wa_id = normalise_recipient(&input).ok_or_else(|| {
        GraphError::invalid_parameter(format!(
            "Param to must be a phone number with its country code, digits with an optional leading + (got {input:?})."
        ))
    })?;
    if wa_id == ctx.business_digits {
        return Err(GraphError::recipient_is_sender());
    }

    let callback_data = match root.get("biz_opaque_callback_data") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => {
            max_len(s, CALLBACK_DATA_MAX, "biz_opaque_callback_data")?;
            Some(s.clone())
        }
        Some(_) => {
            return Err(GraphError::invalid_parameter(
                "Param biz_opaque_callback_data must be a string.",
            ))
        }
    };

    let reply_to = match root.get("context") {
        None | Some(Value::Null) => None,
        Some(context) => {
            let context = object(context, "context")?;
            Some(required_str(context, "message_id", "context['message_id']")?.to_string())
        }
    };

    let kind = match root.get("type") {
        None => "text".to_string(),
        Some(Value::String(t)) if TYPES.contains(&t.as_str()) => t.clone(),
        Some(other) => {
            return Err(GraphError::invalid_parameter(format!(
                "Param type must be one of {{{}}} - got {other}.",
                TYPES.join(", ").to_ascii_uppercase()
            )))
        }
    };
    let content = root.get(&kind).ok_or_else(|| {
        GraphError::invalid_parameter(format!("The parameter {kind} is required."))
    })?;

    let mut send = ValidSend {
        input,
        wa_id,
        kind: kind.clone(),
        callback_data,
        template: None,
        media_ids: Vec::new(),
        reply_to,
    };
    match kind.as_str() {
        "text" => text(content)?,
        "image" | "video" | "document" | "audio" | "sticker" => {
            media(content, &kind, &kind, &mut send.media_ids, true)?;
        }
        "template" => send.template = Some(template(content, ctx, &mut send.media_ids)?),
        "interactive" => interactive(content, &mut send.media_ids)?,
        "reaction" => {
            let reaction = object(content, "reaction")?;
            required_str(reaction, "message_id", "reaction['message_id']")?;
            match reaction.get("emoji") {
                Some(Value::String(_)) => {}
                _ => {
                    return Err(GraphError::invalid_parameter(
                        "The parameter reaction['emoji'] is required.",
                    ))
                }
            }
        }
        "location" => {
            let location = object(content, "location")?;
            for key in ["latitude", "longitude"] {
                match location.get(key) {
                    Some(v)
                        if v.is_number()
                            || v.as_str().is_some_and(|s| s.parse::<f64>().is_ok()) => {}
                    _ => {
                        return Err(GraphError::invalid_parameter(format!(
                            "The parameter location['{key}'] is required and must be a number."
                        )))
                    }
                }
            }
        }
        "contacts" => {
            if content.as_array().is_none_or(|a| a.is_empty()) {
                return Err(GraphError::invalid_parameter(
                    "Param contacts must be a non-empty array.",
                ));
            }
        }
        _ => unreachable_type(&kind)?,
    }
    Ok(send)
}

fn unreachable_type(kind: &str) -> Check {
    Err(GraphError::invalid_parameter(format!(
        "Unsupported message type {kind}."
    )))
}

fn object<'a>(value: &'a Value, path: &str) -> Check<&'a Map<String, Value>> {
    value.as_object().ok_or_else(|| {
        GraphError::invalid_parameter(format!("Param {path} must be a JSON object."))
    })
}

fn required_str<'a>(map: &'a Map<String, Value>, key: &str, path: &str) -> Check<&'a str> {
    match map.get(key) {
        None | Some(Value::Null) => Err(GraphError::invalid_parameter(format!(
            "The parameter {path} is required."
        ))),
        Some(Value::String(s)) => Ok(s),
        Some(_) => Err(GraphError::invalid_parameter(format!(
            "Param {path} must be a string."
        ))),
    }
}

fn optional_str<'a>(map: &'a Map<String, Value>, key: &str, path: &str) -> Check<Option<&'a str>> {
    match map.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(GraphError::invalid_parameter(format!(
            "Param {path} must be a string."
        ))),
    }
}

fn chars(s: &str) -> usize {
    s.chars().count()
}

fn max_len(s: &str, max: usize, path: &str) -> Check {
    if chars(s) > max {
        Err(GraphError::invalid_parameter(format!(
            "Param {path} must be at most {max} characters long."
        )))
    } else {
        Ok(())
    }
}

fn text(content: &Value) -> Check {
    let text = object(content, "text")?;
    let body = required_str(text, "body", "text['body']")?;
    if body.is_empty() {
        return Err(GraphError::invalid_parameter(
            "Param text['body'] must be at least 1 character long.",
        ));
    }
    max_len(body, TEXT_BODY_MAX, "text['body']")?;
    match text.get("preview_url") {
        None | Some(Value::Bool(_)) | Some(Value::Null) => Ok(()),
        Some(_) => Err(GraphError::invalid_parameter(
            "Param text['preview_url'] must be a boolean.",
        )),
    }
}

/// A media object (`{id|link, caption?, filename?}`), as a message or as a header.
fn media(
    content: &Value,
    kind: &str,
    path: &str,
    media_ids: &mut Vec<(String, String)>,
    captioned: bool,
) -> Check {
    let media = object(content, path)?;
    let id = optional_str(media, "id", &format!("{path}['id']"))?;
    let link = optional_str(media, "link", &format!("{path}['link']"))?;
    match (id, link) {
        (Some(_), Some(_)) => {
            return Err(GraphError::invalid_parameter(format!(
                "Param {path} must have either an id or a link, not both."
            )))
        }
        (None, None) => {
            return Err(GraphError::invalid_parameter(format!(
                "Param {path} must have an id (an uploaded media id) or a link (an https URL)."
            )))
        }
        (Some(id), None) => {
            if id.trim().is_empty() {
                return Err(GraphError::invalid_parameter(format!(
                    "Param {path}['id'] must not be empty."
                )));
            }
            media_ids.push((id.to_string(), kind.to_string()));
        }
        (None, Some(link)) => match url::Url::parse(link) {
            Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {}
            _ => {
                return Err(GraphError::invalid_parameter(format!(
                    "Param {path}['link'] must be a valid http(s) URL (got {link:?})."
                )))
            }
        },
    }
    if captioned && matches!(kind, "image" | "video" | "document") {
        if let Some(caption) = optional_str(media, "caption", &format!("{path}['caption']"))? {
            max_len(caption, CAPTION_MAX, &format!("{path}['caption']"))?;
        }
    }
    if kind == "document" {
        optional_str(media, "filename", &format!("{path}['filename']"))?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Interactive

fn invalid(details: impl Into<String>) -> GraphError {
    GraphError::invalid_value(details)
}

fn limit(s: &str, min: usize, max: usize, what: &str) -> Check {
    let n = chars(s);
    if n < min || n > max {
        Err(invalid(format!(
            "{what} length invalid. Min length: {min}, Max length: {max}. Got {n}."
        )))
    } else {
        Ok(())
    }
}

fn interactive(content: &Value, media_ids: &mut Vec<(String, String)>) -> Check {
    let interactive = object(content, "interactive")?;
    let kind = required_str(interactive, "type", "interactive['type']")?;
    if !INTERACTIVE_TYPES.contains(&kind) {
        return Err(GraphError::invalid_parameter(format!(
            "Param interactive['type'] must be one of {{{}}} - got \"{kind}\".",
            INTERACTIVE_TYPES.join(", ").to_ascii_uppercase()
        )));
    }
    let body_required = !matches!(kind, "product" | "flow");
    match interactive.get("body") {
        None if body_required => {
            return Err(GraphError::invalid_parameter(
                "The parameter interactive['body'] is required.",
            ));
        }
        None => {}
        Some(body) => {
            let body = object(body, "interactive['body']")?;
            let text = required_str(body, "text", "interactive['body']['text']")?;
            // Lists: 4096 in some of Meta's references, 1024 in others (the fact sheet); the
            // sandbox takes the larger, the client never sends more than the smaller.
            let max = if kind == "list" {
                TEXT_BODY_MAX
            } else {
                INTERACTIVE_BODY_MAX
            };
            limit(text, 1, max, "Body text")?;
        }
    }
    if let Some(footer) = interactive.get("footer") {
        let footer = object(footer, "interactive['footer']")?;
        let text = required_str(footer, "text", "interactive['footer']['text']")?;
        limit(text, 1, FOOTER_MAX, "Footer text")?;
    }
    if let Some(header) = interactive.get("header") {
        let header = object(header, "interactive['header']")?;
        let header_type = required_str(header, "type", "interactive['header']['type']")?;
        match header_type {
            "text" => {
                let text = required_str(header, "text", "interactive['header']['text']")?;
                limit(text, 1, HEADER_TEXT_MAX, "Header text")?;
            }
            "image" | "video" | "document" if kind != "list" => {
                let content = header.get(header_type).ok_or_else(|| {
                    GraphError::invalid_parameter(format!(
                        "The parameter interactive['header']['{header_type}'] is required."
                    ))
                })?;
                media(
                    content,
                    header_type,
                    &format!("interactive['header']['{header_type}']"),
                    media_ids,
                    false,
                )?;
            }
            other if kind == "list" => {
                return Err(invalid(format!(
                    "Header type must be text for list messages (got {other})."
                )))
            }
            other => {
                return Err(invalid(format!(
                    "Header type must be one of text, image, video, document (got {other})."
                )))
            }
        }
    }
    let action = interactive.get("action").ok_or_else(|| {
        GraphError::invalid_parameter("The parameter interactive['action'] is required.")
    })?;
    let action = object(action, "interactive['action']")?;
    match kind {
        "button" => reply_buttons(action),
        "list" => list(action),
        _ => Ok(()),
    }
}

fn reply_buttons(action: &Map<String, Value>) -> Check {
    let buttons = action
        .get("buttons")
        .and_then(Value::as_array)
        .ok_or_else(|| {
            GraphError::invalid_parameter(
                "The parameter interactive['action']['buttons'] is required.",
            )
        })?;
    if buttons.is_empty() || buttons.len() > REPLY_BUTTONS_MAX {
        return Err(invalid(format!(
            "Buttons count invalid. Min: 1, Max: 3. Got {}.",
            buttons.len()
        )));
    }
    let mut ids = HashSet::new();
    let mut titles = HashSet::new();
    for (i, button) in buttons.iter().enumerate() {
        let path = format!("interactive['action']['buttons'][{i}]");
        let button = object(button, &path)?;
        match button.get("type").and_then(Value::as_str) {
            Some("reply") => {}
            _ => return Err(invalid(format!("{path}['type'] must be \"reply\"."))),
        }
        let reply = button.get("reply").ok_or_else(|| {
            GraphError::invalid_parameter(format!("The parameter {path}['reply'] is required."))
        })?;
        let reply = object(reply, &format!("{path}['reply']"))?;
        let id = required_str(reply, "id", &format!("{path}['reply']['id']"))?;
        let title = required_str(reply, "title", &format!("{path}['reply']['title']"))?;
        limit(title, 1, BUTTON_TITLE_MAX, "Button title")?;
        limit(id, 1, BUTTON_ID_MAX, "Button id")?;
        if id.trim() != id {
            return Err(invalid(format!(
                "Button id {id:?} must not start or end with spaces."
            )));
        }
        if !ids.insert(id) {
            return Err(invalid(format!(
                "Duplicate button id {id:?}: button ids must be unique."
            )));
        }
        if !titles.insert(title) {
            return Err(invalid(format!(
                "Duplicate button title {title:?}: button titles must be unique."
            )));
        }
    }
    Ok(())
}

fn list(action: &Map<String, Value>) -> Check {
    let button = required_str(action, "button", "interactive['action']['button']")?;
    limit(button, 1, LIST_BUTTON_MAX, "Button label")?;
    let sections = action
        .get("sections")
        .and_then(Value::as_array)
        .ok_or_else(|| {
            GraphError::invalid_parameter(
                "The parameter interactive['action']['sections'] is required.",
            )
        })?;
    if sections.is_empty() || sections.len() > LIST_SECTIONS_MAX {
        return Err(invalid(format!(
            "Sections count invalid. Min: 1, Max: 10. Got {}.",
            sections.len()
        )));
    }
    let mut rows_total = 0;
    let mut ids = HashSet::new();
    for (s, section) in sections.iter().enumerate() {
        let path = format!("interactive['action']['sections'][{s}]");
        let section = object(section, &path)?;
        match optional_str(section, "title", &format!("{path}['title']"))? {
            Some(title) => limit(title, 1, SECTION_TITLE_MAX, "Section title")?,
            None if sections.len() > 1 => {
                return Err(invalid(format!(
                    "Section title is required when there is more than one section ({path})."
                )))
            }
            None => {}
        }
        let rows = section
            .get("rows")
            .and_then(Value::as_array)
            .ok_or_else(|| {
                GraphError::invalid_parameter(format!("The parameter {path}['rows'] is required."))
            })?;
        if rows.is_empty() {
            return Err(invalid(format!("Rows count invalid in {path}. Min: 1.")));
        }
        rows_total += rows.len();
        for (r, row) in rows.iter().enumerate() {
            let row_path = format!("{path}['rows'][{r}]");
            let row = object(row, &row_path)?;
            let id = required_str(row, "id", &format!("{row_path}['id']"))?;
            let title = required_str(row, "title", &format!("{row_path}['title']"))?;
            limit(id, 1, ROW_ID_MAX, "Row id")?;
            limit(title, 1, ROW_TITLE_MAX, "Row title")?;
            if let Some(description) =
                optional_str(row, "description", &format!("{row_path}['description']"))?
            {
                limit(description, 0, ROW_DESCRIPTION_MAX, "Row description")?;
            }
            if !ids.insert(id) {
                return Err(invalid(format!(
                    "Duplicate row id {id:?}: row ids must be unique."
                )));
            }
        }
    }
    if rows_total > LIST_ROWS_MAX {
        return Err(invalid(format!(
            "Total row count exceed max allowed count: 10. Got {rows_total}."
        )));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Templates

/// A template parameter value after its type checks: the text it fills in.
fn text_parameter(param: &Map<String, Value>, path: &str) -> Check<String> {
    let kind = required_str(param, "type", &format!("{path}['type']"))?;
    match kind {
        "text" => {
            let text = match param.get("text") {
                Some(Value::String(s)) if !s.is_empty() => s.as_str(),
                _ => {
                    return Err(GraphError::missing_parameter(format!(
                        "{path}: Parameter of type text is missing text value"
                    )))
                }
            };
            if text.contains('\n') || text.contains('\t') || text.contains("     ") {
                return Err(GraphError::invalid_parameter(format!(
                    "{path}: Param text cannot have new-line/tab characters or more than 4 consecutive spaces"
                )));
            }
            Ok(text.to_string())
        }
        "currency" | "date_time" => {
            let inner = param.get(kind).ok_or_else(|| {
                GraphError::missing_parameter(format!("{path}: the parameter {kind} is required"))
            })?;
            let inner = object(inner, &format!("{path}['{kind}']"))?;
            let fallback = required_str(
                inner,
                "fallback_value",
                &format!("{path}['{kind}']['fallback_value']"),
            )?;
            if kind == "currency" {
                required_str(inner, "code", &format!("{path}['currency']['code']"))?;
                if !inner.get("amount_1000").is_some_and(Value::is_number) {
                    return Err(GraphError::invalid_parameter(format!(
                        "The parameter {path}['currency']['amount_1000'] is required and must be a number."
                    )));
                }
            }
            Ok(fallback.to_string())
        }
        other => Err(GraphError::template_format_mismatch(format!(
            "{path}: parameter type {other} is not allowed here (use text, currency or date_time)"
        ))),
    }
}

/// Checks a component's text parameters against the template's placeholders and returns the
/// values by placeholder (positional: `"1"`, `"2"`...; named: the names).
fn fill_parameters(
    params: &[Value],
    expected: &Params,
    section: &str,
    path: &str,
) -> Check<Vec<(String, String)>> {
    if params.len() != expected.count() {
        return Err(GraphError::template_param_count(format!(
            "{section}: number of localizable_params ({}) does not match the expected number of params ({})",
            params.len(),
            expected.count()
        )));
    }
    let mut values = Vec::with_capacity(params.len());
    for (i, param) in params.iter().enumerate() {
        let p_path = format!("{path}['parameters'][{i}]");
        let map = object(param, &p_path)?;
        let text = text_parameter(map, &p_path)?;
        let key = match expected {
            Params::Positional(_) => (i + 1).to_string(),
            Params::Named(names) => {
                let name = match map.get("parameter_name") {
                    Some(Value::String(name)) => name,
                    _ => {
                        return Err(GraphError::template_param_count(format!(
                            "{section}: parameter {i} has no parameter_name, but the template uses named parameters ({})",
                            names.join(", ")
                        )))
                    }
                };
                if !names.contains(name) {
                    return Err(GraphError::template_param_count(format!(
                        "{section}: parameter_name {name:?} is not in the template (expected {})",
                        names.join(", ")
                    )));
                }
                if values.iter().any(|(k, _): &(String, String)| k == name) {
                    return Err(GraphError::template_param_count(format!(
                        "{section}: parameter_name {name:?} is given twice"
                    )));
                }
                name.clone()
            }
        };
        values.push((key, text));
    }
    Ok(values)
}

fn fill(text: &str, values: &[(String, String)]) -> String {
    let mut out = text.to_string();
    for (key, value) in values {
        out = out.replace(&format!("{{{{{key}}}}}"), value);
    }
    out
}

fn template(
    content: &Value,
    ctx: &SendContext<'_>,
    media_ids: &mut Vec<(String, String)>,
) -> Check<Arc<TemplateSpec>> {
    let template = object(content, "template")?;
    let name = required_str(template, "name", "template['name']")?;
    let language = template.get("language").ok_or_else(|| {
        GraphError::invalid_parameter("The parameter template['language'] is required.")
    })?;
    let language = object(language, "template['language']")?;
    let code = required_str(language, "code", "template['language']['code']")?;
    if let Some(policy) = optional_str(language, "policy", "template['language']['policy']")? {
        if policy != "deterministic" {
            return Err(GraphError::invalid_parameter(format!(
                "Param template['language']['policy'] must be one of {{DETERMINISTIC}} - got \"{policy}\"."
            )));
        }
    }
    let Some(spec) = (ctx.find_template)(name, code) else {
        let languages = (ctx.template_languages)(name);
        let details = if languages.is_empty() {
            format!("template name ({name}) does not exist in {code}")
        } else {
            format!(
                "template name ({name}) does not exist in {code}; it exists in {}",
                languages.join(", ")
            )
        };
        return Err(GraphError::template_missing(details));
    };
    match spec.status.as_str() {
        "APPROVED" => {}
        "PAUSED" => {
            return Err(GraphError::template_paused(format!(
                "Template {name} ({code}) is paused because of low quality; it can be sent again once it is approved."
            )))
        }
        "DISABLED" => {
            return Err(GraphError::template_disabled(format!(
                "Template {name} ({code}) has been disabled because of low quality."
            )))
        }
        other => {
            return Err(GraphError::template_missing(format!(
                "template name ({name}) in {code} is not approved (status {other})"
            )))
        }
    }

    let components: &[Value] = match template.get("components") {
        None | Some(Value::Null) => &[],
        Some(Value::Array(list)) => list,
        Some(_) => {
            return Err(GraphError::invalid_parameter(
                "Param template['components'] must be an array.",
            ))
        }
    };
    let mut header: Option<(&[Value], String)> = None;
    let mut body: Option<(&[Value], String)> = None;
    let mut buttons: Vec<(usize, &Map<String, Value>, String)> = Vec::new();
    for (i, component) in components.iter().enumerate() {
        let path = format!("template['components'][{i}]");
        let map = object(component, &path)?;
        let kind = required_str(map, "type", &format!("{path}['type']"))?.to_ascii_lowercase();
        let params: &[Value] = match map.get("parameters") {
            None | Some(Value::Null) => &[],
            Some(Value::Array(list)) => list,
            Some(_) => {
                return Err(GraphError::invalid_parameter(format!(
                    "Param {path}['parameters'] must be an array."
                )))
            }
        };
        match kind.as_str() {
            "header" if header.is_none() => header = Some((params, path)),
            "body" if body.is_none() => body = Some((params, path)),
            "header" | "body" => {
                return Err(GraphError::invalid_parameter(format!(
                    "{path}: only one {kind} component is allowed."
                )))
            }
            "button" => {
                let index = match map.get("index") {
                    Some(Value::String(s)) => s.parse::<usize>().ok(),
                    Some(Value::Number(n)) => n.as_u64().map(|n| n as usize),
                    _ => None,
                }
                .ok_or_else(|| {
                    GraphError::invalid_parameter(format!(
                        "The parameter {path}['index'] is required (a string like \"0\")."
                    ))
                })?;
                if buttons.iter().any(|(other, _, _)| *other == index) {
                    return Err(GraphError::invalid_parameter(format!(
                        "{path}: button index {index} is given twice."
                    )));
                }
                buttons.push((index, map, path));
            }
            other => {
                return Err(GraphError::invalid_parameter(format!(
                "Param {path}['type'] must be one of {{HEADER, BODY, BUTTON}} - got \"{other}\"."
            )))
            }
        }
    }

    // Header.
    match (&spec.header, header) {
        (None, Some((params, path))) if !params.is_empty() => {
            return Err(GraphError::template_param_count(format!(
                "header: number of localizable_params ({}) does not match the expected number of params (0) ({path})",
                params.len()
            )))
        }
        (None, _) => {}
        (Some(HeaderSpec::Text(expected)), header) => {
            let (params, path) = header.unwrap_or((&[], "template['components'][header]".into()));
            let values = fill_parameters(params, expected, "header", &path)?;
            for (_, value) in &values {
                if chars(value) > 60 {
                    return Err(GraphError::template_text_too_long(format!(
                        "header: the text parameter has {} characters; header parameters are limited to 60",
                        chars(value)
                    )));
                }
            }
        }
        (Some(HeaderSpec::Media(expected)), header) => {
            let (params, path) = header.unwrap_or((&[], String::new()));
            let received = params
                .first()
                .and_then(|p| p.get("type"))
                .and_then(Value::as_str)
                .map(str::to_ascii_uppercase)
                .unwrap_or_else(|| "UNKNOWN".into());
            if params.len() != 1 || received != expected.to_ascii_uppercase() {
                return Err(GraphError::template_format_mismatch(format!(
                    "header: Format mismatch, expected {}, received {received}",
                    expected.to_ascii_uppercase()
                )));
            }
            let media_value = params[0].get(expected.as_str()).ok_or_else(|| {
                GraphError::missing_parameter(format!("The parameter {path}['parameters'][0]['{expected}'] is required."))
            })?;
            media(
                media_value,
                expected,
                &format!("{path}['parameters'][0]['{expected}']"),
                media_ids,
                false,
            )?;
        }
        (Some(HeaderSpec::Location), header) => {
            let params = header.map(|(p, _)| p).unwrap_or(&[]);
            let received = params
                .first()
                .and_then(|p| p.get("type"))
                .and_then(Value::as_str)
                .unwrap_or("UNKNOWN");
            if params.len() != 1 || received != "location" {
                return Err(GraphError::template_format_mismatch(format!(
                    "header: Format mismatch, expected LOCATION, received {}",
                    received.to_ascii_uppercase()
                )));
            }
        }
    }

    // Body.
    let (body_params, body_path) = body.unwrap_or((&[], "template['components'][body]".into()));
    let values = fill_parameters(body_params, &spec.body_params, "body", &body_path)?;
    let filled = fill(&spec.body_text, &values);
    if chars(&filled) > 1024 {
        return Err(GraphError::template_text_too_long(format!(
            "body: the filled-in text has {} characters; the limit is 1024",
            chars(&filled)
        )));
    }

    // Buttons.
    for (index, map, path) in &buttons {
        let Some(button) = spec.buttons.get(*index) else {
            return Err(GraphError::invalid_value(format!(
                "{path}: the template has {} button(s); there is no button at index {index}",
                spec.buttons.len()
            )));
        };
        let sub_type =
            required_str(map, "sub_type", &format!("{path}['sub_type']"))?.to_ascii_uppercase();
        if sub_type != button.kind {
            return Err(GraphError::invalid_value(format!(
                "{path}: button {index} of the template is {}, not {sub_type}",
                button.kind
            )));
        }
        let params: &[Value] = map
            .get("parameters")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or(&[]);
        match sub_type.as_str() {
            "QUICK_REPLY" => {
                if params.len() > 1 {
                    return Err(GraphError::template_param_count(format!(
                        "buttons: quick reply button {index} takes one payload parameter, got {}",
                        params.len()
                    )));
                }
                if let Some(param) = params.first() {
                    let param = object(param, &format!("{path}['parameters'][0]"))?;
                    if param.get("type").and_then(Value::as_str) != Some("payload") {
                        return Err(GraphError::template_format_mismatch(format!(
                            "{path}: a quick reply button parameter must be of type payload"
                        )));
                    }
                    required_str(
                        param,
                        "payload",
                        &format!("{path}['parameters'][0]['payload']"),
                    )?;
                }
            }
            "URL" => {
                let expected = usize::from(button.url_has_param);
                if params.len() != expected {
                    return Err(GraphError::template_param_count(format!(
                        "buttons: number of params ({}) of URL button {index} does not match the expected number of params ({expected})",
                        params.len()
                    )));
                }
                if let Some(param) = params.first() {
                    let param = object(param, &format!("{path}['parameters'][0]"))?;
                    text_parameter(param, &format!("{path}['parameters'][0]"))?;
                }
            }
            _ => {}
        }
    }
    for (index, button) in spec.buttons.iter().enumerate() {
        if button.url_has_param && !buttons.iter().any(|(i, _, _)| *i == index) {
            return Err(GraphError::template_param_count(format!(
                "buttons: URL button {index} needs a text parameter for its URL suffix"
            )));
        }
    }
    Ok(spec)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::config::TemplateConfig;
    use crate::sandbox::templates::default_templates;
    use serde_json::json;

    fn specs() -> Vec<Arc<TemplateSpec>> {
        let mut configs = default_templates();
        configs.push(TemplateConfig {
            name: "paused_t".into(),
            status: "PAUSED".into(),
            components: json!([{"type": "BODY", "text": "x"}]),
            ..TemplateConfig::default()
        });
        configs.push(TemplateConfig {
            name: "disabled_t".into(),
            status: "DISABLED".into(),
            components: json!([{"type": "BODY", "text": "x"}]),
            ..TemplateConfig::default()
        });
        configs.push(TemplateConfig {
            name: "pending_t".into(),
            status: "PENDING".into(),
            components: json!([{"type": "BODY", "text": "x"}]),
            ..TemplateConfig::default()
        });
        configs.push(TemplateConfig {
            name: "named_t".into(),
            parameter_format: "NAMED".into(),
            category: "MARKETING".into(),
            components: json!([
                {"type": "HEADER", "format": "TEXT", "text": "Hi {{first_name}}"},
                {"type": "BODY", "text": "Order {{order_id}} for {{first_name}}"},
                {"type": "BUTTONS", "buttons": [
                    {"type": "URL", "text": "Track", "url": "https://e.com/t/{{1}}"},
                    {"type": "QUICK_REPLY", "text": "Stop"}]}
            ]),
            ..TemplateConfig::default()
        });
        configs.push(TemplateConfig {
            name: "image_t".into(),
            components: json!([
                {"type": "HEADER", "format": "IMAGE"},
                {"type": "BODY", "text": "See {{1}}"}
            ]),
            ..TemplateConfig::default()
        });
        configs
            .iter()
            .map(|c| Arc::new(TemplateSpec::from_config(c).unwrap()))
            .collect()
    }

    fn check(body: Value) -> Check<ValidSend> {
        let specs = specs();
        let find = |name: &str, lang: &str| {
            specs
                .iter()
                .find(|s| s.name == name && s.language == lang)
                .cloned()
        };
        let langs = |name: &str| {
            specs
                .iter()
                .filter(|s| s.name == name)
                .map(|s| s.language.clone())
                .collect::<Vec<_>>()
        };
        let ctx = SendContext {
            business_digits: "15550000001",
            find_template: &find,
            template_languages: &langs,
        };
        validate_send(body.to_string().as_bytes(), &ctx)
    }

    fn code(body: Value) -> u32 {
        match check(body) {
            Ok(_) => 0,
            Err(e) => e.code,
        }
    }

    fn msg(kind: &str, content: Value) -> Value {
        json!({"messaging_product": "whatsapp", "to": "+2250700000001", "type": kind, kind: content})
    }

    fn buttons(n: usize) -> Value {
        let list: Vec<Value> = (0..n)
            .map(|i| json!({"type": "reply", "reply": {"id": format!("b{i}"), "title": format!("T{i}")}}))
            .collect();
        json!({"type": "button", "body": {"text": "Pick"}, "action": {"buttons": list}})
    }

    fn list_msg(rows_per_section: &[usize]) -> Value {
        let mut n = 0;
        let sections: Vec<Value> = rows_per_section
            .iter()
            .enumerate()
            .map(|(s, rows)| {
                let rows: Vec<Value> = (0..*rows)
                    .map(|_| {
                        n += 1;
                        json!({"id": format!("r{n}"), "title": format!("Row {n}")})
                    })
                    .collect();
                json!({"title": format!("S{s}"), "rows": rows})
            })
            .collect();
        json!({"type": "list", "body": {"text": "Pick"}, "action": {"button": "Open", "sections": sections}})
    }

    #[test]
    fn a_text_message_is_accepted_and_echoes_input() {
        let send = check(msg("text", json!({"body": "hi", "preview_url": true}))).unwrap();
        assert_eq!(send.input, "+2250700000001");
        assert_eq!(send.wa_id, "2250700000001");
        assert_eq!(send.kind, "text");
        assert!(send.is_free_form());
        assert_eq!(send.pricing_category(), "service");
    }

    #[test]
    fn envelope_errors_are_100() {
        assert_eq!(check(json!(null)).unwrap_err().code, 100);
        let e = validate_send(
            b"{not json",
            &SendContext {
                business_digits: "1",
                find_template: &|_, _| None,
                template_languages: &|_| Vec::new(),
            },
        )
        .unwrap_err();
        assert_eq!(e.code, 100);
        assert!(e.details.unwrap().contains("not valid JSON"));
        assert_eq!(
            code(json!({"to": "+2250700000001", "text": {"body": "x"}})),
            100
        );
        assert_eq!(
            code(
                json!({"messaging_product": "sms", "to": "+2250700000001", "text": {"body": "x"}})
            ),
            100
        );
        assert_eq!(
            code(json!({"messaging_product": "whatsapp", "text": {"body": "x"}})),
            100
        );
        assert_eq!(
            code(json!({"messaging_product": "whatsapp", "to": "abc", "text": {"body": "x"}})),
            100
        );
        assert_eq!(
            code(json!({"messaging_product": "whatsapp", "to": "+225 07", "text": {"body": "x"}})),
            100
        );
        assert_eq!(code(msg("fax", json!({}))), 100);
        assert_eq!(
            code(json!({"messaging_product": "whatsapp", "to": "+2250700000001", "type": "image"})),
            100
        );
        let mut m = msg("text", json!({"body": "x"}));
        m["recipient_type"] = json!("group");
        assert_eq!(code(m), 100);
    }

    #[test]
    fn the_type_defaults_to_text() {
        let send = check(
            json!({"messaging_product": "whatsapp", "to": "2250700000001", "text": {"body": "x"}}),
        )
        .unwrap();
        assert_eq!(send.kind, "text");
        assert_eq!(send.input, "2250700000001");
    }

    #[test]
    fn sending_to_the_business_number_is_131021() {
        let mut m = msg("text", json!({"body": "x"}));
        m["to"] = json!("+15550000001");
        assert_eq!(code(m), 131021);
    }

    #[test]
    fn text_limits() {
        assert_eq!(code(msg("text", json!({"body": "a".repeat(4096)}))), 0);
        let e = check(msg("text", json!({"body": "é".repeat(4097)}))).unwrap_err();
        assert_eq!(e.code, 100);
        assert_eq!(
            e.details.as_deref(),
            Some("Param text['body'] must be at most 4096 characters long.")
        );
        assert_eq!(code(msg("text", json!({"body": ""}))), 100);
        assert_eq!(code(msg("text", json!({}))), 100);
        assert_eq!(
            code(msg("text", json!({"body": "x", "preview_url": "yes"}))),
            100
        );
    }

    #[test]
    fn callback_data_and_context() {
        let mut m = msg("text", json!({"body": "x"}));
        m["biz_opaque_callback_data"] = json!("a".repeat(512));
        m["context"] = json!({"message_id": "wamid.X"});
        let send = check(m.clone()).unwrap();
        assert_eq!(send.callback_data.as_deref().map(str::len), Some(512));
        assert_eq!(send.reply_to.as_deref(), Some("wamid.X"));
        m["biz_opaque_callback_data"] = json!("a".repeat(513));
        assert_eq!(code(m.clone()), 100);
        m["biz_opaque_callback_data"] = json!(5);
        assert_eq!(code(m.clone()), 100);
        m["biz_opaque_callback_data"] = json!("ok");
        m["context"] = json!({"id": "x"});
        assert_eq!(code(m), 100);
    }

    #[test]
    fn image_and_document_rules() {
        assert_eq!(code(msg("image", json!({"id": "123", "caption": "c"}))), 0);
        assert_eq!(
            code(msg("image", json!({"link": "https://e.com/a.jpg"}))),
            0
        );
        assert_eq!(
            code(msg(
                "image",
                json!({"id": "1", "link": "https://e.com/a.jpg"})
            )),
            100
        );
        assert_eq!(code(msg("image", json!({"caption": "c"}))), 100);
        assert_eq!(
            code(msg("image", json!({"link": "ftp://e.com/a.jpg"}))),
            100
        );
        assert_eq!(code(msg("image", json!({"link": "not a url"}))), 100);
        assert_eq!(
            code(msg(
                "image",
                json!({"id": "1", "caption": "c".repeat(1025)})
            )),
            100
        );
        let send = check(msg(
            "document",
            json!({"id": "77", "filename": "inv.pdf", "caption": "Invoice"}),
        ))
        .unwrap();
        assert_eq!(
            send.media_ids,
            vec![("77".to_string(), "document".to_string())]
        );
        assert_eq!(
            code(msg(
                "document",
                json!({"link": "https://e.com/x.pdf", "filename": 5})
            )),
            100
        );
        assert_eq!(
            code(msg(
                "document",
                json!({"link": "https://e.com/x.pdf", "caption": "c".repeat(1025)})
            )),
            100
        );
    }

    #[test]
    fn reply_button_limits() {
        assert_eq!(code(msg("interactive", buttons(1))), 0);
        assert_eq!(code(msg("interactive", buttons(3))), 0);
        assert_eq!(code(msg("interactive", buttons(4))), 131009);
        assert_eq!(code(msg("interactive", buttons(0))), 131009);

        let mut b = buttons(2);
        b["action"]["buttons"][1]["reply"]["title"] = json!("T0");
        let e = check(msg("interactive", b)).unwrap_err();
        assert_eq!(e.code, 131009);
        assert!(e.details.unwrap().contains("title"));

        let mut b = buttons(2);
        b["action"]["buttons"][1]["reply"]["id"] = json!("b0");
        assert_eq!(code(msg("interactive", b)), 131009);

        let mut b = buttons(1);
        b["action"]["buttons"][0]["reply"]["title"] = json!("x".repeat(20));
        assert_eq!(code(msg("interactive", b.clone())), 0);
        b["action"]["buttons"][0]["reply"]["title"] = json!("x".repeat(21));
        assert_eq!(code(msg("interactive", b.clone())), 131009);
        b["action"]["buttons"][0]["reply"]["title"] = json!("");
        assert_eq!(code(msg("interactive", b.clone())), 131009);

        let mut b = buttons(1);
        b["action"]["buttons"][0]["reply"]["id"] = json!("i".repeat(256));
        assert_eq!(code(msg("interactive", b.clone())), 0);
        b["action"]["buttons"][0]["reply"]["id"] = json!("i".repeat(257));
        assert_eq!(code(msg("interactive", b.clone())), 131009);
        b["action"]["buttons"][0]["reply"]["id"] = json!(" id");
        assert_eq!(code(msg("interactive", b)), 131009);

        let mut b = buttons(1);
        b["body"]["text"] = json!("x".repeat(1025));
        assert_eq!(code(msg("interactive", b)), 131009);
        let mut b = buttons(1);
        b["footer"] = json!({"text": "x".repeat(61)});
        assert_eq!(code(msg("interactive", b)), 131009);
        let mut b = buttons(1);
        b["header"] = json!({"type": "text", "text": "x".repeat(61)});
        assert_eq!(code(msg("interactive", b)), 131009);
        let mut b = buttons(1);
        b["header"] = json!({"type": "document", "document": {"id": "55"}});
        assert_eq!(check(msg("interactive", b)).unwrap().media_ids.len(), 1);
        let mut b = buttons(1);
        b.as_object_mut().unwrap().remove("body");
        assert_eq!(code(msg("interactive", b)), 100);
        let mut b = buttons(1);
        b["type"] = json!("carousel_x");
        assert_eq!(code(msg("interactive", b)), 100);
    }

    #[test]
    fn list_limits() {
        assert_eq!(code(msg("interactive", list_msg(&[10]))), 0);
        assert_eq!(code(msg("interactive", list_msg(&[5, 5]))), 0);
        let e = check(msg("interactive", list_msg(&[6, 5]))).unwrap_err();
        assert_eq!(e.code, 131009);
        assert!(e.details.unwrap().contains("Total row count"));
        assert_eq!(code(msg("interactive", list_msg(&[1; 11]))), 131009);
        assert_eq!(code(msg("interactive", list_msg(&[]))), 131009);

        let mut l = list_msg(&[1]);
        l["action"]["sections"][0]["rows"][0]["title"] = json!("x".repeat(24));
        assert_eq!(code(msg("interactive", l.clone())), 0);
        l["action"]["sections"][0]["rows"][0]["title"] = json!("x".repeat(25));
        assert_eq!(code(msg("interactive", l)), 131009);

        let mut l = list_msg(&[1]);
        l["action"]["sections"][0]["rows"][0]["description"] = json!("d".repeat(72));
        assert_eq!(code(msg("interactive", l.clone())), 0);
        l["action"]["sections"][0]["rows"][0]["description"] = json!("d".repeat(73));
        assert_eq!(code(msg("interactive", l)), 131009);

        let mut l = list_msg(&[1]);
        l["action"]["sections"][0]["rows"][0]["id"] = json!("i".repeat(200));
        assert_eq!(code(msg("interactive", l.clone())), 0);
        l["action"]["sections"][0]["rows"][0]["id"] = json!("i".repeat(201));
        assert_eq!(code(msg("interactive", l)), 131009);

        let mut l = list_msg(&[1]);
        l["action"]["button"] = json!("b".repeat(21));
        assert_eq!(code(msg("interactive", l)), 131009);

        let mut l = list_msg(&[1, 1]);
        l["action"]["sections"][1]
            .as_object_mut()
            .unwrap()
            .remove("title");
        assert_eq!(code(msg("interactive", l)), 131009);
        let mut l = list_msg(&[1]);
        l["action"]["sections"][0]
            .as_object_mut()
            .unwrap()
            .remove("title");
        assert_eq!(code(msg("interactive", l)), 0);

        let mut l = list_msg(&[2]);
        l["action"]["sections"][0]["rows"][1]["id"] = json!("r1");
        assert_eq!(code(msg("interactive", l)), 131009);

        let mut l = list_msg(&[1]);
        l["header"] = json!({"type": "image", "image": {"id": "1"}});
        assert_eq!(code(msg("interactive", l)), 131009);
    }

    fn invoice(params: usize) -> Value {
        let body: Vec<Value> = (0..params)
            .map(|i| json!({"type": "text", "text": format!("v{i}")}))
            .collect();
        json!({"name": "sidecar_invoice", "language": {"code": "en_US"}, "components": [
            {"type": "header", "parameters": [{"type": "document", "document": {"id": "9", "filename": "inv.pdf"}}]},
            {"type": "body", "parameters": body},
            {"type": "button", "sub_type": "quick_reply", "index": "0", "parameters": [{"type": "payload", "payload": "PAY:1"}]}
        ]})
    }

    #[test]
    fn templates_are_checked_against_their_definition() {
        let send = check(msg("template", invoice(3))).unwrap();
        assert!(!send.is_free_form());
        assert_eq!(send.pricing_category(), "utility");
        assert_eq!(
            send.media_ids,
            vec![("9".to_string(), "document".to_string())]
        );
        assert_eq!(
            code(msg(
                "template",
                json!({"name": "sidecar_hello", "language": {"code": "en_US"}})
            )),
            0
        );

        let e = check(msg("template", invoice(2))).unwrap_err();
        assert_eq!(e.code, 132000);
        assert!(e
            .details
            .unwrap()
            .contains("(2) does not match the expected number of params (3)"));
        assert_eq!(code(msg("template", invoice(4))), 132000);

        let e = check(msg(
            "template",
            json!({"name": "nope", "language": {"code": "en_US"}}),
        ))
        .unwrap_err();
        assert_eq!(e.code, 132001);
        let e = check(msg(
            "template",
            json!({"name": "sidecar_hello", "language": {"code": "fr"}}),
        ))
        .unwrap_err();
        assert_eq!(e.code, 132001);
        assert!(e.details.unwrap().contains("en_US"));
        assert_eq!(
            code(msg(
                "template",
                json!({"name": "paused_t", "language": {"code": "en_US"}})
            )),
            132015
        );
        assert_eq!(
            code(msg(
                "template",
                json!({"name": "disabled_t", "language": {"code": "en_US"}})
            )),
            132016
        );
        assert_eq!(
            code(msg(
                "template",
                json!({"name": "pending_t", "language": {"code": "en_US"}})
            )),
            132001
        );
        assert_eq!(code(msg("template", json!({"name": "sidecar_hello"}))), 100);
    }

    #[test]
    fn template_header_media_must_match() {
        let mut t = invoice(3);
        t["components"][0]["parameters"] = json!([{"type": "image", "image": {"id": "9"}}]);
        let e = check(msg("template", t)).unwrap_err();
        assert_eq!(e.code, 132012);
        assert!(e
            .details
            .unwrap()
            .contains("expected DOCUMENT, received IMAGE"));
        let mut t = invoice(3);
        t["components"].as_array_mut().unwrap().remove(0);
        assert_eq!(code(msg("template", t)), 132012);
        let mut t = invoice(3);
        t["components"][0]["parameters"] = json!([{"type": "document", "document": {}}]);
        assert_eq!(code(msg("template", t)), 100);
        let t = json!({"name": "image_t", "language": {"code": "en_US"}, "components": [
            {"type": "header", "parameters": [{"type": "image", "image": {"link": "https://e.com/a.png"}}]},
            {"type": "body", "parameters": [{"type": "text", "text": "x"}]}]});
        assert_eq!(code(msg("template", t)), 0);
        let t = json!({"name": "sidecar_hello", "language": {"code": "en_US"}, "components": [
            {"type": "header", "parameters": [{"type": "text", "text": "x"}]}]});
        assert_eq!(code(msg("template", t)), 132000);
    }

    #[test]
    fn template_parameter_values() {
        let mut t = invoice(3);
        t["components"][1]["parameters"][0] = json!({"type": "text", "text": ""});
        assert_eq!(code(msg("template", t)), 131008);
        let mut t = invoice(3);
        t["components"][1]["parameters"][0] = json!({"type": "text", "text": "a\nb"});
        assert_eq!(code(msg("template", t)), 100);
        let mut t = invoice(3);
        t["components"][1]["parameters"][2] = json!({"type": "currency", "currency": {"fallback_value": "$1", "code": "USD", "amount_1000": 1000}});
        t["components"][1]["parameters"][1] =
            json!({"type": "date_time", "date_time": {"fallback_value": "May 1"}});
        assert_eq!(code(msg("template", t)), 0);
        let mut t = invoice(3);
        t["components"][1]["parameters"][0] = json!({"type": "image", "image": {"id": "1"}});
        assert_eq!(code(msg("template", t)), 132012);
        let mut t = invoice(3);
        t["components"][1]["parameters"][0] = json!({"type": "text", "text": "x".repeat(1100)});
        assert_eq!(code(msg("template", t)), 132005);
    }

    #[test]
    fn template_buttons() {
        let mut t = invoice(3);
        t["components"][2]["index"] = json!("5");
        assert_eq!(code(msg("template", t)), 131009);
        let mut t = invoice(3);
        t["components"][2]["sub_type"] = json!("url");
        assert_eq!(code(msg("template", t)), 131009);
        let mut t = invoice(3);
        t["components"][2]["parameters"][0] = json!({"type": "text", "text": "x"});
        assert_eq!(code(msg("template", t)), 132012);
        let mut t = invoice(3);
        t["components"].as_array_mut().unwrap().remove(2);
        assert_eq!(code(msg("template", t)), 0);
    }

    #[test]
    fn named_templates() {
        let ok = json!({"name": "named_t", "language": {"code": "en_US"}, "components": [
            {"type": "header", "parameters": [{"type": "text", "parameter_name": "first_name", "text": "Ann"}]},
            {"type": "body", "parameters": [
                {"type": "text", "parameter_name": "order_id", "text": "S1"},
                {"type": "text", "parameter_name": "first_name", "text": "Ann"}]},
            {"type": "button", "sub_type": "url", "index": "0", "parameters": [{"type": "text", "text": "S1"}]}]});
        let send = check(msg("template", ok.clone())).unwrap();
        assert_eq!(send.pricing_category(), "marketing");

        let mut t = ok.clone();
        t["components"][1]["parameters"][0]["parameter_name"] = json!("order");
        assert_eq!(code(msg("template", t)), 132000);
        let mut t = ok.clone();
        t["components"][1]["parameters"][0]
            .as_object_mut()
            .unwrap()
            .remove("parameter_name");
        assert_eq!(code(msg("template", t)), 132000);
        let mut t = ok.clone();
        t["components"].as_array_mut().unwrap().remove(2);
        assert_eq!(code(msg("template", t)), 132000);
        let mut t = ok.clone();
        t["components"][0]["parameters"][0]["text"] = json!("x".repeat(61));
        assert_eq!(code(msg("template", t)), 132005);
    }

    #[test]
    fn other_types() {
        assert_eq!(
            code(msg(
                "reaction",
                json!({"message_id": "wamid.X", "emoji": "👍"})
            )),
            0
        );
        assert_eq!(code(msg("reaction", json!({"emoji": "👍"}))), 100);
        assert_eq!(
            code(msg("location", json!({"latitude": 5.3, "longitude": -4.0}))),
            0
        );
        assert_eq!(code(msg("location", json!({"latitude": 5.3}))), 100);
        assert_eq!(code(msg("contacts", json!([]))), 100);
    }

    #[test]
    fn recipients_are_normalised() {
        assert_eq!(
            normalise_recipient("+2250700000001").as_deref(),
            Some("2250700000001")
        );
        assert_eq!(
            normalise_recipient("16505551234").as_deref(),
            Some("16505551234")
        );
        assert_eq!(normalise_recipient("+0123456789"), None);
        assert_eq!(normalise_recipient("+1 650 555 1234"), None);
        assert_eq!(normalise_recipient("+12345"), None);
    }
}
