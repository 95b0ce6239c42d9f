# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""Tells the whatsapp-sidecar daemon, through Odoo's bus, that it has work.

The daemon keeps one websocket to Odoo's bus (``/websocket``) subscribed to the
string channel ``whatsapp_sidecar``. When a message is queued, a check is
requested, a campaign changes state, an order or invoice needs a message..., the
models below queue a notification and the daemon wakes the component concerned
at once instead of at its next poll. Polling stays the safety net: a lost
notification only delays the work until then.

The contract (the daemon's side reads exactly this):

* channel ``"whatsapp_sidecar"``: a plain string channel, stored in
  ``bus.bus.channel`` as ``["<database>","whatsapp_sidecar"]``;
* type ``"whatsapp_sidecar/changed"``;
* payload ``{"model": "whatsapp.message", "ids": [4, 7], "count": 2}``: the ids
  sorted, at most ``MAX_IDS`` of them, ``count`` the number of distinct ids.

The payload carries nothing secret (a model name and record ids: the daemon reads
the records itself, as its own user); anyone subscribed to the channel may see
it. No HTTP call is made here.

One notification per model per transaction: the ids are collected in
``cr.precommit.data`` and one precommit callback writes one bus row per model,
so a campaign that queues 100,000 messages in one transaction writes one row for
``whatsapp.message``, not 100,000. Precommit callbacks also run when a savepoint
is flushed: the ids collected before it are sent then, the rest at the commit. A
rolled back transaction sends nothing, and Odoo's bus tells the websockets only
once the transaction is committed.
"""

CHANNEL = "whatsapp_sidecar"
NOTIFICATION_TYPE = "whatsapp_sidecar/changed"
MAX_IDS = 100

# Keys of cr.precommit.data (cleared by Odoo at each commit, savepoint flush and rollback).
_PENDING = "whatsapp_sidecar.bus_pending"
_SWITCHES = "whatsapp_sidecar.bus_switches"


def notify(env, model_name, ids):
    """Queue a notification that records ``ids`` of ``model_name`` need the daemon.

    Sent at the transaction's precommit, merged with every other id of the same
    model queued in the transaction.
    """
    ids = [id_ for id_ in ids if isinstance(id_, int)]
    if not ids:
        return
    precommit = env.cr.precommit
    pending = precommit.data.get(_PENDING)
    if pending is None:
        # First notification of the transaction (or since the last precommit run, which
        # clears ``data``): one callback sends them all.
        pending = precommit.data[_PENDING] = {}
        precommit.add(lambda: _send(env))
    pending.setdefault(model_name, set()).update(ids)


def notify_records(records):
    """:func:`notify` for ``records`` (none: nothing)."""
    if records:
        notify(records.env, records._name, records.ids)


def _send(env):
    # Popped, not read: ids queued after this (by a later precommit callback) register a
    # new callback, which runs in the same precommit run.
    pending = env.cr.precommit.data.pop(_PENDING, None)
    if not pending:
        return
    notifications = []
    for model_name in sorted(pending):
        ids = sorted(pending[model_name])
        notifications.append(
            [CHANNEL, NOTIFICATION_TYPE,
             {"model": model_name, "ids": ids[:MAX_IDS], "count": len(ids)}]
        )
    # One bus row per model (bus.bus is written as superuser by _sendmany).
    env["bus.bus"]._sendmany(notifications)


def companies_with(env, switch, companies):
    """The ids of ``companies`` that have an active WhatsApp account with the boolean
    ``switch`` on: as the daemon picks the account of a document (``is_default`` for
    "Send details", ``auto_send_*`` for the automations).

    Read at most once per company and switch per transaction (the answers are kept in
    ``cr.precommit.data``, which Odoo clears at each commit and rollback; writing an
    account forgets them): payments reconciled in one flush ask once, not per invoice.
    """
    company_ids = set(companies.ids)
    if not company_ids:
        return set()
    known = env.cr.precommit.data.setdefault(_SWITCHES, {}).setdefault(switch, {})
    missing = company_ids - known.keys()
    if missing:
        Account = env["whatsapp.account"].sudo().with_context(active_test=True)
        groups = Account._read_group(
            [("company_id", "in", list(missing)), (switch, "=", True)], ["company_id"]
        )
        on = {company.id for (company,) in groups}
        for company_id in missing:
            known[company_id] = company_id in on
    return {company_id for company_id in company_ids if known[company_id]}


def forget_switches(env):
    """Drop the switches read in this transaction (an account was created or changed)."""
    env.cr.precommit.data.pop(_SWITCHES, None)


def notify_where(records, switch):
    """:func:`notify` for those of ``records`` whose company has an active account with
    ``switch`` on (``records`` have a ``company_id``)."""
    if not records:
        return
    on = companies_with(records.env, switch, records.company_id)
    notify_records(records.filtered(lambda record: record.company_id.id in on))
