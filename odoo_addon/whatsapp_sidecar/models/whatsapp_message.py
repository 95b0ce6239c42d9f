# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""The outbox and the message log, in one model.

An outbound message starts ``queued``; the daemon claims it (``sending``,
``claimed_at``), sends it and writes the result (``sent`` + ``wamid``, or
``failed`` + error fields). Status webhooks move it forward (``delivered``,
``read``). Inbound messages are created by the daemon as ``received``.

JSON fields (all written with ``json.dumps``):

* ``template_params_json``: ``{"body": [{"name": "1", "value": "Alice"}, ...],
  "buttons": [{"index": 0, "name": "1", "value": "PAY:42"}]}``. Empty means:
  the daemon resolves the template variables on ``res_model``/``res_id``.
* ``header_params_json``: ``[{"name": "1", "value": "S00042"}]`` for a text
  header. A media header takes its media from ``media_attachment_id``,
  ``report_name`` (the source record's PDF), ``media_id`` or ``media_url``.
* ``interactive_json``: Meta's ``interactive`` object (``type`` button or
  list, ``body``, ``action``...).
* ``meta_response_json``: Meta's raw response or error body.

This is a high-volume log: no mail.thread and no field tracking.

The state only moves forward, whoever writes it (``write``): ``queued`` and
``cancelled`` < ``sending`` < ``sent`` < ``delivered`` < ``read`` <
``failed``, with two ways back: the daemon putting a claimed message back
(``sending`` -> ``queued``) and a user's Retry (``action_retry``: ``failed`` or
``cancelled`` -> ``queued``). ``failed`` and ``received`` are final. A write
that would move a message back keeps every other value it carries and leaves
the state as it is (a late send result after a ``delivered`` status still
records its wamid and time), so writers that race (the daemon's send result and
a status webhook, a former daemon and the current one) cannot undo each other.

A message created or written ``queued`` (outbound) is notified on the bus
(``whatsapp_bus``): the daemon's outbox sends it at once instead of at its next
poll; all the messages of a transaction make one notification.
"""

import logging
import re

from odoo import _, api, fields, models
from odoo.exceptions import AccessError, UserError
from odoo.tools.sql import create_index

from . import whatsapp_bus

_logger = logging.getLogger(__name__)

_PHONE_SEPARATORS = re.compile(r"[\s().\-/]")


def check_phone_number(number):
    """Return ``number`` without separators if it plausibly is a phone number.

    Full E.164 validation is the daemon's (it knows the default region); this
    only refuses what cannot be a number, with a message saying how to fix it.
    """
    raw = (number or "").strip()
    if not raw:
        raise UserError(
            _("No phone number: choose a contact with a mobile number or type the "
              "number in international format, e.g. +2250700000001.")
        )
    compact = _PHONE_SEPARATORS.sub("", raw)
    if compact.startswith("00"):
        compact = "+" + compact[2:]
    digits = compact[1:] if compact.startswith("+") else compact
    if not digits.isdigit():
        raise UserError(
            _("%(number)s is not a phone number: only digits, spaces, dashes, dots, "
              "parentheses and a leading + are allowed (e.g. +2250700000001).",
              number=repr(raw))
        )
    if not 7 <= len(digits) <= 15:
        raise UserError(
            _("%(number)s has %(count)s digits: a phone number has 7 to 15 digits. "
              "Use the international format, e.g. +2250700000001.",
              number=repr(raw), count=len(digits))
        )
    return compact


def e164_digits(number):
    """The digits of ``number`` when it is written in international format
    (+ or 00 first), as Meta's WhatsApp ID of that number; else False."""
    compact = _PHONE_SEPARATORS.sub("", (number or "").strip())
    if compact.startswith("00"):
        compact = "+" + compact[2:]
    digits = compact[1:]
    if compact.startswith("+") and digits.isdigit() and 7 <= len(digits) <= 15:
        return digits
    return False


MESSAGE_STATES = [
    ("queued", "Queued"),
    ("sending", "Sending"),
    ("sent", "Sent"),
    ("delivered", "Delivered"),
    ("read", "Read"),
    ("failed", "Failed"),
    ("cancelled", "Cancelled"),
    ("received", "Received"),
]

# Where each state stands on the way forward (see the module docstring).
_STATE_RANK = {
    "queued": 0,
    "cancelled": 0,
    "sending": 1,
    "sent": 2,
    "delivered": 3,
    "read": 4,
    "failed": 5,
}


