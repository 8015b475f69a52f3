"""The one stopping rule of the smooth solvers, and the work counter that wraps an objective.

A smooth solver stops when its estimate of the objective's remaining decrease, the Newton
decrement ``g . H^{-1} g / 2`` (exact for newton-cholesky, from CG's model for newton-cg, from
the L-BFGS inverse-Hessian estimate for lbfgs), is at most ``tol`` times the objective, and
then takes the step that estimate belongs to. The decrement is invariant to rescaling the
features, unlike the gradient, and estimates ``F - F*``; by Newton's quadratic convergence the
step after it leaves a gap far below it. Where the data's precision cannot resolve ``tol``
(float32), the threshold is the objective's rounding instead.
"""

from __future__ import annotations

import numpy as np

# The default relative decrement: with the last Newton step taken, the gap ends at rounding
# level on the whole robustness suite (benchmarks/robustness.py), where 1e-10 left
# probabilities 1e-5 from the optimum on ill-conditioned, weighted problems.
DEFAULT_TOL = 1e-12

# The objective's relative rounding, in units of the data's machine epsilon: the rule asks for
# no decrease finer than that (float32 data: about 1e-6 of F; float64: far below any tol).
ROUNDING_EPS = 10.0


def decrement_threshold(tol, value: float, dtype) -> float:
    """The largest Newton decrement at which a solver may stop (absolute, in units of F);
    ``tol=None`` means ``DEFAULT_TOL``."""
    tol = DEFAULT_TOL if tol is None else tol
    relative = max(float(tol), ROUNDING_EPS * float(np.finfo(dtype).eps))
    return relative * max(abs(float(value)), float(np.finfo(np.float64).tiny))


class WorkCounter:
    """An objective that counts the work of its calls in passes over the data.

    One pass is a loss-and-gradient evaluation (``X W^T`` and ``R^T X``); a Hessian-vector
    product skips the exponentials and costs about 3/4 of one, a loss alone half of one, a
    full Hessian ``n (K p)^2`` multiply-adds, ``K p / 4`` passes. Every other attribute is the
    wrapped objective's.
    """

    PRODUCT = 0.75
    LOSS = 0.5

    @staticmethod
    def class_blocks_products(n_params_per_class: int) -> float:
        """The K within-class Hessian blocks in Hessian-vector products: a weighting and a
        syrk per class, n K (p^2/2 + p) multiply-adds against a product's 2 n K p and its
        elementwise work, about p / 4 + 4."""
        return n_params_per_class / 4 + 4

    @staticmethod
    def class_blocks_passes(n_params_per_class: int) -> float:
        """``class_blocks_products`` in passes."""
        return WorkCounter.PRODUCT * WorkCounter.class_blocks_products(n_params_per_class)

    def __init__(self, objective):
        self._objective = objective
        self.passes = 0.0

    def __getattr__(self, name):
        return getattr(self._objective, name)

    def loss(self, params):
        self.passes += self.LOSS
        return self._objective.loss(params)

    def loss_gradient(self, params):
        self.passes += 1.0
        return self._objective.loss_gradient(params)

    def loss_gradient_hessp(self, params):
        self.passes += 1.0
        value, gradient, hessp = self._objective.loss_gradient_hessp(params)
        return value, gradient, _CountedProduct(hessp, self)

    def hessian(self, params):
        K, p = self._objective.shape
        self.passes += max(1.0, K * p / 4.0)
        return self._objective.hessian(params)


class _CountedProduct:
    """A Hessian operator whose products are counted by a ``WorkCounter``."""

    def __init__(self, hessp, counter: WorkCounter):
        self._hessp = hessp
        self._counter = counter

    def __call__(self, direction):
        self._counter.passes += WorkCounter.PRODUCT
        return self._hessp(direction)

    def __getattr__(self, name):
        attribute = getattr(self._hessp, name)  # absent there: absent here
        if name != "class_blocks":
            return attribute

        def class_blocks():
            blocks = attribute()
            self._counter.passes += WorkCounter.class_blocks_passes(blocks.shape[1])
            return blocks

        return class_blocks
