"""Rules added with the settings package: images the registry provides, kubelets that stay
authenticated, certificate lifetimes."""

from __future__ import annotations

from typing import Any

import pytest

from components.settings import Secret, parse_settings
from tests.unit.settings.helpers import errors_for, run_fix, setp, stack_raw

# --- eureka.image must be one registry.images provides


def test_an_image_the_registry_does_not_provide_is_refused():
    problems = errors_for(setp("eureka.image", "eureka-server:1.1.1"))
    assert any(
        p.startswith(
            "eureka.image: expected an image that registry.images provides; list it there with its archive, or the pull fails on the nodes, found \"eureka-server:1.1.1\". Fix: pulumi config set --path 'registry.images[5].name' eureka-server:1.1.1"
        )
        for p in problems
    ), problems


def test_an_image_listed_in_the_registry_is_accepted():
    raw = stack_raw("dev")
    raw["eureka"]["image"] = "eureka-server:1.1.1"
    raw["registry"]["images"].append({"name": "eureka-server:1.1.1", "archive": ""})  # pushed by other means
    assert parse_settings(raw, "dev").eureka.image == "eureka-server:1.1.1"


def test_a_digest_is_accepted_when_its_repository_is_listed():
    digest = "eureka-server@sha256:" + "a" * 64
    raw = stack_raw("dev")
    raw["eureka"]["image"] = digest
    assert parse_settings(raw, "dev").eureka.image == digest
    raw["eureka"]["image"] = "other@sha256:" + "a" * 64
    with pytest.raises(Exception, match=r"eureka.image: expected an image that registry.images provides"):
        parse_settings(raw, "dev")


# --- kubelet overrides never open the kubelet API

OPEN_KUBELETS = [
    (
        "anonymous",
        {"authentication": {"anonymous": {"enabled": True}}},
        "kubelet.authentication.anonymous.enabled: expected false: an anonymous kubelet API",
        "pulumi config set --path kubelet.authentication.anonymous.enabled false",
    ),
    (
        "anonymous-as-text",
        {"authentication": {"anonymous": {"enabled": "true"}}},
        "kubelet.authentication.anonymous.enabled: expected false",
        "pulumi config set --path kubelet.authentication.anonymous.enabled false",
    ),
    (
        "always-allow",
        {"authorization": {"mode": "AlwaysAllow"}},
        "kubelet.authorization.mode: expected Webhook: any other mode",
        "kubelet.authorization.mode Webhook",
    ),
    ("read-only-port", {"readOnlyPort": 10255}, "kubelet.readOnlyPort: expected 0 (off): the read-only port serves", "kubelet.readOnlyPort 0"),
]


@pytest.mark.parametrize("kubelet,expected,fix", [pytest.param(k, e, f, id=i) for i, k, e, f in OPEN_KUBELETS])
def test_kubelet_overrides_that_open_the_kubelet_are_refused(kubelet, expected, fix):
    raw = stack_raw("dev")
    raw["kubelet"] = {"maxPods": 60, **kubelet}
    problems = errors_for(lambda r: (r.clear(), r.update(raw)))
    assert len(problems) == 1 and problems[0].startswith(expected) and fix in problems[0], problems
    assert parse_settings(run_fix(raw, problems[0].split(". Fix: ")[1]), "dev").kubelet["maxPods"] == 60


def test_kubelet_overrides_that_keep_it_closed_are_accepted():
    raw = stack_raw("dev")
    raw["kubelet"] = {
        "authentication": {"anonymous": {"enabled": False}, "webhook": {"enabled": True, "cacheTTL": "30s"}},
        "authorization": {"mode": "Webhook"},
        "readOnlyPort": 0,
    }
    assert parse_settings(raw, "dev").kubelet["authorization"] == {"mode": "Webhook"}


# --- certificate lifetimes


def test_certificate_lifetimes_default_to_ten_years_and_one():
    pki = parse_settings(stack_raw("dev"), "dev").pki
    assert (pki.ca_validity_days, pki.cert_validity_days) == (3650, 365)


def test_certificate_lifetimes_are_settings():
    raw = stack_raw("dev")
    raw["pki"] = {"caValidityDays": 7300, "certValidityDays": 90}
    pki = parse_settings(raw, "dev").pki
    assert (pki.ca_validity_days, pki.cert_validity_days) == (7300, 90)


PKI_PROBLEMS: list[tuple[str, dict[str, Any], str]] = [
    ("ca-too-short", {"caValidityDays": 7}, "pki.caValidityDays: expected an integer from 30 to 36500, found 7"),
    ("cert-zero", {"certValidityDays": 0}, "pki.certValidityDays: expected an integer from 1 to 3650, found 0"),
    (
        "cert-outlives-ca",
        {"caValidityDays": 365, "certValidityDays": 730},
        "pki.certValidityDays: expected at most pki.caValidityDays (365): a certificate must not outlive its CA, found 730. Fix: pulumi config set --path pki.certValidityDays 365",
    ),
    (
        "ca-shorter-than-default-cert",
        {"caValidityDays": 100},
        "pki.caValidityDays: expected at least pki.certValidityDays (365): a certificate must not outlive its CA, found 100. Fix: pulumi config set --path pki.caValidityDays 365",
    ),
]


