"""Step length along a search direction: safeguarded Newton on the slope of a convex line.

Trust-region Newton steps on the softmax loss are often too short or too long by a large
factor far from the optimum: the curvature along the step falls (or rises) as the scores
move. The loss restricted to the step's line is cheap to differentiate once the scores of
the step are known (``SoftmaxObjective.line``), so the length is chosen there.
"""

from __future__ import annotations

import math

# stop once a Newton step on the slope changes the length by at most this fraction (0.01
# gave the same Newton iterations on digits and 20 Newsgroups, 0.2 one more on digits; a
# slope test, |phi'| <= 0.1 |phi'(0)|, stopped at t = 1 where the minimiser was at 1.29)
STEP_TOLERANCE = 0.05
MAX_EVALUATIONS = 4
MAX_STEP = 10.0


def minimise_on_line(derivatives, max_evaluations=MAX_EVALUATIONS, slope_noise=0.0):
    """A step length ``t > 0`` near the minimiser of a convex ``phi`` with ``phi'(0) < 0``.

    Parameters
    ----------
    derivatives : callable
        ``t -> (phi'(t), phi''(t))``.
    max_evaluations : int
        Evaluations after the one at ``t = 0``.
    slope_noise : float
        Rounding error of the computed slopes: a line whose slope at 0 is not below
        ``-slope_noise`` is not searched.

    Returns
    -------
    step_size : float or None
        None if the direction does not descend measurably (``phi'(0) >= -slope_noise``).
    slope, curvature : float
        ``phi'(0)`` and ``phi''(0)``.
    """
    slope, curvature = derivatives(0.0)
    if not slope < -slope_noise:
        return None, slope, curvature
    low, high = 0.0, math.inf
    step_size = 1.0
    for _ in range(max_evaluations):
        first, second = derivatives(step_size)
        if first < 0:
            low = step_size
        else:
            high = step_size
        newton = step_size - first / second if second > 0 else math.nan
        if abs(newton - step_size) <= STEP_TOLERANCE * step_size:
            return min(newton, MAX_STEP), slope, curvature
        if low < newton < min(high, MAX_STEP):
            step_size = newton
        elif math.isinf(high):
            step_size = min(2.0 * step_size, MAX_STEP)
        else:
            step_size = 0.5 * (low + high)
    return step_size, slope, curvature
