# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
import base64
import json

from odoo.exceptions import UserError

from .common import WhatsappCase

PNG = base64.b64encode(
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06"
    b"\x00\x00\x00\x1f\x15\xc4\x89\x00\x00\x00\rIDATx\x9cc\xf8\xff\xff?\x00\x05\xfe"
    b"\x02\xfe\xa7\x35\x81\x84\x00\x00\x00\x00IEND\xaeB`\x82"
)


class TestComposer(WhatsappCase):
    def setUp(self):
        super().setUp()
        # The customers wrote an hour ago: free-form messages go as they are.
        self.conversation("2250700000099", partner=self.partner)
        self.conversation("33612345678")

    def send(self, **values):
        before = self.env["whatsapp.message"].search_count([])
        result = self.composer(**values).action_send()
        self.assertEqual(self.env["whatsapp.message"].search_count([]), before + 1)
        self.assertEqual(result["tag"], "display_notification")
        message = self.last_message()
        self.assertEqual(message.state, "queued")
        self.assertEqual(message.direction, "out")
        self.assertEqual(message.account_id, self.account)
        self.assertEqual(message.company_id, self.company)
        self.assertEqual(message.create_uid, self.user)
        return message

    def test_text_to_partner(self):
        message = self.send(partner_id=self.partner.id, message_type="text", body="Hello there")
        self.assertEqual(message.message_type, "text")
        self.assertEqual(message.body, "Hello there")
        self.assertEqual(message.partner_id, self.partner)
        self.assertEqual(message.to_number, "+2250700000099")
        self.assertEqual(message.trigger, "manual")

    def test_text_to_typed_number(self):
        message = self.send(phone_number="+33 6 12-34.56 78", message_type="text", body="Hi")
        self.assertEqual(message.to_number, "+33612345678")
        self.assertFalse(message.partner_id)
        message = self.send(phone_number="0033612345678", message_type="text", body="Hi")
        self.assertEqual(message.to_number, "+33612345678")

    def test_template_with_parameters(self):
        composer = self.composer(
            partner_id=self.partner.id, message_type="template", template_id=self.template.id
        )
        values = {p.name: p.value for p in composer.param_ids}
        self.assertEqual(values["1"], "Opted-in Customer")
        self.assertEqual(values["2"], "n/a")
        self.assertEqual(values["payload"], f"ok:{self.partner.id}")
        self.assertIn("Hello Opted-in Customer, total n/a", composer.preview)
        composer.param_ids.filtered(lambda p: p.name == "2").value = "EUR 42.00"
        composer.action_send()
        message = self.last_message()
        self.assertEqual(message.message_type, "template")
        self.assertEqual(message.template_id, self.template)
        params = json.loads(message.template_params_json)
        self.assertEqual(
            params["body"],
            [{"name": "1", "value": "Opted-in Customer"}, {"name": "2", "value": "EUR 42.00"}],
        )
        self.assertEqual(
            params["buttons"], [{"name": "payload", "value": f"ok:{self.partner.id}", "index": 0}]
        )
        self.assertFalse(message.header_params_json)

    def test_template_empty_parameter_refused(self):
        composer = self.composer(
            partner_id=self.partner.id, message_type="template", template_id=self.template.id
        )
        composer.param_ids.filtered(lambda p: p.name == "2").value = " "
        with self.assertRaisesRegex(UserError, r"No content for template parameter \{\{2\}\}"):
            composer.action_send()

    def test_template_not_approved_refused(self):
        self.template.status = "paused"
        with self.assertRaisesRegex(UserError, "only approved templates"):
            self.composer(
                partner_id=self.partner.id, message_type="template",
                template_id=self.template.id,
            ).action_send()

    def test_image_upload(self):
        message = self.send(
            partner_id=self.partner.id, message_type="image", media_file=PNG,
            media_filename="photo.png", body="Front view",
        )
        self.assertEqual(message.message_type, "image")
        self.assertEqual(message.body, "Front view")
        self.assertEqual(message.media_filename, "photo.png")
        attachment = message.media_attachment_id
        self.assertTrue(attachment)
        self.assertEqual((attachment.res_model, attachment.res_id), ("whatsapp.message", message.id))
        self.assertEqual(base64.b64encode(attachment.raw), PNG)

    def test_image_url_must_be_https(self):
        with self.assertRaisesRegex(UserError, "https://"):
            self.composer(partner_id=self.partner.id, message_type="image",
                          media_url="http://example.com/a.png").action_send()
        message = self.send(partner_id=self.partner.id, message_type="image",
                            media_url="https://example.com/a.png")
        self.assertEqual(message.media_url, "https://example.com/a.png")

    def test_document_is_record_pdf(self):
        order = self.env["sale.order"].create({"partner_id": self.partner.id,
                                               "company_id": self.company.id})
        action = order.action_whatsapp_send()
        context = action["context"]
        self.assertEqual(action["res_model"], "whatsapp.send.message")
        self.assertEqual(context["default_partner_id"], self.partner.id)
        self.assertEqual(context["default_res_model"], "sale.order")
        self.assertEqual(context["default_res_id"], order.id)
        self.assertEqual(context["default_report_name"], "sale.report_saleorder")
        self.assertEqual(context["default_account_id"], self.account.id)
        composer = self.env["whatsapp.send.message"].with_user(self.salesman).with_context(
            context, allowed_company_ids=self.company.ids
        ).create({})
        self.assertEqual(composer.phone_number, "+2250700000099")
        self.assertEqual(composer.message_type, "document")
        composer.action_send()
        message = self.last_message()
        self.assertEqual(message.message_type, "document")
        self.assertEqual(message.report_name, "sale.report_saleorder")
        self.assertEqual((message.res_model, message.res_id), ("sale.order", order.id))
        self.assertTrue(message.media_filename.endswith(".pdf"))
        self.assertEqual(order.whatsapp_message_count, 1)

    def test_document_without_file_refused(self):
        with self.assertRaisesRegex(UserError, "No content: the document is missing"):
            self.composer(partner_id=self.partner.id, message_type="document").action_send()

    def test_interactive_buttons(self):
        composer = self.composer(
            partner_id=self.partner.id, message_type="interactive", body="Deliver tomorrow?",
            interaction_type="buttons", header_text="Delivery",
            option_ids=[(0, 0, {"sequence": 1, "button_id": "slot_ok", "title": "Confirm"}),
                        (0, 0, {"sequence": 2, "title": "Change"})],
        )
        composer.action_send()
        message = self.last_message()
        self.assertEqual(message.message_type, "interactive")
        interactive = json.loads(message.interactive_json)
        self.assertEqual(interactive["type"], "button")
        self.assertEqual(interactive["body"], {"text": "Deliver tomorrow?"})
        self.assertEqual(interactive["header"], {"type": "text", "text": "Delivery"})
        self.assertEqual(
            interactive["action"]["buttons"],
            [{"type": "reply", "reply": {"id": "slot_ok", "title": "Confirm"}},
             {"type": "reply", "reply": {"id": "option_2", "title": "Change"}}],
        )

    def test_interactive_list_from_scenario(self):
        scenario = self.env["whatsapp.interactive.scenario"].create(
            {"name": "Topics", "body": "Pick a topic", "interaction_type": "list",
             "list_button_label": "Topics",
             "option_ids": [(0, 0, {"sequence": i, "button_id": f"t{i}", "title": f"Topic {i}",
                                    "description": "More"}) for i in range(4)]}
        )
        composer = self.composer(partner_id=self.partner.id, message_type="interactive",
                                 scenario_id=scenario.id)
        self.assertEqual(composer.body, "Pick a topic")
        self.assertEqual(len(composer.option_ids), 4)
        composer.action_send()
        interactive = json.loads(self.last_message().interactive_json)
        self.assertEqual(interactive["type"], "list")
        self.assertEqual(interactive["action"]["button"], "Topics")
        rows = interactive["action"]["sections"][0]["rows"]
        self.assertEqual([r["id"] for r in rows], ["t0", "t1", "t2", "t3"])

    def test_interactive_too_many_buttons_refused(self):
        composer = self.composer(
            partner_id=self.partner.id, message_type="interactive", body="Pick",
            interaction_type="buttons",
            option_ids=[(0, 0, {"sequence": i, "title": f"B{i}"}) for i in range(4)],
        )
        with self.assertRaisesRegex(UserError, "at most 3"):
            composer.action_send()

    def test_no_recipient(self):
        with self.assertRaisesRegex(UserError, "No recipient: choose a contact or type a phone"):
            self.composer(message_type="text", body="Hi").action_send()
        no_number = self.env["res.partner"].create({"name": "No Number"})
        with self.assertRaisesRegex(UserError, "No recipient: the contact No Number has no"):
            self.composer(partner_id=no_number.id, message_type="text", body="Hi").action_send()

    def test_no_content(self):
        with self.assertRaisesRegex(UserError, "No content: write the text"):
            self.composer(partner_id=self.partner.id, message_type="text", body="  ").action_send()
        with self.assertRaisesRegex(UserError, "No content: choose a template"):
            self.composer(partner_id=self.partner.id, message_type="template").action_send()
        with self.assertRaisesRegex(UserError, "No content: the image is missing"):
            self.composer(partner_id=self.partner.id, message_type="image").action_send()

    def test_implausible_numbers(self):
        for number, expected in (
            ("call me", "is not a phone number"),
            ("+33 6 12 AB 56", "is not a phone number"),
            ("12345", "has 5 digits"),
            ("+1234567890123456", "has 16 digits"),
        ):
            with self.assertRaisesRegex(UserError, expected):
                self.composer(phone_number=number, message_type="text", body="Hi").action_send()
        self.assertFalse(self.env["whatsapp.message"].search([("body", "=", "Hi")]))

    def test_reply_prefills_composer(self):
        inbound = self.env["whatsapp.message"].create(
            {"account_id": self.account.id, "company_id": self.company.id, "direction": "in",
             "state": "received", "wa_id": "2250700000099", "wamid": "wamid.IN1",
             "partner_id": self.partner.id, "body": "Is it in stock?"}
        )
        context = inbound.action_reply()["context"]
        self.assertEqual(context["default_reply_to_message_id"], inbound.id)
        self.assertEqual(context["default_phone_number"], "+2250700000099")
        composer = self.env["whatsapp.send.message"].with_user(self.user).with_context(
            context, allowed_company_ids=self.company.ids
        ).create({"body": "Yes!"})
        composer.action_send()
        reply = self.last_message()
        self.assertEqual(reply.reply_to_wamid, "wamid.IN1")
        self.assertEqual(reply.direction, "out")
        self.assertEqual(reply.state, "queued")


