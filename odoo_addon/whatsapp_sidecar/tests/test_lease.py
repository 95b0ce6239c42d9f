# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""The sending lease: one holder at a time, and claims fenced by its epoch."""

from odoo.exceptions import AccessError, UserError

from .common import WhatsappCase


class TestLease(WhatsappCase):
    def setUp(self):
        super().setUp()
        self.Lease = self.env["whatsapp.lease"].with_user(self.technical)

    def _expire(self):
        self.env.cr.execute(
            "UPDATE whatsapp_lease SET expires_at = expires_at - interval '1 hour'"
        )

    def _queued(self, count):
        Message = self.env["whatsapp.message"]
        return Message.concat(*[
            Message.create({"account_id": self.account.id, "company_id": self.company.id,
                            "to_number": "+2250700000099", "body": f"hi {i}"})
            for i in range(count)
        ])

    def test_one_holder_at_a_time(self):
        first = self.Lease.acquire("host-a", "a-1", 15)
        self.assertTrue(first["leader"])
        epoch = first["epoch"]
        other = self.Lease.acquire("host-b", "b-1", 15)
        self.assertFalse(other["leader"])
        self.assertEqual(other["holder"], "host-a")
        self.assertGreater(other["expires_in"], 10)
        # Renewed: the same epoch.
        self.assertEqual(self.Lease.acquire("host-a", "a-1", 15)["epoch"], epoch)
        # Expired: the standby takes it, one epoch up.
        self._expire()
        taken = self.Lease.acquire("host-b", "b-1", 15)
        self.assertEqual((taken["leader"], taken["epoch"]), (True, epoch + 1))
        self.assertFalse(self.Lease.acquire("host-a", "a-1", 15)["leader"])

    def test_its_holder_gets_an_expired_lease_back_with_the_same_epoch(self):
        epoch = self.Lease.acquire("host-a", "a-1", 15)["epoch"]
        self._expire()
        again = self.Lease.acquire("host-a", "a-1", 15)
        self.assertEqual((again["leader"], again["epoch"]), (True, epoch))

    def test_a_restarted_daemon_takes_its_lease_back_at_once(self):
        epoch = self.Lease.acquire("host-a", "a-1", 15)["epoch"]
        again = self.Lease.acquire("host-a", "a-2", 15)
        self.assertEqual((again["leader"], again["epoch"]), (True, epoch + 1))
        # The former process is fenced.
        self.assertFalse(self.Lease.acquire("host-b", "b-1", 15)["leader"])

    def test_claims_are_fenced_by_the_epoch(self):
        messages = self._queued(3)
        epoch = self.Lease.acquire("host-a", "a-1", 15)["epoch"]
        answer = self.Lease.claim(
            epoch, "whatsapp.message", messages[:2].ids, [["state", "=", "queued"]],
            {"state": "sending"},
        )
        self.assertEqual((sorted(answer["claimed"]), answer["lost"]),
                         (sorted(messages[:2].ids), False))
        # Claimed ones no longer match the domain: claimed once only.
        again = self.Lease.claim(epoch, "whatsapp.message", messages.ids,
                                 [["state", "=", "queued"]], {"state": "sending"})
        self.assertEqual(again["claimed"], messages[2:].ids)

        fresh = self._queued(1)
        self._expire()
        self.Lease.acquire("host-b", "b-1", 15)
        lost = self.Lease.claim(epoch, "whatsapp.message", fresh.ids,
                                [["state", "=", "queued"]], {"state": "sending"})
        self.assertEqual((lost["claimed"], lost["lost"], lost["holder"]), ([], True, "host-b"))
        self.assertEqual(fresh.state, "queued")

    def test_an_expired_lease_claims_nothing(self):
        fresh = self._queued(1)
        epoch = self.Lease.acquire("host-a", "a-1", 15)["epoch"]
        self._expire()
        lost = self.Lease.claim(epoch, "whatsapp.message", fresh.ids, [], {"state": "sending"})
        self.assertTrue(lost["lost"])
        self.assertEqual(fresh.state, "queued")

    def test_release_frees_it_at_once(self):
        self.Lease.acquire("host-a", "a-1", 15)
        self.assertFalse(self.Lease.release("a-2"), "only the holding process releases it")
        self.assertTrue(self.Lease.release("a-1"))
        self.assertTrue(self.Lease.acquire("host-b", "b-1", 15)["leader"])

    def test_bad_calls_are_refused(self):
        epoch = self.Lease.acquire("host-a", "a-1", 15)["epoch"]
        with self.assertRaises(UserError):
            self.Lease.claim(epoch, "res.partner", [self.partner.id], [], {"name": "x"})
        with self.assertRaises(UserError):
            self.Lease.acquire("host-a", "a-1", 0)
        with self.assertRaises(AccessError):
            self.env["whatsapp.lease"].with_user(self.user).acquire("host-a", "a-1", 15)
