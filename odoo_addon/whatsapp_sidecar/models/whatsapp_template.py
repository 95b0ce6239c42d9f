# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""Message templates synced from Meta by the daemon, and their variables.

``components_json`` holds Meta's ``components`` array as returned by
``GET /{waba-id}/message_templates``. The header type, body text and button
summary shown in Odoo are derived from it. Each ``whatsapp.template.variable``
maps one ``{{n}}`` (or named) parameter to a field path on the record the
message is about, or to a fixed text.
"""

import json

from odoo import _, api, fields, models
from odoo.exceptions import ValidationError

TEMPLATE_STATUSES = [
    ("approved", "Approved"),
    ("pending", "Pending"),
    ("rejected", "Rejected"),
    ("paused", "Paused"),
    ("disabled", "Disabled"),
    ("in_appeal", "In appeal"),
    ("pending_deletion", "Pending deletion"),
    ("deleted", "Deleted"),
    ("archived", "Archived"),
    ("limit_exceeded", "Limit exceeded"),
]

HEADER_TYPES = [
    ("none", "None"),
    ("text", "Text"),
    ("image", "Image"),
    ("video", "Video"),
    ("document", "Document"),
    ("location", "Location"),
]


class WhatsappTemplate(models.Model):
    _name = "whatsapp.template"
    _description = "WhatsApp Template"
    _order = "name, language, id"
    _check_company_auto = True

    name = fields.Char(
        required=True,
        index=True,
        help="The template name at Meta (lowercase letters, digits and _).",
    )
    language = fields.Char(
        required=True,
        default="en_US",
        help="The exact language code of the approved translation, e.g. en_US, fr.",
    )
    active = fields.Boolean(default=True)
    account_id = fields.Many2one(
        "whatsapp.account",
        required=True,
        ondelete="cascade",
        index=True,
        check_company=True,
    )
    company_id = fields.Many2one(
        related="account_id.company_id", store=True, index=True, precompute=True
    )
    meta_template_id = fields.Char(string="Meta template ID", readonly=True)
    category = fields.Selection(
        [
            ("marketing", "Marketing"),
            ("utility", "Utility"),
            ("authentication", "Authentication"),
        ],
        default="utility",
    )
    status = fields.Selection(
        TEMPLATE_STATUSES, default="pending", required=True, index=True
    )
    rejected_reason = fields.Char()
    quality_rating = fields.Selection(
        [
            ("green", "High (green)"),
            ("yellow", "Medium (yellow)"),
            ("red", "Low (red)"),
            ("unknown", "Unknown"),
        ],
        default="unknown",
    )
    parameter_format = fields.Selection(
        [("positional", "Positional ({{1}})"), ("named", "Named ({{name}})")],
        default="positional",
        required=True,
    )
    components_json = fields.Text(
        string="Components (JSON)",
        help="Meta's components array: HEADER, BODY, FOOTER and BUTTONS.",
    )
    header_type = fields.Selection(
        HEADER_TYPES, compute="_compute_from_components", store=True
    )
    header_text = fields.Char(compute="_compute_from_components", store=True)
    body_text = fields.Text(compute="_compute_from_components", store=True)
    footer_text = fields.Char(compute="_compute_from_components", store=True)
    buttons_json = fields.Text(
        string="Buttons (JSON)",
        compute="_compute_from_components",
        store=True,
        help="The buttons of the BUTTONS component.",
    )
    button_count = fields.Integer(compute="_compute_from_components", store=True)
    components_error = fields.Char(compute="_compute_from_components", store=True)
    variable_ids = fields.One2many(
        "whatsapp.template.variable", "template_id", string="Variables", copy=True
    )
    last_sync_at = fields.Datetime(readonly=True)

    _sql_constraints = [
        (
            "name_language_account_uniq",
            "unique(account_id, name, language)",
            "This account already has a template with this name and language.",
        ),
    ]

    @api.depends("name", "language")
    def _compute_display_name(self):
        for template in self:
            template.display_name = f"{template.name} ({template.language})"

    @api.depends("components_json")
    def _compute_from_components(self):
        for template in self:
            values = {
                "header_type": "none",
                "header_text": False,
                "body_text": False,
                "footer_text": False,
                "buttons_json": False,
                "button_count": 0,
                "components_error": False,
            }
            try:
                components = json.loads(template.components_json or "[]")
                if not isinstance(components, list):
                    raise ValueError("not a list")
            except ValueError:
                values["components_error"] = _(
                    "The components are not a JSON array as Meta returns it."
                )
                template.update(values)
                continue
            for component in components:
                if not isinstance(component, dict):
                    continue
                kind = str(component.get("type", "")).upper()
                if kind == "HEADER":
                    fmt = str(component.get("format", "TEXT")).lower()
                    values["header_type"] = (
                        fmt if fmt in dict(HEADER_TYPES) else "none"
                    )
                    values["header_text"] = component.get("text") or False
                elif kind == "BODY":
                    values["body_text"] = component.get("text") or False
                elif kind == "FOOTER":
                    values["footer_text"] = component.get("text") or False
                elif kind == "BUTTONS":
                    buttons = component.get("buttons") or []
                    values["buttons_json"] = json.dumps(buttons, ensure_ascii=False)
                    values["button_count"] = len(buttons)
            template.update(values)

    @api.constrains("components_json")
    def _check_components_json(self):
        for template in self:
            if not template.components_json:
                continue
            try:
                components = json.loads(template.components_json)
            except ValueError as exc:
                raise ValidationError(
                    _(
                        "The components of template %(name)s are not valid JSON "
                        "(%(error)s): paste Meta's components array.",
                        name=template.name,
                        error=exc,
                    )
                ) from exc
            if not isinstance(components, list):
                raise ValidationError(
                    _(
                        "The components of template %(name)s must be a JSON array "
                        "([{\"type\": \"BODY\", ...}]).",
                        name=template.name,
                    )
                )

    def _resolve_params(self, record=None):
        """Values of this template's variables for ``record``.

        Returns ``(params, header_params)``: ``params`` is the dict stored in
        ``whatsapp.message.template_params_json`` (``body`` and ``buttons``),
        ``header_params`` the list stored in ``header_params_json``.
        """
        self.ensure_one()
        body, buttons, header = [], [], []
        for variable in self.variable_ids.sorted(lambda v: (v.sequence, v.id)):
            entry = {"name": variable.name, "value": variable._value_for(record)}
            if variable.component == "header":
                header.append(entry)
            elif variable.component == "button":
                entry["index"] = variable.button_index
                buttons.append(entry)
            else:
                body.append(entry)
        params = {"body": body}
        if buttons:
            params["buttons"] = buttons
        return params, header


class WhatsappTemplateVariable(models.Model):
    _name = "whatsapp.template.variable"
    _description = "WhatsApp Template Variable"
    _order = "template_id, component, sequence, id"

    template_id = fields.Many2one(
        "whatsapp.template", required=True, ondelete="cascade", index=True
    )
    sequence = fields.Integer(default=10)
    name = fields.Char(
        required=True,
        help="The parameter: '1' for {{1}}, or the name of a named parameter.",
    )
    component = fields.Selection(
        [("header", "Header"), ("body", "Body"), ("button", "Button")],
        required=True,
        default="body",
    )
    button_index = fields.Integer(
        help="For button parameters: the position of the button, from 0."
    )
    field_path = fields.Char(
        help="Dotted path on the record the message is about, "
        "e.g. partner_id.name or amount_total.",
    )
    fixed_value = fields.Char(
        help="Used when no field path is set, or it is empty. For a button "
        "parameter with a field path too, the payload is '<fixed value>:<field "
        "value>', e.g. invoice_pay:42.",
    )

    @api.constrains("name", "component", "field_path", "fixed_value")
    def _check_value_source(self):
        for variable in self:
            if variable.field_path and not all(
                part.isidentifier() for part in variable.field_path.split(".")
            ):
                raise ValidationError(
                    _(
                        "The field path %(path)s is not a dotted list of field "
                        "names (e.g. partner_id.name).",
                        path=variable.field_path,
                    )
                )

    def _value_for(self, record):
        """The text for this variable on ``record`` (a recordset or None)."""
        self.ensure_one()
        if self.field_path and record:
            value = record
            try:
                for part in self.field_path.split("."):
                    value = value[:1][part] if isinstance(value, models.BaseModel) else False
            except KeyError:
                value = False
            if isinstance(value, models.BaseModel):
                value = ", ".join(value.mapped("display_name"))
            if value not in (False, None, ""):
                if self.component == "button" and self.fixed_value:
                    return f"{self.fixed_value}:{value}"
                return str(value)
        return self.fixed_value or ""
