"""A change takes a field over from a dead run's field manager (components/k8s.py PATCH_FORCE).

A run killed after the API server took an object, before the state recorded it, leaves that
run's field manager co-owning every field of the object: the next run's create is an upsert under
a new manager with the same values. Here that co-owner is made on purpose (the coredns
Deployment's manifest from the state, applied server-side under another manager), then the next
change of a field it co-owns (dns.replicas) must go through; without the forced apply it failed
with "Apply failed with 1 conflict: conflict with ...: .spec.replicas" (the scaling test after
the kill chain).
"""

from __future__ import annotations

import json

import pytest
from pulumi import automation as auto

from tests.e2e.conftest import Lab
from tests.e2e.test_local_stack import kubeconfig_of, kubectl
from tools.automation import Project

pytestmark = pytest.mark.lab

DEAD = "pulumi-kubernetes-deadrun"


def _coredns(kc) -> dict:
    return json.loads(kubectl(kc, "-n", "kube-system", "get", "deployment", "coredns", "-o", "json", "--show-managed-fields").stdout)


def test_a_change_takes_a_field_over_from_a_dead_runs_field_manager(local: tuple[Project, auto.Stack], stack: auto.Stack, lab: Lab):
    project, _ = local
    kc = kubeconfig_of(stack)
    manifest = next(
        r["inputs"]
        for r in stack.export_stack().deployment["resources"]
        if r["type"] == "kubernetes:apps/v1:Deployment" and r["inputs"]["metadata"]["name"] == "coredns"
    )
    p = kubectl(kc, "apply", "--server-side", f"--field-manager={DEAD}", "-f", "-", check=False, stdin=json.dumps(manifest))
    assert p.returncode == 0, p.stderr
    owners = [m["manager"] for m in _coredns(kc)["metadata"]["managedFields"]]
    assert DEAD in owners and any(o.startswith("pulumi-kubernetes-") and o != DEAD for o in owners), owners
    before = lab.settings.dns.replicas
    project.set_path(stack, "dns.replicas", before + 1)
    try:
        stack.up(color="never", on_output=lambda line: None)
        assert _coredns(kc)["spec"]["replicas"] == before + 1
    finally:
        project.set_path(stack, "dns.replicas", before)
        stack.up(color="never", on_output=lambda line: None)
    assert _coredns(kc)["spec"]["replicas"] == before
    print(f"\n[e2e] coredns co-owned by {DEAD}; dns.replicas {before} -> {before + 1} -> {before} applied over it")
