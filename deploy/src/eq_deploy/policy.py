"""Manifest policy: the rules every rendered object must follow before anything is applied.

`check_objects` runs each rule over a list of rendered objects and returns the violations,
each naming the object and the field: `Deployment/eq-backend: spec.template.spec.containers[0]
.readinessProbe: missing`. `check_environments` renders every environment for a sample tag,
validates each object against the Kubernetes JSON schemas (strict: unknown fields are errors)
and runs the rules; `python -m eq_deploy.policy` is what `nox -s manifests` runs.

The rules (one function each, so a test can break each alone):
probes, resources, non_root, read_only_root, privileges, image_tag, image_digest,
secret_data, immutable_settings, labels, selectors.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eq_deploy import podspec

Obj = Mapping[str, Any]

# Kubernetes versions the manifests must validate against: the local cluster (1.34, see
# deploy/cluster/versions.env) and its neighbours, which kind and managed clusters run.
KUBERNETES_VERSIONS = ("1.33.0", "1.34.0", "1.35.0")
# A tag of the shape deploy uses and a well-formed digest: the sample render pins both.
SAMPLE_TAG = "sha-0123456789abcdef0123456789abcdef01234567"
SAMPLE_DIGEST = "sha256:" + "0123456789abcdef" * 4

WORKLOAD_KINDS = podspec.WORKLOAD_KINDS
REQUIRED_LABELS = ("app.kubernetes.io/part-of", "app.kubernetes.io/managed-by")
NAME_LABEL = "app.kubernetes.io/name"
DIGEST_RE = re.compile(r"@sha256:[0-9a-f]{64}$")
# Setting names that hold credentials: *_SECRET, *_PASSWORD, *_TOKEN, *_KEY, SECRET_*, and
# the connection URLs that carry passwords. ACCESS_TOKEN_EXPIRE_MINUTES is not one.
SECRET_NAME_RE = re.compile(
    r"(?:^|_)(?:SECRET|PASSWORD|PASSWD|TOKEN|KEY|CREDENTIALS?)$"
    r"|(?:^|_)SECRET_|^(?:DATABASE|REDIS|BROKER|CACHE)_URL$|_DSN$",
    re.IGNORECASE,
)
# A URL with a password in it (`scheme://user:pass@host`), whatever the key is called.
URL_WITH_PASSWORD_RE = re.compile(r"^[a-z][a-z0-9+.-]*://[^/@:\s]*:[^/@\s]+@", re.IGNORECASE)


@dataclass(frozen=True)
class Violation:
    """One broken rule: where (source, object, field) and what."""

    source: str
    kind: str
    name: str
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.source}: " if self.source else ""
        return f"{where}{self.kind}/{self.name}: {self.path}: {self.message}"


Rule = Callable[[Obj], Iterator[tuple[str, str]]]  # yields (field.path, message)


# --------------------------------------------------------------------------- helpers


def _pod_spec(obj: Obj) -> tuple[str, Obj] | None:
    """The pod spec of a workload and its field path, or None for other kinds."""
    spec = podspec.pod_spec(obj)
    return ("spec.template.spec", spec) if spec is not None else None


def _containers(obj: Obj) -> Iterator[tuple[str, Obj]]:
    """Every container and init container of a workload, with its field path."""
    found = _pod_spec(obj)
    if found is None:
        return
    base, spec = found
    for field in ("initContainers", "containers"):
        for i, container in enumerate(spec.get(field) or []):
            yield f"{base}.{field}[{i}]", container


def _labels(obj: Obj) -> Mapping[str, str]:
    return (obj.get("metadata") or {}).get("labels") or {}


# --------------------------------------------------------------------------- rules


def probes(obj: Obj) -> Iterator[tuple[str, str]]:
    """A long-running workload's containers have readiness and liveness probes."""
    if obj.get("kind") == "Job":
        return
    found = _pod_spec(obj)
    if found is None:
        return
    base, spec = found
    for i, container in enumerate(spec.get("containers") or []):
        for probe in ("readinessProbe", "livenessProbe"):
            if not container.get(probe):
                yield f"{base}.containers[{i}].{probe}", "missing"


def resources(obj: Obj) -> Iterator[tuple[str, str]]:
    """Every container requests CPU and memory and has a CPU and memory limit."""
    for path, container in _containers(obj):
        res = container.get("resources") or {}
        for section in ("requests", "limits"):
            for resource in ("cpu", "memory"):
                if not (res.get(section) or {}).get(resource):
                    yield f"{path}.resources.{section}.{resource}", "not set"


