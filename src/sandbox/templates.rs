//! Message templates: the built-in demo set, reading Meta's listing JSON, and [`TemplateSpec`],
//! the parsed form the send validation checks parameters against (header format, body
//! placeholders, buttons).

use super::config::{TemplateConfig, DEFAULT_WABA_ID};
use serde_json::{json, Value};

/// The templates of the addon's demo data (`odoo_addon/whatsapp_sidecar/demo/`), with the same
/// ids, texts and buttons, so a demo database and the sandbox agree.
pub fn default_templates() -> Vec<TemplateConfig> {
    vec![
        TemplateConfig {
            id: "sandbox-tpl-0001".into(),
            name: "sidecar_hello".into(),
            language: "en_US".into(),
            status: "APPROVED".into(),
            category: "UTILITY".into(),
            parameter_format: "POSITIONAL".into(),
            components: json!([
                {"type": "BODY", "text": "Hello! Thanks for choosing us. Reply to this message to talk with our team."}
            ]),
            ..TemplateConfig::default()
        },
        TemplateConfig {
            id: "sandbox-tpl-0002".into(),
            name: "sidecar_invoice".into(),
            language: "en_US".into(),
            status: "APPROVED".into(),
            category: "UTILITY".into(),
            parameter_format: "POSITIONAL".into(),
            components: json!([
                {"type": "HEADER", "format": "DOCUMENT",
                 "example": {"header_handle": ["sandbox-handle-invoice"]}},
                {"type": "BODY",
                 "text": "Hello {{1}}, your invoice {{2}} of {{3}} is ready: the PDF is attached.",
                 "example": {"body_text": [["Alice", "INV/2025/00042", "$ 42.00"]]}},
                {"type": "FOOTER", "text": "Reply STOP to stop these messages"},
                {"type": "BUTTONS", "buttons": [
                    {"type": "QUICK_REPLY", "text": "Pay now"},
                    {"type": "QUICK_REPLY", "text": "Talk to us"}
                ]}
            ]),
            ..TemplateConfig::default()
        },
        TemplateConfig {
            id: "sandbox-tpl-0003".into(),
            name: "sidecar_order".into(),
            language: "en_US".into(),
            status: "APPROVED".into(),
            category: "UTILITY".into(),
            parameter_format: "POSITIONAL".into(),
            components: json!([
                {"type": "BODY",
                 "text": "Hello {{1}}, your order {{2}} of {{3}} is ready. Would you like to confirm it?",
                 "example": {"body_text": [["Alice", "S00042", "$ 42.00"]]}},
                {"type": "BUTTONS", "buttons": [
                    {"type": "QUICK_REPLY", "text": "Validate"},
                    {"type": "QUICK_REPLY", "text": "Cancel"},
                    {"type": "QUICK_REPLY", "text": "Details"}
                ]}
            ]),
            ..TemplateConfig::default()
        },
    ]
}

/// Reads templates from JSON: Meta's listing (`{"data": [...]}`) or a plain array.
pub fn parse_templates_json(text: &str) -> Result<Vec<TemplateConfig>, String> {
    let value: Value = serde_json::from_str(text).map_err(|e| format!("not valid JSON: {e}"))?;
    let items = match &value {
        Value::Array(items) => items,
        Value::Object(map) => match map.get("data") {
            Some(Value::Array(items)) => items,
            _ => {
                return Err(
                    "expected an array of templates or an object with a \"data\" array".into(),
                )
            }
        },
        _ => {
            return Err("expected an array of templates or an object with a \"data\" array".into())
        }
    };
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let field = |name: &str| item.get(name).and_then(Value::as_str).map(str::to_string);
        let name = field("name").ok_or_else(|| format!("template #{i} has no \"name\""))?;
        let defaults = TemplateConfig::default();
        out.push(TemplateConfig {
            waba_id: field("waba_id").unwrap_or_else(|| DEFAULT_WABA_ID.to_string()),
            id: field("id").unwrap_or_default(),
            language: field("language").unwrap_or(defaults.language),
            status: field("status").unwrap_or(defaults.status),
            category: field("category").unwrap_or(defaults.category),
            parameter_format: field("parameter_format").unwrap_or(defaults.parameter_format),
            components: item.get("components").cloned().unwrap_or_else(|| json!([])),
            name,
        });
    }
    Ok(out)
}

/// How a template's placeholders are written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Params {
    /// `{{1}}` .. `{{n}}`: this many parameters.
    Positional(usize),
    /// `{{first_name}}`: these names, in order of first appearance.
    Named(Vec<String>),
}

impl Params {
    /// How many parameters a send must supply.
    pub fn count(&self) -> usize {
        match self {
            Params::Positional(n) => *n,
            Params::Named(names) => names.len(),
        }
    }
}

/// A template's header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderSpec {
    /// A text header, possibly with parameters.
    Text(Params),
    /// A media header: `image`, `video` or `document` (lower case, as send parameters name it).
    Media(String),
    /// A location header.
    Location,
}

