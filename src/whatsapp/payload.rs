//! Typed bodies for `POST /{version}/{phone-number-id}/messages`, with Meta's limits checked
//! before anything is sent.
//!
//! An [`OutboundMessage`] is the whole request body: recipient, optional reply context and
//! `biz_opaque_callback_data`, and one [`MessageContent`] (text, image, document, template or
//! interactive). The content types are plain serde structs with small builders; building does
//! not fail, and [`OutboundMessage::new`] (and [`OutboundMessage::validate`], which the client
//! calls again before every send) checks every limit from the fact sheet and returns a
//! [`PayloadError`] that names the limit, e.g. `button title 'Confirm my order now!' is 21
//! characters; Meta allows at most 20`.
//!
//! The types also deserialize, so a server (the sandbox) can read a request and apply the same
//! checks with [`OutboundMessage::validate`].
//!
//! Lengths are counted in Unicode characters.

use serde::{Deserialize, Serialize};
use std::collections::HashSet;

/// Text message body: at most 4096 characters.
pub const TEXT_BODY_MAX: usize = 4096;
/// Media caption: at most 1024 characters.
pub const CAPTION_MAX: usize = 1024;
/// `biz_opaque_callback_data`: at most 512 characters (Meta's messages reference).
pub const CALLBACK_DATA_MAX: usize = 512;
/// Reply buttons per message: 1 to 3.
pub const REPLY_BUTTONS_MAX: usize = 3;
/// Reply button title: at most 20 characters.
pub const BUTTON_TITLE_MAX: usize = 20;
/// Reply button id: at most 256 characters.
pub const BUTTON_ID_MAX: usize = 256;
/// Interactive body: at most 1024 characters (lists: some references say 4096; we keep 1024).
pub const INTERACTIVE_BODY_MAX: usize = 1024;
/// Interactive footer: at most 60 characters.
pub const FOOTER_MAX: usize = 60;
/// Interactive or template text header: at most 60 characters.
pub const HEADER_TEXT_MAX: usize = 60;
/// List sections: at most 10.
pub const LIST_SECTIONS_MAX: usize = 10;
/// List rows across all sections: at most 10.
pub const LIST_ROWS_MAX: usize = 10;
/// List section title: at most 24 characters.
pub const SECTION_TITLE_MAX: usize = 24;
/// List button label: at most 20 characters.
pub const LIST_BUTTON_MAX: usize = 20;
/// List row id: at most 200 characters.
pub const ROW_ID_MAX: usize = 200;
/// List row title: at most 24 characters.
pub const ROW_TITLE_MAX: usize = 24;
/// List row description: at most 72 characters.
pub const ROW_DESCRIPTION_MAX: usize = 72;
/// Template name: at most 512 characters.
pub const TEMPLATE_NAME_MAX: usize = 512;
/// E.164 numbers have at most 15 digits.
pub const PHONE_DIGITS_MAX: usize = 15;

/// A message breaks one of Meta's limits. The text names the field, the value and the limit.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    /// A text is longer than allowed.
    #[error("{what} is {actual} characters; Meta allows at most {max}")]
    TooLong {
        /// The field, with a short quote of its value.
        what: String,
        /// Its length.
        actual: usize,
        /// The limit.
        max: usize,
    },
    /// A required text is empty.
    #[error("{what} is empty; Meta requires a value")]
    Empty {
        /// The field.
        what: String,
    },
    /// Too many or too few items.
    #[error("{what}: {actual} given; Meta allows {min} to {max}")]
    Count {
        /// The items.
        what: String,
        /// How many were given.
        actual: usize,
        /// The minimum.
        min: usize,
        /// The maximum.
        max: usize,
    },
    /// A value that must be unique within the message appears twice.
    #[error("{what} '{value}' appears twice; it must be unique within the message")]
    Duplicate {
        /// The field.
        what: String,
        /// The repeated value.
        value: String,
    },
    /// Any other rule.
    #[error("{what}: {problem}")]
    Invalid {
        /// The field.
        what: String,
        /// The rule it breaks and how to fix it.
        problem: String,
    },
}

/// A short quote of a value for error messages.
fn quote(s: &str) -> String {
    const KEEP: usize = 40;
    if s.chars().count() <= KEEP {
        format!("'{s}'")
    } else {
        let head: String = s.chars().take(KEEP - 3).collect();
        format!("'{head}...'")
    }
}

fn max_chars(what: impl FnOnce() -> String, value: &str, max: usize) -> Result<(), PayloadError> {
    let actual = value.chars().count();
    if actual > max {
        return Err(PayloadError::TooLong {
            what: what(),
            actual,
            max,
        });
    }
    Ok(())
}

fn required(what: impl Fn() -> String, value: &str, max: usize) -> Result<(), PayloadError> {
    if value.trim().is_empty() {
        return Err(PayloadError::Empty { what: what() });
    }
    max_chars(what, value, max)
}

fn invalid(what: impl Into<String>, problem: impl Into<String>) -> PayloadError {
    PayloadError::Invalid {
        what: what.into(),
        problem: problem.into(),
    }
}

fn count(what: &str, actual: usize, min: usize, max: usize) -> Result<(), PayloadError> {
    if actual < min || actual > max {
        return Err(PayloadError::Count {
            what: what.to_string(),
            actual,
            min,
            max,
        });
    }
    Ok(())
}

fn is_false(b: &bool) -> bool {
    !*b
}

fn whatsapp() -> String {
    "whatsapp".to_string()
}

/// The whole body of a send request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboundMessage {
    /// Always `whatsapp`.
    pub messaging_product: String,
    /// `individual` (the default when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recipient_type: Option<String>,
    /// The recipient's number with country code, digits with an optional leading `+`.
    pub to: String,
    /// Quote a previous message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<ReplyContext>,
    /// Echoed back in status webhooks; the daemon puts its own message id here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub biz_opaque_callback_data: Option<String>,
    /// The content, tagged by `type`.
    #[serde(flatten)]
    pub content: MessageContent,
}

/// `context`: the message being replied to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplyContext {
    /// The wamid of the quoted message.
    pub message_id: String,
}

/// The content of a message; `type` in the JSON selects the sibling object.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum MessageContent {
    /// A text message.
    Text {
        /// The text.
        text: Text,
    },
    /// An image by uploaded id or link.
    Image {
        /// The image.
        image: Image,
    },
    /// A document by uploaded id or link.
    Document {
        /// The document.
        document: Document,
    },
    /// An approved template (the only type allowed outside the 24-hour window).
    Template {
        /// The template and its parameters.
        template: Template,
    },
    /// Reply buttons or a list.
    Interactive {
        /// The interactive content.
        interactive: Interactive,
    },
}

impl MessageContent {
    /// The `type` value: `text`, `image`, `document`, `template` or `interactive`.
    pub fn kind(&self) -> &'static str {
        match self {
            MessageContent::Text { .. } => "text",
            MessageContent::Image { .. } => "image",
            MessageContent::Document { .. } => "document",
            MessageContent::Template { .. } => "template",
            MessageContent::Interactive { .. } => "interactive",
        }
    }

    /// True for templates, the only content allowed outside the 24-hour window.
    pub fn is_template(&self) -> bool {
        matches!(self, MessageContent::Template { .. })
    }

    /// Checks this content against Meta's limits.
    pub fn validate(&self) -> Result<(), PayloadError> {
        match self {
            MessageContent::Text { text } => text.validate(),
            MessageContent::Image { image } => image.validate("image"),
            MessageContent::Document { document } => document.validate("document"),
            MessageContent::Template { template } => template.validate(),
            MessageContent::Interactive { interactive } => interactive.validate(),
        }
    }
}

impl From<Text> for MessageContent {
    fn from(text: Text) -> Self {
        MessageContent::Text { text }
    }
}
impl From<Image> for MessageContent {
    fn from(image: Image) -> Self {
        MessageContent::Image { image }
    }
}
impl From<Document> for MessageContent {
    fn from(document: Document) -> Self {
        MessageContent::Document { document }
    }
}
impl From<Template> for MessageContent {
    fn from(template: Template) -> Self {
        MessageContent::Template { template }
    }
}
impl From<Interactive> for MessageContent {
    fn from(interactive: Interactive) -> Self {
        MessageContent::Interactive { interactive }
    }
}
impl From<ReplyButtons> for MessageContent {
    fn from(b: ReplyButtons) -> Self {
        MessageContent::Interactive {
            interactive: Interactive::Button(b),
        }
    }
}
impl From<ListMessage> for MessageContent {
    fn from(l: ListMessage) -> Self {
        MessageContent::Interactive {
            interactive: Interactive::List(l),
        }
    }
}

