"""rules/analyzer.py: the SDK's analyzer with one decoded copy of each resource's properties
gives exactly the answers it gives without, and decodes each resource once instead of once per
rule."""

from __future__ import annotations

from typing import Any

import pytest
from google.protobuf import struct_pb2
from pulumi.runtime.proto import analyzer_pb2 as proto
from pulumi_policy import EnforcementLevel
from pulumi_policy import policy as sdk
from rules import ALL_RULES
from rules.analyzer import SDK_VERSION, ByIdentity, share_decoded_properties

from tests.policy.fakes import DEPLOYMENT, UNKNOWN, deployment, edit, stack, urn


def servicer() -> Any:
    policies = [r.policy() for r in ALL_RULES]
    return sdk._PolicyAnalyzerServicer("vm-platform-policies", "0.0.1", policies, EnforcementLevel.ADVISORY, None, None, None, None, None, None, None)


def struct(props: dict[str, Any]) -> struct_pb2.Struct:
    s = struct_pb2.Struct()
    s.update(props)
    return s


def analyze(resource_type: str, props: dict[str, Any]) -> list[tuple[str, str]]:
    request = proto.AnalyzeRequest(type=resource_type, urn=urn(resource_type, "res"), name="res", properties=struct(props))
    response = servicer().Analyze(request, None)
    return sorted((d.policyName, d.message) for d in response.diagnostics)


def analyze_stack(rows: list[tuple[str, str, dict[str, Any]]]) -> list[tuple[str, str]]:
    resources = [proto.AnalyzerResource(type=t, urn=urn(t, n), name=n, properties=struct(p)) for t, n, p in rows]
    response = servicer().AnalyzeStack(proto.AnalyzeStackRequest(resources=resources), None)
    return sorted((d.policyName, d.message) for d in response.diagnostics)


BAD = edit(deployment(), **{"spec.template.spec.containers.0.securityContext": {"privileged": True}, "spec.replicas": 1.0})
UNKNOWNS = edit(deployment(), **{"spec.template.spec.containers.0.image": UNKNOWN, "metadata.namespace": UNKNOWN})
ROWS = [*stack(), ("kubernetes:apps/v1:Deployment", "bare", edit(deployment("bare"), **{"spec.template.spec.serviceAccountName": "nobody"}))]


def share(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("json_format", "deserialize_properties", "unknown_checking_proxy"):
        monkeypatch.setattr(sdk, name, getattr(sdk, name))  # restored after the test
    assert share_decoded_properties()


def test_the_sdk_is_the_version_the_memo_was_written_for() -> None:
    import importlib.metadata

    assert importlib.metadata.version("pulumi_policy") == SDK_VERSION, "check rules/analyzer.py against the new analyzer, then bump SDK_VERSION"


@pytest.mark.parametrize("props", [deployment(), BAD, UNKNOWNS], ids=["compliant", "violations", "unknowns"])
def test_same_answers_with_one_decoding(props: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    plain = analyze(DEPLOYMENT, props)
    share(monkeypatch)
    assert analyze(DEPLOYMENT, props) == plain
    if props is BAD:
        assert {"no-privileged-containers", "min-replicas"} <= {p for p, _ in plain}
    decode = sdk.deserialize_properties
    assert isinstance(decode, ByIdentity) and decode.calls == 1, "one decoding for every rule"


def test_same_stack_answers_with_one_decoding_per_resource(monkeypatch: pytest.MonkeyPatch) -> None:
    plain = analyze_stack(ROWS)
    assert [p for p, _ in plain if p == "service-account-exists"], "the stack has something to report"
    share(monkeypatch)
    assert analyze_stack(ROWS) == plain
    assert sdk.deserialize_properties.calls == len(ROWS)  # type: ignore[attr-defined]


def test_by_identity_tells_equal_inputs_apart() -> None:
    memo = ByIdentity(lambda d: dict(d), size=2)
    a, b = {"x": 1}, {"x": 1}
    assert memo(a) is memo(a) and memo(b) is not memo(a)
    memo(a)  # a is the most recent now
    memo({"x": 2})  # so b is the one evicted (size 2)
    assert memo.calls == 3
    memo(a)
    assert memo.calls == 3
    memo(b)
    assert memo.calls == 4
