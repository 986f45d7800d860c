"""From observations to fits and a scenario (plus the replay trace written beside it).

The scenario keeps the observed window (duration = the window, warm-up 0) and replays the
observed arrivals by default (`arrivals: replay`: a `trace:` CSV of arrival offsets, so every
per-second and per-minute count is reproduced exactly); `arrivals: parametric` writes the chosen
summary instead (steady / phases / diurnal). Service time is the fitted distribution expressed at
1 vCPU, as the scenario format defines it: for Lambda logs the observed handler time at memory M
is divided by (1 - c) + c / min(M / 1769, threads), c = cpu_bound, so the Lambda platform at the
observed memory gives back the observed handler times. Other sources are taken as 1-vCPU times.
"""

from __future__ import annotations

import gzip
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sim import defaults as D
from sim.errors import InputError
from sim.fit.fitters import (
    PERCENTILES,
    ArrivalFit,
    PowerFit,
    TimeFit,
    default_bin_s,
    fit_arrival_counts,
    fit_arrivals,
    fit_keep_alive,
    fit_power,
    fit_times,
    lambda_speed_x,
    per_bin,
)
from sim.fit.readers import ERROR, TIMEOUT, Histogram, Observed, Requests
from sim.fit.stream import ARRIVALS, BUSY, COVER


@dataclass
class Fit:
    """Everything fitted from the inputs; `scenario` is the YAML's data."""

    name: str
    inputs: list[dict[str, Any]]
    platform: str | None
    t0_epoch: float
    window_s: float
    arrivals: ArrivalFit
    service: TimeFit
    init: TimeFit | None
    power: PowerFit | None
    cpu_bound: float
    cpu_bound_source: str
    memory_mb: float | None
    timeout_s: float | None
    observed: dict[str, Any]
    keep_alive: dict[str, Any] | None
    requests: Requests | None  # the observed requests, summarised (sim.fit.readers.Requests)
    # their per-second buckets (SecondBuckets.compact: epoch seconds, channels)
    seconds: tuple[np.ndarray, np.ndarray] | None
    arrival_mode: str
    notes: list[str] = field(default_factory=list)
    scenario: dict[str, Any] = field(default_factory=dict)
    trace_file: str | None = None
    trace_kind: str | None = None  # "exact" or "per-second counts" (write_trace)

    @property
    def error_rate(self) -> float:
        """The observed share of requests whose handler failed (not timed out)."""
        return float(self.observed.get("handler_error_rate") or 0.0)

    def summary(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "inputs": self.inputs,
            "platform": self.platform,
            "window": {"start_epoch_s": self.t0_epoch, "duration_s": self.window_s},
            "arrivals": {
                "mode": self.arrival_mode,
                "trace": self.trace_kind,
                **self.arrivals.summary(),
            },
            "handler_time": self.service.summary(),
            "init_time": self.init.summary() if self.init else None,
            "cpu_bound": {"value": self.cpu_bound, "source": self.cpu_bound_source},
            "power_tuning": self.power.summary() if self.power else None,
            "memory_mb": self.memory_mb,
            "timeout_s": self.timeout_s,
            "observed": self.observed,
            "keep_alive": self.keep_alive,
            "notes": self.notes,
        }


def _merge(reqs: list[Requests]) -> Requests:
    out = reqs[0]
    for r in reqs[1:]:
        out.merge(r)
    return out


def _histogram_fit(h: Histogram) -> TimeFit:
    """Empirical percentiles from cumulative buckets, linear inside a bucket (as PromQL's
    histogram_quantile does); the +Inf bucket is capped at the highest finite bound."""
    finite = np.isfinite(h.le)
    le = h.le[finite]
    cum = h.cumulative[finite]
    total = float(h.cumulative[-1])
    if le.size == 0:
        raise InputError("a histogram needs at least one finite bucket bound")
    lo_edges = np.concatenate([[0.0], le[:-1]])
    lo_cum = np.concatenate([[0.0], cum[:-1]])

    def q(p: float) -> float:
        target = p / 100 * total
        j = int(np.searchsorted(cum, target, side="left"))
        if j >= le.size:
            return float(le[-1])
        width = cum[j] - lo_cum[j]
        frac = (target - lo_cum[j]) / width if width > 0 else 1.0
        return float(lo_edges[j] + frac * (le[j] - lo_edges[j]))

    values = [q(p) for p in PERCENTILES]
    values = list(np.maximum.accumulate(values))
    dist = {
        "dist": "empirical",
        "percentiles": dict(zip(map(float, PERCENTILES), values, strict=True)),
    }
    pct = {f"p{p:g}": v * 1e3 for p, v in zip(PERCENTILES, values, strict=True)}
    return TimeFit(round(total), pct, {}, None, "empirical", dist)


