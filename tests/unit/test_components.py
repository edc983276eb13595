"""The program's resources under mocks: components, key properties, bootstrap ordering, what a
config change touches, and how secrets are handled."""

from __future__ import annotations

import copy
import json
import tomllib
from typing import Any

import pytest
import yaml

from components.remote import script_text, sha256
from tests.unit.harness import TEST_KEY, RecordingMocks, base_config, run_program

WORKER = "centos-minion-1"
CP = "centos-master"


@pytest.fixture(scope="module")
def dev() -> RecordingMocks:
    return run_program(base_config())


def changed(a: RecordingMocks, b: RecordingMocks) -> dict[str, set[str]]:
    """resource name -> input keys that differ between two runs (added/removed resources: {'*'})."""
    out: dict[str, set[str]] = {}
    for name in set(a.resources) | set(b.resources):
        ra, rb = a.resources.get(name), b.resources.get(name)
        if ra is None or rb is None:
            out[name] = {"*"}
            continue
        keys = {
            k
            for k in set(ra.inputs) | set(rb.inputs)
            if json.dumps(ra.inputs.get(k), sort_keys=True, default=str) != json.dumps(rb.inputs.get(k), sort_keys=True, default=str)
        }
        if keys:
            out[name] = keys
    return out


def with_config(mutate) -> RecordingMocks:
    cfg = base_config()
    mutate(cfg)
    return run_program(cfg)


# ---------------------------------------------------------------- components and properties


def test_components_and_their_types(dev):
    comps = {name: parent for name, (parent, _, _) in dev.graph.items()}
    assert comps["cluster"] is None
    assert comps[CP] == "cluster" and comps[WORKER] == "cluster" and comps[f"{CP}-registry"] == "cluster"
    assert comps["eureka-app"] == "eureka"
    assert {r.type for r in dev.resources.values()} >= {
        "command:remote:Command",
        "command:remote:CopyToRemote",
        "pulumi:providers:kubernetes",
        "kubernetes:apps/v1:Deployment",
        "kubernetes:core/v1:Service",
        "kubernetes:policy/v1:PodDisruptionBudget",
        "kubernetes:core/v1:Namespace",
    }


def test_every_host_step_pins_the_host_key_and_uses_a_key(dev):
    for name, cmd in dev.commands().items():
        assert "connection" in dev.secret_inputs[name]  # it carries the key: stored as a secret
        conn = cmd.inputs["connection"]
        assert conn["hostKey"].startswith("ssh-ed25519 "), name
        assert conn["privateKey"] == TEST_KEY and "password" not in conn, name


def test_control_plane_units_are_secure(dev):
    api = dev.resources[f"{CP}-kube-apiserver-unit"].inputs["stdin"]
    for flag in (
        "--anonymous-auth=false",
        "--authorization-mode=Node,RBAC",
        "--allow-privileged=false",
        "--tls-cert-file=",
        "--client-ca-file=",
        "--etcd-servers=https://127.0.0.1:2379",
    ):
        assert flag in api
    assert "--insecure-port" not in api
    etcd = dev.resources[f"{CP}-etcd-unit"].inputs["stdin"]
    assert "--client-cert-auth=true" in etcd and "--listen-client-urls=https://" in etcd and "http://192.168" not in etcd


def test_kubelet_config_is_secure_and_overridable(dev):
    kcfg = dev.resources[f"{WORKER}-kubelet-config"].inputs["stdin"]
    assert "readOnlyPort: 0" in kcfg and "mode: Webhook" in kcfg and "enabled: false" in kcfg
    lab = with_config(lambda c: c.update(kubelet={"failCgroupV1": False, "maxOpenFiles": 20000}))
    kcfg2 = lab.resources[f"{WORKER}-kubelet-config"].inputs["stdin"]
    assert "failCgroupV1: false" in kcfg2 and "maxOpenFiles: 20000" in kcfg2


