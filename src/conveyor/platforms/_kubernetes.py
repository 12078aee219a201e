"""Kubernetes manifests of one environment: Deployment, Service, PodDisruptionBudget, autoscaler.

Each pod is a long-running ``conveyor serve --env E`` from the serving image
(``conveyor generate docker``). Kubernetes asks ``/ready`` before it sends a pod
traffic (no model version serving → 503 → out of the Service) and ``/health``
to restart a stuck one; a startup probe gives the first model load its time.
The admin token, the state store's URI and the S3 / MLflow credentials come
from one Secret through ``secretKeyRef`` (the credentials ``optional``); S3
endpoints and region from an optional ConfigMap. Nothing secret is written
into the manifests.
"""

from __future__ import annotations

from typing import Any

from conveyor.platforms._target import APP_DIR, CONTAINER_UID, LISTEN_ALL, ServedEnvironment, dns_name
from conveyor.telemetry import TELEMETRY_OPT_OUT

CPU_REQUEST = "500m"
MEMORY_REQUEST = "1Gi"
MEMORY_LIMIT = "2Gi"  # no CPU limit: throttling stalls the event loop; the request reserves the share
TARGET_CPU_UTILIZATION = 70
PORT_NAME = "http"


def secret_name(target: ServedEnvironment) -> str:
    return f"{target.name}-secrets"


def settings_name(target: ServedEnvironment) -> str:
    """The optional ConfigMap of non-secret S3 settings (endpoint, region)."""
    return f"{target.name}-s3"


def _labels(target: ServedEnvironment) -> dict[str, str]:
    return {
        "app.kubernetes.io/name": target.name,
        "app.kubernetes.io/part-of": dns_name(target.project),
        "app.kubernetes.io/component": "model-server",
        "app.kubernetes.io/managed-by": "conveyor",
        "conveyor/environment": target.env,
    }


def _selector(target: ServedEnvironment) -> dict[str, str]:
    return {"app.kubernetes.io/name": target.name}


def _probe(path: str, *, period: int, failures: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": PORT_NAME},
        "periodSeconds": period,
        "timeoutSeconds": 3,
        "failureThreshold": failures,
    }


def _env(target: ServedEnvironment) -> list[dict[str, Any]]:
    env: list[dict[str, Any]] = [{"name": k, "value": v} for k, v in TELEMETRY_OPT_OUT.items()]
    env.append({"name": "HOME", "value": "/tmp"})  # noqa: S108 — the root is read-only; libraries' caches go to the emptyDir
    for secret in target.secrets:
        ref: dict[str, Any] = {"name": secret_name(target), "key": secret.key}
        if not secret.required:
            ref["optional"] = True
        env.append({"name": secret.variable, "valueFrom": {"secretKeyRef": ref}})
    return env


def deployment(
    target: ServedEnvironment, *, image: str, replicas: int, model_version: str | None = None
) -> dict[str, Any]:
    labels = _labels(target)
    container = {
        "name": "conveyor-serve",
        "image": image,
        "args": target.serve_argv(LISTEN_ALL, model_version)[1:],
        "command": ["conveyor"],
        "ports": [{"name": PORT_NAME, "containerPort": target.port, "protocol": "TCP"}],
        "env": _env(target),
        "envFrom": [{"configMapRef": {"name": settings_name(target), "optional": True}}],
        "startupProbe": _probe("/health", period=5, failures=60),  # up to 5 minutes for the first load
        "readinessProbe": _probe("/ready", period=5, failures=2),
        "livenessProbe": _probe("/health", period=10, failures=3),
        "resources": {
            "requests": {"cpu": CPU_REQUEST, "memory": MEMORY_REQUEST},
            "limits": {"memory": MEMORY_LIMIT},
        },
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [
            {"name": "state", "mountPath": f"{APP_DIR}/.conveyor"},
            {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108 — the pod's own emptyDir
        ],
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": target.name, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": _selector(target)},
            # one new pod at a time, never below the wanted count: /ready gates each one
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "template": {
                "metadata": {"labels": labels},
                "spec": {
                    "automountServiceAccountToken": False,
                    "terminationGracePeriodSeconds": 30,
                    "securityContext": {
                        "runAsNonRoot": True,
                        "runAsUser": CONTAINER_UID,
                        "runAsGroup": CONTAINER_UID,
                        "fsGroup": CONTAINER_UID,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "containers": [container],
                    "volumes": [{"name": "state", "emptyDir": {}}, {"name": "tmp", "emptyDir": {}}],
                },
            },
        },
    }


def service(target: ServedEnvironment) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": target.name, "labels": _labels(target)},
        "spec": {
            "type": "ClusterIP",
            "selector": _selector(target),
            "ports": [{"name": PORT_NAME, "port": target.port, "targetPort": PORT_NAME, "protocol": "TCP"}],
        },
    }


def disruption_budget(target: ServedEnvironment) -> dict[str, Any]:
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": target.name, "labels": _labels(target)},
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": _selector(target)}},
    }


def autoscaler(target: ServedEnvironment, *, replicas: int, max_replicas: int) -> dict[str, Any]:
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": {"name": target.name, "labels": _labels(target)},
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": target.name},
            "minReplicas": replicas,
            "maxReplicas": max_replicas,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": TARGET_CPU_UTILIZATION},
                    },
                }
            ],
        },
    }


def manifests(
    target: ServedEnvironment,
    *,
    image: str,
    replicas: int,
    max_replicas: int,
    model_version: str | None = None,
) -> list[dict[str, Any]]:
    """The environment's objects, in the order ``kubectl apply`` should create them."""
    return [
        deployment(target, image=image, replicas=replicas, model_version=model_version),
        service(target),
        disruption_budget(target),
        autoscaler(target, replicas=replicas, max_replicas=max_replicas),
    ]


def secret_command(target: ServedEnvironment) -> str:
    """The ``kubectl create secret`` line that makes the Secret the pods read (values left to fill)."""
    parts = [f"kubectl create secret generic {secret_name(target)}"]
    parts += [f'--from-literal={s.key}="${s.variable}"' for s in target.secrets if s.required]
    return " ".join(parts)
