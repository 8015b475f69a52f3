"""The line search of newton-cg: the loss along a line (``SoftmaxObjective.line``,
``_loss.line_derivatives``) against finite differences of the objective itself, its
invariances (hypothesis), the one-dimensional minimiser against SciPy's bounded minimiser,
and newton-cg with the search against the optimum without it."""

import numpy as np
import pytest
import scipy.optimize
import scipy.sparse as sp
from hypothesis import example, given, settings
from hypothesis import strategies as st
from test_solvers import _problem

from softmaxreg import _loss
from softmaxreg._objective import SoftmaxObjective
from softmaxreg._penalties import Penalty
from softmaxreg._solvers._line_search import MAX_STEP, STEP_TOLERANCE, minimise_on_line
from softmaxreg._solvers._result import center_classes
from softmaxreg._solvers.newton_cg import newton_cg


def _objective(kind, fit_intercept=True, C=10.0):
    X, y, sample_weight = _problem(kind)
    return SoftmaxObjective(X, y, 4, sample_weight, fit_intercept, C, Penalty("l2"))


def _point_and_step(objective, seed=0):
    rng = np.random.default_rng(seed)
    params = center_classes(0.3 * rng.standard_normal(objective.shape))
    step = center_classes(0.3 * rng.standard_normal(objective.shape))
    return params, step


@pytest.mark.parametrize("kind", ["dense", "sparse", "weighted"])
@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("float32_products", [False, True])
def test_line_derivatives_match_finite_differences(kind, fit_intercept, float32_products):
    objective = _objective(kind, fit_intercept)
    params, step = _point_and_step(objective)
    _, _, hessp = objective.loss_gradient_hessp(params)
    if float32_products:
        hessp.float32_products()
    line = objective.line(params, step, hessp)

    def along(t):
        return objective.loss(params + t * step)

    # central differences: steps that keep truncation (h^2) and rounding (eps / h, eps / h^2)
    # errors near 1e-9 relative for the slope and 1e-6 for the curvature
    h1, h2 = 1e-5, 1e-3
    rtol = 2e-4 if float32_products else 1e-5
    for t in (0.0, 0.5, 1.0, 2.5):
        first, second = line.derivatives(t)
        fd_first = (along(t + h1) - along(t - h1)) / (2 * h1)
        fd_second = (along(t + h2) - 2 * along(t) + along(t - h2)) / h2**2
        assert first == pytest.approx(fd_first, rel=rtol, abs=1e-10)
        assert second == pytest.approx(fd_second, rel=rtol)
        assert second > 0


_finite = st.floats(-5.0, 5.0, allow_nan=False, allow_infinity=False)


@settings(max_examples=40, deadline=None)
@given(
    seed=st.integers(0, 2**16),
    shift=st.lists(_finite, min_size=6, max_size=6),
    step_size=st.floats(0.0, 4.0),
)
def test_line_derivatives_ignore_per_sample_shifts(seed, shift, step_size):
    """Adding a constant per sample to the base scores or to the direction's scores (the
    same for every class) changes no probability, so neither derivative moves."""
    rng = np.random.default_rng(seed)
    K, n = 4, 6
    base = rng.normal(size=(K, n))
    direction = rng.normal(size=(K, n))
    y = rng.integers(0, K, size=n)
    weight = rng.uniform(0.1, 2.0, size=n)
    shift = np.asarray(shift)

    def derivatives(base, direction):
        label = direction[y, np.arange(n)]
        return _loss.line_derivatives(base, direction, label, weight, step_size)

    first, second = derivatives(base, direction)
    assert np.allclose(derivatives(base + shift, direction), (first, second), atol=1e-9)
    assert np.allclose(derivatives(base, direction + shift), (first, second), atol=1e-9)
    assert second >= -1e-12  # a variance under the probabilities


def _convex_line(a, b, c):
    """``phi(t) = a t^2 / 2 - b t + log(1 + e^{c t})`` and its first two derivatives."""

    def value(t):
        return 0.5 * a * t * t - b * t + np.logaddexp(0.0, c * t)

    def derivatives(t):
        sigma = 1.0 / (1.0 + np.exp(-c * t))
        return a * t - b + c * sigma, a + c * c * sigma * (1 - sigma)

    return value, derivatives


