//! Message templates as Meta returns them, and the check of a send against its template.
//!
//! `GET /{waba-id}/message_templates` returns pages of templates (the client follows
//! `paging.next`; see `client.rs`). Each entry is read leniently into a [`MessageTemplate`]:
//! header format, body text with its positional parameter count or parameter names, footer,
//! buttons, status ([`TemplateStatus`], with an `Other` fallback for values Meta adds) and the
//! raw `components` JSON for storing in Odoo. An entry that cannot be read at all (no name) is
//! returned as a [`SkippedTemplate`] with the reason, never dropped silently.
//!
//! [`check_params`] compares a template message about to be sent with the template's
//! definition (name and language, header type, body count or names, button parameters, the
//! filled-in length) and [`check_sendable`] adds the status, so a mistake fails locally with a
//! precise [`TemplateParamError`] instead of a 132000/132001/132012 from Meta.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use std::collections::BTreeSet;
use std::fmt;

use super::payload::{self, ButtonSubType, Parameter, TemplateComponent};

/// Template body: at most 1024 characters with the variables filled in.
pub const TEMPLATE_BODY_MAX: usize = 1024;

/// The query fields the client asks for.
pub const TEMPLATE_FIELDS: &str =
    "id,name,status,category,language,components,parameter_format,quality_score";

macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident => $text:literal),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant,)*
            /// A value this daemon does not know, kept as sent.
            Other(String),
        }

        impl $name {
            /// The value as Meta writes it.
            pub fn as_str(&self) -> &str {
                match self {
                    $($name::$variant => $text,)*
                    $name::Other(s) => s,
                }
            }
        }

        impl From<&str> for $name {
            fn from(s: &str) -> Self {
                match s.trim().to_ascii_uppercase().as_str() {
                    $($text => $name::$variant,)*
                    _ => $name::Other(s.to_string()),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let v = Value::deserialize(d)?;
                Ok(match v {
                    Value::String(s) => $name::from(s.as_str()),
                    other => $name::Other(other.to_string()),
                })
            }
        }
    };
}

string_enum!(
    /// A template's review status (also the `event` of `message_template_status_update`).
    TemplateStatus {
        /// Approved: may be sent.
        Approved => "APPROVED",
        /// Under review.
        Pending => "PENDING",
        /// Rejected.
        Rejected => "REJECTED",
        /// Paused for low quality (3 h, then 6 h).
        Paused => "PAUSED",
        /// Disabled after repeated low quality.
        Disabled => "DISABLED",
        /// Still approved, with a scheduled disable date.
        Flagged => "FLAGGED",
        /// Rejection under appeal.
        InAppeal => "IN_APPEAL",
        /// Being deleted.
        PendingDeletion => "PENDING_DELETION",
        /// Deleted.
        Deleted => "DELETED",
        /// Archived.
        Archived => "ARCHIVED",
        /// Over the template limit.
        LimitExceeded => "LIMIT_EXCEEDED",
    }
);

impl TemplateStatus {
    /// True when Meta accepts sends of this template (approved, or flagged and still approved).
    pub fn is_sendable(&self) -> bool {
        matches!(self, TemplateStatus::Approved | TemplateStatus::Flagged)
    }
}

string_enum!(
    /// A template's category.
    TemplateCategory {
        /// Marketing.
        Marketing => "MARKETING",
        /// Utility.
        Utility => "UTILITY",
        /// Authentication.
        Authentication => "AUTHENTICATION",
    }
);

string_enum!(
    /// The format of a template header.
    HeaderFormat {
        /// Text, possibly with one variable.
        Text => "TEXT",
        /// An image given at send time.
        Image => "IMAGE",
        /// A document given at send time.
        Document => "DOCUMENT",
        /// A video given at send time.
        Video => "VIDEO",
        /// A location given at send time.
        Location => "LOCATION",
    }
);

string_enum!(
    /// The type of a template button.
    ButtonKind {
        /// Quick reply; its payload comes back in the inbound `button` message.
        QuickReply => "QUICK_REPLY",
        /// Link, possibly with a variable suffix.
        Url => "URL",
        /// Call a number.
        PhoneNumber => "PHONE_NUMBER",
        /// Copy a code.
        CopyCode => "COPY_CODE",
        /// WhatsApp Flow.
        Flow => "FLOW",
        /// One-time password.
        Otp => "OTP",
        /// Catalog.
        Catalog => "CATALOG",
    }
);

/// How a template's variables are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ParameterFormat {
    /// `{{1}}`, `{{2}}`, ...
    #[default]
    Positional,
    /// `{{first_name}}`, ...
    Named,
}

/// The variables of a header or body text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Placeholders {
    /// No variables.
    None,
    /// `{{1}}`..`{{n}}`.
    Positional(usize),
    /// Names in order of first appearance.
    Named(Vec<String>),
}

