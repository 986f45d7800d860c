"""Kubernetes autoscaling brains (HPA, KEDA) and every Kubernetes default, each with its source.

This package is pure and table-testable: no SimPy. The Kubernetes platform model calls
`hpa.HorizontalPodAutoscaler.recommend` every HPA sync and `keda.KedaAutoscaler.on_poll` /
`on_hpa_sync` with metric values it measured, and applies the decisions it gets back.

The constants below are the one place where the Kubernetes, HPA and KEDA defaults live (the
scenario spec in sim/platforms/kubernetes_spec.py and the autoscalers read them from here). Each
names its public source (docs/model.md section 5 lists them); numbers marked ASSUMPTION are ours.
"""

from __future__ import annotations

from typing import Any, Final

# --- HPA (kubernetes/kubernetes pkg/controller/podautoscaler; facts.md s.4) -----------------------

# --horizontal-pod-autoscaler-sync-period default "15 seconds".
HPA_SYNC_PERIOD_S = 15.0
# --horizontal-pod-autoscaler-tolerance: "0.1 by default".
HPA_TOLERANCE = 0.1
# --horizontal-pod-autoscaler-downscale-stabilization default 5m: the scale-down window of an HPA
# without `behavior`, and of `behavior.scaleDown` when its stabilizationWindowSeconds is unset.
HPA_DOWNSCALE_STABILIZATION_S = 300.0
# --horizontal-pod-autoscaler-cpu-initialization-period default 5m and
# --horizontal-pod-autoscaler-initial-readiness-delay default 30s (pkg/controller/podautoscaler/
# config/v1alpha1/defaults.go RecommendedDefaultHPAControllerConfiguration): read by groupPods in
# replica_calculator.go to set aside CPU samples of pods that are starting.
HPA_CPU_INITIALIZATION_PERIOD_S = 300.0
HPA_INITIAL_READINESS_DELAY_S = 30.0
# metrics-server --metric-resolution: the code default is 60s (cmd/metrics-server/app/options/
# options.go, v0.9.0), but the manifests every install uses (manifests/base/deployment.yaml,
# charts/metrics-server/values.yaml, v0.9.0) pass `--metric-resolution=15s`. The CPU usage it serves
# is the rate between its last two scrapes of the kubelet's cumulative counter (pkg/storage/
# types.go resourceUsage: window = last.Timestamp - prev.Timestamp), stamped with the last scrape.
METRIC_RESOLUTION_S = 15.0
# A container younger than the resolution but at least 10 s old is served with a window from its
# start (pkg/storage/pod.go freshContainerMinMetricsResolution, v0.9.0).
METRIC_FRESH_CONTAINER_MIN_S = 10.0
# An HPA without `behavior` limits one scale-up to max(2 x current, 4) replicas
# (horizontal.go: scaleUpLimitFactor = 2.0, scaleUpLimitMinimum = 4.0, calculateScaleUpLimit).
HPA_LEGACY_SCALE_UP_FACTOR = 2.0
HPA_LEGACY_SCALE_UP_MINIMUM = 4
# Defaults filled into `behavior` (pkg/apis/autoscaling/v2/defaults.go; facts.md s.4):
# scaleUp: window 0 s, Pods 4 / 15 s and Percent 100 / 15 s, selectPolicy Max;
# scaleDown: window from the controller flag (300 s), Percent 100 / 15 s, selectPolicy Max.
HPA_SCALE_UP_WINDOW_S = 0
HPA_SCALE_UP_POLICIES: tuple[dict[str, Any], ...] = (
    {"type": "Pods", "value": 4, "periodSeconds": 15},
    {"type": "Percent", "value": 100, "periodSeconds": 15},
)
HPA_SCALE_DOWN_POLICIES: tuple[dict[str, Any], ...] = (
    {"type": "Percent", "value": 100, "periodSeconds": 15},
)
HPA_SELECT_POLICY: Final = "Max"
# minReplicas defaults to 1 (v2 defaults.go SetDefaults_HorizontalPodAutoscaler).
HPA_MIN_REPLICAS = 1
# With no metric given, Kubernetes targets 80% CPU (autoscaling.DefaultCPUUtilization, v2
# defaults.go).
HPA_DEFAULT_CPU_UTILIZATION = 0.8