@settings(max_examples=60, deadline=None)
@given(a=st.floats(0.05, 5.0), b=st.floats(0.6, 5.0), c=st.floats(-3.0, 3.0))
@example(a=1.0, b=1.5, c=2.9999999999999996)  # slope -2e-16 at t = 0 (found by hypothesis)
def test_minimiser_lands_near_scipys(a, b, c):
    value, derivatives = _convex_line(a, b, c)
    slope = derivatives(0.0)[0]
    if slope >= 0:
        return
    reference = scipy.optimize.minimize_scalar(
        value, bounds=(0.0, MAX_STEP), method="bounded", options={"xatol": 1e-10}
    ).x
    step_size, slope_at_zero, curvature = minimise_on_line(derivatives, max_evaluations=20)
    assert (slope_at_zero, curvature) == pytest.approx(derivatives(0.0))
    assert 0 < step_size <= MAX_STEP
    assert step_size == pytest.approx(reference, rel=STEP_TOLERANCE, abs=1e-6)
    assert value(step_size) <= value(0.0)
    if slope < -1e-9:  # a slope at rounding level (b = c / 2) gives t ~ 1e-17, no decrease
        assert value(step_size) < value(0.0)


def test_minimiser_declines_a_direction_that_does_not_descend():
    value, derivatives = _convex_line(1.0, -1.0, 0.5)
    assert derivatives(0.0)[0] > 0
    assert minimise_on_line(derivatives)[0] is None


def test_minimiser_stops_at_its_longest_step():
    _, derivatives = _convex_line(1e-4, 1.0, 0.0)  # minimiser at t = 1e4
    assert minimise_on_line(derivatives, max_evaluations=20)[0] == MAX_STEP


@pytest.mark.parametrize("kind", ["dense", "sparse", "weighted", "float32"])
def test_newton_cg_with_the_line_search_reaches_the_same_optimum(kind):
    objective = _objective(kind)
    tol = 1e-6 if kind == "float32" else 1e-9  # float32 rounding: about 1e-7
    results = {
        line_search: newton_cg(
            objective, objective.initial_params(), tol=tol, line_search=line_search
        )
        for line_search in (True, False)
    }
    assert results[True].converged and results[False].converged
    rel = 1e-6 if kind == "float32" else 1e-12
    assert results[True].objective == pytest.approx(results[False].objective, rel=rel)


def test_line_search_runs_by_default_on_sparse_x_only(monkeypatch):
    calls = []
    original = SoftmaxObjective.line

    def counting(self, params, step, hessp):
        calls.append(sp.issparse(self.X))
        return original(self, params, step, hessp)

    monkeypatch.setattr(SoftmaxObjective, "line", counting)
    for kind in ("dense", "sparse"):
        objective = _objective(kind)
        newton_cg(objective, objective.initial_params(), tol=1e-8)
    assert calls and all(calls)


def test_minimiser_declines_a_slope_within_its_rounding():
    _, derivatives = _convex_line(1.0, 1.0, 0.0)  # slope -1 at t = 0
    assert minimise_on_line(derivatives, slope_noise=0.5)[0] == pytest.approx(1.0)
    assert minimise_on_line(derivatives, slope_noise=2.0)[0] is None


def test_slope_noise_is_the_rounding_of_the_steps_scores():
    """float32 scores of the step (float64 X, products on its float32 copy) round by about
    1e-7 of their size: the noise bound lies between that and the slope of a real step."""
    objective = _objective("sparse")
    params, step = _point_and_step(objective)
    _, _, hessp = objective.loss_gradient_hessp(params)
    hessp.float32_products()
    line = objective.line(params, step, hessp)
    scores = np.abs(_loss.raw_prediction(objective.X, step, True)).max(axis=1).mean()
    eps = np.finfo(np.float32).eps
    assert eps * scores <= line.slope_noise <= 100 * eps * scores
    assert abs(line.derivatives(0.0)[0]) > 1e3 * line.slope_noise