impl Placeholders {
    /// How many parameters a send must give.
    pub fn count(&self) -> usize {
        match self {
            Placeholders::None => 0,
            Placeholders::Positional(n) => *n,
            Placeholders::Named(v) => v.len(),
        }
    }
}

/// A template's header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TemplateHeader {
    /// Text, image, document, video or location.
    pub format: HeaderFormat,
    /// The text, for text headers.
    pub text: Option<String>,
    /// The variables of a text header.
    pub placeholders: Placeholders,
}

/// A template's body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TemplateBody {
    /// The text with `{{…}}` variables.
    pub text: String,
    /// Its variables.
    pub placeholders: Placeholders,
}

/// A template's button.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TemplateButton {
    /// Its position, the `index` a send uses.
    pub index: usize,
    /// Quick reply, URL, ...
    pub kind: ButtonKind,
    /// The label.
    pub text: String,
    /// For URL buttons.
    pub url: Option<String>,
    /// True when a send must give a parameter for it (a URL with a variable suffix).
    pub needs_parameter: bool,
}

/// A template as listed by Meta.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MessageTemplate {
    /// Meta's template id.
    pub id: String,
    /// The name.
    pub name: String,
    /// The language code, e.g. `en_US`.
    pub language: String,
    /// The status.
    pub status: TemplateStatus,
    /// The category.
    pub category: TemplateCategory,
    /// Positional or named variables.
    pub parameter_format: ParameterFormat,
    /// The header, if any.
    pub header: Option<TemplateHeader>,
    /// The body, if any.
    pub body: Option<TemplateBody>,
    /// The footer text, if any.
    pub footer: Option<String>,
    /// The buttons, in order.
    pub buttons: Vec<TemplateButton>,
    /// `quality_score.score` (GREEN, YELLOW, RED, UNKNOWN), when Meta sent it.
    pub quality: Option<String>,
    /// The raw `components` array, as Meta sent it.
    pub components: Value,
}

/// A listed entry that could not be read as a template.
#[derive(Debug, Clone, PartialEq)]
pub struct SkippedTemplate {
    /// The entry as Meta sent it.
    pub raw: Value,
    /// Why it was skipped.
    pub problem: String,
}

/// Every template of a WABA, and the entries that could not be read.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TemplateList {
    /// The templates.
    pub templates: Vec<MessageTemplate>,
    /// Entries that could not be read, with the reason.
    pub skipped: Vec<SkippedTemplate>,
}

impl TemplateList {
    /// The template with this name and language.
    pub fn find(&self, name: &str, language: &str) -> Option<&MessageTemplate> {
        self.templates
            .iter()
            .find(|t| t.name == name && t.language == language)
    }
}

/// One page of `GET /{waba-id}/message_templates`.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct TemplatePage {
    #[serde(default)]
    pub data: Vec<Value>,
    #[serde(default)]
    pub paging: Option<Paging>,
}

/// `paging` of a Graph list.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct Paging {
    #[serde(default)]
    pub next: Option<String>,
}

fn str_field<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str)
}

