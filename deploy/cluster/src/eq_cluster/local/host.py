"""Host set-up the node needs (sysctls, binfmt, iptables) and its clean removal."""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import signal
import subprocess
import time
from pathlib import Path

from eq_cluster.local.layout import CNI_BRIDGE, IPTABLES_CHAIN, OWNED_CHAIN_PREFIXES
from eq_cluster.provider import ClusterError

FORWARD_CHAIN = f"{IPTABLES_CHAIN}-FORWARD"
BINFMT = Path("/proc/sys/fs/binfmt_misc")
# containerd 1.6 (CRI) creates one network namespace per pod here.
NETNS_DIR = Path("/run/netns")
IPTABLES_TOOLS = ("iptables", "ip6tables")


def run(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(argv, capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        raise ClusterError(f"`{shlex.join(argv)}` failed: {result.stderr.strip()}")
    return result


def node_address() -> str:
    """The source address of the default route: the node's InternalIP."""
    route = run("ip", "-4", "route", "get", "1.1.1.1").stdout.split()
    if "src" not in route:
        raise ClusterError(f"cannot tell this machine's address from `ip route`: {route}")
    return route[route.index("src") + 1]


def set_sysctls() -> None:
    # Pods talk to Service IPs across the bridge: bridged traffic must pass iptables.
    for key in (
        "net/ipv4/ip_forward",
        "net/bridge/bridge-nf-call-iptables",
        "net/bridge/bridge-nf-call-ip6tables",
    ):
        path = Path("/proc/sys") / key
        if not path.exists():
            raise ClusterError(f"{path} is missing: this kernel lacks {key.split('/')[1]}")
        path.write_text("1\n")


def enable_arm64_emulation() -> None:
    """Register qemu-aarch64 (with the fix-binary flag) so arm64 build steps run here."""
    if not (BINFMT / "register").exists():
        run("mount", "-t", "binfmt_misc", "binfmt_misc", str(BINFMT))
    if not (BINFMT / "qemu-aarch64").exists():
        run("update-binfmts", "--enable", "qemu-aarch64")
    entry = (BINFMT / "qemu-aarch64").read_text()
    if "enabled" not in entry.splitlines()[0]:
        raise ClusterError(f"qemu-aarch64 is registered but not enabled:\n{entry}")


def allow_bridge_forwarding() -> None:
    """dockerd sets the FORWARD policy to DROP: accept the pod bridge's traffic explicitly."""
    for tool in IPTABLES_TOOLS:
        if run(tool, "-w", "-L", FORWARD_CHAIN, "-n", check=False).returncode != 0:
            run(tool, "-w", "-N", FORWARD_CHAIN)
        run(tool, "-w", "-F", FORWARD_CHAIN)
        run(tool, "-w", "-A", FORWARD_CHAIN, "-i", CNI_BRIDGE, "-j", "ACCEPT")
        run(tool, "-w", "-A", FORWARD_CHAIN, "-o", CNI_BRIDGE, "-j", "ACCEPT")
        jump = ("-j", FORWARD_CHAIN, "-m", "comment", "--comment", "eq-cluster pod bridge")
        if run(tool, "-w", "-C", "FORWARD", *jump, check=False).returncode != 0:
            run(tool, "-w", "-I", "FORWARD", "1", *jump)


def _owned(chain: str) -> bool:
    return chain.startswith(OWNED_CHAIN_PREFIXES)


def owned_iptables_rules() -> list[str]:
    """Rules and chains of this cluster (ours, kube-proxy's, the CNI plugins') still present."""
    found = []
    for tool in IPTABLES_TOOLS:
        save = run(f"{tool}-save", check=False).stdout
        for line in save.splitlines():
            words = line.split()
            if line.startswith(":") and _owned(line[1:].split()[0]):
                found.append(f"{tool}: chain {line[1:].split()[0]}")
            elif line.startswith("-A") and (
                _owned(words[1]) or any(_owned(w) for w in _targets(words))
            ):
                found.append(f"{tool}: {line}")
    return found


def _targets(words: list[str]) -> list[str]:
    return [words[i + 1] for i, w in enumerate(words[:-1]) if w in ("-j", "-g")]


def remove_iptables_rules() -> None:
    """Delete every rule jumping into an owned chain, then flush and delete owned chains."""
    for tool in IPTABLES_TOOLS:
        table = None
        owned_chains: list[tuple[str, str]] = []
        jumps: list[tuple[str, list[str]]] = []
        for line in run(f"{tool}-save", check=False).stdout.splitlines():
            if line.startswith("*"):
                table = line[1:]
            elif line.startswith(":") and table and _owned(line[1:].split()[0]):
                owned_chains.append((table, line[1:].split()[0]))
            elif line.startswith("-A") and table:
                words = shlex.split(line)
                if not _owned(words[1]) and any(_owned(t) for t in _targets(words)):
                    jumps.append((table, words[1:]))
        for table_name, rule in jumps:
            run(tool, "-w", "-t", table_name, "-D", *rule, check=False)
        for table_name, chain in owned_chains:
            run(tool, "-w", "-t", table_name, "-F", chain, check=False)
        for table_name, chain in owned_chains:
            run(tool, "-w", "-t", table_name, "-X", chain, check=False)


def owned_mounts(roots: list[Path]) -> list[str]:
    """Mount points under the cluster's directories, or pod network namespaces."""
    mounts = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        mount_point = line.split()[4].replace("\\040", " ")
        if _is_owned_mount(mount_point, roots):
            mounts.append(mount_point)
    return mounts


def _is_owned_mount(mount_point: str, roots: list[Path]) -> bool:
    if mount_point.startswith(("/run/netns/cni-", "/var/run/netns/cni-")):
        return True
    if any(mount_point == str(r) or mount_point.startswith(f"{r}/") for r in roots):
        return True
    # CNI makes /run/netns a shared bind mount of itself for the pods' namespaces; once no
    # namespace is left in it (nobody else uses it), that mount is ours to remove.
    return mount_point == str(NETNS_DIR) and not any(NETNS_DIR.iterdir())


def unmount_all(roots: list[Path]) -> None:
    # Deepest first, each repeated while stacked mounts remain.
    for _ in range(5):
        mounts = owned_mounts(roots)
        if not mounts:
            break
        for mount_point in sorted(set(mounts), key=len, reverse=True):
            if run("umount", mount_point, check=False).returncode != 0:
                run("umount", "-l", mount_point, check=False)
        for netns in NETNS_DIR.glob("cni-*") if NETNS_DIR.exists() else []:
            netns.unlink(missing_ok=True)


def remove_bridge() -> None:
    if Path(f"/sys/class/net/{CNI_BRIDGE}").exists():
        run("ip", "link", "delete", CNI_BRIDGE, check=False)


def pod_process_ids() -> list[int]:
    """Processes still in kubelet's pod cgroups (containers whose sandbox outlived CRI)."""
    kubepods = Path("/sys/fs/cgroup/pids/kubepods")
    if not kubepods.is_dir():
        return []
    pids: set[int] = set()
    for procs in kubepods.rglob("cgroup.procs"):
        with contextlib.suppress(OSError, ValueError):
            pids.update(int(p) for p in procs.read_text().split())
    return sorted(pids)


def kill_pod_processes() -> None:
    for _ in range(10):
        pids = pod_process_ids()
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.3)


def remove_pod_cgroups() -> None:
    """kubelet's cgroup tree (cgroupfs driver): empty once every container is gone."""
    for controller in Path("/sys/fs/cgroup").iterdir():
        kubepods = controller / "kubepods"
        if not kubepods.is_dir():
            continue
        for directory in sorted(kubepods.rglob("*"), key=lambda p: len(p.parts), reverse=True):
            if directory.is_dir():
                with contextlib.suppress(OSError):
                    directory.rmdir()
        with contextlib.suppress(OSError):
            kubepods.rmdir()


def remove_tree(path: Path) -> None:
    if path.exists():
        shutil.rmtree(path)