def test_kubelet_override_merges_deeply_and_keeps_anonymous_auth_off():
    # Overriding one webhook field must not replace the whole authentication block.
    m = with_config(lambda c: c.update(kubelet={"authentication": {"webhook": {"cacheTTL": "30s"}}, "maxPods": 50}))
    kcfg = yaml.safe_load(m.resources[f"{WORKER}-kubelet-config"].inputs["stdin"])
    auth = kcfg["authentication"]
    assert auth["anonymous"] == {"enabled": False}
    assert auth["webhook"] == {"enabled": True, "cacheTTL": "30s"}
    assert auth["x509"] == {"clientCAFile": "/etc/vm-platform/pki/ca.crt"}
    assert kcfg["maxPods"] == 50 and kcfg["authorization"] == {"mode": "Webhook"}


def test_registry_password_cannot_break_or_extend_the_containerd_config():
    def auth_config(password: str) -> tuple[dict[str, Any], list[tuple[str, ...]]]:
        def mutate(c: dict[str, Any]) -> None:
            prod_like(c)
            c["registryPassword"] = password

        text = with_config(mutate).commands()[f"{WORKER}-containerd-config"].inputs["stdin"]
        doc = tomllib.loads(text)
        return doc, sorted(key_paths(doc))

    nasty = 'pa"ss\\word\n]\n[x]\nkey = "v"\x7f'
    doc, keys = auth_config(nasty)
    _, plain_keys = auth_config("registry-pass-123")
    auth = doc["plugins"]["io.containerd.grpc.v1.cri"]["registry"]["configs"]["192.168.226.131:5000"]["auth"]
    assert auth == {"username": "platform", "password": nasty}
    assert keys == plain_keys  # the password added no tables or keys


def key_paths(doc: dict[str, Any], prefix: tuple[str, ...] = ()) -> set[tuple[str, ...]]:
    out = set()
    for k, v in doc.items():
        out.add((*prefix, k))
        if isinstance(v, dict):
            out |= key_paths(v, (*prefix, k))
    return out


def test_runtime_takes_pause_and_images_from_private_registry(dev):
    ctd = dev.resources[f"{WORKER}-containerd-config"].inputs["stdin"]
    assert 'sandbox_image = "192.168.226.131:5000/pause:3.10"' in ctd
    hosts = dev.resources[f"{WORKER}-containerd-registry"].inputs
    assert hosts["create"].endswith("install-file.sh") and "DEST=/etc/containerd/certs.d/192.168.226.131:5000/hosts.toml" in hosts["create"]
    assert 'server = "http://192.168.226.131:5000"' in hosts["stdin"]  # dev allows plain http explicitly
    pushes = [n for n in dev.commands() if "-registry-push-" in n]
    assert sorted(pushes) == [
        f"{CP}-registry-push-coredns-1.15.0",
        f"{CP}-registry-push-eureka-server-1.1.0",
        f"{CP}-registry-push-metallb-controller-v0.15.2",
        f"{CP}-registry-push-metallb-speaker-v0.15.2",
        f"{CP}-registry-push-pause-3.10",
    ]


def test_registry_storage_is_persistent(dev):
    cfg = dev.resources[f"{CP}-registry-config"].inputs["stdin"]
    assert "rootdirectory: /var/lib/registry" in cfg
    assert "tls:" not in cfg  # dev: plain http by explicit choice


def test_pod_network_config_goes_to_etcd(dev):
    net = dev.resources[f"{CP}-pod-network"].inputs
    assert json.loads(net["stdin"]) == {"Backend": {"Type": "vxlan"}, "Network": "172.30.0.0/16", "SubnetLen": 24}
    assert "ETCD_PREFIX=/coreos.com/network" in net["create"]


