"""tools/peers.py on tiny hand-written fixtures in the peers' layouts (no peer file, no engine):
how fixtures become cases, how copies are isolated, and how violations are scored."""

from __future__ import annotations

from pathlib import Path

import pytest

from tools import peers

POD = "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\nspec:\n  containers: [{{name: c, image: nginx}}]\n"


def polaris_tree(root: Path) -> Path:
    folder = root / "test" / "checks" / "procMount"
    folder.mkdir(parents=True)
    (folder / "success.yaml").write_text(POD.format(name="good"))
    (folder / "failure.unmasked.yaml").write_text(POD.format(name="bad") + "---\n# a comment only\n---\n" + POD.format(name="other"))
    (folder / "mutated.yaml").write_text(POD.format(name="mutated"))
    return root


def kyverno_tree(root: Path) -> Path:
    folder = root / "pod-security" / "baseline" / "disallow-proc-mount" / ".kyverno-test"
    folder.mkdir(parents=True)
    (folder / "resource.yaml").write_text(
        POD.format(name="goodpod")
        + "---\n"
        + POD.format(name="badpod")
        + "---\n"
        + POD.format(name="badpod").replace("name: badpod", "name: badpod\n  namespace: ns")
    )
    (folder / "kyverno-test.yaml").write_text(
        "results:\n"
        "- {kind: Pod, policy: p, rule: a, resources: [goodpod], result: pass}\n"
        "- {kind: Pod, policy: p, rule: a, resources: [ns/badpod], result: fail}\n"
        "- {kind: Pod, policy: p, rule: b, resources: [ns/badpod], result: pass}\n"
        "- {kind: Pod, policy: p, rule: a, resources: [skipped], result: skip}\n"
        "- {kind: Pod, policy: p, rule: a, resources: [badpod], result: pass, patchedResource: patched.yaml}\n"
        "resources: [resource.yaml]\n"
    )
    return root


def test_polaris_files_pass_or_fail_whole(tmp_path: Path) -> None:
    check = peers.Check("polaris", "procMount", ("no-unmasked-proc-mount",))
    groups, cases = peers.polaris_fixtures(polaris_tree(tmp_path), [check])
    assert [g.id for g in groups] == ["polaris/procMount/failure.unmasked.yaml", "polaris/procMount/success.yaml"]
    assert [len(g.objects) for g in groups] == [2, 1]  # the comment-only document is no object; mutated.yaml is skipped
    assert [(c.id, c.targets, c.fails) for c in cases] == [(groups[0].id, (0, 1), True), (groups[1].id, (0,), False)]


def test_polaris_checkout_without_the_check_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no Polaris fixtures for procMount"):
        peers.polaris_fixtures(tmp_path, [peers.Check("polaris", "procMount", ())])


def test_kyverno_results_per_resource(tmp_path: Path) -> None:
    check = peers.Check("kyverno", "pod-security/baseline/disallow-proc-mount", ("no-unmasked-proc-mount",))
    groups, cases = peers.kyverno_fixtures(kyverno_tree(tmp_path), [check])
    assert len(groups) == 1 and len(groups[0].objects) == 3
    # ns/badpod fails (one rule fails it, another passes it); goodpod passes; skip and mutation results are no expectation;
    # the unqualified name picks the object in the default namespace only
    assert [(c.id.split(":", 1)[1], c.targets, c.fails) for c in cases] == [("Pod/goodpod", (0,), False), ("Pod/ns/badpod", (2,), True)]


def test_kyverno_rule_by_rule_when_words_per_rule_are_given(tmp_path: Path) -> None:
    check = peers.Check("kyverno", "pod-security/baseline/disallow-proc-mount", ("x",), rule_words={"a": ("procMount",), "b": ("other",)})
    _, cases = peers.kyverno_fixtures(kyverno_tree(tmp_path), [check])
    assert [(c.id.split(":", 1)[1], c.fails, c.words) for c in cases] == [
        ("Pod/goodpod#a", False, ("procMount",)),
        ("Pod/ns/badpod#a", True, ("procMount",)),
        ("Pod/ns/badpod#b", False, ("other",)),
    ]


