"""Image references: parsing and digest pinning."""

from __future__ import annotations

import pytest
from eq_deploy.images import ImageRef, image_for, parse_image

DIGEST = "sha256:" + "0f" * 32


@pytest.mark.parametrize(
    ("ref", "expected"),
    [
        ("eq-backend", ImageRef("", "eq-backend")),
        ("someone/eq-backend:sha-abc1234", ImageRef("", "someone/eq-backend", "sha-abc1234")),
        ("127.0.0.1:5000/eq-backend:t", ImageRef("127.0.0.1:5000", "eq-backend", "t")),
        ("localhost/a/b", ImageRef("localhost", "a/b")),
        (f"ghcr.io/o/r:t@{DIGEST}", ImageRef("ghcr.io", "o/r", "t", DIGEST)),
    ],
)
def test_parse(ref: str, expected: ImageRef) -> None:
    assert parse_image(ref) == expected
    assert str(parse_image(ref)) == ref


@pytest.mark.parametrize(
    "ref", ["", "REPLACE_IMG", "a b", "Repo/x", "x:bad tag", "x@sha256:123", " x"]
)
def test_invalid(ref: str) -> None:
    with pytest.raises(ValueError, match=r"invalid|not an image"):
        parse_image(ref)


def test_pin_and_api_path() -> None:
    ref = image_for("127.0.0.1:5000/eq-backend:old", "sha-abc1234", DIGEST)
    assert str(ref) == f"127.0.0.1:5000/eq-backend:sha-abc1234@{DIGEST}"
    assert parse_image("python").api_path == "library/python"
    assert parse_image("python").registry_host == "docker.io"
    assert parse_image("127.0.0.1:5000/eq-backend").api_path == "eq-backend"


def node(name: str, arch: str) -> dict[str, object]:
    return {
        "metadata": {"name": name},
        "status": {"nodeInfo": {"operatingSystem": "linux", "architecture": arch}},
    }


def test_arm64_node_without_an_arm64_build_is_reported() -> None:
    from eq_deploy.registry import missing_platforms

    nodes = [node("a", "amd64"), node("b", "arm64")]
    assert missing_platforms(nodes, {"linux/amd64"}) == {"b": "linux/arm64"}
    assert missing_platforms(nodes, {"linux/amd64", "linux/arm64"}) == {}
    assert missing_platforms(nodes, set()) == {}  # unknown platforms: nothing claimed
