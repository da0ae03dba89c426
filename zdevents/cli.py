"""Command line: ``zdevents fetch | status | report | import | demo``.

Each command is a few lines over the library; expected failures print one line and exit 2.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

from .config import Settings, resolve_account
from .errors import ZdEventsError

__all__ = ["main"]

STREAM_CHOICES = ("metric_events", "ticket_events", "all")
DATA_DIR_HELP = (
    "cache root (default: ZDEVENTS_DATA_DIR; else ./data when it holds a zdevents cache, "
    "as after `zdevents demo`; else the user data folder)"
)


def _settings(args: argparse.Namespace) -> Settings:
    return Settings.from_env(data_dir=getattr(args, "data_dir", None))


def cmd_fetch(args: argparse.Namespace) -> int:
    """Fetch what is new from Zendesk into the cache."""
    from .export.fetch import fetch

    settings = _settings(args)
    streams = ["metric_events", "ticket_events"] if args.stream == "all" else [args.stream]
    for stream in streams:
        metric = stream == "metric_events"
        result = fetch(
            stream,
            args.since,
            until=args.until,
            settings=settings,
            progress=not args.quiet,
            include_comments=args.include_comments and not metric,
            force=args.force,
            lock_timeout=args.wait,
            # each option goes to the stream that has it (--stream all fetches both)
            pagination=args.pagination if metric else "time",
            support_type_scope=None if metric else args.support_type_scope,
            exclude_deleted=args.exclude_deleted and metric,
        )
        print(result)
    return 0


def cmd_cache_rebuild(args: argparse.Namespace) -> int:
    """Rebuild a stream's lost or damaged state.json from its data files (deletes nothing)."""
    from .read.frame import open_cache, rebuild_cache

    settings = _settings(args)
    streams = ["metric_events", "ticket_events"] if args.stream == "all" else [args.stream]
    if args.stream == "all":  # the streams that have a cache folder (an error if none has)
        present = [s for s in streams if open_cache(s, settings=settings).dir.is_dir()]
        streams = present or streams[:1]
    for stream in streams:
        result = rebuild_cache(stream, settings=settings)
        print(
            f"{stream}: state rebuilt from {result.files:,} files, {result.rows:,} rows"
            + (f"; {len(result.skipped)} files left unlisted" if result.skipped else "")
        )
    return 0


def cmd_cache_table(args: argparse.Namespace) -> int:
    """Delta tables: migrate a Parquet cache folder, optimize (compact) or vacuum a table."""
    from .errors import CacheError
    from .store import DeltaCache, migrate, open_store

    settings = _settings(args)
    account = resolve_account(settings)
    streams = ["metric_events", "ticket_events"] if args.stream == "all" else [args.stream]
    for stream in streams:
        form = "parquet" if args.cache_command == "migrate" else settings.table_format
        cache = open_store(settings.data_dir, account, stream, table_format=form)
        if args.stream == "all" and not cache.dir.is_dir():
            continue
        if args.cache_command == "migrate":
            if isinstance(cache, DeltaCache):
                print(f"{stream}: already a Delta table (version {cache.state().version})")
                continue
            done = migrate(settings.data_dir, account, stream)
            print(
                f"{stream}: {done.rows:,} rows now in a Delta table (version {done.version}, "
                f"{done.files} files)"
                + ("" if done.removed_old else f"; your files stay in {stream}.parquet-old")
            )
            continue
        if not isinstance(cache, DeltaCache):
            raise CacheError(
                f"the {stream} cache in {cache.dir} is a Parquet folder: run `zdevents cache "
                f"migrate --stream {stream}` to make it a Delta table first",
                path=str(cache.dir),
            )
        with cache.lock():
            if args.cache_command == "optimize":
                metrics = cache.optimize()
                print(
                    f"{stream}: {metrics.get('numFilesRemoved', 0)} files compacted into "
                    f"{metrics.get('numFilesAdded', 0)}"
                )
            else:
                removed = cache.vacuum(args.retain_hours)
                print(f"{stream}: {len(removed)} unreferenced files deleted")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    """Show what the cache holds, per stream."""
    from .pipeline import cache_status, format_status

    settings = _settings(args)
    print(f"cache folder: {Path(settings.data_dir).absolute()}")
    print(format_status(cache_status(settings=settings)))
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """Write SLA charts and an HTML summary from the cache."""
    from .pipeline import build_report

    result = build_report(args.out, since=args.since, until=args.until, settings=_settings(args))
    print(result.summary)
    print(f"report: {result.index}")
    if args.pptx:
        from .insight_pipeline import build_deck

        deck = build_deck(
            Path(args.out) / "sla.pptx",
            settings=_settings(args),
            since=args.since,
            until=args.until,
        )
        print(f"deck: {deck}")
    return 0


