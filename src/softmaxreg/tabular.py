"""Raw tables in, a softmax model out: reading CSV/Parquet and the preprocessing of the CLI.

:class:`TabularModel` is a ``SoftmaxRegression`` behind a small, fully described
preprocessing step (:class:`Preprocessor`): numeric columns pass through (optionally
standardised), string, categorical and boolean columns are one-hot encoded. Its fitted state
is plain numbers and strings, so the model file stores it without pickle and the ONNX export
reproduces it inside the graph: a deployed model takes the raw columns.

pandas (and pyarrow for Parquet) is imported inside the functions that need it, so
``import softmaxreg`` does not import it.
"""

from __future__ import annotations

import numbers
import os
import warnings
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.utils.validation import check_is_fitted

from ._publish import publishes_at_end

#: Default limit on the distinct values of one one-hot encoded column; above it the column is
#: almost certainly an identifier, and encoding it would blow the design matrix up.
MAX_CATEGORIES = 1000

_CSV_SUFFIXES = (".csv", ".csv.gz", ".csv.bz2", ".csv.zip", ".csv.xz", ".txt")
_TSV_SUFFIXES = (".tsv", ".tsv.gz", ".tab")
_PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")
# Names of the exported ONNX graph that inputs must not take (see _io.to_onnx).
_ONNX_RESERVED = ("label", "probabilities")
_ONNX_PREFIX = "softmaxreg/"


class UnknownCategoryWarning(UserWarning):
    """Rows whose category was not seen in fit; they are encoded as all zeros."""


# ---------------------------------------------------------------------------------- reading
def read_table(path: str | os.PathLike):
    """Read a CSV, TSV or Parquet file into a pandas DataFrame.

    The format follows the file name (``.csv``, ``.tsv``, ``.parquet``/``.pq``, optionally
    compressed CSV); other names are sniffed (Parquet files start with ``PAR1``, everything
    else is read as CSV).

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    pandas.DataFrame

    Raises
    ------
    FileNotFoundError
        When the file does not exist (the message names it).
    ValueError
        When it cannot be parsed or holds no rows (the message names the file).
    """
    from ._optional import require

    pd = require("pandas", "reading tables")
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"data file not found: {path}")
    if os.path.isdir(path):
        raise ValueError(f"data file {path} is a directory")
    lower = path.lower()
    try:
        if lower.endswith(_PARQUET_SUFFIXES) or _starts_with(path, b"PAR1"):
            require("pyarrow", "reading Parquet files")
            frame = pd.read_parquet(path)
        elif lower.endswith(_TSV_SUFFIXES):
            frame = pd.read_csv(path, sep="\t")
        else:
            frame = pd.read_csv(path)
    except ImportError:
        raise
    except Exception as exc:  # noqa: BLE001 - every parser error becomes one clear line
        detail = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"cannot read {path}: {detail}") from None
    if frame.shape[0] == 0:
        raise ValueError(f"data file {path} has no rows")
    return frame


def _starts_with(path: str, magic: bytes) -> bool:
    try:
        with open(path, "rb") as file:
            return file.read(len(magic)) == magic
    except OSError:
        return False


def as_frame(X, *, what: str = "X"):
    """``X`` as a pandas DataFrame (polars and pyarrow tables are converted)."""
    from ._optional import require

    pd = require("pandas", "table input")

    if isinstance(X, pd.DataFrame):
        return X
    if hasattr(X, "to_pandas"):
        return X.to_pandas()
    if isinstance(X, dict):
        return pd.DataFrame(X)
    raise TypeError(
        f"{what} must be a pandas DataFrame (or a polars/pyarrow table) with named columns; "
        f"got {type(X).__name__}."
    )


