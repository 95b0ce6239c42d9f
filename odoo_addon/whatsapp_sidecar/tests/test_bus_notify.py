# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""The bus notifications the daemon subscribes to (models/whatsapp_bus.py): one
``whatsapp_sidecar/changed`` row per model per transaction on the
``whatsapp_sidecar`` channel, only when the daemon has work."""

import json

from odoo import Command
from odoo.addons.bus.models.bus import channel_with_db, json_dump

from .common import WhatsappCase

SWITCHES = ("auto_send_order_creation", "auto_send_invoice_posted",
            "auto_send_residual_change", "auto_send_unpaid_invoices")


class TestBusNotify(WhatsappCase):
    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        # Invoices need the main company's chart of accounts: its accounts are set to a known
        # state (no switch on) and a test account is its default.
        cls.main = cls.env.company
        Account = cls.env["whatsapp.account"].with_context(active_test=False)
        Account.search([("company_id", "=", cls.main.id)]).write(
            {"is_default": False, **dict.fromkeys(SWITCHES, False)})
        cls.main_account = Account.create({
            "name": "Bus main", "company_id": cls.main.id, "is_default": True,
            "phone_number_id": "test-bus-0001", "waba_id": "test-waba-bus",
        })
        cls.sale_journal = cls.env["account.journal"].search(
            [("type", "=", "sale"), ("company_id", "=", cls.main.id)], limit=1)
        cls.bank_journal = cls.env["account.journal"].search(
            [("type", "=", "bank"), ("company_id", "=", cls.main.id)], limit=1)

    def setUp(self):
        super().setUp()
        self.channel = json_dump(channel_with_db(self.env.cr.dbname, "whatsapp_sidecar"))
        # What setUpClass queued is sent now: each test sees only its own notifications.
        self.env.flush_all()
        self.env.cr.precommit.run()
        self._last_bus_id = self.env["bus.bus"].sudo().search([], order="id desc", limit=1).id

    def notifications(self):
        """The transaction's precommit run (as at a commit), then the rows it added on the
        channel, as ``{model: payload}``; one row per model at most."""
        self.env.flush_all()
        self.env.cr.precommit.run()
        Bus = self.env["bus.bus"].sudo()
        rows = Bus.search([("channel", "=", self.channel), ("id", ">", self._last_bus_id)],
                          order="id")
        self._last_bus_id = Bus.search([], order="id desc", limit=1).id or self._last_bus_id
        found = {}
        for row in rows:
            message = json.loads(row.message)
            self.assertEqual(message["type"], "whatsapp_sidecar/changed")
            payload = message["payload"]
            self.assertEqual(set(payload), {"model", "ids", "count"})
            self.assertNotIn(payload["model"], found, "one notification per model")
            found[payload["model"]] = payload
        return found

    def assertNotified(self, records, count=None):
        found = self.notifications()
        self.assertEqual(list(found), [records._name], found)
        ids = sorted(records.ids)
        self.assertEqual(found[records._name],
                         {"model": records._name, "ids": ids[:100], "count": count or len(ids)})

    def assertNothing(self, model=None):
        found = self.notifications()
        if model:
            self.assertNotIn(model, found)
        else:
            self.assertEqual(found, {})

    # -- helpers -------------------------------------------------------------------------
    def message(self, **values):
        return self.env["whatsapp.message"].create({
            "account_id": self.account.id, "company_id": self.company.id,
            "partner_id": self.partner.id, "to_number": "+2250700000099", "body": "Hi",
            **values,
        })

    def order(self, company=None):
        company = company or self.company
        return self.env["sale.order"].with_company(company).create(
            {"partner_id": self.partner.id, "company_id": company.id})

    def invoice(self, move_type="out_invoice", price=100.0):
        if not self.sale_journal:
            self.skipTest("no sale journal: the company has no chart of accounts")
        return self.env["account.move"].create({
            "move_type": move_type,
            "partner_id": self.partner.id,
            "journal_id": self.sale_journal.id,
            "invoice_line_ids": [Command.create({"name": "Service", "quantity": 1,
                                                 "price_unit": price})],
        })

    def pay(self, invoice, amount):
        if not self.bank_journal:
            self.skipTest("no bank journal")
        return self.env["account.payment.register"].with_context(
            active_model="account.move", active_ids=invoice.ids,
        ).create({"amount": amount, "journal_id": self.bank_journal.id})._create_payments()

    # -- the contract ----------------------------------------------------------------------
    def test_the_row_is_on_the_string_channel_of_the_database(self):
        message = self.message()
        self.env.flush_all()
        self.env.cr.precommit.run()
        row = self.env["bus.bus"].sudo().search([], order="id desc", limit=1)
        self.assertEqual(json.loads(row.channel), [self.env.cr.dbname, "whatsapp_sidecar"])
        self.assertEqual(json.loads(row.message), {
            "type": "whatsapp_sidecar/changed",
            "payload": {"model": "whatsapp.message", "ids": [message.id], "count": 1},
        })

    def test_rolled_back_work_is_not_notified(self):
        with self.assertRaises(ZeroDivisionError), self.env.cr.savepoint():
            self.message()
            1 / 0  # noqa: B018
        self.assertNothing()

    # -- whatsapp.message ------------------------------------------------------------------
    def test_messages_of_one_transaction_make_one_notification(self):
        messages = self.message() | self.message(body="Two")
        messages |= self.message(body="Three")
        self.assertNotified(messages, count=3)

    def test_at_most_100_ids_but_the_full_count(self):
        messages = self.env["whatsapp.message"].create([{
            "account_id": self.account.id, "company_id": self.company.id,
            "to_number": "+2250700000099", "body": f"n{i}",
        } for i in range(150)])
        found = self.notifications()["whatsapp.message"]
        self.assertEqual(found["count"], 150)
        self.assertEqual(found["ids"], sorted(messages.ids)[:100])

    def test_only_queued_outbound_messages(self):
        self.message(direction="in", state="received", wa_id="2250700000099")
        self.message(state="sent", wamid="wamid.BUS1")
        self.assertNothing()

    def test_written_to_queued_but_not_to_another_state(self):
        message = self.message()
        self.notifications()
        message.write({"state": "sending"})
        message.write({"state": "sent", "wamid": "wamid.BUS2"})
        self.assertNothing()
        failed = self.message(state="failed")
        self.assertNothing()
        failed.action_retry()
        self.assertEqual(failed.state, "queued")
        self.assertNotified(failed)
        failed.action_cancel()
        self.assertNothing()

    # -- whatsapp.account ------------------------------------------------------------------
    def test_check_and_sync_requests(self):
        self.account.action_check_settings()
        self.assertNotified(self.account)
        (self.account | self.account_b).action_sync_templates()
        self.assertNotified(self.account | self.account_b)
        # The daemon's answer wakes nothing.
        self.account.write({"check_requested": False, "sync_requested": False,
                            "last_check_ok": True, "quality_rating": "green",
                            "messaging_limit": "TIER_1K"})
        self.account.write({"paused": True, "paused_reason": "Token expired"})
        self.assertNothing()

    def test_resume_and_sending_settings(self):
        self.account.action_resume()
        self.assertNothing()  # it was not paused
        self.account.write({"paused": True, "paused_reason": "Token expired"})
        self.notifications()
        self.account.action_resume()
        self.assertNotified(self.account)
        for values in ({"throughput_mps": 1000}, {"active": False}, {"active": True},
                       {"access_token": "new-token"}, {"auto_send_order_creation": True}):
            self.account.write(values)
            self.assertNotified(self.account)
        self.account.write({"name": "Renamed", "opt_out_keywords": "STOP"})
        self.assertNothing()
        account = self.env["whatsapp.account"].create({
            "name": "New", "company_id": self.company_b.id, "phone_number_id": "test-bus-new",
            "waba_id": "w"})
        self.assertNotified(account)

    # -- whatsapp.campaign -----------------------------------------------------------------
    def test_campaign_buttons(self):
        campaign = self.env["whatsapp.campaign"].create({
            "name": "Promo", "account_id": self.account.id, "company_id": self.company.id,
            "step_ids": [Command.create({"name": "First", "message_type": "template",
                                         "template_id": self.template.id})],
        })
        self.assertNothing("whatsapp.campaign")
        for button in ("action_generate_queue", "action_start", "action_pause",
                       "action_resume", "action_cancel"):
            getattr(campaign, button)()
            self.assertNotified(campaign)
        campaign.action_draft()
        campaign.write({"kpi_sent": 3, "name": "Promo 2"})
        self.assertNothing()

    # -- sale.order ------------------------------------------------------------------------
    def test_new_orders_only_with_the_switch_on(self):
        self.order()
        self.assertNothing()
        self.account.auto_send_order_creation = True
        self.notifications()
        orders = self.order() | self.order()
        self.order(company=self.company_b)  # its account has the switch off
        self.assertNotified(orders)
        self.account.active = False
        self.notifications()
        self.order()
        self.assertNothing()

    def test_order_details_request(self):
        order = self.order()
        self.notifications()
        order.action_whatsapp_send_details()
        self.assertNotified(order)
        order.write({"x_whatsapp_details_requested_at": False})  # the daemon clears it
        self.assertNothing()
        # A company without a default account: nothing to wake.
        self.account_b.is_default = False
        order_b = self.order(company=self.company_b)
        self.notifications()
        order_b.write({"x_whatsapp_details_requested_at": "2026-01-01 10:00:00"})
        self.assertNothing()

    # -- account.move ----------------------------------------------------------------------
    def test_posted_invoices_only_with_the_switch_on(self):
        invoice = self.invoice()
        self.assertNothing()  # a draft
        invoice.action_post()
        self.assertNothing()  # no switch on
        self.main_account.auto_send_invoice_posted = True
        self.notifications()
        invoice = self.invoice()
        refund = self.invoice(move_type="out_refund")
        self.assertNothing()
        (invoice | refund).action_post()
        self.assertNotified(invoice)  # the daemon sends no posted credit note

    def test_payments_only_with_the_switch_on(self):
        invoice = self.invoice()
        invoice.action_post()
        self.notifications()
        self.pay(invoice, 30.0)
        self.assertNothing("account.move")
        self.main_account.auto_send_residual_change = True
        self.notifications()
        self.pay(invoice, 30.0)
        self.assertEqual(invoice.amount_residual, 40.0)
        self.assertNotified(invoice)
        # Unreconciled: the amount due goes back up.
        invoice.line_ids.remove_move_reconcile()
        self.assertEqual(invoice.amount_residual, 100.0)
        self.assertNotified(invoice)
        # A draft invoice's amount due changes with its lines: nothing to tell.
        draft = self.invoice()
        self.notifications()
        draft.write({"invoice_line_ids": [Command.create({"name": "More", "quantity": 1,
                                                          "price_unit": 5.0})]})
        self.assertEqual(draft.amount_residual, 105.0)
        self.assertNothing("account.move")

    def test_invoice_details_request(self):
        invoice = self.invoice()
        invoice.action_post()
        self.notifications()
        invoice.action_whatsapp_send_details()
        self.assertNotified(invoice)
        invoice.write({"x_whatsapp_details_requested_at": False})
        self.assertNothing()

    # -- whatsapp.webhook.event ------------------------------------------------------------
    def test_process_again(self):
        events = self.env["whatsapp.webhook.event"].create(
            [{"raw_body": "{}", "processed": True}, {"raw_body": "{}", "processed": True}])
        self.assertNothing()
        events.action_reprocess()
        self.assertNotified(events)
        events.write({"processed": True, "processing_error": "x"})
        self.assertNothing()
