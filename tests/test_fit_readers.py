"""`sim fit` readers on fixtures written from the providers' documentation (tests/data/fit/);
every expected value below is computed by hand from the fixture's text."""

from __future__ import annotations

import gzip
import json
import math
import shutil
from pathlib import Path

import numpy as np
import pytest

from sim.errors import InputError
from sim.fit.readers import ERROR, OK, TIMEOUT, detect, parse_time, read

from conftest import ROOT

DATA = ROOT / "tests" / "data" / "fit"
T0 = 1709632800.0  # 2024-03-05T10:00:00Z
NGINX = (
    '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent '
    '"$http_referer" "$http_user_agent" $request_time $upstream_response_time'
)


def test_times_with_zones() -> None:
    assert parse_time("2024-03-05T10:00:00Z") == T0
    assert parse_time("2024-03-05T12:00:00+02:00") == T0
    assert parse_time("2024-03-05 10:00:00.250") == T0 + 0.25  # no zone: UTC
    assert parse_time("05/Mar/2024:11:00:02 +0100") == T0 + 2
    assert parse_time("[2016-04-15T20:17:00.310Z]") == pytest.approx(1460751420.31)
    assert parse_time("1709632800500") == T0 + 0.5  # epoch ms (CloudWatch)
    # k6 writes nanoseconds
    assert parse_time("2017-05-09T14:34:45.625742514+02:00") == pytest.approx(
        1494333285.625742514, abs=1e-6
    )
    with pytest.raises(ValueError):
        parse_time("yesterday")


@pytest.mark.parametrize(
    ("name", "fmt"),
    [
        ("lambda-text.log", "lambda"),
        ("lambda-json.log", "lambda"),
        ("lambda-events.json", "lambda-events"),
        ("lambda-insights.csv", "lambda-insights"),
        ("alb.log", "alb"),
        ("envoy.log", "envoy"),
        ("k6.json", "k6"),
        ("prometheus-rate.json", "prometheus"),
        ("power-tuning.json", "power-tuning"),
    ],
)
def test_detected_by_content(name: str, fmt: str) -> None:
    assert detect(DATA / name) == fmt


def test_lambda_text_report_lines() -> None:
    o = read(DATA / "lambda-text.log", keep_rows=True)
    assert o.platform == "lambda"
    s = o.tally.summary()
    assert s["records"] == 5 and s["malformed"] == 1
    assert s["first_malformed"][0]["line"] == 19  # the REPORT line cut after "Duration:"
    c = o.requests.columns()  # type: ignore[union-attr]
    # arrival = REPORT time - Duration - Init Duration; the +02:00 line sorts third
    assert c["arrival"] - T0 == pytest.approx(
        [0.24649 - 0.01574 - 0.13049, 5 - 0.10225, 8 - 0.25, 20.5 - 3 - 0.18, 30.01 - 0.012]
    )
    assert c["duration_ms"].tolist() == [15.74, 102.25, 250.0, 3000.0, 12.0]
    assert c["status"].tolist() == [OK, OK, OK, TIMEOUT, ERROR]
    assert np.isnan(c["init_ms"]).tolist() == [False, True, True, False, True]
    assert c["billed_ms"].tolist() == [16, 103, 250, 3000, 12]
    assert c["max_memory_mb"].tolist() == [56, 70, 71, 64, 72]
    assert c["stream"].tolist() == [0, 0, 0, 1, 0]
    assert o.requests.memory_sizes == {128: 5}  # type: ignore[union-attr]
    assert o.requests.timeout_after_s == 3.0  # type: ignore[union-attr]


def test_lambda_json_platform_report() -> None:
    o = read(DATA / "lambda-json.log", keep_rows=True)
    c = o.requests.columns()  # type: ignore[union-attr]
    assert o.tally.summary()["records"] == 3
    assert o.tally.first[0][0] == 8  # platform.report without durationMs
    assert c["arrival"] - T0 == pytest.approx([0.0, 10.0, 12.0])
    assert c["init_ms"][0] == 200 and math.isnan(c["init_ms"][1])
    assert c["status"].tolist() == [OK, OK, TIMEOUT]
    assert o.requests.memory_sizes == {512: 3}  # type: ignore[union-attr]


def test_lambda_json_aws_documented_example() -> None:
    """AWS's example platform.report event (Telemetry API schema reference): ends at
    00:01:15.000, ran 397.68 ms INIT + 693.92 ms handler."""
    o = read(DATA / "lambda-json-aws-example.log", keep_rows=True)
    assert o.format == "lambda"
    c = o.requests.columns()  # type: ignore[union-attr]
    end = parse_time("2022-10-12T00:01:15.000Z")
    assert c["arrival"][0] == pytest.approx(end - 0.69392 - 0.39768)
    assert (c["duration_ms"][0], c["billed_ms"][0], c["init_ms"][0]) == (693.92, 694, 397.68)
    assert c["max_memory_mb"][0] == 84 and c["status"].tolist() == [OK]
    assert o.requests.memory_sizes == {128: 1}  # type: ignore[union-attr]


def test_filter_log_events_out_of_order_and_streams() -> None:
    o = read(DATA / "lambda-events.json", keep_rows=True)
    c = o.requests.columns()  # type: ignore[union-attr]
    assert c["arrival"] - T0 == pytest.approx([0.0, 60.46, 900.0])
    assert c["duration_ms"].tolist() == [100, 40, 20]
    assert c["stream"].tolist() == [0, 0, 1]  # two execution environments
    assert np.isfinite(c["init_ms"]).tolist() == [True, False, True]


