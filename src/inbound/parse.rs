//! From a stored webhook body to [`Item`]s (pure).
//!
//! The body is read with the WhatsApp client's lenient parser
//! ([`crate::whatsapp::webhook::parse_webhook`]); this module decides what each part means for
//! Odoo: which `whatsapp.message` type and body an inbound message gets, which template status
//! or quality an update sets, what an account update changes. Nothing here fails on odd input:
//! what cannot be used becomes an [`Item::Note`], logged by the caller.

use chrono::{DateTime, Utc};
use serde_json::Value;

use super::model::{
    parse_unix_seconds, AccountChange, Inbound, Item, MediaRef, StatusError, StatusKind,
    StatusUpdate, TemplateChange,
};
use crate::whatsapp::templates::TemplateStatus;
use crate::whatsapp::webhook::{
    parse_webhook, AccountUpdate, BusinessCapabilityUpdate, Change, DeliveryStatus, InboundContent,
    InboundMedia, InboundMessage, InteractiveReply, MessageStatus, MessagesChange,
    PhoneNumberQualityUpdate, TemplateQualityUpdate, TemplateStatusUpdate,
};

/// Reads a stored body. `received_at` stands in for timestamps Meta left out. Only a body that
/// is no webhook at all is an error (the message says what is wrong).
pub fn items(raw_body: &str, received_at: DateTime<Utc>) -> Result<Vec<Item>, String> {
    let payload = parse_webhook(raw_body.as_bytes()).map_err(|e| e.to_string())?;
    let mut out = Vec::new();
    for entry in payload.entries {
        for change in entry.changes {
            match change {
                Change::Messages(change) => messages(&change, received_at, &mut out),
                Change::TemplateStatus(u) => out.push(template_status(&entry.id, &u)),
                Change::TemplateQuality(u) => out.push(template_quality(&entry.id, &u)),
                Change::PhoneNumberQuality(u) => out.push(phone_quality(&entry.id, &u)),
                Change::Account(u) => out.push(account_update(&entry.id, &u)),
                Change::BusinessCapability(u) => out.push(capability(&entry.id, &u)),
                Change::Other(other) => out.push(Item::Note(match other.problem {
                    Some(problem) => problem,
                    None => format!("webhook field '{}' is not used by the daemon", other.field),
                })),
            }
        }
    }
    Ok(out)
}

fn messages(change: &MessagesChange, received_at: DateTime<Utc>, out: &mut Vec<Item>) {
    for status in &change.statuses {
        out.push(match status_update(status, received_at) {
            Some(update) => Item::Status(update),
            None => Item::Note(format!(
                "status '{}' for {} is not tracked",
                status.status.as_str(),
                status.id
            )),
        });
    }
    for message in &change.messages {
        out.push(Item::Message(Box::new(inbound(
            change,
            message,
            received_at,
        ))));
    }
    for error in &change.errors {
        out.push(Item::Note(format!(
            "Meta reported an error for phone number id {}: {} (code {}){}",
            change.metadata.phone_number_id,
            error.display_title(),
            error.code,
            error
                .details()
                .map(|d| format!(": {d}"))
                .unwrap_or_default()
        )));
    }
    for unparsed in &change.unparsed {
        out.push(Item::Note(format!(
            "a {} could not be read: {}",
            unparsed.what, unparsed.problem
        )));
    }
}

fn time(ts: Option<i64>, fallback: DateTime<Utc>) -> DateTime<Utc> {
    ts.and_then(|t| parse_unix_seconds(&t.to_string()))
        .unwrap_or(fallback)
}

