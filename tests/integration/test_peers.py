"""The pack against its peers' own fixtures through the real engine (tools/peers.py), and the
peer check names in policy/README.md against the peers' source. Needs checkouts of both peers,
never part of this repository:

    VMP_PEERS_POLARIS=/tmp/polaris VMP_PEERS_KYVERNO=/tmp/kyverno-policies pytest tests/integration/test_peers.py
"""

from __future__ import annotations

import fnmatch
import os
import re
from pathlib import Path

import pytest
import yaml

from tools import peers
from tools.common import ROOT

pytestmark = pytest.mark.engine

POLARIS = os.environ.get("VMP_PEERS_POLARIS")
KYVERNO = os.environ.get("VMP_PEERS_KYVERNO")
needs_checkouts = pytest.mark.skipif(
    not (POLARIS and KYVERNO),
    reason="set VMP_PEERS_POLARIS and VMP_PEERS_KYVERNO to checkouts of FairwindsOps/polaris and kyverno/policies (their files are not copied here)",
)


def readme_names(column: int) -> set[str]:
    """The backticked names in one peer column of the README's rule tables (6: Polaris, 7: Kyverno)."""
    names: set[str] = set()
    for line in (ROOT / "policy" / "README.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("| `") and len(cells) == 10:
            names |= set(re.findall(r"`([^`]+)`", cells[column + 1]))
    return names


@needs_checkouts
def test_readme_names_are_checks_of_the_peers() -> None:
    polaris = {p.stem for p in Path(str(POLARIS), "pkg", "config", "checks").glob("*.yaml")}
    assert readme_names(6) and readme_names(6) <= polaris, readme_names(6) - polaris
    kyverno = set()
    for path in Path(str(KYVERNO)).glob("*/**/*.yaml"):
        if "/." in str(path.relative_to(str(KYVERNO))):
            continue  # test resources
        try:
            docs = list(yaml.safe_load_all(path.read_text()))
        except yaml.YAMLError:
            continue
        kyverno |= {d["metadata"]["name"] for d in docs if isinstance(d, dict) and d.get("kind") in ("ClusterPolicy", "Policy")}
    assert readme_names(7) and readme_names(7) <= kyverno, readme_names(7) - kyverno


@needs_checkouts
def test_every_disagreement_with_the_peers_is_explained() -> None:
    scores, _ = peers.run(Path(str(POLARIS)), Path(str(KYVERNO)))
    assert {s.check.name for s in scores} == {c.name for c in (*peers.POLARIS, *peers.KYVERNO)}, "every mapped check has fixtures"
    assert {s.check.name: s.unexplained() for s in scores if s.unexplained()} == {}
    stale = [(s.check.name, p) for s in scores for p in s.check.explained if not any(fnmatch.fnmatchcase(c, p) for c in s.miss + s.fp)]
    assert stale == [], "explanations of disagreements that no longer happen"
