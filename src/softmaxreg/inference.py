"""Statistical inference for a fitted ``SoftmaxRegression``: covariance, errors, tests, summary.

The estimator is symmetric (one row of coefficients per class, no reference). Inference is
reported in *reference-class form*, the parameterisation of statsmodels' ``MNLogit``: for every
class ``k`` other than the reference ``r``, ``beta_k = theta_k - theta_r`` where ``theta_k`` is
the row ``[W_k, b_k]``. The reference can be any class.

Covariance
----------
Parameter blocks are handled in the symmetric layout of ``softmaxreg._loss`` (rows ordered as
``params.ravel()``, ``params`` [K, p] with the intercept as last column), on a set of *free*
coordinates that removes the directions in which the objective is flat:

- ``penalty=None`` (maximum likelihood): the log-likelihood does not change when one vector is
  added to every class row, so the reference row is fixed at zero. The remaining rows are the
  reference-form parameters and the covariance is the inverse of the observed information, the
  data Hessian restricted to the non-reference blocks. ``robust=True`` gives the Huber-White
  (HC0) sandwich ``H^-1 (sum_i s_i u_i u_i^T) H^-1`` with ``u_i`` the score of sample ``i``.
- ``penalty="l2"`` (Laplace approximation): the penalised objective
  ``f = C * sum_i s_i (-log P(y_i | x_i)) + 0.5 * ||W||^2`` is flat only along "the same number
  added to every intercept" (the intercept is not penalised), so only the reference intercept is
  fixed. The approximate posterior covariance ``(Hessian of f)^-1`` on those coordinates is then
  mapped to the contrasts ``theta_k - theta_r``.

Both Hessians are assembled by ``softmaxreg._loss.hessian`` (BLAS-3 products over row chunks, no
Python loop over samples or class pairs) and inverted by Cholesky. They are first used for
Newton steps from the fit to the exact optimum (on anes96 the default fit's parameters are
5e-4 relative away from it), so everything is reported at the optimum. ``cov_type`` "HC1"
and "cluster" scale the sandwich by statsmodels' small-sample factors.

Weights
-------
``sample_weight`` (times ``class_weight`` of the estimator, as in the fit) is read as frequency
weights: a weight of 3 is three identical rows, for every number reported here, including the
robust errors and ``nobs`` (the sum of the weights).
"""

from __future__ import annotations

import math
import textwrap
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.linalg
import scipy.sparse as sp
import scipy.special
import scipy.stats
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from . import _loss
from ._hypotheses import parse_hypotheses
from ._penalties import Penalty
from ._validation import check_sample_weight

__all__ = [
    "InferenceResult",
    "InferenceSummary",
    "LRTestResult",
    "MarginalEffects",
    "ProbabilityPrediction",
    "SeparationWarning",
    "WaldTestResult",
    "compute_inference",
]

# A sample whose observed class gets probability above 1 - this is "perfectly predicted": on
# non-separated data no sample gets there at the maximum-likelihood estimate unless it is an
# extreme outlier, so it triggers the exact (linear-programming) separation check.
_PERFECT_PREDICTION = 1e-6
# Relative size (1 - R^2 of a column on the others) below which the design counts as singular.
_RANK_TOLERANCE = 1e-10
# Largest |gradient| of the scaled objective f / (C * sum s) accepted as "this is the fit's
# optimum on this data"; larger means other data or an unconverged fit.
_STATIONARITY_TOLERANCE = 1e-4
# The separation linear programme has n * (K - 1) rows of 2 p nonzeros; above this many
# nonzeros (about 2 s of HiGHS) it is not solved and separation is only reported as possible.
_SEPARATION_LP_MAX_NONZEROS = 2_000_000
# Rows per chunk for the dense per-sample products: about 2**22 numbers per chunk.
_CHUNK_NUMBERS = 1 << 22


@dataclass(frozen=True)
class WaldTestResult:
    """Wald test of linear restrictions ``R beta = q`` on the stacked parameters.

    Attributes
    ----------
    statistic : float
        ``(R b - q)^T (R cov R^T)^-1 (R b - q)``, chi-squared with ``df`` degrees of freedom
        under the hypothesis.
    df : int
        Number of restrictions (rows of ``R``).
    pvalue : float
    restrictions : DataFrame of shape (df, (K - 1) * p)
        ``R``, with the ``(class, term)`` columns of ``cov``.
    values : ndarray of shape (df,)
        ``q``.
    """

    statistic: float
    df: int
    pvalue: float
    restrictions: pd.DataFrame
    values: np.ndarray


class SeparationWarning(UserWarning):
    """The data are quasi-separated: some coefficients have no finite maximum-likelihood value."""


# ---------------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class LRTestResult:
    """Likelihood-ratio test of a restricted model against a fuller one.

    Attributes
    ----------
    statistic : float
        ``2 * (llf_full - llf_restricted)``, chi-squared with ``df`` degrees of freedom under
        the restricted model.
    df : int
        Difference in the number of free parameters.
    pvalue : float
    """

    statistic: float
    df: int
    pvalue: float


class InferenceSummary:
    """Printable summary: a header of fit statistics and one coefficient table per class block.

    Attributes
    ----------
    header : list of (str, str)
        Name and formatted value of each fit statistic.
    tables : dict
        Non-reference class label -> DataFrame with columns ``coef``, ``std err``, ``z``,
        ``P>|z|`` and the two confidence bounds, one row per term.
    notes : list of str
    problems : list of (str, str)
        Heading and paragraph of each diagnosed problem (separation, rank deficiency),
        printed as a section.
    block_names : dict
        Class label -> the heading of its table (``dependent=level``).
    """

    def __init__(self, title: str, header, tables, notes, problems=(), block_names=None):
        self.title = title
        self.header = list(header)
        self.tables = dict(tables)
        self.notes = list(notes)
        self.problems = list(problems)
        self.block_names = dict(block_names or {})

    def as_text(self) -> str:
        """The summary as plain text."""
        width = 78
        lines = [self.title.center(width), "=" * width]
        half = (len(self.header) + 1) // 2
        left, right = self.header[:half], self.header[half:]
        for row in range(half):
            cells = []
            for column in (left, right):
                if row < len(column):
                    name, value = column[row]
                    cells.append(f"{name + ':':<20}{value:>18}")
                else:
                    cells.append(" " * 38)
            lines.append("  ".join(cells).rstrip())
        for label, table in self.tables.items():
            lines.append("=" * width)
            lines.append(self.block_names.get(label, f"class = {label}"))
            lines.append("-" * width)
            text = table.to_string(float_format=lambda value: f"{value:.4f}")
            lines.extend(text.splitlines())
        lines.append("=" * width)
        for heading, paragraph in self.problems:
            lines.extend([heading, "-" * width, *textwrap.wrap(paragraph, width), "=" * width])
        for note in self.notes:
            lines.extend(textwrap.wrap(f"Note: {note}", width))
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.as_text()

    def __repr__(self) -> str:
        return self.as_text()


class MarginalEffects:
    """Average marginal effects ``dP(y = k | x) / dx_j`` with delta-method standard errors.

    Attributes
    ----------
    effects : DataFrame of shape (d, K)
        One row per feature, one column per class (all classes, the reference included).
    bse, zvalues, pvalues : DataFrame of shape (d, K)
    cov : DataFrame of shape (d * K, d * K) or None
        Covariance of the effects stacked class by class (MultiIndex ``(class, feature)``);
        None for ``at="each"``.
    at : str
        Where the effects are evaluated ("overall": averaged over the samples, "mean": at the
        mean sample, "zero": at x = 0, "each": at every sample, rows ``(sample, feature)``,
        shape (m * d, K)).
    """

    def __init__(self, effects, cov, at, bse=None):
        self.effects = effects
        self.cov = cov
        self.at = at
        if bse is None:
            variances = np.diag(cov.to_numpy()).reshape(effects.shape[1], effects.shape[0]).T
            bse = pd.DataFrame(np.sqrt(variances), index=effects.index, columns=effects.columns)
        self.bse = bse
        self.zvalues = self.effects / self.bse
        self.pvalues = pd.DataFrame(
            2 * scipy.stats.norm.sf(np.abs(self.zvalues.to_numpy())),
            index=effects.index,
            columns=effects.columns,
        )

    def conf_int(self, alpha: float = 0.05) -> pd.DataFrame:
        """Normal confidence intervals, rows ``(class, feature)``, columns ``lower``, ``upper``."""
        return _normal_intervals(self.effects, self.bse, alpha, "feature")

    def summary_frame(self, alpha: float = 0.05) -> pd.DataFrame:
        """One row per ``(class, feature)``: effect, std err, z, P>|z| and the interval."""
        frame = _coefficient_frame(self.effects, self.bse, self.zvalues, self.pvalues, alpha,
                                   "feature")
        return frame.rename(columns={"coef": "dy/dx"})

    def __repr__(self) -> str:
        return f"MarginalEffects(at={self.at!r})\n{self.summary_frame().to_string()}"


class ProbabilityPrediction:
    """Predicted class probabilities with delta-method standard errors and intervals.

    The interval for ``P(y = k | x)`` is the Wald interval of its log-odds
    ``log(P_k / (1 - P_k))``, whose standard error is the delta method through ``cov``,
    mapped back by the logistic function: it lies in (0, 1) and is not symmetric about
    ``proba`` near 0 or 1.

    Attributes
    ----------
    proba : DataFrame of shape (m, K)
        ``P(y = k | x_i)`` at the estimated parameters; columns the classes, index that of
        ``X_new`` when it is a DataFrame.
    se : DataFrame of shape (m, K)
        Delta-method standard errors of ``proba``.
    lower, upper : DataFrame of shape (m, K)
        Bounds of the ``1 - alpha`` interval.
    alpha : float
    """

    def __init__(self, proba, se, lower, upper, alpha):
        self.proba = proba
        self.se = se
        self.lower = lower
        self.upper = upper
        self.alpha = alpha

    def summary_frame(self) -> pd.DataFrame:
        """Long form: rows ``(sample, class)``, columns ``proba``, ``se``, ``lower``,
        ``upper``."""
        return pd.DataFrame({
            name: getattr(self, name).stack() for name in ("proba", "se", "lower", "upper")
        }).rename_axis(["sample", "class"])

    def __repr__(self) -> str:
        return f"ProbabilityPrediction(alpha={self.alpha:g})\n{self.summary_frame()}"


