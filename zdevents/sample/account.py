"""A deterministic, realistic Zendesk account for demos, tests and benchmarks.

:class:`SampleAccount` simulates the life of every ticket (creation, assignment, priority,
replies, pending and on-hold periods, solving, reopening, closing) and derives BOTH of
Zendesk's incremental exports from that one lifecycle, so they agree with each other:

* :meth:`SampleAccount.metric_events` - SLA ticket metric events (``activate``, ``pause``,
  ``fulfill``, ``apply_sla``, ``apply_group_sla``, ``breach``, ``update_status``, ``measure``)
  shaped exactly as ``/api/v2/incremental/ticket_metric_events`` returns them;
* :meth:`SampleAccount.ticket_events` - ticket audits with their child events, shaped as
  ``/api/v2/incremental/ticket_events`` returns them (optionally with full comment objects).

How the SLA events are derived (so analysts know what the sample contains):

* ``apply_sla`` is written when a policy applies to a metric instance (at its activation) and
  again whenever the ticket's priority change alters the policy or target. Tickets created
  without a priority get their policy later, so some instances (typically the first reply)
  are fulfilled *before* any SLA applied: their ``apply_sla`` comes after the ``fulfill``.
* ``breach`` events are written ahead with the scheduled breach time (activation + target,
  counted in business hours Mon-Fri 08:00-18:00 UTC for business-hours targets, minus paused
  time). When the clock pauses, is fulfilled or is re-targeted before that time the breach is
  marked ``deleted: true`` (and a new one is scheduled when the clock runs again). Real
  breaches carry ``deleted: false``; most are followed by a later ``fulfill``.
* ``update_status`` carries the elapsed calendar and business minutes at each fulfilment of
  an instance that has an SLA; ``measure`` events (instance 0) are written at creation.
* Nothing at or after :attr:`SampleAccount.end` is emitted (the export's "now"), so targets
  still open then are active, and breaches scheduled after it are not visible yet.

Ids are unique per stream and depend only on ``seed`` and the ticket's index. Generation is
streaming (one ticket at a time), so memory stays bounded however many tickets are asked for.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, datetime

from .hours import DAY, iso
from .lifecycle import Ticket, simulate
from .lookups import AGENTS, BRANDS, GROUP_POLICIES, GROUPS, POLICIES, TICKET_FORMS
from .metric_events import burst_metric_events, ticket_metric_events
from .ticket_events import burst_audits, ticket_audits

__all__ = [
    "AGENTS",
    "BRANDS",
    "GROUPS",
    "GROUP_POLICIES",
    "POLICIES",
    "TICKET_FORMS",
    "SampleAccount",
]


class SampleAccount:
    """A deterministic Zendesk account: SLA policies, groups, agents and ticket lifecycles.

    Parameters
    ----------
    tickets : int
        Number of tickets (ids ``1..tickets``), created across the period in id order.
    seed : int
        Same seed, same records (each ticket uses its own ``random.Random`` derived from
        ``seed`` and its index; the global RNG is never touched).
    start : str, date or datetime
        First day of the period (UTC).
    days : int
        Length of the period. :attr:`end` (``start + days``) is the export's "now": no
        record at or after it is emitted.
    burst_events : int
        Add one bulk update of this many ``measure`` metric events sharing a single second
        (mid-period), so that a page of more than 1000 items can be tested.
    burst_audits : int
        The same for ticket events: this many tag-change audits in one second.

    Attributes
    ----------
    policies : list of dict
        SLA policies (Zendesk objects: id, title, description, filter, policy_metrics).
    group_policies : list of dict
        Group SLA policies (``group_ownership_time``).
    groups : dict
        Group id -> name, for labelling ``group_id`` values ("Tier 1", "Billing", ...).
    agents, brands, ticket_forms : dict
        Further id -> name lookups (agents map to ``{"name", "group_id"}``).
    deleted_ticket_ids : frozenset of int
        Tickets deleted as spam (what ``exclude_deleted=true`` drops).

    Examples
    --------
    >>> account = SampleAccount(tickets=20, seed=1)
    >>> event = next(account.metric_events())
    >>> sorted(event)[:4]
    ['id', 'instance_id', 'metric', 'ticket_id']
    >>> account.groups[360001003]
    'Billing'
    """

    def __init__(
        self,
        tickets: int = 2000,
        *,
        seed: int = 7,
        start: str | date | datetime = "2024-01-01",
        days: int = 182,
        burst_events: int = 0,
        burst_audits: int = 0,
    ) -> None:
        if tickets < 0 or days <= 0:
            raise ValueError("tickets must be >= 0 and days > 0")
        self.tickets = int(tickets)
        self.seed = int(seed)
        self.days = int(days)
        self.start = _parse_day(start)
        self.end = self.start + self.days * DAY
        self.burst_events = int(burst_events)
        self.burst_audits = int(burst_audits)
        self.policies: list[dict] = json.loads(json.dumps(POLICIES))
        self.group_policies: list[dict] = json.loads(json.dumps(GROUP_POLICIES))
        self.groups: dict[int, str] = dict(GROUPS)
        self.agents: dict[int, dict[str, object]] = {k: dict(v) for k, v in AGENTS.items()}
        self.brands: dict[int, str] = dict(BRANDS)
        self.ticket_forms: dict[int, str] = dict(TICKET_FORMS)
        self.deleted_ticket_ids: frozenset[int] = frozenset(
            i + 1 for i in range(self.tickets) if (i * 2654435761 + self.seed) % 97 == 0
        )

    def __repr__(self) -> str:
        return (
            f"SampleAccount(tickets={self.tickets}, seed={self.seed}, "
            f"start={iso(self.start)[:10]!r}, days={self.days})"
        )

    # ------------------------------------------------------------------ public streams
    def metric_events(self) -> Iterator[dict]:
        """Yield every SLA metric event, ticket by ticket (time order within a ticket).

        Examples
        --------
        >>> types = {e["type"] for e in SampleAccount(tickets=50).metric_events()}
        >>> {"apply_sla", "breach", "fulfill", "measure"} <= types
        True
        """
        for _, _, record in self.keyed_metric_events():
            yield record

    def ticket_events(self, include_comments: bool = False) -> Iterator[dict]:
        """Yield every ticket audit (``event_type: "Audit"``) with its child events.

        Parameters
        ----------
        include_comments : bool
            Add full comment objects to ``child_events`` (what ``include=comment_events``
            asks Zendesk for); without it comments show only as ``comment_present`` /
            ``comment_public`` flags.

        Examples
        --------
        >>> audit = next(SampleAccount(tickets=5).ticket_events())
        >>> audit["event_type"], audit["child_events"][0]["event_type"]
        ('Audit', 'Create')
        """
        for _, _, record in self.keyed_ticket_events(include_comments):
            yield record

    def keyed_metric_events(self) -> Iterator[tuple[int, int, dict]]:
        """:meth:`metric_events` as ``(unix_time, id, record)``: what a server sorts pages by.

        Examples
        --------
        >>> t, rid, record = next(SampleAccount(tickets=1).keyed_metric_events())
        >>> rid == record["id"], record["type"]
        (True, 'measure')
        """
        for idx in range(self.tickets):
            yield from ticket_metric_events(self._ticket(idx), self.end)
        if self.burst_events:
            yield from burst_metric_events(self._burst_time, self.burst_events, self.tickets)

    def keyed_ticket_events(
        self, include_comments: bool = False
    ) -> Iterator[tuple[int, int, dict]]:
        """:meth:`ticket_events` as ``(unix_time, id, record)``: what a server sorts pages by.

        Examples
        --------
        >>> t, rid, audit = next(SampleAccount(tickets=1).keyed_ticket_events())
        >>> (t, rid) == (audit["timestamp"], audit["id"])
        True
        """
        for idx in range(self.tickets):
            ticket = self._ticket(idx)
            yield from ticket_audits(ticket, seed=self.seed, include_comments=include_comments)
        if self.burst_audits:
            yield from burst_audits(self._burst_time, self.burst_audits, self.tickets)

    def _ticket(self, idx: int) -> Ticket:
        """The simulated life of the ticket at index ``idx`` (id ``idx + 1``): its updates."""
        return simulate(idx, seed=self.seed, start=self.start, end=self.end, tickets=self.tickets)

    @property
    def _burst_time(self) -> int:
        """Unix seconds of the bursts: noon of the middle day (one second, many records)."""
        return self.start + (self.days // 2) * DAY + 12 * 3600


def _parse_day(value: str | date | datetime) -> int:
    from ..dates import to_utc  # the one time parser

    return int(to_utc(value, name="start").timestamp())  # type: ignore[union-attr]
