"""tools/setup.py's lanes: steps in order within a lane, lanes side by side, a failed lane named
while the others run to their end."""

from __future__ import annotations

import subprocess
import threading

from tools.common import ToolError
from tools.setup import run_lanes


def test_lanes_run_side_by_side_and_in_order_within_each():
    order: list[str] = []
    b_started = threading.Event()

    def a1() -> None:
        # Serial lanes would wait here forever: lane b has not begun.
        assert b_started.wait(timeout=10), "lane b did not start while lane a ran"
        order.append("a1")

    def b1() -> None:
        b_started.set()
        order.append("b1")

    errors = run_lanes({"a": [a1, lambda: order.append("a2")], "b": [b1, lambda: order.append("b2")]})
    assert errors == []
    assert order.index("a1") < order.index("a2") and order.index("b1") < order.index("b2")


def test_a_failed_lane_is_named_and_stops_while_the_other_finishes():
    done: list[str] = []

    def fail() -> None:
        raise ToolError("go build failed")

    def fail_cmd() -> None:
        raise subprocess.CalledProcessError(2, ["apt-get"])

    errors = run_lanes({"engine": [fail, lambda: done.append("never")], "images": [lambda: done.append("built")], "pkgs": [fail_cmd]})
    assert done == ["built"]
    assert errors[0] == "engine: go build failed"
    assert errors[1].startswith("pkgs: Command '['apt-get']' returned non-zero exit status 2"), errors
    assert len(errors) == 2