def test_eureka_statefulset_services_pdb(dev):
    dep = dev.resources["eureka-app-statefulset"].inputs
    spec = dep["spec"]
    assert spec["replicas"] == 2 and spec["selector"]["matchLabels"] == {"app": "eurekaserver"}
    c = spec["template"]["spec"]["containers"][0]
    assert c["image"] == "192.168.226.131:5000/eureka-server:1.1.0"
    assert c["ports"] == [{"name": "http", "containerPort": 8761, "protocol": "TCP"}]  # no hostPort by default
    assert c["readinessProbe"]["httpGet"]["port"] == "http" and c["livenessProbe"]
    assert c["resources"]["limits"] == {"cpu": "1", "memory": "512Mi"}
    # Endpoints drain before the process stops: a preStop pause inside the grace period.
    assert c["lifecycle"] == {"preStop": {"sleep": {"seconds": 5}}} and spec["template"]["spec"]["terminationGracePeriodSeconds"] > 5
    # Peers: stable names from the headless Service, found by its SRV records; own name as hostname.
    assert spec["serviceName"] == "eurekaserver-peers" and spec["podManagementPolicy"] == "Parallel"
    env = {e["name"]: e.get("value", e.get("valueFrom")) for e in c["env"]}
    assert env["EUREKA_PEERS_SRV"] == "_http._tcp.eurekaserver-peers.platform.svc.cluster.local"
    assert env["EUREKA_INSTANCE_HOSTNAME"] == "$(POD_NAME).eurekaserver-peers.platform.svc.cluster.local"
    assert [e["name"] for e in c["env"]][0] == "POD_NAME"  # defined before the value that names it
    # Each replica's own id (Spring's default falls back to "localhost" on a slow start: one id for two).
    assert env["EUREKA_INSTANCE_INSTANCEID"] == "$(POD_NAME).eurekaserver-peers.platform.svc.cluster.local:8761"
    peers = dev.resources["eureka-app-peers"].inputs["spec"]
    assert peers["clusterIP"] == "None" and peers["publishNotReadyAddresses"] is True and peers["ports"][0]["name"] == "http"
    svc = dev.resources["eureka-app-service"].inputs["spec"]
    assert svc["type"] == "LoadBalancer" and svc["ports"][0]["port"] == 80 and svc["ports"][0]["targetPort"] == "http"
    pdb = dev.resources["eureka-app-pdb"].inputs["spec"]
    assert pdb["minAvailable"] == 1


def test_hostport_is_possible_when_configured():
    m = with_config(lambda c: c["eureka"].update(hostPort=8761, replicas=1, minAvailable=0))
    c = m.resources["eureka-app-statefulset"].inputs["spec"]["template"]["spec"]["containers"][0]
    assert c["ports"][0]["hostPort"] == 8761


def test_kubernetes_provider_is_explicit_with_stable_identifier(dev):
    prov = dev.of_type("pulumi:providers:kubernetes")[0].inputs
    assert prov["clusterIdentifier"] == "vm-platform-dev-centos-master"
    assert prov["kubeconfig"].startswith("apiVersion: v1")
    for r in dev.resources.values():
        if r.type.startswith("kubernetes:"):
            assert r.name in dev.graph  # created through the program, with the cluster's provider


# ---------------------------------------------------------------- ordering


def test_bootstrap_ordering(dev):
    kubelet = dev.depends_on(f"{WORKER}-kubelet-restart")
    assert {f"{CP}-kube-apiserver-restart", f"{WORKER}-containerd-restart", f"{WORKER}-cni-config", f"{WORKER}-kubelet-config"} <= kubelet
    assert f"{CP}-etcd-restart" in dev.depends_on(f"{CP}-kube-apiserver-restart")
    assert f"{CP}-pod-network" in dev.depends_on(f"{WORKER}-flanneld-restart")
    assert f"{CP}-scripts-bundle" in dev.depends_on(f"{CP}-prereqs")
    assert f"{WORKER}-kubelet-restart" in dev.depends_on(f"{WORKER}-ready")


def test_workloads_wait_for_ready_nodes_and_pushed_images(dev):
    # Every Kubernetes object uses the cluster's provider, which waits for both.
    prov = dev.depends_on("cluster-k8s")
    assert f"{WORKER}-ready" in prov and f"{CP}-registry-push-pause-3.10" in prov
    for r in dev.resources.values():
        if r.type.startswith("kubernetes:"):
            name, providers = r.name, []
            while name:  # a component's provider option is inherited by its children
                parent, _, extra = dev.graph[name]
                providers.append(extra["provider"])
                name = parent
            assert "cluster-k8s" in providers, r.name


# ---------------------------------------------------------------- what a change touches