@pytest.mark.parametrize("pki,expected", [pytest.param(p, e, id=i) for i, p, e in PKI_PROBLEMS])
def test_certificate_lifetime_problems(pki, expected):
    problems = errors_for(setp("pki", pki))
    assert any(p.startswith(expected) for p in problems), problems


# --- MetalLB's pool lies on the hosts' segment and holds no host


def test_a_metallb_pool_outside_the_host_network_is_refused_with_a_pool_inside():
    problems = errors_for(setp("network.loadBalancerPool", "10.9.9.200-10.9.9.220"))
    assert any(p.startswith("network.loadBalancerPool: expected a range inside network.hostCidr (192.168.226.0/24)") for p in problems), problems
    assert any("Fix: pulumi config set --path network.loadBalancerPool 192.168.226." in p for p in problems), problems


def test_a_metallb_pool_holding_a_host_address_names_the_host():
    problems = errors_for(setp("network.loadBalancerPool", "192.168.226.120-192.168.226.140"))
    assert any("it holds centos-master (192.168.226.131), centos-minion-1 (192.168.226.130)" in p for p in problems), problems


def test_metallb_without_a_pool_or_with_a_reversed_range_is_refused():
    missing = errors_for(lambda raw: raw["network"].pop("loadBalancerPool"))
    assert any(p.startswith("network.loadBalancerPool: expected an address range for MetalLB inside network.hostCidr") for p in missing), missing
    reversed_ = errors_for(setp("network.loadBalancerPool", "192.168.226.220-192.168.226.200"))
    assert any(p.startswith("network.loadBalancerPool: expected a range whose first address is not after its last") for p in reversed_), reversed_


def test_moving_the_hosts_moves_the_pool_in_the_fix():
    def moved(raw):
        raw["controlPlane"]["address"] = "10.20.0.10"
        raw["workers"][0]["address"] = "10.20.0.11"

    problems = errors_for(moved)
    assert any("network.hostCidr 10.20.0.0/24 && pulumi config set --path network.loadBalancerPool 10.20.0.200-10.20.0.220" in p for p in problems), problems


def test_metallb_images_must_be_in_the_registry():
    problems = errors_for(lambda raw: raw["registry"].update(images=[i for i in raw["registry"]["images"] if "metallb" not in i["name"]]))
    assert [p.split(":", 1)[0] for p in problems] == ["metallb.controllerImage", "metallb.speakerImage"], problems


# --- services: secretEnv names a Secret key in the service's namespace


def _service(raw, **svc):
    raw["registry"]["images"].append({"name": "example-service:1.0.0", "archive": ""})
    raw["secrets"] = {"greeting": {"data": {"text": Secret("hi")}}}
    raw["services"] = {"example-service": {"image": "example-service:1.0.0", **svc}}


def test_a_service_reading_a_missing_secret_key_gets_the_keys_that_exist():
    problems = errors_for(lambda raw: _service(raw, secretEnv={"APP_GREETING": "greeting/txt"}))
    assert any(
        p.startswith('services.example-service.secretEnv.APP_GREETING: expected a key of secrets.greeting.data (text), found "greeting/txt". Fix: ')
        and p.endswith("APP_GREETING greeting/text")
        for p in problems
    ), problems


def test_a_valid_service_parses_with_its_defaults():
    raw = stack_raw("dev")
    _service(raw, secretEnv={"APP_GREETING": "greeting/text"}, eurekaClient=True)
    svc = parse_settings(raw, "dev").services[0]
    assert (svc.name, svc.namespace, svc.replicas, svc.port, svc.service_type, svc.eureka_client) == ("example-service", "platform", 2, 8080, "ClusterIP", True)


def _two_services(raw, **orders):
    _service(raw)
    raw["services"]["orders"] = {"image": "example-service:1.0.0", **orders}


def test_a_service_calling_an_unknown_service_gets_the_names_that_exist():
    problems = errors_for(lambda raw: _two_services(raw, calls=["example-servce"]))
    hit = [p for p in problems if p.startswith("services.orders.calls[0]:")]
    assert hit and "another service under `services` (example-service)" in hit[0] and hit[0].endswith("calls[0]' example-service"), problems


def test_a_service_calling_itself_is_told_so():
    problems = errors_for(lambda raw: _two_services(raw, calls=["orders"]))
    assert any(p.startswith("services.orders.calls[0]:") and "(not itself: its own pods need no rule)" in p for p in problems), problems


def test_calls_must_be_a_list_of_names():
    problems = errors_for(lambda raw: _two_services(raw, calls="example-service"))
    assert any(p.startswith("services.orders.calls:") for p in problems), problems


def test_calls_to_another_service_parse():
    raw = stack_raw("dev")
    _two_services(raw, calls=["example-service"])
    by_name = {x.name: x for x in parse_settings(raw, "dev").services}
    assert by_name["orders"].calls == ("example-service",) and by_name["example-service"].calls == ()


def test_a_service_with_a_budget_that_blocks_drains_is_refused():
    problems = errors_for(lambda raw: _service(raw, replicas=1, minAvailable=1))
    assert any(p.startswith("services.example-service.minAvailable: expected fewer than services.example-service.replicas (1)") for p in problems), problems
