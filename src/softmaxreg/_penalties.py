"""Penalties on the coefficient matrix ``W`` [K, d]: value, proximal operator, optimality.

The intercept is never penalised; every function here takes ``coef`` without it.

Each penalty ``R`` of DESIGN.md splits into a smooth ridge part and a non-smooth part::

    R(W) = smooth_strength * 0.5 * ||W||_F^2 + nonsmooth_strength * Omega(W)

with ``Omega = sum |W|`` ("l1", "elasticnet") or ``sum_j ||W[:, j]||_2`` ("grouped").
Solvers see the smooth part through the objective and the non-smooth part through ``prox``
and ``min_norm_subgradient``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PENALTIES = ("l2", "l1", "elasticnet", "grouped", None)


@dataclass(frozen=True)
class Penalty:
    """A penalty of DESIGN.md, split into smooth and non-smooth strengths.

    Attributes
    ----------
    name : {"l2", "l1", "elasticnet", "grouped", None}
    l1_ratio : float
        Weight of the non-smooth part (1 for "l1", 0 for "l2" and None).
    """

    name: str | None
    l1_ratio: float = 0.0

    @classmethod
    def from_params(cls, penalty: str | None, l1_ratio: float | None) -> Penalty:
        """Build from estimator parameters (already validated)."""
        if penalty == "l1":
            return cls("l1", 1.0)
        if penalty in ("elasticnet", "grouped"):
            return cls(penalty, float(l1_ratio))
        return cls(penalty, 0.0)

    @property
    def smooth_strength(self) -> float:
        """Factor of ``0.5 * ||W||^2`` in ``R``."""
        if self.name is None:
            return 0.0
        return 1.0 - self.l1_ratio

    @property
    def nonsmooth_strength(self) -> float:
        """Factor of ``Omega(W)`` in ``R``."""
        return 0.0 if self.name in (None, "l2") else self.l1_ratio

    @property
    def is_smooth(self) -> bool:
        return self.nonsmooth_strength == 0.0


def omega(coef: np.ndarray, name: str | None) -> float:
    """Non-smooth part ``Omega(W)``: ``sum |W|`` or ``sum_j ||W[:, j]||_2``."""
    if name == "grouped":
        return float(np.sqrt((coef.astype(np.float64) ** 2).sum(axis=0)).sum())
    return float(np.abs(coef).sum(dtype=np.float64))


def value(coef: np.ndarray, penalty: Penalty) -> float:
    """``R(W)`` for ``coef`` [K, d]."""
    total = 0.0
    if penalty.smooth_strength:
        total += penalty.smooth_strength * 0.5 * float((coef.astype(np.float64) ** 2).sum())
    if penalty.nonsmooth_strength:
        total += penalty.nonsmooth_strength * omega(coef, penalty.name)
    return total


def prox(coef: np.ndarray, threshold: float, name: str | None) -> np.ndarray:
    """Proximal operator of ``threshold * Omega`` (soft or group soft-thresholding).

    Parameters
    ----------
    coef : ndarray of shape (K, d)
    threshold : float >= 0
    name : {"l1", "elasticnet", "grouped"}

    Returns
    -------
    ndarray of shape (K, d); entries (or whole columns for "grouped") exactly zero where
    thresholded.
    """
    if name == "grouped":
        norms = np.sqrt((coef**2).sum(axis=0))
        with np.errstate(divide="ignore", invalid="ignore"):
            scale = np.where(norms > threshold, 1.0 - threshold / norms, 0.0)
        return coef * scale.astype(coef.dtype)
    return np.sign(coef) * np.maximum(np.abs(coef) - threshold, 0.0)


def min_norm_subgradient(
    coef: np.ndarray, smooth_gradient: np.ndarray, threshold: float, name: str | None
) -> np.ndarray:
    """Smallest element of ``smooth_gradient + threshold * dOmega(coef)``.

    Zero exactly at a minimiser: its largest absolute entry is the KKT violation used as the
    stopping criterion for non-smooth penalties.

    Parameters
    ----------
    coef, smooth_gradient : ndarray of shape (K, d)
    threshold : float
    name : {"l1", "elasticnet", "grouped"} or None

    Returns
    -------
    ndarray of shape (K, d)
    """
    if threshold == 0 or name in (None, "l2"):
        return smooth_gradient
    if name == "grouped":
        norms = np.sqrt((coef**2).sum(axis=0))
        active = norms > 0
        result = np.empty_like(smooth_gradient)
        result[:, active] = smooth_gradient[:, active] + threshold * coef[:, active] / norms[active]
        grad_norms = np.sqrt((smooth_gradient[:, ~active] ** 2).sum(axis=0))
        with np.errstate(divide="ignore", invalid="ignore"):
            shrink = np.where(grad_norms > threshold, 1.0 - threshold / grad_norms, 0.0)
        result[:, ~active] = smooth_gradient[:, ~active] * shrink
        return result
    nonzero = coef != 0
    shrunk = np.sign(smooth_gradient) * np.maximum(np.abs(smooth_gradient) - threshold, 0.0)
    return np.where(nonzero, smooth_gradient + threshold * np.sign(coef), shrunk)
