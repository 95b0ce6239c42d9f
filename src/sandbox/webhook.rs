//! Webhook payloads in Meta's shapes, and their signature. Pure functions.
//!
//! Every POST is an envelope `{"object":"whatsapp_business_account","entry":[{"id":WABA,
//! "changes":[{"value":{...},"field":"messages"}]}]}`. Status changes carry
//! `value.statuses[]`, inbound messages `value.contacts[]` + `value.messages[]`, template status
//! updates `field = "message_template_status_update"`. The signature header is
//! `X-Hub-Signature-256: sha256=<lower-case hex HMAC-SHA256 of the exact body bytes>`.

use super::error::GraphError;
use serde_json::{json, Map, Value};
use std::time::Duration;

/// The business side of a payload: which WABA and number it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Business {
    /// The WABA id (`entry[].id`).
    pub waba_id: String,
    /// The phone number id (`metadata.phone_number_id`).
    pub phone_number_id: String,
    /// The display number as digits (`metadata.display_phone_number`).
    pub display_digits: String,
}

impl Business {
    fn metadata(&self) -> Value {
        json!({"display_phone_number": self.display_digits, "phone_number_id": self.phone_number_id})
    }
}

/// A status of an outbound message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum StatusKind {
    /// Accepted by the API, no webhook yet (record only).
    Accepted,
    /// Sent to WhatsApp's servers.
    Sent,
    /// Delivered to the phone.
    Delivered,
    /// Read by the user.
    Read,
    /// Failed (final).
    Failed,
}

impl StatusKind {
    /// The webhook's `status` value.
    pub fn as_str(self) -> &'static str {
        match self {
            StatusKind::Accepted => "accepted",
            StatusKind::Sent => "sent",
            StatusKind::Delivered => "delivered",
            StatusKind::Read => "read",
            StatusKind::Failed => "failed",
        }
    }
}

/// Everything the status webhooks of one accepted message need.
#[derive(Debug, Clone)]
pub struct OutboundFacts {
    /// The business side.
    pub business: Business,
    /// The message's wamid.
    pub wamid: String,
    /// The recipient's wa_id.
    pub recipient_id: String,
    /// The recipient's business-scoped user id, when user ids are on.
    pub recipient_user_id: Option<String>,
    /// `biz_opaque_callback_data` of the send.
    pub callback_data: Option<String>,
    /// Pricing category (`utility`, `marketing`, `authentication`, `service`).
    pub category: String,
    /// Pricing type (`regular`, `free_customer_service`).
    pub pricing_type: String,
    /// The conversation object, for Graph versions before v24.0 (left out from v24.0 on).
    pub conversation: Option<Conversation>,
    /// Set when the message is bound to fail (undeliverable, window, media).
    pub failure: Option<GraphError>,
}

/// The legacy `conversation` object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversation {
    /// Its id.
    pub id: String,
    /// When it expires (Unix seconds), shown on `sent`.
    pub expiration_timestamp: u64,
}

/// One status to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusEvent {
    /// Which status.
    pub kind: StatusKind,
    /// The error of a `failed` status.
    pub error: Option<GraphError>,
}

/// The status JSON object of `value.statuses[]`.
pub fn status_json(facts: &OutboundFacts, event: &StatusEvent, timestamp: u64) -> Value {
    let mut status = Map::new();
    status.insert("id".into(), json!(facts.wamid));
    status.insert("status".into(), json!(event.kind.as_str()));
    status.insert("timestamp".into(), json!(timestamp.to_string()));
    status.insert("recipient_id".into(), json!(facts.recipient_id));
    if let Some(user_id) = &facts.recipient_user_id {
        status.insert("recipient_user_id".into(), json!(user_id));
    }
    if let Some(data) = &facts.callback_data {
        status.insert("biz_opaque_callback_data".into(), json!(data));
    }
    if event.kind != StatusKind::Failed {
        if let Some(conversation) = &facts.conversation {
            let mut c = Map::new();
            c.insert("id".into(), json!(conversation.id));
            if event.kind == StatusKind::Sent {
                c.insert(
                    "expiration_timestamp".into(),
                    json!(conversation.expiration_timestamp.to_string()),
                );
            }
            c.insert("origin".into(), json!({"type": facts.category}));
            status.insert("conversation".into(), Value::Object(c));
        }
    }
    if matches!(event.kind, StatusKind::Sent | StatusKind::Delivered) {
        status.insert(
            "pricing".into(),
            json!({"pricing_model": "PMP", "type": facts.pricing_type, "category": facts.category}),
        );
    }
    if let Some(error) = &event.error {
        status.insert("errors".into(), json!([error.status_error()]));
    }
    Value::Object(status)
}

