"""`sim validate`: the real engine against results nobody here wrote (design.md section 6).

Every case is a scenario dict validated like a user's file and simulated by sim.simulate (which
calls sim.engine.run_one per replication), so what is checked is the code path `sim run` uses.
Expected values come from closed forms (queueing theory, scipy) or from bills worked by hand from
the price table; nothing is copied from the simulator's own output.

Checks and their pass rules:
- `t`: per-replication estimates (independent seeds, warm-up excluded) -> Student-t interval;
  pass if the closed form lies inside it.
- `binomial`: pooled success count -> exact (Clopper-Pearson) interval; pass if inside.
- `ks`: Kolmogorov-Smirnov distance of simulated draws from the closed-form CDF; pass if below the
  critical value (the interval shown is [0, critical value]).
- `exact`: a deterministic identity (latency = service time, a bill); pass if within `tolerance`.
Statistical intervals are simultaneous: each is built at level 1 - 0.05/m (Bonferroni over the m
statistical checks of the run), so a correct model passes the whole table for at least 95% of
seeds. One per-check 95% interval each would fail somewhere in most runs of a 15-check table.
"""

from __future__ import annotations

import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
from scipy import optimize
from scipy import stats as sps

from sim.distributions import Lognormal
from sim.engine import CHUNK_SECONDS, PlatformRun, make_workload, replication_seeds
from sim.errors import InputError
from sim.platforms.wasm_spec import WasmSpec
from sim.pricing import instance_type, price
from sim.records import OK
from sim.scenario import Scenario, validate_scenario
from sim.simulate import expected_requests, simulate

FAMILY_ALPHA = 0.05  # the whole table holds with >= 95% confidence
DEFAULT_SEED = 1
_BASE_DIR = Path(__file__).resolve().parent  # validation scenarios read no files
# Exact checks: float rounding only. A bill off by one billed millisecond at 1 GB is 1.7e-8 USD.
_USD_REL_TOL = 1e-10
_TIME_TOL_S = 1e-9

Method = Literal["t", "binomial", "ks", "exact"]


# =================================================================================================
# closed forms
# =================================================================================================


def erlang_c(c: int, a: float) -> float:
    """P(wait) in M/M/c with offered load a = lambda/mu < c (Erlang C, via Erlang B from scipy)."""
    if not 0 < a < c:
        raise ValueError(f"M/M/c needs 0 < lambda/mu < c, got a={a}, c={c}")
    b = float(sps.poisson.pmf(c, a) / sps.poisson.cdf(c, a))  # Erlang B
    return b / (1.0 - (a / c) * (1.0 - b))


def mmc_mean_wait(c: int, lam: float, mu: float) -> float:
    """Mean time in queue, FCFS M/M/c: C(c, a) / (c mu - lambda)."""
    return erlang_c(c, lam / mu) / (c * mu - lam)


def sojourn_sf(t: float, p_wait: float, theta: float, mu: float) -> float:
    """P(T > t), T = W + S, where W = 0 with probability 1 - p_wait, else Exp(theta), and the
    service S ~ Exp(mu) is independent (FCFS M/M/c, and GI/M/1 with p_wait = sigma).

    P(S + Exp(theta) > t) = e^{-mu t} (1 + mu t phi(d t)), d = theta - mu,
    phi(x) = (1 - e^{-x}) / x (phi(0) = 1), which also covers theta = mu.
    """
    x = (theta - mu) * t
    e_mu = math.exp(-mu * t)
    if abs(x) < 1e-12:
        hypo = e_mu * (1.0 + mu * t)
    elif x > 0:
        hypo = e_mu * (1.0 + mu * t * (-math.expm1(-x) / x))
    else:  # theta < mu: the same, written with e^{-theta t} so that nothing overflows
        hypo = e_mu + mu * t * math.exp(-theta * t) * (-math.expm1(x) / -x)
    return (1.0 - p_wait) * e_mu + p_wait * hypo


def sojourn_quantile(q: float, p_wait: float, theta: float, mu: float) -> float:
    """The q-quantile of that sojourn time, by inverting its CDF numerically."""
    target = 1.0 - q
    hi = 1.0 / mu
    while sojourn_sf(hi, p_wait, theta, mu) > target:
        hi *= 2.0
    return float(
        optimize.brentq(
            lambda t: sojourn_sf(t, p_wait, theta, mu) - target, 0.0, hi, xtol=1e-12, rtol=1e-12
        )
    )


