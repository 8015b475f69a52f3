"""Robustness suite: a broad generated family of awkward problems, every smooth solver on each.

Each problem is drawn from a seed: its shape (n, d, K), the features' pathologies (scales over
1e-3..1e3, an offset of 1e3, near-collinear, one-hot blocks, constant and duplicated columns,
binary features, p > n), the classes (balanced, imbalanced, a few classes of about ten
samples), sample weights, C from 1e-4 to 1e4 or no penalty, sparse or dense, float32 or
float64, plus the real data sets that install offline. Every solver and ``auto`` is fitted at
default settings and compared with the exact optimum, computed independently by
scikit-learn's ``LogisticRegression`` (newton-cholesky where the Hessian is small, else lbfgs)
at ``tol=1e-12``; K = 2 maps our symmetric parameters to its single vector at ``2 C``.

Recorded per solver: converged, the objective's relative gap to the optimum, max |dP| (the
largest difference of a predicted probability), passes over the data and the time.

    python benchmarks/robustness.py --seed 0 --count 300 [--threads 1] [--speed] [--write]

``--penalties l1,elasticnet,grouped`` runs the non-smooth penalties instead (prox-newton, at
``C`` of the problem or 1 where it has none, ``l1_ratio`` 0.5 for the elastic net and 1 for
"grouped"): there the certificate is the KKT conditions, evaluated here from probabilities
computed here (``kkt_violation``), and the section written is ``robustness-sparse``.

``problems(seed, count)`` is what ``tests/test_robustness.py`` uses, with a small count.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import scipy.sparse as sp

SOLVERS = ("auto", "newton-cg", "newton-cholesky", "lbfgs")
NEWTON_CHOLESKY_MAX_PARAMS = 2000
PATHOLOGIES = (
    "plain",
    "scaled",
    "offset",
    "collinear",
    "one-hot",
    "constant+duplicate",
    "binary",
    "wide",
    "sparse",
    "imbalanced",
    "rare-classes",
)


@dataclass
class Problem:
    """One problem of the family: data, labels, weights and the estimator's settings."""

    name: str
    X: np.ndarray | sp.csr_matrix
    y: np.ndarray
    C: float | None  # None: no penalty
    sample_weight: np.ndarray | None = None
    tags: dict = field(default_factory=dict)

    @property
    def penalty(self):
        return None if self.C is None else "l2"


def _labels_from_scores(rng, scores, temperature):
    """Labels drawn from the softmax of ``scores / temperature`` (so the optimum exists)."""
    scores = scores / temperature
    scores -= scores.max(axis=1, keepdims=True)
    proba = np.exp(scores)
    proba /= proba.sum(axis=1, keepdims=True)
    cumulative = proba.cumsum(axis=1)
    draws = rng.random((len(scores), 1))
    return np.minimum((draws > cumulative).sum(axis=1), scores.shape[1] - 1)


def _relabel(y):
    """Labels 0..K'-1 with every class present (drawn labels can miss a class)."""
    return np.unique(y, return_inverse=True)[1]