def test_insights_csv() -> None:
    o = read(DATA / "lambda-insights.csv", keep_rows=True)
    c = o.requests.columns()  # type: ignore[union-attr]
    assert c["arrival"] - T0 == pytest.approx([0.0, 1.0, 2.0])
    assert o.tally.first == [(4, "@timestamp is not a time: ['not-a-time']")]


def test_alb_entries() -> None:
    o = read(DATA / "alb.log", keep_rows=True)
    c = o.requests.columns()  # type: ignore[union-attr]
    created = parse_time("2018-07-02T22:22:48.364000Z")
    assert c["arrival"][:3] - created == pytest.approx([0, 0, 0])
    # target_processing_time (s -> ms); -1 = no target answered
    assert c["duration_ms"][:5] == pytest.approx([1, 48, 2, 1, 1])
    assert math.isnan(c["duration_ms"][5])
    assert c["status"].tolist() == [OK, OK, OK, OK, ERROR, ERROR]


def test_nginx_user_format() -> None:
    o = read(DATA / "nginx.log", "nginx", NGINX, keep_rows=True)
    c = o.requests.columns()  # type: ignore[union-attr]
    # logged at the end: arrival = time - $request_time
    assert c["arrival"] - T0 == pytest.approx([1 - 0.12, 2 - 0.05, 3.0, 64 - 60.001])
    # handler = $upstream_response_time (two tries summed; '-' -> $request_time)
    assert c["duration_ms"] == pytest.approx([118, 30, 0, 60000])
    assert c["status"].tolist() == [OK, OK, OK, TIMEOUT]


def test_nginx_needs_request_time() -> None:
    with pytest.raises(InputError, match=r"\$request_time"):
        read(DATA / "nginx.log", "nginx", "$remote_addr [$time_local] $status")
    with pytest.raises(InputError, match="log-format"):
        detect(DATA / "nginx.log")


def test_envoy_default_format() -> None:
    o = read(DATA / "envoy.log", keep_rows=True)
    c = o.requests.columns()  # type: ignore[union-attr]
    assert c["arrival"][0] == pytest.approx(1460751420.31)
    # x-envoy-upstream-service-time, else DURATION
    assert c["duration_ms"].tolist() == [100, 30, 15000, 1]
    assert c["status"].tolist() == [OK, OK, TIMEOUT, ERROR]


def test_k6_points() -> None:
    o = read(DATA / "k6.json", keep_rows=True)
    c = o.requests.columns()  # type: ignore[union-attr]
    end = parse_time("2017-05-09T14:34:45.239531499+02:00")
    assert c["arrival"][0] == pytest.approx(end - 0.459865729)
    assert c["duration_ms"].tolist() == [459.865729, 120.5]
    assert c["status"].tolist() == [OK, ERROR]


def test_prometheus_rate_and_histogram() -> None:
    r = read(DATA / "prometheus-rate.json").rate
    assert r is not None and r.step == 60
    assert r.rate.tolist() == [3, 3, 5, 4]  # two series summed; NaN skipped
    h = read(DATA / "prometheus-histogram.json").histogram
    assert h is not None
    assert h.le.tolist() == [0.05, 0.1, 0.25, 0.5, math.inf]
    assert h.cumulative.tolist() == [20, 60, 90, 100, 100]


def test_power_tuning_stats() -> None:
    p = read(DATA / "power-tuning.json").power
    assert p is not None
    assert p.memory_mb.tolist() == [128, 256, 512, 1024, 1536, 3008]
    assert p.duration_ms[0] == 802.3


def test_gzip_is_read_like_plain(tmp_path: Path) -> None:
    gz = tmp_path / "lambda-text.log.gz"
    with open(DATA / "lambda-text.log", "rb") as src, gzip.open(gz, "wb") as dst:
        shutil.copyfileobj(src, dst)
    a = read(DATA / "lambda-text.log", keep_rows=True).requests.columns()  # type: ignore[union-attr]
    b = read(gz, keep_rows=True).requests.columns()  # type: ignore[union-attr]
    assert np.array_equal(a["arrival"], b["arrival"])


def test_mostly_malformed_is_refused(tmp_path: Path) -> None:
    good = (DATA / "envoy.log").read_text().splitlines()[-1]
    p = tmp_path / "envoy.log"
    p.write_text(good + "\n" + '[2016-04-15T20:17:00.310Z] "GET / HTTP/1.1" x\n' * 3)
    with pytest.raises(InputError, match=r"3 of 4 lines are malformed.*line 2"):
        read(p, "envoy")


def test_json_items_across_chunk_boundaries() -> None:
    from sim.fit.io import json_items

    whole = json.loads((DATA / "lambda-events.json").read_text())["events"]
    for chunk in (1, 7, 64, 1 << 20):  # every event split across reads
        got = [v for _, v in json_items(DATA / "lambda-events.json", "events", chunk=chunk)]
        assert got == whole


def test_truncated_json_array_is_refused(tmp_path: Path) -> None:
    text = (DATA / "lambda-events.json").read_text()
    p = tmp_path / "cut.json"
    p.write_text(text[: len(text) // 2])
    with pytest.raises(InputError, match=r"truncated|not closed"):
        read(p, "lambda-events")


def test_prometheus_error_answer(tmp_path: Path) -> None:
    p = tmp_path / "err.json"
    p.write_text('{"status":"error","errorType":"bad_data","error":"parse error at char 5"}')
    with pytest.raises(InputError, match="the query failed: parse error at char 5"):
        read(p)
