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
# # How often do we breach our SLAs?
#
# This notebook answers the weekly question: **how often do we breach our SLAs, on which
# metric, under which policy, and is it really getting better?** Then the two questions
# that follow: **do update breaches come from the customer's waiting, and how late are
# breaches?** It reads Zendesk's SLA metric events from the local cache (fetching what is
# new when an account is configured), turns them into one row per SLA target with its
# outcome, and looks at breach rates from several angles.
#
# Set `use_sample = True` to run on the bundled sample account (no Zendesk account needed).

# %% tags=["parameters"]
data_dir = "../data"  # cache root (ZDEVENTS_DATA_DIR)
since = None  # e.g. "2024-01-01": targets whose SLA applied from then on
until = None  # exclusive end, e.g. "2024-07-01"
use_sample = True  # fetch the sample account from a local server into data_dir
out_dir = "../reports/notebook"  # where the charts are exported

# %%
import zdevents as zd

if use_sample:
    settings = zd.prepare_sample(data_dir)
else:
    settings = zd.Settings.from_env(data_dir=data_dir)

events = zd.load_frame(settings=settings, refresh="never" if use_sample else "auto")
as_of = events.attrs.get("zdevents_as_of")
names = zd.load_names(settings=settings)  # group and brand names, cached beside the exports
when = f"{as_of:%Y-%m-%d %H:%M} UTC" if as_of is not None else "unknown"
print(
    f"{len(events):,} metric events, {events['ticket_id'].nunique():,} tickets; data as of {when}"
)

# %% [markdown]
# ## From events to SLA targets
#
# Zendesk writes an `apply_sla` event when a policy applies, a `breach` event ahead of time
# for when the target will be missed (deleted again if the metric is fulfilled in time), and a
# `fulfill` when the agent replies or the ticket is solved. `zd.sla_targets` applies those
# rules and gives one row per target with its outcome: achieved, breached or still active.

# %%
targets = zd.sla_targets(events, as_of=as_of)
changes = zd.load_changes(settings=settings, refresh="never")
targets = zd.attach_ticket_attributes(targets, changes, groups=names.groups, brands=names.brands)
targets = zd.applied_between(targets, since, until)
# The line under every chart's title: account, period and as-of.
subtitle = zd.chart_subtitle(
    account=settings.account, since=since, until=until, as_of=as_of, targets=targets
)
print(subtitle)
targets["outcome"].value_counts()

# %% [markdown]
# ## Breach rate by metric
#
# Breach rate = breached / (breached + achieved); active targets are left out. The whiskers are
# Wilson 95% intervals: a metric with few targets has a wide interval.

# %%
by_metric = zd.breach_rates(targets, by=["metric", "metric_label"])  # first and next reply apart
ax = zd.plot_breach_rates(by_metric, subtitle=subtitle)
zd.save_figure(ax, f"{out_dir}/breach_rate_by_metric")
by_metric[["metric_label", "breached", "achieved", "active", "breach_rate", "ci_low", "ci_high"]]

# %% [markdown]
# ## Periodic vs pausable update: is it the customer's waiting?
#
# `periodic_update_time` measures the time between public agent comments, and keeps running
# while the ticket is pending; `pausable_update_time` measures the same but pauses while the
# ticket waits on the customer. Where the two differ, pending time is what breaches.
#
# Their breach rates side by side say how often each breaches, not why:

# %%
updates = targets[targets["metric"].isin(["periodic_update_time", "pausable_update_time"])]
zd.breach_rates(updates, by=["metric", "policy_title"])

# %% [markdown]
# Pairing the two targets of each ticket instance says why. A periodic breach whose
# pausable twin was achieved is explained by the customer's waiting: the agents kept to the
# target on the time they had. A breach of both is the team's own delay.

# %%
from zdevents.viz.takeaways import pairing_takeaway

pairs = zd.update_pairs(targets)
print(pairing_takeaway(zd.update_pairing_summary(pairs, by=None)))
pairing_by_policy = zd.update_pairing_summary(pairs, by="policy_title")
ax = zd.plot_update_pairing(pairing_by_policy, subtitle=subtitle)
zd.save_figure(ax, f"{out_dir}/update_pairing_by_policy")
pairing_by_policy

