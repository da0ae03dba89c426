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
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime

__all__ = [
    "AGENTS",
    "BRANDS",
    "GROUPS",
    "GROUP_POLICIES",
    "POLICIES",
    "TICKET_FORMS",
    "SampleAccount",
]

# ---------------------------------------------------------------------------- lookups
GROUPS: dict[int, str] = {
    360001001: "Tier 1",
    360001002: "Tier 2",
    360001003: "Billing",
    360001004: "Enterprise Success",
}
"""Group id -> group name (ticket events carry only ``group_id``)."""

_TIER1, _TIER2, _BILLING, _ENTERPRISE = GROUPS
_AGENT_NAMES = [
    "Ada Lovelace",
    "Alan Turing",
    "Grace Hopper",
    "Edsger Dijkstra",
    "Barbara Liskov",
    "Donald Knuth",
    "Frances Allen",
    "Ken Thompson",
    "Margaret Hamilton",
    "Dennis Ritchie",
    "Radia Perlman",
    "John Backus",
    "Katherine Johnson",
    "Niklaus Wirth",
    "Lynn Conway",
    "Tony Hoare",
    "Hedy Lamarr",
    "Leslie Lamport",
]
AGENTS: dict[int, dict[str, object]] = {}
"""Agent user id -> ``{"name": ..., "group_id": ...}``."""
for _g, _gid in enumerate(GROUPS):
    for _k in range(4 if _gid != _TIER1 else 6):
        _n = len(AGENTS)
        AGENTS[380000100 + _n] = {"name": _AGENT_NAMES[_n % len(_AGENT_NAMES)], "group_id": _gid}
_AGENTS_BY_GROUP: dict[int, list[int]] = {
    gid: [a for a, info in AGENTS.items() if info["group_id"] == gid] for gid in GROUPS
}
BRANDS: dict[int, str] = {360000501: "Sample Cloud", 360000502: "Sample Pay"}
"""Brand id -> brand name."""
TICKET_FORMS: dict[int, str] = {
    360000601: "Default ticket form",
    360000602: "Billing question",
    360000603: "Bug report",
}
"""Ticket form id -> form name."""

_PRIORITIES = ("low", "normal", "high", "urgent")
_CHANNELS = ("email", "web", "chat", "api", "mobile")
_CHANNEL_WEIGHTS = (42, 33, 10, 8, 7)
_VIA_STRINGS = {
    "email": "Mail",
    "web": "Web form",
    "chat": "Chat",
    "api": "Web service",
    "mobile": "Mobile SDK",
    "rule": "Rule",
}
_SYSTEMS = (
    {
        "client": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/120.0",
        "ip_address": "203.0.113.10",
        "location": "Dublin, D, Ireland",
        "latitude": 53.3331,
        "longitude": -6.2489,
    },
    {
        "client": "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_2) Safari/605.1.15",
        "ip_address": "198.51.100.7",
        "location": "San Francisco, CA, United States",
        "latitude": 37.7758,
        "longitude": -122.4128,
    },
    {
        "client": "Zendesk Mobile/5.3 (iOS 17.2)",
        "ip_address": "192.0.2.33",
        "location": "Berlin, BE, Germany",
        "latitude": 52.5167,
        "longitude": 13.4,
    },
)
_TAGS = ("login", "bug", "feature_request", "refund", "invoice", "mobile", "api", "vip", "outage")

# ---------------------------------------------------------------------------- policies
# Targets in minutes per Zendesk policy metric and priority (low, normal, high, urgent).
_ENTERPRISE_TARGETS = {
    "first_reply_time": (240, 120, 60, 30),
    "next_reply_time": (480, 240, 120, 60),
    "periodic_update_time": (420, 240, 120, 60),
    "pausable_update_time": (360, 180, 90, 50),
    "requester_wait_time": (720, 420, 210, 120),
    "agent_work_time": (720, 360, 240, 120),
    "total_resolution_time": (2880, 2160, 1440, 720),
}
_STANDARD_TARGETS = {  # business hours (Mon-Fri 08:00-18:00 UTC)
    "first_reply_time": (480, 240, 120, 60),
    "next_reply_time": (600, 480, 240, 120),
    "periodic_update_time": (480, 360, 200, 100),
    "pausable_update_time": (480, 360, 180, 90),
    "requester_wait_time": (900, 720, 360, 180),
    "agent_work_time": (960, 720, 360, 180),
    "total_resolution_time": (1800, 1440, 900, 540),
}
_URGENT_TARGETS = {
    "first_reply_time": (None, None, None, 20),
    "next_reply_time": (None, None, None, 45),
    "periodic_update_time": (None, None, None, 120),
    "pausable_update_time": (None, None, None, 90),
    "requester_wait_time": (None, None, None, 480),
    "agent_work_time": (None, None, None, 360),
    "total_resolution_time": (None, None, None, 1440),
}
_POLICY_SPECS = (
    (
        360000301,
        "Enterprise",
        "Enterprise customers: 24/7 calendar-hour targets",
        False,
        _ENTERPRISE_TARGETS,
        {"all": [{"field": "organization_id", "operator": "is", "value": 360000901}], "any": []},
    ),
    (
        360000302,
        "Urgent escalations",
        "Urgent tickets from every other customer, 24/7",
        False,
        _URGENT_TARGETS,
        {"all": [{"field": "priority", "operator": "is", "value": "urgent"}], "any": []},
    ),
    (
        360000303,
        "Standard",
        "Everyone else, business hours (Mon-Fri 08:00-18:00 UTC)",
        True,
        _STANDARD_TARGETS,
        {"all": [{"field": "priority", "operator": "is_not", "value": ""}], "any": []},
    ),
)
_GROUP_POLICY = (
    360000401,
    "Billing handoffs",
    "Billing must hand back or solve within 20 business hours",
    True,
    1200,
)


