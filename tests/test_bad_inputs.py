"""Hostile and mistaken input, as a corpus (issue 11): every case gets exit 2 (or the documented
code), one line per problem and no traceback, leaves everything outside its own output folder as
it was (a snapshot of the case's whole folder, the scenario's folder included, before and after),
and names the key or file it must.

Cases run in-process (click's CliRunner) so the corpus takes seconds. The data-loss cases (sim
must never replace what it did not write) and the signal cases are separate named tests at the end.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import subprocess
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from sim.cli import main

# --- scenarios the cases start from (small: a valid one runs in well under a second) ------------

HEAD = """\
name: t
duration: 10m
replications: 1
workload:
  arrivals:
    - steady: {rate: 1/s}
  service:
    duration: 50ms
"""
LAMBDA = (
    HEAD
    + """\
platforms:
  - name: fn
    type: lambda
    memory: 512
"""
)
WASM = (
    HEAD
    + """\
platforms:
  - name: edge
    type: wasm
"""
)
HPA = (
    HEAD
    + """\
platforms:
  - name: k
    type: kubernetes
    hpa: {max_replicas: 5}
"""
)
KEDA = (
    HEAD
    + """\
platforms:
  - name: k
    type: kubernetes
    keda:
      minReplicaCount: 0
      maxReplicaCount: 5
      triggers:
        - type: prometheus
          metadata: {threshold: "10", activationThreshold: "1"}
"""
)
FIXED = (
    HEAD
    + """\
platforms:
  - name: k
    type: kubernetes
    replicas: 2
"""
)


def doc(base: str, *edits: tuple[str, Any]) -> str:
    """`base` with dotted-path edits (value None deletes; platforms/arrivals by index)."""
    data = yaml.safe_load(base)
    for path, value in edits:
        parts = [int(p) if p.isdigit() else p for p in path.split(".")]
        cur = data
        for p in parts[:-1]:
            cur = cur[p]
        if value is _DELETE:
            del cur[parts[-1]]
        else:
            cur[parts[-1]] = value
    return yaml.safe_dump(data, sort_keys=False)


_DELETE = object()

SAM = """\
AWSTemplateFormatVersion: '2010-09-09'
Transform: AWS::Serverless-2016-10-31
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      MemorySize: 512
      Timeout: 10
"""
SO = """\
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: so}
spec:
  maxReplicaCount: 5
  triggers:
    - type: prometheus
      metadata: {threshold: "10"}
