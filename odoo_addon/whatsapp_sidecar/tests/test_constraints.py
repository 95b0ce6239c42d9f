# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
from psycopg2 import IntegrityError

from odoo.exceptions import UserError, ValidationError
from odoo.tools import mute_logger

from .common import WhatsappCase


class TestConstraints(WhatsappCase):
    def _account(self, **values):
        base = {
            "name": "Another",
            "company_id": self.company.id,
            "phone_number_id": f"test-extra-{len(values)}-{values.get('name', '')}",
            "waba_id": "test-waba-x",
        }
        base.update(values)
        return self.env["whatsapp.account"].create(base)

    def test_graph_api_version_must_look_like_metas(self):
        account = self._account(name="Versioned", graph_api_version="v25.0")
        self.assertEqual(account.graph_api_version, "v25.0")
        for bad in ("25.0", "v25", "v25.0/../x", "latest"):
            with self.assertRaisesRegex(ValidationError, "is not a Graph API version"):
                account.write({"graph_api_version": bad})

    def test_one_default_account_per_company_on_write(self):
        second = self._account(name="Second A")
        self.assertFalse(second.is_default)
        with self.assertRaisesRegex(ValidationError, "already has a default WhatsApp account"):
            second.write({"is_default": True})

    def test_one_default_account_per_company_on_create(self):
        with self.assertRaisesRegex(ValidationError, "already has a default WhatsApp account"):
            self._account(name="Second default A", is_default=True)

    def test_one_default_sql_constraint_is_deferred_exclusion(self):
        # The database itself refuses two defaults (at commit, for concurrent
        # transactions that both passed the Python check).
        self.env.cr.execute(
            "SELECT pg_get_constraintdef(oid), condeferred FROM pg_constraint "
            "WHERE conname = 'whatsapp_account_one_default_per_company'"
        )
        definition, deferred = self.env.cr.fetchone()
        self.assertIn("EXCLUDE", definition)
        self.assertIn("WHERE (is_default)", definition)
        self.assertTrue(deferred)

    def test_default_account_in_each_company(self):
        # Company B already has its own default: both coexist.
        self.assertTrue(self.account.is_default and self.account_b.is_default)
        self.assertEqual(self.env["whatsapp.account"]._get_default_account(self.company), self.account)
        self.assertEqual(
            self.env["whatsapp.account"]._get_default_account(self.company_b), self.account_b
        )
        # Moving the default: unset first, then set, is allowed.
        second = self._account(name="Second A bis")
        self.account.is_default = False
        second.is_default = True
        self.assertEqual(self.env["whatsapp.account"]._get_default_account(self.company), second)

    def _message(self, **values):
        base = {"account_id": self.account.id, "company_id": self.company.id,
                "to_number": "+2250700000099", "body": "hi"}
        base.update(values)
        return self.env["whatsapp.message"].create(base)

    def test_wamid_unique(self):
        self._message(wamid="wamid.TEST1")
        self._message(wamid="wamid.TEST2")
        with self.assertRaises(IntegrityError), mute_logger("odoo.sql_db"), self.cr.savepoint():
            self._message(wamid="wamid.TEST1")

    def test_dedupe_key_unique(self):
        self._message(dedupe_key="invoice_posted:account.move:1")
        # Messages without a key never collide.
        self._message()
        self._message()
        with self.assertRaises(IntegrityError), mute_logger("odoo.sql_db"), self.cr.savepoint():
            self._message(dedupe_key="invoice_posted:account.move:1")

    def test_message_defaults(self):
        message = self._message()
        self.assertEqual(message.state, "queued")
        self.assertEqual(message.direction, "out")
        self.assertTrue(message.queued_at)

    def test_delete_account_with_messages_refused(self):
        self._message()
        with self.assertRaisesRegex(UserError, "has 1 messages and cannot be deleted"):
            self.account.unlink()
        empty = self._account(name="Empty")
        empty.unlink()
        self.assertFalse(empty.exists())

    def test_template_components_must_be_json_array(self):
        with self.assertRaisesRegex(ValidationError, "not valid JSON"):
            self.template.components_json = "{not json"
        with self.assertRaisesRegex(ValidationError, "must be a JSON array"):
            self.template.components_json = '{"type": "BODY"}'

    def test_template_derived_fields(self):
        self.assertEqual(self.template.body_text, "Hello {{1}}, total {{2}}")
        self.assertEqual(self.template.header_type, "none")
        self.assertEqual(self.template.button_count, 1)

    def test_template_variable_may_wait_for_its_mapping(self):
        # Template sync creates the variable lines unmapped; an administrator maps them later,
        # and the daemon refuses to send the template until then.
        variable = self.env["whatsapp.template.variable"].create(
            {"template_id": self.template.id, "name": "3", "component": "body"}
        )
        self.assertFalse(variable.field_path)
        self.assertFalse(variable.fixed_value)

    def test_scenario_limits(self):
        Scenario = self.env["whatsapp.interactive.scenario"]

        def options(count, title="Option"):
            return [
                (0, 0, {"sequence": i, "button_id": f"opt_{i}", "title": f"{title} {i}"})
                for i in range(count)
            ]

        ok = Scenario.create({"name": "Three", "body": "Pick", "option_ids": options(3)})
        self.assertEqual(ok.option_count, 3)
        with self.assertRaisesRegex(ValidationError, "at most 3"):
            Scenario.create({"name": "Four", "body": "Pick", "option_ids": options(4)})
        with self.assertRaisesRegex(ValidationError, "WhatsApp allows 20"):
            Scenario.create(
                {"name": "Long", "body": "Pick", "option_ids": options(1, "A" * 25)}
            )
        lst = Scenario.create(
            {"name": "List", "body": "Pick", "interaction_type": "list",
             "list_button_label": "Choose", "option_ids": options(10)}
        )
        self.assertIn('"sections"', lst.interactive_json)
        with self.assertRaisesRegex(ValidationError, "at most 10"):
            Scenario.create(
                {"name": "Eleven", "body": "Pick", "interaction_type": "list",
                 "list_button_label": "Choose", "option_ids": options(11)}
            )

    def test_partner_opt_in_is_stamped_and_tracked(self):
        partner = self.env["res.partner"].create({"name": "Consent", "mobile": "+33612345678"})
        self.assertFalse(partner.whatsapp_opt_in_date)
        partner.whatsapp_opt_in = True
        self.assertTrue(partner.whatsapp_opt_in_date)
        self.assertEqual(partner.whatsapp_opt_in_source, "manual")
        partner.whatsapp_opt_in = False
        self.assertTrue(partner.whatsapp_opt_out_date)
        self.assertTrue(partner._fields["whatsapp_opt_in"].tracking)

    def test_campaign_window_and_pacing(self):
        Campaign = self.env["whatsapp.campaign"]
        for start, end in ((9, 9), (-1, 8), (20, 25)):
            with self.assertRaisesRegex(ValidationError, "send window"):
                Campaign.create({"name": "Bad window", "account_id": self.account.id,
                                 "company_id": self.company.id,
                                 "send_window_start": start, "send_window_end": end})
        # A start after the end runs across midnight.
        overnight = Campaign.create({"name": "Overnight", "account_id": self.account.id,
                                     "company_id": self.company.id,
                                     "send_window_start": 20, "send_window_end": 8})
        self.assertEqual((overnight.send_window_start, overnight.send_window_end), (20, 8))
        with self.assertRaisesRegex(ValidationError, "throttle"):
            Campaign.create({"name": "Bad throttle", "account_id": self.account.id,
                             "company_id": self.company.id, "throttle_per_minute": 0})
        with self.assertRaisesRegex(ValidationError, "not a valid domain"):
            Campaign.create({"name": "Bad domain", "account_id": self.account.id,
                             "company_id": self.company.id, "partner_domain": "[("})
