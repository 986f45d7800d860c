"""Kubernetes with fixed replicas against queueing theory (design.md section 6).

Fixed replicas, Poisson arrivals (rate lam), exponential service (rate mu), no timeouts, no
ingress latency, one CPU per pod (so the service time is not rescaled):

- ideal_fifo (one FIFO queue in front of c = pods x concurrency slots) is an M/M/c queue.
  Erlang C: C = P(wait) = c B / (c - a (1 - B)) with a = lam / mu and Erlang B
  B = poisson.pmf(c, a) / poisson.cdf(c, a). Mean wait Wq = C / (c mu - lam).
  Sojourn T = W + S with W = 0 w.p. 1 - C, else Exp(theta), theta = c mu - lam, independent of
  S ~ Exp(mu). So
      P(T > t) = (1 - C) e^{-mu t} + C P(E_theta + E_mu > t),
      P(E_theta + E_mu > t) = (theta e^{-mu t} - mu e^{-theta t}) / (theta - mu)   (theta != mu)
                            = (1 + mu t) e^{-mu t}                                (theta == mu),
  and the p99 is the root of P(T > t) = 0.01 (brentq).
- round_robin with per-pod queues and one slot per pod: every pod sees every c-th arrival, i.e.
  Erlang-c interarrival times (c phases of rate lam): an E_c/M/1 queue. GI/M/1: P(wait) = sigma,
  the root in (0, 1) of sigma = A*(mu (1 - sigma)) with A*(s) = (lam / (lam + s))^c, and
  Wq = sigma / (mu (1 - sigma)).
- random (kube-proxy iptables) with one slot per pod: Poisson splitting, c independent M/M/1
  queues with rate lam / c: P(wait) = rho, Wq = rho / (mu - lam / c).
- least_request (Envoy p2c): no closed form for finite c; compared with an independent
  simulation (sim.validation.cases.p2c_independent, which shares no code with the engine).

Each replication is a separate run (its own seed) so all its rows are kept; the estimates over
replications give a t-interval, which must contain the theoretical value.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import optimize, stats

from conftest import make_scenario, run_platform

pytestmark = pytest.mark.validation

REPS = 12
WARMUP = 500.0


def erlang_c(c: int, a: float) -> float:
    b = stats.poisson.pmf(c, a) / stats.poisson.cdf(c, a)
    return c * b / (c - a * (1 - b))


def mmc_sojourn_quantile(c: int, lam: float, mu: float, q: float) -> float:
    """Inverse of the M/M/c FCFS sojourn-time CDF (formula in the module docstring)."""
    pw = erlang_c(c, lam / mu)
    theta = c * mu - lam

    def tail(t: float) -> float:
        if abs(theta - mu) < 1e-12:
            both = (1 + mu * t) * math.exp(-mu * t)
        else:
            both = (theta * math.exp(-mu * t) - mu * math.exp(-theta * t)) / (theta - mu)
        return (1 - pw) * math.exp(-mu * t) + pw * both

    return optimize.brentq(lambda t: tail(t) - (1 - q), 0.0, 1e4)


def ecm1_wait(c: int, lam: float, mu: float) -> tuple[float, float]:
    """E_c/M/1: (P(wait), mean wait) from the GI/M/1 root sigma."""
    sigma = optimize.brentq(lambda x: x - (lam / (lam + mu * (1 - x))) ** c, 1e-12, 1 - 1e-12)
    return sigma, sigma / (mu * (1 - sigma))


def _runs(pods: int, conc: int, lam: float, mean_s: float, duration: float, routing: str):
    out = []
    for rep in range(REPS):
        sc = make_scenario(
            {
                "name": "mmc",
                "duration": f"{duration}s",
                "warmup": f"{WARMUP}s",
                "replications": 1,
                "seed": 1 + rep,
                "workload": {
                    "arrivals": [{"steady": {"rate": f"{lam}/s"}}],
                    "service": {"duration": {"dist": "exponential", "mean": f"{mean_s}s"}},
                },
                "platforms": [
                    {
                        "name": "k8s",
                        "type": "kubernetes",
                        "replicas": pods,
                        "routing": routing,
                        "pod": {"concurrency": conc, "cpu": 1},
                        "request_timeout": None,
                        "ingress_latency": "0s",
                    }
                ],
            }
        )
        run = run_platform(sc)
        rows = run.stats.sample
        assert rows["arrival"].size == run.stats.requests_all  # every row kept
        post = rows["arrival"] >= WARMUP
        wait = rows["wait"][post]
        assert run.stats.outcomes["ok"] == run.stats.requests
        out.append((wait.mean(), (wait > 0).mean(), run.stats.latency["p99"] / 1e3))
    return np.array(out)


def _ci(x: np.ndarray) -> tuple[float, float]:
    half = stats.t.ppf(0.975, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size)
    return x.mean() - half, x.mean() + half


@pytest.mark.parametrize(
    ("pods", "conc", "rho"),
    [(4, 1, 0.75), (2, 2, 0.75), (3, 1, 0.8)],
    ids=["c4-rho0.75", "2pods-x-concurrency2", "c3-rho0.8"],
)
def test_fixed_replicas_is_mmc(pods, conc, rho):
    c, mean_s = pods * conc, 1.0
    mu = 1 / mean_s
    lam = rho * c * mu
    # <= 60,000 rows per run (the size up to which a run keeps every row for requests.csv).
    duration = math.floor(58_000 / lam)
    est = _runs(pods, conc, lam, mean_s, duration, "ideal_fifo")
    pw = erlang_c(c, lam / mu)
    expected = {
        "mean wait": pw / (c * mu - lam),
        "P(wait)": pw,
        "sojourn p99": mmc_sojourn_quantile(c, lam, mu, 0.99),
    }
    for j, (name, value) in enumerate(expected.items()):
        lo, hi = _ci(est[:, j])
        assert lo <= value <= hi, f"{name}: theory {value:.4f} outside 95% CI [{lo:.4f}, {hi:.4f}]"


def test_round_robin_per_pod_queues_is_ec_m_1():
    pods, lam, mean_s = 4, 3.0, 1.0
    est = _runs(pods, 1, lam, mean_s, math.floor(58_000 / lam), "round_robin")
    pw, wq = ecm1_wait(pods, lam, 1 / mean_s)
    for j, (name, value) in enumerate({"mean wait": wq, "P(wait)": pw}.items()):
        lo, hi = _ci(est[:, j])
        assert lo <= value <= hi, f"{name}: theory {value:.4f} outside 95% CI [{lo:.4f}, {hi:.4f}]"
    # Per-pod queues wait longer than one shared queue at the same load (M/M/4: Wq = 0.51 s).
    assert wq > erlang_c(4, 3.0) / (4 - 3.0)


def test_sojourn_formula_reduces_to_mm1():
    """Sanity of the helper: M/M/1 sojourn is Exp(mu - lam), p99 = ln(100) / (mu - lam)."""
    assert mmc_sojourn_quantile(1, 0.5, 1.0, 0.99) == pytest.approx(math.log(100) / 0.5)


def test_random_routing_is_independent_mm1_queues():
    pods, lam, mean_s = 4, 3.0, 1.0
    est = _runs(pods, 1, lam, mean_s, math.floor(58_000 / lam), "random")
    rho = lam / pods
    for j, (name, value) in enumerate({"mean wait": rho / (1 - rho), "P(wait)": rho}.items()):
        lo, hi = _ci(est[:, j])
        assert lo <= value <= hi, f"{name}: theory {value:.4f} outside 95% CI [{lo:.4f}, {hi:.4f}]"
    # Random splitting waits longer than round robin, which waits longer than one shared queue.
    assert rho / (1 - rho) > ecm1_wait(pods, lam, 1.0)[1] > erlang_c(4, 3.0) / (4 - 3.0)


def test_least_request_matches_an_independent_p2c_simulation():
    from sim.validation.cases import p2c_independent

    pods, lam, mean_s = 4, 3.0, 1.0
    est = _runs(pods, 1, lam, mean_s, math.floor(58_000 / lam), "least_request")
    wq, wq_se, pw, pw_se = p2c_independent(pods, lam, 1 / mean_s, 400_000, 12345)
    for j, (name, value, se) in enumerate([("mean wait", wq, wq_se), ("P(wait)", pw, pw_se)]):
        lo, hi = _ci(est[:, j])
        lo, hi = lo - 2 * se, hi + 2 * se  # the independent estimate has its own noise
        assert lo <= value <= hi, f"{name}: {value:.4f} outside [{lo:.4f}, {hi:.4f}]"
    # p2c sits between round robin's per-pod queues and the one shared queue here.
    assert erlang_c(4, 3.0) / (4 - 3.0) < wq < rho_mm1(lam / pods)


def rho_mm1(rho: float) -> float:
    return rho / (1 - rho)
