"""The model file and the ONNX export.

Model file
----------
One UTF-8 JSON document, never pickle::

    {
      "format": "softmaxreg-model",
      "schema_version": 1,
      "library_version": "0.1.0",
      "checksum": "sha256:<hex digest of the canonical JSON of "model">",
      "model": {
        "estimator": "SoftmaxRegression",
        "params": {"C": 1.0, "penalty": "l2", ...},        # constructor parameters
        "classes": {"dtype": "int64", "values": [1, 2, 3]}, # sorted, dtype kind kept
        "n_features": 4,
        "feature_names": ["a", "b", "c", "d"] or null,
        "coef_dtype": "float64",
        "coef": [[...], ...],                               # K rows of n_features numbers
        "intercept": [...],                                 # K numbers
        "n_iter": 12, "converged": true, "solver": "newton-cholesky",
        "preprocessing": null or {"target": ..., "params": {...}, "columns": [...]}
      }
    }

Numbers are JSON numbers written with Python's shortest round-trip ``repr``, so float64 (and
float32) arrays come back bit for bit. ``load`` opens regular files only (a FIFO or a
device is refused without reading), reads at most :data:`MAX_FILE_BYTES`, and before parsing
counts the JSON structure of the bytes to bound the memory the parse would take: a file whose
lists, objects and values would need more than :data:`MAX_PARSE_MEMORY_FACTOR` times its
size is refused unparsed. It rejects NaN/infinity,
duplicate keys, unknown keys and nesting beyond the schema, checks every type, shape, count,
range and name (solver names, unique feature names), and verifies the checksum (which
catches accidental corruption such as a flipped digit in a coefficient; it is not a
signature), hashing the canonical JSON piece by piece. Every problem raises
:class:`ModelFileError`, a ``ValueError``. ``save`` runs the same checks on what it is about
to write, so every file it writes loads. Files of schema version 1 stay loadable by later
versions.

ONNX export
-----------
See :func:`to_onnx`.
"""

from __future__ import annotations

import hashlib
import json
import math
import numbers
import os
import secrets
import stat

import numpy as np

FORMAT = "softmaxreg-model"
SCHEMA_VERSION = 1
#: Files above this size are refused before reading (a JSON model of 50 million coefficients).
MAX_FILE_BYTES = 1 << 30
MAX_CLASSES = 1_000_000
MAX_FEATURES = 100_000_000
MAX_PARAMETERS = 100_000_000
MAX_STRING_LENGTH = 100_000
MAX_COLUMNS = 1_000_000
#: Bound on the memory of parsing a file, in multiples of its size (plus
#: ``_PARSE_MEMORY_SLACK`` for small files). Model files need well under it: a coefficient
#: costs a Python float (32 bytes) per 4 or more bytes of text, a feature name of two
#: characters 60 bytes per 5; a file of empty lists or objects would cost 20-100 times its size.
MAX_PARSE_MEMORY_FACTOR = 16
_PARSE_MEMORY_SLACK = 16 << 20

_HEADER_KEYS = {"format", "schema_version", "library_version", "checksum", "model"}
_MODEL_KEYS = {
    "estimator",
    "params",
    "classes",
    "n_features",
    "feature_names",
    "coef_dtype",
    "coef",
    "intercept",
    "n_iter",
    "converged",
    "solver",
    "preprocessing",
}
_INT_DTYPES = ("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64")
_FLOAT_DTYPES = ("float16", "float32", "float64")
_CLASS_DTYPES = (*_INT_DTYPES, *_FLOAT_DTYPES, "bool", "str", "object")
_COEF_DTYPES = ("float32", "float64")

# What a file that is not ours starts with, to say what it is instead of "invalid JSON".
_FOREIGN_MAGIC = (
    (b"\x80", "a Python pickle (softmaxreg never unpickles; it was not executed)"),
    (b"PK\x03\x04", "a zip archive"),
    (b"\x93NUMPY", "a NumPy .npy file"),
    (b"PAR1", "a Parquet file"),
    (b"\x89HDF", "an HDF5 file"),
    (b"\x1f\x8b", "a gzip file"),
)


class ModelFileError(ValueError):
    """A model file that is malformed, truncated, tampered with or not a softmaxreg model."""


# ================================================================================== saving
def save_model(model, path: str | os.PathLike) -> None:
    """Write a fitted model to ``path`` as one self-describing JSON file.

    Parameters
    ----------
    model : fitted SoftmaxRegression or softmaxreg.tabular.TabularModel
        A ``TabularModel`` (what ``softmaxreg fit`` trains) stores its preprocessing as
        well, so the loaded model takes raw columns again.
    path : str or path-like
        Written atomically (a temporary file in the same folder, then renamed), so a crash
        never leaves a half-written model behind.

    Raises
    ------
    sklearn.exceptions.NotFittedError
        When the model is not fitted.
    TypeError
        For another kind of object, or class labels that cannot be stored.
    ValueError
        When ``load`` would refuse the file: more coefficients, classes, features or bytes
        than a model file may hold (:data:`MAX_FILE_BYTES`, :data:`MAX_PARAMETERS` ...), a
        feature name longer than :data:`MAX_STRING_LENGTH`, or duplicate feature names.
        Nothing is written then.
    OSError
        When the file cannot be written.
    """
    from . import __version__

    body = _encode_model(model)
    document = {
        "format": FORMAT,
        "schema_version": SCHEMA_VERSION,
        "library_version": __version__,
        "checksum": _checksum(body),
        "model": body,
    }
    data = _dumps(document).encode("utf-8")
    # The checks of load, on what is about to be written: every file save writes loads.
    try:
        _check_size(len(data), "the model file")
        _check_structure(data)
        _decode_model(body)
    except ModelFileError as exc:
        raise ValueError(f"cannot save this model: load would refuse the file: {exc}") from None
    _atomic_write(os.fspath(path), data)


