use super::*;
use crate::outbox::model::{Account, Company, Conversation, Message, Partner, Template};
use chrono::{TimeDelta, TimeZone};

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 12, 0, 0).unwrap()
}

fn account(id: i64) -> Account {
    Account {
        id,
        name: format!("Account {id}"),
        active: true,
        company_id: Some(1),
        is_default: id == 1,
        phone_number_id: format!("10{id}"),
        access_token: None,
        graph_api_version: None,
        throughput_mps: 80,
        paused: false,
        paused_reason: None,
        template_order_creation_id: None,
        template_invoice_posted_id: None,
        template_residual_change_id: None,
        template_unpaid_invoice_id: None,
        template_generic_id: None,
        template_document_id: None,
        default_media_url: None,
        waba_id: None,
        messaging_limit: None,
    }
}

fn template(id: i64, status: &str, header: &str) -> Template {
    Template {
        id,
        name: format!("tpl_{id}"),
        language: "fr".into(),
        account_id: Some(1),
        active: true,
        status: status.into(),
        parameter_format: "positional".into(),
        components_json: None,
        header_type: header.into(),
        variable_ids: vec![],
        variables: vec![],
    }
}

fn snapshot() -> Snapshot {
    let mut s = Snapshot::default();
    s.accounts.insert(1, account(1));
    s.accounts.insert(2, account(2));
    s.companies.insert(
        1,
        Company {
            id: 1,
            name: "ACME CI".into(),
            country_code: Some("CI".into()),
            lang: None,
        },
    );
    s.partners.insert(
        10,
        Partner {
            id: 10,
            name: "Alice".into(),
            opt_in: true,
            opted_out: false,
            number_e164: None,
            mobile: Some("07 00 00 00 01".into()),
            phone: None,
        },
    );
    s.partners.insert(
        11,
        Partner {
            id: 11,
            name: "Bob".into(),
            opt_in: false,
            opted_out: false,
            number_e164: Some("+2250700000002".into()),
            mobile: None,
            phone: None,
        },
    );
    s.templates.insert(5, template(5, "approved", "none"));
    s.templates.insert(6, template(6, "pending", "none"));
    s.templates.insert(7, template(7, "approved", "document"));
    s.templates.insert(8, template(8, "approved", "image"));
    s
}

fn text_to(partner: i64) -> Message {
    Message {
        id: 100,
        company_id: Some(1),
        partner_id: Some(partner),
        state: "sending".into(),
        message_type: "text".into(),
        trigger: "manual".into(),
        body: Some("Hello https://example.com".into()),
        ..Message::default()
    }
}

fn open_conversation(s: &mut Snapshot, wa_id: &str) {
    s.conversations.insert(
        50,
        Conversation {
            id: 50,
            account_id: Some(1),
            wa_id: Some(wa_id.into()),
            partner_id: None,
            last_inbound_at: Some(now() - TimeDelta::hours(2)),
            window_expires_at: Some(now() + TimeDelta::hours(22)),
        },
    );
}

fn fails(s: &Snapshot, m: &Message) -> GateFailure {
    gate(s, m, now()).expect_err("the gate should refuse this message")
}

#[test]
fn opted_in_text_inside_the_window_is_sent_free_form() {
    let mut s = snapshot();
    open_conversation(&mut s, "2250700000001");
    let plan = gate(&s, &text_to(10), now()).unwrap();
    assert_eq!(plan.account_id, 1, "the company's default account");
    assert_eq!(plan.to.as_str(), "+2250700000001", "normalised with CI");
    assert!(plan.write_e164);
    assert!(!plan.window_template);
    assert_eq!(
        plan.content,
        Content::Text {
            body: "Hello https://example.com".into(),
            preview_url: true
        }
    );
}

#[test]
fn the_messages_own_account_wins_over_the_default() {
    let mut s = snapshot();
    open_conversation(&mut s, "2250700000001");
    s.conversations.get_mut(&50).unwrap().account_id = Some(2);
    let m = Message {
        account_id: Some(2),
        ..text_to(10)
    };
    assert_eq!(gate(&s, &m, now()).unwrap().account_id, 2);
}

