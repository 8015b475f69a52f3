"""Trust-region Newton-CG: Steihaug's truncated conjugate gradient on Hessian-vector products.

Each outer iteration costs one loss+gradient pass (which also keeps the probabilities for the
Hessian-vector products) plus one Hessian-vector product per CG step; no Hessian is formed.

- Preconditioner (``_preconditioners``), rebuilt every outer iteration from the probabilities
  of that pass; the trust region is measured in the same metric. Kronecker-factored
  ``A kron G`` for dense X of moderate width (G, the feature second moment, is computed once
  per fit, or weighted by the samples' curvature and refreshed only when that has moved:
  ``weighted_feature_factor``), the Hessian diagonal otherwise. For dense X with
  ``p <= 8 K`` the exact within-class blocks of the Hessian replace the Kronecker factors
  once CG slows down (``ClassBlockPreconditioner``): on small data always, otherwise when
  they cost at most a few passes.
  When an outer iteration needed many CG steps and ``K * p`` is small, the exact Hessian of
  that iterate is factored and used instead (for in-memory dense X with many rows, an
  unbiased estimate from a curvature-weighted sample of rows,
  ``_preconditioners.sampled_hessian``), and refreshed when CG slows down again.
- Inexact Newton: CG stops when ``||r|| <= eta ||g||`` with the forcing term
  ``eta = min(0.1, sqrt(||g||))`` (superlinear convergence, few CG steps far from the optimum),
  or once ``max |r| <= ENOUGH * tol`` (the last step need not overshoot the tolerance). Under
  the class blocks the residual must also have shrunk by ``eta`` in the preconditioner's
  metric (``r.M^{-1}r <= eta^2 g.M^{-1}g``).
- On float64 NumPy X the passes run in float32 while a step is predicted to lower the
  objective by more than ``SINGLE_DECREASE`` of it, in float64 from then on (see there).
- On in-memory sparse X the step's length is then chosen along CG's direction
  (``_line_search``, on the loss restricted to that line), and the trust-region test
  compares the actual decrease with the model's at that length.
- Smooth penalties only. The softmax data fit is flat along "the same vector added to every
  class's row"; the optimum of a smooth penalty has class-centred columns, so iterates and CG
  directions are kept centred (a projection), which removes that flat direction.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from .._loss import axpy, inner
from ._line_search import minimise_on_line
from ._preconditioners import (
    ClassBlockPreconditioner,
    DiagonalPreconditioner,
    HessianPreconditioner,
    KroneckerPreconditioner,
    sampled_hessian,
    weighted_feature_factor,
)
from ._result import SolverResult, center_classes, class_mean, max_abs, report, within_rounding

KRONECKER_MAX_FEATURES = 2000
# For in-memory dense X the preconditioner's Hessian is estimated from a curvature-weighted
# sample of about max(SAMPLE_MIN_ROWS, SAMPLE_ROWS_PER_PARAM * K * p) rows (all rows when
# there are fewer); it is built, and refreshed, once an outer iteration needed more CG steps
# than max(SLOW_CG_STEPS, SAMPLED_SWITCH * its cost in passes). Measured (one thread, CPU
# time): letter 0.36 -> 0.26 s with 66 -> 45 CG steps; covertype and digits unchanged (few
# slow iterations; digits has fewer rows than the sample, so the exact rule applies).
SAMPLE_ROWS_PER_PARAM = 5
SAMPLE_MIN_ROWS = 1000
SAMPLED_SWITCH = 0.5
# Switch to (and refresh) the exact-Hessian preconditioner when an outer iteration needed
# more CG steps than this and the Hessian has at most HESSIAN_MAX_PARAMS rows.
SLOW_CG_STEPS = 8
HESSIAN_MAX_PARAMS = 1500
# The exact Hessian from all rows costs n (K p)^2 multiply-adds in BLAS-3 against 2 n K p for
# a pass: measured K*p/13 to K*p/29 passes (one thread; 1,797 x 64, K=10: 40 ms, 42 passes;
# 900 x 21, K=5: 7; 3,000 x 99, K=10: 74). Priced at K*p/40 before, it was formed in digits
# fits at C = 5, 10 and 30 and made them slower: two fits (C=5 and 10) 203 -> 145 ms, median
# of 10 interleaved runs, with the same Newton steps; digits' 5-fold CV over 9 C unchanged
# (0.58 and 0.59 s).
PARAMS_PER_HESSIAN_PASS = 15.0

# "class-block" (dense NumPy X with p <= 8 K): once a Newton step needed more than
# CLASS_BLOCK_AFTER CG steps, the Kronecker factors give way to the exact within-class blocks
# of the Hessian (``ClassBlockPreconditioner``, rows whose weight for a class is below
# CLASS_BLOCK_THRESHOLD of its largest left out), rebuilt only after a step that needed more
# than CLASS_BLOCK_REBUILD. Near digits' optimum the Kronecker-preconditioned Hessian has
# condition number ~140 and the class-block one 7-8 (CG steps 15/19/26 -> 4/5/7 at the same
# iterates); the fit 56 -> 43 ms (81 -> 45 products, 7 -> 8 Newton steps), digits' 5-fold CV
# over 9 C 0.52 -> 0.45 s, 5,000 x 20, K=50 199 -> 128 ms (medians of interleaved runs, one
# thread). Beyond small data (``_small_data``: there every product is cheap and the blocks
# always pay) they are built only when the rows they need, times p^2, cost at most
# CLASS_BLOCK_MAX_PASSES passes (2 n K p each): at the first build 3.7 passes on letter and
# 5.1 on 10,000 x 40, K=30, which they speed up (0.37 -> 0.31 s, 0.27 -> 0.17 s), against
# 11.6 on 50,000 x 50, K=100 and 23.6 on covertype, which they slowed down when built anyway
# (1.6 -> 2.1 s; 1.2 -> 2.4 s: 15 -> 44 Newton steps, far from the optimum their metric made a
# poor trust region on this one-hot data).
CLASS_BLOCK_AFTER = 4
# ... and, the first time, more than CLASS_BLOCK_SHARE of their price in products (a
# product costs 3/4 of a pass): where a block row costs much next to a product (digits,
# p = 65 against K = 10: the first blocks, from 5,942 rows, cost 14 products) CG runs on
# the Kronecker factors until it slows down further, and the blocks are built at an
# iterate whose confident samples leave fewer rows. Measured (one thread, interleaved
# medians): digits 7 Newton steps instead of 8, 0.90 of the time; 10,000 x 40, K=30 and
# letter, whose first blocks cost about one product, unchanged (built after 4 CG steps).
CLASS_BLOCK_SHARE = 0.5
# Rebuilt after a step of more than 12 CG steps (8 until session 18): on digits the
# rebuild after a 9-step Newton step saved 3 products at the price of about ten (C=1: 2 -> 1
# builds, 38 -> 41 products; C=10: 6 -> 5 builds, 119 -> 120). 900 x 20 K=5, 800 x 30 K=6,
# 1,000 x 60 K=10 and 1,500 x 40 K=10 at C = 0.1, 1 and 10, letter, 5,000 x 20 K=50 and
# digits' 5-fold CV over 9 C take the same steps with either value.
CLASS_BLOCK_REBUILD = 12
CLASS_BLOCK_THRESHOLD = 0.01
CLASS_BLOCK_MAX_PASSES = 6.0

# CG also stops once max|r| <= ENOUGH * tol: the residual is the model's gradient after the
# step, so a step that brings it far below the tolerance is enough. Measured (one thread):
# digits 24 -> 23 ms, covertype 0.52 -> 0.49 s, digits CV 0.230 -> 0.218 s; gaps to f*
# 4e-9 to 2e-8, as before. At 0.1 and 0.2 digits' gap grew to 1.1e-7 and 3.3e-7.
ENOUGH = 0.05
_ACCEPT = 1e-4  # accept a step when actual / predicted decrease exceeds this
# Float64 X in memory (dense): passes in float32 (``loss_gradient_hessp(single=True)``,
# scores, softmax and gradient on the float32 copy of X the products use) while the model
# predicts a decrease above SINGLE_DECREASE of the objective. Their value's rounding (about
# float32's eps times the scores' size, relative) is then a small fraction of the decrease
# the trust-region test compares, and a float32 gradient's (eps sqrt(n)) a small fraction
# of the gradient. From the first step predicted to gain less, every pass is float64, so
# the last steps, the stopping test and the optimum are float64's; the switch re-evaluates
# the current value in float64. A float32 gradient that meets the tolerance is computed
# again in float64 before the stopping test reads it. A float32 pass costs
# about half of a float64 one (SINGLE_PASS_COST, in the pass count).
SINGLE_DECREASE = 1e-3
SINGLE_PASS_COST = 0.5
# Line search along CG's step (``_line_search``), by default on in-memory sparse X: there a
# pass is two sparse products and the line's derivatives, a softmax over [K, n] each, cost
# a few percent of one, while the steps it lengthens or shortens save whole Newton
# iterations (one thread, interleaved medians, same optimum or closer): 20 Newsgroups 6 -> 4
# iterations, 1.34 -> 1.14 s; its 5,000 most frequent terms 0.76 -> 0.62 s; covertype as
# CSR (12 nonzeros a row) 17 -> 12 iterations at the same time; a random 20,000 x 2,000,
# K=10 at 10 nonzeros a row 0.97. On dense X a GEMM pass costs about as much as three such
# evaluations and the saved iterations did not pay: digits 8 -> 6 iterations 0.98 of the
# time, letter 8 -> 6 at 1.00, covertype 15 -> 12 at 1.01, and with no saved iteration
# dense 100k x 100 1.05, wide 20k x 500 1.21, 50k x 50, K=100 1.36.
# Stop at the first interior step, or after this many boundary steps in a row, whose
# objective change is below rounding and which does not lower the gradient: the gradient is
# then at its rounding level. Until session 10 the radius was shrunk instead, CG ran to its
# limit on each retry, and every refresh of the Hessian preconditioner reset the radius, so
# such fits ran to max_iter (covertype in float32 at tol 1e-10: 200 iterations, 234 s, at
# max|gradient| 1.9e-8; now 17 iterations, 1.4 s; iris in float64 at tol 1e-17: 100).
STALLED_STEPS = 5
_SHRINK, _GROW = 0.25, 0.75


def _steihaug(
    gradient, hessp, preconditioner, radius, forcing, max_cg, enough=0.0, overwrite_gradient=False
):
    """Approximately minimise ``g.z + z.H z / 2`` subject to ``||z||_M <= radius``.

    ``M`` is the inverse of the operator ``preconditioner.solve`` applies (on class-centred
    vectors, where it is positive definite). ``<z, z>_M``, ``<z, d>_M`` and ``<d, d>_M``
    follow from the CG scalars by the recurrences of Conn, Gould & Toint (Trust-Region
    Methods, 2000, section 7.5.1), so no norm is evaluated, and so does the model value:
    with ``r = g + H z`` orthogonal to the previous direction, ``r.d = -r.y`` and a step
    ``z + a d`` changes ``g.z + z.H z / 2`` by ``-a r.y + a^2 d.H d / 2`` (no ``H z`` is
    kept). Vectors are updated in place: on wide problems (K x d = 1e6) a vector operation
    costs about a millisecond.

    CG stops once ``||r|| <= forcing ||g||`` (and, for a preconditioner whose
    ``stop_in_metric`` is true, ``r.M^{-1}r <= forcing^2 g.M^{-1}g`` as well), or once
    ``max|r| <= enough``. With ``overwrite_gradient`` the residual is kept in the gradient's
    own array, which is then lost to the caller.

    Returns the step ``z``, its length ``||z||_M``, the predicted decrease
    ``-(g.z + z.H z / 2)``, the number of Hessian-vector products used and whether the step
    reached the boundary.
    """
    z = np.zeros_like(gradient)
    # the layout of the gradient (Fortran for sparse X)
    r = gradient if overwrite_gradient else gradient.copy(order="K")
    stop = forcing * float(np.linalg.norm(gradient))
    # max|r| <= enough also stops CG; max|r| <= ||r|| <= sqrt(size) max|r| tells when to look
    enough_norm = enough * np.sqrt(gradient.size)
    # Parameter-sized arrays are let go as soon as they are dead: on wide sparse X each is
    # 4.5 MB (20 Newsgroups), and a caller's temporary or the previous product would
    # otherwise be held through every product.
    del gradient
    y = preconditioner.solve(r)
    d = -y
    ry = inner(r, y)
    del y
    zz, zd, dd = 0.0, 0.0, ry  # <z,z>_M, <z,d>_M, <d,d>_M (d = -M^{-1} r)
    model = 0.0  # g.z + z.H z / 2
    # preconditioners that ask for it: the residual must also shrink in their metric
    in_metric = getattr(preconditioner, "stop_in_metric", False)
    metric_stop = forcing * forcing * ry
    n_products = 0
    on_boundary = False
    for _ in range(max_cg):
        hd = hessp(d)
        n_products += 1
        curvature = inner(d, hd)
        alpha = ry / curvature if curvature > 0 else 0.0
        if curvature <= 0 or zz + 2 * alpha * zd + alpha * alpha * dd >= radius**2:
            tau = (-zd + np.sqrt(max(zd * zd - dd * (zz - radius**2), 0.0))) / dd
            axpy(tau, d, z)
            model += -tau * ry + 0.5 * tau * tau * curvature
            zz, on_boundary = radius**2, True
            break
        zz += 2 * alpha * zd + alpha * alpha * dd
        axpy(alpha, d, z)
        axpy(alpha, hd, r)
        del hd
        model -= 0.5 * alpha * ry  # -a r.y + a^2 d.H d / 2 with a = r.y / d.H d
        r_norm = np.linalg.norm(r)
        if r_norm <= enough_norm and max_abs(r) <= enough:
            break
        if r_norm <= stop and not in_metric:
            break
        y = preconditioner.solve(r)
        ry_next = inner(r, y)
        if ry_next <= 0:  # r vanished in the preconditioner's metric (rounding): done
            break
        if in_metric and ry_next <= metric_stop and r_norm <= stop:
            break
        beta = ry_next / ry
        zd = beta * (zd + alpha * dd)
        dd = ry_next + beta * beta * dd
        d *= beta
        d -= y
        del y
        ry = ry_next
    return z, float(np.sqrt(max(zz, 0.0))), -model, n_products, on_boundary


def _row_norms_squared(objective) -> np.ndarray:
    """``||x_i||^2`` of the rows of dense X [n], the intercept's 1 included."""
    X = objective.X
    return np.einsum("ij,ij->i", X, X, dtype=np.float64) + float(objective.fit_intercept)


