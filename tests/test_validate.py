"""`sim validate`: its closed forms against textbook values, its verdicts, and the runs themselves.

The closed-form helpers are checked against values worked by hand (M/M/1, M/M/2) and against
their own integrals, so a wrong formula cannot hide behind the simulator agreeing with it.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest
from click.testing import CliRunner
from scipy import integrate

from sim.cli import main
from sim.validation import cases as V

from conftest import ROOT

# --- closed forms -----------------------------------------------------------------------------


@pytest.mark.parametrize("rho", [0.1, 0.5, 0.9])
def test_erlang_c_mm1_is_rho(rho):
    assert V.erlang_c(1, rho) == pytest.approx(rho, rel=1e-12)


def test_erlang_c_mm2_by_hand():
    # M/M/2, a = 1 (rho 0.5): P0 = 1/3, C = a^2 / (2! (1 - rho)) x P0 = 1/3.
    assert V.erlang_c(2, 1.0) == pytest.approx(1 / 3, rel=1e-12)
    # mean wait = C / (c mu - lambda) = (1/3) / (2 - 1) with mu = 1.
    assert V.mmc_mean_wait(2, 1.0, 1.0) == pytest.approx(1 / 3, rel=1e-12)


def test_mm1_sojourn_is_exponential():
    lam, mu = 0.7, 1.0  # T ~ Exp(mu - lambda)
    for t in (0.0, 0.5, 3.0, 20.0):
        assert V.mmc_sojourn_sf(t, 1, lam, mu) == pytest.approx(math.exp(-(mu - lam) * t))
    assert V.mmc_sojourn_quantile(0.99, 1, lam, mu) == pytest.approx(math.log(100) / 0.3)


@pytest.mark.parametrize("c,rho", [(4, 0.7), (10, 0.9), (20, 0.95), (3, 0.2)])
def test_sojourn_sf_integrates_to_mean_sojourn(c, rho):
    # E[T] = integral of P(T > t) = Wq + 1/mu; (10, 0.9) is the theta = mu special case.
    mu = 10.0
    lam = rho * c * mu
    area, _ = integrate.quad(lambda t: V.mmc_sojourn_sf(t, c, lam, mu), 0, math.inf, limit=200)
    assert area == pytest.approx(V.mmc_mean_wait(c, lam, mu) + 1 / mu, rel=1e-8)


def test_sojourn_sf_continuous_at_theta_equal_mu():
    # c=10, rho=0.9 gives c mu - lambda = mu exactly; nearby loads must agree with it.
    at = V.mmc_sojourn_sf(0.3, 10, 9.0, 1.0)
    near = V.mmc_sojourn_sf(0.3, 10, 9.0 + 1e-7, 1.0)
    assert at == pytest.approx(near, rel=1e-6)


def test_ecm1_sigma_by_hand():
    # E_1/M/1 is M/M/1: sigma = rho.
    assert V.ecm1_sigma(1, 0.5, 1.0) == pytest.approx(0.5, rel=1e-12)
    # E_2/M/1 with lambda = 1 (two pods), mu = 1: sigma = 1 / (2 - sigma)^2, i.e.
    # (sigma - 1)(sigma^2 - 3 sigma + 1) = 0: sigma = (3 - sqrt 5) / 2.
    assert V.ecm1_sigma(2, 1.0, 1.0) == pytest.approx((3 - math.sqrt(5)) / 2, rel=1e-10)


def test_routing_wait_laws():
    # random: c M/M/1 at rate lambda / c; P(wait) = rho, mean wait = rho / (mu - lambda / c).
    p, theta = V.routing_wait_law("random", 4, 2.0, 1.0)
    assert (p, p / theta) == pytest.approx((0.5, 1.0))
    p, theta = V.routing_wait_law("round_robin", 2, 1.0, 1.0)
    assert p / theta == pytest.approx(V.ecm1_sigma(2, 1.0, 1.0) / (1 - V.ecm1_sigma(2, 1.0, 1.0)))
    p, theta = V.routing_wait_law("ideal_fifo", 2, 1.0, 1.0)
    assert p / theta == pytest.approx(1 / 3)  # M/M/2 by hand above
    # GI/M/1 sojourn: the integral of P(T > t) is the mean wait + 1/mu.
    p, theta = V.routing_wait_law("round_robin", 4, 32.0, 10.0)
    area, _ = integrate.quad(lambda t: V.sojourn_sf(t, p, theta, 10.0), 0, math.inf, limit=200)
    assert area == pytest.approx(p / theta + 0.1, rel=1e-8)


def test_p2c_independent_with_one_server_is_mm1():
    wq, se, pw, pse = V.p2c_independent(1, 0.5, 1.0, 200_000, 3)
    assert abs(wq - 1.0) < 4 * se and abs(pw - 0.5) < 4 * pse


def test_erlang_c_rejects_unstable_load():
    with pytest.raises(ValueError, match="lambda/mu < c"):
        V.erlang_c(2, 2.0)


# --- verdicts ---------------------------------------------------------------------------------


def test_t_check_interval_and_bonferroni():
    values = [1.0, 2.0, 3.0, 4.0]  # mean 2.5, sd 1.29099, t(0.975, 3) = 3.18245
    c = V.t_check("x", "q", 2.5, values)
    V.finalize([c])
    half = 3.182446305284263 * 1.2909944487358056 / 2
    assert c.ci == pytest.approx((2.5 - half, 2.5 + half))
    assert c.passed
    # Two statistical checks: each interval at 97.5%, wider than alone.
    c1, c2 = V.t_check("x", "q", 2.5, values), V.t_check("x", "q", 2.5, values)
    V.finalize([c1, c2, V.Check("x", "e", 1.0, 1.0, "exact")])
    assert c1.level == pytest.approx(0.975)
    assert c1.ci[1] - c1.ci[0] > 2 * half


def test_t_check_fails_outside():
    c = V.t_check("x", "q", 10.0, [1.0, 2.0, 3.0, 4.0])
    V.finalize([c])
    assert not c.passed


def test_binomial_and_exact_and_ks_verdicts():
    b = V.Check("x", "p", 0.5, 0.52, "binomial", successes=520, n=1000)
    e_ok = V.Check("x", "usd", 9.4, 9.4 + 1e-12, "exact", tolerance=1e-9)
    e_bad = V.Check("x", "usd", 9.4, 9.41, "exact", tolerance=1e-9)
    k = V.Check("x", "ks", 0.0, 0.001, "ks", n=10_000)
    V.finalize([b, e_ok, e_bad, k])
    assert b.passed and b.ci[0] < 0.5 < b.ci[1]
    assert e_ok.passed and not e_bad.passed
    # Two statistical checks: each at alpha 0.025; Kolmogorov's asymptotic critical value is
    # sqrt(-ln(alpha / 2) / 2) / sqrt(n) = 1.4802 / 100.
    assert k.passed and k.ci[1] == pytest.approx(0.014802, rel=0.01)


def test_case_selection():
    assert [c.name for c in V.select([], full=False)] == [c.name for c in V.CASES if c.fast]
    assert len(V.select([], full=True)) == len(V.CASES)
    assert {c.name for c in V.select(["cost"], full=False)} == {
        "cost-lambda",
        "cost-workers",
        "cost-eks",
    }
    with pytest.raises(V.InputError, match="unknown validation case"):
        V.select(["nope"], full=False)


def test_hand_computed_bills_match_todays_price_table():
    """The cost cases' expected values, read from the price table, equal the bills worked by hand:
    1,728,000 x ($0.20/M + 0.5 GB-s x $0.0000166667); $5 + 10M x $0.30/M + 70M x $0.02/M;
    720 h x (2 x $0.0416 + $0.10) + 2 x 20 GiB x $0.08 x 720/730 (gp3 root volumes, prorated on the
    730-h month) = 131.904 + 3.156164. If this fails, a price changed: update these literals and
    docs/model.md section 9.
    """
    assert V.lambda_day_bill() == pytest.approx(14.7456288, abs=1e-9)
    assert V.workers_month_bill() == pytest.approx(9.40, abs=1e-9)
    assert V.eks_30_day_bill() == pytest.approx(131.904 + 3.2 * 720 / 730, abs=1e-9)


# --- the runs -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fast_report() -> V.Report:
    return V.validate()


@pytest.mark.validation
def test_fast_subset_passes(fast_report: V.Report):
    failed = [
        f"{c.case}: {c.quantity} expected {c.expected:.8g}, simulated {c.simulated:.8g}, "
        f"interval {c.ci}"
        for c in fast_report.checks
        if not c.passed
    ]
    assert not failed, "\n".join(failed)
    assert {c.case for c in fast_report.checks} == {c.name for c in V.CASES if c.fast}
    assert len(fast_report.checks) >= 20


@pytest.mark.validation
def test_fast_subset_costs_to_the_cent(fast_report: V.Report):
    bills = {c.case: c.simulated for c in fast_report.checks if c.unit == "USD"}
    assert bills["cost-lambda"] == pytest.approx(14.7456288, abs=0.005)
    assert bills["cost-workers"] == pytest.approx(9.40, abs=0.005)
    assert bills["cost-eks"] == pytest.approx(135.06, abs=0.005)


@pytest.mark.slow
@pytest.mark.validation
def test_full_validation_passes():
    report = V.validate(settings=V.Settings(full=True))
    failed = [f"{c.case}: {c.quantity}" for c in report.checks if not c.passed]
    assert not failed, failed


# --- the command ------------------------------------------------------------------------------


def test_cli_table_and_exit_0():
    r = subprocess.run(
        [sys.executable, "-m", "sim", "validate", "--case", "cost-workers", "--case", "cost-eks"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    for text in ("case", "expected", "simulated", "95% CI", "cost-eks", "$135.0601644", "pass"):
        assert text in r.stdout
    assert "all 2 checks passed" in r.stdout


def test_cli_json():
    r = CliRunner().invoke(main, ["validate", "--case", "cost-workers", "--json"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    assert data["passed"] is True
    (check,) = data["checks"]
    assert check["expected"] == pytest.approx(9.40) and check["method"] == "exact"


def test_cli_exit_1_when_a_check_fails(monkeypatch):
    def broken(name: str, st: V.Settings) -> list[V.Check]:
        return [V.Check(name, "a bill", 1.0, 2.0, "exact", unit="USD")]

    monkeypatch.setattr(V, "CASES", (V.Case("broken", "always fails", broken),))
    r = CliRunner().invoke(main, ["validate"])
    assert r.exit_code == 1
    assert "FAIL" in r.output and "1 of 1 checks FAILED" in r.output


def test_cli_unknown_case_exit_2():
    r = CliRunner().invoke(main, ["validate", "--case", "nope"])
    assert r.exit_code == 2
    assert "unknown validation case" in r.output


def test_cli_list():
    r = CliRunner().invoke(main, ["validate", "--list"])
    assert r.exit_code == 0
    assert "mmc-10-0.9" in r.output and "(--full)" in r.output
