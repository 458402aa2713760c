"""The deploy tool's kubeconfig reader against the real API server (issue 12, finding 12):
client certificates, `tls-server-name` verified against the server's certificate, exec
credential plugins (a token and a client certificate) and in-cluster service-account config.

Identity is checked with a SelfSubjectReview: the API server says who it took us for.
"""

from __future__ import annotations

import base64
import contextlib
import json
import socket
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from eq_cluster import ClusterProvider
from eq_deploy import kubeconfig
from eq_deploy.kube import Kube, KubeError

pytestmark = pytest.mark.cluster

REVIEW = "/apis/authentication.k8s.io/v1/selfsubjectreviews"
# A name every API server certificate carries (kubeadm, kind and the local cluster alike).
IN_CERTIFICATE = "kubernetes.default.svc"


def _who(kube: Kube) -> str:
    review = {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"}
    answer = kube.request("POST", REVIEW, body=review)
    return str(answer["status"]["userInfo"]["username"])


def _config(cluster: ClusterProvider) -> dict[str, Any]:
    """The cluster's context as a one-context kubeconfig (cluster and user entries only)."""
    data = yaml.safe_load(Path(cluster.kubeconfig).read_text())
    context = next(c for c in data["contexts"] if c["name"] == cluster.context)["context"]
    entry = next(c for c in data["clusters"] if c["name"] == context["cluster"])["cluster"]
    user = next(u for u in data["users"] if u["name"] == context["user"])["user"]
    return {"cluster": dict(entry), "user": dict(user)}


def _use(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cluster: dict[str, Any], user: dict[str, Any]
) -> Kube:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "t",
        "clusters": [{"name": "t", "cluster": cluster}],
        "users": [{"name": "t", "user": user}],
        "contexts": [{"name": "t", "context": {"cluster": "t", "user": "t"}}],
    }
    path = tmp_path / "kubeconfig"
    path.write_text(json.dumps(config))
    monkeypatch.setenv("KUBECONFIG", str(path))
    return Kube()


def _pem(entry: dict[str, Any], key: str) -> bytes:
    if entry.get(f"{key}-data"):
        return base64.b64decode(entry[f"{key}-data"])
    return Path(entry[key]).read_bytes()


@pytest.fixture
def admin(cluster: ClusterProvider) -> dict[str, Any]:
    config = _config(cluster)
    user = config["user"]
    if not (user.get("client-certificate-data") or user.get("client-certificate")):
        pytest.fail(f"the {cluster.context} user has no client certificate to test with")
    return config


@pytest.fixture
def service_account_token(cluster: ClusterProvider, namespace: str) -> tuple[str, str]:
    """(token, username) of a fresh service account, from the TokenRequest API."""
    kube = Kube(cluster.context)
    base = f"/api/v1/namespaces/{namespace}/serviceaccounts"
    kube.request("POST", base, body={"metadata": {"name": "kubeconfig-test"}})
    answer = kube.request(
        "POST",
        f"{base}/kubeconfig-test/token",
        body={
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"expirationSeconds": 600},
        },
    )
    return answer["status"]["token"], f"system:serviceaccount:{namespace}:kubeconfig-test"


def test_client_certificate_identifies_the_user(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, admin: dict[str, Any]
) -> None:
    kube = _use(tmp_path, monkeypatch, admin["cluster"], admin["user"])
    assert _who(kube) != "system:anonymous"


class Forwarder:
    """TCP from 127.0.0.2 (an address no API server certificate names) to the API server,
    wherever it is: kind publishes its port on 127.0.0.1 only."""

    def __init__(self, server: str) -> None:
        parts = urlsplit(server)
        self.target = (parts.hostname or "127.0.0.1", parts.port or 443)
        self.listener = socket.create_server(("127.0.0.2", 0))
        self.url = f"https://127.0.0.2:{self.listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # closed
            upstream = socket.create_connection(self.target, timeout=10)
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self.listener.close()


@pytest.fixture
def other_address(admin: dict[str, Any]) -> Iterator[str]:
    forwarder = Forwarder(admin["cluster"]["server"])
    yield forwarder.url
    forwarder.close()


def test_tls_server_name_is_verified_against_the_api_servers_certificate(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, admin: dict[str, Any], other_address: str
) -> None:
    cluster = {**admin["cluster"], "server": other_address}
    with pytest.raises(KubeError, match="cluster unreachable"):  # the address is not named
        _who(_use(tmp_path, monkeypatch, cluster, admin["user"]))
    named = {**cluster, "tls-server-name": IN_CERTIFICATE}
    assert _who(_use(tmp_path, monkeypatch, named, admin["user"])) != "system:anonymous"
    wrong = {**cluster, "tls-server-name": "not-the-apiserver.example"}
    with pytest.raises(KubeError, match="cluster unreachable"):
        _who(_use(tmp_path, monkeypatch, wrong, admin["user"]))


def _exec_user(tmp_path: Path, status: dict[str, str]) -> dict[str, Any]:
    (tmp_path / "status.json").write_text(json.dumps(status))
    script = (
        "import json, os, sys\n"
        "info = json.loads(os.environ['KUBERNETES_EXEC_INFO'])\n"
        "status = json.load(open(sys.argv[1]))\n"
        "print(json.dumps({'apiVersion': info['apiVersion'], 'kind': 'ExecCredential',"
        " 'status': status}))\n"
    )
    (tmp_path / "plugin.py").write_text(script)
    return {
        "exec": {
            "apiVersion": "client.authentication.k8s.io/v1",
            "command": sys.executable,
            "args": [str(tmp_path / "plugin.py"), str(tmp_path / "status.json")],
            "interactiveMode": "Never",
        }
    }


def test_an_exec_plugin_token_is_accepted_by_the_api_server(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    admin: dict[str, Any],
    service_account_token: tuple[str, str],
) -> None:
    token, username = service_account_token
    kube = _use(tmp_path, monkeypatch, admin["cluster"], _exec_user(tmp_path, {"token": token}))
    assert _who(kube) == username


def test_an_exec_plugin_client_certificate_is_accepted_by_the_api_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, admin: dict[str, Any]
) -> None:
    user = admin["user"]
    expected = _who(_use(tmp_path, monkeypatch, admin["cluster"], user))
    status = {
        "clientCertificateData": _pem(user, "client-certificate").decode(),
        "clientKeyData": _pem(user, "client-key").decode(),
    }
    kube = _use(tmp_path, monkeypatch, admin["cluster"], _exec_user(tmp_path, status))
    assert _who(kube) == expected != "system:anonymous"  # the admin, through the plugin


def test_in_cluster_service_account_config(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    admin: dict[str, Any],
    service_account_token: tuple[str, str],
) -> None:
    """What a pod sees: no kubeconfig, the service account directory, KUBERNETES_SERVICE_*."""
    token, username = service_account_token
    account = tmp_path / "serviceaccount"
    account.mkdir()
    (account / "ca.crt").write_bytes(_pem(admin["cluster"], "certificate-authority"))
    (account / "token").write_text(token)
    server = urlsplit(admin["cluster"]["server"])
    monkeypatch.setattr(kubeconfig, "SERVICE_ACCOUNT", account)
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-such-kubeconfig"))
    monkeypatch.setenv("KUBERNETES_SERVICE_HOST", server.hostname or "")
    monkeypatch.setenv("KUBERNETES_SERVICE_PORT", str(server.port or 443))
    kube = Kube()
    assert kube.context == "in-cluster"
    assert _who(kube) == username