def _make_preconditioner(objective, hessp, kind, gram_eigen, reuse=True):
    if kind in ("weighted-kronecker", "class-block"):  # class blocks: until CG slows down
        gram_eigen, total, refreshed = weighted_feature_factor(objective, hessp, reuse)
        return KroneckerPreconditioner(
            hessp.class_curvature() / total, gram_eigen, objective.l2_strength, refreshed
        )
    if kind == "kronecker":
        return KroneckerPreconditioner(hessp.class_curvature(), gram_eigen, objective.l2_strength)
    if kind == "coarse-space":
        from ._sparse_preconditioner import coarse_space_preconditioner

        return coarse_space_preconditioner(objective, hessp)
    return DiagonalPreconditioner(hessp.diagonal())


def _small_data(n: int, K: int, p: int) -> bool:
    """Data small enough for the class blocks whatever their price in passes: no more rows
    than the sampled Hessian would take and ``p^2 <= 8 n`` (see ``CLASS_BLOCK_MAX_PASSES``)."""
    return n <= max(SAMPLE_MIN_ROWS, SAMPLE_ROWS_PER_PARAM * K * p) and p * p <= 8 * n


def choose_preconditioner(objective) -> str:
    """The preconditioner for this objective.

    - "weighted-kronecker" (only by name; "class-block" starts with it) for dense X with
      ``p <= 8 K``: the feature factor weighs each sample by the curvature it still carries;
      rebuilding it costs ``n p^2``, under about four passes (``2 n K p`` each) when
      ``p <= 8 K``;
    - "class-block" for such X: weighted Kronecker until a Newton step needs more than
      ``CLASS_BLOCK_AFTER`` CG steps and more than ``CLASS_BLOCK_SHARE`` of the blocks'
      price in products, the exact within-class blocks of the Hessian from then on, on
      small data always (``_small_data``), otherwise when they cost at most
      ``CLASS_BLOCK_MAX_PASSES`` passes (``_small_data``'s bound on ``p`` keeps their
      ``K p^2`` numbers within ``8 n K`` and factoring and inverting them, ``5 K p^3 / 6``
      multiply-adds, within about three passes);
    - "kronecker" for other dense X up to ``KRONECKER_MAX_FEATURES`` columns: the plain
      feature second moment, computed once per fit;
    - "coarse-space" for in-memory sparse X: Jacobi plus the exact Hessian on a small
      coarse space (``_sparse_preconditioner``), a third of Jacobi's CG steps on text data;
    - "diagonal" for wider dense X and data held elsewhere (Dask).
    """
    X = getattr(objective, "X", None)
    dense = X is not None and not sp.issparse(X)
    K, p = objective.shape
    if isinstance(X, np.ndarray) and p <= 8 * K:  # in-memory NumPy: rebuilt per iteration
        return "class-block"
    if dense and p <= KRONECKER_MAX_FEATURES:
        return "kronecker"
    if sp.issparse(X):
        return "coarse-space"
    return "diagonal"


