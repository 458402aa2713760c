"""Which Python base image `inv build` starts from.

An environment file may list candidates (`base_images`); the first one its registry has, for
every platform asked for, is used. The `local` environment lists the official image and then
the base the local cluster publishes, so a machine without Docker Hub builds without a flag
and a machine with it builds from the official image as everywhere else. An explicit
`--build-arg BASE_IMAGE=...` always wins; no candidates means the Dockerfile's default.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from eq_deploy.errors import DeployError, UsageError

# (image) -> its platforms `os/arch` in its registry, or a DeployError saying why not.
PlatformsOf = Callable[[str], set[str]]


def registry_platforms(image: str) -> set[str]:
    from eq_deploy.registry import resolve

    return resolve(image)[1]


def explicit_base(build_args: Sequence[str]) -> str | None:
    for arg in build_args:
        key, sep, value = arg.partition("=")
        if sep and key == "BASE_IMAGE":
            return value
    return None


def choose_base_image(
    candidates: Sequence[str],
    *,
    build_args: Sequence[str] = (),
    platforms: str = "",
    platforms_of: PlatformsOf | None = None,
) -> tuple[str | None, list[str]]:
    """(the base to pass as BASE_IMAGE, or None to leave the build's as it is; why each
    candidate before it was passed over). Raises a UsageError when no candidate will do."""
    if explicit_base(build_args) is not None or not candidates:
        return None, []
    platforms_of = platforms_of or registry_platforms
    wanted = {p.strip() for p in platforms.split(",") if p.strip()}
    passed_over: list[str] = []
    for image in candidates:
        try:
            available = platforms_of(image)
        except DeployError as exc:
            passed_over.append(str(exc))
            continue
        missing = wanted - available if available else set()
        if missing:
            passed_over.append(f"{image} has no {', '.join(sorted(missing))}")
            continue
        return image, passed_over
    raise UsageError(
        "no base image to build from: "
        + "; ".join(passed_over)
        + " (the local cluster publishes one: inv cluster.up; or pass --build-arg BASE_IMAGE=...)"
    )