def mmc_sojourn_sf(t: float, c: int, lam: float, mu: float) -> float:
    """P(T > t), FCFS M/M/c: the wait is 0 with probability 1 - C, else Exp(c mu - lambda)."""
    return sojourn_sf(t, erlang_c(c, lam / mu), c * mu - lam, mu)


def mmc_sojourn_quantile(q: float, c: int, lam: float, mu: float) -> float:
    """The q-quantile of the M/M/c sojourn time."""
    return sojourn_quantile(q, erlang_c(c, lam / mu), c * mu - lam, mu)


def ecm1_sigma(c: int, lam: float, mu: float) -> float:
    """Round robin over c one-slot pods: each pod sees every c-th Poisson(lam) arrival, Erlang-c
    interarrivals with LST A*(s) = (lam / (lam + s))^c: an E_c/M/1 queue. GI/M/1: sigma is the
    root in (0, 1) of sigma = A*(mu (1 - sigma)); P(wait) = sigma, the wait given waiting is
    Exp(mu (1 - sigma)), mean wait sigma / (mu (1 - sigma)) (Kleinrock, Queueing Systems I, 6.4)."""
    if not 0 < lam < c * mu:
        raise ValueError(f"E_c/M/1 needs 0 < lambda < c mu, got lambda={lam}, c={c}, mu={mu}")
    return float(
        optimize.brentq(
            lambda x: x - (lam / (lam + mu * (1.0 - x))) ** c, 1e-15, 1 - 1e-9, xtol=1e-14
        )
    )


def routing_wait_law(routing: str, c: int, lam: float, mu: float) -> tuple[float, float]:
    """(P(wait), theta) of the wait law W = 0 w.p. 1 - P(wait), else Exp(theta), for c one-slot
    pods, Poisson(lam) arrivals and Exp(mu) service under a routing with a closed form."""
    if routing == "ideal_fifo":  # one FIFO in front of c servers: M/M/c
        return erlang_c(c, lam / mu), c * mu - lam
    if routing == "random":  # Poisson splitting: c independent M/M/1 with rate lam / c
        return lam / (c * mu), mu - lam / c
    if routing == "round_robin":
        sigma = ecm1_sigma(c, lam, mu)
        return sigma, mu * (1.0 - sigma)
    raise ValueError(f"no closed form for routing {routing!r}")


def p2c_independent(
    c: int, lam: float, mu: float, n: int, seed: int
) -> tuple[float, float, float, float]:
    """Power of two choices (Envoy LEAST_REQUEST, choice_count 2) over c one-slot FIFO servers,
    simulated here from scratch (numpy draws, per-server departure lists; nothing from sim's
    engine or kernels): two uniform picks with replacement, the one with fewer requests present
    wins, the first on a tie. Returns (mean wait, its standard error, P(wait), its standard error)
    over n requests after n / 10 warm-up ones, standard errors from 20 batch means."""
    rng = np.random.default_rng(seed)
    warm = n // 10
    total = n + warm
    t = np.cumsum(rng.exponential(1.0 / lam, total)).tolist()
    s = rng.exponential(1.0 / mu, total).tolist()
    picks = rng.integers(0, c, (total, 2)).tolist()
    deps: list[deque[float]] = [deque() for _ in range(c)]  # departures of requests present
    waits = np.empty(total)
    for k in range(total):
        now = t[k]
        for q in deps:  # requests that left before this arrival
            while q and q[0] <= now:
                q.popleft()
        a, b = picks[k]
        j = b if len(deps[b]) < len(deps[a]) else a
        q = deps[j]
        start = q[-1] if q else now
        if start < now:
            start = now
        q.append(start + s[k])
        waits[k] = start - now
    w = waits[warm:]
    batches = np.array_split(w, 20)
    means = np.array([x.mean() for x in batches])
    probs = np.array([(x > 0).mean() for x in batches])
    return (
        float(w.mean()),
        float(means.std(ddof=1) / math.sqrt(means.size)),
        float((w > 0).mean()),
        float(probs.std(ddof=1) / math.sqrt(probs.size)),
    )


# =================================================================================================
# checks
# =================================================================================================


