"""The quantiles sim computes itself instead of importing scipy (scipy.stats costs ~0.6 s of CPU
per process, scipy.special ~0.3 s) are scipy.stats' own values: scipy.stats is the reference."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from scipy import stats as sps

from sim.records import PERCENTILES, _binom_ppf, binom_cdf
from sim.statistics import t_ppf_975
from sim.studies.sweep import _ci_rate


@pytest.mark.parametrize("q", [p / 100 for p in PERCENTILES.values()])
def test_binomial_quantile_is_scipy_stats(q: float):
    ns = [*range(1, 400), 1000, 59_999, 60_000, 998_715, 5_000_000, 49_989_248]
    for n in ns:
        for a in (0.025, 0.975):
            assert _binom_ppf(a, n, q) == int(sps.binom.ppf(a, n, q)), (n, q, a)


def test_student_t_quantile_is_scipy_stats():
    for df in [*range(1, 60), 99, 999, 10**6]:
        assert t_ppf_975(df) == pytest.approx(sps.t.ppf(0.975, df), rel=1e-11, abs=0), df


def test_binomial_cdf_is_scipy_stats():
    for n, q in [(1, 0.5), (10, 0.01), (400, 0.99), (60_000, 0.999), (998_715, 0.5), (10**6, 3e-8)]:
        for k in sorted({0, 1, int(n * q) - 3, int(n * q), int(n * q) + 3, n - 1, n}):
            want = sps.binom.cdf(k, n, q)
            assert binom_cdf(k, n, q) == pytest.approx(want, rel=1e-12, abs=1e-300), (k, n, q)


def test_clopper_pearson_is_scipy_binomtest():
    for n in [1, 2, 3, 7, 20, 99, 1000, 123_457]:
        for k in sorted({0, 1, n // 3, n - 1, n}):
            ci = sps.binomtest(k, n).proportion_ci(0.95, method="exact")
            lo, hi = _ci_rate([(k, n)])
            # scipy root-finds the bounds (xtol 2e-12); the beta quantiles are the closed form
            assert np.allclose([lo, hi], [ci.low, ci.high], rtol=0, atol=1e-11)
            # the definition: P(X >= k | lo) = P(X <= k | hi) = 2.5%
            if k > 0:
                assert sps.binom.sf(k - 1, n, lo) == pytest.approx(0.025, rel=1e-9)
            if k < n:
                assert sps.binom.cdf(k, n, hi) == pytest.approx(0.025, rel=1e-9)


def test_a_run_a_report_and_a_sweep_do_not_import_scipy():
    code = (
        "import sys, sim.simulate, sim.statistics, sim.report, sim.studies.sweep, sim.cli.run; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'scipy'))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_price_tables_read_the_same_with_libyaml():
    """sim/pricing/tables.py parses prices.yaml with libyaml's CSafeLoader (~10x faster): the
    same data as PyYAML's pure-Python SafeLoader."""
    from importlib import resources

    import yaml

    from sim.pricing.tables import _load_yaml

    text = resources.files("sim.pricing").joinpath("prices.yaml").read_text(encoding="utf-8")
    assert _load_yaml("prices.yaml") == yaml.load(text, Loader=yaml.SafeLoader)
