"""The pure parts of the kind provider and its offline node image: the kind config, the
images the node holds, the containerd changes, and the docker shim's decision."""

from __future__ import annotations

import json
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from eq_cluster.kind import kind_config, registry_hosts_toml
from eq_cluster.kind_docker import missing_capabilities, shim_script
from eq_cluster.kind_node import (
    component_images,
    containerd_config,
    content_key,
    cri_base_spec,
    kubeadm_image_patch,
)
from eq_cluster.provider import NODE_PORT, ClusterError

PATCH = kubeadm_image_patch("v3.6.16", "v1.14.7")


def _config(*, offline: bool, host_port: bool) -> dict[str, Any]:
    text = kind_config(
        node_port_on_host=host_port,
        offline_kubeadm_patch=PATCH if offline else None,
    )
    loaded: dict[str, Any] = yaml.safe_load(text)
    return loaded


def test_official_node_config_reads_registry_hosts_and_has_no_host_port() -> None:
    config = _config(offline=False, host_port=False)
    assert config["kind"] == "Cluster"
    assert "networking" not in config
    assert "kubeadmConfigPatches" not in config
    patches: list[str] = config["containerdConfigPatches"]
    assert len(patches) == 1
    patch = patches[0]
    assert 'config_path = "/etc/containerd/certs.d"' in patch
    assert config["nodes"] == [{"role": "control-plane"}]


def test_registry_hosts_send_pulls_to_the_registry_container() -> None:
    hosts = tomllib.loads(registry_hosts_toml("http://eq-kind-registry:5000"))
    assert hosts == {
        "host": {"http://eq-kind-registry:5000": {"capabilities": ["pull", "resolve"]}}
    }


def test_node_port_on_host_maps_only_to_loopback() -> None:
    nodes: list[dict[str, Any]] = _config(offline=False, host_port=True)["nodes"]
    assert len(nodes) == 1
    assert nodes[0]["extraPortMappings"] == [
        {
            "containerPort": NODE_PORT,
            "hostPort": NODE_PORT,
            "listenAddress": "127.0.0.1",
            "protocol": "TCP",
        }
    ]


def test_offline_node_config_disables_kindnet_and_patches_kubeadm_images() -> None:
    config = _config(offline=True, host_port=False)
    assert config["networking"] == {"disableDefaultCNI": True}
    patches: list[str] = config["kubeadmConfigPatches"]
    assert len(patches) == 1
    assert yaml.safe_load(patches[0]) == {
        "kind": "ClusterConfiguration",
        "etcd": {"local": {"imageTag": "v3.6.16"}},
        "dns": {"imageTag": "v1.14.7"},
    }


def test_component_images_are_named_where_kubeadm_looks() -> None:
    refs = {i.ref: i.binary for i in component_images("v1.34.4", "v3.6.16", "v1.14.7", "abc")}
    assert refs == {
        "registry.k8s.io/kube-apiserver:v1.34.4": "kube-apiserver",
        "registry.k8s.io/kube-controller-manager:v1.34.4": "kube-controller-manager",
        "registry.k8s.io/kube-scheduler:v1.34.4": "kube-scheduler",
        "registry.k8s.io/kube-proxy:v1.34.4": "kube-proxy",
        "registry.k8s.io/etcd:v3.6.16": "etcd",
        "registry.k8s.io/coredns/coredns:v1.14.7": "coredns",
        "eq.local/pause:abc": "pause",
    }


KIND_CONTAINERD = """\
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "registry.k8s.io/pause:3.10"
  restrict_oom_score_adj = false
"""


def test_containerd_config_uses_our_pause_and_restricts_oom_score_adj() -> None:
    changed = containerd_config(KIND_CONTAINERD, "eq.local/pause:abc")
    assert 'sandbox_image = "eq.local/pause:abc"' in changed
    assert "restrict_oom_score_adj = true" in changed


def test_containerd_config_fails_when_kind_changed_its_file() -> None:
    with pytest.raises(ClusterError, match="restrict_oom_score_adj = false"):
        containerd_config(KIND_CONTAINERD.replace("false", "true"), "eq.local/pause:abc")


def test_cri_base_spec_adds_kinds_hook_and_drops_rlimits() -> None:
    default = {"process": {"args": ["sh"], "rlimits": [{"type": "RLIMIT_NOFILE"}]}}
    spec = json.loads(cri_base_spec(json.dumps(default)))
    assert spec["hooks"]["createContainer"] == [{"path": "/kind/bin/mount-product-files.sh"}]
    assert "rlimits" not in spec["process"]


def test_content_key_follows_every_part() -> None:
    assert content_key([b"a", b"b"]) == content_key([b"a", b"b"])
    assert content_key([b"a", b"b"]) != content_key([b"ab"])
    assert len(content_key([])) == 12


THIS_MACHINE = "Name:\tpython3\nCapBnd:\t000001fffeffffff\nCapAmb:\t0000000000000000\n"


def test_missing_capabilities_names_what_the_bounding_set_lacks() -> None:
    assert missing_capabilities(THIS_MACHINE, 40) == ["SYS_RESOURCE"]
    assert missing_capabilities("CapBnd:\t000001ffffffffff\n", 40) == []
    # A kernel newer than the table: the number stands in for the name.
    assert missing_capabilities("CapBnd:\t000001ffffffffff\n", 41) == ["41"]


def test_shim_replaces_privileged_and_drops_the_missing_capabilities() -> None:
    script = shim_script("/usr/bin/docker", ["SYS_RESOURCE"])
    assert "exec /usr/bin/docker" in script
    assert "for cap in SYS_RESOURCE;" in script
    assert "--cap-add ALL" in script


def test_shim_rewrites_docker_run_and_drops_privileged_from_exec(tmp_path: Path) -> None:
    shim = tmp_path / "docker"
    shim.write_text(shim_script("echo", ["SYS_RESOURCE", "BPF"]))

    def through_shim(*args: str) -> list[str]:
        argv = ["bash", str(shim), *args]
        return subprocess.run(argv, capture_output=True, text=True, check=True).stdout.split()

    run = through_shim("run", "--privileged", "--name", "n", "image")
    assert "--privileged" not in run
    assert run[:1] == ["run"]
    assert run[-3:] == ["--name", "n", "image"]
    assert " ".join(run).count("--cap-drop") == 2
    assert "--cap-add ALL --security-opt systempaths=unconfined" in " ".join(run)
    exec_ = through_shim("exec", "--privileged", "-i", "n", "true")
    assert exec_ == ["exec", "-i", "n", "true"]
