# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""A message's state only moves forward, whoever writes it."""

from odoo import fields

from .common import WhatsappCase


class TestForwardState(WhatsappCase):
    def _message(self, state="queued", **values):
        base = {"account_id": self.account.id, "company_id": self.company.id,
                "to_number": "+2250700000099", "body": "hi"}
        base.update(values)
        message = self.env["whatsapp.message"].create(base)
        if state != "queued":
            # Straight to the state under test (the forward path is checked below).
            self.env.cr.execute(
                "UPDATE whatsapp_message SET state = %s WHERE id = %s", (state, message.id)
            )
            message.invalidate_recordset(["state"])
        return message

    def test_the_way_forward(self):
        message = self._message()
        for state in ("sending", "sent", "delivered", "read"):
            message.write({"state": state})
            self.assertEqual(message.state, state)
        message.write({"state": "failed"})
        self.assertEqual(message.state, "failed")

    def test_a_late_send_result_keeps_its_values_but_not_its_state(self):
        message = self._message("delivered", wamid="wamid.LATE1")
        daemon = self.env["whatsapp.message"].with_user(self.technical).browse(message.id)
        sent_at = fields.Datetime.now()
        daemon.write({"state": "sent", "sent_at": sent_at, "claimed_at": False})
        self.assertEqual(message.state, "delivered")
        self.assertEqual(message.sent_at, sent_at)

    def test_no_state_moves_back(self):
        backwards = [
            ("read", "delivered"), ("read", "sent"), ("delivered", "sent"),
            ("delivered", "sending"), ("sent", "sending"), ("sent", "queued"),
            ("read", "queued"), ("failed", "queued"), ("failed", "sent"),
            ("failed", "delivered"), ("failed", "read"), ("cancelled", "queued"),
            ("cancelled", "sending"), ("sent", "cancelled"), ("received", "sent"),
        ]
        for old, new in backwards:
            with self.subTest(old=old, new=new):
                message = self._message(old)
                message.write({"state": new, "error_code": "kept"})
                self.assertEqual(message.state, old)
                self.assertEqual(message.error_code, "kept", "the other values are written")

    def test_the_two_ways_back(self):
        # The daemon puts back a message it claimed (a retryable error, or a restart).
        claimed = self._message("sending")
        claimed.write({"state": "queued"})
        self.assertEqual(claimed.state, "queued")
        # A user's Retry of a failed or cancelled message.
        for old in ("failed", "cancelled"):
            message = self._message(old, error_code="131026")
            message.with_user(self.user).action_retry()
            self.assertEqual(message.state, "queued")
            self.assertFalse(message.error_code)

    def test_a_mixed_write_moves_only_those_that_may_move(self):
        ahead = self._message("read")
        behind = self._message("sending")
        both = ahead | behind
        both.write({"state": "delivered"})
        self.assertEqual(ahead.state, "read")
        self.assertEqual(behind.state, "delivered")
