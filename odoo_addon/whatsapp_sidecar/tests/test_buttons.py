# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
from odoo import Command
from odoo.exceptions import UserError

from .common import WhatsappCase


class TestButtons(WhatsappCase):
    def test_account_requests(self):
        self.assertFalse(self.account.check_requested or self.account.sync_requested)
        self.account.action_check_settings()
        self.assertTrue(self.account.check_requested)
        self.account.action_sync_templates()
        self.assertTrue(self.account.sync_requested)

    def test_order_details_are_requested_from_the_daemon(self):
        order = self.env["sale.order"].create(
            {"partner_id": self.partner.id, "company_id": self.company.id})
        before = self.env["whatsapp.message"].search([])
        action = order.with_user(self.salesman).with_context(
            allowed_company_ids=self.company.ids).action_whatsapp_send_details()
        self.assertEqual(action["tag"], "display_notification")
        self.assertTrue(order.x_whatsapp_details_requested_at,
                        "the daemon composes the details in the customer's language")
        self.assertFalse(self.env["whatsapp.message"].search([]) - before,
                         "nothing is queued in the user's language")
        self.assertFalse(order.x_whatsapp_details_sent, "the daemon writes it once sent")

    def test_order_details_of_several_orders_request_each(self):
        Order = self.env["sale.order"]
        orders = Order.create({"partner_id": self.partner.id, "company_id": self.company.id})
        orders |= Order.create({"partner_id": self.partner.id, "company_id": self.company.id})
        orders.with_user(self.salesman).with_context(
            allowed_company_ids=self.company.ids).action_whatsapp_send_details()
        self.assertTrue(all(orders.mapped("x_whatsapp_details_requested_at")))

    def test_order_details_need_a_default_account(self):
        order = self.env["sale.order"].create(
            {"partner_id": self.partner.id, "company_id": self.company.id})
        self.account.is_default = False
        with self.assertRaisesRegex(UserError, "has no default WhatsApp account"):
            order.action_whatsapp_send_details()
        self.assertFalse(order.x_whatsapp_details_requested_at)

    def test_order_details_without_number_refused(self):
        partner = self.env["res.partner"].create({"name": "No phone"})
        order = self.env["sale.order"].create(
            {"partner_id": partner.id, "company_id": self.company.id})
        with self.assertRaisesRegex(UserError, "has no WhatsApp number"):
            order.action_whatsapp_send_details()

    def test_invoice_buttons(self):
        journal = self.env["account.journal"].search(
            [("type", "=", "sale"), ("company_id", "=", self.env.company.id)], limit=1)
        if not journal:
            self.skipTest("no sale journal: the company has no chart of accounts")
        invoice = self.env["account.move"].create({
            "move_type": "out_invoice",
            "partner_id": self.partner.id,
            "journal_id": journal.id,
            "invoice_line_ids": [Command.create({"name": "Service", "quantity": 1,
                                                 "price_unit": 100.0})],
        })
        action = invoice.action_whatsapp_send()
        self.assertEqual(action["context"]["default_report_name"], "account.report_invoice")
        self.assertEqual(action["context"]["default_res_model"], "account.move")
        with self.assertRaisesRegex(UserError, "is not posted"):
            invoice.action_whatsapp_send_details()
        self.assertFalse(invoice.x_whatsapp_posted_at)
        invoice.action_post()
        self.assertTrue(invoice.x_whatsapp_posted_at, "posting stamps the time")
        before = self.env["whatsapp.message"].search([])
        if not self.env["whatsapp.account"]._get_default_account(invoice.company_id):
            self.account.copy({"company_id": invoice.company_id.id, "is_default": True,
                               "phone_number_id": "test-main-0001"})
        action = invoice.action_whatsapp_send_details()
        self.assertEqual(action["tag"], "display_notification")
        self.assertTrue(invoice.x_whatsapp_details_requested_at,
                        "the daemon composes the details in the customer's language")
        self.assertFalse(self.env["whatsapp.message"].search([]) - before,
                         "nothing is queued in the user's language")

    def test_partner_send_and_smart_buttons(self):
        action = self.partner.action_whatsapp_send()
        self.assertEqual(action["context"]["default_partner_id"], self.partner.id)
        self.assertEqual(self.partner.whatsapp_message_count, 0)
        self.env["whatsapp.message"].create(
            {"account_id": self.account.id, "company_id": self.company.id,
             "partner_id": self.partner.id, "to_number": "+2250700000099", "body": "x"})
        self.partner.invalidate_recordset(["whatsapp_message_count"])
        self.assertEqual(self.partner.whatsapp_message_count, 1)
        self.assertEqual(self.partner.action_view_whatsapp_messages()["res_model"],
                         "whatsapp.message")

    def test_smart_buttons_count_what_they_open(self):
        company = self.env["res.partner"].create({"name": "Customer Co", "is_company": True})
        employee = self.env["res.partner"].create(
            {"name": "Employee", "parent_id": company.id, "mobile": "+2250700000098"})
        self.env["whatsapp.message"].create(
            {"account_id": self.account.id, "company_id": self.company.id,
             "partner_id": employee.id, "to_number": "+2250700000098", "body": "x"})
        for partner, count in ((company, 1), (employee, 1)):
            self.assertEqual(partner.whatsapp_message_count, count, partner.name)
            shown = self.env["whatsapp.message"].search(
                partner.action_view_whatsapp_messages()["domain"])
            self.assertEqual(len(shown), count, partner.name)
        # The employee's button does not show the company's other contacts' messages.
        colleague = self.env["res.partner"].create({"name": "Colleague", "parent_id": company.id})
        self.assertEqual(colleague.whatsapp_message_count, 0)
        self.assertFalse(self.env["whatsapp.message"].search(
            colleague.action_view_whatsapp_messages()["domain"]))

    def test_campaign_lifecycle(self):
        campaign = self.env["whatsapp.campaign"].create(
            {"name": "Promo", "account_id": self.account.id, "company_id": self.company.id})
        with self.assertRaisesRegex(UserError, "has no step"):
            campaign.action_start()
        campaign.write({"step_ids": [Command.create(
            {"name": "First", "message_type": "template", "template_id": self.template.id})]})
        campaign.action_generate_queue()
        self.assertTrue(campaign.queue_requested)
        self.assertEqual(campaign.state, "draft")
        campaign.action_start()
        self.assertEqual(campaign.state, "running")
        self.assertTrue(campaign.started_at)
        with self.assertRaisesRegex(UserError, "only a draft or scheduled"):
            campaign.action_start()
        campaign.action_pause()
        self.assertEqual(campaign.state, "paused")
        campaign.action_resume()
        self.assertEqual(campaign.state, "running")
        campaign.action_cancel()
        self.assertEqual(campaign.state, "cancelled")
        with self.assertRaisesRegex(UserError, "already finished"):
            campaign.action_cancel()
        campaign.action_draft()
        self.assertEqual(campaign.state, "draft")
        self.assertEqual(self.env["whatsapp.message"].search_count(
            [("campaign_id", "=", campaign.id)]), 0, "buttons never send")

    def test_campaign_capacity_preview(self):
        self.account.messaging_limit = "TIER_250"
        campaign = self.env["whatsapp.campaign"].create(
            {"name": "Preview", "account_id": self.account.id, "company_id": self.company.id,
             "partner_domain": f"[('id', '=', {self.partner.id})]", "daily_cap": 0,
             "throttle_per_minute": 60})
        self.assertEqual(campaign.preview_recipient_count, 1)
        self.assertFalse(campaign.preview_warning)
        self.partner.whatsapp_opt_in = False
        campaign.invalidate_recordset()
        self.assertEqual(campaign.preview_recipient_count, 0, "opted-in contacts only")

    def test_scheduled_start(self):
        campaign = self.env["whatsapp.campaign"].create({
            "name": "Later", "account_id": self.account.id, "company_id": self.company.id,
            "scheduled_at": "2999-01-01 09:00:00",
            "step_ids": [Command.create({"name": "S", "message_type": "text", "body": "Hi"})],
        })
        campaign.action_start()
        self.assertEqual(campaign.state, "scheduled")

    def test_settings_change_default_account(self):
        second = self.env["whatsapp.account"].create(
            {"name": "Second", "company_id": self.company.id, "phone_number_id": "test-a-0002",
             "waba_id": "w"})
        settings = self.env["res.config.settings"].with_company(self.company).create({})
        self.assertEqual(settings.whatsapp_default_account_id, self.account)
        settings.whatsapp_default_account_id = second
        settings.execute()
        self.assertTrue(second.is_default)
        self.assertFalse(self.account.is_default)
