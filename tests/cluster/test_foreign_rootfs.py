"""The arm64 base's root filesystem is configured from the host (eq_cluster.local.
foreign_rootfs): dpkg's database from real .deb files built here with dpkg-deb, the
alternatives their scripts register, the defaults they install, the CA bundle."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from eq_cluster.local import foreign_rootfs


def build_deb(tmp: Path, package: str, *, multi_arch: str = "", postinst: str = "") -> Path:
    assert shutil.which("dpkg-deb"), "dpkg-deb not found: apt-get install dpkg"
    tree = tmp / f"src-{package}"
    (tree / "DEBIAN").mkdir(parents=True)
    (tree / "usr" / "bin").mkdir(parents=True)
    (tree / "usr" / "bin" / f"{package}-tool").write_text("#!/bin/sh\n")
    control = [
        f"Package: {package}",
        "Version: 1.0-1",
        "Architecture: arm64",
        "Maintainer: eq <eq@example.test>",
        *([f"Multi-Arch: {multi_arch}"] if multi_arch else []),
        "Description: a test package",
    ]
    (tree / "DEBIAN" / "control").write_text("\n".join(control) + "\n")
    if postinst:
        script = tree / "DEBIAN" / "postinst"
        script.write_text(postinst)
        script.chmod(0o755)
    deb = tmp / f"{package}.deb"
    subprocess.run(["dpkg-deb", "--build", str(tree), str(deb)], check=True, capture_output=True)
    return deb


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "root"
    (root / "tmp").mkdir(parents=True)
    return root


def test_packages_are_unpacked_and_recorded_installed(tmp_path: Path, root: Path) -> None:
    plain = build_deb(tmp_path, "mawk", postinst=(
        "#!/bin/sh\nupdate-alternatives --install /usr/bin/awk awk /usr/bin/mawk-tool 5 \\\n"
        "  --slave /usr/share/man/man1/awk.1.gz awk.1.gz /usr/share/man/man1/mawk.1.gz\n"
        "update-alternatives --install /usr/bin/nawk nawk /usr/bin/$X 5\n"
    ))  # fmt: skip
    same = build_deb(tmp_path, "libfoo1", multi_arch="same")
    foreign_rootfs.install(root, [plain, same], "arm64")

    assert (root / "usr" / "bin" / "libfoo1-tool").exists()
    dpkg = root / "var" / "lib" / "dpkg"
    status = (dpkg / "status").read_text()
    assert "Package: mawk\nStatus: install ok installed\nVersion: 1.0-1" in status
    assert "Package: libfoo1\nStatus: install ok installed" in status
    assert (dpkg / "info" / "format").read_text() == "1\n"
    assert (dpkg / "info" / "libfoo1:arm64.list").read_text().splitlines() == [
        "/.", "/usr", "/usr/bin", "/usr/bin/libfoo1-tool",
    ]  # fmt: skip
    assert (dpkg / "info" / "mawk.postinst").exists()
    assert (dpkg / "arch").read_text() == "arm64\n"
    # The alternative the script registers, through /etc/alternatives; the one naming a
    # shell variable is left alone (its target is unknown without running the script).
    assert (root / "usr" / "bin" / "awk").readlink() == Path("/etc/alternatives/awk")
    assert (root / "etc" / "alternatives" / "awk").readlink() == Path("/usr/bin/mawk-tool")
    assert not (root / "usr" / "bin" / "nawk").is_symlink()
    assert (dpkg / "alternatives" / "awk").read_text().startswith("auto\n/usr/bin/awk\n")


def test_configure_installs_defaults_directories_and_the_ca_bundle(root: Path) -> None:
    for default, _ in foreign_rootfs.DEFAULTS:
        (root / default).parent.mkdir(parents=True, exist_ok=True)
        (root / default).write_text(f"default {default}\n")
    (root / "etc").mkdir(exist_ok=True)
    (root / "etc" / "passwd").write_text("kept\n")  # never overwritten
    (root / "proc").symlink_to("/proc")  # what debootstrap --foreign leaves in a container
    mozilla = root / "usr" / "share" / "ca-certificates" / "mozilla"
    mozilla.mkdir(parents=True)
    (mozilla / "B.crt").write_text("-----B-----")
    (mozilla / "A.crt").write_text("-----A-----\n")

    foreign_rootfs.configure(root)

    assert (root / "etc" / "nsswitch.conf").read_text().startswith("default usr/share/libc-bin")
    assert (root / "etc" / "passwd").read_text() == "kept\n"
    assert (root / "run" / "lock").stat().st_mode & 0o7777 == 0o1777
    assert (root / "proc").is_dir()
    assert not (root / "proc").is_symlink()
    assert (root / "usr" / "local" / "lib" / "python3.11" / "dist-packages").is_dir()
    bundle = root / "etc" / "ssl" / "certs" / "ca-certificates.crt"
    assert bundle.read_text() == "-----A-----\n-----B-----\n"
    conf = (root / "etc" / "ca-certificates.conf").read_text()
    assert conf == "mozilla/A.crt\nmozilla/B.crt\n"
