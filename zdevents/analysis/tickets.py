"""Ticket attribute timelines from ticket events, and attaching them to SLA targets.

Breach rates split by priority, group or channel need the ticket's attributes *as they
were* when the SLA applied, not as they are today. :func:`ticket_attributes` turns the
long form of ticket changes (``zdevents.export.parse.ticket_changes``) into one row per
change of a tracked field, forward-filled per ticket; :func:`attach_ticket_attributes`
joins the values in force at a time column of the targets (an as-of join).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

__all__ = [
    "ATTRIBUTE_COLUMNS",
    "CHANNELS",
    "ID_FIELDS",
    "TEXT_FIELDS",
    "attach_ticket_attributes",
    "id_names",
    "normalize_channels",
    "ticket_attributes",
]

logger = logging.getLogger(__name__)

#: Tracked fields whose values are ids (stored as nullable ``Int64``).
ID_FIELDS: tuple[str, ...] = ("group_id", "assignee_id", "brand_id", "ticket_form_id")
#: Tracked fields whose values are text (stored as ``string``).
TEXT_FIELDS: tuple[str, ...] = ("status", "priority")
#: Columns of :func:`ticket_attributes`, in order.
ATTRIBUTE_COLUMNS: tuple[str, ...] = (
    "ticket_id",
    "valid_from",
    "status",
    "priority",
    "group_id",
    "assignee_id",
    "brand_id",
    "ticket_form_id",
    "channel",
)
#: One spelling per channel. Zendesk names a channel two ways: ``via.channel`` of an audit
#: object (``"web"``, ``"email"``...) and the ``via`` string of older or child events
#: (``"Web form"``, ``"Mail"``...). Keys are lower-cased; values are ``via.channel``'s names.
CHANNELS: dict[str, str] = {
    "web": "web",
    "web form": "web",
    "email": "email",
    "mail": "email",
    "chat": "chat",
    "api": "api",
    "web service": "api",
    "mobile": "mobile",
    "mobile app": "mobile",
    "mobile_sdk": "mobile_sdk",
    "mobile sdk": "mobile_sdk",
    "web_widget": "web_widget",
    "web widget": "web_widget",
    "help_center": "help_center",
    "help center": "help_center",
    "voice": "voice",
    "voicemail": "voice",
    "phone call (inbound)": "voice",
    "phone call (outbound)": "voice",
    "sms": "sms",
    "text": "sms",
    "twitter": "twitter",
    "facebook": "facebook",
    "facebook post": "facebook",
    "facebook message": "facebook",
    "native_messaging": "native_messaging",
    "messaging": "native_messaging",
    "rule": "rule",
    "system": "system",
    "closed ticket": "closed_ticket",
    "closed_ticket": "closed_ticket",
    "merge": "merge",
}
_TRACKED = (*TEXT_FIELDS, *ID_FIELDS)
_CLEARED = "\x00cleared"  # marks an explicit change to null so forward-fill stops there
_DEFAULT_FIELDS = (
    "status",
    "priority",
    "group_id",
    "assignee_id",
    "brand_id",
    "ticket_form_id",
    "channel",
)


def _empty_attributes(time_dtype: Any = "datetime64[ms, UTC]") -> pd.DataFrame:
    frame = pd.DataFrame(
        {
            "ticket_id": pd.Series(dtype="Int64"),
            "valid_from": pd.Series(dtype=time_dtype),
            **{f: pd.Series(dtype="string") for f in TEXT_FIELDS},
            **{f: pd.Series(dtype="Int64") for f in ID_FIELDS},
            "channel": pd.Series(dtype="string"),
        }
    )
    return frame[list(ATTRIBUTE_COLUMNS)]


def normalize_channels(values: pd.Series) -> pd.Series:
    """One spelling per channel (:data:`CHANNELS`): ``"Web form"`` and ``"web"`` are ``"web"``.

    Unknown names are lower-cased with spaces as underscores; nulls stay null.

    Examples
    --------
    >>> normalize_channels(pd.Series(["Web form", "web", "Mail", "Web service", None])).tolist()
    ['web', 'web', 'email', 'api', <NA>]
    """
    text = values.astype("string")
    key = text.str.strip().str.lower()
    mapped = key.map(CHANNELS, na_action="ignore").astype("string")
    return mapped.fillna(key.str.replace(" ", "_", regex=False)).rename(values.name)


def _creation_channels(changes: pd.DataFrame) -> pd.Series:
    """``via_channel`` per ticket of the audit that created it (else its first audit)."""
    audits = changes[["ticket_id", "audit_id", "time", "via_channel"]].copy()
    if "event_type" in changes.columns:
        created = changes["event_type"].astype("string").str.lower().eq("create")
        audits["_created"] = created.fillna(False).astype(bool)
    else:
        audits["_created"] = False
    audits = audits.sort_values(
        ["ticket_id", "_created", "time", "audit_id"],
        ascending=[True, False, True, True],
        kind="mergesort",
    )
    return audits.drop_duplicates("ticket_id").set_index("ticket_id")["via_channel"]


def ticket_attributes(changes: pd.DataFrame) -> pd.DataFrame:
    """Each ticket's attribute timeline: one row per time a tracked field changed.

    Parameters
    ----------
    changes : pandas.DataFrame
        Ticket changes in long form (``ticket_id, audit_id, time, via_channel, event_type,
        field, value``, ... as ``zdevents.export.parse.ticket_changes`` gives them).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`ATTRIBUTE_COLUMNS`: ``ticket_id`` (Int64), ``valid_from`` (the
        change's time, dtype of ``changes["time"]``), ``status``, ``priority`` (string),
        ``group_id``, ``assignee_id``, ``brand_id``, ``ticket_form_id`` (Int64) and
        ``channel`` (string), sorted by ticket and time. Each row holds every value in
        force from ``valid_from`` on (forward-filled per ticket); a field changed to null
        (e.g. unassigned) is null from then on, not the older value.

    Notes
    -----
    - A row exists for each distinct ``(ticket_id, time)`` with a change of a tracked
      field (``Create`` and ``Change`` events alike), plus the ticket's first audit, so
      the channel is known from the start.
    - Several changes of one field at one timestamp: the last by ``(audit_id,
      event_id)`` wins.
    - ``channel`` is the channel of creation: ``via_channel`` of the audit holding the
      ticket's ``Create`` event, or of its first audit when the export began after the
      ticket was created, in one spelling per channel (:func:`normalize_channels`). It is
      the same on every row of a ticket.
    - Id values that are not integers become null (logged at debug level).

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.Timestamp("2024-01-01", tz="UTC")
    >>> changes = pd.DataFrame({
    ...     "ticket_id": [1, 1, 1], "audit_id": [10, 10, 11], "event_id": [1, 2, 3],
    ...     "time": [t, t, t + pd.Timedelta(hours=1)], "via_channel": ["email", "email", "web"],
    ...     "event_type": ["Create", "Create", "Change"],
    ...     "field": ["priority", "group_id", "priority"], "value": ["normal", "5", "high"],
    ... })
    >>> ticket_attributes(changes)[["valid_from", "priority", "group_id", "channel"]]
                     valid_from priority  group_id channel
    0 2024-01-01 00:00:00+00:00   normal         5   email
    1 2024-01-01 01:00:00+00:00     high         5   email
    """
    needed = ["ticket_id", "audit_id", "time", "via_channel", "field", "value"]
    missing = [c for c in needed if c not in changes.columns]
    if missing:
        raise ValueError(f"ticket changes lack columns: {', '.join(missing)}")
    changes = changes[changes["ticket_id"].notna() & changes["time"].notna()]
    time_dtype = changes["time"].dtype
    if changes.empty:
        return _empty_attributes(time_dtype)

    field = changes["field"].astype("string")
    tracked = changes[field.isin(_TRACKED).fillna(False).to_numpy(dtype=bool)]
    order = ["ticket_id", "time", "audit_id"] + (["event_id"] if "event_id" in changes else [])
    tracked = tracked.sort_values(order, kind="mergesort")
    values = tracked["value"].astype("string").fillna(_CLEARED)
    long = pd.DataFrame(
        {
            "ticket_id": tracked["ticket_id"].astype("Int64"),
            "valid_from": tracked["time"],
            "field": tracked["field"].astype(str),
            "value": values.astype(object),
        }
    )
    long = long.drop_duplicates(["ticket_id", "valid_from", "field"], keep="last")
    wide = long.pivot(index=["ticket_id", "valid_from"], columns="field", values="value")

    first = changes.sort_values(["ticket_id", "time", "audit_id"], kind="mergesort")
    first = first.drop_duplicates("ticket_id")
    starts = pd.MultiIndex.from_arrays(
        [first["ticket_id"].astype("Int64"), first["time"]], names=["ticket_id", "valid_from"]
    )
    wide = wide.reindex(wide.index.union(starts)).sort_index()
    wide = wide.reindex(columns=list(_TRACKED))
    wide = wide.groupby(level="ticket_id", sort=False).ffill()
    wide = wide.mask(wide.eq(_CLEARED))

    out = wide.rename_axis(columns=None).reset_index()
    out["ticket_id"] = out["ticket_id"].astype("Int64")
    out["valid_from"] = out["valid_from"].astype(time_dtype)
    for name in TEXT_FIELDS:
        out[name] = out[name].astype("string")
    for name in ID_FIELDS:
        numbers = pd.to_numeric(out[name].astype("string"), errors="coerce")
        bad = numbers.isna() & out[name].notna()
        if bad.any():
            logger.debug("%d %s values are not integers; read as null", int(bad.sum()), name)
        out[name] = numbers.round().astype("Int64")
    channels = normalize_channels(_creation_channels(changes))
    out["channel"] = out["ticket_id"].map(channels).astype("string")
    return out[list(ATTRIBUTE_COLUMNS)].reset_index(drop=True)


def attach_ticket_attributes(
    targets: pd.DataFrame,
    changes_or_attributes: pd.DataFrame,
    *,
    at: str = "applied_at",
    fields: Sequence[str] = _DEFAULT_FIELDS,
    groups: Mapping[int, str] | None = None,
    brands: Mapping[int, str] | None = None,
) -> pd.DataFrame:
    """Add to each target the ticket's attribute values in force at ``targets[at]``.

    Parameters
    ----------
    targets : pandas.DataFrame
        Rows with ``ticket_id`` and the time column ``at`` (e.g. :func:`sla_targets`).
    changes_or_attributes : pandas.DataFrame
        Either ticket changes in long form (then :func:`ticket_attributes` is applied) or
        its result (recognised by a ``valid_from`` column).
    at : str, default "applied_at"
        Time column of ``targets`` at which the values are taken.
    fields : sequence of str
        Attribute columns to attach (any of ``status, priority, group_id, assignee_id,
        brand_id, ticket_form_id, channel``). Existing columns of the same name in
        ``targets`` are replaced.
    groups : mapping of int to str, optional
        Group id -> group name (``zd.load_names().groups``); adds a ``group_name`` column
        (needs ``group_id`` in ``fields``). An id missing from the mapping (a deleted
        group, say) is shown as its number; a null id stays null.
    brands : mapping of int to str, optional
        Brand id -> brand name (``zd.load_names().brands``); adds ``brand_name`` the same
        way (needs ``brand_id`` in ``fields``).

    Returns
    -------
    pandas.DataFrame
        ``targets`` with the fields added: same rows, same order, same index.

    Notes
    -----
    Backward as-of join by ``ticket_id``: the latest attribute row with ``valid_from <=
    targets[at]``. A change at exactly the same timestamp as ``at`` IS in force (Zendesk
    applies SLA policies in reaction to the update that set, e.g., the priority, so the
    apply and its cause share a timestamp). Targets whose ticket has no attribute row at or
    before ``at``, or whose ``at`` is null, get nulls.

    Examples
    --------
    >>> import pandas as pd
    >>> t = pd.Timestamp("2024-01-01", tz="UTC")
    >>> attrs = pd.DataFrame({"ticket_id": pd.array([1, 1], dtype="Int64"),
    ...                       "valid_from": [t, t + pd.Timedelta(hours=1)],
    ...                       "priority": pd.array(["low", "urgent"], dtype="string")})
    >>> targets = pd.DataFrame({"ticket_id": pd.array([1], dtype="Int64"),
    ...                         "applied_at": [t + pd.Timedelta(minutes=30)]})
    >>> attach_ticket_attributes(targets, attrs, fields=["priority"])
       ticket_id                applied_at priority
    0          1 2024-01-01 00:30:00+00:00      low
    """
    if not isinstance(targets, pd.DataFrame):
        raise TypeError("attach_ticket_attributes needs a pandas DataFrame of targets")
    fields = list(fields)
    if "valid_from" in changes_or_attributes.columns:
        attributes = changes_or_attributes
    else:
        attributes = ticket_attributes(changes_or_attributes)
    unknown = [f for f in fields if f not in attributes.columns]
    if unknown:
        raise ValueError(f"unknown attribute fields: {', '.join(unknown)}")
    for col in ("ticket_id", at):
        if col not in targets.columns:
            raise ValueError(f"targets lack column {col!r}")
    if groups is not None and "group_id" not in fields:
        raise ValueError("groups needs 'group_id' in fields")
    if brands is not None and "brand_id" not in fields:
        raise ValueError("brands needs 'brand_id' in fields")

    time_dtype = targets[at].dtype
    left = pd.DataFrame(
        {
            "_pos": range(len(targets)),
            "ticket_id": targets["ticket_id"].astype("Int64").array,
            "_at": targets[at].array,
        }
    )
    right = attributes[["ticket_id", "valid_from", *fields]].copy()
    right["ticket_id"] = right["ticket_id"].astype("Int64")
    right["_at"] = right.pop("valid_from").astype(time_dtype)
    right = right.dropna(subset=["ticket_id", "_at"]).sort_values("_at", kind="mergesort")

    usable = left["ticket_id"].notna() & left["_at"].notna()
    merged = pd.merge_asof(
        left[usable].sort_values("_at", kind="mergesort"),
        right,
        on="_at",
        by="ticket_id",
        direction="backward",
        allow_exact_matches=True,
    )
    merged = merged.set_index("_pos").reindex(range(len(targets)))

    out = targets.copy()
    for name in fields:
        out[name] = merged[name].astype(right[name].dtype).array
    for mapping, ids, column in (
        (groups, "group_id", "group_name"),
        (brands, "brand_id", "brand_name"),
    ):
        if mapping is not None:
            out[column] = id_names(out[ids], mapping).array
    return out


def id_names(ids: pd.Series, names: Mapping[int, str]) -> pd.Series:
    """The names of ids (group, brand, assignee ids...) as a ``string`` Series.

    An id missing from ``names`` reads as its number; a missing id stays missing.

    Examples
    --------
    >>> id_names(pd.Series([1, 2, None], dtype="Int64"), {1: "Support"}).tolist()
    ['Support', '2', <NA>]
    """

    def name(value: object) -> object:
        if value is None or pd.isna(value):
            return pd.NA
        return names.get(int(value), str(int(value)))  # type: ignore[call-overload]

    return ids.astype(object).map(name).astype("string")
