"""`docker` as kind runs it, on hosts where `docker run --privileged` cannot work.

`--privileged` asks runc for every capability the kernel knows. A host (or VM) whose own
capability bounding set lacks one (this machine's lacks CAP_SYS_RESOURCE) makes that fail:
"runc create failed: unable to start container process: unable to apply caps: operation not
permitted". kind always passes `--privileged` (node `docker run` and `docker exec`), so kind is
given a `docker` on PATH that replaces it with what it implies minus the missing capabilities:
all other capabilities, no masked or read-only /proc paths, all devices in the device cgroup,
and no seccomp/AppArmor (kind passes those itself). The offline node image remounts the cgroup
hierarchies read-write (files/kind/bin/eq-writable-cgroups.sh), which docker only does for
privileged containers. Where nothing is missing (GitHub) kind calls docker directly.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

# Linux capability numbers (include/uapi/linux/capability.h) -> the names docker accepts.
CAPABILITY_NAMES = (
    "CHOWN",
    "DAC_OVERRIDE",
    "DAC_READ_SEARCH",
    "FOWNER",
    "FSETID",
    "KILL",
    "SETGID",
    "SETUID",
    "SETPCAP",
    "LINUX_IMMUTABLE",
    "NET_BIND_SERVICE",
    "NET_BROADCAST",
    "NET_ADMIN",
    "NET_RAW",
    "IPC_LOCK",
    "IPC_OWNER",
    "SYS_MODULE",
    "SYS_RAWIO",
    "SYS_CHROOT",
    "SYS_PTRACE",
    "SYS_PACCT",
    "SYS_ADMIN",
    "SYS_BOOT",
    "SYS_NICE",
    "SYS_RESOURCE",
    "SYS_TIME",
    "SYS_TTY_CONFIG",
    "MKNOD",
    "LEASE",
    "AUDIT_WRITE",
    "AUDIT_CONTROL",
    "SETFCAP",
    "MAC_OVERRIDE",
    "MAC_ADMIN",
    "SYSLOG",
    "WAKE_ALARM",
    "BLOCK_SUSPEND",
    "AUDIT_READ",
    "PERFMON",
    "BPF",
    "CHECKPOINT_RESTORE",
)

SHIM = """\
#!/usr/bin/env bash
# Written by eq_cluster.kind_docker: docker with --privileged replaced (see that module).
set -euo pipefail
args=()
for arg in "$@"; do
    if [[ "$arg" != --privileged ]]; then args+=("$arg"); continue; fi
    [[ "${1:-}" == run ]] || continue  # docker exec: the container's own privileges
    args+=(--cap-add ALL --security-opt systempaths=unconfined --device-cgroup-rule "a *:* rwm")
    for cap in %(missing)s; do args+=(--cap-drop "$cap"); done
done
exec %(docker)s "${args[@]}"
"""


def missing_capabilities(status: str, cap_last_cap: int) -> list[str]:
    """Capabilities the kernel knows (0..cap_last_cap) that are not in the bounding set
    (`CapBnd:` in /proc/self/status text)."""
    line = next(line for line in status.splitlines() if line.startswith("CapBnd:"))
    bounding = int(line.split()[1], 16)
    return [
        CAPABILITY_NAMES[number] if number < len(CAPABILITY_NAMES) else str(number)
        for number in range(cap_last_cap + 1)
        if not bounding & (1 << number)
    ]


def host_missing_capabilities() -> list[str]:
    return missing_capabilities(
        Path("/proc/self/status").read_text(),
        int(Path("/proc/sys/kernel/cap_last_cap").read_text()),
    )


def shim_script(docker: str, missing: list[str]) -> str:
    return SHIM % {"docker": docker, "missing": " ".join(missing)}


def kind_environment(shim_dir: Path) -> dict[str, str]:
    """The environment to run kind with: unchanged where `--privileged` works, else with a
    `docker` shim (written into shim_dir) first on PATH."""
    missing = host_missing_capabilities()
    docker = shutil.which("docker")
    if not missing or docker is None:
        return dict(os.environ)
    shim = shim_dir / "docker"
    shim.write_text(shim_script(docker, missing))
    shim.chmod(0o755)
    return {**os.environ, "PATH": f"{shim_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
