"""The project's one image-reference parser (policy/rules/imageref.py): its parts, and that it
imports without the policy SDK, so components/settings can share it."""

from __future__ import annotations

import subprocess
import sys

import pytest
from rules.imageref import ImageRef, parse_image_ref

from tests.unit.harness import ROOT

DIGEST = "sha256:" + "a" * 64


@pytest.mark.parametrize(
    "image, parts, pinned",
    [
        ("192.168.226.131:5000/eureka-server:1.0.0", ("192.168.226.131:5000", "eureka-server", "1.0.0", ""), True),
        ("registry.example:5000/team/app@" + DIGEST, ("registry.example:5000", "team/app", "", DIGEST), True),
        ("localhost/app:latest", ("localhost", "app", "latest", ""), False),
        ("nginx", ("", "nginx", "", ""), False),
        ("library/nginx:1.27", ("", "library/nginx", "1.27", ""), True),
        ("eureka-server:1.0.0@" + DIGEST, ("", "eureka-server", "1.0.0", DIGEST), True),
    ],
)
def test_parts_and_pinning(image: str, parts: tuple[str, str, str, str], pinned: bool) -> None:
    ref = parse_image_ref(image)
    assert (ref.registry, ref.repository, ref.tag, ref.digest) == parts
    assert ref.pinned is pinned and ref.well_formed


@pytest.mark.parametrize("image", ["Eureka:1.0", "app:bad tag", "app@sha256:xyz", "bad_host:5000/app:1", "app:" + "x" * 129])
def test_malformed_references_are_not_well_formed(image: str) -> None:
    assert not parse_image_ref(image).well_formed


def test_a_ref_is_a_frozen_value() -> None:
    assert parse_image_ref("a:1") == ImageRef("", "a", "1", "")


def test_imports_without_the_policy_sdk() -> None:
    code = "import sys; from policy.rules.imageref import parse_image_ref; assert 'pulumi_policy' not in sys.modules and 'pulumi' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)
