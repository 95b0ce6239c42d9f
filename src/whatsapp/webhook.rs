//! Webhook payloads from Meta, read leniently.
//!
//! [`parse_webhook`] turns the (already signature-checked, see `signature.rs`) body into a
//! [`WebhookPayload`]: entries, and per entry the changes routed by `field`:
//!
//! | `field` | type |
//! |---|---|
//! | `messages` | [`MessagesChange`]: inbound [`InboundMessage`]s, [`MessageStatus`]es, `errors` |
//! | `message_template_status_update` | [`TemplateStatusUpdate`] |
//! | `message_template_quality_update` | [`TemplateQualityUpdate`] |
//! | `phone_number_quality_update` | [`PhoneNumberQualityUpdate`] |
//! | `account_update` | [`AccountUpdate`] |
//! | `business_capability_update` | [`BusinessCapabilityUpdate`] |
//! | anything else | [`Change::Other`] with the raw value |
//!
//! Rules: unknown fields are ignored (the update types keep them in `extra`), unknown message
//! types, interactive types and statuses are kept with their raw JSON, an item that cannot be
//! read (a message without an id, a status without a status) goes to
//! [`MessagesChange::unparsed`] with the reason, and no input, however odd, panics. Only a body
//! that is not JSON, not an object, or has no `entry` array is an error.
//!
//! The types also serialize back to Meta's shape, so the sandbox can build the webhooks Meta
//! would send.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{json, Map, Value};

use super::error::{lenient_i64, MetaError};
use super::templates::{TemplateCategory, TemplateStatus};

/// The body could not be read as a webhook at all.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WebhookParseError {
    /// Not JSON.
    #[error("the webhook body is not JSON: {0}")]
    Json(String),
    /// JSON, but not an object.
    #[error("the webhook body is JSON but not an object")]
    NotAnObject,
    /// No `entry` array.
    #[error(
        "the webhook body has no 'entry' array; it is not a WhatsApp Business Account webhook"
    )]
    NoEntries,
}

impl WebhookParseError {
    /// Never: the same body fails the same way.
    pub fn is_retryable(&self) -> bool {
        false
    }
}

/// A whole webhook POST body.
#[derive(Debug, Clone, PartialEq)]
pub struct WebhookPayload {
    /// `whatsapp_business_account`.
    pub object: String,
    /// The entries, usually one per WABA.
    pub entries: Vec<Entry>,
}

/// One `entry`.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The WABA id.
    pub id: String,
    /// Unix seconds, when present.
    pub time: Option<i64>,
    /// The changes.
    pub changes: Vec<Change>,
}

/// One `change`, routed by `field`.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    /// `messages`: inbound messages, statuses, errors.
    Messages(MessagesChange),
    /// `message_template_status_update`.
    TemplateStatus(TemplateStatusUpdate),
    /// `message_template_quality_update`.
    TemplateQuality(TemplateQualityUpdate),
    /// `phone_number_quality_update`.
    PhoneNumberQuality(PhoneNumberQualityUpdate),
    /// `account_update`.
    Account(AccountUpdate),
    /// `business_capability_update`.
    BusinessCapability(BusinessCapabilityUpdate),
    /// A field this daemon does not model, or a known field whose value could not be read.
    Other(OtherChange),
}

/// A change kept as sent.
#[derive(Debug, Clone, PartialEq)]
pub struct OtherChange {
    /// `field`, empty when absent.
    pub field: String,
    /// The `value` (or the whole change or entry when those were malformed).
    pub value: Value,
    /// Why it was not read, for a known field; `None` for an unknown field.
    pub problem: Option<String>,
}

impl Change {
    /// The `field` this change came in.
    pub fn field(&self) -> &str {
        match self {
            Change::Messages(_) => "messages",
            Change::TemplateStatus(_) => "message_template_status_update",
            Change::TemplateQuality(_) => "message_template_quality_update",
            Change::PhoneNumberQuality(_) => "phone_number_quality_update",
            Change::Account(_) => "account_update",
            Change::BusinessCapability(_) => "business_capability_update",
            Change::Other(o) => &o.field,
        }
    }
}

/// `metadata` of a messages change: which business number it is about.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Metadata {
    /// The number as shown.
    #[serde(default, deserialize_with = "de_string")]
    pub display_phone_number: String,
    /// The phone number id: route on this.
    #[serde(default, deserialize_with = "de_string")]
    pub phone_number_id: String,
}

/// The value of a `messages` change.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct MessagesChange {
    /// `whatsapp`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub messaging_product: Option<String>,
    /// The business number.
    pub metadata: Metadata,
    /// The users who wrote.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub contacts: Vec<Contact>,
    /// Inbound messages.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub messages: Vec<InboundMessage>,
    /// Delivery statuses of sent messages.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub statuses: Vec<MessageStatus>,
    /// System-level errors (`value.errors`, with no statuses).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<MetaError>,
    /// Items that could not be read, with the reason.
    #[serde(skip)]
    pub unparsed: Vec<Unparsed>,
}

