"""The pack's rules by concern. ALL_RULES is what __main__.py registers, in this order.

The rule modules (and pulumi_policy) load on first use of ALL_RULES, so stdlib-only helpers
such as `imageref` can be imported without the policy SDK (components/settings may share them).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .common import Rule

    ALL_RULES: list[Rule]

__all__ = ["ALL_RULES", "Rule"]

# Host steps first, then Kubernetes objects from one workload to the whole stack.
_MODULES = ("hosts", "daemons", "images", "security", "container_spec", "scheduling", "objects", "services", "stack", "rbac")


def __getattr__(name: str) -> Any:
    if name == "Rule":
        from .common import Rule

        return Rule
    if name == "ALL_RULES":
        import importlib

        rules = [r for module in _MODULES for r in importlib.import_module(f"{__name__}.{module}").RULES]
        globals()["ALL_RULES"] = rules
        return rules
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