def make_problem(seed: int, max_rows: int = 50_000) -> Problem:
    """The problem of one seed (deterministic); ``max_rows`` caps n (the test suite's subset)."""
    rng = np.random.default_rng(seed)
    pathology = PATHOLOGIES[seed % len(PATHOLOGIES)]
    n = int(rng.choice([200, 1000, 3000, 10_000]))
    d = int(rng.choice([2, 5, 20, 60]))
    K = int(rng.choice([2, 3, 5, 10, 40]))
    if pathology == "wide":
        n, d = int(rng.choice([100, 300])), int(rng.choice([400, 1000]))
        K = min(K, 10)
    if pathology in ("imbalanced", "rare-classes"):
        n = int(rng.choice([10_000, 50_000]))
    if rng.random() < 0.05:
        K = 200
    if K >= 40:
        n = max(n, 3000 if K == 40 else 10_000)
        d = min(d, 20 if K == 40 else 5)
    C = rng.choice([1e-4, 1e-2, 1.0, 1e2, 1e4, None])
    if C is None and pathology == "wide":
        C = 1.0  # p > n: the unpenalised optimum does not exist
    if C is None:
        # the unpenalised optimum must exist: enough rows that the classes overlap
        columns = 4 * d if pathology == "sparse" else d + 60 * (pathology == "one-hot")
        n = max(n, min(50_000, 10 * K * (columns + 1)))
        if n > max_rows:
            C = 1.0  # too few rows allowed for the classes to overlap
    n = min(n, max_rows)
    X = rng.standard_normal((n, d))
    true_coef = rng.standard_normal((K, d)) / np.sqrt(d)
    class_offsets = np.zeros(K)
    tags = {"pathology": pathology}
    if pathology == "imbalanced":
        class_offsets = -np.linspace(0, 6, K)  # the last class about e^-6 as frequent
    scores = X @ true_coef.T + class_offsets
    y = _labels_from_scores(rng, scores, temperature=float(rng.choice([0.3, 1.0, 3.0])))
    if pathology == "rare-classes":
        # two (or one, for K = 2) classes of about ten samples each
        n_rare = 2 if K > 2 else 1
        rare = rng.choice(n, size=10 * n_rare, replace=False)
        y = np.where(y >= K - n_rare, 0, y)
        y[rare] = K - n_rare + np.arange(10 * n_rare) % n_rare
    y = _relabel(y)
    # the pathology transforms the features after the labels are drawn
    if pathology == "scaled":
        X = X * 10.0 ** rng.uniform(-3, 3, size=d)
    elif pathology == "offset":
        X = X * 10.0 ** rng.uniform(-1, 1, size=d) + 1e3
    elif pathology == "collinear":
        X = np.hstack(
            [X, X[:, :1] + 1e-6 * rng.standard_normal((n, 1)), (X[:, :2] @ [1.0, -2.0])[:, None]]
        )
    elif pathology == "one-hot":
        levels = int(rng.choice([3, 10, 30]))
        codes = rng.integers(0, levels, size=(n, 2))
        one_hot = np.hstack([np.eye(levels)[codes[:, j]] for j in range(2)])
        X = np.hstack([X, one_hot])  # two full codings: collinear with the intercept
    elif pathology == "constant+duplicate":
        X = np.hstack([X, np.full((n, 1), 3.0), X[:, :1], np.zeros((n, 1))])
    elif pathology == "binary":
        X = (X > rng.normal(0.5, 0.5, size=d)).astype(float)
    elif pathology == "sparse":
        density = float(rng.choice([0.01, 0.05, 0.2]))
        mask = rng.random((n, d * 4)) < density
        values = rng.exponential(1.0, size=mask.sum())
        X = sp.csr_matrix((values, np.nonzero(mask)), shape=(n, d * 4))
    if rng.random() < 0.25:
        sample_weight = rng.exponential(1.0, size=n)
        tags["weights"] = True
    else:
        sample_weight = None
    if rng.random() < 0.2 and not sp.issparse(X):
        X = X.astype(np.float32)
    if sp.issparse(X) and rng.random() < 0.2:
        X = X.astype(np.float32)
    n, d = X.shape
    K = int(y.max()) + 1
    name = (
        f"{seed}:{pathology} n={n} d={d} K={K} C={'none' if C is None else f'{C:g}'}"
        f"{' w' if sample_weight is not None else ''}{' f32' if X.dtype == np.float32 else ''}"
        f"{' csr' if sp.issparse(X) else ''}"
    )
    return Problem(name, X, y, None if C is None else float(C), sample_weight, tags)


def real_problems():
    """The real data sets that install offline (scikit-learn's), standardised and raw."""
    from sklearn.datasets import load_digits, load_iris, load_wine
    from sklearn.preprocessing import StandardScaler

    out = []
    for loader in (load_iris, load_wine, load_digits):
        X, y = loader(return_X_y=True)
        for standardise in (False, True):
            Xs = StandardScaler().fit_transform(X) if standardise else X.astype(float)
            # unpenalised only where the classes overlap: 16 of digits' pixels
            for C in (1.0, None) if loader is load_digits else (1.0,):
                if C is None:
                    Xs = Xs[:, ::4]
                name = f"{loader.__name__[5:]}{' std' if standardise else ''} C={C or 'none'}"
                out.append(Problem(name, Xs, y, C, None, {"pathology": "real"}))
    return out


