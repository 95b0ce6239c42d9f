# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""Interactive menus: a message with up to 3 reply buttons or a list of up to
10 rows. Each option replies, opens a next scenario or runs a button action.
The limits checked here are Meta's (see the Cloud API fact sheet).
"""

import json

from odoo import _, api, fields, models
from odoo.exceptions import ValidationError

MAX_BUTTONS = 3
MAX_LIST_ROWS = 10
BUTTON_TITLE_MAX = 20
ROW_TITLE_MAX = 24
ROW_DESCRIPTION_MAX = 72
BUTTON_ID_MAX = 256
ROW_ID_MAX = 200
BODY_MAX = 1024
HEADER_MAX = 60
FOOTER_MAX = 60
LIST_BUTTON_MAX = 20
SECTION_TITLE_MAX = 24


def check_interactive(kind, body, header, footer, list_label, options):
    """Raise ValidationError when the interactive content breaks Meta's limits.

    ``options`` is a list of dicts with ``button_id``, ``title``,
    ``description`` and ``section_title``.
    """
    if not (body or "").strip():
        raise ValidationError(_("An interactive message needs a body text."))
    if len(body) > BODY_MAX:
        raise ValidationError(
            _("The body is %(n)s characters long; WhatsApp allows %(max)s.",
              n=len(body), max=BODY_MAX)
        )
    if header and len(header) > HEADER_MAX:
        raise ValidationError(
            _("The header is %(n)s characters long; WhatsApp allows %(max)s.",
              n=len(header), max=HEADER_MAX)
        )
    if footer and len(footer) > FOOTER_MAX:
        raise ValidationError(
            _("The footer is %(n)s characters long; WhatsApp allows %(max)s.",
              n=len(footer), max=FOOTER_MAX)
        )
    if not options:
        raise ValidationError(_("Add at least one option (button or list row)."))
    if kind == "buttons":
        limit, title_max, id_max = MAX_BUTTONS, BUTTON_TITLE_MAX, BUTTON_ID_MAX
    else:
        limit, title_max, id_max = MAX_LIST_ROWS, ROW_TITLE_MAX, ROW_ID_MAX
        if not (list_label or "").strip():
            raise ValidationError(
                _("A list needs the label of the button that opens it.")
            )
        if len(list_label) > LIST_BUTTON_MAX:
            raise ValidationError(
                _("The list button label is %(n)s characters long; WhatsApp "
                  "allows %(max)s.", n=len(list_label), max=LIST_BUTTON_MAX)
            )
    if len(options) > limit:
        raise ValidationError(
            _("%(n)s options: WhatsApp allows at most %(max)s %(what)s.",
              n=len(options), max=limit,
              what=_("buttons") if kind == "buttons" else _("list rows"))
        )
    seen_titles, seen_ids = set(), set()
    for option in options:
        title = (option.get("title") or "").strip()
        button_id = option.get("button_id") or ""
        if not title:
            raise ValidationError(_("Every option needs a title."))
        if len(title) > title_max:
            raise ValidationError(
                _("The option title %(title)s is %(n)s characters long; WhatsApp "
                  "allows %(max)s.", title=title, n=len(title), max=title_max)
            )
        if not button_id or button_id != button_id.strip():
            raise ValidationError(
                _("The option %(title)s needs an id without leading or trailing "
                  "spaces.", title=title)
            )
        if len(button_id) > id_max:
            raise ValidationError(
                _("The id of option %(title)s is longer than %(max)s characters.",
                  title=title, max=id_max)
            )
        if title in seen_titles or button_id in seen_ids:
            raise ValidationError(
                _("Two options share the title or id %(title)s: each must be "
                  "unique in the message.", title=title)
            )
        seen_titles.add(title)
        seen_ids.add(button_id)
        description = option.get("description") or ""
        if kind == "buttons" and description:
            raise ValidationError(
                _("Option %(title)s has a description: only list rows can have "
                  "one.", title=title)
            )
        if len(description) > ROW_DESCRIPTION_MAX:
            raise ValidationError(
                _("The description of option %(title)s is longer than %(max)s "
                  "characters.", title=title, max=ROW_DESCRIPTION_MAX)
            )
        section = option.get("section_title") or ""
        if len(section) > SECTION_TITLE_MAX:
            raise ValidationError(
                _("The section title %(section)s is longer than %(max)s "
                  "characters.", section=section, max=SECTION_TITLE_MAX)
            )


def build_interactive(kind, body, header, footer, list_label, options):
    """Meta's ``interactive`` object for these options (already checked)."""
    interactive = {"type": "button" if kind == "buttons" else "list",
                   "body": {"text": body}}
    if header:
        interactive["header"] = {"type": "text", "text": header}
    if footer:
        interactive["footer"] = {"text": footer}
    if kind == "buttons":
        interactive["action"] = {
            "buttons": [
                {"type": "reply",
                 "reply": {"id": option["button_id"], "title": option["title"]}}
                for option in options
            ]
        }
    else:
        sections = []
        for option in options:
            row = {"id": option["button_id"], "title": option["title"]}
            if option.get("description"):
                row["description"] = option["description"]
            section_title = option.get("section_title") or ""
            if not sections or sections[-1]["title"] != section_title:
                sections.append({"title": section_title, "rows": []})
            sections[-1]["rows"].append(row)
        if len(sections) == 1 and not sections[0]["title"]:
            del sections[0]["title"]
        else:
            for section in sections:
                section["title"] = section["title"] or list_label
        interactive["action"] = {"button": list_label, "sections": sections}
    return interactive