/// A string or a number as a string (Meta sends ids both ways).
pub(crate) fn id_string(v: Option<&Value>) -> Option<String> {
    match v? {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The `{{…}}` variables of a text, read as `format` says.
pub fn placeholders(text: &str, format: ParameterFormat) -> Placeholders {
    let mut max_index = 0usize;
    let mut names: Vec<String> = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else { break };
        let inner = after[..end].trim();
        if !inner.is_empty() && inner.chars().all(|c| c.is_ascii_digit()) {
            if let Ok(i) = inner.parse::<usize>() {
                max_index = max_index.max(i);
            }
        } else if !inner.is_empty()
            && inner
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            && !names.iter().any(|n| n == inner)
        {
            names.push(inner.to_string());
        }
        rest = &after[end + 2..];
    }
    match format {
        ParameterFormat::Positional if max_index > 0 => Placeholders::Positional(max_index),
        ParameterFormat::Named if !names.is_empty() => Placeholders::Named(names),
        _ => Placeholders::None,
    }
}

impl MessageTemplate {
    /// Reads one entry of Meta's list. Fails only when there is no name.
    pub fn from_json(v: &Value) -> Result<MessageTemplate, String> {
        let name = str_field(v, "name")
            .filter(|n| !n.trim().is_empty())
            .ok_or_else(|| "the entry has no 'name'".to_string())?
            .to_string();
        let components = v.get("components").cloned().unwrap_or(Value::Array(vec![]));
        let list = components.as_array().cloned().unwrap_or_default();

        let declared = str_field(v, "parameter_format").map(|s| s.to_ascii_uppercase());
        let all_text: String = list
            .iter()
            .filter_map(|c| str_field(c, "text"))
            .collect::<Vec<_>>()
            .join(" ");
        let parameter_format = match declared.as_deref() {
            Some("NAMED") => ParameterFormat::Named,
            Some(_) => ParameterFormat::Positional,
            // not declared: named if the texts only use names
            None => match (
                placeholders(&all_text, ParameterFormat::Positional),
                placeholders(&all_text, ParameterFormat::Named),
            ) {
                (Placeholders::None, Placeholders::Named(_)) => ParameterFormat::Named,
                _ => ParameterFormat::Positional,
            },
        };

        let mut header = None;
        let mut body = None;
        let mut footer = None;
        let mut buttons = Vec::new();
        for c in &list {
            let kind = str_field(c, "type").unwrap_or("").to_ascii_uppercase();
            match kind.as_str() {
                "HEADER" => {
                    let format = HeaderFormat::from(str_field(c, "format").unwrap_or("TEXT"));
                    let text = str_field(c, "text").map(str::to_string);
                    let placeholders = match (&format, &text) {
                        (HeaderFormat::Text, Some(t)) => placeholders(t, parameter_format),
                        _ => Placeholders::None,
                    };
                    header = Some(TemplateHeader {
                        format,
                        text,
                        placeholders,
                    });
                }
                "BODY" => {
                    let text = str_field(c, "text").unwrap_or("").to_string();
                    body = Some(TemplateBody {
                        placeholders: placeholders(&text, parameter_format),
                        text,
                    });
                }
                "FOOTER" => footer = str_field(c, "text").map(str::to_string),
                "BUTTONS" => {
                    let raw = c
                        .get("buttons")
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default();
                    for (index, b) in raw.iter().enumerate() {
                        let kind = ButtonKind::from(str_field(b, "type").unwrap_or(""));
                        let url = str_field(b, "url").map(str::to_string);
                        let needs_parameter = match &kind {
                            ButtonKind::Url => url.as_deref().is_some_and(|u| u.contains("{{")),
                            ButtonKind::CopyCode => true,
                            _ => false,
                        };
                        buttons.push(TemplateButton {
                            index,
                            kind,
                            text: str_field(b, "text").unwrap_or("").to_string(),
                            url,
                            needs_parameter,
                        });
                    }
                }
                _ => {}
            }
        }

        Ok(MessageTemplate {
            id: id_string(v.get("id")).unwrap_or_default(),
            name,
            language: str_field(v, "language").unwrap_or("").to_string(),
            status: TemplateStatus::from(str_field(v, "status").unwrap_or("")),
            category: TemplateCategory::from(str_field(v, "category").unwrap_or("")),
            parameter_format,
            header,
            body,
            footer,
            buttons,
            quality: v
                .get("quality_score")
                .and_then(|q| str_field(q, "score"))
                .map(str::to_string),
            components,
        })
    }

    /// `name (language)`.
    pub fn label(&self) -> String {
        format!("'{}' ({})", self.name, self.language)
    }
}

/// Reads a page's entries into templates and skipped entries.
pub(crate) fn read_page(data: &[Value], into: &mut TemplateList) {
    for entry in data {
        match MessageTemplate::from_json(entry) {
            Ok(t) => into.templates.push(t),
            Err(problem) => into.skipped.push(SkippedTemplate {
                raw: entry.clone(),
                problem,
            }),
        }
    }
}

/// A template message does not fit its template.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("template {template}: {problem}")]
pub struct TemplateParamError {
    /// `'name' (language)`.
    pub template: String,
    /// What does not fit.
    pub problem: ParamProblem,
}

impl TemplateParamError {
    /// Never: the message or the template must change.
    pub fn is_retryable(&self) -> bool {
        false
    }
}

/// What does not fit, precisely.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParamProblem {
    /// The message names another template or language.
    #[error("the message asks for template '{name}' in '{language}'")]
    WrongTemplate {
        /// Name in the message.
        name: String,
        /// Language in the message.
        language: String,
    },
    /// The template may not be sent in its current status.
    #[error("its status is {status}; only APPROVED templates can be sent (sync templates after Meta reviews it)")]
    NotSendable {
        /// The status.
        status: TemplateStatus,
    },
    /// A header parameter was given but the template has no header variable.
    #[error("the template has no header variable, but a '{given}' header parameter was given")]
    HeaderUnexpected {
        /// The parameter type given.
        given: String,
    },
    /// The template's header needs a parameter and none was given.
    #[error("the template's {expected} header needs a parameter; none was given")]
    HeaderMissing {
        /// The header format.
        expected: HeaderFormat,
    },
    /// The header parameter has the wrong type.
    #[error("the template's header is {expected}, but a '{given}' parameter was given")]
    HeaderType {
        /// The header format.
        expected: HeaderFormat,
        /// The parameter type given.
        given: String,
    },
    /// A named header parameter has the wrong name.
    #[error("the header variable is named '{expected}', but the parameter is named '{given}'")]
    HeaderName {
        /// The template's name.
        expected: String,
        /// The name given.
        given: String,
    },
    /// Wrong number of positional body parameters.
    #[error("the body has {expected} variable(s) ({{{{1}}}} to {{{{{expected}}}}}), but {given} parameter(s) were given")]
    BodyCount {
        /// Variables in the template.
        expected: usize,
        /// Parameters given.
        given: usize,
    },
    /// Named where positional is expected, or the reverse.
    #[error("the template uses {expected} variables, but the parameters are {given}")]
    Naming {
        /// `named` or `positional`.
        expected: &'static str,
        /// `named` or `positional` (or `mixed`).
        given: &'static str,
    },
    /// Named body parameters do not match the template's names.
    #[error(
        "body parameter names do not match the template: missing {missing:?}, unknown {unknown:?}"
    )]
    BodyNames {
        /// Names the template has and the message lacks.
        missing: Vec<String>,
        /// Names the message has and the template lacks.
        unknown: Vec<String>,
    },
    /// The filled-in text is too long.
    #[error(
        "the {part} with its variables filled in is {actual} characters; Meta allows at most {max}"
    )]
    FilledTooLong {
        /// `body` or `header`.
        part: &'static str,
        /// The length.
        actual: usize,
        /// The limit.
        max: usize,
    },
    /// A button parameter for a button the template does not have.
    #[error("a parameter was given for button {index}, but the template has {count} button(s)")]
    ButtonUnknown {
        /// The index given.
        index: String,
        /// How many buttons the template has.
        count: usize,
    },
    /// A button parameter of the wrong kind.
    #[error("button {index} is a {expected} button, but a '{given}' parameter was given for it")]
    ButtonKind {
        /// The index.
        index: usize,
        /// The template's button kind.
        expected: ButtonKind,
        /// The sub_type given.
        given: String,
    },
    /// A button that needs a parameter got none.
    #[error("button {index} ({kind}, '{text}') needs a parameter; none was given")]
    ButtonParameterMissing {
        /// The index.
        index: usize,
        /// The kind.
        kind: ButtonKind,
        /// Its label.
        text: String,
    },
}

