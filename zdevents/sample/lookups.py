"""The sample account's directory and SLA policies: groups, agents, brands, forms, policies.

The public lookups (``GROUPS``, ``AGENTS``, ``BRANDS``, ``TICKET_FORMS``, ``POLICIES``,
``GROUP_POLICIES``) are what :class:`~zdevents.sample.account.SampleAccount` copies into its
attributes; :func:`policy_for` and :func:`policy_target` say which policy and target apply
to a ticket, for the simulation and the SLA events it derives.
"""

from __future__ import annotations

__all__ = [
    "AGENTS",
    "AGENTS_BY_GROUP",
    "BILLING_GROUP",
    "BRANDS",
    "ENTERPRISE_GROUP",
    "GROUPS",
    "GROUP_POLICIES",
    "GROUP_POLICY_ID",
    "GROUP_POLICY_MINUTES",
    "POLICIES",
    "POLICY_REFS",
    "PRIORITIES",
    "TICKET_FORMS",
    "TIER1_GROUP",
    "TIER2_GROUP",
    "policy_for",
    "policy_target",
]

# ---------------------------------------------------------------------------- directory
GROUPS: dict[int, str] = {
    360001001: "Tier 1",
    360001002: "Tier 2",
    360001003: "Billing",
    360001004: "Enterprise Success",
}
"""Group id -> group name (ticket events carry only ``group_id``)."""

TIER1_GROUP, TIER2_GROUP, BILLING_GROUP, ENTERPRISE_GROUP = GROUPS
"""The group ids by role."""
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
for _gid in GROUPS:
    for _k in range(4 if _gid != TIER1_GROUP else 6):
        _n = len(AGENTS)
        AGENTS[380000100 + _n] = {"name": _AGENT_NAMES[_n % len(_AGENT_NAMES)], "group_id": _gid}
AGENTS_BY_GROUP: dict[int, list[int]] = {
    gid: [a for a, info in AGENTS.items() if info["group_id"] == gid] for gid in GROUPS
}
"""Group id -> its agents' user ids, in id order."""
BRANDS: dict[int, str] = {360000501: "Sample Cloud", 360000502: "Sample Pay"}
"""Brand id -> brand name."""
TICKET_FORMS: dict[int, str] = {
    360000601: "Default ticket form",
    360000602: "Billing question",
    360000603: "Bug report",
}
"""Ticket form id -> form name."""

PRIORITIES = ("low", "normal", "high", "urgent")
"""Zendesk's ticket priorities, lowest first (the order of every per-priority target)."""

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
        for prio, target in zip(PRIORITIES, per_priority, strict=True):
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
        "filter": {
            "all": [{"field": "group_id", "operator": "includes", "value": [BILLING_GROUP]}]
        },
        "policy_metrics": [
            {
                "priority": p,
                "metric": "group_ownership_time",
                "target": _GROUP_POLICY[4],
                "target_in_seconds": _GROUP_POLICY[4] * 60,
                "business_hours": True,
            }
            for p in PRIORITIES
        ],
    }
]
"""The sample's group SLA policy (``group_ownership_time`` while a ticket sits in Billing)."""


POLICY_REFS: dict[int, dict[str, object]] = {
    spec[0]: {"id": spec[0], "title": spec[1], "description": spec[2]}
    for spec in (*_POLICY_SPECS, _GROUP_POLICY)
}
"""Policy id -> the ``{id, title, description}`` that ``apply_sla`` events carry."""
GROUP_POLICY_ID: int = _GROUP_POLICY[0]
"""Id of the group SLA policy (``group_ownership_time`` while a ticket sits in Billing)."""
GROUP_POLICY_MINUTES: int = _GROUP_POLICY[4]
"""Its target, in business minutes."""

_POLICY_BY_ID = {spec[0]: spec for spec in _POLICY_SPECS}
_ENTERPRISE_POLICY, _URGENT_POLICY, _STANDARD_POLICY = (spec[0] for spec in _POLICY_SPECS)


def policy_for(enterprise: bool, priority: str | None) -> int | None:
    """Id of the SLA policy that applies to a ticket, or None when none does yet.

    Enterprise customers' tickets get the Enterprise policy whatever their priority; other
    tickets need a priority: urgent ones get Urgent escalations, the rest Standard.
    """
    if enterprise:
        return _ENTERPRISE_POLICY
    if priority is None:
        return None
    if priority == "urgent":
        return _URGENT_POLICY
    return _STANDARD_POLICY


def policy_target(policy: int, metric: str, priority: str) -> tuple[int, bool] | None:
    """``(minutes, business_hours)`` of ``policy`` for a policy ``metric`` and ``priority``.

    ``metric`` is a policy metric (``first_reply_time``, ``total_resolution_time``...).
    None when the policy sets no target for that priority.
    """
    spec = _POLICY_BY_ID[policy]
    minutes = spec[4][metric][PRIORITIES.index(priority)]
    if minutes is None:
        return None
    return minutes, spec[3]