class WhatsappInteractiveScenario(models.Model):
    _name = "whatsapp.interactive.scenario"
    _description = "WhatsApp Interactive Scenario"
    _order = "sequence, name, id"
    _check_company_auto = True

    name = fields.Char(required=True, translate=True)
    active = fields.Boolean(default=True)
    sequence = fields.Integer(default=10)
    company_id = fields.Many2one(
        "res.company", index=True, default=lambda self: self.env.company
    )
    account_id = fields.Many2one(
        "whatsapp.account",
        ondelete="cascade",
        check_company=True,
        help="Empty: the scenario works on every account of the company.",
    )
    trigger_keywords = fields.Char(
        help="Comma-separated words; an inbound message equal to one of them "
        "starts this scenario (e.g. MENU,HELP).",
    )
    interaction_type = fields.Selection(
        [("buttons", "Reply buttons (up to 3)"), ("list", "List (up to 10 rows)")],
        required=True,
        default="buttons",
    )
    header_text = fields.Char(translate=True)
    body = fields.Text(required=True, translate=True)
    footer_text = fields.Char(translate=True)
    list_button_label = fields.Char(
        translate=True, help="Label of the button that opens the list (max 20)."
    )
    option_ids = fields.One2many(
        "whatsapp.interactive.scenario.option", "scenario_id", copy=True
    )
    option_count = fields.Integer(compute="_compute_option_count")
    interactive_json = fields.Text(
        string="Interactive content (JSON)",
        compute="_compute_interactive_json",
        help="What the daemon sends: Meta's interactive object.",
    )

    @api.depends("option_ids")
    def _compute_option_count(self):
        for scenario in self:
            scenario.option_count = len(scenario.option_ids)

    def _option_dicts(self):
        return [
            {
                "button_id": option.button_id,
                "title": option.title,
                "description": option.description,
                "section_title": option.section_title,
            }
            for option in self.option_ids.sorted(lambda o: (o.sequence, o.id))
        ]

    @api.depends(
        "interaction_type", "body", "header_text", "footer_text",
        "list_button_label", "option_ids.button_id", "option_ids.title",
        "option_ids.description", "option_ids.section_title", "option_ids.sequence",
    )
    def _compute_interactive_json(self):
        for scenario in self:
            scenario.interactive_json = json.dumps(
                build_interactive(
                    scenario.interaction_type, scenario.body or "",
                    scenario.header_text, scenario.footer_text,
                    scenario.list_button_label, scenario._option_dicts(),
                ),
                ensure_ascii=False,
                indent=2,
            )

    @api.constrains(
        "interaction_type", "body", "header_text", "footer_text",
        "list_button_label", "option_ids",
    )
    def _check_limits(self):
        for scenario in self:
            check_interactive(
                scenario.interaction_type, scenario.body or "",
                scenario.header_text, scenario.footer_text,
                scenario.list_button_label, scenario._option_dicts(),
            )


class WhatsappInteractiveScenarioOption(models.Model):
    _name = "whatsapp.interactive.scenario.option"
    _description = "WhatsApp Interactive Scenario Option"
    _order = "scenario_id, sequence, id"
    _rec_name = "title"

    scenario_id = fields.Many2one(
        "whatsapp.interactive.scenario", required=True, ondelete="cascade", index=True
    )
    sequence = fields.Integer(default=10)
    button_id = fields.Char(
        string="Option ID",
        required=True,
        help="Sent to WhatsApp and echoed back when the user picks the option.",
    )
    title = fields.Char(required=True, translate=True)
    description = fields.Char(translate=True, help="List rows only (max 72).")
    section_title = fields.Char(translate=True, help="List rows only (max 24).")
    reply_text = fields.Text(translate=True)
    next_scenario_id = fields.Many2one(
        "whatsapp.interactive.scenario", ondelete="set null"
    )
    button_action_id = fields.Many2one("whatsapp.button.action", ondelete="set null")

    @api.constrains(
        "scenario_id", "button_id", "title", "description", "section_title", "sequence"
    )
    def _check_scenario_limits(self):
        # An option edited on its own (not through the scenario form) is checked too.
        self.scenario_id._check_limits()