def test_type_tokens() -> None:
    assert peers.type_token({"apiVersion": "apps/v1", "kind": "Deployment"}) == "kubernetes:apps/v1:Deployment"
    assert peers.type_token({"apiVersion": "v1", "kind": "Pod"}) == "kubernetes:core/v1:Pod"


def test_isolated_copies_get_namespaces_of_their_own() -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"}}
    assert peers._isolated(pod, "g1")["metadata"] == {"name": "p", "namespace": "default--g1"}
    assert peers._isolated({**pod, "metadata": {"name": "p", "namespace": "ns"}}, "g1")["metadata"]["namespace"] == "ns--g1"
    assert peers._isolated({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "ns"}}, "g1")["metadata"] == {"name": "ns--g1"}
    assert (
        "namespace" not in peers._isolated({"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "r"}}, "g1")["metadata"]
    )
    assert pod["metadata"] == {"name": "p"}, "the fixture object itself is not changed"


def scored(violations: list[dict[str, str]], check: peers.Check) -> peers.Score:
    objects = [{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": n}} for n in ("bad", "good")]
    group = peers.Group("g", check, objects)
    cases = [peers.Case("g:bad", "g", (0,), True), peers.Case("g:good", "g", (1,), False)]
    resources, where = peers.plan([group], {"a-stack-rule"})
    assert len(resources) == (4 if "a-stack-rule" in check.rules else 2)
    urn = {(w[1], w[2]): f"urn:pulumi:peers::vmp-peers::kubernetes:core/v1:Pod::{name}" for name, w in where.items()}
    events = [{"policy": p, "urn": urn[(i, iso)], "message": f"Description of the rule.\n{m}"} for p, i, iso, m in violations]
    (score,) = peers.score([group], cases, peers.flagged([group], events, where, {"a-stack-rule"}))
    return score


def test_scoring() -> None:
    check = peers.Check("polaris", "procMount", ("a-rule", "a-stack-rule"), words=("procMount",), explained={"g:good": "a deliberate choice"})
    s = scored(
        [
            ("a-rule", 0, False, "sets procMount Unmasked."),  # counts: resource rule on the plain copy
            ("a-rule", 1, True, "sets procMount Unmasked."),  # a resource rule on the isolated copy does not count
            ("a-stack-rule", 1, False, "sets procMount Unmasked."),  # nor a stack rule on the plain copy
            ("a-stack-rule", 1, True, "sets procMount Unmasked."),  # this one does
            ("another-rule", 0, False, "sets procMount Unmasked."),  # not mapped
        ],
        check,
    )
    assert (s.tp, s.miss, s.fp, s.tn) == (["g:bad"], [], ["g:good"], [])
    assert s.messages["g:good"] == ["a-stack-rule: sets procMount Unmasked."]
    assert s.unexplained() == [] and s.explanation("g:good") == "a deliberate choice"


def test_words_are_looked_for_in_the_message_not_the_description() -> None:
    s = scored([("a-rule", 0, False, "something else entirely.")], peers.Check("polaris", "procMount", ("a-rule",), words=("rule",)))
    assert (s.tp, s.miss, s.fp, s.tn) == ([], ["g:bad"], [], ["g:good"])
    assert s.unexplained() == ["g:bad"]


def test_every_mapped_rule_is_a_rule_of_the_pack() -> None:
    rules = {r.name for r in peers.pack_rules()}
    for check in (*peers.POLARIS, *peers.KYVERNO):
        assert set(check.rules) <= rules, check.name
    names = [(c.peer, c.name) for c in (*peers.POLARIS, *peers.KYVERNO)]
    assert len(names) == len(set(names))
