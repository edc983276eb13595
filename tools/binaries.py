"""Builds the lab's cluster binaries (lab/binaries.py) and prints their directory.

python3 -m tools.binaries                    # build what is missing (both versions), print the pin's directory
python3 -m tools.binaries --version v1.34.4  # one Kubernetes version (waits while another process builds it)
"""

from __future__ import annotations

import argparse
import sys

from .common import ToolError

if __name__ == "__main__":
    from lab import binaries

    parser = argparse.ArgumentParser(prog="python3 -m tools.binaries")
    parser.add_argument("--version", help="build only this Kubernetes version's directory")
    args = parser.parse_args()
    try:
        if args.version:
            binaries.ensure_version(args.version)
            print(binaries.out_dir(args.version))
        else:
            print(binaries.ensure())
    except ToolError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(1)
