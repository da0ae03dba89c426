"""The ticket events of a simulated ticket, as ``ticket_events`` exports them.

One audit per step, with its child events: ``Create`` events for the fields a ticket was
created with, ``Change`` events (with ``previous_value``) for the fields an update changed,
an occasional ``escalated``/``reassigned`` tag, the notification a trigger sends, and - when
comments are asked for - the full comment object.
"""

from __future__ import annotations

import random
from collections.abc import Iterator

from .hours import iso
from .lifecycle import Step, Ticket

__all__ = ["burst_audits", "ticket_audits"]

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


def ticket_audits(
    ticket: Ticket, *, seed: int, include_comments: bool = False
) -> list[tuple[int, int, dict]]:
    """``(unix_time, id, record)`` of the ticket's audits (its first 100 steps), in time order.

    Audit ids are ``20_000_000_000 + 100 * idx + k``; child event ids
    ``30_000_000_000 + 1000 * idx + n``.
    """
    writer = _AuditWriter(ticket, seed=seed, include_comments=include_comments)
    return [writer.audit(k, step) for k, step in enumerate(ticket.steps[:100])]


def burst_audits(t: int, count: int, tickets: int) -> Iterator[tuple[int, int, dict]]:
    """``count`` tag-change audits in the one second ``t`` (a bulk update through the API),
    spread over the ``tickets`` tickets."""
    stamp = iso(t)
    tickets = max(1, tickets)
    via = {"channel": "api", "source": {"from": {}, "to": {}, "rel": None}}
    for k in range(count):
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


class _AuditWriter:
    """Writes one ticket's audits in step order: the field values so far, the child ids."""

    def __init__(self, ticket: Ticket, *, seed: int, include_comments: bool) -> None:
        self.ticket = ticket
        self.include_comments = include_comments
        self.rng = random.Random(seed * 4_294_967_296 + ticket.idx + 7_777_777)
        self.audit_base = 20_000_000_000 + ticket.idx * 100
        self.child_base = 30_000_000_000 + ticket.idx * 1000
        self.child_n = 0
        self.state: dict[str, object] = {}  # field values after the steps written so far
        self.system = _SYSTEMS[ticket.idx % len(_SYSTEMS)]

    def audit(self, k: int, step: Step) -> tuple[int, int, dict]:
        """The ``k``-th audit: the step and its child events."""
        audit_id = self.audit_base + k
        created_at = iso(step.t)
        via = _via(step, self.ticket, self.rng)
        flags = {
            "via": _VIA_STRINGS.get(step.channel, "Web form"),
            "via_reference_id": None,
            "comment_present": step.comment is not None,
            "comment_public": step.comment == "public",
        }
        children: list[dict] = []
        if self.include_comments and step.comment is not None:
            children.append(self._comment(step, via, audit_id, created_at))
        children += self._field_events(step, flags)
        tag = self._escalation_tag(step, flags)
        if tag is not None:
            children.append(tag)
        if step.kind == "create" or (step.actor == "agent" and step.comment == "public"):
            children.append(self._notification(step, flags))
        record = {
            "id": audit_id,
            "ticket_id": self.ticket.ticket_id,
            "timestamp": step.t,
            "created_at": created_at,
            "updater_id": step.author_id,
            "via": via,
            "system": dict(self.system) if step.actor != "system" else {},
            "event_type": "Audit",
            "child_events": children,
        }
        return step.t, audit_id, record

    def _child(self, event_type: str, flags: dict, **fields: object) -> dict:
        """A child event with the next id and the audit's via/comment flags."""
        event = {"id": self.child_base + self.child_n, **flags, "event_type": event_type, **fields}
        self.child_n += 1
        return event

    def _comment(self, step: Step, via: dict | str, audit_id: int, created_at: str) -> dict:
        """The full comment object (what ``include=comment_events`` adds)."""
        cid = self.child_base + self.child_n
        self.child_n += 1
        return {
            "id": cid,
            "via": via if isinstance(via, dict) else {"channel": step.channel, "source": {}},
            "via_reference_id": None,
            "type": "Comment",
            "author_id": step.author_id,
            "body": step.body,
            "html_body": f'<div class="zd-comment" dir="auto"><p>{step.body}</p></div>',
            "plain_body": step.body,
            "public": step.comment == "public",
            "attachments": [],
            "audit_id": audit_id,
            "created_at": created_at,
            "event_type": "Comment",
        }

    def _field_events(self, step: Step, flags: dict) -> list[dict]:
        """``Create`` events for a new ticket's fields; ``Change`` events for changed ones."""
        events = []
        state = self.state
        for name, value in step.changes.items():
            if step.kind == "create":
                if name == "tags":
                    tags = list(value)  # type: ignore[call-overload]
                    events.append(
                        self._child(
                            "Create", flags, tags=tags, added_tags=list(tags), removed_tags=[]
                        )
                    )
                elif value is not None:
                    events.append(self._child("Create", flags, **{name: value}))
                state[name] = value
                continue
            previous = state.get(name)
            if previous == value:
                continue
            events.append(self._child("Change", flags, **{name: value, "previous_value": previous}))
            state[name] = value
        return events

    def _escalation_tag(self, step: Step, flags: dict) -> dict | None:
        """Half the priority and group changes add an ``escalated``/``reassigned`` tag."""
        if step.kind not in ("priority", "group") or self.rng.random() >= 0.5:
            return None
        old_tags = list(self.state.get("tags") or [])  # type: ignore[call-overload]
        tag = "escalated" if step.kind == "priority" else "reassigned"
        if tag in old_tags:
            return None
        new_tags = sorted([*old_tags, tag])
        self.state["tags"] = new_tags
        return self._child(
            "Change",
            flags,
            tags=new_tags,
            added_tags=[tag],
            removed_tags=[],
            previous_value=old_tags,
        )

    def _notification(self, step: Step, flags: dict) -> dict:
        """The trigger's e-mail to the requester (on creation and on public agent replies)."""
        created = step.kind == "create"
        notification = self._child(
            "Notification",
            flags,
            subject="[Sample] Re: {{ticket.title}}",
            body="Your request ({{ticket.id}}) has been updated.",
            recipients=[self.ticket.requester_id],
        )
        notification["via"] = "Rule"
        notification["via_reference_id"] = 360000700 + created
        notification["title"] = (
            "Notify requester and CCs of received request"
            if created
            else "Notify requester and CCs of comment update"
        )
        return notification


def _via(step: Step, ticket: Ticket, rng: random.Random) -> dict | str:
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
