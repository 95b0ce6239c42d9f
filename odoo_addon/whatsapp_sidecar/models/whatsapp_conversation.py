# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""One conversation per (account, WhatsApp user).

The daemon creates and refreshes conversations from inbound messages: an
inbound message opens (or extends) the 24-hour customer service window.

A conversation is the thread of every message with that user, both ways:
when one is created, the account's earlier outbound messages to that number
(sent before the customer ever wrote) join it. Its chatter holds notes and
activities about the customer (a low-volume record, unlike the messages).
"""

from datetime import timedelta

from odoo import _, api, fields, models

WINDOW = timedelta(hours=24)


class WhatsappConversation(models.Model):
    _name = "whatsapp.conversation"
    _description = "WhatsApp Conversation"
    _inherit = ["mail.thread", "mail.activity.mixin"]
    _order = "last_inbound_at desc nulls last, id desc"
    _check_company_auto = True

    account_id = fields.Many2one(
        "whatsapp.account",
        required=True,
        ondelete="restrict",
        index=True,
        check_company=True,
    )
    company_id = fields.Many2one(
        related="account_id.company_id", store=True, index=True, precompute=True
    )
    wa_id = fields.Char(
        string="WhatsApp ID",
        index=True,
        help="The user's WhatsApp ID (digits), as Meta sends it in webhooks.",
    )
    user_id = fields.Char(
        string="Business-scoped user ID",
        index=True,
        help="Meta's business-scoped user ID (BSUID), e.g. US.13491208655302741918.",
    )
    partner_id = fields.Many2one("res.partner", index=True, ondelete="set null")
    profile_name = fields.Char(help="The name the user set in WhatsApp.")
    last_inbound_at = fields.Datetime(
        string="Last inbound message", index=True, readonly=True
    )
    last_notified_at = fields.Datetime(
        string="Last notification",
        readonly=True,
        help="When the daemon last told a user that this customer wrote "
        "(at most once an hour).",
    )
    window_expires_at = fields.Datetime(
        string="Window expires",
        compute="_compute_window_expires_at",
        store=True,
        help="Free-form messages are allowed until then; after, only templates.",
    )
    window_open = fields.Boolean(compute="_compute_window_open")
    # Not ``message_ids``: mail.thread's chatter messages have that name.
    whatsapp_message_ids = fields.One2many(
        "whatsapp.message", "conversation_id", string="WhatsApp messages"
    )
    message_count = fields.Integer(compute="_compute_message_count")

    _sql_constraints = [
        (
            "account_wa_id_uniq",
            "unique(account_id, wa_id)",
            "This account already has a conversation with this WhatsApp ID.",
        ),
        (
            "account_user_id_uniq",
            "unique(account_id, user_id)",
            "This account already has a conversation with this business-scoped "
            "user ID.",
        ),
    ]

    @api.model_create_multi
    def create(self, vals_list):
        # The daemon creates conversations from webhooks: no "created" note and
        # no follower subscription of its technical user on each of them.
        conversations = super(
            WhatsappConversation,
            self.with_context(mail_create_nolog=True, mail_create_nosubscribe=True),
        ).create(vals_list)
        conversations._link_earlier_messages()
        return conversations.with_env(self.env)

    def _link_earlier_messages(self):
        """Put in each conversation the outbound messages sent to its number
        before it existed (the customer had never written): those of its account,
        and those that name no account, which went from the company's default.

        One search for all the conversations, then one write per conversation.
        """
        Message = self.env["whatsapp.message"].sudo().with_context(active_test=False)
        numbers = {}
        for conversation in self.filtered("wa_id"):
            numbers.setdefault(f"+{conversation.wa_id}", conversation)
        if not numbers:
            return
        accounts = self.account_id
        defaults = accounts.filtered("is_default")
        account_domain = [("account_id", "in", accounts.ids)]
        if defaults:
            account_domain = [
                "|",
                ("account_id", "in", accounts.ids),
                "&",
                ("account_id", "=", False),
                ("company_id", "in", defaults.company_id.ids),
            ]
        # The number the daemon normalised (to_e164) is the truth; the number as
        # typed counts for a message not normalised yet.
        messages = Message.search(
            [
                ("direction", "=", "out"),
                ("conversation_id", "=", False),
                "|",
                ("to_e164", "in", list(numbers)),
                "&",
                ("to_e164", "=", False),
                ("to_number", "in", list(numbers)),
            ]
            + account_domain
        )
        per_conversation = {}
        for message in messages:
            conversation = numbers.get(message.to_e164 or message.to_number)
            if not conversation:
                continue
            account = message.account_id or defaults.filtered(
                lambda a, m=message: a.company_id == m.company_id
            )[:1]
            if account != conversation.account_id:
                continue
            per_conversation.setdefault(conversation, Message)
            per_conversation[conversation] |= message
        for conversation, linked in per_conversation.items():
            linked.write({"conversation_id": conversation.id})

    @api.depends("partner_id", "profile_name", "wa_id", "user_id")
    def _compute_display_name(self):
        for conversation in self:
            who = (
                conversation.partner_id.display_name
                or conversation.profile_name
                or conversation.wa_id
                or conversation.user_id
                or ""
            )
            conversation.display_name = (
                f"{who} (+{conversation.wa_id})"
                if conversation.wa_id and who != conversation.wa_id
                else who
            )

    @api.depends("last_inbound_at")
    def _compute_window_expires_at(self):
        for conversation in self:
            conversation.window_expires_at = (
                conversation.last_inbound_at + WINDOW
                if conversation.last_inbound_at
                else False
            )

    @api.depends("window_expires_at")
    def _compute_window_open(self):
        now = fields.Datetime.now()
        for conversation in self:
            conversation.window_open = bool(
                conversation.window_expires_at and conversation.window_expires_at > now
            )

    def _compute_message_count(self):
        counts = dict(
            self.env["whatsapp.message"]._read_group(
                [("conversation_id", "in", self.ids)], ["conversation_id"], ["__count"]
            )
        )
        for conversation in self:
            conversation.message_count = counts.get(conversation, 0)

    def action_send_message(self):
        """Reply: the composer for this conversation, its customer and account.

        Outside the 24-hour window only a template reaches the customer, so the
        composer then opens on the template type, with the account's generic
        template when it has one.
        """
        self.ensure_one()
        context = {
            "default_account_id": self.account_id.id,
            "default_conversation_id": self.id,
            "default_partner_id": self.partner_id.id,
            "default_phone_number": f"+{self.wa_id}" if self.wa_id else False,
            "default_message_type": "text",
        }
        if not self.window_open:
            context["default_message_type"] = "template"
            generic = self.account_id.template_generic_id
            if generic.active and generic.status == "approved":
                context["default_template_id"] = generic.id
        return {
            "type": "ir.actions.act_window",
            "name": _("Reply on WhatsApp"),
            "res_model": "whatsapp.send.message",
            "view_mode": "form",
            "target": "new",
            "context": context,
        }

    def action_view_messages(self):
        """Every message of the conversation in the message log, newest last."""
        self.ensure_one()
        action = self.env["ir.actions.act_window"]._for_xml_id(
            "whatsapp_sidecar.whatsapp_message_action"
        )
        action["domain"] = [("conversation_id", "=", self.id)]
        action["context"] = {"create": False}
        return action