@dataclass
class Check:
    """One row of the validation table."""

    case: str
    quantity: str
    expected: float
    simulated: float
    method: Method
    unit: str = ""  # "s", "ms", "USD", "" (a probability or a count)
    values: list[float] = field(default_factory=list)  # t: one estimate per replication
    successes: int = 0  # binomial
    n: int = 0  # binomial trials / ks sample size
    tolerance: float = 0.0  # exact
    note: str = ""
    ci: tuple[float, float] | None = None  # filled by finalize()
    level: float | None = None
    passed: bool | None = None

    def finalize(self, alpha: float) -> None:
        """Interval at level 1 - alpha and the verdict."""
        if self.method == "exact":
            self.ci = (self.expected - self.tolerance, self.expected + self.tolerance)
            self.passed = abs(self.simulated - self.expected) <= self.tolerance
            return
        self.level = 1.0 - alpha
        if self.method == "t":
            x = np.asarray(self.values, dtype=float)
            half = float(sps.t.ppf(1 - alpha / 2, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size))
            self.ci = (float(x.mean()) - half, float(x.mean()) + half)
        elif self.method == "binomial":
            ci = sps.binomtest(self.successes, self.n).proportion_ci(1 - alpha, method="exact")
            self.ci = (float(ci.low), float(ci.high))
        elif self.method == "ks":
            self.ci = (0.0, float(sps.kstwo.ppf(1 - alpha, self.n)))
        lo, hi = self.ci
        target = self.simulated if self.method == "ks" else self.expected
        self.passed = bool(lo <= target <= hi)

    def as_dict(self) -> dict[str, Any]:
        return {
            "case": self.case,
            "quantity": self.quantity,
            "unit": self.unit,
            "method": self.method,
            "expected": self.expected,
            "simulated": self.simulated,
            "ci": list(self.ci) if self.ci else None,
            "ci_level": self.level,
            "replications": len(self.values) or None,
            "n": self.n or None,
            "tolerance": self.tolerance if self.method == "exact" else None,
            "passed": self.passed,
            "note": self.note,
        }


def t_check(case: str, quantity: str, expected: float, values: list[float], **kw: Any) -> Check:
    return Check(case, quantity, expected, float(np.mean(values)), "t", values=list(values), **kw)


def finalize(checks: list[Check], family_alpha: float = FAMILY_ALPHA) -> None:
    """Bonferroni: m statistical checks, each at level 1 - family_alpha / m."""
    m = sum(1 for c in checks if c.method != "exact")
    for c in checks:
        c.finalize(family_alpha / max(m, 1))


# =================================================================================================
# running scenarios through the engine
# =================================================================================================


@dataclass(frozen=True)
class Settings:
    full: bool = False
    seed: int = DEFAULT_SEED
    workers: int | None = None

    @property
    def reps(self) -> int:
        return 20 if self.full else 10

    @property
    def length(self) -> float:
        """Run-length multiplier of the statistical cases."""
        return 4.0 if self.full else 1.0


def scenario(name: str, data: dict[str, Any]) -> Scenario:
    return validate_scenario({"name": name, **data}, file=f"<validate {name}>", base_dir=_BASE_DIR)


def run(sc: Scenario, settings: Settings) -> list[PlatformRun]:
    """All replications of a one-platform scenario, in replication order."""
    runs = simulate(
        sc, _BASE_DIR, workers=settings.workers, expected=expected_requests(sc, _BASE_DIR)
    )
    return sorted(runs, key=lambda r: r.replication)


def _rows_after_warmup(run_: PlatformRun, warmup: float) -> dict[str, np.ndarray]:
    """The recorder's uniform row sample (all rows of a small run), warm-up rows dropped."""
    s = run_.stats.sample
    keep = (s["arrival"] >= warmup) & (s["outcome"] == OK)
    return {k: v[keep] for k, v in s.items()}


Offered = list[tuple[np.ndarray, np.ndarray]]  # per replication: arrival times, service draws


def offered(sc: Scenario) -> Offered:
    """The workload's arrivals and service draws per replication, regenerated: the workload is
    deterministic given the seed (the same draws every platform gets, common random numbers)."""
    out = []
    for seq in replication_seeds(sc.seed, sc.replications):
        chunks = list(make_workload(sc, seq, _BASE_DIR).chunks(sc.duration, CHUNK_SECONDS))
        out.append(
            (
                np.concatenate([c.arrival for c in chunks]),
                np.concatenate([c.service for c in chunks]),
            )
        )
    return out