/// A status the daemon tracks; `None` for other status values.
pub fn status_update(status: &MessageStatus, received_at: DateTime<Utc>) -> Option<StatusUpdate> {
    let kind = match status.status {
        DeliveryStatus::Sent => StatusKind::Sent,
        DeliveryStatus::Delivered => StatusKind::Delivered,
        DeliveryStatus::Read => StatusKind::Read,
        DeliveryStatus::Failed => StatusKind::Failed,
        DeliveryStatus::Other(_) => return None,
    };
    Some(StatusUpdate {
        wamid: status.id.clone(),
        status: kind,
        timestamp: time(status.timestamp, received_at),
        recipient_id: status.recipient_id.clone(),
        recipient_user_id: status.recipient_user_id.clone(),
        callback_data: status
            .biz_opaque_callback_data
            .clone()
            .filter(|d| !d.trim().is_empty()),
        pricing_category: status.pricing.as_ref().and_then(|p| p.category.clone()),
        error: status.errors.first().map(|e| StatusError {
            code: e.code,
            title: Some(e.display_title()),
            details: e.details().map(str::to_owned),
            help: e.help(),
        }),
    })
}

fn inbound(change: &MessagesChange, m: &InboundMessage, received_at: DateTime<Utc>) -> Inbound {
    let contact = change.contact_of(m);
    let mut out = Inbound {
        phone_number_id: change.metadata.phone_number_id.clone(),
        wamid: m.id.clone(),
        wa_id: m
            .from
            .clone()
            .or_else(|| contact.and_then(|c| c.wa_id.clone())),
        user_id: m
            .from_user_id
            .clone()
            .or_else(|| contact.and_then(|c| c.user_id.clone())),
        profile_name: contact
            .and_then(|c| c.profile.as_ref())
            .and_then(|p| p.name.clone()),
        timestamp: time(m.timestamp, received_at),
        message_type: "text",
        body: None,
        media: None,
        reply_to: m.context.as_ref().and_then(|c| c.id.clone()),
        button_payload: None,
        button_title: None,
        typed_text: None,
        raw: m.to_json().to_string(),
    };
    let media = |kind: &'static str, media: &InboundMedia, out: &mut Inbound| {
        out.message_type = kind;
        out.body.clone_from(&media.caption);
        out.media = Some(MediaRef {
            id: media.id.clone(),
            mime_type: media.mime_type.clone(),
            filename: media.filename.clone(),
            sha256: media.sha256.clone(),
        });
    };
    match &m.content {
        InboundContent::Text { body } => {
            out.body = Some(body.clone());
            out.typed_text = Some(body.clone());
        }
        InboundContent::Image(x) => media("image", x, &mut out),
        InboundContent::Video(x) => media("video", x, &mut out),
        InboundContent::Audio(x) => media("audio", x, &mut out),
        InboundContent::Sticker(x) => media("sticker", x, &mut out),
        InboundContent::Document(x) => media("document", x, &mut out),
        InboundContent::Interactive(reply) => {
            out.message_type = "interactive";
            match reply {
                InteractiveReply::ButtonReply { id, title } => {
                    out.button_payload = Some(id.clone());
                    out.button_title = Some(title.clone());
                    out.body = Some(title.clone());
                }
                InteractiveReply::ListReply {
                    id,
                    title,
                    description,
                } => {
                    out.button_payload = Some(id.clone());
                    out.button_title = Some(title.clone());
                    out.body = Some(match description {
                        Some(d) if !d.is_empty() => format!("{title} ({d})"),
                        _ => title.clone(),
                    });
                }
                InteractiveReply::NfmReply {
                    name,
                    body,
                    response_json,
                } => {
                    out.body = Some(join(&[
                        name.as_deref().map(|n| format!("Flow {n}")),
                        body.clone(),
                        response_json.clone(),
                    ]));
                }
                InteractiveReply::Other { kind, .. } => {
                    out.body = Some(format!("Interactive reply of type '{kind}'"));
                }
            }
        }
        InboundContent::Button { payload, text } => {
            out.message_type = "button";
            out.button_payload = payload.clone().or_else(|| text.clone());
            out.button_title.clone_from(text);
            out.body.clone_from(text);
        }
        InboundContent::Reaction { message_id, emoji } => {
            out.message_type = "reaction";
            out.reply_to = Some(message_id.clone());
            out.body = Some(if emoji.is_empty() {
                "(reaction removed)".to_owned()
            } else {
                emoji.clone()
            });
        }
        InboundContent::Location(l) => {
            out.message_type = "location";
            let place = join(&[l.name.clone(), l.address.clone()]);
            let at = format!("({}, {})", l.latitude, l.longitude);
            out.body = Some(join(&[
                (!place.is_empty()).then_some(place),
                Some(at),
                l.url.clone(),
            ]));
        }
        InboundContent::Contacts(cards) => {
            out.message_type = "contacts";
            out.body = Some(contacts_summary(cards));
        }
        InboundContent::Order(order) => {
            out.message_type = "order";
            let items = order
                .get("product_items")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            let text = order.get("text").and_then(Value::as_str).map(str::to_owned);
            out.body = Some(join(&[Some(format!("Order of {items} item(s)")), text]));
        }
        InboundContent::System(system) => {
            out.message_type = "system";
            out.body = system.body.clone().or_else(|| system.kind.clone());
        }
        InboundContent::Unsupported { kind } => {
            out.message_type = "unsupported";
            out.body = Some(unsupported_body(kind.as_deref(), m));
        }
        InboundContent::RequestWelcome => out.message_type = "request_welcome",
        InboundContent::Other { kind, .. } => {
            out.message_type = "unsupported";
            out.body = Some(format!(
                "A message of type '{kind}', which the daemon does not read; the raw message \
                 is kept in 'Meta response (JSON)'."
            ));
        }
    }
    out
}

