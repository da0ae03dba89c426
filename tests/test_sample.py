"""The sample account: deterministic, Zendesk-shaped, consistent, and covering every SLA scenario."""

from __future__ import annotations

import re
from collections import defaultdict
from datetime import datetime

import pytest

from zdevents.sample.account import GROUPS, SampleAccount

ISO_Z = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def epoch(text: str) -> int:
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())


@pytest.fixture(scope="module")
def account() -> SampleAccount:
    return SampleAccount(tickets=600, seed=11)


@pytest.fixture(scope="module")
def metric_events(account: SampleAccount) -> list[dict]:
    return list(account.metric_events())


@pytest.fixture(scope="module")
def audits(account: SampleAccount) -> list[dict]:
    return list(account.ticket_events(include_comments=True))


@pytest.fixture(scope="module")
def instances(metric_events: list[dict]) -> dict[tuple[int, str, int], list[dict]]:
    grouped: dict[tuple[int, str, int], list[dict]] = defaultdict(list)
    for event in metric_events:
        grouped[(event["ticket_id"], event["metric"], event["instance_id"])].append(event)
    for events in grouped.values():
        events.sort(key=lambda e: (epoch(e["time"]), e["id"]))
    return grouped


def test_same_seed_same_records_and_other_seed_differs() -> None:
    first = SampleAccount(tickets=30, seed=3)
    again = SampleAccount(tickets=30, seed=3)
    other = SampleAccount(tickets=30, seed=4)
    assert list(first.metric_events()) == list(again.metric_events())
    assert list(first.ticket_events(True)) == list(again.ticket_events(True))
    assert list(first.metric_events()) != list(other.metric_events())


def test_iteration_is_repeatable_on_one_account() -> None:
    account = SampleAccount(tickets=10, seed=5)
    assert list(account.metric_events()) == list(account.metric_events())


def test_ids_unique_per_stream(metric_events: list[dict], audits: list[dict]) -> None:
    assert len({e["id"] for e in metric_events}) == len(metric_events)
    assert len({a["id"] for a in audits}) == len(audits)
    child_ids = [c["id"] for a in audits for c in a["child_events"]]
    assert len(set(child_ids)) == len(child_ids)


def test_times_are_utc_z_strings_inside_the_period(account, metric_events, audits) -> None:
    for event in metric_events:
        assert ISO_Z.match(event["time"]), event
        assert account.start <= epoch(event["time"]) < account.end
    for audit in audits:
        assert ISO_Z.match(audit["created_at"])
        assert epoch(audit["created_at"]) == audit["timestamp"]
        assert account.start <= audit["timestamp"] < account.end


def test_metric_event_fields_have_zendesk_types(metric_events: list[dict]) -> None:
    base = {
        "id": int,
        "ticket_id": int,
        "metric": str,
        "instance_id": int,
        "type": str,
        "time": str,
    }
    extra = {
        "apply_sla": "sla",
        "apply_group_sla": "group_sla",
        "update_status": "status",
        "breach": "deleted",
    }
    for event in metric_events:
        for name, kind in base.items():
            assert type(event[name]) is kind, (name, event)
        allowed = set(base) | ({extra[event["type"]]} if event["type"] in extra else set())
        assert set(event) == allowed, event
        if event["type"] in ("apply_sla", "apply_group_sla"):
            sla = event[extra[event["type"]]]
            assert type(sla["target"]) is int and sla["target"] > 0
            assert sla["target_in_seconds"] == sla["target"] * 60
            assert type(sla["business_hours"]) is bool
            assert set(sla["policy"]) == {"id", "title", "description"}
            assert type(sla["policy"]["id"]) is int
        elif event["type"] == "update_status":
            status = event["status"]
            assert type(status["calendar"]) is int and type(status["business"]) is int
            assert 0 <= status["business"] <= status["calendar"]
        elif event["type"] == "breach":
            assert type(event["deleted"]) is bool
        elif event["type"] == "measure":
            assert event["instance_id"] == 0
        else:
            assert event["instance_id"] >= 1


