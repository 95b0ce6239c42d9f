# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
from odoo import Command
from odoo.exceptions import ValidationError

from .common import WhatsappCase


class TestInvoiceAutomation(WhatsappCase):
    def test_switching_on_records_when(self):
        self.assertFalse(self.account.invoice_posted_enabled_at)
        self.account.auto_send_invoice_posted = True
        first = self.account.invoice_posted_enabled_at
        self.assertTrue(first, "invoices posted before this moment are never sent")
        self.account.write({"auto_send_invoice_posted": True})
        self.assertEqual(self.account.invoice_posted_enabled_at, first)
        self.assertFalse(self.account.order_creation_enabled_at, "each switch its own date")
        account = self.env["whatsapp.account"].create({
            "name": "Invoices", "company_id": self.company_b.id,
            "phone_number_id": "test-invoices", "waba_id": "w",
            "auto_send_invoice_posted": True,
        })
        self.assertTrue(account.invoice_posted_enabled_at)

    def test_reminder_schedule_is_a_five_field_cron(self):
        self.assertEqual(self.account.unpaid_reminder_schedule, "0 9 * * *")
        for good in ("30 8 * * 1-5", "0 9,17 * * MON-FRI", "*/15 * * * *", "@daily",
                     "0 9 L * *"):
            self.account.unpaid_reminder_schedule = good
        for bad in ("0 9 * *", "0 0 9 * * *", "every day", "0 9 * * * ;rm"):
            with self.assertRaisesRegex(ValidationError, "five-field cron"):
                self.account.unpaid_reminder_schedule = bad

    def test_reminder_numbers(self):
        with self.assertRaisesRegex(ValidationError, "at least 1"):
            self.account.unpaid_reminder_interval_days = 0
        with self.assertRaisesRegex(ValidationError, "cannot be negative"):
            self.account.residual_debounce_minutes = -1
        self.account.write({"unpaid_invoice_days": 0, "residual_debounce_minutes": 0,
                            "unpaid_reminder_interval_days": 1})

    def test_posting_stamps_the_time_and_nothing_else(self):
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
        before = self.env["whatsapp.message"].search_count([])
        invoice.action_post()
        self.assertTrue(invoice.x_whatsapp_posted_at)
        self.assertEqual(self.env["whatsapp.message"].search_count([]), before,
                         "posting queues nothing: the daemon notices it afterwards")
        invoice.button_draft()
        self.assertTrue(invoice.x_whatsapp_posted_at, "kept: the last posting time")
        self.env.cr.execute(
            "UPDATE account_move SET x_whatsapp_posted_at = '2020-01-01' WHERE id = %s",
            [invoice.id])
        invoice.invalidate_recordset()
        invoice.action_post()
        self.assertGreater(invoice.x_whatsapp_posted_at.year, 2020, "posted again: stamped again")

    def test_portal_paths_of_a_batch_in_one_call(self):
        journal = self.env["account.journal"].search(
            [("type", "=", "sale"), ("company_id", "=", self.env.company.id)], limit=1)
        if not journal:
            self.skipTest("no sale journal: the company has no chart of accounts")
        invoices = self.env["account.move"].create([{
            "move_type": "out_invoice",
            "partner_id": self.partner.id,
            "journal_id": journal.id,
            "invoice_line_ids": [Command.create({"name": "Service", "quantity": 1,
                                                 "price_unit": price})],
        } for price in (10.0, 20.0)])
        paths = invoices.whatsapp_portal_paths()
        self.assertEqual(set(paths), {str(i) for i in invoices.ids})
        for invoice in invoices:
            self.assertTrue(invoice.access_token, "the token is made when missing")
            self.assertEqual(paths[str(invoice.id)], invoice.get_portal_url())
            self.assertIn(f"/my/invoices/{invoice.id}?access_token={invoice.access_token}",
                          paths[str(invoice.id)])
