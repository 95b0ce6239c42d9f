# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
from odoo.exceptions import AccessError

from .common import WhatsappCase

SECRETS = ("access_token", "app_secret", "verify_token")


class TestSecurity(WhatsappCase):
    def test_user_cannot_queue_what_they_cannot_read(self):
        Message = self.env["whatsapp.message"].with_user(self.user)
        base = {"account_id": self.account.id, "company_id": self.company.id,
                "to_number": "+2250700000099", "message_type": "document"}
        # An attachment of a record the user cannot read (another company's account).
        hidden = self.env["ir.attachment"].create(
            {"name": "secret.pdf", "raw": b"%PDF-1.4", "res_model": "whatsapp.account",
             "res_id": self.account_b.id}
        )
        with self.assertRaises(AccessError):
            Message.create(dict(base, media_attachment_id=hidden.id))
        # A document of the other company, or a report the addon does not offer.
        with self.assertRaises(AccessError):
            Message.create(dict(base, res_model="whatsapp.account", res_id=self.account_b.id))
        with self.assertRaises(AccessError):
            Message.create(dict(base, res_model="res.partner", res_id=self.partner.id,
                                report_name="base.report_irmodulereference"))
        # What the user can read, with an offered report, is queued.
        message = Message.create(dict(base, res_model="res.partner", res_id=self.partner.id,
                                      report_name="account.report_invoice"))
        self.assertEqual(message.state, "queued")
        # Pointing an existing message at a hidden file afterwards is refused too.
        with self.assertRaises(AccessError):
            message.write({"media_attachment_id": hidden.id})

    def test_user_cannot_read_secrets(self):
        account = self.account.with_user(self.user)
        self.assertEqual(account.read(["name"])[0]["name"], "Account A")
        for field in SECRETS:
            with self.assertRaises(AccessError):
                account.read([field])
        self.assertFalse(set(SECRETS) & set(account.fields_get()))
        manager = self.account.with_user(self.manager)
        with self.assertRaises(AccessError):
            manager.read(["access_token"])

    def test_technical_group_and_admin_read_secrets(self):
        values = self.account.with_user(self.technical).read(list(SECRETS))[0]
        self.assertEqual(values["access_token"], "secret-token-a")
        self.assertEqual(values["app_secret"], "secret-app-a")
        self.assertEqual(
            self.account.with_user(self.sysadmin).read(["verify_token"])[0]["verify_token"],
            "secret-verify-a",
        )

    def test_only_the_daemon_reads_the_button_secret(self):
        Account = self.env["whatsapp.account"]
        secret = Account.with_user(self.technical).whatsapp_button_secret()
        self.assertEqual(len(secret), 64)
        # Made once: payloads signed before a restart still verify after it.
        self.assertEqual(Account.with_user(self.technical).whatsapp_button_secret(), secret)
        for user in (self.user, self.manager):
            with self.assertRaises(AccessError):
                Account.with_user(user).whatsapp_button_secret()

    def test_user_cannot_configure(self):
        with self.assertRaises(AccessError):
            self.env["whatsapp.account"].with_user(self.user).create(
                {"name": "X", "phone_number_id": "x-1", "waba_id": "w"})
        with self.assertRaises(AccessError):
            self.env["whatsapp.webhook.event"].with_user(self.user).search([])
        with self.assertRaises(AccessError):
            self.env["whatsapp.campaign"].with_user(self.user).create({"name": "X"})
        campaign = self.env["whatsapp.campaign"].with_user(self.manager).create(
            {"name": "Manager campaign"})
        self.assertEqual(campaign.company_id, self.company)

    def test_other_company_is_invisible(self):
        message_b = self.env["whatsapp.message"].create(
            {"account_id": self.account_b.id, "company_id": self.company_b.id,
             "to_number": "+2250700000099", "body": "company B"})
        conversation_b = self.env["whatsapp.conversation"].create(
            {"account_id": self.account_b.id, "wa_id": "2250700000099"})
        campaign_b = self.env["whatsapp.campaign"].create(
            {"name": "B campaign", "company_id": self.company_b.id,
             "account_id": self.account_b.id})
        message_a = self.env["whatsapp.message"].create(
            {"account_id": self.account.id, "company_id": self.company.id,
             "to_number": "+2250700000099", "body": "company A"})
        env = self.env(user=self.user, context={"allowed_company_ids": self.company.ids})
        self.assertEqual(env["whatsapp.message"].search([("body", "like", "company")]), message_a)
        self.assertFalse(env["whatsapp.account"].search([("id", "=", self.account_b.id)]))
        self.assertFalse(env["whatsapp.conversation"].search([("id", "=", conversation_b.id)]))
        self.assertFalse(env["whatsapp.campaign"].search([("id", "=", campaign_b.id)]))
        for record in (message_b, conversation_b, campaign_b, self.account_b):
            with self.assertRaises(AccessError):
                record.with_env(env).read(["display_name"])
        # The daemon's user works for both companies.
        daemon = self.env(user=self.technical,
                          context={"allowed_company_ids": (self.company | self.company_b).ids})
        self.assertEqual(daemon["whatsapp.message"].search([("body", "like", "company")]),
                         message_a | message_b)

    def test_webhook_events_of_other_companies_are_hidden_from_managers(self):
        Event = self.env["whatsapp.webhook.event"]
        event_a = Event.create({"raw_body": "{}", "account_id": self.account.id})
        event_b = Event.create({"raw_body": "{}", "account_id": self.account_b.id})
        unknown = Event.create({"raw_body": "{}"})
        manager = self.env(user=self.manager, context={"allowed_company_ids": self.company.ids})
        ids = (event_a | event_b | unknown).ids
        self.assertEqual(manager["whatsapp.webhook.event"].search([("id", "in", ids)]), event_a)
        daemon = self.env(user=self.technical,
                          context={"allowed_company_ids": (self.company | self.company_b).ids})
        self.assertEqual(daemon["whatsapp.webhook.event"].search([("id", "in", ids)]),
                         event_a | event_b | unknown)

    def test_technical_user_writes_daemon_records(self):
        env = self.env(user=self.technical,
                       context={"allowed_company_ids": (self.company | self.company_b).ids})
        event = env["whatsapp.webhook.event"].create(
            {"raw_body": '{"entry": [{"changes": [{"field": "messages"}]}]}',
             "signature_ok": True})
        self.assertEqual(event.event_field, "messages")
        message = env["whatsapp.message"].create(
            {"account_id": self.account_b.id, "company_id": self.company_b.id,
             "to_number": "+2250700000099", "body": "from daemon"})
        message.write({"state": "sent", "wamid": "wamid.D1"})
        self.account.with_env(env).write({"check_requested": False, "last_check_ok": True})
        self.assertEqual(message.state, "sent")
