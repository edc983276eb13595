"""Docs and defaults rendered from the field declarations, so they are written once.

    ./venv/bin/python -m components.settings.reference --write   # rewrite Pulumi.yaml's config block and README's table
    ./venv/bin/python -m components.settings.reference           # exit 1 (and say so) when either is out of date

`default_config()` and `restated_defaults()` let a test hold a stack file (the lab's) against
the defaults. Not imported by the program.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

from . import known_keys, parse_settings
from .fields import REQUIRED, Entries, Items, Ref, SecretValue, Spec
from .keys import optional_tree

TYPE_CHECKING = False  # typing is not imported at run time (import cost of every preview)
if TYPE_CHECKING:
    from typing import Any

ROOT = Path(__file__).resolve().parents[2]
REGENERATE = "./venv/bin/python -m components.settings.reference --write"
README_HEADING = "## Config reference (namespace `vm-platform`)"
PULUMI_YAML_MARKER = "# The config block below is generated from components/settings/"

_NodeRow = tuple[str, Spec]


def _walk(t: Mapping[str, Any], base: str = "") -> Iterator[_NodeRow]:
    """(key path, spec) of every documented key; list items as `[]`, map entries as `<name>`."""
    for key, node in t.items():
        if key == "__spec__":
            continue
        path = f"{base}.{key}" if base else key
        if isinstance(node, dict):
            yield from _walk(node, path)
        elif isinstance(node, tuple):
            spec, sub = node
            yield path, spec
            yield from _walk(sub, f"{path}[]" if isinstance(spec.kind, Items) else f"{path}.<name>")
        else:
            yield path, node


def _default_text(spec: Spec) -> str:
    d = spec.default
    if d is REQUIRED:
        return "required"
    if isinstance(d, Ref):
        return f"= {d.path}"
    if d is None:
        return ""
    if isinstance(d, tuple):
        d = list(d)
    return "`" + (d if isinstance(d, str) and d else json.dumps(d)).replace("|", "\\|") + "`"


def render_readme_section() -> str:
    """The README's config reference: one row per key."""
    lines = [
        README_HEADING,
        "",
        "Generated from the field declarations in `components/settings/` (`" + REGENERATE + "`).",
        "A key not listed here is refused (with a did-you-mean), so a typo never goes unnoticed.",
        "",
        "| key | type | default | meaning |",
        "|---|---|---|---|",
    ]
    for path, spec in _walk(known_keys()):
        doc = spec.doc.replace("|", "\\|")
        lines.append(f"| `{path}` | {spec.kind.shape} | {_default_text(spec)} | {doc} |")
    return "\n".join(lines) + "\n"


def _plain(v: Any) -> str:
    """A default as a person writes it in a stack file (no JSON quoting)."""
    if isinstance(v, str):
        return v or '""'
    if isinstance(v, list | tuple):
        return "[" + ", ".join(_plain(x) for x in v) + "]"
    return json.dumps(v)


def _summary(t: Mapping[str, Any]) -> str:
    parts = []
    for path, spec in _walk(t):
        d = spec.default
        parts.append(path if d is REQUIRED or d is None or isinstance(d, Ref) else f"{path} ({_plain(d)})")
    return ", ".join(parts)


def render_pulumi_config() -> str:
    """Pulumi.yaml's `config:` block: each top-level key's type, default and description."""
    lines = [
        PULUMI_YAML_MARKER + " (" + REGENERATE + ").",
        "# registryPassword (secret, only when registry.auth is true) is optional and so not declared",
        "# here: a declared key without a default is required, and a secret key cannot have a default.",
        "config:",
    ]
    for key, node in known_keys().items():
        if isinstance(node, dict):
            spec, yaml_type, default = node["__spec__"], "object", {} if optional_tree(node) else REQUIRED
            description = f"{spec.doc}: {_summary(node)}."
        elif isinstance(node, tuple):
            spec, sub = node
            yaml_type, default = spec.kind.yaml_type, spec.default
            what = "each" if isinstance(spec.kind, Items) else "each <name>"
            description = f"{spec.doc}; {what}: {_summary(sub)}."
        else:
            spec, yaml_type, default = node, node.kind.yaml_type, node.default
            shape = spec.kind.shape
            description = spec.doc + ("" if shape in ("string", "secret", "map") else f" ({shape})") + "."
        if isinstance(spec.kind, SecretValue) and not spec.required:
            continue
        lines += [f"  {key}:", f"    type: {yaml_type}"]
        if isinstance(spec.kind, SecretValue):
            lines.append("    secret: true")
        if default is not REQUIRED:
            lines.append(f"    default: {json.dumps(list(default) if isinstance(default, tuple) else default)}")
        if isinstance(spec.kind, Items) and not isinstance(spec.kind, Entries):
            lines += ["    items:", "      type: object"]
        elif yaml_type == "array":
            lines += ["    items:", "      type: string"]
        lines.append(f"    description: {json.dumps(description[0].upper() + description[1:])}")
    return "\n".join(lines) + "\n"


