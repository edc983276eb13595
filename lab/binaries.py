"""Builds the lab's cluster binaries from Go modules, cached by version outside the repo.

kube-apiserver, kube-controller-manager, kube-scheduler, kubelet, kube-proxy, kubectl (the pinned
Kubernetes), etcd, etcdctl and etcdutl, and flanneld, into <cache>/bin/<kubernetes version>/, the
directory the `local` stack's binaries.localDir names (`<cache>/bin/{kubernetesVersion}`). Both
the pinned Kubernetes and the patch before it (`kubernetes-previous`: the e2e suite deploys it,
then upgrades to the pin) are built; the second build reuses Go's build cache of the first (a
patch step changes few packages). Release downloads are unreachable here;
dev and prod take official release files with checksums instead.

    python3 -m tools.binaries         # build what is missing, print the directory
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import subprocess
import sys
import time
from pathlib import Path

from components.settings.runtime import ETCD_BINARIES, VERSION_PLACEHOLDER
from tools.common import ROOT, ToolError, cache_dir, go_build, pins, progress, run, write_if_changed

K8S_BINARIES = ("kube-apiserver", "kube-controller-manager", "kube-scheduler", "kubelet", "kube-proxy", "kubectl")


def _staging_replaces(version: str) -> list[str]:
    """k8s.io/kubernetes replaces its staging modules with ./staging paths; a wrapper module
    must replace each with its published v0.<minor>.<patch> instead."""
    gomod = Path(os.popen("go env GOMODCACHE").read().strip()) / "cache/download/k8s.io/kubernetes/@v" / f"{version}.mod"
    if not gomod.exists():
        run(["go", "mod", "download", f"k8s.io/kubernetes@{version}"], env={"GOFLAGS": "-mod=mod"})
    staging = "v0." + version.split(".", 1)[1]
    out = []
    for line in gomod.read_text().splitlines():
        parts = line.split()
        if "=>" in parts and parts[-1].startswith("./staging"):
            mod = parts[0] if parts[0] != "replace" else parts[1]
            out.append(f"replace {mod} => {mod} {staging}")
    if len(out) < 20:
        raise ToolError(f"expected ~30 staging replaces in k8s.io/kubernetes@{version}, found {len(out)}")
    return out


def _kube_work(version: str) -> Path:
    """One Kubernetes version's build: its wrapper module, bin/, build.log, background.log, lock."""
    return cache_dir() / "build" / f"kube-{version}"


def _kube_missing(version: str) -> list[str]:
    """The Kubernetes binaries of `version` not built yet."""
    return [b for b in K8S_BINARIES if not (_kube_work(version) / "bin" / b).exists()]


def build_kubernetes(version: str) -> Path:
    work = _kube_work(version)
    bin_dir = work / "bin"
    missing = _kube_missing(version)
    if not missing:
        progress(f"kubernetes {version}: cached")
        return bin_dir
    write_if_changed(
        work / "go.mod",
        "\n".join(["module vmplatform.local/build/kube", "", "go 1.24.0", "", f"require k8s.io/kubernetes {version}", "", *_staging_replaces(version), ""]),
    )
    minor = version.split(".")[1]
    ldflags = " ".join([
        "-s -w",
        f"-X k8s.io/component-base/version.gitVersion={version}",
        f"-X k8s.io/client-go/pkg/version.gitVersion={version}",
        "-X k8s.io/component-base/version.gitMajor=1",
        f"-X k8s.io/component-base/version.gitMinor={minor}",
    ])  # fmt: skip
    for b in missing:
        progress(f"kubernetes {version}: building {b} (several minutes each on 2 cores)")
        go_build(work, f"k8s.io/kubernetes/cmd/{b}", bin_dir / b, ldflags=ldflags, log=work / "build.log")
    return bin_dir


def build_etcd(version: str) -> Path:
    work = cache_dir() / "build" / f"etcd-{version}"
    bin_dir = work / "bin"
    if all((bin_dir / b).exists() for b in ETCD_BINARIES):
        progress(f"etcd {version}: cached")
        return bin_dir
    requires = "".join(f"\tgo.etcd.io/etcd/{m}/v3 {version}\n" for m in ("server", "etcdctl", "etcdutl"))
    write_if_changed(work / "go.mod", f"module vmplatform.local/build/etcd\n\ngo 1.24\n\nrequire (\n{requires})\n")
    # The etcd binary's main lives in the repository's root module, which has replace lines;
    # etcdmain (in server/v3) is the whole program, so a two-line main is enough.
    write_if_changed(
        work / "etcd" / "main.go", 'package main\n\nimport (\n\t"os"\n\n\t"go.etcd.io/etcd/server/v3/etcdmain"\n)\n\nfunc main() { etcdmain.Main(os.Args) }\n'
    )
    ver_flag = f"-s -w -X go.etcd.io/etcd/api/v3/version.GitSHA=vm-platform-{version}"
    packages = {"etcd": "./etcd", "etcdctl": "go.etcd.io/etcd/etcdctl/v3", "etcdutl": "go.etcd.io/etcd/etcdutl/v3"}  # etcdutl: snapshot restore
    for b in ETCD_BINARIES:
        if not (bin_dir / b).exists():
            progress(f"etcd {version}: building {b}")
            go_build(work, packages[b], bin_dir / b, ldflags=ver_flag, log=work / "build.log")
    return bin_dir


