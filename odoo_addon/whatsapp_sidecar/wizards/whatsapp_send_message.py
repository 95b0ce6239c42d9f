# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""The composer: one recipient, any message type, with a preview.

Sending only creates a queued ``whatsapp.message``; the daemon sends it. Before
Send, the composer tells what the daemon will do with it, decided as the
daemon's gates decide (``src/outbox/gate.rs``, ``gate()``): a contact who opted
out, or who never opted in and has not written in the last 24 hours, is refused
here already; outside the customer's 24-hour window a free-form message is
replaced by the account's template for it (its generic template, or its
document template for a PDF or file), which the composer names and previews, or
refuses with the setting to fill when there is none. A template chosen here is
never replaced.
"""

import json
import re

from odoo import _, api, fields, models
from odoo.exceptions import UserError, ValidationError

from ..models.whatsapp_interactive_scenario import build_interactive, check_interactive
from ..models.whatsapp_message import check_phone_number, e164_digits

COMPOSER_TYPES = [
    ("text", "Text"),
    ("template", "Template"),
    ("image", "Image"),
    ("document", "Document"),
    ("interactive", "Interactive (buttons or list)"),
]

_PLACEHOLDER = re.compile(r"{{\s*([\w]+)\s*}}")


def render_placeholders(text, values):
    """Replace {{name}} in ``text`` by ``values[name]`` (kept when unknown)."""
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1)) or m.group(0), text or "")


class WhatsappSendMessage(models.TransientModel):
    _name = "whatsapp.send.message"
    _description = "Send a WhatsApp message"

    account_id = fields.Many2one(
        "whatsapp.account",
        required=True,
        default=lambda self: self.env["whatsapp.account"]._get_default_account(),
        domain="[('company_id', 'in', allowed_company_ids)]",
    )
    partner_id = fields.Many2one("res.partner", string="Contact")
    phone_number = fields.Char(
        compute="_compute_phone_number",
        store=True,
        readonly=False,
        help="International format, e.g. +2250700000001.",
    )
    conversation_id = fields.Many2one("whatsapp.conversation")
    reply_to_message_id = fields.Many2one("whatsapp.message", string="Reply to")
    message_type = fields.Selection(COMPOSER_TYPES, required=True, default="text")
    body = fields.Text(
        compute="_compute_body",
        store=True,
        readonly=False,
        help="The text, or the caption of an image or document.",
    )
    template_id = fields.Many2one(
        "whatsapp.template",
        domain="[('account_id', '=', account_id), ('status', '=', 'approved')]",
    )
    template_body_text = fields.Text(related="template_id.body_text")
    template_header_type = fields.Selection(related="template_id.header_type")
    param_ids = fields.One2many(
        "whatsapp.send.message.param",
        "wizard_id",
        string="Template parameters",
        compute="_compute_param_ids",
        store=True,
        readonly=False,
    )
    media_source = fields.Selection(
        [("upload", "Upload a file"), ("url", "Give a public link")],
        string="File from",
        compute="_compute_media_source",
        store=True,
        readonly=False,
    )
    media_file = fields.Binary(string="File", attachment=False)
    media_filename = fields.Char(string="File name")
    media_url = fields.Char(string="Media URL", help="Public HTTPS URL of the file.")
    res_model = fields.Char(string="Document model")
    res_id = fields.Integer(string="Document ID")
    report_name = fields.Char(help="The report that renders the document's PDF.")
    use_report = fields.Boolean(
        string="Attach the document's PDF",
        default=True,
        help="Send the PDF of the document this message is about.",
    )
    report_applies = fields.Boolean(compute="_compute_report_applies")
    record_reference = fields.Char(
        string="Document", compute="_compute_record_reference"
    )
    scenario_id = fields.Many2one(
        "whatsapp.interactive.scenario",
        string="Start from scenario",
        help="Copies the scenario's menu; the scenario handles the replies.",
    )
    interaction_type = fields.Selection(
        [("buttons", "Reply buttons (up to 3)"), ("list", "List (up to 10 rows)")],
        compute="_compute_interaction_type",
        store=True,
        readonly=False,
    )
    # One compute per field: a value given for one of them at creation must
    # not stop the others from being computed.
    header_text = fields.Char(compute="_compute_header_text", store=True, readonly=False)
    footer_text = fields.Char(compute="_compute_footer_text", store=True, readonly=False)
    list_button_label = fields.Char(
        compute="_compute_list_button_label", store=True, readonly=False
    )
    option_ids = fields.One2many(
        "whatsapp.send.message.option",
        "wizard_id",
        string="Options",
        compute="_compute_option_ids",
        store=True,
        readonly=False,
    )
    preview = fields.Text(compute="_compute_preview")
    warning = fields.Text(compute="_compute_warning")
    # What the daemon will do with the message (see _send_plan).
    window_open = fields.Boolean(
        string="24-hour window open",
        compute="_compute_send_plan",
        help="The customer wrote to this account in the last 24 hours: any message "
        "can be sent. Outside the window WhatsApp accepts only approved templates.",
    )
    window_template_id = fields.Many2one(
        "whatsapp.template",
        string="Sent instead",
        compute="_compute_send_plan",
        help="Outside the 24-hour window, the account's template sent in place of "
        "this free-form message.",
    )
    window_notice = fields.Text(compute="_compute_send_plan")
    send_refusal = fields.Text(compute="_compute_send_plan")

    # ------------------------------------------------------------------
    # Opening
    # ------------------------------------------------------------------
    @api.model
    def _action_open(self, partner, record=None, message_type="text",
                     report_name=False, body=False):
        """The action opening the composer pre-filled for ``record``."""
        context = {
            "default_partner_id": partner.id,
            "default_message_type": message_type,
            "default_report_name": report_name,
            "default_body": body,
        }
        if record:
            context.update(default_res_model=record._name, default_res_id=record.id)
            company = record._fields.get("company_id") and record.company_id
            account = self.env["whatsapp.account"]._get_default_account(
                company or self.env.company
            )
            if account:
                context["default_account_id"] = account.id
        return {
            "type": "ir.actions.act_window",
            "name": _("Send WhatsApp"),
            "res_model": self._name,
            "view_mode": "form",
            "target": "new",
            "context": context,
        }

    # ------------------------------------------------------------------
    # Computes
    # ------------------------------------------------------------------
    @api.depends("partner_id")
    def _compute_phone_number(self):
        for wizard in self:
            if wizard.partner_id:
                wizard.phone_number = wizard.partner_id._whatsapp_number()

    def _target_record(self):
        """The record template variables are read from."""
        self.ensure_one()
        if self.res_model and self.res_id and self.res_model in self.env:
            return self.env[self.res_model].browse(self.res_id).exists()
        return self.partner_id

    @api.depends("res_model", "res_id")
    def _compute_record_reference(self):
        for wizard in self:
            record = (
                wizard._target_record() if wizard.res_model else self.env["res.partner"]
            )
            wizard.record_reference = record.display_name if record else False

    @api.depends("template_id")
    def _compute_param_ids(self):
        for wizard in self:
            commands = [fields.Command.clear()]
            if wizard.template_id:
                record = wizard._target_record()
                for variable in wizard.template_id.variable_ids.sorted(
                    lambda v: (v.component, v.sequence, v.id)
                ):
                    commands.append(
                        fields.Command.create(
                            {
                                "variable_id": variable.id,
                                "component": variable.component,
                                "name": variable.name,
                                "button_index": variable.button_index,
                                "value": variable._value_for(record),
                            }
                        )
                    )
            wizard.param_ids = commands

    @api.depends("media_url", "media_file")
    def _compute_media_source(self):
        for wizard in self:
            if not wizard.media_source:
                wizard.media_source = (
                    "url" if wizard.media_url and not wizard.media_file else "upload"
                )

    @api.depends("report_name", "res_model", "res_id", "message_type",
                 "template_header_type")
    def _compute_report_applies(self):
        for wizard in self:
            wizard.report_applies = bool(
                wizard.report_name and wizard.res_model and wizard.res_id
                and (
                    wizard.message_type == "document"
                    or (wizard.message_type == "template"
                        and wizard.template_header_type == "document")
                )
            )

    @api.depends("scenario_id")
    def _compute_interaction_type(self):
        for wizard in self:
            if wizard.scenario_id:
                wizard.interaction_type = wizard.scenario_id.interaction_type
            elif not wizard.interaction_type:
                wizard.interaction_type = "buttons"

    @api.depends("scenario_id")
    def _compute_header_text(self):
        for wizard in self.filtered("scenario_id"):
            wizard.header_text = wizard.scenario_id.header_text

    @api.depends("scenario_id")
    def _compute_footer_text(self):
        for wizard in self.filtered("scenario_id"):
            wizard.footer_text = wizard.scenario_id.footer_text

    @api.depends("scenario_id")
    def _compute_list_button_label(self):
        for wizard in self.filtered("scenario_id"):
            wizard.list_button_label = wizard.scenario_id.list_button_label

    @api.depends("scenario_id")
    def _compute_option_ids(self):
        for wizard in self.filtered("scenario_id"):
            wizard.option_ids = [fields.Command.clear()] + [
                fields.Command.create(
                    {
                        "sequence": option.sequence,
                        "button_id": option.button_id,
                        "title": option.title,
                        "description": option.description,
                        "section_title": option.section_title,
                    }
                )
                for option in wizard.scenario_id.option_ids.sorted(
                    lambda o: (o.sequence, o.id)
                )
            ]

    @api.depends("scenario_id")
    def _compute_body(self):
        for wizard in self.filtered("scenario_id"):
            wizard.body = wizard.scenario_id.body

    @api.depends(
        "message_type", "body", "template_id", "param_ids.value", "media_filename",
        "media_url", "media_source", "use_report", "report_applies", "header_text",
        "footer_text", "option_ids.title", "record_reference", "window_template_id",
    )
    def _compute_preview(self):
        for wizard in self:
            wizard.preview = wizard._preview_text()

    def _template_preview(self, template, values, header_values):
        """The text of ``template`` with its parameters replaced."""
        parts = []
        header = template.header_type
        if header == "text":
            parts.append(render_placeholders(template.header_text, header_values))
        elif header and header != "none":
            label = dict(template._fields["header_type"]._description_selection(self.env))[
                header
            ]
            name = self._file_description() if header != "location" else False
            parts.append(f"[{label}: {name}]" if name else f"[{label}]")
        parts.append(render_placeholders(template.body_text, values))
        if template.footer_text:
            parts.append(template.footer_text)
        try:
            buttons = json.loads(template.buttons_json or "[]")
        except ValueError:
            buttons = []
        titles = [str(b.get("text", "")) for b in buttons if isinstance(b, dict)]
        if titles:
            parts.append("  ".join(f"[ {t} ]" for t in titles))
        return "\n".join(p for p in parts if p)

    def _file_description(self):
        """The file the message carries, in words (False: none)."""
        self.ensure_one()
        if self.report_applies and self.use_report:
            return _("PDF of %(record)s", record=self.record_reference or "")
        if self.media_source == "url":
            return self.media_url or False
        if self.media_file or self.media_filename:
            return self.media_filename or _("your file")
        return False

    def _preview_text(self):
        """What the customer receives: outside the 24-hour window, the template
        sent in place of a free-form message."""
        self.ensure_one()
        kind = self.message_type
        if kind != "template" and self.window_template_id:
            params, header = self.window_template_id._resolve_params(
                self._target_record()
            )
            values = {p["name"]: p["value"] for p in params["body"]}
            header_values = {p["name"]: p["value"] for p in header}
            return self._template_preview(self.window_template_id, values, header_values)
        if kind == "text":
            return self.body or ""
        if kind == "template":
            if not self.template_id:
                return ""
            values = {p.name: p.value for p in self.param_ids if p.component == "body"}
            header_values = {
                p.name: p.value for p in self.param_ids if p.component == "header"
            }
            return self._template_preview(self.template_id, values, header_values)
        if kind in ("image", "document"):
            label = _("Image") if kind == "image" else _("Document")
            name = self._file_description()
            head = f"[{label}: {name}]" if name else f"[{label}]"
            return f"{head}\n{self.body}" if self.body else head
        if kind == "interactive":
            parts = [self.header_text, self.body, self.footer_text]
            titles = [o.title for o in self.option_ids if o.title]
            if self.interaction_type == "list":
                parts.append(f"[≡ {self.list_button_label or ''}]")
                parts.extend(f"  • {t}" for t in titles)
            else:
                parts.append("  ".join(f"[ {t} ]" for t in titles))
            return "\n".join(p for p in parts if p)
        return ""

    @api.depends("partner_id", "phone_number", "conversation_id", "account_id")
    def _compute_warning(self):
        for wizard in self:
            notes = []
            consent = wizard._consent_refusal(wizard._window_conversation())
            if consent:
                notes.append(consent)
            if wizard.account_id.paused:
                notes.append(
                    _("The account %(account)s is paused: %(reason)s",
                      account=wizard.account_id.display_name,
                      reason=wizard.account_id.paused_reason or "")
                )
            wizard.warning = "\n".join(notes) or False

    @api.depends(
        "partner_id", "phone_number", "conversation_id", "account_id", "message_type",
        "res_model", "res_id", "report_applies", "use_report", "media_source",
        "media_file", "media_url", "media_filename",
    )
    def _compute_send_plan(self):
        for wizard in self:
            plan = wizard._send_plan()
            wizard.window_open = plan["window_open"]
            wizard.window_template_id = plan["template"]
            wizard.window_notice = plan["notice"]
            wizard.send_refusal = plan["refusal"]

    # ------------------------------------------------------------------
    # What the daemon will do (src/outbox/gate.rs, gate())
    # ------------------------------------------------------------------
    def _window_conversation(self):
        """The conversation whose 24-hour window counts, found as the daemon
        finds it: the composer's own (if of this account), else the account's
        conversation with this number, else (a number not in international
        format) the account's conversation with the contact."""
        self.ensure_one()
        Conversation = self.env["whatsapp.conversation"]
        if not self.account_id:
            return Conversation
        if self.conversation_id.account_id == self.account_id:
            return self.conversation_id
        domain = [("account_id", "=", self.account_id.id)]
        digits = e164_digits(self.phone_number)
        if digits:
            domain.append(("wa_id", "=", digits))
        elif self.partner_id:
            domain.append(("partner_id", "=", self.partner_id.id))
        else:
            return Conversation
        return Conversation.search(domain, order="last_inbound_at desc, id desc", limit=1)

    def _who(self):
        return self.partner_id.display_name or self.phone_number or _("The customer")

    def _consent_refusal(self, conversation):
        """Why the daemon's consent gate will refuse the message, or False."""
        self.ensure_one()
        partner = self.partner_id
        if partner.whatsapp_opt_in or not (partner or self.phone_number):
            return False
        if partner.whatsapp_opt_out_date:
            return _(
                "%(partner)s opted out of WhatsApp messages: nothing can be sent to "
                "them, whether or not they wrote to you, until they agree again and "
                "'WhatsApp opt-in' is ticked on the contact.",
                partner=partner.display_name,
            )
        if conversation.window_open:
            return False
        if partner:
            return _(
                "%(partner)s has not opted in to WhatsApp messages and has not written "
                "to you in the last 24 hours, so the message would be refused: tick "
                "'WhatsApp opt-in' on the contact once they agreed.",
                partner=partner.display_name,
            )
        return _(
            "%(number)s is not linked to a contact, so there is no WhatsApp opt-in to "
            "check, and this number has not written to you in the last 24 hours: "
            "choose the contact (with 'WhatsApp opt-in' ticked) instead of typing the "
            "number.",
            number=self.phone_number,
        )

    def _window_setting(self):
        """The account field whose template replaces this free-form message
        outside the 24-hour window (the composer's messages are manual)."""
        self.ensure_one()
        name = (
            "template_document_id" if self.message_type == "document"
            else "template_generic_id"
        )
        field = self.env["whatsapp.account"]._fields[name]
        return self.account_id[name], field.get_description(self.env)["string"]

    def _message_has_file(self):
        self.ensure_one()
        if self.report_applies and self.use_report:
            return True
        if self.media_source == "url":
            return bool(self.media_url)
        return bool(self.media_file)

    def _send_plan(self):
        """What the daemon will do with this message, as a dict:

        * ``window_open``: the customer wrote to the account in the last 24 hours;
        * ``consent``: why the message will be refused for consent, or False;
        * ``template``: outside the window, the account's template that is sent
          in place of this free-form message (empty: none, or unusable);
        * ``notice``: what the user is told about the window, or False;
        * ``refusal``: why Send refuses the message (consent or window), or False.
        """
        self.ensure_one()
        Template = self.env["whatsapp.template"]
        conversation = self._window_conversation()
        plan = {
            "window_open": bool(conversation.window_open),
            "consent": self._consent_refusal(conversation),
            "template": Template,
            "notice": False,
            "refusal": False,
        }
        plan["refusal"] = plan["consent"]
        if (
            plan["window_open"] or plan["consent"] or not self.account_id
            or self.message_type == "template"
            or not (self.partner_id or self.phone_number)
        ):
            return plan
        kind = {
            "text": _("text"),
            "image": _("image"),
            "document": _("document"),
            "interactive": _("interactive message"),
        }.get(self.message_type, self.message_type)
        template, label = self._window_setting()
        closed = _(
            "%(who)s has not written to this WhatsApp number in the last 24 hours, so "
            "WhatsApp accepts only an approved template: your %(kind)s cannot be sent "
            "as it is.",
            who=self._who(), kind=kind,
        )
        problem = self._window_template_problem(template, label, kind)
        if problem:
            plan["notice"] = plan["refusal"] = f"{closed} {problem}"
            return plan
        plan["template"] = template
        if template.header_type in ("image", "video", "document"):
            carried = (
                _("the PDF of %(record)s", record=self.record_reference or "")
                if self.report_applies and self.use_report
                else self._file_description()
            ) or (
                _("the account's default image") if template.header_type == "image"
                else _("the PDF of %(record)s", record=self.record_reference or "")
            )
            header = _(", with %(file)s as its header", file=carried)
        elif self.message_type in ("image", "document"):
            header = _(" (your file is not sent)")
        else:
            header = ""
        plan["notice"] = _(
            "%(closed)s The account's '%(label)s' %(template)s is sent instead%(header)s: "
            "the preview shows what the customer receives. To send something else, send "
            "a template instead.",
            closed=closed, label=label, template=template.display_name, header=header,
        )
        return plan

    def _window_template_problem(self, template, label, kind):
        """Why ``template`` (the account's ``label`` setting) cannot replace this
        message outside the window, as the daemon would find it, or False."""
        self.ensure_one()
        account = self.account_id.display_name
        if not template:
            return _(
                "The account %(account)s has no '%(label)s' to send instead, so Send "
                "refuses your %(kind)s: set '%(label)s' on the account (WhatsApp > "
                "Configuration > Accounts, Automations tab), or send a template "
                "instead.",
                account=account, label=label, kind=kind,
            )
        reason = False
        if not template.active:
            reason = _("it is archived")
        elif template.account_id != self.account_id:
            reason = _("it belongs to another account")
        elif template.status != "approved":
            reason = _(
                "it is %(status)s at Meta, not approved",
                status=dict(template._fields["status"]._description_selection(self.env))[
                    template.status
                ],
            )
        elif template.header_type in ("image", "video", "document") and not (
            self._message_has_file()
            or (template.header_type == "image" and self.account_id.default_media_url)
            or (template.header_type == "document"
                and self.res_model in ("sale.order", "account.move") and self.res_id)
        ):
            reason = _(
                "its %(header)s header needs a file and this message has none",
                header=template.header_type,
            )
        else:
            record = self._target_record()
            params, header = template._resolve_params(record)
            for entry in header + params["body"] + params.get("buttons", []):
                if not (entry["value"] or "").strip():
                    reason = _(
                        "its parameter {{%(name)s}} has no value for %(record)s",
                        name=entry["name"],
                        record=record.display_name if record else _("this message"),
                    )
                    break
        if not reason:
            return False
        return _(
            "The account's '%(label)s' %(template)s cannot be sent in its place "
            "(%(reason)s), so Send refuses your %(kind)s: fix the template or choose "
            "another one as '%(label)s' on the account %(account)s, or send a template "
            "instead.",
            label=label, template=template.display_name, reason=reason, kind=kind,
            account=account,
        )

    def action_use_template(self):
        """Switch to a template message (the account's replacement template
        when it has a usable one) and show the composer again."""
        self.ensure_one()
        template = self.window_template_id
        self.message_type = "template"
        if template and not self.template_id:
            self.template_id = template
        return {
            "type": "ir.actions.act_window",
            "name": _("Send WhatsApp"),
            "res_model": self._name,
            "res_id": self.id,
            "view_mode": "form",
            "target": "new",
            "context": self.env.context,
        }

    # ------------------------------------------------------------------
    # Sending
    # ------------------------------------------------------------------
    def _check_recipient(self):
        self.ensure_one()
        if not self.phone_number:
            if self.partner_id:
                raise UserError(
                    _("No recipient: the contact %(partner)s has no WhatsApp, "
                      "mobile or phone number. Add one on the contact or type the "
                      "number.", partner=self.partner_id.display_name)
                )
            raise UserError(
                _("No recipient: choose a contact or type a phone number.")
            )
        return check_phone_number(self.phone_number)

    def _template_params(self):
        self.ensure_one()
        body, buttons, header = [], [], []
        for param in self.param_ids.sorted(lambda p: (p.component, p.id)):
            value = (param.value or "").strip()
            if not value:
                raise UserError(
                    _("No content for template parameter {{%(name)s}} (%(component)s): "
                      "fill in its value.", name=param.name,
                      component=param.component)
                )
            entry = {"name": param.name, "value": value}
            if param.component == "header":
                header.append(entry)
            elif param.component == "button":
                entry["index"] = param.button_index
                buttons.append(entry)
            else:
                body.append(entry)
        params = {"body": body}
        if buttons:
            params["buttons"] = buttons
        return params, header

    def _option_dicts(self):
        return [
            {
                "button_id": (option.button_id or f"option_{index}").strip(),
                "title": option.title or "",
                "description": option.description or "",
                "section_title": option.section_title or "",
            }
            for index, option in enumerate(
                self.option_ids.sorted(lambda o: (o.sequence, o.id)), start=1
            )
        ]

    def _prepare_message_values(self):
        """Values of the queued message; raises UserError on bad input."""
        self.ensure_one()
        number = self._check_recipient()
        if not self.account_id:
            raise UserError(
                _("No WhatsApp account: create one in WhatsApp > Configuration > "
                  "Accounts and make it the company's default.")
            )
        conversation = self._window_conversation()
        consent = self._consent_refusal(conversation)
        if consent:
            raise UserError(consent)
        body = (self.body or "").strip()
        vals = {
            "account_id": self.account_id.id,
            "company_id": self.account_id.company_id.id,
            "partner_id": self.partner_id.id,
            "conversation_id": conversation.id,
            "to_number": number,
            "direction": "out",
            "state": "queued",
            "trigger": "manual",
            "message_type": self.message_type,
            "body": body or False,
            "res_model": self.res_model or False,
            "res_id": self.res_id or False,
            "reply_to_wamid": self.reply_to_message_id.wamid or False,
        }
        kind = self.message_type
        if kind == "text":
            if not body:
                raise UserError(_("No content: write the text of the message."))
            if len(body) > 4096:
                raise UserError(
                    _("The text is %(n)s characters long; WhatsApp allows 4096.",
                      n=len(body))
                )
        elif kind == "template":
            if not self.template_id:
                raise UserError(_("No content: choose a template."))
            if self.template_id.status != "approved":
                raise UserError(
                    _("The template %(template)s is %(status)s: only approved "
                      "templates can be sent.", template=self.template_id.display_name,
                      status=dict(self.template_id._fields["status"].selection)[
                          self.template_id.status])
                )
            params, header = self._template_params()
            vals.update(
                template_id=self.template_id.id,
                template_params_json=json.dumps(params, ensure_ascii=False),
                header_params_json=json.dumps(header, ensure_ascii=False)
                if header else False,
                body=self.preview or False,
            )
            header_type = self.template_id.header_type
            if header_type == "document":
                vals.update(self._media_values(required=True, what=_("document header")))
            elif header_type in ("image", "video"):
                media = self._media_values(required=False)
                if not media and not self.account_id.default_media_url:
                    raise UserError(
                        _("No content for the %(kind)s header of template "
                          "%(template)s: upload a file, give a media URL or set "
                          "the account's default media URL.", kind=header_type,
                          template=self.template_id.display_name)
                    )
                vals.update(media or {"media_url": self.account_id.default_media_url})
        elif kind in ("image", "document"):
            if body and len(body) > 1024:
                raise UserError(
                    _("The caption is %(n)s characters long; WhatsApp allows 1024.",
                      n=len(body))
                )
            what = _("image") if kind == "image" else _("document")
            vals.update(self._media_values(required=True, what=what))
        elif kind == "interactive":
            options = self._option_dicts()
            try:
                check_interactive(
                    self.interaction_type, body, self.header_text, self.footer_text,
                    self.list_button_label, options,
                )
            except ValidationError as exc:
                raise UserError(exc.args[0]) from exc
            vals["interactive_json"] = json.dumps(
                build_interactive(
                    self.interaction_type, body, self.header_text, self.footer_text,
                    self.list_button_label, options,
                ),
                ensure_ascii=False,
            )
        if kind != "template":
            # Outside the 24-hour window: refused when the account has no usable
            # template to send in its place (the daemon would fail it).
            refusal = self._send_plan()["refusal"]
            if refusal:
                raise UserError(refusal)
        return vals

    def _media_values(self, required, what=""):
        """Media fields for the message: the report PDF, an uploaded file or a URL,
        as chosen in the composer."""
        self.ensure_one()
        if self.report_applies and self.use_report:
            record = self._target_record()
            return {
                "report_name": self.report_name,
                "media_filename": f"{record.display_name}.pdf".replace("/", "_"),
            }
        if self.media_source == "url" and self.media_url:
            if not self.media_url.startswith("https://"):
                raise UserError(
                    _("The media URL must be a public https:// address, got %(url)s.",
                      url=self.media_url)
                )
            return {"media_url": self.media_url, "media_filename": self.media_filename}
        if self.media_source != "url" and self.media_file:
            return {
                "media_filename": self.media_filename or _("file"),
                "_media_file": self.media_file,
            }
        if required:
            if self.report_applies:
                raise UserError(
                    _("No content: the %(what)s is missing. Attach the document's "
                      "PDF, upload a file or give a media URL.", what=what)
                )
            if self.media_source == "url":
                raise UserError(
                    _("No content: the %(what)s is missing. Give its public https:// "
                      "URL, or choose to upload a file.", what=what)
                )
            raise UserError(
                _("No content: the %(what)s is missing. Upload a file, or choose to "
                  "give a public link.", what=what)
            )
        return {}

    def _create_message(self):
        self.ensure_one()
        vals = self._prepare_message_values()
        media_file = vals.pop("_media_file", False)
        message = self.env["whatsapp.message"].create(vals)
        if media_file:
            attachment = self.env["ir.attachment"].create(
                {
                    "name": vals.get("media_filename") or _("file"),
                    "datas": media_file,
                    "res_model": "whatsapp.message",
                    "res_id": message.id,
                }
            )
            message.media_attachment_id = attachment
        return message

    def action_send(self):
        messages = self.env["whatsapp.message"]
        for wizard in self:
            messages |= wizard._create_message()
        notification = messages._queued_notification()
        notification["params"]["next"] = {"type": "ir.actions.act_window_close"}
        return notification


class WhatsappSendMessageParam(models.TransientModel):
    _name = "whatsapp.send.message.param"
    _description = "WhatsApp composer template parameter"
    _order = "component, id"

    wizard_id = fields.Many2one(
        "whatsapp.send.message", required=True, ondelete="cascade"
    )
    variable_id = fields.Many2one("whatsapp.template.variable", readonly=True)
    component = fields.Selection(
        [("header", "Header"), ("body", "Body"), ("button", "Button")],
        required=True,
        default="body",
    )
    name = fields.Char(string="Parameter", required=True)
    button_index = fields.Integer()
    value = fields.Char()


class WhatsappSendMessageOption(models.TransientModel):
    _name = "whatsapp.send.message.option"
    _description = "WhatsApp composer interactive option"
    _order = "sequence, id"

    wizard_id = fields.Many2one(
        "whatsapp.send.message", required=True, ondelete="cascade"
    )
    sequence = fields.Integer(default=10)
    button_id = fields.Char(
        string="Option ID", help="Empty: option_1, option_2... by position."
    )
    title = fields.Char(required=True)
    description = fields.Char(help="List rows only.")
    section_title = fields.Char(help="List rows only.")