def _policy_object(pid, title, description, business, targets, filt, position) -> dict:
    metrics = []
    for metric, per_priority in targets.items():
        for prio, target in zip(_PRIORITIES, per_priority, strict=True):
            if target is not None:
                metrics.append(
                    {
                        "priority": prio,
                        "metric": metric,
                        "target": target,
                        "target_in_seconds": target * 60,
                        "business_hours": business,
                    }
                )
    return {
        "id": pid,
        "url": f"https://sample.zendesk.com/api/v2/slas/policies/{pid}.json",
        "title": title,
        "description": description,
        "position": position,
        "filter": filt,
        "policy_metrics": metrics,
        "created_at": "2023-06-01T09:00:00Z",
        "updated_at": "2023-11-15T16:30:00Z",
    }


POLICIES: list[dict] = [
    _policy_object(*spec, position) for position, spec in enumerate(_POLICY_SPECS, start=1)
]
"""The sample's SLA policies as Zendesk's ``/api/v2/slas/policies`` returns them."""
GROUP_POLICIES: list[dict] = [
    {
        "id": _GROUP_POLICY[0],
        "title": _GROUP_POLICY[1],
        "description": _GROUP_POLICY[2],
        "position": 1,
        "filter": {"all": [{"field": "group_id", "operator": "includes", "value": [_BILLING]}]},
        "policy_metrics": [
            {
                "priority": p,
                "metric": "group_ownership_time",
                "target": _GROUP_POLICY[4],
                "target_in_seconds": _GROUP_POLICY[4] * 60,
                "business_hours": True,
            }
            for p in _PRIORITIES
        ],
    }
]
"""The sample's group SLA policy (``group_ownership_time`` while a ticket sits in Billing)."""

_POLICY_REF = {
    spec[0]: {"id": spec[0], "title": spec[1], "description": spec[2]} for spec in _POLICY_SPECS
}
_GROUP_POLICY_REF = {
    "id": _GROUP_POLICY[0],
    "title": _GROUP_POLICY[1],
    "description": _GROUP_POLICY[2],
}
_POLICY_BY_ID = {spec[0]: spec for spec in _POLICY_SPECS}
_ENTERPRISE_ID, _URGENT_ID, _STANDARD_ID = (spec[0] for spec in _POLICY_SPECS)
_ENTERPRISE_ORG = 360000901

# Zendesk metric-event names, and the policy metric that targets each instance.
_REPLY, _RWT, _AWT, _RES, _PERIODIC, _PAUSABLE, _GROUP = (
    "reply_time",
    "requester_wait_time",
    "agent_work_time",
    "resolution_time",
    "periodic_update_time",
    "pausable_update_time",
    "group_ownership_time",
)
_TICKET_METRICS = (_AWT, _PAUSABLE, _PERIODIC, _REPLY, _RWT, _RES)
_POLICY_METRIC = {
    _RWT: "requester_wait_time",
    _AWT: "agent_work_time",
    _RES: "total_resolution_time",
    _PERIODIC: "periodic_update_time",
    _PAUSABLE: "pausable_update_time",
}

# ---------------------------------------------------------------------------- time helpers
_DAY = 86400
_BH_START, _BH_END = 8 * 3600, 18 * 3600
_DAY_PREFIX: dict[int, str] = {}


def _iso(ts: int) -> str:
    """Unix seconds -> ``2024-03-01T12:53:12Z`` (fast, cached per day)."""
    day, rem = divmod(ts, _DAY)
    prefix = _DAY_PREFIX.get(day)
    if prefix is None:
        prefix = datetime.fromtimestamp(day * _DAY, tz=UTC).strftime("%Y-%m-%dT")
        _DAY_PREFIX[day] = prefix
    hour, rem = divmod(rem, 3600)
    minute, sec = divmod(rem, 60)
    return f"{prefix}{hour:02d}:{minute:02d}:{sec:02d}Z"


