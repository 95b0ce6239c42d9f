# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""One WhatsApp Business Cloud API phone number.

The addon only stores the configuration. The whatsapp-sidecar daemon reads it,
fills the read-only fields (quality, limits, check results) and carries out the
requests the buttons write (``check_requested``, ``sync_requested``).

Those requests, and changes of what the daemon's sending and automations read
(``BUS_WAKE_FIELDS``, a cleared ``paused``), are notified on the bus
(``whatsapp_bus``) so the daemon acts on them at once.
"""

import re
import secrets

from odoo import _, api, fields, models
from odoo.addons.base.models.res_partner import _tz_get
from odoo.exceptions import AccessError, UserError, ValidationError

from . import whatsapp_bus

SECRET_GROUPS = "base.group_system,whatsapp_sidecar.group_whatsapp_technical"
BUTTON_SECRET_PARAM = "whatsapp_sidecar.button_secret"

# The daemon's rule for a Graph API version (src/whatsapp/client.rs, is_api_version).
API_VERSION = re.compile(r"v[0-9]+\.[0-9]+")
# One field of a five-field cron schedule, as the daemon's croner reads it (numbers, names,
# * , - / and the L W # ? + modifiers); the daemon checks the whole expression.
CRON_FIELD = re.compile(r"[0-9A-Za-z*,/#?+-]+")
CRON_ALIASES = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@hourly")

# The opt-out confirmation of a new account, translated into every installed language
# (the daemon sends it in the contact's language; see _translate_default_confirmation).
DEFAULT_OPT_OUT_CONFIRMATION = "You will no longer receive WhatsApp messages from us."

# Fields the daemon's outbox and automations read from an account: a change is notified on
# the bus so that it re-reads the account at once (with check_requested, sync_requested and
# a cleared paused). The fields the daemon writes itself (quality, limits, check results,
# paused) are not among them.
BUS_WAKE_FIELDS = frozenset({
    "active",
    "company_id",
    "is_default",
    "phone_number_id",
    "waba_id",
    "access_token",
    "graph_api_version",
    "throughput_mps",
    "auto_send_order_creation",
    "auto_send_invoice_posted",
    "auto_send_residual_change",
    "auto_send_unpaid_invoices",
    "unpaid_reminder_schedule",
    "unpaid_reminder_tz",
})

QUALITY_RATINGS = [
    ("green", "High (green)"),
    ("yellow", "Medium (yellow)"),
    ("red", "Low (red)"),
    ("unknown", "Unknown"),
]


class WhatsappAccount(models.Model):
    _name = "whatsapp.account"
    _description = "WhatsApp Account"
    _inherit = ["mail.thread"]
    _order = "is_default desc, name, id"
    _check_company_auto = True

    name = fields.Char(required=True, tracking=True)
    active = fields.Boolean(default=True, tracking=True)
    company_id = fields.Many2one(
        "res.company",
        required=True,
        index=True,
        default=lambda self: self.env.company,
        tracking=True,
    )
    is_default = fields.Boolean(
        string="Default for the company",
        tracking=True,
        help="The account used for messages that name no account. "
        "A company has at most one default account.",
    )
    phone_number_id = fields.Char(
        string="Phone number ID",
        required=True,
        tracking=True,
        help="The Cloud API phone number ID (WhatsApp Manager > Phone numbers).",
    )
    waba_id = fields.Char(
        string="WhatsApp Business Account ID",
        required=True,
        tracking=True,
    )
    access_token = fields.Char(
        groups=SECRET_GROUPS,
        copy=False,
        help="System-user access token with the whatsapp_business_messaging and "
        "whatsapp_business_management permissions.",
    )
    app_secret = fields.Char(
        groups=SECRET_GROUPS,
        copy=False,
        help="The Meta app secret: it checks the signature of every webhook.",
    )
    verify_token = fields.Char(
        groups=SECRET_GROUPS,
        copy=False,
        help="The token Meta sends back when it verifies the webhook URL.",
    )
    graph_api_version = fields.Char(
        string="Graph API version",
        required=True,
        default="v26.0",
        help="The Graph API version every call for this account uses, e.g. v26.0. "
        "Meta retires old versions: upgrade on purpose.",
    )
    throughput_mps = fields.Integer(
        string="Throughput (messages/s)",
        default=80,
        required=True,
        help="Meta's throughput for this number: 80 by default, 1000 after upgrade.",
    )
    # Filled by the daemon.
    display_phone_number = fields.Char(readonly=True)
    verified_name = fields.Char(readonly=True)
    quality_rating = fields.Selection(QUALITY_RATINGS, readonly=True, tracking=True)
    messaging_limit = fields.Char(
        readonly=True,
        help="Meta's messaging limit tier: unique users reached outside a "
        "customer service window per 24 hours (e.g. TIER_250, TIER_2K).",
    )
    last_check_at = fields.Datetime(readonly=True)
    last_check_ok = fields.Boolean(readonly=True)
    last_check_message = fields.Text(readonly=True)
    last_sync_at = fields.Datetime(string="Last template sync", readonly=True)
    check_requested = fields.Boolean(
        copy=False,
        help="Set by 'Check settings'; the daemon runs the check and clears it.",
    )
    sync_requested = fields.Boolean(
        copy=False,
        help="Set by 'Sync templates'; the daemon syncs and clears it.",
    )
    paused = fields.Boolean(
        copy=False,
        tracking=True,
        help="The daemon stops sending from this account after an account-level "
        "error (expired token, locked account...). Untick once fixed.",
    )
    paused_reason = fields.Text(copy=False)
    paused_at = fields.Datetime(copy=False, readonly=True)
    # Automations.
    auto_send_order_creation = fields.Boolean(
        string="Send new sale orders",
        tracking=True,
        help="The daemon sends each quotation created from now on to its customer (opted "
        "in, with a number) with the buttons Validate, Cancel and Details. Orders "
        "created before the switch was turned on are never sent.",
    )
    order_creation_enabled_at = fields.Datetime(
        string="New orders sent since",
        readonly=True,
        copy=False,
        help="When 'Send new sale orders' was last turned on: only orders created "
        "after it are sent.",
    )
    order_details_pdf = fields.Boolean(
        string="Attach the PDF to order details",
        default=True,
        help="The order details sent on WhatsApp are followed by the order's PDF.",
    )
    auto_send_invoice_posted = fields.Boolean(
        string="Send posted invoices",
        tracking=True,
        help="The daemon sends each customer invoice posted from now on to its customer "
        "(opted in, with a number): its PDF with the number, amount, due date and link. "
        "Invoices posted before the switch was turned on are never sent.",
    )
    invoice_posted_enabled_at = fields.Datetime(
        string="Posted invoices sent since",
        readonly=True,
        copy=False,
        help="When 'Send posted invoices' was last turned on: only invoices posted after "
        "it are sent.",
    )
    invoice_details_pdf = fields.Boolean(
        string="Attach the PDF to invoice details",
        default=True,
        help="The invoice details sent on WhatsApp are followed by the invoice's PDF.",
    )
    auto_send_residual_change = fields.Boolean(
        string="Send residual amount changes",
        tracking=True,
        help="When a payment lowers the amount due of a posted customer invoice, the "
        "daemon tells the customer what was paid and what remains (or thanks them once "
        "it is paid in full).",
    )
    residual_change_min_amount = fields.Float(
        string="Minimum residual change",
        default=0.0,
        help="Changes of the amount due smaller than this are not notified.",
    )
    residual_debounce_minutes = fields.Float(
        string="Merge payments within (minutes)",
        default=10.0,
        help="Payments on one invoice less than this many minutes apart are told in one "
        "message, sent this long after the last of them.",
    )
    auto_send_unpaid_invoices = fields.Boolean(
        string="Send unpaid invoice reminders",
        tracking=True,
        help="On the account's reminder schedule, the daemon reminds each customer of "
        "their posted invoices overdue by the set number of days, at most once per "
        "invoice per reminder interval, until the invoice is paid.",
    )
    unpaid_invoice_days = fields.Integer(
        string="Overdue days before a reminder", default=7
    )
    unpaid_reminder_interval_days = fields.Integer(
        string="Days between reminders", default=7
    )
    unpaid_reminder_schedule = fields.Char(
        string="Reminder schedule",
        default="0 9 * * *",
        required=True,
        help="When the daemon looks for overdue invoices, as a five-field cron expression "
        "(minute hour day-of-month month day-of-week), e.g. 0 9 * * * for every day at "
        "9:00 or 30 8 * * 1-5 for weekdays at 8:30, in the reminder time zone.",
    )
    unpaid_reminder_tz = fields.Selection(
        _tz_get,
        string="Reminder time zone",
        help="The time zone of the reminder schedule and of 'today' for due dates. "
        "Empty: the time zone of the company's address contact, else UTC.",
    )
    template_order_creation_id = fields.Many2one(
        "whatsapp.template",
        string="Template for new orders",
        domain="[('account_id', '=', id), ('status', '=', 'approved')]",
        help="Used outside the 24-hour customer service window. Its first three "
        "quick-reply buttons act as Validate, Cancel and Details, in that order.",
    )
    template_invoice_posted_id = fields.Many2one(
        "whatsapp.template",
        string="Template for posted invoices",
        domain="[('account_id', '=', id), ('status', '=', 'approved')]",
    )
    template_residual_change_id = fields.Many2one(
        "whatsapp.template",
        string="Template for residual changes",
        domain="[('account_id', '=', id), ('status', '=', 'approved')]",
    )
    template_unpaid_invoice_id = fields.Many2one(
        "whatsapp.template",
        string="Template for unpaid reminders",
        domain="[('account_id', '=', id), ('status', '=', 'approved')]",
    )
    template_generic_id = fields.Many2one(
        "whatsapp.template",
        string="Generic template",
        domain="[('account_id', '=', id), ('status', '=', 'approved')]",
        help="Used outside the 24-hour window for any other free-form message.",
    )
    template_document_id = fields.Many2one(
        "whatsapp.template",
        string="Template for documents",
        domain="[('account_id', '=', id), ('status', '=', 'approved'), "
        "('header_type', '=', 'document')]",
        help="Used outside the 24-hour window to send a PDF or file: a template "
        "whose header is a document, which carries the file.",
    )
    default_media_url = fields.Char(
        string="Default media URL",
        help="Public HTTPS URL of an image used when a template header needs one.",
    )
    opt_out_keywords = fields.Char(
        default="STOP,ARRET,ARRÊT,UNSUBSCRIBE",
        help="Comma-separated words; an inbound message equal to one of them "
        "opts the contact out.",
    )
    opt_out_confirmation = fields.Text(
        default=DEFAULT_OPT_OUT_CONFIRMATION,
        translate=True,
        help="Reply sent after an opt-out keyword, in the contact's language "
        "(translate it with the language button).",
    )
    # Inbound messages: who is told that a customer wrote.
    inbound_notification = fields.Selection(
        [
            ("none", "No notification"),
            ("activity", "Activity"),
            ("message", "Discuss message"),
        ],
        string="Notify when a customer writes",
        required=True,
        default="activity",
        help="When a customer writes, the daemon logs a note on the contact (and on "
        "the order or invoice the message answers) and tells the contact's "
        "salesperson, else the responsible below: with a 'Reply on WhatsApp' "
        "activity or a Discuss message, at most once per conversation per hour.",
    )
    responsible_user_id = fields.Many2one(
        "res.users",
        string="Responsible",
        domain=[("share", "=", False)],
        help="Notified when a customer writes and nobody else is (the contact has "
        "no salesperson, or the number is unknown).",
    )
    template_ids = fields.One2many("whatsapp.template", "account_id")
    template_count = fields.Integer(compute="_compute_counts")
    message_count = fields.Integer(compute="_compute_counts")

    _sql_constraints = [
        (
            "one_default_per_company",
            # Deferred to the commit, so that moving the default inside one
            # transaction works in any order; the Python check below gives
            # the friendly message first, this one guards concurrent writes.
            "EXCLUDE (company_id WITH =) WHERE (is_default) "
            "DEFERRABLE INITIALLY DEFERRED",
            "A company can have only one default WhatsApp account: "
            "untick 'Default for the company' on the other account first.",
        ),
        (
            "phone_number_id_uniq",
            "unique(phone_number_id)",
            "Another WhatsApp account already uses this phone number ID.",
        ),
        (
            "throughput_positive",
            "CHECK(throughput_mps > 0)",
            "The throughput must be a positive number of messages per second.",
        ),
    ]

    # Switch → the field that records when it was last turned on.
    _ENABLED_AT = {
        "auto_send_order_creation": "order_creation_enabled_at",
        "auto_send_invoice_posted": "invoice_posted_enabled_at",
    }

    @api.model_create_multi
    def create(self, vals_list):
        now = fields.Datetime.now()
        for vals in vals_list:
            for switch, stamp in self._ENABLED_AT.items():
                if vals.get(switch) and not vals.get(stamp):
                    vals[stamp] = now
        accounts = super().create(vals_list)
        for account, vals in zip(accounts, vals_list):
            if not vals.get("opt_out_confirmation"):
                account._translate_default_confirmation()
        whatsapp_bus.forget_switches(self.env)
        whatsapp_bus.notify_records(accounts.filtered("active"))
        return accounts

    def write(self, vals):
        for switch, stamp in self._ENABLED_AT.items():
            if vals.get(switch) and stamp not in vals:
                # Only the accounts where the switch goes on: the date marks the first
                # document sent.
                turned_on = self.filtered(lambda a, switch=switch: not a[switch])
                if turned_on:
                    super(WhatsappAccount, turned_on).write({stamp: fields.Datetime.now()})
        # "Resume" (or unticking Paused): the outbox sends from these accounts again.
        resumed = self.filtered("paused") if "paused" in vals and not vals["paused"] else None
        result = super().write(vals)
        whatsapp_bus.forget_switches(self.env)
        if (
            vals.get("check_requested")
            or vals.get("sync_requested")
            or BUS_WAKE_FIELDS.intersection(vals)
        ):
            whatsapp_bus.notify_records(self)
        elif resumed:
            whatsapp_bus.notify_records(resumed)
        return result

    def unlink(self):
        result = super().unlink()
        whatsapp_bus.forget_switches(self.env)
        return result

    def _default_opt_out_confirmation(self):
        """The default confirmation in the language of ``self.env.lang``."""
        return _("You will no longer receive WhatsApp messages from us.")

    def _translate_default_confirmation(self):
        """Gives the default opt-out confirmation its translation in every installed
        language that has one, so a customer gets it in their own language."""
        self.ensure_one()
        translations = {}
        for code, _name in self.env["res.lang"].get_installed():
            if code == "en_US":
                continue
            text = self.with_context(lang=code)._default_opt_out_confirmation()
            if text != DEFAULT_OPT_OUT_CONFIRMATION:
                translations[code] = text
        if translations:
            self.update_field_translations("opt_out_confirmation", translations)

    @api.constrains("unpaid_reminder_schedule")
    def _check_unpaid_reminder_schedule(self):
        for account in self:
            schedule = (account.unpaid_reminder_schedule or "").strip()
            parts = schedule.split()
            if schedule.lower() in CRON_ALIASES:
                continue
            if len(parts) != 5 or not all(CRON_FIELD.fullmatch(p) for p in parts):
                raise ValidationError(
                    _(
                        "'%(schedule)s' is not a five-field cron schedule: write minute, "
                        "hour, day of month, month and day of week, e.g. 0 9 * * * for "
                        "every day at 9:00.",
                        schedule=account.unpaid_reminder_schedule or "",
                    )
                )

    @api.constrains("unpaid_invoice_days", "unpaid_reminder_interval_days",
                    "residual_debounce_minutes")
    def _check_reminder_numbers(self):
        for account in self:
            if account.unpaid_invoice_days < 0 or account.residual_debounce_minutes < 0:
                raise ValidationError(
                    _("The overdue days and the minutes to merge payments cannot be "
                      "negative.")
                )
            if account.unpaid_reminder_interval_days < 1:
                raise ValidationError(
                    _("The days between reminders must be at least 1: a customer gets at "
                      "most one reminder per invoice per interval.")
                )

    @api.constrains("graph_api_version")
    def _check_graph_api_version(self):
        for account in self:
            version = (account.graph_api_version or "").strip()
            if len(version) > 16 or not API_VERSION.fullmatch(version):
                raise ValidationError(
                    _(
                        "'%(version)s' is not a Graph API version: write it as Meta "
                        "does, e.g. v26.0.",
                        version=account.graph_api_version or "",
                    )
                )

    @api.constrains("template_document_id")
    def _check_template_document(self):
        for account in self.filtered("template_document_id"):
            template = account.template_document_id
            if template.header_type != "document":
                raise ValidationError(
                    _(
                        "The template %(template)s has no document header, so it "
                        "cannot carry a PDF or file: choose, as 'Template for "
                        "documents' of %(account)s, a template whose header is a "
                        "document.",
                        template=template.display_name,
                        account=account.display_name,
                    )
                )

    @api.constrains("is_default", "company_id")
    def _check_one_default(self):
        Account = self.sudo().with_context(active_test=False)
        for account in self.filtered("is_default"):
            other = Account.search(
                [
                    ("company_id", "=", account.company_id.id),
                    ("is_default", "=", True),
                    ("id", "!=", account.id),
                ],
                limit=1,
            )
            if other:
                raise ValidationError(
                    _(
                        "%(company)s already has a default WhatsApp account "
                        "(%(other)s): untick 'Default for the company' there "
                        "before making %(account)s the default.",
                        company=account.company_id.display_name,
                        other=other.name,
                        account=account.display_name,
                    )
                )

    def _compute_counts(self):
        templates = dict(
            self.env["whatsapp.template"]._read_group(
                [("account_id", "in", self.ids)], ["account_id"], ["__count"]
            )
        )
        messages = dict(
            self.env["whatsapp.message"]._read_group(
                [("account_id", "in", self.ids)], ["account_id"], ["__count"]
            )
        )
        for account in self:
            account.template_count = templates.get(account, 0)
            account.message_count = messages.get(account, 0)

    @api.ondelete(at_uninstall=False)
    def _unlink_except_with_messages(self):
        Message = self.env["whatsapp.message"].sudo().with_context(active_test=False)
        for account in self:
            count = Message.search_count([("account_id", "=", account.id)])
            if count:
                raise UserError(
                    _(
                        "The WhatsApp account %(account)s has %(count)s messages "
                        "and cannot be deleted: archive it instead.",
                        account=account.display_name,
                        count=count,
                    )
                )

    @api.model
    def _get_default_account(self, company=None):
        company = company or self.env.company
        return self.search(
            [("company_id", "=", company.id), ("is_default", "=", True)], limit=1
        )

    @api.model
    def whatsapp_button_secret(self):
        """The per-database secret of the daemon's button payloads (src/buttons.rs).

        Made on first use; only the daemon's technical user (and administrators)
        may read it: whoever has it can forge a customer's "Confirm" press.
        """
        if not (
            self.env.su
            or self.env.user.has_group("whatsapp_sidecar.group_whatsapp_technical")
            or self.env.user.has_group("base.group_system")
        ):
            raise AccessError(
                _("Only the WhatsApp Sidecar daemon's technical user may read the "
                  "button secret.")
            )
        params = self.env["ir.config_parameter"].sudo()
        value = params.get_param(BUTTON_SECRET_PARAM)
        if not value or len(value) < 32:
            value = secrets.token_hex(32)
            params.set_param(BUTTON_SECRET_PARAM, value)
        return value

    def action_check_settings(self):
        self.write({"check_requested": True})
        return self._notify(
            _("Check requested"),
            _("The whatsapp-sidecar daemon will check the settings shortly."),
        )

    def action_sync_templates(self):
        self.write({"sync_requested": True})
        return self._notify(
            _("Template sync requested"),
            _("The whatsapp-sidecar daemon will sync the templates shortly."),
        )

    def action_resume(self):
        self.write({"paused": False, "paused_reason": False, "paused_at": False})

    def action_view_templates(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "whatsapp_sidecar.whatsapp_template_action"
        )
        action["domain"] = [("account_id", "=", self.id)]
        action["context"] = {"default_account_id": self.id}
        return action

    def action_view_messages(self):
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "whatsapp_sidecar.whatsapp_message_action"
        )
        action["domain"] = [("account_id", "=", self.id)]
        action["context"] = {"default_account_id": self.id}
        return action

    def _notify(self, title, message):
        return {
            "type": "ir.actions.client",
            "tag": "display_notification",
            "params": {
                "title": title,
                "message": message,
                "type": "info",
                "sticky": False,
                "next": {"type": "ir.actions.client", "tag": "soft_reload"},
            },
        }
