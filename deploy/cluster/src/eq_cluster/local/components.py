"""The configuration, certificates and command lines of each process of the local cluster."""

from __future__ import annotations

import socket
from dataclasses import dataclass
from pathlib import Path
from string import Template

from eq_cluster.local import kubeconfig, pki
from eq_cluster.local.binaries import Binaries, component_version
from eq_cluster.local.layout import (
    API_PORT,
    CLUSTER_DOMAIN,
    CLUSTER_NAME,
    CNI_BRIDGE,
    DNS_SERVICE_IP,
    KUBERNETES_SERVICE_IP,
    NODE_NAME,
    NODE_POD_SUBNET,
    POD_CIDR,
    REGISTRY,
    SERVICE_CIDR,
    Layout,
)
from eq_cluster.local.processes import Daemon
from eq_cluster.local.versions import assets_dir

ADMIN_USER = f"{CLUSTER_NAME}-admin"
PAUSE_IMAGE_NAME = "eq/pause"
COREDNS_IMAGE_NAME = "eq/coredns"


def pause_image() -> str:
    return f"{REGISTRY}/{PAUSE_IMAGE_NAME}:{component_version('pause')}"


def coredns_image() -> str:
    return f"{REGISTRY}/{COREDNS_IMAGE_NAME}:{component_version('coredns')}"