class InferenceResult:
    """Standard errors, tests and a summary of a fitted model, in reference-class form.

    Not constructed directly: see :func:`compute_inference` (``SoftmaxRegression.inference``).

    Attributes
    ----------
    params : DataFrame of shape (p, K - 1)
        Rows ``"intercept"`` (when fitted) then the feature names; one column per non-reference
        class, ``theta_k - theta_reference``.
    bse, zvalues, pvalues : DataFrame of shape (p, K - 1)
        Standard errors, Wald z-statistics and two-sided normal p-values.
    cov : DataFrame of shape ((K - 1) * p, (K - 1) * p)
        Covariance of the stacked parameters: class by class (in ``classes_`` order, reference
        left out), within a class ``"intercept"`` then the features, i.e. the columns of
        ``params`` one after the other. Index and columns are a ``(class, term)`` MultiIndex.
    llf : float
        Log-likelihood ``sum_i s_i log P(y_i | x_i)`` at the fitted parameters.
    llnull : float
        Log-likelihood of the intercept-only model (weighted class frequencies).
    llr, llr_pvalue : float
        Likelihood-ratio statistic against the intercept-only model and its chi2 p-value.
    prsquared : float
        McFadden's pseudo R-squared ``1 - llf / llnull``.
    aic, bic : float
        ``-2 llf + 2 k`` and ``-2 llf + log(nobs) k`` with ``k = (K - 1) * p``.
    nobs : float
        Sum of the weights (the number of samples when unweighted).
    df_model, df_resid : float
        As statsmodels: ``(K - 1) * (p - 1)`` and ``nobs - df_model - (K - 1)``.
    k_params : int
        Number of free parameters ``(K - 1) * p``.
    reference : object
        The reference class label.
    classes : ndarray of shape (K,)
    cov_type : {"nonrobust", "HC0", "HC1", "cluster"}
    n_groups : int or None
        Number of clusters for ``cov_type="cluster"``.
    dependent : str
        Name of the dependent variable (``y.name`` for a named Series, the formula's left-hand
        side, else "y"); the summary names the class blocks ``dependent=level``.
    converged : bool
        True when ``params`` are the optimum: the last Newton step moved no parameter by more
        than ``1e-6`` of its standard error. False when no finite optimum exists
        (separation) or Newton steps did not settle.
    newton_steps : int
        Newton steps taken from the estimator's parameters to the exact optimum (0 when the
        fit was already there). ``params`` are the parameters after those steps; the
        estimator itself is not changed.
    fit_gradient : float
        ``max |gradient|`` of the scaled objective ``f / (C * sum s)`` at the estimator's
        parameters (what its ``tol`` bounds).
    newton_shift : float
        Largest change of a parameter made by those steps, in units of its standard error.
    separation : str or None
        The separation diagnosis (columns, classes and the recommended fix), when any.
    rank_deficiency : str or None
        For a penalised fit on a singular design (which the ridge makes estimable): the
        collinear columns and the fix. An unpenalised fit raises instead.
    term_columns : dict or None
        For a model fitted from a formula: each term of the formula and the columns of the
        design that code it (a factor has several); used by :meth:`wald_test_terms`.
    method : {"mle", "laplace"}
        "laplace" for an L2-penalised fit: ``cov`` is the inverse Hessian of the penalised
        objective (a Laplace approximation of the posterior), not a sampling covariance.
    notes : list of str
        Caveats also printed by ``summary()``.
    """

    def __init__(self, *, params, cov, llf, llnull, nobs, reference, classes, cov_type, method,
                 C, fit_intercept, notes, marginal_context, dependent="y", converged=True,
                 newton_steps=0, fit_gradient=0.0, newton_shift=0.0, n_groups=None,
                 separation=None, rank_deficiency=None):
        self.rank_deficiency = rank_deficiency
        self.dependent = str(dependent)
        self.converged = bool(converged)
        self.newton_steps = int(newton_steps)
        self.fit_gradient = float(fit_gradient)
        self.newton_shift = float(newton_shift)
        self.n_groups = n_groups
        self.separation = separation
        self.term_columns = None  # term -> its columns, set by softmaxreg.formula
        self.params = params
        self.cov = cov
        self.llf = float(llf)
        self.llnull = float(llnull)
        self.nobs = float(nobs)
        self.reference = reference
        self.classes = classes
        self.cov_type = cov_type
        self.method = method
        self.C = C
        self.fit_intercept = fit_intercept
        self.notes = list(notes)
        self._marginal_context = marginal_context

        n_terms, n_blocks = params.shape
        variances = np.diag(cov.to_numpy()).reshape(n_blocks, n_terms).T
        self.bse = pd.DataFrame(np.sqrt(variances), index=params.index, columns=params.columns)
        self.zvalues = params / self.bse
        self.pvalues = pd.DataFrame(
            2 * scipy.stats.norm.sf(np.abs(self.zvalues.to_numpy())),
            index=params.index,
            columns=params.columns,
        )
        self.k_params = n_terms * n_blocks
        self.df_model = float((n_terms - 1) * n_blocks)
        self.df_resid = self.nobs - self.df_model - n_blocks
        self.llr = 2.0 * (self.llf - self.llnull)
        self.llr_pvalue = float(scipy.stats.chi2.sf(self.llr, self.df_model))
        self.prsquared = 1.0 - self.llf / self.llnull if self.llnull != 0 else float("nan")
        self.aic = -2.0 * self.llf + 2.0 * self.k_params
        self.bic = -2.0 * self.llf + math.log(self.nobs) * self.k_params

    # ------------------------------------------------------------------ intervals and tables
    def conf_int(self, alpha: float = 0.05) -> pd.DataFrame:
        """Normal (Wald) confidence intervals.

        Parameters
        ----------
        alpha : float in (0, 1), default=0.05
            One minus the coverage.

        Returns
        -------
        DataFrame of shape ((K - 1) * p, 2)
            Rows a ``(class, term)`` MultiIndex in the stacking order of ``cov``; columns
            ``lower`` and ``upper`` (statsmodels' ``MNLogit`` layout).
        """
        return _normal_intervals(self.params, self.bse, alpha)

    def summary_frame(self, alpha: float = 0.05) -> pd.DataFrame:
        """All coefficients in one frame: rows ``(class, term)``, columns as the summary tables."""
        return _coefficient_frame(self.params, self.bse, self.zvalues, self.pvalues, alpha)

    def summary(self, alpha: float = 0.05) -> InferenceSummary:
        """Printable summary: fit statistics and one coefficient table per class block.

        The header has statsmodels' fields (dependent variable, observations, degrees of
        freedom, convergence, covariance type, pseudo R-squared, log-likelihoods, AIC, BIC);
        the blocks are named ``dependent=level``; a separation diagnosis, when any, is one
        short paragraph naming the columns and the fix.

        Parameters
        ----------
        alpha : float, default=0.05
            For the ``[alpha/2, 1 - alpha/2]`` interval columns.

        Returns
        -------
        InferenceSummary
            ``print(result.summary())`` shows it; ``.tables`` holds the DataFrames.
        """
        covariance = {"nonrobust": "nonrobust", "HC0": "HC0", "HC1": "HC1",
                      "cluster": "cluster"}[self.cov_type]
        if self.method == "laplace":
            method = "Laplace approx."
            covariance = "penalised Hess."
            title = (
                f"Softmax regression, L2 penalty (C={self.C:g}): LAPLACE APPROXIMATION "
                f"(reference: {_level(self.reference)})"
            )
        else:
            method = "MLE"
            title = f"Softmax regression results (reference class: {_level(self.reference)})"
        left = [
            ("Dep. Variable", self.dependent),
            ("Model", "SoftmaxRegression"),
            ("Method", method),
            ("Reference class", _level(self.reference)),
            ("Converged", str(self.converged)),
            ("Covariance Type", covariance),
            ("Newton steps", f"{self.newton_steps}"),
            ("Classes", f"{len(self.classes)}"),
            ("Clusters", f"{self.n_groups}" if self.n_groups is not None else "-"),
        ]
        right = [
            ("No. Observations", f"{self.nobs:g}"),
            ("Df Residuals", f"{self.df_resid:g}"),
            ("Df Model", f"{self.df_model:g}"),
            ("Pseudo R-squ.", f"{self.prsquared:.4f}"),
            ("Log-Likelihood", f"{self.llf:.4f}"),
            ("LL-Null", f"{self.llnull:.4f}"),
            ("LLR p-value", f"{self.llr_pvalue:.4g}"),
            ("AIC", f"{self.aic:.4f}"),
            ("BIC", f"{self.bic:.4f}"),
        ]
        frame = self.summary_frame(alpha)
        tables = {label: frame.xs(label, level="class") for label in self.params.columns}
        names = {label: f"{self.dependent}={_level(label)}" for label in self.params.columns}
        notes = [note for note in self.notes if note != self.separation]
        if self.method == "laplace":
            notes.insert(
                0,
                "Penalised fit: std err, z and P>|z| come from the Laplace approximation (the "
                "inverse Hessian of the penalised objective), a Bayesian posterior under a "
                "Gaussian prior on the coefficients, not sampling-theory errors; the "
                "coefficients are shrunk towards 0 and AIC/BIC count all parameters.",
            )
        if self.newton_steps:
            plural = "s" if self.newton_steps > 1 else ""
            notes.append(
                f"The fit stopped at max|gradient| = {self.fit_gradient:.1e}; inference took "
                f"{self.newton_steps} Newton step{plural} to the exact optimum (parameters "
                f"moved by up to {self.newton_shift:.2g} standard errors)."
            )
        if self.cov_type == "cluster":
            notes.append(
                f"Cluster-robust covariance over {self.n_groups} clusters with the small-sample "
                "factor G/(G-1) (N-1)/(N-k)."
            )
        problems = [("Separation", self.separation)] if self.separation else []
        if self.rank_deficiency:
            problems.append(("Rank deficiency", self.rank_deficiency))
        return InferenceSummary(title, left + right, tables, notes, problems=problems,
                                block_names=names)

    # ------------------------------------------------------------------ predictions
    def predict(self, X, alpha: float = 0.05) -> ProbabilityPrediction:
        """Class probabilities of new samples with standard errors and confidence intervals.

        The standard error of ``P(y = k | x)`` is the delta method through ``cov`` (for every
        class, the reference included); the interval is computed on the log-odds scale and
        mapped back, so it stays in (0, 1). statsmodels' ``MNLogit`` has no equivalent.

        Parameters
        ----------
        X : array-like of shape (m, d)
            Samples, with the features of the fit.
        alpha : float in (0, 1), default=0.05
            One minus the coverage of the intervals.

        Returns
        -------
        ProbabilityPrediction
            ``proba``, ``se``, ``lower``, ``upper``: DataFrames of shape (m, K).
        """
        alpha = _check_alpha(alpha)
        context = self._marginal_context
        X_new = context.check_X(X)
        quantile = scipy.stats.norm.ppf(1 - alpha / 2)
        proba, se, lower, upper = _probability_intervals(
            X_new, self.params.to_numpy().T, self.cov.to_numpy(), context.non_reference,
            len(self.classes), self.fit_intercept, quantile,
        )
        index = X.index if isinstance(X, pd.DataFrame) else None
        labels = list(self.classes)

        def frame(values):
            return pd.DataFrame(values, index=index, columns=labels)

        return ProbabilityPrediction(frame(proba), frame(se), frame(lower), frame(upper), alpha)

    # ------------------------------------------------------------------ tests and effects
    def lr_test(self, other: InferenceResult) -> LRTestResult:
        """Likelihood-ratio test between this model and a nested one fitted on the same data.

        The model with fewer parameters is the restricted one, whichever of the two it is.

        Parameters
        ----------
        other : InferenceResult
            Inference of the other model, on the same samples, classes and weights.

        Returns
        -------
        LRTestResult
            ``statistic = 2 (llf_full - llf_restricted)``, ``df`` the difference in the
            number of parameters, ``pvalue`` from the chi-squared distribution.

        Raises
        ------
        ValueError
            If either model is penalised, the data or classes differ, the models have the same
            number of parameters, or the restricted one's terms are not among the full one's.
        """
        if not isinstance(other, InferenceResult):
            raise TypeError(f"lr_test needs another InferenceResult; got {type(other).__name__}.")
        if self.method != "mle" or other.method != "mle":
            raise ValueError(
                "lr_test needs two unpenalised (penalty=None) fits: the likelihood-ratio "
                "statistic of penalised fits is not chi-squared."
            )
        if not np.array_equal(self.classes, other.classes):
            raise ValueError(
                f"lr_test needs the same classes; got {self.classes.tolist()} and "
                f"{other.classes.tolist()}."
            )
        if not math.isclose(self.nobs, other.nobs, rel_tol=1e-12):
            raise ValueError(
                f"lr_test needs both models fitted on the same samples; the weights sum to "
                f"{self.nobs:g} and {other.nobs:g}."
            )
        if self.k_params == other.k_params:
            raise ValueError(
                f"Both models have {self.k_params} parameters: nested models differ in size."
            )
        full, restricted = (self, other) if self.k_params > other.k_params else (other, self)
        missing = [term for term in restricted.params.index if term not in full.params.index]
        if missing and full._marginal_context.named_features:
            raise ValueError(
                f"The restricted model has terms {missing} that the fuller model lacks: the "
                "models are not nested."
            )
        statistic = 2.0 * (full.llf - restricted.llf)
        if statistic < -1e-6 * max(1.0, abs(full.llf)):
            raise ValueError(
                f"The fuller model has the lower log-likelihood ({full.llf:.6g} < "
                f"{restricted.llf:.6g}): the models are not nested or a fit did not converge."
            )
        statistic = max(statistic, 0.0)
        df = full.k_params - restricted.k_params
        return LRTestResult(statistic, df, float(scipy.stats.chi2.sf(statistic, df)))

    def wald_test(self, hypothesis, values=None) -> WaldTestResult:
        """Wald test of linear hypotheses on the coefficients, jointly across classes.

        Parameters
        ----------
        hypothesis : str, array-like of shape (r, (K - 1) * p) or DataFrame
            A string of comma-separated linear equations in the term names, e.g.
            ``"age = 0, educ = income"`` or ``"2 * age - educ = 1"``. A bare term stands for
            its coefficient in every non-reference class, so ``"age = 0"`` is ``K - 1``
            restrictions: age has no effect on any class. ``"level:term"`` (``"6:age"``) is
            the coefficient of one class. Otherwise the matrix ``R`` of the restrictions
            ``R beta = q`` on the stacked parameters, columns in the order of ``cov`` (a
            DataFrame is aligned on its ``(class, term)`` columns).
        values : array-like of shape (r,), default=None
            ``q`` for the matrix form (zeros by default); not used with a string.

        Returns
        -------
        WaldTestResult
            ``statistic`` (chi-squared), ``df``, ``pvalue``, ``restrictions``, ``values``.

        Raises
        ------
        ValueError
            For an unknown term, a malformed equation, a matrix of the wrong width, or
            restrictions that are linearly dependent.
        """
        columns = self.cov.columns
        if isinstance(hypothesis, str):
            if values is not None:
                raise ValueError("values= is for the matrix form; write it into the equations.")
            spellings = [{str(label), _level(label)} for label in self.params.columns]
            R, q = parse_hypotheses(hypothesis, list(self.params.index), spellings)
        else:
            if isinstance(hypothesis, pd.DataFrame):
                unknown = [c for c in hypothesis.columns if c not in columns]
                if unknown:
                    raise ValueError(f"hypothesis columns {unknown[:5]} are not parameters.")
                hypothesis = hypothesis.reindex(columns=columns, fill_value=0.0)
            R = np.atleast_2d(np.asarray(hypothesis, dtype=np.float64))
            if R.ndim != 2 or R.shape[1] != len(columns):
                raise ValueError(
                    f"The restriction matrix needs {len(columns)} columns (one a parameter, "
                    f"in the order of cov); got shape {R.shape}."
                )
            q = np.zeros(R.shape[0]) if values is None else np.asarray(values, np.float64)
            if q.shape != (R.shape[0],):
                raise ValueError(f"values needs shape ({R.shape[0]},); got {q.shape}.")
        if not np.all(np.isfinite(R)) or not np.all(np.isfinite(q)):
            raise ValueError("The restrictions contain NaN or infinity.")
        estimate = _stack(self.params, "term").to_numpy()
        difference = R @ estimate - q
        middle = R @ self.cov.to_numpy() @ R.T
        factor, info = scipy.linalg.lapack.dpotrf(0.5 * (middle + middle.T), lower=1, clean=1)
        if info != 0:
            raise ValueError(
                "The restrictions are linearly dependent (or repeat one another), so their "
                "covariance is singular: drop the redundant equations."
            )
        whitened = scipy.linalg.solve_triangular(factor, difference, lower=True)
        statistic = float(whitened @ whitened)
        df = R.shape[0]
        return WaldTestResult(statistic, df, float(scipy.stats.chi2.sf(statistic, df)),
                              pd.DataFrame(R, columns=columns), q)

    def wald_test_terms(self) -> pd.DataFrame:
        """Joint Wald test, for every term, that it has no effect on any class.

        A term is a feature, or for a model fitted from a formula a term of the formula (a
        factor counts all its columns); the test restricts all its coefficients in all
        ``K - 1`` non-reference blocks to 0. statsmodels' ``wald_test_terms`` does not run on
        ``MNLogit``.

        Returns
        -------
        DataFrame
            One row per term; columns ``chi2``, ``df``, ``P>chi2``.
        """
        terms = list(self.params.index)
        groups = self.term_columns or {term: [term] for term in terms}
        position = {(label, term): i for i, (label, term) in enumerate(self.cov.columns)}
        rows = {}
        for name, members in groups.items():
            R = np.zeros((len(members) * len(self.params.columns), len(self.cov.columns)))
            for row, (label, term) in enumerate(
                (label, term) for label in self.params.columns for term in members
            ):
                R[row, position[(label, term)]] = 1.0
            test = self.wald_test(R)
            rows[name] = (test.statistic, test.df, test.pvalue)
        return pd.DataFrame.from_dict(rows, orient="index", columns=["chi2", "df", "P>chi2"])

    def marginal_effects(self, X=None, at: str = "overall") -> MarginalEffects:
        """Marginal effects of the features on every class probability, delta-method errors.

        ``dP(y = k | x) / dx_j = P_k(x) (beta_kj - sum_l P_l(x) beta_lj)``, as statsmodels'
        ``get_margeff(method="dydx")``; the standard errors propagate ``cov`` through the
        analytic Jacobian of the effects with respect to the parameters.

        Parameters
        ----------
        X : array-like of shape (m, d) or None, default=None
            Samples to evaluate on; None means the data of the inference (with its weights).
        at : {"overall", "mean", "zero", "each"}, default="overall"
            "overall": the (weighted) average of the effects over the samples; "mean": the
            effect at the (weighted) mean sample; "zero": at x = 0; "each": the effect at every
            sample with its own delta-method error (rows ``(sample, feature)``; no ``cov``).

        Returns
        -------
        MarginalEffects
            ``effects`` [d, K] (rows features, columns all classes), ``bse``, ``zvalues``,
            ``pvalues``, ``conf_int()``, ``cov``.
        """
        context = self._marginal_context
        if at not in ("overall", "mean", "zero", "each"):
            raise ValueError(f"at must be 'overall', 'mean', 'zero' or 'each'; got at={at!r}.")
        if X is None:
            X_eval, weights = context.X, context.sample_weight
        else:
            X_eval = context.check_X(X)
            weights = np.ones(X_eval.shape[0])
        n_features = context.theta.shape[1] - int(self.fit_intercept)
        if at == "mean":
            X_eval = _weighted_column_mean(X_eval, weights)[None, :]
            weights = np.ones(1)
        elif at == "zero":
            X_eval = np.zeros((1, n_features))
            weights = np.ones(1)
        feature_names = list(context.feature_names)
        labels = list(self.classes)
        if at == "each":
            return self._marginal_effects_each(X_eval, X, feature_names, labels)
        effects, jacobian = _marginal_effects_and_jacobian(
            X_eval, weights, context.theta_reference, self.fit_intercept, context.non_reference
        )
        effects_cov = jacobian @ self.cov.to_numpy() @ jacobian.T
        frame = pd.DataFrame(effects.T, index=feature_names, columns=labels)
        stacked = pd.MultiIndex.from_product([labels, feature_names], names=["class", "feature"])
        cov = pd.DataFrame(effects_cov, index=stacked, columns=stacked)
        return MarginalEffects(frame, cov, at)

    def _marginal_effects_each(self, X_eval, X, feature_names, labels) -> MarginalEffects:
        """Effects at every sample, each with its delta-method error (one Jacobian a row)."""
        context = self._marginal_context
        cov = self.cov.to_numpy()
        m, d, K = X_eval.shape[0], len(feature_names), len(labels)
        effects = np.empty((m, d, K))
        bse = np.empty((m, d, K))
        for i in range(m):
            row_effects, jacobian = _marginal_effects_and_jacobian(
                X_eval[i : i + 1], np.ones(1), context.theta_reference, self.fit_intercept,
                context.non_reference,
            )
            effects[i] = row_effects.T
            variance = np.einsum("ab,ab->a", jacobian @ cov, jacobian).reshape(K, d)
            bse[i] = np.sqrt(np.clip(variance, 0.0, None)).T
        samples = list(X.index) if isinstance(X, pd.DataFrame) else list(range(m))
        rows = pd.MultiIndex.from_product([samples, feature_names], names=["sample", "feature"])
        return MarginalEffects(
            pd.DataFrame(effects.reshape(m * d, K), index=rows, columns=labels),
            None,
            "each",
            bse=pd.DataFrame(bse.reshape(m * d, K), index=rows, columns=labels),
        )

    def __repr__(self) -> str:
        return (
            f"InferenceResult(method={self.method!r}, cov_type={self.cov_type!r}, "
            f"reference={self.reference!r}, nobs={self.nobs:g}, llf={self.llf:.6g})"
        )


