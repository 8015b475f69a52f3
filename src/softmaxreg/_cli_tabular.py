"""The data commands of the ``softmaxreg`` command line: fit, predict, evaluate, summary, plot.

Each command is an ``add_<name>_arguments(parser)`` / ``run_<name>(args) -> int`` pair that
``cli._COMMANDS`` registers. Problems raise ``ValueError`` / ``FileNotFoundError`` with a
message naming the file or column; ``cli.main`` prints it as one line on stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import sys
import threading
import time
import warnings

import numpy as np

# ----------------------------------------------------------------------------------- progress
# A solver's per-iteration report (``verbose=1``): "[name] iter N  objective V  max|grad| G".
_REPORT = re.compile(r"iter\s+(\d+)\s+objective\s+(\S+)\s+max\|grad\|\s+(\S+)")


class Progress:
    """Shows that a long step is running: nothing for the first ``delay`` seconds, then a
    status line on ``stream`` until the block ends.

    The line holds the elapsed time and, once the solver reports (see :meth:`solver_output`),
    its iteration, objective and gradient norm (the largest absolute gradient entry, the
    quantity the stopping rule bounds). On a terminal the line is redrawn in place and erased
    at the end; otherwise (a log file, CI) a line is written after ``delay`` and then every
    ``every`` seconds (``every=0``: one line per solver iteration).

    Parameters
    ----------
    message : str
    stream : file-like, default=sys.stderr
    delay : float
        Seconds before anything is shown: short steps stay silent.
    interval : float
        Redraw period on a terminal.
    every : float
        Period of the lines written to a non-terminal.
    """

    _SPINNER = "|/-\\"

    def __init__(self, message: str, stream=None, delay=1.0, interval=0.2, every=5.0):
        self.message = message
        self.stream = stream if stream is not None else sys.stderr
        self.delay = delay
        self.interval = interval
        self.every = every
        self.shown = False
        self.iteration: tuple[int, float, float] | None = None
        self._lock = threading.RLock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="softmaxreg-progress", daemon=True)

    def __enter__(self) -> Progress:
        self._start = time.monotonic()
        self._last_line = -float("inf")
        self._tty = self._isatty()
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join()
        if self.shown and self._tty:
            self._write("\r\033[K")

    def solver_output(self):
        """A file-like object for the solver's ``verbose`` report lines (stdout is
        redirected to it during the fit): each report updates the status line."""
        return _ReportSink(self)

    def update(self, n_iter: int, objective: float, gradient_norm: float) -> None:
        """Record the solver's latest iteration; with ``every=0`` show it at once (a new
        line in a log, the redrawn line on a terminal)."""
        with self._lock:
            self.iteration = (n_iter, objective, gradient_norm)
        if self.every == 0 and self._elapsed() >= self.delay:
            self._show(n_iter)

    def status(self) -> str:
        """The text of the status line: message, solver state, elapsed seconds."""
        parts = [self.message]
        with self._lock:
            iteration = self.iteration
        if iteration is not None:
            n_iter, objective, gradient_norm = iteration
            parts.append(
                f"iteration {n_iter}, objective {objective:.6g}, "
                f"gradient norm {gradient_norm:.2e}"
            )
        parts.append(f"{self._elapsed():.0f} s")
        return ", ".join(parts)

    def _elapsed(self) -> float:
        return time.monotonic() - self._start

    def _isatty(self) -> bool:
        isatty = getattr(self.stream, "isatty", None)
        try:
            return bool(isatty and isatty())
        except (ValueError, OSError):  # a closed stream
            return False

    def _write(self, text: str) -> None:
        try:
            self.stream.write(text)
            self.stream.flush()
        except (ValueError, OSError):  # the stream went away: progress is best effort
            self._stop.set()

    def _show(self, tick: int) -> None:
        with self._lock:
            if self._tty:
                spinner = self._SPINNER[tick % len(self._SPINNER)]
                self._write(f"\r\033[K{self.status()} {spinner}")
            else:
                self._write(self.status() + "\n")
                self._last_line = self._elapsed()
            self.shown = True

    def _run(self) -> None:
        if self._stop.wait(self.delay):
            return
        tick = 0
        while not self._stop.is_set():
            if self._tty or self.every > 0 or not self.shown:
                if self._tty or self._elapsed() - self._last_line >= self.every:
                    self._show(tick)
            tick += 1
            self._stop.wait(self.interval if self._tty else max(min(self.every, 1.0), 0.05))


class _ReportSink:
    """Receives what the solver prints; report lines go to :meth:`Progress.update`."""

    def __init__(self, progress: Progress):
        self.progress = progress
        self._pending = ""

    def write(self, text: str) -> int:
        self._pending += text
        *lines, self._pending = self._pending.split("\n")
        for line in lines:
            match = _REPORT.search(line)
            if match:
                self.progress.update(
                    int(match.group(1)), float(match.group(2)), float(match.group(3))
                )
        return len(text)

    def flush(self) -> None:
        pass


@contextlib.contextmanager
def _fitting(message: str, quiet: bool, every: float):
    """Progress while fitting: yields the ``verbose`` level the estimator should get."""
    if quiet:
        yield 0
        return
    # every=0 (a line per iteration) is for logs and tests: no initial silence either
    with Progress(message, every=every, delay=1.0 if every > 0 else 0.0) as progress:
        with contextlib.redirect_stdout(progress.solver_output()):
            yield 1


@contextlib.contextmanager
def _warnings_as_lines(command: str):
    """Print warnings raised inside the block as one line each on stderr (no source lines)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    seen = set()
    for warning in caught:
        text = str(warning.message).strip().splitlines()[0] if str(warning.message) else ""
        if text and text not in seen:
            seen.add(text)
            print(f"softmaxreg {command}: warning: {in_cli_words(text)}", file=sys.stderr)


