"""Penalties: value, proximal operator and minimal-norm subgradient against brute force.

The proximal operator of ``t * Omega`` at ``v`` is the minimiser of
``0.5 * ||u - v||^2 + t * Omega(u)``; here it is checked against a direct numerical
minimisation of that function and against its optimality conditions. The minimal-norm
subgradient is checked against a search over the subdifferential.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.optimize import minimize

from softmaxreg._penalties import Penalty, min_norm_subgradient, omega, prox, value

RNG = np.random.default_rng(0)


def _omega_reference(coef, name):
    if name == "grouped":
        return sum(np.linalg.norm(coef[:, j]) for j in range(coef.shape[1]))
    return np.abs(coef).sum()


def _prox_objective(u, v, t, name):
    u = u.reshape(v.shape)
    return 0.5 * np.sum((u - v) ** 2) + t * _omega_reference(u, name)


@pytest.mark.parametrize("name", ["l1", "elasticnet", "grouped"])
@pytest.mark.parametrize("t", [0.0, 0.3, 1.5])
def test_prox_is_the_minimiser(name, t):
    v = RNG.normal(size=(3, 5))
    v[:, 1] *= 0.1  # a column that "grouped" zeroes as a whole at t = 0.3
    u = prox(v, t, name)
    best = _prox_objective(u, v, t, name)
    # Brute force: a derivative-free search from many starts never does better.
    for start in [v, np.zeros_like(v), RNG.normal(size=v.shape)]:
        found = minimize(
            _prox_objective, start.ravel(), args=(v, t, name), method="Powell",
            options={"xtol": 1e-10, "ftol": 1e-14, "maxfev": 200000},
        )
        assert best <= found.fun + 1e-9
    # Random perturbations never do better either.
    for _ in range(200):
        trial = u + 1e-3 * RNG.normal(size=u.shape)
        assert best <= _prox_objective(trial, v, t, name) + 1e-15


def test_prox_zeros_are_exact():
    v = np.array([[0.5, -0.2, 2.0], [-0.1, 0.05, -3.0]])
    u = prox(v, 0.3, "l1")
    np.testing.assert_array_equal(u == 0, np.abs(v) <= 0.3)
    np.testing.assert_allclose(u[np.abs(v) > 0.3], (v - 0.3 * np.sign(v))[np.abs(v) > 0.3])
    g = prox(v, 0.3, "grouped")
    norms = np.linalg.norm(v, axis=0)
    assert np.all(g[:, norms <= 0.3] == 0.0)
    assert np.all(g[:, norms > 0.3] != 0.0)


def test_prox_with_a_threshold_per_entry():
    """The solver's diagonal metric passes thresholds per entry (L1) or per column (grouped)."""
    v = RNG.normal(size=(3, 4))
    t = RNG.uniform(0.1, 1.0, size=(3, 4))
    u = prox(v, t, "l1")
    np.testing.assert_allclose(u, np.sign(v) * np.maximum(np.abs(v) - t, 0.0))
    t_col = RNG.uniform(0.1, 2.0, size=4)
    g = prox(v, t_col, "grouped")
    for j in range(4):
        np.testing.assert_allclose(g[:, j], prox(v[:, [j]], t_col[j], "grouped")[:, 0])


def _min_norm_reference(coef, grad, t, name, n_samples=20001):
    """Search the subdifferential of ``grad + t * dOmega(coef)`` for its smallest element."""
    out = np.empty_like(grad)
    if name == "grouped":
        for j in range(coef.shape[1]):
            norm = np.linalg.norm(coef[:, j])
            if norm > 0:
                out[:, j] = grad[:, j] + t * coef[:, j] / norm
                continue
            # s in the unit ball: sample directions and radii, keep the smallest result.
            s = RNG.normal(size=(n_samples, coef.shape[0]))
            s /= np.linalg.norm(s, axis=1, keepdims=True)
            s *= RNG.uniform(0, 1, size=(n_samples, 1)) ** (1 / coef.shape[0])
            s = np.vstack([s, -grad[:, j] / max(np.linalg.norm(grad[:, j]), t)])
            candidates = grad[:, j] + t * s
            out[:, j] = candidates[np.argmin(np.linalg.norm(candidates, axis=1))]
        return out
    s_grid = np.linspace(-1, 1, n_samples)
    for idx in np.ndindex(coef.shape):
        if coef[idx] != 0:
            out[idx] = grad[idx] + t * np.sign(coef[idx])
        else:
            candidates = grad[idx] + t * s_grid
            out[idx] = candidates[np.argmin(np.abs(candidates))]
    return out


@pytest.mark.parametrize("name", ["l1", "grouped"])
def test_min_norm_subgradient_against_search(name):
    coef = RNG.normal(size=(3, 6))
    coef[RNG.uniform(size=coef.shape) < 0.4] = 0.0
    coef[:, [1, 4]] = 0.0  # whole zero columns for "grouped"
    grad = RNG.normal(scale=0.7, size=coef.shape)
    t = 0.5
    result = min_norm_subgradient(coef, grad, t, name)
    reference = _min_norm_reference(coef, grad, t, name)
    np.testing.assert_allclose(result, reference, atol=2e-3)


def test_min_norm_subgradient_is_zero_at_a_prox_fixed_point():
    """``u = prox(u - g, t)`` exactly when ``0`` is in ``g + t dOmega(u)``."""
    for name in ("l1", "grouped"):
        v = RNG.normal(size=(3, 5))
        u = prox(v, 0.4, name)
        grad = v - u  # so that u = prox(u + grad, t) minimises 0.5||u - v||^2 + t Omega
        np.testing.assert_allclose(min_norm_subgradient(u, -grad, 0.4, name), 0.0, atol=1e-12)


def test_value_matches_the_formulas_of_the_design():
    coef = RNG.normal(size=(4, 3))
    l1 = np.abs(coef).sum()
    ridge = 0.5 * (coef**2).sum()
    group = np.linalg.norm(coef, axis=0).sum()
    assert value(coef, Penalty.from_params("l1", None)) == pytest.approx(l1)
    assert value(coef, Penalty.from_params("l2", None)) == pytest.approx(ridge)
    assert value(coef, Penalty.from_params(None, None)) == 0.0
    assert value(coef, Penalty.from_params("elasticnet", 0.3)) == pytest.approx(
        0.3 * l1 + 0.7 * ridge
    )
    assert value(coef, Penalty.from_params("grouped", 0.6)) == pytest.approx(
        0.6 * group + 0.4 * ridge
    )
    assert omega(coef, "grouped") == pytest.approx(group)