/// One template button.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ButtonSpec {
    /// `QUICK_REPLY`, `URL`, `PHONE_NUMBER`, `COPY_CODE`, `FLOW`, ...
    pub kind: String,
    /// The button label.
    pub text: String,
    /// For URL buttons: whether the URL has a `{{1}}` suffix to fill.
    pub url_has_param: bool,
}

/// A template parsed for validation.
#[derive(Debug, Clone)]
pub struct TemplateSpec {
    /// Meta's template id.
    pub id: String,
    /// The owning WABA.
    pub waba_id: String,
    /// The name.
    pub name: String,
    /// The language code.
    pub language: String,
    /// The review status.
    pub status: String,
    /// The category (`UTILITY`, ...).
    pub category: String,
    /// `POSITIONAL` or `NAMED`.
    pub parameter_format: String,
    /// The header, if any.
    pub header: Option<HeaderSpec>,
    /// The body text.
    pub body_text: String,
    /// The body's parameters.
    pub body_params: Params,
    /// The buttons, in order (their index is the send's `index`).
    pub buttons: Vec<ButtonSpec>,
    /// The components as configured.
    pub components: Value,
}

impl TemplateSpec {
    /// Parses a configured template, naming what is wrong.
    pub fn from_config(config: &TemplateConfig) -> Result<TemplateSpec, String> {
        let who = format!("template {} ({})", config.name, config.language);
        if config.name.trim().is_empty() {
            return Err("a template has an empty name".into());
        }
        if config.language.trim().is_empty() {
            return Err(format!("{who} has an empty language"));
        }
        let named = match config.parameter_format.to_ascii_uppercase().as_str() {
            "POSITIONAL" => false,
            "NAMED" => true,
            other => {
                return Err(format!(
                    "{who}: parameter_format {other:?} is neither POSITIONAL nor NAMED"
                ))
            }
        };
        let components = config
            .components
            .as_array()
            .ok_or_else(|| format!("{who}: components must be an array"))?;
        let mut header = None;
        let mut body = None;
        let mut buttons = Vec::new();
        for component in components {
            let kind = component
                .get("type")
                .and_then(Value::as_str)
                .ok_or_else(|| format!("{who}: a component has no \"type\""))?
                .to_ascii_uppercase();
            match kind.as_str() {
                "HEADER" => {
                    let format = component
                        .get("format")
                        .and_then(Value::as_str)
                        .unwrap_or("TEXT")
                        .to_ascii_uppercase();
                    header = Some(match format.as_str() {
                        "TEXT" => {
                            let text = component.get("text").and_then(Value::as_str).unwrap_or("");
                            HeaderSpec::Text(
                                placeholders(text, named)
                                    .map_err(|e| format!("{who} header: {e}"))?,
                            )
                        }
                        "IMAGE" | "VIDEO" | "DOCUMENT" => {
                            HeaderSpec::Media(format.to_ascii_lowercase())
                        }
                        "LOCATION" => HeaderSpec::Location,
                        other => return Err(format!("{who}: unknown header format {other:?}")),
                    });
                }
                "BODY" => {
                    let text = component
                        .get("text")
                        .and_then(Value::as_str)
                        .ok_or_else(|| format!("{who}: the BODY component has no text"))?;
                    let params =
                        placeholders(text, named).map_err(|e| format!("{who} body: {e}"))?;
                    body = Some((text.to_string(), params));
                }
                "FOOTER" => {}
                "BUTTONS" => {
                    let list = component
                        .get("buttons")
                        .and_then(Value::as_array)
                        .ok_or_else(|| {
                            format!("{who}: the BUTTONS component has no buttons array")
                        })?;
                    for button in list {
                        let kind = button
                            .get("type")
                            .and_then(Value::as_str)
                            .ok_or_else(|| format!("{who}: a button has no type"))?
                            .to_ascii_uppercase();
                        let url = button.get("url").and_then(Value::as_str).unwrap_or("");
                        buttons.push(ButtonSpec {
                            url_has_param: kind == "URL" && url.contains("{{"),
                            text: button
                                .get("text")
                                .and_then(Value::as_str)
                                .unwrap_or("")
                                .to_string(),
                            kind,
                        });
                    }
                }
                other => return Err(format!("{who}: unknown component type {other:?}")),
            }
        }
        let (body_text, body_params) =
            body.ok_or_else(|| format!("{who} has no BODY component: every template needs one"))?;
        Ok(TemplateSpec {
            id: if config.id.is_empty() {
                super::ids::template_id(&config.waba_id, &config.name, &config.language)
            } else {
                config.id.clone()
            },
            waba_id: config.waba_id.clone(),
            name: config.name.clone(),
            language: config.language.clone(),
            status: config.status.to_ascii_uppercase(),
            category: config.category.to_ascii_uppercase(),
            parameter_format: if named { "NAMED" } else { "POSITIONAL" }.to_string(),
            header,
            body_text,
            body_params,
            buttons,
            components: config.components.clone(),
        })
    }

