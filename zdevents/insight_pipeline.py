"""Whole jobs for the insight questions, read from the cache: targets with attributes, the
at-risk queue and the PowerPoint deck (:func:`build_deck`)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from .config import Settings, resolve_account
from .dates import TimeLike
from .errors import CacheError, ConfigError

__all__ = ["build_deck", "due_from_cache", "targets_from_cache"]

_AS_OF_ATTR = "zdevents_as_of"


def _changes(settings: Settings) -> pd.DataFrame | None:
    """The cached ticket changes, or None when the ticket events are not cached."""
    from .read.frame import load_changes

    try:
        changes = load_changes(refresh="never", settings=settings)
    except CacheError:
        return None
    return changes if len(changes) else None


def _group_names(settings: Settings) -> dict[int, str] | None:
    """Group names from the cached names file (nothing is fetched), or None."""
    from .errors import ZdEventsError
    from .export.names import load_names

    try:
        return load_names(settings=settings, refresh="never").groups or None
    except ZdEventsError:
        return None


def targets_from_cache(settings: Settings | None = None) -> tuple[pd.DataFrame, str]:
    """SLA targets from the cached metric events, with ticket attributes when cached.

    Returns the targets (``attrs`` carry the events' ``zdevents_as_of`` and any other
    attrs the cache sets, such as a table version) and the account's name.

    Examples
    --------
    >>> targets, account = targets_from_cache()  # doctest: +SKIP
    """
    from .analysis.sla import sla_targets
    from .analysis.tickets import attach_ticket_attributes
    from .read.frame import load_frame

    settings = settings if settings is not None else Settings.from_env()
    events = load_frame(refresh="never", settings=settings)
    targets = sla_targets(events, as_of=events.attrs.get(_AS_OF_ATTR))
    changes = _changes(settings)
    if changes is not None:
        targets = attach_ticket_attributes(targets, changes)
    targets.attrs = {**events.attrs, **targets.attrs}
    try:  # the configured account, or the only one in the cache folder (as load_frame reads)
        account = resolve_account(settings)
    except ConfigError:
        account = "Zendesk account"
    return targets, str(account)


def due_from_cache(*, settings: Settings | None = None, as_of: TimeLike = None) -> pd.DataFrame:
    """The active targets with their due time (:func:`zdevents.due_targets`) from the cache,
    with the ticket's group and assignee at ``as_of`` when ticket events are cached.

    Examples
    --------
    >>> due = due_from_cache()  # doctest: +SKIP
    """
    from .analysis.insights import due_targets
    from .analysis.tickets import attach_ticket_attributes
    from .read.frame import load_frame

    settings = settings if settings is not None else Settings.from_env()
    events = load_frame(refresh="never", settings=settings)
    due = due_targets(events, as_of=as_of)
    changes = _changes(settings)
    if changes is not None:
        attrs = dict(due.attrs)
        due = attach_ticket_attributes(
            due,
            changes,
            at="as_of",
            groups=_group_names(settings),
            fields=["group_id", "assignee_id"],
        )
        due.attrs = attrs
    return due


def build_deck(
    path: str | Path,
    targets: pd.DataFrame | None = None,
    *,
    settings: Settings | None = None,
    since: TimeLike = None,
    until: TimeLike = None,
    account: str | None = None,
    groups: Mapping[int, str] | None = None,
    k: int = 4,
    min_targets: int = 30,
) -> Path:
    """Write the SLA story as a PowerPoint file.

    Slides: a title (account, period, as-of time and the table version when the frame's
    ``attrs["zdevents_table_version"]`` has one); one slide per chart of
    :data:`zdevents.viz.deck.DECK_TITLES` (breach rate by metric, the weekly trend with its
    verdict, lateness, periodic vs pausable update, and the funnel plot of groups when the
    targets have a group column), each with a one-sentence takeaway computed from the data;
    definitions (breach rate, censoring, intervals...); an appendix table by metric.

    Parameters
    ----------
    path : str or Path
        The ``.pptx`` to write (parent folders are created; written atomically).
    targets : pandas.DataFrame, optional
        Output of :func:`zdevents.sla_targets`, optionally with ticket attributes. When
        None, read from the cache like :func:`zdevents.build_report`: the metric events,
        their targets and, when cached, the ticket attributes at the time each SLA applied.
    settings : zdevents.Settings, optional
        Where the cache is (only when ``targets`` is None).
    since, until : time, optional
        Keep the targets whose SLA applied in ``[since, until)``.
    account : str, optional
        Name on the title slide (default: the settings' account).
    groups : mapping of int to str, optional
        Group id -> name, for the league table of groups.
    k : int, default 4
        Weeks of the trend verdict's baseline.
    min_targets : int, default 30
        Completed targets a group needs to be ranked.

    Returns
    -------
    Path
        The file written.

    Examples
    --------
    >>> zd.build_deck("reports/sla.pptx", since="2024-01-01")  # doctest: +SKIP
    PosixPath('reports/sla.pptx')
    """
    from .viz.deck import write_deck

    if targets is None:
        targets, account_name = targets_from_cache(settings)
        account = account or account_name
    return write_deck(
        path,
        targets,
        since=since,
        until=until,
        account=account,
        groups=groups,
        k=k,
        min_targets=min_targets,
    )
