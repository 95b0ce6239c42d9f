# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""WhatsApp indicators on invoices, written by the daemon after each send."""

from odoo import _, fields, models
from odoo.exceptions import UserError
from odoo.tools.misc import formatLang

REPORT_NAME = "account.report_invoice"


class AccountMove(models.Model):
    _inherit = "account.move"

    x_whatsapp_invoice_sent = fields.Boolean(
        string="WhatsApp: invoice sent", copy=False, readonly=True
    )
    x_whatsapp_invoice_sent_date = fields.Datetime(
        string="WhatsApp: invoice date", copy=False, readonly=True
    )
    x_whatsapp_residual_sent = fields.Boolean(
        string="WhatsApp: residual change sent", copy=False, readonly=True
    )
    x_whatsapp_residual_sent_date = fields.Datetime(
        string="WhatsApp: residual change date", copy=False, readonly=True
    )
    x_whatsapp_last_residual_notified = fields.Monetary(
        string="WhatsApp: last residual notified",
        currency_field="currency_id",
        copy=False,
        readonly=True,
    )
    x_whatsapp_unpaid_reminder_sent = fields.Boolean(
        string="WhatsApp: unpaid reminder sent", copy=False, readonly=True
    )
    x_whatsapp_unpaid_reminder_sent_date = fields.Datetime(
        string="WhatsApp: last unpaid reminder", copy=False, readonly=True
    )
    x_whatsapp_unpaid_reminder_count = fields.Integer(
        string="WhatsApp: unpaid reminders", copy=False, readonly=True
    )
    whatsapp_message_count = fields.Integer(
        string="WhatsApp messages", compute="_compute_whatsapp_message_count"
    )

    def _compute_whatsapp_message_count(self):
        counts = self.env["whatsapp.message"]._count_by_record(self)
        for move in self:
            move.whatsapp_message_count = counts.get(move.id, 0)

    def _whatsapp_check_invoice(self):
        for move in self:
            if not move.is_invoice(include_receipts=True):
                raise UserError(
                    _("%(name)s is not an invoice: only invoices and credit notes "
                      "can be sent by WhatsApp.", name=move.display_name)
                )

    def action_whatsapp_send(self):
        self.ensure_one()
        self._whatsapp_check_invoice()
        return self.env["whatsapp.send.message"]._action_open(
            partner=self.partner_id,
            record=self,
            message_type="document",
            report_name=REPORT_NAME,
            body=_("Your invoice %(name)s", name=self.name),
        )

    def action_whatsapp_send_details(self):
        self._whatsapp_check_invoice()
        not_posted = self.filtered(lambda move: move.state != "posted")
        if not_posted:
            raise UserError(
                _("Invoice %(name)s is not posted: post it before sending its "
                  "details.", name=not_posted[0].display_name)
            )
        messages = self.env["whatsapp.message"]._queue_document_details(
            (
                move,
                move.partner_id,
                REPORT_NAME,
                "invoice_details",
                _(
                    "Invoice %(name)s: total %(total)s, amount due %(due)s",
                    name=move.name,
                    total=formatLang(self.env, move.amount_total,
                                     currency_obj=move.currency_id),
                    due=formatLang(self.env, move.amount_residual,
                                   currency_obj=move.currency_id),
                ),
            )
            for move in self
        )
        return messages._queued_notification()

    def action_view_whatsapp_messages(self):
        self.ensure_one()
        return self.env["whatsapp.message"]._action_for_record(self)
