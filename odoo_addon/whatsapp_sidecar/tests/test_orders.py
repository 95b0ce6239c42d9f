# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
from odoo.exceptions import ValidationError

from .common import WhatsappCase


class TestOrderAutomation(WhatsappCase):
    def test_switching_on_records_when(self):
        self.assertFalse(self.account.order_creation_enabled_at)
        self.account.auto_send_order_creation = True
        first = self.account.order_creation_enabled_at
        self.assertTrue(first, "orders created before this moment are never sent")
        # Writing the switch again while on keeps the date; off then on moves it.
        self.account.write({"auto_send_order_creation": True})
        self.assertEqual(self.account.order_creation_enabled_at, first)
        self.account.auto_send_order_creation = False
        self.assertEqual(self.account.order_creation_enabled_at, first)
        self.env.cr.execute(
            "UPDATE whatsapp_account SET order_creation_enabled_at = '2020-01-01' WHERE id = %s",
            [self.account.id],
        )
        self.account.invalidate_recordset()
        self.account.auto_send_order_creation = True
        self.assertGreater(self.account.order_creation_enabled_at.year, 2020)

    def test_an_account_created_with_the_switch_on_records_when(self):
        account = self.env["whatsapp.account"].create({
            "name": "Orders", "company_id": self.company_b.id, "phone_number_id": "test-orders",
            "waba_id": "w", "auto_send_order_creation": True,
        })
        self.assertTrue(account.order_creation_enabled_at)

    def test_the_order_actions_work_without_demo_data(self):
        # Shipped in data/ (noupdate), not only as demo: a fresh database confirms orders.
        for xmlid, action_type in [
            ("whatsapp_sidecar.demo_button_action_validate", "confirm_order"),
            ("whatsapp_sidecar.demo_button_action_cancel", "cancel_order"),
            ("whatsapp_sidecar.demo_button_action_details", "send_order_details"),
        ]:
            action = self.env.ref(xmlid)
            self.assertEqual(action.action_type, action_type)
            self.assertEqual(action.match_type, "prefix")
            self.assertFalse(action.company_id, "for every company")
            data = self.env["ir.model.data"].search(
                [("module", "=", "whatsapp_sidecar"), ("name", "=", xmlid.split(".")[1])])
            self.assertTrue(data.noupdate)


class TestCustomerTexts(WhatsappCase):
    def test_shipped_texts_in_english_and_french(self):
        Text = self.env["whatsapp.text"]
        confirmed = Text.search([("key", "=", "order_confirmed"), ("company_id", "=", False)])
        self.assertEqual(len(confirmed), 1)
        self.assertIn("{order}", confirmed.body)
        self.env["res.lang"]._activate_lang("fr_FR")
        self.env["ir.module.module"]._load_module_terms(["whatsapp_sidecar"], ["fr_FR"])
        french = confirmed.with_context(lang="fr_FR").body
        self.assertIn("{order}", french)
        self.assertNotEqual(french, confirmed.body, "translated in fr.po")
        for key in ("button_validate", "button_cancel", "button_details"):
            button = Text.search([("key", "=", key), ("company_id", "=", False)])
            self.assertEqual(button.max_length, 20)
            self.assertLessEqual(len(button.with_context(lang="fr_FR").body), 20)

    def test_unknown_placeholders_and_long_button_titles_are_refused(self):
        confirmed = self.env.ref("whatsapp_sidecar.text_order_confirmed")
        with self.assertRaisesRegex(ValidationError, r"\{ordre\}"):
            confirmed.body = "Commande {ordre} confirmée"
        button = self.env.ref("whatsapp_sidecar.text_button_validate")
        with self.assertRaisesRegex(ValidationError, "at most 20"):
            button.body = "Validate this order right now"

    def test_one_text_per_key_and_company(self):
        Text = self.env["whatsapp.text"]
        own = Text.create({"key": "order_confirmed", "name": "Mine", "body": "OK {order}",
                           "placeholders": "order", "company_id": self.company.id})
        self.assertTrue(own)
        with self.assertRaisesRegex(ValidationError, "already is a customer text"):
            Text.create({"key": "order_confirmed", "name": "Again", "body": "OK",
                         "company_id": self.company.id})
        with self.assertRaisesRegex(ValidationError, "already is a customer text"):
            Text.create({"key": "order_confirmed", "name": "Shared", "body": "OK"})