# ----------------------------------------------------------------------------------- helpers
def _read(path: str):
    from ._optional import require
    from .tabular import read_table

    require("pandas", "the command line", extra="cli")
    return read_table(path)


def _load_model(path: str):
    from ._io import load

    return load(path)


def _column_names(values) -> list[str]:
    """``--categorical a --categorical b,c`` -> ["a", "b", "c"]."""
    names = []
    for value in values or ():
        names.extend(name.strip() for name in value.split(",") if name.strip())
    return names


def _preview(names, limit: int = 12) -> str:
    from .tabular import _preview

    return _preview(names, limit)


def _require_target(frame, target: str, path: str):
    if target not in frame.columns:
        raise ValueError(
            f"target column {target!r} not found in {path}; columns are {_preview(frame.columns)}"
        )
    return frame[target]


def _target_values(series, classes: np.ndarray, target: str, path: str) -> np.ndarray:
    """The target column in the type of the model's classes; unseen classes are an error."""
    import pandas as pd

    n_missing = int(series.isna().sum())
    if n_missing:
        raise ValueError(f"target column {target!r} in {path} has {n_missing} missing values")
    values = series.to_numpy()
    kind = classes.dtype.kind
    try:
        if kind in "UO":
            values = np.array([str(value) for value in values], dtype=object)
        elif kind == "b":
            if values.dtype != bool:
                raise ValueError
        elif values.dtype.kind not in "iuf":
            values = pd.to_numeric(pd.Series(values, dtype=object)).to_numpy()
    except (TypeError, ValueError):
        raise ValueError(
            f"target column {target!r} in {path} does not hold labels like the model's "
            f"classes {classes.tolist()[:10]}"
        ) from None
    known = set(classes.tolist())
    unseen = sorted({value for value in values.tolist() if value not in known}, key=str)
    if unseen:
        raise ValueError(
            f"target column {target!r} in {path} has classes the model was not fitted on: "
            f"{unseen[:10]} (model classes: {classes.tolist()[:20]})"
        )
    return values


def _model_inputs(model, frame, path: str, target: str | None = None):
    """``(predictor, X)``: something with ``predict_proba`` and what it reads from ``frame``."""
    from pandas.api import types

    from .tabular import TabularModel

    if isinstance(model, TabularModel):
        missing = [name for name in model.feature_names_in_ if name not in frame.columns]
        if missing:
            raise ValueError(
                f"column {missing[0]!r} needed by the model is missing from {path} "
                f"({len(missing)} of {len(model.feature_names_in_)} input columns missing)"
            )
        return model, frame
    names = getattr(model, "feature_names_in_", None)
    if names is not None:
        missing = [name for name in names if name not in frame.columns]
        if missing:
            raise ValueError(
                f"column {missing[0]!r} needed by the model is missing from {path} "
                f"({len(missing)} of {len(names)} feature columns missing)"
            )
        X = frame[list(names)]
    else:
        X = frame.drop(columns=[target]) if target in frame.columns else frame
        if X.shape[1] != model.n_features_in_:
            raise ValueError(
                f"{path} has {X.shape[1]} feature columns but the model expects "
                f"{model.n_features_in_} (the model file names no columns, so every column "
                "other than the target is used)"
            )
    for name in X.columns:
        if not (types.is_numeric_dtype(X[name]) or types.is_bool_dtype(X[name])):
            raise ValueError(
                f"column {name!r} in {path} is not numeric; this model has no preprocessing "
                "(fit it with 'softmaxreg fit' to one-hot encode text columns)"
            )
    return model, X.to_numpy(dtype=np.float64) if names is None else X


def _design(model, frame, path: str, target: str | None):
    """``(SoftmaxRegression, design matrix)`` for inference and plots."""
    from .tabular import TabularModel

    predictor, X = _model_inputs(model, frame, path, target)
    if isinstance(predictor, TabularModel):
        return predictor.estimator_, predictor.transform(X)
    return predictor, X


