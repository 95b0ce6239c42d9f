# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""A conversation is the whole thread with one customer on one account."""

from lxml import etree

from .common import WhatsappCase


class TestConversation(WhatsappCase):
    NUMBER = "+2250700000077"

    def outbound(self, **values):
        vals = {"company_id": self.company.id, "direction": "out", "state": "sent",
                "to_number": self.NUMBER, "body": "out"}
        vals.update(values)
        return self.env["whatsapp.message"].create(vals)

    def test_messages_sent_before_the_customer_wrote_join_the_conversation(self):
        before = self.outbound(account_id=self.account.id, to_e164=self.NUMBER, body="first")
        queued = self.outbound(body="no account: the company's default", state="queued")
        other_account = self.outbound(account_id=self.account_b.id,
                                      company_id=self.company_b.id, to_e164=self.NUMBER)
        other_number = self.outbound(account_id=self.account.id, to_e164="+2250700000078")
        other_company = self.outbound(company_id=self.company_b.id)
        elsewhere = self.conversation("2250700000001")
        already = self.outbound(account_id=self.account.id, to_e164=self.NUMBER,
                                conversation_id=elsewhere.id)

        # The daemon creates the conversation on the customer's first message.
        conversation = self.env["whatsapp.conversation"].with_user(self.technical).create(
            {"account_id": self.account.id, "wa_id": "2250700000077"}
        )
        inbound = self.env["whatsapp.message"].create(
            {"account_id": self.account.id, "company_id": self.company.id,
             "direction": "in", "state": "received", "wa_id": "2250700000077",
             "conversation_id": conversation.id, "body": "hello"}
        )
        self.assertEqual(conversation.whatsapp_message_ids, before | queued | inbound)
        self.assertEqual(conversation.message_count, 3)
        for message in (other_account, other_number, other_company):
            self.assertFalse(message.conversation_id)
        self.assertEqual(already.conversation_id, elsewhere)

    def test_conversations_created_together_get_their_own_messages(self):
        first = self.outbound(account_id=self.account.id, to_e164="+2250700000071")
        second = self.outbound(account_id=self.account.id, to_e164="+2250700000072")
        conversations = self.env["whatsapp.conversation"].create(
            [{"account_id": self.account.id, "wa_id": "2250700000071"},
             {"account_id": self.account.id, "wa_id": "2250700000072"}]
        )
        self.assertEqual(conversations[0].whatsapp_message_ids, first)
        self.assertEqual(conversations[1].whatsapp_message_ids, second)

    def test_chatter_for_notes_without_noise_at_creation(self):
        conversation = self.env["whatsapp.conversation"].with_user(self.technical).create(
            {"account_id": self.account.id, "wa_id": "2250700000079"}
        )
        self.assertFalse(conversation.message_ids, "no 'created' note per conversation")
        self.assertFalse(conversation.message_follower_ids,
                         "the daemon's user does not follow every conversation")
        conversation.with_user(self.technical).message_post(
            body="The customer wrote about S00021", message_type="comment",
            subtype_xmlid="mail.mt_note",
        )
        self.assertEqual(len(conversation.message_ids), 1)
        conversation.activity_schedule("mail.mail_activity_data_todo", user_id=self.user.id)
        self.assertEqual(len(conversation.activity_ids), 1)

    def test_reply_opens_the_composer_for_the_conversation(self):
        conversation = self.conversation("2250700000099", partner=self.partner)
        action = conversation.action_send_message()
        context = action["context"]
        self.assertEqual(action["res_model"], "whatsapp.send.message")
        self.assertEqual(context["default_conversation_id"], conversation.id)
        self.assertEqual(context["default_account_id"], self.account.id)
        self.assertEqual(context["default_partner_id"], self.partner.id)
        self.assertEqual(context["default_phone_number"], "+2250700000099")
        self.assertEqual(context["default_message_type"], "text")
        composer = self.env["whatsapp.send.message"].with_user(self.user).with_context(
            context, allowed_company_ids=self.company.ids
        ).create({"body": "Yes, it is in stock."})
        composer.action_send()
        self.assertEqual(self.last_message().conversation_id, conversation)

        # Outside the window only a template reaches the customer.
        self.account.template_generic_id = self.template
        conversation.last_inbound_at = conversation.last_inbound_at.replace(year=2020)
        context = conversation.action_send_message()["context"]
        self.assertEqual(context["default_message_type"], "template")
        self.assertEqual(context["default_template_id"], self.template.id)

    def test_thread_form(self):
        arch = etree.fromstring(self.env["whatsapp.conversation"].get_view(
            self.env.ref("whatsapp_sidecar.whatsapp_conversation_view_form").id, "form"
        )["arch"])
        reply = arch.xpath("//header/button[@name='action_send_message']")
        self.assertEqual(reply[0].get("string"), "Reply")
        thread = arch.xpath("//field[@name='whatsapp_message_ids']/tree")[0]
        self.assertEqual(thread.get("default_order"), "create_date asc, id asc",
                         "newest last")
        self.assertTrue(arch.xpath("//div[hasclass('oe_chatter')]/field[@name='message_ids']"))