def test_one_kubelet_setting_changes_only_its_file_and_kubelet_restart(dev):
    after = with_config(lambda c: c.update(kubelet={"maxPods": 50}))
    assert changed(dev, after) == {f"{WORKER}-kubelet-config": {"stdin"}, f"{WORKER}-kubelet-restart": {"triggers"}}


def test_one_api_server_flag_changes_only_its_unit_and_restart(dev):
    after = with_config(lambda c: c["network"].update(serviceCidr="10.96.0.0/16", clusterDns="10.96.0.10"))
    diff = changed(dev, after)
    assert f"{CP}-kube-apiserver-restart" in diff and f"{CP}-etcd-restart" not in diff and f"{CP}-kube-scheduler-restart" not in diff


def test_changing_a_script_reruns_only_the_steps_that_use_it(dev, monkeypatch):
    import components.remote as remote

    original = script_text("cni-config.sh")
    monkeypatch.setattr(remote, "script_text", lambda n: original + "\n# changed\n" if n == "cni-config.sh" else script_text(n))
    after = run_program(base_config())
    diff = changed(dev, after)
    assert diff == {f"{WORKER}-scripts-bundle": {"stdin"}, f"{WORKER}-cni-config": {"create"}}
    assert sha256(original)[:12] in dev.resources[f"{WORKER}-cni-config"].inputs["create"]


def test_rolling_update_changes_only_the_deployment_image(dev):
    after = with_config(
        lambda c: (
            c["eureka"].update(image="eureka-server:1.1.1"),
            # The new tag is in the registry already (pushed by CI: no archive, so no push step here).
            c["registry"]["images"].append({"name": "eureka-server:1.1.1"}),
        )
    )
    diff = changed(dev, after)
    assert diff == {"eureka-app-statefulset": {"spec"}}
    c_before = dev.resources["eureka-app-statefulset"].inputs["spec"]
    c_after = after.resources["eureka-app-statefulset"].inputs["spec"]
    assert c_after["template"]["spec"]["containers"][0]["image"].endswith("eureka-server:1.1.1")
    c_after["template"]["spec"]["containers"][0]["image"] = c_before["template"]["spec"]["containers"][0]["image"]
    assert c_after == c_before


def test_scaling_changes_only_replicas(dev):
    after = with_config(lambda c: c["eureka"].update(replicas=3))
    assert changed(dev, after) == {"eureka-app-statefulset": {"spec"}}
    b, a = dev.resources["eureka-app-statefulset"].inputs["spec"], copy.deepcopy(after.resources["eureka-app-statefulset"].inputs["spec"])
    assert a.pop("replicas") == 3 and b["replicas"] == 2
    assert {k: v for k, v in b.items() if k != "replicas"} == a


def test_maintenance_patches_exactly_the_listed_nodes():
    def two_workers(c: dict[str, Any]) -> None:
        c["workers"].append({"name": "centos-minion-2", "address": "192.168.226.132", "hostKey": c["workers"][0]["hostKey"]})

    before = with_config(two_workers)
    after = with_config(lambda c: (two_workers(c), c["maintenance"].update(nodes=["centos-minion-2"])))
    patches = after.of_type("kubernetes:core/v1:NodePatch")
    assert [p.inputs["metadata"]["name"] for p in patches] == ["centos-minion-2"]
    assert patches[0].inputs["spec"] == {"unschedulable": True}
    diff = changed(before, after)
    assert set(diff) == {"maintenance-centos-minion-2-cordon", "maintenance-centos-minion-2-drain"}
    drain = after.resources["maintenance-centos-minion-2-drain"].inputs
    assert "kubectl drain centos-minion-2 " in drain["create"] and "kubectl uncordon centos-minion-2" in drain["delete"]
    assert not before.of_type("kubernetes:core/v1:NodePatch")


# ---------------------------------------------------------------- secrets


def prod_like(c: dict[str, Any]) -> None:
    c["registry"].update(tls=True, allowPlainHttp=False, auth=True, username="platform")
    c["registryPassword"] = "registry-pass-123"
    c["secrets"] = {"db": {"namespace": "platform", "data": {"password": "db-pass-456"}}}


@pytest.fixture(scope="module")
def secured() -> RecordingMocks:
    return with_config(prod_like)