def _is_workday(day: int) -> bool:
    return (day + 3) % 7 < 5  # 1970-01-01 was a Thursday (weekday 3)


def _business_seconds(a: int, b: int) -> int:
    """Seconds of business time (Mon-Fri 08:00-18:00 UTC) in ``[a, b)``."""
    total = 0
    t = a
    while t < b:
        day = t // _DAY
        start = day * _DAY
        if _is_workday(day):
            s = max(t, start + _BH_START)
            e = min(b, start + _BH_END)
            if e > s:
                total += e - s
        t = start + _DAY
    return total


def _add_business(t: int, seconds: int) -> int:
    """The time at which ``seconds`` of business time have elapsed after ``t``."""
    if seconds <= 0:
        return t
    while True:
        day = t // _DAY
        start = day * _DAY
        if _is_workday(day):
            s = max(t, start + _BH_START)
            e = start + _BH_END
            if s < e:
                if s + seconds <= e:
                    return s + seconds
                seconds -= e - s
        t = start + _DAY


def _span(a: int, b: int, business: bool) -> int:
    return _business_seconds(a, b) if business else max(0, b - a)


def _advance(t: int, seconds: int, business: bool) -> int:
    return _add_business(t, seconds) if business else t + max(0, seconds)


def _parse_day(value: str | date | datetime) -> int:
    from ..dates import to_utc  # the one time parser

    return int(to_utc(value, name="start").timestamp())  # type: ignore[union-attr]


# ---------------------------------------------------------------------------- lifecycle
@dataclass
class _Step:
    """One update of a ticket (becomes one audit)."""

    t: int
    actor: str  # "requester" | "agent" | "system"
    author_id: int
    channel: str  # via channel of the update
    changes: dict[str, object]
    comment: str | None = None  # None | "public" | "private"
    body: str = ""
    kind: str = "update"


@dataclass
class _Ticket:
    idx: int
    ticket_id: int
    requester_id: int
    channel: str
    enterprise: bool
    steps: list[_Step] = field(default_factory=list)


class _Clock:
    """The activate/pause/fulfill history of one metric's instances on one ticket."""

    __slots__ = ("events", "n", "state")

    def __init__(self) -> None:
        self.n = 0
        self.state: str | None = None  # None, "active", "paused", "done"
        self.events: dict[int, list[tuple[int, str]]] = {}

    def start(self, t: int) -> None:
        self.n += 1
        self.events[self.n] = [(t, "activate")]
        self.state = "active"

    def _move(self, t: int, allowed: tuple[str, ...], event: str, state: str) -> None:
        """Record ``event`` at ``t`` and enter ``state``, when the clock is in ``allowed``."""
        if self.state in allowed:
            self.events[self.n].append((t, event))
            self.state = state

    def resume(self, t: int) -> None:
        self._move(t, ("paused",), "activate", "active")

    def reactivate(self, t: int) -> None:
        self._move(t, ("done",), "activate", "active")

    def pause(self, t: int) -> None:
        self._move(t, ("active",), "pause", "paused")

    def fulfill(self, t: int) -> None:
        self._move(t, ("active", "paused"), "fulfill", "done")

    def start_or_resume(self, t: int) -> None:
        if self.state == "paused":
            self.resume(t)
        elif self.state != "active":
            self.start(t)


