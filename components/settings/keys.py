"""Known keys: every key the operator writes must be one the platform reads.

A misspelt or misplaced key would otherwise be silently ignored (and a typo could drop a
whole request, such as a maintenance list); it is refused with a did-you-mean.
"""

from __future__ import annotations

from collections.abc import Mapping

from .core import Described, Edit, Fix, Reader, Secret, join
from .fields import MISSING, REMOVE, Entries, Items, Section, specs

TYPE_CHECKING = False  # typing is not imported at run time (import cost of every preview)
if TYPE_CHECKING:
    from typing import Any

    Tree = dict[str, Any]  # key -> Spec (a leaf), Tree (a section or a dotted part) or (Items|Entries spec, Tree)


def tree(cls: type, root: Tree | None = None) -> Tree:
    """The known keys of a settings dataclass; root-level specs are placed into `root`."""
    out: Tree = {}
    top = out if root is None else root
    for _, key, spec in specs(cls):
        target = top if spec.root else out
        parts = key.split(".")
        for p in parts[:-1]:
            target = target.setdefault(p, {})
        kind = spec.kind
        if isinstance(kind, Items | Entries):
            target[parts[-1]] = (spec, tree(kind.cls, top))
        elif isinstance(kind, Section):
            sub = tree(kind.cls, top)
            sub["__spec__"] = spec
            target[parts[-1]] = sub
        else:
            target[parts[-1]] = spec
    return out


def optional_tree(t: Tree) -> bool:
    """Whether every key of a section has a default (then the whole section may be left out)."""
    for k, node in t.items():
        if k == "__spec__":
            continue
        if isinstance(node, dict):
            if not optional_tree(node):
                return False
        elif (node[0] if isinstance(node, tuple) else node).required:
            return False
    return True


def known_paths(t: Tree, base: str = "") -> dict[str, str]:
    """full path -> last key, for keys outside lists and maps (the did-you-mean of a key in the wrong section)."""
    out: dict[str, str] = {}
    for k, node in t.items():
        if k == "__spec__":
            continue
        out[join(base, k)] = k
        if isinstance(node, dict):
            out.update(known_paths(node, join(base, k)))
    return out


def check_keys(r: Reader, t: Tree, value: Any, base: str = "", everywhere: Tree | None = None) -> None:
    """Refuse keys the platform does not read (they would be silently ignored), with a did-you-mean."""
    everywhere = t if everywhere is None else everywhere
    if not isinstance(value, Mapping):
        if base and value is not MISSING and value is not None:  # `ssh:` left empty in YAML is "not set"
            keys = ", ".join(k for k in t if k != "__spec__")
            optional = "__spec__" in t and optional_tree(t)
            r.claimed.add(base)
            r.problem(base, f"an object with the keys {keys}", value, fixes=[(Edit(base, REMOVE),)] if optional else [])
        return
    for key, v in value.items():
        path = join(base, str(key))
        node = t.get(key) if key != "__spec__" else None
        if node is None:
            unknown_key(r, path, str(key), t, base, everywhere, v)
        elif isinstance(node, dict):
            check_keys(r, node, v, path, everywhere)
        elif isinstance(node, tuple):
            spec, sub = node
            if isinstance(spec.kind, Items) and isinstance(v, list):
                for i, item in enumerate(v):
                    check_keys(r, sub, item, f"{path}[{i}]", everywhere)
            elif isinstance(spec.kind, Entries) and isinstance(v, Mapping):
                for name, item in v.items():
                    if isinstance(item, Mapping):
                        check_keys(r, sub, item, f"{path}.{name}", everywhere)


def unknown_key(r: Reader, path: str, key: str, siblings: Tree, base: str, everywhere: Tree, value: Any) -> None:
    import difflib

    known = [k for k in siblings if k != "__spec__"]
    match = next((k for k in known if k.lower() == key.lower()), None) or next(iter(difflib.get_close_matches(key, known, n=1, cutoff=0.6)), None)
    target = join(base, match) if match else None
    if target is None:
        # A known key in the wrong section (network.cgroupDriver -> runtime.cgroupDriver).
        elsewhere = known_paths(everywhere)
        by_key: dict[str, str] = {}
        for full, last in elsewhere.items():
            by_key.setdefault(last, full)
        close = difflib.get_close_matches(key, list(by_key), n=1, cutoff=0.8)
        target = by_key[close[0]] if close else None
    r.unknown.setdefault(base, []).append(path)
    where = f"under {base}" if base else "at the top level"
    if target:
        expected = f"a key the platform reads (did you mean {target}?)"
    else:
        expected = f"one of the keys {where} ({', '.join(known)})"
    fixes: list[Fix] = []
    if target and not r.written(target):
        r.claimed.add(target)
        fixes.append((Edit(path, REMOVE), Edit(target, value, secret=isinstance(value, Secret) or _holds_secrets(everywhere, target))))
    fixes.append((Edit(path, REMOVE),))
    r.problem(path, expected, Described("an unknown key"), fixes=fixes)


def _holds_secrets(t: Tree, path: str) -> bool:
    """Whether `path` is a secret key (or inside a map of them): a moved value is prompted for, never printed."""
    node: Any = t
    parts = [p.split("[")[0] for p in path.split(".")]
    while parts:
        if isinstance(node, tuple):
            spec, node = node
            if isinstance(spec.kind, Entries):
                parts.pop(0)  # the entry's name
                continue
        if not isinstance(node, dict) or parts[0] not in node:
            return bool(getattr(getattr(node, "kind", None), "secret", False))
        node = node[parts.pop(0)]
    return bool(getattr(getattr(node, "kind", None), "secret", False))
