"""The host scripts themselves, run here against temp directories with fake host commands
(curl, skopeo, systemctl, etcdctl, ...) first on PATH: what they print (the stdout contracts the
components read), that secrets stay off command lines, that they converge when run twice, and
that shellcheck finds nothing."""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import stat
import subprocess
import textwrap
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path

import pytest

SCRIPTS = Path(__file__).resolve().parents[2] / "components" / "scripts"
SHELL_SCRIPTS = sorted(SCRIPTS.glob("*.sh"))


class Host:
    """A fake host: fake executables (bin/), what they saw (rec/) and the platform's directory (etc/)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.bin = root / "bin"
        self.rec = root / "rec"
        self.etc = root / "etc"
        for d in (self.bin, self.rec, self.etc):
            d.mkdir()

    def fake(self, name: str, body: str = "") -> None:
        """An executable `name` that records its argv (NUL-separated) and environment, then runs `body`."""
        script = f'#!/usr/bin/env bash\nprintf "%s\\0" "$0" "$@" > "{self.rec}/argv.{name}.$$.$RANDOM"\nenv > "{self.rec}/env.{name}.$$.$RANDOM"\n'
        path = self.bin / name
        path.write_text(script + textwrap.dedent(body))
        path.chmod(0o755)

    def argvs(self, name: str | None = None) -> list[list[str]]:
        pattern = f"argv.{name}.*" if name else "argv.*"
        return [p.read_bytes().decode().split("\0")[:-1] for p in sorted(self.rec.glob(pattern))]

    def envs(self) -> list[str]:
        return [p.read_text() for p in self.rec.glob("env.*")]

    def env(self, **extra: str) -> dict[str, str]:
        return {"PATH": f"{self.bin}:{os.environ['PATH']}", "HOME": str(self.root), "VMP_ETC": str(self.etc), **extra}

    def run(self, script: str | Path, env: Mapping[str, str] | None = None, stdin: str = "", check: bool = True) -> subprocess.CompletedProcess[str]:
        path = script if isinstance(script, Path) else SCRIPTS / script
        proc = subprocess.run([str(path)], input=stdin, capture_output=True, text=True, env=self.env(**(env or {})), timeout=60)
        if check:
            assert proc.returncode == 0, f"{path.name} failed ({proc.returncode}):\n{proc.stderr}"
        return proc

    def bash(self, code: str, env: Mapping[str, str] | None = None, stdin: str = "") -> subprocess.CompletedProcess[str]:
        """Run `code` in a strict bash that has sourced lib.sh (as the scripts do)."""
        full = f'set -euo pipefail\n. "{SCRIPTS}/lib.sh"\n{code}'
        return subprocess.run(["bash", "-c", full], input=stdin, capture_output=True, text=True, env=self.env(**(env or {})), timeout=60)


@pytest.fixture
def host(tmp_path: Path) -> Host:
    return Host(tmp_path)


def b64_lines(text: str) -> dict[str, bytes]:
    """name=base64 lines -> name -> decoded bytes (as the components parse them)."""
    return {k: base64.b64decode(v) for k, v in (line.split("=", 1) for line in text.splitlines() if line)}


# ---------------------------------------------------------------- lint and shape


def test_shellcheck_finds_nothing():
    shellcheck = shutil.which("shellcheck")
    if shellcheck is None:
        pytest.fail("shellcheck is not installed (python3 -m tools.setup installs it)")
    # From another directory: the scripts' own source directives must resolve lib.sh.
    proc = subprocess.run([shellcheck, "-x", *map(str, SHELL_SCRIPTS)], capture_output=True, text=True, cwd="/")
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("script", [p.name for p in SHELL_SCRIPTS if not p.name.endswith("lib.sh")])  # libraries are sourced, not run
def test_every_script_is_strict_and_finds_its_libraries_beside_itself(script):
    text = (SCRIPTS / script).read_text()
    assert text.startswith("#!/usr/bin/env bash\n")
    assert "\nset -euo pipefail\n" in text
    assert "/usr/local/lib/vm-platform" not in text and "/etc/vm-platform/pki" not in text
    for sourced in re.findall(r"^\. (.*)$", text, re.M):
        assert sourced.startswith('"$(dirname "$0")/') or sourced == "/run/flannel/subnet.env", sourced


def test_scripts_run_from_their_installed_directory(host, tmp_path):
    installed = tmp_path / "usr-local-lib" / "vm-platform"
    shutil.copytree(SCRIPTS, installed)
    dest = tmp_path / "out" / "x.conf"
    proc = subprocess.run([str(installed / "install-file.sh")], input="a\n", capture_output=True, text=True, cwd="/", env=host.env(DEST=str(dest), MODE="0640"))
    assert proc.returncode == 0, proc.stderr
    assert dest.read_text() == "a\n" and stat.S_IMODE(dest.stat().st_mode) == 0o640


# ---------------------------------------------------------------- lib.sh


def test_write_file_reports_a_change_without_stdout_and_keeps_the_directory_mode(host):
    d = host.etc / "pki"
    d.mkdir(mode=0o700)
    code = f'echo hi | write_file "{d}/a" 0644; echo "first=$VMP_CHANGED" >&2; echo hi | write_file "{d}/a" 0644; echo "second=$VMP_CHANGED" >&2'
    proc = host.bash(code)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
    assert "first=1" in proc.stderr and "second=0" in proc.stderr
    assert proc.stderr.count(f"wrote {d}/a") == 1
    assert stat.S_IMODE(d.stat().st_mode) == 0o700


def test_b64_lines_round_trip_keeps_padding_and_refuses_path_names(host):
    out = host.etc / "out"
    out.mkdir()
    data = {"ca": b"x", "etcd_ca": b"xy", "kube-proxy": b"xyz\n"}  # 1 and 2 padding characters, and none
    files = ""
    for name, content in data.items():
        (host.root / name).write_bytes(content)
        files += f'vmp_b64_emit {name} "{host.root / name}"\n'
    emitted = host.bash(files).stdout
    assert b64_lines(emitted) == data
    store = f'store() {{ cat > "{out}/$1"; }}\nvmp_b64_parse store'
    assert host.bash(store, stdin="\n" + emitted + "no equals sign\n").returncode == 0
    assert {p.name: p.read_bytes() for p in out.iterdir()} == data
    bad = host.bash(store, stdin="../escape=eA==\n")
    assert bad.returncode != 0 and not (host.etc / "escape").exists()
    assert host.bash(store, stdin="ok=not base64!\n").returncode != 0


def test_etcdctl_and_admin_curl_use_the_admin_certificates(host):
    host.fake("etcdctl", 'echo "api=${ETCDCTL_API:-unset}"\n')
    host.fake("curl")
    proc = host.bash("vmp_etcdctl get /k; vmp_admin_curl https://127.0.0.1:6443/readyz -o /dev/null")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "api=unset\n"  # etcd 3.6 warns about ETCDCTL_API on every call
    pki = host.etc / "pki"
    [etcdctl] = host.argvs("etcdctl")
    assert etcdctl[1:] == [
        "--endpoints=https://127.0.0.1:2379", f"--cacert={pki}/etcd-ca.crt", f"--cert={pki}/etcd-admin.crt", f"--key={pki}/etcd-admin.key", "get", "/k",
    ]  # fmt: skip
    [curl] = host.argvs("curl")
    assert curl[1:] == [
        "-fs",
        "--cacert",
        f"{pki}/ca.crt",
        "--cert",
        f"{pki}/admin.crt",
        "--key",
        f"{pki}/admin.key",
        "-o",
        "/dev/null",
        "https://127.0.0.1:6443/readyz",
    ]


@pytest.mark.parametrize(
    ("healthz_rc", "status", "ready"),
    [(0, "True", True), (0, "False", False), (7, "True", False)],
)
def test_node_ready_needs_kubelet_healthz_and_a_ready_node(host, healthz_rc, status, ready):
    # Pretty-printed, as the API server may send it: the check must not depend on whitespace.
    node = json.dumps({"status": {"conditions": [{"type": "MemoryPressure", "status": "False"}, {"type": "Ready", "status": status}]}}, indent=2)
    host.fake(
        "curl",
        f"""
        case "$*" in
          *10248/healthz*) exit {healthz_rc} ;;
          *) printf '%s' '{node}' ;;
        esac
        """,
    )
    proc = host.bash("vmp_node_ready https://10.0.0.1:6443 w1")
    assert (proc.returncode == 0) == ready, proc.stderr
    if healthz_rc == 0:
        api = host.argvs("curl")[-1]
        pki = host.etc / "pki"
        assert api[-1] == "https://10.0.0.1:6443/api/v1/nodes/w1"
        assert [f"{pki}/kubelet.crt", f"{pki}/kubelet.key"] == [api[api.index("--cert") + 1], api[api.index("--key") + 1]]


# ---------------------------------------------------------------- restart-service.sh


def fake_systemctl(host: Host, active: bool = True) -> None:
    host.fake(
        "systemctl",
        f"""
        case "$1" in
          show) echo 123456789 ;;
          is-active) exit {0 if active else 3} ;;
        esac
        """,
    )
    host.fake("journalctl")


def test_restart_health_runs_with_lib_functions_and_stdout_is_the_start_time(host):
    fake_systemctl(host)
    host.fake("etcdctl", 'echo "127.0.0.1:2379 is healthy"\n')
    proc = host.run("restart-service.sh", env={"UNIT": "etcd", "HEALTH": "vmp_etcdctl endpoint health", "TIMEOUT": "5"})
    assert proc.stdout == "123456789\n"
    [etcdctl] = host.argvs("etcdctl")
    assert etcdctl[-2:] == ["endpoint", "health"] and "--endpoints=https://127.0.0.1:2379" in etcdctl
    assert [a[1:3] for a in host.argvs("systemctl")][:3] == [["daemon-reload"], ["enable", "etcd"], ["restart", "etcd"]]
    assert re.search(r"restarted etcd: ready after \d+s", proc.stderr), proc.stderr


def test_restart_fails_when_the_health_command_never_passes(host):
    fake_systemctl(host)
    proc = host.run("restart-service.sh", env={"UNIT": "etcd", "HEALTH": "false", "TIMEOUT": "1"}, check=False)
    assert proc.returncode == 1 and proc.stdout == ""
    assert "timed out after 1s waiting for etcd" in proc.stderr


# ---------------------------------------------------------------- push-image.sh (security defect 1)

PASSWORD = "s3cr3t-Pa55word"


def push_image(host: Host, script: Path) -> subprocess.CompletedProcess[str]:
    host.fake("curl", "echo 401\n")  # a registry with auth answers /v2/ with 401 Unauthorized
    host.fake(
        "skopeo",
        f"""
        for a in "$@"; do case "$a" in --dest-authfile=*|--authfile=*) cat "${{a#*=}}" >> "{host.rec}/authfiles" ;; esac; done
        [ "$1" = inspect ] && echo sha256:0123abcd
        exit 0
        """,
    )
    env = {"SRC": "/var/lib/vm-platform/images/pause.tar", "IMAGE": "pause:3.10", "REGISTRY": "127.0.0.1:5000", "TLS": "true", "AUTH": "true"}
    return host.run(script, env=env, stdin=f"admin\n{PASSWORD}\n")


def test_push_image_keeps_the_registry_password_off_every_command_line(host):
    proc = push_image(host, SCRIPTS / "push-image.sh")
    assert proc.stdout == "sha256:0123abcd\n"  # the pushed digest, nothing else
    argvs = host.argvs()
    assert {Path(a[0]).name for a in argvs} >= {"curl", "skopeo"}
    for argv in argvs:
        assert not any(PASSWORD in a for a in argv), argv
        assert not any(base64.b64encode(f"admin:{PASSWORD}".encode()).decode() in a for a in argv), argv
    assert not any(PASSWORD in e for e in host.envs())
    # The credentials still reach skopeo, in its auth file (0600, removed afterwards).
    auth = (host.rec / "authfiles").read_text()
    assert base64.b64encode(f"admin:{PASSWORD}".encode()).decode() in auth and '"127.0.0.1:5000"' in auth


# ---------------------------------------------------------------- prereqs.sh: swap (security defect 4)

FSTAB = """\
# /etc/fstab
UUID=1234 / ext4 defaults 0 1
/dev/sda2 none swap sw 0 0
\t/swapfile\tnone\tswap\tdefaults\t0\t0
# /dev/sdb1 none swap sw 0 0
"""


def test_swap_stays_off_after_a_reboot_and_a_second_run_changes_nothing(host):
    fstab = host.root / "fstab"
    fstab.write_text(FSTAB)
    swaps = host.root / "swaps"
    swaps.write_text("Filename Type Size Used Priority\n/dev/zram0 partition 4G 0 100\n")
    sd_lib = host.root / "lib-systemd"
    (sd_lib / "system-generators").mkdir(parents=True)
    (sd_lib / "system-generators" / "zram-generator").write_text("")
    sd_etc = host.root / "etc-systemd"
    masked = host.root / "masked"
    host.fake("swapoff", f': > "{swaps}.off"\n')
    host.fake(
        "systemctl",
        f"""
        case "$1" in
          list-units) echo "dev-zram0.swap loaded active active /dev/zram0" ;;
          is-enabled) if [ -e "{masked}" ]; then echo masked; else echo enabled; fi ;;
          mask) : > "{masked}" ;;
        esac
        """,
    )
    env = {"FSTAB": str(fstab), "SWAPS": str(swaps), "SYSTEMD_ETC": str(sd_etc), "SYSTEMD_LIB": str(sd_lib)}
    first = host.bash("vmp_disable_swap", env=env)
    assert first.returncode == 0, first.stderr
    after_first = fstab.read_text()
    active = [line for line in after_first.splitlines() if line.split() and not line.lstrip().startswith("#")]
    assert active == ["UUID=1234 / ext4 defaults 0 1"]
    assert "# vm-platform: kubelet needs swap off: /dev/sda2 none swap sw 0 0" in after_first
    assert (host.root / "fstab.vmp-backup").read_text() == FSTAB
    assert (swaps.parent / "swaps.off").exists()
    assert ["mask", "--now", "dev-zram0.swap"] in [a[1:] for a in host.argvs("systemctl")]
    assert os.readlink(sd_etc / "system-generators" / "zram-generator") == "/dev/null"

    swaps.write_text("Filename Type Size Used Priority\n")  # swap is off now
    second = host.bash("vmp_disable_swap", env=env)
    assert second.returncode == 0, second.stderr
    assert fstab.read_text() == after_first and (host.root / "fstab.vmp-backup").read_text() == FSTAB
    assert second.stderr == ""  # nothing changed, nothing said
    assert sum(a[1] == "mask" for a in host.argvs("systemctl")) == 1


def test_prereqs_disables_swap_through_the_lib():
    assert re.search(r"^vmp_disable_swap$", (SCRIPTS / "prereqs.sh").read_text(), re.M)
    assert "swapoff" not in (SCRIPTS / "prereqs.sh").read_text()


# ---------------------------------------------------------------- PKI (validity from settings)

CP_ENV = {"CP_NAME": "master", "CP_ADDR": "10.0.0.1", "SERVICE_IP": "10.254.0.1", "CLUSTER_DOMAIN": "cluster.local", "API_PORT": "6443"}


def days_valid(pem: Path | bytes) -> int:
    text = pem.read_bytes() if isinstance(pem, Path) else pem
    out = subprocess.run(["openssl", "x509", "-noout", "-startdate", "-enddate"], input=text, capture_output=True, check=True).stdout.decode()
    dates = dict(line.split("=", 1) for line in out.splitlines())
    fmt = "%b %d %H:%M:%S %Y %Z"
    return (datetime.strptime(" ".join(dates["notAfter"].split()), fmt) - datetime.strptime(" ".join(dates["notBefore"].split()), fmt)).days


def not_after(pem: Path | bytes) -> str:
    """A certificate's notAfter as the expiry report writes it (UTC, ISO 8601)."""
    text = pem.read_bytes() if isinstance(pem, Path) else pem
    out = subprocess.run(["openssl", "x509", "-noout", "-enddate"], input=text, capture_output=True, check=True).stdout.decode()
    return datetime.strptime(" ".join(out.split("=", 1)[1].split()), "%b %d %H:%M:%S %Y %Z").strftime("%Y-%m-%dT%H:%M:%SZ")