def problems(seed: int, count: int, max_rows: int = 50_000):
    """``count`` generated problems from ``seed`` on (seed, seed + 1, ...)."""
    return [make_problem(seed + i, max_rows) for i in range(count)]


# --------------------------------------------------------------------------- the reference
def reference_fit(problem: Problem):
    """The exact optimum's (coef [K, d], intercept [K]) from scikit-learn at tol 1e-12.

    Fitted on centred columns (and, without a penalty, standardised ones), which leaves the
    optimum's probabilities unchanged (the intercept absorbs the centring; an unpenalised fit
    is invariant to any rescaling) but makes it well-conditioned for scikit-learn's solver.
    """
    from sklearn.linear_model import LogisticRegression

    X = problem.X.toarray() if sp.issparse(problem.X) else problem.X
    X = X.astype(np.float64)
    mean = X.mean(axis=0)
    scale = np.ones(X.shape[1])
    if problem.C is None:
        scale = np.where(X.std(axis=0) > 0, X.std(axis=0), 1.0)
    Z = (X - mean) / scale
    K = int(problem.y.max()) + 1
    C = problem.C
    n_params = (K if K > 2 else 1) * (X.shape[1] + 1)
    kwargs = {
        "solver": "newton-cholesky" if n_params <= 1500 else "lbfgs",
        "tol": 1e-12,
        "max_iter": 20_000,
    }
    if C is None:
        kwargs["penalty"] = None
    else:
        # our symmetric K = 2 parameters (v/2, -v/2) carry half the ridge of its single v
        kwargs["C"] = 2 * C if K == 2 else C
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = LogisticRegression(**kwargs).fit(Z, problem.y, sample_weight=problem.sample_weight)
    coef, intercept = model.coef_, model.intercept_
    if K == 2:
        coef = np.vstack([-coef / 2, coef / 2])
        intercept = np.array([-intercept[0] / 2, intercept[0] / 2])
    coef, intercept = _newton_polish(problem, Z, coef, intercept)
    coef = coef / scale
    return coef, intercept - coef @ mean


def _newton_polish(problem: Problem, Z, coef, intercept, steps: int = 8):
    """Newton steps on DESIGN.md's objective (written here, independent of the library) from
    scikit-learn's answer, whose tolerance on an unscaled gradient leaves some optima short
    by 1e-6 in probabilities: exact pseudo-inverse steps where the Hessian is small (the
    objective is flat along the class-constant direction, and more for rank-deficient Z),
    SciPy's trust-region Krylov method on Hessian-vector products otherwise."""
    from scipy.optimize import minimize
    from scipy.special import softmax

    n, d = Z.shape
    K = len(intercept)
    A = np.hstack([Z, np.ones((n, 1))])
    weight = np.ones(n) if problem.sample_weight is None else problem.sample_weight
    C = 1.0 if problem.C is None else problem.C
    ridge = np.zeros((K, d + 1))
    ridge[:, :d] = 0.0 if problem.C is None else 1.0
    onehot = np.eye(K)[problem.y]

    def objective(params):
        scores = A @ params.T
        shifted = scores - scores.max(axis=1, keepdims=True)
        log_norm = np.log(np.exp(shifted).sum(axis=1))
        loss = -np.sum(weight * (shifted[np.arange(n), problem.y] - log_norm))
        return C * loss + 0.5 * np.sum(ridge * params**2)

    params = np.hstack([coef, intercept[:, None]])
    if K * (d + 1) > 1500:

        def value_gradient(flat):
            params = flat.reshape(K, d + 1)
            P = softmax(A @ params.T, axis=1)
            gradient = C * ((P - onehot) * weight[:, None]).T @ A + ridge * params
            return objective(params), gradient.ravel()

        def hessian_product(flat, direction):
            P = softmax(A @ flat.reshape(K, d + 1).T, axis=1)
            V = direction.reshape(K, d + 1)
            AV = A @ V.T
            mixed = P * (AV - np.sum(P * AV, axis=1, keepdims=True)) * weight[:, None]
            return (C * mixed.T @ A + ridge * V).ravel()

        solution = minimize(
            value_gradient,
            params.ravel(),
            jac=True,
            hessp=hessian_product,
            method="trust-krylov",
            options={"gtol": 1e-300, "maxiter": 12},
        )
        if solution.fun <= objective(params):
            params = solution.x.reshape(K, d + 1)
        return params[:, :d], params[:, d]
    value = objective(params)
    for _ in range(steps):
        P = softmax(A @ params.T, axis=1)
        gradient = C * ((P - onehot) * weight[:, None]).T @ A + ridge * params
        hessian = np.zeros((K, d + 1, K, d + 1))
        for k in range(K):
            for j in range(K):
                curvature = weight * P[:, k] * ((k == j) - P[:, j])
                hessian[k, :, j, :] = C * (A * curvature[:, None]).T @ A
        hessian = hessian.reshape(K * (d + 1), K * (d + 1)) + np.diag(ridge.ravel())
        step = -(np.linalg.pinv(hessian, rcond=1e-13, hermitian=True) @ gradient.ravel())
        step = step.reshape(K, d + 1)
        candidate_value = objective(params + step)
        if not candidate_value <= value:
            break
        params, decrease, value = params + step, value - candidate_value, candidate_value
        if decrease <= 1e-15 * abs(value):
            break
    return params[:, :d], params[:, d]


