# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""WhatsApp indicators on sale orders.

The daemon writes the ``x_whatsapp_*`` fields once the matching message is
sent (or once the customer pressed Validate or Cancel). It notices new orders
and "Send details" requests by polling ``write_date`` (indexed here), and is
woken at once by a bus notification (``whatsapp_bus``) when a quotation is
created while an account of its company has "Send new sale orders" on, or when
"Send details by WhatsApp" is pressed.
"""

from odoo import _, api, fields, models
from odoo.exceptions import UserError
from odoo.tools.sql import create_index

from . import whatsapp_bus
from .whatsapp_message import check_phone_number

REPORT_NAME = "sale.report_saleorder"


class SaleOrder(models.Model):
    _inherit = "sale.order"

    x_whatsapp_creation_sent = fields.Boolean(
        string="WhatsApp: creation message sent", copy=False, readonly=True
    )
    x_whatsapp_creation_sent_date = fields.Datetime(
        string="WhatsApp: creation message date", copy=False, readonly=True
    )
    x_whatsapp_validated = fields.Boolean(
        string="WhatsApp: validated by the customer", copy=False, readonly=True
    )
    x_whatsapp_rejected = fields.Boolean(
        string="WhatsApp: cancelled by the customer", copy=False, readonly=True
    )
    x_whatsapp_validation_sent = fields.Boolean(
        string="WhatsApp: validation confirmation sent", copy=False, readonly=True
    )
    x_whatsapp_validation_sent_date = fields.Datetime(
        string="WhatsApp: validation confirmation date", copy=False, readonly=True
    )
    x_whatsapp_details_sent = fields.Boolean(
        string="WhatsApp: details sent", copy=False, readonly=True
    )
    x_whatsapp_details_sent_date = fields.Datetime(
        string="WhatsApp: details date", copy=False, readonly=True
    )
    x_whatsapp_details_requested_at = fields.Datetime(
        string="WhatsApp: details requested",
        copy=False,
        readonly=True,
        help="Set by 'Send details by WhatsApp'; the daemon composes the details in the "
        "customer's language, queues them and clears it.",
    )
    whatsapp_message_count = fields.Integer(
        string="WhatsApp messages", compute="_compute_whatsapp_message_count"
    )

    @api.model_create_multi
    def create(self, vals_list):
        orders = super().create(vals_list)
        # As the daemon: only quotations, of a company with "Send new sale orders" on.
        whatsapp_bus.notify_where(
            orders.filtered(lambda o: o.state in ("draft", "sent")), "auto_send_order_creation"
        )
        return orders

    def write(self, vals):
        result = super().write(vals)
        if vals.get("x_whatsapp_details_requested_at"):
            # "Send details" is sent from the company's default account.
            whatsapp_bus.notify_where(self, "is_default")
        return result

    def _compute_whatsapp_message_count(self):
        counts = self.env["whatsapp.message"]._count_by_record(self)
        for order in self:
            order.whatsapp_message_count = counts.get(order.id, 0)

    def action_whatsapp_send(self):
        self.ensure_one()
        return self.env["whatsapp.send.message"]._action_open(
            partner=self.partner_id,
            record=self,
            message_type="document",
            report_name=REPORT_NAME,
            body=_("Your order %(name)s", name=self.name),
        )

    def init(self):
        # The daemon's change detection asks for the orders written since its cursor.
        create_index(
            self.env.cr, "sale_order_write_date_index", self._table, ["write_date"]
        )

    def action_whatsapp_send_details(self):
        """Ask the daemon for the details of these orders: it writes them in each
        customer's language (lines, totals, portal link) and sends them."""
        accounts = {}
        for order in self:
            partner = order.partner_id
            number = partner._whatsapp_number()
            if not number:
                raise UserError(
                    _("The contact %(partner)s has no WhatsApp number: add a mobile "
                      "number on the contact.", partner=partner.display_name)
                )
            check_phone_number(number)
            company = order.company_id
            if company not in accounts:
                accounts[company] = self.env["whatsapp.account"]._get_default_account(company)
            if not accounts[company]:
                raise UserError(
                    _("%(company)s has no default WhatsApp account: choose one in "
                      "Settings > WhatsApp.", company=company.display_name)
                )
        # A WhatsApp user may ask for details without being a salesperson of the order.
        self.sudo().write({"x_whatsapp_details_requested_at": fields.Datetime.now()})
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "title": _("WhatsApp"),
                "message": _(
                    "Details of %(count)s order(s) requested: the daemon writes them in "
                    "the customer's language and sends them shortly.",
                    count=len(self),
                ),
                "type": "success",
                "sticky": False,
            },
        }

    def action_view_whatsapp_messages(self):
        self.ensure_one()
        return self.env["whatsapp.message"]._action_for_record(self)
