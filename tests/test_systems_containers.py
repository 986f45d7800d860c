"""Cloud Run and Fargate stations in a system (sim.systems.stations_containers): queueing theory,
a hand-computed bill, a scaling sequence from Application Auto Scaling's rule, and bad input.

Expected values are computed by hand (prices from the provider pages cited in prices.yaml), never
from the simulator's own output."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from test_systems import _bad, _k8s, _runs, _system, erlang_c_sojourn, t_ci

_SIZES: dict[str, dict] = {
    "cloud_run": {"cpu": 1, "memory": "512Mi"},
    "container_apps": {"cpu": 0.5, "memory": "1Gi", "concurrency": 10, "startup": "2s"},
}


def _cloud_run(name: str = "run", **kw: Any) -> dict:
    return {"name": name, "type": "cloud_run", **_SIZES["cloud_run"], "ingress_latency": 0, **kw}


def _aca(name: str = "aca", **kw: Any) -> dict:
    t = "container_apps"
    return {"name": name, "type": t, **_SIZES[t], "ingress_latency": 0, **kw}


def _fargate(name: str = "ecs", **kw: Any) -> dict:
    task = {"cpu": 1, "memory": 2048, "concurrency": 1, "startup": "30s", **kw.pop("task", {})}
    return {"name": name, "type": "fargate", "task": task, "ingress_latency": 0, **kw}


def _even(
    services: list[dict],
    platforms: list[dict],
    placement: dict,
    duration: str,
    rate: str,
    **steady: Any,
) -> Any:
    """One replication of placement `p`, arrivals evenly spaced at `rate` (no warm-up)."""
    data = _system(
        services,
        platforms,
        {"p": placement},
        replications=1,
        duration=duration,
        warmup=0,
        workload={"arrivals": [{"steady": {"rate": rate, "spacing": "uniform", **steady}}]},
    )
    return _runs(data, "p")[0]


@pytest.mark.parametrize(
    "platform, c",
    [
        (_cloud_run(concurrency=3, min_instances=1, max_instances=1), 3),
        (_fargate(tasks=2), 2),
    ],
    ids=["cloud_run_c3", "fargate_2_tasks"],
)
def test_fixed_instances_called_synchronously_are_mmc(platform: dict, c: int) -> None:
    """`api` (a pod that only calls) -> `svc` on c slots (one instance of concurrency 3, or two
    tasks of concurrency 1) with exponential 100 ms handlers: svc is M/M/c, its mean sojourn
    Erlang C's W at lam = 15/s (rho = 0.5 and 0.75)."""
    lam = {3: 15.0, 2: 15.0}[c]
    services = [
        {"name": "api", "entry": 1, "handler": "0s", "steps": [{"call": "svc", "timeout": "1h"}]},
        {"name": "svc", "handler": {"dist": "exponential", "mean": "100ms"}},
    ]
    data = _system(
        services,
        [_k8s("eks", 4, concurrency=100), platform],
        {"p": {"api": "eks", "svc": platform["name"]}},
        rate=f"{lam:g}/s",
        duration="2h",
        replications=4,
    )
    runs = _runs(data, "p")
    w = erlang_c_sojourn(lam, 0.1, c)
    per_rep = [r.extra["system"]["services"]["svc"]["latency_ms"]["mean"] / 1e3 for r in runs]
    lo, hi = t_ci(per_rep)
    assert lo <= w <= hi, (w, lo, hi)


