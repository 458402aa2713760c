"""`inv build`: docker buildx build of docker/backend.Dockerfile (the docker SDK does not cover
buildx), tagged sha-<short commit>, OCI labels, registry build cache, digest printed."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

from eq_deploy.base_image import choose_base_image
from eq_deploy.errors import DeployError, UsageError
from eq_deploy.images import image_for, parse_image
from eq_deploy.settings import REPO_ROOT, check_tag, is_loopback

DOCKERFILE = REPO_ROOT / "docker" / "backend.Dockerfile"
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")


@dataclass
class BuildOptions:
    repository: str
    tag: str | None = None
    platforms: str = ""
    push: bool = False
    load: bool = False
    allow_dirty: bool = False
    allow_tag: bool = False
    build_args: list[str] = field(default_factory=list)
    cache: bool = True
    builder: str = ""
    # The environment's candidate base images (eq_deploy.base_image); empty: the Dockerfile's.
    base_images: tuple[str, ...] = ()


@dataclass
class BuildResult:
    image: str
    digest: str
    command: list[str]


def git(*args: str) -> str:
    try:
        out = subprocess.run(
            ["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, check=True
        )
    except (OSError, subprocess.CalledProcessError) as exc:
        raise DeployError(
            f"git {' '.join(args)} failed: {getattr(exc, 'stderr', '') or exc}".strip()
        ) from None
    return out.stdout.strip()


def default_tag() -> str:
    return f"sha-{git('rev-parse', '--short=7', 'HEAD')}"


def source_url() -> str:
    try:
        url = git("remote", "get-url", "origin")
    except DeployError:
        return ""
    return url


def build_command(opts: BuildOptions, tag: str, metadata_file: Path) -> list[str]:
    """The buildx command line (pure, so tests can read it)."""
    ref = image_for(opts.repository, tag)
    registry_host = ref.registry_host.rsplit(":", 1)[0].strip("[]")
    insecure = ",registry.insecure=true" if is_loopback(registry_host) else ""
    cmd = ["docker", "buildx", "build", "--file", str(DOCKERFILE), "--progress", "plain"]
    if opts.builder:
        cmd += ["--builder", opts.builder]
    if opts.platforms:
        cmd += ["--platform", opts.platforms]
    revision = git("rev-parse", "HEAD")
    created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    build_args = {"REVISION": revision, "CREATED": created, "SOURCE": source_url(), "VERSION": tag}
    for arg in opts.build_args:
        key, sep, value = arg.partition("=")
        if not sep or not key:
            raise UsageError(f"--build-arg {arg!r} is not NAME=VALUE")
        build_args[key] = value
    for key, value in build_args.items():
        cmd += ["--build-arg", f"{key}={value}"]
    # Labels on the image config as well as the Dockerfile's, so they hold for any Dockerfile.
    for key, value in (
        ("revision", revision),
        ("created", created),
        ("source", build_args["SOURCE"]),
    ):
        cmd += ["--label", f"org.opencontainers.image.{key}={value}"]
    if CA_BUNDLE.exists():
        # The machine's CA bundle reaches the package index through a TLS-inspecting proxy;
        # a build secret is mounted for the install steps only, never stored in a layer.
        cmd += ["--secret", f"id=cacert,src={CA_BUNDLE}"]
    if opts.cache and opts.push:
        cache_ref = f"{ref.repository}:buildcache"
        cmd += ["--cache-from", f"type=registry,ref={cache_ref}{insecure}"]
        cmd += ["--cache-to", f"type=registry,ref={cache_ref},mode=max{insecure}"]
    if opts.push:
        cmd += ["--output", f"type=image,name={ref},push=true{insecure}"]
    elif opts.load:
        cmd += ["--load", "--tag", str(ref)]
    else:
        cmd += ["--tag", str(ref)]
    cmd += ["--metadata-file", str(metadata_file), str(REPO_ROOT)]
    return cmd


def build(opts: BuildOptions) -> BuildResult:
    if opts.push and opts.load:
        raise UsageError("--push and --load exclude each other")
    if opts.load and "," in opts.platforms:
        raise UsageError("--load takes one --platform (a docker image store holds one)")
    try:
        parse_image(opts.repository)
    except ValueError as exc:
        raise UsageError(f"--image {exc}") from None
    if not opts.allow_dirty and git("status", "--porcelain", "--untracked-files=no"):
        raise UsageError("the work tree has uncommitted changes; commit them or pass --allow-dirty")
    tag = check_tag(opts.tag or default_tag(), allow_tag=opts.allow_tag)
    if shutil.which("docker") is None:
        raise DeployError("docker CLI not found (buildx builds need docker and the buildx plugin)")
    opts = with_base_image(opts)
    if not buildx_available():
        return _build_without_buildx(opts, tag)
    if opts.cache and builder_driver(opts.builder) == "docker":
        # The `docker` driver cannot export a registry cache; other drivers can.
        print("note: the buildx builder uses the docker driver: no registry build cache")
        opts = BuildOptions(**{**opts.__dict__, "cache": False})
    with tempfile.TemporaryDirectory() as tmp:
        metadata = Path(tmp) / "metadata.json"
        cmd = build_command(opts, tag, metadata)
        result = subprocess.run(cmd, cwd=REPO_ROOT, check=False)
        if result.returncode != 0:
            raise DeployError(
                f"docker buildx build failed (exit {result.returncode}); see its output above"
            )
        digest = ""
        if metadata.exists():
            digest = json.loads(metadata.read_text()).get("containerimage.digest", "")
    return BuildResult(image=str(image_for(opts.repository, tag)), digest=digest, command=cmd)


def with_base_image(opts: BuildOptions) -> BuildOptions:
    """`opts` with BASE_IMAGE set to the environment's first usable base, saying which."""
    base, passed_over = choose_base_image(
        opts.base_images, build_args=opts.build_args, platforms=opts.platforms
    )
    if base is None:
        return opts
    for reason in passed_over:
        print(f"note: base image passed over: {reason}")
    print(f"base image {base}")
    return replace(opts, build_args=[*opts.build_args, f"BASE_IMAGE={base}"])


