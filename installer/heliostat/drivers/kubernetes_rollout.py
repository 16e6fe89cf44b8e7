"""Whether a Kubernetes object is rolled out, read from its status as `kubectl rollout
status` reads it: the controller saw the latest generation, every replica is updated and
ready (available, for a Deployment), a Job completed (or its pods did). Objects without a
rollout are healthy once the API server took them."""

from __future__ import annotations

from typing import Any

from heliostat.driver import ObservedHealth

# Container states that do not pass by waiting: the image cannot be pulled, the process
# keeps crashing, its configuration cannot be made.
STUCK_REASONS = frozenset({"ErrImagePull", "ImagePullBackOff", "InvalidImageName",
                           "CrashLoopBackOff", "CreateContainerConfigError",
                           "CreateContainerError", "RunContainerError"})
# The kinds that roll out; any other object is done once the API server took it.
ROLLOUT_KINDS = frozenset({"Deployment", "StatefulSet", "DaemonSet", "Job"})
DEFAULT_TIMEOUT = 300.0
JOB_TIMEOUT = 900.0


def rollout(obj: dict[str, Any]) -> tuple[ObservedHealth, str]:
    """(health, why it is not healthy yet) of one object."""
    kind = obj.get("kind")
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    if kind == "Job":
        return _job(status)
    if kind not in ("Deployment", "StatefulSet", "DaemonSet"):
        return "healthy", ""
    generation = obj.get("metadata", {}).get("generation", 0)
    if status.get("observedGeneration", 0) < generation:
        return "starting", "its controller has not seen the latest change yet"
    if kind == "Deployment":
        for condition in status.get("conditions") or []:
            if condition.get("type") == "Progressing" and \
                    condition.get("reason") == "ProgressDeadlineExceeded":
                return "unhealthy", condition.get("message") or "its rollout made no progress"
    wanted = spec.get("replicas", 1)
    updated = status.get("updatedReplicas", 0)
    ready = status.get("availableReplicas" if kind == "Deployment" else "readyReplicas", 0)
    if updated < wanted:
        return "starting", f"{updated} of {wanted} replicas updated"
    if kind == "Deployment" and status.get("replicas", 0) > updated:
        return "starting", f"{status['replicas'] - updated} old replicas still running"
    if kind == "StatefulSet" and status.get("updateRevision") and \
            status.get("currentRevision") != status.get("updateRevision") and \
            (spec.get("updateStrategy") or {}).get("type", "RollingUpdate") == "RollingUpdate":
        return "starting", "replicas still on the previous revision"
    if ready < wanted:
        return "starting", f"{ready} of {wanted} replicas ready"
    return "healthy", ""


def _job(status: dict[str, Any]) -> tuple[ObservedHealth, str]:
    for condition in status.get("conditions") or []:
        if condition.get("status") != "True":
            continue
        if condition.get("type") == "Complete":
            return "healthy", ""
        if condition.get("type") == "Failed":
            return "unhealthy", condition.get("message") or condition.get("reason") or "failed"
    return "starting", "not completed yet"


def completed_by_its_pods(job: dict[str, Any], pods: list[dict[str, Any]]) -> bool:
    """Whether a Job's own pods (by its uid) already succeeded as many times as it must
    complete: the Job controller writes `Complete` only up to a second later, as it batches
    pod updates. Only for a plain Job (no success policy, not suspended, not failed)."""
    spec, status = job.get("spec") or {}, job.get("status") or {}
    uid, completions = (job.get("metadata") or {}).get("uid"), spec.get("completions")
    failed = any(c.get("type") == "Failed" and c.get("status") == "True"
                 for c in status.get("conditions") or [])
    # A work queue (no completions) is done when its pods say so, which only it counts.
    plain = completions is not None and spec.get("completionMode") != "Indexed"
    if not uid or not plain or failed or spec.get("successPolicy") or spec.get("suspend"):
        return False
    succeeded = sum(1 for pod in pods
                    if ((pod.get("metadata") or {}).get("labels") or {})
                    .get("batch.kubernetes.io/controller-uid") == uid
                    and (pod.get("status") or {}).get("phase") == "Succeeded")
    return succeeded >= int(completions)


def stuck_pod(workload: dict[str, Any], pods: list[dict[str, Any]]) -> str:
    """Why a pod of the workload's current template will not get ready by waiting longer,
    or "". Pods of an earlier template (being scaled down after a rollback) do not count."""
    template = _images(((workload.get("spec") or {}).get("template") or {}).get("spec"))
    for pod in pods:
        if _images(pod.get("spec")) != template:
            continue
        statuses = (pod.get("status") or {}).get("containerStatuses") or []
        statuses += (pod.get("status") or {}).get("initContainerStatuses") or []
        for container in statuses:
            waiting = (container.get("state") or {}).get("waiting") or {}
            if waiting.get("reason") in STUCK_REASONS:
                detail = f": {waiting['message']}" if waiting.get("message") else ""
                return (f"pod {pod['metadata']['name']}, container {container.get('name')}: "
                        f"{waiting['reason']}{detail}")
    return ""


def selected_pods(workload: dict[str, Any], pods: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The pods of `pods` the workload's selector picks (its matchLabels; a Job's name)."""
    labels = ((workload.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
    if workload.get("kind") == "Job":
        labels = {"batch.kubernetes.io/job-name": workload["metadata"]["name"]}
    if not labels:
        return []
    return [pod for pod in pods
            if labels.items() <= ((pod.get("metadata") or {}).get("labels") or {}).items()]


def health_timeout(obj: dict[str, Any]) -> float:
    if obj.get("kind") == "Job":
        return JOB_TIMEOUT
    deadline = (obj.get("spec") or {}).get("progressDeadlineSeconds")
    return float(deadline) if deadline else DEFAULT_TIMEOUT


def _images(pod_spec: dict[str, Any] | None) -> list[str]:
    pod_spec = pod_spec or {}
    return [c.get("image", "") for c in (pod_spec.get("initContainers") or [])
            + (pod_spec.get("containers") or [])]
