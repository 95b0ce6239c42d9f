# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""WhatsApp indicators on invoices, written by the daemon after each send.

The daemon notices posted invoices, payments and "Send details" requests by
polling ``write_date`` (indexed here); nothing WhatsApp does runs in the
transaction that posts an invoice or registers a payment. Posting only stamps
``x_whatsapp_posted_at`` (one UPDATE for the whole batch), so that an invoice
posted before "Send posted invoices" was turned on is never sent.

The daemon is also woken at once by a bus notification (``whatsapp_bus``: one per
transaction; the only query reads the account switch, once per company and
transaction): when a
customer invoice is posted while an account of its company has "Send posted
invoices" on, when the amount due of a posted customer invoice changes
(payments, reconciliation, unreconciliation) while one has "Send residual amount
changes" on, and when "Send details by WhatsApp" is pressed. ``amount_residual``
and ``payment_state`` are stored computed fields: the ORM writes their new values
with ``_write`` when it flushes, never with ``write``, so ``_write`` is the hook.
"""

from odoo import _, fields, models
from odoo.exceptions import UserError
from odoo.tools import SQL
from odoo.tools.sql import create_index

from . import whatsapp_bus
from .whatsapp_message import check_phone_number

REPORT_NAME = "account.report_invoice"
# The moves the daemon's invoice loop reads ("Send details" works on all of them; the posted
# invoice and payment messages only on out_invoice).
CUSTOMER_MOVE_TYPES = ("out_invoice", "out_refund", "out_receipt")


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
        help="The amount due the customer was last told about (or the amount due when the "
        "daemon first saw the invoice posted): payments are notified from there.",
    )
    x_whatsapp_last_residual_at = fields.Datetime(
        string="WhatsApp: last residual recorded",
        copy=False,
        readonly=True,
        help="When the daemon recorded the last residual notified; empty: not yet.",
    )
    x_whatsapp_posted_at = fields.Datetime(
        string="WhatsApp: posted at",
        copy=False,
        readonly=True,
        help="When the invoice was last posted: only invoices posted after 'Send posted "
        "invoices' was turned on are sent.",
    )
    x_whatsapp_details_requested_at = fields.Datetime(
        string="WhatsApp: details requested",
        copy=False,
        readonly=True,
        help="Set by 'Send details by WhatsApp'; the daemon composes the details in the "
        "customer's language, queues them and clears it.",
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

    def init(self):
        # The daemon's change detection asks for the invoices written since its cursor.
        create_index(
            self.env.cr, "account_move_write_date_index", self._table, ["write_date"]
        )

    def _post(self, soft=True):
        posted = super()._post(soft=soft)
        if posted:
            # One UPDATE, without account.move.write's business checks: posting is not
            # slowed by WhatsApp.
            self.env.cr.execute(
                SQL(
                    "UPDATE account_move SET x_whatsapp_posted_at = %s WHERE id IN %s",
                    fields.Datetime.now(),
                    tuple(posted.ids),
                )
            )
            posted.invalidate_recordset(["x_whatsapp_posted_at"])
            whatsapp_bus.notify_where(
                posted.filtered(lambda m: m.move_type == "out_invoice"),
                "auto_send_invoice_posted",
            )
        return posted

    def write(self, vals):
        result = super().write(vals)
        if vals.get("x_whatsapp_details_requested_at"):
            # "Send details" is sent from the company's default account.
            whatsapp_bus.notify_where(
                self.filtered(lambda m: m.move_type in CUSTOMER_MOVE_TYPES), "is_default"
            )
        return result

    def _write(self, vals):
        # Called by the flush with the recomputed amount due and payment state (see the
        # module's docstring); state and move_type are read from the cache.
        result = super()._write(vals)
        if "amount_residual" in vals or "payment_state" in vals:
            whatsapp_bus.notify_where(
                self.filtered(lambda m: m.state == "posted" and m.move_type == "out_invoice"),
                "auto_send_residual_change",
            )
        return result

    def whatsapp_portal_paths(self):
        """The portal path of each invoice, with its access token (made when missing), as
        ``{"<id>": "/my/invoices/<id>?access_token=..."}``: the daemon asks it once for a batch
        of invoices instead of calling ``get_portal_url`` (one record at a time) per invoice."""
        return {str(move.id): move.get_portal_url() for move in self}

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
        """Ask the daemon for the details of these invoices: it writes them in each
        customer's language (lines, totals, amount paid and due, portal and payment
        links), sends them, then the invoice's PDF."""
        self._whatsapp_check_invoice()
        not_posted = self.filtered(lambda move: move.state != "posted")
        if not_posted:
            raise UserError(
                _("Invoice %(name)s is not posted: post it before sending its "
                  "details.", name=not_posted[0].display_name)
            )
        accounts = {}
        for move in self:
            partner = move.partner_id
            number = partner._whatsapp_number()
            if not number:
                raise UserError(
                    _("The contact %(partner)s has no WhatsApp number: add a mobile "
                      "number on the contact.", partner=partner.display_name)
                )
            check_phone_number(number)
            company = move.company_id
            if company not in accounts:
                accounts[company] = self.env["whatsapp.account"]._get_default_account(company)
            if not accounts[company]:
                raise UserError(
                    _("%(company)s has no default WhatsApp account: choose one in "
                      "Settings > WhatsApp.", company=company.display_name)
                )
        # A WhatsApp user may ask for details without being an accountant.
        self.sudo().write({"x_whatsapp_details_requested_at": fields.Datetime.now()})
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "title": _("WhatsApp"),
                "message": _(
                    "Details of %(count)s invoice(s) requested: the daemon writes them in "
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
