"""Certificate renewal on the lab, under load, with short-lived certificates (issue 12 item 2).

The stack gets one-day leaf certificates and a renewal window of pki.renewDays = 0.9975 days:
every certificate is inside it 216 s after it was issued. Once all are, the preview says what it renews and
shows exactly the signing steps and the restarts of what reads them (nothing else); `up` renews
every leaf while the example service and Eureka keep answering through their LoadBalancer
addresses (every failure counted; goal 0); afterwards the API server, etcd, the registry and each
kubelet serve the new certificates, the CAs are the same, and the next preview is empty. The
stack's own validity comes back at the end (one more reissue).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
from pulumi import automation as auto

from components.previous import CA_CERTIFICATES, EXPIRY_OUTPUT
from tests.e2e.conftest import Lab, lb_urls
from tests.e2e.load import loads
from tools.automation import Project

pytestmark = pytest.mark.lab

CLUSTER = "cluster"  # __main__.py's Cluster
OUTSIDE_S = 216  # how long a new certificate stays outside the window: the `up` that renews and the preview after it
WINDOW_DAYS = 1 - OUTSIDE_S / 86400


def _when(iso: str) -> datetime:
    return datetime.strptime(iso, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


def served_not_after(lab: Lab, host: str, port: int) -> datetime:
    """notAfter of the certificate a server on `host` presents on 127.0.0.1:`port` right now."""
    out = lab.ssh(host, f"openssl s_client -connect 127.0.0.1:{port} </dev/null 2>/dev/null | openssl x509 -noout -enddate").stdout.strip()
    return datetime.strptime(out.removeprefix("notAfter="), "%b %d %H:%M:%S %Y %Z").replace(tzinfo=UTC)


def test_short_lived_certificates_are_renewed_by_up_without_downtime(local: tuple[Project, auto.Stack], stack: auto.Stack, lab: Lab):
    project, _ = local
    cp = lab.settings.control_plane.name
    workers = [w.name for w in lab.settings.workers]
    try:
        # 1. One-day certificates (a new validity: every leaf is issued again by this `up`).
        project.set_path(stack, "pki.certValidityDays", 1)
        project.set_path(stack, "pki.renewDays", WINDOW_DAYS)
        stack.up(color="never", on_output=lambda line: None)
        before = stack.outputs()[EXPIRY_OUTPUT].value
        leaves = {(h, n): _when(end) for h, certs in before.items() for n, end in certs.items() if n not in CA_CERTIFICATES}
        assert max(leaves.values()) < datetime.now(UTC) + timedelta(days=1), leaves

        # 2. Wait until every leaf is inside the window (the workers' are signed a little after
        # the control plane's); the preview says what it renews.
        due = max(leaves.values()).timestamp() - WINDOW_DAYS * 86400 + 2
        time.sleep(max(0.0, due - time.time()))
        preview = project.preview(stack)
        assert not preview.error, preview.error[-3000:]
        said = next((m for m in preview.program_said if "renewing" in m), "")
        assert said and all(h in said for h in (cp, *workers)), preview.diagnostics
        changed = {name: op for name, (op, _) in preview.changed().items()}
        # The Kubernetes provider gets the new admin kubeconfig: an update (its cluster identifier
        # is stable), never a replacement of every object.
        provider = {name: op for name, op in changed.items() if name == f"{CLUSTER}-k8s"}
        assert provider == {f"{CLUSTER}-k8s": "update"}, provider
        del changed[f"{CLUSTER}-k8s"]
        # With the provider's new kubeconfig unknown until the control plane's step runs, the
        # preview lists every Kubernetes object as a possible update, with no property changed
        # (pulumi-kubernetes diffs nothing against an unknown config); `up` changes none of them.
        objects = {name for name in changed if not name.startswith((f"{cp}-", *(f"{w}-" for w in workers)))}
        assert all(changed[n] == "update" and preview.detailed(n) == [] for n in objects), {n: (changed[n], preview.detailed(n)) for n in objects}
        for n in objects:
            del changed[n]
        restarts = {f"{cp}-{u}-restart" for u in ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler")} | {f"{cp}-registry-restart"}
        worker_units = ("kubelet", "kube-proxy", "flanneld", *(("vmp-netpol",) if lab.settings.network.policy_enforcer == "vmp-netpol" else ()))
        restarts |= {f"{w}-{u}-restart" for w in workers for u in worker_units}
        # A worker's CNI config is written again after each flanneld restart (it reads that restart).
        signing = {f"{cp}-pki", f"{cp}-kubeconfig"} | {f"{w}-{s}" for w in workers for s in ("sign", "certs", "cni-config")}
        assert set(changed) == restarts | signing, sorted(set(changed) ^ (restarts | signing))
        print(f"\n[e2e] renewal preview: {len(changed)} changes ({len(restarts)} restarts); {said.splitlines()[0][:200]}")

        # 3. `up` under load through both LoadBalancer addresses.
        with loads(lb_urls(stack), lab.instance.network, threads=2, max_seconds=600, max_requests=100_000) as running:
            time.sleep(2)
            t0 = time.monotonic()
            stack.up(color="never", on_output=lambda line: None)
            up_s = time.monotonic() - t0
            time.sleep(3)
        reports = {k: load.report() for k, load in running.items()}
        print(f"[e2e] renewal: up {up_s:.1f} s; {reports}")

        # 4. Every leaf renewed, the CAs kept; the servers present the new certificates.
        after = stack.outputs()[EXPIRY_OUTPUT].value
        for (h, n), end in leaves.items():
            assert _when(after[h][n]) > end, (h, n, end, after[h][n])
        assert {h: {n: e for n, e in c.items() if n in CA_CERTIFICATES} for h, c in after.items()} == {
            h: {n: e for n, e in c.items() if n in CA_CERTIFICATES} for h, c in before.items()
        }
        served = {
            "kube-apiserver": (served_not_after(lab, cp, lab.settings.network.api_server_port), after[cp]["apiserver"]),
            "etcd": (served_not_after(lab, cp, 2379), after[cp]["etcd-server"]),
            "registry": (served_not_after(lab, cp, lab.settings.registry.port), after[cp]["registry"]),
            **{f"kubelet {w}": (served_not_after(lab, w, 10250), after[w]["kubelet"]) for w in workers},
        }
        assert all(got == _when(want) for got, want in served.values()), served
        for k, load in running.items():
            assert not load.failures, (k, load.report(), load.bursts())

        # 5. Converged (before the new certificates enter the window, 216 s after they were issued).
        again = project.preview(stack)
        assert again.changed() == {}, again.changed()
    finally:
        for key in ("pki.certValidityDays", "pki.renewDays"):
            project.pulumi("config", "rm", "--path", "-s", stack.name, key, check=False)
        stack.up(color="never", on_output=lambda line: None)
