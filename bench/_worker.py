"""Entry point of an isolated measurement: ``python -m bench._worker module:function JSON``.

Runs the function with the JSON object as keyword arguments and prints its result (a dict)
plus the process's peak RSS at the end on one marked line of stdout.
"""

from __future__ import annotations

import importlib
import json
import sys

from bench.common import RESULT_MARK, hwm_rss_mb, peak_rss_mb


def main(argv: list[str]) -> int:
    target, arguments = argv[0], json.loads(argv[1])
    module_name, _, function_name = target.partition(":")
    function = getattr(importlib.import_module(module_name), function_name)
    result = dict(function(**arguments))
    result["peak_rss_mb"] = peak_rss_mb()
    result["vmhwm_mb"] = hwm_rss_mb()
    sys.stdout.write(RESULT_MARK + json.dumps(result, default=str) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
