"""Conveyor's canary judgement for Argo Rollouts (and Flagger): the judge and an AnalysisTemplate.

``conveyor judge`` answers ``GET /v1/canary?env=E&candidate=V`` with the
verdict of Conveyor's canary analysis over the environment's request logs
(docs/deploy.md, "Canary analysis for Argo Rollouts and Flagger"). The
AnalysisTemplate calls it through Argo's web metric provider: ``pass`` is a
successful measurement, ``fail`` a failed one (the rollout aborts), anything
else — ``inconclusive``, too few requests yet — neither, so Argo measures again.
"""

from __future__ import annotations

from typing import Any

from conveyor.platforms._kubernetes import PORT_NAME, secret_name, settings_name
from conveyor.platforms._target import CONTAINER_UID, LISTEN_ALL, ServedEnvironment, dns_name
from conveyor.telemetry import TELEMETRY_OPT_OUT

JUDGE_PORT = 8790
JUDGE_PATH = "/v1/canary"
FLAGGER_PATH = "/v1/flagger"
INTERVAL = "2m"
COUNT = 5
WINDOW = "10m"
INCONCLUSIVE_LIMIT = 3


def judge_name(target: ServedEnvironment) -> str:
    return dns_name(target.project, "judge")


def judge_url(target: ServedEnvironment) -> str:
    return f"http://{judge_name(target)}:{JUDGE_PORT}{JUDGE_PATH}"


def analysis_template(target: ServedEnvironment) -> dict[str, Any]:
    """The AnalysisTemplate a Rollout's canary steps reference (``templateName``)."""
    query = (
        f"env={target.env}&candidate={{{{args.candidate-version}}}}"
        f"&baseline={{{{args.baseline-version}}}}&window={{{{args.window}}}}"
    )
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AnalysisTemplate",
        "metadata": {
            "name": f"{target.name}-canary",
            "labels": {"app.kubernetes.io/part-of": dns_name(target.project)},
        },
        "spec": {
            "args": [
                {"name": "candidate-version"},  # the registry version of the canary pods
                # empty: the judge compares with the version that answered most of the other requests
                {"name": "baseline-version", "value": ""},
                {"name": "window", "value": WINDOW},
            ],
            "metrics": [
                {
                    "name": "conveyor-canary",
                    "interval": INTERVAL,
                    "count": COUNT,
                    "successCondition": 'result == "pass"',
                    "failureCondition": 'result == "fail"',
                    "failureLimit": 0,
                    "inconclusiveLimit": INCONCLUSIVE_LIMIT,
                    "provider": {
                        "web": {
                            "url": f"{judge_url(target)}?{query}",
                            "timeoutSeconds": 30,
                            "jsonPath": "{$.verdict}",
                        }
                    },
                }
            ],
        },
    }


def judge_manifests(target: ServedEnvironment, *, image: str) -> list[dict[str, Any]]:
    """``conveyor judge`` as a one-pod Deployment and its Service, from the serving image."""
    name = judge_name(target)
    labels = {"app.kubernetes.io/name": name, "app.kubernetes.io/part-of": dns_name(target.project)}
    env: list[dict[str, Any]] = [{"name": k, "value": v} for k, v in TELEMETRY_OPT_OUT.items()]
    for secret in target.secrets:
        if secret.key == "admin-token":
            continue  # the judge only reads: no admin token
        ref = {"name": secret_name(target), "key": secret.key, "optional": True}
        env.append({"name": secret.variable, "valueFrom": {"secretKeyRef": ref}})
    probe = {"httpGet": {"path": "/health", "port": PORT_NAME}, "periodSeconds": 10}
    container = {
        "name": "conveyor-judge",
        "image": image,
        "command": ["conveyor"],
        "args": ["judge", "--host", LISTEN_ALL, "--port", str(JUDGE_PORT)],
        "ports": [{"name": PORT_NAME, "containerPort": JUDGE_PORT, "protocol": "TCP"}],
        "env": env,
        "envFrom": [{"configMapRef": {"name": settings_name(target), "optional": True}}],
        "readinessProbe": probe,
        "livenessProbe": probe,
        "resources": {"requests": {"cpu": "100m", "memory": "512Mi"}, "limits": {"memory": "1Gi"}},
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],  # noqa: S108 — the pod's own emptyDir
    }
    return [
        {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "labels": labels},
            "spec": {
                "replicas": 1,
                "selector": {"matchLabels": {"app.kubernetes.io/name": name}},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {
                        "automountServiceAccountToken": False,
                        "securityContext": {
                            "runAsNonRoot": True,
                            "runAsUser": CONTAINER_UID,
                            "runAsGroup": CONTAINER_UID,
                            "seccompProfile": {"type": "RuntimeDefault"},
                        },
                        "containers": [container],
                        "volumes": [{"name": "tmp", "emptyDir": {}}],
                    },
                },
            },
        },
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name, "labels": labels},
            "spec": {
                "selector": {"app.kubernetes.io/name": name},
                "ports": [
                    {"name": PORT_NAME, "port": JUDGE_PORT, "targetPort": PORT_NAME, "protocol": "TCP"}
                ],
            },
        },
    ]
