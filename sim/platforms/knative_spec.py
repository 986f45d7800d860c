"""`type: knative` in a scenario: a Knative Service (one revision) on a simulated cluster.

Keys: the revision's autoscaling knobs (the `autoscaling.knative.dev/*` annotations, snake_case:
`min_scale`, `target`, `window`, ...), the cluster-wide config-autoscaler values it uses (same
names as the ConfigMap keys, snake_case), `container_concurrency` (containerConcurrency, 0 =
unlimited) and `request_timeout` (timeoutSeconds); pods, cluster, load balancer and bill are the
Kubernetes platform's own sub-models (PodSpec, ClusterSpec, ...). Every default and its source is
in sim.platforms.autoscaling.kpa (knative/serving knative-v1.23.0).

As users paste them: `annotations:` takes the revision template's annotations verbatim
(`autoscaling.knative.dev/min-scale: "1"`), and `service: {file: service.yaml, name: optional}`
reads a Knative Service manifest (spec.template.metadata.annotations, spec.template.spec
containerConcurrency / timeoutSeconds, the first container's resources.requests cpu / memory).
Keys given in the scenario win over both (so a sweep can vary them).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, ValidationInfo, model_validator

import sim.platforms.autoscaling as D
import sim.platforms.autoscaling.kpa as K
from sim.config import Duration, Strict, check_input_file, load_yaml, read_text_file
from sim.distributions import Distribution, coerce_distribution
from sim.errors import InputError
from sim.platforms.autoscaling.manifests import _line_of
from sim.platforms.kubernetes_spec import (
    ClusterSpec,
    InterceptorSpec,
    MetricFailures,
    PodSpec,
    Routing,
    _routing,
    check_cluster_cost,
)
from sim.pricing.kubernetes import KubernetesCostSettings, LoadBalancerSettings
from sim.pricing.ops import OpsCosts, OpsProfile

Dist = Annotated[Distribution, BeforeValidator(coerce_distribution)]

SERVING_API = "serving.knative.dev/v1"
ANNOTATION_PREFIX = "autoscaling.knative.dev/"
# Annotation (pkg/apis/autoscaling/register.go, knative-v1.23.0; the old camelCase names are
# still read by kmap.KeyPriority) -> scenario key.
ANNOTATIONS: dict[str, str] = {
    "min-scale": "min_scale",
    "minScale": "min_scale",
    "max-scale": "max_scale",
    "maxScale": "max_scale",
    "initial-scale": "initial_scale",
    "initialScale": "initial_scale",
    "target": "target",
    "target-utilization-percentage": "target_utilization_percentage",
    "metric": "metric",
    "window": "window",
    "panic-window-percentage": "panic_window_percentage",
    "panicWindowPercentage": "panic_window_percentage",
    "panic-threshold-percentage": "panic_threshold_percentage",
    "panicThresholdPercentage": "panic_threshold_percentage",
    "scale-down-delay": "scale_down_delay",
    "scale-to-zero-pod-retention-period": "scale_to_zero_pod_retention_period",
    "target-burst-capacity": "target_burst_capacity",
    "activation-scale": "activation_scale",
}
_KPA_CLASS = "kpa.autoscaling.knative.dev"


def _from_annotations(ann: Any, where: str) -> dict[str, Any]:
    """Template annotations -> scenario keys; other groups' annotations are ignored."""
    if not isinstance(ann, dict):
        raise ValueError(f"{where} must be a mapping of annotation names to strings")
    out: dict[str, Any] = {}
    for k, v in ann.items():
        key = str(k)
        if not key.startswith(ANNOTATION_PREFIX):
            continue
        short = key[len(ANNOTATION_PREFIX) :]
        if short == "class":
            if str(v) != _KPA_CLASS:
                raise ValueError(
                    f"{where}: {key} {v!r} is not simulated; only the KPA ({_KPA_CLASS})"
                )
            continue
        if short not in ANNOTATIONS:
            known = ", ".join(sorted({a for a in ANNOTATIONS if "-" in a or a == "target"}))
            raise ValueError(f"{where}: unknown annotation {key!r}; known: {known}")
        out[ANNOTATIONS[short]] = v
    return out