_BODIES_REQUESTER = (
    "I can't log in since this morning.",
    "We were charged twice this month.",
    "The export button does nothing.",
    "How do I add a teammate?",
    "Any update on this?",
    "Thanks, that worked!",
    "Still broken for us, see attached steps.",
    "The API returns 500.",
)
_BODIES_AGENT = (
    "Thanks for reaching out, we're looking into it.",
    "Could you send us a screenshot?",
    "We've refunded the duplicate charge.",
    "A fix is rolling out today.",
    "I've escalated this to our engineers.",
    "Glad it works now, closing this ticket.",
)
_BODIES_NOTE = ("Waiting on engineering.", "Checked logs, see JIRA-1234.", "Needs billing review.")


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
        self.end = self.start + self.days * _DAY
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
            f"start={_iso(self.start)[:10]!r}, days={self.days})"
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
        for _, _, record in self._keyed_metric_events():
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
        for _, _, record in self._keyed_ticket_events(include_comments):
            yield record

    def _keyed_metric_events(self) -> Iterator[tuple[int, int, dict]]:
        """``(unix_time, id, record)`` for every metric event (used by the local server)."""
        for idx in range(self.tickets):
            yield from self._ticket_metric_events(self._simulate(idx))
        yield from self._burst_metric_events()

    def _keyed_ticket_events(
        self, include_comments: bool = False
    ) -> Iterator[tuple[int, int, dict]]:
        """``(unix_time, id, record)`` for every audit (used by the local server)."""
        for idx in range(self.tickets):
            yield from self._ticket_audits(self._simulate(idx), include_comments)
        yield from self._burst_audits()

    # ------------------------------------------------------------------ simulation
    def _simulate(self, idx: int) -> _Ticket:
        rng = random.Random(self.seed * 4_294_967_296 + idx)
        span = self.end - self.start
        # creation times increase with the ticket id; 70% of them fall in 08:00-18:00 UTC
        raw = self.start + span * (idx + rng.random()) / max(1, self.tickets)
        day_start = int(raw // _DAY) * _DAY
        frac = (raw - day_start) / _DAY
        if frac < 0.15:
            sec = frac / 0.15 * _BH_START
        elif frac < 0.85:
            sec = _BH_START + (frac - 0.15) / 0.7 * (_BH_END - _BH_START)
        else:
            sec = _BH_END + (frac - 0.85) / 0.15 * (_DAY - _BH_END)
        t0 = int(day_start + sec)
        progress = (t0 - self.start) / span
        pace = 1.2 - 0.45 * progress  # agents get a little faster week after week

        enterprise = rng.random() < 0.22
        channel = rng.choices(_CHANNELS, _CHANNEL_WEIGHTS)[0]
        priority: str | None = rng.choices(_PRIORITIES, (22, 50, 20, 8))[0]
        late_priority = None
        if not enterprise and rng.random() < 0.07:
            late_priority, priority = priority, None  # triaged later: the SLA applies late
        tags = sorted(rng.sample(_TAGS, rng.choice((0, 1, 1, 2))))
        if enterprise:
            group = _ENTERPRISE if rng.random() < 0.6 else _TIER1
            tags = sorted({*tags, "enterprise"})
        else:
            group = rng.choices((_TIER1, _TIER2, _BILLING), (62, 15, 23))[0]
        if group == _BILLING:
            form = 360000602
        else:
            form = 360000603 if "bug" in tags else 360000601
        brand = 360000502 if group == _BILLING and rng.random() < 0.7 else 360000501
        requester = 90_000_000 + rng.randrange(max(1, int(self.tickets * 0.7)) + 10)
        ticket = _Ticket(idx, idx + 1, requester, channel, enterprise)
        steps = ticket.steps

        # agents pace themselves on the targets of the policy in force (calendar or business)
        service = [priority or late_priority or "normal"]

        def agent_after(t: int, metric: str, ratio: float, sigma: float = 0.85) -> int:
            spec = _POLICY_BY_ID[_policy_for(enterprise, service[0])]
            target = spec[4][metric][_PRIORITIES.index(service[0])]
            minutes = target * ratio * pace * rng.lognormvariate(0.0, sigma)
            return _advance(t, max(60, int(minutes * 60)), spec[3])

        def customer_after(t: int) -> int:
            return t + max(120, int(rng.lognormvariate(math.log(5 * 3600), 1.0)))

        agents = _AGENTS_BY_GROUP[group]
        assignee: int | None = None
        status = "new"
        create_changes: dict[str, object] = {
            "subject": rng.choice(_BODIES_REQUESTER)[:40],
            "requester_id": requester,
            "status": "new",
            "priority": priority,
            "type": "question" if rng.random() < 0.6 else "incident",
            "group_id": group,
            "brand_id": brand,
            "ticket_form_id": form,
            "tags": tags,
        }
        steps.append(
            _Step(
                t0,
                "requester",
                requester,
                channel,
                create_changes,
                "public",
                rng.choice(_BODIES_REQUESTER),
                "create",
            )
        )
        t = t0
        if rng.random() < 0.75:
            t = agent_after(t, "first_reply_time", 0.12)
            assignee = rng.choice(agents)
            steps.append(
                _Step(
                    t,
                    "agent",
                    assignee,
                    "web",
                    {"status": "open", "assignee_id": assignee},
                    kind="assign",
                )
            )
            status = "open"

        rounds = 1 + min(int(rng.expovariate(1 / 0.9)), 4)
        priority_change_round = rng.randrange(rounds) if rng.random() < 0.12 else -1
        group_change_round = rng.randrange(rounds) if rng.random() < 0.09 else -1
        solved = False
        for r in range(rounds):
            last = r == rounds - 1
            author = assignee or rng.choice(agents)
            if r == priority_change_round and priority is not None:
                t = agent_after(t, "first_reply_time", 0.05)
                new = rng.choice([p for p in _PRIORITIES if p != priority])
                steps.append(
                    _Step(
                        t,
                        "agent",
                        author,
                        "web",
                        {"priority": new},
                        "private",
                        rng.choice(_BODIES_NOTE),
                        "priority",
                    )
                )
                priority = service[0] = new
            if r == group_change_round:
                t = agent_after(t, "first_reply_time", 0.05)
                new_group = _BILLING if group != _BILLING else rng.choice((_TIER1, _TIER2))
                group, agents = new_group, _AGENTS_BY_GROUP[new_group]
                assignee = rng.choice(agents)
                steps.append(
                    _Step(
                        t,
                        "agent",
                        author,
                        "web",
                        {"group_id": group, "assignee_id": assignee},
                        "private",
                        rng.choice(_BODIES_NOTE),
                        "group",
                    )
                )
                author = assignee
            if r > 0 and rng.random() < 0.12:  # on hold while waiting on a third party
                t = agent_after(t, "next_reply_time", 0.1)
                steps.append(
                    _Step(
                        t,
                        "agent",
                        author,
                        "web",
                        {"status": "hold"},
                        "private",
                        rng.choice(_BODIES_NOTE),
                        "hold",
                    )
                )
                t = t + max(600, int(rng.lognormvariate(math.log(4 * 3600), 0.8)))
                steps.append(_Step(t, "agent", author, "api", {"status": "open"}, kind="resume"))
                status = "open"
            metric = "first_reply_time" if r == 0 else "next_reply_time"
            ratio = 0.42 if r == 0 else 0.38
            t = agent_after(t, metric, ratio)
            if late_priority is not None and r == 0:
                # triage sets the priority just after the first reply: the policy applies now
                steps.append(
                    _Step(
                        t,
                        "agent",
                        author,
                        "web",
                        {"status": "open" if status == "new" else status, "assignee_id": author}
                        if assignee is None
                        else {},
                        "public",
                        rng.choice(_BODIES_AGENT),
                        "reply",
                    )
                )
                assignee = assignee or author
                status = "open"
                t += rng.randint(60, 1800)
                steps.append(
                    _Step(t, "agent", author, "web", {"priority": late_priority}, kind="priority")
                )
                priority, late_priority = late_priority, None
                new_status = "pending"
                steps.append(
                    _Step(t + 1, "agent", author, "web", {"status": "pending"}, kind="update")
                )
                t += 1
                status = new_status
            else:
                roll = rng.random()
                new_status = (
                    "solved" if last and roll < 0.45 else ("pending" if roll < 0.8 else "open")
                )
                changes: dict[str, object] = {}
                if new_status != status:
                    changes["status"] = new_status
                if assignee is None:
                    assignee = author
                    changes["assignee_id"] = author
                steps.append(
                    _Step(
                        t,
                        "agent",
                        author,
                        "web",
                        changes,
                        "public",
                        rng.choice(_BODIES_AGENT),
                        "reply",
                    )
                )
                status = new_status
            if status == "solved":
                solved = True
                break
            if status == "pending":
                if last and rng.random() < 0.5:
                    # the customer never answers: solved by the agent a couple of days later
                    t = _advance(t, int(rng.uniform(1.0, 3.0) * 36000), True)
                    steps.append(
                        _Step(t, "agent", author, "web", {"status": "solved"}, kind="solve")
                    )
                    solved = True
                    break
                t = customer_after(t)
                steps.append(
                    _Step(
                        t,
                        "requester",
                        requester,
                        channel,
                        {"status": "open"},
                        "public",
                        rng.choice(_BODIES_REQUESTER),
                        "customer",
                    )
                )
                status = "open"
        if not solved:
            t = agent_after(t, "next_reply_time", 0.35)
            steps.append(
                _Step(
                    t,
                    "agent",
                    assignee or rng.choice(agents),
                    "web",
                    {"status": "solved"},
                    "public",
                    rng.choice(_BODIES_AGENT),
                    "solve",
                )
            )
        if rng.random() < 0.08:  # reopened by the requester, answered and solved again
            t = customer_after(t)
            steps.append(
                _Step(
                    t,
                    "requester",
                    requester,
                    channel,
                    {"status": "open"},
                    "public",
                    rng.choice(_BODIES_REQUESTER),
                    "reopen",
                )
            )
            t = agent_after(t, "next_reply_time", 0.4)
            steps.append(
                _Step(
                    t,
                    "agent",
                    assignee or rng.choice(agents),
                    "web",
                    {"status": "solved"},
                    "public",
                    rng.choice(_BODIES_AGENT),
                    "solve",
                )
            )
        steps.append(_Step(t + 4 * _DAY, "system", -1, "rule", {"status": "closed"}, kind="close"))
        # the export's "now": drop whatever happens later (the ticket is still open then)
        while steps and steps[-1].t >= self.end:
            steps.pop()
        return ticket

    # ------------------------------------------------------------------ metric events
    def _ticket_metric_events(self, ticket: _Ticket) -> list[tuple[int, int, dict]]:
        clocks = {m: _Clock() for m in _TICKET_METRICS}
        group_clock = (
            _Clock() if any(s.changes.get("group_id") == _BILLING for s in ticket.steps) else None
        )
        applied: dict[tuple[str, int], tuple] = {}
        applies: dict[tuple[str, int], list[tuple[int, int, bool, dict, str]]] = {}
        out: list[
            tuple[int, int, str, int, str, dict | None]
        ] = []  # t, order, metric, inst, type, extra
        status = "new"
        priority: str | None = None
        group: int | None = None
        had_policy = False
        reply, rwt, awt, res = clocks[_REPLY], clocks[_RWT], clocks[_AWT], clocks[_RES]
        periodic, pausable = clocks[_PERIODIC], clocks[_PAUSABLE]

        for step in ticket.steps:
            t = step.t
            ch = step.changes
            if step.kind == "create":
                priority = ch.get("priority")  # type: ignore[assignment]
                group = ch.get("group_id")  # type: ignore[assignment]
                for metric in _TICKET_METRICS:
                    out.append((t, 0, metric, 0, "measure", None))
                    clocks[metric].start(t)
                if group_clock is not None:
                    group_clock.start(t)
                status = "new"
            else:
                new = ch.get("status", status)
                if "priority" in ch:
                    priority = ch["priority"]  # type: ignore[assignment]
                if step.actor == "agent" and step.comment == "public":
                    reply.fulfill(t)
                    periodic.fulfill(t)
                    pausable.fulfill(t)
                if "group_id" in ch:
                    group = ch["group_id"]  # type: ignore[assignment]
                    if group_clock is not None:
                        group_clock.fulfill(t)
                        group_clock.start(t)
                if new == "solved":
                    for clock in clocks.values():
                        clock.fulfill(t)
                    if group_clock is not None:
                        group_clock.fulfill(t)
                elif new == "pending":
                    for clock in (rwt, awt, periodic, pausable):
                        clock.pause(t)
                elif new == "hold":
                    awt.pause(t)
                    pausable.pause(t)
                elif new in ("open", "new"):
                    if status == "solved":
                        for clock in (rwt, awt, res):
                            clock.reactivate(t)
                        if group_clock is not None:
                            group_clock.reactivate(t)
                    else:
                        rwt.resume(t)
                        awt.resume(t)
                    periodic.start_or_resume(t)
                    pausable.start_or_resume(t)
                if (
                    step.actor == "requester"
                    and step.comment == "public"
                    and reply.state != "active"
                ):
                    reply.start(t)
                status = new  # type: ignore[assignment]
            # SLA (re)application for each metric's current instance
            policy = (
                _policy_for(ticket.enterprise, priority)
                if priority
                else (_ENTERPRISE_ID if ticket.enterprise else None)
            )
            first_application = policy is not None and not had_policy
            for metric, clock in clocks.items():
                if clock.n == 0 or policy is None:
                    continue
                key = (metric, clock.n)
                wanted = _target(policy, metric, clock.n, priority or "normal")
                if wanted is None or applied.get(key) == wanted:
                    continue
                if clock.state == "done" and not (first_application and key not in applied):
                    continue
                applied[key] = wanted
                applies.setdefault(key, []).append(
                    (t, wanted[1], wanted[2], _POLICY_REF[wanted[0]], "sla")
                )
            if group_clock is not None and group_clock.n and group == _BILLING:
                key = (_GROUP, group_clock.n)
                if key not in applied and group_clock.state != "done":
                    applied[key] = (_GROUP_POLICY[0], _GROUP_POLICY[4], True)
                    applies[key] = [(t, _GROUP_POLICY[4], True, _GROUP_POLICY_REF, "group_sla")]
            had_policy = had_policy or policy is not None

        all_clocks = dict(clocks)
        if group_clock is not None:
            all_clocks[_GROUP] = group_clock
        for metric, clock in all_clocks.items():
            for inst, events in clock.events.items():
                for t, kind in events:
                    out.append((t, 3 if kind == "activate" else 1, metric, inst, kind, None))
                inst_applies = applies.get((metric, inst))
                if inst_applies:
                    _sla_events(out, metric, inst, events, inst_applies)

        ticket_id = ticket.ticket_id
        end = self.end
        base = 10_000_000_000 + ticket.idx * 1000
        out.sort(key=lambda e: (e[0], e[1]))
        result = []
        stamps: dict[int, str] = {}
        for k, (t, _, metric, inst, kind, extra) in enumerate(out):
            if t >= end or k >= 1000:
                break
            stamp = stamps.get(t)
            if stamp is None:
                stamp = stamps[t] = _iso(t)
            record = {
                "id": base + k,
                "ticket_id": ticket_id,
                "metric": metric,
                "instance_id": inst,
                "type": kind,
                "time": stamp,
            }
            if extra:
                record.update(extra)
            result.append((t, base + k, record))
        return result

    @property
    def _burst_time(self) -> int:
        """Unix seconds of the bursts: noon of the middle day (one second, many records)."""
        return self.start + (self.days // 2) * _DAY + 12 * 3600

    def _burst_metric_events(self) -> Iterator[tuple[int, int, dict]]:
        if not self.burst_events:
            return
        t = self._burst_time
        stamp = _iso(t)
        tickets = max(1, self.tickets)
        for k in range(self.burst_events):
            rid = 90_000_000_000 + k
            yield (
                t,
                rid,
                {
                    "id": rid,
                    "ticket_id": 1 + k % tickets,
                    "metric": _TICKET_METRICS[k % len(_TICKET_METRICS)],
                    "instance_id": 0,
                    "type": "measure",
                    "time": stamp,
                },
            )

    # ------------------------------------------------------------------ ticket events
    def _ticket_audits(
        self, ticket: _Ticket, include_comments: bool
    ) -> list[tuple[int, int, dict]]:
        rng = random.Random(self.seed * 4_294_967_296 + ticket.idx + 7_777_777)
        audit_base = 20_000_000_000 + ticket.idx * 100
        child_base = 30_000_000_000 + ticket.idx * 1000
        child_n = 0
        state: dict[str, object] = {}
        system = _SYSTEMS[ticket.idx % len(_SYSTEMS)]
        result = []
        for k, step in enumerate(ticket.steps[:100]):
            audit_id = audit_base + k
            created_at = _iso(step.t)
            via = _via(step, ticket, rng)
            via_str = _VIA_STRINGS.get(step.channel, "Web form")
            comment_present = step.comment is not None
            comment_public = step.comment == "public"
            children: list[dict] = []

            flags = {
                "via": via_str,
                "via_reference_id": None,
                "comment_present": comment_present,
                "comment_public": comment_public,
            }

            def child(event_type: str, flags: dict = flags, **fields: object) -> dict:
                nonlocal child_n
                event = {"id": child_base + child_n, **flags, "event_type": event_type, **fields}
                child_n += 1
                return event

            if include_comments and step.comment is not None:
                cid = child_base + child_n
                child_n += 1
                children.append(
                    {
                        "id": cid,
                        "via": via
                        if isinstance(via, dict)
                        else {"channel": step.channel, "source": {}},
                        "via_reference_id": None,
                        "type": "Comment",
                        "author_id": step.author_id,
                        "body": step.body,
                        "html_body": f'<div class="zd-comment" dir="auto"><p>{step.body}</p></div>',
                        "plain_body": step.body,
                        "public": comment_public,
                        "attachments": [],
                        "audit_id": audit_id,
                        "created_at": created_at,
                        "event_type": "Comment",
                    }
                )
            for name, value in step.changes.items():
                if step.kind == "create":
                    if name == "tags":
                        children.append(
                            child(
                                "Create",
                                tags=list(value),
                                added_tags=list(value),  # type: ignore[call-overload]
                                removed_tags=[],
                            )
                        )
                    elif value is not None:
                        children.append(child("Create", **{name: value}))
                    state[name] = value
                    continue
                previous = state.get(name)
                if previous == value:
                    continue
                children.append(child("Change", **{name: value, "previous_value": previous}))
                state[name] = value
            if step.kind in ("priority", "group") and rng.random() < 0.5:
                old_tags = list(state.get("tags") or [])  # type: ignore[call-overload]
                tag = "escalated" if step.kind == "priority" else "reassigned"
                if tag not in old_tags:
                    new_tags = sorted([*old_tags, tag])
                    children.append(
                        child(
                            "Change",
                            tags=new_tags,
                            added_tags=[tag],
                            removed_tags=[],
                            previous_value=old_tags,
                        )
                    )
                    state["tags"] = new_tags
            if step.kind == "create" or (step.actor == "agent" and step.comment == "public"):
                title = (
                    "Notify requester and CCs of received request"
                    if step.kind == "create"
                    else "Notify requester and CCs of comment update"
                )
                notification = child(
                    "Notification",
                    subject="[Sample] Re: {{ticket.title}}",
                    body="Your request ({{ticket.id}}) has been updated.",
                    recipients=[ticket.requester_id],
                )
                notification["via"] = "Rule"
                notification["via_reference_id"] = 360000700 + (step.kind == "create")
                notification["title"] = title
                children.append(notification)
            result.append(
                (
                    step.t,
                    audit_id,
                    {
                        "id": audit_id,
                        "ticket_id": ticket.ticket_id,
                        "timestamp": step.t,
                        "created_at": created_at,
                        "updater_id": step.author_id,
                        "via": via,
                        "system": dict(system) if step.actor != "system" else {},
                        "event_type": "Audit",
                        "child_events": children,
                    },
                )
            )
        return result

    def _burst_audits(self) -> Iterator[tuple[int, int, dict]]:
        if not self.burst_audits:
            return
        t = self._burst_time
        stamp = _iso(t)
        tickets = max(1, self.tickets)
        via = {"channel": "api", "source": {"from": {}, "to": {}, "rel": None}}
        for k in range(self.burst_audits):
            aid = 91_000_000_000 + k
            yield (
                t,
                aid,
                {
                    "id": aid,
                    "ticket_id": 1 + k % tickets,
                    "timestamp": t,
                    "created_at": stamp,
                    "updater_id": 380000100,
                    "via": via,
                    "system": {},
                    "event_type": "Audit",
                    "child_events": [
                        {
                            "id": 92_000_000_000 + k,
                            "via": "Web service",
                            "via_reference_id": None,
                            "comment_present": False,
                            "comment_public": False,
                            "event_type": "Change",
                            "added_tags": ["bulk_update"],
                            "removed_tags": [],
                        }
                    ],
                },
            )


# ---------------------------------------------------------------------------- helpers
def _policy_for(enterprise: bool, priority: str | None) -> int:
    if enterprise:
        return _ENTERPRISE_ID
    if priority == "urgent":
        return _URGENT_ID
    return _STANDARD_ID


def _target(policy: int, metric: str, instance: int, priority: str) -> tuple[int, int, bool] | None:
    spec = _POLICY_BY_ID[policy]
    if metric == _REPLY:
        name = "first_reply_time" if instance == 1 else "next_reply_time"
    else:
        name = _POLICY_METRIC[metric]
    value = spec[4][name][_PRIORITIES.index(priority)]
    if value is None:
        return None
    return (policy, value, spec[3])


def _sla_events(
    out: list,
    metric: str,
    inst: int,
    events: list[tuple[int, str]],
    inst_applies: list[tuple[int, int, bool, dict, str]],
) -> None:
    """Append apply/breach/update_status events of one instance to ``out``.

    The breach is scheduled whenever the clock runs under a target; it is invalidated
    (``deleted: true``) when the clock pauses, is fulfilled or is re-targeted first.
    """
    points = [(t, 0, kind, None) for t, kind in events]
    points += [(a[0], 1, "apply", a) for a in inst_applies]
    points.sort(key=lambda p: (p[0], p[1]))
    running_since: int | None = None
    done_cal = done_bus = 0
    target: tuple | None = None
    scheduled: int | None = None
    breached = False

    def settle(t: int) -> None:
        """Write the scheduled breach: real if it fell at or before ``t``, else invalidated."""
        nonlocal scheduled, breached
        if scheduled is None:
            return
        real = scheduled <= t
        out.append((scheduled, 5, metric, inst, "breach", {"deleted": not real}))
        breached = breached or real
        scheduled = None

    for t, _, kind, apply in points:
        if kind in ("pause", "fulfill"):
            if running_since is not None:
                settle(t)
                done_cal += t - running_since
                done_bus += _business_seconds(running_since, t)
                running_since = None
            if kind == "fulfill" and target is not None:
                out.append(
                    (
                        t,
                        2,
                        metric,
                        inst,
                        "update_status",
                        {"status": {"calendar": done_cal // 60, "business": done_bus // 60}},
                    )
                )
        elif kind == "activate":
            if running_since is None:
                running_since = t
        else:  # apply
            settle(t)
            _, minutes, business, ref, key = apply
            target = (minutes, business)
            sla = {
                "target": minutes,
                "target_in_seconds": minutes * 60,
                "business_hours": business,
                "policy": dict(ref),
            }
            out.append(
                (t, 4, metric, inst, "apply_sla" if key == "sla" else "apply_group_sla", {key: sla})
            )
        if running_since is not None and target is not None and not breached and scheduled is None:
            minutes, business = target
            elapsed = (done_bus if business else done_cal) + _span(running_since, t, business)
            remaining = minutes * 60 - elapsed
            scheduled = _advance(t, remaining, business) if remaining > 0 else t
    if scheduled is not None:
        out.append((scheduled, 5, metric, inst, "breach", {"deleted": False}))


def _via(step: _Step, ticket: _Ticket, rng: random.Random) -> dict | str:
    if rng.random() < 0.04:
        return _VIA_STRINGS.get(step.channel, "Web form")
    channel = step.channel
    if channel == "rule":
        return {
            "channel": "rule",
            "source": {
                "to": {},
                "from": {
                    "id": 360000800,
                    "title": "Close ticket 4 days after status is set to solved",
                    "deleted": False,
                },
                "rel": "automation",
            },
        }
    if channel == "email" and step.actor == "requester":
        return {
            "channel": "email",
            "source": {
                "from": {
                    "address": f"customer{ticket.requester_id}@example.com",
                    "name": f"Customer {ticket.requester_id}",
                },
                "to": {"name": "Sample Support", "address": "support@sample.zendesk.com"},
                "rel": None,
            },
        }
    name = "mobile_sdk" if channel == "mobile" else channel
    return {"channel": name, "source": {"from": {}, "to": {}, "rel": None}}