def build_fit(
    obs: list[Observed],
    *,
    name: str,
    arrivals: str = "replay",
    cpu_bound: float | None = None,
    timeout_s: float | None = None,
) -> Fit:
    reqs = [o.requests for o in obs if o.requests is not None and len(o.requests)]
    rates = [o for o in obs if o.rate is not None]
    hists = [o for o in obs if o.histogram is not None]
    powers = [o.power for o in obs if o.power is not None]
    platforms = {o.platform for o in obs if o.requests is not None and o.platform}
    inputs = [{"format": o.format, **o.tally.summary()} for o in obs]
    notes: list[str] = []
    if len(powers) > 1:
        raise InputError("give at most one Power Tuning result")
    if not reqs and not rates:
        raise InputError(
            "no arrivals: give request logs (Lambda, ALB, nginx, Envoy, k6, Azure) "
            "or a Prometheus rate series"
        )
    power = fit_power(powers[0].memory_mb, powers[0].duration_ms) if powers else None
    if cpu_bound is not None:
        c, c_src = cpu_bound, "given (--cpu-bound)"
    elif power is not None:
        c, c_src = power.cpu_bound, "fitted from the Power Tuning result"
    else:
        c, c_src = 1.0, "not measured: the scenario default 1.0 (give a Power Tuning result)"
    platform = "lambda" if "lambda" in platforms else None

    seconds = None
    keep = None
    observed: dict[str, Any] = {}
    init_fit = None
    memory = None
    merged = _merge(reqs) if reqs else None
    if merged is not None:
        req = merged
        t0 = float(math.floor(req.t_min))
        span = req.t_max - t0
        if span >= 20 * 60:  # minute bins on the clock's minutes
            t0 = math.floor(t0 / 60) * 60
            span = req.t_max - t0
        # The window ends with the last arrival (rounded up to the second): observation may have
        # stopped there, so a minute rounded up would read as a drop in the rate.
        window = max(1.0, float(math.ceil(span + 1e-6)))
        seconds = req.buckets.compact()
        bin_s = default_bin_s(window)
        arr = fit_arrival_counts(per_bin(seconds, t0, window, bin_s), window, bin_s, t0)
        times = req.times.values()
        service = None
        if times.shape[0]:
            service = fit_times(times[:, 0], req.handler_hist, req.times.seen)
        if service is None:
            if not hists:
                raise InputError("the request logs hold no handler times")
            service = _histogram_fit(hists[0].histogram)  # type: ignore[arg-type]
        n = req.n
        errors, timeouts = int(req.status_counts[ERROR]), int(req.status_counts[TIMEOUT])
        busy = seconds[1][BUSY] + np.cumsum(seconds[1][COVER])
        observed = {
            "requests": n,
            "errors": errors,
            "timeouts": timeouts,
            "error_rate": (errors + timeouts) / n,
            "handler_error_rate": errors / n,
            "cold_starts": req.cold if platform else None,
            "concurrency_mean": req.busy_s / window,
            # the time average within each second, at its highest (bounded memory: no
            # per-request sweep; the instantaneous peak is at least this)
            "concurrency_peak_1s": float(busy.max()) if busy.size else 0.0,
        }
        if platform == "lambda":
            if req.cold:
                init_fit = fit_times(req.init.values()[:, 0], req.init_hist, req.init.seen)
            reuse = [s[3] for s in req.stream_state.values()]
            keep = fit_keep_alive(seconds[1], reuse, req.unordered_streams)
            if req.memory_sizes:
                memory, _k = req.memory_sizes.most_common(1)[0]
                if len(req.memory_sizes) > 1:
                    notes.append(
                        f"several memory sizes in the logs {dict(req.memory_sizes)}; "
                        f"using the most common, {memory} MB"
                    )
            observed["billed_ms_total"] = req.billed_sum
            observed["init_billed_ms_total"] = req.init_billed_ms
            if req.used_mb.any():
                cum = np.cumsum(req.used_mb)
                tot = int(cum[-1])

                def used_at(q: float) -> float:
                    return float(np.searchsorted(cum, max(1, math.ceil(q * tot))))

                observed["max_memory_used_mb"] = {
                    "p50": used_at(0.5),
                    "p99": used_at(0.99),
                    "max": float(np.flatnonzero(req.used_mb)[-1]),
                }
    else:
        r = rates[0].rate
        assert r is not None
        t0 = float(r.t[0])
        window = float(r.t.size * r.step)
        rel = np.repeat(np.arange(r.t.size) * r.step, np.round(r.rate * r.step).astype(int))
        arr = fit_arrivals(rel + 0.5 * r.step, window, t0, bin_s=r.step)
        if not hists:
            raise InputError("a rate series gives no handler times: add histogram buckets or logs")
        service = _histogram_fit(hists[0].histogram)  # type: ignore[arg-type]
        arrivals = "replay" if arrivals == "replay" else arrivals
    if rates and reqs:
        notes.append(
            "a Prometheus rate series was given with request logs: the logs' arrivals "
            "are used; the series is not"
        )

    # Timeout: the one the logs state, else one that keeps every observed handler time.
    if timeout_s is None:
        if merged is not None and merged.timeout_after_s:
            timeout_s = merged.timeout_after_s
        elif merged is not None and math.isfinite(merged.handler_max_ms):
            longest = merged.handler_max_ms / 1e3
            timeout_s = float(min(900.0, max(D.LAMBDA_TIMEOUT_S, math.ceil(longest + 1e-9))))
            if observed.get("timeouts") and math.isfinite(merged.timeout_max_ms):
                timeout_s = float(round(merged.timeout_max_ms / 1e3, 1))
    return Fit(
        name=name,
        inputs=inputs,
        platform=platform,
        t0_epoch=t0,
        window_s=window,
        arrivals=arr,
        service=service,
        init=init_fit,
        power=power,
        cpu_bound=float(c),
        cpu_bound_source=c_src,
        memory_mb=float(memory) if memory is not None else None,
        timeout_s=timeout_s,
        observed=observed,
        keep_alive=keep,
        requests=merged,
        seconds=seconds,
        arrival_mode=arrivals,
        notes=notes,
    )