def non_root(obj: Obj) -> Iterator[tuple[str, str]]:
    """The pod or every container sets runAsNonRoot: true, and no UID is 0."""
    found = _pod_spec(obj)
    if found is None:
        return
    base, spec = found
    pod_ctx = spec.get("securityContext") or {}
    if pod_ctx.get("runAsUser") == 0:
        yield f"{base}.securityContext.runAsUser", "is 0 (root)"
    for path, container in _containers(obj):
        ctx = container.get("securityContext") or {}
        if ctx.get("runAsUser") == 0:
            yield f"{path}.securityContext.runAsUser", "is 0 (root)"
        if ctx.get("runAsNonRoot", pod_ctx.get("runAsNonRoot")) is not True:
            yield f"{path}.securityContext.runAsNonRoot", "must be true (here or in the pod)"


def read_only_root(obj: Obj) -> Iterator[tuple[str, str]]:
    """Every container's root filesystem is read-only."""
    for path, container in _containers(obj):
        if (container.get("securityContext") or {}).get("readOnlyRootFilesystem") is not True:
            yield f"{path}.securityContext.readOnlyRootFilesystem", "must be true"


def privileges(obj: Obj) -> Iterator[tuple[str, str]]:
    """No privilege escalation, no privileged mode, every capability dropped."""
    for path, container in _containers(obj):
        ctx = container.get("securityContext") or {}
        if ctx.get("privileged") is True:
            yield f"{path}.securityContext.privileged", "must not be true"
        if ctx.get("allowPrivilegeEscalation") is not False:
            yield f"{path}.securityContext.allowPrivilegeEscalation", "must be false"
        if "ALL" not in ((ctx.get("capabilities") or {}).get("drop") or []):
            yield f"{path}.securityContext.capabilities.drop", 'must include "ALL"'


def _image_tag(image: str) -> str | None:
    """The tag of an image reference (None when it has none)."""
    name = image.split("@", 1)[0]
    last = name.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else None


def image_tag(obj: Obj) -> Iterator[tuple[str, str]]:
    """No container runs `:latest` or an untagged image."""
    for path, container in _containers(obj):
        image = str(container.get("image") or "")
        tag = _image_tag(image)
        if tag == "latest":
            yield f"{path}.image", f"{image!r} uses the tag latest"
        elif tag is None and "@" not in image:
            yield f"{path}.image", f"{image!r} has no tag (that means latest)"


def image_digest(obj: Obj) -> Iterator[tuple[str, str]]:
    """Every container image is pinned by digest (`repo:tag@sha256:<64 hex>`)."""
    for path, container in _containers(obj):
        image = str(container.get("image") or "")
        if not DIGEST_RE.search(image):
            yield f"{path}.image", f"{image!r} is not pinned by digest (@sha256:...)"


def _looks_secret(key: str, value: object) -> str | None:
    if SECRET_NAME_RE.search(key):
        return f"{key} looks like a secret: it belongs in the Secret"
    if isinstance(value, str) and URL_WITH_PASSWORD_RE.match(value):
        return f"{key} holds a URL with a password: it belongs in the Secret"
    return None


def secret_data(obj: Obj) -> Iterator[tuple[str, str]]:
    """Secret values live only in a Secret: not in ConfigMaps, nor in env literals."""
    if obj.get("kind") == "ConfigMap":
        for field in ("data", "binaryData"):
            for key, value in (obj.get(field) or {}).items():
                problem = _looks_secret(key, value)
                if problem:
                    yield f"{field}.{key}", problem
    for path, container in _containers(obj):
        for i, env in enumerate(container.get("env") or []):
            if "value" not in env:
                continue  # valueFrom: a reference, not the data
            problem = _looks_secret(str(env.get("name", "")), env.get("value"))
            if problem:
                yield f"{path}.env[{i}].value", problem


def immutable_settings(obj: Obj) -> Iterator[tuple[str, str]]:
    """ConfigMaps and Secrets are `immutable: true`: a release's settings are never edited
    in place (a change is a new, content-addressed object), so a rollback restores them."""
    if obj.get("kind") in ("ConfigMap", "Secret") and obj.get("immutable") is not True:
        yield "immutable", "must be true (settings objects are content-addressed per release)"


