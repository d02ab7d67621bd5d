"""``python -m toolgrad``: the same command as the ``toolgrad`` console script.

The root app composes all three packages, so it lives in the top layer (``benchmarks``); this
module must not import that layer (tests/test_layers.py). It runs the installed distribution's
``toolgrad`` entry point instead, found through the package metadata when it runs.
"""

from __future__ import annotations

import sys
from importlib.metadata import entry_points


def main() -> None:
    """Run the ``toolgrad`` console script's function; exit 2 with a hint when the kit is not
    installed (only a bare checkout on ``sys.path``)."""
    found = entry_points(group="console_scripts", name="toolgrad")
    if not found:
        sys.stderr.write("error: the toolgrad console script is not installed: "
                         "pip install -e . in the toolgrad-kit checkout\n")
        raise SystemExit(2)
    next(iter(found)).load()()


if __name__ == "__main__":
    main()
