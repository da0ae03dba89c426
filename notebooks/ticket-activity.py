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
# # Ticket activity from the ticket event stream
#
# Zendesk's ticket event export gives every audit (one save of a ticket) with its child
# events: field changes, comments and notifications. `zd.load_changes` turns them into one
# row per change. This notebook looks at changes per day by channel, how tickets move between
# statuses, comment volume, and who changes priority.

# %% tags=["parameters"]
data_dir = "../data"  # cache root (ZDEVENTS_DATA_DIR)
since = None  # e.g. "2024-01-01"
until = None  # exclusive end
use_sample = True  # fetch the sample account from a local server into data_dir
out_dir = "../reports/notebook"

# %%
import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import pandas as pd

import zdevents as zd

if use_sample:
    settings = zd.prepare_sample(data_dir)
else:
    settings = zd.Settings.from_env(data_dir=data_dir)

refresh = "never" if use_sample else "auto"
audits = zd.load_frame(since, until, stream="ticket_events", settings=settings, refresh=refresh)
changes = zd.load_changes(since, until, settings=settings, refresh="never")
# Zendesk spells some channels two ways ("Web form" and "web"): one name per channel.
changes["channel"] = zd.normalize_channels(changes["via_channel"])
print(
    f"{len(audits):,} audits with {len(changes):,} changes on {audits['ticket_id'].nunique():,} tickets"
)

# %% [markdown]
# ## Changes per day, by channel of the audit

# %%
per_day = (
    changes.assign(day=changes["time"].dt.floor("D"))
    .groupby(["day", "channel"], observed=True)
    .size()
    .unstack(fill_value=0)
)
fig, ax = plt.subplots(figsize=(9, 4))
per_day.rolling(7, min_periods=1).mean().plot(ax=ax)
ax.legend(title="channel", frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
ax.set_title("Ticket changes per day by channel (7-day mean)")
ax.set_xlabel("")
ax.set_ylabel("changes per day")
zd.save_figure(fig, f"{out_dir}/changes_per_day")
per_day.sum().sort_values(ascending=False)

# %% [markdown]
# ## Status flow
#
# How often a ticket moves from one status to the next (`previous_value` -> `value`).

# %%
status = changes[(changes["field"] == "status") & changes["previous_value"].notna()]
flow = status.groupby(["previous_value", "value"], observed=True).size().unstack(fill_value=0)
flow

# %% [markdown]
# ## Comment volume: public replies and internal notes

# %%
comments = changes[changes["field"] == "comment"]
monday = comments["time"].dt.floor("D") - pd.to_timedelta(comments["time"].dt.day_of_week, unit="D")
weekly_comments = (
    comments.assign(week=monday)
    .groupby(["week", "public"], observed=True)
    .size()
    .unstack(fill_value=0)
    .rename(columns={True: "public", False: "internal"})
)
# Bars on a real date axis (one per week, at its Monday), so every label sits under its bar.
fig, ax = plt.subplots(figsize=(9, 4))
bottom = 0
for kind, colour in (("public", "#0072B2"), ("internal", "#E69F00")):
    if kind in weekly_comments:
        ax.bar(
            weekly_comments.index,
            weekly_comments[kind],
            width=5.5,
            bottom=bottom,
            align="edge",
            color=colour,
            label=kind,
        )
        bottom = bottom + weekly_comments[kind]
ax.xaxis.set_major_locator(mdates.MonthLocator())
ax.xaxis.set_major_formatter(mdates.DateFormatter("%b %Y"))
ax.set_title(f"Comments per week ({len(weekly_comments)} weeks, starting Monday, UTC)", loc="left")
ax.set_ylabel("comments")
ax.legend(frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))
ax.spines[["top", "right"]].set_visible(False)
zd.save_figure(fig, f"{out_dir}/comments_per_week")
weekly_comments.tail()

# %% [markdown]
# ## Who changes priority?

# %%
priority = changes[changes["field"] == "priority"]
priority.groupby("updater_id").size().sort_values(ascending=False).head(10).rename(
    "priority changes"
)
