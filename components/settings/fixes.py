"""Choosing the fix each problem prints: one that breaks no other rule.

Every candidate is applied to a copy of the raw config, which is validated again: the problem
must go and no problem that was not there before may appear. Leaves of a candidate that would
only cause new problems at themselves (a placeholder host key, an archive not built yet) are
printed as `<value>`; when no candidate works, the fix names the key without a value.
Imported only when a stack has problems.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import replace

from .core import Edit, Fix, Problem, Secret, fix_command, leaves, lookup, quote, split
from .fields import MISSING, NO_VALUE, REMOVE

TYPE_CHECKING = False  # typing is not imported at run time (import cost of every preview)
if TYPE_CHECKING:
    from typing import Any

    Collect = Callable[[Mapping[str, Any]], list[Problem]]


def _key(p: Problem) -> tuple[str, str]:
    return p.path, p.expected


def _copy(node: Any) -> Any:
    if isinstance(node, Mapping):
        return {k: _copy(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_copy(v) for v in node]
    return node


def _put(node: Any, key: str | int, value: Any) -> None:
    if isinstance(node, list) and isinstance(key, int):
        if key < len(node):
            node[key] = value
        else:
            node.append(value)
    else:
        node[key] = value


def _as_pulumi_stores(value: Any) -> Any:
    """`pulumi config set --path k 1` stores the number 1 (and true/false as booleans)."""
    if isinstance(value, str) and value in ("true", "false"):
        return value == "true"
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value):
        return int(value)
    return value


def apply(raw: Mapping[str, Any], edits: Fix) -> dict[str, Any]:
    """A copy of `raw` with the edits made, as `pulumi config set/rm --path` would make them."""
    out: dict[str, Any] = _copy(raw)
    for e in edits:
        parts = split(e.path)
        node: Any = out
        for part, nxt in zip(parts, parts[1:], strict=False):
            child = lookup(node, str(part) if isinstance(part, str) else f"[{part}]")
            if not isinstance(child, dict | list):
                child = [] if isinstance(nxt, int) else {}
                _put(node, part, child)
            node = child
        last = parts[-1]
        if e.value is REMOVE:
            if isinstance(node, list) and isinstance(last, int) and last < len(node):
                del node[last]
            elif isinstance(node, dict):
                node.pop(last, None)
            continue
        _put(node, last, Secret(str(e.value)) if e.secret and not isinstance(e.value, Secret) else _as_pulumi_stores(e.value))
    return out


def flatten(raw: Mapping[str, Any], fix: Fix) -> Fix:
    """Leaf by leaf; a structured value that replaces a written one removes it first."""
    out: list[Edit] = []
    for e in fix:
        structured = isinstance(e.value, Mapping | list | tuple)
        if structured and lookup(raw, e.path) is not MISSING and Edit(e.path, REMOVE) not in out:
            out.append(Edit(e.path, REMOVE))
        if structured:
            out += [Edit(p, v, e.secret or isinstance(v, Secret)) for p, v in leaves(e.path, e.value)]
        else:
            out.append(e)
    return tuple(out)


def _related(a: str, b: str) -> bool:
    return a == b or a.startswith((b + ".", b + "[")) or b.startswith((a + ".", a + "["))


def _moved_up(path: str, base: str, gone: int) -> str:
    n = re.match(re.escape(base) + r"\[(\d+)\]", path)
    if n is None or int(n.group(1)) <= gone:
        return path
    return f"{base}[{int(n.group(1)) - 1}]{path[n.end() :]}"


def _renumbered(keys: set[tuple[str, str]], edits: Fix) -> set[tuple[str, str]]:
    """Problem keys as they read after the edits remove list items (later items move up)."""
    for e in edits:
        m = re.fullmatch(r"(.*)\[(\d+)\]", e.path) if e.value is REMOVE else None
        if m is not None:
            keys = {(_moved_up(path, m.group(1), int(m.group(2))), expected) for path, expected in keys}
    return keys


def choose(raw: Mapping[str, Any], p: Problem, before: set[tuple[str, str]], collect: Collect) -> Fix:
    for candidate in p.candidates:
        edits = flatten(raw, candidate)
        others = _renumbered(before - {_key(p)}, edits)
        if any(e.value is NO_VALUE for e in edits):
            if any(e.value is not NO_VALUE for e in edits):
                return edits  # the rule itself leaves part of the value to the operator
            continue
        after = {_key(q) for q in collect(apply(raw, edits))}
        if _key(p) in after:
            continue
        new = after - others
        if not new:
            return edits
        values = [e for e in edits if e.value is not REMOVE]
        if all(any(_related(path, e.path) for e in values) for path, _ in new):
            partial = tuple(Edit(e.path, NO_VALUE, e.secret) if e in values and any(_related(q, e.path) for q, _ in new) else e for e in edits)
            if any(e.value not in (NO_VALUE, REMOVE) for e in partial):
                return partial
    return (Edit(p.path, NO_VALUE),)


def render(edits: Fix) -> str:
    commands = []
    for e in edits:
        if e.value is REMOVE:
            commands.append(f"pulumi config rm --path {quote(e.path)}")
        elif e.secret or isinstance(e.value, Secret):
            commands.append(fix_command(e.path, secret=True))
        elif e.value is NO_VALUE:
            commands.append(f"pulumi config set --path {quote(e.path)} <value>")
        else:
            commands.append(fix_command(e.path, e.value))
    return " && ".join(commands)


def resolve(raw: Mapping[str, Any], stack: str, problems: list[Problem], collect: Collect) -> list[Problem]:
    """The problems, each with the first fix candidate that breaks no other rule, rendered."""
    before = {_key(p) for p in problems}
    return [p if p.fix else replace(p, fix=render(choose(raw, p, before, collect))) for p in problems]
