"""A Debian root filesystem for another architecture (arm64 here), configured without
running any of its code: no debootstrap second stage under qemu.

`debootstrap --foreign` resolves the package set and downloads it (the same set as a
native debootstrap); every package is then unpacked with the host's `dpkg-deb -x`, and
what the packages' maintainer scripts would have produced is written from the host:

- dpkg's database (status, per-package file lists and control files), so apt and dpkg in
  the image see every package installed and configured (the backend's Dockerfile runs
  `apt-get install binutils` in its builder stage);
- the alternatives the packages register (`awk` is mawk's: the Dockerfile runs awk);
- the files they install from a default copy (users and groups, nsswitch.conf, ...), the
  directories they create, and the CA bundle of ca-certificates.

The loader cache is the one thing left to the target: the host's ldconfig ignores another
architecture's libraries, so the target's own ldconfig runs once (through binfmt_misc, a
second). Without any cache the loader still finds Debian's multiarch directories.

Not recreated, being unused in an image build: PAM's common-* files and shadow passwords,
systemd unit enablement, /etc/localtime (UTC either way), OpenSSL's per-certificate hash
links (the bundle is what Python and the image use), byte-compiled Python modules
(docker/assemble_rootfs.py compiles the standard library itself).
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

# Files the maintainer scripts install from a package's default copy when absent:
# (default, installed as).
DEFAULTS = (
    ("usr/share/base-files/dot.profile", "root/.profile"),
    ("usr/share/base-files/dot.bashrc", "root/.bashrc"),
    ("usr/share/base-files/profile", "etc/profile"),
    ("usr/share/base-files/motd", "etc/motd"),
    ("usr/share/base-files/info.dir", "usr/share/info/dir"),
    ("usr/share/libc-bin/nsswitch.conf", "etc/nsswitch.conf"),  # the image copies this one
    ("usr/share/readline/inputrc", "etc/inputrc"),
    ("usr/share/debianutils/shells", "etc/shells"),
    ("usr/share/base-passwd/passwd.master", "etc/passwd"),
    ("usr/share/base-passwd/group.master", "etc/group"),
)
# Directories base-files' and python3.11-minimal's scripts create: (path, mode).
DIRECTORIES = (
    *((d, 0o755) for d in ("mnt", "srv", "opt", "etc/opt", "var/opt", "media")),
    ("run/lock", 0o1777),
    *(
        (f"usr/local/{d}".rstrip("/"), 0o755)
        for d in ("", "share", "share/man", "bin", "games", "lib", "include", "sbin", "src", "etc")
    ),
    ("usr/local/lib/python3.11/dist-packages", 0o755),
)

# `update-alternatives --install <link> <name> <path> <priority>` in a maintainer script.
ALTERNATIVE = re.compile(
    r"update-alternatives\s+(?:--\S+\s+)*--install\s+(\S+)\s+(\S+)\s+(\S+)\s+(\d+)"
)


def debs_of(root: Path) -> list[Path]:
    """The .deb files `debootstrap --foreign` downloaded, in its order."""
    listed = (root / "debootstrap" / "debpaths").read_text().split("\n")
    return [root / line.split()[1].lstrip("/") for line in listed if line.strip()]


def control_fields(deb: Path) -> str:
    """The package's control paragraph, as dpkg-deb prints it."""
    return subprocess.run(
        ["dpkg-deb", "-f", str(deb)], capture_output=True, text=True, check=True
    ).stdout.strip()


def field(paragraph: str, name: str) -> str:
    match = re.search(rf"^{name}: (.*)$", paragraph, re.MULTILINE)
    return match.group(1).strip() if match else ""


def status_entry(paragraph: str) -> str:
    """dpkg's status entry for an unpacked and configured package."""
    lines = paragraph.splitlines()
    return "\n".join([lines[0], "Status: install ok installed", *lines[1:]])


def info_name(paragraph: str) -> str:
    """dpkg's name for the package's info files: `pkg:arch` for Multi-Arch: same."""
    package = field(paragraph, "Package")
    if field(paragraph, "Multi-Arch") == "same":
        return f"{package}:{field(paragraph, 'Architecture')}"
    return package