/// An item of a messages change that could not be read.
#[derive(Debug, Clone, PartialEq)]
pub struct Unparsed {
    /// `message`, `status` or `contact`.
    pub what: &'static str,
    /// The item as sent.
    pub raw: Value,
    /// Why.
    pub problem: String,
}

/// `contacts[]`: who wrote.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Contact {
    /// `profile.name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub profile: Option<Profile>,
    /// The WhatsApp id (digits); may be absent for username users from mid-2026.
    #[serde(
        default,
        deserialize_with = "de_opt_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub wa_id: Option<String>,
    /// The business-scoped user id (BSUID), e.g. `US.13491208655302741918`.
    #[serde(
        default,
        deserialize_with = "de_opt_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub user_id: Option<String>,
}

/// `profile` of a contact.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Profile {
    /// The user's profile name.
    #[serde(
        default,
        deserialize_with = "de_opt_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub name: Option<String>,
}

/// An inbound message.
#[derive(Debug, Clone, PartialEq)]
pub struct InboundMessage {
    /// The wamid: deduplicate on it.
    pub id: String,
    /// The sender's wa_id; may be absent for username users (then see `from_user_id`).
    pub from: Option<String>,
    /// The sender's BSUID.
    pub from_user_id: Option<String>,
    /// Unix seconds (Meta sends a string).
    pub timestamp: Option<i64>,
    /// Reply or forward context.
    pub context: Option<InboundContext>,
    /// Click-to-WhatsApp ad referral, as sent.
    pub referral: Option<Value>,
    /// Errors attached to the message (e.g. `unsupported`).
    pub errors: Vec<MetaError>,
    /// The content, by `type`.
    pub content: InboundContent,
}

/// `context` of an inbound message.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct InboundContext {
    /// The number the quoted message came from.
    pub from: Option<String>,
    /// The wamid of the quoted message (for a button reply: the message with the buttons).
    pub id: Option<String>,
    /// Forwarded.
    pub forwarded: bool,
    /// Forwarded many times.
    pub frequently_forwarded: bool,
}

/// The content of an inbound message.
#[derive(Debug, Clone, PartialEq)]
pub enum InboundContent {
    /// `text`.
    Text {
        /// The text.
        body: String,
    },
    /// `image`.
    Image(InboundMedia),
    /// `video`.
    Video(InboundMedia),
    /// `audio` (`voice` set for voice notes).
    Audio(InboundMedia),
    /// `sticker` (`animated` set).
    Sticker(InboundMedia),
    /// `document` (`filename` set).
    Document(InboundMedia),
    /// `interactive`: a reply button or list row was chosen, or a Flow answered.
    Interactive(InteractiveReply),
    /// `button`: a tap on a template quick-reply button.
    Button {
        /// The payload given at send time.
        payload: Option<String>,
        /// The button's label.
        text: Option<String>,
    },
    /// `reaction`; an empty emoji means the reaction was removed.
    Reaction {
        /// The wamid reacted to.
        message_id: String,
        /// The emoji, empty when removed.
        emoji: String,
    },
    /// `location`.
    Location(InboundLocation),
    /// `contacts`: shared contact cards, as sent.
    Contacts(Vec<Value>),
    /// `order`, as sent.
    Order(Value),
    /// `system`: e.g. the user changed number.
    System(SystemEvent),
    /// `unsupported`: see the message's `errors` (131051).
    Unsupported {
        /// `unsupported.type`, when Meta says what it was.
        kind: Option<String>,
    },
    /// `request_welcome`: the user opened the chat for the first time.
    RequestWelcome,
    /// A type this daemon does not model, or a known type whose content could not be read.
    Other {
        /// The `type`.
        kind: String,
        /// The sibling object of that name, as sent.
        content: Option<Value>,
    },
}

/// A media file received (fetch it within 7 days: `GET /{id}`).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct InboundMedia {
    /// The media id.
    #[serde(deserialize_with = "de_string")]
    pub id: String,
    /// MIME type.
    #[serde(
        default,
        deserialize_with = "de_opt_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub mime_type: Option<String>,
    /// Hex sha256.
    #[serde(
        default,
        deserialize_with = "de_opt_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub sha256: Option<String>,
    /// Caption.
    #[serde(
        default,
        deserialize_with = "de_opt_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub caption: Option<String>,
    /// File name (documents).
    #[serde(
        default,
        deserialize_with = "de_opt_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub filename: Option<String>,
    /// Voice note (audio).
    #[serde(
        default,
        deserialize_with = "de_opt_bool",
        skip_serializing_if = "Option::is_none"
    )]
    pub voice: Option<bool>,
    /// Animated (stickers).
    #[serde(
        default,
        deserialize_with = "de_opt_bool",
        skip_serializing_if = "Option::is_none"
    )]
    pub animated: Option<bool>,
}