impl OutboundMessage {
    /// A message to `to`; checks every limit.
    pub fn new(
        to: impl Into<String>,
        content: impl Into<MessageContent>,
    ) -> Result<Self, PayloadError> {
        let m = OutboundMessage {
            messaging_product: whatsapp(),
            recipient_type: Some("individual".into()),
            to: to.into(),
            context: None,
            biz_opaque_callback_data: None,
            content: content.into(),
        };
        m.validate()?;
        Ok(m)
    }

    /// Quotes the message with this wamid.
    pub fn reply_to(mut self, message_id: impl Into<String>) -> Result<Self, PayloadError> {
        self.context = Some(ReplyContext {
            message_id: message_id.into(),
        });
        self.validate_envelope()?;
        Ok(self)
    }

    /// Attaches `biz_opaque_callback_data` (at most 512 characters), echoed in status webhooks.
    pub fn callback_data(mut self, data: impl Into<String>) -> Result<Self, PayloadError> {
        self.biz_opaque_callback_data = Some(data.into());
        self.validate_envelope()?;
        Ok(self)
    }

    /// Checks the whole message against Meta's limits.
    pub fn validate(&self) -> Result<(), PayloadError> {
        self.validate_envelope()?;
        self.content.validate()
    }

    fn validate_envelope(&self) -> Result<(), PayloadError> {
        if self.messaging_product != "whatsapp" {
            return Err(invalid(
                "messaging_product",
                format!(
                    "is {}; it must be 'whatsapp'",
                    quote(&self.messaging_product)
                ),
            ));
        }
        if let Some(rt) = &self.recipient_type {
            if rt != "individual" {
                return Err(invalid(
                    "recipient_type",
                    format!("is {}; only 'individual' is supported", quote(rt)),
                ));
            }
        }
        check_recipient(&self.to)?;
        if let Some(ctx) = &self.context {
            let id = ctx.message_id.as_str();
            if id.trim().is_empty() {
                return Err(PayloadError::Empty {
                    what: "reply context message_id".into(),
                });
            }
            if id.chars().any(char::is_whitespace) {
                return Err(invalid(
                    format!("reply context message_id {}", quote(id)),
                    "contains white space; it must be the wamid of the quoted message",
                ));
            }
        }
        if let Some(data) = &self.biz_opaque_callback_data {
            max_chars(
                || format!("biz_opaque_callback_data {}", quote(data)),
                data,
                CALLBACK_DATA_MAX,
            )?;
        }
        Ok(())
    }
}

/// Checks a recipient number: digits with the country code, an optional leading `+`, at most
/// 15 digits, no spaces or separators.
pub fn check_recipient(to: &str) -> Result<(), PayloadError> {
    if to.trim().is_empty() {
        return Err(PayloadError::Empty {
            what: "recipient number (to)".into(),
        });
    }
    let digits = to.strip_prefix('+').unwrap_or(to);
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
        return Err(invalid(
            format!("recipient number {}", quote(to)),
            "must be digits with the country code and an optional leading '+', \
             without spaces or separators (e.g. +4915112345678)",
        ));
    }
    if digits.starts_with('0') {
        return Err(invalid(
            format!("recipient number {}", quote(to)),
            "starts with 0; write it with the country code instead of a trunk prefix \
             (e.g. +4915112345678, not 015112345678)",
        ));
    }
    if digits.len() > PHONE_DIGITS_MAX {
        return Err(PayloadError::TooLong {
            what: format!("recipient number {}", quote(to)),
            actual: digits.len(),
            max: PHONE_DIGITS_MAX,
        });
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Text and media

/// A text message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Text {
    /// At most 4096 characters.
    pub body: String,
    /// Render a preview of the first URL.
    #[serde(default, skip_serializing_if = "is_false")]
    pub preview_url: bool,
}

impl Text {
    /// A text without link preview.
    pub fn new(body: impl Into<String>) -> Self {
        Text {
            body: body.into(),
            preview_url: false,
        }
    }

    /// Asks WhatsApp to render a preview of the first http(s) URL.
    pub fn with_preview(mut self, preview_url: bool) -> Self {
        self.preview_url = preview_url;
        self
    }

    /// Checks the length.
    pub fn validate(&self) -> Result<(), PayloadError> {
        required(|| "text body".into(), &self.body, TEXT_BODY_MAX)
    }
}

/// An image: an uploaded media `id` or an https `link`, and an optional caption.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Image {
    /// Uploaded media id (recommended by Meta).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// A link you host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    /// At most 1024 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caption: Option<String>,
}

impl Image {
    /// By uploaded media id.
    pub fn id(id: impl Into<String>) -> Self {
        Image {
            id: Some(id.into()),
            ..Default::default()
        }
    }
    /// By link.
    pub fn link(link: impl Into<String>) -> Self {
        Image {
            link: Some(link.into()),
            ..Default::default()
        }
    }
    /// With a caption.
    pub fn with_caption(mut self, caption: impl Into<String>) -> Self {
        self.caption = Some(caption.into());
        self
    }
    fn validate(&self, what: &str) -> Result<(), PayloadError> {
        check_media_source(what, self.id.as_deref(), self.link.as_deref())?;
        check_caption(what, self.caption.as_deref())
    }
}

/// A video: id or link and an optional caption (used in template and interactive headers).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Video {
    /// Uploaded media id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// A link you host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    /// At most 1024 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caption: Option<String>,
}

impl Video {
    /// By uploaded media id.
    pub fn id(id: impl Into<String>) -> Self {
        Video {
            id: Some(id.into()),
            ..Default::default()
        }
    }
    /// By link.
    pub fn link(link: impl Into<String>) -> Self {
        Video {
            link: Some(link.into()),
            ..Default::default()
        }
    }
    fn validate(&self, what: &str) -> Result<(), PayloadError> {
        check_media_source(what, self.id.as_deref(), self.link.as_deref())?;
        check_caption(what, self.caption.as_deref())
    }
}

/// A document: id or link, an optional file name (its extension picks the icon) and caption.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Document {
    /// Uploaded media id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// A link you host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link: Option<String>,
    /// At most 1024 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caption: Option<String>,
    /// Shown to the user, e.g. `invoice-42.pdf`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
}

impl Document {
    /// By uploaded media id.
    pub fn id(id: impl Into<String>) -> Self {
        Document {
            id: Some(id.into()),
            ..Default::default()
        }
    }
    /// By link.
    pub fn link(link: impl Into<String>) -> Self {
        Document {
            link: Some(link.into()),
            ..Default::default()
        }
    }
    /// With a file name.
    pub fn with_filename(mut self, filename: impl Into<String>) -> Self {
        self.filename = Some(filename.into());
        self
    }
    /// With a caption.
    pub fn with_caption(mut self, caption: impl Into<String>) -> Self {
        self.caption = Some(caption.into());
        self
    }
    fn validate(&self, what: &str) -> Result<(), PayloadError> {
        check_media_source(what, self.id.as_deref(), self.link.as_deref())?;
        check_caption(what, self.caption.as_deref())?;
        if let Some(name) = &self.filename {
            if name.trim().is_empty() {
                return Err(PayloadError::Empty {
                    what: format!("{what} filename"),
                });
            }
            if name.contains(['/', '\\']) {
                return Err(invalid(
                    format!("{what} filename {}", quote(name)),
                    "must be a file name without a folder (no '/' or '\\')",
                ));
            }
        }
        Ok(())
    }
}

fn check_caption(what: &str, caption: Option<&str>) -> Result<(), PayloadError> {
    if let Some(c) = caption {
        max_chars(|| format!("{what} caption {}", quote(c)), c, CAPTION_MAX)?;
    }
    Ok(())
}