fn sub_type_name(s: ButtonSubType) -> &'static str {
    match s {
        ButtonSubType::QuickReply => "quick_reply",
        ButtonSubType::Url => "url",
        ButtonSubType::CopyCode => "copy_code",
        ButtonSubType::Flow => "flow",
        ButtonSubType::Catalog => "catalog",
    }
}

fn sub_type_fits(kind: &ButtonKind, sub: ButtonSubType) -> bool {
    matches!(
        (kind, sub),
        (ButtonKind::QuickReply, ButtonSubType::QuickReply)
            | (ButtonKind::Url, ButtonSubType::Url)
            | (ButtonKind::CopyCode, ButtonSubType::CopyCode)
            | (ButtonKind::Flow, ButtonSubType::Flow)
            | (ButtonKind::Catalog, ButtonSubType::Catalog)
    )
}

/// Replaces the variables of `text` with the parameters' texts.
fn fill(text: &str, params: &[Parameter], format: ParameterFormat) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            out.push_str(&rest[start..]);
            return out;
        };
        let inner = after[..end].trim();
        let value = match format {
            ParameterFormat::Positional => inner
                .parse::<usize>()
                .ok()
                .and_then(|i| i.checked_sub(1))
                .and_then(|i| params.get(i)),
            ParameterFormat::Named => params.iter().find(|p| p.name() == Some(inner)),
        }
        .and_then(Parameter::display_text);
        match value {
            Some(v) => out.push_str(v),
            None => out.push_str(&rest[start..start + 2 + end + 2]),
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

fn naming_of(params: &[Parameter]) -> &'static str {
    let named = params.iter().filter(|p| p.name().is_some()).count();
    if named == 0 {
        "positional"
    } else if named == params.len() {
        "named"
    } else {
        "mixed"
    }
}

/// Checks a template message about to be sent against the template's definition (not its
/// status: see [`check_sendable`]).
pub fn check_params(
    template: &MessageTemplate,
    message: &payload::Template,
) -> Result<(), TemplateParamError> {
    check(template, message).map_err(|problem| TemplateParamError {
        template: template.label(),
        problem,
    })
}

/// [`check_params`], after checking that the template's status allows sending.
pub fn check_sendable(
    template: &MessageTemplate,
    message: &payload::Template,
) -> Result<(), TemplateParamError> {
    if !template.status.is_sendable() {
        return Err(TemplateParamError {
            template: template.label(),
            problem: ParamProblem::NotSendable {
                status: template.status.clone(),
            },
        });
    }
    check_params(template, message)
}