@dataclass
class _MarginalContext:
    """What ``marginal_effects`` needs from the inference run (data referenced, not copied)."""

    X: object
    sample_weight: np.ndarray
    theta: np.ndarray  # symmetric parameters [K, p]
    theta_reference: np.ndarray  # theta - theta[reference], [K, p]
    non_reference: np.ndarray  # indices of the non-reference classes
    feature_names: list
    named_features: bool
    check_X: object


# ---------------------------------------------------------------------------------------------
# Entry point
# ---------------------------------------------------------------------------------------------
def compute_inference(
    estimator,
    X,
    y,
    sample_weight=None,
    reference=None,
    robust: bool = False,
    cov_type: str | None = None,
    groups=None,
) -> InferenceResult:
    """Covariance, standard errors, tests and summary of a fitted ``SoftmaxRegression``.

    Parameters
    ----------
    estimator : SoftmaxRegression
        Fitted with ``penalty=None`` (maximum likelihood) or ``penalty="l2"`` (Laplace
        approximation). Any ``tol`` will do: inference takes the Newton steps the fit left
        out, so its parameters and errors are those of the exact optimum (see
        ``InferenceResult.newton_steps``); the estimator is not changed.
    X : {array-like, sparse matrix} of shape (n, d)
        The training data of the fit.
    y : array-like of shape (n,)
        Its labels; every label must be one of ``estimator.classes_``.
    sample_weight : array-like of shape (n,), default=None
        The sample weights of the fit, read as frequency weights.
    reference : label or None, default=None
        The reference class; None means ``classes_[0]`` (statsmodels' ``MNLogit`` choice).
    robust : bool, default=False
        Huber-White (HC0) sandwich covariance instead of the inverse observed information
        (unpenalised fits only); the same as ``cov_type="HC0"``.
    cov_type : {"nonrobust", "HC0", "HC1", "cluster"} or None, default=None
        The covariance of the maximum-likelihood estimate. None means "HC0" when ``robust``
        and "nonrobust" otherwise. With ``H`` the observed information, ``u_i`` the score of
        sample ``i``, ``N`` the sum of the weights and ``k = (K - 1) * p`` the number of
        parameters:

        - "nonrobust": ``H^-1``;
        - "HC0": ``H^-1 (sum_i s_i u_i u_i^T) H^-1`` (Huber-White);
        - "HC1": HC0 times ``N / (N - k)`` (statsmodels' ``cov_white_simple(...,
          use_correction=True)``; note that statsmodels' ``MNLogit.fit(cov_type="HC1")``
          returns HC0 unchanged);
        - "cluster": ``H^-1 (sum_g U_g U_g^T) H^-1 * G / (G - 1) * (N - 1) / (N - k)`` with
          ``U_g`` the weighted sum of the scores of cluster ``g`` and ``G`` the number of
          clusters: the CR1 correction that statsmodels applies by default
          (``use_correction=True``). Inference stays normal (z), as statsmodels' ``MNLogit``,
          whose ``df_correction`` only changes the degrees of freedom of t-based models.

        The robust types need an unpenalised fit.
    groups : array-like of shape (n,), default=None
        Cluster labels (any hashable values), one per sample; required by, and only allowed
        with, ``cov_type="cluster"``.

    Returns
    -------
    InferenceResult

    Raises
    ------
    ValueError
        For an L1-type penalty (no valid errors exist after selection), a robust ``cov_type``
        with a penalty, an unknown ``cov_type``, ``groups`` of the wrong length or without
        ``cov_type="cluster"``, an unknown reference or label, a singular design of an
        unpenalised fit (naming the columns), complete separation of the classes, or a
        singular information matrix.

    Warns
    -----
    SeparationWarning
        When the data are quasi-separated: some samples are perfectly predicted, or a
        one-signed column (a dummy) is zero in every sample of a class. No Newton steps are
        taken then (no finite optimum exists) and ``converged`` is False.
    UserWarning
        When the fitted parameters are not the optimum of the objective on ``X, y`` (other
        data, or an unconverged fit), or with ``class_weight``.
    """
    check_is_fitted(estimator)
    penalty = Penalty.from_params(estimator.penalty, estimator.l1_ratio)
    if penalty.nonsmooth_strength > 0:
        raise ValueError(
            f"Standard errors are not available for penalty={estimator.penalty!r}: an L1-type "
            "penalty selects variables (coefficients exactly 0), and errors computed after that "
            "selection ignore it, so they are too small and their p-values invalid (no valid "
            "post-selection errors exist in this framework). Refit the selected features with "
            "penalty=None for maximum-likelihood errors, or use penalty='l2' for a Laplace "
            "approximation."
        )
    ridge = penalty.smooth_strength  # factor of 0.5 ||W||^2 in f (0 without penalty)
    laplace = ridge > 0
    cov_type = _resolve_cov_type(cov_type, robust, groups, laplace)
    fit_intercept = bool(estimator.fit_intercept)
    classes = estimator.classes_
    n_classes = len(classes)
    reference_index = _reference_index(classes, reference)
    dependent = _dependent_name(y)

    X, codes, weights, group_codes = _checked_data(estimator, X, y, sample_weight, groups)
    feature_names, named_features = _feature_names(estimator, X.shape[1])
    # the ridge identifies collinear columns, the likelihood alone does not
    rank_note = _check_design_rank(X, weights, fit_intercept, feature_names, laplace)

    theta = _symmetric_params(estimator)
    K, p = theta.shape
    C = float(estimator.C)
    if not laplace:
        _check_classes_present(codes, weights, classes)
    fit_gradient = _check_stationarity(X, codes, theta, weights, fit_intercept, C, ridge)

    notes = []
    if estimator.class_weight is not None:
        message = (
            "class_weight is applied as in the fit, so the weights are not frequency weights "
            "and the likelihood is a weighted pseudo-likelihood; robust errors are the "
            "appropriate ones."
        )
        notes.append(message)
        if cov_type == "nonrobust":
            warnings.warn(message, UserWarning, stacklevel=3)
    separation_note = None
    if not laplace:
        separation_note = _check_empty_cells(X, codes, weights, classes, feature_names)
        if separation_note is None:
            separation_note = _check_separation(X, codes, theta, weights, fit_intercept,
                                                classes, reference_index, feature_names)

    # --- the exact optimum, and the covariance there, on the free coordinates ---------------
    non_reference = np.array([k for k in range(K) if k != reference_index], dtype=np.intp)
    if laplace:
        fixed = [reference_index * p + p - 1] if fit_intercept else []
        free = np.setdiff1d(np.arange(K * p), fixed)
    else:
        free = (non_reference[:, None] * p + np.arange(p)[None, :]).ravel()
    objective = _FreeObjective(X, codes, weights, fit_intercept, C if laplace else 1.0, ridge,
                               free, theta.shape)
    try:
        optimum = _newton_to_optimum(objective, theta, polish=separation_note is None)
    except ValueError:
        if separation_note is None:
            raise
        raise ValueError(f"No standard errors exist. {separation_note}") from None
    theta = optimum.theta
    converged = optimum.converged
    if separation_note is None and not laplace and (
        not converged or optimum.steps > _NEWTON_STEPS_EXPECTED
    ):
        # Many Newton steps are the signature of a likelihood rising for ever.
        separation_note = _check_separation(X, codes, theta, weights, fit_intercept, classes,
                                            reference_index, feature_names, force=True)
        converged = converged and separation_note is None
    if not optimum.converged and separation_note is None:
        warnings.warn(
            f"Newton steps from the fit did not reach the optimum in {optimum.steps} steps; "
            "the standard errors may be inaccurate. Check the data for near-separation.",
            UserWarning,
            stacklevel=3,
        )
    if separation_note:
        notes.append(separation_note)
    covariance_free = optimum.covariance
    if cov_type != "nonrobust":
        meat = _score_outer_product(X, codes, theta, weights, fit_intercept, non_reference,
                                    group_codes if cov_type == "cluster" else None)
        covariance_free = covariance_free @ meat @ covariance_free
        covariance_free *= _small_sample_factor(cov_type, weights.sum(), free.size, group_codes)
    covariance_full = np.zeros((K * p, K * p))
    covariance_full[np.ix_(free, free)] = covariance_free
    covariance_reference = _contrast_covariance(covariance_full, K, p, reference_index)

    # --- reference form, output order: intercept first within a class -----------------------
    order = np.r_[p - 1, : p - 1] if fit_intercept else np.arange(p)
    theta_reference = theta - theta[reference_index]
    params_blocks = theta_reference[non_reference][:, order]  # [K-1, p]
    covariance_reference = covariance_reference[:, order][:, :, :, order]
    covariance_reference = covariance_reference.reshape((K - 1) * p, (K - 1) * p)
    covariance_reference = 0.5 * (covariance_reference + covariance_reference.T)

    terms = (["intercept"] if fit_intercept else []) + list(feature_names)
    labels = [classes[k] for k in non_reference]
    params = pd.DataFrame(params_blocks.T, index=terms, columns=labels)
    stacked = pd.MultiIndex.from_product([labels, terms], names=["class", "term"])
    cov = pd.DataFrame(covariance_reference, index=stacked, columns=stacked)

    llf = -_loss.loss(X, codes, theta, weights, fit_intercept)
    class_totals = np.bincount(codes, weights=weights, minlength=n_classes)
    total = class_totals.sum()
    present = class_totals > 0
    llnull = float(np.sum(class_totals[present] * np.log(class_totals[present] / total)))

    context = _MarginalContext(
        X=X,
        sample_weight=weights,
        theta=theta,
        theta_reference=theta_reference,
        non_reference=non_reference,
        feature_names=list(feature_names),
        named_features=named_features,
        check_X=lambda new_X: _check_new_X(estimator, new_X),
    )
    shift_in_errors = np.abs(optimum.shift) / np.sqrt(np.diag(optimum.covariance))
    return InferenceResult(
        params=params,
        cov=cov,
        llf=llf,
        llnull=llnull,
        nobs=total,
        reference=classes[reference_index],
        classes=classes,
        cov_type=cov_type,
        method="laplace" if laplace else "mle",
        C=C,
        fit_intercept=fit_intercept,
        notes=notes,
        marginal_context=context,
        dependent=dependent,
        converged=converged,
        newton_steps=optimum.steps,
        fit_gradient=fit_gradient,
        newton_shift=float(shift_in_errors.max()) if shift_in_errors.size else 0.0,
        n_groups=None if group_codes is None else int(group_codes.max() + 1),
        separation=separation_note,
        rank_deficiency=rank_note,
    )