/// A `messages` change carrying statuses.
pub fn statuses_change(business: &Business, statuses: Vec<Value>) -> Value {
    json!({
        "value": {
            "messaging_product": "whatsapp",
            "metadata": business.metadata(),
            "statuses": statuses,
        },
        "field": "messages",
    })
}

/// The envelope around changes of one WABA.
pub fn envelope(waba_id: &str, changes: Vec<Value>) -> Value {
    json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": waba_id, "changes": changes}],
    })
}

/// The envelope with `entry[].time` (Unix seconds), as account-level updates carry it.
pub fn envelope_at(waba_id: &str, time: u64, changes: Vec<Value>) -> Value {
    json!({
        "object": "whatsapp_business_account",
        "entry": [{"id": waba_id, "time": time, "changes": changes}],
    })
}

/// The sender of an inbound message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Contact {
    /// The user's wa_id.
    pub wa_id: String,
    /// The profile name.
    pub name: String,
    /// The business-scoped user id, when user ids are on.
    pub user_id: Option<String>,
}

/// What an injected inbound message says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InboundContent {
    /// A text message.
    Text(String),
    /// A tap on an interactive reply button.
    ButtonReply {
        /// The button id.
        id: String,
        /// The button title.
        title: String,
    },
    /// A choice in an interactive list.
    ListReply {
        /// The row id.
        id: String,
        /// The row title.
        title: String,
        /// The row description.
        description: Option<String>,
    },
    /// A tap on a template quick-reply button.
    TemplateButton {
        /// The payload given at send time.
        payload: String,
        /// The button text.
        text: String,
    },
}

/// The `messages[]` object of an inbound message.
pub fn inbound_message_json(
    contact: &Contact,
    wamid: &str,
    timestamp: u64,
    content: &InboundContent,
    context: Option<(&str, &str)>,
) -> Value {
    let mut message = Map::new();
    if let Some((from, id)) = context {
        message.insert("context".into(), json!({"from": from, "id": id}));
    }
    message.insert("from".into(), json!(contact.wa_id));
    if let Some(user_id) = &contact.user_id {
        message.insert("from_user_id".into(), json!(user_id));
    }
    message.insert("id".into(), json!(wamid));
    message.insert("timestamp".into(), json!(timestamp.to_string()));
    match content {
        InboundContent::Text(body) => {
            message.insert("type".into(), json!("text"));
            message.insert("text".into(), json!({"body": body}));
        }
        InboundContent::ButtonReply { id, title } => {
            message.insert("type".into(), json!("interactive"));
            message.insert(
                "interactive".into(),
                json!({"type": "button_reply", "button_reply": {"id": id, "title": title}}),
            );
        }
        InboundContent::ListReply {
            id,
            title,
            description,
        } => {
            let mut reply = Map::new();
            reply.insert("id".into(), json!(id));
            reply.insert("title".into(), json!(title));
            if let Some(description) = description {
                reply.insert("description".into(), json!(description));
            }
            message.insert("type".into(), json!("interactive"));
            message.insert(
                "interactive".into(),
                json!({"type": "list_reply", "list_reply": Value::Object(reply)}),
            );
        }
        InboundContent::TemplateButton { payload, text } => {
            message.insert("type".into(), json!("button"));
            message.insert("button".into(), json!({"payload": payload, "text": text}));
        }
    }
    Value::Object(message)
}