def count_check(
    case: str, runs: list[PlatformRun], draws: Offered, label: str = "requests recorded / offered"
) -> Check:
    """Conservation: every request the workload offered is recorded once, with some outcome."""
    n_offered = sum(draws[r.replication][0].size for r in runs)
    recorded = sum(r.stats.requests_all for r in runs)
    return Check(
        case,
        label,
        1.0,
        recorded / n_offered,
        "exact",
        n=n_offered,
        note=f"{recorded:,} of {n_offered:,} (all replications)",
    )


def _max_latency_error(
    sc: Scenario, runs: list[PlatformRun], draws: Offered, with_startup: bool
) -> tuple[float, int]:
    """max |client latency - (startup) - the workload's service draw| over the sampled rows."""
    worst, n = 0.0, 0
    for r in runs:
        rows = _rows_after_warmup(r, sc.warmup)
        arr, svc = draws[r.replication]
        idx = np.searchsorted(arr, rows["arrival"])
        if not np.array_equal(arr[np.minimum(idx, arr.size - 1)], rows["arrival"]):
            raise RuntimeError("sampled rows do not match the workload's arrivals")
        latency = rows["end"] - rows["arrival"] + rows["overhead"]
        if with_startup:
            latency = latency - rows["startup"]
        err = np.abs(latency - svc[idx])
        if err.size:
            worst = max(worst, float(err.max()))
        n += err.size
    return worst, n


# =================================================================================================
# cases
# =================================================================================================

MEAN_SERVICE_S = 0.1  # M/M/c: exponential service, mean 100 ms
LOGNORMAL_SERVICE = {"dist": "lognormal", "median": "100ms", "p99": "1s"}
WASM_INSTANTIATE = {"dist": "lognormal", "median": "0.5ms", "p99": "2ms"}


def _pods_scenario(name: str, st: Settings, c: int, lam: float, warmup: float, duration: float,
                   routing: str) -> Scenario:  # fmt: skip
    return scenario(
        name,
        {
            "duration": warmup + duration * st.length,
            "warmup": warmup,
            "replications": st.reps,
            "seed": st.seed,
            "workload": {
                "arrivals": [{"steady": {"rate": lam}}],
                "service": {
                    "duration": {"dist": "exponential", "mean": MEAN_SERVICE_S},
                    "cpu_bound": 0,
                },
            },
            "platforms": [
                {
                    "name": "k8s",
                    "type": "kubernetes",
                    "replicas": c,
                    "routing": routing,
                    "pod": {"concurrency": 1, "cpu": "1"},
                    "ingress_latency": "0s",
                    "request_timeout": None,
                    "load_balancer": "none",
                }
            ],
        },
    )


_LAW = {
    "ideal_fifo": "Erlang C (M/M/c)",
    "random": "c independent M/M/1, rate lambda/c each",
    "round_robin": "E_c/M/1 per pod (GI/M/1 root sigma)",
}


def _pods(
    c: int, rho: float, warmup: float, duration: float, routing: str = "ideal_fifo"
) -> Callable[[str, Settings], list]:
    """c fixed one-slot pods, Poisson arrivals, exponential service, no ingress latency, under a
    routing with a closed form (`routing_wait_law`)."""

    def case(name: str, st: Settings) -> list[Check]:
        mu = 1.0 / MEAN_SERVICE_S
        lam = rho * c * mu
        sc = _pods_scenario(name, st, c, lam, warmup, duration, routing)
        runs = run(sc, st)
        draws = offered(sc)
        p_wait, theta = routing_wait_law(routing, c, lam, mu)
        law = _LAW[routing]
        waits = [r.stats.parts_ms["wait"]["mean"] for r in runs]
        p_waits = [float(np.mean(_rows_after_warmup(r, warmup)["wait"] > 0)) for r in runs]
        p99 = [r.stats.latency["p99"] for r in runs]
        n_rows = int(np.mean([_rows_after_warmup(r, warmup)["wait"].size for r in runs]))
        return [
            count_check(name, runs, draws),
            t_check(
                name,
                "mean wait in queue",
                p_wait / theta * 1e3,
                waits,
                unit="ms",
                note=f"{law}; lambda={lam:g}/s, E[S]={MEAN_SERVICE_S * 1e3:g} ms",
            ),
            t_check(
                name,
                "P(wait > 0)",
                p_wait,
                p_waits,
                note=f"{law}; from the recorder's uniform row sample (~{n_rows:,}/rep)",
            ),
            t_check(
                name,
                "sojourn p99",
                sojourn_quantile(0.99, p_wait, theta, mu) * 1e3,
                p99,
                unit="ms",
                note="FCFS sojourn CDF (wait law + Exp(mu) service) inverted numerically",
            ),
        ]

    return case


