"""The SLA metric events of a simulated ticket, as ``ticket_metric_events`` exports them.

Each metric's clock (``activate``/``pause``/``fulfill`` per instance) follows the ticket's
steps; policies apply to the instances (``apply_sla``, ``apply_group_sla``) when the ticket
first has a policy and again when a priority change alters the target; breaches are
scheduled ahead and invalidated (``deleted: true``) when the clock stops first.
"""

from __future__ import annotations

from collections.abc import Iterator

from .hours import advance, business_seconds, iso, span
from .lifecycle import Step, Ticket
from .lookups import (
    BILLING_GROUP,
    GROUP_POLICY_ID,
    GROUP_POLICY_MINUTES,
    POLICY_REFS,
    policy_for,
    policy_target,
)

__all__ = ["Clock", "burst_metric_events", "ticket_metric_events"]

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

# Order of events that share a second: measure, pause/fulfill, update_status, activate,
# apply, breach.
_Event = tuple[int, int, str, int, str, dict | None]  # t, order, metric, instance, type, extra
_Apply = tuple[int, int, bool, dict, str]  # t, minutes, business, policy ref, "sla"/"group_sla"


class Clock:
    """The activate/pause/fulfill history of one metric's instances on one ticket."""

    __slots__ = ("events", "n", "state")

    def __init__(self) -> None:
        self.n = 0
        self.state: str | None = None  # None, "active", "paused", "done"
        self.events: dict[int, list[tuple[int, str]]] = {}

    def start(self, t: int) -> None:
        """Activate a new instance."""
        self.n += 1
        self.events[self.n] = [(t, "activate")]
        self.state = "active"

    def _move(self, t: int, allowed: tuple[str, ...], event: str, state: str) -> None:
        """Record ``event`` at ``t`` and enter ``state``, when the clock is in ``allowed``."""
        if self.state in allowed:
            self.events[self.n].append((t, event))
            self.state = state

    def resume(self, t: int) -> None:
        """Activate the paused instance again."""
        self._move(t, ("paused",), "activate", "active")

    def reactivate(self, t: int) -> None:
        """Activate the fulfilled instance again (the ticket was reopened)."""
        self._move(t, ("done",), "activate", "active")

    def pause(self, t: int) -> None:
        """Pause the running instance."""
        self._move(t, ("active",), "pause", "paused")

    def fulfill(self, t: int) -> None:
        """Fulfill the running or paused instance."""
        self._move(t, ("active", "paused"), "fulfill", "done")

    def start_or_resume(self, t: int) -> None:
        """Resume a paused instance, or start a new one unless one is running."""
        if self.state == "paused":
            self.resume(t)
        elif self.state != "active":
            self.start(t)


def ticket_metric_events(ticket: Ticket, end: int) -> list[tuple[int, int, dict]]:
    """``(unix_time, id, record)`` of the ticket's metric events before ``end``, in time order.

    Ids are ``10_000_000_000 + 1000 * idx + k``: at most 1000 events per ticket.
    """
    timeline = _Timeline(ticket)
    for step in ticket.steps:
        if step.kind == "create":
            timeline.create(step)
        else:
            timeline.update(step)
        timeline.apply_policies(step.t)
    out = timeline.events()
    base = 10_000_000_000 + ticket.idx * 1000
    out.sort(key=lambda e: (e[0], e[1]))
    result = []
    stamps: dict[int, str] = {}
    for k, (t, _, metric, inst, kind, extra) in enumerate(out):
        if t >= end or k >= 1000:
            break
        stamp = stamps.get(t)
        if stamp is None:
            stamp = stamps[t] = iso(t)
        record = {
            "id": base + k,
            "ticket_id": ticket.ticket_id,
            "metric": metric,
            "instance_id": inst,
            "type": kind,
            "time": stamp,
        }
        if extra:
            record.update(extra)
        result.append((t, base + k, record))
    return result


def burst_metric_events(t: int, count: int, tickets: int) -> Iterator[tuple[int, int, dict]]:
    """``count`` ``measure`` events in the one second ``t`` (a bulk update), spread over the
    ``tickets`` tickets."""
    stamp = iso(t)
    tickets = max(1, tickets)
    for k in range(count):
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


