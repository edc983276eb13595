"""Builds the platform's images as OCI archives (images/build.py) and prints their paths.

python3 -m tools.images             # build what is missing or stale
python3 -m tools.images --verify    # also: skopeo inspect both, and run Eureka read-only as
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
        pause, eureka = build.ensure()
        for a in (pause, eureka):
            progress(f"{a.name}: {a.stat().st_size / 1e6:.1f} MB")
        if args.verify:
            verify.verify(pause, eureka)
    except ToolError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(pause)
    print(eureka)
    return 0


if __name__ == "__main__":
    sys.exit(main())
