"""Builds the platform's own container images as OCI archives, cached by their inputs' hash.

No container engine is usable on the build machines, so the images are assembled here (tools/oci.py
writes the archives) and the platform pushes them into its private registry with
`skopeo copy oci-archive:<file> docker://<registry>/<name>:<tag>`.

  <cache>/images/pause-3.10.oci.tar            the pod sandbox: tools/images/pause (static Go)
  <cache>/images/eureka-server-1.0.0.oci.tar   Spring Cloud Netflix Eureka: images/eureka-server
                                               (Maven) on a jlink'd JRE and this machine's glibc

Each archive is rebuilt only when the hash of its inputs (sources, toolchain versions, this file
and tools/oci.py) differs from the one recorded beside it in <archive>.inputs.

    python -m tools.images             # build what is missing or stale, print the archive paths
    python -m tools.images --verify    # also: skopeo inspect both, and run Eureka read-only as
                                       # uid 10001 in private namespaces until /actuator/health is UP
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from . import oci
from .common import ROOT, ToolError, cache_dir, go_build, progress, run

PAUSE_TAG = "3.10"
EUREKA_TAG = "1.0.0"
PAUSE_SRC = ROOT / "tools" / "images" / "pause"
EUREKA_SRC = ROOT / "images" / "eureka-server"
EUREKA_UID = 10001

# What Spring Boot + Eureka need at run time. jdeps finds most of it statically and is added
# on top; service providers (jdk.crypto.ec for TLS, jdk.naming.dns for Eureka's DNS lookups)
# are invisible to it and listed here.
JRE_MODULES = (
    "java.base", "java.logging", "java.management", "java.naming", "java.net.http", "java.security.jgss",
    "java.instrument", "java.sql", "java.desktop", "java.xml", "jdk.unsupported", "java.compiler",
    "jdk.crypto.ec", "java.rmi", "java.scripting", "jdk.management", "jdk.naming.dns",
)  # fmt: skip


def images_dir() -> Path:
    d = cache_dir() / "images"
    d.mkdir(parents=True, exist_ok=True)
    return d


def _out(cmd: list[str], **kw) -> str:
    r = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        raise ToolError(f"command failed ({r.returncode}): {' '.join(cmd)}\n{r.stderr[-2000:]}")
    return r.stdout + r.stderr


def _hash_inputs(files: list[Path], extra: list[str]) -> str:
    h = hashlib.sha256()
    for p in [Path(__file__), Path(oci.__file__), *files]:
        h.update(f"file {p.relative_to(ROOT) if p.is_relative_to(ROOT) else p}\n".encode())
        h.update(hashlib.sha256(p.read_bytes()).digest())
    for x in extra:
        h.update(f"extra {x}\n".encode())
    return h.hexdigest()


def _source_files(d: Path) -> list[Path]:
    skip = {"target", ".idea", ".mvn"}
    out = []
    for root, dirs, files in os.walk(d):
        dirs[:] = sorted(x for x in dirs if x not in skip and not x.startswith("."))
        out += [Path(root) / f for f in sorted(files)]
    return out


def _cached(archive: Path, inputs: str) -> bool:
    stamp = archive.with_name(archive.name + ".inputs")
    return archive.exists() and stamp.exists() and stamp.read_text().strip() == inputs


def _stamp(archive: Path, inputs: str) -> None:
    stamp = archive.with_name(archive.name + ".inputs")
    tmp = stamp.with_name(stamp.name + ".tmp")
    tmp.write_text(inputs + "\n")
    tmp.rename(stamp)


# --- pause -----------------------------------------------------------------------------------


def build_pause() -> Path:
    archive = images_dir() / f"pause-{PAUSE_TAG}.oci.tar"
    go_version = _out(["go", "version"]).strip() if shutil.which("go") else "no-go"
    inputs = _hash_inputs(_source_files(PAUSE_SRC), [go_version, "CGO_ENABLED=0 -trimpath -s -w"])
    if _cached(archive, inputs):
        progress(f"pause {PAUSE_TAG}: cached")
        return archive
    work = cache_dir() / "build" / "images" / "pause"
    work.mkdir(parents=True, exist_ok=True)
    binary = work / "pause"
    progress(f"pause {PAUSE_TAG}: go build")
    go_build(PAUSE_SRC, ".", binary, ldflags="-s -w", log=work / "build.log")
    layer = [oci.file("/pause", source=binary, mode=0o755)]
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {"Entrypoint": ["/pause"], "User": "65535:65535", "WorkingDir": "/"},
    }
    digest = oci.write_oci_archive(archive, [layer], config, PAUSE_TAG)
    _stamp(archive, inputs)
    progress(f"pause {PAUSE_TAG}: {archive} ({digest})")
    return archive


# --- eureka-server ---------------------------------------------------------------------------


def _jdk_versions() -> list[str]:
    """Versions of the JDK and Maven that go into the image (a tool that is missing reads as such)."""
    out = []
    for cmd in (["java", "-version"], ["jlink", "--version"], ["mvn", "-v"]):
        try:
            out.append(_out(cmd).strip().splitlines()[0])
        except (OSError, ToolError, IndexError):
            out.append(f"{cmd[0]}: missing")
    return out


def _maven_package(work: Path, log: Path) -> Path:
    src = work / "src"
    if src.exists():
        shutil.rmtree(src)
    shutil.copytree(EUREKA_SRC, src, ignore=shutil.ignore_patterns("target"))
    run(["mvn", "-q", "-B", "-DskipTests", "package"], cwd=src, log=log)
    jar = src / "target" / f"eureka-server-{EUREKA_TAG}.jar"
    if not jar.exists():
        raise ToolError(f"maven finished but {jar} is missing; see {log}")
    return jar


def _jdeps_modules(jar: Path, work: Path, log: Path) -> set[str]:
    """The modules jdeps sees the Boot jar's classes and libraries use (empty if jdeps fails)."""
    exploded = work / "exploded"
    if exploded.exists():
        shutil.rmtree(exploded)
    exploded.mkdir()
    import zipfile

    with zipfile.ZipFile(jar) as z:
        z.extractall(exploded)
    libs = sorted((exploded / "BOOT-INF" / "lib").glob("*.jar"))
    cmd = ["jdeps", "--ignore-missing-deps", "--print-module-deps", "--multi-release", "17", "--recursive", "-q",
           "--class-path", os.pathsep.join(map(str, libs)), str(exploded / "BOOT-INF" / "classes"), *map(str, libs)]  # fmt: skip
    r = subprocess.run(cmd, capture_output=True, text=True)
    with open(log, "a") as f:
        f.write(f"$ jdeps ... (rc {r.returncode})\n{r.stdout}{r.stderr[-4000:]}\n")
    shutil.rmtree(exploded)
    line = r.stdout.strip().splitlines()[-1] if r.returncode == 0 and r.stdout.strip() else ""
    if not line or " " in line:
        progress("eureka-server: jdeps gave no module list; using the known list alone")
        return set()
    return set(line.split(","))