# --- KEDA ScaledObject (kedacore/keda-docs content/docs/2.21 reference/scaledobject-spec.md;
#     facts.md s.5) ------------------------------------------------------------------------------

KEDA_POLLING_INTERVAL_S = 30.0
KEDA_COOLDOWN_PERIOD_S = 300.0
KEDA_INITIAL_COOLDOWN_PERIOD_S = 0.0
KEDA_MIN_REPLICA_COUNT = 0
KEDA_MAX_REPLICA_COUNT = 100
# The HPA that KEDA creates has minReplicas = max(minReplicaCount, 1)
# (kedacore/keda apis/keda/v1alpha1 GetHPAMinReplicas).
KEDA_HPA_MIN_REPLICAS = 1
# Activation thresholds default to 0; a trigger is active when its metric is strictly greater
# (concepts/scaling-deployments.md).
KEDA_ACTIVATION_THRESHOLD = 0.0
# Prometheus: the simulated query is a request rate over this window. ASSUMPTION: 2 minutes, the
# window of the scaler docs' example query `sum(rate(http_requests_total{...}[2m]))`; a `[..]`
# range in the user's query overrides it, and `metadata.window` overrides both.
KEDA_PROMETHEUS_WINDOW_S = 120.0
# Prometheus: what the queried counter counts. The docs' example query reads the app's own
# http_requests_total, incremented when a response is written (Prometheus client libraries'
# instrumentation), so by default the simulated query counts completions at the pods; a
# ScaledObject resting at 0 replicas defaults to arrivals (an app-side counter cannot wake it).
KEDA_PROMETHEUS_COUNTS: Final = "completions"
# Kafka: lagThreshold "(Default: 10)", activationLagThreshold default 0 (scalers/apache-kafka.md).
KEDA_KAFKA_LAG_THRESHOLD = 10.0
# AWS SQS: queueLength "(default: 5)", activationQueueLength "(Default: 0)"; "actual messages" =
# visible + in flight unless scaleOnInFlight is false (scalers/aws-sqs.md).
KEDA_SQS_QUEUE_LENGTH = 5.0

# --- KEDA HTTP add-on (kedacore/http-add-on; facts.md s.5) ----------------------------------------

# targetValue "+kubebuilder:default=100" for concurrency and requestRate; requestRate window "1m",
# granularity "1s" (operator/apis/http/v1alpha1/httpscaledobject_types.go). scaledownPeriod 300.
HTTP_TARGET_VALUE = 100.0
HTTP_RATE_WINDOW_S = 60.0
HTTP_RATE_GRANULARITY_S = 1.0
# The add-on's scaler pushes activity to KEDA (external-push): it reads the interceptors' queue
# counts every KEDA_HTTP_QUEUE_TICK_DURATION (default 500ms) and streams IsActive every 200 ms
# (scaler/handlers.go). An HTTPScaledObject is therefore simulated with a 0.5 s activation poll.
HTTP_ACTIVATION_POLL_S = 0.5
# The interceptor holds a request until the Service has a ready endpoint, bounded by
# KEDA_HTTP_READINESS_TIMEOUT (envDefault "0s": no own bound, only the request's deadline; 504 when
# it expires), then proxies it to http://<service>.<namespace>:<port>, i.e. through the Service's
# ClusterIP (kube-proxy picks the pod) (http-add-on v0.15.0 interceptor/config/timeouts.go,
# interceptor/middleware/endpoint_resolver.go, interceptor/middleware/routing.go).
INTERCEPTOR_READINESS_TIMEOUT_S: float | None = None

# --- Pods (facts.md s.5) --------------------------------------------------------------------------

