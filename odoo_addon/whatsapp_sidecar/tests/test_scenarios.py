# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
from odoo.exceptions import AccessError, ValidationError
from odoo.tools import mute_logger

from .common import WhatsappCase


class TestScenarios(WhatsappCase):
    def scenario_values(self, **values):
        base = {
            "name": "Menu",
            "company_id": self.company.id,
            "trigger_keywords": "MENU",
            "interaction_type": "buttons",
            "body": "Choose",
            "option_ids": [
                (0, 0, {"sequence": i, "button_id": f"opt_{i}", "title": f"Option {i}",
                        "reply_text": "ok"})
                for i in range(1, 3)
            ],
        }
        base.update(values)
        return base

    @mute_logger("odoo.models", "odoo.addons.base.models.ir_model")
    def test_only_managers_create_and_edit_menus_and_button_actions(self):
        manager_env = self.env(user=self.manager, context={"allowed_company_ids": self.company.ids})
        scenario = manager_env["whatsapp.interactive.scenario"].create(self.scenario_values())
        action = manager_env["whatsapp.button.action"].create(
            {"name": "Hi", "button_id": "hi", "action_type": "reply_text", "reply_text": "Hello",
             "company_id": self.company.id}
        )
        scenario.option_ids[0].write({"title": "Renamed"})
        user_env = self.env(user=self.user, context={"allowed_company_ids": self.company.ids})
        # A WhatsApp user reads them (the conversation shows what ran) but changes nothing.
        self.assertEqual(user_env["whatsapp.interactive.scenario"].browse(scenario.id).name, "Menu")
        self.assertEqual(user_env["whatsapp.button.action"].browse(action.id).name, "Hi")
        with self.assertRaises(AccessError):
            user_env["whatsapp.interactive.scenario"].create(self.scenario_values(name="Mine"))
        with self.assertRaises(AccessError):
            user_env["whatsapp.interactive.scenario"].browse(scenario.id).write({"body": "x"})
        with self.assertRaises(AccessError):
            user_env["whatsapp.interactive.scenario.option"].browse(
                scenario.option_ids[0].id).write({"reply_text": "x"})
        with self.assertRaises(AccessError):
            user_env["whatsapp.interactive.scenario.option"].create(
                {"scenario_id": scenario.id, "button_id": "opt_9", "title": "Nine"})
        with self.assertRaises(AccessError):
            user_env["whatsapp.button.action"].create(
                {"name": "x", "button_id": "x", "reply_text": "x"})
        with self.assertRaises(AccessError):
            user_env["whatsapp.button.action"].browse(action.id).write({"reply_text": "x"})
        with self.assertRaises(AccessError):
            user_env["whatsapp.button.action"].browse(action.id).unlink()
        # Another company's manager does not see them.
        other = self.env(user=self.manager, context={"allowed_company_ids": self.company.ids})
        scenario_b = self.env["whatsapp.interactive.scenario"].create(
            self.scenario_values(company_id=self.company_b.id))
        self.assertFalse(other["whatsapp.interactive.scenario"].search([("id", "=", scenario_b.id)]))

    def test_a_menu_beyond_metas_limits_is_refused_with_the_limit_named(self):
        Scenario = self.env["whatsapp.interactive.scenario"]
        with self.assertRaisesRegex(ValidationError, "at most 3 buttons"):
            Scenario.create(self.scenario_values(option_ids=[
                (0, 0, {"button_id": f"b{i}", "title": f"B{i}"}) for i in range(4)]))
        with self.assertRaisesRegex(ValidationError, "at most 10 list rows"):
            Scenario.create(self.scenario_values(
                interaction_type="list", list_button_label="Open",
                option_ids=[(0, 0, {"button_id": f"r{i}", "title": f"R{i}"}) for i in range(11)]))
        scenario = Scenario.create(self.scenario_values())
        # An option edited on its own is checked too: 21 characters for a button title.
        with self.assertRaisesRegex(ValidationError, "allows 20"):
            scenario.option_ids[0].write({"title": "x" * 21})
        with self.assertRaisesRegex(ValidationError, "at most 3 buttons"):
            self.env["whatsapp.interactive.scenario.option"].create(
                [{"scenario_id": scenario.id, "button_id": f"more_{i}", "title": f"More {i}"}
                 for i in range(2)])

    def test_a_button_runs_server_actions_on_orders_invoices_or_contacts_only(self):
        Server = self.env["ir.actions.server"]
        on_partner = Server.create({
            "name": "Tag the contact", "model_id": self.env.ref("base.model_res_partner").id,
            "state": "code", "code": "record.write({'comment': 'pressed'})"})
        on_user = Server.create({
            "name": "On users", "model_id": self.env.ref("base.model_res_users").id,
            "state": "code", "code": "pass"})
        Action = self.env["whatsapp.button.action"]
        action = Action.create({"name": "Run", "button_id": "run", "action_type": "server_action",
                                "server_action_id": on_partner.id})
        self.assertEqual(action.server_action_model, "res.partner")
        with self.assertRaisesRegex(ValidationError, "res.users"):
            Action.create({"name": "Bad", "button_id": "bad", "action_type": "server_action",
                           "server_action_id": on_user.id})

    def test_the_default_reply_needs_a_welcome_scenario(self):
        with self.assertRaisesRegex(ValidationError, "welcome scenario"):
            self.account.write({"default_reply_enabled": True})
        scenario = self.env["whatsapp.interactive.scenario"].create(self.scenario_values())
        self.account.write({"default_reply_enabled": True, "welcome_scenario_id": scenario.id})
        self.assertTrue(self.account.default_reply_enabled)

    def test_the_invoice_rows_have_their_action_in_every_database(self):
        action = self.env.ref("whatsapp_sidecar.button_action_invoice_details")
        self.assertEqual((action.match_type, action.action_type), ("prefix", "send_invoice"))
        self.assertEqual(
            self.env.ref("whatsapp_sidecar.text_action_failed").with_context(lang="en_US").body,
            "Sorry, something went wrong; we will get back to you.",
        )

    def test_the_daemons_look_for_new_texts_has_its_index(self):
        self.env.cr.execute(
            "SELECT indexdef FROM pg_indexes WHERE indexname = %s",
            ("whatsapp_message_text_todo_index",),
        )
        (definition,) = self.env.cr.fetchone()
        self.assertIn("received_at", definition)
        self.assertIn("action_state IS NULL", definition)
