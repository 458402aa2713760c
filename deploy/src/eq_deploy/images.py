"""Image references: parse, build, and pin (`repo:tag@sha256:...`).

A Deployment always runs a digest-pinned reference, so a moved tag can never change what
runs, and a placeholder like REPLACE_IMG can never reach a pod (it does not parse here).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DEFAULT_REGISTRY = "docker.io"
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_PATH = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
_HOST = re.compile(r"(?:[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*|\[[0-9a-fA-F:]+\])(?::[0-9]+)?")


@dataclass(frozen=True)
class ImageRef:
    registry: str  # "" when the reference names none (Docker Hub)
    path: str
    tag: str = ""
    digest: str = ""

    @property
    def repository(self) -> str:
        """`registry/path` as written (without tag or digest)."""
        return f"{self.registry}/{self.path}" if self.registry else self.path

    @property
    def registry_host(self) -> str:
        return self.registry or DEFAULT_REGISTRY

    @property
    def api_path(self) -> str:
        """The repository path the registry's v2 API uses (Docker Hub adds `library/`)."""
        if not self.registry and "/" not in self.path:
            return f"library/{self.path}"
        return self.path

    def with_tag(self, tag: str) -> ImageRef:
        return ImageRef(self.registry, self.path, tag, "")

    def pinned(self, digest: str) -> ImageRef:
        if not _DIGEST.fullmatch(digest):
            raise ValueError(f"{digest!r} is not a sha256 digest")
        return ImageRef(self.registry, self.path, self.tag, digest)

    def __str__(self) -> str:
        text = self.repository
        if self.tag:
            text += f":{self.tag}"
        if self.digest:
            text += f"@{self.digest}"
        return text


def parse_image(ref: str) -> ImageRef:
    """Parse `[registry[:port]/]path[:tag][@sha256:...]`; ValueError names what is wrong."""
    text = ref.strip()
    if not text or text != ref or any(c.isspace() for c in text):
        raise ValueError(f"{ref!r} is not an image reference")
    digest = ""
    if "@" in text:
        text, digest = text.split("@", 1)
        if not _DIGEST.fullmatch(digest):
            raise ValueError(f"{ref!r} has an invalid digest (want sha256:<64 hex>)")
    registry = ""
    first, sep, rest = text.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        if not _HOST.fullmatch(first):
            raise ValueError(f"{ref!r} has an invalid registry host {first!r}")
        registry, text = first, rest
    tag = ""
    last_slash = text.rfind("/")
    colon = text.rfind(":")
    if colon > last_slash:
        text, tag = text[:colon], text[colon + 1 :]
        if not _TAG.fullmatch(tag):
            raise ValueError(f"{ref!r} has an invalid tag {tag!r}")
    if not _PATH.fullmatch(text):
        raise ValueError(
            f"{ref!r} has an invalid repository name {text!r} (lower-case, digits, . _ -)"
        )
    return ImageRef(registry, text, tag, digest)


def image_for(repository: str, tag: str, digest: str = "") -> ImageRef:
    """The reference for `tag` (and `digest`) of `repository` (a tag or digest on it is dropped)."""
    base = parse_image(repository)
    ref = ImageRef(base.registry, base.path, tag)
    return ref.pinned(digest) if digest else ref