/// The reply inside an `interactive` inbound message.
#[derive(Debug, Clone, PartialEq)]
pub enum InteractiveReply {
    /// A reply button was tapped.
    ButtonReply {
        /// The button id given at send time.
        id: String,
        /// Its title.
        title: String,
    },
    /// A list row was chosen.
    ListReply {
        /// The row id given at send time.
        id: String,
        /// Its title.
        title: String,
        /// Its description.
        description: Option<String>,
    },
    /// A Flow was completed.
    NfmReply {
        /// Flow name.
        name: Option<String>,
        /// Body text.
        body: Option<String>,
        /// The answers, a JSON string as sent.
        response_json: Option<String>,
    },
    /// Another interactive type, as sent.
    Other {
        /// `interactive.type`.
        kind: String,
        /// The whole `interactive` object.
        raw: Value,
    },
}

/// `location` of an inbound message.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct InboundLocation {
    /// Degrees.
    pub latitude: f64,
    /// Degrees.
    pub longitude: f64,
    /// Place name.
    pub name: Option<String>,
    /// Address.
    pub address: Option<String>,
    /// URL.
    pub url: Option<String>,
}

/// `system` of an inbound message.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SystemEvent {
    /// E.g. `User A changed from +1 to +2`.
    pub body: Option<String>,
    /// `user_changed_number`, `customer_changed_number`, ...
    pub kind: Option<String>,
    /// The new wa_id, when the number changed (`wa_id` or `new_wa_id`).
    pub new_wa_id: Option<String>,
}

impl InboundMessage {
    /// The id a button action is keyed on: a reply button's id, a list row's id, or a template
    /// quick-reply payload (its text when no payload was set).
    pub fn action_id(&self) -> Option<&str> {
        match &self.content {
            InboundContent::Interactive(InteractiveReply::ButtonReply { id, .. })
            | InboundContent::Interactive(InteractiveReply::ListReply { id, .. }) => Some(id),
            InboundContent::Button { payload, text } => payload.as_deref().or(text.as_deref()),
            _ => None,
        }
    }

    /// The text a person wrote or chose: text body, caption, button or row title.
    pub fn text(&self) -> Option<&str> {
        match &self.content {
            InboundContent::Text { body } => Some(body),
            InboundContent::Image(m)
            | InboundContent::Video(m)
            | InboundContent::Document(m)
            | InboundContent::Audio(m)
            | InboundContent::Sticker(m) => m.caption.as_deref(),
            InboundContent::Interactive(InteractiveReply::ButtonReply { title, .. })
            | InboundContent::Interactive(InteractiveReply::ListReply { title, .. }) => Some(title),
            InboundContent::Button { text, .. } => text.as_deref(),
            _ => None,
        }
    }

    /// The `type` value.
    pub fn kind(&self) -> &str {
        match &self.content {
            InboundContent::Text { .. } => "text",
            InboundContent::Image(_) => "image",
            InboundContent::Video(_) => "video",
            InboundContent::Audio(_) => "audio",
            InboundContent::Sticker(_) => "sticker",
            InboundContent::Document(_) => "document",
            InboundContent::Interactive(_) => "interactive",
            InboundContent::Button { .. } => "button",
            InboundContent::Reaction { .. } => "reaction",
            InboundContent::Location(_) => "location",
            InboundContent::Contacts(_) => "contacts",
            InboundContent::Order(_) => "order",
            InboundContent::System(_) => "system",
            InboundContent::Unsupported { .. } => "unsupported",
            InboundContent::RequestWelcome => "request_welcome",
            InboundContent::Other { kind, .. } => kind,
        }
    }
}

/// `status` of a delivery report.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DeliveryStatus {
    /// Sent to WhatsApp's servers.
    Sent,
    /// Delivered to the phone.
    Delivered,
    /// Read (only with read receipts on).
    Read,
    /// Failed; see `errors`.
    Failed,
    /// Another value, as sent.
    Other(String),
}

impl DeliveryStatus {
    /// As Meta writes it.
    pub fn as_str(&self) -> &str {
        match self {
            DeliveryStatus::Sent => "sent",
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Read => "read",
            DeliveryStatus::Failed => "failed",
            DeliveryStatus::Other(s) => s,
        }
    }

    /// Position in sent < delivered < read, for a forward-only state machine; `None` for
    /// failed (final) and unknown values.
    pub fn rank(&self) -> Option<u8> {
        match self {
            DeliveryStatus::Sent => Some(1),
            DeliveryStatus::Delivered => Some(2),
            DeliveryStatus::Read => Some(3),
            DeliveryStatus::Failed | DeliveryStatus::Other(_) => None,
        }
    }
}

impl From<&str> for DeliveryStatus {
    fn from(s: &str) -> Self {
        match s {
            "sent" => DeliveryStatus::Sent,
            "delivered" => DeliveryStatus::Delivered,
            "read" => DeliveryStatus::Read,
            "failed" => DeliveryStatus::Failed,
            other => DeliveryStatus::Other(other.to_string()),
        }
    }
}