def state_may_move(old, new, retry=False):
    """True when a message in state ``old`` may be written ``new``.

    ``retry`` is a user's explicit Retry (``action_retry``), the one way out of
    ``failed`` and ``cancelled``.
    """
    if old == new or not old:
        return True
    if old in ("failed", "cancelled") and new == "queued":
        return retry
    if old in ("failed", "received") or new == "received":
        return False
    if old == "cancelled" and new == "sending":
        return False
    if (old, new) in (("sending", "queued"), ("queued", "cancelled"), ("sending", "cancelled")):
        return True
    if old not in _STATE_RANK or new not in _STATE_RANK:
        return False
    return _STATE_RANK[new] > _STATE_RANK[old]

MESSAGE_TYPES = [
    ("text", "Text"),
    ("template", "Template"),
    ("image", "Image"),
    ("document", "Document"),
    ("video", "Video"),
    ("audio", "Audio"),
    ("sticker", "Sticker"),
    ("location", "Location"),
    ("contacts", "Contacts"),
    ("interactive", "Interactive"),
    ("reaction", "Reaction"),
    ("button", "Template button reply"),
    ("order", "Order"),
    ("system", "System"),
    ("request_welcome", "Welcome request"),
    ("unsupported", "Unsupported"),
]

TRIGGERS = [
    ("manual", "Manual"),
    ("order_creation", "New sale order"),
    ("order_details", "Sale order details"),
    ("order_validation", "Sale order validation"),
    ("invoice_posted", "Posted invoice"),
    ("invoice_details", "Invoice details"),
    ("residual_change", "Residual amount change"),
    ("unpaid_reminder", "Unpaid invoice reminder"),
    ("campaign", "Campaign"),
    ("scenario", "Interactive scenario"),
    ("button_action", "Button action"),
    ("opt_out", "Opt-out confirmation"),
]


