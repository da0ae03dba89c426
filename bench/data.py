"""Benchmark data, generated once with the sample generator and kept under the results folder.

* :func:`export_pages` - the metric-event export of a :class:`~zdevents.sample.account.SampleAccount`
  exactly as the local server serves it: a ``python -m zdevents.sample.server`` process of our own
  is paged through with zdevents' own :class:`~zdevents.export.client.Client`, and every page body
  is written, untouched, as one line of an ``.ndjson`` file (a page body never contains a raw
  newline: JSON forbids them inside strings and the server writes compact JSON). A ``.json``
  sidecar holds each page's ``count`` and ``end_time``.
* :func:`events_cache` - that export ingested by zdevents into a Parquet cache (the input of
  the ``load_frame`` and ``breach_rates`` benchmarks).

Files are named after the ticket count, the seed and a fingerprint of the generator and the
server's source, so a changed generator regenerates them.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from bench.common import REPO, run_isolated
from bench.server import local_server

SEED = 7
ACCOUNT = "sample"


@dataclass(frozen=True)
class PagesFile:
    """An export on disk: one page body per line, plus each page's count and end_time."""

    path: Path
    counts: list[int]
    end_times: list[int]
    tickets: int
    seconds: float

    @property
    def pages(self) -> int:
        return len(self.counts)

    @property
    def events(self) -> int:
        return sum(self.counts)

    def pages_for(self, events: int | None) -> int:
        """Pages of the smallest prefix holding at least ``events`` events (None: all)."""
        if events is None:
            return self.pages
        total = 0
        for i, count in enumerate(self.counts):
            total += count
            if total >= events:
                return i + 1
        return self.pages

    def events_in(self, pages: int) -> int:
        return sum(self.counts[:pages])


def fingerprint(names: tuple[str, ...] = ("sample",), skip: tuple[str, ...] = ()) -> str:
    """Short hash of the source of these zdevents modules or packages (default: the sample
    account's generator and server), leaving out the modules ``skip`` names."""
    digest = hashlib.sha1()
    for name in names:
        path = REPO / "zdevents" / name
        for file in sorted(path.rglob("*.py")) if path.is_dir() else [path]:
            if file.relative_to(REPO / "zdevents").as_posix() not in skip:
                digest.update(file.read_bytes())
    return digest.hexdigest()[:10]


WRITER_MODULES = ("schema.py", "export/parse.py", "export/fetch.py", "store")
"""The code that decides what the cache files hold (their names carry its fingerprint)."""
READ_ONLY_MODULES = ("store/delta_read.py",)
"""Modules under :data:`WRITER_MODULES` that only read: a change there keeps the caches."""


def _cache_dir(folder: Path, pages: PagesFile) -> Path:
    """Where the cache of ``pages`` written by the current writer code lives.

    Caches written by other versions of that code are removed.
    """
    current = folder / f"cache-{pages.path.stem}-w{fingerprint(WRITER_MODULES, READ_ONLY_MODULES)}"
    for old in folder.glob(f"cache-{pages.path.stem}*"):
        # what is derived from the current cache (its Delta copy, the xl copies) stays
        if not old.name.startswith(current.name) and old.is_dir():
            shutil.rmtree(old, ignore_errors=True)
    return current


def export_pages(folder: Path, tickets: int, *, seed: int = SEED) -> PagesFile:
    """The metric-event export of ``tickets`` sample tickets as page bodies on disk."""
    stem = f"pages-t{tickets}-s{seed}-{fingerprint()}"
    path, meta_path = folder / f"{stem}.ndjson", folder / f"{stem}.json"
    if path.exists() and meta_path.exists():
        meta = json.loads(meta_path.read_text())
        return PagesFile(path, meta["counts"], meta["end_times"], tickets, meta["seconds"])
    from zdevents.export.client import Client

    for old in folder.glob(f"pages-t{tickets}-s{seed}-*"):
        old.unlink()
    for old in folder.glob(f"cache-pages-t{tickets}-s{seed}-*"):
        shutil.rmtree(old, ignore_errors=True)  # built from the previous pages
    started = time.monotonic()
    counts: list[int] = []
    end_times: list[int] = []
    tmp = path.with_suffix(".tmp")
    with local_server(tickets, seed=seed) as server, open(tmp, "wb") as out:
        with Client(server.settings(folder / "unused")) as client:
            for page in client.pages("metric_events", 0):
                if b"\n" in page.body or b"\r" in page.body:
                    raise RuntimeError(f"page {page.url} holds a raw newline")
                out.write(page.body)
                out.write(b"\n")
                counts.append(int(page.count or 0))
                end_times.append(int(page.end_time or 0))
    seconds = time.monotonic() - started
    tmp.replace(path)
    meta_path.write_text(
        json.dumps(
            {
                "counts": counts,
                "end_times": end_times,
                "seconds": seconds,
                "tickets": tickets,
                "seed": seed,
            }
        )
    )
    return PagesFile(path, counts, end_times, tickets, seconds)


