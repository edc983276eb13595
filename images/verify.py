"""Checks the built images the way a node would use them, without a container engine: skopeo
reads both archives, and the Eureka image runs read-only as uid 10001 in private namespaces
until /actuator/health is UP. Not an input of the image cache (build.py): changing a check
rebuilds nothing.

    python3 -m tools.images --verify
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from tools.common import ToolError, cache_dir, progress

from . import oci
from .build import output

# Runs inside `unshare --mount --net --pid --fork`: only a loopback interface exists, so nothing
# the app does can leave the machine. The rootfs is bind-mounted read-only, /tmp is a tmpfs, and
# the JVM runs as 10001:10001 with no capabilities (a uid change from root drops them).
_SANDBOX = r"""
set -eu
R="$1"; HOSTS="$2"; LOG="$3"; PORT=8761
ip link set lo up
mount --make-rprivate /
mount --bind "$R" "$R"
mount -o remount,bind,ro "$R"
mount -t tmpfs -o mode=1777,nosuid,nodev,size=256m tmpfs "$R/tmp"
mount -t proc proc "$R/proc"
mount --rbind /dev "$R/dev"
mount --bind "$HOSTS" "$R/etc/hosts"
T0=$(date +%s.%N)
python3 - "$R" >"$LOG" 2>&1 <<'PY' &
import os, sys
r = sys.argv[1]
os.chroot(r); os.chdir("/app")
os.setgroups([]); os.setgid(10001); os.setuid(10001)
env = {"PATH": "/opt/java/bin:/usr/bin:/bin", "JAVA_TOOL_OPTIONS": "-Djava.io.tmpdir=/tmp", "HOSTNAME": "eureka-0"}
os.execve("/opt/java/bin/java", ["/opt/java/bin/java", "-jar", "/app/app.jar", "--server.address=127.0.0.1"], env)
PY
PID=$!
echo "java pid $PID"
ok=""
for i in $(seq 1 600); do
  if ! kill -0 "$PID" 2>/dev/null; then echo "java exited early"; break; fi
  if curl -fsS "http://127.0.0.1:$PORT/actuator/health" 2>/dev/null | grep -q '"status":"UP"'; then ok=1; break; fi
  sleep 0.2
done
T1=$(date +%s.%N)
rc=1
if [ -n "$ok" ]; then
  echo "STARTUP_SECONDS $(python3 -c "print(round($T1 - $T0, 2))")"
  echo "HEALTH $(curl -fsS http://127.0.0.1:$PORT/actuator/health)"
  echo "LIVENESS $(curl -fsS http://127.0.0.1:$PORT/actuator/health/liveness)"
  echo "READINESS $(curl -fsS http://127.0.0.1:$PORT/actuator/health/readiness)"
  echo "APPS $(curl -fsS -H 'Accept: application/json' http://127.0.0.1:$PORT/eureka/apps)"
  echo "TMP $(ls "$R/proc/$PID/root/tmp" 2>/dev/null | tr '\n' ' ')"
  rc=0
fi
kill -TERM "$PID" 2>/dev/null || true
wait "$PID" 2>/dev/null || true
exit $rc
"""


def verify(pause: Path, eureka: Path) -> None:
    if not shutil.which("skopeo"):
        raise ToolError("skopeo is needed for --verify (Debian: apt-get install skopeo)")
    for a in (pause, eureka):
        info = json.loads(output(["skopeo", "inspect", f"oci-archive:{a}"]))
        cfg = json.loads(output(["skopeo", "inspect", "--config", f"oci-archive:{a}"]))
        progress(f"skopeo inspect {a.name}: {info['Digest']} {info['Os']}/{info['Architecture']} layers={len(info['Layers'])} "
                 f"entrypoint={cfg['config'].get('Entrypoint')} user={cfg['config'].get('User')}")  # fmt: skip
    if os.geteuid() != 0 or not shutil.which("unshare"):
        raise ToolError("the run check needs root and unshare(1)")
    with tempfile.TemporaryDirectory(prefix="eureka-rootfs-") as td:
        rootfs = Path(td) / "rootfs"
        rootfs.mkdir()
        oci.extract_layers(eureka, rootfs)
        for d in ("proc", "dev"):  # mount points a runtime would make
            (rootfs / d).mkdir(exist_ok=True)
        (rootfs / "etc" / "hosts").touch()
        hosts = Path(td) / "hosts"  # what the kubelet would mount
        hosts.write_text("127.0.0.1 localhost\n127.0.0.1 eureka-0\n::1 localhost\n")
        log = Path(td) / "java.log"
        progress("eureka-server: starting java (read-only rootfs, uid 10001, tmpfs /tmp, loopback-only netns)")
        t0 = time.monotonic()
        r = subprocess.run(["unshare", "--mount", "--net", "--pid", "--uts", "--fork", "sh", "-c", "hostname eureka-0; " + _SANDBOX, "sh", str(rootfs), str(hosts), str(log)],
                           capture_output=True, text=True, timeout=300)  # fmt: skip
        for line in r.stdout.splitlines():
            progress(f"  {line[:400]}")
        java_log = log.read_text(errors="replace") if log.exists() else ""
        kept = cache_dir() / "build" / "images" / "eureka-server" / "verify-java.log"
        kept.parent.mkdir(parents=True, exist_ok=True)
        kept.write_text(java_log)
        progress(f"eureka-server: the JVM's output is in {kept}")
        if r.returncode != 0:
            raise ToolError(
                f"eureka-server did not come up ({time.monotonic() - t0:.0f}s):\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}\n--- java ---\n{java_log[-8000:]}"
            )
        for x in java_log.splitlines():
            if any(w in x for w in (" WARN ", " ERROR ", "Exception")):
                progress(f"  java: {x.strip()[:300]}")
        started = [x for x in java_log.splitlines() if "Started EurekaServerApplication" in x]
        if started:
            progress(f"  {started[0].strip()[-160:]}")
