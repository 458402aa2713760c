"""Assemble the backend image's root filesystem in one directory: what /opt/venv/bin/python
needs at run time, taken from the base image this runs in, and nothing else (no shell, no
package manager, no coreutils). The image is then `FROM scratch` + this directory + the venv
+ the app.

    /opt/venv/bin/python docker/assemble_rootfs.py /rootfs

Run it with the venv's python, in a stage built from the same base as the venv: everything is
found from that interpreter (sys.executable, sysconfig, ssl) and from `ldd`, so the same
script serves a Debian rootfs (Python in /usr/bin) and the official image (Python in
/usr/local, a shared libpython). The venv itself and /app are not copied here: the
Dockerfile copies them as their own layers.

What goes in:
- the interpreter: the venv's symlink chain outside the venv, and the real executable;
- the standard library, less what a server never imports (EXCLUDED_STDLIB, EXCLUDED_DYNLOAD),
  every module compiled (the root filesystem is read-only at run time);
- the shared libraries all of that and the venv's extension modules load (`ldd`), the
  dynamic loader, libgcc_s (see below), and an ld.so.cache for them;
- the CA bundle and OpenSSL's configuration, time zones, the C.UTF-8 locale, nsswitch.conf,
  a minimal passwd/group, and /tmp.
"""

from __future__ import annotations

import compileall
import os
import shutil
import ssl
import subprocess
import sys
import sysconfig
from collections.abc import Set as AbstractSet
from pathlib import Path

UID = GID = 10001
VENV = Path(sys.prefix)

# Standard library entries (top level of the stdlib directory) a server never imports.
# `venv` and `ensurepip` go too: the image has its venv already, no pip to bootstrap and no
# shell to activate another one from.
EXCLUDED_STDLIB = {
    "test", "idlelib", "tkinter", "turtledemo", "turtle.py", "ensurepip", "venv", "lib2to3",
    "pydoc_data", "curses", "site-packages", "dist-packages",
}  # fmt: skip
EXCLUDED_STDLIB_PREFIXES = ("config-",)  # the static libpython and its Makefile
# Test suites inside stdlib packages (ctypes/test, unittest/test, distutils/tests...).
EXCLUDED_STDLIB_ANYWHERE = {"test", "tests", "idle_test"}
# Extension modules in lib-dynload (matched by module name) that nothing here loads: CPython's
# own test modules, the terminal and GUI ones (readline, curses, Tk), and two that would pull
# in big libraries for nothing: nis (libnsl, libtirpc and Kerberos) and _dbm (Berkeley DB).
EXCLUDED_DYNLOAD = {
    "_testbuffer", "_testcapi", "_testclinic", "_testimportmultiple", "_testinternalcapi",
    "_testmultiphase", "_testsinglephase", "_ctypes_test", "_xxtestfuzz", "xxlimited",
    "xxlimited_35", "xxsubtype", "_xxsubinterpreters", "readline", "_curses", "_curses_panel",
    "_tkinter", "nis", "_dbm", "_gdbm", "ossaudiodev",
}  # fmt: skip

PASSWD = f"""\
root:x:0:0:root:/root:/usr/sbin/nologin
eq:x:{UID}:{GID}:eq:/nonexistent:/usr/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
"""
GROUP = f"""\
root:x:0:
eq:x:{GID}:
nogroup:x:65534:
"""