# %% [markdown]
# The same split by group: where waiting explains little, the team itself is late.

# %%
zd.update_pairing_summary(pairs, by="group_name")

# %% [markdown]
# ## By policy, priority and group

# %%
by_policy = zd.breach_rates(targets, by=["metric", "metric_label", "policy_title"])
ax = zd.plot_breach_heatmap(by_policy, subtitle=subtitle)
zd.save_figure(ax, f"{out_dir}/breach_heatmap_metric_policy")

# %%
zd.breach_rates(targets, by="priority")

# %% [markdown]
# Groups and brands by name (from Zendesk's groups and brands lists; an id that is not in
# the lists, such as a deleted group, shows as its number).

# %%
by_group = zd.breach_rates(targets, by="group_name")
ax = zd.plot_breach_rates(
    by_group, by="group_name", title="SLA breach rate by group", subtitle=subtitle
)
zd.save_figure(ax, f"{out_dir}/breach_rate_by_group")
by_group

# %%
zd.breach_rates(targets, by="brand_name")

# %% [markdown]
# ## Is it getting better?
#
# Weekly breach rates, one panel per metric on the same axes. The newest weeks are hatched
# as incomplete: their slow targets are still open (active), so those weeks look better
# than they will end up. `freq="M"` gives the same chart by month.

# %%
weekly = zd.breach_rates(targets, by=["metric", "metric_label"], freq="W")
ax = zd.plot_breach_trend(weekly, freq="W", as_of=as_of, subtitle=subtitle)
zd.save_figure(ax, f"{out_dir}/breach_trend_weekly")

# %%
monthly = zd.breach_rates(targets, by=["metric", "metric_label"], freq="M")
ax = zd.plot_breach_trend(monthly, freq="M", as_of=as_of, subtitle=subtitle)
zd.save_figure(ax, f"{out_dir}/breach_trend_monthly")

# %% [markdown]
# ### Is it *really* getting better? The verdict
#
# A line that dips can be noise. `zd.trend_verdicts` compares the latest **complete** week
# (ended, no target still open) with the four complete weeks before it, per metric, with a
# two-proportion z-test, and says "better", "worse" or "no significant change" with the
# effect size and p-value. Incomplete weeks, the hatched ones above, are never used.

# %%
from zdevents.viz.takeaways import in_metric_order, trend_takeaway, verdict_sentences

verdicts = zd.trend_verdicts(targets, by="metric_label", k=4, as_of=as_of)
print(trend_takeaway(verdicts))
print()
print("\n".join(verdict_sentences(verdicts)))

# %%
in_metric_order(verdicts)[
    [
        "metric_label",
        "latest_period",
        "latest_rate",
        "baseline_rate",
        "rate_change",
        "p_value",
        "verdict",
    ]
]

# %% [markdown]
# ## How close to the target are fulfilments?
#
# Time to fulfilment relative to the target (1.0 = exactly on target). It counts fulfilled
# targets with a measured time; the note under the chart says how that n relates to the
# breach-rate chart's (breached targets not fulfilled yet are only in the latter).

# %%
ax = zd.plot_fulfilment_ratio(targets, subtitle=subtitle)
zd.save_figure(ax, f"{out_dir}/fulfilment_vs_target")

# %% [markdown]
# ## How late are the breaches?
#
# A breach rate counts a reply five minutes late the same as one two days late. For every
# breached target, `zd.lateness` measures the time from the breach to the fulfilment (or,
# for a target still open, to the as-of time: a lower bound, marked open). The median says
# what is typical, the p90 how bad the tail is.

# %%
from zdevents.viz.takeaways import in_metric_order, lateness_takeaway

late = zd.lateness(targets, as_of=as_of)
late_by_metric = in_metric_order(zd.lateness_summary(late, by="metric_label"))
print(lateness_takeaway(late_by_metric))
ax = zd.plot_lateness(late, subtitle=subtitle)
zd.save_figure(ax, f"{out_dir}/lateness_by_metric")
late_by_metric.round(1)
