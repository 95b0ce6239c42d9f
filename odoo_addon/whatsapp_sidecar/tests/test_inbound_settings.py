# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""What the daemon reads on an account when a customer writes: who is notified,
and the opt-out confirmation in the customer's language."""

from .common import WhatsappCase

ENGLISH = "You will no longer receive WhatsApp messages from us."
FRENCH = "Vous ne recevrez plus de messages WhatsApp de notre part."


class TestInboundSettings(WhatsappCase):
    def _account(self, **values):
        base = {
            "name": "Inbound",
            "company_id": self.company.id,
            "phone_number_id": f"test-inbound-{values.get('name', 'x')}",
            "waba_id": "test-waba-inbound",
        }
        base.update(values)
        return self.env["whatsapp.account"].create(base)

    def test_a_new_account_notifies_by_activity_and_has_no_responsible(self):
        account = self._account(name="Defaults")
        self.assertEqual(account.inbound_notification, "activity")
        self.assertFalse(account.responsible_user_id)
        field = self.env["whatsapp.conversation"]._fields["last_notified_at"]
        self.assertTrue(field.store and field.readonly)

    def test_the_default_confirmation_is_translated_into_french(self):
        self.env["res.lang"]._activate_lang("fr_FR")
        account = self._account(name="Bilingual")
        self.assertEqual(account.with_context(lang="en_US").opt_out_confirmation, ENGLISH)
        self.assertEqual(account.with_context(lang="fr_FR").opt_out_confirmation, FRENCH)

    def test_a_confirmation_typed_on_create_is_left_as_typed(self):
        self.env["res.lang"]._activate_lang("fr_FR")
        account = self._account(name="Typed", opt_out_confirmation="Bye from Typed Co.")
        # Untranslated: every language reads the typed text until someone translates it.
        self.assertEqual(
            account.with_context(lang="fr_FR").opt_out_confirmation, "Bye from Typed Co."
        )
        account.update_field_translations(
            "opt_out_confirmation", {"fr_FR": "Au revoir de Typed Co."}
        )
        self.assertEqual(
            account.with_context(lang="fr_FR").opt_out_confirmation, "Au revoir de Typed Co."
        )
        self.assertEqual(
            account.with_context(lang="en_US").opt_out_confirmation, "Bye from Typed Co."
        )

    def test_french_installed_later_reads_the_english_default(self):
        # The daemon recognises the untranslated default and sends its own French words.
        account = self._account(name="Before French")
        self.env["res.lang"]._activate_lang("fr_FR")
        self.assertEqual(account.with_context(lang="fr_FR").opt_out_confirmation, ENGLISH)
