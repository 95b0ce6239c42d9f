# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
from odoo import _, api, fields, models


class ResPartner(models.Model):
    _inherit = "res.partner"

    whatsapp_opt_in = fields.Boolean(
        string="WhatsApp opt-in",
        tracking=True,
        copy=False,
        help="The contact agreed to receive WhatsApp messages. Campaigns and "
        "automatic messages only reach opted-in contacts.",
    )
    whatsapp_opt_in_date = fields.Datetime(string="WhatsApp opt-in date", copy=False)
    whatsapp_opt_in_source = fields.Selection(
        [
            ("manual", "Entered in Odoo"),
            ("whatsapp", "WhatsApp message"),
            ("form", "Web form"),
            ("import", "Import"),
            ("other", "Other"),
        ],
        string="WhatsApp opt-in source",
        copy=False,
    )
    whatsapp_opt_out_date = fields.Datetime(string="WhatsApp opt-out date", copy=False)
    whatsapp_number_e164 = fields.Char(
        string="WhatsApp number",
        index=True,
        copy=False,
        help="International format, e.g. +2250700000001. Empty: the mobile, else "
        "the phone number is used.",
    )
    whatsapp_message_count = fields.Integer(
        string="WhatsApp messages", compute="_compute_whatsapp_counts"
    )
    whatsapp_conversation_count = fields.Integer(
        string="WhatsApp conversations", compute="_compute_whatsapp_counts"
    )

    def _compute_whatsapp_counts(self):
        # A contact counts its own messages and those of its child contacts, as the buttons
        # show them (the same rule as the sales order count).
        family = self.with_context(active_test=False).search([("id", "child_of", self.ids)])
        for partner in self:
            partner.whatsapp_message_count = 0
            partner.whatsapp_conversation_count = 0
        for model, field in (
            ("whatsapp.message", "whatsapp_message_count"),
            ("whatsapp.conversation", "whatsapp_conversation_count"),
        ):
            groups = self.env[model]._read_group(
                [("partner_id", "in", family.ids)], ["partner_id"], ["__count"]
            )
            for partner, count in groups:
                while partner:
                    if partner in self:
                        partner[field] += count
                    partner = partner.parent_id

    def _whatsapp_number(self):
        self.ensure_one()
        return self.whatsapp_number_e164 or self.mobile or self.phone or False

    @api.model_create_multi
    def create(self, vals_list):
        now = fields.Datetime.now()
        for vals in vals_list:
            if vals.get("whatsapp_opt_in"):
                vals.setdefault("whatsapp_opt_in_date", now)
                vals.setdefault("whatsapp_opt_in_source", "manual")
        return super().create(vals_list)

    def write(self, vals):
        if "whatsapp_opt_in" not in vals:
            return super().write(vals)
        opt_in = bool(vals["whatsapp_opt_in"])
        changing = self.filtered(lambda p: p.whatsapp_opt_in != opt_in)
        result = super().write(vals)
        stamp = {}
        now = fields.Datetime.now()
        if opt_in:
            if "whatsapp_opt_in_date" not in vals:
                stamp["whatsapp_opt_in_date"] = now
            if "whatsapp_opt_in_source" not in vals:
                stamp["whatsapp_opt_in_source"] = "manual"
        elif "whatsapp_opt_out_date" not in vals:
            stamp["whatsapp_opt_out_date"] = now
        if changing and stamp:
            super(ResPartner, changing).write(stamp)
        return result

    def action_whatsapp_send(self):
        self.ensure_one()
        return self.env["whatsapp.send.message"]._action_open(
            partner=self, record=self, message_type="text"
        )

    def action_view_whatsapp_messages(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "whatsapp_sidecar.whatsapp_message_action"
        )
        action["domain"] = [("partner_id", "child_of", self.id)]
        action["context"] = {"default_partner_id": self.id, "create": False}
        return action

    def action_view_whatsapp_conversations(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "whatsapp_sidecar.whatsapp_conversation_action"
        )
        action["domain"] = [("partner_id", "child_of", self.id)]
        action["context"] = {"create": False}
        action["name"] = _("WhatsApp conversations")
        return action