def test_pki_validity_comes_from_the_environment_and_a_new_validity_reissues_leaves(host):
    pki = host.etc / "pki"
    first = host.run("pki-init.sh", env={**CP_ENV, "CA_DAYS": "100", "CERT_DAYS": "10"})
    cas = b64_lines(first.stdout)
    assert set(cas) == {"ca", "etcd_ca", "expiry"}  # the stdout contract: the public CA certificates and the expiry report
    expiry = dict(line.split(" ", 1) for line in cas.pop("expiry").decode().splitlines())
    assert set(expiry) == {p.name.removesuffix(".crt") for p in pki.glob("*.crt")} and "apiserver" in expiry
    assert expiry["apiserver"] == not_after(pki / "apiserver.crt") and expiry["ca"] == not_after(pki / "ca.crt")
    assert cas["ca"] == (pki / "ca.crt").read_bytes() and cas["etcd_ca"] == (pki / "etcd-ca.crt").read_bytes()
    assert days_valid(pki / "ca.crt") == 100 and days_valid(pki / "apiserver.crt") == 10
    assert stat.S_IMODE(pki.stat().st_mode) == 0o700 and stat.S_IMODE((pki / "ca.key").stat().st_mode) == 0o600
    assert "issued apiserver" in first.stderr and "LS0t" not in first.stderr  # no base64 noise in the log

    api = (pki / "apiserver.crt").read_bytes()
    again = host.run("pki-init.sh", env={**CP_ENV, "CA_DAYS": "100", "CERT_DAYS": "10"})
    assert again.stdout == first.stdout and (pki / "apiserver.crt").read_bytes() == api
    assert again.stderr == ""

    longer = host.run("pki-init.sh", env={**CP_ENV, "CA_DAYS": "200", "CERT_DAYS": "20"})
    assert {k: v for k, v in b64_lines(longer.stdout).items() if k != "expiry"} == cas  # CAs are made once
    assert days_valid(pki / "apiserver.crt") == 20 and days_valid(pki / "etcd-admin.crt") == 20

    bad = host.run("pki-init.sh", env={**CP_ENV, "CERT_DAYS": "1y"}, check=False)
    assert bad.returncode != 0 and "CERT_DAYS" in bad.stderr


