"""Preview benchmark: median wall time of the real engine's `pulumi preview` for
  1. an empty Python program (the engine's floor on this machine),
  2. the dev stack,
  3. the dev stack with the policy pack,
measured in one run, interleaved, on the same machine. Prints medians and ratios.
Goals: dev <= 2.0x the floor (issue 8); the policy pack adds <= 10% to the dev preview.
With --services 1,10,50: the dev stack with that many `services` entries, too, and the cost of
each extra service (goal: at most 30 ms each, linearly).

    python3 -m tools.bench [--runs 7] [--services 1,10,50]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from .common import ROOT, in_project_venv

if __name__ == "__main__":
    in_project_venv("tools.bench")  # before the harness imports pulumi

from .automation import new_project, repo_stack_config, throwaway_ssh_key  # noqa: E402

EMPTY_MAIN = "import pulumi\n"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--services", default="", help="comma-separated counts of `services` entries to add to dev (e.g. 1,10,50)")
    args = ap.parse_args()
    counts = [int(x) for x in args.services.split(",") if x.strip()]

    stacks = {"dev": repo_stack_config("dev"), **{f"dev-s{n}": with_services(repo_stack_config("dev"), n) for n in counts}}
    project = new_project(stacks)
    for name in stacks:
        project.stack(name, {"sshPrivateKey": throwaway_ssh_key()})
    empty = Path(tempfile.mkdtemp(prefix="vmp-empty-"))
    (empty / "Pulumi.yaml").write_text(f"name: empty\nruntime:\n  name: python\n  options:\n    virtualenv: {ROOT / 'venv'}\n")
    (empty / "__main__.py").write_text(EMPTY_MAIN)
    env = {**os.environ, **project.env}
    subprocess.run([str(project.engine_dir / "pulumi"), "stack", "init", "floor"], cwd=empty, env=env, capture_output=True, check=True)

    pulumi = str(project.engine_dir / "pulumi")
    pack = ["--policy-pack", str(ROOT / "policy"), "--policy-pack-config", str(ROOT / "policy" / "config" / "dev.json")]
    cases = {
        "empty program (floor)": ([pulumi, "preview", "-s", "floor"], empty),
        "dev stack": ([pulumi, "preview", "-s", "dev"], project.dir),
        "dev stack + policy pack": ([pulumi, "preview", "-s", "dev", *pack], project.dir),
        **{f"dev + {n} services": ([pulumi, "preview", "-s", f"dev-s{n}"], project.dir) for n in counts},
    }
    times: dict[str, list[float]] = {k: [] for k in cases}
    for i in range(args.runs + 1):  # the first round warms caches and is discarded
        for name, (cmd, cwd) in cases.items():
            t0 = time.perf_counter()
            r = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True)
            dt = time.perf_counter() - t0
            if r.returncode != 0:
                print(f"{name} failed:\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}", file=sys.stderr)
                return 1
            if i:
                times[name].append(dt)
    med = {k: statistics.median(v) for k, v in times.items()}
    floor, dev, pol = med["empty program (floor)"], med["dev stack"], med["dev stack + policy pack"]
    print(f"runs per case: {args.runs} (interleaved, after one warm-up round)")
    for k, v in med.items():
        print(f"  {k:28s} median {v:6.2f} s   (min {min(times[k]):.2f}, max {max(times[k]):.2f})")
    print(f"ratio dev / floor            {dev / floor:5.2f}x   (goal <= 2.00x)")
    print(f"ratio dev+policy / dev       {pol / dev:5.2f}x   (goal <= 1.10x)")
    if len(counts) >= 2:
        lo, hi = min(counts), max(counts)
        per = (med[f"dev + {hi} services"] - med[f"dev + {lo} services"]) / (hi - lo)
        print(f"each extra service           {per * 1000:5.1f} ms  (from {lo} to {hi} entries; goal <= 30 ms)")
    return 0


def with_services(stack: dict, n: int) -> dict:
    """The dev stack file with n `services` entries of the example image (listed in the registry)."""
    cfg = stack["config"]
    cfg["vm-platform:registry"]["images"].append({"name": "example-service:1.0.0"})
    cfg["vm-platform:services"] = {f"svc-{i:03d}": {"image": "example-service:1.0.0", "eurekaClient": True} for i in range(n)}
    return stack


if __name__ == "__main__":
    sys.exit(main())
