"""How a config key is declared: its kind (check, conversion, words), default and description.

Each settings dataclass declares its fields with `setting(...)` (dataclass field metadata), so
the reader, the unknown-key check and the generated docs read one declaration per key.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import field, fields

TYPE_CHECKING = False  # typing is not imported at run time (import cost of every preview)
if TYPE_CHECKING:
    from typing import Any

    Example = Any  # a fix value, or a callable (reader, path) -> list of fix values


class _Marker:
    """A sentinel that says what it stands for in reprs."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name

    def __repr__(self) -> str:
        return self.name


MISSING: Any = _Marker("MISSING")  # a key that is not set
REQUIRED: Any = _Marker("REQUIRED")  # a field without a default
REMOVE: Any = _Marker("REMOVE")  # a fix that removes the key
NO_VALUE: Any = _Marker("NO_VALUE")  # a fix that names the key but leaves the value to the operator


def as_int(v: Any) -> int | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, int):
        return v
    if isinstance(v, str) and re.fullmatch(r"-?\d+", v.strip()):
        return int(v)
    return None


def as_bool(v: Any) -> bool | None:
    if isinstance(v, bool):
        return v
    if isinstance(v, str) and v.lower() in ("true", "false"):
        return v.lower() == "true"
    return None


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(p.capitalize() for p in rest)


class Kind:
    """A value type. `expected` says it in words ("{default}" is replaced by the field's default);
    `shape` is the type column of the docs, `yaml_type` the Pulumi.yaml type; a structural kind
    (a section, a secret) is read by its concern's parse function."""

    yaml_type = "string"
    shape = "string"
    structural = False
    secret = False  # a value (or map of values) kept only as secret config

    def __init__(self, expected: str) -> None:
        self.expected = expected

    def ok(self, v: Any) -> bool:
        return True

    def explain(self, v: Any) -> str | None:
        """None when v is acceptable, else what was expected instead."""
        try:
            good = self.ok(v)
        except (ValueError, TypeError):
            good = False
        return None if good else self.expected

    def convert(self, v: Any) -> Any:
        return v

    def near(self, v: Any) -> list[Any]:
        """Fix values close to what the operator wrote (tried before the field's examples)."""
        return []


class Text(Kind):
    """A string matching `pattern` (whole string); coerce: numbers are accepted as text."""

    def __init__(self, pattern: str | None, expected: str, shape: str = "string", coerce: bool = False) -> None:
        super().__init__(expected)
        self.pattern, self.shape, self.coerce = pattern, shape, coerce

    def ok(self, v: Any) -> bool:
        if self.coerce and isinstance(v, int) and not isinstance(v, bool):
            v = str(v)
        return isinstance(v, str) and (self.pattern is None or re.fullmatch(self.pattern, v) is not None)

    def convert(self, v: Any) -> Any:
        return str(v) if self.coerce else v


def as_number(v: Any) -> float | None:
    if isinstance(v, bool):
        return None
    if isinstance(v, (int, float)):
        return float(v)
    if isinstance(v, str) and re.fullmatch(r"-?\d+(\.\d+)?", v.strip()):
        return float(v)
    return None


class Number(Kind):
    """A number from lo to hi; fractions allowed (durations in days that a test shortens to minutes)."""

    yaml_type = "number"
    noun, word = "a number", "number"

    def __init__(self, lo: float, hi: float) -> None:
        super().__init__(f"{self.noun} from {self.text(lo)} to {self.text(hi)}")
        self.lo, self.hi = lo, hi
        self.shape = f"{self.word} {self.text(lo)}-{self.text(hi)}"

    @staticmethod
    def text(n: float) -> str:
        return f"{n:g}"

    def parse(self, v: Any) -> float | None:
        return as_number(v)

    def ok(self, v: Any) -> bool:
        n = self.parse(v)
        return n is not None and self.lo <= n <= self.hi

    def convert(self, v: Any) -> Any:
        n = self.parse(v)
        return int(n) if isinstance(n, float) and n.is_integer() else n


class Int(Number):
    """A whole number from lo to hi."""

    yaml_type = "integer"
    noun, word = "an integer", "integer"

    @staticmethod
    def text(n: float) -> str:
        return str(n)

    def parse(self, v: Any) -> int | None:  # type: ignore[override]
        return as_int(v)


class Bool(Kind):
    yaml_type = "boolean"
    shape = "true \\| false"

    def __init__(self) -> None:
        super().__init__("true or false")

    def ok(self, v: Any) -> bool:
        return as_bool(v) is not None

    def convert(self, v: Any) -> Any:
        return as_bool(v)


class Choice(Kind):
    def __init__(self, *choices: str) -> None:
        super().__init__("one of " + ", ".join(choices))
        self.choices = choices
        self.shape = " \\| ".join(choices)

    def ok(self, v: Any) -> bool:
        return v in self.choices

    def near(self, v: Any) -> list[Any]:
        if not isinstance(v, str):
            return []
        same = [c for c in self.choices if c.lower() == v.lower()]
        import difflib

        return same or difflib.get_close_matches(v, self.choices, n=1, cutoff=0.6)


