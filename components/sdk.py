"""How the program runs inside the Pulumi Python SDK.

The SDK sends four debug messages per resource to the engine ("registering resource",
"registration prepared", ...), each a blocking gRPC call: about 300 round trips and 0.3 s of a
dev preview on a 2-core machine, a quarter of the program's own time (measured with cProfile;
upstream: pulumi/pulumi#7292, #17481). The engine shows them only with `pulumi --debug`. So
they are dropped, unless VMP_SDK_DEBUG=1 asks for them (set it together with `--debug`).
Info, warning and error messages are untouched.
"""

from __future__ import annotations

import os

import pulumi.log


def drop_sdk_debug_messages() -> None:
    if os.environ.get("VMP_SDK_DEBUG") == "1":
        return

    def debug(msg: str, resource: object = None, stream_id: int | None = None, ephemeral: bool | None = None) -> None:
        return None

    pulumi.log.debug = debug  # type: ignore[assignment]