class _Timeline:
    """The metric clocks of one ticket as its steps drive them, and the SLAs applied."""

    def __init__(self, ticket: Ticket) -> None:
        self.enterprise = ticket.enterprise
        self.clocks = {m: Clock() for m in _TICKET_METRICS}
        in_billing = any(s.changes.get("group_id") == BILLING_GROUP for s in ticket.steps)
        self.group_clock = Clock() if in_billing else None
        self.applied: dict[tuple[str, int], tuple] = {}
        self.applies: dict[tuple[str, int], list[_Apply]] = {}
        self.measures: list[_Event] = []
        self.status = "new"
        self.priority: str | None = None
        self.group: int | None = None
        self.had_policy = False

    def create(self, step: Step) -> None:
        """Creation: every metric's first instance starts, with a ``measure`` event each."""
        t = step.t
        self.priority = step.changes.get("priority")  # type: ignore[assignment]
        self.group = step.changes.get("group_id")  # type: ignore[assignment]
        for metric in _TICKET_METRICS:
            self.measures.append((t, 0, metric, 0, "measure", None))
            self.clocks[metric].start(t)
        if self.group_clock is not None:
            self.group_clock.start(t)
        self.status = "new"

    def update(self, step: Step) -> None:
        """An update: replies fulfil, status changes pause, resume, fulfil or reopen."""
        t, changes, clocks = step.t, step.changes, self.clocks
        reply = clocks[_REPLY]
        new = changes.get("status", self.status)
        if "priority" in changes:
            self.priority = changes["priority"]  # type: ignore[assignment]
        if step.actor == "agent" and step.comment == "public":
            reply.fulfill(t)
            clocks[_PERIODIC].fulfill(t)
            clocks[_PAUSABLE].fulfill(t)
        if "group_id" in changes:
            self.group = changes["group_id"]  # type: ignore[assignment]
            if self.group_clock is not None:
                self.group_clock.fulfill(t)
                self.group_clock.start(t)
        self._status(t, new)  # type: ignore[arg-type]
        if step.actor == "requester" and step.comment == "public" and reply.state != "active":
            reply.start(t)
        self.status = new  # type: ignore[assignment]

    def _status(self, t: int, new: str) -> None:
        """What entering status ``new`` does to the clocks."""
        clocks, group_clock = self.clocks, self.group_clock
        rwt, awt, res = clocks[_RWT], clocks[_AWT], clocks[_RES]
        periodic, pausable = clocks[_PERIODIC], clocks[_PAUSABLE]
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
            if self.status == "solved":
                for clock in (rwt, awt, res):
                    clock.reactivate(t)
                if group_clock is not None:
                    group_clock.reactivate(t)
            else:
                rwt.resume(t)
                awt.resume(t)
            periodic.start_or_resume(t)
            pausable.start_or_resume(t)

    def apply_policies(self, t: int) -> None:
        """SLA (re)application for each metric's current instance after a step at ``t``."""
        policy = policy_for(self.enterprise, self.priority or None)
        first_application = policy is not None and not self.had_policy
        applied, applies = self.applied, self.applies
        for metric, clock in self.clocks.items():
            if clock.n == 0 or policy is None:
                continue
            key = (metric, clock.n)
            wanted = _target(policy, metric, clock.n, self.priority or "normal")
            if wanted is None or applied.get(key) == wanted:
                continue
            if clock.state == "done" and not (first_application and key not in applied):
                continue
            applied[key] = wanted
            applies.setdefault(key, []).append(
                (t, wanted[1], wanted[2], POLICY_REFS[wanted[0]], "sla")
            )
        group_clock = self.group_clock
        if group_clock is not None and group_clock.n and self.group == BILLING_GROUP:
            key = (_GROUP, group_clock.n)
            if key not in applied and group_clock.state != "done":
                applied[key] = (GROUP_POLICY_ID, GROUP_POLICY_MINUTES, True)
                ref = POLICY_REFS[GROUP_POLICY_ID]
                applies[key] = [(t, GROUP_POLICY_MINUTES, True, ref, "group_sla")]
        self.had_policy = self.had_policy or policy is not None

    def events(self) -> list[_Event]:
        """Every event (unsorted): measures, clock events, then each instance's SLA events."""
        out = list(self.measures)
        all_clocks = dict(self.clocks)
        if self.group_clock is not None:
            all_clocks[_GROUP] = self.group_clock
        for metric, clock in all_clocks.items():
            for inst, events in clock.events.items():
                for t, kind in events:
                    out.append((t, 3 if kind == "activate" else 1, metric, inst, kind, None))
                inst_applies = self.applies.get((metric, inst))
                if inst_applies:
                    _sla_events(out, metric, inst, events, inst_applies)
        return out


def _target(policy: int, metric: str, instance: int, priority: str) -> tuple[int, int, bool] | None:
    """``(policy, minutes, business_hours)`` that ``policy`` sets for an instance of ``metric``."""
    if metric == _REPLY:
        name = "first_reply_time" if instance == 1 else "next_reply_time"
    else:
        name = _POLICY_METRIC[metric]
    target = policy_target(policy, name, priority)
    if target is None:
        return None
    return (policy, *target)


def _sla_events(
    out: list,
    metric: str,
    inst: int,
    events: list[tuple[int, str]],
    inst_applies: list[_Apply],
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
                done_bus += business_seconds(running_since, t)
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
            elapsed = (done_bus if business else done_cal) + span(running_since, t, business)
            remaining = minutes * 60 - elapsed
            scheduled = advance(t, remaining, business) if remaining > 0 else t
    if scheduled is not None:
        out.append((scheduled, 5, metric, inst, "breach", {"deleted": False}))
