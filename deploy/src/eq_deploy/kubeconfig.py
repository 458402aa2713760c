"""Reading a kubeconfig into what an HTTPS client needs: server, TLS context, auth headers.

The kubernetes package imports every API model when it loads (seconds on a busy 2-core
machine, most of a deploy's own overhead), so the facade speaks HTTP through httpx and
reads kubeconfigs here: tokens, token files, client certificates (files or data), CA bundles,
basic auth, exec credential plugins and in-cluster service accounts. Only a user entry with a
legacy `auth-provider` is handed to the kubernetes package's loader.
"""

from __future__ import annotations

import base64
import json
import os
import ssl
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from eq_deploy.errors import DeployError

SERVICE_ACCOUNT = Path("/var/run/secrets/kubernetes.io/serviceaccount")


@dataclass
class Connection:
    context: str
    server: str
    ssl_context: ssl.SSLContext | bool
    headers: dict[str, str] = field(default_factory=dict)
    # The kubeconfig's `tls-server-name`: sent as SNI and verified against the server's
    # certificate in place of the server URL's host.
    tls_server_name: str | None = None

    @property
    def request_extensions(self) -> dict[str, str]:
        """httpx request extensions: httpcore connects with `sni_hostname` as the TLS
        server_hostname, which sets SNI and the name the certificate must match."""
        return {"sni_hostname": self.tls_server_name} if self.tls_server_name else {}


def kubeconfig_paths() -> list[Path]:
    env = os.environ.get("KUBECONFIG")
    if env:
        return [Path(p).expanduser() for p in env.split(os.pathsep) if p]
    return [Path("~/.kube/config").expanduser()]


def load_merged() -> dict[str, Any]:
    """The kubeconfig files merged the way kubectl merges them: the first file that names a
    cluster, user or context (or sets current-context) wins."""
    merged: dict[str, Any] = {"clusters": {}, "users": {}, "contexts": {}, "current-context": ""}
    for path in kubeconfig_paths():
        if not path.is_file():
            continue
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except (OSError, yaml.YAMLError) as exc:
            raise DeployError(f"kubeconfig {path}: unreadable ({exc})") from None
        base = path.parent
        for section, key in (("clusters", "cluster"), ("users", "user"), ("contexts", "context")):
            for item in data.get(section) or []:
                if item.get("name") and item["name"] not in merged[section]:
                    merged[section][item["name"]] = ({**(item.get(key) or {})}, base)
        if not merged["current-context"] and data.get("current-context"):
            merged["current-context"] = data["current-context"]
    return merged


def connect(context: str | None) -> Connection:
    """A Connection for `context` (default: the current one); DeployError names what is
    missing or wrong."""
    merged = load_merged()
    if not merged["contexts"]:
        if SERVICE_ACCOUNT.is_dir() and os.environ.get("KUBERNETES_SERVICE_HOST"):
            return _in_cluster()
        paths = ", ".join(str(p) for p in kubeconfig_paths())
        raise DeployError(f"no kubeconfig context found ({paths}); set KUBECONFIG or --context")
    name = context or merged["current-context"]
    if not name:
        raise DeployError("the kubeconfig has no current context; pass --context")
    if name not in merged["contexts"]:
        have = ", ".join(sorted(merged["contexts"]))
        raise DeployError(f"--context {name!r}: no such context in the kubeconfig (have: {have})")
    ctx, _ = merged["contexts"][name]
    cluster_name, user_name = ctx.get("cluster"), ctx.get("user")
    if cluster_name not in merged["clusters"]:
        raise DeployError(f"kubeconfig context {name}: cluster {cluster_name!r} is not defined")
    cluster, cluster_base = merged["clusters"][cluster_name]
    user, user_base = merged["users"].get(user_name, ({}, Path(".")))
    server = str(cluster.get("server") or "").rstrip("/")
    if not server:
        raise DeployError(f"kubeconfig cluster {cluster_name}: no server")
    if "auth-provider" in user:
        return _via_kubernetes_client(name)
    ssl_context = _tls(cluster, cluster_base, server)
    tls_server_name = str(cluster.get("tls-server-name") or "") or None
    headers: dict[str, str] = {}
    cert = _material(user, "client-certificate", user_base)
    key = _material(user, "client-key", user_base)
    token = user.get("token") or ""
    if user.get("tokenFile"):
        token = _path(user["tokenFile"], user_base).read_text().strip()
    if "exec" in user:
        status = _exec_credential(user["exec"], cluster)
        token = status.get("token") or token
        if status.get("clientCertificateData"):
            cert = status["clientCertificateData"].encode()
            key = status["clientKeyData"].encode()
    if token:
        headers["Authorization"] = f"Bearer {token}"
    elif user.get("username"):
        pair = f"{user['username']}:{user.get('password', '')}".encode()
        headers["Authorization"] = "Basic " + base64.b64encode(pair).decode()
    if cert and key and isinstance(ssl_context, ssl.SSLContext):
        _load_client_cert(ssl_context, cert, key)
    return Connection(name, server, ssl_context, headers, tls_server_name)