fn check_media_source(
    what: &str,
    id: Option<&str>,
    link: Option<&str>,
) -> Result<(), PayloadError> {
    match (id, link) {
        (Some(_), Some(_)) => Err(invalid(
            what,
            "has both 'id' and 'link'; give exactly one of them",
        )),
        (None, None) => Err(invalid(
            what,
            "has neither 'id' nor 'link'; give an uploaded media id or an https link",
        )),
        (Some(id), None) => {
            if id.trim().is_empty() || id.chars().any(char::is_whitespace) {
                return Err(invalid(
                    format!("{what} id {}", quote(id)),
                    "is not a media id; upload the file first and use the id Meta returns",
                ));
            }
            Ok(())
        }
        (None, Some(link)) => match url::Url::parse(link) {
            Ok(u) if matches!(u.scheme(), "https" | "http") && u.host().is_some() => Ok(()),
            Ok(_) => Err(invalid(
                format!("{what} link {}", quote(link)),
                "must be an http(s) URL that Meta can download",
            )),
            Err(e) => Err(invalid(
                format!("{what} link {}", quote(link)),
                format!("is not a URL ({e})"),
            )),
        },
    }
}

// ---------------------------------------------------------------------------------------------
// Templates

/// A template message: name, language and the parameters that fill its variables.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Template {
    /// The template's name as approved.
    pub name: String,
    /// The approved translation.
    pub language: Language,
    /// Header, body and button parameters; empty when the template has no variables.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub components: Vec<TemplateComponent>,
}

/// `language` of a template message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Language {
    /// Must match the approved translation exactly, e.g. `en_US`.
    pub code: String,
    /// Older optional field (`deterministic`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
}

/// One component of a template message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TemplateComponent {
    /// The header's single parameter.
    Header {
        /// Exactly one parameter: text, image, video, document or location.
        parameters: Vec<Parameter>,
    },
    /// The body's parameters, in order (positional) or by name.
    Body {
        /// Text, currency or date-time parameters.
        parameters: Vec<Parameter>,
    },
    /// A button that needs a parameter.
    Button {
        /// `quick_reply`, `url`, ...
        sub_type: ButtonSubType,
        /// The button's position as a string, from `"0"`.
        index: String,
        /// One `payload` (quick reply) or `text` (url suffix) parameter.
        #[serde(default)]
        parameters: Vec<Parameter>,
    },
}

/// `sub_type` of a template button component.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ButtonSubType {
    /// Quick reply: a `payload` parameter, echoed in the inbound `button.payload`.
    QuickReply,
    /// URL: a `text` parameter appended to the template's URL.
    Url,
    /// Copy code.
    CopyCode,
    /// Flow.
    Flow,
    /// Catalog.
    Catalog,
}

/// A template parameter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Parameter {
    /// Text (body, header, url suffix).
    Text {
        /// The value.
        text: String,
        /// For named-parameter templates.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        parameter_name: Option<String>,
    },
    /// A currency amount with a fallback text.
    Currency {
        /// The amount.
        currency: Currency,
        /// For named-parameter templates.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        parameter_name: Option<String>,
    },
    /// A date with a fallback text.
    DateTime {
        /// The date.
        date_time: DateTime,
        /// For named-parameter templates.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        parameter_name: Option<String>,
    },
    /// Header image.
    Image {
        /// The image.
        image: Image,
    },
    /// Header video.
    Video {
        /// The video.
        video: Video,
    },
    /// Header document.
    Document {
        /// The document.
        document: Document,
    },
    /// Header location.
    Location {
        /// The location.
        location: Location,
    },
    /// Quick-reply button payload.
    Payload {
        /// Comes back in the inbound `button.payload`.
        payload: String,
    },
}

/// `currency` parameter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Currency {
    /// Shown when the client cannot format the amount.
    pub fallback_value: String,
    /// ISO 4217 code, e.g. `EUR`.
    pub code: String,
    /// The amount times 1000.
    pub amount_1000: i64,
}

/// `date_time` parameter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DateTime {
    /// The text shown.
    pub fallback_value: String,
}

/// `location` parameter (template header).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Location {
    /// Degrees.
    pub latitude: f64,
    /// Degrees.
    pub longitude: f64,
    /// Place name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address: Option<String>,
}

impl Parameter {
    /// A positional text parameter.
    pub fn text(value: impl Into<String>) -> Self {
        Parameter::Text {
            text: value.into(),
            parameter_name: None,
        }
    }

    /// A named text parameter.
    pub fn named_text(name: impl Into<String>, value: impl Into<String>) -> Self {
        Parameter::Text {
            text: value.into(),
            parameter_name: Some(name.into()),
        }
    }

    /// The `type` value.
    pub fn kind(&self) -> &'static str {
        match self {
            Parameter::Text { .. } => "text",
            Parameter::Currency { .. } => "currency",
            Parameter::DateTime { .. } => "date_time",
            Parameter::Image { .. } => "image",
            Parameter::Video { .. } => "video",
            Parameter::Document { .. } => "document",
            Parameter::Location { .. } => "location",
            Parameter::Payload { .. } => "payload",
        }
    }

    /// `parameter_name`, for text, currency and date-time parameters.
    pub fn name(&self) -> Option<&str> {
        match self {
            Parameter::Text { parameter_name, .. }
            | Parameter::Currency { parameter_name, .. }
            | Parameter::DateTime { parameter_name, .. } => parameter_name.as_deref(),
            _ => None,
        }
    }

    /// The text this parameter shows (fallback values for currency and date).
    pub fn display_text(&self) -> Option<&str> {
        match self {
            Parameter::Text { text, .. } => Some(text),
            Parameter::Currency { currency, .. } => Some(&currency.fallback_value),
            Parameter::DateTime { date_time, .. } => Some(&date_time.fallback_value),
            _ => None,
        }
    }
}

impl Template {
    /// A template with no parameters yet.
    pub fn new(name: impl Into<String>, language_code: impl Into<String>) -> Self {
        Template {
            name: name.into(),
            language: Language {
                code: language_code.into(),
                policy: None,
            },
            components: Vec::new(),
        }
    }

    /// Sets the header parameter (replacing any earlier one).
    pub fn with_header(mut self, parameter: Parameter) -> Self {
        self.components
            .retain(|c| !matches!(c, TemplateComponent::Header { .. }));
        self.components.insert(
            0,
            TemplateComponent::Header {
                parameters: vec![parameter],
            },
        );
        self
    }

    /// Appends a body parameter.
    pub fn with_body_parameter(mut self, parameter: Parameter) -> Self {
        if let Some(TemplateComponent::Body { parameters }) = self
            .components
            .iter_mut()
            .find(|c| matches!(c, TemplateComponent::Body { .. }))
        {
            parameters.push(parameter);
        } else {
            self.components.push(TemplateComponent::Body {
                parameters: vec![parameter],
            });
        }
        self
    }

    /// Appends a positional body text parameter.
    pub fn with_body_text(self, value: impl Into<String>) -> Self {
        self.with_body_parameter(Parameter::text(value))
    }

    /// Appends a named body text parameter.
    pub fn with_body_named(self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.with_body_parameter(Parameter::named_text(name, value))
    }

    /// A quick-reply button payload for the button at `index` (from 0).
    pub fn with_quick_reply(mut self, index: u8, payload: impl Into<String>) -> Self {
        self.components.push(TemplateComponent::Button {
            sub_type: ButtonSubType::QuickReply,
            index: index.to_string(),
            parameters: vec![Parameter::Payload {
                payload: payload.into(),
            }],
        });
        self
    }

    /// The URL suffix for the dynamic URL button at `index` (from 0).
    pub fn with_url_button(mut self, index: u8, suffix: impl Into<String>) -> Self {
        self.components.push(TemplateComponent::Button {
            sub_type: ButtonSubType::Url,
            index: index.to_string(),
            parameters: vec![Parameter::text(suffix)],
        });
        self
    }

    /// The header parameter, if any.
    pub fn header(&self) -> Option<&Parameter> {
        self.components.iter().find_map(|c| match c {
            TemplateComponent::Header { parameters } => parameters.first(),
            _ => None,
        })
    }

    /// The body parameters (empty when none).
    pub fn body(&self) -> &[Parameter] {
        self.components
            .iter()
            .find_map(|c| match c {
                TemplateComponent::Body { parameters } => Some(parameters.as_slice()),
                _ => None,
            })
            .unwrap_or(&[])
    }

