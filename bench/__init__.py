"""zdevents benchmarks: ``python -m bench [--size small|full] [--only NAME]``.

One module per benchmark (:data:`BENCHMARKS`, in run order); each generates its data with the
sample generator (cached under ``bench/results/``, git-ignored), measures its baseline in the
same run and prints ratio lines, absolute figures and the machine it ran on. Results of a
``--size full`` run are in ``BENCHMARKS.md``.
"""

from __future__ import annotations

BENCHMARKS: tuple[str, ...] = ("ingest", "load_frame", "breach_rates", "fetch", "delta")
"""Benchmark names (= module names under ``bench``), in the order ``python -m bench`` runs them."""