def _jlink(modules: list[str], jre: Path, log: Path) -> None:
    if jre.exists():
        shutil.rmtree(jre)
    # No --generate-cds-archive: JDK 17's CDS archives differ from run to run, which would make
    # the runtime layer's digest change on every rebuild.
    cmd = ["jlink", "--add-modules", ",".join(modules), "--strip-debug", "--no-man-pages", "--no-header-files", "--compress=2",
           "--output", str(jre)]  # fmt: skip
    run(cmd, log=log)


def _ldd_deps(files: list[Path], inside: Path) -> list[Path]:
    """Shared libraries (as the paths ldd names) the files link to, outside the `inside` tree."""
    found: set[str] = set()
    missing: set[str] = set()
    # The JRE's own libraries (libjvm.so in lib/server) have no RUNPATH: the launcher loads them.
    own = {p.name for p in inside.rglob("*.so*")}
    for f in files:
        r = subprocess.run(["ldd", str(f)], capture_output=True, text=True)
        if r.returncode != 0:
            continue  # not a dynamic executable
        for line in r.stdout.splitlines():
            line = line.strip()
            if "=>" in line:
                name, rest = (x.strip() for x in line.split("=>", 1))
                if rest.startswith("not found"):
                    if name not in own:
                        missing.add(f"{name} (for {f.name})")
                    continue
                path = rest.split(" (", 1)[0].strip()
            elif line.startswith("/"):
                path = line.split(" (", 1)[0].strip()
            else:
                continue  # linux-vdso.so.1
            if path and not Path(path).resolve().is_relative_to(inside.resolve()):
                found.add(path)
    for m in sorted(missing):
        progress(f"eureka-server: ldd: not found on this machine, left out: {m}")
    return [Path(p) for p in sorted(found)]