def test_node_certificates_round_trip_with_the_signed_validity(host, tmp_path):
    host.run("pki-init.sh", env=CP_ENV)
    worker = tmp_path / "worker-etc"
    worker.mkdir()
    csrs = host.run("node-keys.sh", env={"VMP_ETC": str(worker), "NODE_NAME": "w1"})
    assert set(b64_lines(csrs.stdout)) == {"kubelet", "kube-proxy", "flanneld"}
    assert host.run("node-keys.sh", env={"VMP_ETC": str(worker), "NODE_NAME": "w1"}).stdout.count("=") >= 3  # keys kept, CSRs again
    assert (worker / "pki" / "kubelet.key").read_bytes()

    signed = host.run("sign-node.sh", env={"NODE_NAME": "w1", "NODE_ADDR": "10.0.0.2", "CERT_DAYS": "30"}, stdin=csrs.stdout)
    certs = b64_lines(signed.stdout)
    assert set(certs) == {"kubelet", "kube-proxy", "flanneld", "expiry"} and days_valid(certs["kubelet"]) == 30
    expiry = dict(line.split(" ", 1) for line in certs.pop("expiry").decode().splitlines())
    assert sorted(expiry) == ["flanneld", "kube-proxy", "kubelet"] and expiry["kubelet"] == not_after(certs["kubelet"])
    ca_bundle = host.run("pki-init.sh", env=CP_ENV).stdout

    stdin = signed.stdout + "\n" + ca_bundle + "\n"
    installed = host.run("node-certs.sh", env={"VMP_ETC": str(worker), "API_SERVER": "https://10.0.0.1:6443"}, stdin=stdin)
    assert installed.stdout == ""
    assert (worker / "pki" / "etcd-ca.crt").read_bytes() == b64_lines(ca_bundle)["etcd_ca"]
    assert (worker / "pki" / "kubelet.crt").read_bytes() == certs["kubelet"]
    assert not (worker / "pki" / "expiry.crt").exists()  # the expiry report is not a certificate
    assert "server: https://10.0.0.1:6443" in (worker / "kubelet.kubeconfig").read_text()
    assert stat.S_IMODE((worker / "pki").stat().st_mode) == 0o700  # writing certs into pki/ keeps it private
    again = host.run("node-certs.sh", env={"VMP_ETC": str(worker), "API_SERVER": "https://10.0.0.1:6443"}, stdin=stdin)
    assert again.stderr == ""

    lines = dict(line.split("=", 1) for line in csrs.stdout.splitlines())
    forged = f"kubelet={lines['kube-proxy']}\nkube-proxy={lines['kube-proxy']}\nflanneld={lines['flanneld']}\n"  # another identity's CSR
    refused = host.run("sign-node.sh", env={"NODE_NAME": "w1", "NODE_ADDR": "10.0.0.2"}, stdin=forged, check=False)
    assert refused.returncode != 0 and refused.stdout == "" and "refusing CSR" in refused.stderr
    missing = host.run("sign-node.sh", env={"NODE_NAME": "w1", "NODE_ADDR": "10.0.0.2"}, stdin=f"kubelet={lines['kubelet']}\n", check=False)
    assert missing.returncode != 0 and missing.stdout == "" and "no kube-proxy CSR" in missing.stderr