    /// Checks name, language and parameters against Meta's rules (not against the template's
    /// definition: see [`super::templates::check_params`]).
    pub fn validate(&self) -> Result<(), PayloadError> {
        required(|| "template name".into(), &self.name, TEMPLATE_NAME_MAX)?;
        if !self
            .name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            return Err(invalid(
                format!("template name {}", quote(&self.name)),
                "may contain only lowercase letters, digits and '_'",
            ));
        }
        let code = &self.language.code;
        if code.is_empty()
            || code.len() > 15
            || !code.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            return Err(invalid(
                format!("template language code {}", quote(code)),
                "must be the approved translation's code, e.g. en_US or pt_BR",
            ));
        }

        let mut headers = 0;
        let mut bodies = 0;
        let mut button_indexes = HashSet::new();
        let mut named = 0usize;
        let mut positional = 0usize;
        for component in &self.components {
            match component {
                TemplateComponent::Header { parameters } => {
                    headers += 1;
                    count("template header parameters", parameters.len(), 1, 1)?;
                    for p in parameters {
                        check_header_parameter(p)?;
                        tally_naming(p, &mut named, &mut positional);
                    }
                }
                TemplateComponent::Body { parameters } => {
                    bodies += 1;
                    let mut names = HashSet::new();
                    for (i, p) in parameters.iter().enumerate() {
                        check_body_parameter(i + 1, p)?;
                        tally_naming(p, &mut named, &mut positional);
                        if let Some(n) = p.name() {
                            if !names.insert(n) {
                                return Err(PayloadError::Duplicate {
                                    what: "template body parameter_name".into(),
                                    value: n.to_string(),
                                });
                            }
                        }
                    }
                }
                TemplateComponent::Button {
                    sub_type,
                    index,
                    parameters,
                } => {
                    let i: u8 = match index.parse() {
                        Ok(i) if i <= 9 => i,
                        _ => {
                            return Err(invalid(
                                format!("template button index {}", quote(index)),
                                "must be the button's position as a string from \"0\" to \"9\"",
                            ))
                        }
                    };
                    if !button_indexes.insert(i) {
                        return Err(PayloadError::Duplicate {
                            what: "template button index".into(),
                            value: index.clone(),
                        });
                    }
                    check_button_parameters(*sub_type, index, parameters)?;
                }
            }
        }
        count("template header components", headers, 0, 1)?;
        count("template body components", bodies, 0, 1)?;
        if named > 0 && positional > 0 {
            return Err(invalid(
                "template parameters",
                format!(
                    "{named} have a parameter_name and {positional} do not; header and body \
                     must be all named or all positional"
                ),
            ));
        }
        Ok(())
    }
}

fn tally_naming(p: &Parameter, named: &mut usize, positional: &mut usize) {
    match p {
        Parameter::Text { .. } | Parameter::Currency { .. } | Parameter::DateTime { .. } => {
            if p.name().is_some() {
                *named += 1
            } else {
                *positional += 1
            }
        }
        _ => {}
    }
}

fn check_parameter_name(where_: &str, name: Option<&str>) -> Result<(), PayloadError> {
    if let Some(n) = name {
        if n.is_empty()
            || !n
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        {
            return Err(invalid(
                format!("{where_} parameter_name {}", quote(n)),
                "may contain only lowercase letters, digits and '_'",
            ));
        }
    }
    Ok(())
}

/// Meta refuses variable values with new lines, tabs or more than four spaces in a row.
fn check_variable_text(what: impl Fn() -> String, value: &str) -> Result<(), PayloadError> {
    if value.trim().is_empty() {
        return Err(PayloadError::Empty { what: what() });
    }
    if value.contains(['\n', '\r', '\t']) {
        return Err(invalid(
            what(),
            "contains a new line or a tab, which Meta refuses in template variables; \
             put the text on one line",
        ));
    }
    if value.contains("     ") {
        return Err(invalid(
            what(),
            "contains more than four spaces in a row, which Meta refuses in template variables",
        ));
    }
    Ok(())
}

fn check_header_parameter(p: &Parameter) -> Result<(), PayloadError> {
    match p {
        Parameter::Text {
            text,
            parameter_name,
        } => {
            check_parameter_name("template header", parameter_name.as_deref())?;
            check_variable_text(|| format!("template header text {}", quote(text)), text)?;
            max_chars(
                || format!("template header text {}", quote(text)),
                text,
                HEADER_TEXT_MAX,
            )
        }
        Parameter::Image { image } => {
            no_caption("template header image", image.caption.as_deref())?;
            image.validate("template header image")
        }
        Parameter::Video { video } => {
            no_caption("template header video", video.caption.as_deref())?;
            video.validate("template header video")
        }
        Parameter::Document { document } => {
            no_caption("template header document", document.caption.as_deref())?;
            document.validate("template header document")
        }
        Parameter::Location { location } => check_location(location),
        other => Err(invalid(
            "template header parameter",
            format!(
                "has type '{}'; a header takes text, image, video, document or location",
                other.kind()
            ),
        )),
    }
}

fn no_caption(what: &str, caption: Option<&str>) -> Result<(), PayloadError> {
    if caption.is_some() {
        return Err(invalid(what, "has a caption; headers take no caption"));
    }
    Ok(())
}

fn check_location(l: &Location) -> Result<(), PayloadError> {
    if !(-90.0..=90.0).contains(&l.latitude) || !(-180.0..=180.0).contains(&l.longitude) {
        return Err(invalid(
            "location",
            format!(
                "latitude {} / longitude {} is not on Earth (latitude -90..90, longitude -180..180)",
                l.latitude, l.longitude
            ),
        ));
    }
    Ok(())
}

fn check_body_parameter(position: usize, p: &Parameter) -> Result<(), PayloadError> {
    let what = || match p.name() {
        Some(n) => format!("template body parameter '{n}'"),
        None => format!("template body parameter {{{{{position}}}}}"),
    };
    match p {
        Parameter::Text {
            text,
            parameter_name,
        } => {
            check_parameter_name("template body", parameter_name.as_deref())?;
            check_variable_text(what, text)
        }
        Parameter::Currency {
            currency,
            parameter_name,
        } => {
            check_parameter_name("template body", parameter_name.as_deref())?;
            check_variable_text(what, &currency.fallback_value)?;
            if currency.code.len() != 3 || !currency.code.chars().all(|c| c.is_ascii_uppercase()) {
                return Err(invalid(
                    format!("{} currency code {}", what(), quote(&currency.code)),
                    "must be a 3-letter ISO 4217 code such as EUR",
                ));
            }
            Ok(())
        }
        Parameter::DateTime {
            date_time,
            parameter_name,
        } => {
            check_parameter_name("template body", parameter_name.as_deref())?;
            check_variable_text(what, &date_time.fallback_value)
        }
        other => Err(invalid(
            what(),
            format!(
                "has type '{}'; the body takes text, currency or date_time",
                other.kind()
            ),
        )),
    }
}

fn check_button_parameters(
    sub_type: ButtonSubType,
    index: &str,
    parameters: &[Parameter],
) -> Result<(), PayloadError> {
    let what = format!("template button {index}");
    match sub_type {
        ButtonSubType::QuickReply => {
            count(
                &format!("{what} (quick reply) parameters"),
                parameters.len(),
                1,
                1,
            )?;
            match &parameters[0] {
                Parameter::Payload { payload } => required(
                    || format!("{what} quick-reply payload"),
                    payload,
                    BUTTON_ID_MAX,
                ),
                other => Err(invalid(
                    what,
                    format!(
                        "is a quick reply and takes a 'payload' parameter, not '{}'",
                        other.kind()
                    ),
                )),
            }
        }
        ButtonSubType::Url => {
            count(&format!("{what} (url) parameters"), parameters.len(), 1, 1)?;
            match &parameters[0] {
                Parameter::Text { text, .. } => {
                    if text.trim().is_empty() {
                        return Err(PayloadError::Empty {
                            what: format!("{what} url suffix"),
                        });
                    }
                    if text.chars().any(char::is_whitespace) {
                        return Err(invalid(
                            format!("{what} url suffix {}", quote(text)),
                            "contains white space; it is appended to the template's URL",
                        ));
                    }
                    Ok(())
                }
                other => Err(invalid(
                    what,
                    format!(
                        "is a url button and takes a 'text' parameter, not '{}'",
                        other.kind()
                    ),
                )),
            }
        }
        ButtonSubType::CopyCode | ButtonSubType::Flow | ButtonSubType::Catalog => Ok(()),
    }
}