def _encode_model(model) -> dict:
    from sklearn.utils.validation import check_is_fitted

    from ._estimator import SoftmaxRegression
    from .tabular import TabularModel

    preprocessing = None
    if isinstance(model, TabularModel):
        check_is_fitted(model)
        preprocessing = _encode_preprocessing(model)
        estimator = model.estimator_
    else:
        estimator = model
    if not isinstance(estimator, SoftmaxRegression):
        raise TypeError(
            f"save_model writes SoftmaxRegression and TabularModel; got {type(model).__name__}."
        )
    check_is_fitted(estimator)
    coef = np.asarray(estimator.coef_)
    intercept = np.asarray(estimator.intercept_)
    if not (np.all(np.isfinite(coef)) and np.all(np.isfinite(intercept))):
        raise ValueError("the model has non-finite coefficients; refusing to save it.")
    coef_dtype = "float32" if coef.dtype == np.float32 else "float64"
    feature_names = getattr(estimator, "feature_names_in_", None)
    return {
        "estimator": "SoftmaxRegression",
        "params": _encode_params(estimator.get_params(deep=False)),
        "classes": _encode_classes(np.asarray(estimator.classes_)),
        "n_features": int(coef.shape[1]),
        "feature_names": None if feature_names is None else [str(n) for n in feature_names],
        "coef_dtype": coef_dtype,
        "coef": [[float(value) for value in row] for row in coef.tolist()],
        "intercept": [float(value) for value in intercept.tolist()],
        "n_iter": int(getattr(estimator, "n_iter_", 0)),
        "converged": bool(getattr(estimator, "converged_", True)),
        "solver": str(getattr(estimator, "solver_", estimator.solver)),
        "preprocessing": preprocessing,
    }


def _encode_params(params: dict) -> dict:
    encoded = {}
    for name, value in params.items():
        if name == "class_weight" and isinstance(value, dict):
            labels = np.asarray(list(value.keys()))
            encoded[name] = {
                "classes": _encode_classes(labels, sort=False),
                "weights": [float(weight) for weight in value.values()],
            }
        elif name == "random_state" and not (
            value is None or (isinstance(value, numbers.Integral) and not isinstance(value, bool))
        ):
            # A RandomState instance only seeds stochastic solvers during fit; the fitted
            # coefficients do not depend on it any more.
            encoded[name] = None
        elif isinstance(value, np.generic):
            encoded[name] = value.item()
        elif value is None or isinstance(value, bool | int | str):
            encoded[name] = value
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise ValueError(f"parameter {name}={value!r} is not finite; cannot save it.")
            encoded[name] = value
        else:
            raise TypeError(
                f"parameter {name}={value!r} ({type(value).__name__}) cannot be stored in a "
                "model file."
            )
    return encoded


def _encode_classes(classes: np.ndarray, sort: bool = True) -> dict:
    kind = classes.dtype.kind
    if kind in "iu":
        return {"dtype": classes.dtype.name, "values": [int(v) for v in classes.tolist()]}
    if kind == "f":
        return {"dtype": classes.dtype.name, "values": [float(v) for v in classes.tolist()]}
    if kind == "b":
        return {"dtype": "bool", "values": [bool(v) for v in classes.tolist()]}
    if kind == "U":
        return {"dtype": "str", "values": [str(v) for v in classes.tolist()]}
    if kind == "O":
        values = classes.tolist()
        if all(isinstance(v, str) for v in values):
            return {"dtype": "object", "values": values}
        if all(isinstance(v, bool | np.bool_) for v in values):
            return {"dtype": "bool", "values": [bool(v) for v in values]}
        if all(isinstance(v, numbers.Integral) for v in values):
            return {"dtype": "int64", "values": [int(v) for v in values]}
        if all(isinstance(v, numbers.Real) for v in values):
            return {"dtype": "float64", "values": [float(v) for v in values]}
    raise TypeError(
        f"class labels of dtype {classes.dtype} cannot be stored; use int, float, bool or str."
    )


def _encode_preprocessing(model) -> dict:
    from .tabular import NumericColumn

    columns = []
    for column in model.preprocessor_.columns:
        if isinstance(column, NumericColumn):
            columns.append(
                {
                    "name": column.name,
                    "type": "numeric",
                    "center": column.center,
                    "scale": column.scale,
                }
            )
        else:
            columns.append(
                {
                    "name": column.name,
                    "type": "categorical",
                    "dtype": column.kind,
                    "categories": list(column.categories),
                    "drop_first": column.drop_first,
                }
            )
    return {
        "target": model.target_,
        "params": {
            "categorical": [str(name) for name in _as_list(model.categorical)],
            "standardize": bool(model.standardize),
            "drop": [str(name) for name in _as_list(model.drop)],
            "max_categories": int(model.max_categories),
            "drop_first": bool(model.drop_first),
        },
        "columns": columns,
    }


def _as_list(value) -> list:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    return list(value)


def _canonical(body) -> bytes:
    return json.dumps(
        body, sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    ).encode("ascii")


def _checksum(body) -> str:
    """``"sha256:"`` and the hex digest of ``_canonical(body)``, hashed piece by piece so
    that no copy of the whole canonical text is made."""
    digest = hashlib.sha256()
    _hash_canonical(body, digest.update)
    return "sha256:" + digest.hexdigest()


_HASH_CHUNK = 4096


def _hash_canonical(value, update) -> None:
    """Feed ``_canonical(value)`` to ``update`` in pieces of at most ``_HASH_CHUNK``
    scalars (``json.dumps`` of each run of scalars; containers are descended into)."""
    if isinstance(value, dict):
        update(b"{")
        for index, key in enumerate(sorted(value)):
            if index:
                update(b",")
            update(_canonical(key))
            update(b":")
            _hash_canonical(value[key], update)
        update(b"}")
    elif isinstance(value, list):
        update(b"[")
        first = True
        for start in range(0, len(value), _HASH_CHUNK):
            chunk = value[start : start + _HASH_CHUNK]
            if any(isinstance(item, dict | list) for item in chunk):
                for item in chunk:
                    if not first:
                        update(b",")
                    first = False
                    _hash_canonical(item, update)
            else:
                if not first:
                    update(b",")
                first = False
                update(_canonical(chunk)[1:-1])
        update(b"]")
    else:
        update(_canonical(value))