def objective_value(problem: Problem, coef, intercept) -> float:
    """``f`` of DESIGN.md in float64 (max-shifted log-softmax)."""
    from scipy.special import log_softmax

    X = problem.X.astype(np.float64)
    scores = np.asarray(X @ coef.T) + intercept
    log_proba = log_softmax(scores, axis=1)
    weight = np.ones(len(problem.y)) if problem.sample_weight is None else problem.sample_weight
    loss = -np.sum(weight * log_proba[np.arange(len(problem.y)), problem.y])
    if problem.C is None:
        return float(loss)
    return float(problem.C * loss + 0.5 * np.sum(coef.astype(np.float64) ** 2))


def proba(problem: Problem, coef, intercept) -> np.ndarray:
    from scipy.special import softmax

    X = problem.X.astype(np.float64)
    return softmax(np.asarray(X @ coef.astype(np.float64).T) + intercept, axis=1)


def kkt_violation(problem: Problem, coef, intercept, penalty: str, l1_ratio: float) -> float:
    """Largest residual of the KKT conditions of ``C sum_i s_i loss_i + R(W)`` (DESIGN.md's
    f, ``R = a P(W) + (1 - a) ||W||^2 / 2``), relative to ``max(a, max |C g|)``:
    ``C g + (1 - a) W + a dP(W) = 0`` on the support (``dP`` the sign, or ``W_j / ||W_j||`` of
    a column for "grouped"), ``|C g| <= a`` off it (``||C g_j||`` for "grouped"), and
    ``C g_b = 0`` for the intercepts; ``g`` is the data fit's gradient."""
    C = problem.C or 1.0
    a = 1.0 if penalty == "l1" else l1_ratio
    coef = coef.astype(np.float64)
    residual = proba(problem, coef, intercept)
    residual[np.arange(len(problem.y)), problem.y] -= 1.0
    if problem.sample_weight is not None:
        residual *= problem.sample_weight[:, None]
    g = C * np.asarray(problem.X.astype(np.float64).T @ residual).T  # [K, d]
    g_b = C * residual.sum(axis=0)
    smooth = g + (1 - a) * coef
    parts = [np.abs(g_b).max()]
    if penalty == "grouped":
        norms = np.linalg.norm(coef, axis=0)
        on = norms > 0
        parts.append(np.abs(smooth[:, on] + a * coef[:, on] / norms[on]).max(initial=0.0))
        parts.append(np.maximum(np.linalg.norm(g[:, ~on], axis=0) - a, 0).max(initial=0.0))
    else:
        on = coef != 0
        parts.append(np.abs(smooth[on] + a * np.sign(coef[on])).max(initial=0.0))
        parts.append(np.maximum(np.abs(g[~on]) - a, 0).max(initial=0.0))
    return float(max(parts) / max(a, np.abs(g).max()))


