"""The image under test: built once per session from docker/backend.Dockerfile, or $EQ_IMAGE.

These tests need a Docker engine with BuildKit (`nox -s image`). Without one they fail and
say what to start: they never skip.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from imagetools import DockerUnavailable, base_image, build, docker, require_docker

TAG = "eq-backend:image-test"
REVISION = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture(scope="session")
def image() -> str:
    try:
        require_docker()
    except DockerUnavailable as error:
        pytest.fail(str(error), pytrace=False)
    given = os.environ.get("EQ_IMAGE")
    if given:
        return given
    base = base_image()
    try:
        build(
            TAG,
            base=base,
            build_args={"REVISION": REVISION, "VERSION": "image-test", "SOURCE": "eq-platform"},
        )
    except DockerUnavailable as error:
        pytest.fail(str(error), pytrace=False)
    except AssertionError as error:
        hint = (
            ""
            if base
            else "\n(no base image: $EQ_BASE_IMAGE is unset and the local registry has no "
            "cluster base, so the Dockerfile's default was used, which needs a registry "
            "that can be pulled from; `inv cluster.up` pushes a local base)"
        )
        pytest.fail(f"{error}{hint}", pytrace=False)
    return TAG


@pytest.fixture(scope="session")
def saved_layers(image: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`docker save` of the image, unpacked: the image tarball's layer tarballs."""
    out = tmp_path_factory.mktemp("saved")
    archive = out / "image.tar"
    with archive.open("wb") as sink:
        subprocess.run(["docker", "save", image], stdout=sink, check=True, timeout=300)
    subprocess.run(["tar", "-xf", str(archive), "-C", str(out)], check=True, timeout=300)
    archive.unlink()
    return out


@pytest.fixture
def container_name(request: pytest.FixtureRequest) -> Iterator[str]:
    name = f"eq-image-test-{request.node.name}".replace("[", "-").replace("]", "")[:60]
    docker("rm", "-f", name, check=False)
    yield name
    docker("rm", "-f", name, check=False)
