"""Reading kubeconfigs: merging, context choice, auth material; errors name the culprit."""

from __future__ import annotations

import base64
import ssl
from pathlib import Path

import pytest
from eq_deploy.errors import DeployError
from eq_deploy.kubeconfig import connect

FIRST = """
apiVersion: v1
kind: Config
current-context: dev
clusters:
- name: dev
  cluster: {server: 'https://dev.example.test:6443/', insecure-skip-tls-verify: true}
- name: plain
  cluster: {server: 'http://127.0.0.1:8080'}
users:
- name: token-user
  user: {token: abc}
- name: basic-user
  user: {username: u, password: p}
contexts:
- name: dev
  context: {cluster: dev, user: token-user}
- name: plain
  context: {cluster: plain, user: basic-user}
- name: broken
  context: {cluster: missing, user: token-user}
"""
SECOND = """
apiVersion: v1
kind: Config
current-context: other
clusters:
- name: dev
  cluster: {server: 'https://shadowed.example.test'}
users:
- name: file-user
  user: {tokenFile: token.txt}
contexts:
- name: other
  context: {cluster: dev, user: file-user}
"""


@pytest.fixture
def kubeconfigs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / "a").write_text(FIRST)
    (tmp_path / "b").write_text(SECOND)
    (tmp_path / "token.txt").write_text("from-file\n")
    monkeypatch.setenv("KUBECONFIG", f"{tmp_path / 'a'}:{tmp_path / 'b'}")
    return tmp_path


def test_current_context_of_the_first_file_and_bearer_token(kubeconfigs: Path) -> None:
    conn = connect(None)
    assert (conn.context, conn.server) == ("dev", "https://dev.example.test:6443")
    assert conn.headers == {"Authorization": "Bearer abc"}
    assert isinstance(conn.ssl_context, ssl.SSLContext)
    assert conn.ssl_context.verify_mode == ssl.CERT_NONE


def test_first_definition_wins_and_token_files_resolve_next_to_their_file(
    kubeconfigs: Path,
) -> None:
    conn = connect("other")
    assert conn.server == "https://dev.example.test:6443"  # cluster "dev" from the first file
    assert conn.headers == {"Authorization": "Bearer from-file"}


def test_basic_auth_over_plain_http(kubeconfigs: Path) -> None:
    conn = connect("plain")
    assert conn.ssl_context is False
    assert conn.headers == {"Authorization": "Basic " + base64.b64encode(b"u:p").decode()}


def test_unknown_context_is_named(kubeconfigs: Path) -> None:
    with pytest.raises(DeployError, match=r"--context 'prod': no such context .*have: broken, dev"):
        connect("prod")


def test_context_with_undefined_cluster_is_named(kubeconfigs: Path) -> None:
    with pytest.raises(DeployError, match="context broken: cluster 'missing' is not defined"):
        connect("broken")


def test_no_kubeconfig_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "none"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(DeployError, match="no kubeconfig context found"):
        connect(None)
