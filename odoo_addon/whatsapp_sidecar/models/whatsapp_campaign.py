# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""Campaigns: an audience of opted-in contacts, drip steps and a queue.

The buttons only change the state or set ``queue_requested``; the daemon
streams the audience into ``whatsapp.campaign.recipient`` lines, turns due
steps into queued messages, honours the send window, throttle and daily cap,
and writes the KPI fields while the campaign runs.

A campaign started, scheduled, paused, resumed or cancelled, or whose queue is
requested, is notified on the bus (``whatsapp_bus``): the daemon's campaign
runner acts on it at once.
"""

import re

from odoo import _, api, fields, models
from odoo.exceptions import UserError, ValidationError
from odoo.tools.safe_eval import safe_eval

from . import whatsapp_bus
from .whatsapp_message import MESSAGE_TYPES

CAMPAIGN_STATES = [
    ("draft", "Draft"),
    ("scheduled", "Scheduled"),
    ("running", "Running"),
    ("paused", "Paused"),
    ("done", "Done"),
    ("cancelled", "Cancelled"),
]

RECIPIENT_STATES = [
    ("pending", "Pending"),
    ("queued", "Queued"),
    ("sent", "Sent"),
    ("delivered", "Delivered"),
    ("read", "Read"),
    ("replied", "Replied"),
    ("failed", "Failed"),
    ("skipped", "Skipped"),
    ("opted_out", "Opted out"),
]

STEP_TYPES = [
    (value, label)
    for value, label in MESSAGE_TYPES
    if value in ("text", "template", "image", "document", "interactive")
]

# The states the daemon's campaign runner acts on when a campaign enters them.
BUS_WAKE_STATES = ("scheduled", "running", "paused", "cancelled")

# The same grammar as the daemon (src/outbox/limit.rs, tier_limit).
_TIER_RE = re.compile(r"(?:TIER_)?(\d+)(K?)", re.IGNORECASE)


def tier_limit(messaging_limit):
    """Unique users per 24 h for a tier such as TIER_250 or TIER_2K (None: unknown
    or unlimited)."""
    if not messaging_limit or "UNLIMITED" in messaging_limit.upper():
        return None
    match = _TIER_RE.fullmatch(messaging_limit.strip())
    if not match:
        return None
    return int(match.group(1)) * (1000 if match.group(2) else 1) or None


class WhatsappCampaign(models.Model):
    _name = "whatsapp.campaign"
    _description = "WhatsApp Campaign"
    _inherit = ["mail.thread", "mail.activity.mixin"]
    _order = "id desc"
    _check_company_auto = True

    name = fields.Char(required=True, tracking=True)
    active = fields.Boolean(default=True)
    company_id = fields.Many2one(
        "res.company", required=True, index=True, default=lambda self: self.env.company
    )
    account_id = fields.Many2one(
        "whatsapp.account",
        ondelete="restrict",
        check_company=True,
        tracking=True,
        default=lambda self: self.env["whatsapp.account"]._get_default_account(),
    )
    state = fields.Selection(
        CAMPAIGN_STATES,
        required=True,
        default="draft",
        index=True,
        copy=False,
        tracking=True,
    )
    user_id = fields.Many2one(
        "res.users", string="Responsible", default=lambda self: self.env.user
    )
    # Audience: opted-in contacts only, always.
    partner_domain = fields.Char(
        string="Audience filter",
        default="[]",
        help="Contacts matching this filter and the tags; only opted-in "
        "contacts with a number are ever reached.",
    )
    partner_category_ids = fields.Many2many(
        "res.partner.category", string="Contact tags"
    )
    # Schedule, send window, pacing.
    scheduled_at = fields.Datetime(
        string="Start at", tracking=True, help="Empty: starts as soon as started."
    )
    send_window_start = fields.Float(
        default=9.0, help="Hour of the day (recipient's time zone) from which to send."
    )
    send_window_end = fields.Float(default=19.0, help="Hour of the day to stop at.")
    send_on_weekends = fields.Boolean(default=False)
    timezone_rule = fields.Selection(
        [
            ("recipient", "Recipient's time zone (else the company's)"),
            ("company", "Company's time zone"),
        ],
        required=True,
        default="recipient",
    )
    throttle_per_minute = fields.Integer(
        default=60, help="At most this many messages per minute for this campaign."
    )
    daily_cap = fields.Integer(
        default=1000, help="At most this many messages per day (0: no cap)."
    )
    started_at = fields.Datetime(readonly=True, copy=False)
    finished_at = fields.Datetime(readonly=True, copy=False)
    paused_reason = fields.Text(
        copy=False, help="Why the campaign was paused (filled by the daemon when it "
        "pauses itself on a paused template, a red quality rating or a spam limit)."
    )
    queue_requested = fields.Boolean(
        copy=False, help="Set by 'Generate queue'; the daemon builds it and clears it."
    )
    queue_generated_at = fields.Datetime(readonly=True, copy=False)
    queue_message = fields.Text(
        string="Queue result", readonly=True, copy=False,
        help="What the last queue generation did (written by the daemon), or why it "
        "could not.",
    )
    auto_resume_at = fields.Datetime(
        string="Resumes at", readonly=True, copy=False,
        help="Set by the daemon when it pauses the campaign because the number's daily "
        "messaging limit is used up: it resumes the campaign at this time.",
    )
    step_ids = fields.One2many("whatsapp.campaign.step", "campaign_id", copy=True)
    recipient_ids = fields.One2many("whatsapp.campaign.recipient", "campaign_id")
    whatsapp_message_ids = fields.One2many(
        "whatsapp.message", "campaign_id", string="WhatsApp messages"
    )
    # KPIs written by the daemon.
    kpi_recipients = fields.Integer(string="Recipients", readonly=True, copy=False)
    kpi_sent = fields.Integer(string="Sent", readonly=True, copy=False)
    kpi_delivered = fields.Integer(string="Delivered", readonly=True, copy=False)
    kpi_read = fields.Integer(string="Read", readonly=True, copy=False)
    kpi_replied = fields.Integer(string="Replied", readonly=True, copy=False)
    kpi_failed = fields.Integer(string="Failed", readonly=True, copy=False)
    kpi_opted_out = fields.Integer(string="Opted out", readonly=True, copy=False)
    kpi_updated_at = fields.Datetime(string="KPIs updated", readonly=True, copy=False)
    delivered_rate = fields.Float(string="Delivered (%)", compute="_compute_rates")
    read_rate = fields.Float(string="Read (%)", compute="_compute_rates")
    reply_rate = fields.Float(string="Replied (%)", compute="_compute_rates")
    # Capacity preview.
    preview_recipient_count = fields.Integer(
        string="Recipients (preview)", compute="_compute_preview"
    )
    preview_duration_hours = fields.Float(
        string="Estimated duration (hours)", compute="_compute_preview"
    )
    preview_warning = fields.Text(compute="_compute_preview")
    recipient_count = fields.Integer(compute="_compute_counts")
    message_count = fields.Integer(compute="_compute_counts")

    @api.constrains("send_window_start", "send_window_end")
    def _check_window(self):
        for campaign in self:
            start, end = campaign.send_window_start, campaign.send_window_end
            if not (0 <= start <= 24 and 0 <= end <= 24) or start == end:
                raise ValidationError(
                    _("The send window of campaign %(name)s must be two different hours "
                      "between 0:00 and 24:00 (a start after the end runs across midnight, "
                      "e.g. 22:00 to 02:00).", name=campaign.name)
                )

    @api.constrains("throttle_per_minute", "daily_cap")
    def _check_pacing(self):
        for campaign in self:
            if campaign.throttle_per_minute <= 0:
                raise ValidationError(
                    _("The throttle of campaign %(name)s must be at least one "
                      "message per minute.", name=campaign.name)
                )
            if campaign.daily_cap < 0:
                raise ValidationError(
                    _("The daily cap cannot be negative (0 means no cap).")
                )

    @api.constrains("partner_domain")
    def _check_partner_domain(self):
        for campaign in self:
            campaign._audience_domain()

    @api.depends("kpi_sent", "kpi_delivered", "kpi_read", "kpi_replied")
    def _compute_rates(self):
        for campaign in self:
            sent = campaign.kpi_sent or 0
            campaign.delivered_rate = 100.0 * campaign.kpi_delivered / sent if sent else 0.0
            campaign.read_rate = 100.0 * campaign.kpi_read / sent if sent else 0.0
            campaign.reply_rate = 100.0 * campaign.kpi_replied / sent if sent else 0.0

    def _audience_domain(self):
        """The partner domain of the audience: filter, tags, opted in, a number."""
        self.ensure_one()
        try:
            domain = safe_eval(self.partner_domain or "[]")
        except Exception as exc:
            raise ValidationError(
                _("The audience filter of campaign %(name)s is not a valid domain "
                  "(%(error)s).", name=self.name, error=exc)
            ) from exc
        if not isinstance(domain, list):
            raise ValidationError(
                _("The audience filter of campaign %(name)s must be a list, e.g. "
                  "[('country_id.code', '=', 'CI')].", name=self.name)
            )
        domain = list(domain) + [
            ("whatsapp_opt_in", "=", True),
            "|", "|",
            ("whatsapp_number_e164", "!=", False),
            ("mobile", "!=", False),
            ("phone", "!=", False),
        ]
        if self.partner_category_ids:
            domain.append(("category_id", "in", self.partner_category_ids.ids))
        return domain

    @api.depends(
        "partner_domain", "partner_category_ids", "throttle_per_minute",
        "daily_cap", "step_ids", "account_id.messaging_limit",
        "account_id.throughput_mps", "send_window_start", "send_window_end",
        "queue_generated_at",
    )
    def _compute_preview(self):
        # As the daemon does (src/campaigns): once the queue is generated, its recipients
        # still to reach (E.164 and one per number already applied); before, the opted-in
        # contacts with a number. The pace is the throttle, never above the number's
        # throughput, inside the send window, within the daily cap.
        Partner = self.env["res.partner"]
        Recipient = self.env["whatsapp.campaign.recipient"]
        for campaign in self:
            try:
                if campaign.queue_generated_at and campaign._origin.id:
                    count = Recipient.search_count([
                        ("campaign_id", "=", campaign._origin.id),
                        ("state", "not in", ("skipped",)),
                    ])
                else:
                    count = Partner.search_count(campaign._audience_domain())
            except (ValidationError, ValueError):
                campaign.preview_recipient_count = 0
                campaign.preview_duration_hours = 0.0
                campaign.preview_warning = _("The audience filter is not valid.")
                continue
            messages = count * max(len(campaign.step_ids), 1)
            per_hour = campaign.throttle_per_minute * 60 or 1
            if campaign.account_id.throughput_mps:
                per_hour = min(per_hour, campaign.account_id.throughput_mps * 3600)
            start, end = campaign.send_window_start, campaign.send_window_end
            window = (end - start) if end > start else (24 - start + end)
            window = max(window, 0.5)
            per_day = per_hour * window
            if campaign.daily_cap:
                per_day = min(campaign.daily_cap, per_day)
            hours = messages / per_hour
            if messages > per_day:
                hours = (messages // per_day) * 24 + (messages % per_day) / per_hour
            warnings = []
            limit = tier_limit(campaign.account_id.messaging_limit)
            if limit and count > limit:
                warnings.append(
                    _("%(count)s recipients exceed the account's messaging limit of "
                      "%(limit)s unique users per 24 hours: the rest will wait.",
                      count=count, limit=limit)
                )
            if campaign.daily_cap and count > campaign.daily_cap:
                warnings.append(
                    _("The daily cap (%(cap)s) spreads the first step over %(days)s "
                      "days.", cap=campaign.daily_cap,
                      days=-(-count // campaign.daily_cap))
                )
            if not campaign.account_id:
                warnings.append(_("No WhatsApp account: set one before starting."))
            campaign.preview_recipient_count = count
            campaign.preview_duration_hours = round(hours, 2)
            campaign.preview_warning = "\n".join(warnings) or False

    def _compute_counts(self):
        recipients = dict(
            self.env["whatsapp.campaign.recipient"]._read_group(
                [("campaign_id", "in", self.ids)], ["campaign_id"], ["__count"]
            )
        )
        messages = dict(
            self.env["whatsapp.message"]._read_group(
                [("campaign_id", "in", self.ids)], ["campaign_id"], ["__count"]
            )
        )
        for campaign in self:
            campaign.recipient_count = recipients.get(campaign, 0)
            campaign.message_count = messages.get(campaign, 0)

    def write(self, vals):
        result = super().write(vals)
        if vals.get("queue_requested") or vals.get("state") in BUS_WAKE_STATES:
            whatsapp_bus.notify_records(self)
        return result

    def _check_startable(self):
        for campaign in self:
            if not campaign.account_id:
                raise UserError(
                    _("Campaign %(name)s has no WhatsApp account: choose one.",
                      name=campaign.name)
                )
            if not campaign.step_ids:
                raise UserError(
                    _("Campaign %(name)s has no step: add at least one message to "
                      "send.", name=campaign.name)
                )

    def action_generate_queue(self):
        for campaign in self:
            if campaign.state not in ("draft", "scheduled", "paused"):
                raise UserError(
                    _("The queue of campaign %(name)s can only be generated while "
                      "it is draft, scheduled or paused.", name=campaign.name)
                )
        self._check_startable()
        self.write({"queue_requested": True})

    def action_start(self):
        for campaign in self:
            if campaign.state not in ("draft", "scheduled"):
                raise UserError(
                    _("Campaign %(name)s is %(state)s: only a draft or scheduled "
                      "campaign can be started.", name=campaign.name,
                      state=dict(CAMPAIGN_STATES)[campaign.state])
                )
        self._check_startable()
        now = fields.Datetime.now()
        for campaign in self:
            if campaign.scheduled_at and campaign.scheduled_at > now:
                campaign.write({"state": "scheduled"})
            else:
                campaign.write({"state": "running", "started_at": now})

    def action_pause(self):
        for campaign in self:
            if campaign.state not in ("scheduled", "running"):
                raise UserError(
                    _("Only a scheduled or running campaign can be paused."))
        self.write({"state": "paused"})

    def action_resume(self):
        for campaign in self:
            if campaign.state != "paused":
                raise UserError(_("Only a paused campaign can be resumed."))
        self._check_startable()
        self.write({"state": "running", "paused_reason": False})

    def action_cancel(self):
        for campaign in self:
            if campaign.state in ("done", "cancelled"):
                raise UserError(
                    _("Campaign %(name)s is already finished.", name=campaign.name))
        self.write({"state": "cancelled", "finished_at": fields.Datetime.now()})

    def action_draft(self):
        for campaign in self:
            if campaign.state != "cancelled":
                raise UserError(_("Only a cancelled campaign can be reset to draft."))
        self.write({"state": "draft", "finished_at": False, "queue_requested": False})

    def action_view_recipients(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "whatsapp_sidecar.whatsapp_campaign_recipient_action"
        )
        action["domain"] = [("campaign_id", "=", self.id)]
        action["context"] = {"default_campaign_id": self.id}
        return action

    def action_view_messages(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "whatsapp_sidecar.whatsapp_message_action"
        )
        action["domain"] = [("campaign_id", "=", self.id)]
        action["context"] = {"create": False}
        return action


class WhatsappCampaignStep(models.Model):
    _name = "whatsapp.campaign.step"
    _description = "WhatsApp Campaign Step"
    _order = "campaign_id, sequence, id"

    campaign_id = fields.Many2one(
        "whatsapp.campaign", required=True, ondelete="cascade", index=True
    )
    company_id = fields.Many2one(related="campaign_id.company_id", store=True)
    sequence = fields.Integer(default=10)
    name = fields.Char(required=True)
    delay_hours = fields.Float(
        string="Delay (hours)",
        default=0.0,
        help="Hours after the previous step (after the start for the first one).",
    )
    condition = fields.Selection(
        [
            ("always", "Always"),
            ("not_read", "Previous message not read"),
            ("not_replied", "No reply yet"),
            ("read_not_replied", "Read but no reply"),
        ],
        required=True,
        default="always",
    )
    message_type = fields.Selection(STEP_TYPES, required=True, default="template")
    template_id = fields.Many2one("whatsapp.template", ondelete="restrict")
    body = fields.Text()
    media_url = fields.Char(string="Media URL")
    media_attachment_id = fields.Many2one("ir.attachment", ondelete="restrict")
    scenario_id = fields.Many2one(
        "whatsapp.interactive.scenario",
        ondelete="restrict",
        help="For interactive steps: the menu to send.",
    )

    @api.constrains("message_type", "template_id", "body", "media_url",
                    "media_attachment_id", "scenario_id", "delay_hours")
    def _check_content(self):
        for step in self:
            if step.delay_hours < 0:
                raise ValidationError(_("A step delay cannot be negative."))
            missing = {
                "template": not step.template_id and _("a template"),
                "text": not step.body and _("a text"),
                "image": not (step.media_url or step.media_attachment_id)
                and _("an image (URL or file)"),
                "document": not (step.media_url or step.media_attachment_id)
                and _("a document (URL or file)"),
                "interactive": not step.scenario_id and _("an interactive scenario"),
            }.get(step.message_type)
            if missing:
                raise ValidationError(
                    _("Step %(name)s needs %(what)s.", name=step.name, what=missing)
                )


class WhatsappCampaignRecipient(models.Model):
    _name = "whatsapp.campaign.recipient"
    _description = "WhatsApp Campaign Recipient"
    _order = "campaign_id, next_due_at, id"
    _rec_name = "partner_id"

    campaign_id = fields.Many2one(
        "whatsapp.campaign", required=True, ondelete="cascade", index=True
    )
    company_id = fields.Many2one(
        related="campaign_id.company_id", store=True, index=True
    )
    partner_id = fields.Many2one(
        "res.partner", required=True, index=True, ondelete="cascade"
    )
    phone_number = fields.Char()
    to_e164 = fields.Char(string="E.164 number")
    current_step_id = fields.Many2one("whatsapp.campaign.step", ondelete="set null")
    next_due_at = fields.Datetime(index=True)
    state = fields.Selection(
        RECIPIENT_STATES, required=True, default="pending", index=True
    )
    last_message_id = fields.Many2one("whatsapp.message", ondelete="set null")
    message_ids = fields.One2many("whatsapp.message", "campaign_recipient_id")
    replied_at = fields.Datetime()
    error_message = fields.Text()

    _sql_constraints = [
        (
            "campaign_partner_uniq",
            "unique(campaign_id, partner_id)",
            "A contact is in a campaign's queue only once.",
        ),
    ]