class Rootfs:
    def __init__(self, root: Path) -> None:
        self.root = root

    def inside(self, path: Path | str) -> Path:
        return self.root / Path(path).relative_to("/")

    def directory(self, path: Path) -> Path:
        """Recreate a directory, symlinks on the way as symlinks (a merged-/usr base has
        /lib -> usr/lib); return its real path."""
        real = Path("/")
        for part in path.parts[1:]:
            step = real / part
            if step.is_symlink():
                self.symlink(step)
                step = self.directory(Path(os.path.realpath(step)))
            elif not self.inside(step).exists():
                self.inside(step).mkdir()
                shutil.copystat(step, self.inside(step))
            real = step
        return real

    def parents(self, path: Path) -> Path:
        """Recreate `path`'s parent directories; return `path` with its parent resolved."""
        return self.directory(path.parent) / path.name

    def symlink(self, link: Path) -> None:
        target = self.inside(link)
        if not target.is_symlink():
            self.parents(link)
            target.symlink_to(os.readlink(link))

    def file(self, path: Path | str) -> None:
        """Copy a file, dereferenced, to the same path."""
        path = Path(path)
        dest = self.inside(self.parents(path))
        if not dest.exists():
            shutil.copy2(path, dest)  # follows symlinks

    def chain(self, path: Path) -> Path:
        """Recreate the symlinks from `path` to the file it names; copy that file; return it.
        Links inside the venv are the venv layer's, not ours."""
        while path.is_symlink():
            if not path.is_relative_to(VENV):
                self.symlink(path)
            path = Path(os.path.normpath(path.parent / os.readlink(path)))
        self.file(path)
        return path

    def tree(
        self,
        src: Path,
        skip: AbstractSet[str] = frozenset(),
        prefixes: tuple[str, ...] = (),
        skip_anywhere: AbstractSet[str] = frozenset(),
    ) -> None:
        """Copy a directory as it is (symlinks as symlinks), less the top-level names in skip
        or starting with one of prefixes, and the directories named in skip_anywhere."""
        if not src.is_dir():
            return

        def ignore(directory: str, names: list[str]) -> set[str]:
            ignored = {n for n in names if n in skip_anywhere and Path(directory, n).is_dir()}
            if Path(directory) == src:
                ignored |= {n for n in names if n in skip or n.startswith(prefixes)}
            return ignored

        dest = self.inside(self.parents(src))
        shutil.copytree(src, dest, symlinks=True, ignore=ignore, dirs_exist_ok=True)

    def write(self, path: str, text: str, mode: int = 0o644) -> None:
        dest = self.inside(self.parents(Path(path)))
        dest.write_text(text)
        dest.chmod(mode)


def libraries(objects: list[Path]) -> set[Path]:
    """The shared libraries `ldd` resolves for these ELF files, the dynamic loader included;
    fails on any library it cannot find. Libraries inside the venv (auditwheel's *.libs/)
    are the venv layer's."""
    found: set[Path] = set()
    missing: list[str] = []
    output = subprocess.run(
        ["ldd", *map(str, objects)], capture_output=True, text=True, check=False
    ).stdout
    current = ""
    for line in output.splitlines():
        if not line.startswith("\t"):
            current = line.rstrip(":")
            continue
        entry = line.strip()
        if "not found" in entry:
            missing.append(f"{current}: {entry}")
        elif "=>" in entry:
            path = entry.split("=>", 1)[1].split("(", 1)[0].strip()
            if path:
                found.add(Path(path))
        elif entry.startswith("/"):
            found.add(Path(entry.split("(", 1)[0].strip()))  # the dynamic loader
    if missing:
        sys.exit("libraries not found:\n" + "\n".join(missing))
    return {p for p in found if not p.is_relative_to(VENV)}


def elf_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*.so*") if p.is_file() and not p.is_symlink())


