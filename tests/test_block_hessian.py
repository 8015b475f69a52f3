"""The explicit class-block Hessian of prox-newton against finite differences of the gradient."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from softmaxreg import _loss
from softmaxreg._solvers._block_hessian import block_hessian


@pytest.mark.parametrize("fit_intercept", [True, False])
@pytest.mark.parametrize("kind", ["dense", "csr", "weighted"])
def test_block_hessian_equals_finite_differences(kind, fit_intercept):
    rng = np.random.default_rng(3)
    n, d, K = 40, 5, 4
    X = rng.normal(size=(n, d)) * np.array([1.0, 10.0, 0.1, 1.0, 3.0])
    X[X < -0.5] = 0.0
    y = rng.integers(0, K, size=n)
    weights = rng.uniform(0.1, 3.0, size=n) if kind == "weighted" else None
    params = rng.normal(size=(K, d + int(fit_intercept))) * 0.3
    X_fit = sp.csr_matrix(X) if kind == "csr" else X
    H = block_hessian(X_fit, params, weights, fit_intercept)
    assert H.shape == (params.size, params.size)
    np.testing.assert_array_equal(H, H.T)
    step = 1e-6
    columns = []
    for index in range(params.size):
        e = np.zeros(params.size)
        e[index] = step
        e = e.reshape(params.shape)
        _, up = _loss.loss_gradient(X, y, params + e, weights, fit_intercept)
        _, down = _loss.loss_gradient(X, y, params - e, weights, fit_intercept)
        columns.append(((up - down) / (2 * step)).ravel())
    numeric = np.array(columns).T
    np.testing.assert_allclose(H, numeric, rtol=1e-6, atol=1e-6 * np.abs(numeric).max())