@dataclass(frozen=True)
class NodeConfig:
    layout: Layout
    binaries: Binaries
    node_ip: str

    @property
    def api_server(self) -> str:
        return f"https://127.0.0.1:{API_PORT}"

    def _values(self) -> dict[str, str]:
        layout = self.layout
        return {
            "state": str(layout.state),
            "run": str(layout.run),
            "cache": str(layout.cache),
            "pki": str(layout.pki),
            "kubeconfigs": str(layout.kubeconfigs),
            "containerd_socket": str(layout.containerd_socket),
            "buildkit_socket": str(layout.buildkit_socket),
            "cni_conf_dir": str(layout.cni_conf_dir),
            "registry_storage": str(layout.registry_storage),
            "registry": REGISTRY,
            "pause_image": pause_image(),
            "coredns_image": coredns_image(),
            "bridge": CNI_BRIDGE,
            "pod_subnet": NODE_POD_SUBNET,
            "pod_cidr": POD_CIDR,
            "dns_ip": DNS_SERVICE_IP,
            "cluster_domain": CLUSTER_DOMAIN,
            "node_name": NODE_NAME,
        }

    def render(self, template: str) -> str:
        text = (assets_dir() / "config" / template).read_text()
        return Template(text).substitute(self._values())

    def config_path(self, name: str) -> Path:
        return self.layout.config / name

    def write_configs(self) -> None:
        """Render every config file into <state>/config (and containerd's certs.d, CNI)."""
        self.layout.config.mkdir(parents=True, exist_ok=True)
        for name in (
            "containerd.toml",
            "kubelet.yaml",
            "kube-proxy.yaml",
            "buildkitd.toml",
            "registry.yml",
            "coredns.yaml",
        ):
            self.config_path(name).write_text(self.render(name))
        hosts = self.layout.state / "containerd-certs.d" / REGISTRY / "hosts.toml"
        hosts.parent.mkdir(parents=True, exist_ok=True)
        hosts.write_text(self.render("hosts.toml"))
        self.layout.cni_conf_dir.mkdir(parents=True, exist_ok=True)
        (self.layout.cni_conf_dir / "10-eq-cluster.conflist").write_text(
            self.render("cni.conflist")
        )

    def write_pki(self) -> None:
        directory = self.layout.pki
        ca = pki.CertificateAuthority(directory)
        ca.ensure()
        pki.ensure_service_account_keys(directory)
        hostname = socket.gethostname()
        requests = [
            pki.CertRequest(
                "etcd-server",
                "etcd",
                server=True,
                client=True,
                dns_names=("localhost",),
                ip_addresses=("127.0.0.1",),
            ),
            pki.CertRequest("apiserver-etcd-client", "kube-apiserver-etcd-client", client=True),
            pki.CertRequest(
                "apiserver",
                "kube-apiserver",
                server=True,
                dns_names=(
                    "kubernetes",
                    "kubernetes.default",
                    "kubernetes.default.svc",
                    f"kubernetes.default.svc.{CLUSTER_DOMAIN}",
                    "localhost",
                    hostname,
                ),
                ip_addresses=("127.0.0.1", KUBERNETES_SERVICE_IP, self.node_ip),
            ),
            pki.CertRequest(
                "apiserver-kubelet-client",
                "kube-apiserver-kubelet-client",
                organization="system:masters",
                client=True,
            ),
            pki.CertRequest("admin", ADMIN_USER, organization="system:masters", client=True),
            pki.CertRequest("controller-manager", "system:kube-controller-manager", client=True),
            pki.CertRequest("scheduler", "system:kube-scheduler", client=True),
            pki.CertRequest(
                "kubelet-client",
                f"system:node:{NODE_NAME}",
                organization="system:nodes",
                client=True,
            ),
            pki.CertRequest(
                "kubelet",
                NODE_NAME,
                server=True,
                dns_names=(NODE_NAME, hostname, "localhost"),
                ip_addresses=(self.node_ip, "127.0.0.1"),
            ),
            pki.CertRequest("kube-proxy", "system:kube-proxy", client=True),
            # The aggregation layer's identity: lets controllers read the
            # extension-apiserver-authentication config map's request-header CA.
            pki.CertRequest("front-proxy-client", "front-proxy-client", client=True),
        ]
        for request in requests:
            ca.issue(request)

    def write_kubeconfigs(self) -> None:
        p = self.layout.pki
        for name, user, cert in (
            ("admin", ADMIN_USER, "admin"),
            ("controller-manager", "system:kube-controller-manager", "controller-manager"),
            ("scheduler", "system:kube-scheduler", "scheduler"),
            ("kubelet", f"system:node:{NODE_NAME}", "kubelet-client"),
            ("kube-proxy", "system:kube-proxy", "kube-proxy"),
        ):
            config = kubeconfig.render(
                cluster=CLUSTER_NAME,
                user=user,
                server=self.api_server,
                ca=p / "ca.crt",
                cert=p / f"{cert}.crt",
                key=p / f"{cert}.key",
            )
            kubeconfig.write(self.layout.kubeconfigs / f"{name}.conf", config)

    # --- command lines ---------------------------------------------------------------

    def registry(self) -> Daemon:
        return Daemon(
            "registry", ["docker-registry", "serve", str(self.config_path("registry.yml"))]
        )

    def dockerd(self) -> Daemon:
        return Daemon("dockerd", ["/usr/sbin/dockerd"])

    def buildkitd(self) -> Daemon:
        return Daemon(
            "buildkitd",
            [
                str(self.binaries.path("buildkitd")),
                "--config",
                str(self.config_path("buildkitd.toml")),
            ],
        )

    def containerd(self) -> Daemon:
        return Daemon(
            "containerd",
            ["/usr/bin/containerd", "--config", str(self.config_path("containerd.toml"))],
        )

    def etcd(self) -> Daemon:
        p = self.layout.pki
        url = "https://127.0.0.1:2379"
        return Daemon(
            "etcd",
            [
                str(self.binaries.path("etcd")),
                f"--name={CLUSTER_NAME}",
                f"--data-dir={self.layout.state / 'etcd'}",
                f"--listen-client-urls={url}",
                f"--advertise-client-urls={url}",
                # A single member: peers never connect, so its peer port stays on loopback.
                "--listen-peer-urls=http://127.0.0.1:2380",
                "--initial-advertise-peer-urls=http://127.0.0.1:2380",
                f"--initial-cluster={CLUSTER_NAME}=http://127.0.0.1:2380",
                "--listen-metrics-urls=http://127.0.0.1:2381",
                f"--cert-file={p / 'etcd-server.crt'}",
                f"--key-file={p / 'etcd-server.key'}",
                f"--trusted-ca-file={p / 'ca.crt'}",
                "--client-cert-auth=true",
                "--log-level=warn",
            ],
        )

    def kube_apiserver(self) -> Daemon:
        p = self.layout.pki
        return Daemon(
            "kube-apiserver",
            [
                str(self.binaries.path("kube-apiserver")),
                "--etcd-servers=https://127.0.0.1:2379",
                f"--etcd-cafile={p / 'ca.crt'}",
                f"--etcd-certfile={p / 'apiserver-etcd-client.crt'}",
                f"--etcd-keyfile={p / 'apiserver-etcd-client.key'}",
                f"--secure-port={API_PORT}",
                "--bind-address=0.0.0.0",
                f"--advertise-address={self.node_ip}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                f"--tls-cert-file={p / 'apiserver.crt'}",
                f"--tls-private-key-file={p / 'apiserver.key'}",
                f"--client-ca-file={p / 'ca.crt'}",
                f"--kubelet-client-certificate={p / 'apiserver-kubelet-client.crt'}",
                f"--kubelet-client-key={p / 'apiserver-kubelet-client.key'}",
                f"--kubelet-certificate-authority={p / 'ca.crt'}",
                "--kubelet-preferred-address-types=InternalIP,Hostname",
                f"--service-account-issuer=https://kubernetes.default.svc.{CLUSTER_DOMAIN}",
                f"--service-account-key-file={p / 'sa.pub'}",
                f"--service-account-signing-key-file={p / 'sa.key'}",
                "--authorization-mode=Node,RBAC",
                "--enable-admission-plugins=NodeRestriction",
                "--allow-privileged=true",
                "--profiling=false",
                f"--requestheader-client-ca-file={p / 'ca.crt'}",
                "--requestheader-allowed-names=front-proxy-client",
                "--requestheader-username-headers=X-Remote-User",
                "--requestheader-group-headers=X-Remote-Group",
                "--requestheader-extra-headers-prefix=X-Remote-Extra-",
                f"--proxy-client-cert-file={p / 'front-proxy-client.crt'}",
                f"--proxy-client-key-file={p / 'front-proxy-client.key'}",
            ],
        )

    def _component_auth(self, name: str) -> list[str]:
        conf = self.layout.kubeconfigs / f"{name}.conf"
        return [
            f"--kubeconfig={conf}",
            f"--authentication-kubeconfig={conf}",
            f"--authorization-kubeconfig={conf}",
            "--bind-address=127.0.0.1",
            # One instance: leader election would only delay a restart by a lease period.
            "--leader-elect=false",
        ]

    def kube_controller_manager(self) -> Daemon:
        p = self.layout.pki
        return Daemon(
            "kube-controller-manager",
            [
                str(self.binaries.path("kube-controller-manager")),
                *self._component_auth("controller-manager"),
                f"--cluster-signing-cert-file={p / 'ca.crt'}",
                f"--cluster-signing-key-file={p / 'ca.key'}",
                f"--root-ca-file={p / 'ca.crt'}",
                f"--service-account-private-key-file={p / 'sa.key'}",
                "--use-service-account-credentials=true",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                f"--cluster-cidr={POD_CIDR}",
            ],
        )

    def kube_scheduler(self) -> Daemon:
        return Daemon(
            "kube-scheduler",
            [str(self.binaries.path("kube-scheduler")), *self._component_auth("scheduler")],
        )

    def kubelet(self) -> Daemon:
        return Daemon(
            "kubelet",
            [
                str(self.binaries.path("kubelet")),
                f"--config={self.config_path('kubelet.yaml')}",
                f"--kubeconfig={self.layout.kubeconfigs / 'kubelet.conf'}",
                f"--root-dir={self.layout.state / 'kubelet'}",
                f"--hostname-override={NODE_NAME}",
                f"--node-ip={self.node_ip}",
            ],
        )

    def kube_proxy(self) -> Daemon:
        return Daemon(
            "kube-proxy",
            [
                str(self.binaries.path("kube-proxy")),
                f"--config={self.config_path('kube-proxy.yaml')}",
            ],
        )
