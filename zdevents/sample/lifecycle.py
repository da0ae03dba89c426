"""The simulated life of one sample ticket: the updates that both exports are derived from.

:func:`simulate` plays a ticket from creation to closing - assignment, replies, priority
and group changes, on-hold and pending periods, solving, reopening - as a list of
:class:`Step` (one per audit). Each ticket draws from its own ``random.Random`` seeded by
the account's seed and the ticket's index, in a fixed order, so the same arguments always
give the same steps.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field

from .hours import BUSINESS_END, BUSINESS_START, DAY, advance
from .lookups import (
    AGENTS_BY_GROUP,
    BILLING_GROUP,
    ENTERPRISE_GROUP,
    PRIORITIES,
    TIER1_GROUP,
    TIER2_GROUP,
    policy_for,
    policy_target,
)

__all__ = ["Step", "Ticket", "simulate"]

_CHANNELS = ("email", "web", "chat", "api", "mobile")
_CHANNEL_WEIGHTS = (42, 33, 10, 8, 7)
_TAGS = ("login", "bug", "feature_request", "refund", "invoice", "mobile", "api", "vip", "outage")
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


@dataclass
class Step:
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
class Ticket:
    """A simulated ticket: who asked, through which channel, and its updates in time order."""

    idx: int
    ticket_id: int
    requester_id: int
    channel: str
    enterprise: bool
    steps: list[Step] = field(default_factory=list)


def simulate(idx: int, *, seed: int, start: int, end: int, tickets: int) -> Ticket:
    """The life of ticket ``idx`` (id ``idx + 1``) of an account of ``tickets`` tickets.

    Creation times spread over ``[start, end)`` in id order; updates at or after ``end``
    (the export's "now") are dropped, so a ticket can still be open then.
    """
    return _Life(idx, seed=seed, start=start, end=end, tickets=tickets).play()


class _Life:
    """One ticket being simulated: its clock, status, group, assignee and steps so far."""

    ticket: Ticket
    priority: str | None
    late_priority: str | None  # the priority triage will set after the first reply
    service: str  # the priority agents pace themselves on
    group: int
    agents: list[int]  # the group's agents

    def __init__(self, idx: int, *, seed: int, start: int, end: int, tickets: int) -> None:
        self.rng = random.Random(seed * 4_294_967_296 + idx)
        self.end = end
        self.t = self._creation_time(idx, start, end, tickets)
        progress = (self.t - start) / (end - start)
        self.pace = 1.2 - 0.45 * progress  # agents get a little faster week after week
        self.status = "new"
        self.assignee: int | None = None
        self.ticket = self._open(idx, tickets)

    def play(self) -> Ticket:
        """Every step from creation to closing, cut at the export's "now"."""
        if self.rng.random() < 0.75:
            self._assign()
        if not self._work_rounds():
            self._agent_solves(0.35)
        if self.rng.random() < 0.08:  # reopened by the requester, answered and solved again
            self._customer_writes("reopen")
            self._agent_solves(0.4)
        self._close()
        return self.ticket

    # ------------------------------------------------------------------ timing
    def _creation_time(self, idx: int, start: int, end: int, tickets: int) -> int:
        """Creation times increase with the ticket id; 70% fall in 08:00-18:00 UTC."""
        raw = start + (end - start) * (idx + self.rng.random()) / max(1, tickets)
        day_start = int(raw // DAY) * DAY
        frac = (raw - day_start) / DAY
        if frac < 0.15:
            sec = frac / 0.15 * BUSINESS_START
        elif frac < 0.85:
            sec = BUSINESS_START + (frac - 0.15) / 0.7 * (BUSINESS_END - BUSINESS_START)
        else:
            sec = BUSINESS_END + (frac - 0.85) / 0.15 * (DAY - BUSINESS_END)
        return int(day_start + sec)

    def _agent_after(self, metric: str, ratio: float, sigma: float = 0.85) -> int:
        """When the agent acts: paced on the target of the policy in force for ``metric``."""
        policy = policy_for(self.ticket.enterprise, self.service)
        target = policy_target(policy, metric, self.service)  # type: ignore[arg-type]
        assert target is not None, "every policy has reply targets for the priorities it serves"
        minutes = target[0] * ratio * self.pace * self.rng.lognormvariate(0.0, sigma)
        return advance(self.t, max(60, int(minutes * 60)), target[1])

    def _customer_after(self) -> int:
        return self.t + max(120, int(self.rng.lognormvariate(math.log(5 * 3600), 1.0)))

    def _add(
        self,
        actor: str,
        author_id: int,
        channel: str,
        changes: dict[str, object],
        comment: str | None = None,
        body: str = "",
        kind: str = "update",
    ) -> None:
        """Append a step at the current time."""
        self.ticket.steps.append(
            Step(self.t, actor, author_id, channel, changes, comment, body, kind)
        )

    # ------------------------------------------------------------------ steps
    def _open(self, idx: int, tickets: int) -> Ticket:
        """Draw the ticket's attributes and write its creation."""
        rng = self.rng
        enterprise = rng.random() < 0.22
        channel = rng.choices(_CHANNELS, _CHANNEL_WEIGHTS)[0]
        priority: str | None = rng.choices(PRIORITIES, (22, 50, 20, 8))[0]
        self.late_priority = None
        if not enterprise and rng.random() < 0.07:
            # triaged later: the SLA applies late
            self.late_priority, priority = priority, None
        self.priority = priority
        # agents pace themselves on the targets of the policy in force (calendar or business)
        self.service = priority or self.late_priority or "normal"
        tags = sorted(rng.sample(_TAGS, rng.choice((0, 1, 1, 2))))
        if enterprise:
            group = ENTERPRISE_GROUP if rng.random() < 0.6 else TIER1_GROUP
            tags = sorted({*tags, "enterprise"})
        else:
            group = rng.choices((TIER1_GROUP, TIER2_GROUP, BILLING_GROUP), (62, 15, 23))[0]
        if group == BILLING_GROUP:
            form = 360000602
        else:
            form = 360000603 if "bug" in tags else 360000601
        brand = 360000502 if group == BILLING_GROUP and rng.random() < 0.7 else 360000501
        requester = 90_000_000 + rng.randrange(max(1, int(tickets * 0.7)) + 10)
        self.group, self.agents = group, AGENTS_BY_GROUP[group]
        ticket = self.ticket = Ticket(idx, idx + 1, requester, channel, enterprise)
        created: dict[str, object] = {
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
        body = rng.choice(_BODIES_REQUESTER)
        self._add("requester", requester, channel, created, "public", body, "create")
        return ticket

    def _assign(self) -> None:
        """An agent of the group takes the new ticket."""
        self.t = self._agent_after("first_reply_time", 0.12)
        self.assignee = self.rng.choice(self.agents)
        self._add(
            "agent",
            self.assignee,
            "web",
            {"status": "open", "assignee_id": self.assignee},
            kind="assign",
        )
        self.status = "open"

    def _work_rounds(self) -> bool:
        """Rounds of agent reply and customer answer; True when one of them solved the ticket."""
        rng = self.rng
        rounds = 1 + min(int(rng.expovariate(1 / 0.9)), 4)
        priority_change_round = rng.randrange(rounds) if rng.random() < 0.12 else -1
        group_change_round = rng.randrange(rounds) if rng.random() < 0.09 else -1
        for r in range(rounds):
            last = r == rounds - 1
            author = self.assignee or rng.choice(self.agents)
            if r == priority_change_round and self.priority is not None:
                self._change_priority(author)
            if r == group_change_round:
                author = self._change_group(author)
            if r > 0 and rng.random() < 0.12:  # on hold while waiting on a third party
                self._hold(author)
            self._reply(author, first=r == 0, last=last)
            if self.status == "solved":
                return True
            if self.status == "pending":
                if last and rng.random() < 0.5:
                    self._solve_unanswered(author)
                    return True
                self._customer_writes("customer")
        return False

    def _change_priority(self, author: int) -> None:
        """An agent sets another priority (with an internal note): the SLA is re-targeted."""
        self.t = self._agent_after("first_reply_time", 0.05)
        new = self.rng.choice([p for p in PRIORITIES if p != self.priority])
        note = self.rng.choice(_BODIES_NOTE)
        self._add("agent", author, "web", {"priority": new}, "private", note, "priority")
        self.priority = self.service = new

    def _change_group(self, author: int) -> int:
        """An agent hands the ticket to another group; returns its new assignee."""
        rng = self.rng
        self.t = self._agent_after("first_reply_time", 0.05)
        if self.group != BILLING_GROUP:
            group = BILLING_GROUP
        else:
            group = rng.choice((TIER1_GROUP, TIER2_GROUP))
        self.group, self.agents = group, AGENTS_BY_GROUP[group]
        self.assignee = rng.choice(self.agents)
        changes: dict[str, object] = {"group_id": group, "assignee_id": self.assignee}
        self._add("agent", author, "web", changes, "private", rng.choice(_BODIES_NOTE), "group")
        return self.assignee

    def _hold(self, author: int) -> None:
        """On hold for a few hours, then open again."""
        rng = self.rng
        self.t = self._agent_after("next_reply_time", 0.1)
        note = rng.choice(_BODIES_NOTE)
        self._add("agent", author, "web", {"status": "hold"}, "private", note, "hold")
        self.t += max(600, int(rng.lognormvariate(math.log(4 * 3600), 0.8)))
        self._add("agent", author, "api", {"status": "open"}, kind="resume")
        self.status = "open"

    def _reply(self, author: int, *, first: bool, last: bool) -> None:
        """The agent's public reply of a round (the first triages a ticket with no priority)."""
        if first:
            self.t = self._agent_after("first_reply_time", 0.42)
        else:
            self.t = self._agent_after("next_reply_time", 0.38)
        if first and self.late_priority is not None:
            self._reply_and_triage(author)
            return
        roll = self.rng.random()
        status = "solved" if last and roll < 0.45 else ("pending" if roll < 0.8 else "open")
        changes: dict[str, object] = {}
        if status != self.status:
            changes["status"] = status
        if self.assignee is None:
            self.assignee = author
            changes["assignee_id"] = author
        body = self.rng.choice(_BODIES_AGENT)
        self._add("agent", author, "web", changes, "public", body, "reply")
        self.status = status

    def _reply_and_triage(self, author: int) -> None:
        """Triage sets the priority just after the first reply: the policy applies now."""
        changes: dict[str, object] = {}
        if self.assignee is None:
            status = "open" if self.status == "new" else self.status
            changes = {"status": status, "assignee_id": author}
        body = self.rng.choice(_BODIES_AGENT)
        self._add("agent", author, "web", changes, "public", body, "reply")
        self.assignee = self.assignee or author
        self.t += self.rng.randint(60, 1800)
        self._add("agent", author, "web", {"priority": self.late_priority}, kind="priority")
        self.priority, self.late_priority = self.late_priority, None
        self.t += 1
        self._add("agent", author, "web", {"status": "pending"}, kind="update")
        self.status = "pending"

    def _solve_unanswered(self, author: int) -> None:
        """The customer never answers: solved by the agent a couple of days later."""
        self.t = advance(self.t, int(self.rng.uniform(1.0, 3.0) * 36000), True)
        self._add("agent", author, "web", {"status": "solved"}, kind="solve")
        self.status = "solved"

    def _customer_writes(self, kind: str) -> None:
        """The requester answers (or reopens the ticket): open again."""
        self.t = self._customer_after()
        body = self.rng.choice(_BODIES_REQUESTER)
        requester, channel = self.ticket.requester_id, self.ticket.channel
        self._add("requester", requester, channel, {"status": "open"}, "public", body, kind)
        self.status = "open"

    def _agent_solves(self, ratio: float) -> None:
        """The assignee (or an agent of the group) solves the ticket with a public reply."""
        self.t = self._agent_after("next_reply_time", ratio)
        author = self.assignee or self.rng.choice(self.agents)
        body = self.rng.choice(_BODIES_AGENT)
        self._add("agent", author, "web", {"status": "solved"}, "public", body, "solve")
        self.status = "solved"

    def _close(self) -> None:
        """Closed by the automation four days after solving; nothing at or after "now"."""
        self.t += 4 * DAY
        self._add("system", -1, "rule", {"status": "closed"}, kind="close")
        steps = self.ticket.steps
        while steps and steps[-1].t >= self.end:
            steps.pop()
