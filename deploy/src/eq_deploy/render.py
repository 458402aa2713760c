"""Rendering: (manifests, environment values, tag, settings) → the objects deploy applies.

Pure and deterministic: it reads deploy/manifests/*.yaml and deploy/environments/<env>.yaml,
edits the parsed objects (never text), and returns them in apply order. Secrets are filled
only in memory; with `redact_secrets` (the default) their values are replaced by REDACTED
and the Secret is marked so the kube facade refuses to apply it.

The ConfigMap and Secret are content-addressed (`eq-backend-config-<hash>`, `immutable:
true`): a release's settings are never edited in place, so rolling back the Deployment also
brings back the settings it ran with.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import hmac
import json
import re
from collections.abc import Mapping
from typing import Any

import yaml

from eq_deploy.environments import MANIFESTS_DIR, Environment, load_environment
from eq_deploy.errors import UsageError
from eq_deploy.images import image_for, parse_image
from eq_deploy.podspec import containers, set_settings_refs
from eq_deploy.settings import ANY_TAG_PATTERN, Settings, check_settings, known, sample_values

Obj = dict[str, Any]

APP = "eq-backend"
CONFIGMAP_PREFIX = "eq-backend-config-"
SECRET_PREFIX = "eq-backend-secrets-"  # noqa: S105 - a name, not a value
# Marks the content-addressed settings objects, so the ones no release refers to can be found.
SETTINGS_LABEL = "eq.deploy/settings"
# Marks what a deploy prunes when a later render no longer has it (prune.py).
INVENTORY_LABEL = "eq.deploy/inventory"
INVENTORY_KINDS = (
    "Deployment",
    "Service",
    "PodDisruptionBudget",
    "HorizontalPodAutoscaler",
    "Ingress",
)
DEPLOYMENT_NAME = "eq-backend"
SERVICE_NAME = "eq-backend"
MIGRATE_JOB_PREFIX = "eq-backend-migrate-"
ANNOTATION_PREFIX = "eq.deploy/"
REDACTED_ANNOTATION = ANNOTATION_PREFIX + "redacted"
TAG_ANNOTATION = ANNOTATION_PREFIX + "tag"
REDACTED = "REDACTED"  # valid base64, so a redacted render still lints as a Secret
RUNTIME_KEYS = ("DEPLOYED_AT", "DEPLOY_SHA", "DEPLOY_IMAGE", "DEPLOY_BY")

# Apply order: what a later object needs exists first (the Job reads the ConfigMap and
# Secret; the Deployment runs only after the Job migrated the schema).
APPLY_ORDER = (
    "Namespace",
    "ConfigMap",
    "Secret",
    "Job",
    "Deployment",
    "Service",
    "PodDisruptionBudget",
    "HorizontalPodAutoscaler",
    "Ingress",
)
MANIFEST_FILES = {
    "Namespace": "namespace.yaml",
    "ConfigMap": "configmap.yaml",
    "Secret": "secret.yaml",
    "Job": "job-migrate.yaml",
    "Deployment": "deployment.yaml",
    "Service": "service.yaml",
    "PodDisruptionBudget": "pdb.yaml",
    "HorizontalPodAutoscaler": "hpa.yaml",
    "Ingress": "ingress.yaml",
}


def render_manifests(
    environment: str,
    tag: str,
    *,
    image: str | None = None,
    values: Mapping[str, str] | None = None,
    redact_secrets: bool = True,
) -> list[dict[str, Any]]:
    """The objects `inv deploy --env <environment> --tag <tag>` applies, in apply order.

    `image` is the full reference to run (deploy passes the digest-pinned `repo:tag@sha256:`);
    by default it is `<repository>:<tag>` with the repository from IMAGE in `values` or the
    environment file. `values` are the settings (a `.env`); None means the sample values of
    `.env.example`. DEPLOYED_AT, DEPLOY_SHA and DEPLOY_BY in `values` go to the pods.
    Raises UsageError naming a bad tag, image or setting.
    """
    env = load_environment(environment)
    raw_values: Mapping[str, str] = sample_values() if values is None else values
    settings = check_settings(Settings(known(raw_values), "values"), env.required)
    if not ANY_TAG_PATTERN.fullmatch(tag):
        raise UsageError(f"tag {tag!r} is not a valid image tag")
    ref = _image(env, settings, tag, image)
    namespace = settings.get("K8S_NAMESPACE") or env.namespace
    config = settings.config_data(env.config)
    secret = settings.secret_data()
    config_name = CONFIGMAP_PREFIX + content_hash(config)
    secret_name = SECRET_PREFIX + content_hash(secret)
    runtime = {
        "DEPLOYED_AT": raw_values.get("DEPLOYED_AT", ""),
        "DEPLOY_SHA": raw_values.get("DEPLOY_SHA") or _sha_from_tag(tag),
        "DEPLOY_IMAGE": ref,
        "DEPLOY_BY": raw_values.get("DEPLOY_BY", ""),
    }
    ingress_host = settings.get("INGRESS_HOST") or env.ingress_host

    objects: list[Obj] = []
    for kind in APPLY_ORDER:
        if kind == "PodDisruptionBudget" and not env.pdb:
            continue
        if kind == "HorizontalPodAutoscaler" and env.hpa is None:
            continue
        if kind == "Ingress" and not ingress_host:
            continue
        obj = load_manifest(kind)
        if kind == "Namespace":
            obj["metadata"]["name"] = namespace
        else:
            obj["metadata"]["namespace"] = namespace
        if kind == "ConfigMap":
            obj["metadata"]["name"] = config_name
            obj["data"] = config
        elif kind == "Secret":
            obj["metadata"]["name"] = secret_name
            _fill_secret(obj, secret, redact=redact_secrets)
        elif kind == "Job":
            _fill_job(obj, env, tag, ref)
            set_settings_refs(obj, config_name, secret_name)
        elif kind == "Deployment":
            _fill_deployment(obj, env, tag, ref, runtime)
            set_settings_refs(obj, config_name, secret_name)
        elif kind == "Service":
            _fill_service(obj, env)
        elif kind == "HorizontalPodAutoscaler":
            _fill_hpa(obj, env)
        elif kind == "Ingress":
            _fill_ingress(obj, env, ingress_host)
        if kind in INVENTORY_KINDS:
            obj["metadata"]["labels"][INVENTORY_LABEL] = "app"
        objects.append(obj)
    _check_images(objects, ref)
    return objects


def load_manifest(kind: str) -> Obj:
    """One manifest of deploy/manifests/, parsed (a fresh copy each call)."""
    path = MANIFESTS_DIR / MANIFEST_FILES[kind]
    obj = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(obj, dict) or obj.get("kind") != kind:
        raise UsageError(f"{path.name}: expected one {kind} object")
    return copy.deepcopy(obj)


def default_image(environment: str, tag: str, values: Mapping[str, str] | None = None) -> str:
    """`<repository>:<tag>`: the repository from IMAGE in `values`, else the environment's."""
    env = load_environment(environment)
    settings = Settings(known(values or {}), "values")
    return _image(env, settings, tag, None)