def test_secret_carrying_commands_log_nothing_and_store_secret_outputs(secured):
    m = secured
    for name in (f"{CP}-registry-htpasswd", f"{CP}-kubeconfig", f"{WORKER}-containerd-config", f"{CP}-registry-push-pause-3.10"):
        assert m.commands()[name].inputs["logging"] == "none", name
        assert {"stdout", "stderr"} <= set(m.graph[name][2]["additional_secret_outputs"]), name


def test_secrets_never_appear_in_command_text(secured):
    m = secured
    for name, cmd in m.commands().items():
        for field in ("create", "delete", "update"):
            text = cmd.inputs.get(field) or ""
            for secret in ("registry-pass-123", "db-pass-456", "PRIVATE KEY"):
                assert secret not in text, f"{secret!r} in {name}.{field}"
    # ...they travel on stdin instead
    assert m.commands()[f"{CP}-registry-htpasswd"].inputs["stdin"] == "registry-pass-123"
    sec = [r for r in m.of_type("kubernetes:core/v1:Secret") if r.inputs["metadata"]["name"] == "db"][0]
    assert sec.inputs["stringData"] == {"password": "db-pass-456"}


def test_registry_auth_gives_pull_secrets_and_containerd_credentials(secured):
    m = secured
    dep = m.of_type("kubernetes:apps/v1:Deployment")[0].inputs["spec"]["template"]["spec"]
    assert dep["imagePullSecrets"] == [{"name": "vm-platform-registry"}]
    assert "stringData" in m.secret_inputs["platform-platform-pull"]  # the docker config is stored as a secret
    assert "stringData" in m.secret_inputs["platform-secret-platform-db"]
    assert 'password = "registry-pass-123"' in m.commands()[f"{WORKER}-containerd-config"].inputs["stdin"]
    assert "https://192.168.226.131:5000" in m.commands()[f"{WORKER}-containerd-registry"].inputs["stdin"]


# ---------------------------------------------------------------- certificates


def test_certificate_validity_comes_from_settings(dev):
    cmds = dev.commands()
    pki = cmds[f"{CP}-pki"].inputs["create"]
    assert "CA_DAYS=3650" in pki and "CERT_DAYS=365" in pki
    assert "CERT_DAYS=365" in cmds[f"{WORKER}-sign"].inputs["create"]
    short = with_config(lambda c: c.update(pki={"caValidityDays": 30, "certValidityDays": 2}))
    assert "CA_DAYS=30" in short.commands()[f"{CP}-pki"].inputs["create"]
    assert "CERT_DAYS=2" in short.commands()[f"{WORKER}-sign"].inputs["create"]
    # The sign step re-runs with the new validity, so the node's certificates are reissued.
    assert "create" in changed(dev, short)[f"{WORKER}-sign"]


def test_expiry_report_is_parsed_and_never_installed_as_a_certificate(dev):
    from components.control_plane import certificate_expiry, without_expiry

    out = "ca=Y2VydAo=\nexpiry=" + __import__("base64").b64encode(b"ca 2036-01-01T00:00:00Z\nadmin 2027-02-03T04:05:06Z\n").decode() + "\n"
    assert certificate_expiry(out) == {"ca": "2036-01-01T00:00:00Z", "admin": "2027-02-03T04:05:06Z"}
    assert without_expiry(out) == "ca=Y2VydAo=\n"
    assert certificate_expiry("ca=Y2VydAo=\n") == {}
    # The worker installs the signed certs and the CA certs: no expiry line reaches node-certs.sh.
    stdin = dev.commands()[f"{WORKER}-certs"].inputs["stdin"]
    names = [line.split("=", 1)[0] for line in stdin.splitlines() if line]
    assert sorted(names) == ["ca", "etcd_ca", "flanneld", "kube-proxy", "kubelet"], names


