# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
from datetime import timedelta

from odoo import fields
from odoo.tests.common import TransactionCase, new_test_user


class WhatsappCase(TransactionCase):
    """Two companies, an account in each, an opted-in partner and users."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.company = cls.env["res.company"].create({"name": "WA Test Company A"})
        cls.company_b = cls.env["res.company"].create({"name": "WA Test Company B"})
        Account = cls.env["whatsapp.account"]
        cls.account = Account.create(
            {
                "name": "Account A",
                "company_id": cls.company.id,
                "is_default": True,
                "phone_number_id": "test-a-0001",
                "waba_id": "test-waba-a",
                "access_token": "secret-token-a",
                "app_secret": "secret-app-a",
                "verify_token": "secret-verify-a",
            }
        )
        cls.account_b = Account.create(
            {
                "name": "Account B",
                "company_id": cls.company_b.id,
                "is_default": True,
                "phone_number_id": "test-b-0001",
                "waba_id": "test-waba-b",
                "access_token": "secret-token-b",
            }
        )
        cls.partner = cls.env["res.partner"].create(
            {
                "name": "Opted-in Customer",
                "mobile": "+225 07 00 00 00 99",
                "whatsapp_number_e164": "+2250700000099",
                "whatsapp_opt_in": True,
                "company_id": False,
            }
        )
        cls.template = cls.env["whatsapp.template"].create(
            {
                "name": "test_hello",
                "language": "en_US",
                "account_id": cls.account.id,
                "status": "approved",
                "components_json": '[{"type": "BODY", "text": "Hello {{1}}, total {{2}}"},'
                ' {"type": "BUTTONS", "buttons": [{"type": "QUICK_REPLY", "text": "OK"}]}]',
                "variable_ids": [
                    (0, 0, {"name": "1", "component": "body", "sequence": 1,
                            "field_path": "name"}),
                    (0, 0, {"name": "2", "component": "body", "sequence": 2,
                            "fixed_value": "n/a"}),
                    (0, 0, {"name": "payload", "component": "button", "button_index": 0,
                            "sequence": 3, "fixed_value": "ok", "field_path": "id"}),
                ],
            }
        )
        cls.user = new_test_user(
            cls.env,
            login="wa_user_a",
            groups="base.group_user,whatsapp_sidecar.group_whatsapp_user",
            company_id=cls.company.id,
            company_ids=[(6, 0, cls.company.ids)],
        )
        # A salesperson who can also send WhatsApp messages: sends order and invoice PDFs.
        cls.salesman = new_test_user(
            cls.env,
            login="wa_sales_a",
            groups="base.group_user,whatsapp_sidecar.group_whatsapp_user,"
            "sales_team.group_sale_salesman_all_leads,account.group_account_invoice",
            company_id=cls.company.id,
            company_ids=[(6, 0, cls.company.ids)],
        )
        cls.manager = new_test_user(
            cls.env,
            login="wa_manager_a",
            groups="base.group_user,whatsapp_sidecar.group_whatsapp_manager",
            company_id=cls.company.id,
            company_ids=[(6, 0, cls.company.ids)],
        )
        cls.sysadmin = new_test_user(
            cls.env,
            login="wa_sysadmin_a",
            groups="base.group_user,base.group_system,whatsapp_sidecar.group_whatsapp_user",
            company_id=cls.company.id,
            company_ids=[(6, 0, cls.company.ids)],
        )
        cls.technical = new_test_user(
            cls.env,
            login="wa_daemon",
            groups="base.group_user,whatsapp_sidecar.group_whatsapp_technical",
            company_id=cls.company.id,
            company_ids=[(6, 0, (cls.company | cls.company_b).ids)],
        )

    def composer(self, **values):
        """A composer as the WhatsApp user, in company A."""
        env = self.env(user=self.user, context={"allowed_company_ids": self.company.ids})
        values.setdefault("account_id", self.account.id)
        return env["whatsapp.send.message"].create(values)

    def conversation(self, wa_id, hours_ago=1, account=None, partner=None):
        """A conversation in which the customer wrote ``hours_ago`` hours ago
        (its 24-hour window is open when that is less than 24)."""
        return self.env["whatsapp.conversation"].create(
            {
                "account_id": (account or self.account).id,
                "wa_id": wa_id,
                "partner_id": partner.id if partner else False,
                "last_inbound_at": fields.Datetime.now() - timedelta(hours=hours_ago),
            }
        )

    def last_message(self):
        return self.env["whatsapp.message"].search([], order="id desc", limit=1)