def test_cloud_run_and_fargate_month_by_hand() -> None:
    """1 request/s, evenly spaced, for 1 h (month = 730 x the window). `api` on Cloud Run
    (request-based billing, 1 vCPU, 0.5 GiB, min = max = 1 instance) works 20 ms, calls `worker`
    on one Fargate task (1 vCPU, 2 GB, no ALB, x86) that works 60 ms, then works 20 ms more: the
    instance is active 100 ms a request (360 s), idle the other 3,240 s."""
    services = [
        {
            "name": "api",
            "entry": 1,
            "handler": "40ms",
            "steps": [{"work": 0.5}, {"call": "worker"}, {"work": 0.5}],
        },
        {"name": "worker", "handler": "60ms"},
    ]
    run_p = _cloud_run(concurrency=10, min_instances=1, max_instances=1)
    ecs = _fargate(tasks=1, load_balancer={"type": "none"})
    run = _even(services, [run_p, ecs], {"api": "run", "worker": "ecs"}, "1h", "1/s")
    m = 730.0
    # cloud.google.com/run/pricing, Tier 1, request-based: $0.000024/vCPU-s, $0.0000025/GiB-s
    # active; $0.0000025/vCPU-s and /GiB-s idle minimum instances; $0.40 per million requests.
    cr = {
        "cpu": 360 * 1 * m * 0.000024,
        "memory": 360 * 0.5 * m * 0.0000025,
        "idle_cpu": 3240 * 1 * m * 0.0000025,
        "idle_memory": 3240 * 0.5 * m * 0.0000025,
        "requests": 3600 * m * 0.40 / 1e6,
    }
    # aws.amazon.com/fargate/pricing, us-east-1 x86: $0.04048/vCPU-h, $0.004445/GB-h.
    fg = {"fargate_vcpu": 1 * m * 0.04048, "fargate_memory": 2 * m * 0.004445}
    per = run.extra["system"]["services"]
    for svc, lines in (("api", cr), ("worker", fg)):
        got = per[svc]["monthly_breakdown_usd"]
        for k, v in lines.items():
            assert got[k] == pytest.approx(v, abs=0.005), (svc, k)
        assert per[svc]["monthly_cost_usd"] == pytest.approx(sum(lines.values()), abs=0.005)
    assert per["api"]["monthly_cost_usd"] == pytest.approx(16.56, abs=0.005)
    assert per["worker"]["monthly_cost_usd"] == pytest.approx(36.04, abs=0.005)
    assert run.bill.monthly_usd == pytest.approx(16.5564 + 36.0401, abs=0.005)


def test_fargate_target_tracking_sequence_by_hand() -> None:
    """25 requests/s evenly spaced on an ECS service tracking ALBRequestCountPerTarget = 600
    (min 1, max 10, tasks ready 30 s after they are asked for). Datapoints at each minute:
    1,500 at 60, 120, 180 s (one task): AlarmHigh's 3 of 3 > 600 -> ceil(1 x 1500 / 600) = 3 at
    180 s. Minute to 240 s: 1,500 / (60 + 2 x 30 task-s / 60) = 750 > 600, in the scale-out
    cooldown from the base of 1: ceil(750 / 600) = 2 <= 3, nothing. From 300 s: 1500 / 3 = 500:
    no AlarmHigh, and AlarmLow (< 540 for 15 datapoints) proposes ceil(3 x 500 / 600) = 3: no
    scale-in. One decision: 1 -> 3 at 180 s."""
    services = [{"name": "api", "entry": 1, "handler": "10ms"}]
    ecs = _fargate(
        task={"concurrency": 10},
        target_tracking={
            "metric": "alb_request_count_per_target",
            "target": 600,
            "min_tasks": 1,
            "max_tasks": 10,
        },
    )
    run = _even(services, [ecs], {"api": "ecs"}, "30m", "25/s")
    steps = [(d.time_s, d.before, d.after) for d in run.decisions if d.kind.startswith("api:")]
    assert steps == [(180.0, 1, 3)], steps
    assert run.extra["system"]["services"]["api"]["instances_peak"] == 3.0


def test_cloud_run_scales_from_zero_on_demand() -> None:
    """min_instances 0: the first request waits in the front end until the autoscaler's next
    2 s tick asks for ceil(1 / concurrency) = 1 instance, then its 1 s start-up: it starts at
    2 + 1 = 3 s (a request at t = 0.5 s)."""
    services = [{"name": "api", "entry": 1, "handler": "10ms"}]
    run = _even(
        services,
        [_cloud_run(concurrency=5, startup="1s")],
        {"api": "run"},
        "10s",
        "1/s",
        start=0.5,
        end=1,
    )
    svc = run.extra["system"]["services"]["api"]
    assert svc["latency_ms"]["max"] == pytest.approx(2510.0, abs=1e-6)
    assert svc["instances_peak"] == 1.0