def migrate_job_name(tag: str) -> str:
    """`eq-backend-migrate-<tag>`, made a valid object name (≤63, lower-case, [a-z0-9-])."""
    return _name_with(MIGRATE_JOB_PREFIX, tag)


def content_hash(data: Mapping[str, str]) -> str:
    """10 hex digits naming a settings object by its content: a changed setting is a new
    object (and a new pod template, so the pods roll). For the Secret it covers SECRET_KEY
    too, which keeps the name from being an oracle for a weak value."""
    blob = json.dumps(dict(data), sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:10]


def settings_fingerprints(objects: list[Obj], salt: bytes) -> dict[str, str]:
    """{key: fingerprint} of every setting in the rendered (unredacted) ConfigMap and Secret:
    an HMAC keyed with a per-namespace salt (kept in a Secret), so history shows which keys
    changed between releases without holding values or hashes one could guess them from."""
    out: dict[str, str] = {}
    for obj in objects:
        if obj["kind"] == "ConfigMap":
            values = dict(obj.get("data") or {})
        elif obj["kind"] == "Secret":
            if (obj["metadata"].get("annotations") or {}).get(REDACTED_ANNOTATION):
                raise ValueError("fingerprints need the unredacted Secret")
            values = {k: base64.b64decode(v).decode() for k, v in (obj.get("data") or {}).items()}
        else:
            continue
        for key, value in values.items():
            digest = hmac.new(salt, f"{key}={value}".encode(), hashlib.sha256).hexdigest()
            out[key] = digest[:12]
    return dict(sorted(out.items()))


def to_yaml(objects: list[Obj]) -> str:
    """The objects as one multi-document YAML stream."""
    return yaml.safe_dump_all(objects, sort_keys=False, default_flow_style=False, width=120)


def redact(obj: Obj) -> Obj:
    """A copy of `obj` safe to show: Secret values replaced by REDACTED."""
    if obj.get("kind") != "Secret":
        return obj
    out = copy.deepcopy(obj)
    _fill_secret(out, dict.fromkeys(out.get("data") or {}, ""), redact=True)
    out.pop("stringData", None)
    return out