def _p2c(c: int, rho: float, warmup: float, duration: float) -> Callable[[str, Settings], list]:
    """least_request (power of two choices) against `p2c_independent`, an independent simulation
    10x as long as all replications together (no closed form exists for finite c; the mean-field
    JSQ(2) limit, P(queue >= k) = rho^(2^k - 1), holds only as c -> infinity)."""

    def case(name: str, st: Settings) -> list[Check]:
        mu = 1.0 / MEAN_SERVICE_S
        lam = rho * c * mu
        sc = _pods_scenario(name, st, c, lam, warmup, duration / st.length, "least_request")
        runs = run(sc, st)
        n_ref = int(10 * lam * duration * st.reps)  # its standard error: ~1/3 of the runs' own
        wq, wq_se, pw, pw_se = p2c_independent(c, lam, mu, n_ref, st.seed + 7919)
        waits = [r.stats.parts_ms["wait"]["mean"] for r in runs]
        p_waits = [float(np.mean(_rows_after_warmup(r, warmup)["wait"] > 0)) for r in runs]
        note = f"independent simulation of {n_ref:,} requests (standard error {{:.2g}})"
        return [
            t_check(
                name,
                "mean wait in queue",
                wq * 1e3,
                waits,
                unit="ms",
                note=note.format(wq_se * 1e3) + " ms",
            ),
            t_check(name, "P(wait > 0)", pw, p_waits, note=note.format(pw_se)),
        ]

    return case


def _lambda_mginf(name: str, st: Settings) -> list[Check]:
    """Warm-only Lambda (provisioned concurrency far above demand, no limits): M/G/inf."""
    rate, warmup = 50.0, 300.0
    sc = scenario(
        name,
        {
            "duration": warmup + 3600.0 * st.length,
            "warmup": warmup,
            "replications": st.reps,
            "seed": st.seed,
            "workload": {
                "arrivals": [{"steady": {"rate": rate}}],
                "service": {"duration": LOGNORMAL_SERVICE, "cpu_bound": 0},
            },
            "platforms": [
                {
                    "name": "fn",
                    "type": "lambda",
                    "provisioned_concurrency": 300,
                    "account_concurrency": 100_000,
                    "timeout": "900s",
                    "api_gateway": "none",
                }
            ],
        },
    )
    assert sc.workload.service.duration is not None
    mean_s = sc.workload.service.duration.mean()
    runs = run(sc, st)
    draws = offered(sc)
    err, n = _max_latency_error(sc, runs, draws, with_startup=False)
    return [
        count_check(name, runs, draws),
        Check(
            name,
            "max |latency - service draw|",
            0.0,
            err,
            "exact",
            unit="s",
            tolerance=_TIME_TOL_S,
            n=n,
            note=f"every sampled row ({n:,}) vs the workload draw",
        ),
        Check(
            name,
            "cold starts",
            0.0,
            float(sum(r.stats.cold_starts for r in runs)),
            "exact",
            note="all requests on provisioned environments",
        ),
        t_check(
            name,
            "mean busy environments",
            rate * mean_s,
            [r.busy_mean for r in runs],
            note=f"lambda x E[S] = {rate:g}/s x {mean_s * 1e3:.2f} ms (Little)",
        ),
        t_check(
            name,
            "mean latency",
            mean_s * 1e3,
            [r.stats.latency["mean"] for r in runs],
            unit="ms",
            note="= E[S] of lognormal(median 100 ms, p99 1 s)",
        ),
    ]