def test_audit_fields_have_zendesk_types(audits: list[dict]) -> None:
    vias = [a["via"] for a in audits]
    assert sum(isinstance(v, str) for v in vias) > 0  # "Web form" style strings occur...
    assert sum(isinstance(v, dict) for v in vias) > 0.9 * len(vias)  # ...but objects dominate
    assert {v["channel"] for v in vias if isinstance(v, dict)} >= {"web", "email", "api", "rule"}
    for audit in audits:
        assert set(audit) == {
            "id",
            "ticket_id",
            "timestamp",
            "created_at",
            "updater_id",
            "via",
            "system",
            "event_type",
            "child_events",
        }
        assert audit["event_type"] == "Audit"
        assert isinstance(audit["child_events"], list) and audit["child_events"]
        for child in audit["child_events"]:
            assert type(child["id"]) is int
            assert child["event_type"] in ("Create", "Change", "Comment", "Notification")
            if (
                child["event_type"] == "Change"
                and "tags" not in child
                and "added_tags" not in child
            ):
                assert "previous_value" in child


def test_first_audit_creates_the_ticket(audits: list[dict]) -> None:
    first = next(a for a in audits if a["ticket_id"] == 1)
    created = {k for c in first["child_events"] if c["event_type"] == "Create" for k in c}
    assert {"status", "group_id", "brand_id", "ticket_form_id", "tags", "requester_id"} <= created
    assert any(c["event_type"] == "Notification" for c in first["child_events"])


def test_changes_cover_the_ticket_fields(audits: list[dict]) -> None:
    changed = {
        k for a in audits for c in a["child_events"] if c["event_type"] == "Change" for k in c
    }
    assert {
        "status",
        "priority",
        "group_id",
        "assignee_id",
        "tags",
        "added_tags",
        "previous_value",
    } <= changed
    statuses = {c["status"] for a in audits for c in a["child_events"] if "status" in c}
    assert statuses == {"new", "open", "pending", "hold", "solved", "closed"}


def test_comments_only_with_include_comments(account: SampleAccount, audits: list[dict]) -> None:
    comments = [c for a in audits for c in a["child_events"] if c["event_type"] == "Comment"]
    assert comments
    assert {c["public"] for c in comments} == {True, False}
    for comment in comments[:50]:
        assert comment["type"] == "Comment"
        assert {
            "author_id",
            "body",
            "html_body",
            "attachments",
            "audit_id",
            "created_at",
            "via",
        } <= set(comment)
    plain = list(account.ticket_events())
    assert not any(c["event_type"] == "Comment" for a in plain for c in a["child_events"])
    assert any(c["comment_present"] for a in plain for c in a["child_events"])
    assert len(plain) == len(audits)


def test_group_lookup_names_every_group_used(audits: list[dict], account: SampleAccount) -> None:
    used = {c["group_id"] for a in audits for c in a["child_events"] if "group_id" in c}
    assert used <= set(account.groups)
    assert account.groups == GROUPS
    assert set(GROUPS.values()) >= {"Tier 1", "Tier 2", "Billing"}


def test_policies_are_zendesk_objects(account: SampleAccount) -> None:
    titles = [p["title"] for p in account.policies]
    assert titles == ["Enterprise", "Urgent escalations", "Standard"]
    business = {
        p["title"]: {m["business_hours"] for m in p["policy_metrics"]} for p in account.policies
    }
    assert business == {"Enterprise": {False}, "Urgent escalations": {False}, "Standard": {True}}
    assert account.group_policies[0]["policy_metrics"][0]["metric"] == "group_ownership_time"


def test_streams_agree_status_pending_pauses_requester_wait(metric_events, audits) -> None:
    pending = {
        (a["ticket_id"], a["timestamp"])
        for a in audits
        for c in a["child_events"]
        if c.get("status") == "pending"
    }
    pauses = {
        (e["ticket_id"], epoch(e["time"]))
        for e in metric_events
        if e["metric"] == "requester_wait_time" and e["type"] == "pause"
    }
    assert pauses and pauses <= pending