fn unsupported_body(kind: Option<&str>, m: &InboundMessage) -> String {
    let what = kind.map_or_else(
        || "An unsupported message".to_owned(),
        |k| format!("An unsupported message ({k})"),
    );
    match m.errors.first() {
        Some(e) => format!(
            "{what}: {}{}",
            e.display_title(),
            e.details().map(|d| format!(" ({d})")).unwrap_or_default()
        ),
        None => what,
    }
}

fn contacts_summary(cards: &[Value]) -> String {
    let people: Vec<String> = cards
        .iter()
        .map(|card| {
            let name = card
                .pointer("/name/formatted_name")
                .and_then(Value::as_str)
                .unwrap_or("(no name)");
            let phones: Vec<&str> = card
                .get("phones")
                .and_then(Value::as_array)
                .map(|p| {
                    p.iter()
                        .filter_map(|x| x.get("phone").and_then(Value::as_str))
                        .collect()
                })
                .unwrap_or_default();
            if phones.is_empty() {
                name.to_owned()
            } else {
                format!("{name} {}", phones.join(", "))
            }
        })
        .collect();
    format!("Contact card(s): {}", people.join("; "))
}

fn join(parts: &[Option<String>]) -> String {
    parts
        .iter()
        .flatten()
        .map(|s| s.trim())
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" — ")
}

/// `whatsapp.template.status` for a status event; `None` for events that change nothing
/// (a FLAGGED template stays approved; unknown events are only logged).
pub fn template_status_value(event: &TemplateStatus) -> Option<&'static str> {
    Some(match event {
        TemplateStatus::Approved | TemplateStatus::Flagged => "approved",
        TemplateStatus::Pending => "pending",
        TemplateStatus::Rejected => "rejected",
        TemplateStatus::Paused => "paused",
        TemplateStatus::Disabled => "disabled",
        TemplateStatus::InAppeal => "in_appeal",
        TemplateStatus::PendingDeletion => "pending_deletion",
        TemplateStatus::Deleted => "deleted",
        TemplateStatus::Archived => "archived",
        TemplateStatus::LimitExceeded => "limit_exceeded",
        TemplateStatus::Other(other) => match other.trim().to_ascii_uppercase().as_str() {
            "REINSTATED" | "UNPAUSED" => "approved",
            _ => return None,
        },
    })
}

/// A quality score (`GREEN`...) as the `quality_rating` selection value.
pub fn quality_value(score: &str) -> Option<&'static str> {
    Some(match score.trim().to_ascii_uppercase().as_str() {
        "GREEN" | "HIGH" => "green",
        "YELLOW" | "MEDIUM" => "yellow",
        "RED" | "LOW" => "red",
        "UNKNOWN" | "NA" => "unknown",
        _ => return None,
    })
}

