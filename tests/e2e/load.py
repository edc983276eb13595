"""A bounded load generator for the e2e suite: GET requests to one URL (a LoadBalancer address
of the lab, never anything else) from a few threads, until stopped or a request/time bound is
reached, counting every failure with its time and reason, and every slow answer.

A failure is an error (refused, reset, no route, an HTTP error) or no answer within `timeout`
(10 s: a client's usual patience; a lost SYN is retried after 1 s and 3 s, so a 3 s limit
counted one dropped packet on the lab's shared two cores as an outage). Answers slower than
`slow_after` are not failures; the report lists them (start, seconds).

    with Load("http://10.78.0.201/", lab.instance.network, max_seconds=300, max_requests=20000) as load:
        ...  # the day-2 change
    assert load.failures == [], load.report()
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import subprocess
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from urllib.parse import urlparse

LOOPBACK = ipaddress.ip_network("127.0.0.0/8")


def neighbor(ip: str) -> tuple[str, str]:
    """This machine's ARP entry for an address on a lab bridge: (MAC, state), ("", "") if none."""
    try:
        out = subprocess.run(["ip", "-j", "neigh", "show", "to", ip], capture_output=True, text=True, timeout=10)
        entries = json.loads(out.stdout or "[]") if out.returncode == 0 else []
    except (OSError, subprocess.TimeoutExpired, ValueError):
        return ("", "")
    return (entries[0].get("lladdr", ""), ",".join(entries[0].get("state", []))) if entries else ("", "")


@dataclass
class Failure:
    at: float  # seconds since the start
    reason: str


@dataclass
class Load:
    url: str
    network: ipaddress.IPv4Network = LOOPBACK
    """The lab instance's network: the only place (besides loopback) load may go."""
    threads: int = 4
    max_seconds: float = 600
    max_requests: int = 50_000
    timeout: float = 10.0
    slow_after: float = 1.0
    pause: float = 0.01
    ok: int = 0
    failures: list[Failure] = field(default_factory=list)
    slow: list[tuple[float, float]] = field(default_factory=list)  # (start, seconds) of answers over slow_after
    bodies: dict[str, int] = field(default_factory=dict)  # distinct answers (e.g. versions) and their counts
    _stop: threading.Event = field(default_factory=threading.Event)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _workers: list[threading.Thread] = field(default_factory=list)
    _t0: float = 0.0

    def __post_init__(self) -> None:
        host = urlparse(self.url).hostname or ""
        if not any(ipaddress.ip_address(host) in n for n in (self.network, LOOPBACK)):
            raise ValueError(f"load goes only to the lab's or loopback addresses, not {host}")

    @property
    def sent(self) -> int:
        return self.ok + len(self.failures)

    def _run(self) -> None:
        while not self._stop.is_set():
            if self.sent >= self.max_requests or time.monotonic() - self._t0 > self.max_seconds:
                return
            t = time.monotonic() - self._t0
            try:
                with urllib.request.urlopen(self.url, timeout=self.timeout) as r:
                    body = r.read(4096).decode(errors="replace")
                took = time.monotonic() - self._t0 - t
                with self._lock:
                    self.ok += 1
                    if took > self.slow_after:
                        self.slow.append((round(t, 2), round(took, 2)))
                    key = body[:200]
                    self.bodies[key] = self.bodies.get(key, 0) + 1
            except (urllib.error.URLError, OSError, ValueError) as e:
                reason = f"{type(e).__name__}: {e}"[:200]
                if "No route to host" in reason:  # which MAC this machine held for the address, and in what state
                    mac, state = neighbor(urlparse(self.url).hostname or "")
                    reason += f" [ARP entry: {mac or 'none'} {state}]"
                with self._lock:
                    self.failures.append(Failure(round(t, 2), reason))
            time.sleep(self.pause)

    def __enter__(self) -> Load:
        self._t0 = time.monotonic()
        self._workers = [threading.Thread(target=self._run, daemon=True) for _ in range(self.threads)]
        for w in self._workers:
            w.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for w in self._workers:
            w.join(timeout=self.timeout + 2)

    def bursts(self, gap: float = 1.0) -> list[tuple[float, float, int]]:
        """The failures grouped into bursts (no two failures of a burst further apart than
        `gap` seconds): (first, last, count) per burst."""
        out: list[tuple[float, float, int]] = []
        for f in sorted(self.failures, key=lambda f: f.at):
            if out and f.at - out[-1][1] <= gap:
                first, _, n = out[-1]
                out[-1] = (first, f.at, n + 1)
            else:
                out.append((f.at, f.at, 1))
        return out

    def report(self) -> str:
        window = f"{self.failures[0].at}-{self.failures[-1].at} s" if self.failures else "none"
        reasons = sorted({f.reason for f in self.failures})[:5]
        slow = f", {len(self.slow)} slower than {self.slow_after:g} s {sorted(self.slow, key=lambda s: -s[1])[:5]}" if self.slow else ""
        return f"{self.sent} requests, {len(self.failures)} failed (window {window}) {reasons}{slow}"


@contextlib.contextmanager
def loads(urls: Mapping[str, str], network: ipaddress.IPv4Network, **bounds: float) -> Iterator[dict[str, Load]]:
    """One Load per URL (name -> URL), all running until the block ends, whatever it raises."""
    with contextlib.ExitStack() as running:
        yield {name: running.enter_context(Load(url, network, **bounds)) for name, url in urls.items()}  # type: ignore[arg-type]