#[test]
fn no_account_says_how_to_set_a_default() {
    let mut s = snapshot();
    s.accounts.get_mut(&1).unwrap().is_default = false;
    let f = fails(&s, &text_to(10));
    assert_eq!(f.kind, GateKind::NoAccount);
    assert!(!f.is_retryable());
    assert!(
        f.help.contains("ACME CI has no default account"),
        "{}",
        f.help
    );
    assert!(f.help.contains("Default for the company"));

    let m = Message {
        account_id: Some(99),
        ..text_to(10)
    };
    assert_eq!(fails(&s, &m).kind, GateKind::AccountUnavailable);
}

#[test]
fn paused_account_requeues_instead_of_failing() {
    let mut s = snapshot();
    let a = s.accounts.get_mut(&1).unwrap();
    a.paused = true;
    a.paused_reason = Some("Access token expired".into());
    let f = fails(&s, &text_to(10));
    assert_eq!(f.kind, GateKind::AccountPaused);
    assert!(f.is_retryable());
    assert!(f.help.contains("Access token expired"));
}

#[test]
fn a_bad_number_names_the_contact() {
    let mut s = snapshot();
    s.partners.get_mut(&10).unwrap().mobile = Some("12".into());
    let f = fails(&s, &text_to(10));
    assert_eq!(f.kind, GateKind::BadNumber);
    assert!(f.help.contains("(contact Alice)"), "{}", f.help);

    s.partners.get_mut(&10).unwrap().mobile = None;
    let f = fails(&s, &text_to(10));
    assert_eq!(f.kind, GateKind::BadNumber);
    assert!(f.help.starts_with("No phone number"), "{}", f.help);
}

#[test]
fn the_stored_e164_is_not_rewritten() {
    let mut s = snapshot();
    open_conversation(&mut s, "2250700000001");
    let m = Message {
        to_e164: Some("+2250700000001".into()),
        ..text_to(10)
    };
    assert!(!gate(&s, &m, now()).unwrap().write_e164);
}

#[test]
fn not_opted_in_fails_with_the_fix() {
    let s = snapshot();
    let m = Message {
        message_type: "template".into(),
        template_id: Some(5),
        ..text_to(11)
    };
    let f = fails(&s, &m);
    assert_eq!(f.kind, GateKind::NotOptedIn);
    assert!(
        f.help.starts_with(
            "The customer has not opted in to WhatsApp messages: tick 'WhatsApp opt-in' on the \
             contact Bob"
        ),
        "{}",
        f.help
    );
}

#[test]
fn a_reply_inside_a_conversation_the_customer_opened_needs_no_opt_in() {
    let mut s = snapshot();
    open_conversation(&mut s, "2250700000002");
    let plan = gate(&s, &text_to(11), now()).unwrap();
    assert_eq!(plan.to.as_str(), "+2250700000002");

    // Found through the message's own conversation too, whatever its wa_id.
    s.conversations.get_mut(&50).unwrap().wa_id = Some("other".into());
    let m = Message {
        conversation_id: Some(50),
        ..text_to(11)
    };
    assert!(gate(&s, &m, now()).is_ok());
}

#[test]
fn an_open_window_allows_no_campaign_without_opt_in() {
    let mut s = snapshot();
    open_conversation(&mut s, "2250700000002");
    let m = Message {
        trigger: "campaign".into(),
        ..text_to(11)
    };
    let failure = fails(&s, &m);
    assert_eq!(failure.kind, GateKind::NotOptedIn);
    assert!(
        failure.help.contains("tick 'WhatsApp opt-in'"),
        "{}",
        failure.help
    );
}

#[test]
fn after_an_opt_out_only_its_confirmation_goes_out() {
    let mut s = snapshot();
    // The customer just wrote STOP: the window is open, but they opted out.
    open_conversation(&mut s, "2250700000002");
    s.partners.get_mut(&11).unwrap().opted_out = true;
    let failure = fails(&s, &text_to(11));
    assert_eq!(failure.kind, GateKind::NotOptedIn);
    assert!(
        failure
            .help
            .starts_with("Bob opted out of WhatsApp messages"),
        "{}",
        failure.help
    );

    let confirmation = Message {
        trigger: "opt_out".into(),
        ..text_to(11)
    };
    assert!(gate(&s, &confirmation, now()).is_ok());
}