# ---------------------------------------------------------------------------------------------
# Input checks
# ---------------------------------------------------------------------------------------------
def _reference_index(classes: np.ndarray, reference) -> int:
    if reference is None:
        return 0
    matches = np.flatnonzero(classes == reference)
    if matches.size != 1:
        raise ValueError(
            f"reference={reference!r} is not one of the classes {classes.tolist()}."
        )
    return int(matches[0])


def _checked_data(estimator, X, y, sample_weight, groups=None):
    """``X`` as float64 (CSR kept), ``y`` as class codes, total weights, cluster codes;
    zero-weight rows dropped.

    Returns
    -------
    X : ndarray or CSR matrix of shape (m, d), float64
    codes : ndarray of shape (m,), intp
    weights : ndarray of shape (m,), float64, all > 0
    group_codes : ndarray of shape (m,), intp, or None
        Cluster index ``0 .. G-1`` of each kept sample.
    """
    X = validate_data(estimator, X, accept_sparse="csr", dtype=[np.float64, np.float32],
                      reset=False)
    X = X.astype(np.float64, copy=False)
    y = column_or_1d(y, warn=True)
    if y.shape[0] != X.shape[0]:
        raise ValueError(f"X has {X.shape[0]} samples but y has {y.shape[0]} labels.")
    classes = estimator.classes_
    codes = np.searchsorted(classes, y)
    codes = np.clip(codes, 0, len(classes) - 1)
    unknown = classes[codes] != y
    if np.any(unknown):
        raise ValueError(
            f"y contains labels {np.unique(y[unknown]).tolist()} that are not among the fitted "
            f"classes {classes.tolist()}: inference needs the training data."
        )
    sample_weight = check_sample_weight(sample_weight, X.shape[0], np.float64)
    # The weights of the fit: sample_weight times class_weight[y].
    weights = estimator._total_weight(y, classes, codes, sample_weight, np.float64)
    weights = np.ones(X.shape[0]) if weights is None else np.asarray(weights, dtype=np.float64)
    group_codes = None
    if groups is not None:
        groups = np.asarray(groups)
        if groups.ndim != 1 or groups.shape[0] != X.shape[0]:
            raise ValueError(
                f"groups must hold one cluster label per sample: X has {X.shape[0]} samples "
                f"but groups has shape {groups.shape}."
            )
        if groups.dtype.kind == "f" and np.isnan(groups).any():
            raise ValueError("groups contains NaN: every sample needs a cluster label.")
    keep = weights > 0
    if not np.all(keep):
        X, codes, weights = X[keep], codes[keep], weights[keep]
        groups = None if groups is None else groups[keep]
    if groups is not None:
        _, group_codes = np.unique(groups, return_inverse=True)
        group_codes = group_codes.astype(np.intp).ravel()
        if group_codes.max() < 1:
            raise ValueError(
                "cov_type='cluster' needs at least 2 clusters; groups has a single label."
            )
    return X, codes.astype(np.intp), weights, group_codes