def labels(obj: Obj) -> Iterator[tuple[str, str]]:
    """Every object carries the app.kubernetes.io labels; pod templates carry the name."""
    own = _labels(obj)
    wanted = REQUIRED_LABELS if obj.get("kind") == "Namespace" else (NAME_LABEL, *REQUIRED_LABELS)
    for label in wanted:
        if not own.get(label):
            yield f"metadata.labels.{label}", "missing"
    if _pod_spec(obj) is not None:
        template = ((obj.get("spec") or {}).get("template") or {}).get("metadata") or {}
        pod_name = (template.get("labels") or {}).get(NAME_LABEL)
        if not pod_name:
            yield f"spec.template.metadata.labels.{NAME_LABEL}", "missing"
        elif own.get(NAME_LABEL) and pod_name != own.get(NAME_LABEL):
            yield (
                f"spec.template.metadata.labels.{NAME_LABEL}",
                f"{pod_name!r} differs from the object's {own.get(NAME_LABEL)!r}",
            )


def selectors(obj: Obj) -> Iterator[tuple[str, str]]:
    """A workload's selector matches its own pod template's labels."""
    if obj.get("kind") not in ("Deployment", "StatefulSet", "DaemonSet"):
        return
    spec = obj.get("spec") or {}
    match = (spec.get("selector") or {}).get("matchLabels") or {}
    pod_labels = ((spec.get("template") or {}).get("metadata") or {}).get("labels") or {}
    if not match:
        yield "spec.selector.matchLabels", "empty: it would select nothing or everything"
    for key, value in match.items():
        if pod_labels.get(key) != value:
            yield (
                f"spec.selector.matchLabels.{key}",
                f"{value!r} does not match the pod template's {pod_labels.get(key)!r}",
            )


RULES: dict[str, Rule] = {
    "probes": probes,
    "resources": resources,
    "non_root": non_root,
    "read_only_root": read_only_root,
    "privileges": privileges,
    "image_tag": image_tag,
    "image_digest": image_digest,
    "secret_data": secret_data,
    "immutable_settings": immutable_settings,
    "labels": labels,
    "selectors": selectors,
}


def _pod_label_sets(objects: Sequence[Obj]) -> list[tuple[str, Mapping[str, str]]]:
    """(Kind/name, pod template labels) of every workload in the set."""
    out = []
    for obj in objects:
        if obj.get("kind") in WORKLOAD_KINDS and obj.get("kind") != "Job":
            template = ((obj.get("spec") or {}).get("template") or {}).get("metadata") or {}
            name = (obj.get("metadata") or {}).get("name")
            out.append((f"{obj.get('kind')}/{name}", template.get("labels") or {}))
    return out


def cross_object(objects: Sequence[Obj]) -> Iterator[tuple[Obj, str, str]]:
    """Selectors of Services and PDBs select some workload's pods; HPAs target a workload
    of the set; a workload's envFrom names a ConfigMap/Secret of the set."""
    pods = _pod_label_sets(objects)
    names = {(o.get("kind"), (o.get("metadata") or {}).get("name")) for o in objects}
    for obj in objects:
        kind = obj.get("kind")
        spec = obj.get("spec") or {}
        selector: Mapping[str, str] | None = None
        path = ""
        if kind == "Service":
            selector, path = spec.get("selector") or {}, "spec.selector"
        elif kind == "PodDisruptionBudget":
            selector = (spec.get("selector") or {}).get("matchLabels") or {}
            path = "spec.selector.matchLabels"
        if selector is not None:
            if not selector:
                yield obj, path, "empty"
            elif not any(all(p.get(k) == v for k, v in selector.items()) for _, p in pods):
                yield obj, path, f"{dict(selector)} matches no workload's pod template labels"
        if kind == "HorizontalPodAutoscaler":
            ref = spec.get("scaleTargetRef") or {}
            if (ref.get("kind"), ref.get("name")) not in names:
                yield (
                    obj,
                    "spec.scaleTargetRef",
                    f"{ref.get('kind')}/{ref.get('name')} is not in the rendered set",
                )
        for cpath, container in _containers(obj):
            for i, source in enumerate(container.get("envFrom") or []):
                for ref_field, ref_kind in (("configMapRef", "ConfigMap"), ("secretRef", "Secret")):
                    ref = source.get(ref_field)
                    if ref and (ref_kind, ref.get("name")) not in names:
                        yield (
                            obj,
                            f"{cpath}.envFrom[{i}].{ref_field}.name",
                            f"{ref_kind}/{ref.get('name')} is not in the rendered set",
                        )


def _ident(obj: Obj) -> tuple[str, str]:
    return str(obj.get("kind", "?")), str((obj.get("metadata") or {}).get("name", "?"))


