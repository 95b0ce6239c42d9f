# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""Every verified webhook body, exactly as Meta sent it.

The daemon answers Meta only after the body is stored here: this model is the
durable inbox and the inbound payload trace. Processing runs from these
records, idempotently; ``processed`` and ``processing_error`` tell the result.
High volume: no mail.thread.
"""

import json

from odoo import _, api, fields, models


class WhatsappWebhookEvent(models.Model):
    _name = "whatsapp.webhook.event"
    _description = "WhatsApp Webhook Event"
    _order = "received_at desc, id desc"
    _rec_name = "received_at"

    raw_body = fields.Text(
        string="Raw payload", required=True, help="The request body as received."
    )
    received_at = fields.Datetime(
        required=True, default=fields.Datetime.now, index=True
    )
    signature_ok = fields.Boolean(
        string="Signature verified",
        help="The X-Hub-Signature-256 header matched the app secret.",
    )
    processed = fields.Boolean(index=True, copy=False)
    processed_at = fields.Datetime(copy=False)
    processing_error = fields.Text(copy=False)
    attempt_count = fields.Integer(copy=False)
    account_id = fields.Many2one(
        "whatsapp.account",
        ondelete="set null",
        index=True,
        help="The account the payload was routed to (by phone number ID).",
    )
    event_field = fields.Char(
        string="Change field",
        compute="_compute_summary",
        store=True,
        help="The webhook 'field' of the first change: messages, "
        "message_template_status_update...",
    )
    payload_pretty = fields.Text(string="Payload", compute="_compute_payload_pretty")
    message_ids = fields.One2many("whatsapp.message", "webhook_event_id")

    @api.depends("raw_body")
    def _compute_summary(self):
        for event in self:
            field_name = False
            try:
                payload = json.loads(event.raw_body or "")
                change = payload["entry"][0]["changes"][0]
                field_name = str(change.get("field") or "") or False
            except (ValueError, KeyError, IndexError, TypeError, AttributeError):
                field_name = False
            event.event_field = field_name

    @api.depends("raw_body")
    def _compute_payload_pretty(self):
        for event in self:
            try:
                event.payload_pretty = json.dumps(
                    json.loads(event.raw_body or ""), indent=2, ensure_ascii=False
                )
            except ValueError:
                event.payload_pretty = event.raw_body

    def action_reprocess(self):
        """Hand the events back to the daemon, which processes them again."""
        self.write({"processed": False, "processing_error": False})
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "title": _("Events queued again"),
                "message": _("The daemon will process them again shortly."),
                "type": "info",
                "sticky": False,
            },
        }