L1_RATIOS = {"l1": None, "elasticnet": 0.5, "grouped": 1.0}


def run_penalty(problem: Problem, penalty: str) -> dict:
    """One default fit with a non-smooth penalty: ``{problem, penalty, converged, kkt, dP,
    n_iter, seconds, warning}``. For float32 data, whose optimum float32 coefficients cannot
    hold (an offset of 1e3 turns their rounding into KKT residuals of order one), ``dP`` is
    the largest difference of a probability from the default fit on the float64 copy; None
    for float64 data."""
    from sklearn.exceptions import ConvergenceWarning

    from softmaxreg import SoftmaxRegression

    l1_ratio = L1_RATIOS[penalty]
    model = SoftmaxRegression(C=problem.C or 1.0, penalty=penalty, l1_ratio=l1_ratio)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ConvergenceWarning)
        start = time.perf_counter()
        model.fit(problem.X, problem.y, sample_weight=problem.sample_weight)
        seconds = time.perf_counter() - start
    dP = None
    if problem.X.dtype == np.float32:
        twin = SoftmaxRegression(C=problem.C or 1.0, penalty=penalty, l1_ratio=l1_ratio)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            twin.fit(problem.X.astype(np.float64), problem.y, sample_weight=problem.sample_weight)
        dP = float(
            np.abs(
                proba(problem, model.coef_, model.intercept_)
                - proba(problem, twin.coef_, twin.intercept_)
            ).max()
        )
    return {
        "problem": problem.name,
        "penalty": penalty,
        "float32": problem.X.dtype == np.float32,
        "converged": bool(model.converged_),
        "kkt": kkt_violation(problem, model.coef_, model.intercept_, penalty, l1_ratio or 1.0),
        "dP": dP,
        "n_iter": int(model.n_iter_),
        "seconds": seconds,
        "warning": "; ".join(str(w.message)[:80] for w in caught),
    }