    /// The object Meta's template listing returns for this template.
    pub fn listing_json(&self) -> Value {
        json!({
            "name": self.name,
            "parameter_format": self.parameter_format,
            "components": self.components,
            "language": self.language,
            "status": self.status,
            "category": self.category,
            "id": self.id,
        })
    }
}

/// The placeholders of a template text: `{{1}}`..`{{n}}` (positional, numbered from 1 without
/// gaps) or `{{name}}` (named: lower-case letters, digits and `_`).
pub fn placeholders(text: &str, named: bool) -> Result<Params, String> {
    let mut names: Vec<String> = Vec::new();
    let mut numbers: Vec<usize> = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            return Err(format!("unclosed placeholder in {text:?}"));
        };
        let inner = after[..end].trim();
        if named {
            if inner.is_empty()
                || !inner
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            {
                return Err(format!(
                    "placeholder {{{{{inner}}}}} is not a valid named parameter (lower-case letters, digits, _)"
                ));
            }
            if !names.iter().any(|n| n == inner) {
                names.push(inner.to_string());
            }
        } else {
            let n: usize = inner
                .parse()
                .map_err(|_| format!("placeholder {{{{{inner}}}}} is not a number: use {{{{1}}}}, {{{{2}}}}, ... or parameter_format NAMED"))?;
            if n == 0 {
                return Err("placeholders are numbered from {{1}}".into());
            }
            numbers.push(n);
        }
        rest = &after[end + 2..];
    }
    if named {
        return Ok(Params::Named(names));
    }
    numbers.sort_unstable();
    numbers.dedup();
    for (i, n) in numbers.iter().enumerate() {
        if *n != i + 1 {
            return Err(format!("placeholders skip {{{{{}}}}}", i + 1));
        }
    }
    Ok(Params::Positional(numbers.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_demo_templates_parse() {
        let specs: Vec<_> = default_templates()
            .iter()
            .map(|t| TemplateSpec::from_config(t).unwrap())
            .collect();
        let hello = specs.iter().find(|s| s.name == "sidecar_hello").unwrap();
        assert_eq!(hello.body_params, Params::Positional(0));
        assert!(hello.header.is_none());
        let invoice = specs.iter().find(|s| s.name == "sidecar_invoice").unwrap();
        assert_eq!(invoice.body_params, Params::Positional(3));
        assert_eq!(invoice.header, Some(HeaderSpec::Media("document".into())));
        assert_eq!(invoice.buttons.len(), 2);
        assert!(invoice.buttons.iter().all(|b| b.kind == "QUICK_REPLY"));
        assert_eq!(invoice.status, "APPROVED");
    }

    #[test]
    fn placeholder_parsing() {
        assert_eq!(
            placeholders("Hi {{1}}, {{2}} and {{1}}", false),
            Ok(Params::Positional(2))
        );
        assert_eq!(placeholders("no params", false), Ok(Params::Positional(0)));
        assert!(placeholders("Hi {{2}}", false)
            .unwrap_err()
            .contains("skip"));
        assert!(placeholders("Hi {{name}}", false).is_err());
        assert!(placeholders("Hi {{1", false)
            .unwrap_err()
            .contains("unclosed"));
        assert_eq!(
            placeholders("Hi {{first_name}}, order {{order}} {{first_name}}", true),
            Ok(Params::Named(vec!["first_name".into(), "order".into()]))
        );
        assert!(placeholders("Hi {{First}}", true).is_err());
    }

    #[test]
    fn url_buttons_with_a_suffix_need_a_parameter() {
        let config = TemplateConfig {
            name: "t".into(),
            components: json!([
                {"type": "BODY", "text": "x"},
                {"type": "BUTTONS", "buttons": [
                    {"type": "URL", "text": "Open", "url": "https://e.com/{{1}}"},
                    {"type": "URL", "text": "Site", "url": "https://e.com/"}]}
            ]),
            ..TemplateConfig::default()
        };
        let spec = TemplateSpec::from_config(&config).unwrap();
        assert!(spec.buttons[0].url_has_param);
        assert!(!spec.buttons[1].url_has_param);
    }

    #[test]
    fn a_template_without_body_is_refused() {
        let config = TemplateConfig {
            name: "t".into(),
            components: json!([{"type": "FOOTER", "text": "x"}]),
            ..TemplateConfig::default()
        };
        assert!(TemplateSpec::from_config(&config)
            .unwrap_err()
            .contains("no BODY"));
    }

    #[test]
    fn meta_listing_json_is_read() {
        let text = r#"{"data":[{"name":"a","language":"fr","status":"PAUSED","category":"MARKETING",
            "components":[{"type":"BODY","text":"Bonjour {{1}}"}],"id":"42"}],"paging":{}}"#;
        let templates = parse_templates_json(text).unwrap();
        assert_eq!(templates.len(), 1);
        assert_eq!(templates[0].status, "PAUSED");
        assert_eq!(templates[0].id, "42");
        assert_eq!(templates[0].waba_id, "sandbox-waba");
        assert!(parse_templates_json("{}").is_err());
        assert!(parse_templates_json("[{}]")
            .unwrap_err()
            .contains("no \"name\""));
    }
}
