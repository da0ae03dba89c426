"""Periodic vs pausable updates: the two update metrics paired per ticket instance.

:func:`update_pairs` pairs ``periodic_update_time`` and ``pausable_update_time`` targets of
one ticket instance (:data:`PAIRINGS`); :func:`update_pairing_summary` says how many periodic
breaches the time spent waiting on the customer explains. Pure pandas, no I/O.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from .inputs import group_keys, require_columns

__all__ = ["PAIRINGS", "update_pairing_summary", "update_pairs"]

#: The categories of :func:`update_pairs`, in display order.
PAIRINGS: tuple[str, ...] = (
    "both achieved",
    "periodic only",
    "pausable only",
    "both breached",
    "open",
)
_PERIODIC = "periodic_update_time"
_PAUSABLE = "pausable_update_time"


def _pairing(periodic: str, pausable: str) -> str:
    if "active" in (periodic, pausable):
        return "open"
    if periodic == "breached":
        return "both breached" if pausable == "breached" else "periodic only"
    return "pausable only" if pausable == "breached" else "both achieved"


def update_pairs(targets: pd.DataFrame) -> pd.DataFrame:
    """``periodic_update_time`` and ``pausable_update_time`` paired per ticket instance.

    The two metrics time the same thing (time between public agent comments); pausable
    stops its clock while the ticket waits on the customer (pending). An instance whose
    periodic update breached while the pausable one was achieved is a breach that the
    customer's waiting explains.

    Parameters
    ----------
    targets : pandas.DataFrame
        Output of :func:`zdevents.sla_targets`, optionally with ticket attributes. Only
        ``sla_kind == "sla"`` targets are paired (when the column exists).

    Returns
    -------
    pandas.DataFrame
        One row per ``(ticket_id, instance_id)`` that has both targets: ``ticket_id,
        instance_id, periodic_outcome, pausable_outcome, pairing`` (one of
        :data:`PAIRINGS`: ``"both achieved"``, ``"periodic only"`` (periodic breached,
        pausable achieved), ``"pausable only"``, ``"both breached"``, ``"open"`` (either
        still active)), ``periodic_breached_at, pausable_breached_at``, and the other
        columns of the periodic target (``policy_title``, ``group_id``...).

    Examples
    --------
    >>> import pandas as pd
    >>> targets = pd.DataFrame({"ticket_id": [1, 1], "instance_id": [1, 1],
    ...     "metric": ["periodic_update_time", "pausable_update_time"],
    ...     "outcome": ["breached", "achieved"], "breached_at": [pd.NaT, pd.NaT]})
    >>> update_pairs(targets)[["ticket_id", "instance_id", "pairing"]]
       ticket_id  instance_id        pairing
    0          1            1  periodic only
    """
    require_columns(targets, ["ticket_id", "metric", "instance_id", "outcome", "breached_at"])
    frame = targets
    if "sla_kind" in frame.columns:
        frame = frame[frame["sla_kind"].astype("string").eq("sla").fillna(False).to_numpy(bool)]
    metric = frame["metric"].astype("string")
    periodic = frame[metric.eq(_PERIODIC).fillna(False).to_numpy(bool)]
    pausable = frame[metric.eq(_PAUSABLE).fillna(False).to_numpy(bool)]
    pair_key = ["ticket_id", "instance_id"]
    right = pausable[[*pair_key, "outcome", "breached_at"]].rename(
        columns={"outcome": "pausable_outcome", "breached_at": "pausable_breached_at"}
    )
    left = periodic.rename(
        columns={"outcome": "periodic_outcome", "breached_at": "periodic_breached_at"}
    ).drop(columns=[c for c in ("metric", "metric_label", "reply_kind") if c in periodic])
    pairs = left.merge(right, on=pair_key, how="inner")
    pairs["periodic_outcome"] = pairs["periodic_outcome"].astype("string")
    pairs["pausable_outcome"] = pairs["pausable_outcome"].astype("string")
    pairs["pairing"] = pd.Series(
        [
            _pairing(a, b)
            for a, b in zip(pairs["periodic_outcome"], pairs["pausable_outcome"], strict=True)
        ],
        index=pairs.index,
        dtype="string",
    )
    first = [
        *pair_key,
        "periodic_outcome",
        "pausable_outcome",
        "pairing",
        "periodic_breached_at",
        "pausable_breached_at",
    ]
    rest = [c for c in pairs.columns if c not in first]
    out = pairs[first + rest].sort_values(pair_key, kind="mergesort").reset_index(drop=True)
    out.attrs = dict(getattr(targets, "attrs", {}))
    return out


def update_pairing_summary(
    pairs: pd.DataFrame, by: str | Sequence[str] | None = "policy_title"
) -> pd.DataFrame:
    """Counts of each pairing per group, and the share of periodic breaches pending explains.

    Parameters
    ----------
    pairs : pandas.DataFrame
        Output of :func:`update_pairs`.
    by : str, sequence of str or None, default "policy_title"
        Group column(s) (e.g. ``"group_name"``); None for one overall row.

    Returns
    -------
    pandas.DataFrame
        ``*by, pairs``, one count column per :data:`PAIRINGS` category, then
        ``periodic_breached`` (periodic only + both breached) and ``explained_by_waiting``
        = periodic only / periodic_breached (NaN when no periodic breach).

    Examples
    --------
    >>> import pandas as pd
    >>> pairs = pd.DataFrame({"policy_title": ["A", "A", "A"],
    ...     "pairing": ["periodic only", "both breached", "both achieved"]})
    >>> update_pairing_summary(pairs)[["policy_title", "pairs", "periodic only",
    ...                                "explained_by_waiting"]]
      policy_title  pairs  periodic only  explained_by_waiting
    0            A      3              1                   0.5
    """
    keys = [] if by is None else group_keys(by)
    require_columns(pairs, [*keys, "pairing"], "pairs")
    frame = pairs[[*keys, "pairing"]].copy()
    if not keys:
        frame["_all"] = "all"
    group = keys or ["_all"]
    for key in group:
        frame[key] = frame[key].astype(object).where(frame[key].notna(), "(none)")
    table = pd.crosstab([frame[k] for k in group], frame["pairing"].astype(str))
    table = table.reindex(columns=list(PAIRINGS), fill_value=0).astype("int64")
    table.columns.name = None
    out = table.reset_index()
    out.insert(len(group), "pairs", table.sum(axis=1).to_numpy().astype("int64"))
    out["periodic_breached"] = (out["periodic only"] + out["both breached"]).astype("int64")
    explained = out["periodic only"] / out["periodic_breached"].where(out["periodic_breached"] > 0)
    out["explained_by_waiting"] = explained.astype("float64")
    if not keys:
        out = out.drop(columns="_all")
    return out