# ASSUMPTION: one request at a time per pod (a sync worker; the same unit of concurrency as a Lambda
# execution environment, and the M/M/c validation case). Async servers should set `concurrency`.
POD_CONCURRENCY = 1
# 0.5 vCPU: GKE Autopilot's default CPU request for a general-purpose pod
# (cloud.google.com/kubernetes-engine/docs/concepts/autopilot-resource-requests, via secondary
# sources that agree on 500m). Kubernetes itself sets no default request.
POD_CPU = 0.5
# ASSUMPTION: 512 MiB (secondary sources disagree on Autopilot's default: 512Mi vs 2Gi).
POD_MEMORY_MB = 512.0
# Image pull + container start + readiness. ASSUMPTION built from two facts: the SIG-Scalability
# SLO "stateless pod startup ... excluding time to pull images" p99 <= 5 s
# (kubernetes/community sig-scalability/slos/slos.md) and "76% of startup time is spent
# downloading container images" (Slacker, FAST'16, via tensorfuse.io [S]): a start of ~1.5 s
# without the pull is ~6 s with it. Lognormal median 6 s, p99 20 s (as design.md's example).
POD_STARTUP: dict[str, Any] = {"dist": "lognormal", "median": "6s", "p99": "20s"}

# --- Serving path ---------------------------------------------------------------------------------

# The interceptor of the KEDA HTTP add-on waits 300 s for response headers and has no request
# deadline by default (http-add-on interceptor/config/timeouts.go; facts.md s.5): 300 s is the
# longest a client waits once its request is in the cluster.
REQUEST_TIMEOUT_S = 300.0
# ASSUMPTION (no measurement in facts.md): 1 ms per request for the load balancer + kube-proxy hop
# inside one region; `ingress_latency: 0s` turns it off.
INGRESS_LATENCY_S = 0.001

# --- Cluster (facts.md s.1 and s.5) ---------------------------------------------------------------

# ASSUMPTION: m5.large (2 vCPU, 8 GiB; price in facts.md s.1), eksctl's default node type.
NODE_TYPE = "m5.large"
MIN_NODES = 1  # ASSUMPTION: one node stays up for system pods.
# Node provisioning presets.
# Karpenter: maintainer "We typically see new nodes come up in about 30-40s in a ready state";
# users report 80-90 s and 2 min (aws/karpenter-provider-aws #6165, #1639, #5429).
# ASSUMPTION: lognormal median 40 s, p99 120 s covers both.
# Cluster Autoscaler: GCE node provisioning "usually takes 3 to 4 minutes", total "usually about
# 5 minutes" (kubernetes/autoscaler cluster-autoscaler/FAQ.md): uniform 3-5 min.
NODE_PROVISIONING_PRESETS: dict[str, dict[str, Any]] = {
    "karpenter": {"dist": "lognormal", "median": "40s", "p99": "120s"},
    "cluster-autoscaler": {"dist": "uniform", "low": "3m", "high": "5m"},
}
NODE_PROVISIONING = "karpenter"
# Node scale-down. Both autoscalers look every 10 s: Karpenter's disruption controller
# (kubernetes-sigs/karpenter pkg/controllers/disruption/controller.go pollingPeriod, v1.14.1) and
# the Cluster Autoscaler (--scan-interval 10s, kubernetes/autoscaler cluster-autoscaler/FAQ.md).
NODE_AUTOSCALER_PERIOD_S = 10.0
# Karpenter v1 NodePool `disruption` (pkg/apis/v1/nodepool.go, v1.14.1): consolidationPolicy
# default WhenEmptyOrUnderutilized; consolidateAfter default 0s; budgets default nodes: 10%
# (rounded up, Budget.GetAllowedDisruptions). A command is re-validated 15 s after it is computed
# (pkg/controllers/disruption/consolidation.go commandValidationDelay).
KARPENTER_CONSOLIDATION_POLICY: Final = "WhenEmptyOrUnderutilized"
KARPENTER_CONSOLIDATE_AFTER_S = 0.0
KARPENTER_BUDGET_NODES = 0.10
KARPENTER_VALIDATION_DELAY_S = 15.0
# Cluster Autoscaler (FAQ.md parameter table): a node is unneeded when the requests of its pods
# are below --scale-down-utilization-threshold 0.5 of allocatable (CPU or memory, the larger) and
# its pods fit elsewhere; it is removed after --scale-down-unneeded-time 10m; no scale-down for
# --scale-down-delay-after-add 10m after a scale-up; at most --max-empty-bulk-delete 10 empty nodes
# at once, non-empty ones one at a time.
NODE_SCALE_DOWN_AFTER_S = 600.0
CA_UTILIZATION_THRESHOLD = 0.5
CA_DELAY_AFTER_ADD_S = 600.0
CA_MAX_EMPTY_BULK_DELETE = 10
# Reserved per node for kubelet and system daemons. ASSUMPTION: the amazon-eks-ami kube-reserved
# formula for the default m5.large (29 pods max): memory 11 x 29 + 255 = 574 MiB; CPU 6% of the
# first core + 1% of the second = 70m. Not in facts.md.
SYSTEM_RESERVED_CPU = 0.07
SYSTEM_RESERVED_MEMORY_MB = 574.0
# Control plane by cluster mode: EKS for nodes, GKE for Autopilot (an Autopilot cluster is GKE).
CONTROL_PLANE_BY_MODE = {"nodes": "eks", "autopilot": "gke"}