def cmd_due(args: argparse.Namespace) -> int:
    """List the active SLA targets that fall due in the next hours, by group and assignee."""
    import pandas as pd

    from .analysis.insights import format_due
    from .insight_pipeline import due_from_cache

    try:
        within = pd.Timedelta(args.within)
    except ValueError:
        within = None
    if within is None or pd.isna(within) or within < pd.Timedelta(0):
        raise ValueError(f"--within must be a duration such as 4h or 90min, got {args.within!r}")
    due = due_from_cache(settings=_settings(args), as_of=args.as_of)
    print(format_due(due, within, limit=args.limit))
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    """Add saved export pages (.json, .json.gz, JSON lines) to the cache; the cursor stays."""
    from .read.exports import import_pages

    results = import_pages(args.files, stream=args.stream, settings=_settings(args))
    for result in results:
        print(result)
    if not results:
        print("the pages hold no events: nothing imported")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """Run the whole pipeline offline on the bundled sample account."""
    from .pipeline import run_demo

    # the folder status, report and load_frame read by default (see Settings.data_dir)
    data_dir = args.data_dir or _env_or_dotenv("ZDEVENTS_DATA_DIR") or "data"
    run_demo(
        out_dir=args.out,
        data_dir=data_dir,
        table_format=_env_or_dotenv("ZDEVENTS_TABLE_FORMAT") or "delta",
        tickets=args.tickets,
        progress=not args.quiet,
        echo=print,
    )
    return 0


def _cli_words(message: str) -> str:
    """Say ``--since``/``--until`` where the library's message names its arguments."""
    message = re.sub(
        r"(?<![-\w])(since|until|data_dir)=", lambda m: f"--{m[1].replace('_', '-')}=", message
    )
    return re.sub(r"(?<![-\w])(since|until) \(", r"--\1 (", message)