_COV_TYPES = ("nonrobust", "HC0", "HC1", "cluster")


def _resolve_cov_type(cov_type, robust: bool, groups, laplace: bool) -> str:
    """The covariance type from ``cov_type`` and the older ``robust`` flag, checked."""
    if cov_type is None:
        cov_type = "HC0" if robust else "nonrobust"
    if cov_type not in _COV_TYPES:
        raise ValueError(f"cov_type must be one of {list(_COV_TYPES)}; got {cov_type!r}.")
    if robust and cov_type == "nonrobust":
        raise ValueError("robust=True contradicts cov_type='nonrobust'; pass only cov_type.")
    if (groups is None) != (cov_type != "cluster"):
        raise ValueError(
            "cov_type='cluster' needs groups= (one cluster label per sample)"
            if groups is None
            else f"groups= is only used with cov_type='cluster'; got cov_type={cov_type!r}."
        )
    if laplace and cov_type != "nonrobust":
        raise ValueError(
            f"cov_type={cov_type!r} (robust=True) needs an unpenalised fit (penalty=None): "
            "the sandwich estimator is a sampling covariance of the maximum-likelihood "
            "estimate, while the errors of an L2-penalised fit come from the Laplace "
            "approximation."
        )
    return cov_type


def _small_sample_factor(cov_type: str, nobs: float, n_params: int, group_codes) -> float:
    """The factor statsmodels applies to the sandwich (HC1, and CR1 for clusters)."""
    if cov_type in ("HC1", "cluster") and nobs <= n_params:
        raise ValueError(
            f"cov_type={cov_type!r} needs more observations ({nobs:g}) than parameters "
            f"({n_params}) for its small-sample factor N / (N - k)."
        )
    if cov_type == "HC1":
        return nobs / (nobs - n_params)
    if cov_type == "cluster":
        n_groups = int(group_codes.max()) + 1
        return n_groups / (n_groups - 1) * (nobs - 1) / (nobs - n_params)
    return 1.0


def _dependent_name(y) -> str:
    name = getattr(y, "name", None)
    return "y" if name is None else str(name)


def _check_new_X(estimator, X):
    X = validate_data(estimator, X, accept_sparse="csr", dtype=[np.float64, np.float32],
                      reset=False)
    return X.astype(np.float64, copy=False)


def _feature_names(estimator, n_features: int) -> tuple[list[str], bool]:
    names = getattr(estimator, "feature_names_in_", None)
    if names is not None:
        return [str(name) for name in names], True
    return [f"x{j}" for j in range(n_features)], False


def _symmetric_params(estimator) -> np.ndarray:
    """``[coef_, intercept_]`` [K, p] in float64 (the layout of ``_loss``)."""
    coef = np.asarray(estimator.coef_, dtype=np.float64)
    if estimator.fit_intercept:
        return np.hstack([coef, np.asarray(estimator.intercept_, dtype=np.float64)[:, None]])
    return coef.copy()


