"""A child ``zdevents fetch`` into a Delta table that dies by SIGKILL at a chosen point.

``data-written``  the k-th data file is on storage, not yet in any commit
``committed``     the k-th commit landed, before the fetch goes on
"""

from __future__ import annotations

import os
import signal
from collections.abc import Mapping, Sequence

DELTA_KILL_POINTS = ("data-written", "committed")


def run_delta_fetch(
    argv: Sequence[str],
    env: Mapping[str, str],
    *,
    log_path: str,
    kill_point: str | None = None,
    kill_on: int = 1,
) -> None:
    from _fetch_child import run_fetch

    if kill_point is not None:
        _arm(kill_point, kill_on)
    run_fetch(argv, env, batch_pages=1, log_path=log_path)


def _arm(point: str, kill_on: int) -> None:
    from zdevents.store.delta import DeltaCache
    from zdevents.store.delta_files import DeltaFiles

    seen = [0]
    owner, name = {"data-written": (DeltaFiles, "write"), "committed": (DeltaCache, "_transact")}[
        point
    ]
    real = getattr(owner, name)

    def wrapped(self, *args, **kwargs):
        result = real(self, *args, **kwargs)
        seen[0] += 1
        if seen[0] >= kill_on:
            os.kill(os.getpid(), signal.SIGKILL)
        return result

    setattr(owner, name, wrapped)
