"""The sample account: a deterministic Zendesk account, the local server that serves it with
Zendesk's envelopes, pacing and faults, and the demo built on both. Nothing below imports it."""

from .account import AGENTS, BRANDS, GROUP_POLICIES, GROUPS, POLICIES, TICKET_FORMS, SampleAccount

__all__ = [
    "AGENTS",
    "BRANDS",
    "GROUPS",
    "GROUP_POLICIES",
    "POLICIES",
    "TICKET_FORMS",
    "SampleAccount",
]