// ---------------------------------------------------------------------------------------------
// Interactive

/// Interactive content: reply buttons or a list.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Interactive {
    /// Up to three reply buttons.
    Button(ReplyButtons),
    /// A list of up to ten rows.
    List(ListMessage),
}

impl Interactive {
    /// Checks the limits.
    pub fn validate(&self) -> Result<(), PayloadError> {
        match self {
            Interactive::Button(b) => b.validate(),
            Interactive::List(l) => l.validate(),
        }
    }
}

/// The header of an interactive message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum InteractiveHeader {
    /// At most 60 characters.
    Text {
        /// The text.
        text: String,
    },
    /// An image (buttons only).
    Image {
        /// The image.
        image: Image,
    },
    /// A video (buttons only).
    Video {
        /// The video.
        video: Video,
    },
    /// A document (buttons only).
    Document {
        /// The document.
        document: Document,
    },
}

impl InteractiveHeader {
    /// A text header.
    pub fn text(text: impl Into<String>) -> Self {
        InteractiveHeader::Text { text: text.into() }
    }

    fn validate(&self) -> Result<(), PayloadError> {
        match self {
            InteractiveHeader::Text { text } => required(
                || format!("interactive header text {}", quote(text)),
                text,
                HEADER_TEXT_MAX,
            ),
            InteractiveHeader::Image { image } => {
                no_caption("interactive header image", image.caption.as_deref())?;
                image.validate("interactive header image")
            }
            InteractiveHeader::Video { video } => {
                no_caption("interactive header video", video.caption.as_deref())?;
                video.validate("interactive header video")
            }
            InteractiveHeader::Document { document } => {
                no_caption("interactive header document", document.caption.as_deref())?;
                document.validate("interactive header document")
            }
        }
    }
}

/// `{"text": ...}` for interactive bodies and footers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TextObject {
    /// The text.
    pub text: String,
}

/// Reply-buttons message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplyButtons {
    /// Optional header: text (≤ 60), image, video or document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<InteractiveHeader>,
    /// At most 1024 characters.
    pub body: TextObject,
    /// At most 60 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub footer: Option<TextObject>,
    /// The buttons.
    pub action: ButtonsAction,
}

/// `action` of a reply-buttons message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ButtonsAction {
    /// 1 to 3 buttons.
    pub buttons: Vec<ReplyButton>,
}

/// One reply button.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplyButton {
    /// Always `reply`.
    #[serde(rename = "type")]
    pub kind: String,
    /// Id and title.
    pub reply: ButtonReply,
}

/// `reply` of a reply button.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ButtonReply {
    /// At most 256 characters, no leading or trailing spaces; comes back in the webhook.
    pub id: String,
    /// At most 20 characters, unique within the message.
    pub title: String,
}

impl ReplyButtons {
    /// A reply-buttons message with this body and no buttons yet.
    pub fn new(body: impl Into<String>) -> Self {
        ReplyButtons {
            header: None,
            body: TextObject { text: body.into() },
            footer: None,
            action: ButtonsAction {
                buttons: Vec::new(),
            },
        }
    }

    /// Adds a button.
    pub fn button(mut self, id: impl Into<String>, title: impl Into<String>) -> Self {
        self.action.buttons.push(ReplyButton {
            kind: "reply".into(),
            reply: ButtonReply {
                id: id.into(),
                title: title.into(),
            },
        });
        self
    }

    /// Sets the header.
    pub fn with_header(mut self, header: InteractiveHeader) -> Self {
        self.header = Some(header);
        self
    }

    /// Sets the footer.
    pub fn with_footer(mut self, footer: impl Into<String>) -> Self {
        self.footer = Some(TextObject {
            text: footer.into(),
        });
        self
    }

    /// Checks the limits.
    pub fn validate(&self) -> Result<(), PayloadError> {
        if let Some(h) = &self.header {
            h.validate()?;
        }
        required(
            || format!("interactive body {}", quote(&self.body.text)),
            &self.body.text,
            INTERACTIVE_BODY_MAX,
        )?;
        if let Some(f) = &self.footer {
            required(
                || format!("interactive footer {}", quote(&f.text)),
                &f.text,
                FOOTER_MAX,
            )?;
        }
        let buttons = &self.action.buttons;
        count("reply buttons", buttons.len(), 1, REPLY_BUTTONS_MAX)?;
        let mut titles = HashSet::new();
        let mut ids = HashSet::new();
        for b in buttons {
            if b.kind != "reply" {
                return Err(invalid(
                    format!("reply button type {}", quote(&b.kind)),
                    "must be 'reply'",
                ));
            }
            let ButtonReply { id, title } = &b.reply;
            required(
                || format!("button title {}", quote(title)),
                title,
                BUTTON_TITLE_MAX,
            )?;
            required(|| format!("button id {}", quote(id)), id, BUTTON_ID_MAX)?;
            if id.trim() != id {
                return Err(invalid(
                    format!("button id {}", quote(id)),
                    "has leading or trailing spaces; Meta refuses them",
                ));
            }
            if !titles.insert(title.as_str()) {
                return Err(PayloadError::Duplicate {
                    what: "button title".into(),
                    value: title.clone(),
                });
            }
            if !ids.insert(id.as_str()) {
                return Err(PayloadError::Duplicate {
                    what: "button id".into(),
                    value: id.clone(),
                });
            }
        }
        Ok(())
    }
}

/// List message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ListMessage {
    /// Optional header; lists take a text header only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header: Option<InteractiveHeader>,
    /// At most 1024 characters.
    pub body: TextObject,
    /// At most 60 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub footer: Option<TextObject>,
    /// Button label and sections.
    pub action: ListAction,
}

/// `action` of a list message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListAction {
    /// The label of the button that opens the list: at most 20 characters.
    pub button: String,
    /// 1 to 10 sections, 10 rows in total.
    pub sections: Vec<ListSection>,
}

/// A list section.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListSection {
    /// Required when there is more than one section; at most 24 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The rows.
    pub rows: Vec<ListRow>,
}

/// A list row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListRow {
    /// At most 200 characters, unique; comes back in the webhook.
    pub id: String,
    /// At most 24 characters.
    pub title: String,
    /// At most 72 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

impl ListSection {
    /// A section, titled or not.
    pub fn new(title: Option<&str>) -> Self {
        ListSection {
            title: title.map(str::to_string),
            rows: Vec::new(),
        }
    }

    /// Adds a row.
    pub fn row(mut self, id: impl Into<String>, title: impl Into<String>) -> Self {
        self.rows.push(ListRow {
            id: id.into(),
            title: title.into(),
            description: None,
        });
        self
    }

    /// Adds a row with a description.
    pub fn row_with_description(
        mut self,
        id: impl Into<String>,
        title: impl Into<String>,
        description: impl Into<String>,
    ) -> Self {
        self.rows.push(ListRow {
            id: id.into(),
            title: title.into(),
            description: Some(description.into()),
        });
        self
    }
}

impl ListMessage {
    /// A list with this body and button label, no sections yet.
    pub fn new(body: impl Into<String>, button: impl Into<String>) -> Self {
        ListMessage {
            header: None,
            body: TextObject { text: body.into() },
            footer: None,
            action: ListAction {
                button: button.into(),
                sections: Vec::new(),
            },
        }
    }

    /// Adds a section.
    pub fn section(mut self, section: ListSection) -> Self {
        self.action.sections.push(section);
        self
    }

    /// Sets a text header.
    pub fn with_header(mut self, header: impl Into<String>) -> Self {
        self.header = Some(InteractiveHeader::text(header));
        self
    }

    /// Sets the footer.
    pub fn with_footer(mut self, footer: impl Into<String>) -> Self {
        self.footer = Some(TextObject {
            text: footer.into(),
        });
        self
    }