def _target_name(model, args_target: str | None) -> str | None:
    return args_target or getattr(model, "target_", None)


def _float_or_none(text: str) -> float | None:
    return None if text.lower() == "none" else float(text)


# ----------------------------------------------------------------------------------- words
# Python parameter -> the command line's flag, for messages raised by the library.
_FLAGS = {
    "C": "--C",
    "penalty": "--penalty",
    "l1_ratio": "--l1-ratio",
    "l1_ratios": "--l1-ratios",
    "solver": "--solver",
    "tol": "--tol",
    "max_iter": "--max-iter",
    "class_weight": "--class-weight",
    "max_categories": "--max-categories",
    "categorical": "--categorical",
    "drop": "--drop",
    "drop_first": "--drop-first",
    "standardize": "--standardize",
    "Cs": "--Cs",
    "cv": "--cv",
    "scoring": "--scoring",
}
_PARAMETER = re.compile(
    r"\b(" + "|".join(sorted(_FLAGS, key=len, reverse=True)) + r")=('([^']*)'|[^\s,;:)]+)"
)
# names that are never English words, so a bare mention is the parameter too
_BARE_PARAMETER = re.compile(
    r"(?<![-\w.])(l1_ratios?|max_iter|tol|class_weight|max_categories|drop_first)\b(?![=.])"
)
# NumPy scalars print as np.int64(9999) / np.str_('a') since NumPy 2
_NUMPY_SCALAR = re.compile(r"np\.(?:u?int\d*|float\d*|str_|bool_?|bytes_)\(([^()]*)\)")


def in_cli_words(message: str) -> str:
    """A library message in the command line's words: ``penalty='l2'`` -> ``--penalty l2``,
    ``np.int64(9)`` -> ``9``, ``None`` as ``none``."""
    message = _NUMPY_SCALAR.sub(r"\1", message)

    def flag(match: re.Match) -> str:
        value = match.group(3) if match.group(3) is not None else match.group(2)
        value = {"None": "none", "True": "", "False": ""}.get(value, value)
        return f"{_FLAGS[match.group(1)]} {value}".rstrip()

    message = _PARAMETER.sub(flag, message)
    return _BARE_PARAMETER.sub(lambda match: _FLAGS[match.group(1)], message)


# ----------------------------------------------------------------------------------- files
_TABLE_FORMATS = {
    ".csv": "csv",
    ".csv.gz": "csv",
    ".csv.bz2": "csv",
    ".csv.xz": "csv",
    ".csv.zip": "csv",
    ".tsv": "tsv",
    ".tsv.gz": "tsv",
    ".parquet": "parquet",
    ".pq": "parquet",
}


def write_table(frame, path: str) -> None:
    """Write ``frame`` in the format its file name says (CSV, TSV, Parquet; a compressed CSV
    by its second suffix); any other name is an error, never CSV text under a wrong name."""
    lower = path.lower()
    formats = [fmt for suffix, fmt in _TABLE_FORMATS.items() if lower.endswith(suffix)]
    if not formats:
        raise ValueError(
            f"cannot tell the format of {path} from its name; use a .csv, .tsv, .parquet "
            "(or .csv.gz) file"
        )
    try:
        if formats[0] == "parquet":
            from ._optional import require

            require("pyarrow", "writing Parquet files")
            frame.to_parquet(path, index=False)
        else:
            frame.to_csv(path, index=False, sep="\t" if formats[0] == "tsv" else ",")
    except OSError as exc:
        raise OSError(f"cannot write {path}: {exc.strerror or exc}") from None