def _dumps(document: dict) -> str:
    """JSON with one line per model field: readable, diffable, still one document."""
    dump = json.dumps
    lines = ["{"]
    header = [key for key in document if key != "model"]
    for key in header:
        lines.append(f"  {dump(key)}: {dump(document[key], allow_nan=False)},")
    lines.append('  "model": {')
    items = list(document["model"].items())
    for index, (key, value) in enumerate(items):
        comma = "," if index < len(items) - 1 else ""
        lines.append(f"    {dump(key)}: {dump(value, allow_nan=False)}{comma}")
    lines.append("  }")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _atomic_write(path: str, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file renamed over it.

    Where the system supports it (Linux ``O_TMPFILE`` on ext4, xfs, btrfs, tmpfs, and
    /proc), the temporary file has no name while it is written and synced and gets one just
    before the rename, so even a process killed mid-write (SIGKILL) leaves nothing behind;
    elsewhere it is a hidden named file. Either is removed on any exception.
    """
    folder = os.path.dirname(os.path.abspath(path))
    # Only the start of the name goes into the temporary one, so that any name the file
    # system accepts (up to 255 bytes) leaves room for the random part.
    temporary = os.path.join(folder, f".{os.path.basename(path)[:32]}.{secrets.token_hex(8)}.tmp")
    try:
        existing_mode = stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        existing_mode = None
    try:
        if not _write_anonymous(folder, temporary, data, existing_mode):
            _write_named(temporary, data, existing_mode)
        os.replace(temporary, path)
    except BaseException as exc:  # KeyboardInterrupt and MemoryError too: no debris left
        try:
            os.unlink(temporary)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise OSError(f"cannot write model file {path}: {exc.strerror or exc}") from None
        raise


def _write_anonymous(folder: str, temporary: str, data: bytes, mode: int | None) -> bool:
    """Write and sync ``data`` in an unnamed file of ``folder``, then name it ``temporary``;
    False (nothing written) where the system cannot."""
    # os.open with mode 0o666 lets the umask decide the permissions of a new file, as for any
    # new file (tempfile.mkstemp would make the model readable by its owner only).
    try:
        descriptor = os.open(folder, os.O_TMPFILE | os.O_WRONLY, 0o666)
    except (AttributeError, OSError):
        return False
    with os.fdopen(descriptor, "wb") as file:
        _fill(file, data, mode)
        try:
            os.link(f"/proc/self/fd/{file.fileno()}", temporary)
        except OSError:  # no /proc: the unnamed file is dropped with its descriptor
            return False
    return True


def _write_named(temporary: str, data: bytes, mode: int | None) -> None:
    with open(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666), "wb") as file:
        _fill(file, data, mode)


def _fill(file, data: bytes, mode: int | None) -> None:
    if mode is not None:  # a replaced model keeps its permissions
        os.fchmod(file.fileno(), mode)
    file.write(data)
    file.flush()
    os.fsync(file.fileno())


# ================================================================================== loading
def load(path: str | os.PathLike):
    """Read a model written by :meth:`SoftmaxRegression.save` or ``softmaxreg fit``.

    Parameters
    ----------
    path : str or path-like

    Returns
    -------
    SoftmaxRegression
        Fitted, ready for ``predict``, ``predict_proba``, ``score``, ``inference``, ``save``
        and ``to_onnx``; for a file with preprocessing (written by the command line or from
        a :class:`~softmaxreg.tabular.TabularModel`), that ``TabularModel``, which takes raw
        columns and whose fitted ``estimator_`` is the SoftmaxRegression.

    Raises
    ------
    FileNotFoundError
        When ``path`` does not exist.
    ValueError
        (:class:`ModelFileError`) for an empty, truncated, corrupted, tampered, oversized or
        foreign file, including a pickle, which is never executed: the file is only ever
        parsed as JSON.
    """
    path = os.fspath(path)
    data = _read_bounded(path)
    try:
        text = _decode_text(data)
        del data  # the bytes go before the parse: the text alone is kept
        document = _parse(text)
        del text
        return _decode_document(document)
    except ModelFileError as exc:
        raise ModelFileError(f"{path}: not a valid softmaxreg model file: {exc}") from None


def _read_bounded(path: str) -> bytes:
    """The bytes of the regular file ``path``, at most ``MAX_FILE_BYTES`` of them.

    The file is opened without blocking and checked with ``fstat`` on that descriptor before
    anything is read, so a FIFO (whose open and read would wait for a writer), a device such
    as /dev/zero, or a socket is refused at once.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    try:
        descriptor = os.open(path, flags)
    except FileNotFoundError:
        raise FileNotFoundError(f"model file not found: {path}") from None
    except IsADirectoryError:
        raise ModelFileError(f"{path}: is a directory, not a model file") from None
    except OSError as exc:
        raise OSError(f"cannot read model file {path}: {exc.strerror or exc}") from None
    try:
        info = os.fstat(descriptor)
        if stat.S_ISDIR(info.st_mode):
            raise ModelFileError(f"{path}: is a directory, not a model file")
        if not stat.S_ISREG(info.st_mode):
            raise ModelFileError(
                f"{path}: not a regular file (a FIFO, device or socket); model files are "
                "regular files"
            )
        _check_size(info.st_size, path)
        with os.fdopen(descriptor, "rb", buffering=0) as file:
            descriptor = None
            # Up to the end, in one read where the size is right; a file that grows or
            # reports no size (some /proc files) is read on in blocks, up to the limit.
            parts, total = [], 0
            while total <= MAX_FILE_BYTES:
                wanted = max(info.st_size + 1 - total, 1 << 20)
                part = file.read(min(wanted, MAX_FILE_BYTES + 1 - total))
                if not part:
                    break
                parts.append(part)
                total += len(part)
            _check_size(total, path)
            data = parts[0] if len(parts) == 1 else b"".join(parts)
    except OSError as exc:
        raise OSError(f"cannot read model file {path}: {exc.strerror or exc}") from None
    finally:
        if descriptor is not None:
            os.close(descriptor)
    if not data.strip():
        raise ModelFileError(f"{path}: not a valid softmaxreg model file: the file is empty")
    return data


def _check_size(size: int, what: str) -> None:
    if size > MAX_FILE_BYTES:
        raise ModelFileError(
            f"{what}: {size} bytes is larger than a model file may be ({MAX_FILE_BYTES} bytes)"
        )


def parse_memory_estimate(data: bytes) -> int:
    """An upper bound on the bytes the Python objects of ``json.loads(data)`` take, from a
    count of its structural characters (C-speed ``bytes.count``, no copy).

    Per item, CPython 3.11+ on 64 bits (measured with tracemalloc): a list 112 bytes (its
    header and first block of slots), an object (the parser's list of
    pairs and the dict) 320, a key-value pair 64, a list slot 9 (with over-allocation), a
    number 32 (an int of up to 18 digits; a float takes 24), a string 60, and every byte
    of the file once more as a character of a string (4 times where the text may hold
    non-ASCII characters). Brackets, commas and colons inside strings are counted as
    structure too, which only raises the bound.
    """
    n_lists = data.count(b"[")
    n_objects = data.count(b"{")
    n_pairs = data.count(b":")
    n_commas = data.count(b",")
    n_strings = data.count(b'"') // 2
    # every value but the root follows a comma, a colon or an opening bracket; strings and
    # containers are counted on their own (an escaped quote lowers this count by 1/2 but
    # adds 30 for a string: the bound holds)
    n_scalars = max(0, n_commas + n_pairs + 1 - n_strings)
    per_character = 1 if data.isascii() and b"\\u" not in data else 4
    return (
        112 * n_lists
        + 320 * n_objects
        + 64 * n_pairs
        + 9 * (n_commas + n_lists + n_objects)
        + 32 * n_scalars
        + 60 * n_strings
        + per_character * len(data)
    )


def _check_structure(data: bytes) -> None:
    """Refuse, before parsing, a file whose parse would take more than
    ``MAX_PARSE_MEMORY_FACTOR`` times its size."""
    estimate = parse_memory_estimate(data)
    allowed = MAX_PARSE_MEMORY_FACTOR * len(data) + _PARSE_MEMORY_SLACK
    if estimate > allowed:
        raise ModelFileError(
            f"its JSON structure would take about {estimate / 2**20:.0f} MiB to parse, more "
            f"than {MAX_PARSE_MEMORY_FACTOR} times the size of the file; a model file holds "
            "lists of numbers and names, not this many nested lists, objects or values"
        )


def _reject_constant(name: str):
    raise ModelFileError(f"non-finite number {name} (only finite numbers are allowed)")


def _parse_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ModelFileError(f"number {text[:40]} is out of range")
    return value


def _unique_keys(pairs):
    result = {}
    for key, value in pairs:
        if key in result:
            raise ModelFileError(f"duplicate key {key[:100]!r}")
        result[key] = value
    return result


def _decode_text(data: bytes) -> str:
    """The checked text of the file's bytes (foreign formats and floods refused)."""
    for magic, what in _FOREIGN_MAGIC:
        if data.startswith(magic):
            raise ModelFileError(f"the file is {what}")
    _check_structure(data)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ModelFileError(f"not UTF-8 text (byte {exc.start}); not a JSON model") from None


def _parse(text: str):
    try:
        return json.loads(
            text,
            parse_constant=_reject_constant,
            parse_float=_parse_float,
            object_pairs_hook=_unique_keys,
        )
    except ModelFileError:
        raise
    except RecursionError:
        raise ModelFileError("JSON nested too deeply") from None
    except ValueError as exc:
        # json.JSONDecodeError, and ValueError for integers of more than 4300 digits.
        raise ModelFileError(f"not valid JSON (truncated or corrupted?): {exc}") from None


# ---------------------------------------------------------------------------- field checks
def _fail(where: str, message: str):
    raise ModelFileError(f"{where}: {message}")


def _dict(value, where: str, keys: set[str], optional: set[str] = frozenset()) -> dict:
    if not isinstance(value, dict):
        _fail(where, f"expected an object, got {_type(value)}")
    unknown = sorted(set(value) - keys - set(optional))
    if unknown:
        _fail(where, f"unknown field {unknown[0][:100]!r}")
    missing = sorted(keys - set(value))
    if missing:
        _fail(where, f"missing field {missing[0]!r}")
    return value


def _type(value) -> str:
    return "null" if value is None else type(value).__name__


def _str(value, where: str, *, nullable: bool = False, max_length: int = MAX_STRING_LENGTH):
    if value is None and nullable:
        return None
    if not isinstance(value, str):
        _fail(where, f"expected a string, got {_type(value)}")
    if len(value) > max_length:
        _fail(where, f"string longer than {max_length} characters")
    return value


def _bool(value, where: str) -> bool:
    if not isinstance(value, bool):
        _fail(where, f"expected true or false, got {_type(value)}")
    return value


def _int(value, where: str, low: int | None = None, high: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        _fail(where, f"expected an integer, got {_type(value)}")
    if (low is not None and value < low) or (high is not None and value > high):
        _fail(where, f"{value} is outside [{low}, {high}]")
    return value


def _real(value, where: str, *, low=None, high=None, low_open=False, nullable=False):
    if value is None and nullable:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        _fail(where, f"expected a number, got {_type(value)}")
    try:
        number = float(value)
    except OverflowError:
        _fail(where, "number out of range")
    if not math.isfinite(number):
        _fail(where, "number out of range")
    if low is not None and (number <= low if low_open else number < low):
        _fail(where, f"{number} is below the allowed range")
    if high is not None and number > high:
        _fail(where, f"{number} is above the allowed range")
    return number


def _list(value, where: str, length: int | None = None, max_length: int | None = None) -> list:
    if not isinstance(value, list):
        _fail(where, f"expected a list, got {_type(value)}")
    if length is not None and len(value) != length:
        _fail(where, f"expected {length} entries, got {len(value)}")
    if max_length is not None and len(value) > max_length:
        _fail(where, f"more than {max_length} entries")
    return value


def _float_array(values: list, where: str, shape: tuple[int, ...]) -> np.ndarray:
    """A list (of lists) of JSON numbers as a float64 array; bools, strings, nulls, huge
    integers and ragged rows are refused."""
    rows = values if len(shape) == 2 else [values]
    width = shape[-1]
    for index, row in enumerate(rows):
        row = _list(row, f"{where}[{index}]" if len(shape) == 2 else where, length=width)
        for value in row:
            if type(value) is not float and type(value) is not int:
                _fail(where, f"expected numbers, found {_type(value)}")
    try:
        array = np.array(rows, dtype=np.float64).reshape(shape)
    except (OverflowError, ValueError):
        _fail(where, "number out of range")
    if not np.all(np.isfinite(array)):
        _fail(where, "non-finite number")
    return array


# ----------------------------------------------------------------------------- decoding
def _decode_document(document):
    if not isinstance(document, dict):
        raise ModelFileError(f"expected a JSON object at the top level, got {_type(document)}")
    if document.get("format") != FORMAT:
        found = document.get("format")
        raise ModelFileError(
            'not a softmaxreg model (no "format": "softmaxreg-model" header'
            + (f"; format is {str(found)[:60]!r})" if found is not None else ")")
        )
    version = document.get("schema_version")
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise ModelFileError(f"schema_version must be an integer >= 1, got {str(version)[:40]}")
    if version > SCHEMA_VERSION:
        from . import __version__

        raise ModelFileError(
            f"written with schema version {version} by softmaxreg "
            f"{str(document.get('library_version'))[:40]}; softmaxreg {__version__} reads "
            f"schema versions up to {SCHEMA_VERSION}: upgrade softmaxreg"
        )
    _dict(document, "header", _HEADER_KEYS)
    _str(document["library_version"], "library_version", max_length=100)
    checksum = _str(document["checksum"], "checksum", max_length=100)
    body = document["model"]
    if not isinstance(body, dict):
        raise ModelFileError(f"model: expected an object, got {_type(body)}")
    # Fields first, the checksum last: a file of the wrong shape is refused after a check of
    # list lengths, before the whole body is hashed.
    model = _decode_model(body)
    try:
        actual = _checksum(body)
    except (RecursionError, ValueError):  # nesting the parser accepted but the encoder refuses
        raise ModelFileError("JSON nested too deeply") from None
    if checksum != actual:
        raise ModelFileError(
            "checksum mismatch: the model was modified or corrupted after it was written"
        )
    return model


def _fitted_solvers() -> list[str]:
    """The names ``solver_`` can hold: the registry's, and "adam" of ``partial_fit``."""
    from ._solvers import SOLVERS

    return sorted({*SOLVERS, "adam"})


def _first_duplicate(values: list):
    """The first value of ``values`` seen twice, or None."""
    seen = set()
    for value in values:
        if value in seen:
            return value
        seen.add(value)
    return None


def _decode_model(body: dict):
    from ._estimator import SoftmaxRegression
    from ._solvers import SOLVERS
    from ._validation import check_params

    _dict(body, "model", _MODEL_KEYS)
    if body["estimator"] != "SoftmaxRegression":
        _fail("model.estimator", f"unknown estimator {str(body['estimator'])[:60]!r}")
    classes = _decode_classes(body["classes"], "model.classes", sort_check=True)
    n_classes = len(classes)
    n_features = _int(body["n_features"], "model.n_features", 1, MAX_FEATURES)
    if n_classes * n_features > MAX_PARAMETERS:
        _fail("model", f"{n_classes} x {n_features} coefficients is more than allowed")
    coef_dtype = body["coef_dtype"]
    if coef_dtype not in _COEF_DTYPES:
        _fail("model.coef_dtype", f"must be one of {list(_COEF_DTYPES)}")
    coef = _float_array(
        _list(body["coef"], "model.coef", length=n_classes), "model.coef", (n_classes, n_features)
    )
    intercept = _float_array(
        _list(body["intercept"], "model.intercept", length=n_classes),
        "model.intercept",
        (n_classes,),
    )
    with np.errstate(over="ignore"):  # an overflow to float32 infinity is rejected below
        coef = coef.astype(coef_dtype)
        intercept = intercept.astype(coef_dtype)
    if not (np.all(np.isfinite(coef)) and np.all(np.isfinite(intercept))):
        _fail("model.coef", f"values overflow {coef_dtype}")
    feature_names = body["feature_names"]
    if feature_names is not None:
        _list(feature_names, "model.feature_names", length=n_features)
        for index, name in enumerate(feature_names):
            _str(name, f"model.feature_names[{index}]")
        duplicate = _first_duplicate(feature_names)
        if duplicate is not None:
            _fail("model.feature_names", f"duplicate feature name {duplicate[:60]!r}")
    params = _decode_params(body["params"], classes)
    if not params.get("fit_intercept", True) and np.any(intercept != 0):
        _fail("model.intercept", "must be all zeros when fit_intercept is false")
    n_iter = _int(body["n_iter"], "model.n_iter", 0, 2**62)
    converged = _bool(body["converged"], "model.converged")
    solver = _str(body["solver"], "model.solver", max_length=100)
    if solver not in _fitted_solvers():
        _fail("model.solver", f"unknown solver {solver[:60]!r}; one of {_fitted_solvers()}")

    estimator = SoftmaxRegression()
    try:
        estimator.set_params(**params)
        # the checks of fit: what fit refuses (say elasticnet without l1_ratio, an unknown
        # solver name) cannot have been fitted
        check_params(estimator, SOLVERS)
    except (TypeError, ValueError) as exc:
        _fail("model.params", str(exc).splitlines()[0][:200])
    estimator.classes_ = classes
    estimator.coef_ = np.ascontiguousarray(coef)
    estimator.intercept_ = intercept
    estimator.n_features_in_ = n_features
    if feature_names is not None:
        estimator.feature_names_in_ = np.array(feature_names, dtype=object)
    estimator.n_iter_ = n_iter
    estimator.converged_ = converged
    estimator.solver_ = solver

    if body["preprocessing"] is None:
        return estimator
    if feature_names is None:
        _fail("model.feature_names", "required when the model has preprocessing")
    return _decode_preprocessing(body["preprocessing"], estimator, feature_names)


def _decode_classes(value, where: str, *, sort_check: bool) -> np.ndarray:
    _dict(value, where, {"dtype", "values"})
    dtype = value["dtype"]
    if dtype not in _CLASS_DTYPES:
        _fail(f"{where}.dtype", f"must be one of {list(_CLASS_DTYPES)}")
    values = _list(value["values"], f"{where}.values", max_length=MAX_CLASSES)
    if sort_check and len(values) < 2:
        _fail(f"{where}.values", "a model needs at least 2 classes")
    if dtype in _INT_DTYPES:
        info = np.iinfo(dtype)
        for v in values:
            _int(v, f"{where}.values", int(info.min), int(info.max))
        array = np.array(values, dtype=dtype)
    elif dtype in _FLOAT_DTYPES:
        array = _float_array(values, f"{where}.values", (len(values),)).astype(dtype)
        if not np.all(np.isfinite(array)):
            _fail(f"{where}.values", f"values overflow {dtype}")
    elif dtype == "bool":
        for v in values:
            _bool(v, f"{where}.values")
        array = np.array(values, dtype=bool)
    else:
        for v in values:
            _str(v, f"{where}.values")
        array = np.array(values, dtype=object if dtype == "object" else str)
    if sort_check:
        # classes_ is sorted and unique (np.unique order): predict and inference rely on it.
        if dtype in ("str", "object"):
            # Compare what the array holds: NumPy str arrays drop trailing NUL characters.
            ordered = array.tolist()
            increasing = all(a < b for a, b in zip(ordered, ordered[1:], strict=False))
        else:
            increasing = bool(np.all(array[1:] > array[:-1]))
        if not increasing:
            _fail(f"{where}.values", "classes must be sorted and unique")
    return array


def _decode_params(value, classes: np.ndarray) -> dict:
    from ._estimator import SoftmaxRegression
    from ._penalties import PENALTIES

    where = "model.params"
    if not isinstance(value, dict):
        _fail(where, f"expected an object, got {_type(value)}")
    known = set(SoftmaxRegression().get_params(deep=False))
    unknown = sorted(set(value) - known)
    if unknown:
        _fail(where, f"unknown parameter {unknown[0][:100]!r}")
    params = {}
    for name, item in value.items():
        at = f"{where}.{name}"
        if name == "C":
            params[name] = _real(item, at, low=0, low_open=True)
        elif name == "penalty":
            if item not in PENALTIES:
                _fail(at, f"must be one of {list(PENALTIES)}")
            params[name] = item
        elif name == "l1_ratio":
            params[name] = _real(item, at, low=0, high=1, nullable=True)
        elif name in ("fit_intercept", "warm_start"):
            params[name] = _bool(item, at)
        elif name == "class_weight":
            params[name] = _decode_class_weight(item, at, classes)
        elif name == "solver":
            params[name] = _str(item, at, max_length=100)
        elif name == "tol":
            params[name] = _real(item, at, low=0, nullable=True)
        elif name == "max_iter":
            params[name] = _int(item, at, 1, 2**62)
        elif name == "verbose":
            params[name] = item if isinstance(item, bool) else _int(item, at, 0, 2**31)
        elif name == "random_state":
            params[name] = None if item is None else _int(item, at, 0, 2**32 - 1)
        elif item is None or isinstance(item, bool | int | float | str):
            # A parameter added to SoftmaxRegression after schema 1: plain values only.
            if isinstance(item, str):
                _str(item, at)
            params[name] = item
        else:
            _fail(at, f"expected a plain value, got {_type(item)}")
    return params


def _decode_class_weight(value, where: str, classes: np.ndarray):
    if value is None or value == "balanced":
        return value
    if isinstance(value, str):
        _fail(where, 'must be null, "balanced" or an object of classes and weights')
    _dict(value, where, {"classes", "weights"})
    labels = _decode_classes(value["classes"], f"{where}.classes", sort_check=False)
    weights = _list(value["weights"], f"{where}.weights", length=len(labels))
    weights = [_real(w, f"{where}.weights", low=0) for w in weights]
    known = set(classes.tolist())
    result = {}
    for label, weight in zip(labels.tolist(), weights, strict=True):
        if label not in known:
            _fail(f"{where}.classes", f"{str(label)[:60]!r} is not a class of the model")
        if label in result:
            _fail(f"{where}.classes", f"duplicate class {str(label)[:60]!r}")
        result[label] = weight
    return result


def _decode_preprocessing(value, estimator, feature_names: list[str]):
    from .tabular import NumericColumn, Preprocessor, TabularModel

    where = "model.preprocessing"
    _dict(value, where, {"target", "params", "columns"})
    target = _str(value["target"], f"{where}.target", nullable=True)
    raw = _dict(
        value["params"],
        f"{where}.params",
        {"categorical", "standardize", "drop", "max_categories", "drop_first"},
    )
    params = {
        "standardize": _bool(raw["standardize"], f"{where}.params.standardize"),
        "drop_first": _bool(raw["drop_first"], f"{where}.params.drop_first"),
        "max_categories": _int(raw["max_categories"], f"{where}.params.max_categories", 1),
    }
    for key in ("categorical", "drop"):
        names = _list(raw[key], f"{where}.params.{key}", max_length=MAX_COLUMNS)
        params[key] = tuple(_str(name, f"{where}.params.{key}") for name in names)
    entries = _list(value["columns"], f"{where}.columns", max_length=MAX_COLUMNS)
    if not entries:
        _fail(f"{where}.columns", "no input columns")
    columns = []
    for index, entry in enumerate(entries):
        at = f"{where}.columns[{index}]"
        if not isinstance(entry, dict):
            _fail(at, f"expected an object, got {_type(entry)}")
        kind = entry.get("type")
        if kind == "numeric":
            _dict(entry, at, {"name", "type", "center", "scale"})
            center = _real(entry["center"], f"{at}.center", nullable=True)
            scale = _real(entry["scale"], f"{at}.scale", low=0, low_open=True, nullable=True)
            if (center is None) != (scale is None):
                _fail(at, "center and scale are both numbers or both null")
            columns.append(NumericColumn(_str(entry["name"], f"{at}.name"), center, scale))
        elif kind == "categorical":
            _dict(entry, at, {"name", "type", "dtype", "categories", "drop_first"})
            columns.append(_decode_categorical(entry, at))
        else:
            _fail(f"{at}.type", 'must be "numeric" or "categorical"')
    try:
        preprocessor = Preprocessor(columns)
    except ValueError as exc:
        _fail(f"{where}.columns", str(exc))
    if target is not None and target in preprocessor.input_names:
        _fail(f"{where}.target", "the target is also an input column")
    if preprocessor.feature_names_out != list(feature_names):
        _fail(where, "its one-hot features do not match model.feature_names")
    return TabularModel.from_fitted(preprocessor, estimator, target=target, params=params)


def _decode_categorical(entry: dict, at: str):
    from .tabular import CategoricalColumn

    name = _str(entry["name"], f"{at}.name")
    kind = entry["dtype"]
    categories = _list(entry["categories"], f"{at}.categories", max_length=MAX_FEATURES)
    if not categories:
        _fail(f"{at}.categories", "at least one category")
    if kind == "str":
        values = [_str(c, f"{at}.categories") for c in categories]
    elif kind == "int":
        values = [_int(c, f"{at}.categories", -(2**63), 2**63 - 1) for c in categories]
    elif kind == "bool":
        values = [_bool(c, f"{at}.categories") for c in categories]
    else:
        _fail(f"{at}.dtype", 'must be "str", "int" or "bool"')
    if len(set(values)) != len(values):
        _fail(f"{at}.categories", "duplicate categories")
    drop_first = _bool(entry["drop_first"], f"{at}.drop_first")
    return CategoricalColumn(name, kind, tuple(values), drop_first)


# ================================================================================== ONNX
ONNX_OPSET = 17
ONNX_ML_OPSET = 3
ONNX_IR_VERSION = 8


def to_onnx(model, *, dtype=np.float32, name: str = "softmaxreg"):
    """Export a fitted model as an ``onnx.ModelProto``.

    Graph (all arithmetic in float64, whatever the input dtype, so the outputs match
    ``predict_proba`` on the same input values to ~1e-15 and ``predict`` exactly)::

        input ─Cast(double)─ Gemm(W, b) ─┬─ Softmax ─Cast(dtype)─> probabilities [N, K]
                                         └─ ArgMax ─ Gather(classes) ─> label [N]

    - A :class:`SoftmaxRegression` has one input ``"input"`` of shape ``[N, n_features]``.
    - A :class:`~softmaxreg.tabular.TabularModel` (what ``softmaxreg fit`` trains) has one
      input per raw column, named like the column (a column named ``label``,
      ``probabilities`` or ``softmaxreg/...`` gets ``_input`` appended, see
      ``Preprocessor.onnx_input_names``), of shape ``[N, 1]``: numeric columns in
      ``dtype``, string columns as ``string``, integer-coded categorical columns as
      ``int64``, boolean ones as ``bool``. Numeric columns are concatenated and
      standardised (``Sub``/``Div``) when the model was fitted with ``standardize``;
      categorical columns go through ``ai.onnx.ml.OneHotEncoder`` (an unseen category gives
      all zeros, as in Python). ``TabularModel.onnx_inputs(frame)`` builds the feed.
    - ``label`` holds the class labels themselves: int64 for integer classes, double for
      float classes, bool, or string.

    Parameters
    ----------
    model : fitted SoftmaxRegression or TabularModel
    dtype : {numpy.float32, numpy.float64}, default=numpy.float32
        Type of the numeric inputs and of the ``probabilities`` output.
    name : str
        Graph name.

    Returns
    -------
    onnx.ModelProto
        Opset 17 (``ai.onnx.ml`` 3), IR version 8: runs on onnxruntime >= 1.13. Passes
        ``onnx.checker.check_model``.
    """
    from sklearn.utils.validation import check_is_fitted

    from ._optional import require

    onnx = require("onnx", "ONNX export")
    from onnx import TensorProto, helper, numpy_helper

    from . import __version__
    from ._estimator import SoftmaxRegression
    from .tabular import TabularModel

    dtype = np.dtype(dtype)
    if dtype not in (np.dtype(np.float32), np.dtype(np.float64)):
        raise ValueError(f"dtype must be float32 or float64; got {dtype}.")
    float_type = TensorProto.FLOAT if dtype == np.float32 else TensorProto.DOUBLE
    if isinstance(model, TabularModel):
        check_is_fitted(model)
        estimator = model.estimator_
    elif isinstance(model, SoftmaxRegression):
        estimator = model
    else:
        raise TypeError(
            f"to_onnx exports SoftmaxRegression and TabularModel; got {type(model).__name__}."
        )
    check_is_fitted(estimator)
    coef = np.asarray(estimator.coef_, dtype=np.float64)
    intercept = np.asarray(estimator.intercept_, dtype=np.float64)
    n_classes = coef.shape[0]

    nodes, inputs, initializers = [], [], []
    # internal names: no input starts with the prefix (see Preprocessor.onnx_input_names)
    prefix = "softmaxreg/"

    def constant(array: np.ndarray, label: str) -> str:
        initializers.append(numpy_helper.from_array(np.asarray(array), prefix + label))
        return prefix + label

    if isinstance(model, TabularModel):
        design, source = _onnx_preprocessing(
            model.preprocessor_, float_type, nodes, inputs, constant, prefix
        )
        # Column j of the ONNX design matrix is model feature source[j]; -1 marks the baseline
        # category of a drop_first column, which OneHotEncoder still emits: it gets weight 0.
        expanded = np.zeros((coef.shape[0], len(source)))
        expanded[:, source >= 0] = coef[:, source[source >= 0]]
        coef = expanded
    else:
        inputs.append(helper.make_tensor_value_info("input", float_type, [None, coef.shape[1]]))
        design = "input"
        if dtype != np.float64:
            nodes.append(helper.make_node("Cast", ["input"], [prefix + "x"], to=TensorProto.DOUBLE))
            design = prefix + "x"

    weights = constant(coef, "coef")
    bias = constant(intercept, "intercept")
    scores = prefix + "scores"
    nodes.append(helper.make_node("Gemm", [design, weights, bias], [scores], transB=1))
    probabilities = prefix + "probabilities64" if dtype != np.float64 else "probabilities"
    nodes.append(helper.make_node("Softmax", [scores], [probabilities], axis=1))
    if dtype != np.float64:
        nodes.append(helper.make_node("Cast", [probabilities], ["probabilities"], to=float_type))
    index = prefix + "argmax"
    nodes.append(helper.make_node("ArgMax", [scores], [index], axis=1, keepdims=0))
    labels, label_type = _onnx_labels(np.asarray(estimator.classes_), prefix + "classes")
    initializers.append(labels)
    nodes.append(helper.make_node("Gather", [labels.name, index], ["label"], axis=0))

    outputs = [
        helper.make_tensor_value_info("label", label_type, [None]),
        helper.make_tensor_value_info("probabilities", float_type, [None, n_classes]),
    ]
    graph = helper.make_graph(nodes, name, inputs, outputs, initializers)
    onnx_model = helper.make_model(
        graph,
        opset_imports=[
            helper.make_opsetid("", ONNX_OPSET),
            helper.make_opsetid("ai.onnx.ml", ONNX_ML_OPSET),
        ],
        producer_name="softmaxreg",
        producer_version=__version__,
        doc_string="Softmax regression exported by softmaxreg: outputs label and probabilities.",
    )
    onnx_model.ir_version = ONNX_IR_VERSION
    helper.set_model_props(
        onnx_model,
        {"classes": json.dumps(_encode_classes(np.asarray(estimator.classes_))["values"])},
    )
    onnx.checker.check_model(onnx_model, full_check=True)
    return onnx_model


def _onnx_labels(classes: np.ndarray, name: str):
    """The constant tensor of class labels that ``Gather`` indexes, and its element type."""
    from onnx import TensorProto, helper, numpy_helper

    values = classes.tolist()
    kind = classes.dtype.kind

    def all_of(types) -> bool:
        return all(isinstance(v, types) for v in values)

    if kind == "b" or (kind == "O" and all_of(bool)):
        return numpy_helper.from_array(np.array(values, dtype=bool), name), TensorProto.BOOL
    if kind in "iu" or (kind == "O" and all_of(numbers.Integral)):
        ints = [int(v) for v in values]
        if any(v < -(2**63) or v >= 2**63 for v in ints):
            raise ValueError("class labels outside the int64 range cannot be exported.")
        return numpy_helper.from_array(np.array(ints, dtype=np.int64), name), TensorProto.INT64
    if kind == "f" or (kind == "O" and all_of(numbers.Real)):
        array = np.array(values, dtype=np.float64)
        return numpy_helper.from_array(array, name), TensorProto.DOUBLE
    if kind in "UO" and all_of(str):
        encoded = [v.encode("utf-8") for v in values]
        return helper.make_tensor(name, TensorProto.STRING, [len(values)], encoded), (
            TensorProto.STRING
        )
    raise TypeError(f"class labels of dtype {classes.dtype} cannot be exported to ONNX.")


def _onnx_preprocessing(preprocessor, float_type, nodes, inputs, constant, prefix):
    """Nodes from the raw-column inputs to the float64 design matrix.

    Returns the name of the design matrix and, for each of its columns (numeric columns
    first, then each one-hot block with all its categories), the index of the model feature
    it holds, or -1 for the baseline category of a ``drop_first`` column.
    """
    from onnx import TensorProto, helper

    from .tabular import NumericColumn

    features = preprocessor.feature_names_out
    position = {feature: index for index, feature in enumerate(features)}
    numeric = [c for c in preprocessor.columns if isinstance(c, NumericColumn)]
    categorical = [c for c in preprocessor.columns if not isinstance(c, NumericColumn)]
    # One [N, 1] input per raw column, in the order of the table, named like the column
    # unless that name is an output's or an internal one.
    input_names = preprocessor.onnx_input_names
    input_types = {"str": TensorProto.STRING, "int": TensorProto.INT64, "bool": TensorProto.BOOL}
    for column in preprocessor.columns:
        element = float_type if isinstance(column, NumericColumn) else input_types[column.kind]
        inputs.append(helper.make_tensor_value_info(input_names[column.name], element, [None, 1]))
    blocks, order = [], []
    if numeric:
        stacked = prefix + "numeric"
        nodes.append(
            helper.make_node("Concat", [input_names[c.name] for c in numeric], [stacked], axis=1)
        )
        block = prefix + "numeric64"
        nodes.append(helper.make_node("Cast", [stacked], [block], to=TensorProto.DOUBLE))
        if any(column.scale is not None for column in numeric):
            center = np.array([c.center if c.scale is not None else 0.0 for c in numeric])
            scale = np.array([c.scale if c.scale is not None else 1.0 for c in numeric])
            nodes.append(
                helper.make_node("Sub", [block, constant(center, "center")], [prefix + "centered"])
            )
            nodes.append(
                helper.make_node(
                    "Div", [prefix + "centered", constant(scale, "scale")], [prefix + "scaled"]
                )
            )
            block = prefix + "scaled"
        blocks.append(block)
        order.extend(position[c.name] for c in numeric)
    for index, column in enumerate(categorical):
        tag = f"{prefix}onehot{index}"
        if column.kind == "str":
            source, attributes = input_names[column.name], {"cats_strings": list(column.categories)}
        elif column.kind == "int":
            source = input_names[column.name]
            attributes = {"cats_int64s": [int(c) for c in column.categories]}
        else:
            # OneHotEncoder has no bool input: compare 0/1 codes instead.
            source = tag + "/int"
            nodes.append(
                helper.make_node("Cast", [input_names[column.name]], [source], to=TensorProto.INT64)
            )
            attributes = {"cats_int64s": [int(c) for c in column.categories]}
        nodes.append(
            helper.make_node(
                "OneHotEncoder",
                [source],
                [tag + "/3d"],
                domain="ai.onnx.ml",
                zeros=1,
                **attributes,
            )
        )
        # OneHotEncoder appends a category axis: [N, 1] -> [N, 1, C]; flatten to [N, C].
        nodes.append(helper.make_node("Flatten", [tag + "/3d"], [tag + "/2d"], axis=1))
        nodes.append(helper.make_node("Cast", [tag + "/2d"], [tag], to=TensorProto.DOUBLE))
        blocks.append(tag)
        order.extend(
            position[f"{column.name}={category}"] if category in column.encoded_categories else -1
            for category in column.categories
        )
    if len(blocks) == 1:
        return blocks[0], np.array(order, dtype=np.intp)
    nodes.append(helper.make_node("Concat", blocks, [prefix + "design"], axis=1))
    return prefix + "design", np.array(order, dtype=np.intp)