def _check_classes_present(codes, weights, classes) -> None:
    totals = np.bincount(codes, weights=weights, minlength=len(classes))
    absent = classes[totals <= 0]
    if absent.size:
        raise ValueError(
            f"Classes {absent.tolist()} have no samples (of positive weight) in y: their "
            "maximum-likelihood intercepts are -infinity, so no standard errors exist."
        )


def _check_stationarity(X, codes, theta, weights, fit_intercept, C, ridge) -> float:
    """``max |gradient of f / (C * sum s)|`` at ``theta``; warn when it is far from 0, i.e.
    ``theta`` is not the fit on this data (other data, or a fit stopped early)."""
    _, gradient = _loss.loss_gradient(X, codes, theta, weights, fit_intercept)
    if ridge:
        gradient[:, : theta.shape[1] - int(fit_intercept)] += (ridge / C) * theta[
            :, : theta.shape[1] - int(fit_intercept)
        ]
    largest = float(np.max(np.abs(gradient))) / float(weights.sum())
    if largest > _STATIONARITY_TOLERANCE:
        warnings.warn(
            f"The fitted parameters are not the optimum of the objective on this data "
            f"(max |gradient of f / (C * sum of weights)| = {largest:.2e}): pass the training "
            "data and weights of the fit. Inference continues from them with Newton steps to "
            "the optimum on this data, so its params differ from the estimator's coef_.",
            UserWarning,
            stacklevel=4,
        )
    return largest


def _weighted_gram(X, weights, fit_intercept):
    """``Xc^T diag(s) Xc`` [d, d], with ``Xc`` centred at the weighted mean when an intercept is
    fitted (a constant column then becomes a zero column)."""
    total = weights.sum()
    if sp.issparse(X):
        gram = np.asarray((X.T @ X.multiply(weights[:, None]).tocsr()).toarray())
        if fit_intercept:
            mean = np.asarray(X.T @ weights).ravel() / total
            gram -= total * np.outer(mean, mean)
        return gram
    if fit_intercept:
        X = X - (weights @ X) / total
    return X.T @ (X * weights[:, None])


def _check_design_rank(X, weights, fit_intercept, feature_names,
                       laplace: bool = False) -> str | None:
    """Raise ``ValueError`` naming the columns when ``[X, 1]`` (weighted) has deficient rank;
    for a penalised fit (``laplace``), where the ridge identifies them, return a note instead.

    Uses the Cholesky factorisation with complete pivoting of the correlation-scaled Gram
    matrix: a column whose part not explained by the others is below ``_RANK_TOLERANCE`` of
    its size is dependent.
    """
    gram = _weighted_gram(X, weights, fit_intercept)
    scale = np.sqrt(np.clip(np.diag(gram), 0, None))
    largest = float(scale.max()) if scale.size else 0.0
    degenerate = scale <= 1e-12 * max(largest, 1e-300)
    problems = []
    if np.any(degenerate):
        what = "constant (collinear with the intercept)" if fit_intercept else "zero everywhere"
        problems.append(f"{_quote(feature_names, np.flatnonzero(degenerate))} {what}")
    kept = np.flatnonzero(~degenerate)
    if kept.size:
        correlation = gram[np.ix_(kept, kept)] / np.outer(scale[kept], scale[kept])
        _, pivots, rank, _ = scipy.linalg.lapack.dpstrf(correlation, tol=_RANK_TOLERANCE,
                                                        lower=1)
        pivots = pivots - 1  # LAPACK is 1-based
        if rank < kept.size:
            independent = pivots[:rank]
            for dependent in pivots[rank:]:
                coefficients = np.linalg.lstsq(
                    correlation[np.ix_(independent, independent)],
                    correlation[independent, dependent],
                    rcond=None,
                )[0]
                partners = independent[np.abs(coefficients) > 1e-6]
                column = _quote(feature_names, kept[[dependent]])
                if partners.size == 1:
                    how = "up to scale and shift" if fit_intercept else "up to scale"
                    partner = _quote(feature_names, kept[partners])
                    problems.append(f"{column} duplicates {partner} ({how})")
                else:
                    problems.append(f"{column} is a linear combination of "
                                    f"{_quote(feature_names, kept[np.sort(partners)])}")
    if not problems:
        return None
    shown = "; ".join(problems[:4]) + (f"; and {len(problems) - 4} more" if len(problems) > 4
                                       else "")
    if laplace:
        return (
            f"{shown}. The likelihood cannot tell these columns apart, so their coefficients "
            "are set by the penalty alone (harmless for predictions). Fix, where the "
            "coefficients matter: drop the first-named column of each item and refit."
        )
    raise ValueError(
        f"The design matrix is singular, so the coefficients are not identified and no "
        f"standard errors exist: {shown}. Fix: drop the first-named column of each item (for "
        "a one-hot factor, one level: dummy coding) and refit."
    )


def _quote(feature_names, indices, shown: int = 6) -> str:
    return _shortened([repr(feature_names[j]) for j in indices], shown)


# ---------------------------------------------------------------------------------------------
# Separation
# ---------------------------------------------------------------------------------------------
def _check_separation(X, codes, theta, weights, fit_intercept, classes, reference_index,
                      feature_names, force: bool = False) -> str | None:
    """Raise on complete separation, warn on confirmed quasi-separation; return a note.

    Perfectly predicted samples (observed-class probability above ``1 - 1e-6``), or
    ``force`` (Newton steps that do not settle), trigger the exact check: a direction ``V``
    [K, p] with ``(V_{y_i} - V_k) . x_i >= 0`` for every sample and class, strictly for some,
    along which the likelihood rises for ever. It is the optimum of a linear programme
    (Konis, 2007), solved by HiGHS.
    """
    log_proba = _loss.log_softmax(_loss.raw_prediction(X, theta, fit_intercept))
    observed = log_proba[np.arange(X.shape[0]), codes]
    perfect = observed > np.log1p(-_PERFECT_PREDICTION)
    if not np.any(perfect) and not force:
        return None
    n_perfect, n = int(perfect.sum()), X.shape[0]
    K, p = theta.shape
    direction = None
    if n * (K - 1) * 2 * p <= _SEPARATION_LP_MAX_NONZEROS:
        direction = _separating_direction(X, codes, K, fit_intercept)
        if direction is None:
            return None  # extreme but legitimate predictions
    elif force and not np.any(perfect):
        return None  # too large to check, and nothing points at separation
    if n_perfect == n:
        raise ValueError(
            "The classes are completely separated (every sample is predicted with probability "
            "1): the maximum-likelihood estimate does not exist (the coefficients diverge), so "
            "no standard errors exist. Fix: fit with penalty='l2' (Laplace approximation)."
        )
    if direction is None:
        message = (
            f"{n_perfect} of {n} samples are predicted with probability > 1 - "
            f"{_PERFECT_PREDICTION:g}: the data may be quasi-separated, in which case some "
            "coefficients have no finite maximum-likelihood value and their standard errors "
            "are meaningless. Fix: refit with penalty='l2' (Laplace approximation)."
        )
    else:
        contrast = direction - direction[reference_index]
        terms = [*feature_names, "intercept"] if fit_intercept else list(feature_names)
        scale = float(np.abs(contrast).max())
        involved = [
            f"{_level(classes[k])}:{terms[j]}"
            for k, j in zip(*np.nonzero(np.abs(contrast) > 1e-6 * scale), strict=True)
        ]
        perfectly = f" ({n_perfect} of {n} samples predicted perfectly)" if n_perfect else ""
        message = (
            "The data are quasi-separated: the likelihood keeps rising along a direction "
            f"involving {_shortened(involved)}{perfectly}. Those coefficients have no finite "
            "maximum-likelihood value and their standard errors are meaningless. Fix: refit "
            "with penalty='l2' (Laplace approximation)."
        )
    warnings.warn(message, SeparationWarning, stacklevel=4)
    return message


def _shortened(names: list, shown: int = 8) -> str:
    """The first ``shown`` names, then how many more: messages stay one short paragraph."""
    text = ", ".join(names[:shown])
    return text + (f" and {len(names) - shown} more" if len(names) > shown else "")


def _check_empty_cells(X, codes, weights, classes, feature_names) -> str | None:
    """Warn and return a note when a one-signed column is zero in every sample of a class.

    Such a column (a dummy of a level that no sample of class ``k`` has) makes the
    likelihood rise for ever as its class-``k`` coefficient goes to minus infinity: a
    quasi-separation that predicts no sample perfectly, so the screen of
    :func:`_check_separation` does not see it. One sparse product counts the cells.
    """
    nonzero = (X != 0) if sp.issparse(X) else sp.csr_matrix(X != 0)
    if sp.issparse(X):
        lowest = np.asarray(X.min(axis=0).toarray()).ravel()
        highest = np.asarray(X.max(axis=0).toarray()).ravel()
    else:
        lowest, highest = X.min(axis=0), X.max(axis=0)
    one_signed = (lowest >= 0) | (highest <= 0)
    K = len(classes)
    indicator = sp.csr_matrix((weights, (np.arange(codes.size), codes)), shape=(codes.size, K))
    cells = np.asarray((nonzero.T.astype(np.float64) @ indicator).todense())  # [d, K]
    empty = one_signed[:, None] & (cells <= 0) & (cells.sum(axis=1, keepdims=True) > 0)
    columns = np.flatnonzero(empty.any(axis=1))
    if columns.size == 0:
        return None
    described = [
        f"{feature_names[j]!r} (class{'es' if empty[j].sum() > 1 else ''} "
        f"{', '.join(_level(classes[k]) for k in np.flatnonzero(empty[j]))})"
        for j in columns
    ]
    message = (
        f"Quasi-separation: {_shortened(described, 6)} {'is' if columns.size == 1 else 'are'} "
        "zero in every sample of the classes named, so those coefficients diverge (no finite "
        "maximum-likelihood value) and their standard errors are meaningless. Fix: merge these "
        "rare levels into others (or drop the columns) and refit."
    )
    warnings.warn(message, SeparationWarning, stacklevel=4)
    return message