def _keep_alive(name: str, st: Settings) -> list[Check]:
    """One environment, Poisson arrivals: cold iff the gap since its release >= keep-alive.

    Gaps are exponential (memoryless), so P(cold) = exp(-rate x keep_alive). Service and init are
    1 ms each, which shifts the gap by <= 2 ms: a relative change of rate x 2 ms < 1e-5, far below
    the binomial interval.
    """
    keep_alive = 600.0
    n_target = 80_000 if st.full else 20_000
    out = []
    for rt in (0.5, 1.0, 2.0):  # rate x keep_alive
        rate = rt / keep_alive
        sc = scenario(
            f"{name}-{rt:g}",
            {
                "duration": (n_target + 50) / rate,
                "warmup": 50 / rate,
                "replications": 1,
                "seed": st.seed,
                "workload": {
                    "arrivals": [{"steady": {"rate": rate}}],
                    "service": {"duration": "1ms", "cpu_bound": 0},
                },
                "platforms": [
                    {
                        "name": "fn",
                        "type": "lambda",
                        "keep_alive": keep_alive,
                        "max_environment_lifetime": None,  # the closed form has no lifetime cap
                        "init": "1ms",
                        "sandbox_overhead": 0,
                        "timeout": "900s",
                    }
                ],
            },
        )
        (r,) = run(sc, st)
        k, n = r.stats.cold_starts, r.stats.requests
        out.append(count_check(name, [r], offered(sc), f"requests recorded / offered ({rt:g})"))
        out.append(
            Check(
                name,
                f"P(cold), rate x keep-alive = {rt:g}",
                math.exp(-rt),
                k / n,
                "binomial",
                successes=k,
                n=n,
                note=f"exp(-rate x T), T = 600 s, rate = 1/{1 / rate:g}s; n = {n:,}",
            )
        )
    return out


def _wasm_mginf(name: str, st: Settings) -> list[Check]:
    """Wasm: a fresh instance per request, nothing waits: M/G/inf with instances = in flight."""
    rate, warmup = 50.0, 300.0
    sc = scenario(
        name,
        {
            "duration": warmup + 3600.0 * st.length,
            "warmup": warmup,
            "replications": st.reps,
            "seed": st.seed,
            "workload": {
                "arrivals": [{"steady": {"rate": rate}}],
                "service": {"duration": LOGNORMAL_SERVICE, "cpu_bound": 0},
            },
            "platforms": [
                {
                    "name": "wasm",
                    "type": "wasm",
                    "instantiate": WASM_INSTANTIATE,
                    "edge_latency": "0s",
                }
            ],
        },
    )
    spec = sc.platforms[0]
    assert isinstance(spec, WasmSpec) and sc.workload.service.duration is not None
    inst = spec.instantiate
    assert isinstance(inst, Lognormal) and inst.mu is not None and inst.sigma is not None
    mean_in_flight = rate * (inst.mean() + sc.workload.service.duration.mean())
    runs = run(sc, st)
    draws = offered(sc)
    err, n = _max_latency_error(sc, runs, draws, with_startup=True)
    startups = np.concatenate([_rows_after_warmup(r, warmup)["startup"] for r in runs])
    cdf = sps.lognorm(s=inst.sigma, scale=math.exp(inst.mu)).cdf
    d = float(sps.kstest(startups, cdf).statistic)
    return [
        count_check(name, runs, draws),
        Check(
            name,
            "max |latency - startup - service draw|",
            0.0,
            err,
            "exact",
            unit="s",
            tolerance=_TIME_TOL_S,
            n=n,
            note=f"every sampled row ({n:,}); no wait",
        ),
        Check(
            name,
            "startup ~ instantiate (KS distance)",
            0.0,
            d,
            "ks",
            n=startups.size,
            note=f"lognormal(median 0.5 ms, p99 2 ms); n = {startups.size:,}",
        ),
        t_check(
            name,
            "mean instances (in flight)",
            mean_in_flight,
            [r.instances["mean"] for r in runs],
            note="lambda x (E[instantiate] + E[S])",
        ),
    ]


def lambda_day_bill() -> float:
    """By hand: 20 req/s for a day, 500 ms each at 1024 MB (= 1 GB), x86_64, INIT not billed."""
    n = 20 * 86_400
    req = price("lambda.requests")
    # 864,000 GB-s a day is 25.9M GB-s a month: inside the first duration tier (6 billion).
    return n / req.per * req.rate + n * 0.5 * 1.0 * price("lambda.duration.x86_64").rate