fn template_status(waba_id: &str, u: &TemplateStatusUpdate) -> Item {
    let status = template_status_value(&u.event);
    let rejected_reason = (u.event == TemplateStatus::Rejected)
        .then(|| u.reason.clone())
        .flatten()
        .filter(|r| !r.trim().is_empty() && r.trim() != "NONE");
    Item::Template(TemplateChange {
        waba_id: waba_id.to_owned(),
        meta_template_id: u.message_template_id.clone(),
        name: u.message_template_name.clone(),
        language: u.message_template_language.clone(),
        status,
        rejected_reason,
        quality: None,
        event: format!("template status {}", u.event.as_str()),
    })
}

fn template_quality(waba_id: &str, u: &TemplateQualityUpdate) -> Item {
    let score = u.new_quality_score.as_deref().unwrap_or("");
    Item::Template(TemplateChange {
        waba_id: waba_id.to_owned(),
        meta_template_id: u.message_template_id.clone(),
        name: u.message_template_name.clone(),
        language: u.message_template_language.clone(),
        status: None,
        rejected_reason: None,
        quality: quality_value(score),
        event: format!("template quality {score}"),
    })
}

fn limit_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn phone_quality(waba_id: &str, u: &PhoneNumberQualityUpdate) -> Item {
    let event = u.event.clone().unwrap_or_default();
    let quality_rating = match event.trim().to_ascii_uppercase().as_str() {
        // Meta flags a number when its quality rating falls to low.
        "FLAGGED" => Some("red"),
        _ => None,
    };
    let messaging_limit = u
        .max_daily_conversations_per_business
        .as_ref()
        .and_then(limit_text)
        .or_else(|| u.current_limit.clone().filter(|l| !l.trim().is_empty()));
    Item::Account(AccountChange {
        waba_id: waba_id.to_owned(),
        phone_number: u.display_phone_number.as_deref().map(digits),
        quality_rating,
        messaging_limit,
        problem: None,
        // The update does not carry the rating itself: the settings check reads it.
        request_check: true,
        event: format!("phone number quality update {event}"),
    })
}

fn account_update(waba_id: &str, u: &AccountUpdate) -> Item {
    let event = u.event.clone().unwrap_or_default();
    let upper = event.trim().to_ascii_uppercase();
    let problem = matches!(
        upper.as_str(),
        "DISABLED_UPDATE" | "ACCOUNT_VIOLATION" | "ACCOUNT_RESTRICTION" | "ACCOUNT_DELETED"
    )
    .then(|| {
        let details: Vec<String> = ["ban_info", "violation_info", "restriction_info"]
            .iter()
            .filter_map(|k| u.extra.get(*k).map(|v| format!("{k}: {v}")))
            .collect();
        format!(
            "Meta reported {upper} for this account{}. Check the account in WhatsApp Manager.",
            if details.is_empty() {
                String::new()
            } else {
                format!(" ({})", details.join("; "))
            }
        )
    });
    Item::Account(AccountChange {
        waba_id: waba_id.to_owned(),
        phone_number: u.phone_number.as_deref().map(digits),
        quality_rating: None,
        messaging_limit: None,
        request_check: problem.is_some(),
        problem,
        event: format!("account update {event}"),
    })
}

fn capability(waba_id: &str, u: &BusinessCapabilityUpdate) -> Item {
    Item::Account(AccountChange {
        waba_id: waba_id.to_owned(),
        phone_number: None,
        quality_rating: None,
        messaging_limit: u
            .max_daily_conversations_per_business
            .as_ref()
            .and_then(limit_text)
            .or_else(|| u.max_daily_conversation_per_phone.map(|n| n.to_string())),
        problem: None,
        request_check: false,
        event: "business capability update".to_owned(),
    })
}

fn digits(number: &str) -> String {
    number.chars().filter(char::is_ascii_digit).collect()
}

#[cfg(test)]
mod tests;
