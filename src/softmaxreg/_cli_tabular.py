"""The data commands of the ``softmaxreg`` command line: fit, predict, evaluate, summary, plot.

Each command is an ``add_<name>_arguments(parser)`` / ``run_<name>(args) -> int`` pair that
``cli._COMMANDS`` registers. Problems raise ``ValueError`` / ``FileNotFoundError`` with a
message naming the file or column; ``cli.main`` prints it as one line on stderr.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import threading
import time
import warnings

import numpy as np


# ----------------------------------------------------------------------------------- progress
class Progress:
    """Shows that a long step is running: nothing for the first ``delay`` seconds, then an
    elapsed-time line on ``stream`` until the block ends.

    On a terminal the line is redrawn in place (a spinner) and erased at the end; otherwise
    (a log file, CI) one line is written after ``delay`` and then every ``every`` seconds.

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

    def __init__(self, message: str, stream=None, delay=1.0, interval=0.2, every=10.0):
        self.message = message
        self.stream = stream if stream is not None else sys.stderr
        self.delay = delay
        self.interval = interval
        self.every = every
        self.shown = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="softmaxreg-progress", daemon=True)

    def __enter__(self) -> Progress:
        self._start = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc_info) -> None:
        self._stop.set()
        self._thread.join()
        if self.shown and self._isatty():
            self._write("\r\033[K")

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

    def _run(self) -> None:
        if self._stop.wait(self.delay):
            return
        tty = self._isatty()
        tick = 0
        while not self._stop.is_set():
            elapsed = time.monotonic() - self._start
            if tty:
                spinner = self._SPINNER[tick % len(self._SPINNER)]
                self._write(f"\r{self.message} {spinner} {elapsed:6.1f} s")
            else:
                self._write(f"{self.message}: {elapsed:.0f} s elapsed\n")
            self.shown = True
            tick += 1
            self._stop.wait(self.interval if tty else self.every)


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
            print(f"softmaxreg {command}: warning: {text}", file=sys.stderr)


# ----------------------------------------------------------------------------------- helpers
def _read(path: str):
    from .tabular import read_table

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