# ---------------------------------------------------------------- other stdout contracts


def test_pod_network_stores_once_and_prints_only_the_config(host):
    store = host.root / "etcd-value"
    host.fake(
        "etcdctl",
        f"""
        args=("$@"); n=${{#args[@]}}
        case " $* " in
          *" put "*) printf '%s' "${{args[n-1]}}" > "{store}" ;;
          *" get "*) [ -e "{store}" ] && cat "{store}" && echo ;;
        esac
        exit 0
        """,
    )
    config = '{"Backend":{"Type":"vxlan"},"Network":"10.244.0.0/16","SubnetLen":24}'
    first = host.run("pod-network.sh", env={"ETCD_PREFIX": "/coreos.com/network"}, stdin=config)
    second = host.run("pod-network.sh", env={"ETCD_PREFIX": "/coreos.com/network"}, stdin=config)
    assert first.stdout == second.stdout == config + "\n"
    puts = [a for a in host.argvs("etcdctl") if "put" in a]
    assert len(puts) == 1 and puts[0][-2:] == ["/coreos.com/network/config", config]
    assert "stored the pod-network config" in first.stderr and second.stderr == ""


def test_install_file_prints_nothing_and_logs_only_a_change(host):
    dest = host.etc / "kubelet.yaml"
    first = host.run("install-file.sh", env={"DEST": str(dest)}, stdin="a: 1\n")
    second = host.run("install-file.sh", env={"DEST": str(dest)}, stdin="a: 1\n")
    assert first.stdout == second.stdout == ""
    assert f"wrote {dest}" in first.stderr and second.stderr == ""
    removed = host.run("remove-file.sh", env={"DEST": str(dest)})
    assert not dest.exists() and f"removed {dest}" in removed.stderr
    assert host.run("remove-file.sh", env={"DEST": str(dest)}).stderr == ""


