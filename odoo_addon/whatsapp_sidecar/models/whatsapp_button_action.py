# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""What happens when a user presses a button or picks a list row.

The daemon matches the id it receives (``button_reply.id``, ``list_reply.id``
or a template quick-reply ``payload``) against ``button_id``, exactly or as a
prefix (``order_validate`` matches ``order_validate:42``), and runs the action.
"""

from odoo import _, api, fields, models
from odoo.exceptions import ValidationError

ACTION_TYPES = [
    ("reply_text", "Reply with a text"),
    ("confirm_order", "Confirm the sale order"),
    ("cancel_order", "Cancel the sale order"),
    ("send_order_details", "Send the order details"),
    ("send_invoice", "Send the invoice"),
    ("send_payment_link", "Send the payment link"),
    ("start_scenario", "Start an interactive scenario"),
    ("server_action", "Run a server action"),
    ("list_orders", "List the customer's last orders"),
    ("list_invoices", "List the customer's open invoices"),
]

# The records a server action can run on: the daemon sets active_model to one of these.
SERVER_ACTION_MODELS = ("sale.order", "account.move", "res.partner")


class WhatsappButtonAction(models.Model):
    _name = "whatsapp.button.action"
    _description = "WhatsApp Button Action"
    _order = "sequence, id"
    _check_company_auto = True

    name = fields.Char(required=True, translate=True)
    active = fields.Boolean(default=True)
    sequence = fields.Integer(
        default=10, help="When several actions match, the first one runs."
    )
    company_id = fields.Many2one(
        "res.company", index=True, default=lambda self: self.env.company
    )
    account_id = fields.Many2one(
        "whatsapp.account",
        ondelete="cascade",
        check_company=True,
        help="Empty: the action works on every account of the company.",
    )
    button_id = fields.Char(
        string="Button ID",
        required=True,
        index=True,
        help="The button or list row id, or template quick-reply payload.",
    )
    match_type = fields.Selection(
        [("exact", "Exact"), ("prefix", "Prefix")],
        required=True,
        default="exact",
        help="Prefix: 'order_validate' matches 'order_validate:42'; the rest "
        "(42) is the id of the record the action works on.",
    )
    action_type = fields.Selection(
        ACTION_TYPES,
        required=True,
        default="reply_text",
        help="What the daemon does when a customer presses the button: reply with a "
        "text, confirm or cancel the order, send the order's details, send the invoice "
        "or its payment link, list the customer's orders or open invoices, start an "
        "interactive scenario, or run a server action on the record the button names.",
    )
    reply_text = fields.Text(
        translate=True, help="Sent after the action (or alone for 'Reply with a text')."
    )
    scenario_id = fields.Many2one(
        "whatsapp.interactive.scenario", ondelete="restrict", check_company=True
    )
    server_action_id = fields.Many2one(
        "ir.actions.server",
        ondelete="restrict",
        domain="[('model_id.model', 'in', ('sale.order', 'account.move', 'res.partner'))]",
        help="Runs with the order, invoice or partner as the active record.",
    )
    server_action_model = fields.Char(
        related="server_action_id.model_name",
        store=True,
        string="Server action model",
        help="The model the server action runs on; the daemon reads it to choose the record.",
    )
    template_id = fields.Many2one(
        "whatsapp.template",
        ondelete="set null",
        check_company=True,
        help="Template used for the reply outside the 24-hour window.",
    )

    @api.constrains("action_type", "reply_text", "scenario_id", "server_action_id")
    def _check_action_target(self):
        for action in self:
            if action.action_type == "reply_text" and not action.reply_text:
                raise ValidationError(
                    _("Button action %(name)s replies with a text: write the text.",
                      name=action.name)
                )
            if action.action_type == "start_scenario" and not action.scenario_id:
                raise ValidationError(
                    _("Button action %(name)s starts a scenario: choose it.",
                      name=action.name)
                )
            if action.action_type == "server_action" and not action.server_action_id:
                raise ValidationError(
                    _("Button action %(name)s runs a server action: choose it.",
                      name=action.name)
                )
            model = action.server_action_id.sudo().model_name
            if action.action_type == "server_action" and model not in SERVER_ACTION_MODELS:
                raise ValidationError(
                    _("The server action %(action)s runs on %(model)s: a button can only run "
                      "server actions on sale orders, invoices or contacts.",
                      action=action.server_action_id.sudo().name, model=model)
                )

    @api.constrains("button_id")
    def _check_button_id(self):
        for action in self:
            if action.button_id != action.button_id.strip():
                raise ValidationError(
                    _("The button id %(id)s has leading or trailing spaces; "
                      "WhatsApp refuses them.", id=repr(action.button_id))
                )
            if len(action.button_id) > 256:
                raise ValidationError(
                    _("A button id is at most 256 characters long.")
                )