def test_contains_every_sla_scenario(instances) -> None:
    found = defaultdict(int)
    for (_, metric, instance), events in instances.items():
        types = [e["type"] for e in events]
        times = [epoch(e["time"]) for e in events]
        applies = [e for e in events if e["type"] == "apply_sla"]
        fulfils = [t for t, kind in zip(times, types, strict=True) if kind == "fulfill"]
        breaches = [e for e in events if e["type"] == "breach"]
        if any(b["deleted"] for b in breaches):
            found["deleted breach"] += 1
        if any(not b["deleted"] and any(f > epoch(b["time"]) for f in fulfils) for b in breaches):
            found["breach then fulfil"] += 1
        if len({(a["sla"]["policy"]["id"], a["sla"]["target"]) for a in applies}) > 1:
            found["re-applied policy"] += 1
        if applies and fulfils and fulfils[0] < epoch(applies[0]["time"]):
            found["fulfilled before applied"] += 1
        if "apply_group_sla" in types and metric == "group_ownership_time":
            found["group sla"] += 1
        if "update_status" in types:
            found["update_status"] += 1
        if metric == "agent_work_time" and "pause" in types:
            found["pause"] += 1
        if metric == "resolution_time" and types.count("fulfill") > 1:
            found["reopened"] += 1
        if metric == "reply_time" and instance >= 3:
            found["next replies"] += 1
        if metric == "periodic_update_time" and instance >= 2:
            found["periodic instances"] += 1
        if instance == 0:
            found["measure"] += 1
    expected = {
        "deleted breach",
        "breach then fulfil",
        "re-applied policy",
        "fulfilled before applied",
        "group sla",
        "update_status",
        "pause",
        "reopened",
        "next replies",
        "periodic instances",
        "measure",
    }
    assert expected <= {name for name, count in found.items() if count >= 3}, dict(found)


def _outcomes(instances) -> dict[tuple[str, int], list[bool]]:
    """(metric, creation week half) -> breached flags, following zendesk-api.md's rules."""
    result: dict[tuple[str, int], list[bool]] = defaultdict(list)
    for (_, metric, _), events in instances.items():
        if not any(e["type"] in ("apply_sla", "apply_group_sla") for e in events):
            continue
        fulfil = None
        for i, event in enumerate(events):
            if event["type"] == "fulfill" and not any(
                e["type"] == "activate" for e in events[i + 1 :]
            ):
                fulfil = epoch(event["time"])
        if fulfil is None:
            continue
        applied = [
            e for e in events if e["type"].startswith("apply") and epoch(e["time"]) <= fulfil
        ]
        if not applied:
            continue
        breached = any(
            e["type"] == "breach" and not e["deleted"] and epoch(e["time"]) <= fulfil
            for e in events
        )
        half = int(epoch(events[0]["time"]) >= 1_711_929_600)  # 2024-04-01
        result[(metric, half)].append(breached)
    return result


def test_breach_rates_are_realistic_and_improve(instances) -> None:
    outcomes = _outcomes(instances)
    metrics = {m for m, _ in outcomes}
    for metric in metrics:
        flags = outcomes[(metric, 0)] + outcomes[(metric, 1)]
        assert 0.08 <= sum(flags) / len(flags) <= 0.40, metric
    first = [f for (m, h), v in outcomes.items() if h == 0 for f in v]
    second = [f for (m, h), v in outcomes.items() if h == 1 for f in v]
    assert sum(first) / len(first) > sum(second) / len(second) + 0.02


def test_burst_puts_n_metric_events_in_one_second() -> None:
    account = SampleAccount(tickets=5, seed=1, burst_events=1500, burst_audits=1200)
    events = list(account.metric_events())
    burst = [e for e in events if e["id"] >= 90_000_000_000]
    assert len(burst) == 1500 and len({e["time"] for e in burst}) == 1
    assert len({e["id"] for e in events}) == len(events)
    audits = list(account.ticket_events())
    assert sum(1 for a in audits if a["timestamp"] == epoch(burst[0]["time"])) >= 1200


def test_deleted_tickets_are_known(account: SampleAccount) -> None:
    assert account.deleted_ticket_ids
    assert account.deleted_ticket_ids <= set(range(1, account.tickets + 1))


def test_rejects_nonsense_sizes() -> None:
    with pytest.raises(ValueError):
        SampleAccount(tickets=-1)