def test_a_host_belongs_to_one_stack(tmp_path):
    """claim-host.sh: the first stack claims the host; it may come back (re-runs, an interrupted
    first run); another stack is refused, told whose host it is and how to release it."""
    claim = SCRIPTS / "claim-host.sh"

    def run(owner_id: str, owner: str) -> subprocess.CompletedProcess[str]:
        env = {"PATH": "/usr/bin:/bin", "VMP_ETC": str(tmp_path), "OWNER_ID": owner_id, "OWNER": owner, "HOSTNAME": "h1"}
        return subprocess.run(["bash", str(claim)], capture_output=True, text=True, env=env)

    first = run("aaaaaaaaaaaaaaaa", "vm-platform/local")
    assert first.returncode == 0, first.stderr
    assert (tmp_path / "owner").read_text() == "aaaaaaaaaaaaaaaa vm-platform/local\n"
    assert run("aaaaaaaaaaaaaaaa", "vm-platform/local").returncode == 0
    other = run("bbbbbbbbbbbbbbbb", "vm-platform/local")
    assert other.returncode == 1
    assert "managed by another stack (vm-platform/local, id aaaaaaaaaaaaaaaa)" in other.stderr
    assert f"remove {tmp_path}/owner" in other.stderr
    assert (tmp_path / "owner").read_text().startswith("aaaaaaaaaaaaaaaa ")