class WhatsappMessage(models.Model):
    _name = "whatsapp.message"
    _description = "WhatsApp Message"
    _order = "id desc"
    _check_company_auto = True

    account_id = fields.Many2one(
        "whatsapp.account",
        ondelete="restrict",
        index=True,
        check_company=True,
        help="Empty: the daemon uses the company's default account.",
    )
    company_id = fields.Many2one(
        "res.company",
        required=True,
        index=True,
        default=lambda self: self.env.company,
    )
    conversation_id = fields.Many2one(
        "whatsapp.conversation", ondelete="set null", index=True, check_company=True
    )
    partner_id = fields.Many2one("res.partner", index=True, ondelete="set null")
    direction = fields.Selection(
        [("in", "Inbound"), ("out", "Outbound")],
        required=True,
        default="out",
        index=True,
    )
    message_type = fields.Selection(
        MESSAGE_TYPES, string="Type", required=True, default="text", index=True
    )
    state = fields.Selection(
        MESSAGE_STATES, required=True, default="queued", index=True, copy=False
    )
    trigger = fields.Selection(
        TRIGGERS,
        default="manual",
        index=True,
        help="What queued the message; the daemon writes the matching "
        "x_whatsapp_* fields on the source document once it is sent.",
    )
    to_number = fields.Char(help="The number as typed or found on the contact.")
    to_e164 = fields.Char(string="E.164 number", index=True, copy=False)
    wa_id = fields.Char(string="WhatsApp ID", index=True, copy=False)
    # The unique constraints below create the indexes on wamid and dedupe_key.
    wamid = fields.Char(string="WhatsApp message ID", copy=False, readonly=True)
    body = fields.Text(help="Text, caption, or the summary of an inbound message.")
    original_body = fields.Text(
        string="Original wording",
        copy=False,
        readonly=True,
        help="The text typed before the daemon replaced it with a template outside the "
        "24-hour window (WhatsApp only accepts approved templates when the customer has not "
        "written in the last 24 hours).",
    )
    original_message_type = fields.Selection(
        MESSAGE_TYPES,
        string="Original type",
        copy=False,
        readonly=True,
        help="The type the message was queued with, before the daemon sent it as a template "
        "outside the 24-hour window.",
    )
    template_id = fields.Many2one(
        "whatsapp.template", ondelete="restrict", check_company=True
    )
    template_params_json = fields.Text(string="Template parameters (JSON)")
    header_params_json = fields.Text(string="Header parameters (JSON)")
    media_attachment_id = fields.Many2one("ir.attachment", ondelete="set null")
    media_url = fields.Char(string="Media URL")
    media_id = fields.Char(string="Meta media ID", copy=False)
    media_filename = fields.Char()
    media_mime_type = fields.Char(string="Media MIME type")
    report_name = fields.Char(
        help="Report of the source record sent as the document, "
        "e.g. account.report_invoice."
    )
    interactive_json = fields.Text(string="Interactive content (JSON)")
    reply_to_wamid = fields.Char(string="Reply to", index=True)
    res_model = fields.Char(string="Source model", index=True)
    res_id = fields.Many2oneReference(
        string="Source record ID", model_field="res_model", index=True
    )
    campaign_id = fields.Many2one(
        "whatsapp.campaign", ondelete="set null", index=True, check_company=True
    )
    campaign_step_id = fields.Many2one("whatsapp.campaign.step", ondelete="set null")
    campaign_recipient_id = fields.Many2one(
        "whatsapp.campaign.recipient", ondelete="set null", index=True
    )
    webhook_event_id = fields.Many2one(
        "whatsapp.webhook.event",
        ondelete="set null",
        # Deleting old events (retention) clears this link: without an index, PostgreSQL
        # scans every message for each event deleted.
        index="btree_not_null",
        help="The webhook event an inbound message came from.",
    )
    priority = fields.Integer(
        default=10,
        help="Messages with a higher priority are sent first: 10 for every message by "
        "default, 0 for campaign messages, so orders and invoices never wait behind a "
        "campaign.",
    )
    dedupe_key = fields.Char(
        copy=False,
        help="Makes an automatic send idempotent, e.g. invoice_posted:account.move:42.",
    )
    attempt_count = fields.Integer(copy=False)
    next_attempt_at = fields.Datetime(index=True, copy=False)
    claimed_at = fields.Datetime(copy=False)
    callback_data = fields.Char(
        copy=False, help="Sent as biz_opaque_callback_data; status webhooks echo it."
    )
    error_code = fields.Char(copy=False, help="Meta's error code, e.g. 131047.")
    error_title = fields.Char(copy=False)
    error_details = fields.Text(copy=False)
    error_help = fields.Text(
        string="What to do", copy=False, help="A human explanation and the fix."
    )
    meta_response_json = fields.Text(string="Meta response (JSON)", copy=False)
    queued_at = fields.Datetime(default=fields.Datetime.now, copy=False)
    sent_at = fields.Datetime(copy=False)
    delivered_at = fields.Datetime(copy=False)
    read_at = fields.Datetime(copy=False)
    failed_at = fields.Datetime(copy=False)
    cancelled_at = fields.Datetime(copy=False)
    received_at = fields.Datetime(copy=False)
    pricing_category = fields.Char(copy=False)
    button_payload = fields.Char(
        index=True, help="Id of the button or list row the user pressed."
    )
    button_title = fields.Char()
    # What the daemon did with a button press (received messages with a button_payload).
    action_state = fields.Selection(
        [
            ("done", "Done"),
            ("refused", "Refused"),
            ("failed", "Failed"),
            ("ignored", "No action"),
        ],
        string="Button action",
        copy=False,
        readonly=True,
        help="Done: the button's action ran. Refused: the press was not acted on (not "
        "the order's customer, a payload not made for this order...). Failed: Odoo "
        "refused the action; the salesperson has an activity. No action: no button "
        "action matches the button.",
    )
    action_result = fields.Text(
        string="Button action result", copy=False, readonly=True,
        help="What the daemon did, or why it did nothing.",
    )
    action_id = fields.Many2one(
        "whatsapp.button.action", string="Button action run", copy=False,
        readonly=True, ondelete="set null",
    )
    source_reference = fields.Char(
        string="Source document", compute="_compute_source_reference"
    )

    _sql_constraints = [
        (
            "wamid_uniq",
            "unique(wamid)",
            "Another message already has this WhatsApp message ID (wamid).",
        ),
        (
            "dedupe_key_uniq",
            "unique(dedupe_key)",
            "A message with this deduplication key already exists: "
            "it was queued once already.",
        ),
    ]

    def init(self):
        # The daemon's button-action runner looks for presses not yet acted on: a few rows
        # among millions of messages.
        create_index(
            self.env.cr,
            "whatsapp_message_button_press_todo_index",
            self._table,
            ["id"],
            where="button_payload IS NOT NULL AND action_state IS NULL AND direction = 'in'",
        )

    # The daemon renders reports and sends attachments as its technical user: a message may only
    # name documents and files its author can read, and only the reports the addon offers.
    SOURCE_FIELDS = ("media_attachment_id", "report_name", "res_model", "res_id")
    SENDABLE_REPORTS = ("sale.report_saleorder", "account.report_invoice")

    @api.model_create_multi
    def create(self, vals_list):
        messages = super().create(vals_list)
        messages._check_sources_readable()
        whatsapp_bus.notify_records(
            messages.filtered(lambda m: m.state == "queued" and m.direction == "out")
        )
        return messages

    def write(self, vals):
        if "state" in vals:
            retry = self.env.context.get("whatsapp_retry", False)
            held = self.filtered(lambda m: not state_may_move(m.state, vals["state"], retry))
            if held:
                _logger.debug(
                    "whatsapp.message %s: state %s not written over %s (a message never moves "
                    "back)",
                    held.ids,
                    vals["state"],
                    held.mapped("state"),
                )
                rest = {k: v for k, v in vals.items() if k != "state"}
                if rest:
                    super(WhatsappMessage, held).write(rest)
                moving = self - held
                if not moving:
                    if set(self.SOURCE_FIELDS) & set(rest):
                        held._check_sources_readable()
                    return True
                return moving.write(vals)
        result = super().write(vals)
        if set(self.SOURCE_FIELDS) & set(vals):
            self._check_sources_readable()
        if vals.get("state") == "queued":
            # Requeued (Retry, or the daemon putting a message back): the outbox has work.
            whatsapp_bus.notify_records(self)
        return result

    def _check_sources_readable(self):
        if self.env.su or self.env.user.has_group("whatsapp_sidecar.group_whatsapp_technical"):
            return
        for message in self:
            if message.report_name and message.report_name not in self.SENDABLE_REPORTS:
                raise AccessError(
                    _(
                        "The report %(report)s cannot be sent by WhatsApp: use the order or "
                        "invoice buttons, or attach the file.",
                        report=message.report_name,
                    )
                )
            if message.media_attachment_id:
                message.media_attachment_id.check("read")
            if message.res_model and message.res_id:
                if message.res_model not in self.env:
                    raise AccessError(
                        _("%(model)s is not a document model of this database.",
                          model=message.res_model)
                    )
                record = self.env[message.res_model].browse(message.res_id)
                record.check_access_rights("read")
                record.check_access_rule("read")

    @api.depends("direction", "message_type", "partner_id", "to_number", "wa_id")
    def _compute_display_name(self):
        types = dict(MESSAGE_TYPES)
        for message in self:
            who = (
                message.partner_id.display_name
                or message.to_number
                or message.wa_id
                or _("unknown")
            )
            arrow = "→" if message.direction == "out" else "←"
            message.display_name = f"{arrow} {who} ({types.get(message.message_type, '')})"

    @api.depends("res_model", "res_id")
    def _compute_source_reference(self):
        for message in self:
            reference = False
            if message.res_model in self.env and message.res_id:
                model = self.env[message.res_model]
                if model.check_access_rights("read", raise_exception=False):
                    record = model.browse(message.res_id).exists()
                    try:
                        record.check_access_rule("read")
                        reference = record.display_name
                    except AccessError:
                        reference = False
            message.source_reference = reference

    @api.model
    def _count_by_record(self, records):
        """Number of messages per source record id of ``records``."""
        if not records.ids:
            return {}
        return dict(
            self._read_group(
                [("res_model", "=", records._name), ("res_id", "in", records.ids)],
                ["res_id"],
                ["__count"],
            )
        )

    @api.model
    def _action_for_record(self, record):
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "whatsapp_sidecar.whatsapp_message_action"
        )
        action["domain"] = [("res_model", "=", record._name), ("res_id", "=", record.id)]
        action["context"] = {"create": False}
        return action

    def _queued_notification(self):
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "title": _("WhatsApp"),
                "message": _(
                    "%(count)s message(s) queued: the daemon sends them shortly.",
                    count=len(self),
                ),
                "type": "success",
                "sticky": False,
            },
        }

    def action_cancel(self):
        self.filtered(lambda m: m.state == "queued").write(
            {"state": "cancelled", "cancelled_at": fields.Datetime.now()}
        )

    def action_retry(self):
        retried = self.filtered(lambda m: m.state in ("failed", "cancelled"))
        retried.with_context(whatsapp_retry=True).write(
            {
                "state": "queued",
                "queued_at": fields.Datetime.now(),
                "next_attempt_at": False,
                "claimed_at": False,
                "error_code": False,
                "error_title": False,
                "error_details": False,
                "error_help": False,
            }
        )

    def action_reply(self):
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "name": _("Reply on WhatsApp"),
            "res_model": "whatsapp.send.message",
            "view_mode": "form",
            "target": "new",
            "context": {
                "default_account_id": self.account_id.id,
                "default_conversation_id": self.conversation_id.id,
                "default_partner_id": self.partner_id.id,
                "default_phone_number": self.to_number
                or (f"+{self.wa_id}" if self.wa_id else False),
                "default_reply_to_message_id": self.id,
                "default_message_type": "text",
            },
        }

    def action_open_source(self):
        self.ensure_one()
        return {
            "type": "ir.actions.act_window",
            "res_model": self.res_model,
            "res_id": self.res_id,
            "view_mode": "form",
        }