@pytest.mark.parametrize(
    "change, words",
    [
        (
            lambda d: (
                d["platforms"].append({"name": "lmi", "type": "lambda_managed"}),
                d["placements"][0]["services"].update(c="lmi"),
            ),
            "Lambda Managed Instances consuming an SQS queue",
        ),
        (
            lambda d: (
                d["platforms"].append(
                    {"name": "aca", "type": "container_apps", "cpu": 0.5, "memory": "1Gi"}
                ),
                d["placements"][0]["services"].update(c="aca"),
            ),
            "read Azure queues",
        ),
        (
            lambda d: (
                d["platforms"].append(_cloud_run()),
                d["placements"][0]["services"].update(c="run"),
            ),
            "Cloud Run has no SQS or Kafka trigger",
        ),
        (
            lambda d: (
                d["platforms"].append(_fargate(tasks=1, spot={})),
                d["placements"][0]["services"].update(b="ecs"),
            ),
            "Fargate Spot in a system",
        ),
    ],
    ids=[
        "lambda_managed_reads_sqs",
        "container_apps_reads_sqs",
        "cloud_run_reads_sqs",
        "fargate_spot",
    ],
)
def test_unsupported_placements_exit_2_naming_the_key(
    tmp_path: Path, change: Any, words: str
) -> None:
    code, out = _bad(tmp_path, change)
    assert code == 2, out
    key = "placements[0].services." + ("c" if "SQS" in words or "queues" in words else "b")
    assert key in out and words in out, out
    assert "Traceback" not in out and "KeyError" not in out


def test_a_call_into_cloud_run_goes_through_its_front_end(tmp_path: Path) -> None:
    def change(d: dict) -> None:
        d["platforms"].append(_cloud_run())
        d["placements"][0]["services"].update(b="run")
        d["services"][0]["steps"][0]["via"] = "invoke"

    code, out = _bad(tmp_path, change)
    assert code == 2, out
    assert "is called via load_balancer" in out and "Traceback" not in out, out


def test_container_apps_scales_from_zero_on_its_http_rule() -> None:
    """minReplicas 0, pollingInterval 30 s, the default http rule (concurrentRequests 10 = KEDA's
    HTTP trigger on the requests of the last 15 s / 15, activation > 0). 1 request/s from 0.5 s:
    the poll at 0 s reads 0; the poll at 30 s reads the 15 requests of [15, 30) / 15 = 1 > 0 and
    activates 0 -> 1; the replica is ready at 32 s, so the first request (0.5 s) waited 31.5 s and
    ran 20 ms (10 ms of CPU-bound work on 0.5 vCPU). The HPA then asks for ceil(1 x 1 / 10) = 1:
    one replica to the end."""
    services = [{"name": "api", "entry": 1, "handler": "10ms"}]
    run = _even(
        services,
        [_aca(scale={"minReplicas": 0, "maxReplicas": 5, "pollingInterval": 30})],
        {"api": "aca"},
        "5m",
        "1/s",
        start=0.5,
    )
    svc = run.extra["system"]["services"]["api"]
    assert svc["latency_ms"]["max"] == pytest.approx(31_520.0, abs=1e-6)
    assert svc["instances_peak"] == 1.0
    steps = [(d.time_s, d.before, d.after) for d in run.decisions if d.kind.startswith("api:")]
    assert steps == [(30.0, 0, 1)], steps


