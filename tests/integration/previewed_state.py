"""A state export made from a preview: the resources the program would create, recorded as if an
`up` had created them, without touching any host. Tests import it (`pulumi stack import`) to give
a stack a realistic state: a later preview of the same program then shows those resources as
unchanged, and a changed state shows as the diff it is.

The resources come from the preview's engine events (`resource_pre_event.metadata.new`: typed
inputs; `pulumi preview --json` shows every value as a string). Secrets the events mask are
filled in from `secrets` (property -> value) as plaintext secrets, which `stack import` encrypts
with the stack's own secrets provider.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from pulumi import automation as auto

SIG = "4dabf18193072939515e22adb298388d"
SECRET = "1b47061264138c4ac30d75fd1eb44270"


def _secret(value: Any) -> dict[str, Any]:
    return {SIG: SECRET, "plaintext": json.dumps(value)}


def preview_states(stack: auto.Stack) -> list[dict[str, Any]]:
    """The new state of every resource a preview of `stack` registers, in registration order."""
    states: list[dict[str, Any]] = []

    def on_event(ev: auto.EngineEvent) -> None:
        md = ev.resource_pre_event.metadata if ev.resource_pre_event else None
        if md and md.new:
            n = md.new
            states.append({"urn": n.urn, "type": n.type, "custom": n.custom, "parent": n.parent, "provider": n.provider, "inputs": dict(n.inputs or {})})

    stack.preview(on_event=on_event, color="never")
    return states


def previewed_state(states: Iterable[Mapping[str, Any]], keep: Callable[[str], bool], secrets: Mapping[str, Any], base: Mapping[str, Any]) -> dict[str, Any]:
    """`base` is the stack's current export (its secrets provider is kept); `keep(urn)` picks the
    custom resources to record; their parents and providers come along."""
    by_urn = {s["urn"]: s for s in states}
    wanted: set[str] = set()
    for urn, st in by_urn.items():
        if st["custom"] and not st["type"].startswith("pulumi:providers:") and keep(urn):
            wanted.add(urn)
            parent = st.get("parent")
            while parent:
                wanted.add(parent)
                parent = by_urn[parent].get("parent") if parent in by_urn else None
            if st.get("provider"):
                wanted.add(st["provider"].rsplit("::", 1)[0])
    resources: list[dict[str, Any]] = []
    for urn, st in by_urn.items():
        if urn not in wanted:
            continue
        inputs = {k: (_secret(secrets[k]) if isinstance(v, dict) and SIG in v and k in secrets else v) for k, v in st["inputs"].items()}
        res: dict[str, Any] = {"urn": urn, "custom": st["custom"], "type": st["type"], "inputs": inputs}
        if st.get("parent"):
            res["parent"] = st["parent"]
        if st["custom"]:
            res["id"] = f"synthetic-{urn.rsplit('::', 1)[1]}"
            res["outputs"] = {k: v for k, v in inputs.items() if k != "__internal"}
            if st["type"] == "command:remote:Command":
                res["outputs"].update(stdout="", stderr="")
        if st.get("provider"):
            prov = st["provider"].rsplit("::", 1)[0]
            res["provider"] = f"{prov}::synthetic-{prov.rsplit('::', 1)[1]}"
        resources.append(res)
    out = json.loads(json.dumps(base))
    out["deployment"]["resources"] = resources
    return out
