"""The robustness suite's fast subset (``benchmarks/robustness.py``): at default settings every
fit of a generated awkward problem ends at the exact optimum, which scikit-learn (polished by
Newton steps written in the benchmark, independent of the library) computes, with one BLAS
thread and with all of them."""

import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning
from threadpoolctl import threadpool_limits

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

import robustness  # noqa: E402

SEED = 3000
COUNT = 22  # two of each pathology
FAMILY = robustness.problems(SEED, COUNT, max_rows=4000) + robustness.real_problems()
REFERENCES = {}


def _reference(problem):
    if problem.name not in REFERENCES:
        REFERENCES[problem.name] = robustness.reference_fit(problem)
    return REFERENCES[problem.name]


def test_the_family_covers_every_pathology_and_kind():
    pathologies = {problem.tags["pathology"] for problem in FAMILY}
    assert set(robustness.PATHOLOGIES) <= pathologies
    assert any(problem.C is None for problem in FAMILY)
    assert any(problem.X.dtype == np.float32 for problem in FAMILY)
    assert any(problem.sample_weight is not None for problem in FAMILY)
    assert {int(problem.y.max()) + 1 for problem in FAMILY} >= {2, 3}


@pytest.mark.parametrize("threads", [1, None], ids=["1-thread", "all-threads"])
@pytest.mark.parametrize("problem", FAMILY, ids=[problem.name for problem in FAMILY])
def test_default_fit_is_exact(problem, threads):
    with threadpool_limits(threads), warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        (row,) = robustness.run_problem(problem, ("auto",), _reference(problem))
    _assert_exact(row, problem)


def _assert_exact(row, problem):
    """Converged to the optimum: float64 within 1e-9 in objective and 1e-6 in probabilities,
    float32 within 1e-4 in probabilities."""
    assert row["converged"]
    if problem.X.dtype == np.float32:
        assert row["dP"] <= 1e-4
    else:
        assert row["gap"] <= 1e-9
        assert row["dP"] <= 1e-6


BADLY_SCALED = [p for p in FAMILY if p.tags.get("pathology") in ("scaled", "offset")]


@pytest.mark.parametrize("problem", BADLY_SCALED, ids=[problem.name for problem in BADLY_SCALED])
def test_lbfgs_by_name_is_exact_on_rescaled_and_shifted_features(problem):
    """Preconditioned L-BFGS: columns scaled over 1e-3..1e3 or shifted by 1e3 no
    longer keep it from the optimum within its default max_iter (plain L-BFGS ran out)."""
    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        (row,) = robustness.run_problem(problem, ("lbfgs",), _reference(problem))
    _assert_exact(row, problem)


# The conditioning pathologies and the real data; the family's sparse and many-class problems
# take up to minutes with these penalties and are left to the benchmark (RESULTS.md).
CONDITIONING = ("offset", "scaled", "collinear", "constant+duplicate", "one-hot", "real")
NON_SMOOTH_FAMILY = [p for p in FAMILY if p.tags.get("pathology") in CONDITIONING]


@pytest.mark.parametrize("penalty", ["l1", "elasticnet", "grouped"])
@pytest.mark.parametrize(
    "problem", NON_SMOOTH_FAMILY, ids=[problem.name for problem in NON_SMOOTH_FAMILY]
)
def test_non_smooth_penalties_meet_their_certificate(problem, penalty):
    """prox-newton at default settings on the family: converged with no warning, the KKT
    conditions (evaluated by the benchmark from its own probabilities) within 1e-6 for
    float64 data, and float32 data within 1e-4 in probabilities of the float64 fit."""
    with threadpool_limits(1), warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        row = robustness.run_penalty(problem, penalty)
    assert row["converged"]
    if problem.X.dtype == np.float32:
        assert row["dP"] <= 1e-4
    else:
        assert row["kkt"] <= 1e-6
