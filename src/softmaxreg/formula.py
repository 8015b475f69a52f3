"""Model formulas for softmax regression: ``fit("PID ~ age + C(educ)", data)``.

The right-hand side is built by formulaic (a maintained formula library: ``C()`` factors,
interactions, transforms, ``- 1`` / ``+ 0`` to drop the intercept); its intercept column
becomes the estimator's ``fit_intercept``, every other column a named feature, so the
inference tables keep formulaic's labels (``C(educ)[T.2.0]``). The left-hand side is one
column of the data, read as class labels (numbers or strings), not expanded.

formulaic is an optional dependency (``pip install softmaxreg[formula]``), imported here
only.
"""

from __future__ import annotations

import numpy as np

__all__ = ["FormulaModel", "fit"]


def _formulaic():
    try:
        import formulaic
    except ImportError:  # pragma: no cover - the extra is installed in tests
        raise ImportError(
            "Formulas need formulaic: pip install 'softmaxreg[formula]'"
        ) from None
    return formulaic


def _as_frame(data):
    from .tabular import as_frame

    return as_frame(data, what="data")


def _split(formula: str) -> tuple[str, str]:
    if not isinstance(formula, str) or formula.count("~") != 1:
        raise ValueError(
            f"A formula needs the form 'target ~ terms' with one '~'; got {formula!r}."
        )
    lhs, rhs = (side.strip() for side in formula.split("~"))
    lhs = lhs.strip("`")
    if not lhs or not rhs:
        raise ValueError(f"Both sides of the formula {formula!r} must be non-empty.")
    return lhs, rhs


def _check_columns(formula: str, rhs: str, frame, lhs: str | None) -> None:
    """Raise ``ValueError`` naming every variable of the formula that ``frame`` lacks."""
    formulaic = _formulaic()
    try:
        variables = set(formulaic.Formula(rhs).required_variables)
    except formulaic.errors.FormulaicError as exc:
        raise ValueError(f"Cannot parse the formula {formula!r}: {exc}") from None
    if lhs is not None:
        variables.add(lhs)
    missing = sorted(name for name in variables if name not in frame.columns)
    # names formulaic evaluates from the environment (np.log, ...) are not columns
    missing = [name for name in missing if name not in ("np", "numpy", "math", "C")]
    if missing:
        shown = list(frame.columns[:12])
        raise ValueError(
            f"The formula {formula!r} names {missing}, which the data lack (columns: "
            f"{shown}{' ...' if frame.shape[1] > 12 else ''})."
        )


class FormulaModel:
    """A ``SoftmaxRegression`` fitted on the design that a formula builds from a DataFrame.

    Made by :func:`fit` (or ``SoftmaxRegression.from_formula``); new data go through the
    same formula (same factor levels and transforms).

    Attributes
    ----------
    formula : str
    dependent : str
        The left-hand side: the column of class labels.
    estimator_ : SoftmaxRegression
        The fitted estimator; its ``feature_names_in_`` are the design's columns.
    model_spec_ : formulaic.ModelSpec
        The right-hand side's specification, applied to new data.
    term_columns_ : dict
        Each term of the formula (intercept excluded) and its columns of the design.
    classes_ : ndarray of shape (K,)
    """

    def __init__(self, formula, dependent, estimator, model_spec, term_columns, data,
                 sample_weight):
        self.formula = formula
        self.dependent = dependent
        self.estimator_ = estimator
        self.model_spec_ = model_spec
        self.term_columns_ = term_columns
        self._data = data
        self._sample_weight = sample_weight

    @property
    def classes_(self) -> np.ndarray:
        return self.estimator_.classes_

    def design(self, data):
        """The design matrix (without the intercept column) of ``data`` under the formula.

        Parameters
        ----------
        data : DataFrame
            With the columns the right-hand side names; rows with missing values in them
            are dropped (formulaic's ``na_action="drop"``).

        Returns
        -------
        DataFrame of shape (m, d)
            Columns named as ``estimator_.feature_names_in_``; index the kept rows of
            ``data``.
        """
        frame = _as_frame(data)
        _, rhs = _split(self.formula)
        _check_columns(self.formula, rhs, frame, None)
        matrix = self.model_spec_.get_model_matrix(frame)
        return _without_intercept(matrix)[0]

    def predict_proba(self, data) -> np.ndarray:
        """Class probabilities [m, K] of the rows of ``data``."""
        return self.estimator_.predict_proba(self.design(data))

    def predict(self, data) -> np.ndarray:
        """Predicted labels [m] of the rows of ``data``."""
        return self.estimator_.predict(self.design(data))

    def inference(self, data=None, sample_weight=None, reference=None, robust=False,
                  cov_type=None, groups=None):
        """Inference of the fitted model, with the formula's term labels.

        Parameters
        ----------
        data : DataFrame or None, default=None
            The training data; None means the data and weights given to :func:`fit`.
        sample_weight : array-like of shape (len(data),), default=None
        reference, robust, cov_type
            As :meth:`SoftmaxRegression.inference`.
        groups : str or array-like of shape (len(data),), default=None
            Cluster labels for ``cov_type="cluster"``: a column name of ``data`` or one
            label per row of ``data``.

        Returns
        -------
        InferenceResult
            ``dependent`` is the formula's left-hand side (blocks ``PID=1``);
            ``wald_test_terms()`` tests each formula term (all columns of a factor) jointly.
        """
        if data is None:
            data, sample_weight = self._data, self._sample_weight
        frame = _as_frame(data)
        X, y, rows = _design_and_target(self.formula, self.model_spec_, frame)
        weights = _rows_of(sample_weight, rows, len(frame), "sample_weight")
        if isinstance(groups, str):
            if groups not in frame.columns:
                raise ValueError(f"groups={groups!r} is not a column of the data.")
            groups = frame[groups].to_numpy()
        groups = _rows_of(groups, rows, len(frame), "groups")
        result = self.estimator_.inference(X, y, sample_weight=weights, reference=reference,
                                           robust=robust, cov_type=cov_type, groups=groups)
        result.term_columns = {"intercept": ["intercept"]} if self.estimator_.fit_intercept \
            else {}
        result.term_columns.update(self.term_columns_)
        return result

    def summary(self, alpha: float = 0.05, **inference_params):
        """``inference(**inference_params).summary(alpha)``."""
        return self.inference(**inference_params).summary(alpha=alpha)

    def __repr__(self) -> str:
        return f"FormulaModel({self.formula!r}, {self.estimator_!r})"