def test_a_rebuilt_host_gets_its_files_copied_again(dev):
    """A reinstalled VM has a new SSH host key: every copy to it is replaced (re-copied), not
    updated in place with nothing copied."""
    new_key = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIRebuiltHostKeyOfTheControlPlane"
    rebuilt = with_config(lambda c: c["controlPlane"].update(hostKey=new_key))
    copies = [n for n, r in dev.resources.items() if r.type == "command:remote:CopyToRemote"]
    assert copies and all(n.startswith(f"{CP}-") for n in copies)
    for name in copies:
        assert new_key in rebuilt.resources[name].inputs["triggers"]
        assert "triggers" in changed(dev, rebuilt)[name]


# ---------------------------------------------------------------- the platform: DNS, LoadBalancer, services


def test_cluster_dns_serves_the_cluster_domain_at_cluster_dns(dev):
    svc = dev.resources["dns-service"].inputs
    assert svc["metadata"]["namespace"] == "kube-system" and svc["metadata"]["name"] == "kube-dns"
    assert svc["spec"]["clusterIP"] == "10.254.0.10" and {p["port"] for p in svc["spec"]["ports"]} >= {53}
    corefile = dev.resources["dns-corefile"].inputs["data"]["Corefile"]
    assert "kubernetes cluster.local in-addr.arpa ip6.arpa" in corefile
    assert "forward . /etc/resolv.conf" in corefile  # the hosts' resolvers by default
    dep = dev.resources["dns-deployment"].inputs["spec"]
    c = dep["template"]["spec"]["containers"][0]
    assert dep["replicas"] == 2 and c["image"] == "192.168.226.131:5000/coredns:1.15.0"
    assert c["securityContext"]["capabilities"] == {"drop": ["ALL"]} and dep["template"]["spec"]["securityContext"]["runAsNonRoot"]
    offline = with_config(lambda cfg: cfg.update(dns={"upstream": []}))
    assert "forward" not in offline.resources["dns-corefile"].inputs["data"]["Corefile"]
    # A changed Corefile rolls the pods (its digest is in the template).
    assert changed(dev, offline) == {"dns-corefile": {"data"}, "dns-deployment": {"spec"}}


def test_metallb_announces_the_pool_from_settings_with_upstream_crds_and_no_wildcards(dev):
    pool = dev.resources["metallb-pool"].inputs
    assert pool["spec"]["addresses"] == ["192.168.226.200-192.168.226.220"] and pool["metadata"]["namespace"] == "metallb-system"
    assert dev.resources["metallb-l2"].inputs["spec"] == {"ipAddressPools": ["vm-platform"]}
    crds = {r.inputs["metadata"]["name"] for r in dev.of_type("kubernetes:apiextensions.k8s.io/v1:CustomResourceDefinition")}
    assert {"ipaddresspools.metallb.io", "l2advertisements.metallb.io", "bgppeers.metallb.io"} <= crds
    for kind in ("ClusterRole", "Role"):
        for r in dev.of_type(f"kubernetes:rbac.authorization.k8s.io/v1:{kind}"):
            assert all("*" not in rule.get("verbs", []) for rule in r.inputs["rules"]), r.inputs["metadata"]
    ctl = dev.resources["metallb-controller"].inputs["spec"]["template"]["spec"]["containers"][0]
    assert "--webhook-mode=disabled" in ctl["args"]
    speaker = dev.resources["metallb-speaker"].inputs["spec"]["template"]["spec"]
    assert speaker["hostNetwork"] is True and speaker["containers"][0]["securityContext"]["capabilities"] == {"drop": ["ALL"], "add": ["NET_RAW"]}
    ns = dev.resources["metallb-namespace"].inputs["metadata"]["labels"]
    assert ns["pod-security.kubernetes.io/enforce"] == "privileged"
    # The Eureka LoadBalancer Service waits for MetalLB, so `up` sees its address.
    assert "metallb-l2" in dev.depends_on("eureka-app-service")


def test_no_metallb_without_network_load_balancer_metallb():
    m = with_config(lambda c: (c["network"].update(loadBalancer="external"), c["network"].pop("loadBalancerPool")))
    assert not [n for n in m.resources if n.startswith("metallb-")]


def _with_service(c, **more):
    c["registry"]["images"].append({"name": "example-service:1.0.0"})
    c["secrets"] = {"greeting": {"data": {"text": "hello"}}}  # the harness stores "secrets" as a secret key
    c["services"] = {"example-service": {"image": "example-service:1.0.0", "eurekaClient": True, "secretEnv": {"APP_GREETING": "greeting/text"}, **more}}