def test_container_apps_month_by_hand() -> None:
    """One replica always (minReplicas = maxReplicas = 1, 0.5 vCPU, 1 GiB, Consumption), 1
    request/s evenly spaced for 1 h, 100 ms each (I/O-bound: cpu_bound 0): at its minimum the
    replica is idle-priced while it serves nothing (3,240 s), active-priced the 360 s it works.
    azure.microsoft.com/pricing/details/container-apps: $0.000024/vCPU-s and $0.000003/GiB-s
    active, $0.000003 idle, $0.40 per million requests."""
    services = [{"name": "api", "entry": 1, "handler": "100ms", "cpu_bound": 0}]
    run = _even(
        services, [_aca(scale={"minReplicas": 1, "maxReplicas": 1})], {"api": "aca"}, "1h", "1/s"
    )
    got = run.extra["system"]["services"]["api"]["monthly_breakdown_usd"]
    m = 730.0
    want = {
        "cpu": 360 * 0.5 * m * 0.000024,  # $3.1536
        "idle_cpu": 3240 * 0.5 * m * 0.000003,  # $3.5478
        "memory": 360 * 1 * m * 0.000003,  # $0.7884
        "idle_memory": 3240 * 1 * m * 0.000003,  # $7.0956
        "requests": 3600 * m * 0.40 / 1e6,  # $1.0512
    }
    for k, v in want.items():
        assert got[k] == pytest.approx(v, abs=0.005), (k, got)
    assert run.extra["system"]["services"]["api"]["monthly_cost_usd"] == pytest.approx(
        15.6366, abs=0.005
    )


@pytest.mark.parametrize(
    "platform",
    [_cloud_run(), _fargate(tasks=1), _aca()],
    ids=["cloud_run", "fargate", "container_apps"],
)
def test_a_container_platforms_ops_are_billed_once(platform: dict) -> None:
    """`ops: {engineer: 1000}` on the platform of the only service: $1,000 a month of operating
    cost, once (the station's own bill used to carry it too: $2,000)."""
    platform = {**platform, "ops": {"engineer": 1000.0}}
    services = [{"name": "api", "entry": 1, "handler": "10ms"}]
    run = _even(services, [platform], {"api": platform["name"]}, "10m", "1/s")
    assert run.bill.operating_monthly_usd == pytest.approx(1000.0)
    svc = run.extra["system"]["services"]["api"]
    assert svc["operating_monthly_usd"] == pytest.approx(1000.0)


@pytest.mark.parametrize("shared", [False, True])
def test_fargate_services_sharing_one_alb_pay_its_hours_once_by_hand(shared: bool) -> None:
    """`api` -> `orders`, both ECS services on Fargate platform `ecs` (one task each), 1 request
    a second for 1 h (x 730 to the month): 3,600 requests at each. ELB pricing (us-east-1):
    $0.0225 per ALB-hour, $0.008 per LCU-hour, the largest of the LCU dimensions (25 new
    connections/s; 3,000 active; 1 GB processed/h; 1,000 rule evaluations/s beyond 10 free);
    2 public IPv4 addresses per internet-facing ALB at $0.005/h. With the defaults (a new
    connection per request, 10 kB per request) new connections are the largest dimension.
    Own ALB each: 730 x $0.0225 = $16.425 hourly, 1/s / 25 = 0.04 LCU x 730 x $0.008 = $0.2336,
    2 x 730 x $0.005 = $7.30 IPv4: $23.9586 a service. Shared (`load_balancer.shared`): one ALB,
    $16.425 + $7.30 once and LCUs on 2/s (0.08 LCU: $0.4672), $24.1922 split by requests: half
    each, $12.0961 a service, $23.725 less for the placement."""
    services = [
        {"name": "api", "entry": 1, "handler": "10ms", "steps": [{"call": "orders"}]},
        {"name": "orders", "handler": "10ms"},
    ]
    ecs = _fargate(tasks=1, load_balancer={"type": "alb", "shared": shared})
    run = _even(services, [ecs], {"api": "ecs", "orders": "ecs"}, "1h", "1/s")
    per = run.extra["system"]["services"]
    assert per["api"]["attempts"] == per["orders"]["attempts"] == 3600
    m = 730.0
    alb = {
        "load_balancer": m * 0.0225,
        "load_balancer_lcu": (2 if shared else 1) / 25 * m * 0.008,
        "public_ipv4": 2 * m * 0.005,
    }
    for svc in ("api", "orders"):
        got = per[svc]["monthly_breakdown_usd"]
        for line, usd in alb.items():
            assert got[line] == pytest.approx(usd / 2 if shared else usd, abs=1e-9), (svc, line)
        alb_usd = sum(got[line] for line in alb)
        assert alb_usd == pytest.approx(12.0961 if shared else 23.9586, abs=5e-5)
    total = run.bill.monthly_usd
    tasks = sum(
        per[s]["monthly_breakdown_usd"][k]
        for s in ("api", "orders")
        for k in ("fargate_vcpu", "fargate_memory")
    )
    assert total - tasks == pytest.approx(24.1922 if shared else 2 * 23.9586, abs=5e-5)