impl Serialize for DeliveryStatus {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// A delivery report (`statuses[]`).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MessageStatus {
    /// The wamid of the sent message.
    pub id: String,
    /// The status.
    pub status: DeliveryStatus,
    /// Unix seconds.
    #[serde(serialize_with = "ser_opt_ts", skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<i64>,
    /// The recipient's wa_id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recipient_id: Option<String>,
    /// The recipient's BSUID.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recipient_user_id: Option<String>,
    /// `group` for group sends.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recipient_type: Option<String>,
    /// Group participant.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub recipient_participant_id: Option<String>,
    /// Echo of what was attached at send time (the daemon's message id).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub biz_opaque_callback_data: Option<String>,
    /// Conversation (left out from v24.0 except free entry points).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conversation: Option<Conversation>,
    /// Pricing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pricing: Option<Pricing>,
    /// Present when failed.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<MetaError>,
}

/// `conversation` of a status.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Conversation {
    /// Conversation id.
    #[serde(
        default,
        deserialize_with = "de_opt_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub id: Option<String>,
    /// Unix seconds.
    #[serde(
        default,
        deserialize_with = "de_opt_i64",
        skip_serializing_if = "Option::is_none"
    )]
    pub expiration_timestamp: Option<i64>,
    /// `origin`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<ConversationOrigin>,
}

/// `conversation.origin`.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ConversationOrigin {
    /// `marketing`, `utility`, `service`, ...
    #[serde(
        rename = "type",
        default,
        deserialize_with = "de_opt_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub kind: Option<String>,
}

/// `pricing` of a status.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Pricing {
    /// Deprecated.
    #[serde(
        default,
        deserialize_with = "de_opt_bool",
        skip_serializing_if = "Option::is_none"
    )]
    pub billable: Option<bool>,
    /// `PMP` (per message) or `CBP` (before July 2025).
    #[serde(
        default,
        deserialize_with = "de_opt_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub pricing_model: Option<String>,
    /// `marketing`, `utility`, `authentication`, `service`, ...
    #[serde(
        default,
        deserialize_with = "de_opt_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub category: Option<String>,
    /// `regular`, `free_customer_service`, `free_entry_point`.
    #[serde(
        rename = "type",
        default,
        deserialize_with = "de_opt_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub kind: Option<String>,
}

/// `message_template_status_update`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TemplateStatusUpdate {
    /// APPROVED, REJECTED, PAUSED, DISABLED, FLAGGED, ...
    pub event: TemplateStatus,
    /// The template id (a number in the webhook, kept as a string).
    #[serde(
        default,
        deserialize_with = "de_opt_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub message_template_id: Option<String>,
    /// The name.
    #[serde(
        default,
        deserialize_with = "de_opt_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub message_template_name: Option<String>,
    /// The language.
    #[serde(
        default,
        deserialize_with = "de_opt_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub message_template_language: Option<String>,
    /// Why (NONE, INVALID_FORMAT, ...).
    #[serde(
        default,
        deserialize_with = "de_opt_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub reason: Option<String>,
    /// The category.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_template_category: Option<TemplateCategory>,
    /// `disable_info`, `other_info`, rejection details and any other field, as sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `message_template_quality_update`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TemplateQualityUpdate {
    /// GREEN, YELLOW, RED, UNKNOWN.
    #[serde(
        default,
        deserialize_with = "de_opt_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub previous_quality_score: Option<String>,
    /// GREEN, YELLOW, RED, UNKNOWN.
    #[serde(
        default,
        deserialize_with = "de_opt_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub new_quality_score: Option<String>,
    /// The template id.
    #[serde(
        default,
        deserialize_with = "de_opt_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub message_template_id: Option<String>,
    /// The name.
    #[serde(
        default,
        deserialize_with = "de_opt_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub message_template_name: Option<String>,
    /// The language.
    #[serde(
        default,
        deserialize_with = "de_opt_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub message_template_language: Option<String>,
    /// Any other field, as sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `phone_number_quality_update`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhoneNumberQualityUpdate {
    /// The number.
    #[serde(
        default,
        deserialize_with = "de_opt_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub display_phone_number: Option<String>,
    /// FLAGGED, UNFLAGGED, UPGRADE, DOWNGRADE, THROUGHPUT_UPGRADE, ...
    #[serde(
        default,
        deserialize_with = "de_opt_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub event: Option<String>,
    /// TIER_250 ... TIER_UNLIMITED (being replaced).
    #[serde(
        default,
        deserialize_with = "de_opt_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub current_limit: Option<String>,
    /// The portfolio-level limit, as sent (a tier name or a number).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_daily_conversations_per_business: Option<Value>,
    /// Any other field, as sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `account_update`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AccountUpdate {
    /// The number concerned, if any.
    #[serde(
        default,
        deserialize_with = "de_opt_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub phone_number: Option<String>,
    /// VERIFIED_ACCOUNT, DISABLED_UPDATE, ACCOUNT_VIOLATION, ACCOUNT_RESTRICTION, ...
    #[serde(
        default,
        deserialize_with = "de_opt_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub event: Option<String>,
    /// `ban_info`, `violation_info`, `restriction_info` and any other field, as sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `business_capability_update`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BusinessCapabilityUpdate {
    /// Per-phone daily limit (older).
    #[serde(
        default,
        deserialize_with = "de_opt_i64",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_daily_conversation_per_phone: Option<i64>,
    /// Phone numbers allowed.
    #[serde(
        default,
        deserialize_with = "de_opt_i64",
        skip_serializing_if = "Option::is_none"
    )]
    pub max_phone_numbers_per_business: Option<i64>,
    /// The portfolio-level limit, as sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_daily_conversations_per_business: Option<Value>,
    /// Any other field, as sent.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

