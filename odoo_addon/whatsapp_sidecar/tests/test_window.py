# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""The composer tells, before Send, what the daemon will do with the message:
outside the customer's 24-hour window, which template replaces it, or why it is
refused; and consent as the daemon's gate checks it (src/outbox/gate.rs)."""

from lxml import etree

from odoo import fields
from odoo.exceptions import UserError, ValidationError

from .common import WhatsappCase
from .test_composer import PNG


class TestComposerWindow(WhatsappCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.document_template = cls.env["whatsapp.template"].create(
            {
                "name": "test_document",
                "language": "en_US",
                "account_id": cls.account.id,
                "status": "approved",
                "components_json": '[{"type": "HEADER", "format": "DOCUMENT"},'
                ' {"type": "BODY", "text": "Here is your document, {{1}}."}]',
                "variable_ids": [
                    (0, 0, {"name": "1", "component": "body", "sequence": 1,
                            "field_path": "partner_id.name"}),
                ],
            }
        )
        cls.order = cls.env["sale.order"].create(
            {"partner_id": cls.partner.id, "company_id": cls.company.id}
        )

    def count(self):
        return self.env["whatsapp.message"].search_count([])

    def order_composer(self, **values):
        context = self.order.action_whatsapp_send()["context"]
        return self.env["whatsapp.send.message"].with_user(self.salesman).with_context(
            context, allowed_company_ids=self.company.ids
        ).create(values)

    # --- free-form messages outside the window -------------------------------
    def test_text_outside_window_names_the_template_sent_instead(self):
        self.account.template_generic_id = self.template
        composer = self.composer(
            partner_id=self.partner.id, message_type="text", body="Hello Awa, your quote"
        )
        self.assertFalse(composer.window_open)
        self.assertEqual(composer.window_template_id, self.template)
        notice = composer.window_notice
        self.assertIn("has not written to this WhatsApp number in the last 24 hours", notice)
        self.assertIn("your text cannot be sent as it is", notice)
        self.assertIn("'Generic template' test_hello (en_US) is sent instead", notice)
        # The preview shows what the customer receives: the template, not the text.
        self.assertIn("Hello Opted-in Customer, total n/a", composer.preview)
        self.assertNotIn("Hello Awa", composer.preview)
        self.assertFalse(composer.send_refusal)
        before = self.count()
        composer.action_send()
        self.assertEqual(self.count(), before + 1)
        message = self.last_message()
        self.assertEqual((message.message_type, message.body), ("text", "Hello Awa, your quote"))

    def test_text_outside_window_without_template_is_refused(self):
        self.assertFalse(self.account.template_generic_id)
        composer = self.composer(partner_id=self.partner.id, message_type="text", body="Hi")
        self.assertFalse(composer.window_template_id)
        self.assertIn("has no 'Generic template' to send instead", composer.window_notice)
        self.assertEqual(composer.window_notice, composer.send_refusal)
        before = self.count()
        with self.assertRaisesRegex(
            UserError, r"set 'Generic template' on the account .*or send a template instead"
        ):
            composer.action_send()
        self.assertEqual(self.count(), before)

    def test_interactive_and_image_outside_window(self):
        self.account.template_generic_id = self.template
        composer = self.composer(
            partner_id=self.partner.id, message_type="interactive", body="Pick",
            interaction_type="buttons", option_ids=[(0, 0, {"title": "Yes"})],
        )
        self.assertIn("your interactive message cannot be sent as it is",
                      composer.window_notice)
        composer = self.composer(partner_id=self.partner.id, message_type="image",
                                 media_file=PNG, media_filename="photo.png")
        self.assertIn("(your file is not sent)", composer.window_notice)

    def test_closed_window_of_an_old_conversation(self):
        conversation = self.conversation("2250700000099", hours_ago=30, partner=self.partner)
        composer = self.composer(partner_id=self.partner.id, message_type="text", body="Hi")
        self.assertFalse(composer.window_open)
        self.assertIn("has no 'Generic template'", composer.window_notice)
        conversation.last_inbound_at = fields.Datetime.now()
        composer = self.composer(partner_id=self.partner.id, message_type="text", body="Hi")
        self.assertTrue(composer.window_open)
        self.assertFalse(composer.window_notice)
        composer.action_send()
        self.assertEqual(self.last_message().conversation_id, conversation,
                         "the message joins the customer's conversation")

    def test_window_of_another_account_does_not_count(self):
        other = self.env["whatsapp.account"].create(
            {"name": "Account A2", "company_id": self.company.id,
             "phone_number_id": "test-a-0002", "waba_id": "test-waba-a"}
        )
        self.conversation("2250700000099", account=other, partner=self.partner)
        composer = self.composer(partner_id=self.partner.id, message_type="text", body="Hi")
        self.assertFalse(composer.window_open)
        self.assertTrue(composer.send_refusal)

    def test_unusable_replacement_template_is_refused(self):
        self.account.template_generic_id = self.template
        self.template.status = "paused"
        composer = self.composer(partner_id=self.partner.id, message_type="text", body="Hi")
        self.assertFalse(composer.window_template_id)
        with self.assertRaisesRegex(UserError, "it is Paused at Meta, not approved"):
            composer.action_send()
        self.template.status = "approved"
        self.template.variable_ids.filtered(lambda v: v.name == "2").fixed_value = False
        composer = self.composer(partner_id=self.partner.id, message_type="text", body="Hi")
        with self.assertRaisesRegex(
            UserError, r"its parameter \{\{2\}\} has no value for Opted-in Customer"
        ):
            composer.action_send()

    def test_use_a_template_instead(self):
        self.account.template_generic_id = self.template
        composer = self.composer(partner_id=self.partner.id, message_type="text", body="Hi")
        action = composer.action_use_template()
        self.assertEqual((action["res_model"], action["res_id"]), (composer._name, composer.id))
        self.assertEqual(composer.message_type, "template")
        self.assertEqual(composer.template_id, self.template)
        self.assertFalse(composer.window_notice)

    # --- documents -------------------------------------------------------
    def test_document_outside_window_needs_the_document_template(self):
        self.account.template_generic_id = self.template
        composer = self.order_composer()
        self.assertEqual(composer.message_type, "document")
        self.assertTrue(composer.report_applies)
        self.assertFalse(composer.window_template_id, "never the generic template")
        self.assertIn("has no 'Template for documents' to send instead",
                      composer.window_notice)
        with self.assertRaisesRegex(UserError, "set 'Template for documents' on the account"):
            composer.action_send()

        self.account.template_document_id = self.document_template
        composer = self.order_composer()
        self.assertEqual(composer.window_template_id, self.document_template)
        self.assertIn(
            f"'Template for documents' test_document (en_US) is sent instead, with the "
            f"PDF of {self.order.name} as its header",
            composer.window_notice,
        )
        self.assertEqual(
            composer.preview,
            f"[Document: PDF of {self.order.name}]\nHere is your document, Opted-in Customer.",
        )
        composer.action_send()
        message = self.last_message()
        self.assertEqual(message.message_type, "document")
        self.assertEqual(message.report_name, "sale.report_saleorder")

    def test_document_template_must_have_a_document_header(self):
        with self.assertRaisesRegex(ValidationError, "has no document header"):
            self.account.template_document_id = self.template

    # --- templates are never replaced ---------------------------------------
    def test_template_outside_window_is_sent_as_chosen(self):
        self.assertFalse(self.account.template_generic_id)
        composer = self.composer(partner_id=self.partner.id, message_type="template",
                                 template_id=self.template.id)
        self.assertFalse(composer.window_notice)
        self.assertFalse(composer.send_refusal)
        composer.action_send()
        self.assertEqual(self.last_message().template_id, self.template)

    # --- consent ------------------------------------------------------------
    def test_opted_out_contact_is_refused_whatever_they_wrote(self):
        self.partner.write({"whatsapp_opt_in": False})
        self.assertTrue(self.partner.whatsapp_opt_out_date)
        self.conversation("2250700000099", partner=self.partner)
        composer = self.composer(partner_id=self.partner.id, message_type="text", body="Hi")
        self.assertTrue(composer.window_open)
        self.assertIn("opted out of WhatsApp messages", composer.warning)
        self.assertNotIn("unless", composer.warning)
        with self.assertRaisesRegex(UserError, "opted out of WhatsApp messages"):
            composer.action_send()
        composer.message_type = "template"
        composer.template_id = self.template
        with self.assertRaisesRegex(UserError, "opted out"):
            composer.action_send()

    def test_contact_without_opt_in(self):
        stranger = self.env["res.partner"].create(
            {"name": "Not Opted", "mobile": "+2250700000055"}
        )
        composer = self.composer(partner_id=stranger.id, message_type="text", body="Hi")
        self.assertIn("has not opted in to WhatsApp messages and has not written",
                      composer.warning)
        with self.assertRaisesRegex(UserError, "tick 'WhatsApp opt-in' on the contact"):
            composer.action_send()
        # Once they wrote, a reply is allowed.
        self.conversation("2250700000055", partner=stranger)
        composer = self.composer(partner_id=stranger.id, message_type="text", body="Hi")
        self.assertFalse(composer.warning)
        composer.action_send()
        self.assertEqual(self.last_message().partner_id, stranger)

    def test_bare_number_needs_an_open_window(self):
        composer = self.composer(phone_number="+33 7 00 00 00 01", message_type="text",
                                 body="Hi")
        with self.assertRaisesRegex(UserError, "is not linked to a contact"):
            composer.action_send()
        self.conversation("33700000001")
        self.composer(phone_number="+33 7 00 00 00 01", message_type="text",
                      body="Hi").action_send()
        self.assertEqual(self.last_message().to_number, "+33700000001")

    # --- the file fields show what applies ------------------------------------
    def test_file_source(self):
        self.conversation("2250700000099", partner=self.partner)
        composer = self.order_composer()
        self.assertTrue(composer.report_applies, "the order's PDF is offered")
        composer.message_type = "image"
        self.assertFalse(composer.report_applies, "an image is never the PDF")
        partner_composer = self.composer(partner_id=self.partner.id, message_type="document")
        self.assertFalse(partner_composer.report_applies, "no document, no PDF")
        self.assertEqual(partner_composer.media_source, "upload")
        # The chosen source is used, not a value left in the other one.
        both = self.composer(partner_id=self.partner.id, message_type="image",
                             media_file=PNG, media_filename="a.png",
                             media_url="https://example.com/b.png")
        self.assertEqual(both.media_source, "upload")
        both.action_send()
        self.assertTrue(self.last_message().media_attachment_id)
        self.assertFalse(self.last_message().media_url)
        both = self.composer(partner_id=self.partner.id, message_type="image",
                             media_file=PNG, media_filename="a.png",
                             media_url="https://example.com/b.png", media_source="url")
        both.action_send()
        self.assertEqual(self.last_message().media_url, "https://example.com/b.png")
        self.assertFalse(self.last_message().media_attachment_id)
        url_only = self.composer(partner_id=self.partner.id, message_type="image",
                                 media_url="https://example.com/c.png")
        self.assertEqual(url_only.media_source, "url")
        with self.assertRaisesRegex(UserError, "Give its public https:// URL"):
            self.composer(partner_id=self.partner.id, message_type="image",
                          media_source="url").action_send()

    def test_composer_view_shows_one_file_source_at_a_time(self):
        arch = etree.fromstring(self.env["whatsapp.send.message"].get_view(
            self.env.ref("whatsapp_sidecar.whatsapp_send_message_view_form").id, "form"
        )["arch"])

        def invisible(name):
            return arch.xpath(f"//field[@name='{name}']")[0].get("invisible")

        self.assertEqual(invisible("use_report"), "not report_applies")
        self.assertEqual(invisible("media_source"), "report_applies and use_report")
        self.assertIn("media_source != 'upload'", invisible("media_file"))
        self.assertIn("media_source != 'url'", invisible("media_url"))
        self.assertTrue(arch.xpath("//button[@name='action_use_template']"))


class TestBulkWindow(WhatsappCase):
    def wizard(self, partners, **values):
        env = self.env(user=self.user, context={"allowed_company_ids": self.company.ids,
                                                "active_model": "res.partner",
                                                "active_ids": partners.ids})
        values.setdefault("account_id", self.account.id)
        return env["whatsapp.send.partner.message"].create(values)

    def test_free_form_to_contacts_outside_the_window(self):
        wrote = self.env["res.partner"].create(
            {"name": "Wrote Today", "mobile": "+2250700000066", "whatsapp_opt_in": True})
        self.conversation("2250700000066", partner=wrote)
        partners = self.partner | wrote
        wizard = self.wizard(partners, message_type="text", body="Hello all")
        self.assertIn("1 of them have not written to this WhatsApp number", wizard.summary)
        self.assertIn("no usable 'Generic template'", wizard.summary)
        with self.assertRaisesRegex(UserError, "Set 'Generic template' on the account"):
            wizard.action_send()
        self.assertFalse(self.env["whatsapp.message"].search([("body", "=", "Hello all")]))

        self.account.template_generic_id = self.template
        wizard = self.wizard(partners, message_type="text", body="Hello all")
        self.assertIn("they receive the account's 'Generic template' test_hello (en_US) "
                      "instead of your message", wizard.summary)
        wizard.action_send()
        sent = self.env["whatsapp.message"].search([("body", "=", "Hello all")])
        self.assertEqual(sent.partner_id, partners)

        # A document needs the document template, never the generic one.
        wizard = self.wizard(partners, message_type="document",
                             media_url="https://example.com/a.pdf")
        self.assertIn("no usable 'Template for documents'", wizard.summary)

    def test_templates_are_not_replaced(self):
        wizard = self.wizard(self.partner, message_type="template",
                             template_id=self.template.id)
        self.assertNotIn("24 hours", wizard.summary)
        wizard.action_send()
