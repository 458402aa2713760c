"""The manifest policy: a good set passes, and each rule fails on an object broken for it."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from eq_deploy import policy
from eq_deploy.policy import SAMPLE_DIGEST, Violation, check_objects, schema_violations

Obj = dict[str, Any]
IMAGE = f"127.0.0.1:5000/eq-backend:sha-0123456@{SAMPLE_DIGEST}"
LABELS = {
    "app.kubernetes.io/name": "eq-backend",
    "app.kubernetes.io/part-of": "eq",
    "app.kubernetes.io/managed-by": "eq-deploy",
}
POD_LABELS = {"app.kubernetes.io/name": "eq-backend", "app.kubernetes.io/component": "api"}


def _meta(name: str, **labels: str) -> Obj:
    return {"name": name, "namespace": "eq", "labels": {**LABELS, **labels}}


def _container(name: str) -> Obj:
    return {
        "name": name,
        "image": IMAGE,
        "envFrom": [{"configMapRef": {"name": "cfg"}}, {"secretRef": {"name": "sec"}}],
        "env": [{"name": "DEPLOY_SHA", "value": "0123456"}],
        "readinessProbe": {"httpGet": {"path": "/health", "port": 8000}},
        "livenessProbe": {"httpGet": {"path": "/health", "port": 8000}},
        "resources": {
            "requests": {"cpu": "100m", "memory": "128Mi"},
            "limits": {"cpu": "1", "memory": "512Mi"},
        },
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
    }


def _pod(container: Obj, labels: dict[str, str]) -> Obj:
    return {
        "metadata": {"labels": dict(labels)},
        "spec": {
            "securityContext": {"runAsNonRoot": True, "runAsUser": 10001},
            "containers": [container],
        },
    }


def good_set() -> list[Obj]:
    """A small set that follows every rule (the shape of the real render)."""
    migrate = _container("migrate")
    del migrate["readinessProbe"], migrate["livenessProbe"]  # a Job needs no probes
    job_pod = _pod(migrate, {"app.kubernetes.io/name": "eq-backend"})
    job_pod["spec"]["restartPolicy"] = "Never"
    return [
        {
            "apiVersion": "v1",
            "kind": "Namespace",
            "metadata": {
                "name": "eq",
                "labels": {k: v for k, v in LABELS.items() if "name" not in k},
            },
        },
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": _meta("cfg"),
            "immutable": True,
            "data": {"LOG_LEVEL": "INFO"},
        },
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": _meta("sec"),
            "immutable": True,
            "data": {"SECRET_KEY": "eA=="},
        },
        {
            "apiVersion": "batch/v1",
            "kind": "Job",
            "metadata": _meta("migrate"),
            "spec": {"backoffLimit": 0, "template": job_pod},
        },
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": _meta("api"),
            "spec": {
                "replicas": 2,
                "selector": {"matchLabels": dict(POD_LABELS)},
                "template": _pod(_container("api"), POD_LABELS),
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": _meta("api"),
            "spec": {"selector": dict(POD_LABELS), "ports": [{"port": 80, "targetPort": 8000}]},
        },
        {
            "apiVersion": "policy/v1",
            "kind": "PodDisruptionBudget",
            "metadata": _meta("api"),
            "spec": {"minAvailable": 1, "selector": {"matchLabels": dict(POD_LABELS)}},
        },
        {
            "apiVersion": "autoscaling/v2",
            "kind": "HorizontalPodAutoscaler",
            "metadata": _meta("api"),
            "spec": {
                "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "api"},
                "minReplicas": 2,
                "maxReplicas": 4,
            },
        },
    ]


def find(objects: list[Obj], kind: str) -> Obj:
    return next(o for o in objects if o["kind"] == kind)


def api_container(objects: list[Obj]) -> Obj:
    container: Obj = find(objects, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    return container


API = "spec.template.spec.containers[0]"


def test_good_set_passes_every_rule_and_the_schemas() -> None:
    objects = good_set()
    assert check_objects(objects) == []
    assert schema_violations(objects) == []


# Each case: (rule, how to break the good set, the object, the field path, words of the message)
Breaker = Callable[[list[Obj]], None]


def _drop_probe(objects: list[Obj]) -> None:
    del api_container(objects)["readinessProbe"]


def _drop_memory_limit(objects: list[Obj]) -> None:
    del api_container(objects)["resources"]["limits"]["memory"]


def _drop_cpu_request_of_job(objects: list[Obj]) -> None:
    del find(objects, "Job")["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"][
        "cpu"
    ]


def _root_pod(objects: list[Obj]) -> None:
    find(objects, "Deployment")["spec"]["template"]["spec"]["securityContext"] = {}


def _root_uid(objects: list[Obj]) -> None:
    api_container(objects)["securityContext"]["runAsUser"] = 0


def _writable_root(objects: list[Obj]) -> None:
    api_container(objects)["securityContext"]["readOnlyRootFilesystem"] = False


def _escalation(objects: list[Obj]) -> None:
    del api_container(objects)["securityContext"]["allowPrivilegeEscalation"]


def _capabilities(objects: list[Obj]) -> None:
    api_container(objects)["securityContext"]["capabilities"] = {"drop": ["NET_RAW"]}


def _latest(objects: list[Obj]) -> None:
    api_container(objects)["image"] = "127.0.0.1:5000/eq-backend:latest"


def _untagged(objects: list[Obj]) -> None:
    api_container(objects)["image"] = "127.0.0.1:5000/eq-backend"


def _tag_only(objects: list[Obj]) -> None:
    api_container(objects)["image"] = "127.0.0.1:5000/eq-backend:sha-0123456"


def _short_digest(objects: list[Obj]) -> None:
    api_container(objects)["image"] = "eq-backend:sha-0123456@sha256:abc"


def _secret_in_configmap(objects: list[Obj]) -> None:
    find(objects, "ConfigMap")["data"]["SECRET_KEY"] = "hunter2"


def _database_url_in_configmap(objects: list[Obj]) -> None:
    find(objects, "ConfigMap")["data"]["DATABASE_URL"] = "postgresql://eq@db/eq"


def _password_url_in_configmap(objects: list[Obj]) -> None:
    find(objects, "ConfigMap")["data"]["UPSTREAM"] = "https://user:hunter2@example.com/"


def _secret_env_literal(objects: list[Obj]) -> None:
    api_container(objects)["env"].append({"name": "OPENAI_API_KEY", "value": "sk-123"})


def _mutable_configmap(objects: list[Obj]) -> None:
    del find(objects, "ConfigMap")["immutable"]


def _mutable_secret(objects: list[Obj]) -> None:
    find(objects, "Secret")["immutable"] = False


def _missing_label(objects: list[Obj]) -> None:
    del find(objects, "Service")["metadata"]["labels"]["app.kubernetes.io/part-of"]


def _namespace_label(objects: list[Obj]) -> None:
    del find(objects, "Namespace")["metadata"]["labels"]["app.kubernetes.io/managed-by"]


def _template_name_label(objects: list[Obj]) -> None:
    find(objects, "Job")["spec"]["template"]["metadata"]["labels"]["app.kubernetes.io/name"] = (
        "other"
    )


def _selector_mismatch(objects: list[Obj]) -> None:
    find(objects, "Deployment")["spec"]["selector"]["matchLabels"][
        "app.kubernetes.io/component"
    ] = "web"


def _service_selects_nothing(objects: list[Obj]) -> None:
    find(objects, "Service")["spec"]["selector"] = {"app.kubernetes.io/name": "eq-frontend"}


def _pdb_selects_nothing(objects: list[Obj]) -> None:
    find(objects, "PodDisruptionBudget")["spec"]["selector"]["matchLabels"] = {}


def _hpa_target(objects: list[Obj]) -> None:
    find(objects, "HorizontalPodAutoscaler")["spec"]["scaleTargetRef"]["name"] = "gone"


def _envfrom_missing(objects: list[Obj]) -> None:
    api_container(objects)["envFrom"][1]["secretRef"]["name"] = "typo"


CASES: list[tuple[str, Breaker, str, str, str]] = [
    ("probes", _drop_probe, "Deployment/api", f"{API}.readinessProbe", "missing"),
    (
        "resources",
        _drop_memory_limit,
        "Deployment/api",
        f"{API}.resources.limits.memory",
        "not set",
    ),
    (
        "resources",
        _drop_cpu_request_of_job,
        "Job/migrate",
        f"{API}.resources.requests.cpu",
        "not set",
    ),
    ("non_root", _root_pod, "Deployment/api", f"{API}.securityContext.runAsNonRoot", "true"),
    ("non_root", _root_uid, "Deployment/api", f"{API}.securityContext.runAsUser", "root"),
    (
        "read_only_root",
        _writable_root,
        "Deployment/api",
        f"{API}.securityContext.readOnlyRootFilesystem",
        "must be true",
    ),
    (
        "privileges",
        _escalation,
        "Deployment/api",
        f"{API}.securityContext.allowPrivilegeEscalation",
        "must be false",
    ),
    (
        "privileges",
        _capabilities,
        "Deployment/api",
        f"{API}.securityContext.capabilities.drop",
        "ALL",
    ),
    ("image_tag", _latest, "Deployment/api", f"{API}.image", "uses the tag latest"),
    ("image_tag", _untagged, "Deployment/api", f"{API}.image", "has no tag"),
    ("image_digest", _tag_only, "Deployment/api", f"{API}.image", "not pinned by digest"),
    ("image_digest", _short_digest, "Deployment/api", f"{API}.image", "not pinned by digest"),
    ("secret_data", _secret_in_configmap, "ConfigMap/cfg", "data.SECRET_KEY", "Secret"),
    ("secret_data", _database_url_in_configmap, "ConfigMap/cfg", "data.DATABASE_URL", "Secret"),
    ("secret_data", _password_url_in_configmap, "ConfigMap/cfg", "data.UPSTREAM", "password"),
    ("secret_data", _secret_env_literal, "Deployment/api", f"{API}.env[1].value", "Secret"),
    ("immutable_settings", _mutable_configmap, "ConfigMap/cfg", "immutable", "must be true"),
    ("immutable_settings", _mutable_secret, "Secret/sec", "immutable", "content-addressed"),
    (
        "labels",
        _missing_label,
        "Service/api",
        "metadata.labels.app.kubernetes.io/part-of",
        "missing",
    ),
    (
        "labels",
        _namespace_label,
        "Namespace/eq",
        "metadata.labels.app.kubernetes.io/managed-by",
        "missing",
    ),
    (
        "labels",
        _template_name_label,
        "Job/migrate",
        "spec.template.metadata.labels.app.kubernetes.io/name",
        "differs",
    ),
    (
        "selectors",
        _selector_mismatch,
        "Deployment/api",
        "spec.selector.matchLabels.app.kubernetes.io/component",
        "does not match",
    ),
    (
        "cross_object",
        _service_selects_nothing,
        "Service/api",
        "spec.selector",
        "matches no workload",
    ),
    (
        "cross_object",
        _pdb_selects_nothing,
        "PodDisruptionBudget/api",
        "spec.selector.matchLabels",
        "empty",
    ),
    (
        "cross_object",
        _hpa_target,
        "HorizontalPodAutoscaler/api",
        "spec.scaleTargetRef",
        "not in the",
    ),
    (
        "cross_object",
        _envfrom_missing,
        "Deployment/api",
        f"{API}.envFrom[1].secretRef.name",
        "Secret/typo",
    ),
]


@pytest.mark.parametrize(
    ("rule", "breaker", "obj", "path", "words"),
    CASES,
    ids=[f"{rule}-{breaker.__name__.strip('_')}" for rule, breaker, *_ in CASES],
)
def test_each_rule_fails_on_a_broken_object(
    rule: str, breaker: Breaker, obj: str, path: str, words: str
) -> None:
    objects = good_set()
    breaker(objects)
    violations = check_objects(objects, source=lambda _o: "deploy/manifests/x.yaml/local")
    assert violations, f"{breaker.__name__} broke nothing"
    assert len({(v.kind, v.name, v.path) for v in violations}) == 1, violations
    violation = violations[0]
    assert f"{violation.kind}/{violation.name}" == obj
    assert violation.path == path
    assert words in violation.message
    assert str(violation) == f"deploy/manifests/x.yaml/local: {obj}: {path}: {violation.message}"
    if rule != "cross_object":  # the rule alone finds it too
        alone = check_objects(objects, rules={rule: policy.RULES[rule]}, across=False)
        assert [(v.kind, v.name, v.path) for v in alone] == [(violation.kind, violation.name, path)]


def test_every_rule_has_a_failing_case() -> None:
    assert {rule for rule, *_ in CASES} == {*policy.RULES, "cross_object"}


def test_probes_are_not_required_of_a_job() -> None:
    job = find(good_set(), "Job")
    assert check_objects([job], rules={"probes": policy.probes}, across=False) == []


def test_a_token_lifetime_is_not_a_secret() -> None:
    objects = good_set()
    find(objects, "ConfigMap")["data"]["ACCESS_TOKEN_EXPIRE_MINUTES"] = "30"
    assert check_objects(objects) == []


def test_an_env_reference_to_a_secret_is_fine() -> None:
    objects = good_set()
    api_container(objects)["env"].append(
        {"name": "SECRET_KEY", "valueFrom": {"secretKeyRef": {"name": "sec", "key": "SECRET_KEY"}}}
    )
    assert check_objects(objects) == []


def test_schema_rejects_an_unknown_field_with_its_path() -> None:
    objects = good_set()
    api_container(objects)["readinessProbe"]["httpGet"]["paht"] = "/health"
    found = schema_violations(objects, ["1.34.0"], source=lambda _o: "deployment.yaml/local")
    assert len(found) == 1
    assert str(found[0]).startswith(
        "deployment.yaml/local: Deployment/api: "
        "spec.template.spec.containers[0].readinessProbe.httpGet: "
    )
    assert "'paht' was unexpected" in found[0].message
    assert "Kubernetes 1.34.0" in found[0].message


def test_schema_rejects_a_wrong_type() -> None:
    objects = good_set()
    find(objects, "Deployment")["spec"]["replicas"] = "two"
    found = schema_violations(objects, ["1.33.0"])
    assert [(v.kind, v.path) for v in found] == [("Deployment", "spec.replicas")]


def test_schema_names_an_unknown_api_version() -> None:
    objects = good_set()
    find(objects, "HorizontalPodAutoscaler")["apiVersion"] = "autoscaling/v9"
    found = schema_violations(objects, ["1.34.0"])
    assert [(v.kind, v.path) for v in found] == [("HorizontalPodAutoscaler", "apiVersion")]


def test_every_environment_renders_clean(tmp_path: Path) -> None:
    names, violations = policy.check_environments(out=tmp_path)
    assert names, "no environment in deploy/environments"
    assert violations == []
    assert sorted(p.stem for p in tmp_path.glob("*.yaml")) == sorted(names)


def test_main_reports_each_violation_and_fails(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = Violation(
        "deploy/manifests/deployment.yaml/local",
        "Deployment",
        "eq-backend",
        "spec.template.spec.containers[0].image",
        "'x:latest' uses the tag latest",
    )
    monkeypatch.setattr(policy, "check_environments", lambda *a, **k: (["local"], [broken]))
    assert policy.main([]) == 1
    err = capsys.readouterr().err
    assert (
        "deploy/manifests/deployment.yaml/local: Deployment/eq-backend: "
        "spec.template.spec.containers[0].image: 'x:latest' uses the tag latest"
    ) in err
    assert "1 violation(s)" in err


def test_main_passes_on_the_real_manifests(capsys: pytest.CaptureFixture[str]) -> None:
    assert policy.main(["--kubernetes-version", "1.34.0"]) == 0
    assert "policy rules pass" in capsys.readouterr().out


def test_a_deep_copy_of_the_good_set_is_independent() -> None:
    first, second = good_set(), copy.deepcopy(good_set())
    _latest(first)
    assert check_objects(second) == []


def test_the_same_schema_error_in_several_versions_is_one_violation() -> None:
    objects = good_set()
    api_container(objects)["livenessProbe"]["periodSecond"] = 5
    found = schema_violations(objects)
    assert len(found) == 1
    assert found[0].message.endswith("(Kubernetes 1.33.0, 1.34.0, 1.35.0)")