# --- Spot nodes (`cluster.spot`, issue 16 item 2) ------------------------------------------------

# Interruption notice before the instance goes: AWS "a warning that is issued two minutes before
# Amazon EC2 stops or terminates your Spot Instance" (docs.aws.amazon.com/AWSEC2/latest/UserGuide/
# spot-instance-termination-notices.html, read 2026-12-01); a GCP Spot/preemptible VM is terminated
# 30 s after its termination notice (cloud.google.com/kubernetes-engine/docs/how-to/preemptible-vms
# and concepts/spot-vms, read 2026-12-01).
SPOT_NOTICE_S = {"aws": 120.0, "gcp": 30.0}
# How long a pod on the noticed node may finish its work before it is killed. AWS (Karpenter's
# interruption handling or the Node Termination Handler evict the pods): the pod's
# terminationGracePeriodSeconds, default 30 (k8s.io/api core/v1
# DefaultTerminationGracePeriodSeconds). GKE (kubelet graceful node shutdown): 15 s for non-system
# Pods, then 15 s for system Pods (preemptible-vms page above, GKE > 1.22.8-gke.200).
SPOT_GRACE_S = {"aws": 30.0, "gcp": 15.0}
# GKE Autopilot Spot Pods (`mode: autopilot` with `cluster.spot`): at preemption a Spot Pod gets
# at most 25 s of grace; a terminationGracePeriodSeconds above 25 does not extend it (its default
# is 30, so 25): cloud.google.com/kubernetes-engine/docs/how-to/autopilot-spot-pods (zh-CN copy,
# "Spot Pod 在抢占期间提供的最长宽限期为 25 秒"), read 2026-12-01.
AUTOPILOT_SPOT_GRACE_S = 25.0
# ASSUMPTION: the lowest band of the AWS Spot Instance Advisor's "frequency of interruption"
# (aws.amazon.com/ec2/spot/instance-advisor/: "<5%" of instances interrupted per month), taken at
# its upper bound on a 730-h month: 0.05 / 730 per node-hour. Set your own rate or a trace.
SPOT_INTERRUPTIONS_PER_NODE_HOUR = 0.05 / 730.0
# The substream of spot interruption draws (one exponential per spot node at its launch).
SPOT_STREAM = 37
# Karpenter's fallback when spot capacity is short (`cluster.spot.unavailable`): "Karpenter
# prioritizes Spot offerings if the NodePool allows Spot and on-demand instances. If the provider
# API (e.g. EC2 Fleet's API) indicates Spot capacity is unavailable, Karpenter caches that result
# ... If there are no other possible offerings available for Spot, Karpenter will attempt to
# provision on-demand instances, generally within milliseconds" (aws/karpenter-provider-aws
# website/content/en/docs/concepts/nodepools.md @05b8ebd, "Capacity Type"). The cache's TTL:
# UnavailableOfferingsTTL = 3 * time.Minute (pkg/cache/cache.go @0839cc0; the docs page at that
# commit says 45 s, the source is what runs).
SPOT_UNAVAILABLE_TTL_S = 180.0
# The substream of the spot-capacity draws (one uniform per spot launch outside the cache).
SPOT_CAPACITY_STREAM = 38