    /// Checks the limits.
    pub fn validate(&self) -> Result<(), PayloadError> {
        match &self.header {
            None => {}
            Some(h @ InteractiveHeader::Text { .. }) => h.validate()?,
            Some(_) => {
                return Err(invalid(
                    "list header",
                    "must be of type text; lists take no image, video or document header",
                ))
            }
        }
        required(
            || format!("list body {}", quote(&self.body.text)),
            &self.body.text,
            INTERACTIVE_BODY_MAX,
        )?;
        if let Some(f) = &self.footer {
            required(
                || format!("list footer {}", quote(&f.text)),
                &f.text,
                FOOTER_MAX,
            )?;
        }
        let label = &self.action.button;
        required(
            || format!("list button label {}", quote(label)),
            label,
            LIST_BUTTON_MAX,
        )?;
        let sections = &self.action.sections;
        count("list sections", sections.len(), 1, LIST_SECTIONS_MAX)?;
        let total: usize = sections.iter().map(|s| s.rows.len()).sum();
        count("list rows across all sections", total, 1, LIST_ROWS_MAX)?;
        let mut ids = HashSet::new();
        for (n, s) in sections.iter().enumerate() {
            match &s.title {
                Some(t) => required(
                    || format!("list section title {}", quote(t)),
                    t,
                    SECTION_TITLE_MAX,
                )?,
                None if sections.len() > 1 => {
                    return Err(invalid(
                        format!("list section {}", n + 1),
                        "has no title; every section needs a title when there is more than one",
                    ))
                }
                None => {}
            }
            if s.rows.is_empty() {
                return Err(invalid(
                    format!("list section {}", n + 1),
                    "has no rows; every section needs at least one row",
                ));
            }
            for r in &s.rows {
                required(
                    || format!("list row id {}", quote(&r.id)),
                    &r.id,
                    ROW_ID_MAX,
                )?;
                required(
                    || format!("list row title {}", quote(&r.title)),
                    &r.title,
                    ROW_TITLE_MAX,
                )?;
                if let Some(d) = &r.description {
                    max_chars(
                        || format!("list row description {}", quote(d)),
                        d,
                        ROW_DESCRIPTION_MAX,
                    )?;
                }
                if !ids.insert(r.id.as_str()) {
                    return Err(PayloadError::Duplicate {
                        what: "list row id".into(),
                        value: r.id.clone(),
                    });
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    const TO: &str = "+4915112345678";

    fn to_json(m: &OutboundMessage) -> Value {
        serde_json::to_value(m).unwrap()
    }

    #[test]
    fn text_with_preview_matches_the_fact_sheet() {
        let m = OutboundMessage::new(
            TO,
            Text::new("Your order shipped: https://example.com/t/123").with_preview(true),
        )
        .unwrap();
        assert_eq!(
            to_json(&m),
            json!({"messaging_product":"whatsapp","recipient_type":"individual","to":TO,
                   "type":"text","text":{"body":"Your order shipped: https://example.com/t/123","preview_url":true}})
        );
        let plain = OutboundMessage::new(TO, Text::new("hi")).unwrap();
        assert_eq!(to_json(&plain)["text"], json!({"body":"hi"}));
    }

    #[test]
    fn text_limits() {
        assert!(OutboundMessage::new(TO, Text::new("a".repeat(4096))).is_ok());
        let e = OutboundMessage::new(TO, Text::new("a".repeat(4097))).unwrap_err();
        assert!(
            matches!(
                e,
                PayloadError::TooLong {
                    actual: 4097,
                    max: 4096,
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains("Meta allows at most 4096"), "{e}");
        let e = OutboundMessage::new(TO, Text::new("  ")).unwrap_err();
        assert_eq!(e.to_string(), "text body is empty; Meta requires a value");
        // characters, not bytes
        assert!(OutboundMessage::new(TO, Text::new("é".repeat(4096))).is_ok());
    }

    #[test]
    fn recipient_rules() {
        for ok in ["+4915112345678", "4915112345678", "16505551234"] {
            assert!(check_recipient(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "+49 151 1234",
            "0151123456",
            "+",
            "abc",
            "+1234567890123456",
        ] {
            let e = check_recipient(bad).unwrap_err();
            assert!(!e.to_string().is_empty(), "{bad}");
        }
        let e = check_recipient("+49 151 1234").unwrap_err().to_string();
        assert!(e.contains("without spaces"), "{e}");
        let e = check_recipient("0151123456").unwrap_err().to_string();
        assert!(e.contains("country code"), "{e}");
    }

    #[test]
    fn reply_context_and_callback_data() {
        let m = OutboundMessage::new(TO, Text::new("Re: your question"))
            .unwrap()
            .reply_to("wamid.HBgL123")
            .unwrap()
            .callback_data("job-77")
            .unwrap();
        let v = to_json(&m);
        assert_eq!(v["context"], json!({"message_id":"wamid.HBgL123"}));
        assert_eq!(v["biz_opaque_callback_data"], json!("job-77"));
        let long = "x".repeat(513);
        let e = OutboundMessage::new(TO, Text::new("a"))
            .unwrap()
            .callback_data(long)
            .unwrap_err();
        assert!(e.to_string().contains("at most 512"), "{e}");
        assert!(OutboundMessage::new(TO, Text::new("a"))
            .unwrap()
            .reply_to("")
            .is_err());
    }

    #[test]
    fn image_by_id_and_link() {
        let m = OutboundMessage::new(TO, Image::id("1013859600285441").with_caption("Front view"))
            .unwrap();
        assert_eq!(
            to_json(&m)["image"],
            json!({"id":"1013859600285441","caption":"Front view"})
        );
        assert_eq!(to_json(&m)["type"], json!("image"));
        assert!(OutboundMessage::new(TO, Image::link("https://files.example.com/a.png")).is_ok());
        let both = Image {
            id: Some("1".into()),
            link: Some("https://x.example/a.png".into()),
            caption: None,
        };
        let e = OutboundMessage::new(TO, both).unwrap_err().to_string();
        assert!(e.contains("exactly one"), "{e}");
        let e = OutboundMessage::new(TO, Image::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("neither"), "{e}");
        let e = OutboundMessage::new(TO, Image::link("ftp://x/a.png"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("http(s)"), "{e}");
        let e = OutboundMessage::new(TO, Image::link("not a url"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a URL"), "{e}");
        let e = OutboundMessage::new(TO, Image::id("1").with_caption("c".repeat(1025)))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("image caption") && e.contains("1025") && e.contains("1024"),
            "{e}"
        );
    }

    #[test]
    fn document_with_filename_and_caption() {
        let m = OutboundMessage::new(
            TO,
            Document::link("https://files.example.com/inv-42.pdf")
                .with_filename("invoice-42.pdf")
                .with_caption("Invoice 42"),
        )
        .unwrap();
        assert_eq!(
            to_json(&m)["document"],
            json!({"link":"https://files.example.com/inv-42.pdf","filename":"invoice-42.pdf","caption":"Invoice 42"})
        );
        let e = OutboundMessage::new(TO, Document::id("5").with_filename("../etc/passwd"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("without a folder"), "{e}");
        assert!(OutboundMessage::new(TO, Document::id("5").with_filename(" ")).is_err());
    }

    fn fact_sheet_template() -> Template {
        Template::new("invoice_ready", "en_US")
            .with_header(Parameter::Document {
                document: Document::link("https://files.example.com/inv-42.pdf")
                    .with_filename("inv-42.pdf"),
            })
            .with_body_text("Alice")
            .with_body_text("EUR 42.00")
            .with_quick_reply(0, "PAY:42")
            .with_url_button(1, "inv-42")
    }

    #[test]
    fn template_matches_the_fact_sheet() {
        let m = OutboundMessage::new(TO, fact_sheet_template()).unwrap();
        assert_eq!(
            to_json(&m)["template"],
            json!({"name":"invoice_ready","language":{"code":"en_US"},
              "components":[
               {"type":"header","parameters":[{"type":"document","document":{"link":"https://files.example.com/inv-42.pdf","filename":"inv-42.pdf"}}]},
               {"type":"body","parameters":[{"type":"text","text":"Alice"},{"type":"text","text":"EUR 42.00"}]},
               {"type":"button","sub_type":"quick_reply","index":"0","parameters":[{"type":"payload","payload":"PAY:42"}]},
               {"type":"button","sub_type":"url","index":"1","parameters":[{"type":"text","text":"inv-42"}]}]})
        );
        // round trip: a server reads back exactly what was sent
        let back: OutboundMessage = serde_json::from_value(to_json(&m)).unwrap();
        assert_eq!(back, m);
    }

    #[test]
    fn template_header_kinds() {
        for header in [
            Parameter::text("Order 42"),
            Parameter::Image {
                image: Image::id("9"),
            },
            Parameter::Video {
                video: Video::link("https://v.example/a.mp4"),
            },
            Parameter::Location {
                location: Location {
                    latitude: 48.85,
                    longitude: 2.35,
                    name: Some("Shop".into()),
                    address: None,
                },
            },
        ] {
            let t = Template::new("order_update", "fr").with_header(header.clone());
            assert!(t.validate().is_ok(), "{header:?}");
        }
        let e = Template::new("t", "en")
            .with_header(Parameter::text("x".repeat(61)))
            .validate()
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("template header text") && e.contains("at most 60"),
            "{e}"
        );
        let e = Template::new("t", "en")
            .with_header(Parameter::Payload {
                payload: "p".into(),
            })
            .validate()
            .unwrap_err()
            .to_string();
        assert!(e.contains("a header takes text, image"), "{e}");
        let e = Template::new("t", "en")
            .with_header(Parameter::Image {
                image: Image::id("1").with_caption("no"),
            })
            .validate()
            .unwrap_err()
            .to_string();
        assert!(e.contains("no caption"), "{e}");
        let e = Template::new("t", "en")
            .with_header(Parameter::Location {
                location: Location {
                    latitude: 91.0,
                    longitude: 0.0,
                    name: None,
                    address: None,
                },
            })
            .validate()
            .unwrap_err()
            .to_string();
        assert!(e.contains("not on Earth"), "{e}");
    }

    #[test]
    fn template_named_parameters() {
        let t = Template::new("order_confirmed", "en_US")
            .with_body_named("first_name", "Alice")
            .with_body_named("order_number", "SO042");
        assert!(t.validate().is_ok());
        let v = serde_json::to_value(&t).unwrap();
        assert_eq!(
            v["components"][0]["parameters"][0],
            json!({"type":"text","text":"Alice","parameter_name":"first_name"})
        );
        let mixed = Template::new("t", "en")
            .with_body_named("first_name", "Alice")
            .with_body_text("SO042");
        let e = mixed.validate().unwrap_err().to_string();
        assert!(e.contains("all named or all positional"), "{e}");
        let bad = Template::new("t", "en").with_body_named("First Name", "Alice");
        assert!(bad
            .validate()
            .unwrap_err()
            .to_string()
            .contains("lowercase"));
        let dup = Template::new("t", "en")
            .with_body_named("a", "1")
            .with_body_named("a", "2");
        assert!(matches!(
            dup.validate().unwrap_err(),
            PayloadError::Duplicate { .. }
        ));
    }

    #[test]
    fn template_body_parameter_rules() {
        let e = Template::new("t", "en")
            .with_body_text("line one\nline two")
            .validate()
            .unwrap_err()
            .to_string();
        assert!(e.contains("{{1}}") && e.contains("new line"), "{e}");
        let e = Template::new("t", "en")
            .with_body_text("ok")
            .with_body_text("a     b")
            .validate()
            .unwrap_err()
            .to_string();
        assert!(e.contains("{{2}}") && e.contains("four spaces"), "{e}");
        assert!(Template::new("t", "en")
            .with_body_text("")
            .validate()
            .is_err());
        let currency = Template::new("t", "en").with_body_parameter(Parameter::Currency {
            currency: Currency {
                fallback_value: "EUR 42.00".into(),
                code: "EUR".into(),
                amount_1000: 42_000,
            },
            parameter_name: None,
        });
        assert!(currency.validate().is_ok());
        let bad_currency = Template::new("t", "en").with_body_parameter(Parameter::Currency {
            currency: Currency {
                fallback_value: "42".into(),
                code: "euro".into(),
                amount_1000: 42_000,
            },
            parameter_name: None,
        });
        assert!(bad_currency
            .validate()
            .unwrap_err()
            .to_string()
            .contains("ISO 4217"));
        let e = Template::new("t", "en")
            .with_body_parameter(Parameter::Image {
                image: Image::id("1"),
            })
            .validate()
            .unwrap_err()
            .to_string();
        assert!(e.contains("the body takes text"), "{e}");
    }

    #[test]
    fn template_name_language_and_buttons() {
        assert!(Template::new("Invoice Ready", "en")
            .validate()
            .unwrap_err()
            .to_string()
            .contains("lowercase"));
        assert!(Template::new("", "en").validate().is_err());
        assert!(Template::new("t", "en-US!").validate().is_err());
        let dup = Template::new("t", "en")
            .with_quick_reply(0, "A")
            .with_quick_reply(0, "B");
        assert!(matches!(
            dup.validate().unwrap_err(),
            PayloadError::Duplicate { .. }
        ));
        let bad_index = TemplateComponent::Button {
            sub_type: ButtonSubType::QuickReply,
            index: "ten".into(),
            parameters: vec![Parameter::Payload {
                payload: "x".into(),
            }],
        };
        let mut t = Template::new("t", "en");
        t.components.push(bad_index);
        assert!(t
            .validate()
            .unwrap_err()
            .to_string()
            .contains("\"0\" to \"9\""));
        let wrong = TemplateComponent::Button {
            sub_type: ButtonSubType::Url,
            index: "0".into(),
            parameters: vec![Parameter::Payload {
                payload: "x".into(),
            }],
        };
        let mut t = Template::new("t", "en");
        t.components.push(wrong);
        assert!(t
            .validate()
            .unwrap_err()
            .to_string()
            .contains("takes a 'text'"));
        let e = Template::new("t", "en")
            .with_url_button(0, "a b")
            .validate()
            .unwrap_err()
            .to_string();
        assert!(e.contains("white space"), "{e}");
        let e = Template::new("t", "en")
            .with_quick_reply(0, "")
            .validate()
            .unwrap_err()
            .to_string();
        assert!(e.contains("payload is empty"), "{e}");
    }

    fn slot_buttons() -> ReplyButtons {
        ReplyButtons::new("Tomorrow 10:00-12:00 OK?")
            .with_header(InteractiveHeader::text("Delivery slot"))
            .with_footer("Reply within 24h")
            .button("slot_ok", "Confirm")
            .button("slot_change", "Change")
    }

    #[test]
    fn reply_buttons_match_the_fact_sheet() {
        let m = OutboundMessage::new(TO, slot_buttons()).unwrap();
        assert_eq!(
            to_json(&m)["interactive"],
            json!({"type":"button",
              "header":{"type":"text","text":"Delivery slot"},
              "body":{"text":"Tomorrow 10:00-12:00 OK?"},
              "footer":{"text":"Reply within 24h"},
              "action":{"buttons":[
                {"type":"reply","reply":{"id":"slot_ok","title":"Confirm"}},
                {"type":"reply","reply":{"id":"slot_change","title":"Change"}}]}})
        );
        let back: OutboundMessage = serde_json::from_value(to_json(&m)).unwrap();
        assert_eq!(back, m);
    }

    #[test]
    fn reply_button_limits() {
        let e = OutboundMessage::new(
            TO,
            ReplyButtons::new("b").button("ok", "Confirm my order now!"),
        )
        .unwrap_err();
        assert_eq!(
            e.to_string(),
            "button title 'Confirm my order now!' is 21 characters; Meta allows at most 20"
        );
        assert!(OutboundMessage::new(
            TO,
            ReplyButtons::new("b").button("ok", "Confirm my order now")
        )
        .is_ok());
        let four = ReplyButtons::new("b")
            .button("a", "A")
            .button("b", "B")
            .button("c", "C")
            .button("d", "D");
        assert_eq!(
            four.validate().unwrap_err().to_string(),
            "reply buttons: 4 given; Meta allows 1 to 3"
        );
        assert!(ReplyButtons::new("b").validate().is_err());
        let dup = ReplyButtons::new("b").button("a", "Yes").button("b", "Yes");
        assert_eq!(
            dup.validate().unwrap_err().to_string(),
            "button title 'Yes' appears twice; it must be unique within the message"
        );
        let dup_id = ReplyButtons::new("b").button("a", "Yes").button("a", "No");
        assert!(matches!(
            dup_id.validate().unwrap_err(),
            PayloadError::Duplicate { .. }
        ));
        assert!(ReplyButtons::new("b").button("a", "").validate().is_err());
        let e = ReplyButtons::new("b")
            .button(" a", "A")
            .validate()
            .unwrap_err()
            .to_string();
        assert!(e.contains("leading or trailing spaces"), "{e}");
        assert!(ReplyButtons::new("b")
            .button("i".repeat(256), "A")
            .validate()
            .is_ok());
        let e = ReplyButtons::new("b")
            .button("i".repeat(257), "A")
            .validate()
            .unwrap_err();
        assert!(matches!(e, PayloadError::TooLong { max: 256, .. }));
        let e = ReplyButtons::new("x".repeat(1025))
            .button("a", "A")
            .validate()
            .unwrap_err();
        assert!(matches!(e, PayloadError::TooLong { max: 1024, .. }));
        let e = slot_buttons()
            .with_footer("f".repeat(61))
            .validate()
            .unwrap_err();
        assert!(matches!(e, PayloadError::TooLong { max: 60, .. }));
        let e = slot_buttons()
            .with_header(InteractiveHeader::text("h".repeat(61)))
            .validate()
            .unwrap_err();
        assert!(matches!(e, PayloadError::TooLong { max: 60, .. }));
        assert!(slot_buttons()
            .with_header(InteractiveHeader::Image {
                image: Image::link("https://x.example/a.jpg")
            })
            .validate()
            .is_ok());
        // emoji count as one character each
        assert!(ReplyButtons::new("b")
            .button("a", "👍".repeat(20))
            .validate()
            .is_ok());
    }

    fn support_list() -> ListMessage {
        ListMessage::new("Pick a topic", "Topics")
            .with_header("Support")
            .with_footer("ACME")
            .section(
                ListSection::new(Some("Orders"))
                    .row_with_description("trk", "Track order", "Where is my parcel?")
                    .row("ret", "Return item"),
            )
            .section(ListSection::new(Some("Account")).row("pwd", "Reset password"))
    }

    #[test]
    fn list_matches_the_fact_sheet() {
        let m = OutboundMessage::new(TO, support_list()).unwrap();
        assert_eq!(
            to_json(&m)["interactive"],
            json!({"type":"list","header":{"type":"text","text":"Support"},
              "body":{"text":"Pick a topic"},"footer":{"text":"ACME"},
              "action":{"button":"Topics","sections":[
               {"title":"Orders","rows":[{"id":"trk","title":"Track order","description":"Where is my parcel?"},
                                          {"id":"ret","title":"Return item"}]},
               {"title":"Account","rows":[{"id":"pwd","title":"Reset password"}]}]}})
        );
    }

    #[test]
    fn list_limits() {
        let mut eleven = ListSection::new(None);
        for i in 0..11 {
            eleven = eleven.row(format!("r{i}"), format!("Row {i}"));
        }
        let e = ListMessage::new("b", "Open")
            .section(eleven)
            .validate()
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "list rows across all sections: 11 given; Meta allows 1 to 10"
        );
        // ten rows split over sections is fine; eleven over sections is not
        let mut l = ListMessage::new("b", "Open");
        for s in 0..5 {
            l = l.section(
                ListSection::new(Some(&format!("S{s}")))
                    .row(format!("a{s}"), "A")
                    .row(format!("b{s}"), "B"),
            );
        }
        assert!(l.validate().is_ok());
        let l = l.section(ListSection::new(Some("S6")).row("c", "C"));
        assert!(matches!(
            l.validate().unwrap_err(),
            PayloadError::Count { actual: 11, .. }
        ));

        let untitled = ListMessage::new("b", "Open")
            .section(ListSection::new(Some("A")).row("a", "A"))
            .section(ListSection::new(None).row("b", "B"));
        assert!(untitled
            .validate()
            .unwrap_err()
            .to_string()
            .contains("needs a title"));
        let single_untitled =
            ListMessage::new("b", "Open").section(ListSection::new(None).row("a", "A"));
        assert!(single_untitled.validate().is_ok());

        let e = ListMessage::new("b", "Open")
            .section(ListSection::new(None).row("a", "Twenty-five characters!!!"))
            .validate()
            .unwrap_err();
        assert_eq!(
            e.to_string(),
            "list row title 'Twenty-five characters!!!' is 25 characters; Meta allows at most 24"
        );
        let e = ListMessage::new("b", "Open")
            .section(ListSection::new(None).row_with_description("a", "A", "d".repeat(73)))
            .validate()
            .unwrap_err();
        assert!(matches!(
            e,
            PayloadError::TooLong {
                max: 72,
                actual: 73,
                ..
            }
        ));
        let e = ListMessage::new("b", "Open")
            .section(ListSection::new(None).row("i".repeat(201), "A"))
            .validate()
            .unwrap_err();
        assert!(matches!(e, PayloadError::TooLong { max: 200, .. }));
        let e = ListMessage::new("b", "Open")
            .section(ListSection::new(Some(&"t".repeat(25))).row("a", "A"))
            .validate()
            .unwrap_err();
        assert!(matches!(e, PayloadError::TooLong { max: 24, .. }));
        let e = ListMessage::new("b", "Choose one of these")
            .section(ListSection::new(None).row("a", "A"))
            .validate();
        assert!(e.is_ok());
        let e = ListMessage::new("b", "Choose one of these!!")
            .section(ListSection::new(None).row("a", "A"))
            .validate()
            .unwrap_err();
        assert!(e.to_string().starts_with("list button label"), "{e}");
        assert!(ListMessage::new("b", "Open").validate().is_err());
        let dup = ListMessage::new("b", "Open")
            .section(ListSection::new(Some("A")).row("x", "A"))
            .section(ListSection::new(Some("B")).row("x", "B"));
        assert!(matches!(
            dup.validate().unwrap_err(),
            PayloadError::Duplicate { .. }
        ));
        let empty_section = ListMessage::new("b", "Open")
            .section(ListSection::new(Some("A")).row("x", "A"))
            .section(ListSection::new(Some("B")));
        assert!(empty_section
            .validate()
            .unwrap_err()
            .to_string()
            .contains("no rows"));
        let mut img = support_list();
        img.header = Some(InteractiveHeader::Image {
            image: Image::id("1"),
        });
        assert!(img
            .validate()
            .unwrap_err()
            .to_string()
            .contains("must be of type text"));
        let mut sections = ListMessage::new("b", "Open");
        for i in 0..11 {
            sections = sections
                .section(ListSection::new(Some(&format!("S{i}"))).row(format!("r{i}"), "R"));
        }
        assert!(matches!(
            sections.validate().unwrap_err(),
            PayloadError::Count {
                max: 10,
                actual: 11,
                ..
            }
        ));
    }

    #[test]
    fn deserialized_requests_are_checked_the_same_way() {
        let body = json!({"messaging_product":"whatsapp","to":"+4915112345678","type":"interactive",
            "interactive":{"type":"button","body":{"text":"Pick"},
              "action":{"buttons":[{"type":"reply","reply":{"id":"a","title":"Confirm my order now!"}}]}}});
        let m: OutboundMessage = serde_json::from_value(body).unwrap();
        assert!(m.validate().unwrap_err().to_string().contains("at most 20"));
        let wrong_product =
            json!({"messaging_product":"sms","to":"1555","type":"text","text":{"body":"x"}});
        let m: OutboundMessage = serde_json::from_value(wrong_product).unwrap();
        assert!(m
            .validate()
            .unwrap_err()
            .to_string()
            .contains("messaging_product"));
        let unknown_type = json!({"messaging_product":"whatsapp","to":"1555","type":"telepathy"});
        assert!(serde_json::from_value::<OutboundMessage>(unknown_type).is_err());
    }

    #[test]
    fn long_values_are_quoted_short() {
        let e = OutboundMessage::new(TO, Text::new("a".repeat(5000)))
            .unwrap_err()
            .to_string();
        assert!(e.len() < 200, "{e}");
    }
}
