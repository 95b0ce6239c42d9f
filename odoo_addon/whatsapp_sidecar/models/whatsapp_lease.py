# License LGPL-3.0 or later (https://www.gnu.org/licenses/lgpl-3.0).
"""Which daemon sends: a lease with an epoch, and claims fenced by it.

Several daemons may run against one database (a standby beside the leader):
every one of them receives and stores Meta's webhooks, but only the holder of
the ``sending`` lease claims messages and sends. A daemon calls ``acquire``
every few seconds: it renews its lease, takes a free or expired one (the
epoch goes up by one), or learns who holds it. Every claim goes through
``claim`` with the caller's epoch, checked in the same transaction as the
write under a row lock: a daemon that was paused or cut off from Odoo and
lost the lease meanwhile cannot claim anything once another took it over.

Times are the database's clock (``clock_timestamp()``), so the daemons'
clocks do not matter; the lease lives in PostgreSQL like everything else.
"""

from odoo import _, api, fields, models
from odoo.exceptions import UserError

# The models a fenced claim may write: the daemon's own.
CLAIMABLE_PREFIX = "whatsapp."
# Longest lease a daemon may ask for, in seconds.
MAX_TTL = 600


class WhatsappLease(models.Model):
    _name = "whatsapp.lease"
    _description = "WhatsApp Daemon Lease"
    _order = "name"

    name = fields.Char(required=True, readonly=True)
    holder = fields.Char(readonly=True, help="The daemon's lease.name (its host by default).")
    instance = fields.Char(readonly=True, help="The holding process (changes at each start).")
    epoch = fields.Integer(readonly=True, help="Goes up by one each time the lease changes hands.")
    taken_at = fields.Datetime(readonly=True)
    renewed_at = fields.Datetime(readonly=True)
    expires_at = fields.Datetime(readonly=True)

    _sql_constraints = [
        ("name_uniq", "unique(name)", "There is one lease per name."),
    ]

    def _locked_row(self, name, mode):
        """The lease row, locked ``FOR UPDATE`` (created when missing) or ``FOR SHARE``
        (``None`` when missing)."""
        self.check_access_rights("write")
        cr = self.env.cr
        if mode == "update":
            cr.execute(
                """INSERT INTO whatsapp_lease (name, epoch, create_uid, write_uid, create_date,
                                               write_date)
                   VALUES (%s, 0, %s, %s, now() at time zone 'UTC', now() at time zone 'UTC')
                   ON CONFLICT (name) DO NOTHING""",
                (name, self.env.uid, self.env.uid),
            )
        lock = "FOR UPDATE" if mode == "update" else "FOR SHARE"
        cr.execute(
            f"""SELECT id, holder, instance, epoch,
                       COALESCE(expires_at > clock_timestamp() at time zone 'UTC', false),
                       GREATEST(0, EXTRACT(EPOCH FROM expires_at
                                - clock_timestamp() at time zone 'UTC'))
                  FROM whatsapp_lease WHERE name = %s {lock}""",  # noqa: S608 (constant)
            (name,),
        )
        row = cr.fetchone()
        if row is None:
            return None
        return {
            "id": row[0],
            "holder": row[1] or False,
            "instance": row[2] or False,
            "epoch": row[3] or 0,
            "live": bool(row[4]),
            "expires_in": float(row[5] or 0.0),
        }

    @api.model
    def acquire(self, holder, instance, ttl, name="sending"):
        """Renews the caller's lease, takes a free or expired one, or says who holds it.

        ``holder`` names the daemon (``lease.name``, its host by default), ``instance``
        the process; a new process with the holder's name (the same daemon restarted)
        takes the lease over at once; the process that held it last gets it back with the same
        epoch if nobody took it meanwhile. Returns ``{"leader", "epoch", "holder",
        "expires_in"}``: ``expires_in`` is the lease's remaining time in seconds.
        """
        if not holder or not instance or len(holder) > 200 or len(instance) > 200:
            raise UserError(_("acquire needs a holder and an instance (at most 200 characters)."))
        if not isinstance(ttl, (int, float)) or not 1 <= ttl <= MAX_TTL:
            raise UserError(_("The lease lasts between 1 and %(max)s seconds.", max=MAX_TTL))
        row = self._locked_row(name, "update")
        # The same process again, even after its lease ran out (Odoo was away): nobody held it
        # in between, so the epoch stays.
        mine = row["instance"] == instance
        restarted = row["live"] and row["holder"] == holder and row["instance"] != instance
        if row["live"] and not mine and not restarted:
            return {
                "leader": False,
                "epoch": row["epoch"],
                "holder": row["holder"],
                "expires_in": row["expires_in"],
            }
        epoch = row["epoch"] if mine else row["epoch"] + 1
        self.env.cr.execute(
            """UPDATE whatsapp_lease
                  SET holder = %s, instance = %s, epoch = %s,
                      taken_at = CASE WHEN %s THEN taken_at
                                      ELSE clock_timestamp() at time zone 'UTC' END,
                      renewed_at = clock_timestamp() at time zone 'UTC',
                      expires_at = clock_timestamp() at time zone 'UTC'
                                   + %s * interval '1 second',
                      write_uid = %s, write_date = now() at time zone 'UTC'
                WHERE id = %s""",
            (holder, instance, epoch, mine, float(ttl), self.env.uid, row["id"]),
        )
        self.invalidate_model()
        return {"leader": True, "epoch": epoch, "holder": holder, "expires_in": float(ttl)}

    @api.model
    def release(self, instance, name="sending"):
        """Lets the lease go at once (a daemon stopping), if ``instance`` holds it."""
        row = self._locked_row(name, "update")
        if row["instance"] != instance or not row["live"]:
            return False
        self.env.cr.execute(
            """UPDATE whatsapp_lease SET expires_at = clock_timestamp() at time zone 'UTC',
                      write_uid = %s, write_date = now() at time zone 'UTC'
                WHERE id = %s""",
            (self.env.uid, row["id"]),
        )
        self.invalidate_model()
        return True

    @api.model
    def claim(self, epoch, model, ids, domain, values, name="sending"):
        """Writes ``values`` on the records of ``ids`` that still match ``domain``, only
        while ``epoch`` is the live lease's (fencing), in one transaction.

        Returns ``{"claimed": ids written, "lost": False}``, or ``{"claimed": [], "lost":
        True, "holder", "epoch"}`` when the caller no longer holds the lease.
        """
        if not isinstance(model, str) or not model.startswith(CLAIMABLE_PREFIX) \
                or model not in self.env or model == self._name:
            raise UserError(_("Only the WhatsApp models can be claimed, not %(model)s.",
                              model=model))
        row = self._locked_row(name, "share")
        if row is None or not row["live"] or row["epoch"] != epoch:
            return {
                "claimed": [],
                "lost": True,
                "holder": row["holder"] if row else False,
                "epoch": row["epoch"] if row else 0,
            }
        records = self.env[model].search([("id", "in", list(ids))] + list(domain or []))
        if records:
            records.write(values)
        return {"claimed": records.ids, "lost": False}