def main(root: Path) -> None:
    rootfs = Rootfs(root)
    root.mkdir(parents=True, exist_ok=True)

    # The interpreter: /opt/venv/bin/python -> python3 -> /usr/bin/python3 -> python3.11.
    executable = rootfs.chain(Path(sys.executable))
    if executable.is_relative_to(VENV):
        sys.exit(f"{executable} is a copy of the interpreter, not a link to the base's")

    # The standard library, less EXCLUDED_*, compiled with paths as they are at run time.
    # Asked for the base interpreter's paths (from the venv, platstdlib names the venv).
    base = {"base": sys.base_prefix, "platbase": sys.base_exec_prefix}
    stdlib = Path(sysconfig.get_path("stdlib", vars=base))
    platstdlib = Path(sysconfig.get_path("platstdlib", vars=base))
    dynload = platstdlib / "lib-dynload"
    libdirs = sorted({stdlib, platstdlib})
    for directory in libdirs:
        rootfs.tree(
            directory,
            EXCLUDED_STDLIB | {"lib-dynload"},
            EXCLUDED_STDLIB_PREFIXES,
            EXCLUDED_STDLIB_ANYWHERE,
        )
    rootfs.tree(dynload, {"__pycache__"})
    suffixes = tuple(s for s in (sysconfig.get_config_var("EXT_SUFFIX"), ".abi3.so", ".so") if s)
    for module in rootfs.inside(dynload).iterdir():
        name = module.name
        for suffix in suffixes:
            name = name.removesuffix(suffix)
        if name in EXCLUDED_DYNLOAD:
            module.unlink()
    for directory in libdirs:
        if not compileall.compile_dir(
            rootfs.inside(directory), quiet=1, stripdir=str(root), prependdir="/", workers=0
        ):
            sys.exit(f"compileall failed in {directory}")
    # Debian's sitecustomize.py is a link to /etc/python3.11/: copy what such links name.
    for link in rootfs.inside(stdlib).iterdir():
        if link.is_symlink():
            rootfs.chain(stdlib / link.name)

    # The shared libraries of the interpreter, lib-dynload and the venv's extension modules.
    # glibc dlopen()s libgcc_s.so.1 to unwind a thread on pthread_exit/cancel; ldd cannot see
    # that, so it comes from libc's directory.
    objects = [executable, *elf_files(rootfs.inside(dynload)), *elf_files(VENV)]
    libs = libraries(objects)
    libc = next(p for p in libs if p.name.startswith("libc.so"))
    libgcc_s = libc.parent / "libgcc_s.so.1"
    libs |= {libgcc_s, *libraries([libgcc_s])}
    for lib in sorted(libs):
        rootfs.file(lib)
    # A loader cache for exactly these libraries: the official image's libpython is in
    # /usr/local/lib, which the loader finds only through the cache.
    directories = sorted({str(lib.parent) for lib in libs})
    rootfs.write("/etc/ld.so.conf", "\n".join(directories) + "\n")
    subprocess.run(["ldconfig", "-X", "-r", str(root)], check=True)
    shutil.rmtree(rootfs.inside("/var/cache/ldconfig"), ignore_errors=True)

    # TLS: the CA bundle and OpenSSL's directory (/usr/lib/ssl/{cert.pem,certs,openssl.cnf}
    # -> /etc/ssl on Debian). Only the bundle: not the hashed per-certificate links.
    paths = ssl.get_default_verify_paths()
    cafile = Path(paths.openssl_cafile)
    rootfs.chain(cafile)
    rootfs.directory(Path(paths.openssl_capath))
    openssl_cnf = cafile.parent / "openssl.cnf"
    if openssl_cnf.exists():
        rootfs.chain(openssl_cnf)

    # Time zones (without right/, the leap-second variants nothing uses), the C.UTF-8
    # locale, name service configuration (files, then DNS).
    rootfs.tree(Path("/usr/share/zoneinfo"), {"right"})
    rootfs.tree(Path("/usr/lib/locale/C.utf8"))
    if Path("/etc/nsswitch.conf").exists():
        rootfs.file("/etc/nsswitch.conf")

    # Users: root, the app's fixed UID/GID, nobody. No shell to log in to.
    rootfs.write("/etc/passwd", PASSWD)
    rootfs.write("/etc/group", GROUP)
    tmp = rootfs.inside("/tmp")  # noqa: S108 - the image's /tmp (a tmpfs at run time)
    tmp.mkdir(exist_ok=True)
    tmp.chmod(0o1777)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
