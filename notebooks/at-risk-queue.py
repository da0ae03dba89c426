# ---
# jupyter:
#   jupytext:
#     formats: ipynb,py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # What is about to breach: the at-risk queue
#
# Breach rates look back. A team lead also needs to look ahead: which SLA targets are still
# running, and which fall due in the next hours, for which group and which agent?
# `zd.due_targets` gives every target that is active at the data's as-of time with its due
# time, and `zd.due_summary` turns that into a queue by group and assignee.

# %% tags=["parameters"]
data_dir = "../data"  # cache root (ZDEVENTS_DATA_DIR)
use_sample = True  # fetch the sample account from a local server into data_dir
within = "4h"  # the horizon of the queue
as_of = None  # None: the cache's as-of time; or e.g. "2024-06-28 12:00"
out_dir = "../reports/notebook"

# %%
import matplotlib.pyplot as plt
import pandas as pd
from matplotlib.ticker import MaxNLocator

import zdevents as zd

if use_sample:
    from zdevents.sample.account import AGENTS, GROUPS

    settings = zd.prepare_sample(data_dir)
    groups = GROUPS
    assignees = {agent_id: info["name"] for agent_id, info in AGENTS.items()}
else:
    settings = zd.Settings.from_env(data_dir=data_dir)
    groups, assignees = None, None  # ticket events carry ids only: pass your own lookups

refresh = "never" if use_sample else "auto"
events = zd.load_frame(settings=settings, refresh=refresh)
changes = zd.load_changes(settings=settings, refresh="never")
as_of = zd.to_utc(as_of) if as_of is not None else events.attrs["zdevents_as_of"]
print(f"{len(events):,} metric events; the queue as of {as_of:%Y-%m-%d %H:%M} UTC")

# %% [markdown]
# ## Active targets and where their due time comes from
#
# - **scheduled breach**: Zendesk writes a breach event ahead, at the time the target will
#   be missed if nothing happens; a breach event later than as-of is the due time.
# - **applied + target**: for calendar-hour targets without a scheduled breach, the time
#   the SLA applied plus the target. It ignores earlier pauses, so it can only be early.
# - **unknown (business hours)**: a business-hour target without a scheduled breach: the
#   due time depends on the schedule, which the export does not carry.
# - **paused**: the clock is stopped (the ticket waits on the customer or is on hold).

# %%
due = zd.due_targets(events, as_of=as_of)
due = zd.attach_ticket_attributes(due, changes, at="as_of", fields=["group_id", "assignee_id"])
print(f"{len(due):,} SLA targets active at {as_of:%Y-%m-%d %H:%M} UTC")
due["due_source"].value_counts()

# %% [markdown]
# ## The queue: due in the next hours, by group and assignee
#
# `due` counts targets due from now to the end of the horizon (both ends included);
# `overdue_estimate` counts calendar targets whose estimate is already past with no breach
# recorded (their clock was paused at some point); `unknown_due` the business-hour targets.

# %%
queue = zd.due_summary(due, within, groups=groups, assignees=assignees)
queue[queue["due"] > 0]

# %% [markdown]
# Everyone with active targets, including those whose due time is unknown:

# %%
queue

# %%
horizon = pd.Timedelta(within)
soon = due[(due["due_at"] >= as_of) & (due["due_at"] <= as_of + horizon)]
print(f"{len(soon):,} targets due within {within}")
soon[["due_at", "minutes_to_due", "ticket_id", "metric_label", "policy_title", "due_source"]]

# %% [markdown]
# ## A look back: the queue three days earlier
#
# The sample's export stops at its as-of time, so breaches scheduled after it are not in
# it, and today's queue has no "scheduled breach" due times. The queue as it stood three
# days earlier (a working day follows) shows them: every breach event later than that
# moment was written ahead by Zendesk. (The view is a little optimistic: breach events
# that were later cancelled are already marked deleted in the export, so they are left out.)

# %%
earlier = as_of - pd.Timedelta(days=3)
before = zd.due_targets(events, as_of=earlier)
before = zd.attach_ticket_attributes(
    before, changes, at="as_of", fields=["group_id", "assignee_id"]
)
print(before["due_source"].value_counts().to_string())
zd.due_summary(before, "8h", groups=groups, assignees=assignees).query("due > 0")

# %% [markdown]
# ## Due times over the next day, by group

# %%
day = due[(due["due_at"] >= as_of) & (due["due_at"] <= as_of + pd.Timedelta(days=1))].copy()
day["hours_from_now"] = (day["minutes_to_due"] // 60).astype(int)
day["group"] = day["group_id"].map(
    lambda g: (groups or {}).get(g, str(g)) if pd.notna(g) else "(no group)"
)
per_hour = day.groupby(["hours_from_now", "group"]).size().unstack(fill_value=0)
per_hour = per_hour.reindex(range(24), fill_value=0)
fig, ax = plt.subplots(figsize=(9, 3.8))
per_hour.plot.bar(stacked=True, ax=ax, width=0.8, rot=0)
ax.yaxis.set_major_locator(MaxNLocator(integer=True))
ax.set_title("SLA targets falling due in the next 24 hours", loc="left", fontweight="bold")
ax.set_xlabel(f"hours after {as_of:%Y-%m-%d %H:%M} UTC")
ax.set_ylabel("targets due")
ax.legend(title=None, frameon=False)
zd.save_figure(fig, f"{out_dir}/due_next_24h")
per_hour.sum()