# --------------------------------------------------------------------------------------------
# Scenario


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:.6g}ms"


def _yaml_dist(d: dict[str, Any]) -> dict[str, Any]:
    """Scenario keys for a fitted distribution (times in seconds -> readable durations)."""
    kind = d["dist"]
    if kind == "lognormal":
        return {"dist": "lognormal", "mu": round(d["mu"], 6), "sigma": round(d["sigma"], 6)}
    if kind == "exponential":
        return {"dist": "exponential", "mean": _ms(d["mean"])}
    if kind == "gamma":
        return {"dist": "gamma", "mean": _ms(d["mean"]), "cv": round(d["cv"], 6)}
    if kind == "pareto":
        return {"dist": "pareto", "alpha": round(d["alpha"], 6), "scale": _ms(d["scale"])}
    pct = {float(q) if q != int(q) else int(q): _ms(v) for q, v in d["percentiles"].items()}
    return {"dist": "empirical", "percentiles": pct}


def lambda_scale(fit: Fit) -> float:
    """Handler time at the observed memory / handler time at 1 vCPU (the Lambda model's)."""
    if fit.platform != "lambda" or fit.memory_mb is None:
        return 1.0
    x = float(lambda_speed_x(np.array([fit.memory_mb]))[0])
    return (1 - fit.cpu_bound) + fit.cpu_bound * x


def arrivals_source(fit: Fit, trace_name: str | None) -> dict[str, Any]:
    if fit.arrival_mode == "replay":
        if trace_name is not None:
            return {"trace": {"file": trace_name, "column": "t"}}
        # a rate series: replay it as one phase per sample
        arr = fit.arrivals
        steps = [{"duration": arr.bin_s, "rate": float(c / arr.bin_s)} for c in arr.counts]
        return {"phases": {"steps": steps}}
    src = fit.arrivals.source()
    kind = next(iter(src))
    body = dict(src[kind])
    if kind == "diurnal":
        body = {
            "mean": float(body["mean"]),
            "amplitude": round(float(body["amplitude"]), 6),
            "period": "1d",
            "peak": f"{body['peak']:.0f}s",
        }
    return {kind: body}


