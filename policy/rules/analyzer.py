"""One decoded copy of a resource's properties for all the pack's policies.

pulumi_policy 1.21's analyzer decodes a resource's properties (`MessageToDict`,
`deserialize_properties`) and wraps them in its unknown-checking proxy once per policy: with the
pack's 40-odd resource rules every resource is decoded 40-odd times (the host steps carry their
scripts on stdin), and every stack rule decodes the whole stack again. That, not the rules, was
most of the pack's cost in a preview. `share_decoded_properties()` memoizes the three steps by
the identity of their input, which the analyzer hands unchanged to each policy of a request (the
protobuf messages keep their Python wrappers; the memo holds them, so an identity is never
reused while remembered). The validators only read their props, so one proxy serves them all.

It is applied only to the SDK version it was written against (pulumi_policy 1.21.0): another
version decodes as it likes until this is checked against it.
"""

from __future__ import annotations

import importlib.metadata
import types
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

__all__ = ["SDK_VERSION", "ByIdentity", "share_decoded_properties"]

SDK_VERSION = "1.21.0"


class ByIdentity:
    """`fn(obj, *args)` memoized by the identity of `obj` (and the other arguments), keeping the
    last `size` inputs alive."""

    def __init__(self, fn: Callable[..., Any], size: int = 4096) -> None:
        self.fn = fn
        self.size = size
        self.memo: OrderedDict[tuple[int, tuple[Any, ...]], tuple[Any, Any]] = OrderedDict()
        self.calls = 0  # how often fn ran (for tests)

    def __call__(self, obj: Any, *args: Any) -> Any:
        key = (id(obj), args)
        hit = self.memo.get(key)
        if hit is not None and hit[0] is obj:
            self.memo.move_to_end(key)
            return hit[1]
        self.calls += 1
        value = self.fn(obj, *args)
        self.memo[key] = (obj, value)
        if len(self.memo) > self.size:
            self.memo.popitem(last=False)
        return value


def share_decoded_properties() -> bool:
    """Installs the memos in pulumi_policy's analyzer; False (and nothing changed) for an SDK
    version other than SDK_VERSION."""
    from pulumi_policy import policy as sdk

    if importlib.metadata.version("pulumi_policy") != SDK_VERSION:
        return False
    if isinstance(sdk.deserialize_properties, ByIdentity):
        return True
    json_format = sdk.json_format
    shim = types.SimpleNamespace(**{k: getattr(json_format, k) for k in dir(json_format) if not k.startswith("__")})
    shim.MessageToDict = ByIdentity(json_format.MessageToDict)
    sdk.json_format = shim  # type: ignore[assignment]
    sdk.deserialize_properties = ByIdentity(sdk.deserialize_properties)  # type: ignore[assignment]
    sdk.unknown_checking_proxy = ByIdentity(sdk.unknown_checking_proxy)  # type: ignore[assignment]
    return True
