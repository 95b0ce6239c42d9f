//! A first look at a verified body (pure): is it JSON, and which account is it about?
//!
//! The receiver does not interpret the payload (inbound processing does, from the stored
//! event); it only checks that the body is UTF-8 JSON, so that a broken body is stored with its
//! error instead of failing later, and reads the routing ids (`metadata.phone_number_id` of each
//! change, `entry[].id` = the WABA id) to fill the event's `account_id`.

use serde::de::IgnoredAny;
use serde::Deserialize;

/// What the receiver learnt from a body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    /// The body as text (invalid UTF-8 sequences replaced).
    pub text: String,
    /// Why the body cannot be processed, if it cannot.
    pub error: Option<String>,
    /// `metadata.phone_number_id` of the changes, in order, without repeats.
    pub phone_number_ids: Vec<String>,
    /// `entry[].id` (WABA ids), in order, without repeats.
    pub waba_ids: Vec<String>,
}

#[derive(Deserialize)]
struct Body {
    #[serde(default)]
    entry: Vec<Entry>,
}

#[derive(Deserialize)]
struct Entry {
    #[serde(default)]
    id: Option<Id>,
    #[serde(default)]
    changes: Vec<Change>,
}

#[derive(Deserialize)]
struct Change {
    #[serde(default)]
    value: Option<Value>,
}

#[derive(Deserialize)]
struct Value {
    #[serde(default)]
    metadata: Option<Metadata>,
}

#[derive(Deserialize)]
struct Metadata {
    #[serde(default)]
    phone_number_id: Option<Id>,
}

/// An id Meta sends as a string (sometimes as a number).
#[derive(Deserialize)]
#[serde(untagged)]
enum Id {
    Text(String),
    Number(u64),
    #[allow(dead_code)]
    Other(IgnoredAny),
}

impl Id {
    fn into_string(self) -> Option<String> {
        match self {
            Id::Text(s) if !s.trim().is_empty() => Some(s.trim().to_owned()),
            Id::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }
}

/// Inspects a body. Never fails: problems end up in [`Envelope::error`].
pub fn inspect(body: &[u8]) -> Envelope {
    let (text, utf8_error) = match std::str::from_utf8(body) {
        Ok(text) => (text.to_owned(), None),
        Err(e) => (
            String::from_utf8_lossy(body).into_owned(),
            Some(format!(
                "the body is not valid UTF-8 (first bad byte at offset {}), so it is not JSON; \
                 it is stored with the bad bytes replaced by U+FFFD",
                e.valid_up_to()
            )),
        ),
    };
    let mut envelope = Envelope {
        text,
        error: utf8_error,
        phone_number_ids: Vec::new(),
        waba_ids: Vec::new(),
    };
    if envelope.error.is_some() {
        return envelope;
    }
    if let Err(e) = serde_json::from_slice::<IgnoredAny>(body) {
        envelope.error = Some(format!(
            "the body is not valid JSON ({e}); Meta always sends JSON, so it was probably \
             changed on the way"
        ));
        return envelope;
    }
    // Routing ids are a convenience: a body of another shape is still stored as it is.
    if let Ok(parsed) = serde_json::from_slice::<Body>(body) {
        for entry in parsed.entry {
            if let Some(id) = entry.id.and_then(Id::into_string) {
                push_unique(&mut envelope.waba_ids, id);
            }
            for change in entry.changes {
                if let Some(id) = change
                    .value
                    .and_then(|v| v.metadata)
                    .and_then(|m| m.phone_number_id)
                    .and_then(Id::into_string)
                {
                    push_unique(&mut envelope.phone_number_ids, id);
                }
            }
        }
    }
    envelope
}

fn push_unique(list: &mut Vec<String>, value: String) {
    if !list.contains(&value) {
        list.push(value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_routing_ids_of_every_entry_and_change() {
        let body = br#"{"object":"whatsapp_business_account","entry":[
            {"id":"WABA1","changes":[{"field":"messages","value":{"metadata":{"phone_number_id":"111"}}},
                                     {"field":"messages","value":{"metadata":{"phone_number_id":"222"}}}]},
            {"id":"WABA1","changes":[{"field":"message_template_status_update","value":{"event":"APPROVED"}}]},
            {"id":42,"changes":[{"field":"messages","value":{"metadata":{"phone_number_id":111}}}]}]}"#;
        let e = inspect(body);
        assert_eq!(e.error, None);
        assert_eq!(e.phone_number_ids, vec!["111", "222"]);
        assert_eq!(e.waba_ids, vec!["WABA1", "42"]);
        assert_eq!(e.text.as_bytes(), body);
    }

    #[test]
    fn json_of_another_shape_is_fine_and_unrouted() {
        for body in [
            &br#"{"hello":"world"}"#[..],
            br#"[1,2]"#,
            br#"{"entry":"x"}"#,
            br#"{"entry":[{"id":{"a":1}}]}"#,
        ] {
            let e = inspect(body);
            assert_eq!(e.error, None, "{}", e.text);
            assert!(e.phone_number_ids.is_empty() && e.waba_ids.is_empty());
        }
    }

    #[test]
    fn broken_json_and_bad_utf8_are_named() {
        let e = inspect(br#"{"entry": [}"#);
        assert!(
            e.error.as_deref().unwrap().contains("not valid JSON"),
            "{:?}",
            e.error
        );
        assert_eq!(e.text, r#"{"entry": [}"#);
        let e = inspect(b"{\"a\":\"\xff\"}");
        assert!(
            e.error.as_deref().unwrap().contains("offset 6"),
            "{:?}",
            e.error
        );
        assert_eq!(e.text, "{\"a\":\"\u{fffd}\"}");
    }
}