fn check(t: &MessageTemplate, m: &payload::Template) -> Result<(), ParamProblem> {
    if m.name != t.name || m.language.code != t.language {
        return Err(ParamProblem::WrongTemplate {
            name: m.name.clone(),
            language: m.language.code.clone(),
        });
    }
    let format = t.parameter_format;

    // header
    let given = m.header();
    match (&t.header, given) {
        (None, None) => {}
        (None, Some(p)) => {
            return Err(ParamProblem::HeaderUnexpected {
                given: p.kind().into(),
            })
        }
        (Some(h), given) => match (&h.format, given) {
            (HeaderFormat::Text, None) if h.placeholders.count() == 0 => {}
            (HeaderFormat::Text, Some(p)) if h.placeholders.count() == 0 => {
                return Err(ParamProblem::HeaderUnexpected {
                    given: p.kind().into(),
                })
            }
            (HeaderFormat::Other(_), _) => {}
            (expected, None) => {
                return Err(ParamProblem::HeaderMissing {
                    expected: expected.clone(),
                })
            }
            (expected, Some(p)) => {
                let fits = matches!(
                    (expected, p),
                    (HeaderFormat::Text, Parameter::Text { .. })
                        | (HeaderFormat::Image, Parameter::Image { .. })
                        | (HeaderFormat::Document, Parameter::Document { .. })
                        | (HeaderFormat::Video, Parameter::Video { .. })
                        | (HeaderFormat::Location, Parameter::Location { .. })
                );
                if !fits {
                    return Err(ParamProblem::HeaderType {
                        expected: expected.clone(),
                        given: p.kind().into(),
                    });
                }
                if let (Placeholders::Named(names), HeaderFormat::Text) =
                    (&h.placeholders, expected)
                {
                    let want = names.first().cloned().unwrap_or_default();
                    let got = p.name().unwrap_or("");
                    if got != want {
                        return Err(ParamProblem::HeaderName {
                            expected: want,
                            given: got.to_string(),
                        });
                    }
                }
                if let (HeaderFormat::Text, Some(text)) = (expected, &h.text) {
                    let filled = fill(text, std::slice::from_ref(p), format);
                    let actual = filled.chars().count();
                    if actual > payload::HEADER_TEXT_MAX {
                        return Err(ParamProblem::FilledTooLong {
                            part: "header",
                            actual,
                            max: payload::HEADER_TEXT_MAX,
                        });
                    }
                }
            }
        },
    }

    // body
    let params = m.body();
    let expected = t
        .body
        .as_ref()
        .map(|b| b.placeholders.clone())
        .unwrap_or(Placeholders::None);
    match &expected {
        Placeholders::None | Placeholders::Positional(_) => {
            if naming_of(params) != "positional" {
                return Err(ParamProblem::Naming {
                    expected: "positional",
                    given: naming_of(params),
                });
            }
            if params.len() != expected.count() {
                return Err(ParamProblem::BodyCount {
                    expected: expected.count(),
                    given: params.len(),
                });
            }
        }
        Placeholders::Named(names) => {
            if !params.is_empty() && naming_of(params) != "named" {
                return Err(ParamProblem::Naming {
                    expected: "named",
                    given: naming_of(params),
                });
            }
            let want: BTreeSet<&str> = names.iter().map(String::as_str).collect();
            let got: BTreeSet<&str> = params.iter().filter_map(Parameter::name).collect();
            if want != got {
                return Err(ParamProblem::BodyNames {
                    missing: want.difference(&got).map(|s| s.to_string()).collect(),
                    unknown: got.difference(&want).map(|s| s.to_string()).collect(),
                });
            }
        }
    }
    if let Some(body) = &t.body {
        let actual = fill(&body.text, params, format).chars().count();
        if actual > TEMPLATE_BODY_MAX {
            return Err(ParamProblem::FilledTooLong {
                part: "body",
                actual,
                max: TEMPLATE_BODY_MAX,
            });
        }
    }

    // buttons
    let mut covered = BTreeSet::new();
    for c in &m.components {
        if let TemplateComponent::Button {
            sub_type, index, ..
        } = c
        {
            let Some(b) = index.parse::<usize>().ok().and_then(|i| t.buttons.get(i)) else {
                return Err(ParamProblem::ButtonUnknown {
                    index: index.clone(),
                    count: t.buttons.len(),
                });
            };
            if !sub_type_fits(&b.kind, *sub_type) {
                return Err(ParamProblem::ButtonKind {
                    index: b.index,
                    expected: b.kind.clone(),
                    given: sub_type_name(*sub_type).into(),
                });
            }
            covered.insert(b.index);
        }
    }
    if let Some(b) = t
        .buttons
        .iter()
        .find(|b| b.needs_parameter && !covered.contains(&b.index))
    {
        return Err(ParamProblem::ButtonParameterMissing {
            index: b.index,
            kind: b.kind.clone(),
            text: b.text.clone(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::whatsapp::payload::{Document, Image, Template};
    use serde_json::json;

    fn invoice_ready() -> MessageTemplate {
        MessageTemplate::from_json(&json!({
            "id": "123456789", "name": "invoice_ready", "language": "en_US", "status": "APPROVED",
            "category": "UTILITY", "parameter_format": "POSITIONAL",
            "components": [
                {"type": "HEADER", "format": "DOCUMENT", "example": {"header_handle": ["4::aW..."]}},
                {"type": "BODY", "text": "Hello {{1}}, your invoice of {{2}} is ready.",
                 "example": {"body_text": [["Alice", "EUR 42.00"]]}},
                {"type": "FOOTER", "text": "ACME Corp"},
                {"type": "BUTTONS", "buttons": [
                    {"type": "QUICK_REPLY", "text": "Pay now"},
                    {"type": "URL", "text": "View invoice", "url": "https://acme.example/inv/{{1}}",
                     "example": ["https://acme.example/inv/inv-42"]},
                    {"type": "PHONE_NUMBER", "text": "Call us", "phone_number": "+15550001111"}]}
            ],
            "quality_score": {"score": "GREEN"}
        }))
        .unwrap()
    }

    fn order_named() -> MessageTemplate {
        MessageTemplate::from_json(&json!({
            "id": 42, "name": "order_confirmed", "language": "fr", "status": "PAUSED",
            "category": "MARKETING", "parameter_format": "NAMED",
            "components": [
                {"type": "HEADER", "format": "TEXT", "text": "Commande {{order_number}}"},
                {"type": "BODY", "text": "Bonjour {{first_name}}, commande {{order_number}} : {{amount}}.",
                 "example": {"body_text_named_params": [{"param_name": "first_name", "example": "Alice"}]}}
            ]
        }))
        .unwrap()
    }

    #[test]
    fn parses_a_positional_template() {
        let t = invoice_ready();
        assert_eq!(t.id, "123456789");
        assert_eq!(t.status, TemplateStatus::Approved);
        assert_eq!(t.category, TemplateCategory::Utility);
        assert_eq!(t.parameter_format, ParameterFormat::Positional);
        assert_eq!(t.header.as_ref().unwrap().format, HeaderFormat::Document);
        assert_eq!(
            t.body.as_ref().unwrap().placeholders,
            Placeholders::Positional(2)
        );
        assert_eq!(t.footer.as_deref(), Some("ACME Corp"));
        assert_eq!(t.buttons.len(), 3);
        assert_eq!(t.buttons[0].kind, ButtonKind::QuickReply);
        assert!(!t.buttons[0].needs_parameter);
        assert!(t.buttons[1].needs_parameter);
        assert_eq!(t.buttons[2].kind, ButtonKind::PhoneNumber);
        assert_eq!(t.quality.as_deref(), Some("GREEN"));
        assert!(t.components.is_array());
    }

    #[test]
    fn parses_a_named_template() {
        let t = order_named();
        assert_eq!(t.id, "42");
        assert_eq!(t.parameter_format, ParameterFormat::Named);
        assert_eq!(
            t.header.as_ref().unwrap().placeholders,
            Placeholders::Named(vec!["order_number".into()])
        );
        assert_eq!(
            t.body.as_ref().unwrap().placeholders,
            Placeholders::Named(vec![
                "first_name".into(),
                "order_number".into(),
                "amount".into()
            ])
        );
        assert_eq!(t.status, TemplateStatus::Paused);
        assert!(!t.status.is_sendable());
    }

    #[test]
    fn statuses_and_unknown_values() {
        for (s, st) in [
            ("APPROVED", TemplateStatus::Approved),
            ("PENDING", TemplateStatus::Pending),
            ("REJECTED", TemplateStatus::Rejected),
            ("PAUSED", TemplateStatus::Paused),
            ("DISABLED", TemplateStatus::Disabled),
            ("IN_APPEAL", TemplateStatus::InAppeal),
            ("PENDING_DELETION", TemplateStatus::PendingDeletion),
            ("DELETED", TemplateStatus::Deleted),
            ("ARCHIVED", TemplateStatus::Archived),
            ("LIMIT_EXCEEDED", TemplateStatus::LimitExceeded),
            ("approved", TemplateStatus::Approved),
        ] {
            assert_eq!(TemplateStatus::from(s), st);
        }
        let other = TemplateStatus::from("REINSTATED");
        assert_eq!(other, TemplateStatus::Other("REINSTATED".into()));
        assert_eq!(other.as_str(), "REINSTATED");
        assert!(!other.is_sendable());
        assert_eq!(
            TemplateCategory::from("TRANSACTIONAL"),
            TemplateCategory::Other("TRANSACTIONAL".into())
        );
        let s: TemplateStatus = serde_json::from_value(json!(7)).unwrap();
        assert_eq!(s, TemplateStatus::Other("7".into()));
        assert_eq!(
            serde_json::to_value(TemplateStatus::Paused).unwrap(),
            json!("PAUSED")
        );
    }

    #[test]
    fn odd_entries_do_not_fail_the_list() {
        let mut list = TemplateList::default();
        read_page(
            &[
                json!({"name": "bare"}),
                json!({"id": "1"}),
                json!("not an object"),
                json!({"name": "weird", "components": "nope", "status": 3}),
                json!({"name": "odd_buttons", "components": [{"type": "BUTTONS", "buttons": {"x": 1}},
                        {"type": "HEADER", "format": "CAROUSEL"}, {"type": "LIMITED_TIME_OFFER"}]}),
            ],
            &mut list,
        );
        assert_eq!(list.templates.len(), 3);
        assert_eq!(list.skipped.len(), 2);
        assert!(list.skipped[0].problem.contains("no 'name'"));
        let bare = list.find("bare", "").unwrap();
        assert_eq!(bare.status, TemplateStatus::Other(String::new()));
        let odd = list.find("odd_buttons", "").unwrap();
        assert_eq!(
            odd.header.as_ref().unwrap().format,
            HeaderFormat::Other("CAROUSEL".into())
        );
        assert!(odd.buttons.is_empty());
    }

    #[test]
    fn placeholder_scanning() {
        assert_eq!(
            placeholders("{{1}} and {{3}} and {{ 2 }}", ParameterFormat::Positional),
            Placeholders::Positional(3)
        );
        assert_eq!(
            placeholders("no vars {{ }} {{Bad Name}} {{", ParameterFormat::Positional),
            Placeholders::None
        );
        assert_eq!(
            placeholders("{{a}} {{b}} {{a}}", ParameterFormat::Named),
            Placeholders::Named(vec!["a".into(), "b".into()])
        );
        // undeclared format is inferred from the texts
        let t = MessageTemplate::from_json(&json!({"name": "n", "components": [
            {"type": "BODY", "text": "Hi {{first_name}}"}]}))
        .unwrap();
        assert_eq!(t.parameter_format, ParameterFormat::Named);
    }

    fn good_invoice_message() -> Template {
        Template::new("invoice_ready", "en_US")
            .with_header(Parameter::Document {
                document: Document::id("777").with_filename("inv-42.pdf"),
            })
            .with_body_text("Alice")
            .with_body_text("EUR 42.00")
            .with_quick_reply(0, "PAY:42")
            .with_url_button(1, "inv-42")
    }

    fn problem(t: &MessageTemplate, m: &Template) -> ParamProblem {
        check_params(t, m).unwrap_err().problem
    }

    #[test]
    fn a_fitting_message_passes() {
        assert_eq!(
            check_sendable(&invoice_ready(), &good_invoice_message()),
            Ok(())
        );
        // quick-reply payloads are optional
        let no_qr = Template::new("invoice_ready", "en_US")
            .with_header(Parameter::Document {
                document: Document::id("777"),
            })
            .with_body_text("Alice")
            .with_body_text("EUR 42.00")
            .with_url_button(1, "inv-42");
        assert_eq!(check_params(&invoice_ready(), &no_qr), Ok(()));
    }

    #[test]
    fn wrong_name_or_language() {
        let m = Template::new("invoice_ready", "en_GB");
        assert!(matches!(
            problem(&invoice_ready(), &m),
            ParamProblem::WrongTemplate { .. }
        ));
    }

    #[test]
    fn body_count() {
        let m = Template::new("invoice_ready", "en_US")
            .with_header(Parameter::Document {
                document: Document::id("777"),
            })
            .with_body_text("Alice")
            .with_url_button(1, "x");
        let e = check_params(&invoice_ready(), &m).unwrap_err();
        assert_eq!(
            e.to_string(),
            "template 'invoice_ready' (en_US): the body has 2 variable(s) ({{1}} to {{2}}), but 1 parameter(s) were given"
        );
    }

    #[test]
    fn header_media_type() {
        let m = Template::new("invoice_ready", "en_US")
            .with_header(Parameter::Image {
                image: Image::id("1"),
            })
            .with_body_text("Alice")
            .with_body_text("EUR 1")
            .with_url_button(1, "x");
        let e = check_params(&invoice_ready(), &m).unwrap_err().to_string();
        assert!(
            e.contains("the template's header is DOCUMENT, but a 'image' parameter was given"),
            "{e}"
        );
        let m = Template::new("invoice_ready", "en_US")
            .with_body_text("Alice")
            .with_body_text("EUR 1")
            .with_url_button(1, "x");
        assert_eq!(
            problem(&invoice_ready(), &m),
            ParamProblem::HeaderMissing {
                expected: HeaderFormat::Document
            }
        );
    }

    #[test]
    fn buttons() {
        let missing_url = Template::new("invoice_ready", "en_US")
            .with_header(Parameter::Document {
                document: Document::id("777"),
            })
            .with_body_text("Alice")
            .with_body_text("EUR 1");
        let e = check_params(&invoice_ready(), &missing_url)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("button 1 (URL, 'View invoice') needs a parameter"),
            "{e}"
        );
        let wrong_kind = missing_url.clone().with_quick_reply(1, "x");
        assert!(matches!(
            problem(&invoice_ready(), &wrong_kind),
            ParamProblem::ButtonKind { index: 1, .. }
        ));
        let unknown = good_invoice_message().with_quick_reply(5, "x");
        assert!(matches!(
            problem(&invoice_ready(), &unknown),
            ParamProblem::ButtonUnknown { count: 3, .. }
        ));
    }

    #[test]
    fn named_parameters() {
        let mut t = order_named();
        t.status = TemplateStatus::Approved;
        let good = Template::new("order_confirmed", "fr")
            .with_header(Parameter::named_text("order_number", "SO042"))
            .with_body_named("first_name", "Alice")
            .with_body_named("order_number", "SO042")
            .with_body_named("amount", "42 €");
        assert_eq!(check_sendable(&t, &good), Ok(()));

        let missing = Template::new("order_confirmed", "fr")
            .with_header(Parameter::named_text("order_number", "SO042"))
            .with_body_named("first_name", "Alice")
            .with_body_named("total", "42 €");
        assert_eq!(
            problem(&t, &missing),
            ParamProblem::BodyNames {
                missing: vec!["amount".into(), "order_number".into()],
                unknown: vec!["total".into()],
            }
        );
        let positional = Template::new("order_confirmed", "fr")
            .with_header(Parameter::named_text("order_number", "SO042"))
            .with_body_text("Alice");
        assert_eq!(
            problem(&t, &positional),
            ParamProblem::Naming {
                expected: "named",
                given: "positional"
            }
        );
        let wrong_header = Template::new("order_confirmed", "fr")
            .with_header(Parameter::named_text("order", "SO042"))
            .with_body_named("first_name", "Alice")
            .with_body_named("order_number", "SO042")
            .with_body_named("amount", "42 €");
        assert!(matches!(
            problem(&t, &wrong_header),
            ParamProblem::HeaderName { .. }
        ));
    }

    #[test]
    fn status_gate() {
        let paused = order_named();
        let m = Template::new("order_confirmed", "fr");
        let e = check_sendable(&paused, &m).unwrap_err();
        assert!(matches!(e.problem, ParamProblem::NotSendable { .. }));
        assert!(e.to_string().contains("PAUSED"), "{e}");
    }

    #[test]
    fn filled_lengths() {
        let t = MessageTemplate::from_json(
            &json!({"name": "long", "language": "en", "status": "APPROVED",
            "components": [{"type": "HEADER", "format": "TEXT", "text": "Order {{1}}"},
                           {"type": "BODY", "text": "Details: {{1}}"}]}),
        )
        .unwrap();
        let ok = Template::new("long", "en")
            .with_header(Parameter::text("x".repeat(54)))
            .with_body_text("y".repeat(1015));
        assert_eq!(check_params(&t, &ok), Ok(()));
        let long_header = Template::new("long", "en")
            .with_header(Parameter::text("x".repeat(55)))
            .with_body_text("y");
        assert_eq!(
            problem(&t, &long_header),
            ParamProblem::FilledTooLong {
                part: "header",
                actual: 61,
                max: 60
            }
        );
        let long_body = Template::new("long", "en")
            .with_header(Parameter::text("x"))
            .with_body_text("y".repeat(1016));
        assert_eq!(
            problem(&t, &long_body),
            ParamProblem::FilledTooLong {
                part: "body",
                actual: 1025,
                max: 1024
            }
        );
    }

    #[test]
    fn static_text_header_takes_no_parameter() {
        let t = MessageTemplate::from_json(&json!({"name": "hello", "language": "en",
            "components": [{"type": "HEADER", "format": "TEXT", "text": "Welcome"},
                           {"type": "BODY", "text": "Hi there"}]}))
        .unwrap();
        assert_eq!(check_params(&t, &Template::new("hello", "en")), Ok(()));
        let m = Template::new("hello", "en").with_header(Parameter::text("x"));
        assert!(matches!(
            problem(&t, &m),
            ParamProblem::HeaderUnexpected { .. }
        ));
        let m = Template::new("hello", "en").with_body_text("x");
        assert_eq!(
            problem(&t, &m),
            ParamProblem::BodyCount {
                expected: 0,
                given: 1
            }
        );
    }
}