def newton_cg(
    objective,
    params0,
    tol=1e-6,
    max_iter=200,
    verbose=0,
    preconditioner="auto",
    line_search="auto",
) -> SolverResult:
    """Minimise a smooth objective by trust-region Newton-CG.

    Parameters
    ----------
    objective : SoftmaxObjective-like
        Provides ``loss_gradient_hessp`` (whose operator offers ``diagonal`` and
        ``class_curvature``) and, for the Kronecker preconditioner, ``feature_gram``.
    params0 : ndarray of shape (K, p)
    tol : float
        Stop when ``max |gradient| <= tol``.
    max_iter : int
        Maximum number of outer (Newton) iterations.
    verbose : int
    preconditioner : str
        "auto" (``choose_preconditioner``), "class-block", "weighted-kronecker", "kronecker",
        "coarse-space" or "diagonal".
    line_search : bool or "auto"
        Choose the length of each step along CG's direction (``_line_search``) before the
        trust-region test; "auto": on in-memory sparse X (see ``_ACCEPT``'s note).

    Returns
    -------
    SolverResult
    """
    params = center_classes(np.asarray(params0, dtype=objective.dtype))
    del params0  # the caller's start: not held through the fit (see _solvers)
    X = getattr(objective, "X", None)
    if sp.issparse(X):
        # Sparse X: [K, p] arrays in Fortran order, the layout of the sparse products'
        # results (X^T R)^T and operands W^T; C order would cost a transposing copy of
        # K x p per product (3.5 ms on 20 Newsgroups, a third of a product)
        params = np.asfortranarray(params)
    # float64 X in memory (NumPy or CSR): Hessian-vector products in float32, on a float32
    # copy of X made once per fit (see ScaledHessian.float32_products)
    float32_products = (sp.issparse(X) or isinstance(X, np.ndarray)) and X.dtype == np.float64

    # Sparse X: CG's vectors in float32 too. They are parameter-sized (K x d, 9 MB in float64
    # on 20 Newsgroups), so every vector operation of CG and of the preconditioner moves half
    # the memory and the products need no casts; the step only has to be as accurate as the
    # float32 products it comes from (a 20 Newsgroups fit 2.08 -> 1.86 s, min of 5, the same
    # Newton and CG steps). Dense problems' vectors are small next to their products.
    cg_dtype = np.float32 if float32_products and sp.issparse(X) else params.dtype
    # On sparse X the [K, p] arrays are what a fit holds (K x d can exceed X's nonzeros), so
    # (1) the gradient is kept in CG's dtype: CG, its forcing term and the first radius are
    # all that read it, and its max-norm, the stopping test, is taken in float64 first;
    # (2) a candidate's pass stops at the loss and the probabilities, and its gradient is
    # formed only once the step is accepted, after the current point's parameters, gradient
    # and preconditioner are let go. The pass at a candidate held four float64 [K, p] arrays
    # (the parameters and the candidate, and both gradients): 20 Newsgroups' peak. A rejected
    # step also skips its candidate's X^T R; (3) CG keeps its residual in the gradient's
    # array, and after a rejected step the gradient is formed again from the probabilities
    # kept (the X^T R the rejected candidate did not need). Same arithmetic, same path.
    lazy_gradient = sp.issparse(X) and hasattr(objective, "loss_hessp")

    def with_products(hessp):
        if float32_products and hasattr(hessp, "float32_products"):
            hessp.float32_products()
        return hessp

    def in_cg_dtype(gradient):
        return gradient.astype(cg_dtype, copy=False), max_abs(gradient)

    def evaluate(point, single=False):
        if single:
            value, gradient, hessp = objective.loss_gradient_hessp(point, single=True)
        else:
            value, gradient, hessp = objective.loss_gradient_hessp(point)
        return (value, *in_cg_dtype(gradient), with_products(hessp))

    if line_search == "auto":
        line_search = sp.issparse(X)
    # in-memory data only: the line keeps [K, n] arrays on the host
    line_search = bool(line_search) and (isinstance(X, np.ndarray) or sp.issparse(X))
    # float32 passes while far from the optimum (see SINGLE_DECREASE); the line search's
    # slope is taken from the probabilities and needs them in float64
    single = (
        isinstance(X, np.ndarray)
        and not line_search
        and getattr(objective, "single_precision_passes", lambda: False)()
    )
    value, gradient, gradient_norm, hessp = evaluate(params, single)
    n_passes = SINGLE_PASS_COST if single else 1.0
    if single and gradient_norm <= tol:  # a start at the optimum
        single = False
        value, gradient, gradient_norm, hessp = evaluate(params)
        n_passes += 1
    kind = choose_preconditioner(objective) if preconditioner == "auto" else preconditioner
    gram_eigen = None
    if kind == "kronecker" and gradient_norm > tol:
        gram_eigen = np.linalg.eigh(objective.feature_gram())
        n_passes += objective.shape[1] / (2.0 * objective.shape[0])  # syrk vs a pass
    n_iter = 0
    radius = None
    max_cg = max(10, params.size)
    can_form_hessian = hasattr(objective, "hessian") and params.size <= HESSIAN_MAX_PARAMS
    # In-memory dense X: the preconditioner's Hessian comes from a curvature-weighted sample
    # of rows; its cost in passes (2 n K p each) is that of forming (m/2 (Kp)^2) and
    # factoring ((Kp)^3 / 3) it.
    sample_rows = None
    if can_form_hessian and isinstance(X, np.ndarray):
        sample_rows = int(max(SAMPLE_MIN_ROWS, SAMPLE_ROWS_PER_PARAM * params.size))
        if sample_rows >= X.shape[0]:
            sample_rows = None
    if sample_rows is not None:
        hessian_cost = (sample_rows * params.size / 4 + params.size**2 / 6) / X.shape[0]
        switch_after = max(SLOW_CG_STEPS, SAMPLED_SWITCH * hessian_cost)
        rng = np.random.default_rng(0)  # a fixed seed: fits are reproducible
        row_norms_squared = None
    else:
        # the exact Hessian costs about K*p/15 passes; form it when one Newton step's CG
        # cost more than that (a product costs 3/4 of a pass)
        hessian_cost = params.size / PARAMS_PER_HESSIAN_PASS
        switch_after = max(SLOW_CG_STEPS, hessian_cost / 0.75)
    exact = None  # HessianPreconditioner once CG turned out slow
    blocks = None  # ClassBlockPreconditioner ("class-block") once CG turned out slow
    small_data, passes_per_block_row = False, 0.0
    if kind == "class-block":  # in-memory NumPy X
        small_data = _small_data(X.shape[0], *objective.shape)
        # a row of the class blocks costs p^2 multiply-adds, a pass 2 n K p
        passes_per_block_row = params.shape[1] / (2.0 * params.shape[0] * X.shape[0])
    # the class blocks are computed from the float32 copy of X (float64 X) or from float32 X
    block_precision = float(np.finfo(np.float32).eps)
    n_products = 0
    previous_metric = None
    # Only the solves of a path (whose objective holds the factor of the previous C) reuse
    # the curvature-weighted Kronecker factor while the curvature stays put; a single fit
    # recomputes it at every step. Reused within single fits, it changed covertype's
    # trust-region path: 15 -> 19 to 29 Newton steps, gap to f* 1.5e-8 -> 2.5e-7 (measured
    # at refresh thresholds 0.1, 0.25, 0.5). Digits CV: 0.230 s (reuse at a path solve's
    # first step only) -> 0.219 s. On small data (``_small_data``) single fits reuse it as
    # well: there it serves only the first few steps, until the class blocks take over, and
    # its eigendecomposition costs about five products (digits: 3 -> 2 computed a fit, 40 ->
    # 38 products, 0.95 of the time; digits' 5-fold CV over 9 C: 52 -> 36, 850 -> 845).
    reuse_factor = small_data or getattr(objective, "_feature_factor", None) is not None
    stalled = 0  # consecutive steps that changed nothing measurable (see STALLED_STEPS)
    while gradient_norm > tol and n_iter < max_iter:
        n_iter += 1
        if can_form_hessian and n_products > switch_after:
            if sample_rows is None:
                hessian = objective.hessian(params)
            else:
                if row_norms_squared is None:
                    row_norms_squared = _row_norms_squared(objective)
                hessian = sampled_hessian(
                    objective, params, hessp, sample_rows, row_norms_squared, rng
                )
            n_passes += hessian_cost
            try:
                exact = HessianPreconditioner(hessian, params.shape)
            except np.linalg.LinAlgError:  # not factorable even with a ridge: keep CG's metric
                exact, can_form_hessian = None, False
        if (
            exact is None
            and kind == "class-block"
            and (blocks is not None or n_products > CLASS_BLOCK_AFTER)
        ):
            build = blocks is None or n_products > CLASS_BLOCK_REBUILD
            if build:  # priced first
                price = hessp.class_block_rows(CLASS_BLOCK_THRESHOLD) * passes_per_block_row
                if not small_data:
                    build = price <= CLASS_BLOCK_MAX_PASSES
                if blocks is None:  # the first ones once CG costs more than their share
                    build = build and n_products > CLASS_BLOCK_SHARE * price / 0.75
            if build:
                try:
                    block_matrices, n_rows = hessp.class_blocks(CLASS_BLOCK_THRESHOLD)
                    blocks = ClassBlockPreconditioner(block_matrices, block_precision)
                    n_passes += n_rows * passes_per_block_row
                except np.linalg.LinAlgError:  # not factorable: the Kronecker factors from here on
                    blocks, kind = None, "weighted-kronecker"
        metric = None  # the last step's preconditioner is not held while this one is built
        if exact is not None:
            metric = exact
        elif blocks is not None:
            metric = blocks
        else:
            metric = _make_preconditioner(objective, hessp, kind, gram_eigen, reuse_factor)
            if kind == "diagonal":
                n_passes += 0.5
            elif kind in ("weighted-kronecker", "class-block") and metric.refreshed:
                n_passes += params.shape[1] / (2.0 * params.shape[0])
        if radius is None or metric is exact and exact is not previous_metric:
            # first radius, and after a change of metric: a preconditioned gradient step
            radius = max(1.0, np.sqrt(max(inner(gradient, metric.solve(gradient)), 0.0)))
        # only the exact preconditioner is compared with: holding any other one would keep
        # its [K, p] diagonal alive while the next one is built
        previous_metric = metric if metric is exact else None
        forcing = min(0.1, np.sqrt(float(np.linalg.norm(gradient))))
        step, step_length, predicted, n_products, on_boundary = _steihaug(
            gradient,
            hessp,
            metric,
            radius,
            forcing,
            max_cg,
            ENOUGH * tol,
            overwrite_gradient=lazy_gradient,
        )
        if lazy_gradient:
            gradient = None  # CG's residual now (see lazy_gradient)
        n_passes += 0.75 * n_products  # a product skips the exponentials of a pass
        if line_search:
            # the step's length from the loss along it; the trust-region test then compares
            # the actual decrease with the model's at that length
            line = objective.line(params, step, hessp)
            step_size, slope, curvature = minimise_on_line(
                line.derivatives, slope_noise=line.slope_noise
            )
            del line
            n_passes += 0.5  # the step's scores (half a product) and a few softmaxes
            if step_size is not None:
                step *= step_size
                step_length *= step_size
                predicted = -(step_size * slope + 0.5 * step_size * step_size * curvature)
        # re-centred: float32 CG steps are centred only to float32 rounding, and the drift
        # along the flat direction would leave the ridge a gradient there that CG, working
        # on centred vectors, cannot remove (a fit to tol 1e-10 stalled at 4e-10). Formed
        # and centred in place, with no parameter-sized temporary (a float32 step is cast
        # element by element inside the addition).
        candidate = np.add(params, step, dtype=params.dtype)
        candidate -= class_mean(candidate)
        del step  # not held through the next CG (see _steihaug)
        if lazy_gradient:
            cand_value, cand_hessp = objective.loss_hessp(candidate)
            cand_hessp, cand_gradient = with_products(cand_hessp), None
            n_passes += 0.5
        else:
            if single and predicted <= SINGLE_DECREASE * abs(value):
                # float64 from here on; the current value, which the candidate's is
                # compared with, in float64 too (the scores and the loss: half a pass)
                single = False
                value = objective.loss(params)
                n_passes += 0.5
            cand_value, cand_gradient, cand_norm, cand_hessp = evaluate(candidate, single)
            n_passes += SINGLE_PASS_COST if single else 1.0
        actual = value - cand_value
        ratio = actual / predicted if predicted > 0 else -1.0
        if within_rounding(value, cand_value, params.dtype) and within_rounding(
            value, value - predicted, params.dtype
        ):
            # both decreases are below the objective's precision: trust the gradient
            if cand_gradient is None:
                cand_gradient, cand_norm = in_cg_dtype(objective.gradient(candidate, cand_hessp))
                n_passes += 0.5
            lowered = cand_norm < gradient_norm
            ratio = 1.0 if lowered else -1.0
            stalled = 0 if lowered else stalled + 1
            if stalled >= STALLED_STEPS or (stalled and not on_boundary):
                # the gradient is at its rounding level: the (inexact) Newton step inside
                # the trust region does not lower it, nor do shorter steps
                break
        else:
            stalled = 0
        if not np.isfinite(cand_value) or ratio < _SHRINK:
            radius = _SHRINK * step_length
        elif ratio > _GROW and on_boundary:
            radius = max(2.0 * radius, step_length)  # a line search may have gone further
        accepted = bool(np.isfinite(cand_value) and ratio > _ACCEPT)
        if accepted:
            params, value, hessp = candidate, cand_value, cand_hessp
            if cand_gradient is None:
                gradient = metric = None  # let go first (see lazy_gradient)
                cand_gradient, cand_norm = in_cg_dtype(objective.gradient(params, hessp))
                n_passes += 0.5
            gradient, gradient_norm = cand_gradient, cand_norm
            if single and gradient_norm <= tol:
                # the stopping test reads a float64 gradient
                single = False
                value, gradient, gradient_norm, hessp = evaluate(params)
                n_passes += 1
        # a rejected candidate is not held through the norm below nor the next CG
        del candidate, cand_gradient, cand_hessp
        if gradient is None:  # rejected, lazy_gradient: the gradient CG overwrote, again
            gradient, _ = in_cg_dtype(objective.gradient(params, hessp))
            n_passes += 0.5
        if not accepted and radius < 1e-14 * max(1.0, metric.norm(params)):
            break  # the model cannot be trusted at any length representable here
        report(verbose, "newton-cg", n_iter, value, gradient_norm)
        if verbose > 1:
            print(f"    cg={n_products} ratio={ratio:.3f} radius={radius:.3g}")
    return SolverResult(
        params=np.ascontiguousarray(params),
        n_iter=n_iter,
        converged=gradient_norm <= tol,
        gradient_norm=gradient_norm,
        objective=value,
        n_passes=n_passes,
    )
