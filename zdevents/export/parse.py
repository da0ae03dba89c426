"""Raw Zendesk page bodies -> typed Arrow tables -> pandas frames: the two stream parsers.

* :mod:`zdevents.export.metric_events`: metric events, with pyarrow's JSON reader;
* :mod:`zdevents.export.ticket_events`: audits and their child events, and ticket changes.

Both build tables in the storage schemas of :mod:`zdevents.schema`. This module gathers
their public functions in one place (the old ``zdevents.normalize`` path points here).
"""

from __future__ import annotations

from .metric_events import metric_events_frame, metric_events_table
from .ticket_events import is_metric_event, ticket_changes, ticket_events_table

__all__ = [
    "is_metric_event",
    "metric_events_frame",
    "metric_events_table",
    "ticket_changes",
    "ticket_events_table",
]