def _separating_direction(X, codes, n_classes, fit_intercept) -> np.ndarray | None:
    """A separating direction ``V`` [K, p], or None when the classes overlap.

    Linear programme in the K * p entries of ``V`` only (few columns, so the dual simplex is
    fast): maximise the sum of the margins ``(V_{y_i} - V_k) . x_i`` over all samples and
    classes ``k != y_i`` subject to every margin being >= 0 and ``-1 <= V <= 1``. The optimum
    is positive exactly when the data are (quasi-)separated; the direction found is then
    checked in exact arithmetic, since the solver tolerates violations of about 1e-7 a row.
    """
    from scipy.optimize import linprog

    rows = _augmented_dense(X, fit_intercept)
    n, p = rows.shape
    K = n_classes
    other = np.array([[k for k in range(K) if k != c] for c in range(K)])[codes]  # [n, K-1]
    m = n * (K - 1)
    sample = np.repeat(np.arange(n), K - 1)
    values = rows[sample]  # [m, p]
    columns = np.arange(p)[None, :]
    margins = sp.csr_matrix(
        (
            np.concatenate([values.ravel(), -values.ravel()]),
            (
                np.concatenate([np.repeat(np.arange(m), p)] * 2),
                np.concatenate([
                    (codes[sample][:, None] * p + columns).ravel(),
                    (other.ravel()[:, None] * p + columns).ravel(),
                ]),
            ),
        ),
        shape=(m, K * p),
    )
    total_margin = np.asarray(margins.sum(axis=0)).ravel()
    solution = linprog(-total_margin, A_ub=-margins, b_ub=np.zeros(m), bounds=(-1.0, 1.0),
                       method="highs")
    if solution.status != 0:
        return None
    direction = solution.x
    achieved = margins @ direction
    scale = float(np.abs(rows).sum(axis=1).max())  # the largest margin |V| <= 1 allows
    if achieved.max() <= 1e-6 * scale or achieved.min() < -1e-6 * scale:
        return None
    return direction.reshape(K, p)


# ---------------------------------------------------------------------------------------------
# Newton steps to the exact optimum
# ---------------------------------------------------------------------------------------------
# A step that moves no parameter by more than this fraction of its standard error ends the
# Newton iteration: the covariance there differs from the one at the optimum by far less than
# the 1e-6 relative that makes two implementations agree, and the step is still applied.
_NEWTON_STEP_IN_ERRORS = 1e-6
# Newton converges quadratically from any fit that is close; more steps mean divergence.
_NEWTON_MAX_STEPS = 30
# More steps than this from a fit trigger the exact separation check.
_NEWTON_STEPS_EXPECTED = 8


class _FreeObjective:
    """``f = scale * loss + 0.5 * ridge * ||W||^2`` with its gradient and Hessian restricted
    to the free coordinates ``free`` of ``theta.ravel()`` (the layout of ``_loss``)."""

    def __init__(self, X, codes, weights, fit_intercept, scale, ridge, free, shape):
        self.X, self.codes, self.weights = X, codes, weights
        self.fit_intercept = fit_intercept
        self.scale, self.ridge, self.free = scale, ridge, free
        self.n_coef = shape[1] - int(fit_intercept)

    def value(self, theta: np.ndarray) -> float:
        value = self.scale * _loss.loss(self.X, self.codes, theta, self.weights,
                                        self.fit_intercept)
        if self.ridge:
            value += 0.5 * self.ridge * float(np.sum(theta[:, : self.n_coef] ** 2))
        return value

    def gradient(self, theta: np.ndarray) -> np.ndarray:
        _, gradient = _loss.loss_gradient(self.X, self.codes, theta, self.weights,
                                          self.fit_intercept)
        gradient *= self.scale
        if self.ridge:
            gradient[:, : self.n_coef] += self.ridge * theta[:, : self.n_coef]
        return gradient.ravel()[self.free]

    def hessian(self, theta: np.ndarray) -> np.ndarray:
        hessian = _loss.hessian(self.X, self.codes, theta, self.weights, self.fit_intercept)
        hessian *= self.scale
        if self.ridge:
            ridge_diagonal = np.zeros(theta.shape)
            ridge_diagonal[:, : self.n_coef] = self.ridge
            hessian[np.diag_indices_from(hessian)] += ridge_diagonal.ravel()
        return hessian[np.ix_(self.free, self.free)]


@dataclass
class _Optimum:
    theta: np.ndarray  # [K, p], symmetric layout
    covariance: np.ndarray  # inverse Hessian on the free coordinates, at theta
    steps: int
    converged: bool
    shift: np.ndarray  # theta - the estimator's, on the free coordinates


def _newton_to_optimum(objective: _FreeObjective, theta: np.ndarray, polish: bool) -> _Optimum:
    """Newton steps from the fit's ``theta`` until the step is below
    ``_NEWTON_STEP_IN_ERRORS`` standard errors, each halved until ``f`` does not rise.

    The Hessian of every step is the one the covariance needs anyway, so a fit already at its
    optimum costs one Hessian, as before. With ``polish=False`` (no finite optimum exists) the
    covariance is taken at ``theta`` and ``converged`` is False.
    """
    start = theta
    theta = theta.copy()
    free = objective.free
    what = "penalised Hessian" if objective.ridge else "observed information"
    steps, converged = 0, False
    while True:
        hessian = objective.hessian(theta)
        if not polish:
            # No finite optimum: the covariance at the fit is reported as meaningless (the
            # separation note says so). Whether rounding leaves this nearly singular matrix
            # positive definite depends on the machine's BLAS; the pseudo-inverse does not.
            try:
                covariance = _inverse_positive_definite(hessian, what)
            except ValueError:
                covariance = np.linalg.pinv(hessian, hermitian=True)
            break
        covariance = _inverse_positive_definite(hessian, what)
        step = covariance @ objective.gradient(theta)
        errors = np.sqrt(np.diag(covariance))
        if np.max(np.abs(step) / errors) <= _NEWTON_STEP_IN_ERRORS:
            flat = theta.ravel()  # a view: theta is C-contiguous
            flat[free] -= step
            converged = True
            break
        if steps == _NEWTON_MAX_STEPS:
            break
        current = objective.value(theta)
        slack = 1e-12 * max(1.0, abs(current))  # rounding of a sum over the samples
        length = 1.0
        for _ in range(40):
            candidate = theta.copy()
            candidate.ravel()[free] -= length * step
            if objective.value(candidate) <= current + slack:
                break
            length *= 0.5
        else:
            break  # no step lowers f: at the optimum to rounding, or the curvature is wrong
        theta = candidate
        steps += 1
    shift = (theta - start).ravel()[free]
    return _Optimum(theta, covariance, steps, converged, shift)


# ---------------------------------------------------------------------------------------------
# Linear algebra
# ---------------------------------------------------------------------------------------------
def _inverse_positive_definite(matrix: np.ndarray, what: str) -> np.ndarray:
    """Inverse of a symmetric positive definite matrix by Cholesky (LAPACK potrf + potri)."""
    factor, info = scipy.linalg.lapack.dpotrf(matrix, lower=0, clean=1)
    if info != 0:
        raise ValueError(
            f"The {what} is not positive definite, so it has no inverse and no standard errors "
            "exist. Typical causes: (quasi-)separated classes, a class with very few samples, "
            "or nearly collinear features. Consider penalty='l2'."
        )
    inverse, info = scipy.linalg.lapack.dpotri(factor, lower=0)
    if info != 0:  # pragma: no cover - potri only fails on a singular factor, excluded above
        raise ValueError(f"The {what} could not be inverted.")
    upper = np.triu(inverse)
    return upper + np.triu(inverse, 1).T


def _contrast_covariance(covariance: np.ndarray, K: int, p: int, reference: int) -> np.ndarray:
    """Covariance [K-1, p, K-1, p] of ``theta_k - theta_r`` from that of ``theta`` [K*p, K*p].

    ``cov(theta_k - theta_r, theta_l - theta_r) = S_kl - S_kr - S_rl + S_rr`` block-wise.
    """
    blocks = covariance.reshape(K, p, K, p)
    keep = np.array([k for k in range(K) if k != reference])
    between = blocks[np.ix_(keep, np.arange(p), keep, np.arange(p))]
    with_reference = blocks[keep][:, :, reference, :]  # S_kr [K-1, p, p]
    reference_with = blocks[reference][:, keep, :]  # S_rl [p, K-1, p]
    reference_block = blocks[reference, :, reference, :]  # S_rr [p, p]
    return (
        between
        - with_reference[:, :, None, :]
        - reference_with[None, :, :, :]
        + reference_block[None, :, None, :]
    )


def _augmented_dense(X_chunk, fit_intercept: bool) -> np.ndarray:
    """Dense ``[X, 1]`` rows (features first, intercept last, the layout of ``_loss``)."""
    rows = X_chunk.toarray() if sp.issparse(X_chunk) else np.asarray(X_chunk)
    if fit_intercept:
        rows = np.hstack([rows, np.ones((rows.shape[0], 1))])
    return rows