def load_service(path: Path, name: str | None = None) -> dict[str, Any]:
    """A Knative Service manifest -> scenario keys (InputError naming the file, key and line)."""
    file = str(path)
    text = read_text_file(path, what="Knative Service manifest", key="file")
    docs = [
        (d, n)
        for d, n in load_yaml(text, file, multi=True)
        if isinstance(d, dict) and d.get("kind") == "Service" and d.get("apiVersion") == SERVING_API
    ]
    if name is not None:
        docs = [(d, n) for d, n in docs if (d.get("metadata") or {}).get("name") == name]
    if len(docs) != 1:
        what = "no" if not docs else f"{len(docs)}"
        hint = "" if not docs else "; give `name` to pick one"
        named = f" named {name!r}" if name is not None else ""
        raise InputError(
            f"{what} Service{named} of apiVersion {SERVING_API} in the file{hint}",
            file=file,
            key="kind",
        )
    doc, node = docs[0]

    def at(*loc: str) -> Any:
        cur: Any = doc
        for part in loc:
            if cur is None:
                return None
            if not isinstance(cur, dict):
                line = _line_of(node, loc)
                raise InputError(
                    "expected a mapping",
                    file=file,
                    key=f"{'.'.join(loc)} (line {line})" if line else ".".join(loc),
                )
            cur = cur.get(part)
        return cur

    out: dict[str, Any] = {}
    ann = at("spec", "template", "metadata", "annotations")
    if ann is not None:
        try:
            out.update(_from_annotations(ann, "annotations"))
        except ValueError as exc:
            loc = ("spec", "template", "metadata", "annotations")
            line = _line_of(node, loc)
            key = ".".join(loc) + (f" (line {line})" if line else "")
            raise InputError(str(exc), file=file, key=key) from None
    cc = at("spec", "template", "spec", "containerConcurrency")
    if cc is not None:
        out["container_concurrency"] = cc
    to = at("spec", "template", "spec", "timeoutSeconds")
    if to is not None:
        out["request_timeout"] = to
    containers = at("spec", "template", "spec", "containers")
    if isinstance(containers, list) and containers and isinstance(containers[0], dict):
        req = (containers[0].get("resources") or {}).get("requests") or {}
        pod = {k: req[k] for k in ("cpu", "memory") if isinstance(req, dict) and k in req}
        if pod:
            out["pod"] = pod
    return out


class ServiceFile(Strict):
    file: str = Field(min_length=1)
    name: str | None = Field(None, description="metadata.name, when the file holds several")


