# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""Send one message to several contacts: one queued message per contact."""

import json

from odoo import _, api, fields, models
from odoo.exceptions import UserError

from ..models.whatsapp_message import check_phone_number, e164_digits

BULK_TYPES = [
    ("text", "Text"),
    ("template", "Template"),
    ("image", "Image"),
    ("document", "Document"),
]


class WhatsappSendPartnerMessage(models.TransientModel):
    _name = "whatsapp.send.partner.message"
    _description = "Send a WhatsApp message to several contacts"

    @api.model
    def _default_partner_ids(self):
        if self.env.context.get("active_model") == "res.partner":
            return [fields.Command.set(self.env.context.get("active_ids") or [])]
        return []

    account_id = fields.Many2one(
        "whatsapp.account",
        required=True,
        default=lambda self: self.env["whatsapp.account"]._get_default_account(),
        domain="[('company_id', 'in', allowed_company_ids)]",
    )
    partner_ids = fields.Many2many(
        "res.partner", string="Contacts", default=lambda self: self._default_partner_ids()
    )
    skip_not_opted_in = fields.Boolean(
        string="Skip contacts who have not opted in",
        default=True,
        help="WhatsApp only allows business-initiated messages to contacts who "
        "agreed to receive them; the daemon would refuse the others.",
    )
    message_type = fields.Selection(BULK_TYPES, required=True, default="template")
    body = fields.Text(help="The text, or the caption of an image or document.")
    template_id = fields.Many2one(
        "whatsapp.template",
        domain="[('account_id', '=', account_id), ('status', '=', 'approved')]",
        help="Outside a 24-hour conversation window only templates reach people.",
    )
    template_body_text = fields.Text(related="template_id.body_text")
    media_file = fields.Binary(string="File", attachment=False)
    media_filename = fields.Char(string="File name")
    media_url = fields.Char(string="Media URL")
    recipient_count = fields.Integer(compute="_compute_summary")
    summary = fields.Text(compute="_compute_summary")

    def _split_partners(self):
        self.ensure_one()
        without_number = self.partner_ids.filtered(lambda p: not p._whatsapp_number())
        not_opted_in = (self.partner_ids - without_number).filtered(
            lambda p: not p.whatsapp_opt_in
        )
        targets = self.partner_ids - without_number
        if self.skip_not_opted_in:
            targets -= not_opted_in
        return targets, without_number, not_opted_in

    def _outside_window(self, partners):
        """The contacts among ``partners`` who have not written to the account in
        the last 24 hours (no conversation with an open window, found by number
        as the daemon finds it)."""
        self.ensure_one()
        numbers = {p: e164_digits(p._whatsapp_number()) for p in partners}
        wa_ids = [n for n in numbers.values() if n]
        open_ids = set()
        if wa_ids and self.account_id:
            open_ids = set(
                self.env["whatsapp.conversation"].search(
                    [("account_id", "=", self.account_id.id), ("wa_id", "in", wa_ids),
                     ("window_expires_at", ">", fields.Datetime.now())]
                ).mapped("wa_id")
            )
        return partners.filtered(lambda p: numbers[p] not in open_ids)

    def _window_plan(self, targets):
        """Outside the 24-hour window a free-form message is replaced by the
        account's template (src/outbox/gate.rs): returns the contacts concerned,
        what the user is told, and why Send refuses (or False)."""
        self.ensure_one()
        if self.message_type == "template" or not self.account_id or not targets:
            return targets.browse(), False, False
        outside = self._outside_window(targets)
        if not outside:
            return outside, False, False
        name = (
            "template_document_id" if self.message_type == "document"
            else "template_generic_id"
        )
        template = self.account_id[name]
        label = self.env["whatsapp.account"]._fields[name].get_description(self.env)[
            "string"
        ]
        usable = (
            template.active and template.status == "approved"
            and template.account_id == self.account_id
            and (template.header_type not in ("image", "video", "document")
                 or self.message_type in ("image", "document")
                 or (template.header_type == "image"
                     and self.account_id.default_media_url))
        )
        if usable:
            return outside, _(
                "%(count)s of them have not written to this WhatsApp number in the "
                "last 24 hours: they receive the account's '%(label)s' %(template)s "
                "instead of your message.",
                count=len(outside), label=label, template=template.display_name,
            ), False
        refusal = _(
            "%(count)s of them have not written to this WhatsApp number in the last "
            "24 hours, so WhatsApp accepts only an approved template, and the "
            "account %(account)s has no usable '%(label)s' to send instead: Send "
            "refuses the message. Set '%(label)s' on the account (an approved "
            "template%(media)s), or send a template.",
            count=len(outside), account=self.account_id.display_name, label=label,
            media=_(" with a media header for a file") if template.header_type in (
                "image", "video", "document") else "",
        )
        return outside, refusal, refusal

    @api.depends("partner_ids", "skip_not_opted_in", "message_type", "account_id")
    def _compute_summary(self):
        for wizard in self:
            targets, without_number, not_opted_in = wizard._split_partners()
            lines = [_("%(count)s message(s) will be queued.", count=len(targets))]
            notice = wizard._window_plan(targets)[1]
            if notice:
                lines.append(notice)
            if without_number:
                lines.append(
                    _("%(count)s contact(s) have no number: %(names)s",
                      count=len(without_number),
                      names=", ".join(without_number[:10].mapped("display_name")))
                )
            if not_opted_in:
                lines.append(
                    _("%(count)s contact(s) have not opted in%(skip)s.",
                      count=len(not_opted_in),
                      skip=_(" and will be skipped") if wizard.skip_not_opted_in else "")
                )
            wizard.recipient_count = len(targets)
            wizard.summary = "\n".join(lines)

    def _content_values(self):
        self.ensure_one()
        body = (self.body or "").strip()
        vals = {"message_type": self.message_type, "body": body or False}
        if self.message_type == "text" and not body:
            raise UserError(_("No content: write the text of the message."))
        if self.message_type == "template":
            if not self.template_id:
                raise UserError(_("No content: choose a template."))
            if self.template_id.status != "approved":
                raise UserError(
                    _("The template %(template)s is not approved: only approved "
                      "templates can be sent.", template=self.template_id.display_name)
                )
            vals["template_id"] = self.template_id.id
        if self.message_type in ("image", "document"):
            if self.media_url:
                if not self.media_url.startswith("https://"):
                    raise UserError(
                        _("The media URL must be a public https:// address, got "
                          "%(url)s.", url=self.media_url)
                    )
                vals.update(media_url=self.media_url,
                            media_filename=self.media_filename or False)
            elif not self.media_file:
                raise UserError(
                    _("No content: upload the %(what)s or give its URL.",
                      what=_("image") if self.message_type == "image"
                      else _("document"))
                )
        return vals

    def action_send(self):
        self.ensure_one()
        if not self.partner_ids:
            raise UserError(_("No recipient: add at least one contact."))
        targets, without_number, not_opted_in = self._split_partners()
        if without_number:
            raise UserError(
                _("No recipient number for %(count)s contact(s): %(names)s. Add "
                  "their mobile number or remove them from the list.",
                  count=len(without_number),
                  names=", ".join(without_number[:10].mapped("display_name")))
            )
        if not targets:
            raise UserError(
                _("No recipient: none of the contacts has opted in to WhatsApp "
                  "messages.")
            )
        base = self._content_values()
        outside, _notice, refusal = self._window_plan(targets)
        if refusal:
            raise UserError(refusal)
        if outside:
            # The daemon fills the replacing template's parameters from each
            # contact: refuse now what it would refuse.
            name = (
                "template_document_id" if self.message_type == "document"
                else "template_generic_id"
            )
            template = self.account_id[name]
            for partner in outside:
                params, header = template._resolve_params(partner)
                for entry in header + params["body"] + params.get("buttons", []):
                    if not (entry["value"] or "").strip():
                        raise UserError(
                            _("%(partner)s has not written in the last 24 hours, so "
                              "the account's template %(template)s is sent instead, "
                              "but its parameter {{%(name)s}} has no value for them: "
                              "fill the field on the contact or give the variable a "
                              "fixed value, or send a template.",
                              partner=partner.display_name,
                              template=template.display_name, name=entry["name"])
                        )
        attachment = False
        if self.media_file and self.message_type in ("image", "document"):
            attachment = self.env["ir.attachment"].create(
                {
                    "name": self.media_filename or _("file"),
                    "datas": self.media_file,
                    "res_model": "whatsapp.send.partner.message",
                }
            )
            base.update(media_attachment_id=attachment.id,
                        media_filename=self.media_filename or attachment.name)
        vals_list = []
        for partner in targets:
            vals = dict(
                base,
                account_id=self.account_id.id,
                company_id=self.account_id.company_id.id,
                partner_id=partner.id,
                to_number=check_phone_number(partner._whatsapp_number()),
                direction="out",
                state="queued",
                trigger="manual",
                res_model="res.partner",
                res_id=partner.id,
            )
            if self.template_id and self.message_type == "template":
                params, header = self.template_id._resolve_params(partner)
                for entry in header + params["body"] + params.get("buttons", []):
                    if not entry["value"]:
                        raise UserError(
                            _("No content for template parameter {{%(name)s}} for "
                              "%(partner)s: its field is empty. Fill it in on the "
                              "contact or give the variable a fixed value.",
                              name=entry["name"], partner=partner.display_name)
                        )
                vals["template_params_json"] = json.dumps(params, ensure_ascii=False)
                if header:
                    vals["header_params_json"] = json.dumps(header, ensure_ascii=False)
            vals_list.append(vals)
        messages = self.env["whatsapp.message"].create(vals_list)
        if attachment:
            # One file shared by all the messages: attach it to the first one.
            attachment.write({"res_model": "whatsapp.message", "res_id": messages[0].id})
        notification = messages._queued_notification()
        if not_opted_in and self.skip_not_opted_in:
            notification["params"]["message"] += " " + _(
                "%(count)s contact(s) skipped: not opted in.", count=len(not_opted_in)
            )
        notification["params"]["next"] = {"type": "ir.actions.act_window_close"}
        return notification
