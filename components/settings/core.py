"""The hand-written config reader every settings module uses, and what it reports.

Fields are declared in fields.py terms (`setting(...)`). The reader never raises: it
collects `Problem`s (key path, expected, found, fix candidates) so every problem of a stack is reported at once. Fix candidates are checked against all other
rules before one is printed (fixes.py, imported only when there are problems). No validation
library: it would add import time to every preview.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from .fields import MISSING, NO_VALUE, REMOVE, REQUIRED, Spec, as_bool, as_int, camel, specs

TYPE_CHECKING = False  # typing is not imported at run time (import cost of every preview)
if TYPE_CHECKING:
    from typing import Any

__all__ = ["MISSING", "NO_VALUE", "REMOVE", "REQUIRED", "as_bool", "as_int", "camel"]

PROJECT = "vm-platform"


class Secret:
    """A secret config value. Never printed; turned into a secret Output where it is used."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def output(self) -> Any:
        import pulumi

        return pulumi.Output.secret(self._value)

    def __repr__(self) -> str:
        return "Secret(****)"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


class Described(str):
    """A found-value that is a description (e.g. "a plaintext value"), shown without quotes."""


def show(value: Any) -> str:
    if isinstance(value, Described):
        return str(value)
    if value is MISSING:
        return "nothing (the key is not set)"
    if isinstance(value, Secret):
        return "a secret value"
    if isinstance(value, str):
        return f'"{value}"'
    import json

    return json.dumps(value, default=lambda v: "****" if isinstance(v, Secret) else repr(v))


class Edit:
    """One `pulumi config` change: set `path` to `value` (REMOVE: remove it; NO_VALUE: the
    operator supplies it; secret: pulumi prompts, so the value never reaches shell history).
    A plain class: a dataclass would cost import time for an object only errors use."""

    __slots__ = ("path", "value", "secret")

    def __init__(self, path: str, value: Any = NO_VALUE, secret: bool = False) -> None:
        self.path, self.value, self.secret = path, value, secret

    def _key(self) -> tuple[str, str, bool]:
        return self.path, repr(self.value), self.secret

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Edit) and other._key() == self._key()

    def __hash__(self) -> int:
        return hash(self._key())

    def __repr__(self) -> str:
        return f"Edit({self.path!r}, {self.value!r}{', secret=True' if self.secret else ''})"


Fix = tuple[Edit, ...]


@dataclass(frozen=True)
class Problem:
    path: str
    expected: str
    found: Any
    fix: str
    # Fixes to try, best first; fixes.resolve() keeps the first that breaks no other rule.
    candidates: tuple[Fix, ...] = field(default=(), compare=False, repr=False)

    def __str__(self) -> str:
        return f"{self.path}: expected {self.expected}, found {show(self.found)}. Fix: {self.fix}"


class ConfigError(Exception):
    """All configuration problems of a stack, reported at once."""

    def __init__(self, stack: str, problems: list[Problem]) -> None:
        self.stack = stack
        self.problems = problems
        lines = [f"stack '{stack}' has {len(problems)} configuration problem(s):"]
        lines += [f"  - {p}" for p in problems]
        super().__init__("\n".join(lines))


# ---------------------------------------------------------------------------------------------
# Paths and `pulumi config` commands


def split(path: str) -> list[str | int]:
    """`a.b[2].c` -> ["a", "b", 2, "c"] (the `pulumi config set --path` syntax)."""
    return [int(t[1:-1]) if t.startswith("[") else t for t in re.findall(r"[^.\[\]]+|\[\d+\]", path)]


def join(base: str, key: str) -> str:
    return f"{base}.{key}" if base else key


def leaves(path: str, value: Any) -> list[tuple[str, Any]]:
    """(path, scalar) pairs for a structured value, in `pulumi config set --path` syntax."""
    if isinstance(value, Mapping):
        return [leaf for k, v in value.items() for leaf in leaves(f"{path}.{k}", v)]
    if isinstance(value, list | tuple):
        return [leaf for i, v in enumerate(value) for leaf in leaves(f"{path}[{i}]", v)]
    return [(path, value)]


def quote(text: str) -> str:
    return text if re.fullmatch(r"[A-Za-z0-9._/:%@+=-]+", text) else "'" + text.replace("'", "'\\''") + "'"


def _nested(path: str) -> bool:
    return "." in path or "[" in path