def build_flannel(version: str) -> Path:
    work = cache_dir() / "build" / f"flannel-{version}"
    bin_dir = work / "bin"
    if (bin_dir / "flanneld").exists():
        progress(f"flannel {version}: cached")
        return bin_dir
    write_if_changed(work / "go.mod", f"module vmplatform.local/build/flannel\n\ngo 1.24\n\nrequire github.com/flannel-io/flannel {version}\n")
    progress(f"flannel {version}: building flanneld")
    # flannel's udp backend is cgo (a C proxy); the hosts share this machine's glibc family.
    go_build(
        work,
        "github.com/flannel-io/flannel",
        bin_dir / "flanneld",
        cgo=True,
        ldflags=f"-s -w -X github.com/flannel-io/flannel/pkg/version.Version={version}",
        log=work / "build.log",
    )
    return bin_dir


NETPOL_SRC = ROOT / "netpol"


def netpol_digest() -> str:
    """Of the enforcer's sources (its module files and non-test Go files): the build's cache key."""
    h = hashlib.sha256()
    for f in sorted(NETPOL_SRC.rglob("*")):
        if f.is_file() and (f.name in ("go.mod", "go.sum") or (f.suffix == ".go" and not f.name.endswith("_test.go"))):
            h.update(f.relative_to(NETPOL_SRC).as_posix().encode() + b"\0" + f.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def build_netpol() -> Path:
    """vmp-netpol, the NetworkPolicy enforcer (netpol/ in this repository)."""
    work = cache_dir() / "build" / f"netpol-{netpol_digest()}"
    out = work / "vmp-netpol"
    if out.exists():
        progress("vmp-netpol: cached")
        return out
    progress("vmp-netpol: building (client-go; about a minute on 2 cores)")
    go_build(NETPOL_SRC, "./cmd/vmp-netpol", out, ldflags="-s -w", log=work / "build.log")
    return out


def local_dir() -> str:
    """The lab stack's binaries.localDir: one directory per Kubernetes version."""
    return str(cache_dir() / "bin" / VERSION_PLACEHOLDER)


def out_dir(version: str | None = None) -> Path:
    """Where the lab's cluster binaries for `version` (default: the pinned one) are gathered."""
    return cache_dir() / "bin" / (version or pins()["lab"]["kubernetes"])


def versions() -> tuple[str, str]:
    """The e2e upgrade's (from, to): the patch before the pin, and the pin."""
    lab = pins()["lab"]
    return lab["kubernetes-previous"], lab["kubernetes"]


def _others() -> dict[str, Path]:
    """What every version's directory holds besides Kubernetes: etcd, flanneld, vmp-netpol."""
    lab = pins()["lab"]
    etcd_dir = build_etcd(lab["etcd"])
    return {**{b: etcd_dir / b for b in ETCD_BINARIES}, "flanneld": build_flannel(lab["flannel"]) / "flanneld", "vmp-netpol": build_netpol()}


def _lock_path(version: str) -> Path:
    path = _kube_work(version) / "lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def ensure_version(version: str, *, wait: bool = True) -> bool:
    """Builds and gathers one Kubernetes version's directory, one process at a time (a lock per
    version). With wait=False, a version another process is building (the background build)
    is left to it: returns False at once. Returns True when the directory is complete."""
    with open(_lock_path(version), "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            progress(f"kubernetes {version}: being built by another process (the background build: {background_log(version)}); not waiting")
            return False
        kube = build_kubernetes(version)
        _gather(out_dir(version), {**{b: kube / b for b in K8S_BINARIES}, **_others()})
        return True


def ensure(*, pin_deferred: bool = False) -> Path:
    """Builds what is missing for both versions; returns the pinned version's directory.

    pin_deferred (tools/test, the whole suite, through `tools.setup --pin-in-background`): the
    pin is left out here and built afterwards by a process of its own at the lowest CPU priority
    (start_background), since only the upgrade test, late in the e2e suite, needs it
    (test_platform_upgrade waits for it with ensure_version). On a fresh machine that takes the
    pin's build (about 4 min) out of the setup before the suite. A version another process is
    building is left to it (`tools.lab up` while the background build runs)."""
    previous, pin = versions()
    ensure_version(previous)
    if not pin_deferred:
        ensure_version(pin, wait=False)
    return out_dir()


def background_log(version: str) -> Path:
    return _kube_work(version) / "background.log"


def start_background(version: str, timeout: float = 60) -> None:
    """`nice -n 19 python3 -m tools.binaries --version <version>`, detached (its own session),
    its output in background_log(version). Returns once that process holds the version's lock
    (so a `tools.lab up` right after sees it and does not build the version too) or has ended
    (the version was complete)."""
    if not _kube_missing(version):
        ensure_version(version, wait=False)  # built already: gathering its directory takes a second
        return
    log = background_log(version)
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "w") as out:
        proc = subprocess.Popen(
            ["nice", "-n", "19", sys.executable, "-m", "tools.binaries", "--version", version],
            cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
        )  # fmt: skip
    deadline = time.monotonic() + timeout
    while proc.poll() is None and time.monotonic() < deadline:
        with open(_lock_path(version), "a+") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                progress(f"kubernetes {version}: building in the background (pid {proc.pid}, nice 19; log {log})")
                return
        time.sleep(0.1)
    if proc.poll() not in (None, 0):
        raise ToolError(f"kubernetes {version}: the background build failed (exit {proc.returncode}); see {log}")


def _gather(out: Path, sources: dict[str, Path]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for name, src in sources.items():
        dest = out / name
        if not dest.exists() or dest.stat().st_size != src.stat().st_size or dest.stat().st_mtime < src.stat().st_mtime:
            tmp = dest.with_name(name + ".tmp")
            if tmp.exists():
                tmp.unlink()
            os.link(src, tmp) if src.stat().st_dev == out.stat().st_dev else tmp.write_bytes(src.read_bytes())
            tmp.rename(dest)
    progress(f"cluster binaries ready in {out}")
