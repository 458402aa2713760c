"""The eq_deploy wheel is the deploy tool only: the clusters tests run on and the throwaway
services live in the dev-only eq_cluster package (deploy/cluster), and the `inv` entry point
still lists the deploy tasks where that package is absent (a deploy-only install)."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
# What only tests and local clusters need; none of it may ship to users.
TEST_TOOLING = ("clusters", "sandbox", "eq_cluster", "services", "pki", "conftest", "test_")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> zipfile.ZipFile:
    uv = shutil.which("uv")
    assert uv, "uv is not on PATH: run the tests through ./dev or nox"
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [uv, "build", "--quiet", "--wheel", "--out-dir", str(out), str(ROOT / "deploy")],
        check=True,
        timeout=300,
    )
    (built,) = out.glob("eq_deploy-*.whl")
    return zipfile.ZipFile(built)


def test_wheel_holds_the_deploy_tool_only(wheel: zipfile.ZipFile) -> None:
    names = wheel.namelist()
    assert "eq_deploy/deploy.py" in names
    assert "eq_deploy/tasks.py" in names
    packages = {name.split("/", 1)[0] for name in names}
    assert packages == {"eq_deploy", "eq_deploy-0.1.0.dist-info"}
    shipped = [name for name in names if any(part in name for part in TEST_TOOLING)]
    assert shipped == []


def test_wheel_code_never_imports_the_dev_package(wheel: zipfile.ZipFile) -> None:
    sources = {n: wheel.read(n).decode() for n in wheel.namelist() if n.endswith(".py")}
    assert sources
    importing = re.compile(r"^\s*(from|import)\s+eq_cluster\b", re.MULTILINE)
    assert [name for name, text in sources.items() if importing.search(text)] == []


def test_wheel_requires_no_cluster_dependencies(wheel: zipfile.ZipFile) -> None:
    (metadata_name,) = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
    metadata = Parser().parsestr(wheel.read(metadata_name).decode())
    required = {
        r.split(">")[0].split("=")[0].split("<")[0].strip()
        for r in metadata.get_all("Requires-Dist") or []
    }
    assert "kubernetes" in required  # legacy kubeconfig auth providers need it
    assert not required & {"cryptography", "rich", "psycopg"}


# Makes eq_cluster absent the way an uninstalled package is: importing it raises
# ModuleNotFoundError naming it (the editable install's finder never gets asked).
HIDE_EQ_CLUSTER = """
class Absent:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] == "eq_cluster":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
sys.meta_path.insert(0, Absent())
"""


def _inv_list(*, without_eq_cluster: bool) -> str:
    code = "\n".join(
        [
            "import sys",
            HIDE_EQ_CLUSTER if without_eq_cluster else "",
            "from invoke.main import program",
            f"program.run(['inv', '--search-root', {str(ROOT)!r}, '--list'])",
        ]
    )
    listed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert listed.returncode == 0, listed.stderr
    return listed.stdout


def test_inv_lists_the_deploy_tasks_without_the_dev_package() -> None:
    listed = _inv_list(without_eq_cluster=True)
    for deploy_task in ("build", "deploy", "rollback", "history", "smoke"):
        assert f"  {deploy_task} " in listed
    assert "cluster." not in listed


def test_a_broken_dev_package_is_not_taken_for_an_absent_one(tmp_path: Path) -> None:
    """An import error inside eq_cluster must surface, not hide the cluster tasks."""
    broken = tmp_path / "eq_cluster"
    broken.mkdir()
    (broken / "__init__.py").write_text("import a_module_nobody_has\n")
    code = (
        f"import sys; sys.path.insert(0, {str(tmp_path)!r}); from invoke.main import program; "
        f"program.run(['inv', '--search-root', {str(ROOT)!r}, '--list'])"
    )
    listed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=False
    )
    assert listed.returncode != 0
    assert "a_module_nobody_has" in listed.stderr


def test_inv_lists_the_cluster_tasks_with_the_dev_package() -> None:
    listed = _inv_list(without_eq_cluster=False)
    for cluster_task in ("cluster.up", "cluster.down", "cluster.status", "cluster.build"):
        assert cluster_task in listed