def buildx_available() -> bool:
    probe = subprocess.run(["docker", "buildx", "version"], capture_output=True, check=False)
    return probe.returncode == 0


def builder_driver(builder: str) -> str:
    """The driver of the buildx builder that will run the build ("docker", "remote", ...)."""
    cmd = ["docker", "buildx", "inspect", *([builder] if builder else [])]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False).stdout
    for line in out.splitlines():
        if line.startswith("Driver:"):
            return line.split(":", 1)[1].strip()
    return ""


def builtin_buildkit_client() -> str | None:
    """A docker client older than 23 (Debian's docker.io is 20.10) runs BuildKit builds itself
    with DOCKER_BUILDKIT=1; newer ones need the buildx plugin."""
    for client in (shutil.which("docker"), "/usr/bin/docker"):
        if not client or not Path(client).exists():
            continue
        version = subprocess.run(
            [client, "version", "--format", "{{.Client.Version}}"],
            capture_output=True, text=True, check=False,
        ).stdout.strip()  # fmt: skip
        major = version.split(".", 1)[0]
        if major.isdigit() and int(major) < 23:
            return client
    return None


def _build_without_buildx(opts: BuildOptions, tag: str) -> BuildResult:
    """Where the buildx plugin is missing: the daemon's own BuildKit builder (one platform,
    no registry cache), then `docker push`; the digest is read back from the registry."""
    if "," in opts.platforms:
        raise DeployError("multi-platform builds need docker buildx (not installed here)")
    ref = image_for(opts.repository, tag)
    with tempfile.TemporaryDirectory() as tmp:
        cmd = build_command(
            BuildOptions(**{**opts.__dict__, "push": False, "load": False, "cache": False}),
            tag,
            Path(tmp) / "metadata.json",
        )
    client = builtin_buildkit_client()
    if client is None:
        raise DeployError(
            "docker buildx not found and no docker client with BuildKit built in (< 23); "
            "install the buildx plugin"
        )
    # `docker buildx build ... --metadata-file F` → `docker build ...`
    cmd = [client, "build", *cmd[3:]]
    index = cmd.index("--metadata-file")
    del cmd[index : index + 2]
    print(f"note: docker buildx not found; building with `{client} build` (one platform, no cache)")
    env = {**os.environ, "DOCKER_BUILDKIT": "1"}
    if subprocess.run(cmd, cwd=REPO_ROOT, env=env, check=False).returncode != 0:
        raise DeployError("docker build failed; see its output above")
    digest = ""
    if opts.push:
        if subprocess.run([client, "push", str(ref)], check=False).returncode != 0:
            raise DeployError(f"docker push {ref} failed; see its output above")
        from eq_deploy.registry import resolve_digest

        digest = resolve_digest(str(ref))
    return BuildResult(image=str(ref), digest=digest, command=cmd)