#[test]
fn a_bare_number_needs_an_open_window() {
    let mut s = snapshot();
    let m = Message {
        partner_id: None,
        to_number: Some("+225 07 00 00 00 09".into()),
        ..text_to(10)
    };
    let f = fails(&s, &m);
    assert_eq!(f.kind, GateKind::NoConsent);
    assert!(f.help.contains("+2250700000009 is not linked to a contact"));
    open_conversation(&mut s, "2250700000009");
    assert!(gate(&s, &m, now()).is_ok());
}

#[test]
fn outside_the_window_free_form_without_template_fails_naming_the_setting() {
    let s = snapshot();
    let m = Message {
        trigger: "invoice_posted".into(),
        ..text_to(10)
    };
    let f = fails(&s, &m);
    assert_eq!(f.kind, GateKind::WindowClosed);
    assert!(
        f.help.contains("'Template for posted invoices'"),
        "{}",
        f.help
    );
    assert!(f.help.contains("Account 1"));
}

#[test]
fn an_expired_window_counts_as_closed() {
    let mut s = snapshot();
    open_conversation(&mut s, "2250700000001");
    let c = s.conversations.get_mut(&50).unwrap();
    c.last_inbound_at = Some(now() - TimeDelta::hours(30));
    c.window_expires_at = Some(now() - TimeDelta::hours(6));
    assert_eq!(fails(&s, &text_to(10)).kind, GateKind::WindowClosed);
}

#[test]
fn outside_the_window_the_accounts_template_replaces_free_form() {
    let mut s = snapshot();
    s.accounts.get_mut(&1).unwrap().template_invoice_posted_id = Some(7);
    let m = Message {
        trigger: "invoice_posted".into(),
        message_type: "document".into(),
        body: Some("Your invoice".into()),
        res_model: Some("account.move".into()),
        res_id: Some(42),
        media_filename: Some("INV-42.pdf".into()),
        ..text_to(10)
    };
    let plan = gate(&s, &m, now()).unwrap();
    assert!(plan.window_template);
    assert_eq!(
        plan.content,
        Content::Template {
            template_id: 7,
            params: ParamSource::Variables {
                record: Some(("account.move".into(), 42))
            },
            header_media: Some(MediaSource::Report {
                report: "account.report_invoice".into(),
                model: "account.move".into(),
                id: 42
            }),
            filename: Some("INV-42.pdf".into()),
        }
    );
}

#[test]
fn the_window_template_must_be_approved() {
    let mut s = snapshot();
    s.accounts.get_mut(&1).unwrap().template_generic_id = Some(6);
    let f = fails(&s, &text_to(10));
    assert_eq!(f.kind, GateKind::TemplateNotApproved);
    assert!(f
        .help
        .starts_with("Outside the 24-hour window the account's 'Generic template'"));
    assert!(f.help.contains("tpl_6 (fr) is pending"), "{}", f.help);
}

#[test]
fn only_templates_without_an_open_window_are_business_initiated() {
    // Counted by Meta's daily messaging limit: a template while the window is closed, whether
    // the message is a template or the account's template replaced free-form content.
    let mut s = snapshot();
    s.accounts.get_mut(&1).unwrap().template_generic_id = Some(5);
    let template = Message {
        message_type: "template".into(),
        template_id: Some(5),
        ..text_to(10)
    };
    assert!(gate(&s, &template, now()).unwrap().outside_window);
    let replaced = gate(&s, &text_to(10), now()).unwrap();
    assert!(replaced.window_template && replaced.outside_window);
    // The customer wrote: neither a template nor free-form content is business-initiated.
    open_conversation(&mut s, "2250700000001");
    assert!(!gate(&s, &template, now()).unwrap().outside_window);
    assert!(!gate(&s, &text_to(10), now()).unwrap().outside_window);
}

#[test]
fn template_messages_need_an_approved_template_of_their_account() {
    let mut s = snapshot();
    let m = Message {
        message_type: "template".into(),
        template_id: None,
        ..text_to(10)
    };
    assert_eq!(fails(&s, &m).kind, GateKind::NoTemplate);
    let m = Message {
        template_id: Some(6),
        ..m
    };
    assert_eq!(fails(&s, &m).kind, GateKind::TemplateNotApproved);
    let m = Message {
        template_id: Some(404),
        ..m
    };
    assert_eq!(fails(&s, &m).kind, GateKind::TemplateUnavailable);
    s.templates.get_mut(&5).unwrap().account_id = Some(2);
    let m = Message {
        template_id: Some(5),
        ..m
    };
    let f = fails(&s, &m);
    assert_eq!(f.kind, GateKind::TemplateUnavailable);
    assert!(f.help.contains("another WhatsApp account"));
}

