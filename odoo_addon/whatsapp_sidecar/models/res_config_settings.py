# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""The WhatsApp block in Settings: which account is the company's default."""

from odoo import api, fields, models


class ResConfigSettings(models.TransientModel):
    _inherit = "res.config.settings"

    whatsapp_default_account_id = fields.Many2one(
        "whatsapp.account",
        string="Default WhatsApp account",
        compute="_compute_whatsapp_default_account_id",
        inverse="_inverse_whatsapp_default_account_id",
        readonly=False,
        domain="[('company_id', '=', company_id)]",
        groups="whatsapp_sidecar.group_whatsapp_manager",
    )
    whatsapp_account_count = fields.Integer(
        string="WhatsApp accounts",
        compute="_compute_whatsapp_default_account_id",
        groups="whatsapp_sidecar.group_whatsapp_manager",
    )

    @api.depends("company_id")
    def _compute_whatsapp_default_account_id(self):
        Account = self.env["whatsapp.account"]
        for settings in self:
            settings.whatsapp_default_account_id = Account._get_default_account(
                settings.company_id
            )
            settings.whatsapp_account_count = Account.search_count(
                [("company_id", "=", settings.company_id.id)]
            )

    def _inverse_whatsapp_default_account_id(self):
        Account = self.env["whatsapp.account"]
        for settings in self:
            chosen = settings.whatsapp_default_account_id
            current = Account.with_context(active_test=False).search(
                [("company_id", "=", settings.company_id.id), ("is_default", "=", True)]
            )
            if current == chosen:
                continue
            # Unset first and flush, so the one-default-per-company constraint
            # never sees two defaults.
            (current - chosen).write({"is_default": False})
            Account.flush_model(["is_default"])
            if chosen:
                chosen.write({"is_default": True})

    def action_whatsapp_open_default_account(self):
        self.ensure_one()
        if not self.whatsapp_default_account_id:
            return self.env["ir.actions.act_window"]._for_xml_id(
                "whatsapp_sidecar.whatsapp_account_action"
            )
        return {
            "type": "ir.actions.act_window",
            "res_model": "whatsapp.account",
            "res_id": self.whatsapp_default_account_id.id,
            "view_mode": "form",
            "target": "current",
        }
