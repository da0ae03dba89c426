"""The names zdevents writes in a stream folder, and the checks that keep them inside it.

zdevents deletes only files whose names it writes: the patterns here say which those are.
"""

from __future__ import annotations

import contextlib
import os
import re
from pathlib import Path

from ..errors import ConfigError

__all__ = [
    "MONTH_DIR",
    "PART_NAME",
    "PART_TMP_NAME",
    "REJECTED_NAME",
    "STATE_TMP_NAME",
    "check_name",
    "month_dirs",
    "own_files",
    "part_paths",
]

_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]{0,199}$")
MONTH_DIR = re.compile(r"^month=\d{4}-\d{2}$")
PART_NAME = re.compile(r"^part-[0-9a-f]{32}\.parquet$")
PART_TMP_NAME = re.compile(r"^\.part-[0-9a-f]{32}\.parquet\.tmp$")
STATE_TMP_NAME = re.compile(r"^\.state\.json\.[0-9a-f]{32}\.tmp$")
REJECTED_NAME = re.compile(r"^\d{8}T\d{6}Z-start_time-\d+-[0-9a-f]{8}\.(json|txt)$")


def check_name(value: str, what: str) -> str:
    """``value`` when it is a safe folder name (an account or a stream); else ConfigError."""
    if (
        not isinstance(value, str)
        or not _NAME.match(value)
        or ".." in value
        or os.path.isabs(value)
    ):
        raise ConfigError(
            f"{what} name {value!r} cannot be a cache folder: use letters, digits, '.', '_' "
            "and '-' only (no path separators, no '..')"
        )
    return value


def month_dirs(folder: Path) -> list[Path]:
    """The ``month=YYYY-MM`` folders of a stream folder."""
    try:
        return [p for p in folder.iterdir() if MONTH_DIR.match(p.name) and p.is_dir()]
    except OSError:
        return []


def part_paths(folder: Path) -> list[Path]:
    """Part files on disk (names zdevents writes), listed in ``state.json`` or not."""
    if not folder.is_dir():
        return []
    found = []
    for month in month_dirs(folder):
        found += [p for p in month.iterdir() if PART_NAME.match(p.name) and p.is_file()]
    return sorted(found)


def own_files(folder: Path, keep: set[str]) -> list[Path]:
    """Files with names zdevents writes (parts, temp files) that ``keep`` does not list."""
    found = []
    with contextlib.suppress(OSError):
        found += [p for p in folder.iterdir() if STATE_TMP_NAME.match(p.name)]
    for month in month_dirs(folder):
        for path in month.iterdir():
            own = PART_NAME.match(path.name) or PART_TMP_NAME.match(path.name)
            if own and f"{month.name}/{path.name}" not in keep and path.is_file():
                found.append(path)
    return found