#[test]
fn template_params_come_from_the_message_or_the_variables() {
    let s = snapshot();
    let m = Message {
        message_type: "template".into(),
        template_id: Some(5),
        template_params_json: Some(
            r#"{"body": [{"name": "1", "value": "Alice"}, {"name": 2, "value": 42}],
                "buttons": [{"index": 0, "name": "1", "value": "PAY:42"}]}"#
                .into(),
        ),
        header_params_json: Some(r#"[{"name": "1", "value": "S00042"}]"#.into()),
        ..text_to(10)
    };
    let plan = gate(&s, &m, now()).unwrap();
    let Content::Template {
        params: ParamSource::Given(p),
        ..
    } = plan.content
    else {
        panic!("expected given params, got {:?}", plan.content)
    };
    assert_eq!(p.body[1].name, "2");
    assert_eq!(p.body[1].value, "42");
    assert_eq!(p.header[0].value, "S00042");
    assert_eq!(p.buttons[0].value, "PAY:42");

    let m = Message {
        template_params_json: None,
        header_params_json: None,
        ..m
    };
    let plan = gate(&s, &m, now()).unwrap();
    assert!(matches!(
        plan.content,
        Content::Template {
            params: ParamSource::Variables {
                record: Some((ref model, 10))
            },
            ..
        } if model == "res.partner"
    ));

    // Only buttons given (per-record quick-reply payloads): the rest from the variables.
    let m = Message {
        template_params_json: Some(
            r#"{"buttons": [{"index": 1, "name": "payload", "value": "order_cancel:7:t"}]}"#.into(),
        ),
        ..m
    };
    let plan = gate(&s, &m, now()).unwrap();
    let Content::Template {
        params: ParamSource::VariablesWithButtons { record, buttons },
        ..
    } = plan.content
    else {
        panic!("expected variables with buttons, got {:?}", plan.content)
    };
    assert_eq!(record, Some(("res.partner".to_owned(), 10)));
    assert_eq!(buttons[0].index, 1);
    assert_eq!(buttons[0].value, "order_cancel:7:t");

    let m = Message {
        template_params_json: Some("{not json".into()),
        ..m
    };
    let f = fails(&s, &m);
    assert_eq!(f.kind, GateKind::BadContent);
    assert!(f.help.contains("template_params_json"));
}

#[test]
fn a_media_header_needs_a_file() {
    let mut s = snapshot();
    let m = Message {
        message_type: "template".into(),
        template_id: Some(8),
        ..text_to(10)
    };
    let f = fails(&s, &m);
    assert_eq!(f.kind, GateKind::NoMedia);
    assert!(f.help.contains("Default media URL"));
    s.accounts.get_mut(&1).unwrap().default_media_url = Some("https://x.test/logo.png".into());
    let plan = gate(&s, &m, now()).unwrap();
    assert!(matches!(
        plan.content,
        Content::Template { header_media: Some(MediaSource::Url(ref u)), .. } if u == "https://x.test/logo.png"
    ));
}