def events_cache(folder: Path, pages: PagesFile, *, batch_pages: int | None = None) -> Path:
    """``data_dir`` of a zdevents cache holding the whole export of ``pages``.

    Built once (by the same code the ingest benchmark measures) unless
    :func:`adopt_cache` already moved the ingest benchmark's output here; a cache written by
    another version of the writer code is rebuilt.
    """
    data_dir = _cache_dir(folder, pages)
    if (data_dir / ACCOUNT / "metric_events" / "state.json").exists():
        return data_dir
    shutil.rmtree(data_dir, ignore_errors=True)
    work = folder / f"{data_dir.name}.tmp"
    shutil.rmtree(work, ignore_errors=True)
    from bench.ingest import zdevents_ingest_args

    run_isolated(
        "bench.ingest:zdevents_ingest",
        **zdevents_ingest_args(pages, pages.pages, work, batch_pages),
    )
    work.replace(data_dir)
    return data_dir


def delta_cache(folder: Path, base: Path) -> Path:
    """``data_dir`` of a Delta table holding the Parquet cache in ``base`` (built once).

    A copy of ``base`` converted by :func:`zdevents.store.migrate` (what a user's cache goes
    through), in a fresh process; keyed by ``base``'s name, so a cache written by other
    writer code gets a new table.
    """
    data_dir = folder / f"{base.name}-delta"
    if (data_dir / ACCOUNT / "metric_events" / "_delta_log").is_dir():
        return data_dir
    for old in folder.glob("cache-*-delta"):
        if old.is_dir() and not (folder / old.name.removesuffix("-delta")).is_dir():
            shutil.rmtree(old, ignore_errors=True)  # its Parquet cache is gone: stale
    work = folder / f"{data_dir.name}.tmp"
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(base, work)
    run_isolated("bench.data:migrate_copy", data_dir=str(work))
    work.replace(data_dir)
    return data_dir


def migrate_copy(data_dir: str) -> dict:
    """Migrate the Parquet cache in ``data_dir`` to a Delta table (runs in its own process)."""
    from zdevents.store import migrate

    result = migrate(data_dir, ACCOUNT, "metric_events")
    return {"rows": result.rows, "files": result.files, "version": result.version}


def adopt_cache(folder: Path, pages: PagesFile, data_dir: Path) -> None:
    """Keep a freshly ingested full cache as the one :func:`events_cache` returns.

    It replaces any earlier one, so the reading benchmarks read files as this code writes
    them.
    """
    target = _cache_dir(folder, pages)
    shutil.rmtree(target, ignore_errors=True)
    data_dir.replace(target)


def xl_cache(folder: Path, base: Path, *, copies: int = 10) -> Path:
    """``data_dir`` of a cache holding ``copies`` copies of the cache in ``base``.

    Copy ``c`` shifts every ``ticket_id`` and event ``id`` by ``c`` times a step larger than
    any of them, so each copy is a separate, identical set of tickets (``copies`` times the
    targets and counts of ``base``). Written through :meth:`zdevents.store.parquet.Cache.commit`, one
    commit per part file of ``base`` (time order), in a fresh process; built once.
    """
    data_dir = folder / f"{base.name}-x{copies}"
    if (data_dir / ACCOUNT / "metric_events" / "state.json").exists():
        return data_dir
    work = folder / f"{data_dir.name}.tmp"
    shutil.rmtree(work, ignore_errors=True)
    run_isolated("bench.data:write_copies", base=str(base), out=str(work), copies=copies)
    work.replace(data_dir)
    return data_dir


def write_copies(base: str, out: str, copies: int) -> dict:
    """Write the copies of :func:`xl_cache` (runs in its own process)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from zdevents.store.parquet import Cache

    source = Cache(base, ACCOUNT, "metric_events")
    state = source.state()
    target = Cache(out, ACCOUNT, "metric_events")
    paths = source.files()
    id_step = ticket_step = 1
    for path in paths:
        ids = pq.read_table(path, columns=["id", "ticket_id"])
        id_step = max(id_step, pc.max(ids["id"]).as_py() + 1)
        ticket_step = max(ticket_step, pc.max(ids["ticket_id"]).as_py() + 1)
    rows = 0
    with target.lock():
        for path in paths:
            table = pq.read_table(path, schema=source.schema)
            parts = []
            for c in range(copies):
                parts.append(
                    table.set_column(0, "id", pc.add(table["id"], c * id_step)).set_column(
                        1, "ticket_id", pc.add(table["ticket_id"], c * ticket_step)
                    )
                )
            batch = pa.concat_tables(parts).sort_by([("time", "ascending"), ("id", "ascending")])
            target.commit(batch, cursor=state.cursor, covered_since=state.covered_since)
            rows += batch.num_rows
    return {"rows": rows}
