"""Builds the lab's cluster binaries (lab/binaries.py) and prints their directory.

python3 -m tools.binaries
"""

from __future__ import annotations

import sys

from .common import ToolError

if __name__ == "__main__":
    from lab import binaries

    try:
        print(binaries.ensure())
    except ToolError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