def fake_etcdctl_snapshots(host: Host) -> None:
    """etcdctl whose `snapshot save PATH` writes a small file, as the real one writes the data."""
    host.fake("etcdctl", 'for a; do last=$a; done\n[ "${@: -2:1}" = save ] && printf snapshot > "$last"\n')


def test_snapshots_are_private_and_only_the_newest_of_their_kind_are_kept(host, tmp_path):
    fake_etcdctl_snapshots(host)
    snaps = tmp_path / "snaps"
    code = f'. "{SCRIPTS}/etcd-lib.sh"\nfor i in 1 2 3 4; do vmp_etcd_snapshot scheduled {snaps} 2 "n$i"; sleep 0.01; done\nvmp_etcd_snapshot pre-upgrade {snaps} 2 v1-to-v2'
    proc = host.bash(code)
    assert proc.returncode == 0, proc.stderr
    printed = proc.stdout.split()
    assert len(printed) == 5 and all(p.endswith(".db") for p in printed)
    left = sorted(p.name for p in snaps.iterdir())
    assert [n.split("-")[0] for n in left] == ["pre", "scheduled", "scheduled"] and left[1].endswith("-n3.db") and left[2].endswith("-n4.db"), left
    assert oct(snaps.stat().st_mode & 0o777) == "0o700" and all(oct(p.stat().st_mode & 0o777) == "0o600" for p in snaps.iterdir())
    assert "removed the old snapshot" in proc.stderr and "keep: 2" in proc.stderr