// ---------------------------------------------------------------------------------------------
// lenient field readers

fn scalar_string(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

fn de_string<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    let v = Value::deserialize(d)?;
    scalar_string(&v).ok_or_else(|| serde::de::Error::custom(format!("expected a string, got {v}")))
}

fn de_opt_string<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(scalar_string(&Value::deserialize(d)?))
}

fn de_opt_i64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    Ok(lenient_i64(&Value::deserialize(d)?))
}

fn lenient_bool(v: &Value) -> Option<bool> {
    match v {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s == "true" => Some(true),
        Value::String(s) if s == "false" => Some(false),
        _ => None,
    }
}

fn de_opt_bool<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    Ok(lenient_bool(&Value::deserialize(d)?))
}

fn ser_opt_ts<S: Serializer>(v: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
    match v {
        Some(t) => s.serialize_str(&t.to_string()),
        None => s.serialize_none(),
    }
}

fn get_str(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(scalar_string)
}

fn get_f64(v: &Value, key: &str) -> Option<f64> {
    match v.get(key)? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// Reads an `errors` list; an error object that cannot be read becomes code -1 with the raw
/// JSON in its message, so it is never lost.
fn meta_errors(v: Option<&Value>) -> Vec<MetaError> {
    let one = |e: &Value| {
        serde_json::from_value(e.clone())
            .unwrap_or_else(|_| MetaError::new(-1, format!("unreadable error object: {e}")))
    };
    match v {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items.iter().map(one).collect(),
        Some(other) => vec![one(other)],
    }
}

// ---------------------------------------------------------------------------------------------
// parsing

/// Reads a webhook body (call only after [`super::signature::verify_signature`]).
pub fn parse_webhook(raw: &[u8]) -> Result<WebhookPayload, WebhookParseError> {
    let v: Value =
        serde_json::from_slice(raw).map_err(|e| WebhookParseError::Json(e.to_string()))?;
    parse_webhook_value(&v)
}

/// Reads a webhook body already parsed as JSON.
pub fn parse_webhook_value(v: &Value) -> Result<WebhookPayload, WebhookParseError> {
    let obj = v.as_object().ok_or(WebhookParseError::NotAnObject)?;
    let entries = obj
        .get("entry")
        .and_then(Value::as_array)
        .ok_or(WebhookParseError::NoEntries)?;
    Ok(WebhookPayload {
        object: obj
            .get("object")
            .and_then(scalar_string)
            .unwrap_or_default(),
        entries: entries.iter().map(parse_entry).collect(),
    })
}

fn parse_entry(e: &Value) -> Entry {
    let id = get_str(e, "id").unwrap_or_default();
    let time = e.get("time").and_then(lenient_i64);
    let changes = match e.get("changes") {
        Some(Value::Array(changes)) => changes.iter().map(parse_change).collect(),
        _ => vec![Change::Other(OtherChange {
            field: String::new(),
            value: e.clone(),
            problem: Some("the entry has no 'changes' array".into()),
        })],
    };
    Entry { id, time, changes }
}

fn typed<T: serde::de::DeserializeOwned>(
    field: &str,
    value: &Value,
    wrap: fn(T) -> Change,
) -> Change {
    match serde_json::from_value::<T>(value.clone()) {
        Ok(t) => wrap(t),
        Err(err) => Change::Other(OtherChange {
            field: field.to_string(),
            value: value.clone(),
            problem: Some(format!("the '{field}' value could not be read: {err}")),
        }),
    }
}

fn parse_change(c: &Value) -> Change {
    let Some(field) = c.get("field").and_then(Value::as_str) else {
        return Change::Other(OtherChange {
            field: String::new(),
            value: c.clone(),
            problem: Some("the change has no 'field'".into()),
        });
    };
    let value = c.get("value").cloned().unwrap_or(Value::Null);
    if !value.is_object() {
        return Change::Other(OtherChange {
            field: field.to_string(),
            value,
            problem: Some(format!("the '{field}' change has no object 'value'")),
        });
    }
    match field {
        "messages" => Change::Messages(parse_messages_change(&value)),
        "message_template_status_update" => typed(field, &value, Change::TemplateStatus),
        "message_template_quality_update" => typed(field, &value, Change::TemplateQuality),
        "phone_number_quality_update" => typed(field, &value, Change::PhoneNumberQuality),
        "account_update" => typed(field, &value, Change::Account),
        "business_capability_update" => typed(field, &value, Change::BusinessCapability),
        _ => Change::Other(OtherChange {
            field: field.to_string(),
            value,
            problem: None,
        }),
    }
}

fn parse_messages_change(v: &Value) -> MessagesChange {
    let mut out = MessagesChange {
        messaging_product: get_str(v, "messaging_product"),
        metadata: v
            .get("metadata")
            .and_then(|m| serde_json::from_value(m.clone()).ok())
            .unwrap_or_default(),
        ..Default::default()
    };
    if let Some(Value::Array(items)) = v.get("contacts") {
        for c in items {
            match serde_json::from_value::<Contact>(c.clone()) {
                Ok(contact) => out.contacts.push(contact),
                Err(e) => out.unparsed.push(Unparsed {
                    what: "contact",
                    raw: c.clone(),
                    problem: e.to_string(),
                }),
            }
        }
    }
    if let Some(Value::Array(items)) = v.get("messages") {
        for m in items {
            match parse_message(m) {
                Ok(msg) => out.messages.push(msg),
                Err(problem) => out.unparsed.push(Unparsed {
                    what: "message",
                    raw: m.clone(),
                    problem,
                }),
            }
        }
    }
    if let Some(Value::Array(items)) = v.get("statuses") {
        for s in items {
            match parse_status(s) {
                Ok(st) => out.statuses.push(st),
                Err(problem) => out.unparsed.push(Unparsed {
                    what: "status",
                    raw: s.clone(),
                    problem,
                }),
            }
        }
    }
    out.errors = meta_errors(v.get("errors"));
    out
}

fn parse_message(m: &Value) -> Result<InboundMessage, String> {
    if !m.is_object() {
        return Err("the message is not an object".into());
    }
    let id = get_str(m, "id")
        .filter(|s| !s.is_empty())
        .ok_or("the message has no 'id'")?;
    let kind = get_str(m, "type").unwrap_or_default();
    let context = m
        .get("context")
        .filter(|c| c.is_object())
        .map(|c| InboundContext {
            from: get_str(c, "from"),
            id: get_str(c, "id"),
            forwarded: c.get("forwarded").and_then(lenient_bool).unwrap_or(false),
            frequently_forwarded: c
                .get("frequently_forwarded")
                .and_then(lenient_bool)
                .unwrap_or(false),
        });
    Ok(InboundMessage {
        id,
        from: get_str(m, "from"),
        from_user_id: get_str(m, "from_user_id"),
        timestamp: m.get("timestamp").and_then(lenient_i64),
        context,
        referral: m.get("referral").cloned(),
        errors: meta_errors(m.get("errors")),
        content: parse_content(&kind, m),
    })
}

fn parse_content(kind: &str, m: &Value) -> InboundContent {
    let sib = m.get(kind);
    let other = || InboundContent::Other {
        kind: kind.to_string(),
        content: sib.cloned(),
    };
    let media = |wrap: fn(InboundMedia) -> InboundContent| {
        sib.and_then(|s| serde_json::from_value::<InboundMedia>(s.clone()).ok())
            .map(wrap)
            .unwrap_or_else(other)
    };
    match kind {
        "text" => match sib.and_then(|s| get_str(s, "body")) {
            Some(body) => InboundContent::Text { body },
            None => other(),
        },
        "image" => media(InboundContent::Image),
        "video" => media(InboundContent::Video),
        "audio" => media(InboundContent::Audio),
        "sticker" => media(InboundContent::Sticker),
        "document" => media(InboundContent::Document),
        "interactive" => match sib {
            Some(i) if i.is_object() => InboundContent::Interactive(parse_interactive(i)),
            _ => other(),
        },
        "button" => match sib {
            Some(b) if b.is_object() => InboundContent::Button {
                payload: get_str(b, "payload"),
                text: get_str(b, "text"),
            },
            _ => other(),
        },
        "reaction" => match sib.and_then(|r| get_str(r, "message_id").map(|id| (r, id))) {
            Some((r, message_id)) => InboundContent::Reaction {
                message_id,
                emoji: get_str(r, "emoji").unwrap_or_default(),
            },
            None => other(),
        },
        "location" => {
            match sib.and_then(|l| Some((l, get_f64(l, "latitude")?, get_f64(l, "longitude")?))) {
                Some((l, latitude, longitude)) => InboundContent::Location(InboundLocation {
                    latitude,
                    longitude,
                    name: get_str(l, "name"),
                    address: get_str(l, "address"),
                    url: get_str(l, "url"),
                }),
                None => other(),
            }
        }
        "contacts" => match sib {
            Some(Value::Array(cards)) => InboundContent::Contacts(cards.clone()),
            _ => other(),
        },
        "order" => match sib {
            Some(o) => InboundContent::Order(o.clone()),
            None => other(),
        },
        "system" => match sib {
            Some(s) if s.is_object() => InboundContent::System(SystemEvent {
                body: get_str(s, "body"),
                kind: get_str(s, "type"),
                new_wa_id: get_str(s, "wa_id").or_else(|| get_str(s, "new_wa_id")),
            }),
            _ => other(),
        },
        "unsupported" => InboundContent::Unsupported {
            kind: sib.and_then(|u| get_str(u, "type")),
        },
        "request_welcome" => InboundContent::RequestWelcome,
        _ => other(),
    }
}

fn parse_interactive(i: &Value) -> InteractiveReply {
    let kind = get_str(i, "type").unwrap_or_default();
    let raw_other = || InteractiveReply::Other {
        kind: kind.clone(),
        raw: i.clone(),
    };
    let inner = i.get(kind.as_str());
    match kind.as_str() {
        "button_reply" => match inner
            .and_then(|b| Some((get_str(b, "id")?, get_str(b, "title").unwrap_or_default())))
        {
            Some((id, title)) => InteractiveReply::ButtonReply { id, title },
            None => raw_other(),
        },
        "list_reply" => match inner.and_then(|l| Some((l, get_str(l, "id")?))) {
            Some((l, id)) => InteractiveReply::ListReply {
                id,
                title: get_str(l, "title").unwrap_or_default(),
                description: get_str(l, "description"),
            },
            None => raw_other(),
        },
        "nfm_reply" => match inner {
            Some(n) if n.is_object() => InteractiveReply::NfmReply {
                name: get_str(n, "name"),
                body: get_str(n, "body"),
                response_json: get_str(n, "response_json"),
            },
            _ => raw_other(),
        },
        _ => raw_other(),
    }
}

fn parse_status(s: &Value) -> Result<MessageStatus, String> {
    if !s.is_object() {
        return Err("the status is not an object".into());
    }
    let id = get_str(s, "id")
        .filter(|x| !x.is_empty())
        .ok_or("the status has no 'id'")?;
    let status = get_str(s, "status").ok_or("the status has no 'status'")?;
    Ok(MessageStatus {
        id,
        status: DeliveryStatus::from(status.as_str()),
        timestamp: s.get("timestamp").and_then(lenient_i64),
        recipient_id: get_str(s, "recipient_id"),
        recipient_user_id: get_str(s, "recipient_user_id"),
        recipient_type: get_str(s, "recipient_type"),
        recipient_participant_id: get_str(s, "recipient_participant_id"),
        biz_opaque_callback_data: get_str(s, "biz_opaque_callback_data"),
        conversation: s
            .get("conversation")
            .and_then(|c| serde_json::from_value(c.clone()).ok()),
        pricing: s
            .get("pricing")
            .and_then(|p| serde_json::from_value(p.clone()).ok()),
        errors: meta_errors(s.get("errors")),
    })
}

// ---------------------------------------------------------------------------------------------
// iteration helpers

impl WebhookPayload {
    /// Every change of every entry.
    pub fn changes(&self) -> impl Iterator<Item = &Change> {
        self.entries.iter().flat_map(|e| e.changes.iter())
    }

    /// Every messages change.
    pub fn messages_changes(&self) -> impl Iterator<Item = &MessagesChange> {
        self.changes().filter_map(|c| match c {
            Change::Messages(m) => Some(m),
            _ => None,
        })
    }

    /// Every inbound message, with the business number it came to.
    pub fn messages(&self) -> impl Iterator<Item = (&Metadata, &InboundMessage)> {
        self.messages_changes()
            .flat_map(|c| c.messages.iter().map(move |m| (&c.metadata, m)))
    }

    /// Every delivery status, with the business number it is about.
    pub fn statuses(&self) -> impl Iterator<Item = (&Metadata, &MessageStatus)> {
        self.messages_changes()
            .flat_map(|c| c.statuses.iter().map(move |s| (&c.metadata, s)))
    }
}

impl MessagesChange {
    /// The contact whose wa_id (or BSUID) sent this message.
    pub fn contact_of(&self, m: &InboundMessage) -> Option<&Contact> {
        self.contacts.iter().find(|c| {
            (m.from.is_some() && c.wa_id == m.from)
                || (m.from_user_id.is_some() && c.user_id == m.from_user_id)
        })
    }
}

// ---------------------------------------------------------------------------------------------
// serialization back to Meta's shape (for the sandbox)

impl InboundMessage {
    /// This message as Meta sends it.
    pub fn to_json(&self) -> Value {
        let mut o = Map::new();
        if let Some(f) = &self.from {
            o.insert("from".into(), json!(f));
        }
        if let Some(u) = &self.from_user_id {
            o.insert("from_user_id".into(), json!(u));
        }
        o.insert("id".into(), json!(self.id));
        if let Some(t) = self.timestamp {
            o.insert("timestamp".into(), json!(t.to_string()));
        }
        if let Some(c) = &self.context {
            let mut ctx = Map::new();
            if let Some(f) = &c.from {
                ctx.insert("from".into(), json!(f));
            }
            if let Some(i) = &c.id {
                ctx.insert("id".into(), json!(i));
            }
            if c.forwarded {
                ctx.insert("forwarded".into(), json!(true));
            }
            if c.frequently_forwarded {
                ctx.insert("frequently_forwarded".into(), json!(true));
            }
            o.insert("context".into(), Value::Object(ctx));
        }
        if let Some(r) = &self.referral {
            o.insert("referral".into(), r.clone());
        }
        if !self.errors.is_empty() {
            o.insert("errors".into(), json!(self.errors));
        }
        let kind = self.kind().to_string();
        o.insert("type".into(), json!(kind));
        let media = |m: &InboundMedia| serde_json::to_value(m).unwrap_or(Value::Null);
        let content = match &self.content {
            InboundContent::Text { body } => Some(json!({ "body": body })),
            InboundContent::Image(m)
            | InboundContent::Video(m)
            | InboundContent::Audio(m)
            | InboundContent::Sticker(m)
            | InboundContent::Document(m) => Some(media(m)),
            InboundContent::Interactive(r) => Some(match r {
                InteractiveReply::ButtonReply { id, title } => {
                    json!({"type": "button_reply", "button_reply": {"id": id, "title": title}})
                }
                InteractiveReply::ListReply {
                    id,
                    title,
                    description,
                } => {
                    let mut l = json!({"id": id, "title": title});
                    if let (Some(d), Some(obj)) = (description, l.as_object_mut()) {
                        obj.insert("description".into(), json!(d));
                    }
                    json!({"type": "list_reply", "list_reply": l})
                }
                InteractiveReply::NfmReply {
                    name,
                    body,
                    response_json,
                } => {
                    json!({"type": "nfm_reply", "nfm_reply": {"name": name, "body": body, "response_json": response_json}})
                }
                InteractiveReply::Other { raw, .. } => raw.clone(),
            }),
            InboundContent::Button { payload, text } => {
                Some(json!({"payload": payload, "text": text}))
            }
            InboundContent::Reaction { message_id, emoji } => {
                Some(json!({"message_id": message_id, "emoji": emoji}))
            }
            InboundContent::Location(l) => {
                let mut loc = json!({"latitude": l.latitude, "longitude": l.longitude});
                if let Some(obj) = loc.as_object_mut() {
                    for (k, v) in [("name", &l.name), ("address", &l.address), ("url", &l.url)] {
                        if let Some(v) = v {
                            obj.insert(k.into(), json!(v));
                        }
                    }
                }
                Some(loc)
            }
            InboundContent::Contacts(cards) => Some(Value::Array(cards.clone())),
            InboundContent::Order(o) => Some(o.clone()),
            InboundContent::System(s) => {
                Some(json!({"body": s.body, "type": s.kind, "wa_id": s.new_wa_id}))
            }
            InboundContent::Unsupported { kind } => kind.as_ref().map(|k| json!({ "type": k })),
            InboundContent::RequestWelcome => None,
            InboundContent::Other { content, .. } => content.clone(),
        };
        if let Some(c) = content {
            o.insert(kind, c);
        }
        Value::Object(o)
    }
}

impl Serialize for InboundMessage {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(s)
    }
}

