# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""What the screens show: list columns, summaries, empty-state help, and the
features this daemon version does not run yet."""

import json

from lxml import etree

from .common import WhatsappCase

NOT_RUN_YET = "//div[hasclass('o_whatsapp_not_run_yet')]"


class TestViews(WhatsappCase):
    def arch(self, xmlid, model=None):
        view = self.env.ref(f"whatsapp_sidecar.{xmlid}")
        return etree.fromstring(
            self.env[model or view.model].get_view(view.id, view.type)["arch"]
        )

    def test_list_columns_are_hidden_with_column_invisible(self):
        # In a list, `invisible` only empties the cells: the column stays, empty.
        views = self.env["ir.ui.view"].search(
            [("type", "=", "tree"), ("model", "like", "whatsapp.%")]
        )
        self.assertTrue(views)
        for view in views:
            for node in etree.fromstring(view.arch_db).iter("field"):
                self.assertNotIn(
                    node.get("invisible"), ("1", "True"),
                    f"{view.xml_id}: field {node.get('name')} is a visible, empty column",
                )

    def test_accounts_list_has_one_company_column(self):
        arch = self.arch("whatsapp_account_view_tree")
        columns = [
            node for node in arch.xpath("//field[@name='company_id']")
            if node.get("column_invisible") not in ("True", "1")
        ]
        self.assertEqual(len(columns), 1)
        self.assertFalse(columns[0].get("invisible"))

    def test_webhook_events_list_summarizes_instead_of_the_payload(self):
        arch = self.arch("whatsapp_webhook_event_view_tree")
        names = {node.get("name") for node in arch.iter("field")}
        self.assertNotIn("raw_body", names)
        self.assertNotIn("payload_pretty", names)
        self.assertTrue({"received_at", "event_field", "summary", "processed",
                         "processing_error"} <= names)
        form = self.arch("whatsapp_webhook_event_view_form")
        self.assertTrue(form.xpath("//field[@name='raw_body']"))

        def event(value):
            body = {"object": "whatsapp_business_account",
                    "entry": [{"id": "waba", "changes": [value]}]}
            return self.env["whatsapp.webhook.event"].create({"raw_body": json.dumps(body)})

        statuses = event({"field": "messages", "value": {"statuses": [
            {"id": "wamid.1", "status": "delivered"}, {"id": "wamid.2", "status": "read"},
            {"id": "wamid.3", "status": "read"}]}})
        self.assertEqual(statuses.summary, "3 status(es): delivered, read")
        messages = event({"field": "messages", "value": {"messages": [
            {"from": "2250700000001", "id": "wamid.A", "type": "text"},
            {"from": "2250700000001", "id": "wamid.B", "type": "text"}]}})
        self.assertEqual(messages.summary, "2 message(s) from +2250700000001")
        template = event({"field": "message_template_status_update", "value": {
            "event": "APPROVED", "message_template_name": "sidecar_hello"}})
        self.assertEqual(template.summary, "sidecar_hello APPROVED")
        account = event({"field": "account_update", "value": {}})
        self.assertEqual(account.summary, "account_update")
        broken = self.env["whatsapp.webhook.event"].create({"raw_body": "{not json"})
        self.assertEqual(broken.summary, "Not JSON")

    def test_campaign_recipients_have_empty_state_help(self):
        action = self.env.ref("whatsapp_sidecar.whatsapp_campaign_recipient_action")
        self.assertIn("o_view_nocontent_smiling_face", action.help or "")

    def test_features_the_daemon_runs_have_no_not_run_yet_banner(self):
        # Campaigns are run by the daemon: no banner, no tooltip saying otherwise.
        campaign = self.arch("whatsapp_campaign_view_form")
        self.assertFalse(campaign.xpath(NOT_RUN_YET))
        for button in ("action_generate_queue", "action_start", "action_resume"):
            self.assertNotIn("Not run yet",
                             campaign.xpath(f"//button[@name='{button}']")[0].get("help"))
        # The automations are all run: no banner, no tooltip saying otherwise.
        self.assertFalse(self.arch("whatsapp_account_view_form").xpath(
            f"//page[@name='automations']{NOT_RUN_YET}"))
        fields_ = self.env["whatsapp.account"]._fields
        for name in ("auto_send_order_creation", "auto_send_invoice_posted",
                     "auto_send_residual_change", "auto_send_unpaid_invoices"):
            self.assertNotIn("Not run yet", fields_[name].help or "")

        # Button actions and scenarios: the daemon runs every type, no banner.
        self.assertFalse(self.arch("whatsapp_button_action_view_form").xpath(NOT_RUN_YET))
        self.assertFalse(self.arch("whatsapp_interactive_scenario_view_form").xpath(NOT_RUN_YET))