def _split_pulumi_yaml(text: str) -> tuple[str, str]:
    """(everything before the config block, the config block); the block runs to the end."""
    for marker in (PULUMI_YAML_MARKER, "# registryPassword", "config:"):
        i = text.find("\n" + marker)
        if i >= 0:
            return text[: i + 1], text[i + 1 :]
    return text if text.endswith("\n") else text + "\n", ""


def _split_readme(text: str) -> tuple[str, str, str]:
    start = text.index(README_HEADING)
    end = text.find("\n## ", start + len(README_HEADING))
    end = len(text) if end < 0 else end + 1
    return text[:start], text[start:end], text[end:]


def current_pulumi_config(path: Path = ROOT / "Pulumi.yaml") -> str:
    return _split_pulumi_yaml(path.read_text())[1]


def current_readme_section(path: Path = ROOT / "README.md") -> str:
    section = _split_readme(path.read_text())[1]
    return section.rstrip("\n") + "\n"


def write(root: Path = ROOT) -> list[Path]:
    """Rewrite the generated parts; returns the files that changed."""
    changed = []
    pulumi_yaml = root / "Pulumi.yaml"
    head, block = _split_pulumi_yaml(pulumi_yaml.read_text())
    if block != render_pulumi_config():
        pulumi_yaml.write_text(head + render_pulumi_config())
        changed.append(pulumi_yaml)
    readme = root / "README.md"
    before, section, after = _split_readme(readme.read_text())
    wanted = render_readme_section() + ("\n" if after else "")
    if section != wanted:
        readme.write_text(before + wanted + after)
        changed.append(readme)
    return changed


# ---------------------------------------------------------------------------------------------
# Stack files against the defaults


def _put(tree: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, last = dotted.split(".")
    for p in parents:
        tree = tree.setdefault(p, {})
    tree[last] = value


def default_config() -> dict[str, Any]:
    """Every key that has a default, with it, as a stack file would write it (lists, not tuples)."""
    out: dict[str, Any] = {}
    for path, spec in _walk(known_keys()):
        if "[]" in path or "<name>" in path or spec.required or spec.default is None or isinstance(spec.default, Ref):
            continue
        _put(out, path, list(spec.default) if isinstance(spec.default, tuple) else spec.default)
    return out


def restated_defaults(raw: Mapping[str, Any]) -> dict[str, Any]:
    """key path -> value for each key `raw` sets to exactly its default (it need not be written)."""
    out: dict[str, Any] = {}
    for path, spec in _walk(known_keys()):
        if "[]" in path or "<name>" in path or spec.required or spec.default is None or isinstance(spec.default, Ref):
            continue
        node: Any = raw
        for part in path.split("."):
            node = node.get(part, REQUIRED) if isinstance(node, Mapping) else REQUIRED
        default = list(spec.default) if isinstance(spec.default, tuple) else spec.default
        if node is not REQUIRED and type(node) is type(default) and node == default:
            out[path] = node
    return out


def check_stack_config(raw: Mapping[str, Any], stack: str) -> list[str]:
    """Problems of a stack file (unknown keys included; files on this machine not required),
    then one line per key that restates its default. Empty when the file is clean."""
    from . import ConfigError

    try:
        parse_settings(raw, stack, check_files=False)
        problems: list[str] = []
    except ConfigError as e:
        problems = [str(p) for p in e.problems]
    return problems + [f"{path}: restates the default {json.dumps(v)} (leave it out)" for path, v in restated_defaults(raw).items()]


def main(argv: list[str]) -> int:
    if "--write" in argv:
        for path in write():
            print(f"wrote {path.relative_to(ROOT)}")
        return 0
    stale = [
        name
        for name, now, wanted in (
            ("Pulumi.yaml", current_pulumi_config(), render_pulumi_config()),
            ("README.md", current_readme_section(), render_readme_section()),
        )
        if now != wanted
    ]
    for name in stale:
        print(f"{name} is out of date with components/settings: run {REGENERATE}")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
