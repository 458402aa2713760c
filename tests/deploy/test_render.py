"""Rendering: golden files per environment, apply order, image pinning, redaction."""

from __future__ import annotations

import base64
import os
import re
from pathlib import Path
from typing import Any

import pytest
from eq_deploy import podspec
from eq_deploy.errors import UsageError
from eq_deploy.render import (
    APPLY_ORDER,
    REDACTED,
    migrate_job_name,
    redact,
    render_manifests,
    settings_fingerprints,
    to_yaml,
)
from eq_deploy.settings import sample_values

GOLDEN = Path(__file__).parent / "golden"
TAG = "sha-0123456789abcdef0123456789abcdef01234567"
DIGEST = "sha256:" + "ab" * 32
RUNTIME = {"DEPLOYED_AT": "2025-01-02T03:04:05Z", "DEPLOY_BY": "ci@builder"}


def values(**extra: str) -> dict[str, str]:
    return {**sample_values(), **RUNTIME, **extra}


def pod_spec(obj: dict[str, Any]) -> dict[str, Any]:
    spec: dict[str, Any] = obj["spec"]["template"]["spec"]
    return spec


@pytest.mark.parametrize("environment", ["local", "cloud"])
def test_render_matches_golden(environment: str) -> None:
    objects = render_manifests(environment, TAG, values=values())
    text = to_yaml(objects)
    golden = GOLDEN / f"render-{environment}.yaml"
    if os.environ.get("EQ_UPDATE_GOLDEN"):
        golden.write_text(text)
    assert text == golden.read_text(), f"regenerate with EQ_UPDATE_GOLDEN=1 if intended ({golden})"


def test_render_without_values_uses_env_example_samples() -> None:
    objects = render_manifests("local", TAG)
    config = next(o for o in objects if o["kind"] == "ConfigMap")
    assert config["data"]["CORS_ORIGINS"] == '["https://eq.example.com"]'


@pytest.mark.parametrize("environment", ["local", "cloud"])
def test_objects_come_in_apply_order(environment: str) -> None:
    kinds = [o["kind"] for o in render_manifests(environment, TAG)]
    assert kinds == sorted(kinds, key=APPLY_ORDER.index)
    assert kinds[:5] == ["Namespace", "ConfigMap", "Secret", "Job", "Deployment"]


def test_local_is_nodeport_30080_without_hpa() -> None:
    objects = {o["kind"]: o for o in render_manifests("local", TAG)}
    assert objects["Service"]["spec"]["type"] == "NodePort"
    assert objects["Service"]["spec"]["ports"][0]["nodePort"] == 30080
    assert "HorizontalPodAutoscaler" not in objects
    assert objects["Deployment"]["spec"]["replicas"] == 2


def test_cloud_has_loadbalancer_hpa_pdb_and_ingress_only_with_a_host() -> None:
    objects = {o["kind"]: o for o in render_manifests("cloud", TAG)}
    assert objects["Service"]["spec"]["type"] == "LoadBalancer"
    assert objects["HorizontalPodAutoscaler"]["spec"]["metrics"][0]["resource"]["target"] == {
        "type": "Utilization",
        "averageUtilization": 70,
    }
    assert objects["PodDisruptionBudget"]["spec"]["minAvailable"] == 1
    assert "replicas" not in objects["Deployment"]["spec"]  # the HPA owns it
    assert "Ingress" not in objects
    with_host = {
        o["kind"]: o
        for o in render_manifests("cloud", TAG, values=values(INGRESS_HOST="eq.example.org"))
    }
    assert with_host["Ingress"]["spec"]["rules"][0]["host"] == "eq.example.org"


def test_every_container_runs_the_pinned_image() -> None:
    image = f"127.0.0.1:5000/eq-backend:{TAG}@{DIGEST}"
    objects = render_manifests("local", TAG, image=image, values=values())
    runners = [o for o in objects if o["kind"] in {"Job", "Deployment"}]
    assert len(runners) == 2
    for obj in runners:
        assert [c["image"] for c in pod_spec(obj)["containers"]] == [image]
    deployment = runners[1]
    env = {e["name"]: e["value"] for e in pod_spec(deployment)["containers"][0]["env"]}
    assert env == {
        "DEPLOYED_AT": "2025-01-02T03:04:05Z",
        "DEPLOY_SHA": TAG.removeprefix("sha-"),
        "DEPLOY_IMAGE": image,
        "DEPLOY_BY": "ci@builder",
    }