def _without_intercept(matrix):
    """``(design without the "Intercept" column, whether it had one)``."""
    import pandas as pd

    frame = pd.DataFrame(matrix)
    if "Intercept" in frame.columns:
        return frame.drop(columns=["Intercept"]), True
    return frame, False


def _design_and_target(formula, model_spec, frame):
    """Design (no intercept), labels and the positions of the rows kept (no missing value)."""
    dependent, rhs = _split(formula)
    _check_columns(formula, rhs, frame, dependent)
    positional = frame.reset_index(drop=True)
    if model_spec is None:
        matrix = _formulaic().model_matrix(rhs, positional, na_action="drop")
    else:
        matrix = model_spec.get_model_matrix(positional)
    X, _ = _without_intercept(matrix)
    rows = np.asarray(X.index, dtype=np.intp)
    y = positional[dependent].iloc[rows]
    known = y.notna().to_numpy()
    if not known.all():
        X, y, rows = X[known], y[known], rows[known]
    if len(rows) == 0:
        raise ValueError(f"No row of the data has all the variables of {formula!r}.")
    return X.reset_index(drop=True), y.reset_index(drop=True), rows


def _rows_of(values, rows, n_rows: int, what: str):
    """The entries of a per-row array for the rows kept, checked against the data's length."""
    if values is None:
        return None
    values = np.asarray(values)
    if values.ndim != 1 or values.shape[0] != n_rows:
        raise ValueError(
            f"{what} must have one entry per row of the data ({n_rows}); got shape "
            f"{values.shape}."
        )
    return values[rows]


def fit(formula: str, data, sample_weight=None, **params) -> FormulaModel:
    """Fit a softmax regression described by a model formula.

    Parameters
    ----------
    formula : str
        ``"target ~ terms"`` in formulaic's grammar, e.g. ``"PID ~ age + C(educ)"``,
        ``"y ~ x1 * x2 - 1"``. The target is one column of ``data`` (class labels).
    data : DataFrame (pandas or polars) or dict of columns
    sample_weight : array-like of shape (len(data),), default=None
    **params
        Parameters of :class:`SoftmaxRegression`. ``penalty`` defaults to None here
        (maximum likelihood, statsmodels' ``MNLogit.from_formula``); ``fit_intercept`` is
        set by the formula.

    Returns
    -------
    FormulaModel

    Raises
    ------
    ValueError
        For a malformed formula, one naming columns that ``data`` lacks, or
        ``fit_intercept`` in ``params``.
    """
    from ._estimator import SoftmaxRegression

    if "fit_intercept" in params:
        raise ValueError(
            "fit_intercept is set by the formula: add '- 1' (or '+ 0') to leave the "
            "intercept out."
        )
    frame = _as_frame(data)
    dependent, rhs = _split(formula)
    _check_columns(formula, rhs, frame, dependent)
    formulaic = _formulaic()
    try:
        matrix = formulaic.model_matrix(rhs, frame.reset_index(drop=True), na_action="drop")
    except formulaic.errors.FormulaicError as exc:
        raise ValueError(f"Cannot build the design of {formula!r}: {exc}") from None
    model_spec = matrix.model_spec
    X, y, rows = _design_and_target(formula, model_spec, frame)
    _, has_intercept = _without_intercept(matrix)
    params.setdefault("penalty", None)
    estimator = SoftmaxRegression(fit_intercept=has_intercept, **params)
    estimator.fit(X, y.to_numpy(), sample_weight=_rows_of(sample_weight, rows, len(frame),
                                                         "sample_weight"))
    term_columns = {}
    for term, columns in model_spec.term_slices.items():
        names = [name for name in matrix.columns[columns] if name != "Intercept"]
        if names:
            term_columns[str(term)] = names
    return FormulaModel(formula, dependent, estimator, model_spec, term_columns, frame,
                        sample_weight)
