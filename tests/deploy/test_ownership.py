"""owned_fields: what the automatic rollback re-applies of the Deployment that served (the
tool's own fields, never the defaulted ones nor an HPA's replicas). The managedFields below
are trimmed from a Deployment of the local cluster (kube-apiserver 1.34)."""

from __future__ import annotations

import copy
from typing import Any

from eq_deploy.ownership import owned_fields

OURS = {
    "f:metadata": {"f:labels": {"f:app.kubernetes.io/name": {}}},
    "f:spec": {
        "f:selector": {},
        "f:template": {
            "f:spec": {
                "f:containers": {
                    'k:{"name":"api"}': {
                        ".": {},
                        "f:name": {},
                        "f:image": {},
                        "f:env": {
                            'k:{"name":"DEPLOY_SHA"}': {".": {}, "f:name": {}, "f:value": {}}
                        },
                        "f:ports": {
                            'k:{"containerPort":8000,"protocol":"TCP"}': {
                                ".": {},
                                "f:containerPort": {},
                            }
                        },
                    }
                },
                "f:tolerations": {'v:"a"': {}},
            }
        },
    },
}
HPA = {"f:spec": {"f:replicas": {}}}


def live() -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "eq-backend",
            "namespace": "eq",
            "resourceVersion": "42",
            "labels": {"app.kubernetes.io/name": "eq-backend", "other": "x"},
            "managedFields": [
                {"manager": "eq-deploy", "operation": "Apply", "fieldsV1": OURS},
                {"manager": "horizontal-pod-autoscaler", "operation": "Update", "fieldsV1": HPA},
                {
                    "manager": "eq-deploy",
                    "operation": "Apply",
                    "subresource": "status",
                    "fieldsV1": {"f:status": {}},
                },
            ],
        },
        "spec": {
            "replicas": 5,
            "revisionHistoryLimit": 10,
            "selector": {"matchLabels": {"app": "eq"}},
            "template": {
                "spec": {
                    "dnsPolicy": "ClusterFirst",
                    "containers": [
                        {
                            "name": "api",
                            "image": "eq:1",
                            "imagePullPolicy": "IfNotPresent",
                            "env": [{"name": "DEPLOY_SHA", "value": "abc"}, {"name": "X"}],
                            "ports": [{"containerPort": 8000, "protocol": "TCP", "name": "http"}],
                        },
                        {"name": "sidecar", "image": "injected:1"},
                    ],
                    "tolerations": ["a", "b"],
                }
            },
        },
        "status": {"replicas": 5},
    }


def test_only_the_tools_own_fields_are_kept() -> None:
    assert owned_fields(live(), "eq-deploy") == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": "eq-backend",
            "namespace": "eq",
            "labels": {"app.kubernetes.io/name": "eq-backend"},
        },
        "spec": {
            "selector": {"matchLabels": {"app": "eq"}},
            "template": {
                "spec": {
                    "containers": [
                        {
                            "name": "api",
                            "image": "eq:1",
                            "env": [{"name": "DEPLOY_SHA", "value": "abc"}],
                            "ports": [{"containerPort": 8000, "protocol": "TCP"}],
                        }
                    ],
                    "tolerations": ["a"],
                }
            },
        },
    }


def test_an_hpas_replicas_and_defaulted_fields_are_left_alone() -> None:
    body = owned_fields(live(), "eq-deploy")
    assert "replicas" not in body["spec"]
    assert "revisionHistoryLimit" not in body["spec"]
    assert "dnsPolicy" not in body["spec"]["template"]["spec"]
    assert "status" not in body


def test_nothing_owned_is_just_the_identity() -> None:
    obj = copy.deepcopy(live())
    assert owned_fields(obj, "someone-else") == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "eq-backend", "namespace": "eq"},
    }