def test_default_image_is_environment_repository_and_image_setting_overrides() -> None:
    deployment = next(o for o in render_manifests("local", TAG) if o["kind"] == "Deployment")
    assert pod_spec(deployment)["containers"][0]["image"] == f"127.0.0.1:5000/eq-backend:{TAG}"
    # An old .env's IMAGE carried a tag: the repository is kept, --tag decides the build.
    old = render_manifests("local", TAG, values=values(IMAGE="docker.io/someone/eq-backend:latest"))
    deployment = next(o for o in old if o["kind"] == "Deployment")
    assert pod_spec(deployment)["containers"][0]["image"] == f"docker.io/someone/eq-backend:{TAG}"


@pytest.mark.parametrize(
    "image", ["REPLACE_IMG", "eq-backend", "Bad/Name:x", "repo:tag@sha256:short"]
)
def test_placeholder_or_invalid_image_is_refused(image: str) -> None:
    with pytest.raises(UsageError, match="--image"):
        render_manifests("local", TAG, image=image)


def test_namespace_setting_moves_every_object() -> None:
    objects = render_manifests("local", TAG, values=values(K8S_NAMESPACE="eq-staging"))
    assert objects[0]["metadata"]["name"] == "eq-staging"
    assert {o["metadata"]["namespace"] for o in objects[1:]} == {"eq-staging"}


def test_secrets_are_redacted_by_default_and_real_only_on_request() -> None:
    secret_value = "postgresql://eq:hunter2-very-secret@db.internal:5432/eq"
    v = values(DATABASE_URL=secret_value)
    shown = to_yaml(render_manifests("local", TAG, values=v))
    assert "hunter2" not in shown
    assert base64.b64encode(secret_value.encode()).decode() not in shown
    secret = next(o for o in render_manifests("local", TAG, values=v) if o["kind"] == "Secret")
    assert secret["data"]["DATABASE_URL"] == REDACTED
    assert secret["metadata"]["annotations"]["eq.deploy/redacted"] == "true"
    real = next(
        o
        for o in render_manifests("local", TAG, values=v, redact_secrets=False)
        if o["kind"] == "Secret"
    )
    assert base64.b64decode(real["data"]["DATABASE_URL"]).decode() == secret_value
    assert "annotations" not in real["metadata"]
    assert redact(real)["data"]["DATABASE_URL"] == REDACTED


def test_secrets_never_reach_the_configmap() -> None:
    config = next(o for o in render_manifests("cloud", TAG) if o["kind"] == "ConfigMap")
    assert not {"DATABASE_URL", "SECRET_KEY", "OPENAI_API_KEY", "GOOGLE_CLIENT_SECRET"} & set(
        config["data"]
    )


def names(**extra: str) -> tuple[str, str, tuple[str, str], tuple[str, str]]:
    """(ConfigMap name, Secret name, Deployment's envFrom refs, Job's envFrom refs)."""
    objects = {o["kind"]: o for o in render_manifests("local", TAG, values=values(**extra))}
    return (
        objects["ConfigMap"]["metadata"]["name"],
        objects["Secret"]["metadata"]["name"],
        podspec.settings_refs(objects["Deployment"]),
        podspec.settings_refs(objects["Job"]),
    )


def test_settings_objects_are_content_addressed_and_immutable() -> None:
    config, secret, deployment_refs, job_refs = names()
    assert re.fullmatch(r"eq-backend-config-[0-9a-f]{10}", config)
    assert re.fullmatch(r"eq-backend-secrets-[0-9a-f]{10}", secret)
    assert deployment_refs == job_refs == (config, secret)
    assert names() == names()  # deterministic
    debug = names(LOG_LEVEL="DEBUG")
    assert (debug[0] != config, debug[1] == secret) == (True, True)
    rotated = names(SECRET_KEY="another-secret-key-0123456789")
    assert (rotated[0] == config, rotated[1] != secret) == (True, True)
    for obj in render_manifests("local", TAG):
        if obj["kind"] in ("ConfigMap", "Secret"):
            assert obj["immutable"] is True
            assert obj["metadata"]["labels"]["eq.deploy/settings"]