# ----------------------------------------------------------------------------------- fit
def add_fit_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("data", metavar="DATA", help="training data (CSV or Parquet)")
    parser.add_argument("--target", required=True, metavar="COL", help="the label column")
    parser.add_argument("-o", "--output", required=True, metavar="MODEL", help="model file")
    parser.add_argument("--C", type=float, default=1.0, help="inverse regularisation (1.0)")
    parser.add_argument(
        "--penalty",
        default="l2",
        choices=["l2", "l1", "elasticnet", "grouped", "none"],
        help="penalty (default: %(default)s)",
    )
    parser.add_argument("--l1-ratio", type=float, default=None, help="for elasticnet, grouped")
    parser.add_argument(
        "--class-weight", choices=["balanced"], default=None, help="reweight classes"
    )
    parser.add_argument(
        "--standardize", action="store_true", help="scale numeric columns to mean 0, sd 1"
    )
    parser.add_argument(
        "--categorical",
        action="append",
        metavar="COL",
        help="also one-hot encode this integer-coded column (repeat or comma-separate); "
        "text, categorical and boolean columns always are",
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
    parser.add_argument("--max-categories", type=int, default=1000, metavar="N")
    parser.add_argument("--solver", default="auto")
    parser.add_argument("--tol", type=float, default=1e-6)
    parser.add_argument("--max-iter", type=int, default=1000)
    parser.add_argument("--quiet", action="store_true", help="no progress line")


def run_fit(args: argparse.Namespace) -> int:
    """Fit a TabularModel on a table and write it to ``--output``."""
    from ._estimator import SoftmaxRegression
    from .tabular import TabularModel, _target_array

    frame = _read(args.data)
    y = _require_target(frame, args.target, args.data)
    categorical = _column_names(args.categorical)
    drop = _column_names(args.drop)
    if args.target in categorical:
        raise ValueError(f"--categorical {args.target!r} is the target column")
    X = frame.drop(columns=[args.target])
    estimator = SoftmaxRegression(
        C=args.C,
        penalty=None if args.penalty == "none" else args.penalty,
        l1_ratio=args.l1_ratio,
        class_weight=args.class_weight,
        solver=args.solver,
        tol=args.tol,
        max_iter=args.max_iter,
    )
    model = TabularModel(
        estimator,
        categorical=categorical,
        standardize=args.standardize,
        drop=[name for name in drop if name != args.target],
        max_categories=args.max_categories,
        drop_first=args.drop_first,
    )
    message = f"softmaxreg fit: fitting {X.shape[0]} rows"
    start = time.perf_counter()
    with _warnings_as_lines("fit"):
        if args.quiet:
            model.fit(X, y)
        else:
            with Progress(message):
                model.fit(X, y)
        accuracy = model.score(X, _target_array(y))
    elapsed = time.perf_counter() - start
    model.save(args.output)
    fitted = model.estimator_
    status = "converged" if fitted.converged_ else "NOT converged"
    print(
        f"Fitted on {X.shape[0]} rows of {args.data}: {len(model.feature_names_in_)} columns -> "
        f"{fitted.n_features_in_} features, {len(fitted.classes_)} classes"
    )
    print(f"Solver {fitted.solver_}: {fitted.n_iter_} iterations, {status} ({elapsed:.1f} s)")
    print(f"Training accuracy: {accuracy:.4f}")
    print(f"Model written to {args.output}")
    return 0


# ----------------------------------------------------------------------------------- predict
def add_predict_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL", help="model file written by 'fit' or save()")
    parser.add_argument("data", metavar="DATA", help="rows to predict (CSV or Parquet)")
    parser.add_argument("-o", "--output", metavar="OUT.csv", help="CSV to write (default: stdout)")
    parser.add_argument("--proba", action="store_true", help="add one probability column per class")


def run_predict(args: argparse.Namespace) -> int:
    """Write one row per input row: the predicted label (and class probabilities)."""
    import pandas as pd

    model = _load_model(args.model)
    frame = _read(args.data)
    predictor, X = _model_inputs(model, frame, args.data, _target_name(model, None))
    with _warnings_as_lines("predict"):
        proba = predictor.predict_proba(X)
    classes = np.asarray(model.classes_)
    label = _target_name(model, None) or "prediction"
    out = pd.DataFrame({label: classes[np.argmax(proba, axis=1)]})
    if args.proba:
        for index, cls in enumerate(classes.tolist()):
            out[f"proba_{cls}"] = proba[:, index]
    if args.output:
        try:
            out.to_csv(args.output, index=False)
        except OSError as exc:
            raise OSError(f"cannot write {args.output}: {exc.strerror or exc}") from None
        print(f"Predictions for {len(out)} rows written to {args.output}")
    else:
        try:
            out.to_csv(sys.stdout, index=False)
            sys.stdout.flush()
        except BrokenPipeError:
            # The reader (e.g. `head`) closed the pipe: stop quietly, as Unix tools do, and keep
            # Python from reporting the failed flush at exit.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            return 0
    return 0


# ----------------------------------------------------------------------------------- evaluate
def add_evaluate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL")
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
    parser.add_argument("model", metavar="MODEL", help="model file (with --formula: DATA)")
    parser.add_argument("data", metavar="DATA", nargs="?",
                        help="the training data (CSV or Parquet)")
    parser.add_argument(
        "--formula", metavar="F",
        help="fit 'target ~ terms' (formulaic, penalty none) on the table given as the only "
        "positional argument and print its summary",
    )
    parser.add_argument("--target", metavar="COL", help="label column (default: the fitted one)")
    parser.add_argument("--reference", help="reference class (default: the first class)")
    parser.add_argument("--robust", action="store_true", help="sandwich (HC0) standard errors")
    parser.add_argument("--alpha", type=float, default=0.05, help="for the intervals (0.05)")


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
            "the intercept; refit with 'softmaxreg fit ... --drop-first' (dummy coding). "
            f"({str(exc).splitlines()[0]})"
        )
    return exc


def _series(values):
    import pandas as pd

    return pd.Series(values)


# ----------------------------------------------------------------------------------- plot
def add_plot_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", metavar="MODEL")
    parser.add_argument("data", metavar="DATA", help="rows to draw (CSV or Parquet)")
    parser.add_argument("--target", metavar="COL", help="label column (default: the fitted one)")
    parser.add_argument(
        "--kind",
        required=True,
        help="figure: decision_regions, probability_map, simplex, coefficients, reliability, "
        "confusion_matrix, risk_coverage",
    )
    parser.add_argument("-o", "--output", required=True, metavar="FILE.png")
    parser.add_argument("--title")


def run_plot(args: argparse.Namespace) -> int:
    """Draw one figure of ``softmaxreg.plot`` for a model and a table."""
    from . import plot

    model = _load_model(args.model)
    target = _target_name(model, args.target)
    frame = _read(args.data)
    y = None
    if target is not None and (args.target is not None or target in frame.columns):
        classes = np.asarray(model.classes_)
        y = _target_values(_require_target(frame, target, args.data), classes, target, args.data)
    estimator, X = _design(model, frame, args.data, target)
    plot_model = getattr(plot, "plot_model", None)
    if plot_model is None:
        raise ValueError("this build of softmaxreg.plot has no plot_model")
    kwargs = {"title": args.title} if args.title else {}
    with _warnings_as_lines("plot"):
        axes = plot_model(args.kind, estimator, X, y, ax=None, **kwargs)
    first = np.ravel(axes)[0] if isinstance(axes, np.ndarray) else axes
    figure = first.figure
    try:
        figure.savefig(args.output, dpi=120, bbox_inches="tight")
    except OSError as exc:
        raise OSError(f"cannot write {args.output}: {exc.strerror or exc}") from None
    finally:
        plot._pyplot().close(figure)
    print(f"Figure written to {os.fspath(args.output)}")
    return 0
