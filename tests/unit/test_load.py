"""The e2e load generator (tests/e2e/load.py) on loopback: a slow answer is reported, not a
failure; no answer within the timeout is a failure; it refuses addresses outside the lab."""

from __future__ import annotations

import ipaddress
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from tests.e2e.load import Load


class _Slow(BaseHTTPRequestHandler):
    delay = 0.0
    served = 0

    def do_GET(self) -> None:
        type(self).served += 1
        if type(self).served == 3:
            time.sleep(type(self).delay)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server():
    _Slow.served = 0
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Slow)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{srv.server_address[1]}/"
    srv.shutdown()


def test_a_slow_answer_is_reported_and_not_a_failure(server):
    _Slow.delay = 0.6
    with Load(server, threads=1, max_requests=6, slow_after=0.4) as load:
        while load.sent < 6:
            time.sleep(0.05)
    assert load.failures == [] and load.ok == 6
    assert len(load.slow) == 1 and load.slow[0][1] >= 0.6, load.slow
    assert "1 slower than 0.4 s" in load.report()


def test_no_answer_within_the_timeout_is_a_failure(server):
    _Slow.delay = 1.0
    with Load(server, threads=1, max_requests=5, timeout=0.3) as load:
        while load.sent < 5:
            time.sleep(0.05)
    assert len(load.failures) == 1 and "timed out" in load.failures[0].reason, load.failures
    assert load.ok == 4


def test_load_goes_only_to_the_lab_or_loopback():
    with pytest.raises(ValueError, match="not 192.168.226.10"):
        Load("http://192.168.226.10/", ipaddress.ip_network("10.78.0.0/24"))
