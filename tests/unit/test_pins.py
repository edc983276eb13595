"""The toolchain pins agree with the Python SDKs (a plugin version that differs from the SDK's
pulumi-plugin.json makes the engine try to download another plugin)."""

import json
import tomllib
from importlib import metadata
from pathlib import Path

import pulumi_command
import pulumi_kubernetes

from tools.common import ROOT, pins


def plugin_json(module) -> dict:
    return json.loads((Path(module.__file__).parent / "pulumi-plugin.json").read_text())


def test_plugin_versions_equal_sdk_plugin_json():
    p = pins()["plugins"]
    assert plugin_json(pulumi_kubernetes)["version"] == p["kubernetes"]["version"]
    assert plugin_json(pulumi_command)["version"] == p["command"]["version"]


def test_pyproject_pins_match_toolchain_and_installed():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    pinned = dict(d.split("==") for d in deps)
    assert pinned["pulumi"] == pins()["pulumi"]["python_sdk"] == metadata.version("pulumi")
    assert pinned["pulumi-kubernetes"] == pins()["plugins"]["kubernetes"]["version"] == metadata.version("pulumi-kubernetes")
    assert pinned["pulumi-command"] == pins()["plugins"]["command"]["version"] == metadata.version("pulumi-command")
    policy_reqs = (ROOT / "policy" / "requirements.txt").read_text()
    assert f"pulumi=={pinned['pulumi']}" in policy_reqs


def test_cli_is_not_older_than_the_sdk():
    cli = tuple(int(x) for x in pins()["pulumi"]["cli"].split("."))
    sdk = tuple(int(x) for x in pins()["pulumi"]["python_sdk"].split("."))
    assert cli >= sdk


def test_project_written_plugins_are_where_the_pins_say():
    """tools/engine.py builds these and hashes their source: a moved module must be re-pinned."""
    sources = [pins()["language_host"]["source"], *(p["source"] for p in pins()["plugins"].values() if "source" in p)]
    assert sources == ["plugins/langhost", "plugins/commandprovider"]
    for src in sources:
        assert (ROOT / src / "go.mod").is_file() and list((ROOT / src).glob("*.go")), src
