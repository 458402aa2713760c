"""`inv build` picks its base image from the environment's candidates: the official one where
its registry answers, else the base the local cluster publishes (issue 13, item 5)."""

from __future__ import annotations

import pytest
from eq_deploy.base_image import choose_base_image
from eq_deploy.build import BuildOptions, with_base_image
from eq_deploy.environments import load_environment
from eq_deploy.errors import DeployError, UsageError

OFFICIAL = "docker.io/library/python:3.11-slim-bookworm"
LOCAL = "127.0.0.1:5000/eq/python-base:3.11-bookworm"
BOTH = {"linux/amd64", "linux/arm64"}


class Registries:
    """Answers which platforms an image has, from `answers` (or a failure message), and
    remembers what it was asked."""

    def __init__(self, official: set[str] | str = BOTH, local: set[str] | str = BOTH) -> None:
        self.answers = {OFFICIAL: official, LOCAL: local}
        self.asked: list[str] = []

    def __call__(self, image: str) -> set[str]:
        self.asked.append(image)
        answer = self.answers[image]
        if isinstance(answer, str):
            raise DeployError(answer)
        return answer


def test_the_local_environment_prefers_the_official_base_then_the_local_clusters() -> None:
    assert load_environment("local").base_images == (OFFICIAL, LOCAL)
    assert load_environment("cloud").base_images == ()  # the Dockerfile's default


def test_the_official_base_when_its_registry_answers() -> None:
    probe = Registries()
    assert choose_base_image([OFFICIAL, LOCAL], platforms_of=probe) == (OFFICIAL, [])
    assert probe.asked == [OFFICIAL]


def test_the_local_clusters_base_when_docker_hub_is_unreachable() -> None:
    unreachable = f"image {OFFICIAL}: registry docker.io unreachable (ConnectError)"
    probe = Registries(official=unreachable)
    base, passed_over = choose_base_image([OFFICIAL, LOCAL], platforms_of=probe)
    assert (base, passed_over) == (LOCAL, [unreachable])


def test_a_base_without_a_platform_asked_for_is_passed_over() -> None:
    probe = Registries(official={"linux/amd64"})
    base, passed_over = choose_base_image(
        [OFFICIAL, LOCAL],
        platforms="linux/amd64,linux/arm64",
        platforms_of=probe,
    )
    assert base == LOCAL
    assert passed_over == [f"{OFFICIAL} has no linux/arm64"]


def test_an_explicit_build_arg_wins_and_nothing_is_asked() -> None:
    probe = Registries(official="unreachable", local="unreachable")
    chosen = choose_base_image(
        [OFFICIAL, LOCAL],
        build_args=["BASE_IMAGE=my/base:1"],
        platforms_of=probe,
    )
    assert chosen == (None, [])
    assert probe.asked == []


def test_no_candidate_left_is_one_line_naming_each_and_the_way_out() -> None:
    probe = Registries(official="docker.io unreachable", local="127.0.0.1:5000 unreachable")
    with pytest.raises(UsageError) as failed:
        choose_base_image([OFFICIAL, LOCAL], platforms_of=probe)
    message = str(failed.value)
    assert "\n" not in message
    assert "docker.io unreachable; 127.0.0.1:5000 unreachable" in message
    assert "inv cluster.up" in message
    assert "--build-arg BASE_IMAGE=" in message


def test_the_chosen_base_becomes_the_build_arg(monkeypatch: pytest.MonkeyPatch) -> None:
    import eq_deploy.base_image as base_image

    monkeypatch.setattr(base_image, "registry_platforms", Registries(official="unreachable"))
    opts = BuildOptions(repository="127.0.0.1:5000/eq-backend", base_images=(OFFICIAL, LOCAL))
    assert with_base_image(opts).build_args == [f"BASE_IMAGE={LOCAL}"]
    explicit = BuildOptions(
        repository="r", build_args=["BASE_IMAGE=x:1"], base_images=(OFFICIAL, LOCAL)
    )
    assert with_base_image(explicit).build_args == ["BASE_IMAGE=x:1"]


def test_an_unreachable_registry_is_passed_over_with_the_reason() -> None:
    """The real probe (docker daemon, else the registry's v2 API) on a port nothing serves."""
    nowhere = "127.0.0.1:9/eq/python-base:3.11-bookworm"
    with pytest.raises(UsageError, match=r"127\.0\.0\.1:9 unreachable"):
        choose_base_image([nowhere])