/// A `messages` change carrying one inbound message.
pub fn inbound_change(business: &Business, contact: &Contact, message: Value) -> Value {
    let mut contact_json = Map::new();
    contact_json.insert("profile".into(), json!({"name": contact.name}));
    contact_json.insert("wa_id".into(), json!(contact.wa_id));
    if let Some(user_id) = &contact.user_id {
        contact_json.insert("user_id".into(), json!(user_id));
    }
    json!({
        "value": {
            "messaging_product": "whatsapp",
            "metadata": business.metadata(),
            "contacts": [Value::Object(contact_json)],
            "messages": [message],
        },
        "field": "messages",
    })
}

/// A `message_template_status_update` change.
pub fn template_status_change(
    event: &str,
    template_id: &str,
    name: &str,
    language: &str,
    category: &str,
    reason: &str,
) -> Value {
    let id: Value = template_id
        .parse::<u64>()
        .map(Value::from)
        .unwrap_or_else(|_| Value::from(template_id));
    json!({
        "value": {
            "event": event,
            "message_template_id": id,
            "message_template_name": name,
            "message_template_language": language,
            "reason": reason,
            "message_template_category": category,
        },
        "field": "message_template_status_update",
    })
}

/// The chaos and delay settings a status plan needs.
#[derive(Debug, Clone)]
pub struct PlanSettings {
    /// Delay to `sent`.
    pub sent: Duration,
    /// Delay to `delivered`.
    pub delivered: Duration,
    /// Delay to `read`.
    pub read: Duration,
    /// Random extra delay, up to this.
    pub jitter: Duration,
    /// Share of messages read.
    pub read_ratio: f64,
    /// Share of messages failing.
    pub failure_ratio: f64,
    /// Codes for those failures.
    pub failure_codes: Vec<u32>,
    /// Share of messages whose statuses come in reverse order.
    pub reorder_ratio: f64,
}