def _env_or_dotenv(name: str) -> str | None:
    """A variable from the environment, else from ./.env (as Settings.from_env reads them)."""
    if os.environ.get(name):
        return os.environ[name]
    if not Path(".env").is_file():
        return None
    from dotenv import dotenv_values

    return dotenv_values(".env").get(name) or None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="zdevents",
        description="Zendesk SLA metric events and ticket events, cached as Parquet, as "
        "breach-rate reports.",
        epilog="Configuration comes from the environment or a .env file: ZENDESK_SUBDOMAIN, "
        "ZENDESK_EMAIL, ZENDESK_API_TOKEN (or ZENDESK_OAUTH_TOKEN), ZENDESK_BASE_URL, "
        "ZDEVENTS_DATA_DIR, ZDEVENTS_REQUESTS_PER_MINUTE.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log each request")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def data_dir(p: argparse.ArgumentParser, what: str = DATA_DIR_HELP) -> None:
        p.add_argument("--data-dir", default=None, help=what)

    p = sub.add_parser("fetch", help=cmd_fetch.__doc__, description=cmd_fetch.__doc__)
    p.add_argument("--stream", choices=STREAM_CHOICES, default="metric_events")
    p.add_argument(
        "--since",
        help="first fetch starts here: 2024-01-01, 2024-01-01T08:00Z or Unix seconds "
        "(no offset means UTC); default: all",
    )
    p.add_argument(
        "--include-comments", action="store_true", help="ticket_events: full comment objects"
    )
    p.add_argument(
        "--until", help="stop once the pages pass this date (with --force: refetch [since, until))"
    )
    p.add_argument("--force", action="store_true", help="refetch from --since even if cached")
    p.add_argument(
        "--pagination",
        choices=("time", "cursor"),
        default="time",
        help="metric_events: time-based pages of 1000 (default) or cursor pages of 100",
    )
    p.add_argument(
        "--support-type-scope",
        choices=("agent", "ai_agent", "all"),
        default=None,
        help="ticket_events: whose tickets (default: the cache's scope, else Zendesk's agent)",
    )
    p.add_argument(
        "--exclude-deleted",
        action="store_true",
        help="metric_events: leave out the events of deleted tickets",
    )
    p.add_argument(
        "--wait",
        type=float,
        default=0,
        metavar="SECONDS",
        help="wait this long for another fetch of the same stream to finish (default: refuse)",
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    data_dir(p)
    p.set_defaults(func=cmd_fetch)

    p = sub.add_parser("cache", help="cache maintenance: `zdevents cache rebuild`")
    cache_sub = p.add_subparsers(dest="cache_command", required=True, metavar="ACTION")
    q = cache_sub.add_parser(
        "rebuild", help=cmd_cache_rebuild.__doc__, description=cmd_cache_rebuild.__doc__
    )
    q.add_argument("--stream", choices=STREAM_CHOICES, default="metric_events")
    data_dir(q)
    q.set_defaults(func=cmd_cache_rebuild)
    for action, text in (
        ("migrate", "convert a Parquet cache folder into a Delta table (checked, then swapped)"),
        ("optimize", "Delta tables: compact small data files"),
        ("vacuum", "Delta tables: delete data files no recent version uses"),
    ):
        q = cache_sub.add_parser(action, help=text, description=text)
        q.add_argument("--stream", choices=STREAM_CHOICES, default="metric_events")
        if action == "vacuum":
            q.add_argument(
                "--retain-hours",
                type=int,
                default=168,
                help="keep files removed less than this long ago (default 168: a week)",
            )
        data_dir(q)
        q.set_defaults(func=cmd_cache_table)

    p = sub.add_parser("status", help=cmd_status.__doc__, description=cmd_status.__doc__)
    data_dir(p)
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("report", help=cmd_report.__doc__, description=cmd_report.__doc__)
    p.add_argument(
        "--since", help="targets applied from then: 2024-01-01, 2024-01-01T08:00Z or Unix seconds"
    )
    p.add_argument("--until", help="end of the report, exclusive (same forms; no offset = UTC)")
    p.add_argument("--out", type=Path, default=Path("reports"), help="folder (default: reports)")
    data_dir(p)
    p.add_argument("--pptx", action="store_true", help="also write the deck sla.pptx")
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("due", help=cmd_due.__doc__, description=cmd_due.__doc__)
    p.add_argument("--within", default="4h", help="horizon, e.g. 4h, 90min, 1d (default: 4h)")
    p.add_argument("--as-of", help="the queue at this time (default: the cache's as-of)")
    p.add_argument("--limit", type=int, default=15, help="soonest targets listed (default: 15)")
    data_dir(p)
    p.set_defaults(func=cmd_due)

    p = sub.add_parser("import", help=cmd_import.__doc__, description=cmd_import.__doc__)
    p.add_argument("files", nargs="+", type=Path, metavar="FILE", help="saved pages")
    p.add_argument(
        "--stream",
        choices=STREAM_CHOICES[:2],
        default=None,
        help="the pages' stream (default: told by each page's records)",
    )
    data_dir(p)
    p.set_defaults(func=cmd_import)

    p = sub.add_parser("demo", help=cmd_demo.__doc__, description=cmd_demo.__doc__)
    p.add_argument("--tickets", type=int, default=3000, help="sample size (default: 3000)")
    p.add_argument(
        "--out", type=Path, default=Path("reports/demo"), help="folder (default: reports/demo)"
    )
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    data_dir(
        p,
        "where the sample account's cache goes (default: ZDEVENTS_DATA_DIR, else "
        "./data, which status, report and load_frame then find on their own)",
    )
    p.set_defaults(func=cmd_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; returns the exit code (0 ok, 2 expected failure, 130 interrupted)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="%(levelname)s %(name)s: %(message)s",
    )
    try:
        from tqdm.contrib.logging import logging_redirect_tqdm

        from .export.fetch import signals_as_interrupt

        # a warning during a fetch prints above the bar; SIGTERM/SIGHUP end the command
        # like Ctrl-C (what was fetched is kept), with the message and exit status below
        with logging_redirect_tqdm(), signals_as_interrupt(resend=False):
            return args.func(args)
    except (ZdEventsError, ValueError) as exc:  # ValueError: bad --since/--until and the like
        print(f"zdevents {args.command}: error: {_cli_words(str(exc))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:  # Ctrl-C, or SIGTERM/SIGHUP during a fetch
        signum = getattr(exc, "signum", signal.SIGINT)
        how = (
            "interrupted"
            if signum == signal.SIGINT
            else f"stopped by {signal.Signals(signum).name}"
        )
        print(
            f"zdevents {args.command}: {how}; everything fetched before this point is "
            "kept, run the command again to continue",
            file=sys.stderr,
        )
        return 128 + signum


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
