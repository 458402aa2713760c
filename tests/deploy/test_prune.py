"""Pruning, the migration Jobs kept, the legacy settings objects and `inv destroy`, against the
in-memory cluster of fakecluster.py. On a real cluster: tests/e2e/test_deploy.py::test_prune_*."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from eq_deploy import prune as prunemod
from eq_deploy.deploy import diff
from eq_deploy.errors import DeployError, UsageError
from eq_deploy.inspect import destroy
from eq_deploy.progress import Reporter
from eq_deploy.render import INVENTORY_LABEL
from fakecluster import Build, FakeCluster
from test_flows import BASE, NS, A, B, Bed

HPA = {
    "apiVersion": "autoscaling/v2",
    "kind": "HorizontalPodAutoscaler",
    "metadata": {"name": "eq-backend", "namespace": NS, "labels": {INVENTORY_LABEL: "app"}},
    "spec": {"minReplicas": 2, "maxReplicas": 6},
}


@pytest.fixture
def bed(tmp_path: Path) -> Bed:
    return Bed(FakeCluster(builds={A: Build(BASE, "r2"), B: Build(BASE, "r2")}), tmp_path)


def test_what_the_render_no_longer_has_is_shown_then_pruned(bed: Bed) -> None:
    bed.deploy(A)
    bed.cluster.apply(HPA)  # left by a render that had `hpa:` set
    out = io.StringIO()
    changes = diff(B, bed.target(), Reporter(out, tty=False), kube=bed.cluster)  # type: ignore[arg-type]
    assert "- HorizontalPodAutoscaler/eq-backend (would delete)" in changes
    assert "- HorizontalPodAutoscaler/eq-backend (would delete)" in out.getvalue()
    assert bed.cluster.get("HorizontalPodAutoscaler", "eq-backend", NS) is not None

    bed.deploy(B, prune=False)
    assert bed.cluster.get("HorizontalPodAutoscaler", "eq-backend", NS) is not None
    bed.deploy(B)
    assert bed.cluster.get("HorizontalPodAutoscaler", "eq-backend", NS) is None
    assert "- HorizontalPodAutoscaler/eq-backend (deleted)" in bed.out.getvalue()
    assert "pruned 1 object(s)" in bed.out.getvalue()
    assert bed.cluster.get("Service", "eq-backend", NS) is not None  # still rendered: kept


def test_nothing_is_pruned_when_the_deploy_fails(bed: Bed) -> None:
    bed.deploy(A)
    bed.cluster.apply(HPA)
    bed.cluster.builds["sha-dead0001"] = Build(BASE, "r2", crashes=True)
    with pytest.raises(DeployError, match="CrashLoopBackOff"):
        bed.deploy("sha-dead0001")
    assert bed.cluster.get("HorizontalPodAutoscaler", "eq-backend", NS) is not None


def test_only_the_last_migration_jobs_are_kept(bed: Bed) -> None:
    tags = [f"sha-ab{i:04d}" for i in range(prunemod.KEEP_JOBS + 3)]
    for tag in tags:
        bed.cluster.builds[tag] = Build(BASE, "r2")
        bed.deploy(tag)
    jobs = {o["metadata"]["name"] for o in bed.cluster.items("Job", NS)}
    assert jobs == {f"eq-backend-migrate-{t}" for t in tags[-prunemod.KEEP_JOBS :]}


def test_the_fixed_name_settings_of_older_versions_are_removed(bed: Bed) -> None:
    for kind in ("ConfigMap", "Secret"):
        name = "eq-backend-config" if kind == "ConfigMap" else "eq-backend-secrets"
        bed.cluster.apply(
            {"apiVersion": "v1", "kind": kind, "metadata": {"name": name, "namespace": NS}}
        )
    bed.deploy(A)
    assert bed.cluster.get("ConfigMap", "eq-backend-config", NS) is None
    assert bed.cluster.get("Secret", "eq-backend-secrets", NS) is None


def test_destroy_lists_first_then_removes_the_app(bed: Bed) -> None:
    bed.deploy(A)
    before = dict(bed.cluster.objects)
    with pytest.raises(UsageError, match=r"would delete \d+ object\(s\) in eq-flows .*--yes"):
        destroy(bed.target(), Reporter(io.StringIO()), yes=False, kube=bed.cluster)  # type: ignore[arg-type]
    assert bed.cluster.objects.keys() == before.keys()
    destroy(bed.target(), Reporter(io.StringIO()), yes=True, kube=bed.cluster)  # type: ignore[arg-type]
    left = {f"{k}/{n}" for (k, ns, n) in bed.cluster.objects if k != "Pod"}
    assert left == {"Namespace/eq-flows"}