def _column_list(value, name: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    columns = list(value)
    for column in columns:
        if not isinstance(column, str):
            raise TypeError(f"{name} must hold column names (str); got {column!r}.")
    return columns


# ---------------------------------------------------------------------------------- columns
@dataclass(frozen=True)
class NumericColumn:
    """A numeric input column: ``(x - center) / scale``, or ``x`` when not standardised."""

    name: str
    center: float | None = None
    scale: float | None = None

    @property
    def feature_names(self) -> list[str]:
        return [self.name]


@dataclass(frozen=True)
class CategoricalColumn:
    """A one-hot encoded input column.

    ``kind`` is the type of its values: ``"str"``, ``"int"`` or ``"bool"``; ``categories``
    the values seen in fit, in feature order. A value outside them encodes as all zeros. With
    ``drop_first`` the first category has no feature of its own (dummy coding: it is the
    baseline, encoded as all zeros), which keeps the one-hot block from being collinear with
    the intercept.
    """

    name: str
    kind: str
    categories: tuple
    drop_first: bool = False

    @property
    def encoded_categories(self) -> tuple:
        """The categories that have a feature."""
        return self.categories[1:] if self.drop_first else self.categories

    @property
    def feature_names(self) -> list[str]:
        return [f"{self.name}={category}" for category in self.encoded_categories]


class Preprocessor:
    """The fitted preprocessing of a :class:`TabularModel`: plain data, no pickled objects.

    Parameters
    ----------
    columns : sequence of NumericColumn and CategoricalColumn
        The input columns in order; the design matrix has their features in the same order.
    """

    def __init__(self, columns: Sequence[NumericColumn | CategoricalColumn]):
        self.columns = tuple(columns)
        names = [column.name for column in self.columns]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate input column names in {names}")
        features = self.feature_names_out
        if len(set(features)) != len(features):
            counts = Counter(features)  # linear: list.count per name was quadratic
            duplicates = sorted(name for name, count in counts.items() if count > 1)
            raise ValueError(
                f"the one-hot feature names {duplicates[:5]} collide with other columns; "
                "rename the columns"
            )

    @property
    def input_names(self) -> list[str]:
        """The raw columns the preprocessing reads, in order."""
        return [column.name for column in self.columns]

    @property
    def feature_names_out(self) -> list[str]:
        """Names of the design-matrix columns (``col`` or ``col=category``)."""
        return [name for column in self.columns for name in column.feature_names]

    @property
    def standardized(self) -> bool:
        return any(
            isinstance(column, NumericColumn) and column.scale is not None
            for column in self.columns
        )

    @property
    def categorical_names(self) -> list[str]:
        return [column.name for column in self.columns if isinstance(column, CategoricalColumn)]

    # ------------------------------------------------------------------ fitting
    @classmethod
    def fit(
        cls,
        frame,
        *,
        categorical: Iterable[str] = (),
        standardize: bool = False,
        drop: Iterable[str] = (),
        max_categories: int = MAX_CATEGORIES,
        drop_first: bool = False,
    ) -> Preprocessor:
        """Learn the columns of ``frame``: numeric ones (with mean and scale when
        ``standardize``), and the categories of string, categorical, boolean and
        ``categorical`` columns (the first, in sorted order, left out with ``drop_first``).

        Raises ``ValueError`` naming the column for missing values, unsupported types, too many
        categories, or names in ``categorical``/``drop`` that are not columns.
        """
        from sklearn.preprocessing import StandardScaler

        frame = as_frame(frame)
        categorical = _column_list(categorical, "categorical")
        drop = _column_list(drop, "drop")
        for option, names in (("categorical", categorical), ("drop", drop)):
            missing = [name for name in names if name not in frame.columns]
            if missing:
                raise ValueError(
                    f"{option} column {missing[0]!r} is not in the data; columns are "
                    f"{_preview(frame.columns)}"
                )
        used = [name for name in frame.columns if name not in set(drop)]
        if not used:
            raise ValueError("no feature columns left (every column is the target or dropped)")
        for name in used:
            if not isinstance(name, str):
                raise ValueError(f"column names must be strings; got {name!r}")
        columns: list[NumericColumn | CategoricalColumn] = []
        for name in used:
            series = frame[name]
            _check_no_missing(series, name)
            kind = _column_kind(series, name, force_categorical=name in categorical)
            if kind == "numeric":
                columns.append(NumericColumn(name))
            else:
                values = _categorical_values(series, name, kind)
                categories = np.unique(values)
                if len(categories) > max_categories:
                    raise ValueError(
                        f"column {name!r} has {len(categories)} distinct values (more than "
                        f"max_categories={max_categories}); drop it or raise the limit"
                    )
                columns.append(
                    CategoricalColumn(name, kind, tuple(categories.tolist()), bool(drop_first))
                )
        if standardize:
            numeric = [column.name for column in columns if isinstance(column, NumericColumn)]
            if numeric:
                # StandardScaler's conventions: population std, scale 1 for a constant column.
                scaler = StandardScaler().fit(_numeric_matrix(frame, numeric))
                stats = {
                    name: (float(mean), float(scale))
                    for name, mean, scale in zip(numeric, scaler.mean_, scaler.scale_, strict=True)
                }
                columns = [
                    NumericColumn(column.name, *stats[column.name])
                    if isinstance(column, NumericColumn)
                    else column
                    for column in columns
                ]
        return cls(columns)

    # ------------------------------------------------------------------ transforming
    def transform(self, frame) -> np.ndarray:
        """The design matrix, float64 of shape ``(n_rows, n_features_out)``.

        Columns of ``frame`` that the preprocessing does not read are ignored. A category not
        seen in fit encodes as all zeros and raises an :class:`UnknownCategoryWarning`.
        """
        frame = as_frame(frame)
        missing = [name for name in self.input_names if name not in frame.columns]
        if missing:
            raise ValueError(
                f"column {missing[0]!r} is missing from the data "
                f"({len(missing)} of the model's {len(self.columns)} input columns missing)"
            )
        n_rows = frame.shape[0]
        out = np.zeros((n_rows, len(self.feature_names_out)), dtype=np.float64)
        offset = 0
        unknown = []
        for column in self.columns:
            series = frame[column.name]
            _check_no_missing(series, column.name)
            if isinstance(column, NumericColumn):
                values = _numeric_matrix(frame, [column.name])[:, 0]
                if column.scale is not None:
                    values = (values - column.center) / column.scale
                out[:, offset] = values
                offset += 1
            else:
                codes = _category_codes(series, column)
                known = codes >= 0
                if not known.all():
                    example = series.to_numpy()[np.flatnonzero(~known)[0]]
                    unknown.append(f"{column.name}: {int((~known).sum())} rows (e.g. {example!r})")
                if column.drop_first:
                    codes = codes - 1  # the baseline category becomes -1: no feature
                rows = np.flatnonzero(codes >= 0)
                out[rows, offset + codes[rows]] = 1.0
                offset += len(column.encoded_categories)
        if unknown:
            warnings.warn(
                "categories not seen in fit, encoded as all zeros: " + "; ".join(unknown),
                UnknownCategoryWarning,
                stacklevel=2,
            )
        return out

    def transform_frame(self, frame):
        """:meth:`transform` as a DataFrame whose columns are :attr:`feature_names_out`."""
        import pandas as pd

        return pd.DataFrame(self.transform(frame), columns=self.feature_names_out)

    @property
    def onnx_input_names(self) -> dict[str, str]:
        """The name of each raw column's input in the ONNX graph: the column's own name,
        except for names the graph uses itself (the outputs ``label`` and ``probabilities``,
        and internal names under ``softmaxreg/``), which get ``_input`` appended (and more
        underscores while that is taken too)."""
        taken = set(self.input_names) | set(_ONNX_RESERVED)
        names = {}
        for name in self.input_names:
            if name in _ONNX_RESERVED or name.startswith(_ONNX_PREFIX):
                candidate = name + "_input"
                while candidate in taken:
                    candidate += "_"
                taken.add(candidate)
                names[name] = candidate
            else:
                names[name] = name
        return names

    def onnx_inputs(self, frame, dtype=np.float32) -> dict[str, np.ndarray]:
        """The feed of the exported ONNX graph for ``frame``: one ``[n, 1]`` array per input
        column (numeric ones in ``dtype``, strings as objects, int64, bool), keyed by
        :attr:`onnx_input_names`."""
        frame = as_frame(frame)
        feed = {}
        input_names = self.onnx_input_names
        for column in self.columns:
            if column.name not in frame.columns:
                raise ValueError(f"column {column.name!r} is missing from the data")
            series = frame[column.name]
            if isinstance(column, NumericColumn):
                values = _numeric_matrix(frame, [column.name]).astype(dtype)[:, 0]
            elif column.kind == "str":
                values = np.array([str(value) for value in series.to_numpy()], dtype=object)
            elif column.kind == "int":
                values = _integer_values(series, column.name)
            else:
                values = _bool_values(series, column.name)
            feed[input_names[column.name]] = values.reshape(-1, 1)
        return feed


def _preview(names, limit: int = 12) -> str:
    names = [str(name) for name in names]
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")


def _check_no_missing(series, name: str) -> None:
    n_missing = int(series.isna().sum())
    if n_missing:
        raise ValueError(f"column {name!r} has {n_missing} missing values; fill or drop them first")


def _column_kind(series, name: str, *, force_categorical: bool) -> str:
    """ "numeric", or the value kind of a one-hot column: "str", "int" or "bool"."""
    import pandas as pd
    from pandas.api import types

    dtype = series.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        inner = dtype.categories.dtype
        if types.is_bool_dtype(inner):
            return "bool"
        if types.is_integer_dtype(inner):
            return "int"
        return "str"
    if types.is_bool_dtype(dtype):
        return "bool"
    if types.is_integer_dtype(dtype):
        return "int" if force_categorical else "numeric"
    if types.is_float_dtype(dtype):
        if not force_categorical:
            return "numeric"
        values = series.to_numpy(dtype=np.float64)
        if np.all(values == np.round(values)) and np.all(np.abs(values) < 2**53):
            return "int"
        raise ValueError(f"column {name!r} holds non-integer numbers and cannot be one-hot encoded")
    if types.is_string_dtype(dtype) or types.is_object_dtype(dtype):
        _check_scalar_values(series, name)
        if not force_categorical:
            _check_not_mostly_numeric(series, name)
        return "str"
    raise ValueError(f"column {name!r} has unsupported type {dtype}; convert or drop it")


def _check_scalar_values(series, name: str) -> None:
    """Refuse an object column holding lists, dicts, bytes, Decimals ... (what Parquet list,
    struct, map, binary and decimal columns become in pandas): turned into strings, each
    distinct value would be one-hot encoded as a category of its own."""
    for value in series.to_numpy():
        if value is None or isinstance(value, str | numbers.Real | np.bool_):
            continue
        if type(value).__name__ in ("NAType", "NaTType"):
            continue
        raise ValueError(
            f"column {name!r} holds {type(value).__name__} values (such as "
            f"{repr(value)[:40]}), not strings, numbers or booleans: a list, struct, map, "
            "binary or decimal column (from Parquet, say) cannot be one-hot encoded; convert "
            "it to strings or numbers, or drop it"
        )


#: A text column whose values are numbers in at least this share of the rows is taken for a
#: numeric column with a few bad entries (a stray "?" or "n/a"), not for categories.
MOSTLY_NUMERIC_SHARE = 0.9


class MostlyNumericColumnError(ValueError):
    """A column holds numbers apart from a few values: one-hot encoding it would silently
    turn a measurement into hundreds of categories. ``column`` and ``values`` (the distinct
    non-numbers, most frequent first) say what to fix."""

    def __init__(self, column: str, values: list[str], counts: list[int]):
        self.column = column
        self.values = values
        shown = ", ".join(
            f"{value!r} ({count} row{'s' if count > 1 else ''})"
            for value, count in zip(values[:5], counts[:5], strict=True)
        )
        more = f" and {len(values) - 5} more" if len(values) > 5 else ""
        super().__init__(
            f"column {column!r} is numeric apart from {sum(counts)} rows holding {shown}{more}: "
            f"fix or drop those rows, or pass categorical={column!r} to one-hot encode it"
        )


def _check_not_mostly_numeric(series, name: str) -> None:
    import pandas as pd

    text = series.astype(str).str.strip()
    numbers = pd.to_numeric(text, errors="coerce")
    bad = numbers.isna().to_numpy()
    if bad.all() or bad.mean() > 1 - MOSTLY_NUMERIC_SHARE:
        return
    if not bad.any():
        return  # numbers stored as text: categories the user may have meant (codes)
    counts = text[bad].value_counts()
    raise MostlyNumericColumnError(
        name, [str(value) for value in counts.index], [int(count) for count in counts]
    )


def _categorical_values(series, name: str, kind: str) -> np.ndarray:
    if kind == "str":
        return np.array([str(value) for value in series.to_numpy()], dtype=object).astype(str)
    if kind == "int":
        return _integer_values(series, name)
    return _bool_values(series, name)


def _integer_values(series, name: str) -> np.ndarray:
    import pandas as pd

    values = np.asarray(series.to_numpy())
    if values.dtype.kind == "i":
        return values.astype(np.int64)
    try:
        values = pd.to_numeric(pd.Series(values, dtype=object)).to_numpy(dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"column {name!r} must hold integers") from None
    if not (np.all(values == np.round(values)) and np.all(np.abs(values) < 2**63)):
        raise ValueError(f"column {name!r} must hold integers")
    return values.astype(np.int64)


def _bool_values(series, name: str) -> np.ndarray:
    values = series.to_numpy()
    if values.dtype == bool:
        return values
    if all(isinstance(value, bool | np.bool_) for value in values):
        return values.astype(bool)
    raise ValueError(f"column {name!r} must hold booleans (True/False)")


def _numeric_matrix(frame, names: list[str]) -> np.ndarray:
    import pandas as pd

    columns = []
    for name in names:
        series = frame[name]
        if series.dtype == bool:
            columns.append(series.to_numpy(dtype=np.float64))
            continue
        try:
            values = pd.to_numeric(series).to_numpy(dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"column {name!r} must be numeric") from None
        if not np.all(np.isfinite(values)):
            raise ValueError(f"column {name!r} holds missing or infinite values")
        columns.append(values)
    return np.column_stack(columns) if columns else np.empty((frame.shape[0], 0))


def _category_codes(series, column: CategoricalColumn) -> np.ndarray:
    """Index of each value in ``column.categories``, -1 for an unseen value."""
    import pandas as pd

    if column.kind == "str":
        values = np.array([str(value) for value in series.to_numpy()], dtype=object)
    elif column.kind == "int":
        values = _integer_values(series, column.name)
    else:
        values = _bool_values(series, column.name)
    categories = pd.Index(list(column.categories), dtype=object if column.kind == "str" else None)
    return np.asarray(categories.get_indexer(values), dtype=np.intp)


# ---------------------------------------------------------------------------------- model
class TabularModel(ClassifierMixin, BaseEstimator):
    """A softmax classifier on raw table columns: one-hot encoding and optional
    standardisation in front of a :class:`~softmaxreg.SoftmaxRegression`.

    This is what ``softmaxreg fit`` trains and what :func:`softmaxreg.load` returns for a
    file written from it. Its preprocessing is stored in the model file as plain numbers and
    strings and exported into the ONNX graph.

    Parameters
    ----------
    estimator : SoftmaxRegression, optional
        The classifier (cloned in ``fit``); default ``SoftmaxRegression()``.
    categorical : sequence of str, default=()
        Integer-coded columns to one-hot encode as well (string, categorical and boolean
        columns always are).
    standardize : bool, default=False
        Scale numeric columns to mean 0 and standard deviation 1 (one-hot columns are left
        as 0/1).
    drop : sequence of str, default=()
        Columns to ignore (identifiers, leaks).
    max_categories : int, default=1000
        Refuse to one-hot encode a column with more distinct values.
    drop_first : bool, default=False
        Dummy coding: leave the first category of every one-hot column out (it becomes the
        baseline). Needed for an unpenalised fit with an intercept (``penalty=None``) and its
        ``inference``, where the full one-hot block is collinear with the intercept.

    Attributes
    ----------
    preprocessor_ : Preprocessor
    estimator_ : SoftmaxRegression
        Fitted on the design matrix; its ``feature_names_in_`` are the one-hot names
        (``"column=value"``).
    classes_ : ndarray of shape (K,)
    feature_names_in_ : ndarray of shape (n_columns,)
        The raw columns the model reads.
    target_ : str or None
        Name of the target (the ``name`` of ``y`` in fit), used by the command line.
    """

    def __init__(
        self,
        estimator=None,
        categorical: Sequence[str] = (),
        standardize: bool = False,
        drop: Sequence[str] = (),
        max_categories: int = MAX_CATEGORIES,
        drop_first: bool = False,
    ):
        self.estimator = estimator
        self.categorical = categorical
        self.standardize = standardize
        self.drop = drop
        self.max_categories = max_categories
        self.drop_first = drop_first

    @publishes_at_end
    def fit(self, X, y, sample_weight=None) -> TabularModel:
        """Learn the preprocessing on ``X`` (a DataFrame) and fit the classifier on its output.

        Returns
        -------
        self
        """
        from ._estimator import SoftmaxRegression

        if (
            isinstance(self.max_categories, bool)
            or not isinstance(self.max_categories, numbers.Integral)
            or self.max_categories < 1
        ):
            raise ValueError(f"max_categories must be an integer >= 1; got {self.max_categories!r}")
        frame = as_frame(X)
        self.preprocessor_ = Preprocessor.fit(
            frame,
            categorical=self.categorical,
            standardize=bool(self.standardize),
            drop=self.drop,
            max_categories=int(self.max_categories),
            drop_first=bool(self.drop_first),
        )
        estimator = SoftmaxRegression() if self.estimator is None else clone(self.estimator)
        name = getattr(y, "name", None)
        self.target_ = name if isinstance(name, str) else None
        self.estimator_ = estimator.fit(
            self.preprocessor_.transform_frame(frame), _target_array(y), sample_weight
        )
        self._set_input_attributes()
        return self

    def _set_input_attributes(self) -> None:
        names = self.preprocessor_.input_names
        self.feature_names_in_ = np.array(names, dtype=object)
        self.n_features_in_ = len(names)

    @classmethod
    def from_fitted(
        cls, preprocessor: Preprocessor, estimator, *, target: str | None = None, params=None
    ) -> TabularModel:
        """Assemble a fitted model from its parts (what :func:`softmaxreg.load` does)."""
        params = dict(params or {})
        params.setdefault("categorical", tuple(preprocessor.categorical_names))
        params.setdefault("standardize", preprocessor.standardized)
        model = cls(estimator=clone(estimator), **params)
        model.preprocessor_ = preprocessor
        model.estimator_ = estimator
        model.target_ = target
        model._set_input_attributes()
        return model

    @property
    def classes_(self) -> np.ndarray:
        check_is_fitted(self, "estimator_")
        return self.estimator_.classes_

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "estimator_")

    def transform(self, X):
        """The design matrix the classifier sees (a DataFrame named by feature)."""
        check_is_fitted(self)
        return self.preprocessor_.transform_frame(X)

    def decision_function(self, X):
        """Linear scores of the classifier on the preprocessed ``X``."""
        return self.estimator_.decision_function(self.transform(X))

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities, shape ``(n_rows, K)``."""
        return self.estimator_.predict_proba(self.transform(X))

    def predict_log_proba(self, X) -> np.ndarray:
        """Log class probabilities, shape ``(n_rows, K)``."""
        return self.estimator_.predict_log_proba(self.transform(X))

    def predict(self, X) -> np.ndarray:
        """Predicted labels, shape ``(n_rows,)``."""
        return self.estimator_.predict(self.transform(X))

    def inference(self, X, y, **kwargs):
        """Standard errors and summary of the classifier on the preprocessed data (see
        :meth:`SoftmaxRegression.inference`)."""
        return self.estimator_.inference(self.transform(X), _target_array(y), **kwargs)

    def onnx_inputs(self, X, dtype=np.float32) -> dict[str, np.ndarray]:
        """The input feed of :meth:`to_onnx`'s graph for the DataFrame ``X``."""
        check_is_fitted(self)
        return self.preprocessor_.onnx_inputs(X, dtype=dtype)

    def save(self, path) -> None:
        """Write the model, preprocessing included, to one file (see
        :func:`softmaxreg._io.save_model`)."""
        from ._io import save_model

        save_model(self, path)

    def to_onnx(self, **kwargs):
        """ONNX graph taking the raw columns, one ``[N, 1]`` input each (see
        :func:`softmaxreg._io.to_onnx`)."""
        from ._io import to_onnx

        return to_onnx(self, **kwargs)


def _target_array(y) -> np.ndarray:
    """``y`` as a NumPy array; strings as a str array; missing values are an error."""
    import pandas as pd

    values = y.to_numpy() if hasattr(y, "to_numpy") else np.asarray(y)
    if values.ndim == 1 and values.dtype.kind in "OfU":
        n_missing = int(pd.isna(pd.Series(values, dtype=object)).sum())
        if n_missing:
            name = getattr(y, "name", None)
            what = f"target column {name!r}" if isinstance(name, str) else "the target"
            raise ValueError(f"{what} has {n_missing} missing values")
    if values.dtype == object and all(isinstance(value, str) for value in values):
        return values.astype(str)
    return values
