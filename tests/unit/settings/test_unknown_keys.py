"""A key the platform does not read is refused, with a did-you-mean naming the closest known key
(it would otherwise be silently ignored: a typo could drop a whole maintenance request)."""

from __future__ import annotations

from typing import Any

import pytest

from components.settings import Secret, parse_settings
from tests.unit.settings.helpers import errors_for, problems_for, run_fix, stack_raw


def rename(path: str, new: str) -> Any:
    """Move the value at a dotted path (list indexes as numbers) to the key `new` beside it."""

    def mutate(raw: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node: Any = raw
        for p in parents:
            node = node[int(p)] if isinstance(node, list) else node[p]
        node[new] = node.pop(last)

    return mutate


def add(path: str, key: str, value: Any) -> Any:
    def mutate(raw: dict[str, Any]) -> None:
        node: Any = raw
        for p in path.split(".") if path else []:
            node = node[int(p)] if isinstance(node, list) else node[p]
        node[key] = value

    return mutate


MISSPELT = [
    # (id, stack, mutation, expected message start)
    ("top-level", "dev", rename("maintenance", "maintenence"), "maintenence: expected a key the platform reads (did you mean maintenance?)"),
    (
        "top-level-set-twice",
        "dev",
        add("", "kubernetesVersoin", "v1.35.0"),
        "kubernetesVersoin: expected a key the platform reads (did you mean kubernetesVersion?)",
    ),
    ("nested", "dev", add("ssh", "prot", 2222), "ssh.prot: expected a key the platform reads (did you mean ssh.port?)"),
    ("deeper", "dev", rename("eureka.resources", "resource"), "eureka.resource: expected a key the platform reads (did you mean eureka.resources?)"),
    ("worker-item", "prod", rename("workers.1.address", "adress"), "workers[1].adress: expected a key the platform reads (did you mean workers[1].address?)"),
    (
        "image-item",
        "dev",
        add("registry.images.0", "archve", "/x.tar"),
        "registry.images[0].archve: expected a key the platform reads (did you mean registry.images[0].archive?)",
    ),
    (
        "secret-entry",
        "dev",
        add("", "secrets", {"db": {"namespce": "platform", "data": {"password": Secret("x")}}}),
        "secrets.db.namespce: expected a key the platform reads (did you mean secrets.db.namespace?)",
    ),
    (
        "wrong-section",
        "dev",
        add("network", "cgroupDriver", "systemd"),
        "network.cgroupDriver: expected a key the platform reads (did you mean runtime.cgroupDriver?)",
    ),
    (
        "nothing-close",
        "dev",
        add("registry", "colour", "blue"),
        "registry.colour: expected one of the keys under registry (port, tls, allowPlainHttp, auth, username",
    ),
]


@pytest.mark.parametrize("stack,mutate,expected", [pytest.param(s, m, e, id=i) for i, s, m, e in MISSPELT])
def test_an_unknown_key_is_refused_with_a_did_you_mean(stack, mutate, expected):
    problems = errors_for(mutate, stack)
    assert any(p.startswith(expected) for p in problems), "\n".join(problems)
    assert any("found an unknown key. Fix: pulumi config rm --path " in p for p in problems)


def test_a_misspelt_section_is_moved_by_its_fix():
    """The fix of a misspelt whole section moves its keys (here: the maintenance request)."""
    raw = stack_raw("prod")
    raw["maintenence"] = {"nodes": ["prod-worker-2"], "drain": False}
    del raw["maintenance"]
    (problem,) = problems_for(lambda r: (r.clear(), r.update(raw)), "prod")
    assert problem.fix.startswith("pulumi config rm --path maintenence && "), problem.fix
    fixed = parse_settings(run_fix(raw, problem.fix), "prod")
    assert fixed.maintenance.nodes == ("prod-worker-2",) and fixed.maintenance.drain is False


def test_a_misspelt_required_key_is_reported_by_the_name_written_not_as_not_set():
    problems = errors_for(rename("controlPlane.hostKey", "hostkey"))
    assert len(problems) == 1, problems
    assert problems[0].startswith("controlPlane.hostkey: expected a key the platform reads (did you mean controlPlane.hostKey?)")
    assert "pulumi config set --path controlPlane.hostKey 'ssh-ed25519 AAAA" in problems[0]


def test_a_required_key_missing_beside_an_unknown_one_names_what_was_written():
    problems = errors_for(rename("controlPlane.hostKey", "fingerprint"))
    missing = [p for p in problems if p.startswith("controlPlane.hostKey:")]
    assert missing and "controlPlane.fingerprint is set" in missing[0], problems


def test_a_section_of_the_wrong_type_is_refused():
    problems = errors_for(add("", "ssh", "root"))
    assert problems == ['ssh: expected an object with the keys user, port, dialErrorLimit, perDialTimeout, found "root". Fix: pulumi config rm --path ssh']


def test_free_form_maps_take_any_keys():
    raw = stack_raw("dev")
    raw["kubelet"] = {"maxPods": 60, "evictionHard": {"memory.available": "100Mi"}, "authentication": {"webhook": {"cacheTTL": "30s"}}}
    raw["binaries"]["sha256"] = {"kubelet": "a" * 64, "anything-else": "b" * 64}
    raw["secrets"] = {"db": {"namespace": "platform", "data": {"any.key_name-1": Secret("x")}}}
    s = parse_settings(raw, "dev")
    assert s.kubelet["evictionHard"] == {"memory.available": "100Mi"} and s.binaries.sha256["anything-else"] == "b" * 64


def test_load_settings_sees_unknown_keys(monkeypatch):
    """Pulumi hands the program every key of the stack: an unknown one must reach the check."""
    import json

    import pulumi

    from components.settings import load_settings
    from tests.unit.harness import TEST_KEY

    raw = stack_raw("dev")
    for img in raw["registry"]["images"]:
        img["archive"] = ""
    raw["maintenence"] = raw.pop("maintenance")
    flat = {f"vm-platform:{k}": (v if isinstance(v, str) else json.dumps(v)) for k, v in raw.items() if k != "sshPrivateKey"}
    flat["vm-platform:sshPrivateKey"] = TEST_KEY
    pulumi.runtime.set_all_config(flat, ["vm-platform:sshPrivateKey"])
    monkeypatch.setattr(pulumi, "get_stack", lambda: "dev")
    try:
        with pytest.raises(pulumi.RunError, match=r"maintenence: expected a key the platform reads \(did you mean maintenance\?\)"):
            load_settings()
        flat["vm-platform:maintenance"] = flat.pop("vm-platform:maintenence")
        pulumi.runtime.set_all_config(flat, ["vm-platform:sshPrivateKey"])
        assert load_settings().maintenance.drain is True
    finally:
        pulumi.runtime.set_all_config({}, [])


def test_a_misspelt_secret_key_is_moved_without_printing_its_value():
    problems = errors_for(lambda raw: (raw["registry"].update(auth=True, username="platform"), raw.update(registryPasword="hunter2")))
    assert not any("hunter2" in p for p in problems), problems
    assert any(
        p.startswith("registryPasword: expected a key the platform reads (did you mean registryPassword?)")
        and p.endswith("Fix: pulumi config rm --path registryPasword && pulumi config set --secret registryPassword")
        for p in problems
    ), problems
