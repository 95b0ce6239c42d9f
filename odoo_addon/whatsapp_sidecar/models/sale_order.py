# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""WhatsApp indicators on sale orders.

The daemon writes the ``x_whatsapp_*`` fields once the matching message is
sent (or once the customer pressed Validate or Cancel).
"""

from odoo import _, fields, models
from odoo.tools.misc import formatLang

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
    whatsapp_message_count = fields.Integer(
        string="WhatsApp messages", compute="_compute_whatsapp_message_count"
    )

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

    def action_whatsapp_send_details(self):
        messages = self.env["whatsapp.message"]._queue_document_details(
            (
                order,
                order.partner_id,
                REPORT_NAME,
                "order_details",
                _(
                    "Order %(name)s: total %(amount)s",
                    name=order.name,
                    amount=order._whatsapp_format_amount(order.amount_total),
                ),
            )
            for order in self
        )
        return messages._queued_notification()

    def _whatsapp_format_amount(self, amount):
        return formatLang(self.env, amount, currency_obj=self.currency_id)

    def action_view_whatsapp_messages(self):
        self.ensure_one()
        return self.env["whatsapp.message"]._action_for_record(self)