def workers_month_bill() -> float:
    """By hand: Workers Standard, 20M requests a month at 5 ms CPU each."""
    m_req, m_cpu = 20e6, 20e6 * 5.0
    base = price("workers.standard.base").rate
    rq, cpu = price("workers.standard.requests"), price("workers.standard.cpu")
    inc_rq = price("workers.standard.included_requests").rate
    inc_cpu = price("workers.standard.included_cpu_ms").rate
    return base + (m_req - inc_rq) / rq.per * rq.rate + (m_cpu - inc_cpu) / cpu.per * cpu.rate


def eks_30_day_bill() -> float:
    """By hand: two t3.medium nodes, an EKS control plane and two 20 GiB gp3 root volumes for
    720 hours (EBS GB-months prorated over the 730-h billing month)."""
    hourly = 2 * instance_type("t3.medium").hourly_usd + price("eks.control_plane").rate
    ebs = 2 * 20 * price("ebs.gp3").rate * 720 / price("billing.month_hours").rate
    return 30 * 24 * hourly + ebs


def _usd_check(name: str, quantity: str, expected: float, simulated: float, note: str) -> Check:
    return Check(
        name,
        quantity,
        expected,
        simulated,
        "exact",
        unit="USD",
        tolerance=_USD_REL_TOL * expected,
        note=note,
    )


def _cost_lambda(name: str, st: Settings) -> list[Check]:
    """20 req/s for a day, 500 ms, 1024 MB, cpu_bound 0, INIT not billed: a bill by hand."""
    sc = scenario(
        name,
        {
            "duration": "1d",
            "replications": 1,
            "seed": st.seed,
            "workload": {
                "arrivals": [{"steady": {"rate": "20/s", "spacing": "uniform"}}],
                "service": {"duration": "500ms", "cpu_bound": 0},
            },
            "platforms": [
                {
                    "name": "fn",
                    "type": "lambda",
                    "memory": 1024,
                    "init_billing": False,
                    "api_gateway": "none",
                }
            ],
        },
    )
    (r,) = run(sc, st)
    return [
        _usd_check(
            name,
            "bill for the day",
            lambda_day_bill(),
            r.bill.total_usd,
            f"1,728,000 x (requests rate + 0.5 s x 1 GB x "
            f"${price('lambda.duration.x86_64').rate}); prices {r.bill.price_date}",
        )
    ]


def _cost_workers(name: str, st: Settings) -> list[Check]:
    """Cloudflare Workers Standard, 20M requests a month at 5 ms CPU each."""
    sc = scenario(
        name,
        {
            "duration": "18h",
            "replications": 1,
            "seed": st.seed,  # 18 h of 20M/month = 500,000
            "month": "720h",  # the workload's "/month" is 30 days: bill on the same month
            "workload": {
                "arrivals": [{"steady": {"rate": "20M/month", "spacing": "uniform"}}],
                "service": {"duration": "5ms", "cpu_bound": 1},
            },
            "platforms": [{"name": "workers", "type": "wasm", "pricing": "cloudflare-workers"}],
        },
    )
    (r,) = run(sc, st)
    return [
        _usd_check(
            name,
            "monthly bill",
            workers_month_bill(),
            r.bill.monthly_usd,
            f"$5 + 10M x $0.30/M + 70M CPU-ms x $0.02/M; prices {r.bill.price_date}",
        )
    ]


def _cost_eks(name: str, st: Settings) -> list[Check]:
    """Two t3.medium nodes and an EKS control plane for 30 days (no load balancer)."""
    sc = scenario(
        name,
        {
            "duration": "30d",
            "replications": 1,
            "seed": st.seed,
            "workload": {
                "arrivals": [{"steady": {"rate": "1/min"}}],
                "service": {"duration": "100ms", "cpu_bound": 0},
            },
            "platforms": [
                {
                    "name": "eks",
                    "type": "kubernetes",
                    "replicas": 2,
                    "pod": {"cpu": "1", "memory": "512Mi"},
                    "load_balancer": "none",
                    "cluster": {
                        "node": "t3.medium",
                        "min_nodes": 2,
                        "max_nodes": 2,
                        "control_plane": "eks",
                    },
                }
            ],
        },
    )
    (r,) = run(sc, st)
    return [
        _usd_check(
            name,
            "bill for 30 days",
            eks_30_day_bill(),
            r.bill.total_usd,
            f"720 h x (2 x ${instance_type('t3.medium').hourly_usd} + control plane) + EBS; "
            f"prices {r.bill.price_date}",
        )
    ]