def penalty_summary(rows) -> str:
    """The markdown summary of the non-smooth penalties, one row per penalty."""
    lines = [
        "| penalty | problems | converged, no warning | KKT > 1e-6 (float64) | max KKT (float64) "
        "| dP > 1e-4 (float32) | median / max iterations | median / max seconds "
        "| slowest problem |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for penalty in dict.fromkeys(r["penalty"] for r in rows):
        mine = [r for r in rows if r["penalty"] == penalty]
        f64 = [r for r in mine if not r["float32"]]
        f32 = [r for r in mine if r["float32"]]
        slowest = max(mine, key=lambda r: r["seconds"])
        lines.append(
            f"| {penalty} | {len(mine)} "
            f"| {sum(r['converged'] and not r['warning'] for r in mine)} "
            f"| {sum(r['kkt'] > 1e-6 for r in f64)} of {len(f64)} "
            f"| {max(r['kkt'] for r in f64):.1e} "
            f"| {sum(r['dP'] > 1e-4 for r in f32)} of {len(f32)} "
            f"| {np.median([r['n_iter'] for r in mine]):.0f} / {max(r['n_iter'] for r in mine)} "
            f"| {np.median([r['seconds'] for r in mine]):.3f} / {slowest['seconds']:.2f} "
            f"| {slowest['problem']} |"
        )
    return "\n".join(lines)


def main_penalties(args, family) -> None:
    """``--penalties``: every problem with each non-smooth penalty."""
    from threadpoolctl import threadpool_limits

    rows = []
    with threadpool_limits(args.threads):
        for problem in family:
            for penalty in args.penalties.split(","):
                r = run_penalty(problem, penalty)
                rows.append(r)
                bad = (
                    not r["converged"]
                    or r["warning"]
                    or (r["dP"] > 1e-4 if r["float32"] else r["kkt"] > 1e-6)
                )
                if args.show == "all" or (args.show == "bad" and bad):
                    dP = "" if r["dP"] is None else f" dP={r['dP']:8.1e}"
                    print(
                        f"{r['problem']:<48} {penalty:<10} conv={r['converged']!s:<5} "
                        f"kkt={r['kkt']:8.1e}{dP} it={r['n_iter']:4d} t={r['seconds']:.3f} "
                        f"{r['warning'][:60]}",
                        flush=True,
                    )
    table = penalty_summary(rows)
    print(table)
    if args.write:
        from _report import machine_description, write_section

        heading = (
            "## Robustness: the non-smooth penalties at default settings on the same family"
            f"\n\n`python benchmarks/robustness.py --seed {args.seed} --count {args.count}"
            f"{'' if args.threads is None else f' --threads {args.threads}'}"
            f" --penalties {args.penalties}`: {len(family)} problems "
            f"({args.count} generated from seed {args.seed}, {len(family) - args.count} real), "
            "each fitted by `SoftmaxRegression(penalty=..., C=C or 1)` at default settings "
            "(prox-newton; l1_ratio 0.5 for the elastic net). KKT: the largest residual of "
            "the optimality conditions relative to the penalty weight, computed in the "
            "benchmark from its own probabilities; float32 data are judged by dP, the largest "
            "difference of a probability from the fit on their float64 copy (float32 "
            f"coefficients cannot hold the KKT point).\n\n{machine_description()}\n\n"
        )
        write_section("robustness-sparse", heading + table)


# --------------------------------------------------------------------------- one run
def run_problem(problem: Problem, solvers=SOLVERS, reference=None):
    """Rows ``{problem, solver, converged, gap, dP, passes, seconds, warning}``."""
    from sklearn.exceptions import ConvergenceWarning

    from softmaxreg import SoftmaxRegression

    ref_coef, ref_intercept = reference or reference_fit(problem)
    ref_value = objective_value(problem, ref_coef, ref_intercept)
    ref_proba = proba(problem, ref_coef, ref_intercept)
    rows = []
    n_params = (int(problem.y.max()) + 1) * (problem.X.shape[1] + 1)
    for solver in solvers:
        if solver == "newton-cholesky" and n_params > NEWTON_CHOLESKY_MAX_PARAMS:
            continue  # its Hessian alone would take minutes to factor
        model = SoftmaxRegression(C=problem.C or 1.0, penalty=problem.penalty, solver=solver)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            start = time.perf_counter()
            model.fit(problem.X, problem.y, sample_weight=problem.sample_weight)
            seconds = time.perf_counter() - start
        value = objective_value(problem, model.coef_, model.intercept_)
        rows.append(
            {
                "problem": problem.name,
                "pathology": problem.tags.get("pathology"),
                "float32": problem.X.dtype == np.float32,
                "solver": solver,
                "chosen": model.solver_,
                "converged": bool(model.converged_),
                "gap": (value - ref_value) / max(abs(ref_value), 1e-300),
                "dP": float(
                    np.max(np.abs(proba(problem, model.coef_, model.intercept_) - ref_proba))
                ),
                "n_iter": int(model.n_iter_),
                "seconds": seconds,
                "reference_worse": value < ref_value * (1 - 1e-9),
                "warning": "; ".join(str(w.message)[:80] for w in caught),
            }
        )
    return rows


def reference_seconds(problem: Problem) -> float:
    """Time of scikit-learn's default-solver fit at tol 1e-7 (for the speed summary)."""
    from sklearn.linear_model import LogisticRegression

    K = int(problem.y.max()) + 1
    kwargs = {"tol": 1e-7, "max_iter": 10_000}
    if problem.C is None:
        kwargs["penalty"] = None
    else:
        kwargs["C"] = 2 * problem.C if K == 2 else problem.C
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = time.perf_counter()
        LogisticRegression(**kwargs).fit(problem.X, problem.y, sample_weight=problem.sample_weight)
    return time.perf_counter() - start


def summary(rows) -> str:
    """The markdown summary table, one row per solver."""
    lines = [
        "| solver | problems | converged | gap > 1e-9 | max gap | dP > 1e-6 (float64) "
        "| dP > 1e-4 (float32) | max dP | median iterations | median seconds |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for solver in dict.fromkeys(r["solver"] for r in rows):
        mine = [r for r in rows if r["solver"] == solver]
        f64 = [r for r in mine if not r["float32"]]
        f32 = [r for r in mine if r["float32"]]
        lines.append(
            f"| {solver} | {len(mine)} | {sum(r['converged'] for r in mine)} "
            f"| {sum(r['gap'] > 1e-9 for r in f64)} "
            f"| {max(r['gap'] for r in mine):.1e} "
            f"| {sum(r['dP'] > 1e-6 for r in f64)} of {len(f64)} "
            f"| {sum(r['dP'] > 1e-4 for r in f32)} of {len(f32)} "
            f"| {max(r['dP'] for r in mine):.1e} "
            f"| {np.median([r['n_iter'] for r in mine]):.0f} "
            f"| {np.median([r['seconds'] for r in mine]):.3f} |"
        )
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--count", type=int, default=300)
    parser.add_argument("--threads", type=int, default=None, help="BLAS threads (default: all)")
    parser.add_argument("--no-real", action="store_true", help="generated problems only")
    parser.add_argument("--solvers", default=",".join(SOLVERS))
    parser.add_argument("--speed", action="store_true", help="also time scikit-learn's fit")
    parser.add_argument("--write", action="store_true", help="write the robustness section")
    parser.add_argument("--show", default="bad", choices=["bad", "all", "none"])
    parser.add_argument(
        "--penalties", default=None, help="non-smooth penalties instead, e.g. l1,elasticnet"
    )
    args = parser.parse_args(argv)
    from threadpoolctl import threadpool_limits

    family = problems(args.seed, args.count) + ([] if args.no_real else real_problems())
    if args.penalties:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        return main_penalties(args, family)
    rows, ratios = [], []
    with threadpool_limits(args.threads):
        for problem in family:
            problem_rows = run_problem(problem, args.solvers.split(","))
            rows += problem_rows
            if args.speed:
                baseline = reference_seconds(problem)
                auto = next(r for r in problem_rows if r["solver"] == "auto")
                ratios.append(auto["seconds"] / baseline)
            for r in problem_rows:
                bad = (
                    not r["converged"]
                    or r["gap"] > 1e-9
                    or r["dP"] > (1e-4 if r["float32"] else 1e-6)
                )
                if args.show == "all" or (args.show == "bad" and bad):
                    print(
                        f"{r['problem']:<48} {r['solver']:<15} conv={r['converged']!s:<5} "
                        f"gap={r['gap']:9.2e} dP={r['dP']:8.1e} it={r['n_iter']:4d} "
                        f"t={r['seconds']:.3f} {r['warning'][:60]}",
                        flush=True,
                    )
    table = summary(rows)
    if ratios:
        table += (
            f"\n\nauto / scikit-learn (lbfgs, tol 1e-7) time: geometric mean "
            f"{np.exp(np.mean(np.log(ratios))):.2f} over {len(ratios)} problems"
        )
    print(table)
    if args.write:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from _report import machine_description, write_section

        heading = (
            "## Robustness: every smooth solver at default settings on a generated family\n\n"
            f"`python benchmarks/robustness.py --seed {args.seed} --count {args.count}"
            f"{'' if args.threads is None else f' --threads {args.threads}'}"
            f"{' --speed' if args.speed else ''}`: {len(family)} problems "
            f"({args.count} generated from seed {args.seed}, "
            f"{len(family) - args.count} real), gap and dP against scikit-learn's optimum "
            "polished by independent Newton steps. newton-cholesky runs only where "
            f"K (d + 1) <= {NEWTON_CHOLESKY_MAX_PARAMS}.\n\n{machine_description()}\n\n"
        )
        write_section("robustness", heading + table)


if __name__ == "__main__":
    main()