class TestPartnerComposer(WhatsappCase):
    def wizard(self, partners, **values):
        env = self.env(user=self.user, context={"allowed_company_ids": self.company.ids,
                                                "active_model": "res.partner",
                                                "active_ids": partners.ids})
        values.setdefault("account_id", self.account.id)
        return env["whatsapp.send.partner.message"].create(values)

    def test_one_message_per_opted_in_partner(self):
        other = self.env["res.partner"].create(
            {"name": "Second", "mobile": "+2250700000098", "whatsapp_opt_in": True})
        not_opted = self.env["res.partner"].create(
            {"name": "Not opted", "mobile": "+2250700000097"})
        partners = self.partner | other | not_opted
        wizard = self.wizard(partners, message_type="template", template_id=self.template.id)
        self.assertEqual(wizard.partner_ids, partners)
        self.assertEqual(wizard.recipient_count, 2)
        result = wizard.action_send()
        self.assertIn("1 contact(s) skipped", result["params"]["message"])
        messages = self.env["whatsapp.message"].search([("template_id", "=", self.template.id)])
        self.assertEqual(messages.partner_id, self.partner | other)
        self.assertEqual(set(messages.mapped("state")), {"queued"})
        self.assertEqual(set(messages.mapped("direction")), {"out"})
        for message in messages:
            params = json.loads(message.template_params_json)
            self.assertEqual(params["body"][0]["value"], message.partner_id.name)
            self.assertEqual((message.res_model, message.res_id),
                             ("res.partner", message.partner_id.id))

    def test_partner_without_number_refused(self):
        no_number = self.env["res.partner"].create({"name": "Nobody", "whatsapp_opt_in": True})
        wizard = self.wizard(self.partner | no_number, message_type="text", body="Hi")
        with self.assertRaisesRegex(UserError, "No recipient number for 1 contact.*Nobody"):
            wizard.action_send()
        self.assertFalse(self.env["whatsapp.message"].search([("body", "=", "Hi")]))

    def test_no_partner_and_no_content(self):
        with self.assertRaisesRegex(UserError, "No recipient: add at least one contact"):
            self.wizard(self.env["res.partner"], message_type="text", body="Hi").action_send()
        with self.assertRaisesRegex(UserError, "No content: write the text"):
            self.wizard(self.partner, message_type="text").action_send()