def make_scenario(
    fit: Fit, trace_name: str | None, seed: int = 1, replications: int = 5
) -> dict[str, Any]:
    service = _yaml_dist(fit.service.scaled(1.0 / lambda_scale(fit)))
    lam: dict[str, Any] = {"name": "lambda", "type": "lambda"}
    if fit.memory_mb is not None:
        lam["memory"] = int(fit.memory_mb)
    else:  # not Lambda logs: 1 vCPU, where the handler time is the observed one
        lam["memory"] = int(D.LAMBDA_MB_PER_VCPU)
    if fit.timeout_s is not None:
        lam["timeout"] = f"{fit.timeout_s:g}s"
    if fit.init is not None:
        lam["init"] = _yaml_dist(fit.init.dist)
    timeout = f"{max(fit.timeout_s or 0.0, 30.0):g}s"
    what = "observed" if fit.platform == "lambda" else "default"
    return {
        "name": fit.name,
        "description": (
            f"Fitted by `sim fit` from {', '.join(Path(i['file']).name for i in fit.inputs)}: "
            f"{fit.arrivals.count} requests in {fit.window_s:g} s; Lambda with the {what} "
            "settings, and the same traffic on EKS+KEDA and Workers."
        ),
        "duration": f"{fit.window_s:g}s",
        "warmup": "0s",
        "replications": replications,
        "seed": seed,
        "workload": {
            "arrivals": [arrivals_source(fit, trace_name)],
            "service": {
                "duration": service,
                "cpu_bound": round(fit.cpu_bound, 6),
                # handler errors (timeouts are simulated by the timeout itself)
                **({"error_rate": round(err, 6)} if (err := fit.error_rate) else {}),
            },
        },
        "platforms": [
            lam,
            {
                "name": "eks-keda",
                "type": "kubernetes",
                "pod": {"concurrency": 8, "cpu": "1", "memory": "1Gi"},
                "request_timeout": timeout,
                "keda": {
                    "minReplicaCount": 1,
                    "maxReplicaCount": 50,
                    "triggers": [
                        {
                            "type": "http",
                            "metadata": {"scalingMetric": "concurrency", "targetValue": "6"},
                        }
                    ],
                },
                "cluster": {"node": "c5.xlarge", "min_nodes": 1, "max_nodes": 20},
            },
            {"name": "workers", "type": "wasm", "pricing": "cloudflare-workers"},
        ],
    }


def write_trace(fit: Fit, path: Path, seed: int = 1) -> str:
    """The arrival offsets (seconds from the window start), one per line, gzip CSV. Exact when
    the logs hold at most SAMPLE_ROWS requests; above that each second's observed count is
    placed uniformly at random inside the second (seeded), so every per-second and per-minute
    count is reproduced exactly. Returns which of the two was written."""
    req, sec = fit.requests, fit.seconds
    assert req is not None and sec is not None
    with gzip.open(path, "wt", encoding="utf-8", newline="") as fh:
        fh.write("t\n")
        if req.exact_arrival is not None:
            t = np.sort(np.frombuffer(req.exact_arrival, dtype=float)) - fit.t0_epoch
            for i in range(0, t.size, 100_000):
                fh.write("".join(f"{x:.6f}\n" for x in t[i : i + 100_000]))
            return "exact"
        rng = np.random.default_rng(np.random.SeedSequence([seed, 21]))
        at = (sec[0] - round(fit.t0_epoch)).astype(float)
        counts = sec[1][ARRIVALS].astype(np.int64)
        for lo in range(0, counts.size, 3600):
            c = counts[lo : lo + 3600]
            base = np.repeat(at[lo : lo + 3600], c)
            u = rng.random(base.size) * 0.999998  # printed to 1 us: stays in its second
            # sorted within each second: offsets of a second stay inside it
            order = np.lexsort((u, base))
            t = base[order] + u[order]
            fh.write("".join(f"{x:.6f}\n" for x in t))
        return "per-second counts"
