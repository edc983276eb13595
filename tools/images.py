"""Builds the platform's images as OCI archives (images/build.py) and prints their paths.

python3 -m tools.images             # build what is missing or stale
python3 -m tools.images --verify    # also: skopeo inspect pause and eureka-server, and run Eureka read-only as
                                    # uid 10001 in private namespaces until /actuator/health is UP
"""

from __future__ import annotations

import argparse
import sys

from .common import ToolError, progress


def main() -> int:
    from images import build, verify

    ap = argparse.ArgumentParser(prog="python3 -m tools.images", description=__doc__.split("\n\n")[0])
    ap.add_argument("--verify", action="store_true", help="skopeo inspect both archives and run the Eureka image")
    args = ap.parse_args()
    try:
        archives = build.ensure()
        for a in archives:
            progress(f"{a.name}: {a.stat().st_size / 1e6:.1f} MB")
        if args.verify:
            verify.verify(archives[0], archives[1])  # pause, eureka-server
    except ToolError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    for a in archives:
        print(a)
    return 0


if __name__ == "__main__":
    sys.exit(main())