def _path(value: str, base: Path) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else base / path


def _material(entry: dict[str, Any], key: str, base: Path) -> bytes | None:
    """PEM bytes from `<key>-data` (base64) or the file `<key>`."""
    if entry.get(f"{key}-data"):
        return base64.b64decode(entry[f"{key}-data"])
    if entry.get(key):
        return _path(entry[key], base).read_bytes()
    return None


def _tls(cluster: dict[str, Any], base: Path, server: str) -> ssl.SSLContext | bool:
    if not server.startswith("https://"):
        return False
    if cluster.get("insecure-skip-tls-verify"):
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return context
    ca = _material(cluster, "certificate-authority", base)
    # A `tls-server-name` keeps the host name check: Connection.request_extensions makes
    # it check that name instead of the URL's host.
    return ssl.create_default_context(cadata=ca.decode() if ca else None)


def _load_client_cert(context: ssl.SSLContext, cert: bytes, key: bytes) -> None:
    # ssl loads key pairs only from files: write them to a private directory, load, delete.
    with tempfile.TemporaryDirectory(prefix="eq-kube-") as tmp:
        cert_file, key_file = Path(tmp) / "cert.pem", Path(tmp) / "key.pem"
        cert_file.write_bytes(cert)
        key_file.touch(mode=0o600)
        key_file.write_bytes(key)
        context.load_cert_chain(cert_file, key_file)


def _exec_credential(spec: dict[str, Any], cluster: dict[str, Any]) -> dict[str, Any]:
    env = {**os.environ, **{e["name"]: e["value"] for e in spec.get("env") or []}}
    info = {
        "apiVersion": spec.get("apiVersion", "client.authentication.k8s.io/v1"),
        "kind": "ExecCredential",
        "spec": {"interactive": False},
    }
    env["KUBERNETES_EXEC_INFO"] = json.dumps(info)
    command = [spec["command"], *(spec.get("args") or [])]
    try:
        out = subprocess.run(
            command, env=env, capture_output=True, text=True, check=True, timeout=60
        )
        status: dict[str, Any] = json.loads(out.stdout).get("status") or {}
    except (OSError, subprocess.SubprocessError, ValueError) as exc:
        detail = _exec_failure(exc)
        raise DeployError(f"kubeconfig exec plugin {spec['command']} failed: {detail}") from None
    return status


def _exec_failure(exc: Exception) -> str:
    """One line: the plugin's own last stderr line when it said something."""
    if isinstance(exc, subprocess.CalledProcessError):
        said = (exc.stderr or "").strip().splitlines()
        return f"exit {exc.returncode}" + (f": {said[-1]}" if said else "")
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__


def _in_cluster() -> Connection:
    host, port = (
        os.environ["KUBERNETES_SERVICE_HOST"],
        os.environ.get("KUBERNETES_SERVICE_PORT", "443"),
    )
    context = ssl.create_default_context(cafile=str(SERVICE_ACCOUNT / "ca.crt"))
    token = (SERVICE_ACCOUNT / "token").read_text().strip()
    return Connection(
        "in-cluster", f"https://{host}:{port}", context, {"Authorization": f"Bearer {token}"}
    )


def _via_kubernetes_client(context: str) -> Connection:
    """Legacy auth providers (gcp, oidc, azure): let the kubernetes package produce a token."""
    from kubernetes import config
    from kubernetes.client import Configuration

    configuration = Configuration()
    config.load_kube_config(context=context, client_configuration=configuration)  # type: ignore[no-untyped-call]
    token = configuration.api_key.get("authorization") or configuration.api_key.get(
        "BearerToken", ""
    )
    tls: ssl.SSLContext | bool = ssl.create_default_context(cafile=configuration.ssl_ca_cert)
    if not configuration.verify_ssl:
        tls = False
    headers = (
        {"Authorization": token if token.startswith("Bearer ") else f"Bearer {token}"}
        if token
        else {}
    )
    return Connection(context, configuration.host.rstrip("/"), tls, headers)