/// When each status of a message is due, relative to its acceptance.
pub fn plan_statuses(
    facts: &OutboundFacts,
    settings: &PlanSettings,
    rng: &mut fastrand::Rng,
) -> Vec<(Duration, StatusEvent)> {
    let jitter = |rng: &mut fastrand::Rng| {
        let max = settings.jitter.as_millis() as u64;
        Duration::from_millis(if max == 0 { 0 } else { rng.u64(0..=max) })
    };
    if let Some(error) = &facts.failure {
        let event = StatusEvent {
            kind: StatusKind::Failed,
            error: Some(error.clone()),
        };
        return vec![(settings.sent + jitter(rng), event)];
    }
    if settings.failure_ratio > 0.0
        && rng.f64() < settings.failure_ratio
        && !settings.failure_codes.is_empty()
    {
        let code = settings.failure_codes[rng.usize(..settings.failure_codes.len())];
        let event = StatusEvent {
            kind: StatusKind::Failed,
            error: Some(GraphError::for_code(code)),
        };
        return vec![(settings.sent + jitter(rng), event)];
    }
    let mut kinds = vec![
        (settings.sent, StatusKind::Sent),
        (settings.delivered, StatusKind::Delivered),
    ];
    if settings.read_ratio >= 1.0 || rng.f64() < settings.read_ratio {
        kinds.push((settings.read, StatusKind::Read));
    }
    let mut plan: Vec<(Duration, StatusEvent)> = Vec::with_capacity(kinds.len());
    let mut last = Duration::ZERO;
    for (delay, kind) in kinds {
        let at = (delay + jitter(rng)).max(last);
        last = at;
        plan.push((at, StatusEvent { kind, error: None }));
    }
    if settings.reorder_ratio > 0.0 && rng.f64() < settings.reorder_ratio && plan.len() > 1 {
        // The last status comes first, the first last: e.g. read, delivered, sent.
        let times: Vec<Duration> = plan.iter().map(|(at, _)| *at).collect();
        let n = plan.len();
        for (i, (at, _)) in plan.iter_mut().enumerate() {
            *at = times[n - 1 - i];
        }
        plan.sort_by_key(|(at, _)| *at);
        // Equal times would keep their order; spread them so the reversal is observable.
        for i in 1..plan.len() {
            if plan[i].0 <= plan[i - 1].0 {
                plan[i].0 = plan[i - 1].0 + Duration::from_millis(1);
            }
        }
    }
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> OutboundFacts {
        OutboundFacts {
            business: Business {
                waba_id: "waba".into(),
                phone_number_id: "pn".into(),
                display_digits: "15550100100".into(),
            },
            wamid: "wamid.X".into(),
            recipient_id: "2250700000001".into(),
            recipient_user_id: Some("CI.1".into()),
            callback_data: Some("msg-42".into()),
            category: "utility".into(),
            pricing_type: "regular".into(),
            conversation: None,
            failure: None,
        }
    }

    fn settings() -> PlanSettings {
        PlanSettings {
            sent: Duration::from_millis(10),
            delivered: Duration::from_millis(20),
            read: Duration::from_millis(30),
            jitter: Duration::ZERO,
            read_ratio: 1.0,
            failure_ratio: 0.0,
            failure_codes: vec![131026],
            reorder_ratio: 0.0,
        }
    }

    #[test]
    fn status_shapes() {
        let f = facts();
        let sent = status_json(
            &f,
            &StatusEvent {
                kind: StatusKind::Sent,
                error: None,
            },
            1_750_000_000,
        );
        assert_eq!(sent["id"], "wamid.X");
        assert_eq!(sent["status"], "sent");
        assert_eq!(sent["timestamp"], "1750000000");
        assert_eq!(sent["recipient_id"], "2250700000001");
        assert_eq!(sent["recipient_user_id"], "CI.1");
        assert_eq!(sent["biz_opaque_callback_data"], "msg-42");
        assert_eq!(sent["pricing"]["pricing_model"], "PMP");
        assert_eq!(sent["pricing"]["category"], "utility");
        assert!(sent.get("conversation").is_none());
        assert!(sent.get("errors").is_none());

        let read = status_json(
            &f,
            &StatusEvent {
                kind: StatusKind::Read,
                error: None,
            },
            1,
        );
        assert!(read.get("pricing").is_none());

        let failed = status_json(
            &f,
            &StatusEvent {
                kind: StatusKind::Failed,
                error: Some(GraphError::undeliverable()),
            },
            1,
        );
        assert_eq!(failed["status"], "failed");
        assert_eq!(failed["errors"][0]["code"], 131026);
        assert!(failed.get("pricing").is_none());

        let mut old = facts();
        old.conversation = Some(Conversation {
            id: "c1".into(),
            expiration_timestamp: 99,
        });
        let sent = status_json(
            &old,
            &StatusEvent {
                kind: StatusKind::Sent,
                error: None,
            },
            1,
        );
        assert_eq!(sent["conversation"]["id"], "c1");
        assert_eq!(sent["conversation"]["expiration_timestamp"], "99");
        assert_eq!(sent["conversation"]["origin"]["type"], "utility");
        let delivered = status_json(
            &old,
            &StatusEvent {
                kind: StatusKind::Delivered,
                error: None,
            },
            1,
        );
        assert!(delivered["conversation"]
            .get("expiration_timestamp")
            .is_none());
    }

    #[test]
    fn envelope_shape() {
        let f = facts();
        let change = statuses_change(&f.business, vec![json!({"id": "a"})]);
        let body = envelope("waba", vec![change]);
        assert_eq!(body["object"], "whatsapp_business_account");
        assert_eq!(body["entry"][0]["id"], "waba");
        let change = &body["entry"][0]["changes"][0];
        assert_eq!(change["field"], "messages");
        assert_eq!(change["value"]["messaging_product"], "whatsapp");
        assert_eq!(change["value"]["metadata"]["phone_number_id"], "pn");
        assert_eq!(
            change["value"]["metadata"]["display_phone_number"],
            "15550100100"
        );
        assert_eq!(change["value"]["statuses"][0]["id"], "a");
    }

    #[test]
    fn inbound_shapes() {
        let contact = Contact {
            wa_id: "2250700000001".into(),
            name: "Awa".into(),
            user_id: None,
        };
        let m = inbound_message_json(
            &contact,
            "wamid.I",
            5,
            &InboundContent::Text("hi".into()),
            None,
        );
        assert_eq!(m["from"], "2250700000001");
        assert_eq!(m["type"], "text");
        assert_eq!(m["text"]["body"], "hi");
        assert_eq!(m["timestamp"], "5");
        assert!(m.get("context").is_none());

        let m = inbound_message_json(
            &contact,
            "wamid.I",
            5,
            &InboundContent::ButtonReply {
                id: "ok".into(),
                title: "OK".into(),
            },
            Some(("15550100100", "wamid.O")),
        );
        assert_eq!(m["interactive"]["type"], "button_reply");
        assert_eq!(m["interactive"]["button_reply"]["id"], "ok");
        assert_eq!(m["context"]["id"], "wamid.O");
        assert_eq!(m["context"]["from"], "15550100100");

        let m = inbound_message_json(
            &contact,
            "wamid.I",
            5,
            &InboundContent::ListReply {
                id: "r".into(),
                title: "Row".into(),
                description: Some("d".into()),
            },
            None,
        );
        assert_eq!(m["interactive"]["list_reply"]["description"], "d");

        let m = inbound_message_json(
            &contact,
            "wamid.I",
            5,
            &InboundContent::TemplateButton {
                payload: "PAY".into(),
                text: "Pay now".into(),
            },
            None,
        );
        assert_eq!(m["type"], "button");
        assert_eq!(m["button"]["payload"], "PAY");

        let business = facts().business;
        let change = inbound_change(&business, &contact, m);
        assert_eq!(change["value"]["contacts"][0]["profile"]["name"], "Awa");
        assert_eq!(change["value"]["contacts"][0]["wa_id"], "2250700000001");
        assert_eq!(change["value"]["messages"][0]["type"], "button");
    }

    #[test]
    fn plans() {
        let mut rng = fastrand::Rng::with_seed(7);
        let plan = plan_statuses(&facts(), &settings(), &mut rng);
        let kinds: Vec<_> = plan.iter().map(|(_, e)| e.kind).collect();
        assert_eq!(
            kinds,
            vec![StatusKind::Sent, StatusKind::Delivered, StatusKind::Read]
        );
        assert!(plan.windows(2).all(|w| w[0].0 <= w[1].0));

        let mut s = settings();
        s.read_ratio = 0.0;
        assert_eq!(plan_statuses(&facts(), &s, &mut rng).len(), 2);

        let mut s = settings();
        s.failure_ratio = 1.0;
        let plan = plan_statuses(&facts(), &s, &mut rng);
        assert_eq!(plan.len(), 1);
        assert_eq!(plan[0].1.kind, StatusKind::Failed);
        assert_eq!(plan[0].1.error.as_ref().unwrap().code, 131026);

        let mut f = facts();
        f.failure = Some(GraphError::re_engagement());
        let plan = plan_statuses(&f, &settings(), &mut rng);
        assert_eq!(plan[0].1.error.as_ref().unwrap().code, 131047);

        let mut s = settings();
        s.reorder_ratio = 1.0;
        let plan = plan_statuses(&facts(), &s, &mut rng);
        let kinds: Vec<_> = plan.iter().map(|(_, e)| e.kind).collect();
        assert_eq!(
            kinds,
            vec![StatusKind::Read, StatusKind::Delivered, StatusKind::Sent]
        );
        assert!(plan.windows(2).all(|w| w[0].0 < w[1].0));

        let mut s = settings();
        s.jitter = Duration::from_millis(50);
        for _ in 0..100 {
            let plan = plan_statuses(&facts(), &s, &mut rng);
            assert!(plan.windows(2).all(|w| w[0].0 <= w[1].0));
        }
    }

    #[test]
    fn template_status_update_shape() {
        let c = template_status_change("PAUSED", "123", "t", "en_US", "UTILITY", "NONE");
        assert_eq!(c["field"], "message_template_status_update");
        assert_eq!(c["value"]["message_template_id"], 123);
        assert_eq!(c["value"]["event"], "PAUSED");
    }
}