def test_a_restore_names_a_missing_snapshot_and_stops_nothing(host, tmp_path):
    fake_systemctl(host)
    proc = host.bash(f'. "{SCRIPTS}/etcd-lib.sh"\nvmp_etcd_restore {tmp_path}/none latest')
    assert proc.returncode == 1 and "no snapshot latest in" in proc.stderr and "tools.etcd list" in proc.stderr
    assert host.argvs("systemctl") == []


@pytest.mark.parametrize(
    ("registered", "version", "unschedulable", "drains", "annotates"),
    [(False, "", "", False, False), (True, "v1.34.4", "", False, False), (True, "v1.34.3", "", True, True), (True, "v1.34.3", "true", True, False)],
)
def test_the_upgrade_drains_only_a_node_behind_and_marks_only_its_own_cordon(host, registered, version, unschedulable, drains, annotates):
    """A new node and one already at the version are left alone; a node in maintenance (already
    unschedulable) is drained but not marked, so the uncordon after the upgrade leaves it cordoned."""
    host.fake(
        "kubectl",
        f"""
        case "$1 $*" in
          get*kubeletVersion*) echo -n {version} ;;
          get*unschedulable*) echo -n {unschedulable} ;;
          get*) exit {0 if registered else 1} ;;
        esac
        """,
    )
    proc = host.run("node-upgrade.sh", env={"ACTION": "drain", "NODE_NAME": "w1", "TARGET": "v1.34.4"})
    verbs = [a[1] for a in host.argvs("kubectl")]
    assert ("drain" in verbs) == drains and ("annotate" in verbs) == annotates, (verbs, proc.stderr)