#[test]
fn free_form_content_is_checked() {
    let mut s = snapshot();
    open_conversation(&mut s, "2250700000001");
    let empty = Message {
        body: Some("   ".into()),
        ..text_to(10)
    };
    assert_eq!(fails(&s, &empty).kind, GateKind::EmptyMessage);

    let image = Message {
        message_type: "image".into(),
        body: Some("Front view".into()),
        ..text_to(10)
    };
    assert_eq!(fails(&s, &image).kind, GateKind::NoMedia);
    let image = Message {
        media_attachment_id: Some(3),
        ..image
    };
    assert_eq!(
        gate(&s, &image, now()).unwrap().content,
        Content::Media {
            kind: MediaKind::Image,
            source: MediaSource::Attachment(3),
            caption: Some("Front view".into()),
            filename: None
        }
    );

    let doc = Message {
        message_type: "document".into(),
        res_model: Some("sale.order".into()),
        res_id: Some(8),
        ..text_to(10)
    };
    assert!(matches!(
        gate(&s, &doc, now()).unwrap().content,
        Content::Media { source: MediaSource::Report { ref report, .. }, .. } if report == "sale.report_saleorder"
    ));

    let interactive = Message {
        message_type: "interactive".into(),
        interactive_json: Some("[1]".into()),
        ..text_to(10)
    };
    assert_eq!(fails(&s, &interactive).kind, GateKind::BadContent);
    let interactive = Message {
        interactive_json: Some(r#"{"type": "button", "body": {"text": "Hi"}}"#.into()),
        ..interactive
    };
    assert!(matches!(
        gate(&s, &interactive, now()).unwrap().content,
        Content::Interactive(_)
    ));

    let location = Message {
        message_type: "location".into(),
        ..text_to(10)
    };
    let f = fails(&s, &location);
    assert_eq!(f.kind, GateKind::UnsupportedType);
    assert!(f.help.contains("'location'"));
}

#[test]
fn reply_context_is_kept() {
    let mut s = snapshot();
    open_conversation(&mut s, "2250700000001");
    let m = Message {
        reply_to_wamid: Some("wamid.ABC".into()),
        ..text_to(10)
    };
    assert_eq!(
        gate(&s, &m, now()).unwrap().reply_to.as_deref(),
        Some("wamid.ABC")
    );
}

#[test]
fn messages_with_a_wamid_are_already_sent() {
    let m = Message {
        wamid: Some("wamid.X".into()),
        delivered_at: Some(now()),
        ..text_to(10)
    };
    assert_eq!(already_sent_state(&m), Some("delivered"));
    assert_eq!(already_sent_state(&text_to(10)), None);
}

fn document_to(partner: i64) -> Message {
    Message {
        message_type: "document".into(),
        body: Some("Your quotation S00021".into()),
        res_model: Some("sale.order".into()),
        res_id: Some(21),
        report_name: Some("sale.report_saleorder".into()),
        media_filename: Some("S00021.pdf".into()),
        ..text_to(partner)
    }
}

#[test]
fn outside_the_window_a_document_never_goes_as_a_template_without_its_file() {
    // Only a generic template without header: it used to replace the PDF, which then never
    // reached the customer.
    let mut s = snapshot();
    s.accounts.get_mut(&1).unwrap().template_generic_id = Some(5);
    let f = fails(&s, &document_to(10));
    assert_eq!(f.kind, GateKind::WindowClosed);
    assert!(
        f.help
            .contains("set 'Template for documents' on the WhatsApp account Account 1"),
        "{}",
        f.help
    );
    assert!(f.help.contains("Nothing was sent."), "{}", f.help);

    // A 'Template for documents' without a document header is refused too, saying why.
    s.accounts.get_mut(&1).unwrap().template_document_id = Some(8);
    let f = fails(&s, &document_to(10));
    assert_eq!(f.kind, GateKind::WindowClosed);
    assert!(
        f.help
            .contains("'Template for documents' (template tpl_8 (fr)) has an image header"),
        "{}",
        f.help
    );
    assert!(f.help.contains("would leave out the file"), "{}", f.help);

    // With a document header, the PDF goes in it.
    s.accounts.get_mut(&1).unwrap().template_document_id = Some(7);
    let plan = gate(&s, &document_to(10), now()).unwrap();
    assert!(plan.window_template && plan.outside_window);
    assert_eq!(
        plan.content,
        Content::Template {
            template_id: 7,
            params: ParamSource::Variables {
                record: Some(("sale.order".into(), 21))
            },
            header_media: Some(MediaSource::Report {
                report: "sale.report_saleorder".into(),
                model: "sale.order".into(),
                id: 21
            }),
            filename: Some("S00021.pdf".into()),
        }
    );

    // An unapproved 'Template for documents' is named as such.
    s.accounts.get_mut(&1).unwrap().template_document_id = Some(6);
    let f = fails(&s, &document_to(10));
    assert_eq!(f.kind, GateKind::TemplateNotApproved);
    assert!(f
        .help
        .starts_with("Outside the 24-hour window the account's 'Template for documents'"));
}

#[test]
fn a_documents_own_trigger_template_carries_it_when_its_header_is_a_document() {
    let mut s = snapshot();
    let a = s.accounts.get_mut(&1).unwrap();
    a.template_invoice_posted_id = Some(5); // no header: not for a file
    a.template_document_id = Some(7);
    let m = Message {
        trigger: "invoice_posted".into(),
        ..document_to(10)
    };
    assert!(matches!(
        gate(&s, &m, now()).unwrap().content,
        Content::Template { template_id: 7, .. }
    ));
    // Without 'Template for documents', the header-less invoice template is not used.
    s.accounts.get_mut(&1).unwrap().template_document_id = None;
    let f = fails(&s, &m);
    assert!(f.help.contains("'Template for documents'"), "{}", f.help);
}

#[test]
fn outside_the_window_an_image_goes_only_in_an_image_header() {
    let mut s = snapshot();
    s.accounts.get_mut(&1).unwrap().template_generic_id = Some(5);
    let image = Message {
        message_type: "image".into(),
        media_attachment_id: Some(3),
        body: Some("Front view".into()),
        ..text_to(10)
    };
    let f = fails(&s, &image);
    assert_eq!(f.kind, GateKind::WindowClosed);
    assert!(
        f.help
            .contains("'Generic template' (template tpl_5 (fr)) has no header"),
        "{}",
        f.help
    );
    assert!(f.help.contains("would leave out the image"), "{}", f.help);

    s.accounts.get_mut(&1).unwrap().template_generic_id = Some(8);
    let plan = gate(&s, &image, now()).unwrap();
    assert!(matches!(
        plan.content,
        Content::Template {
            template_id: 8,
            header_media: Some(MediaSource::Attachment(3)),
            ..
        }
    ));

    s.accounts.get_mut(&1).unwrap().template_generic_id = None;
    let f = fails(&s, &image);
    assert!(
        f.help.contains("an image can only go in the header"),
        "{}",
        f.help
    );
    assert!(f.help.contains("set 'Generic template'"), "{}", f.help);
}

#[test]
fn texts_are_in_the_language_of_who_queued_the_message() {
    let mut s = snapshot();
    s.user_langs.insert(7, "fr_FR".into());
    s.user_langs.insert(8, "en_US".into());
    let by = |uid: Option<i64>| Message {
        create_uid: uid,
        ..document_to(10)
    };
    assert_eq!(s.lang_of(&by(Some(7))), Lang::Fr);
    assert_eq!(s.lang_of(&by(Some(8))), Lang::En);
    assert_eq!(s.lang_of(&by(None)), Lang::En);

    let f = fails(&s, &by(Some(7)));
    assert_eq!(f.kind, GateKind::WindowClosed);
    assert!(
        f.help
            .starts_with("Le client n'a pas écrit dans les dernières 24 heures"),
        "{}",
        f.help
    );
    assert!(
        f.help
            .contains("renseignez « Modèle pour les documents » sur le compte WhatsApp Account 1"),
        "{}",
        f.help
    );
    assert_eq!(
        GateKind::WindowClosed.title(Lang::Fr),
        "Hors de la fenêtre de 24 heures"
    );
    let f = fails(&s, &by(Some(8)));
    assert!(
        f.help.starts_with("The customer has not written"),
        "{}",
        f.help
    );

    // No language on the user: the company's.
    s.companies.get_mut(&1).unwrap().lang = Some("fr_BE".into());
    assert_eq!(s.lang_of(&by(None)), Lang::Fr);
    assert_eq!(s.lang_of(&by(Some(8))), Lang::En, "the user's wins");
    let unknown = Message {
        partner_id: Some(11),
        ..by(None)
    };
    assert!(fails(&s, &unknown)
        .help
        .starts_with("Le client n'a pas accepté les messages WhatsApp : cochez « Accord WhatsApp » sur le contact Bob"));
    let bad = Message {
        to_e164: Some("12".into()),
        ..by(None)
    };
    let f = fails(&s, &bad);
    assert_eq!(f.kind, GateKind::BadNumber);
    assert!(
        f.help.contains("n'est pas un numéro de téléphone"),
        "{}",
        f.help
    );
}
