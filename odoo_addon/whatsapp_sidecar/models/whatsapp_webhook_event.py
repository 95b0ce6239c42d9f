# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""Every verified webhook body, exactly as Meta sent it.

The daemon answers Meta only after the body is stored here: this model is the
durable inbox and the inbound payload trace. Processing runs from these
records, idempotently; ``processed`` and ``processing_error`` tell the result.
"Process again" notifies the events on the bus (``whatsapp_bus``) so the daemon
processes them at once.
High volume: no mail.thread.
"""

import json

from odoo import _, api, fields, models

from . import whatsapp_bus


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
    summary = fields.Char(
        compute="_compute_payload_pretty",
        help="What the payload holds: messages, statuses, template or account updates.",
    )
    message_ids = fields.One2many("whatsapp.message", "webhook_event_id")
    spool_key = fields.Char(
        readonly=True,
        copy=False,
        index="btree_not_null",
        help="Set when the daemon kept the webhook in its local spool before storing it here "
        "(webhook.spool_file): which spool and which entry. After a crash the daemon looks "
        "these up so that no webhook is stored twice.",
    )

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
                payload = json.loads(event.raw_body or "")
            except ValueError:
                event.payload_pretty = event.raw_body
                event.summary = _("Not JSON")
                continue
            event.payload_pretty = json.dumps(payload, indent=2, ensure_ascii=False)
            event.summary = event._summarize_payload(payload)

    def _summarize_payload(self, payload):
        """One line saying what a webhook body holds, change by change."""
        messages, senders, statuses, others = 0, [], [], []
        entries = payload.get("entry") if isinstance(payload, dict) else None
        for entry in entries if isinstance(entries, list) else []:
            changes = entry.get("changes") if isinstance(entry, dict) else None
            for change in changes if isinstance(changes, list) else []:
                if not isinstance(change, dict):
                    continue
                value = change.get("value")
                value = value if isinstance(value, dict) else {}
                kind = str(change.get("field") or "")
                if kind != "messages":
                    # e.g. a template status update: "sidecar_hello APPROVED".
                    detail = (value.get("message_template_name"), value.get("event"))
                    others.append(" ".join(str(p) for p in detail if p) or kind)
                    continue
                for message in value.get("messages") or []:
                    if isinstance(message, dict):
                        messages += 1
                        sender = str(message.get("from") or "")
                        if sender and sender not in senders:
                            senders.append(sender)
                for status in value.get("statuses") or []:
                    if isinstance(status, dict):
                        statuses.append(str(status.get("status") or "?"))
        parts = []
        if messages:
            parts.append(
                _("%(count)s message(s) from %(senders)s", count=messages,
                  senders=", ".join(f"+{s}" for s in senders[:3]))
            )
        if statuses:
            parts.append(
                _("%(count)s status(es): %(states)s", count=len(statuses),
                  states=", ".join(dict.fromkeys(statuses)))
            )
        parts.extend(others)
        summary = "; ".join(parts) or _("No change")
        return summary if len(summary) <= 120 else summary[:119] + "…"

    def action_reprocess(self):
        """Hand the events back to the daemon, which processes them again."""
        self.write({"processed": False, "processing_error": False})
        whatsapp_bus.notify_records(self)
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
