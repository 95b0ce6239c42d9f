# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""The composer: one recipient, any message type, with a preview.

Sending only creates a queued ``whatsapp.message``; the daemon sends it.
"""

import json
import re

from odoo import _, api, fields, models
from odoo.exceptions import UserError, ValidationError

from ..models.whatsapp_interactive_scenario import build_interactive, check_interactive
from ..models.whatsapp_message import check_phone_number

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
        "media_url", "use_report", "report_name", "header_text", "footer_text",
        "option_ids.title", "record_reference",
    )
    def _compute_preview(self):
        for wizard in self:
            wizard.preview = wizard._preview_text()

    def _preview_text(self):
        self.ensure_one()
        kind = self.message_type
        if kind == "text":
            return self.body or ""
        if kind == "template":
            if not self.template_id:
                return ""
            values = {p.name: p.value for p in self.param_ids if p.component == "body"}
            header_values = {
                p.name: p.value for p in self.param_ids if p.component == "header"
            }
            parts = []
            header = self.template_id.header_type
            if header == "text":
                parts.append(
                    render_placeholders(self.template_id.header_text, header_values)
                )
            elif header and header != "none":
                parts.append(f"[{dict(self.template_id._fields['header_type'].selection)[header]}]")
            parts.append(render_placeholders(self.template_id.body_text, values))
            if self.template_id.footer_text:
                parts.append(self.template_id.footer_text)
            try:
                buttons = json.loads(self.template_id.buttons_json or "[]")
            except ValueError:
                buttons = []
            titles = [str(b.get("text", "")) for b in buttons if isinstance(b, dict)]
            if titles:
                parts.append("  ".join(f"[ {t} ]" for t in titles))
            return "\n".join(p for p in parts if p)
        if kind in ("image", "document"):
            label = _("Image") if kind == "image" else _("Document")
            name = self.media_filename or self.media_url
            if kind == "document" and not name and self.use_report and self.report_name:
                name = _("PDF of %(record)s", record=self.record_reference or "")
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

    @api.depends("partner_id", "conversation_id", "message_type", "account_id")
    def _compute_warning(self):
        for wizard in self:
            notes = []
            if wizard.partner_id and not wizard.partner_id.whatsapp_opt_in and not (
                wizard.conversation_id and wizard.conversation_id.window_open
            ):
                notes.append(
                    _("%(partner)s has not opted in to WhatsApp messages: the "
                      "message will fail unless they wrote to you in the last 24 "
                      "hours.", partner=wizard.partner_id.display_name)
                )
            if (
                wizard.message_type != "template"
                and wizard.conversation_id
                and not wizard.conversation_id.window_open
            ):
                notes.append(
                    _("The 24-hour window of this conversation is closed: outside "
                      "it only templates can be sent (the account's generic "
                      "template is used if set).")
                )
            if wizard.account_id.paused:
                notes.append(
                    _("The account %(account)s is paused: %(reason)s",
                      account=wizard.account_id.display_name,
                      reason=wizard.account_id.paused_reason or "")
                )
            wizard.warning = "\n".join(notes) or False

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
        body = (self.body or "").strip()
        vals = {
            "account_id": self.account_id.id,
            "company_id": self.account_id.company_id.id,
            "partner_id": self.partner_id.id,
            "conversation_id": self.conversation_id.id,
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
            if kind == "image" and vals.get("report_name"):
                raise UserError(
                    _("No content: an image message needs an image file or URL, "
                      "not the document's PDF.")
                )
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
        return vals

    def _media_values(self, required, what=""):
        """Media fields for the message: uploaded file, URL or report PDF."""
        self.ensure_one()
        if self.media_file:
            return {
                "media_filename": self.media_filename or _("file"),
                "_media_file": self.media_file,
            }
        if self.media_url:
            if not self.media_url.startswith("https://"):
                raise UserError(
                    _("The media URL must be a public https:// address, got %(url)s.",
                      url=self.media_url)
                )
            return {"media_url": self.media_url, "media_filename": self.media_filename}
        if self.use_report and self.report_name and self.res_model and self.res_id:
            record = self._target_record()
            return {
                "report_name": self.report_name,
                "media_filename": f"{record.display_name}.pdf".replace("/", "_"),
            }
        if required:
            raise UserError(
                _("No content: the %(what)s is missing. Upload a file, give a media "
                  "URL, or attach the document's PDF.", what=what)
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
