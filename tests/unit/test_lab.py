"""lab/: instance names and networks (two labs on one machine never share a name or a /24), and
the stack file writer (pyyaml; keeps what pulumi wrote). Nothing here boots a host."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest
import yaml

from components.settings import Secret
from lab import instance, stackfile, system
from tools.common import ROOT, ToolError

HOST_KEYS = {f"lab-{i}": f"ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI{i}" for i in ("master", "worker-1", "worker-2")}


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A cache of its own: instance records and stack files never touch the machine's lab, and a
    lab running on the machine (its network namespaces) is not seen."""
    monkeypatch.setenv("VMP_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(system, "netns_list", lambda: [])
    monkeypatch.setattr(instance, "_machine_networks", lambda: [ipaddress.IPv4Network("10.0.0.0/24"), ipaddress.IPv4Network("0.0.0.0/0")])
    return tmp_path / "cache"


def test_default_instance_keeps_the_main_jobs_names(cache: Path):
    d = instance.get()
    master, worker = d.hosts(1)
    assert (d.bridge, str(d.network), d.gateway) == ("vmplab0", "10.77.0.0/24", "10.77.0.1")
    assert (d.dir, d.stack_file, d.key_path) == (cache / "lab", ROOT / "Pulumi.local.yaml", cache / "lab" / "id_ed25519")
    assert (master.name, master.machine, master.netns, master.veth, master.address) == ("lab-master", "lab-master", "vmp-master", "vmpv-master", "10.77.0.10")
    assert (worker.name, worker.netns, worker.veth, worker.address, worker.dir) == (
        "lab-worker-1",
        "vmp-worker-1",
        "vmpv-worker-1",
        "10.77.0.11",
        cache / "lab" / "hosts" / "worker-1",
    )


def test_another_instance_shares_no_name_place_or_network_with_the_default():
    d, e = instance.get(), instance.get("e2e", create=True)
    assert str(e.network) == "10.78.0.0/24"
    assert not e.network.overlaps(d.network)
    assert e.stack_file != d.stack_file and not e.stack_file.is_relative_to(ROOT)
    assert e.dir != d.dir and e.key_path.parent == e.dir
    for dh, eh in zip(d.hosts(20), e.hosts(20), strict=True):
        assert dh.name == eh.name  # node names inside stay lab-master / lab-worker-N
        assert len({dh.machine, eh.machine}) == len({dh.netns, eh.netns}) == len({dh.veth, eh.veth}) == len({dh.dir, eh.dir}) == 2
        assert len(eh.veth) <= 15 and len(e.bridge) <= 15


def test_networks_skip_other_instances_and_the_machines_own():
    names = ["e2e", "b", "c"]
    nets = [instance.get(n, create=True).network for n in names]
    assert [str(n) for n in nets] == ["10.78.0.0/24", "10.79.0.0/24", "10.80.0.0/24"]
    assert instance.get("e2e").network == nets[0]  # recorded, stable across calls


def test_a_network_in_use_on_the_machine_is_not_taken(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(instance, "_machine_networks", lambda: [ipaddress.IPv4Network("10.78.0.5/32")])
    assert str(instance.get("e2e", create=True).network) == "10.79.0.0/24"


def test_unknown_and_bad_instance_names():
    with pytest.raises(ToolError, match="no lab instance 'nope'"):
        instance.get("nope")
    assert not instance.exists("nope")
    for bad in ("E2E", "toolongname", "1lab", "a-b"):
        with pytest.raises(ToolError, match="expected 1 to 8"):
            instance.get(bad, create=True)


def test_existing_hosts_belong_to_their_instance_only():
    d, e = instance.get(), instance.get("e2e", create=True)
    (e.dir / "hosts" / "worker-2").mkdir(parents=True)
    (d.dir / "hosts" / "master").mkdir(parents=True)
    assert [h.id for h in e.existing_hosts()] == ["worker-2"]
    assert [h.id for h in d.existing_hosts()] == ["master"]
    # No worker yet: the default count (two, so replicas spread and a drain has somewhere to go).
    assert e.current_workers() == 1 and d.current_workers() == instance.DEFAULT_WORKERS == 2


def _config(inst: instance.Instance, workers: int = 1) -> dict:
    cfg, _ = stackfile.stack_config(inst, workers, host_keys=HOST_KEYS, backend="host-gw")
    return cfg


def test_stack_config_follows_the_instance():
    e = instance.get("e2e", create=True)
    cfg = _config(e, 2)
    assert cfg["vm-platform:network"]["hostCidr"] == "10.78.0.0/24"
    assert cfg["vm-platform:controlPlane"] == {"name": "lab-master", "address": "10.78.0.10", "hostKey": HOST_KEYS["lab-master"]}
    assert [w["address"] for w in cfg["vm-platform:workers"]] == ["10.78.0.11", "10.78.0.12"]
    assert cfg["vm-platform:network"]["backend"] == "host-gw"


def test_stack_file_is_yaml_that_reads_back_as_the_config():
    e = instance.get("e2e", create=True)
    cfg = _config(e)
    text = stackfile.render(e, cfg, "/k")
    assert yaml.safe_load(text) == {"config": cfg}
    assert "#   kubelet.failCgroupV1: cgroup-v1 machine" in text and "bridge vmplab-e2e (10.78.0.0/24)" in text
    assert "--instance e2e" in text


def test_rewrite_keeps_what_pulumi_wrote_and_drops_stale_lab_values(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(stackfile.hosts, "host_key", lambda h: HOST_KEYS[h.name])
    e = instance.get("e2e", create=True)
    cfg = _config(e)
    old = {
        "encryptionsalt": "v1:salt:abc",
        "config": {
            **cfg,
            "vm-platform:environment": "stale",
            "vm-platform:sshPrivateKey": {"secure": "v1:AAAA"},
            "vm-platform:secrets": {"db": {"data": {"password": {"secure": "v1:BBBB"}}}},
            "vm-platform:typo": "plain values the lab did not write are dropped",
        },
    }
    e.stack_file.write_text("# a comment pulumi may have kept\n" + yaml.safe_dump(old))
    path, changed = stackfile.write_stack_file(e, 1, "host-gw")
    assert (path, changed) == (e.stack_file, True)
    assert stackfile.write_stack_file(e, 1, "host-gw") == (path, False)  # a second `up` changes nothing
    doc = yaml.safe_load(path.read_text())
    assert doc["encryptionsalt"] == "v1:salt:abc"
    assert doc["config"]["vm-platform:sshPrivateKey"] == {"secure": "v1:AAAA"}
    assert doc["config"]["vm-platform:secrets"] == old["config"]["vm-platform:secrets"]
    assert doc["config"]["vm-platform:environment"] == "local"
    assert "vm-platform:typo" not in doc["config"]
    assert list(doc)[0] == "encryptionsalt"


def test_a_stack_file_that_is_not_yaml_is_not_overwritten():
    e = instance.get("e2e", create=True)
    e.stack_file.write_text("config: [unclosed\n")
    with pytest.raises(ToolError, match="not valid YAML"):
        stackfile.kept_from(e.stack_file, {})
    assert e.stack_file.read_text() == "config: [unclosed\n"


def test_the_lab_stack_file_says_only_what_differs_from_the_settings_defaults():
    """Defaults live in components/settings: the lab's stack file neither restates one nor holds
    anything the settings would refuse (files on this machine aside)."""
    from components.settings.reference import check_stack_config

    for workers in (1, 2):
        inst = instance.Instance(instance.DEFAULT, instance.DEFAULT_NETWORK)
        keys = {h.name: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIHkeyforthetest" for h in inst.hosts(workers)}
        values = stackfile.stack_values(inst, workers, keys, "vxlan")
        name, key = stackfile.EXAMPLE_SECRET  # set as a secret by tools/deploy-local, not in the file
        given = {"sshPrivateKey": Secret("placeholder for an OPENSSH PRIVATE KEY"), "secrets": {name: {"data": {key: Secret("x")}}}}
        assert check_stack_config({**values, **given}, "local") == []
        assert "ssh" not in values and "podSubnetLength" not in values["network"]  # defaults, left out
        assert values["runtime"]["maxOpenFiles"] == 20000  # what the lab needs stays