def _image(env: Environment, settings: Settings, tag: str, image: str | None) -> str:
    if image is not None:
        try:
            parsed = parse_image(image)
        except ValueError as exc:
            raise UsageError(f"--image {exc}") from None
        if not parsed.tag and not parsed.digest:
            raise UsageError(f"--image {image!r} names neither a tag nor a digest")
        return str(parsed)
    repository = settings.get("IMAGE") or env.image_repository
    try:
        return str(image_for(repository, tag))
    except ValueError as exc:
        source = "IMAGE" if settings.get("IMAGE") else f"image_repository of {env.name}"
        raise UsageError(f"{source} {exc}") from None


def _sha_from_tag(tag: str) -> str:
    match = re.fullmatch(r"sha-([0-9a-f]{4,40})", tag)
    return match.group(1) if match else ""


def _name_with(prefix: str, tag: str) -> str:
    slug = re.sub(r"[^a-z0-9-]+", "-", tag.lower()).strip("-")
    name = prefix + slug
    if len(name) > 63:
        digest = hashlib.sha256(tag.encode()).hexdigest()[:8]
        name = name[: 63 - 9].rstrip("-") + "-" + digest
    return name


def _label_value(text: str) -> str:
    value = re.sub(r"[^A-Za-z0-9_.-]", "-", text)[:63]
    return value.strip("-_.")


def _fill_secret(obj: Obj, secret: Mapping[str, str], *, redact: bool) -> None:
    if redact:
        obj["data"] = dict.fromkeys(sorted(secret), REDACTED)
        obj["metadata"].setdefault("annotations", {})[REDACTED_ANNOTATION] = "true"
    else:
        obj["data"] = {k: base64.b64encode(v.encode()).decode() for k, v in sorted(secret.items())}


def _fill_job(obj: Obj, env: Environment, tag: str, ref: str) -> None:
    obj["metadata"]["name"] = migrate_job_name(tag)
    obj["metadata"]["labels"]["app.kubernetes.io/version"] = _label_value(tag)
    obj["metadata"].setdefault("annotations", {})[TAG_ANNOTATION] = tag
    for container in containers(obj):
        container["image"] = ref


def _fill_deployment(
    obj: Obj, env: Environment, tag: str, ref: str, runtime: Mapping[str, str]
) -> None:
    meta = obj["metadata"]
    meta["labels"]["app.kubernetes.io/version"] = _label_value(tag)
    meta.setdefault("annotations", {})[TAG_ANNOTATION] = tag
    spec = obj["spec"]
    if env.hpa is None:
        spec["replicas"] = env.replicas
    else:
        # The HPA owns the replica count; applying one here would fight it on every deploy.
        spec.pop("replicas", None)
    spec["progressDeadlineSeconds"] = env.progress_deadline_seconds
    spec["strategy"]["rollingUpdate"]["maxSurge"] = env.max_surge
    template = spec["template"]
    template["metadata"]["labels"]["app.kubernetes.io/version"] = _label_value(tag)
    for container in containers(obj):
        container["image"] = ref
        container["resources"] = copy.deepcopy(env.resources)
        container["env"] = [{"name": k, "value": runtime[k]} for k in RUNTIME_KEYS]


def _fill_service(obj: Obj, env: Environment) -> None:
    obj["spec"]["type"] = env.service_type
    if env.service_type == "NodePort" and env.node_port is not None:
        obj["spec"]["ports"][0]["nodePort"] = env.node_port


def _fill_hpa(obj: Obj, env: Environment) -> None:
    assert env.hpa is not None
    obj["spec"]["minReplicas"] = env.hpa.min_replicas
    obj["spec"]["maxReplicas"] = env.hpa.max_replicas
    obj["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] = env.hpa.cpu_utilization


def _fill_ingress(obj: Obj, env: Environment, host: str) -> None:
    obj["spec"]["rules"][0]["host"] = host
    if env.ingress_class:
        obj["spec"]["ingressClassName"] = env.ingress_class


def _check_images(objects: list[Obj], ref: str) -> None:
    """Every container runs exactly `ref`: no manifest placeholder can reach a pod."""
    for obj in objects:
        for container in containers(obj):
            if container.get("image") != ref:
                name = obj["metadata"]["name"]
                raise UsageError(
                    f"{obj['kind']}/{name} container {container.get('name')} "
                    f"has image {container.get('image')!r}"
                )
