"""Images for exercising deploys on a cluster (e2e tests and the deploy benchmark), derived
from a built one straight through the registry's v2 API (a new config blob, the same layers,
plus optionally one small layer of extra files such as a migration script), so a crashing
build, a failing migration or a new schema revision costs no image build."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import tarfile
from typing import Any

INDEX_TYPES = {
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
}
ACCEPT = ", ".join(
    [
        *INDEX_TYPES,
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ]
)
# Entrypoints for derived images. The image has no shell, so they are python: the pods' args
# are `python -m eq_backend <command> ...`, which under `python -c CODE ARGS...` are
# sys.argv[1:], the command being sys.argv[4]. Any other command is exec'd unchanged.
FAIL_MIGRATION = """\
import os, sys
if sys.argv[4:5] == ["migrate"]:
    sys.exit("migration failed: simulated by the e2e image")
os.execvp(sys.argv[1], sys.argv[1:])
"""
CRASH_ON_RUN = """\
import os, sys
if sys.argv[4:5] == ["run"]:
    try:
        with open("/dev/termination-log", "w") as log:
            log.write("simulated crash")
    except OSError:
        pass
    sys.exit("boom: simulated crash at startup")
os.execvp(sys.argv[1], sys.argv[1:])
"""


def python_entrypoint(code: str) -> list[str]:
    """An image entrypoint that runs `code` with the image's python before (or instead of)
    the pod's args."""
    return ["python", "-c", code]


def has_image(registry: str, repository: str, tag: str) -> bool:
    """Whether a plain-HTTP registry has `repository:tag`."""
    import httpx

    url = f"http://{registry}/v2/{repository}/manifests/{tag}"
    with httpx.Client(timeout=10) as client:
        return client.head(url, headers={"Accept": ACCEPT}).status_code == 200


def derive_image(
    registry: str,
    repository: str,
    source_tag: str,
    new_tag: str,
    *,
    entrypoint: list[str] | None = None,
    label: str = "",
    files: dict[str, str] | None = None,
) -> str:
    """Push `repository:new_tag` = `source_tag` with another entrypoint and/or label (a new
    image config, the same layers) and, with `files` ({absolute path: text}), one more layer
    holding those files, to a plain-HTTP registry; return its digest."""
    import httpx

    base = f"http://{registry}/v2/{repository}"
    with httpx.Client(timeout=30) as client:
        manifest, media_type = _manifest(client, f"{base}/manifests/{source_tag}")
        config = client.get(f"{base}/blobs/{manifest['config']['digest']}")
        config.raise_for_status()
        image_config: dict[str, Any] = config.json()
        settings = image_config.setdefault("config", {})
        if entrypoint is not None:
            settings["Entrypoint"] = entrypoint
        if label:
            settings.setdefault("Labels", {})["org.eq.e2e"] = label
        if files:
            tar, compressed = _layer(files)
            layer_digest = _upload(client, registry, base, compressed)
            oci = "oci" in media_type
            manifest["layers"].append(
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip"
                    if oci
                    else "application/vnd.docker.image.rootfs.diff.tar.gzip",
                    "digest": layer_digest,
                    "size": len(compressed),
                }
            )
            image_config.setdefault("rootfs", {"type": "layers", "diff_ids": []})
            image_config["rootfs"]["diff_ids"].append("sha256:" + hashlib.sha256(tar).hexdigest())
            image_config.setdefault("history", []).append({"created_by": "eq e2e: extra files"})
        blob = json.dumps(image_config, separators=(",", ":")).encode()
        digest = _upload(client, registry, base, blob)
        manifest["config"] = {**manifest["config"], "digest": digest, "size": len(blob)}
        body = json.dumps(manifest, separators=(",", ":")).encode()
        put = client.put(
            f"{base}/manifests/{new_tag}", content=body, headers={"Content-Type": media_type}
        )
        put.raise_for_status()
        return str(
            put.headers.get("docker-content-digest") or "sha256:" + hashlib.sha256(body).hexdigest()
        )


def _layer(files: dict[str, str]) -> tuple[bytes, bytes]:
    """(tar, gzip of it): a layer with `files` (absolute paths), owned by root, mode 0644."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path, text in sorted(files.items()):
            data = text.encode()
            info = tarfile.TarInfo(path.lstrip("/"))
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    tar_bytes = raw.getvalue()
    return tar_bytes, gzip.compress(tar_bytes, mtime=0)


def _upload(client: Any, registry: str, base: str, blob: bytes) -> str:
    """Push a blob (monolithic upload); return its digest."""
    digest = "sha256:" + hashlib.sha256(blob).hexdigest()
    upload = client.post(f"{base}/blobs/uploads/")
    upload.raise_for_status()
    location = upload.headers["location"]
    if location.startswith("/"):
        location = f"http://{registry}{location}"
    sep = "&" if "?" in location else "?"
    client.put(
        f"{location}{sep}digest={digest}",
        content=blob,
        headers={"Content-Type": "application/octet-stream"},
    ).raise_for_status()
    return digest


def _manifest(client: Any, url: str) -> tuple[dict[str, Any], str]:
    response = client.get(url, headers={"Accept": ACCEPT})
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    media_type = str(body.get("mediaType") or response.headers.get("content-type", ""))
    if media_type in INDEX_TYPES:
        arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(os.uname().machine, os.uname().machine)
        for item in body["manifests"]:
            platform = item.get("platform") or {}
            if platform.get("os") == "linux" and platform.get("architecture") == arch:
                return _manifest(client, url.rsplit("/", 1)[0] + "/" + item["digest"])
        raise RuntimeError(f"no linux/{arch} image in {url}")
    return body, media_type
