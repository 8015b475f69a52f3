"""The ``softmaxreg`` command line.

Every subcommand is a function ``run_<name>(args) -> int`` registered in ``_COMMANDS``
together with a function that adds its arguments. Errors print one line on stderr (no
traceback) and exit with status 2 (bad usage or input) or 1 (anything else).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
from collections.abc import Callable, Sequence

from . import _cli_tabular


def _add_demo_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "-o",
        "--output",
        default="softmax_decision_regions.png",
        metavar="FILE.png",
        help="figure to write; the suffix picks the format (.png, .pdf, .svg)",
    )
    parser.add_argument(
        "--title", default="Softmax regression: decision regions", help="figure title"
    )
    parser.add_argument("--xlabel", default="feature 1", help="label of the horizontal axis")
    parser.add_argument("--ylabel", default="feature 2", help="label of the vertical axis")
    parser.add_argument("--n-samples", type=int, default=300, metavar="N", help="rows generated")
    parser.add_argument("--n-classes", type=int, default=3, metavar="K", help="classes generated")
    parser.add_argument(
        "--random-state", type=int, default=42, metavar="SEED", help="seed of the generated data"
    )


def run_demo(args: argparse.Namespace) -> int:
    """The reference experiment of DESIGN.md: fit, print training accuracy, draw the regions."""
    from sklearn.datasets import make_classification

    from . import plot
    from ._estimator import SoftmaxRegression

    if args.n_samples < args.n_classes:
        raise ValueError(f"--n-samples must be at least --n-classes ({args.n_classes}).")
    X, y = make_classification(
        n_samples=args.n_samples,
        n_features=2,
        n_informative=2,
        n_redundant=0,
        n_clusters_per_class=1,
        n_classes=args.n_classes,
        random_state=args.random_state,
    )
    model = SoftmaxRegression(C=1.0).fit(X, y)
    print(f"Training accuracy: {model.score(X, y):.3f}")
    ax = plot.decision_regions(
        model, X, y, title=args.title, xlabel=args.xlabel, ylabel=args.ylabel
    )
    figure = ax.figure
    figure.tight_layout()
    _cli_tabular.save_figure(figure, args.output)
    print(f"Decision regions written to {args.output}")
    return 0


# name -> (help, add_arguments, run)
_COMMANDS: dict[str, tuple[str, Callable, Callable]] = {
    "demo": ("reproduce the reference experiment and its figure", _add_demo_arguments, run_demo),
    "fit": (
        "fit a model on a CSV/Parquet table and write the model file",
        _cli_tabular.add_fit_arguments,
        _cli_tabular.run_fit,
    ),
    "predict": (
        "predict labels (and probabilities) for the rows of a table",
        _cli_tabular.add_predict_arguments,
        _cli_tabular.run_predict,
    ),
    "evaluate": (
        "accuracy, log loss, Brier score, per-class metrics and confusion matrix",
        _cli_tabular.add_evaluate_arguments,
        _cli_tabular.run_evaluate,
    ),
    "summary": (
        "coefficients with standard errors, z and p values (inference table)",
        _cli_tabular.add_summary_arguments,
        _cli_tabular.run_summary,
    ),
    "plot": (
        "draw a figure of a model on a table",
        _cli_tabular.add_plot_arguments,
        _cli_tabular.run_plot,
    ),
    "cv": (
        "choose C by cross-validation (SoftmaxRegressionCV), refit and write the model file",
        _cli_tabular.add_cv_arguments,
        _cli_tabular.run_cv,
    ),
    "export-onnx": (
        "write a model file as an ONNX graph (inputs: the table's columns)",
        _cli_tabular.add_export_onnx_arguments,
        _cli_tabular.run_export_onnx,
    ),
}


class _OneLineErrorParser(argparse.ArgumentParser):
    """Usage errors as one line on stderr (exit 2), like every other error of the CLI."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Every option's help ends with its default, where it has one worth showing."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        default = action.default
        shown = default not in (None, False, argparse.SUPPRESS) and not isinstance(
            action, argparse._HelpAction | argparse._VersionAction
        )
        if shown and "%(default)" not in text and action.option_strings:
            text += " (default: %(default)s)"
        return text


def build_parser() -> argparse.ArgumentParser:
    """The argument parser with one subparser per command."""
    from . import __version__

    parser = _OneLineErrorParser(
        prog="softmaxreg",
        description="Softmax (multinomial logistic) regression.",
        formatter_class=_HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"softmaxreg {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name, (help_text, add_arguments, run) in _COMMANDS.items():
        subparser = subparsers.add_parser(
            name, help=help_text, description=help_text, formatter_class=_HelpFormatter
        )
        add_arguments(subparser)
        subparser.set_defaults(run=run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``softmaxreg`` console script; returns the exit status."""
    from ._optional import MissingExtraError

    try:
        args = build_parser().parse_args(argv)
        command = f"softmaxreg {args.command}"
        try:
            status = int(args.run(args) or 0)
        except MissingExtraError as exc:
            print(f"{command}: error: {_one_line(exc)}", file=sys.stderr)
            return 1
        except (ValueError, TypeError, FileNotFoundError, KeyError, OSError) as exc:
            if isinstance(exc, BrokenPipeError):
                raise
            print(f"{command}: error: {_one_line(exc)}", file=sys.stderr)
            return 2
        except KeyboardInterrupt:  # pragma: no cover
            print("softmaxreg: interrupted", file=sys.stderr)
            return 130
        except Exception as exc:  # noqa: BLE001 - one line, never a traceback
            message = f"{type(exc).__name__}: {_one_line(exc)}"
            print(f"{command}: error: {message}", file=sys.stderr)
            return 1
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit
        return status
    except BrokenPipeError:
        # The reader (e.g. `head`) closed the pipe: stop quietly, as Unix tools do, and keep
        # Python from reporting the failed flush of stdout at exit.
        with contextlib.suppress(OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        return 0


def _one_line(exc: BaseException) -> str:
    """The first line of an exception's message, in the command line's words."""
    text = str(exc).strip()
    if isinstance(exc, KeyError) and exc.args:
        text = str(exc.args[0])
    line = text.splitlines()[0] if text else type(exc).__name__
    return _cli_tabular.in_cli_words(line)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