def test_a_service_from_config_registers_with_eureka_and_reads_its_secret():
    m = with_config(_with_service)
    dep = m.resources["service-example-service-deployment"].inputs["spec"]
    env = {e["name"]: e for e in dep["template"]["spec"]["containers"][0]["env"]}
    assert env["APP_GREETING"]["valueFrom"] == {"secretKeyRef": {"name": "greeting", "key": "text"}}
    assert env["EUREKA_CLIENT_SERVICEURL_DEFAULTZONE"]["value"] == "http://eurekaserver.platform.svc.cluster.local:80/eureka/"
    assert env["EUREKA_INSTANCE_IPADDRESS"]["value"] == "$(POD_IP)" and env["POD_IP"]["valueFrom"]["fieldRef"]["fieldPath"] == "status.podIP"
    assert env["SPRING_APPLICATION_NAME"]["value"] == "example-service"
    assert env["EUREKA_INSTANCE_INSTANCEID"]["value"] == "$(POD_NAME):8080" and env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    assert "platform-secret-platform-greeting" in m.depends_on("service-example-service")
    assert m.resources["service-example-service-service"].inputs["spec"]["type"] == "ClusterIP"


def test_scaling_a_service_changes_only_its_replicas():
    before = with_config(_with_service)
    after = with_config(lambda c: _with_service(c, replicas=5))
    assert changed(before, after) == {"service-example-service-deployment": {"spec"}}
    b, a = before.resources["service-example-service-deployment"].inputs["spec"], after.resources["service-example-service-deployment"].inputs["spec"]
    assert (b["replicas"], a["replicas"]) == (2, 5) and {k: v for k, v in a.items() if k != "replicas"} == {k: v for k, v in b.items() if k != "replicas"}


# ---------------------------------------------------------------- day-2: workers, node loss, rollouts


def _second_worker(c: dict[str, Any]) -> None:
    c["workers"].append({"name": "centos-minion-2", "address": "192.168.226.132", "hostKey": c["workers"][0]["hostKey"]})


def test_adding_a_worker_adds_only_its_own_steps_and_touches_no_other_host(dev):
    after = with_config(_second_worker)
    diff = changed(dev, after)
    assert diff and all(keys == {"*"} for keys in diff.values()), {k: v for k, v in diff.items() if v != {"*"}}
    assert all("centos-minion-2" in name for name in diff), sorted(n for n in diff if "centos-minion-2" not in n)
    # Each host's /etc/hosts names the control plane and itself only.
    hosts = after.resources["centos-minion-2-hosts-file"].inputs["stdin"]
    assert hosts == "192.168.226.131 centos-master\n192.168.226.132 centos-minion-2\n"


def test_removing_a_worker_drains_and_deletes_its_node_and_lease_first():
    m = with_config(_second_worker)
    ready = m.resources["centos-minion-2-ready"].inputs
    assert "remove-node.sh" in ready["delete"] and "NODE_NAME=centos-minion-2" in ready["delete"]
    # Deleted before the host's own steps: it depends on them (Pulumi deletes dependents first).
    assert {"centos-minion-2-kubelet-restart", "centos-minion-2-kube-proxy-restart"} <= set(m.depends_on("centos-minion-2-ready"))
    script = script_text("remove-node.sh")
    assert "kubectl drain" in script and "kubectl delete node" in script
    # The flannel lease goes after the worker's flanneld has stopped: its unit depends on the
    # release step, so the unit is deleted first (a running flanneld would take the lease again).
    lease = m.resources["centos-minion-2-flannel-lease"].inputs
    assert "ACTION=release" in lease["delete"] and "NODE_ADDR=192.168.226.132" in lease["delete"]
    assert "centos-minion-2-flannel-lease" in m.depends_on("centos-minion-2-flanneld-unit")
    assert "vmp_etcdctl del" in script_text("flannel-lease.sh")


