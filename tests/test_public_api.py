"""The public surface, pinned: ``zd.__all__``, the command line, the old import paths, and the
names the README uses. A change here is a change users see: make it on purpose."""

from __future__ import annotations

import argparse
import importlib
import re
import sys
import warnings
from pathlib import Path

import pytest

import zdevents as zd
from zdevents._moved import MOVED, MOVED_NAMES
from zdevents.cli import build_parser

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()

EXPECTED_ALL = [
    "ApiError",
    "AuthError",
    "CacheError",
    "CacheLocked",
    "ConfigError",
    "FetchResult",
    "NotFound",
    "PageError",
    "PermissionDenied",
    "RateLimited",
    "ServerError",
    "Settings",
    "ZdEventsError",
    "__version__",
    "applied_between",
    "attach_ticket_attributes",
    "breach_rates",
    "build_deck",
    "build_report",
    "cache_status",
    "chart_subtitle",
    "due_summary",
    "due_targets",
    "fetch",
    "fetch_names",
    "funnel_table",
    "lateness",
    "lateness_summary",
    "load_changes",
    "load_frame",
    "load_names",
    "normalize_channels",
    "plot_breach_heatmap",
    "plot_breach_rates",
    "plot_breach_trend",
    "plot_fulfilment_ratio",
    "plot_funnel",
    "plot_lateness",
    "plot_update_pairing",
    "prepare_sample",
    "read_export",
    "rebuild_cache",
    "run_demo",
    "save_figure",
    "scan",
    "scan_as_of",
    "sla_targets",
    "ticket_attributes",
    "time_range",
    "to_utc",
    "trend_verdicts",
    "update_pairing_summary",
    "update_pairs",
]

#: Every command of ``zdevents`` with its options (long and short) and positional arguments.
EXPECTED_CLI = {
    "": ["--verbose", "-v"],
    "fetch": [
        "--data-dir",
        "--exclude-deleted",
        "--force",
        "--include-comments",
        "--pagination",
        "--quiet",
        "--since",
        "--stream",
        "--support-type-scope",
        "--until",
        "--wait",
        "-q",
    ],
    "cache": [],
    "cache rebuild": ["--data-dir", "--stream"],
    "cache migrate": ["--data-dir", "--stream"],
    "cache optimize": ["--data-dir", "--stream"],
    "cache vacuum": ["--data-dir", "--retain-hours", "--stream"],
    "status": ["--data-dir"],
    "report": ["--data-dir", "--out", "--pptx", "--since", "--until"],
    "due": ["--as-of", "--data-dir", "--limit", "--within"],
    "import": ["--data-dir", "--stream", "files"],
    "demo": ["--data-dir", "--out", "--quiet", "--tickets", "-q"],
}


def commands(parser: argparse.ArgumentParser, name: str = "") -> dict[str, list[str]]:
    """``{"fetch": ["--data-dir", ...], ...}``: each (sub)command's options and positionals."""
    found: dict[str, list[str]] = {name: []}
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub_name, sub in action.choices.items():
                found |= commands(sub, f"{name} {sub_name}".strip())
        elif isinstance(action, argparse._HelpAction):
            continue
        else:
            found[name] += action.option_strings or [action.dest]
    found[name].sort()
    return found


def test_all_is_pinned():
    assert sorted(zd.__all__) == EXPECTED_ALL
    assert len(zd.__all__) == len(set(zd.__all__))
    for name in zd.__all__:
        assert hasattr(zd, name), name


def test_the_command_line_is_pinned():
    assert commands(build_parser()) == EXPECTED_CLI


@pytest.mark.parametrize(("old", "new"), sorted(MOVED.items()))
def test_each_old_import_path_warns_and_gives_the_module_at_its_new_place(old, new):
    parent, _, leaf = old.rpartition(".")
    had_attribute = leaf in vars(sys.modules[parent])
    sys.modules.pop(old, None)  # a fresh import, as in a new process
    try:
        with pytest.warns(
            DeprecationWarning, match=rf"^{re.escape(old)} moved to {re.escape(new)};"
        ):
            module = importlib.import_module(old)
        if old in MOVED_NAMES:  # its names live in more than one module now
            for name, home in MOVED_NAMES[old].items():
                assert getattr(module, name) is getattr(importlib.import_module(home), name)
            public = importlib.import_module(new).__all__
            assert all(
                getattr(module, name) is getattr(importlib.import_module(new), name)
                for name in public
            )
        else:
            assert module is importlib.import_module(new)
            assert module.__spec__.name == new  # its relative imports still resolve from there
    finally:  # leave no trace for tests that import the old path themselves
        sys.modules.pop(old, None)
        if not had_attribute:
            vars(sys.modules[parent]).pop(leaf, None)


def test_importing_an_old_path_named_like_a_public_function_keeps_the_function():
    scan_function = zd.scan
    sys.modules.pop("zdevents.scan", None)
    try:
        with pytest.warns(DeprecationWarning, match=r"^zdevents\.scan moved to"):
            importlib.import_module("zdevents.scan")
        assert zd.scan is scan_function
        assert callable(zd.scan)
    finally:
        sys.modules.pop("zdevents.scan", None)


def test_the_testing_module_imports_the_local_server_without_a_warning():
    from zdevents.sample import SampleAccount
    from zdevents.sample.server import LocalZendesk

    sys.modules.pop("zdevents.testing", None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        testing = importlib.import_module("zdevents.testing")
    assert [str(w.message) for w in caught] == []
    assert testing.LocalZendesk is LocalZendesk
    assert testing.SampleAccount is SampleAccount


def test_every_public_function_is_in_the_readme_with_its_name():
    for name in zd.__all__:
        if name.startswith("_") or name[0].isupper():
            continue
        assert f"zd.{name}" in README, f"zd.{name} is not documented in the README"


def test_every_name_the_readme_uses_exists():
    for name in sorted(set(re.findall(r"\bzd\.([A-Za-z_]\w*)", README))):
        assert hasattr(zd, name), f"the README uses zd.{name}, which zdevents does not have"
    for path in sorted(set(re.findall(r"\bzdevents(?:\.[A-Za-z_]\w*)+", README))):
        assert path not in MOVED, f"the README names the old path {path}: use {MOVED[path]}"
        names = path.split(".")
        # the longest prefix that is a module, then attributes
        for cut in range(len(names), 0, -1):
            try:
                obj = importlib.import_module(".".join(names[:cut]))
            except ModuleNotFoundError:
                continue
            for attribute in names[cut:]:
                assert hasattr(obj, attribute), f"the README names {path}, which does not exist"
                obj = getattr(obj, attribute)
            break


def test_every_error_is_one_tree():
    for name in zd.__all__:
        obj = getattr(zd, name)
        if isinstance(obj, type) and issubclass(obj, Exception):
            assert issubclass(obj, zd.ZdEventsError)