def unpack(deb: Path, root: Path) -> list[str]:
    """Unpack the package's files into `root` (through merged-/usr's directory symlinks, as
    debootstrap does); return the paths it ships, as dpkg's info/<pkg>.list holds them."""
    tar = subprocess.run(
        ["dpkg-deb", "--fsys-tarfile", str(deb)], capture_output=True, check=True
    ).stdout
    subprocess.run(
        ["tar", "--keep-directory-symlink", "-x", "-C", str(root)], input=tar, check=True
    )
    names = subprocess.run(["tar", "-t"], input=tar, capture_output=True, check=True).stdout
    paths = []
    for name in names.decode().splitlines():
        path = "/" + name.removeprefix("./").rstrip("/")
        paths.append("/." if path == "/" else path)
    return paths


def install(root: Path, debs: list[Path], arch: str) -> None:
    """Unpack every package into `root` and record it installed and configured."""
    dpkg = root / "var" / "lib" / "dpkg"
    info = dpkg / "info"
    info.mkdir(parents=True, exist_ok=True)
    entries = []
    scripts: list[Path] = []
    for deb in debs:
        paths = unpack(deb, root)
        paragraph = control_fields(deb)
        entries.append(status_entry(paragraph))
        name = info_name(paragraph)
        (info / f"{name}.list").write_text("\n".join(paths) + "\n")
        control = root / "tmp" / f"control-{name}"
        subprocess.run(["dpkg-deb", "-e", str(deb), str(control)], check=True)
        for item in control.iterdir():
            if item.name != "control":
                target = info / f"{name}.{item.name}"
                shutil.move(item, target)
                if item.name == "postinst":
                    scripts.append(target)
        shutil.rmtree(control)
    (dpkg / "status").write_text("\n\n".join(entries) + "\n")
    # Format 1 names Multi-Arch: same packages' info files `pkg:arch.*`, as written above.
    (info / "format").write_text("1\n")
    for empty in ("available", "diversions", "statoverride"):
        (dpkg / empty).touch()
    (dpkg / "arch").write_text(f"{arch}\n")
    register_alternatives(root, scripts)


def register_alternatives(root: Path, postinsts: list[Path]) -> None:
    """What `update-alternatives --install` in the packages' postinst scripts would leave:
    for each name, the highest priority's link through /etc/alternatives."""
    best: dict[str, tuple[int, str, str]] = {}
    for script in postinsts:
        for link, name, path, priority in ALTERNATIVE.findall(script.read_text(errors="replace")):
            if "$" in link + name + path:
                continue  # a variable we cannot read without running the script
            if name not in best or int(priority) > best[name][0]:
                best[name] = (int(priority), link, path)
    admin = root / "var" / "lib" / "dpkg" / "alternatives"
    admin.mkdir(parents=True, exist_ok=True)
    for name, (priority, link, path) in sorted(best.items()):
        if not (root / path.lstrip("/")).exists():
            continue
        chosen = root / "etc" / "alternatives" / name
        chosen.parent.mkdir(parents=True, exist_ok=True)
        chosen.unlink(missing_ok=True)
        chosen.symlink_to(path)
        linked = root / link.lstrip("/")
        if not linked.exists() and not linked.is_symlink():
            linked.parent.mkdir(parents=True, exist_ok=True)
            linked.symlink_to(f"/etc/alternatives/{name}")
        (admin / name).write_text(f"auto\n{link}\n\n{path}\n{priority}\n\n")


def configure(root: Path) -> None:
    """The configuration the skipped maintainer scripts would have written."""
    for default, installed in DEFAULTS:
        target = root / installed
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(root / default, target)
    # Inside a container debootstrap's first stage links /proc to the host's (its second
    # stage would make it a directory again); runc mounts proc only on a directory.
    proc = root / "proc"
    if proc.is_symlink():
        proc.unlink()
    proc.mkdir(mode=0o755, exist_ok=True)
    for directory, mode in DIRECTORIES:
        (root / directory).mkdir(parents=True, exist_ok=True)
        (root / directory).chmod(mode)
    ca_bundle(root)


def ca_bundle(root: Path) -> None:
    """/etc/ca-certificates.conf and /etc/ssl/certs/ca-certificates.crt, as
    update-ca-certificates makes them on a fresh install: every certificate shipped."""
    shipped = root / "usr" / "share" / "ca-certificates"
    certificates = sorted(p.relative_to(shipped) for p in shipped.rglob("*.crt"))
    (root / "etc" / "ca-certificates.conf").write_text(
        "".join(f"{cert}\n" for cert in certificates)
    )
    bundle = root / "etc" / "ssl" / "certs" / "ca-certificates.crt"
    bundle.parent.mkdir(parents=True, exist_ok=True)
    with bundle.open("w") as out:
        for cert in certificates:
            text = (shipped / cert).read_text()
            out.write(text if text.endswith("\n") else text + "\n")