def test_node_loss_settings_reach_the_controller_manager_api_server_kubelet_and_pods(dev):
    after = with_config(lambda c: c.update(nodeLoss={"detectSeconds": 16, "evictSeconds": 4}))
    cm = after.resources[f"{CP}-kube-controller-manager-unit"].inputs["stdin"]
    api = after.resources[f"{CP}-kube-apiserver-unit"].inputs["stdin"]
    kubelet = yaml.safe_load(after.resources[f"{WORKER}-kubelet-config"].inputs["stdin"])
    assert "--node-monitor-grace-period=16s" in cm and "--node-monitor-period=2s" in cm
    assert "--default-not-ready-toleration-seconds=4" in api and "--default-unreachable-toleration-seconds=4" in api
    assert (kubelet["nodeLeaseDurationSeconds"], kubelet["nodeStatusUpdateFrequency"]) == (16, "4s")
    pods = after.resources["eureka-app-statefulset"].inputs["spec"]["template"]["spec"]
    assert {(t["key"], t["tolerationSeconds"]) for t in pods["tolerations"]} == {("node.kubernetes.io/not-ready", 4), ("node.kubernetes.io/unreachable", 4)}
    # The defaults are Kubernetes' own.
    default = with_config(lambda c: c.pop("nodeLoss", None))
    default_kubelet = yaml.safe_load(default.resources[f"{WORKER}-kubelet-config"].inputs["stdin"])
    assert (default_kubelet["nodeLeaseDurationSeconds"], default_kubelet["nodeStatusUpdateFrequency"]) == (40, "10s")
    assert "--node-monitor-grace-period=50s" in default.resources[f"{CP}-kube-controller-manager-unit"].inputs["stdin"]


@pytest.mark.parametrize(
    "replicas,surge,unavailable,deadline,want",
    [(2, "1", "0", 45, 135), (5, "25%", "0", 100, 400), (4, "0", "1", 60, 300), (10, "50%", "50%", 30, 60), (1, "25%", "0", 180, 360)],
)
def test_rollout_timeout_is_the_progress_deadline_per_wave_plus_one(replicas, surge, unavailable, deadline, want):
    from components.microservice import MicroserviceArgs, rollout_timeout

    a = MicroserviceArgs(
        namespace="ns",
        app="a",
        image="i",
        replicas=replicas,
        container_port=1,
        service_port=1,
        max_surge=surge,
        max_unavailable=unavailable,
        progress_deadline=deadline,
    )
    assert rollout_timeout(a) == want


def _field_refs(value: Any, path: str = ""):
    """(path, fieldRef) for every downward-API fieldRef anywhere in a value."""
    if isinstance(value, dict):
        for k, v in value.items():
            if k == "fieldRef" and isinstance(v, dict):
                yield f"{path}.{k}", v
            else:
                yield from _field_refs(v, f"{path}.{k}")
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _field_refs(v, f"{path}[{i}]")


def test_every_field_ref_spells_out_the_api_version_the_server_would_default():
    """A fieldRef is atomic under server-side apply: without apiVersion, a second field manager
    (the run after one killed mid-create) conflicts with the stored, defaulted value."""
    m = with_config(_with_service)
    refs = [(name, p, ref) for name, r in m.resources.items() if r.type.startswith("kubernetes:") for p, ref in _field_refs(r.inputs)]
    assert {name for name, _, _ in refs} >= {"eureka-app-statefulset", "metallb-speaker", "metallb-controller", "service-example-service-deployment"}
    assert [(name, p) for name, p, ref in refs if ref.get("apiVersion") != "v1"] == []


def test_every_kubernetes_object_is_applied_with_force():
    """A dead run's field manager co-owns what it created; only a forced apply takes a changed
    field over from it (components/k8s.py PATCH_FORCE)."""
    m = with_config(_with_service)
    objects = {name: r for name, r in m.resources.items() if r.type.startswith("kubernetes:") and not r.type.startswith("pulumi:providers")}
    assert len(objects) > 40, len(objects)
    assert [n for n, r in objects.items() if (r.inputs.get("metadata") or {}).get("annotations", {}).get("pulumi.com/patchForce") != "true"] == []
    # An object's own annotations stay beside it.
    assert m.resources["metallb-namespace"].inputs["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"
