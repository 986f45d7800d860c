"""Every platform default in one place, each with its public source (docs/model.md lists them).

The resolved scenario in summary.json carries these values, so a reader can trace any number.
Numbers marked ASSUMPTION are ours, not measured; they are listed in docs/model.md.
"""

from __future__ import annotations

# --- AWS Lambda ---------------------------------------------------------------------------------

# Init Duration (ms) p50 / p90 / p99 per runtime at 1024 MB, x86_64: maxday/lambda-perf daily
# hello-world cold starts, aggregated over data/2026-07-23..08-22 (facts.md section 3).
LAMBDA_INIT_MS: dict[str, tuple[float, float, float]] = {
    "python3.13": (83.0, 96.1, 129.7),
    "nodejs22.x": (140.1, 156.8, 193.9),
    "java21": (238.0, 276.5, 649.0),
    "dotnet8": (251.8, 331.3, 626.7),
    "go": (49.8, 52.4, 58.9),
    "rust": (15.7, 20.0, 46.6),
    "ruby3.4": (223.7, 375.8, 455.0),
}
LAMBDA_INIT_SOURCE = "maxday/lambda-perf, data/2026-07-23..08-22, x86_64 1024 MB (facts.md s.3)"
LAMBDA_DEFAULT_RUNTIME = "python3.13"

# Init Duration excludes sandbox creation and code download, so a client sees more than it.
# ASSUMPTION: 150 ms, the gap between maxday's Python Init p50 (83 ms) and Shilkov's client-seen
# cold starts for Python/JS ("most of the time ... within 400 milliseconds"), taken at its low end.
LAMBDA_SANDBOX_OVERHEAD_S = 0.150

# SnapStart restore. ASSUMPTION: lognormal median 120 ms, p99 400 ms ("as low as sub-second
# startup", AWS docs snapstart.html; "up to 10x" faster than Java init, AWS What's New 2022-11-28).
LAMBDA_SNAPSTART_RESTORE = {"dist": "lognormal", "median": "120ms", "p99": "400ms"}

# Idle environments reclaimed "precisely 10 minutes after the last request"
# (mikhail.io/2019/08/aws-lambda-cold-starts-after-10-minutes/; Shahrad et al. ATC'20).
LAMBDA_KEEP_ALIVE_S = 600.0

# Environment lifetime cap: "Lambda terminates execution environments every few hours to allow for
# runtime updates and maintenance - even for functions that are invoked continuously"
# (docs.aws.amazon.com/lambda/latest/dg/lambda-runtime-environment.html, read 2026-12-01). AWS gives
# no number; measured: "terminating active, running instances every two hours" (Xebia, "TIL that
# AWS Lambda terminates instances preemptively", xebia.com/blog, 2020). 2 h, constant.
LAMBDA_MAX_ENVIRONMENT_LIFETIME_S = 7200.0

# Synchronous invocation rate: "Each instance of your execution environment can serve up to 10
# requests per second. In other words, the total invocation limit is 10 times your concurrency
# limit" (docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html, "Lambda API requests").
# How AWS counts a second is not documented. ASSUMPTION: fixed one-second windows of the clock.
LAMBDA_INVOCATIONS_PER_CONCURRENCY = 10.0

# SnapStart: "Java 11 and later", "Python 3.12 and later", ".NET 8 and later" managed runtimes;
# "SnapStart does not support provisioned concurrency, Amazon Elastic File System (Amazon EFS), or
# ephemeral storage greater than 512 MB" (docs.aws.amazon.com/lambda/latest/dg/snapstart.html, read
# 2026-12-01). Runtime identifier prefix -> the first supported version.
LAMBDA_SNAPSTART_RUNTIMES: dict[str, tuple[int, ...]] = {
    "java": (11,),
    "python": (3, 12),
    "dotnet": (8,),
}
LAMBDA_SNAPSTART_MAX_EPHEMERAL_MB = 512.0

LAMBDA_ACCOUNT_CONCURRENCY = 1000  # docs.aws.amazon.com/lambda/latest/dg/gettingstarted-limits.html
# "1,000 execution environment instances every 10 seconds", refilled continuously
# (docs.aws.amazon.com/lambda/latest/dg/scaling-behavior.html).
LAMBDA_SCALING_BURST = 1000
LAMBDA_SCALING_REFILL_PER_S = 100.0
LAMBDA_TIMEOUT_S = 3.0  # AWS default function timeout (max 900 s), gettingstarted-limits.md
LAMBDA_MB_PER_VCPU = 1769.0  # "At 1,769 MB, a function has the equivalent of one vCPU"
LAMBDA_MAX_VCPU = 6.0
LAMBDA_MEMORY_RANGE_MB = (128, 10240)  # "128 MB to 10,240 MB, in 1-MB increments"
LAMBDA_DEFAULT_MEMORY_MB = 128  # AWS console/CLI default for a new function

# API Gateway overhead per request. ASSUMPTION (no primary measurement in facts.md): HTTP API 5 ms,
# REST API 15 ms, constant; override with `gateway_latency`.
LAMBDA_GATEWAY_LATENCY_S = {"http": 0.005, "rest": 0.015, "none": 0.0}

# Provisioned concurrency target tracking (Application Auto Scaling):
# target 0.7 on ProvisionedConcurrencyUtilization; scale out after 3 one-minute periods above
# target, in after 15 periods below 90% of target (platforms.md; AWS docs provisioned-concurrency).
LAMBDA_PC_TARGET = 0.7
LAMBDA_PC_SCALE_OUT_PERIODS = 3
LAMBDA_PC_SCALE_IN_PERIODS = 15
LAMBDA_PC_SCALE_IN_FACTOR = 0.9
# New provisioned capacity is ready "after a minute or two of preparation" (facts.md s.2), whether
# target tracking or a scheduled action (both are Application Auto Scaling requests) asked for it.
LAMBDA_PC_READY_DELAY = {"dist": "uniform", "low": "60s", "high": "120s"}

# Client retries after 429: ASSUMPTION full-jitter exponential backoff, base 100 ms, cap 20 s
# (AWS Architecture Blog "Exponential Backoff And Jitter"; the AWS SDKs' standard retry mode).
CLIENT_BACKOFF_BASE_S = 0.1
CLIENT_BACKOFF_CAP_S = 20.0

# --- engine ---------------------------------------------------------------------------------------

# Above this many requests per (replication, platform) the per-request rows are no longer all kept:
# statistics switch to a log-binned histogram (relative error <= HISTOGRAM_REL_ERROR) and
# requests.csv.gz keeps a uniform sample.
MAX_KEPT_ROWS = 2_000_000
HISTOGRAM_REL_ERROR = 0.001
REQUESTS_CSV_MAX_ROWS = 60_000  # per platform, over all replications
# Refuse runs whose expected request count exceeds this unless --force (about 10 minutes here).
MAX_REQUESTS_WITHOUT_FORCE = 200_000_000
