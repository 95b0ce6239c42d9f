# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""One conversation per (account, WhatsApp user).

The daemon creates and refreshes conversations from inbound messages: an
inbound message opens (or extends) the 24-hour customer service window.
"""

from datetime import timedelta

from odoo import _, api, fields, models

WINDOW = timedelta(hours=24)


class WhatsappConversation(models.Model):
    _name = "whatsapp.conversation"
    _description = "WhatsApp Conversation"
    _order = "last_inbound_at desc nulls last, id desc"
    _check_company_auto = True

    account_id = fields.Many2one(
        "whatsapp.account",
        required=True,
        ondelete="restrict",
        index=True,
        check_company=True,
    )
    company_id = fields.Many2one(
        related="account_id.company_id", store=True, index=True, precompute=True
    )
    wa_id = fields.Char(
        string="WhatsApp ID",
        index=True,
        help="The user's WhatsApp ID (digits), as Meta sends it in webhooks.",
    )
    user_id = fields.Char(
        string="Business-scoped user ID",
        index=True,
        help="Meta's business-scoped user ID (BSUID), e.g. US.13491208655302741918.",
    )
    partner_id = fields.Many2one("res.partner", index=True, ondelete="set null")
    profile_name = fields.Char(help="The name the user set in WhatsApp.")
    last_inbound_at = fields.Datetime(
        string="Last inbound message", index=True, readonly=True
    )
    window_expires_at = fields.Datetime(
        string="Window expires",
        compute="_compute_window_expires_at",
        store=True,
        help="Free-form messages are allowed until then; after, only templates.",
    )
    window_open = fields.Boolean(compute="_compute_window_open")
    message_ids = fields.One2many(
        "whatsapp.message", "conversation_id", string="Messages"
    )
    message_count = fields.Integer(compute="_compute_message_count")

    _sql_constraints = [
        (
            "account_wa_id_uniq",
            "unique(account_id, wa_id)",
            "This account already has a conversation with this WhatsApp ID.",
        ),
        (
            "account_user_id_uniq",
            "unique(account_id, user_id)",
            "This account already has a conversation with this business-scoped "
            "user ID.",
        ),
    ]

    @api.depends("partner_id", "profile_name", "wa_id", "user_id")
    def _compute_display_name(self):
        for conversation in self:
            who = (
                conversation.partner_id.display_name
                or conversation.profile_name
                or conversation.wa_id
                or conversation.user_id
                or ""
            )
            conversation.display_name = (
                f"{who} (+{conversation.wa_id})"
                if conversation.wa_id and who != conversation.wa_id
                else who
            )

    @api.depends("last_inbound_at")
    def _compute_window_expires_at(self):
        for conversation in self:
            conversation.window_expires_at = (
                conversation.last_inbound_at + WINDOW
                if conversation.last_inbound_at
                else False
            )

    def _compute_window_open(self):
        now = fields.Datetime.now()
        for conversation in self:
            conversation.window_open = bool(
                conversation.window_expires_at and conversation.window_expires_at > now
            )

    def _compute_message_count(self):
        counts = dict(
            self.env["whatsapp.message"]._read_group(
                [("conversation_id", "in", self.ids)], ["conversation_id"], ["__count"]
            )
        )
        for conversation in self:
            conversation.message_count = counts.get(conversation, 0)

    def action_send_message(self):
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "name": _("Send WhatsApp"),
            "res_model": "whatsapp.send.message",
            "view_mode": "form",
            "target": "new",
            "context": {
                "default_account_id": self.account_id.id,
                "default_conversation_id": self.id,
                "default_partner_id": self.partner_id.id,
                "default_phone_number": f"+{self.wa_id}" if self.wa_id else False,
            },
        }
