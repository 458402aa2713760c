"""Waits with explicit deadlines that fail fast on terminal states, and then say what a
person needs: the pod's events, its last log lines, the container's termination message."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from eq_deploy.errors import DeployError, WaitTimeout
from eq_deploy.kube import Kube
from eq_deploy.podspec import condition, job_complete, job_failed

Obj = dict[str, Any]
Status = Callable[[str], None]
POLL_SECONDS = 0.5
# Pod events that, repeated, mean the pod will not start by waiting (no sandbox, no volume).
FATAL_EVENTS = {"FailedCreatePodSandBox", "FailedMount", "FailedAttachVolume"}
FATAL_EVENT_COUNT = 3
# Container states that never heal by waiting.
FATAL_WAITING = {
    "CrashLoopBackOff",
    "ImagePullBackOff",
    "ErrImagePull",
    "InvalidImageName",
    "CreateContainerConfigError",
    "CreateContainerError",
    "RunContainerError",
}


# --- Job ------------------------------------------------------------------------------------
def wait_for_job(kube: Kube, namespace: str, name: str, timeout: float, status: Status) -> Obj:
    """Until the Job is Complete (returned) or Failed (DeployError with its pod's logs)."""
    deadline = time.monotonic() + timeout
    started = time.monotonic()
    while True:
        job = kube.get("Job", name, namespace)
        if job is None:
            raise DeployError(f"Job {name} disappeared while waiting for it")
        if job_complete(job):
            return job
        if job_failed(job):
            failed = condition(job, "Failed") or condition(job, "FailureTarget") or {}
            reason = failed.get("reason") or "Failed"
            raise DeployError(
                f"migration Job {name} failed ({reason}); the Deployment was not touched",
                detail=job_diagnostics(kube, namespace, name),
            )
        # A pod stuck on its image fails the Job only at activeDeadlineSeconds: fail now.
        for pod in kube.items("Pod", namespace, labels=f"job-name={name}"):
            bad = fatal_container_state(pod) or stuck_pod_reason(kube, namespace, pod)
            if bad:
                raise DeployError(
                    f"migration Job {name}: pod {pod['metadata']['name']} {bad}; "
                    "the Deployment was not touched",
                    detail=pod_diagnostics(kube, namespace, pod),
                )
        if time.monotonic() > deadline:
            raise DeployError(
                f"migration Job {name} not complete after {timeout:.0f}s (--timeout)",
                detail=job_diagnostics(kube, namespace, name),
            )
        active = (job.get("status") or {}).get("active") or 0
        status(f"job {name}: {active} pod(s) running ({time.monotonic() - started:.0f}s)")
        time.sleep(POLL_SECONDS)


def job_pod(kube: Kube, namespace: str, job: str) -> Obj | None:
    pods = kube.items("Pod", namespace, labels=f"job-name={job}")
    pods.sort(key=lambda p: p["metadata"].get("creationTimestamp") or "")
    return pods[-1] if pods else None


def job_logs(kube: Kube, namespace: str, job: str, tail: int | None = None) -> str:
    pod = job_pod(kube, namespace, job)
    if pod is None:
        return ""
    return kube.pod_logs(pod["metadata"]["name"], namespace, tail=tail)


def job_diagnostics(kube: Kube, namespace: str, job: str) -> str:
    pod = job_pod(kube, namespace, job)
    lines = [f"events of Job {job}:", *_event_lines(kube, namespace, "Job", job)]
    if pod is not None:
        lines.append(pod_diagnostics(kube, namespace, pod))
    return "\n".join(lines)


# --- Deployment -----------------------------------------------------------------------------
def rollout_state(deployment: Obj) -> tuple[bool, str]:
    """(done, human status) from a Deployment's status, the way `kubectl rollout status`
    reads it; a DeployError for ProgressDeadlineExceeded."""
    meta, spec, st = (
        deployment["metadata"],
        deployment.get("spec") or {},
        deployment.get("status") or {},
    )
    progressing = condition(deployment, "Progressing")
    if progressing and progressing.get("reason") == "ProgressDeadlineExceeded":
        raise DeployError(
            f"Deployment {meta['name']} exceeded its progress deadline "
            f"({progressing.get('message', '')})"
        )
    if st.get("observedGeneration", 0) < meta.get("generation", 0):
        return False, "waiting for the controller to see the new spec"
    want = spec.get("replicas", 1)
    updated = st.get("updatedReplicas", 0)
    total = st.get("replicas", 0)
    available = st.get("availableReplicas", 0)
    if updated < want:
        return False, f"{updated}/{want} replicas updated"
    if total > updated:
        return False, f"{total - updated} old replica(s) pending termination"
    if available < updated:
        return False, f"{available}/{want} updated replicas available"
    return True, f"{available}/{want} replicas available"


def current_replicaset(kube: Kube, namespace: str, deployment: Obj) -> Obj | None:
    revision = (deployment["metadata"].get("annotations") or {}).get(
        "deployment.kubernetes.io/revision"
    )
    uid = deployment["metadata"].get("uid")
    for rs in kube.items("ReplicaSet", namespace, labels=_selector(deployment)):
        owners = {o.get("uid") for o in rs["metadata"].get("ownerReferences") or []}
        rs_rev = (rs["metadata"].get("annotations") or {}).get("deployment.kubernetes.io/revision")
        if uid in owners and rs_rev == revision:
            return rs
    return None


def wait_for_rollout(
    kube: Kube,
    namespace: str,
    name: str,
    timeout: float,
    status: Status,
    *,
    diagnose: bool = True,
    service: str | None = None,
) -> Obj:
    """Until the Deployment's new ReplicaSet is fully available, the old one gone and (with
    `service`) every new ready pod an endpoint of that Service. Fails fast when a new pod
    cannot start (CrashLoopBackOff, ImagePullBackOff, ...). At the deadline: WaitTimeout,
    with the pods' diagnostics unless `diagnose` is False (an interrupted run has no time
    for them)."""
    deadline = time.monotonic() + timeout
    started = time.monotonic()
    while True:
        deployment = kube.get("Deployment", name, namespace)
        if deployment is None:
            raise DeployError(f"Deployment {name} disappeared while waiting for it")
        try:
            done, text = rollout_state(deployment)
        except DeployError as exc:
            exc.detail = rollout_diagnostics(kube, namespace, deployment)
            raise
        if done:
            # The Deployment's status no longer counts terminating pods, but they may still be
            # answering (their shutdown drain, stale proxy rules): done means only the new
            # ones serve.
            old, new = _old_and_new_pods(kube, namespace, deployment)
            # A ready pod takes traffic only once the EndpointSlice controller has listed it,
            # which can lag by seconds (it retries on a stale cache): until then a first
            # deploy's Service refuses connections although the pods answer.
            unlisted = []
            if service and not old:
                slices = kube.items(
                    "EndpointSlice", namespace, labels=f"kubernetes.io/service-name={service}"
                )
                unlisted = pods_not_ready_endpoints(new, slices)
            if not old and not unlisted:
                return deployment
            if old:
                text = f"{len(old)} old pod(s) still terminating"
            else:
                text = f"{len(unlisted)} new pod(s) not yet endpoints of Service {service}"
        # Until the controller has seen the new spec, the "current" ReplicaSet is still the old
        # one (after an automatic rollback: the crashing one), so its pods say nothing yet.
        seen = (deployment.get("status") or {}).get("observedGeneration", 0) >= deployment[
            "metadata"
        ].get("generation", 0)
        rs = current_replicaset(kube, namespace, deployment) if seen else None
        if rs is not None:
            template_hash = rs["metadata"]["labels"].get("pod-template-hash", "")
            pods = kube.items(
                "Pod",
                namespace,
                labels=f"{_selector(deployment)},pod-template-hash={template_hash}",
            )
            for pod in pods:
                bad = fatal_container_state(pod) or stuck_pod_reason(kube, namespace, pod)
                if bad:
                    raise DeployError(
                        f"Deployment {name}: pod {pod['metadata']['name']} {bad}",
                        detail=pod_diagnostics(kube, namespace, pod),
                    )
        if time.monotonic() > deadline:
            raise WaitTimeout(
                f"Deployment {name} not rolled out after {timeout:.0f}s (--timeout): {text}",
                detail=rollout_diagnostics(kube, namespace, deployment) if diagnose else "",
            )
        pending = 1
        status(
            f"[{pending}/1 deployment(s) still pending] {name}: {text} "
            f"({time.monotonic() - started:.0f}s)"
        )
        time.sleep(POLL_SECONDS)


def pods_not_ready_endpoints(pods: list[Obj], slices: list[Obj]) -> list[str]:
    """Names of the ready pods among `pods` that no EndpointSlice lists as a ready endpoint."""
    listed = {
        (endpoint.get("targetRef") or {}).get("name")
        for endpoint_slice in slices
        for endpoint in endpoint_slice.get("endpoints") or []
        if (endpoint.get("conditions") or {}).get("ready") is not False
    }
    return [
        pod["metadata"]["name"]
        for pod in pods
        if _pod_ready(pod) and pod["metadata"]["name"] not in listed
    ]


def _old_and_new_pods(kube: Kube, namespace: str, deployment: Obj) -> tuple[list[Obj], list[Obj]]:
    """The Deployment's pods of earlier ReplicaSets, and those of its current one."""
    rs = current_replicaset(kube, namespace, deployment)
    if rs is None:
        return [], []
    current = rs["metadata"]["labels"].get("pod-template-hash", "")
    old: list[Obj] = []
    new: list[Obj] = []
    for pod in kube.items("Pod", namespace, labels=_selector(deployment)):
        is_new = pod["metadata"].get("labels", {}).get("pod-template-hash") == current
        (new if is_new else old).append(pod)
    return old, new


def rollout_diagnostics(kube: Kube, namespace: str, deployment: Obj) -> str:
    name = deployment["metadata"]["name"]
    lines = [f"events of Deployment {name}:", *_event_lines(kube, namespace, "Deployment", name)]
    rs = current_replicaset(kube, namespace, deployment)
    if rs is not None:
        template_hash = rs["metadata"]["labels"].get("pod-template-hash", "")
        pods = kube.items(
            "Pod", namespace, labels=f"{_selector(deployment)},pod-template-hash={template_hash}"
        )
        for pod in pods:
            if not _pod_ready(pod):
                lines.append(pod_diagnostics(kube, namespace, pod))
                break
    return "\n".join(lines)


# --- pods -------------------------------------------------------------------------------------
def fatal_container_state(pod: Obj) -> str | None:
    """ "is in CrashLoopBackOff: <message>" when a container will not start by waiting."""
    statuses = (pod.get("status") or {}).get("containerStatuses") or []
    statuses += (pod.get("status") or {}).get("initContainerStatuses") or []
    for cs in statuses:
        waiting = (cs.get("state") or {}).get("waiting") or {}
        reason = waiting.get("reason")
        if reason in FATAL_WAITING:
            message = (waiting.get("message") or "").strip().splitlines()
            return f"is in {reason}" + (f": {message[0][:200]}" if message else "")
    return None


def stuck_pod_reason(kube: Kube, namespace: str, pod: Obj) -> str | None:
    """For a pod still Pending: "cannot start: <event>" when a fatal event keeps repeating."""
    if (pod.get("status") or {}).get("phase") != "Pending":
        return None
    try:
        events = kube.events_for(namespace, "Pod", pod["metadata"]["name"])
    except DeployError:
        return None
    for event in events:
        if event.get("reason") in FATAL_EVENTS and (event.get("count") or 1) >= FATAL_EVENT_COUNT:
            message = (event.get("message") or "").strip()
            return f"cannot start ({event['reason']}): {message[:200]}"
    return None


def pod_diagnostics(kube: Kube, namespace: str, pod: Obj) -> str:
    name = pod["metadata"]["name"]
    lines = [f"pod {name} events:", *_event_lines(kube, namespace, "Pod", name)]
    for cs in (pod.get("status") or {}).get("containerStatuses") or []:
        term = (cs.get("state") or {}).get("terminated") or (cs.get("lastState") or {}).get(
            "terminated"
        )
        if term:
            lines.append(
                f"container {cs['name']} exited {term.get('exitCode')} ({term.get('reason', '')}); "
                f"restarts {cs.get('restartCount', 0)}"
            )
            message = (term.get("message") or "").strip()
            if message:
                lines.append("termination message:")
                lines += ["  " + m for m in message.splitlines()[-10:]]
        previous = bool((cs.get("lastState") or {}).get("terminated")) and not (
            cs.get("state") or {}
        ).get("running")
        logs = kube.pod_logs(name, namespace, container=cs["name"], tail=20, previous=previous)
        if logs.startswith("(no logs") and previous:
            logs = kube.pod_logs(name, namespace, container=cs["name"], tail=20)
        lines.append(f"last log lines of {name}/{cs['name']}:")
        lines += ["  " + line for line in (logs.strip().splitlines() or ["(empty)"])]
    return "\n".join(lines)


def _pod_ready(pod: Obj) -> bool:
    for cond in (pod.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return bool(cond.get("status") == "True")
    return False


def _event_lines(kube: Kube, namespace: str, kind: str, name: str) -> list[str]:
    try:
        events = kube.events_for(namespace, kind, name)
    except DeployError as exc:
        return [f"  (events unavailable: {exc.message})"]
    out = []
    for e in events[-10:]:
        count = e.get("count") or 1
        out.append(
            f"  {e.get('type', '')} {e.get('reason', '')}: {e.get('message', '').strip()}"
            + (f" (x{count})" if count > 1 else "")
        )
    return out or ["  (none)"]


def _selector(deployment: Obj) -> str:
    labels = deployment["spec"]["selector"]["matchLabels"]
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