def check_objects(
    objects: Sequence[Obj],
    *,
    source: Callable[[Obj], str] = lambda _obj: "",
    rules: Mapping[str, Rule] = RULES,
    across: bool = True,
) -> list[Violation]:
    """Every violation of the policy rules in a rendered set of objects (with `across`,
    also of the rules between objects: see `cross_object`)."""
    found: list[Violation] = []
    for obj in objects:
        kind, name = _ident(obj)
        for rule in rules.values():
            for path, message in rule(obj):
                found.append(Violation(source(obj), kind, name, path, message))
    for obj, path, message in cross_object(objects) if across else ():
        kind, name = _ident(obj)
        found.append(Violation(source(obj), kind, name, path, message))
    return found


def schema_violations(
    objects: Sequence[Obj],
    versions: Sequence[str] = KUBERNETES_VERSIONS,
    *,
    source: Callable[[Obj], str] = lambda _obj: "",
) -> list[Violation]:
    """Validate each object against the Kubernetes JSON schema of each version, strictly
    (an unknown field is an error, as `kubectl apply --validate=strict` would say)."""
    import kubernetes_validate  # a dev tool: imported only where schemas are checked

    found: list[Violation] = []
    for obj in objects:
        kind, name = _ident(obj)
        # The same error in several versions is one violation naming them all.
        errors: dict[tuple[str, str], list[str]] = {}
        for version in versions:
            try:
                kubernetes_validate.validate(dict(obj), version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                path = ".".join(
                    f"[{p}]" if isinstance(p, int) else str(p) for p in exc.absolute_path
                ).replace(".[", "[")
                errors.setdefault((path or "(object)", exc.message), []).append(version)
            except kubernetes_validate.SchemaNotFoundError as exc:
                errors.setdefault(("apiVersion", exc.message), []).append(version)
        for (path, message), failing in errors.items():
            if "Kubernetes version" not in message:
                message = f"{message} (Kubernetes {', '.join(failing)})"
            found.append(Violation(source(obj), kind, name, path, message))
    return found


def check_environments(
    environments: Sequence[str] | None = None,
    *,
    tag: str = SAMPLE_TAG,
    versions: Sequence[str] = KUBERNETES_VERSIONS,
    out: Path | None = None,
) -> tuple[list[str], list[Violation]]:
    """Render each environment for a sample tag with a digest-pinned image, check schemas
    and policy, and (with `out`) write each environment's YAML there for yamllint.
    Returns the environments checked and every violation."""
    from eq_deploy.environments import environment_names
    from eq_deploy.render import MANIFEST_FILES, default_image, render_manifests, to_yaml

    names = list(environments or environment_names())
    violations: list[Violation] = []
    for env in names:
        image = f"{default_image(env, tag)}@{SAMPLE_DIGEST}"
        objects = render_manifests(env, tag, image=image)

        def source(obj: Obj, env: str = env) -> str:
            manifest = MANIFEST_FILES.get(str(obj.get("kind")), "?")
            return f"deploy/manifests/{manifest}/{env}"

        violations += schema_violations(objects, versions, source=source)
        violations += check_objects(objects, source=source)
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
            (out / f"{env}.yaml").write_text(to_yaml(list(objects)), encoding="utf-8")
    return names, violations


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m eq_deploy.policy [--env E]... [--out DIR]`: exit 1 on any violation."""
    parser = argparse.ArgumentParser(prog="python -m eq_deploy.policy", description=__doc__)
    parser.add_argument("--env", action="append", help="an environment (default: all)")
    parser.add_argument("--tag", default=SAMPLE_TAG, help="the sample tag to render")
    parser.add_argument("--out", type=Path, help="write each environment's YAML here")
    parser.add_argument(
        "--kubernetes-version",
        action="append",
        dest="versions",
        help=f"validate against this version (default: {', '.join(KUBERNETES_VERSIONS)})",
    )
    args = parser.parse_args(argv)
    versions = args.versions or list(KUBERNETES_VERSIONS)
    names, violations = check_environments(args.env, tag=args.tag, versions=versions, out=args.out)
    for violation in violations:
        print(violation, file=sys.stderr)
    if violations:
        print(f"manifests: {len(violations)} violation(s)", file=sys.stderr)
        return 1
    print(
        f"manifests: {', '.join(names)} rendered for {args.tag}: schemas "
        f"({', '.join(versions)}, strict) and {len(RULES)} policy rules pass"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
