"""Defaults live in one place: Pulumi.yaml's config block and the README's config reference are
rendered from the field declarations, and a stack file can be held against them."""

from __future__ import annotations

from dataclasses import fields, is_dataclass
from typing import Any

import yaml

from components.settings import Secret, Settings, parse_settings, reference
from components.settings.fields import specs
from components.settings.platform import coredns_image
from tests.unit.harness import ROOT, TEST_KEY


def test_pulumi_yaml_config_block_is_generated_from_the_settings():
    assert reference.current_pulumi_config() == reference.render_pulumi_config(), f"Pulumi.yaml's config block is out of date: run {reference.REGENERATE}"


def test_readme_config_reference_is_generated_from_the_settings():
    assert reference.current_readme_section() == reference.render_readme_section(), f"README's config reference is out of date: run {reference.REGENERATE}"


def test_pulumi_yaml_declares_every_top_level_key_with_its_default():
    declared = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]
    defaults = reference.default_config()
    assert set(declared) == set(reference.known_keys()) - {"registryPassword"}
    assert declared["pauseImage"]["default"] == defaults["pauseImage"] == "pause:3.10"
    assert "default" not in declared["controlPlane"] and declared["pki"]["default"] == {}


def minimal() -> dict[str, Any]:
    """Only the keys without a default."""
    host = {"hostKey": "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIOlf5ARWbu9EOPh0S6vfbenSAiiVS4jYEwD+lr1thu+"}
    return {
        "environment": "test",
        "kubernetesVersion": "v1.34.4",
        "sshPrivateKey": Secret(TEST_KEY),
        "controlPlane": {"name": "master", "address": "10.0.0.10", **host},
        "workers": [{"name": "worker-1", "address": "10.0.0.11", **host}],
        "network": {"hostCidr": "10.0.0.0/24", "podCidr": "10.244.0.0/16", "serviceCidr": "10.96.0.0/16", "clusterDns": "10.96.0.10"},
        "binaries": {"releaseBaseUrl": "https://example.invalid/release"},
        "registry": {"images": [{"name": "pause:3.10"}, {"name": "eureka-server:1.1.0"}, {"name": coredns_image()}]},
        "eureka": {"image": "eureka-server:1.1.0"},
    }


def _attributes(cls: type, obj: Any, base: str = "") -> dict[str, Any]:
    """config key path -> the parsed attribute, for every declared field outside lists."""
    out: dict[str, Any] = {}
    for attr, key, spec in specs(cls):
        if spec.root:
            continue
        value = getattr(obj, attr)
        path = f"{base}.{key}" if base else key
        if is_dataclass(value) and not isinstance(value, tuple):
            out.update(_attributes(type(value), value, path))
        else:
            out[path] = list(value) if isinstance(value, tuple) and not any(is_dataclass(v) for v in value) else value
    return out


def _leaves(tree: dict[str, Any], base: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in tree.items():
        path = f"{base}.{k}" if base else k
        out.update(_leaves(v, path) if isinstance(v, dict) and v else {path: v})
    return out


def test_the_defaults_are_the_ones_parsing_uses():
    parsed = _attributes(Settings, parse_settings(minimal(), "test"))
    written = set(_leaves(minimal()))
    derived = {"namespaces", "secrets", "services"}  # the Eureka namespace is added; secrets and services become tuples
    defaults = {k: v for k, v in _leaves(reference.default_config()).items() if k not in written | derived and not k.startswith("registry.images")}
    assert len(defaults) > 40, defaults
    assert {k: parsed[k] for k in defaults} == defaults
    assert {f.name for f in fields(Settings)} >= {"pki", "packages", "kubelet", "secrets"}


def test_a_clean_stack_file_passes_the_stack_check():
    assert reference.check_stack_config(minimal(), "test") == []


def test_the_stack_check_lists_restated_defaults_and_problems():
    raw = minimal()
    raw["ssh"] = {"user": "root", "port": 2222}
    raw["network"]["podSubnetLength"] = 24
    raw["runtme"] = {}
    found = reference.check_stack_config(raw, "test")
    assert 'ssh.user: restates the default "root" (leave it out)' in found
    assert "network.podSubnetLength: restates the default 24 (leave it out)" in found
    assert not any(f.startswith("ssh.port") for f in found)
    assert any(f.startswith("runtme: expected a key the platform reads (did you mean runtime?)") for f in found)


def test_the_stack_check_does_not_need_local_files():
    raw = minimal()
    raw["binaries"] = {"source": "local", "localDir": "/nonexistent/vmp-bin"}
    raw["registry"]["images"][0]["archive"] = "/nonexistent/pause.tar"
    assert reference.check_stack_config(raw, "test") == []


def test_the_command_line_says_when_files_are_stale(tmp_path, capsys):
    (tmp_path / "Pulumi.yaml").write_text("name: x\nconfig:\n  old:\n    type: string\n")
    (tmp_path / "README.md").write_text(f"# x\n\n{reference.README_HEADING}\n\nold table\n\n## Layout\n\nkept\n")
    assert {p.name for p in reference.write(tmp_path)} == {"Pulumi.yaml", "README.md"}
    assert (tmp_path / "Pulumi.yaml").read_text() == "name: x\n" + reference.render_pulumi_config()
    readme = (tmp_path / "README.md").read_text()
    assert readme == "# x\n\n" + reference.render_readme_section() + "\n## Layout\n\nkept\n"
    assert reference.write(tmp_path) == []
    assert reference.main([]) == 0, capsys.readouterr().out