"""
WITH_SAM = doc(LAMBDA, ("platforms.0", {"name": "fn", "type": "lambda", "sam": {"file": "t.yaml"}}))
WITH_SO = doc(KEDA, ("platforms.0.keda", {"file": "so.yaml"}))
TRACE = doc(LAMBDA, ("workload.arrivals", [{"trace": {"file": "inv.csv", "format": "azure2019"}}]))
EMPIRICAL = doc(LAMBDA, ("workload.service.duration", {"dist": "empirical", "file": "d.csv"}))
BOMB = "".join(
    f"{c}: &{c} [{', '.join([f'*{p}'] * 10) if p else ', '.join(['1'] * 10)}]\n"
    for p, c in zip(["", *"abcdefgh"], "abcdefghi", strict=True)
)


def fifo(path: Path) -> None:
    os.mkfifo(path)


def folder(path: Path) -> None:
    path.mkdir()


def symlink_to(target: str) -> Callable[[Path], None]:
    return lambda path: path.symlink_to(target)


@dataclass
class Case:
    id: str
    files: dict[str, str | bytes | Callable[[Path], None]]
    args: list[str]
    names: tuple[str, ...]  # substrings the message must contain
    code: int = 2
    env: dict[str, str] = field(default_factory=dict)
    out: str | None = None  # the case's own output folder (changes there are allowed)
    watch_results: bool = False  # results/ holds the user's files: it must not change either


def run_case(text: str, *extra: str, names: tuple[str, ...], files=None, id: str, **kw) -> Case:
    return Case(id, {"s.yaml": text, **(files or {})}, ["run", "s.yaml", *extra], names, **kw)


def edit(id: str, base: str, *edits: tuple[str, Any], names: tuple[str, ...], **kw) -> Case:
    return run_case(doc(base, *edits), names=names, id=id, **kw)


D = _DELETE
CASES: list[Case] = [
    # --- the scenario file itself: regular, small, text, YAML --------------------------------
    Case("missing-file", {}, ["run", "nope.yaml"], ("nope.yaml", "not found")),
    Case("scenario-is-folder", {"s.yaml": folder}, ["run", "s.yaml"], ("s.yaml", "folder")),
    Case("scenario-is-fifo", {"s.yaml": fifo}, ["run", "s.yaml"], ("s.yaml", "FIFO")),
    Case("scenario-is-dev-null", {}, ["run", "/dev/null"], ("/dev/null", "device")),
    Case("scenario-is-dev-zero", {}, ["run", "/dev/zero"], ("/dev/zero", "device")),
    Case("scenario-is-proc-dir", {}, ["run", "/proc/self"], ("/proc/self", "folder")),
    Case(
        "binary-png",
        {"s.yaml": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"},
        ["run", "s.yaml"],
        ("s.yaml", "binary"),
    ),
    Case(
        "nul-in-text",
        {"s.yaml": LAMBDA.encode() + b"\x00"},
        ["run", "s.yaml"],
        ("s.yaml", "binary"),
    ),
    Case(
        "latin1-bytes",
        {"s.yaml": "name: caf\xe9\n".encode("latin-1")},
        ["run", "s.yaml"],
        ("s.yaml", "UTF-8"),
    ),
    Case(
        "garbage-20MB",
        {"s.yaml": (b"#" + bytes(range(33, 127)) + b"\n") * 220_000},
        ["run", "s.yaml"],
        ("s.yaml", "MB limit", "SIM_MAX_FILE_MB"),
    ),
    Case("empty-file", {"s.yaml": ""}, ["run", "s.yaml"], ("s.yaml", "empty")),
    Case("only-comment", {"s.yaml": "# nothing\n"}, ["run", "s.yaml"], ("s.yaml", "empty")),
    Case("top-level-list", {"s.yaml": "- a\n- b\n"}, ["run", "s.yaml"], ("s.yaml", "mapping")),
    Case("top-level-scalar", {"s.yaml": "hello\n"}, ["run", "s.yaml"], ("s.yaml", "mapping")),
    Case("unclosed-flow", {"s.yaml": "name: [a, b\n"}, ["run", "s.yaml"], ("s.yaml", "YAML")),
    Case(
        "tab-indent",
        {"s.yaml": "name: t\nworkload:\n\tarrivals: []\n"},
        ["run", "s.yaml"],
        ("s.yaml", "line 3"),
    ),
    Case(
        "two-documents",
        {"s.yaml": LAMBDA + "---\n" + LAMBDA},
        ["run", "s.yaml"],
        ("s.yaml", "YAML"),
    ),
    Case("alias-bomb", {"s.yaml": BOMB}, ["run", "s.yaml"], ("s.yaml", "SIM_MAX_YAML_NODES")),
    Case("recursive-alias", {"s.yaml": "a: &a [*a]\n"}, ["run", "s.yaml"], ("s.yaml", "recursive")),
    Case(
        "deep-nesting",
        {"s.yaml": "a: " + "[" * 5000 + "]" * 5000 + "\n"},
        ["run", "s.yaml"],
        ("s.yaml", "nested"),
    ),
    Case(
        "deep-nesting-block",
        {"s.yaml": "".join(f"{' ' * i}k{i}:\n" for i in range(150))},
        ["run", "s.yaml"],
        ("s.yaml", "nested"),
    ),
    Case(
        "python-tag",
        {"s.yaml": "name: !!python/object/apply:os.system ['true']\n"},
        ["run", "s.yaml"],
        ("s.yaml", "YAML"),
    ),
    Case(
        "size-limit-env",
        {"s.yaml": LAMBDA},
        ["run", "s.yaml"],
        ("s.yaml", "MB limit"),
        env={"SIM_MAX_FILE_MB": "0.0001"},
    ),
    Case(
        "bad-limit-env",
        {"s.yaml": LAMBDA},
        ["run", "s.yaml"],
        ("SIM_MAX_FILE_MB",),
        env={"SIM_MAX_FILE_MB": "lots"},
    ),
    # --- duplicate keys: the key and both lines ------------------------------------------------
    run_case(
        LAMBDA.replace("duration: 10m\n", "duration: 10m\nduration: 1h\n"),
        names=("duration", "lines 2 and 3"),
        id="dup-top-level",
    ),
    run_case(
        LAMBDA.replace("    memory: 512\n", "    memory: 512\n    memory: 1024\n"),
        names=("memory", "lines 12 and 13"),
        id="dup-in-platform",
    ),
    run_case(
        LAMBDA.replace("  service:\n", "  service:\n    cpu_bound: 1\n    cpu_bound: 0.5\n"),
        names=("cpu_bound", "lines 8 and 9"),
        id="dup-nested",
    ),
    run_case(
        LAMBDA + "  - name: fn\n    type: wasm\n", names=("fn", "unique"), id="dup-platform-name"
    ),
    run_case(
        KEDA.replace('{threshold: "10",', '{threshold: "10", threshold: "20",'),
        names=("threshold", "duplicate"),
        id="dup-in-flow-mapping",
    ),
    run_case(
        LAMBDA + "slo:\n  p99: 1s\n  p99: 2s\n", names=("slo.p99", "duplicate"), id="dup-in-slo"
    ),
    # --- unknown keys: did you mean, and a missing key said once with its typo ---------------
    edit(
        "typo-duration",
        LAMBDA,
        ("duraton", "1h"),
        ("duration", D),
        names=("duraton", "did you mean `duration`"),
    ),
    edit("typo-replications", LAMBDA, ("replicatons", 2), names=("did you mean `replications`",)),
    edit("typo-workload", LAMBDA, ("wrokload", {}), names=("did you mean `workload`",)),
    edit(
        "typo-rate",
        LAMBDA,
        ("workload.arrivals.0.steady", {"rat": "5/s"}),
        names=("`rat`", "did you mean `rate`"),
    ),
    edit("typo-memory", LAMBDA, ("platforms.0.memry", 512), names=("did you mean `memory`",)),
    edit(
        "typo-keep-alive",
        LAMBDA,
        ("platforms.0.keepalive", "5m"),
        names=("did you mean `keep_alive`",),
    ),
    edit(
        "typo-maxreplicacount",
        KEDA,
        ("platforms.0.keda.maxreplicacount", 3),
        names=("did you mean `maxReplicaCount`",),
    ),
    edit(
        "typo-threshold",
        KEDA,
        ("platforms.0.keda.triggers.0.metadata", {"treshold": "10"}),
        names=("`treshold`", "did you mean `threshold`"),
    ),
    edit(
        "typo-pod-concurrency",
        HPA,
        ("platforms.0.pod", {"concurency": 4}),
        names=("did you mean `concurrency`",),
    ),
    edit(
        "typo-hpa-max",
        HPA,
        ("platforms.0.hpa", {"max_replica": 4}),
        names=("did you mean `max_replicas`",),
    ),
    edit(
        "typo-cluster-node",
        FIXED,
        ("platforms.0.cluster", {"nod": "c5.xlarge"}),
        names=("did you mean `node`",),
    ),
    edit(
        "typo-wasm-instantiate",
        WASM,
        ("platforms.0.instantate", "1ms"),
        names=("did you mean `instantiate`",),
    ),
    edit("typo-slo", LAMBDA, ("slo", {"p99x": "1s"}), names=("slo.p99x",)),
    edit(
        "typo-median",
        LAMBDA,
        ("workload.service.duration", {"dist": "lognormal", "medain": "50ms", "p99": "1s"}),
        names=("did you mean `median`",),
    ),
    edit(
        "typo-source-kind",
        LAMBDA,
        ("workload.arrivals", [{"stedy": {"rate": "1/s"}}]),
        names=("stedy", "did you mean 'steady'"),
    ),
    edit(
        "typo-dist",
        LAMBDA,
        ("workload.service.duration", {"dist": "lognormel", "median": 1}),
        names=("lognormel", "did you mean 'lognormal'"),
    ),
    edit(
        "typo-platform-type",
        LAMBDA,
        ("platforms.0.type", "lamda"),
        names=("lamda", "did you mean 'lambda'"),
    ),
    edit(
        "unknown-key-no-hint", LAMBDA, ("platforms.0.zzzzqqq", 1), names=("zzzzqqq", "allowed here")
    ),
    edit("missing-platforms", LAMBDA, ("platforms", D), names=("platforms", "missing")),
    edit("missing-workload", LAMBDA, ("workload", D), names=("workload", "missing")),
    edit("missing-type", LAMBDA, ("platforms.0.type", D), names=("platforms[0]", "type")),
    # --- values: every problem at once, NaN/inf, impossible settings with their rule ---------
    edit(
        "many-problems-at-once",
        LAMBDA,
        ("duration", "soon"),
        ("replications", 0),
        ("platforms.0.memory", 64),
        names=("duration", "replications", "platforms[0].memory"),
    ),
    edit("duration-words", LAMBDA, ("duration", "ten minutes"), names=("duration",)),
    edit("duration-negative", LAMBDA, ("duration", -5), names=("duration",)),
    edit("duration-inf", LAMBDA, ("duration", float("inf")), names=("duration", "finite")),
    edit("warmup-too-long", LAMBDA, ("warmup", "1h"), names=("warmup",)),
    edit("replications-zero", LAMBDA, ("replications", 0), names=("replications",)),
    edit("replications-text", LAMBDA, ("replications", "x"), names=("replications",)),
    edit("seed-negative", LAMBDA, ("seed", -1), names=("seed",)),
    edit("memory-small", LAMBDA, ("platforms.0.memory", 64), names=("memory",)),
    edit("memory-huge", LAMBDA, ("platforms.0.memory", 20000), names=("memory",)),
    edit("memory-words", LAMBDA, ("platforms.0.memory", "lots"), names=("memory",)),
    edit("architecture", LAMBDA, ("platforms.0.architecture", "arm"), names=("architecture",)),
    edit("rate-words", LAMBDA, ("workload.arrivals.0.steady.rate", "fast"), names=("rate",)),
    edit("rate-negative", LAMBDA, ("workload.arrivals.0.steady.rate", "-1/s"), names=("rate",)),
    edit(
        "activation-nan",
        KEDA,
        ("platforms.0.keda.triggers.0.metadata.activationThreshold", "NaN"),
        names=("activationThreshold", "finite"),
    ),
    edit(
        "threshold-dot-nan",
        KEDA,
        ("platforms.0.keda.triggers.0.metadata.threshold", ".nan"),
        names=("threshold",),
    ),
    edit(
        "slowdown-inf", WASM, ("platforms.0.slowdown", float("inf")), names=("slowdown", "finite")
    ),
    edit(
        "amplitude-nan",
        LAMBDA,
        ("workload.arrivals", [{"diurnal": {"mean": "5/s", "amplitude": float("nan"), "peak": 0}}]),
        names=("amplitude", "finite"),
    ),
    edit("cpu-bound-nan", LAMBDA, ("workload.service.cpu_bound", "nan"), names=("cpu_bound",)),
    edit(
        "gamma-cv-inf",
        LAMBDA,
        ("workload.service.duration", {"dist": "gamma", "mean": "50ms", "cv": "inf"}),
        names=("cv", "finite"),
    ),
    edit(
        "lognormal-mu-overflow",
        LAMBDA,
        ("workload.service.duration", {"dist": "lognormal", "mu": 1000, "sigma": 1}),
        names=("workload.service.duration", "exp(mu"),
    ),
    edit(
        "lognormal-sigma-overflow",
        LAMBDA,
        ("workload.service.duration", {"dist": "lognormal", "mu": 0, "sigma": 40}),
        names=("exp(mu",),
    ),
    edit(
        "lognormal-p99-below-median",
        LAMBDA,
        ("workload.service.duration", {"dist": "lognormal", "median": "1s", "p99": "10ms"}),
        names=("p99",),
    ),
    edit(
        "pareto-infinite-mean",
        LAMBDA,
        ("workload.service.duration", {"dist": "pareto", "alpha": 0.5, "mean": "1s"}),
        names=("alpha",),
    ),
    edit(
        "uniform-reversed",
        LAMBDA,
        ("workload.service.duration", {"dist": "uniform", "low": "2s", "high": "1s"}),
        names=("high",),
    ),
    edit(
        "percentiles-decreasing",
        LAMBDA,
        ("workload.service.duration", {"dist": "empirical", "percentiles": {0: 2, 100: 1}}),
        names=("percentiles",),
    ),
    edit(
        "pc-above-reserved",
        LAMBDA,
        ("platforms.0.provisioned_concurrency", 20),
        ("platforms.0.reserved_concurrency", 10),
        names=("provisioned_concurrency", "reserved"),
    ),
    edit(
        "pc-above-account",
        LAMBDA,
        ("platforms.0.provisioned_concurrency", 950),
        names=("provisioned_concurrency", "account_concurrency"),
    ),
    edit(
        "pc-schedule-duplicate-time",
        LAMBDA,
        (
            "platforms.0.provisioned_concurrency",
            [{"at": "08:00", "value": 1}, {"at": "08:00", "value": 5}],
        ),
        names=("provisioned_concurrency", "08:00"),
    ),
    edit(
        "pc-schedule-above-reserved",
        LAMBDA,
        ("platforms.0.provisioned_concurrency", [{"at": "08:00", "value": 60}]),
        ("platforms.0.reserved_concurrency", 50),
        names=("provisioned_concurrency",),
    ),
    edit(
        "reserved-leaves-under-100",
        LAMBDA,
        ("platforms.0.reserved_concurrency", 950),
        names=("reserved_concurrency", "100"),
    ),
    edit(
        "target-tracking-max-below-min",
        LAMBDA,
        ("platforms.0.provisioned_concurrency", {"target": 0.7, "min": 5, "max": 2}),
        names=("max",),
    ),
    edit("timeout-over-900", LAMBDA, ("platforms.0.timeout", "20m"), names=("timeout",)),
    edit("threads-7", LAMBDA, ("platforms.0.threads", 7), names=("threads",)),
    edit("unknown-runtime", LAMBDA, ("platforms.0.runtime", "cobol"), names=("runtime",)),
    edit(
        "k8s-two-scalers",
        FIXED,
        ("platforms.0.hpa", {"max_replicas": 3}),
        names=("replicas", "hpa"),
    ),
    edit("k8s-no-scaler", FIXED, ("platforms.0.replicas", D), names=("exactly one",)),
    edit(
        "k8s-unknown-node",
        FIXED,
        ("platforms.0.cluster", {"node": "m9.huge"}),
        names=("node", "m9.huge"),
    ),
    edit(
        "k8s-min-over-max-nodes",
        FIXED,
        ("platforms.0.cluster", {"min_nodes": 5, "max_nodes": 2}),
        names=("min_nodes",),
    ),
    edit("k8s-pod-cpu-zero", FIXED, ("platforms.0.pod", {"cpu": 0}), names=("cpu",)),
    edit("keda-no-triggers", KEDA, ("platforms.0.keda.triggers", []), names=("triggers",)),
    edit(
        "keda-polling-zero",
        KEDA,
        ("platforms.0.keda.pollingInterval", 0),
        names=("pollingInterval",),
    ),
    edit("wasm-custom-without-rates", WASM, ("platforms.0.pricing", "custom"), names=("custom",)),
    edit("wasm-cpu-limit", WASM, ("platforms.0.cpu_limit", "10m"), names=("cpu_limit",)),
    edit("wasm-edge-nodes-zero", WASM, ("platforms.0.edge_nodes", 0), names=("edge_nodes",)),
    edit(
        "mmpp-one-state",
        LAMBDA,
        ("workload.arrivals", [{"mmpp": {"states": [{"rate": "1/s", "hold": "1m"}]}}]),
        names=("states",),
    ),
    edit(
        "spike-no-shape",
        LAMBDA,
        ("workload.arrivals", [{"spike": {"at": "1m", "peak": "5/s"}}]),
        names=("spike",),
    ),
    edit(
        "two-sources-one-entry",
        LAMBDA,
        ("workload.arrivals", [{"steady": {"rate": "1/s"}, "spike": {"at": 1, "peak": 1}}]),
        names=("arrivals[0]",),
    ),
    # --- control-plane periods refused up front, with the event count (--force overrides) -----
    edit(
        "timeline-step-1us",
        LAMBDA,
        ("timeline_step", "1us"),
        names=("timeline_step", "control-plane events", "--force"),
    ),
    edit(
        "keda-polling-1us",
        KEDA,
        ("duration", "1d"),
        ("platforms.0.keda.pollingInterval", "1us"),
        names=("pollingInterval", "events"),
    ),
    edit(
        "hpa-sync-1ns", HPA, ("platforms.0.hpa.sync_period", "1ns"), names=("sync_period", "events")
    ),
    edit(
        "mmpp-hold-1ns",
        LAMBDA,
        (
            "workload.arrivals",
            [
                {
                    "mmpp": {
                        "states": [{"rate": "1/s", "hold": "1ns"}, {"rate": "0/s", "hold": "1ns"}]
                    }
                }
            ],
        ),
        names=("mmpp", "events"),
    ),
    edit(
        "diurnal-period-1ns",
        LAMBDA,
        (
            "workload.arrivals",
            [{"diurnal": {"mean": "1/s", "amplitude": 0.5, "period": "1ns", "peak": 0}}],
        ),
        names=("period", "events"),
    ),
    edit(
        "batch-every-1ns",
        LAMBDA,
        ("workload.arrivals", [{"batch": {"every": "1ns", "size": 0}}]),
        names=("every", "events"),
    ),
    edit(
        "requests-1e12",
        LAMBDA,
        ("workload.arrivals.0.steady.rate", "1e12/s"),
        names=("requests", "--force"),
    ),
    edit(
        "huge-duration",
        WASM,
        ("duration", "1e12s"),
        ("workload.arrivals.0.steady.rate", 0),
        names=("duration", "events"),
    ),
    # --- the scenario's name becomes a folder name: refused, never a path ----------------------
    edit("name-dot", LAMBDA, ("name", "."), names=("name",)),
    edit("name-dotdot", LAMBDA, ("name", ".."), names=("name",)),
    edit("name-leading-dot", LAMBDA, ("name", ".hidden"), names=("name",)),
    edit("name-slash", LAMBDA, ("name", "a/b"), names=("name",)),
    edit("name-up-and-out", LAMBDA, ("name", "../../etc"), names=("name",)),
    edit("name-backslash", LAMBDA, ("name", "a\\b"), names=("name",)),
    edit("name-nul", LAMBDA, ("name", "a\x00b"), names=("name",)),
    edit("name-dash", LAMBDA, ("name", "-rf"), names=("name",)),
    edit("name-too-long", LAMBDA, ("name", "x" * 300), names=("name",)),
    edit("name-empty", LAMBDA, ("name", ""), names=("name",)),
    edit("name-number", LAMBDA, ("name", 5), names=("name",)),
    # --- bad --out values: caught before simulating ----------------------------------------------
    run_case(LAMBDA, "--out", ".", names=("--out", "did not write"), id="out-dot"),
    run_case(LAMBDA, "--out", "", names=("--out", "empty"), id="out-empty"),
    run_case(
        LAMBDA,
        "--out",
        "f.txt/x",
        files={"f.txt": "notes"},
        names=("--out", "f.txt"),
        id="out-under-file",
    ),
    run_case(
        LAMBDA,
        "--out",
        "f.txt",
        files={"f.txt": "notes"},
        names=("--out", "not a folder"),
        id="out-is-file",
    ),
    run_case(LAMBDA, "--out", "/proc/sim-out", names=("--out", "cannot write"), id="out-proc"),
    run_case(LAMBDA, "--out", "/dev/null", names=("--out", "not a folder"), id="out-dev-null"),
    run_case(
        LAMBDA,
        "--out",
        "link",
        files={"link": symlink_to(".")},
        names=("symbolic link",),
        id="out-symlink",
    ),
    run_case(
        LAMBDA,
        "--out",
        "mine",
        files={"mine/notes.md": "mine"},
        names=("--out", "notes.md", "--subfolder"),
        id="out-foreign-folder",
    ),
    run_case(LAMBDA, "--out", "..", names=("--out",), id="out-parent"),
    run_case(
        LAMBDA,
        files={"results": "a file"},
        names=("results", "is a file, not a folder"),
        id="results-root-is-a-file",
    ),
    run_case(
        LAMBDA,
        files={"results/t/thesis.tex": "mine"},
        names=("thesis.tex",),
        id="default-folder-is-foreign",
        watch_results=True,
    ),
    # --- options name themselves ---------------------------------------------------------------
    run_case(LAMBDA, "--replications", "0", names=("--replications",), id="opt-replications-0"),
    run_case(LAMBDA, "--replications", "5000", names=("--replications",), id="opt-reps-5000"),
    run_case(
        doc(LAMBDA, ("workload.arrivals.0.steady.rate", "100k/s")),
        "--replications",
        "1000",
        names=("--replications", "requests"),
        id="opt-replications-too-big",
    ),
    run_case(LAMBDA, "--seed", "-1", names=("--seed",), id="opt-seed-negative"),
    run_case(LAMBDA, "--seed", "x", names=("--seed",), id="opt-seed-text"),
    run_case(LAMBDA, "--workers", "0", names=("--workers",), id="opt-workers-0"),
    run_case(LAMBDA, "--duration", "soon", names=("--duration",), id="opt-duration-words"),
    run_case(LAMBDA, "--set", "nokey", names=("--set", "KEY=VALUE"), id="set-no-equals"),
    run_case(
        LAMBDA,
        "--set",
        "platforms.fm.memory=1024",
        names=("--set", "did you mean 'fn'"),
        id="set-unknown-name",
    ),
    run_case(
        LAMBDA,
        "--set",
        "platforms.7.memory=1024",
        names=("--set", "out of range"),
        id="set-bad-index",
    ),
    run_case(
        LAMBDA,
        "--set",
        "platforms.fn.memory=lots",
        names=("--set platforms.fn.memory",),
        id="set-bad-value",
    ),
    run_case(LAMBDA, "--set", "duration=[", names=("--set duration", "YAML"), id="set-bad-yaml"),
    run_case(
        LAMBDA,
        "--set",
        "platforms.fn.memry=1",
        names=("--set platforms.fn.memry", "memory"),
        id="set-typo",
    ),
    # --- companion files: SAM templates --------------------------------------------------------
    run_case(WITH_SAM, names=("t.yaml", "not found"), id="sam-missing"),
    run_case(WITH_SAM, files={"t.yaml": folder}, names=("t.yaml", "folder"), id="sam-folder"),
    run_case(WITH_SAM, files={"t.yaml": fifo}, names=("t.yaml", "FIFO"), id="sam-fifo"),
    run_case(
        WITH_SAM, files={"t.yaml": b"\x00\x01\x02"}, names=("t.yaml", "binary"), id="sam-binary"
    ),
    run_case(
        WITH_SAM, files={"t.yaml": "Resources: [\n"}, names=("t.yaml", "YAML"), id="sam-malformed"
    ),
    run_case(
        WITH_SAM,
        files={"t.yaml": SAM + "      MemorySize: 1024\n"},
        names=("t.yaml", "MemorySize", "lines 7 and 9"),
        id="sam-duplicate-key",
    ),
    run_case(WITH_SAM, files={"t.yaml": BOMB}, names=("t.yaml", "expands"), id="sam-alias-bomb"),
    run_case(
        WITH_SAM,
        files={"t.yaml": "AWSTemplateFormatVersion: x\n"},
        names=("t.yaml", "Resources"),
        id="sam-no-resources",
    ),
    run_case(
        WITH_SAM,
        files={"t.yaml": SAM.replace("512", "!Ref Mem")},
        names=("t.yaml", "MemorySize"),
        id="sam-intrinsic",
    ),
    run_case(
        doc(WITH_SAM, ("platforms.0.sam.function", "Nope")),
        files={"t.yaml": SAM},
        names=("t.yaml", "Nope"),
        id="sam-unknown-function",
    ),
    run_case(
        WITH_SAM,
        files={"t.yaml": SAM + "#" * 2_000_000 + "\n"},
        names=("t.yaml", "MB"),
        id="sam-too-big",
    ),
    run_case(
        WITH_SAM, files={"t.yaml": SAM.replace("512", "64")}, names=("memory",), id="sam-bad-value"
    ),
    # --- companion files: KEDA manifests -------------------------------------------------------
    run_case(WITH_SO, names=("so.yaml", "not found"), id="so-missing"),
    run_case(WITH_SO, files={"so.yaml": fifo}, names=("so.yaml", "FIFO"), id="so-fifo"),
    run_case(WITH_SO, files={"so.yaml": b"\xff\xfe\x00"}, names=("so.yaml",), id="so-binary"),
    run_case(
        WITH_SO,
        files={"so.yaml": SO.replace("keda.sh/v1alpha1", "keda.sh/v2")},
        names=("so.yaml", "apiVersion"),
        id="so-api-version",
    ),
    run_case(
        WITH_SO,
        files={"so.yaml": SO + "  maxReplicaCount: 9\n"},
        names=("so.yaml", "maxReplicaCount", "duplicate"),
        id="so-duplicate-key",
    ),
    run_case(
        WITH_SO,
        files={"so.yaml": SO.replace("maxReplicaCount", "maxreplicacount")},
        names=("so.yaml", "did you mean `maxReplicaCount`"),
        id="so-typo",
    ),
    run_case(
        WITH_SO,
        files={"so.yaml": SO.replace('"10"', '"NaN"')},
        names=("so.yaml", "threshold", "finite"),
        id="so-nan",
    ),
    run_case(
        WITH_SO,
        files={"so.yaml": SO.replace("ScaledObject\n", "Deployment\n")},
        names=("so.yaml", "kind"),
        id="so-wrong-kind",
    ),
    run_case(WITH_SO, files={"so.yaml": BOMB}, names=("so.yaml", "expands"), id="so-alias-bomb"),
    run_case(
        doc(WITH_SO, ("platforms.0.keda.file", "sub/so.yaml")),
        names=(os.sep + "sub" + os.sep + "so.yaml", "not found"),
        id="so-relative-resolved",
    ),
    # --- companion files: traces and empirical CSVs ---------------------------------------------
    run_case(TRACE, names=("inv.csv", "not found"), id="trace-missing"),
    run_case(TRACE, files={"inv.csv": fifo}, names=("inv.csv", "FIFO"), id="trace-fifo"),
    run_case(TRACE, files={"inv.csv": folder}, names=("inv.csv", "folder"), id="trace-folder"),
    run_case(
        TRACE, files={"inv.csv": b"\x00\x01garbage\xff"}, names=("inv.csv",), id="trace-garbage"
    ),
    run_case(TRACE, files={"inv.csv": "a,b\n1,2\n"}, names=("inv.csv",), id="trace-wrong-columns"),
    run_case(EMPIRICAL, names=("d.csv", "not found"), id="empirical-missing"),
    run_case(EMPIRICAL, files={"d.csv": fifo}, names=("d.csv", "FIFO"), id="empirical-fifo"),
    run_case(EMPIRICAL, files={"d.csv": "0.1\nfast\n"}, names=("d.csv",), id="empirical-garbage"),
    run_case(EMPIRICAL, files={"d.csv": "-1\n"}, names=("empirical",), id="empirical-negative"),
    # --- the other commands ----------------------------------------------------------------------
    Case(
        "sweep-out-foreign",
        {"s.yaml": LAMBDA, "mine/notes.md": "x"},
        ["sweep", "s.yaml", "--param", "platforms.fn.memory=512,1024", "--out", "mine"],
        ("--out", "did not write"),
    ),
    Case(
        "sweep-out-results-folder",
        {
            "s.yaml": LAMBDA,
            "r/summary.json": json.dumps(
                {"sim_version": "0", "resolved_scenario": {}, "platforms": {}}
            ),
        },
        ["sweep", "s.yaml", "--param", "platforms.fn.memory=512,1024", "--out", "r"],
        ("--out", "sim run"),
    ),
    Case(
        "sweep-bad-param",
        {"s.yaml": LAMBDA},
        ["sweep", "s.yaml", "--param", "nonsense"],
        ("--param",),
    ),
    Case(
        "tune-out-file",
        {"s.yaml": LAMBDA, "f": "x"},
        ["tune", "s.yaml", "--param", "memory=512,1024", "--slo", "p99<1s", "--out", "f"],
        ("--out", "not a folder"),
    ),
    Case(
        "crossover-out-dot",
        {"s.yaml": LAMBDA},
        ["crossover", "s.yaml", "--volume", "1k/month..1M/month", "--out", "."],
        ("--out",),
    ),
    Case(
        "compare-out-foreign",
        {"s.yaml": LAMBDA, "c/notes.md": "x"},
        ["compare", "s.yaml", "--out", "c"],
        ("--out", "notes.md"),
    ),
    Case("compare-missing-input", {}, ["compare", "nope.yaml"], ("nope.yaml",)),
    Case(
        "sweep-timeline-events",
        {"s.yaml": doc(LAMBDA, ("timeline_step", "1us"))},
        ["sweep", "s.yaml", "--param", "platforms.fn.memory=512,1024"],
        ("timeline_step",),
    ),
]

# --- running a case -------------------------------------------------------------------------------


def snapshot(root: Path, skip: set[Path]) -> dict[str, Any]:
    """Every entry under `root` (type, size, content hash), except under `skip`."""
    out: dict[str, Any] = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        d = Path(dirpath)
        dirnames[:] = [n for n in dirnames if (d / n) not in skip]
        for name in dirnames + filenames:
            p = d / name
            if p in skip:
                continue
            st = os.lstat(p)
            entry: Any = (stat.S_IFMT(st.st_mode), st.st_mode & 0o7777)
            if stat.S_ISREG(st.st_mode):
                entry += (st.st_size, hashlib.sha256(p.read_bytes()).hexdigest())
            elif stat.S_ISLNK(st.st_mode):
                entry += (os.readlink(p),)
            out[str(p.relative_to(root))] = entry
    return out


def build(case_dir: Path, files: dict[str, Any]) -> None:
    case_dir.mkdir(parents=True, exist_ok=True)
    for rel, content in files.items():
        p = case_dir / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        if callable(content):
            content(p)
        elif isinstance(content, bytes):
            p.write_bytes(content)
        else:
            p.write_text(content, encoding="utf-8")


def invoke(args: list[str], cwd: Path, env: dict[str, str] | None = None) -> Any:
    old = Path.cwd()
    os.chdir(cwd)
    try:
        return CliRunner().invoke(main, args, env=env or {}, catch_exceptions=True)
    finally:
        os.chdir(old)


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, tmp_path: Path) -> None:
    work = tmp_path / "case"
    build(work, case.files)
    own = set() if case.watch_results else {work / "results"}
    own |= {work / case.out} if case.out else set()
    before = snapshot(tmp_path, own)
    res = invoke(case.args, work, case.env)
    err = res.stderr
    assert res.exit_code == case.code, (case.id, res.exit_code, err, res.exception)
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
    assert "Traceback" not in res.output and "Traceback" not in err
    for name in case.names:
        assert name in err, (case.id, name, err)
    lines = err.strip().splitlines()
    assert lines and all(
        ln.startswith(("sim: error:", "Usage:", "Try ", "Error:", "")) for ln in lines
    ), err
    assert snapshot(tmp_path, own) == before, "something outside the output folder changed"


def test_corpus_is_large_and_covers_every_platform_type() -> None:
    assert len(CASES) >= 100
    assert len({c.id for c in CASES}) == len(CASES)
    texts = " ".join(str(v) for c in CASES for v in c.files.values())
    for kind in ("type: lambda", "type: wasm", "type: kubernetes", "hpa:", "keda:", "replicas:"):
        assert kind in texts


@pytest.mark.parametrize(
    ("scenario", "name", "content"),
    [
        (LAMBDA, "s.yaml", LAMBDA),
        (WITH_SAM, "t.yaml", SAM),
        (WITH_SO, "so.yaml", SO),
        (TRACE, "inv.csv", "a\n"),
        (EMPIRICAL, "d.csv", "0.1\n"),
    ],
    ids=["scenario", "sam", "scaledobject", "trace", "empirical"],
)
def test_unreadable_file_is_an_input_error(
    tmp_path: Path, monkeypatch, scenario: str, name: str, content: str
) -> None:
    """No read permission: exit 2 naming that file. Root reads everything, so the permission
    error is made real by the kernel for non-root, and simulated (os.open refuses) for root."""
    (tmp_path / "s.yaml").write_text(scenario)
    p = tmp_path / name
    p.write_text(content)
    p.chmod(0)
    if os.geteuid() == 0:
        real_open = os.open

        def deny(path, flags, *a, **k):  # type: ignore[no-untyped-def]
            if str(path).endswith(name):
                raise PermissionError(13, "Permission denied", str(path))
            return real_open(path, flags, *a, **k)

        monkeypatch.setattr(os, "open", deny)
    res = invoke(["run", "s.yaml"], tmp_path)
    assert res.exit_code == 2, res.stderr
    assert name in res.stderr and "permission denied" in res.stderr, res.stderr
    assert not (tmp_path / "results").exists()


def test_debug_messages_do_not_ask_for_debug(tmp_path: Path, monkeypatch) -> None:
    """With SIM_DEBUG=1 a failure shows the traceback and no longer says to set SIM_DEBUG."""
    (tmp_path / "s.yaml").write_text(LAMBDA)
    code = textwrap.dedent(
        """
        import sys, sim.simulate
        def boom(*a, **k):
            raise RuntimeError("kaput")
        sim.simulate.run_scenario = boom
        import sim.cli.run as r
        from sim.cli import main
        sys.argv = ["sim", "run", "s.yaml"]
        main()
        """
    )
    env = {**os.environ, "SIM_DEBUG": "1"}
    r = subprocess.run(
        [sys.executable, "-c", code],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 3, r.stderr
    assert "kaput" in r.stderr and "Traceback" in r.stderr
    assert "set SIM_DEBUG" not in r.stderr
