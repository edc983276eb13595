"""The stack configs that policy/config/<stack>.json's facts come from, as the tests see them:
the committed Pulumi.dev.yaml and Pulumi.prod.yaml, and the `local` stack's config as the lab
writes it for its default instance with its default two workers (host keys are stand-ins, as before the lab
has booted: no fact depends on them)."""

from __future__ import annotations

from typing import Any

from policy.facts import read_stack_file
from tests.unit.harness import ROOT

HOST_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIOlf5ARWbu9EOPh0S6vfbenSAiiVS4jYEwD+lr1thu+"


def lab_config(workers: int | None = None) -> dict[str, Any]:
    """The lab's `local` stack config (`vm-platform:`-prefixed keys, as its stack file holds them)."""
    from lab import stackfile
    from lab.instance import DEFAULT, DEFAULT_NETWORK, DEFAULT_WORKERS, Instance

    workers = DEFAULT_WORKERS if workers is None else workers
    inst = Instance(DEFAULT, DEFAULT_NETWORK)
    config, _ = stackfile.stack_config(inst, workers, host_keys={h.name: HOST_KEY for h in inst.hosts(workers)}, backend="vxlan")
    return config


def stack_config(stack: str) -> dict[str, Any]:
    """The config of a stack as its stack file holds it (prefixed keys)."""
    return lab_config() if stack == "local" else read_stack_file(ROOT / f"Pulumi.{stack}.yaml")


def values(stack: str) -> dict[str, Any]:
    """The same without the `vm-platform:` prefix (what tests/unit/harness.run_program takes),
    with the local stack's example Secret (tools/deploy-local sets it as secret config)."""
    out = {k.split(":", 1)[1]: v for k, v in stack_config(stack).items() if k.startswith("vm-platform:")}
    if stack == "local":
        from lab.stackfile import EXAMPLE_SECRET

        out["secrets"] = {EXAMPLE_SECRET[0]: {"data": {EXAMPLE_SECRET[1]: "stand-in"}}}
    return out
