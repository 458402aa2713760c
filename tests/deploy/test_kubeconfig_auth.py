"""kubeconfig auth material over real TLS (issue 12, finding 12): `tls-server-name` is
verified (not skipped), client certificates reach the server, exec credential plugins run,
and in-cluster service-account config connects. The server is a local HTTPS server with
certificates made here; the real API server takes part in tests/e2e/test_kubeconfig.py."""

from __future__ import annotations

import base64
import datetime
import ipaddress
import json
import ssl
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from eq_deploy import kubeconfig
from eq_deploy.errors import DeployError
from eq_deploy.kube import Kube, KubeError

SERVER_NAME = "kube.internal.test"


@dataclass
class Issued:
    cert_pem: bytes
    key_pem: bytes


@dataclass
class Authority:
    """A throwaway CA that signs server and client certificates."""

    key: ec.EllipticCurvePrivateKey = field(
        default_factory=lambda: ec.generate_private_key(ec.SECP256R1())
    )
    name: x509.Name = field(default_factory=lambda: _name("eq test CA"))

    def __post_init__(self) -> None:
        self.cert = (
            _builder(self.name, self.name, self.key.public_key())
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(self.key, hashes.SHA256())
        )

    @property
    def pem(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.PEM)

    def issue(self, common_name: str, *, dns: list[str] = (), ips: list[str] = ()) -> Issued:  # type: ignore[assignment]
        key = ec.generate_private_key(ec.SECP256R1())
        names: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
        names += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
        builder = _builder(_name(common_name), self.name, key.public_key())
        if names:
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        cert = builder.sign(self.key, hashes.SHA256())
        return Issued(
            cert.public_bytes(serialization.Encoding.PEM),
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ),
        )


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _builder(subject: x509.Name, issuer: x509.Name, public_key: Any) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
    )


class FakeApiServer(ThreadingHTTPServer):
    """HTTPS answering GET /version; records the SNI, Authorization and client cert CN."""

    daemon_threads = True

    def __init__(self, tmp: Path, ca: Authority, server: Issued, require_client_cert: bool) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        (tmp / "server.crt").write_bytes(server.cert_pem)
        (tmp / "server.key").write_bytes(server.key_pem)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(tmp / "server.crt", tmp / "server.key")
        if require_client_cert:
            context.verify_mode = ssl.CERT_REQUIRED
            context.load_verify_locations(cadata=ca.pem.decode())
        self.sni: list[str | None] = []
        self.authorization: list[str | None] = []
        self.client_cn: list[str | None] = []

        def remember_sni(_sock: Any, name: str | None, _ctx: Any) -> None:
            self.sni.append(name)

        context.sni_callback = remember_sni
        self.socket = context.wrap_socket(self.socket, server_side=True)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def port(self) -> int:
        return int(self.server_address[1])


class _Handler(BaseHTTPRequestHandler):
    server: FakeApiServer  # type: ignore[assignment]

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        self.server.authorization.append(self.headers.get("Authorization"))
        peer = self.connection.getpeercert()  # type: ignore[attr-defined]
        subject = dict(x[0] for x in peer["subject"]) if peer else {}
        self.server.client_cn.append(subject.get("commonName"))
        body = json.dumps({"gitVersion": "v0-test"}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _write_kubeconfig(
    path: Path, server: str, ca: Authority, cluster: dict[str, Any], user: dict[str, Any]
) -> None:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "current-context": "test",
        "clusters": [
            {
                "name": "test",
                "cluster": {
                    "server": server,
                    "certificate-authority-data": _b64(ca.pem),
                    **cluster,
                },
            }
        ],
        "users": [{"name": "test", "user": user}],
        "contexts": [{"name": "test", "context": {"cluster": "test", "user": "test"}}],
    }
    path.write_text(json.dumps(config))  # JSON is YAML


@pytest.fixture
def ca() -> Authority:
    return Authority()