class IPv4(Kind):
    shape = "IPv4 address"

    def __init__(self) -> None:
        super().__init__("an IPv4 address")

    def ok(self, v: Any) -> bool:
        import ipaddress

        return isinstance(v, str) and ipaddress.IPv4Address(v) is not None


class Cidr(Kind):
    shape = "IPv4 CIDR"

    def __init__(self) -> None:
        super().__init__("an IPv4 network in CIDR form (e.g. 10.0.0.0/16, host bits zero)")

    def ok(self, v: Any) -> bool:
        import ipaddress

        return isinstance(v, str) and "/" in v and ipaddress.IPv4Network(v, strict=True) is not None


class Names(Kind):
    """A list of strings, each matching `pattern` (None: any list)."""

    yaml_type = "array"

    def __init__(self, pattern: str | None, expected: str, shape: str = "list") -> None:
        super().__init__(expected)
        self.pattern, self.shape = pattern, shape

    def ok(self, v: Any) -> bool:
        return isinstance(v, list) and (self.pattern is None or all(isinstance(x, str) and re.fullmatch(self.pattern, x) for x in v))

    def convert(self, v: Any) -> Any:
        return tuple(v)


class FreeMap(Kind):
    """A map whose keys match `key_pattern`; its contents are not checked key by key."""

    yaml_type = "object"
    shape = "map"

    def __init__(self, key_pattern: str | None, expected: str) -> None:
        super().__init__(expected)
        self.key_pattern = key_pattern

    def ok(self, v: Any) -> bool:
        return isinstance(v, Mapping) and all(isinstance(k, str) and (self.key_pattern is None or re.fullmatch(self.key_pattern, k)) for k in v)

    def convert(self, v: Any) -> Any:
        return dict(v)


class SecretMap(FreeMap):
    """A map of key -> secret value."""

    shape = "map of secrets"
    secret = True


class SecretValue(Kind):
    """A value that must be stored as a secret (read by its concern's parse function)."""

    shape = "secret"
    structural = True
    secret = True


class Section(Kind):
    """An object whose keys are the fields of a settings dataclass."""

    yaml_type = "object"
    shape = "object"
    structural = True

    def __init__(self, cls: type) -> None:
        super().__init__("an object")
        self.cls = cls


class Items(Section):
    """A list of objects, each with the fields of a settings dataclass."""

    yaml_type = "array"
    shape = "list"

    def __init__(self, cls: type) -> None:
        super().__init__(cls)
        self.expected = "a list"

    def ok(self, v: Any) -> bool:
        return isinstance(v, list)


class Entries(Section):
    """A map of name -> object with the fields of a settings dataclass."""

    shape = "map"


class Ref:
    """A default taken from another key (e.g. secrets.<name>.namespace from eureka.namespace)."""

    __slots__ = ("path",)

    def __init__(self, path: str) -> None:
        self.path = path


class Spec:
    """Everything about one config key, written once.

    key: relative to the section, may be dotted ("requests.cpu"); "" = the attribute in camelCase.
    example: fix value(s) when the field has no default or the default does not fit.
    root: a top-level key although the attribute sits in a section (sshPrivateKey).
    custom: read by its concern's parse function, not by Reader.section().
    (A plain class: 70 of them are built at import, and a dataclass costs import time.)"""

    __slots__ = ("kind", "default", "doc", "key", "example", "root", "custom")

    def __init__(
        self,
        kind: Kind,
        default: Any = REQUIRED,
        doc: str = "",
        key: str = "",
        example: Example = REQUIRED,
        root: bool = False,
        custom: bool = False,
    ) -> None:
        self.kind, self.default, self.doc, self.key, self.example, self.root, self.custom = kind, default, doc, key, example, root, custom

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    @property
    def default_elsewhere(self) -> bool:
        return isinstance(self.default, Ref)

    def fresh_default(self) -> Any:
        d = self.default
        return dict(d) if isinstance(d, dict) else d


def described(spec: Spec) -> Any:
    """A dataclass field described by `spec` (no dataclass default: construction is by keyword)."""
    return field(metadata={"spec": spec})


def setting(kind: Kind, default: Any = REQUIRED, doc: str = "", **more: Any) -> Any:
    """A dataclass field described by a new Spec."""
    return described(Spec(kind, default, doc, **more))


def specs(cls: type) -> list[tuple[str, str, Spec]]:
    """(attribute, config key, spec) of each described field of a settings dataclass."""
    out = []
    for f in fields(cls):
        spec = f.metadata.get("spec")
        if spec is not None:
            out.append((f.name, spec.key or camel(f.name), spec))
    return out


def spec_of(cls: type, attr: str) -> Spec:
    return next(s for a, _, s in specs(cls) if a == attr)
