"""A private PostgreSQL for tests: Debian's postgresql 15 binaries, a throwaway cluster in a temp
directory, listening on loopback only, run as `nobody` when the tests run as root (PostgreSQL
refuses root). Stopped and removed afterwards; a system-wide cluster is never touched.

The password is random per cluster and set over the cluster's private Unix socket (a 0700
directory; local connections trust only that socket) with the SQL on psql's stdin; TCP on
loopback needs it (scram-sha-256). It travels in the environment (PGPASSWORD,
PULUMI_BACKEND_URL), never on a command line or in a file.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

PG_BIN = Path(os.environ.get("VMP_PG_BIN", "/usr/lib/postgresql/15/bin"))
USER = "pulumi"
DATABASE = "vmp_state"


@dataclass(frozen=True)
class Postgres:
    port: int
    password: str = field(repr=False)
    started_s: float

    @property
    def url(self) -> str:
        """The DIY backend URL (PULUMI_BACKEND_URL): credentials inside, so only ever in env."""
        return f"postgres://{USER}:{self.password}@127.0.0.1:{self.port}/{DATABASE}?sslmode=disable"

    def psql(self, sql: str) -> str:
        env = {**os.environ, "PGPASSWORD": self.password}
        cmd = [str(PG_BIN / "psql"), "-h", "127.0.0.1", "-p", str(self.port), "-U", USER, "-d", DATABASE, "-At", "-v", "ON_ERROR_STOP=1"]
        return subprocess.run(cmd, input=sql, env=env, capture_output=True, text=True, check=True, timeout=30).stdout


def available() -> str:
    """'' when a private cluster can be started here, else why not."""
    missing = [b for b in ("initdb", "pg_ctl", "psql", "createdb") if not (PG_BIN / b).exists()]
    return f"PostgreSQL binaries missing in {PG_BIN}: {', '.join(missing)} (Debian package postgresql)" if missing else ""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def private_postgres(timeout: float = 60) -> Iterator[Postgres]:
    base = Path(tempfile.mkdtemp(prefix="vmp-pg-"))
    data, sock, log = base / "data", base / "sock", base / "log"
    as_user: list[str] = []
    if os.geteuid() == 0:
        as_user = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "--"]
        base.chmod(0o755)
        for d in (data, sock):
            d.mkdir(mode=0o700)
            shutil.chown(d, "nobody", "nogroup")
        log.touch()
        shutil.chown(log, "nobody", "nogroup")
    password = secrets.token_urlsafe(24)
    port = _free_port()
    t0 = time.monotonic()
    started = False
    try:
        subprocess.run(
            [*as_user, str(PG_BIN / "initdb"), "-D", str(data), "-U", USER, "--auth-local=trust", "--auth-host=scram-sha-256", "--no-sync", "-E", "UTF8"],
            capture_output=True, text=True, check=True, timeout=timeout, cwd=base,
        )  # fmt: skip
        opts = f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories={sock} -c fsync=off -c max_connections=40"
        subprocess.run(
            [*as_user, str(PG_BIN / "pg_ctl"), "-D", str(data), "-l", str(log), "-o", opts, "-w", "-t", str(int(timeout)), "start"],
            capture_output=True, text=True, check=True, timeout=timeout + 10, cwd=base,
        )  # fmt: skip
        started = True
        subprocess.run(
            [*as_user, str(PG_BIN / "psql"), "-h", str(sock), "-p", str(port), "-U", USER, "-d", "postgres", "-q", "-v", "ON_ERROR_STOP=1"],
            input=f"ALTER ROLE {USER} PASSWORD '{password}';\n", capture_output=True, text=True, check=True, timeout=30, cwd=base,
        )  # fmt: skip
        env = {**os.environ, "PGPASSWORD": password}
        subprocess.run(
            [str(PG_BIN / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", USER, DATABASE],
            env=env,
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        )
        yield Postgres(port, password, time.monotonic() - t0)
    except subprocess.CalledProcessError as e:
        tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
        raise RuntimeError(f"private PostgreSQL failed: {' '.join(e.cmd[:3])}...: {e.stderr}\n{tail}") from None
    finally:
        if started:
            subprocess.run([*as_user, str(PG_BIN / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"], capture_output=True, timeout=60, cwd=base)
        shutil.rmtree(base, ignore_errors=True)


# What the engine says when a second operation finds the stack locked.
LOCKED = "the stack is currently locked by 1 lock(s)"


def serve(label: str) -> Iterator[Postgres]:
    """The body of a test module's PostgreSQL fixture: skips when the binaries are missing."""
    import pytest

    why = available()
    if why:
        pytest.skip(why)
    with private_postgres() as server:
        print(f"\n[{label}] private PostgreSQL on 127.0.0.1:{server.port}: started in {server.started_s:.2f} s")
        yield server