@pytest.fixture
def named_server(tmp_path: Path, ca: Authority) -> Iterator[FakeApiServer]:
    """Its certificate names only SERVER_NAME: not 127.0.0.1, where it listens."""
    server = FakeApiServer(tmp_path, ca, ca.issue(SERVER_NAME, dns=[SERVER_NAME]), False)
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def ip_server(tmp_path: Path, ca: Authority) -> Iterator[FakeApiServer]:
    """Its certificate names 127.0.0.1 and it asks for a client certificate signed by `ca`."""
    server = FakeApiServer(tmp_path, ca, ca.issue("apiserver", ips=["127.0.0.1"]), True)
    yield server
    server.shutdown()
    server.server_close()


def _kube(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, **kwargs: Any) -> Kube:
    path = tmp_path / "kubeconfig"
    _write_kubeconfig(path, **kwargs)
    monkeypatch.setenv("KUBECONFIG", str(path))
    return Kube()


# --- tls-server-name ----------------------------------------------------------------------


def test_tls_server_name_is_sent_and_verified(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ca: Authority, named_server: FakeApiServer
) -> None:
    kube = _kube(
        tmp_path,
        monkeypatch,
        server=f"https://127.0.0.1:{named_server.port}",
        ca=ca,
        cluster={"tls-server-name": SERVER_NAME},
        user={"token": "t0k"},
    )
    assert kube.request("GET", "/version") == {"gitVersion": "v0-test"}
    assert named_server.sni == [SERVER_NAME]
    assert named_server.authorization == ["Bearer t0k"]


@pytest.mark.parametrize("name", [None, "other.internal.test"])
def test_a_certificate_for_another_name_is_refused(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    ca: Authority,
    named_server: FakeApiServer,
    name: str | None,
) -> None:
    """The host name is checked: against the URL's host without tls-server-name, against
    tls-server-name with it (the old code skipped the check whenever it was set)."""
    kube = _kube(
        tmp_path,
        monkeypatch,
        server=f"https://127.0.0.1:{named_server.port}",
        ca=ca,
        cluster={"tls-server-name": name} if name else {},
        user={"token": "t0k"},
    )
    with pytest.raises(KubeError, match="cluster unreachable"):
        kube.request("GET", "/version")
    assert named_server.authorization == []  # the token never left


# --- client certificates ------------------------------------------------------------------


def test_client_certificate_data_reaches_the_server(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ca: Authority, ip_server: FakeApiServer
) -> None:
    client = ca.issue("eq-deployer")
    kube = _kube(
        tmp_path,
        monkeypatch,
        server=f"https://127.0.0.1:{ip_server.port}",
        ca=ca,
        cluster={},
        user={
            "client-certificate-data": _b64(client.cert_pem),
            "client-key-data": _b64(client.key_pem),
        },
    )
    assert kube.request("GET", "/version") == {"gitVersion": "v0-test"}
    assert ip_server.client_cn == ["eq-deployer"]


def test_client_certificate_files_resolve_next_to_the_kubeconfig(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ca: Authority, ip_server: FakeApiServer
) -> None:
    client = ca.issue("eq-file-user")
    (tmp_path / "certs").mkdir()
    (tmp_path / "certs" / "me.crt").write_bytes(client.cert_pem)
    (tmp_path / "certs" / "me.key").write_bytes(client.key_pem)
    kube = _kube(
        tmp_path,
        monkeypatch,
        server=f"https://127.0.0.1:{ip_server.port}",
        ca=ca,
        cluster={},
        user={"client-certificate": "certs/me.crt", "client-key": "certs/me.key"},
    )
    kube.request("GET", "/version")
    assert ip_server.client_cn == ["eq-file-user"]


# --- exec credential plugins --------------------------------------------------------------

PLUGIN = """
import json, os, sys
info = json.loads(os.environ["KUBERNETES_EXEC_INFO"])
assert info["kind"] == "ExecCredential" and info["spec"]["interactive"] is False, info
status = {"token": os.environ["PLUGIN_TOKEN"] + "-" + sys.argv[1]}
if os.environ.get("PLUGIN_CERT"):
    status = {"clientCertificateData": open(os.environ["PLUGIN_CERT"]).read(),
              "clientKeyData": open(os.environ["PLUGIN_KEY"]).read()}
print(json.dumps({"apiVersion": info["apiVersion"], "kind": "ExecCredential", "status": status}))
"""