def _chunks(n: int, numbers_per_row: int):
    size = max(1, min(n, _CHUNK_NUMBERS // max(1, numbers_per_row)))
    for start in range(0, n, size):
        yield slice(start, min(n, start + size))


def _score_outer_product(X, codes, theta, weights, fit_intercept, non_reference,
                         group_codes=None) -> np.ndarray:
    """The meat of the sandwich on the non-reference class blocks.

    Without clusters ``sum_i s_i u_i u_i^T`` for the per-sample scores ``u_i = (p_i -
    e_{y_i}) kron x_i``: one BLAS product per chunk of rows. With ``group_codes`` ``sum_g U_g
    U_g^T`` for the cluster sums ``U_g = sum_{i in g} s_i u_i`` (a weight is that many copies
    of the row, all in its cluster).
    """
    K, p = theta.shape
    size = len(non_reference) * p
    meat = np.zeros((size, size))
    cluster_sums = None
    if group_codes is not None:
        cluster_sums = np.zeros((int(group_codes.max()) + 1, size))
    for rows in _chunks(X.shape[0], size):
        X_chunk = X[rows]
        residual = _loss.softmax(_loss.raw_prediction(X_chunk, theta, fit_intercept))
        residual[np.arange(residual.shape[0]), codes[rows]] -= 1.0
        root = np.sqrt(weights[rows]) if cluster_sums is None else weights[rows]
        residual = residual[:, non_reference] * root[:, None]
        augmented = _augmented_dense(X_chunk, fit_intercept)
        scores = (residual[:, :, None] * augmented[:, None, :]).reshape(-1, size)
        if cluster_sums is None:
            meat += scores.T @ scores
        else:
            members = group_codes[rows]
            indicator = sp.csr_matrix(
                (np.ones(members.size), (members, np.arange(members.size))),
                shape=(cluster_sums.shape[0], members.size),
            )
            cluster_sums += indicator @ scores
    if cluster_sums is not None:
        meat = cluster_sums.T @ cluster_sums
    return meat


def _probability_intervals(X, params_blocks, cov, non_reference, n_classes, fit_intercept,
                           quantile):
    """Probabilities, delta-method errors and log-odds intervals for the rows of ``X``.

    With ``eta_l = beta_l . x`` (``eta`` = 0 for the reference) and ``Q_i[l, l'] = x_i^T
    cov_{l l'} x_i`` the covariance of the ``eta``, the log-odds ``g_k = log(P_k / (1 -
    P_k))`` have gradient ``d g_k / d eta_l = (delta_kl - P_l) / (1 - P_k)``, computed from
    log-probabilities so that ``P_k`` near 1 loses nothing; ``se(P_k) = P_k (1 - P_k)
    se(g_k)``.

    Parameters
    ----------
    X : ndarray or CSR matrix of shape (m, d)
    params_blocks : ndarray of shape (K - 1, p)
        Reference-form parameters, intercept first (the stacking of ``cov``).
    cov : ndarray of shape ((K - 1) * p, (K - 1) * p)
    non_reference : ndarray of shape (K - 1,)
    n_classes : int
    fit_intercept : bool
    quantile : float
        The normal quantile ``z_{1 - alpha/2}``.

    Returns
    -------
    proba, se, lower, upper : ndarray of shape (m, K)
    """
    L, p = params_blocks.shape
    K = n_classes
    m = X.shape[0]
    # cov_{l l'} as [q, l, l', r] flattened, so that one product gives x^T cov_{l l'} for all l l'
    cov_by_term = cov.reshape(L, p, L, p).transpose(1, 0, 2, 3).reshape(p, L * L * p)
    outputs = [np.empty((m, K)) for _ in range(4)]
    is_own = non_reference[None, :] == np.arange(K)[:, None]  # [K, L]: class k is block l
    for rows in _chunks(m, L * L * p + 2 * K * L):
        X_chunk = X[rows]
        augmented = _augmented_dense(X_chunk, False)
        if fit_intercept:
            augmented = np.hstack([np.ones((augmented.shape[0], 1)), augmented])
        eta = np.zeros((augmented.shape[0], K))
        eta[:, non_reference] = augmented @ params_blocks.T
        log_proba = _loss.log_softmax(eta)
        log_rest = np.empty_like(log_proba)  # log(1 - P_k) = logsumexp of the other classes
        for k in range(K):
            others = np.delete(log_proba, k, axis=1)
            log_rest[:, k] = scipy.special.logsumexp(others, axis=1)
        ratio = np.exp(log_proba[:, None, non_reference] - log_rest[:, :, None])  # [m, K, L]
        gradient = np.where(is_own[None], 1.0, -ratio)
        Q = (augmented @ cov_by_term).reshape(-1, L, L, p)
        Q = np.einsum("ilmr,ir->ilm", Q, augmented)
        variance = np.einsum("ikl,ilm,ikm->ik", gradient, Q, gradient)
        se_log_odds = np.sqrt(np.clip(variance, 0.0, None))
        log_odds = log_proba - log_rest
        proba = np.exp(log_proba)
        outputs[0][rows] = proba
        outputs[1][rows] = np.exp(log_proba + log_rest) * se_log_odds
        outputs[2][rows] = scipy.special.expit(log_odds - quantile * se_log_odds)
        outputs[3][rows] = scipy.special.expit(log_odds + quantile * se_log_odds)
    return tuple(outputs)


def _weighted_column_mean(X, weights) -> np.ndarray:
    return np.asarray(X.T @ weights).ravel() / weights.sum()


def _marginal_effects_and_jacobian(X, weights, theta_reference, fit_intercept, non_reference):
    """Weighted-average marginal effects and their Jacobian with respect to the parameters.

    With ``beta`` [K, d] the reference-form coefficients and ``D_ik = beta_k - sum_l P_il
    beta_l``, the effect is ``ME_kj = mean_i P_ik D_ikj`` and its derivative with respect to
    ``theta_mq`` (class ``m``, augmented feature ``q``) is

        mean_i [ x_iq (delta_km P_ik D_ikj - P_ik P_im (D_ikj + D_imj))
                 + delta_qj P_ik (delta_km - P_im) ]

    assembled by BLAS products per chunk of rows (a loop over the d features only).

    Returns
    -------
    effects : ndarray of shape (K, d)
    jacobian : ndarray of shape (K * d, (K - 1) * p)
        Columns in the stacking order of ``InferenceResult.cov``.
    """
    K, p = theta_reference.shape
    d = p - int(fit_intercept)
    beta = theta_reference[:, :d]
    normalised = weights / weights.sum()
    effects = np.zeros((K, d))
    jacobian = np.zeros((K, d, K, p))
    features = np.arange(d)
    for rows in _chunks(X.shape[0], K * p + K * d):
        X_chunk = X[rows]
        w = normalised[rows]
        proba = _loss.softmax(_loss.raw_prediction(X_chunk, theta_reference, fit_intercept))
        augmented = _augmented_dense(X_chunk, fit_intercept)
        m = augmented.shape[0]
        deviation = beta[None, :, :] - (proba @ beta)[:, None, :]  # D [m, K, d]
        weighted = (w[:, None] * proba)[:, :, None] * deviation  # w P D [m, K, d]
        effects += weighted.sum(axis=0)
        flat = weighted.reshape(m, K * d)
        own = (flat.T @ augmented).reshape(K, d, p)  # delta_km term
        jacobian[np.arange(K), :, np.arange(K), :] += own
        proba_x = (proba[:, :, None] * augmented[:, None, :]).reshape(m, K * p)
        jacobian -= (flat.T @ proba_x).reshape(K, d, K, p)  # P_ik P_im D_ikj x_iq
        weighted_proba = w[:, None] * proba
        for j in features:  # P_ik P_im D_imj x_iq
            proba_deviation_x = (proba * deviation[:, :, j])[:, :, None] * augmented[:, None, :]
            jacobian[:, j, :, :] -= (
                weighted_proba.T @ proba_deviation_x.reshape(m, K * p)
            ).reshape(K, K, p)
        # delta_qj P_ik (delta_km - P_im)
        level = np.diag(weighted_proba.sum(axis=0)) - weighted_proba.T @ proba  # [K, K]
        jacobian[:, features, :, features] += level[None, :, :]
    order = np.r_[p - 1, : p - 1] if fit_intercept else np.arange(p)
    jacobian = jacobian[:, :, non_reference, :][:, :, :, order]
    return effects, jacobian.reshape(K * d, len(non_reference) * p)


# ---------------------------------------------------------------------------------------------
# Tables
# ---------------------------------------------------------------------------------------------
def _level(label) -> str:
    """A class label as statsmodels prints it: integer-valued floats without ".0"."""
    if isinstance(label, (float, np.floating)) and float(label).is_integer():
        return str(int(label))
    return str(label)


def _check_alpha(alpha: float) -> float:
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie in (0, 1); got alpha={alpha!r}.")
    return float(alpha)


def _stack(frame: pd.DataFrame, index_name: str) -> pd.Series:
    """Column-by-column stacking of a (term x class) frame: the order of ``cov``."""
    values = frame.to_numpy().T.ravel()
    if isinstance(frame.index, pd.MultiIndex):  # (sample, feature) rows of at="each"
        index = pd.MultiIndex.from_tuples(
            [(label, *row) for label in frame.columns for row in frame.index],
            names=["class", *frame.index.names],
        )
    else:
        index = pd.MultiIndex.from_product([list(frame.columns), list(frame.index)],
                                           names=["class", index_name])
    return pd.Series(values, index=index)


def _normal_intervals(estimates: pd.DataFrame, bse: pd.DataFrame, alpha: float,
                      index_name: str = "term") -> pd.DataFrame:
    quantile = scipy.stats.norm.ppf(1 - _check_alpha(alpha) / 2)
    center = _stack(estimates, index_name)
    half_width = quantile * _stack(bse, index_name)
    return pd.DataFrame({"lower": center - half_width, "upper": center + half_width})


def _coefficient_frame(estimates, bse, zvalues, pvalues, alpha,
                       index_name: str = "term") -> pd.DataFrame:
    intervals = _normal_intervals(estimates, bse, alpha, index_name)
    low, high = f"[{alpha / 2:g}", f"{1 - alpha / 2:g}]"
    return pd.DataFrame({
        "coef": _stack(estimates, index_name),
        "std err": _stack(bse, index_name),
        "z": _stack(zvalues, index_name),
        "P>|z|": _stack(pvalues, index_name),
        low: intervals["lower"],
        high: intervals["upper"],
    })