def save_figure(figure, path: str) -> None:
    """Write a figure in the format of its suffix (.png, .pdf, .svg ...) and close it."""
    from . import plot

    suffix = os.path.splitext(os.fspath(path))[1].lower().lstrip(".")
    supported = figure.canvas.get_supported_filetypes()
    try:
        if suffix not in supported:
            raise ValueError(
                f"cannot tell the figure format of {path} from its name; use one of "
                + ", ".join(f".{name}" for name in sorted(supported))
            )
        figure.savefig(path, dpi=120, bbox_inches="tight")
    except OSError as exc:
        raise OSError(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        plot._pyplot().close(figure)


# ----------------------------------------------------------------------------------- fit
def _add_training_arguments(parser: argparse.ArgumentParser) -> None:
    """The options that fit and cv share: data, target, preprocessing, solver."""
    from ._estimator import SoftmaxRegression
    from ._solvers import SOLVERS
    from .tabular import MAX_CATEGORIES

    defaults = SoftmaxRegression().get_params()
    parser.add_argument("data", metavar="DATA", help="training data (CSV or Parquet)")
    parser.add_argument("--target", required=True, metavar="COL", help="the label column")
    parser.add_argument(
        "-o", "--output", required=True, metavar="MODEL", help="model file to write (JSON)"
    )
    parser.add_argument(
        "--penalty",
        default="l2",
        choices=["l2", "l1", "elasticnet", "grouped", "none"],
        help="penalty on the coefficients",
    )
    parser.add_argument(
        "--class-weight",
        choices=["balanced"],
        default=None,
        help="'balanced' weights each class by n / (K * its count) (default: none)",
    )
    parser.add_argument(
        "--standardize",
        action="store_true",
        help="scale numeric columns to mean 0, sd 1 before fitting (figures stay in the "
        "columns' own units)",
    )
    parser.add_argument(
        "--categorical",
        action="append",
        metavar="COL",
        help="one-hot encode this column even if it holds numbers (repeat or "
        "comma-separate); text, categorical and boolean columns always are",
    )
    parser.add_argument(
        "--drop", action="append", metavar="COL", help="ignore this column (repeatable)"
    )
    parser.add_argument(
        "--drop-first",
        action="store_true",
        help="dummy coding: leave out the first category of each one-hot column "
        "(for --penalty none and summary)",
    )
    parser.add_argument(
        "--max-categories",
        type=int,
        default=MAX_CATEGORIES,
        metavar="N",
        help="refuse to one-hot encode a column with more distinct values",
    )
    parser.add_argument(
        "--solver",
        default="auto",
        choices=["auto", *SOLVERS],
        help="'auto' picks by problem size and penalty",
    )
    parser.add_argument(
        "--tol",
        type=float,
        default=defaults["tol"],
        help="the solver's stopping tolerance (SoftmaxRegression's tol)"
        + (" (default: SoftmaxRegression's)" if defaults["tol"] is None else ""),
    )
    parser.add_argument(
        "--max-iter",
        type=int,
        default=defaults["max_iter"],
        metavar="N",
        help="solver iterations allowed"
        + (" (default: SoftmaxRegression's)" if defaults["max_iter"] is None else ""),
    )
    parser.add_argument("--quiet", action="store_true", help="no progress line")
    parser.add_argument(
        "--progress-every",
        type=float,
        default=5.0,
        metavar="SECONDS",
        help="when stderr is not a terminal, write a progress line this often "
        "(0: one per solver iteration)",
    )


def add_fit_arguments(parser: argparse.ArgumentParser) -> None:
    _add_training_arguments(parser)
    parser.add_argument("--C", type=float, default=1.0, help="inverse regularisation strength")
    parser.add_argument(
        "--l1-ratio",
        type=float,
        default=None,
        help="mix of L1 in [0, 1] for --penalty elasticnet and grouped (required there)",
    )


def _tabular_model(args, estimator):
    from .tabular import TabularModel

    categorical = _column_names(args.categorical)
    if args.target in categorical:
        raise ValueError(f"--categorical {args.target!r} is the target column")
    return TabularModel(
        estimator,
        categorical=categorical,
        standardize=args.standardize,
        drop=[name for name in _column_names(args.drop) if name != args.target],
        max_categories=args.max_categories,
        drop_first=args.drop_first,
    )


def _train(args, estimator, command: str):
    """Read the table, fit ``estimator`` behind the preprocessing, with progress; returns
    ``(model, X, y, seconds)``."""
    from .tabular import _target_array

    frame = _read(args.data)
    y = _require_target(frame, args.target, args.data)
    X = frame.drop(columns=[args.target])
    message = f"softmaxreg {command}: fitting {X.shape[0]} rows"
    start = time.perf_counter()
    with _warnings_as_lines(command), _fitting(message, args.quiet, args.progress_every) as verbose:
        model = _tabular_model(args, estimator.set_params(verbose=verbose))
        model.fit(X, y)
    model.estimator_.set_params(verbose=0)
    return model, X, _target_array(y), time.perf_counter() - start


def _report_fit(model, X, y, args, elapsed: float) -> None:
    fitted = model.estimator_
    status = "converged" if fitted.converged_ else "NOT converged"
    print(
        f"Fitted on {X.shape[0]} rows of {args.data}: {len(model.feature_names_in_)} columns -> "
        f"{fitted.n_features_in_} features, {len(fitted.classes_)} classes"
    )
    print(f"Solver {fitted.solver_}: {fitted.n_iter_} iterations, {status} ({elapsed:.1f} s)")
    print(f"Training accuracy: {model.score(X, y):.4f}")
    model.save(args.output)
    print(f"Model written to {args.output}")


def run_fit(args: argparse.Namespace) -> int:
    """Fit a TabularModel on a table and write it to ``--output``."""
    from ._estimator import SoftmaxRegression

    estimator = SoftmaxRegression(
        C=args.C,
        penalty=None if args.penalty == "none" else args.penalty,
        l1_ratio=args.l1_ratio,
        class_weight=args.class_weight,
        solver=args.solver,
        tol=args.tol,
        max_iter=args.max_iter,
    )
    model, X, y, elapsed = _train(args, estimator, "fit")
    _report_fit(model, X, y, args, elapsed)
    return 0


# ----------------------------------------------------------------------------------- cv
def add_cv_arguments(parser: argparse.ArgumentParser) -> None:
    _add_training_arguments(parser)
    parser.add_argument(
        "--Cs",
        default="10",
        metavar="N|C1,C2,...",
        help="grid of C: a number of values log-spaced over 1e-4..1e4, or a comma list",
    )
    parser.add_argument(
        "--l1-ratios",
        default=None,
        metavar="R1,R2,...",
        help="grid of the L1 mix for --penalty elasticnet and grouped (required there)",
    )
    parser.add_argument("--cv", type=int, default=5, metavar="K", help="stratified folds")
    parser.add_argument(
        "--scoring",
        default=None,
        metavar="NAME",
        help="a scikit-learn scorer name, e.g. neg_log_loss (default: accuracy)",
    )


def _number_list(text: str | None, option: str) -> list[float] | None:
    if text is None:
        return None
    try:
        return [float(value) for value in text.split(",") if value.strip()]
    except ValueError:
        raise ValueError(f"{option} must be numbers separated by commas; got {text!r}") from None


def run_cv(args: argparse.Namespace) -> int:
    """Cross-validate C (and the L1 mix) over a grid, refit at the best point, write it."""
    from ._estimator import SoftmaxRegression, SoftmaxRegressionCV

    Cs = _number_list(args.Cs, "--Cs")
    if len(Cs) == 1 and "," not in args.Cs:
        if Cs[0] != int(Cs[0]) or Cs[0] < 1:
            raise ValueError(f"--Cs must be a whole number of grid points or a list; got {args.Cs}")
        Cs = int(Cs[0])
    penalty = None if args.penalty == "none" else args.penalty
    if penalty is None:
        raise ValueError("cv chooses the strength of a penalty; --penalty none has nothing to tune")
    settings = dict(
        penalty=penalty,
        class_weight=args.class_weight,
        solver=args.solver,
        tol=args.tol,
        max_iter=args.max_iter,
    )
    search = SoftmaxRegressionCV(
        Cs=Cs, l1_ratios=_number_list(args.l1_ratios, "--l1-ratios"), cv=args.cv,
        scoring=args.scoring, **settings,
    )  # fmt: skip
    model, X, y, elapsed = _train(args, search, "cv")
    fitted = model.estimator_
    scores = np.asarray(fitted.scores_)  # (folds, l1 ratios, Cs)
    mean, spread = scores.mean(axis=0), scores.std(axis=0)
    ratios = fitted.l1_ratios_ if fitted.l1_ratios_ is not None else [None]
    print(f"{scores.shape[0]}-fold cross-validation, score {args.scoring or 'accuracy'}:")
    for r, ratio in enumerate(ratios):
        for c, C in enumerate(fitted.Cs_):
            chosen = np.isclose(C, fitted.C_) and (ratio is None or ratio == fitted.l1_ratio_)
            where = f"C={C:<10.4g}" + ("" if ratio is None else f" l1-ratio={ratio:<6.3g}")
            mark = "  <- best" if chosen else ""
            print(f"  {where} {mean[r, c]:.4f} +- {spread[r, c]:.4f}{mark}")
    best = SoftmaxRegression(C=float(fitted.C_), l1_ratio=fitted.l1_ratio_, **settings)
    # the refit at the chosen point is written as a plain model file
    final = _tabular_model(args, best).fit(X, _series(y, name=args.target))
    _report_fit(final, X, y, args, elapsed)
    return 0


# ----------------------------------------------------------------------------------- onnx
def add_export_onnx_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL", help="model file written by 'fit' or save()")
    parser.add_argument(
        "-o", "--output", required=True, metavar="MODEL.onnx", help="ONNX file to write"
    )
    parser.add_argument(
        "--float64", action="store_true", help="compute in double precision (default: float32)"
    )


def run_export_onnx(args: argparse.Namespace) -> int:
    """Write the model as an ONNX graph; print its inputs and outputs."""
    model = _load_model(args.model)
    graph = model.to_onnx(dtype=np.float64 if args.float64 else np.float32)
    data = graph.SerializeToString()
    try:
        with open(args.output, "wb") as file:
            file.write(data)
    except OSError as exc:
        raise OSError(f"cannot write {args.output}: {exc.strerror or exc}") from None
    inputs = [entry.name for entry in graph.graph.input]
    outputs = [entry.name for entry in graph.graph.output]
    print(f"ONNX graph written to {args.output} ({len(data)} bytes)")
    print(f"Inputs: {_preview(inputs)}")
    print(f"Outputs: {', '.join(outputs)}")
    return 0


# ----------------------------------------------------------------------------------- predict
def add_predict_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL", help="model file written by 'fit' or save()")
    parser.add_argument("data", metavar="DATA", help="rows to predict (CSV or Parquet)")
    parser.add_argument(
        "-o",
        "--output",
        metavar="OUT",
        help="table to write: .csv, .tsv, .parquet (or .csv.gz) by its name (default: CSV on "
        "stdout)",
    )
    parser.add_argument(
        "--proba", action="store_true", help="add a proba_<class> column for every class"
    )
    parser.add_argument(
        "--id",
        action="append",
        metavar="COL",
        help="copy this column of DATA into the output, first (repeat or comma-separate)",
    )


def run_predict(args: argparse.Namespace) -> int:
    """Write one row per input row: the id columns, ``predicted_<target>`` (and
    ``proba_<class>``)."""
    import pandas as pd

    model = _load_model(args.model)
    frame = _read(args.data)
    ids = _column_names(args.id)
    missing = [name for name in ids if name not in frame.columns]
    if missing:
        raise ValueError(
            f"--id column {missing[0]!r} is not in {args.data}; columns are "
            f"{_preview(frame.columns)}"
        )
    predictor, X = _model_inputs(model, frame, args.data, _target_name(model, None))
    with _warnings_as_lines("predict"):
        proba = predictor.predict_proba(X)
    classes = np.asarray(model.classes_)
    target = _target_name(model, None)
    # never the target's own name: a prediction must not pass for the truth
    label = f"predicted_{target}" if target else "predicted"
    out = pd.DataFrame({name: frame[name].to_numpy() for name in ids})
    out[label] = classes[np.argmax(proba, axis=1)]
    if args.proba:
        for index, cls in enumerate(classes.tolist()):
            out[f"proba_{cls}"] = proba[:, index]
    if out.columns.duplicated().any():
        raise ValueError(f"--id names a column that the output already has: {label!r}")
    if args.output:
        write_table(out, args.output)
        print(f"Predictions for {len(out)} rows written to {args.output}")
    else:
        out.to_csv(sys.stdout, index=False)
    return 0


# ----------------------------------------------------------------------------------- evaluate
def add_evaluate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL", help="model file written by 'fit' or save()")
    parser.add_argument("data", metavar="DATA", help="labelled rows (CSV or Parquet)")
    parser.add_argument("--target", metavar="COL", help="label column (default: the fitted one)")
    parser.add_argument("--json", action="store_true", help="print the metrics as JSON")


def evaluation_metrics(y, proba: np.ndarray, classes: np.ndarray) -> dict:
    """Accuracy, log loss, Brier score, per-class precision/recall/F1, confusion matrix.

    The Brier score is the multiclass one of Brier (1950): the mean over rows of
    ``sum_k (p_k - [y = k])^2`` (0 is perfect, 2 the worst).
    """
    from sklearn.metrics import confusion_matrix, log_loss, precision_recall_fscore_support

    lookup = {label: index for index, label in enumerate(classes.tolist())}
    codes = np.array([lookup[value] for value in np.asarray(y).tolist()], dtype=np.intp)
    predicted = np.argmax(proba, axis=1)
    onehot = np.zeros_like(proba)
    onehot[np.arange(len(codes)), codes] = 1.0
    indices = np.arange(len(classes))
    precision, recall, f1, support = precision_recall_fscore_support(
        codes, predicted, labels=indices, zero_division=0
    )
    return {
        "n": int(len(codes)),
        "accuracy": float(np.mean(predicted == codes)),
        "log_loss": float(log_loss(codes, proba, labels=indices)),
        "brier": float(np.mean(np.sum((proba - onehot) ** 2, axis=1))),
        "classes": classes.tolist(),
        "precision": precision.tolist(),
        "recall": recall.tolist(),
        "f1": f1.tolist(),
        "support": support.tolist(),
        "confusion_matrix": confusion_matrix(codes, predicted, labels=indices).tolist(),
    }


def _format_metrics(metrics: dict, model_path: str, data_path: str, target: str) -> str:
    classes = [str(c) for c in metrics["classes"]]
    width = max(12, *(len(c) for c in classes))
    lines = [
        f"Model {model_path} on {data_path} ({metrics['n']} rows, target {target})",
        "",
        f"accuracy     {metrics['accuracy']:.4f}",
        f"log loss     {metrics['log_loss']:.4f}",
        f"Brier score  {metrics['brier']:.4f}",
        "",
        f"{'class':>{width}}  precision     recall   f1-score    support",
    ]
    support = np.array(metrics["support"], dtype=float)
    for index, name in enumerate(classes):
        lines.append(
            f"{name:>{width}}  {metrics['precision'][index]:9.4f}  {metrics['recall'][index]:9.4f}"
            f"  {metrics['f1'][index]:9.4f}  {metrics['support'][index]:9d}"
        )
    for label, weights in (("macro avg", None), ("weighted avg", support)):
        values = [
            np.average(metrics[key], weights=weights) for key in ("precision", "recall", "f1")
        ]
        lines.append(
            f"{label:>{width}}  {values[0]:9.4f}  {values[1]:9.4f}  {values[2]:9.4f}"
            f"  {int(support.sum()):9d}"
        )
    lines += ["", "Confusion matrix (rows: true class, columns: predicted class)"]
    matrix = metrics["confusion_matrix"]
    cell = max(6, *(len(c) for c in classes), *(len(str(v)) for row in matrix for v in row))
    lines.append(f"{'':>{width}}  " + " ".join(f"{c:>{cell}}" for c in classes))
    for name, row in zip(classes, matrix, strict=True):
        lines.append(f"{name:>{width}}  " + " ".join(f"{v:>{cell}}" for v in row))
    return "\n".join(lines)


def run_evaluate(args: argparse.Namespace) -> int:
    """Held-out metrics of a model on labelled data."""
    import json

    model = _load_model(args.model)
    target = _target_name(model, args.target)
    if target is None:
        raise ValueError("--target is required (the model file does not name its target)")
    frame = _read(args.data)
    classes = np.asarray(model.classes_)
    y = _target_values(_require_target(frame, target, args.data), classes, target, args.data)
    predictor, X = _model_inputs(model, frame, args.data, target)
    with _warnings_as_lines("evaluate"):
        proba = predictor.predict_proba(X)
    metrics = evaluation_metrics(y, proba, classes)
    if args.json:
        print(json.dumps(metrics, default=str))
    else:
        print(_format_metrics(metrics, args.model, args.data, target))
    return 0


# ----------------------------------------------------------------------------------- summary
def add_summary_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "model", metavar="MODEL", help="model file from 'fit' or save() (with --formula: DATA)"
    )
    parser.add_argument(
        "data", metavar="DATA", nargs="?", help="the training data (CSV or Parquet)"
    )
    parser.add_argument(
        "--formula",
        metavar="F",
        help="fit 'target ~ terms' (formulaic, penalty none) on the table given as the only "
        "positional argument and print its summary",
    )
    parser.add_argument("--target", metavar="COL", help="label column (default: the fitted one)")
    parser.add_argument("--reference", help="reference class (default: the first class)")
    parser.add_argument("--robust", action="store_true", help="sandwich (HC0) standard errors")
    parser.add_argument("--alpha", type=float, default=0.05, help="intervals at level 1 - ALPHA")


