# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""Interactive menus: the account settings and the conversation state the daemon keeps.

The daemon starts a scenario when an inbound text equals one of its keywords (or, with the
account's default reply on, sends the welcome scenario to a text that matches nothing, at most
once per 24 hours per customer), answers the options the customer picks, and writes on the
conversation which menu it sent last and when: a press of an option of a menu older than the
daemon's ``scenarios.stale_after_hours`` gets that menu again instead of acting.
"""

from odoo import _, api, fields, models
from odoo.exceptions import ValidationError
from odoo.tools.sql import create_index


class WhatsappAccount(models.Model):
    _inherit = "whatsapp.account"

    default_reply_enabled = fields.Boolean(
        string="Default reply",
        help="An inbound text that matches no keyword gets the welcome scenario, at most once "
        "per 24 hours per customer (never an endless 'I did not understand').",
    )
    welcome_scenario_id = fields.Many2one(
        "whatsapp.interactive.scenario",
        string="Welcome scenario",
        ondelete="set null",
        check_company=True,
        help="The menu sent as the default reply.",
    )

    @api.constrains("default_reply_enabled", "welcome_scenario_id")
    def _check_default_reply(self):
        for account in self:
            if account.default_reply_enabled and not account.welcome_scenario_id:
                raise ValidationError(
                    _("The account %(name)s sends a default reply: choose its welcome scenario.",
                      name=account.name)
                )


class WhatsappConversation(models.Model):
    _inherit = "whatsapp.conversation"

    scenario_id = fields.Many2one(
        "whatsapp.interactive.scenario",
        string="Current menu",
        readonly=True,
        ondelete="set null",
        help="The last interactive scenario the daemon sent in this conversation.",
    )
    scenario_started_at = fields.Datetime(
        string="Menu sent at",
        readonly=True,
        help="When the current menu was sent. A press of an option after the daemon's "
        "scenarios.stale_after_hours (24 by default) gets the menu again instead of acting.",
    )
    default_reply_at = fields.Datetime(
        string="Default reply sent at",
        readonly=True,
        help="When the account's welcome scenario was last sent as the default reply.",
    )


class WhatsappMessage(models.Model):
    _inherit = "whatsapp.message"

    def init(self):
        result = super().init()
        # The daemon reads the inbound texts of the last hours it has not looked at yet
        # (keywords, the default reply): a few rows among millions of messages.
        create_index(
            self.env.cr,
            "whatsapp_message_text_todo_index",
            self._table,
            ["received_at"],
            where="message_type = 'text' AND action_state IS NULL AND direction = 'in'",
        )
        return result