def test_fingerprints_name_every_key_and_hold_no_value() -> None:
    secret_value = "postgresql://eq:hunter2-very-secret@db.internal:5432/eq"
    objects = render_manifests(
        "local", TAG, values=values(DATABASE_URL=secret_value), redact_secrets=False
    )
    salt = b"0" * 32
    prints = settings_fingerprints(objects, salt)
    assert {"DATABASE_URL", "SECRET_KEY", "LOG_LEVEL", "CORS_ORIGINS"} <= set(prints)
    assert all(re.fullmatch(r"[0-9a-f]{12}", v) for v in prints.values())
    assert "hunter2" not in repr(prints)
    other = render_manifests("local", TAG, values=values(LOG_LEVEL="DEBUG"), redact_secrets=False)
    changed = {k for k, v in settings_fingerprints(other, salt).items() if prints.get(k) != v}
    assert changed == {"LOG_LEVEL", "DATABASE_URL"}
    assert settings_fingerprints(objects, b"1" * 32) != prints  # keyed: no guessing table
    with pytest.raises(ValueError, match="unredacted"):
        settings_fingerprints(render_manifests("local", TAG), salt)


def test_hardened_pod_security() -> None:
    for obj in render_manifests("cloud", TAG):
        if obj["kind"] not in {"Job", "Deployment"}:
            continue
        spec = pod_spec(obj)
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        assert spec["automountServiceAccountToken"] is False
        for container in spec["containers"]:
            sc = container["securityContext"]
            assert sc == {
                "allowPrivilegeEscalation": False,
                "readOnlyRootFilesystem": True,
                "capabilities": {"drop": ["ALL"]},
            }
            assert container["resources"]["requests"]
            assert container["resources"]["limits"]
            assert {"name": "tmp", "mountPath": "/tmp"} in container["volumeMounts"]


def test_deployment_rolls_without_losing_capacity() -> None:
    deployment = next(o for o in render_manifests("local", TAG) if o["kind"] == "Deployment")
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    api = pod_spec(deployment)["containers"][0]
    assert {"startupProbe", "readinessProbe", "livenessProbe"} <= set(api)
    # The backend drains on SIGTERM itself (eq_backend.server): drain 5 s + grace 20 s.
    assert pod_spec(deployment)["terminationGracePeriodSeconds"] >= 5 + 20


@pytest.mark.parametrize(
    ("environment", "surge"), [("local", "100%"), ("kind", "100%"), ("cloud", 1)]
)
def test_the_environment_sets_how_many_new_pods_a_rollout_starts(
    environment: str, surge: int | str
) -> None:
    deployment = next(o for o in render_manifests(environment, TAG) if o["kind"] == "Deployment")
    assert deployment["spec"]["strategy"]["rollingUpdate"] == {
        "maxUnavailable": 0,
        "maxSurge": surge,
    }


@pytest.mark.parametrize("bad", [0, -1, True, "0%", "101%", "half", "2.5", None])
def test_a_bad_max_surge_names_the_file(
    bad: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import eq_deploy.environments as environments

    text = (environments.ENVIRONMENTS_DIR / "local.yaml").read_text()
    (tmp_path / "local.yaml").write_text(text.replace("max_surge: 100%", f"max_surge: {bad!r}"))
    monkeypatch.setattr(environments, "ENVIRONMENTS_DIR", tmp_path)
    with pytest.raises(UsageError, match=r"local.yaml: bad or missing value .*'max_surge'"):
        environments.load_environment("local")


def test_migrate_job_name_carries_the_tag_and_stays_valid() -> None:
    assert migrate_job_name("sha-abc1234") == "eq-backend-migrate-sha-abc1234"
    assert migrate_job_name(TAG) == f"eq-backend-migrate-{TAG}"
    assert len(migrate_job_name(TAG)) <= 63
    long = migrate_job_name("Release_2024.10.01-" + "x" * 80)
    assert len(long) <= 63
    assert long.startswith("eq-backend-migrate-release-2024-10-01-")


def test_bad_setting_is_named() -> None:
    with pytest.raises(UsageError, match="CORS_ORIGINS"):
        render_manifests("local", TAG, values=values(CORS_ORIGINS='["https://a.example",'))


def test_unknown_environment_is_named() -> None:
    with pytest.raises(UsageError, match="--env 'prod'"):
        render_manifests("prod", TAG)