def run_summary(args: argparse.Namespace) -> int:
    """The inference table: coefficients, standard errors, z and p values per class."""
    if args.formula is not None:
        return _run_formula_summary(args)
    if args.data is None:
        raise ValueError("summary needs MODEL and DATA (or DATA with --formula)")
    model = _load_model(args.model)
    target = _target_name(model, args.target)
    if target is None:
        raise ValueError("--target is required (the model file does not name its target)")
    frame = _read(args.data)
    classes = np.asarray(model.classes_)
    y = _target_values(_require_target(frame, target, args.data), classes, target, args.data)
    estimator, X = _design(model, frame, args.data, target)
    reference = None
    if args.reference is not None:
        reference = _target_values(
            _series([args.reference]), classes, "--reference", "the command line"
        )[0]
    try:
        from .inference import compute_inference  # noqa: F401 - written in its own issue
    except ImportError:
        raise ValueError("summary needs softmaxreg.inference, which this build lacks") from None
    with _warnings_as_lines("summary"):
        try:
            result = estimator.inference(X, y, reference=reference, robust=args.robust)
        except ValueError as exc:
            raise _explain_singular(model, exc) from None
        print(result.summary(alpha=args.alpha))
    return 0


def _run_formula_summary(args: argparse.Namespace) -> int:
    """``summary DATA --formula "y ~ x + C(g)"``: fit the formula by maximum likelihood and
    print the inference table with the formula's labels."""
    from . import formula

    if args.data is not None:
        raise ValueError("with --formula give only DATA (the model is fitted from the formula)")
    frame = _read(args.model)
    with _warnings_as_lines("summary"):
        model = formula.fit(args.formula, frame)
        reference = None
        if args.reference is not None:
            reference = _target_values(_series([args.reference]), model.classes_,
                                       "--reference", "the command line")[0]
        result = model.inference(reference=reference, robust=args.robust)
        print(result.summary(alpha=args.alpha))
    return 0