def fix_command(path: str, value: Any = None, secret: bool = False) -> str:
    """The `pulumi config` command(s) that set `path` to `value` (structured values leaf by leaf).

    value None (or secret): pulumi prompts for it, so a secret never reaches shell history."""
    if value is None or secret or isinstance(value, Secret):
        return f"pulumi config set {'--path ' if _nested(path) else ''}--secret {path}"
    if value is REMOVE or (isinstance(value, list | tuple | Mapping) and not value):
        return f"pulumi config rm --path {quote(path)}"
    commands = []
    for leaf_path, leaf in leaves(path, value):
        if isinstance(leaf, Secret):
            commands.append(fix_command(leaf_path, secret=True))
        elif leaf is NO_VALUE:
            commands.append(f"pulumi config set --path {quote(leaf_path)} <value>")
        else:
            import json

            rendered = leaf if isinstance(leaf, str) else json.dumps(leaf)
            commands.append(f"pulumi config set --path {quote(leaf_path)} {quote(rendered)}")
    return " && ".join(commands)


# ---------------------------------------------------------------------------------------------
# Values and the reader


def lookup(raw: Any, path: str) -> Any:
    """The value at a `pulumi config --path` style path (a.b[0].c) in raw config, or MISSING."""
    node = raw
    for part in split(path):
        if isinstance(part, int):
            if not isinstance(node, list) or part >= len(node):
                return MISSING
        elif not isinstance(node, Mapping) or part not in node:
            return MISSING
        node = node[part]
    return node


class Reader:
    """Reads typed values from the raw config, collecting problems instead of raising.

    check_files: whether paths on this machine (archives, binaries) must exist."""

    def __init__(self, raw: Mapping[str, Any], stack: str, check_files: bool = True) -> None:
        self.raw = raw
        self.stack = stack
        self.check_files = check_files
        self.problems: list[Problem] = []
        # Keys already reported under another name (a misspelt key, a section of the wrong
        # type): not reported again as "not set".
        self.claimed: set[str] = set()
        self.unknown: dict[str, list[str]] = {}  # parent path -> unknown keys written there

    def get(self, path: str) -> Any:
        return lookup(self.raw, path)

    def written(self, path: str) -> bool:
        return self.get(path) is not MISSING

    def pick(self, *paths: str) -> str:
        """The first of `paths` the operator wrote (the one to blame in a rule between them)."""
        return next((p for p in paths if self.written(p)), paths[0])

    def blamed(self, path: str) -> bool:
        return any(p.path == path for p in self.problems)

    def is_claimed(self, path: str) -> bool:
        return any(path == c or path.startswith((c + ".", c + "[")) for c in self.claimed)

    def problem(self, path: str, expected: str, found: Any, *values: Any, fixes: Iterable[Fix] = ()) -> None:
        """Record a problem; `values` are fix values for `path` and `fixes` other edits, best first."""
        candidates: list[Fix] = []
        for fix in [(Edit(path, v),) for v in values] + list(fixes):
            if fix not in candidates:
                candidates.append(fix)
        self.problems.append(Problem(path, expected, found, "", tuple(candidates)))

    def secret_problem(self, path: str, expected: str, found: Any, fix: str = "") -> None:
        """A secret is missing or stored in plaintext: the fix is a prompt, never a value."""
        if isinstance(found, str) and not isinstance(found, Described):
            found = Described("a plaintext value (it must be stored as a secret)")
        self.problems.append(Problem(path, expected, found, fix or fix_command(path, secret=True)))

    def nothing_at(self, path: str) -> Any:
        """MISSING, or a description naming the unknown keys written beside it (a misspelling?)."""
        parent = path.rsplit(".", 1)[0] if "." in path else ""
        beside = self.unknown.get(parent, [])
        if not beside:
            return MISSING
        return Described(f"nothing (the key is not set; {', '.join(beside)} is set, which the platform does not read)")

    def examples(self, spec: Spec, path: str) -> list[Any]:
        ex = spec.example
        values = ex(self, path) if callable(ex) else ([] if ex is REQUIRED else [ex])
        if not spec.required and not spec.default_elsewhere:
            values.append(spec.default)
        return values

    def read(self, path: str, spec: Spec) -> Any:
        """The converted value at `path`, its default when not set, or None after a problem."""
        v = self.get(path)
        if v is MISSING:
            if not spec.required:
                return spec.fresh_default()
            if not self.is_claimed(path):
                self.problem(path, spec.kind.expected, self.nothing_at(path), *self.examples(spec, path))
            return None
        why = spec.kind.explain(v)
        if why is not None:
            self.problem(path, why.replace("{default}", str(spec.default)), v, *spec.kind.near(v), *self.examples(spec, path))
            return None
        return spec.kind.convert(v)

    def section(self, cls: type, base: str) -> dict[str, Any]:
        """attribute -> value for the plain fields of `cls` under `base` (others: the parse function's)."""
        out: dict[str, Any] = {}
        for attr, key, spec in specs(cls):
            if not (spec.custom or spec.root or spec.kind.structural):
                out[attr] = self.read(join(base, key), spec)
        return out

    def count(self, path: str, spec: Spec) -> int:
        """How many items the list at `path` has (0 after a problem)."""
        v = self.read(path, spec)
        return len(v) if isinstance(v, list | tuple) else 0
