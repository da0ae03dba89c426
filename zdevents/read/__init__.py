"""Reading the cache: :func:`load_frame`, :func:`load_changes`, :func:`scan` and saved pages
(:func:`read_export`). Each read takes one snapshot of the store."""

from .exports import read_export
from .frame import load_changes, load_frame, rebuild_cache
from .scan import scan, scan_as_of
from .stores import open_cache

__all__ = [
    "load_changes",
    "load_frame",
    "open_cache",
    "read_export",
    "rebuild_cache",
    "scan",
    "scan_as_of",
]