def _explain_singular(model, exc: ValueError) -> ValueError:
    """A full one-hot block sums to the intercept column, so a model fitted without
    ``--drop-first`` has no standard errors: say how to fix that from the command line."""
    from .tabular import CategoricalColumn, TabularModel

    full_one_hot = isinstance(model, TabularModel) and any(
        isinstance(column, CategoricalColumn) and not column.drop_first
        for column in model.preprocessor_.columns
    )
    if full_one_hot and "singular" in str(exc).lower():
        return ValueError(
            "no standard errors: the full one-hot columns of this model are collinear with "
            "the intercept; refit with 'softmaxreg fit ... --drop-first' (dummy coding)"
        )  # the library's own advice (a penalty) would be a second, competing fix
    return exc


def _series(values, name: str | None = None):
    import pandas as pd

    return pd.Series(values, name=name)


# ----------------------------------------------------------------------------------- plot
def _plot_kind(text: str) -> str:
    return text.strip().lower().replace("-", "_")


def add_plot_arguments(parser: argparse.ArgumentParser) -> None:
    from .plot import KINDS

    parser.add_argument("model", metavar="MODEL", help="model file written by 'fit' or save()")
    parser.add_argument("data", metavar="DATA", help="rows to draw (CSV or Parquet)")
    parser.add_argument("--target", metavar="COL", help="label column (default: the fitted one)")
    parser.add_argument(
        "--kind",
        required=True,
        type=_plot_kind,
        choices=KINDS,
        metavar="KIND",
        help="figure: " + ", ".join(KINDS),
    )
    parser.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="FILE.png",
        help="figure to write; the suffix picks the format (.png, .pdf, .svg)",
    )
    parser.add_argument(
        "--title", help="figure title (default: the kind, the model file and the data file)"
    )


