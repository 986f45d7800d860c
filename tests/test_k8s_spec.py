"""`type: kubernetes`: keys, defaults (each from sim.platforms.autoscaling) and errors."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import pytest
from pydantic import ValidationError

from sim.distributions import Constant, Lognormal, Uniform
from sim.errors import InputError
from sim.platforms.kubernetes_spec import KubernetesSpec

DATA = Path(__file__).parent / "data"


def spec(context: dict | None = None, **kw) -> KubernetesSpec:
    data = {"name": "eks", "type": "kubernetes", **kw}
    return KubernetesSpec.model_validate(data, context=context)


def test_defaults():
    s = spec(replicas=3)
    assert s.scaler == "fixed"
    assert (s.pod.concurrency, s.pod.cpu, s.pod.memory) == (1, 0.5, 512.0)
    assert isinstance(s.pod.startup, Lognormal)
    assert (s.pod.startup.median, s.pod.startup.p99) == (6.0, 20.0)
    assert s.routing == "round_robin"  # behind the default ALB
    assert s.interceptor.readiness_timeout is None
    assert s.queue_limit is None and s.request_timeout == 300.0
    assert isinstance(s.ingress_latency, Constant) and s.ingress_latency.value == 0.001
    c = s.cluster
    assert (c.node, c.min_nodes, c.max_nodes, c.mode, c.control_plane) == (
        "m5.large",
        1,
        None,
        "nodes",
        "eks",
    )
    assert isinstance(c.node_provisioning, Lognormal) and c.node_provisioning.median == 40.0
    assert c.scale_down_after == 600.0
    assert (c.system_reserved.cpu, c.system_reserved.memory) == (0.07, 574.0)
    assert s.load_balancer.type == "alb" and s.ops == {}


def test_units_and_overrides():
    s = spec(
        hpa={"max_replicas": 10, "metric": "concurrency", "target": 6},
        pod={"concurrency": 8, "cpu": "250m", "memory": "1Gi", "startup": "4s"},
        routing="round_robin",
        queue_limit=100,
        request_timeout="30s",
        ingress_latency="0s",
        cluster={
            "node": "c5.xlarge",
            "max_nodes": 20,
            "node_provisioning": "cluster-autoscaler",
            "scale_down_after": "5m",
            "system_reserved": {"cpu": "100m", "memory": "1Gi"},
        },
        ops={"on-call": "2k", "monitoring": 300},
    )
    assert s.scaler == "hpa" and s.hpa is not None and s.hpa.target == 6.0
    assert (s.pod.concurrency, s.pod.cpu, s.pod.memory) == (8, 0.25, 1024.0)
    assert isinstance(s.pod.startup, Constant) and s.pod.startup.value == 4.0
    assert (s.queue_limit, s.request_timeout, s.ingress_latency.mean()) == (100, 30.0, 0.0)
    prov = s.cluster.node_provisioning
    assert isinstance(prov, Uniform) and (prov.low, prov.high) == (180.0, 300.0)
    assert s.cluster.scale_down_after == 300.0
    assert (s.cluster.system_reserved.cpu, s.cluster.system_reserved.memory) == (0.1, 1024.0)
    assert s.ops == {"on-call": 2000.0, "monitoring": 300.0}


def test_no_request_timeout():
    assert spec(replicas=1, request_timeout=None).request_timeout is None


def test_karpenter_preset_median_and_tail():
    prov = spec(replicas=1, cluster={"node_provisioning": "Karpenter"}).cluster.node_provisioning
    assert isinstance(prov, Lognormal)
    assert math.exp(prov.mu) == pytest.approx(40.0)
    assert math.exp(prov.mu + 2.3263478740408408 * prov.sigma) == pytest.approx(120.0)


def test_autopilot_is_gke():
    s = spec(replicas=2, cluster={"mode": "autopilot"})
    assert s.cluster.control_plane == "gke"


@pytest.mark.parametrize(
    ("kw", "words"),
    [
        ({}, "exactly one of `replicas`, `hpa` or `keda` (got none)"),
        ({"replicas": 2, "hpa": {"max_replicas": 4}}, "(got replicas and hpa)"),
        (
            {"replicas": 2, "cluster": {"mode": "autopilot", "control_plane": "eks"}},
            "control_plane must be gke",
        ),
        ({"replicas": 2, "cluster": {"node": "m9.huge"}}, "unknown node type 'm9.huge'; known:"),
        (
            {"replicas": 2, "cluster": {"node_provisioning": "fargate"}},
            "unknown node_provisioning preset",
        ),
        ({"replicas": 2, "cluster": {"min_nodes": 5, "max_nodes": 2}}, "must not exceed"),
        ({"replicas": 2, "routing": "fastest"}, "ideal_fifo"),
        ({"replicas": 2, "pod": {"concurrency": 0}}, "greater than or equal to 1"),
        ({"replicas": 2, "pod": {"cpus": 1}}, "Extra inputs"),
        ({"replicas": 2, "ops": {"sre": -5}}, "greater than or equal to 0"),
        ({"keda": {"triggers": [{"type": "sqs"}]}}, "unknown trigger type 'sqs'"),
    ],
)
def test_errors(kw, words):
    with pytest.raises(ValidationError) as exc:
        spec(**kw)
    assert words in str(exc.value)


def test_keda_inline():
    s = spec(
        keda={
            "maxReplicaCount": 50,
            "triggers": [
                {"type": "prometheus", "metadata": {"threshold": "100", "activationThreshold": "1"}}
            ],
        }
    )
    assert s.scaler == "keda" and s.keda is not None and s.keda.maxReplicaCount == 50


def test_keda_file_relative_to_base_dir(tmp_path):
    shutil.copy(DATA / "keda_multi.yaml", tmp_path / "so.yaml")
    s = spec(context={"base_dir": tmp_path}, keda={"file": "so.yaml"})
    assert s.keda is not None and s.keda.maxReplicaCount == 12
    http = spec(context={"base_dir": DATA}, keda={"file": "keda_httpscaledobject.yaml"})
    assert http.keda is not None and http.keda.triggers[0].type == "http"


def test_keda_file_by_name(tmp_path):
    text = (DATA / "keda_scaledobject.yaml").read_text()
    (tmp_path / "two.yaml").write_text(
        text
        + "---\n"
        + text.replace("name: checkout-api\n  namespace", "name: other\n  namespace").replace(
            "maxReplicaCount: 40", "maxReplicaCount: 9"
        )
    )
    s = spec(context={"base_dir": str(tmp_path)}, keda={"file": "two.yaml", "name": "other"})
    assert s.keda is not None and s.keda.maxReplicaCount == 9


def test_keda_file_errors_name_the_manifest(tmp_path):
    with pytest.raises(InputError) as exc:
        spec(context={"base_dir": DATA}, keda={"file": "keda_bad_field.yaml"})
    assert exc.value.file == str(DATA / "keda_bad_field.yaml")
    assert exc.value.key.startswith("spec.triggers[0].metadata.treshold")
    # A missing file is the scenario's error: reported at its `keda` key, naming the path.
    with pytest.raises(ValidationError, match="ScaledObject file not found") as err:
        spec(context={"base_dir": tmp_path}, keda={"file": "missing.yaml"})
    assert err.value.errors()[0]["loc"][0] == "keda"


def test_json_schema_and_round_trip():
    s = spec(keda={"triggers": [{"type": "kafka", "metadata": {"lagThreshold": "20"}}]})
    again = KubernetesSpec.model_validate(s.model_dump())
    assert again.keda is not None and again.keda.triggers[0].target() == 20.0
    schema = KubernetesSpec.model_json_schema()
    assert {"replicas", "hpa", "keda", "pod", "cluster", "ops"} <= set(schema["properties"])


@pytest.mark.parametrize(
    ("kw", "routing"),
    [
        ({"replicas": 2}, "round_robin"),  # ALB (target type ip): round robin by default
        ({"replicas": 2, "load_balancer": "none"}, "random"),  # a Service: kube-proxy iptables
        ({"keda": {"triggers": [{"type": "http"}]}}, "random"),  # interceptor -> the Service
        ({"replicas": 2, "routing": "least_connections"}, "ideal_fifo"),  # the old name
        ({"replicas": 2, "load_balancer": "none", "routing": "least_request"}, "least_request"),
    ],
)
def test_routing_default_follows_the_entry_path(kw, routing):
    assert spec(**kw).routing == routing
