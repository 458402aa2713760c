"""Host processes of the local cluster: started detached, tracked by pid files, stopped by pid."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from eq_cluster.provider import ClusterError


@dataclass(frozen=True)
class Daemon:
    name: str
    argv: Sequence[str]
    env: Mapping[str, str] = field(default_factory=dict)


def _cmdline(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


class ProcessTable:
    """Starts daemons and remembers them in <run>/pids/<name>.pid (pid + executable)."""

    def __init__(self, pid_dir: Path, log_dir: Path) -> None:
        self.pid_dir = pid_dir
        self.log_dir = log_dir
        # Children started by this process: their liveness is known without /proc.
        self._children: dict[str, subprocess.Popen[bytes]] = {}

    def _pidfile(self, name: str) -> Path:
        return self.pid_dir / f"{name}.pid"

    def log_path(self, name: str) -> Path:
        return self.log_dir / f"{name}.log"

    def pid(self, name: str) -> int | None:
        """The pid of a running daemon we started, or None (stale pid files don't count)."""
        pidfile = self._pidfile(name)
        try:
            pid_text, executable = pidfile.read_text().split("\n", 1)
            pid = int(pid_text)
        except (OSError, ValueError):
            return None
        cmdline = _cmdline(pid)
        # Pids are reused: only a process running the same executable is ours.
        if not cmdline or cmdline[0] != executable.strip() or _is_zombie(pid):
            return None
        return pid

    def names(self) -> list[str]:
        if not self.pid_dir.exists():
            return []
        return sorted(p.stem for p in self.pid_dir.glob("*.pid"))

    def start(self, daemon: Daemon) -> int:
        running = self.pid(daemon.name)
        if running:
            return running
        self.pid_dir.mkdir(parents=True, exist_ok=True)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        with self.log_path(daemon.name).open("ab") as log:
            log.write(f"\n--- starting {daemon.name} at {time.ctime()}\n".encode())
            log.flush()
            process = subprocess.Popen(
                list(daemon.argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                # Its own session: the daemon outlives `inv cluster.up` and no terminal
                # signal of the caller reaches it.
                start_new_session=True,
                env={**os.environ, **daemon.env},
                close_fds=True,
            )
        self._children[daemon.name] = process
        self._pidfile(daemon.name).write_text(f"{process.pid}\n{daemon.argv[0]}\n")
        return process.pid

    def ensure_alive(self, name: str) -> None:
        child = self._children.get(name)
        exited = child.poll() is not None if child is not None else self.pid(name) is None
        if exited:
            raise ClusterError(
                f"{name} exited; last lines of {self.log_path(name)}:\n{self.tail(name)}"
            )

    def tail(self, name: str, lines: int = 25) -> str:
        try:
            content = self.log_path(name).read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join(content[-lines:])

    def stop(self, name: str, timeout: float = 20.0) -> None:
        pid = self.pid(name)
        if pid is not None:
            terminate(pid, timeout)
        self._pidfile(name).unlink(missing_ok=True)


def terminate(pid: int, timeout: float = 20.0) -> None:
    """SIGTERM, then SIGKILL after `timeout` seconds."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _cmdline(pid) or _is_zombie(pid):
            return
        time.sleep(0.1)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return


def pids_matching(predicate: Callable[[list[str]], bool]) -> list[int]:
    """Pids of processes whose command line satisfies `predicate`."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            cmdline = _cmdline(int(entry.name))
            if cmdline and predicate(cmdline):
                found.append(int(entry.name))
    return found


def wait_for(
    what: str, check: Callable[[], bool], timeout: float, alive: Callable[[], None] | None = None
) -> None:
    """Poll `check` until true; `alive` raises early if the process behind it died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if alive:
            alive()
        try:
            if check():
                return
        except Exception:  # noqa: S110 - not ready yet; the timeout reports it
            pass
        time.sleep(0.5)
    raise ClusterError(f"timed out after {timeout:.0f} s waiting for {what}")