_KIND_TITLES = {
    "decision_regions": "Decision regions",
    "probability_map": "Class probabilities",
    "simplex": "Predicted probabilities",
    "coefficients": "Coefficients",
    "reliability": "Reliability diagram",
    "confusion_matrix": "Confusion matrix",
    "risk_coverage": "Risk and coverage of rejection",
}


def _coefficients_in_column_units(model):
    """``(coef (K, d), feature names, colour-bar label)`` of a model, per unit of each raw
    column: a standardised column's coefficient is divided by its scale."""
    from .tabular import NumericColumn, TabularModel

    estimator = model.estimator_ if isinstance(model, TabularModel) else model
    coef = np.array(estimator.coef_, dtype=float)
    names = getattr(estimator, "feature_names_in_", None)
    names = [f"x{j}" for j in range(coef.shape[1])] if names is None else list(names)
    if not isinstance(model, TabularModel) or not model.preprocessor_.standardized:
        return coef, names, "coefficient"
    offset = 0
    for column in model.preprocessor_.columns:
        width = len(column.feature_names)
        if isinstance(column, NumericColumn) and column.scale is not None:
            coef[:, offset] /= column.scale
        offset += width
    return coef, names, "coefficient (per unit of the column)"


def run_plot(args: argparse.Namespace) -> int:
    """Draw one figure of ``softmaxreg.plot`` for a model and a table.

    Models fitted with ``--standardize`` are drawn in the columns' own units: the 2-D
    figures predict with the whole model on raw values, and coefficients are per unit.
    """
    from . import plot
    from .tabular import TabularModel

    model = _load_model(args.model)
    target = _target_name(model, args.target)
    frame = _read(args.data)
    y = None
    if target is not None and (args.target is not None or target in frame.columns):
        classes = np.asarray(model.classes_)
        y = _target_values(_require_target(frame, target, args.data), classes, target, args.data)
    title = args.title or (
        f"{_KIND_TITLES[args.kind]}: {os.path.basename(args.model)} on "
        f"{os.path.basename(args.data)}"
    )
    predictor, X = _model_inputs(model, frame, args.data, target)
    if isinstance(predictor, TabularModel):
        X = frame[list(predictor.feature_names_in_)]
    with _warnings_as_lines("plot"):
        if args.kind == "coefficients":
            coef, names, label = _coefficients_in_column_units(model)
            axes = plot.coefficients(
                coef, feature_names=names, class_names=_class_labels(model),
                colorbar_label=label, title=title,
            )  # fmt: skip
        else:
            if args.kind in ("decision_regions", "probability_map"):
                _check_two_numeric_columns(predictor, X, args.kind)
            axes = plot.plot_model(args.kind, predictor, X, y, ax=None, title=title)
    first = np.ravel(axes)[0] if isinstance(axes, np.ndarray) else axes
    save_figure(first.figure, args.output)
    print(f"Figure written to {os.fspath(args.output)}")
    return 0


def _class_labels(model) -> list[str]:
    return [str(label) for label in np.asarray(model.classes_).tolist()]


def _check_two_numeric_columns(predictor, X, kind: str) -> None:
    from .tabular import NumericColumn, TabularModel

    if isinstance(predictor, TabularModel):
        columns = predictor.preprocessor_.columns
        if len(columns) != 2 or not all(isinstance(c, NumericColumn) for c in columns):
            raise ValueError(
                f"--kind {kind} draws a model of 2 numeric columns; this one reads "
                f"{_preview(predictor.feature_names_in_)} (fit on 2 numeric columns, "
                "--drop the others)"
            )
    elif np.shape(X)[1] != 2:
        raise ValueError(
            f"--kind {kind} draws a model of 2 feature columns; this one has {np.shape(X)[1]}"
        )