def _exec_user(tmp_path: Path, env: dict[str, str], script: str = PLUGIN) -> dict[str, Any]:
    (tmp_path / "plugin.py").write_text(script)
    return {
        "exec": {
            "apiVersion": "client.authentication.k8s.io/v1",
            "command": sys.executable,
            "args": [str(tmp_path / "plugin.py"), "arg"],
            "env": [{"name": k, "value": v} for k, v in env.items()],
            "interactiveMode": "Never",
        }
    }


def test_an_exec_plugin_token_is_sent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ca: Authority, named_server: FakeApiServer
) -> None:
    kube = _kube(
        tmp_path,
        monkeypatch,
        server=f"https://127.0.0.1:{named_server.port}",
        ca=ca,
        cluster={"tls-server-name": SERVER_NAME},
        user=_exec_user(tmp_path, {"PLUGIN_TOKEN": "from-plugin"}),
    )
    kube.request("GET", "/version")
    assert named_server.authorization == ["Bearer from-plugin-arg"]


def test_an_exec_plugin_client_certificate_is_used(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ca: Authority, ip_server: FakeApiServer
) -> None:
    client = ca.issue("eq-plugin-user")
    (tmp_path / "p.crt").write_bytes(client.cert_pem)
    (tmp_path / "p.key").write_bytes(client.key_pem)
    env = {
        "PLUGIN_TOKEN": "x",
        "PLUGIN_CERT": str(tmp_path / "p.crt"),
        "PLUGIN_KEY": str(tmp_path / "p.key"),
    }
    kube = _kube(
        tmp_path,
        monkeypatch,
        server=f"https://127.0.0.1:{ip_server.port}",
        ca=ca,
        cluster={},
        user=_exec_user(tmp_path, env),
    )
    kube.request("GET", "/version")
    assert ip_server.client_cn == ["eq-plugin-user"]
    assert ip_server.authorization == [None]


def test_a_failing_exec_plugin_is_one_line_naming_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ca: Authority
) -> None:
    failing = "import sys\nprint('token expired, run: login', file=sys.stderr)\nsys.exit(3)\n"
    path = tmp_path / "kubeconfig"
    _write_kubeconfig(path, "https://127.0.0.1:1", ca, {}, _exec_user(tmp_path, {}, script=failing))
    monkeypatch.setenv("KUBECONFIG", str(path))
    with pytest.raises(DeployError) as info:
        kubeconfig.connect(None)
    message = str(info.value)
    assert message == (
        f"kubeconfig exec plugin {sys.executable} failed: exit 3: token expired, run: login"
    )


# --- in-cluster ---------------------------------------------------------------------------


def test_in_cluster_service_account_connects(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ca: Authority, tmp_path_factory: Any
) -> None:
    """No kubeconfig, a service account mounted (its directory moved here) and the
    KUBERNETES_SERVICE_* variables a pod gets: the API server's CA and the pod's token."""
    server_dir = tmp_path_factory.mktemp("apiserver")
    server = FakeApiServer(server_dir, ca, ca.issue("apiserver", ips=["127.0.0.1"]), False)
    try:
        account = tmp_path / "serviceaccount"
        account.mkdir()
        (account / "ca.crt").write_bytes(ca.pem)
        (account / "token").write_text("pod-token\n")
        monkeypatch.setattr(kubeconfig, "SERVICE_ACCOUNT", account)
        monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-such-kubeconfig"))
        monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
        monkeypatch.setenv("KUBERNETES_SERVICE_PORT", str(server.port))
        kube = Kube()
        assert kube.context == "in-cluster"
        assert kube.request("GET", "/version") == {"gitVersion": "v0-test"}
        assert server.authorization == ["Bearer pod-token"]
    finally:
        server.shutdown()
        server.server_close()