@dataclass(frozen=True)
class Case:
    name: str
    title: str
    fn: Callable[[str, Settings], list[Check]]
    fast: bool = True  # part of the default subset (else --full only)


CASES: tuple[Case, ...] = (
    Case("mmc-1-0.5", "M/M/1 on Kubernetes (1 pod), rho 0.5", _pods(1, 0.5, 100.0, 2000.0), False),
    Case("mmc-4-0.7", "ideal_fifo is M/M/c, c=4, rho 0.7", _pods(4, 0.7, 200.0, 2000.0)),
    Case("mmc-10-0.9", "ideal_fifo is M/M/c, c=10, rho 0.9", _pods(10, 0.9, 400.0, 2000.0)),
    Case(
        "mmc-20-0.95", "ideal_fifo is M/M/c, c=20, rho 0.95", _pods(20, 0.95, 1000.0, 2000.0), False
    ),
    Case(
        "routing-random-4-0.5",
        "random routing is 4 x M/M/1, rho 0.5",
        _pods(4, 0.5, 200.0, 2000.0, "random"),
    ),
    Case(
        "routing-random-4-0.8",
        "random routing is 4 x M/M/1, rho 0.8",
        _pods(4, 0.8, 400.0, 2000.0, "random"),
    ),
    Case(
        "routing-rr-4-0.5",
        "round robin is E_4/M/1 per pod, rho 0.5",
        _pods(4, 0.5, 200.0, 2000.0, "round_robin"),
    ),
    Case(
        "routing-rr-4-0.8",
        "round robin is E_4/M/1 per pod, rho 0.8",
        _pods(4, 0.8, 400.0, 2000.0, "round_robin"),
    ),
    Case(
        "routing-p2c-4-0.8",
        "least_request (p2c) vs an independent simulation, rho 0.8",
        _p2c(4, 0.8, 400.0, 1000.0),
        False,
    ),
    Case("lambda-mginf", "warm-only Lambda is M/G/inf", _lambda_mginf),
    Case("keep-alive", "Lambda keep-alive: P(cold) = exp(-rate x T)", _keep_alive),
    Case("wasm-mginf", "Wasm: an instance per request, M/G/inf", _wasm_mginf),
    Case("cost-lambda", "Lambda bill by hand", _cost_lambda),
    Case("cost-workers", "Cloudflare Workers bill by hand", _cost_workers),
    Case("cost-eks", "EKS bill by hand", _cost_eks),
)


def select(names: list[str] | tuple[str, ...], full: bool) -> list[Case]:
    """Cases by name (a prefix selects every case it starts: `mmc`, `cost`); default subset."""
    if not names:
        return [c for c in CASES if full or c.fast]
    chosen: list[Case] = []
    for want in names:
        hits = [c for c in CASES if c.name == want] or [c for c in CASES if c.name.startswith(want)]
        if not hits:
            raise InputError(
                f"unknown validation case {want!r}; cases: {', '.join(c.name for c in CASES)}",
                key="--case",
            )
        chosen.extend(c for c in hits if c not in chosen)
    return chosen


@dataclass
class Report:
    checks: list[Check]
    wall_s: dict[str, float]
    settings: Settings

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    def as_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "seed": self.settings.seed,
            "full": self.settings.full,
            "replications": self.settings.reps,
            "family_confidence": 1 - FAMILY_ALPHA,
            "wall_s": self.wall_s,
            "checks": [c.as_dict() for c in self.checks],
        }


def validate(
    names: list[str] | tuple[str, ...] = (),
    settings: Settings | None = None,
    on_case: Callable[[Case, float], None] | None = None,
) -> Report:
    """Run the selected cases (default: the fast subset) and judge every check."""
    settings = settings or Settings()
    checks: list[Check] = []
    wall: dict[str, float] = {}
    for case in select(names, settings.full):
        t0 = time.perf_counter()
        checks.extend(case.fn(case.name, settings))
        wall[case.name] = time.perf_counter() - t0
        if on_case is not None:
            on_case(case, wall[case.name])
    finalize(checks)
    return Report(checks, wall, settings)
