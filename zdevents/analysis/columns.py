"""The column contract of SLA targets: what :func:`zdevents.sla_targets` reads and returns.

The metric-event columns it needs, the target columns it returns (in order), the keys of a
metric instance and of a target, and the ``attrs`` keys ``load_frame`` sets on a frame.
"""

from __future__ import annotations

from ..schema import METRIC_EVENTS_SCHEMA

__all__ = [
    "AS_OF_ATTR",
    "INSTANCE_KEY",
    "OPTIONAL_EVENT_COLUMNS",
    "REQUIRED_EVENT_COLUMNS",
    "TARGET_COLUMNS",
    "TARGET_KEY",
    "WINDOW_ATTR",
]

#: Columns of the frame :func:`zdevents.sla_targets` returns, in order.
TARGET_COLUMNS: tuple[str, ...] = (
    "ticket_id",
    "metric",
    "instance_id",
    "sla_kind",
    "reply_kind",
    "metric_label",
    "policy_id",
    "policy_title",
    "target_minutes",
    "business_hours",
    "applied_at",
    "fulfilled_at",
    "breached_at",
    "outcome",
    "status_calendar_minutes",
    "status_business_minutes",
    "elapsed_minutes",
    "elapsed_ratio",
)

#: One metric instance: the rules run per instance.
INSTANCE_KEY: list[str] = ["ticket_id", "metric", "instance_id"]
#: One SLA target: a group SLA is a separate target on the same instance.
TARGET_KEY: list[str] = [*INSTANCE_KEY, "sla_kind"]

#: Metric-event columns every input needs.
REQUIRED_EVENT_COLUMNS: tuple[str, ...] = (
    "id",
    "ticket_id",
    "metric",
    "instance_id",
    "type",
    "time",
)
#: The columns after ``time``: a pandas frame may lack them (read as null, typed as
#: load_frame's); other engines need them all.
OPTIONAL_EVENT_COLUMNS: tuple[str, ...] = tuple(
    METRIC_EVENTS_SCHEMA.names[METRIC_EVENTS_SCHEMA.names.index("time") + 1 :]
)

#: ``attrs`` key of the time the data describes (the cache cursor; set by load_frame and
#: carried by sla_targets and breach_rates on pandas frames).
AS_OF_ATTR = "zdevents_as_of"
#: ``attrs`` key of the ``(since, until)`` of a load_frame that left cached events out.
WINDOW_ATTR = "zdevents_window"