class KnativeSpec(Strict):
    name: str = Field(min_length=1)
    type: Literal["knative"]
    # --- the revision (spec.template.spec and autoscaling.knative.dev/* annotations) -----------
    container_concurrency: int = Field(
        K.CONTAINER_CONCURRENCY,
        ge=0,
        le=1000,
        description="containerConcurrency: hard limit per pod at the queue-proxy (0: unlimited)",
    )
    metric: K.Metric = Field("concurrency", description="autoscaling.knative.dev/metric")
    target: float | None = Field(
        None,
        ge=K.TARGET_MIN,
        description="autoscaling.knative.dev/target (default: containerConcurrency, or "
        "container_concurrency_target_default when 0; requests_per_second_target_default "
        "for rps)",
    )
    target_utilization_percentage: float = Field(
        K.TARGET_UTILIZATION_PERCENTAGE, gt=0, le=100, description="of the target, in percent"
    )
    window: Duration = Field(
        K.STABLE_WINDOW_S, ge=K.WINDOW_MIN_S, le=K.WINDOW_MAX_S, description="stable window"
    )
    panic_window_percentage: float = Field(
        K.PANIC_WINDOW_PERCENTAGE,
        ge=K.PANIC_WINDOW_PERCENTAGE_RANGE[0],
        le=K.PANIC_WINDOW_PERCENTAGE_RANGE[1],
    )
    panic_threshold_percentage: float = Field(
        K.PANIC_THRESHOLD_PERCENTAGE,
        ge=K.PANIC_THRESHOLD_PERCENTAGE_RANGE[0],
        le=K.PANIC_THRESHOLD_PERCENTAGE_RANGE[1],
    )
    min_scale: int = Field(K.MIN_SCALE, ge=0)
    max_scale: int = Field(K.MAX_SCALE, ge=0, description="0: no upper bound")
    initial_scale: int = Field(K.INITIAL_SCALE, ge=0, description="pods at time 0")
    scale_down_delay: Duration = Field(K.SCALE_DOWN_DELAY_S, ge=0, le=3600)
    scale_to_zero_pod_retention_period: Duration = Field(K.SCALE_TO_ZERO_POD_RETENTION_S, ge=0)
    target_burst_capacity: float = Field(
        K.TARGET_BURST_CAPACITY, ge=-1, description="-1: activator always in the path"
    )
    activation_scale: int = Field(1, ge=1, description="pods when scaling from zero")
    request_timeout: Duration | None = Field(
        K.REVISION_TIMEOUT_S, gt=0, description="timeoutSeconds; None: none"
    )
    # --- config-autoscaler (cluster-wide) ------------------------------------------------------
    scale_to_zero_grace_period: Duration = Field(K.SCALE_TO_ZERO_GRACE_PERIOD_S, ge=0)
    max_scale_up_rate: float = Field(K.MAX_SCALE_UP_RATE, gt=1)
    max_scale_down_rate: float = Field(K.MAX_SCALE_DOWN_RATE, gt=1)
    enable_scale_to_zero: bool = K.ENABLE_SCALE_TO_ZERO
    allow_zero_initial_scale: bool = K.ALLOW_ZERO_INITIAL_SCALE
    container_concurrency_target_default: float = Field(
        K.CONTAINER_CONCURRENCY_TARGET_DEFAULT, ge=K.TARGET_MIN
    )
    requests_per_second_target_default: float = Field(K.RPS_TARGET_DEFAULT, ge=K.TARGET_MIN)
    # --- the data path -------------------------------------------------------------------------
    activator_latency: Duration = Field(
        K.ACTIVATOR_LATENCY_S, ge=0, description="added while the activator is in the path"
    )
    routing: Annotated[Routing, BeforeValidator(_routing)] = Field(
        K.SERVE_ROUTING,
        description="the ingress's balancer while the activator is out of the path (SKS serve "
        "mode: each pod's queue-proxy queues); ideal_fifo (idealised): the activator's one "
        "queue for the whole run",
    )
    queue_limit: int | None = Field(
        K.ACTIVATOR_QUEUE_DEPTH, ge=0, description="requests held waiting; None: unbounded"
    )
    ingress_latency: Dist = Field(default_factory=lambda: D.INGRESS_LATENCY_S)  # type: ignore[assignment]
    # --- pods, cluster, bill: the Kubernetes platform's sub-models -------------------------------
    pod: PodSpec = Field(default_factory=PodSpec)
    cluster: ClusterSpec = Field(default_factory=ClusterSpec)
    load_balancer: LoadBalancerSettings = Field(default_factory=LoadBalancerSettings)
    ops: OpsCosts = Field(default_factory=dict, description="monthly USD per line")
    ops_profile: OpsProfile | None = None
    cost: KubernetesCostSettings = Field(default_factory=KubernetesCostSettings)
    free_tier: bool = Field(False, description="GKE free tier: $74.40/month cluster-fee credit")

    annotations: dict[str, Any] | None = Field(
        None, description="the revision template's annotations, as in the manifest"
    )
    service: ServiceFile | None = Field(
        None, description="a Knative Service manifest: {file: service.yaml, name: optional}"
    )

    @model_validator(mode="before")
    @classmethod
    def _pasted(cls, data: Any, info: ValidationInfo) -> Any:
        """`service: {file}` and `annotations:` fill keys the scenario does not give."""
        if not isinstance(data, dict):
            return data
        data = dict(data)
        filled: dict[str, Any] = {}
        svc = data.get("service")
        if svc is not None:
            if not (isinstance(svc, dict) and "file" in svc and set(svc) <= {"file", "name"}):
                raise ValueError("`service` must be {file: service.yaml, name: optional}")
            path = Path(str(svc["file"]))
            base = (info.context or {}).get("base_dir")
            if not path.is_absolute() and base is not None:
                path = Path(base) / path
            try:
                check_input_file(path, what="Knative Service file")
                filled.update(load_service(path, svc.get("name")))
            except InputError as exc:
                raise ValueError(f"Knative Service file {exc}") from None
            data["service"] = {**svc, "file": str(path.resolve())}  # re-validates anywhere
        ann = data.get("annotations")
        if ann is not None:
            filled.update(_from_annotations(ann, "annotations"))
        pod = data.get("pod")
        for k, v in filled.items():
            if k == "pod" and isinstance(v, dict):
                data["pod"] = {**v, **(pod if isinstance(pod, dict) else {})}
            else:
                data.setdefault(k, v)
        return data

    @model_validator(mode="after")
    def _check(self) -> KnativeSpec:
        if self.max_scale and self.min_scale > self.max_scale:
            raise ValueError(
                f"min_scale ({self.min_scale}) must not exceed max_scale ({self.max_scale})"
            )
        if -1 < self.target_burst_capacity < 0:
            raise ValueError("target_burst_capacity must be -1 or >= 0")
        # The queue-proxy's breaker: containerConcurrency requests at once (0: no limit).
        conc = self.container_concurrency or UNLIMITED_CONCURRENCY
        if "concurrency" in self.pod.model_fields_set and self.pod.concurrency != conc:
            raise ValueError(
                "pod.concurrency is set by `container_concurrency` (containerConcurrency) "
                "for a Knative revision"
            )
        if self.pod.concurrency != conc:
            self.pod = self.pod.model_copy(update={"concurrency": conc})
        check_cluster_cost(self.cluster, self.cost)
        return self

    # --- what the Kubernetes model reads ---------------------------------------------------------
    @property
    def hpa(self) -> None:
        return None

    @property
    def keda(self) -> None:
        return None

    @property
    def replicas(self) -> None:
        return None

    @property
    def interceptor(self) -> InterceptorSpec:
        return InterceptorSpec()

    @property
    def http_add_on(self) -> bool:
        return False

    @property
    def metric_failures(self) -> MetricFailures:
        return MetricFailures()

    @property
    def scaler(self) -> Literal["kpa"]:
        return "kpa"

    def kpa_target(self) -> tuple[float, float]:
        """(target, total) per pod (ResolveMetricTarget)."""
        return K.resolve_target(
            self.metric,
            self.container_concurrency,
            self.target,
            self.target_utilization_percentage,
            self.container_concurrency_target_default,
            self.requests_per_second_target_default,
        )

    def initial_pods(self) -> int:
        """GetInitialScale (an initial-scale of 0 needs allow-zero-initial-scale), within the
        bounds (scaler.go: minScale = max(initialScale, minScale) until it is attained)."""
        n = self.initial_scale
        if n == 0 and not self.allow_zero_initial_scale:
            n = K.INITIAL_SCALE
        n = max(n, self.min_scale)
        return min(n, self.max_scale) if self.max_scale else n


# containerConcurrency 0: no breaker at the queue-proxy; the kernel needs a finite slot count.
UNLIMITED_CONCURRENCY = 10_000
