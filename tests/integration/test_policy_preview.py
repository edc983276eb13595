"""The policy pack through the real engine: `pulumi preview --policy-pack policy` with each
stack's config. Mandatory violations fail the preview; advisory ones only warn."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest

from tests.integration.test_preview import SECRETS
from tools.automation import ROOT, PreviewResult, Project

pytestmark = pytest.mark.engine

PACK = str(ROOT / "policy")


def config(stack: str) -> str:
    return str(ROOT / "policy" / "config" / f"{stack}.json")


def preview_with_pack(project: Project, stack: str, policy_config: str) -> PreviewResult:
    return project.preview(project.stack(stack, SECRETS[stack]), policy_packs=[PACK], policy_pack_configs=[policy_config])


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_shipped_stacks_pass_every_mandatory_rule(project: Project, stack: str):
    res = preview_with_pack(project, stack, config(stack))
    assert not res.error, res.error
    assert [p for p in res.policy if p["level"] == "mandatory"] == []
    assert "vm-platform-policies" in res.stdout  # the pack ran


def test_mandatory_violations_fail_the_preview(project: Project):
    # dev's plain-http registry and 2 replicas under prod's settings.
    res = preview_with_pack(project, "dev", config("prod"))
    assert res.error, "a mandatory violation must fail the preview"
    names = {p["policy"] for p in res.policy if p["level"] == "mandatory"}
    assert {"registry-plain-http", "image-registry-allowed", "min-replicas"} <= names, names
    msgs = [p["message"] for p in res.policy if p["policy"] == "min-replicas"]
    assert any("eurekaserver" in m for m in msgs), msgs  # 2 Eureka replicas under prod's 3
    assert any("kube-system/coredns" in m for m in msgs), msgs  # and dev's 2 CoreDNS replicas


def test_advisory_violations_only_warn(project: Project):
    cfg = json.loads(Path(config("dev")).read_text())
    cfg["min-replicas"] = {**cfg["min-replicas"], "enforcementLevel": "advisory", "minReplicas": 3}
    path = Path(tempfile.mkdtemp()) / "dev-advisory.json"
    path.write_text(json.dumps(cfg))
    res = preview_with_pack(project, "dev", str(path))
    assert not res.error, res.error
    advisory = [p for p in res.policy if p["policy"] == "min-replicas"]
    assert advisory and advisory[0]["level"] == "advisory"