def _passwd_group() -> list[oci.Entry]:
    passwd = (
        f"root:x:0:0:root:/root:/sbin/nologin\napp:x:{EUREKA_UID}:{EUREKA_UID}:app:/app:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\n"
    )
    group = f"root:x:0:\napp:x:{EUREKA_UID}:\nnogroup:x:65534:\n"
    return [
        oci.file("/etc/passwd", data=passwd.encode()),
        oci.file("/etc/group", data=group.encode()),
        oci.file("/etc/nsswitch.conf", data=b"passwd: files\ngroup: files\nhosts: files dns\n"),
    ]


def build_eureka() -> Path:
    archive = images_dir() / f"eureka-server-{EUREKA_TAG}.oci.tar"
    glibc = os.confstr("CS_GNU_LIBC_VERSION") or "unknown-libc"
    inputs = _hash_inputs(_source_files(EUREKA_SRC), [*_jdk_versions(), glibc, ",".join(JRE_MODULES)])
    if _cached(archive, inputs):
        progress(f"eureka-server {EUREKA_TAG}: cached")
        return archive
    for tool in ("mvn", "jlink", "jdeps", "ldd"):
        if not shutil.which(tool):
            raise ToolError(f"{tool} is needed to build the eureka-server image (Maven, a JDK 17 and glibc's ldd)")
    work = cache_dir() / "build" / "images" / "eureka-server"
    work.mkdir(parents=True, exist_ok=True)
    log = work / "build.log"
    log.write_text("")

    progress(f"eureka-server {EUREKA_TAG}: mvn package (first run fills ~/.m2)")
    jar = _maven_package(work, log)
    progress("eureka-server: jdeps")
    modules = sorted(set(JRE_MODULES) | _jdeps_modules(jar, work, log))
    progress(f"eureka-server: jlink {','.join(modules)}")
    jre = work / "jre"
    _jlink(modules, jre, log)

    elf_files = [jre / "bin" / "java", *sorted(p for p in (jre / "lib").rglob("*.so") if p.is_file())]
    libs = _ldd_deps(elf_files, jre)
    progress(f"eureka-server: {len(libs)} shared libraries from this machine: {' '.join(map(str, libs))}")

    runtime: list[oci.Entry] = [
        oci.directory("/tmp", mode=0o1777),
        oci.directory("/app"),
        *_passwd_group(),
        *oci.tree(jre, "/opt/java"),
    ]
    for lib in libs:
        real = lib.resolve()
        runtime.append(oci.file(str(lib), source=real, mode=real.stat().st_mode & 0o7777))
    app = [oci.file("/app/app.jar", source=jar)]
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {
            "Entrypoint": ["/opt/java/bin/java", "-jar", "/app/app.jar"],
            "User": f"{EUREKA_UID}:{EUREKA_UID}",
            "ExposedPorts": {"8761/tcp": {}},
            "WorkingDir": "/app",
            "Env": ["PATH=/opt/java/bin:/usr/bin:/bin"],
            "Labels": {
                "org.opencontainers.image.title": "eureka-server",
                "org.opencontainers.image.version": EUREKA_TAG,
            },
        },
    }
    progress("eureka-server: writing the OCI archive (runtime layer + app layer)")
    digest = oci.write_oci_archive(archive, [runtime, app], config, EUREKA_TAG)
    _stamp(archive, inputs)
    progress(f"eureka-server {EUREKA_TAG}: {archive} ({digest})")
    return archive


# --- verification ----------------------------------------------------------------------------

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
        info = json.loads(_out(["skopeo", "inspect", f"oci-archive:{a}"]))
        cfg = json.loads(_out(["skopeo", "inspect", "--config", f"oci-archive:{a}"]))
        progress(f"skopeo inspect {a.name}: {info['Digest']} {info['Os']}/{info['Architecture']} layers={len(info['Layers'])} "
                 f"entrypoint={cfg['config'].get('Entrypoint')} user={cfg['config'].get('User')}")  # fmt: skip
    if os.geteuid() != 0 or not shutil.which("unshare"):
        raise ToolError("the run check needs root and unshare(1)")
    import tempfile

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


def ensure() -> list[Path]:
    """Build (or take from the cache) every image the stacks load into their registries."""
    return [build_pause(), build_eureka()]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--verify", action="store_true", help="skopeo inspect both archives and run the Eureka image")
    args = ap.parse_args()
    try:
        pause, eureka = ensure()
        for a in (pause, eureka):
            progress(f"{a.name}: {a.stat().st_size / 1e6:.1f} MB")
        if args.verify:
            verify(pause, eureka)
    except ToolError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(pause)
    print(eureka)
    return 0


if __name__ == "__main__":
    sys.exit(main())
