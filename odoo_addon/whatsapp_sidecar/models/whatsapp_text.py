# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""The words customers receive from the daemon's flows, editable in Odoo.

The daemon reads these texts in the customer's language (``res.partner.lang``)
and fills their ``{placeholders}``: the order confirmation, the cancellation,
the order details and their labels, the button titles. A text of a company
replaces the text of the same key shared by all companies (no company).
"""

import re

from odoo import _, api, fields, models
from odoo.exceptions import ValidationError

PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")


class WhatsappText(models.Model):
    _name = "whatsapp.text"
    _description = "WhatsApp Customer Text"
    _order = "key, company_id, id"
    _check_company_auto = True

    key = fields.Char(
        required=True,
        index=True,
        help="What the daemon looks the text up by, e.g. order_confirmed.",
    )
    name = fields.Char(required=True, translate=True)
    description = fields.Text(translate=True, help="When the customer receives this text.")
    body = fields.Text(
        required=True,
        translate=True,
        help="The text sent to the customer, in their language. Words in braces, "
        "e.g. {order}, are replaced by the daemon.",
    )
    placeholders = fields.Char(
        readonly=True,
        help="The {placeholders} this text may use, separated by commas.",
    )
    max_length = fields.Integer(
        readonly=True,
        help="The longest text WhatsApp accepts here (e.g. 20 for a button title); "
        "0: no limit of its own.",
    )
    company_id = fields.Many2one(
        "res.company",
        index=True,
        help="Empty: the text of every company that has none of its own.",
    )
    active = fields.Boolean(default=True)

    @api.constrains("key", "company_id")
    def _check_unique_key(self):
        Text = self.sudo().with_context(active_test=False)
        for text in self:
            clash = Text.search_count(
                [
                    ("key", "=", text.key),
                    ("company_id", "=", text.company_id.id),
                    ("id", "!=", text.id),
                ]
            )
            if clash:
                raise ValidationError(
                    _(
                        "There already is a customer text %(key)s for %(company)s: edit "
                        "that one instead.",
                        key=text.key,
                        company=text.company_id.display_name or _("all companies"),
                    )
                )

    @api.constrains("body", "placeholders", "max_length")
    def _check_body(self):
        for text in self:
            allowed = {p.strip() for p in (text.placeholders or "").split(",") if p.strip()}
            used = set(PLACEHOLDER.findall(text.body or ""))
            unknown = sorted(used - allowed)
            if unknown:
                raise ValidationError(
                    _(
                        "The text %(name)s uses %(unknown)s, which the daemon does not fill "
                        "here. Available: %(allowed)s.",
                        name=text.name,
                        unknown=", ".join("{%s}" % u for u in unknown),
                        allowed=", ".join("{%s}" % a for a in sorted(allowed)) or _("none"),
                    )
                )
            if text.max_length and len((text.body or "").strip()) > text.max_length:
                raise ValidationError(
                    _(
                        "The text %(name)s is %(length)s characters long: WhatsApp accepts "
                        "at most %(max)s here.",
                        name=text.name,
                        length=len(text.body.strip()),
                        max=text.max_length,
                    )
                )
