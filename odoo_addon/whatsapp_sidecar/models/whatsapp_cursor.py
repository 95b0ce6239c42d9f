# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""Where the daemon's change detection has got to, so that a restart goes on from there.

One record per watched thing (e.g. ``sale.order``): ``value`` is the last
``write_date`` the daemon handled. Only the daemon writes it.
"""

from odoo import fields, models


class WhatsappCursor(models.Model):
    _name = "whatsapp.cursor"
    _description = "WhatsApp Daemon Cursor"
    _order = "name"

    name = fields.Char(required=True, readonly=True)
    value = fields.Char(readonly=True)

    _sql_constraints = [
        ("name_uniq", "unique(name)", "The daemon keeps one cursor per name."),
    ]
