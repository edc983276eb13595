"""Kubernetes version changes, checked where the preview can say so.

The control plane's upgrade gate (upgrade-gate.sh) is what stops a bad change on the hosts: it
compares the installed kube-apiserver with the target before any binary is replaced. This module
says the same in `pulumi preview`, from the version the stack last finished deploying (its
`kubernetesVersion` output, read through a reference to the stack itself: components/previous.py): a downgrade or a
skipped minor version fails the preview with the fix; an upgrade is announced with its order.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import pulumi

from .settings import Settings

VERSION_OUTPUT = "kubernetesVersion"


def parse(version: str) -> tuple[int, int, int]:
    m = re.fullmatch(r"v?(\d+)\.(\d+)\.(\d+)", version)
    if m is None:
        raise ValueError(f"not a Kubernetes version: {version!r}")
    major, minor, patch = (int(g) for g in m.groups())
    return major, minor, patch


def refusal(previous: str, target: str) -> str | None:
    """Why going from `previous` to `target` is refused (None: allowed). Same rule as upgrade-gate.sh."""
    old, new = parse(previous), parse(target)
    if new < old:
        return (
            f"kubernetesVersion: refusing to downgrade the cluster from {previous} to {target} "
            f"(the API server may already have stored objects in newer versions); set kubernetesVersion back to {previous}"
        )
    if new[0] != old[0] or new[1] > old[1] + 1:
        return (
            f"kubernetesVersion: refusing to upgrade from {previous} to {target} in one step (one minor version at a time); "
            f"set kubernetesVersion to v{old[0]}.{old[1] + 1}.<patch> first"
        )
    return None


def plan(previous: str, target: str, control_plane: str, workers: Sequence[str]) -> str:
    """The order an upgrade takes, as the preview announces it."""
    order = ", then ".join(workers) if workers else "(no workers)"
    return (
        f"Kubernetes upgrade {previous} -> {target}: etcd snapshot on {control_plane}, then its kube-apiserver, "
        f"kube-controller-manager and kube-scheduler; then one worker at a time ({order}): drain, new kubelet and "
        "kube-proxy, restart, Ready at the new version, uncordon"
    )


def check_version_change(settings: Settings, previous: pulumi.StackReference, parent: pulumi.Resource) -> pulumi.Output[str | None]:
    """Fails the program (preview included) on a refused change and logs the plan of an allowed
    one. Returns the previous version (None: never deployed, or deployed before this output)."""
    target = settings.kubernetes_version

    def check(previous: object) -> str | None:
        if not isinstance(previous, str) or previous == target:
            return previous if isinstance(previous, str) else None
        problem = refusal(previous, target)
        if problem:
            raise pulumi.RunError(problem)
        pulumi.log.info(plan(previous, target, settings.control_plane.name, [w.name for w in settings.workers]), parent)
        return previous

    return previous.get_output(VERSION_OUTPUT).apply(check)
