"""Questions past the breach rate: how late, what is due next, is it really better, fair tables.

Every function is pure (DataFrame in, DataFrame out, no I/O) and builds on the targets
:func:`zdevents.sla_targets` returns. One module per question; this one gathers them:

- :func:`lateness` / :func:`lateness_summary` (:mod:`~zdevents.analysis.lateness`): minutes past the target for every breached
  target (open ones measured up to ``as_of`` and marked), with median and p90 per group.
- :func:`due_targets` / :func:`due_summary` / :func:`format_due` (:mod:`~zdevents.analysis.due`): the active targets at ``as_of`` with their due
  time, and the queue of the next hours by group and assignee.
- :func:`trend_verdicts` (:mod:`~zdevents.analysis.trends`): the latest complete week (or month) against the previous ``k``,
  with a two-proportion z-test, the effect size and a verdict in words.
- :func:`update_pairs` / :func:`update_pairing_summary` (:mod:`~zdevents.analysis.pairing`): ``periodic_update_time`` and
  ``pausable_update_time`` paired per ticket instance; how many periodic breaches the time
  spent waiting on the customer explains.
- :func:`funnel_table` (:mod:`~zdevents.analysis.funnel`): breach rates per unit (group, assignee...) against 95% and 99.8%
  control limits around the overall rate, with optional empirically shrunk rates.

Times are compared exactly as :func:`zdevents.sla_targets` compares them: a breach at the
fulfilment's timestamp counts, a breach at ``as_of`` counts, and a target whose breach is
scheduled strictly after ``as_of`` is still active.
"""

from __future__ import annotations

from .due import DUE_SOURCES, due_summary, due_targets, format_due
from .funnel import funnel_table
from .lateness import lateness, lateness_summary
from .pairing import PAIRINGS, update_pairing_summary, update_pairs
from .trends import VERDICTS, trend_verdicts

__all__ = [
    "DUE_SOURCES",
    "PAIRINGS",
    "VERDICTS",
    "due_summary",
    "due_targets",
    "format_due",
    "funnel_table",
    "lateness",
    "lateness_summary",
    "trend_verdicts",
    "update_pairing_summary",
    "update_pairs",
]
