"""Does the image exist, and what is its digest? The docker SDK answers through the local
daemon (it also knows plain-HTTP registries on 127.0.0.0/8); without a daemon the registry's
v2 API is asked directly over httpx (anonymous bearer tokens included)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from eq_deploy.errors import DeployError
from eq_deploy.images import ImageRef, parse_image
from eq_deploy.settings import is_loopback

if TYPE_CHECKING:
    import httpx

MANIFEST_TYPES = ", ".join(
    (
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    )
)


def resolve_digest(image: str) -> str:
    """The registry digest of `image` (repo:tag), or a DeployError naming the image."""
    return resolve(image)[0]


def resolve(image: str) -> tuple[str, set[str]]:
    """(digest, platforms `os/arch`) of `image` in its registry: through the docker daemon
    when there is one (one call answers both), else the registry's v2 API."""
    ref = parse_image(image)
    found = _docker_lookup(ref)
    if found is not None:
        return found
    digest = ref.digest or _v2_digest(ref)
    return digest, image_platforms(str(ref.pinned(digest)))


def _docker_lookup(ref: ImageRef) -> tuple[str, set[str]] | None:
    """Ask the local docker daemon (distribution inspect, through the SDK); None when there is
    no daemon or it cannot tell, so the v2 API is asked instead."""
    try:
        from docker.client import DockerClient
        from docker.errors import DockerException
    except ImportError:
        return None
    try:
        client = DockerClient.from_env(timeout=10)
        try:
            data = client.images.get_registry_data(str(ref))
        finally:
            client.close()
    except (DockerException, OSError, ValueError):
        return None
    platforms = {
        f"{p.get('os')}/{p.get('architecture')}"
        for p in data.attrs.get("Platforms") or []
        if p.get("architecture") not in (None, "unknown")
    }
    return str(data.id), platforms


def _plain_http(ref: ImageRef) -> bool:
    host = ref.registry_host.rsplit(":", 1)[0].strip("[]")
    return is_loopback(host)


def _v2_base(ref: ImageRef) -> str:
    """The registry API URL of `ref`'s repository (Docker Hub's API host for docker.io)."""
    scheme = "http" if _plain_http(ref) else "https"
    host = "registry-1.docker.io" if ref.registry_host == "docker.io" else ref.registry_host
    return f"{scheme}://{host}/v2/{ref.api_path}"


def _v2_request(
    client: httpx.Client, method: str, url: str, headers: dict[str, str]
) -> httpx.Response:
    """One registry API call; on 401, again with an anonymous pull token, which is then
    kept in `headers` for the calls that follow."""
    response = client.request(method, url, headers=headers)
    if response.status_code == 401:
        token = _anonymous_token(client, response.headers.get("www-authenticate", ""))
        if token:
            headers["Authorization"] = f"Bearer {token}"
            response = client.request(method, url, headers=headers)
    return response


def _v2_digest(ref: ImageRef) -> str:
    import httpx

    url = f"{_v2_base(ref)}/manifests/{ref.tag or 'latest'}"
    headers = {"Accept": MANIFEST_TYPES}
    try:
        with httpx.Client(timeout=10) as client:
            response = _v2_request(client, "HEAD", url, headers)
            if response.status_code == 404:
                raise DeployError(
                    f"image {ref} not found in {ref.registry_host} "
                    "(build and push it: inv build --push)"
                )
            if response.status_code != 200:
                raise DeployError(
                    f"image {ref}: registry {ref.registry_host} "
                    f"answered HTTP {response.status_code}"
                )
            digest = response.headers.get("docker-content-digest", "")
            if not digest:
                response = client.get(url, headers=headers)
                import hashlib

                digest = "sha256:" + hashlib.sha256(response.content).hexdigest()
    except httpx.HTTPError as exc:
        raise DeployError(
            f"image {ref}: registry {ref.registry_host} unreachable ({type(exc).__name__})"
        ) from None
    return str(digest)


def _anonymous_token(client: Any, challenge: str) -> str:
    if not challenge.lower().startswith("bearer "):
        return ""
    params = dict(
        part.split("=", 1) for part in challenge[7:].replace('"', "").split(",") if "=" in part
    )
    realm = params.pop("realm", "")
    if not realm:
        return ""
    response = client.get(realm, params=params)
    if response.status_code != 200:
        return ""
    body = response.json()
    return str(body.get("token") or body.get("access_token") or "")


def image_on_nodes(nodes: list[dict[str, Any]], image: str) -> tuple[bool, str]:
    """(every node has `image`, its repo digest if a node knows one) for images loaded
    straight into the nodes (kind load) instead of pulled from a registry."""
    ref = parse_image(image)
    wanted = {str(ref), f"docker.io/{ref}" if not ref.registry else str(ref)}
    if not ref.registry and "/" not in ref.path:
        wanted.add(f"docker.io/library/{ref}")
    digest = ""
    for node in nodes:
        found = False
        for entry in (node.get("status") or {}).get("images") or []:
            names = set(entry.get("names") or [])
            if names & wanted:
                found = True
                for name in names:
                    if "@sha256:" in name and name.split("@")[0] == ref.repository:
                        digest = name.split("@", 1)[1]
        if not found:
            return False, ""
    return bool(nodes), digest


def image_platforms(image: str) -> set[str]:
    """The `os/arch` platforms `image` is built for, from its registry manifest (an index
    lists them; a single manifest names one in its config). Empty when it cannot be read."""
    import httpx

    ref = parse_image(image)
    base = _v2_base(ref)
    headers = {"Accept": MANIFEST_TYPES}
    try:
        with httpx.Client(timeout=10) as client:
            manifest = f"{base}/manifests/{ref.digest or ref.tag}"
            response = _v2_request(client, "GET", manifest, headers)
            if response.status_code != 200:
                return set()
            body = response.json()
            if "manifests" in body:
                return {
                    f"{p.get('os')}/{p.get('architecture')}"
                    for p in (m.get("platform") or {} for m in body["manifests"])
                    if p.get("architecture") not in (None, "unknown")
                }
            config = client.get(f"{base}/blobs/{body['config']['digest']}", headers=headers)
            if config.status_code != 200:
                return set()
            data = config.json()
            return {f"{data.get('os')}/{data.get('architecture')}"}
    except (httpx.HTTPError, ValueError, KeyError):
        return set()


def missing_platforms(nodes: list[dict[str, Any]], platforms: set[str]) -> dict[str, str]:
    """{node name: its os/arch} for nodes whose platform the image lacks (empty `platforms`
    means unknown: nothing is reported)."""
    if not platforms:
        return {}
    out = {}
    for node in nodes:
        info = (node.get("status") or {}).get("nodeInfo") or {}
        platform = f"{info.get('operatingSystem', 'linux')}/{info.get('architecture', '')}"
        if platform not in platforms:
            out[node["metadata"]["name"]] = platform
    return out