impl Change {
    /// `{"field": ..., "value": ...}` as Meta sends it.
    pub fn to_json(&self) -> Value {
        let value = match self {
            Change::Messages(m) => serde_json::to_value(m),
            Change::TemplateStatus(t) => serde_json::to_value(t),
            Change::TemplateQuality(t) => serde_json::to_value(t),
            Change::PhoneNumberQuality(p) => serde_json::to_value(p),
            Change::Account(a) => serde_json::to_value(a),
            Change::BusinessCapability(b) => serde_json::to_value(b),
            Change::Other(o) => Ok(o.value.clone()),
        }
        .unwrap_or(Value::Null);
        json!({"field": self.field(), "value": value})
    }
}

impl WebhookPayload {
    /// A payload with one entry and one `messages` change.
    pub fn single(waba_id: &str, time: Option<i64>, change: MessagesChange) -> Self {
        WebhookPayload {
            object: "whatsapp_business_account".into(),
            entries: vec![Entry {
                id: waba_id.to_string(),
                time,
                changes: vec![Change::Messages(change)],
            }],
        }
    }

    /// The body Meta would send.
    pub fn to_json(&self) -> Value {
        let entries: Vec<Value> = self
            .entries
            .iter()
            .map(|e| {
                let mut o = Map::new();
                o.insert("id".into(), json!(e.id));
                if let Some(t) = e.time {
                    o.insert("time".into(), json!(t));
                }
                o.insert(
                    "changes".into(),
                    Value::Array(e.changes.iter().map(Change::to_json).collect()),
                );
                Value::Object(o)
            })
            .collect();
        json!({"object": self.object, "entry": entries})
    }
}

impl Serialize for WebhookPayload {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(s)
    }
}

#[cfg(test)]
mod tests;
