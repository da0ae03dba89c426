"""Metric labels: the analyst's name of every Zendesk SLA metric, defined once.

:data:`METRIC_LABELS` is the one table. Everything else is derived from it: the order
metrics are listed in (:data:`METRIC_ORDER`), the label of one metric
(:func:`metric_label`) and the labels of a whole frame (:func:`metric_labels`); the
``metric_label`` column of :func:`zdevents.sla_targets` is rendered from the same table in
SQL (:mod:`zdevents.analysis.targets_sql`) and as a narwhals expression
(:mod:`zdevents.analysis.targets_frame`).

The one rule beyond the table: ``reply_time`` instance 1 is the first reply
(``"First reply"``), later instances are next replies (``"Next reply"``); without an
instance it stays ``"Reply"``. Unknown metrics are title-cased (``"custom_time"`` ->
``"Custom Time"``), a missing metric is ``"Unknown"``.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable

import numpy as np
import pandas as pd

__all__ = [
    "FIRST_REPLY",
    "LABEL_COLUMNS",
    "METRIC_LABELS",
    "METRIC_ORDER",
    "NEXT_REPLY",
    "REPLY_METRIC",
    "metric_label",
    "metric_label_sql",
    "metric_labels",
    "metric_sort_key",
    "sql_text",
]

#: The metric whose instances are split into first and next replies.
REPLY_METRIC = "reply_time"
#: Keys of the two kinds of reply (the ``reply_kind`` column of the targets).
FIRST_REPLY, NEXT_REPLY = "first_reply", "next_reply"

#: Human labels of Zendesk's metric names and of the first/next reply split, in the order
#: charts, tables and the deck list metrics.
METRIC_LABELS: dict[str, str] = {
    FIRST_REPLY: "First reply",
    NEXT_REPLY: "Next reply",
    REPLY_METRIC: "Reply",
    "periodic_update_time": "Periodic update",
    "pausable_update_time": "Pausable update",
    "requester_wait_time": "Requester wait",
    "agent_work_time": "Agent work",
    "resolution_time": "Resolution",
    "group_ownership_time": "Group ownership",
}

#: The labels in their usual order (first reply ... group ownership).
METRIC_ORDER: tuple[str, ...] = tuple(dict.fromkeys(METRIC_LABELS.values()))

#: Columns that may already say which label (or which reply) a row is, most specific first.
LABEL_COLUMNS: tuple[str, ...] = ("metric_label", "label", "reply_kind")

_UNKNOWN = "Unknown"


def _present(value: object) -> bool:
    if value is None:
        return False
    try:
        return not bool(pd.isna(value))
    except (TypeError, ValueError):
        return True


def _key(text: str) -> str:
    """``"First reply"``, ``"first-reply"`` -> ``"first_reply"``."""
    return text.strip().lower().replace(" ", "_").replace("-", "_")


def _unsplit_label(metric: str) -> str:
    """The label of a metric name without the reply split."""
    return METRIC_LABELS.get(metric) or metric.replace("_", " ").title()


def metric_label(metric: object, instance_id: object = None, *, reply_kind: object = None) -> str:
    """The analyst's name of a metric, splitting ``reply_time`` into first and next replies.

    Parameters
    ----------
    metric : str or None
        Zendesk metric name, e.g. ``"reply_time"`` or ``"periodic_update_time"``.
    instance_id : int, optional
        The metric instance; for ``reply_time`` 1 is the first reply, 2 and up next replies.
    reply_kind : str, optional
        ``"first_reply"`` or ``"next_reply"`` (the targets' ``reply_kind``), used before
        ``instance_id``.

    Returns
    -------
    str
        ``"First reply"``, ``"Next reply"``, ``"Reply"`` (reply_time without a usable
        instance), the :data:`METRIC_LABELS` entry, ``"Unknown"`` for a missing metric, or
        for unknown metrics the name with underscores as spaces, title-cased
        (``"custom_time"`` -> ``"Custom Time"``).

    Examples
    --------
    >>> metric_label("reply_time", 1), metric_label("reply_time", 3)
    ('First reply', 'Next reply')
    >>> metric_label("reply_time", reply_kind="next_reply")
    'Next reply'
    >>> metric_label("periodic_update_time"), metric_label("my_new_metric")
    ('Periodic update', 'My New Metric')
    """
    if not _present(metric):
        return _UNKNOWN
    name = str(metric)
    if name == REPLY_METRIC:
        if _present(reply_kind) and _key(str(reply_kind)) in (FIRST_REPLY, NEXT_REPLY):
            return METRIC_LABELS[_key(str(reply_kind))]
        if _present(instance_id):
            if int(instance_id) == 1:  # type: ignore[call-overload]
                return METRIC_LABELS[FIRST_REPLY]
            if int(instance_id) > 1:  # type: ignore[call-overload]
                return METRIC_LABELS[NEXT_REPLY]
    return _unsplit_label(name)


def _column_label(value: object) -> str | None:
    """A label column's value in human words (it may hold keys or finished labels).

    None when the value does not say (missing, ``reply_time`` or a metric name): the
    metric and instance decide then.
    """
    if not _present(value):
        return None
    text = str(value)
    key = _key(text)
    if key == REPLY_METRIC:
        return None
    if key in METRIC_LABELS:
        return METRIC_LABELS[key]
    return None if key.endswith("_time") else text


def _per_value(
    values: pd.Series, label: Callable[[Hashable], object], missing: object
) -> np.ndarray:
    """``label`` of every value, computed once per distinct value; ``missing`` for nulls."""
    codes, uniques = pd.factorize(values)
    table = np.array([*(label(v) for v in uniques), missing], dtype=object)
    return table[codes]  # code -1 (null) picks ``missing``


def metric_labels(frame: pd.DataFrame) -> pd.Series:
    """Human metric labels for every row of a targets or rates frame.

    Uses, in this order: a ``metric_label``, ``label`` or ``reply_kind`` column (keys such as
    ``first_reply`` or finished labels), then ``instance_id`` (for ``reply_time``), then the
    ``metric`` name alone. Each distinct value is labelled once, so a frame of millions of
    targets costs a few column operations.

    Parameters
    ----------
    frame : pandas.DataFrame
        Rows with a ``metric`` column.

    Returns
    -------
    pandas.Series
        Object strings named ``metric_label``, on the frame's index.

    Examples
    --------
    >>> frame = pd.DataFrame({"metric": ["reply_time", "reply_time"], "instance_id": [1, 3]})
    >>> metric_labels(frame).tolist()
    ['First reply', 'Next reply']
    """
    if "metric" not in frame.columns:
        raise ValueError("the frame has no 'metric' column to label")
    metric = frame["metric"]
    labels = _per_value(metric, lambda m: _unsplit_label(str(m)), _UNKNOWN)
    if "instance_id" in frame.columns:
        reply = _per_value(metric, lambda m: str(m) == REPLY_METRIC, False).astype(bool)
        if reply.any():
            instance = pd.to_numeric(frame["instance_id"], errors="coerce")
            instance = instance.to_numpy(dtype="float64", na_value=np.nan)
            labels[reply & (instance == 1)] = METRIC_LABELS[FIRST_REPLY]
            labels[reply & (instance > 1)] = METRIC_LABELS[NEXT_REPLY]
    column = next((c for c in LABEL_COLUMNS if c in frame.columns), None)
    if column is not None:
        given = _per_value(frame[column], _column_label, None)
        labels = np.where(pd.notna(given), given, labels)
    return pd.Series(labels, index=frame.index, name="metric_label", dtype=object)


def metric_sort_key(label: str) -> tuple[int, str]:
    """Sort key of a label: the usual metric order, unknown labels after, alphabetically.

    Examples
    --------
    >>> sorted(["Resolution", "Zebra", "First reply"], key=metric_sort_key)
    ['First reply', 'Resolution', 'Zebra']
    """
    order = METRIC_ORDER.index(label) if label in METRIC_ORDER else len(METRIC_ORDER)
    return (order, label)


def sql_text(value: str) -> str:
    """``value`` as an SQL string literal.

    Examples
    --------
    >>> sql_text("it's")
    "'it''s'"
    """
    return "'" + value.replace("'", "''") + "'"


def metric_label_sql(metric: str = "metric", instance_id: str = "instance_id") -> str:
    """SQL equal to :func:`metric_label` of the columns ``metric`` and ``instance_id``,
    built from :data:`METRIC_LABELS` (DuckDB's dialect).

    Unknown metrics are title-cased by Python's ``str.title`` rules (a letter after a
    non-letter is upper case).
    """
    spaced = f"replace({metric}, '_', ' ')"
    title = (
        f"array_to_string(list_transform(range(1, length({spaced}) + 1), lambda i: CASE "
        f"WHEN i = 1 OR NOT regexp_matches(substring({spaced}, i - 1, 1), '[[:alpha:]]') "
        f"THEN upper(substring({spaced}, i, 1)) ELSE lower(substring({spaced}, i, 1)) END), '')"
    )
    reply = f"{metric} = {sql_text(REPLY_METRIC)}"
    known = " ".join(
        f"WHEN {metric} = {sql_text(name)} THEN {sql_text(label)}"
        for name, label in METRIC_LABELS.items()
    )
    return (
        f"CASE WHEN {reply} AND {instance_id} = 1 THEN {sql_text(METRIC_LABELS[FIRST_REPLY])} "
        f"WHEN {reply} AND {instance_id} > 1 THEN {sql_text(METRIC_LABELS[NEXT_REPLY])} "
        f"{known} ELSE {title} END"
    )