@pytest.mark.parametrize("shared", [False, True])
def test_fargate_services_of_one_platform_pay_its_nat_gateway_hours_once(shared: bool) -> None:
    """The services of one Fargate platform share its VPC and so its NAT Gateway, with or
    without a shared ALB. AWS VPC pricing (aws.amazon.com/vpc/pricing, NAT Gateway: per hour and
    per GB processed; prices.yaml `nat_gateway.hours` $0.045/h, `nat_gateway.data` $0.045/GB;
    `public_ipv4` $0.005/h). api -> orders, 1 request a second each for 1 h (x 730), 10 kB per
    request through the NAT: hours 730 x $0.045 = $32.85 and the gateway's IPv4 730 x $0.005 =
    $3.65 once, on the platform's first service (api); data per service 3,600 x 10,000 B / 2^30
    x 730 x $0.045 = $1.1014. So the `nat` lines are $33.9514 (api) and $1.1014 (orders),
    $35.0528 in all (each service paid the hours before: $67.9028)."""
    services = [
        {"name": "api", "entry": 1, "handler": "10ms", "steps": [{"call": "orders"}]},
        {"name": "orders", "handler": "10ms"},
    ]
    nat = {"nat": {"enabled": True, "bytes_per_request": "10KB"}}
    ecs = _fargate(tasks=1, load_balancer={"type": "alb", "shared": shared}, cost=nat)
    run = _even(services, [ecs], {"api": "ecs", "orders": "ecs"}, "1h", "1/s")
    per = run.extra["system"]["services"]
    data = 3600 * 10_000 / 2**30 * 730 * 0.045
    assert data == pytest.approx(1.1014, abs=5e-5)
    api, orders = (per[s]["monthly_breakdown_usd"] for s in ("api", "orders"))
    assert api["nat"] == pytest.approx(730 * 0.045 + data)
    assert orders["nat"] == pytest.approx(data)
    assert api["nat"] + orders["nat"] == pytest.approx(35.0528, abs=5e-5)
    alb_ipv4 = 2 * 730 * 0.005 / (2 if shared else 1)  # the ALB's 2 addresses (split if shared)
    assert api["public_ipv4"] == pytest.approx(alb_ipv4 + 730 * 0.005)
    assert orders["public_ipv4"] == pytest.approx(alb_ipv4)


def test_a_lone_fargate_service_behind_a_shared_alb_pays_the_same() -> None:
    """Sharing with nobody: `shared: true` on a platform with one service gives its own ALB's
    bill, line by line."""
    services = [{"name": "api", "entry": 1, "handler": "10ms"}]
    bills = []
    for shared in (False, True):
        ecs = _fargate(tasks=1, load_balancer={"type": "alb", "shared": shared})
        run = _even(services, [ecs], {"api": "ecs"}, "10m", "2/s")
        bills.append(run.extra["system"]["services"]["api"]["monthly_breakdown_usd"])
    assert bills[1] == pytest.approx(bills[0], abs=1e-9)
