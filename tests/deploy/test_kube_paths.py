"""The kube facade's pure parts: API paths and what is stripped from a live object."""

from __future__ import annotations

import pytest
from eq_deploy.kube import path_for, strip_server_fields


@pytest.mark.parametrize(
    ("kind", "name", "namespace", "path"),
    [
        ("Namespace", "eq", None, "/api/v1/namespaces/eq"),
        ("Deployment", "eq-backend", "eq", "/apis/apps/v1/namespaces/eq/deployments/eq-backend"),
        ("Lease", None, "eq", "/apis/coordination.k8s.io/v1/namespaces/eq/leases"),
        (
            "HorizontalPodAutoscaler",
            "x",
            "eq",
            "/apis/autoscaling/v2/namespaces/eq/horizontalpodautoscalers/x",
        ),
    ],
)
def test_paths(kind: str, name: str | None, namespace: str | None, path: str) -> None:
    assert path_for(kind, name, namespace) == path


def test_namespaced_kind_needs_a_namespace() -> None:
    with pytest.raises(ValueError, match="needs a namespace"):
        path_for("ConfigMap", "x")


def test_strip_server_fields_keeps_what_was_applied() -> None:
    live = {
        "kind": "Deployment",
        "metadata": {
            "name": "eq-backend",
            "uid": "u",
            "resourceVersion": "7",
            "generation": 3,
            "creationTimestamp": "t",
            "managedFields": [{}],
            "annotations": {
                "deployment.kubernetes.io/revision": "4",
                "eq.deploy/tag": "sha-abc1234",
            },
        },
        "spec": {"replicas": 2},
        "status": {"replicas": 2},
    }
    assert strip_server_fields(live) == {
        "kind": "Deployment",
        "metadata": {"name": "eq-backend", "annotations": {"eq.deploy/tag": "sha-abc1234"}},
        "spec": {"replicas": 2},
    }
