"""The model file under hostile input: bounded reads, the same limits for save and load, and
saves that keep permissions and leave no debris.

Every hostile file is built here with ``json`` and ``hashlib`` (signed by the documented
rule, independently of ``softmaxreg._io``); memory is measured with ``tracemalloc``, which
sees every Python and NumPy allocation of the load.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import stat
import subprocess
import sys
import textwrap
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_iris

import softmaxreg
from softmaxreg import SoftmaxRegression
from softmaxreg import _io as io
from softmaxreg._io import ModelFileError
from softmaxreg.tabular import CategoricalColumn, NumericColumn, Preprocessor


def sign(document: dict, path: Path, *, separators=(", ", ": ")) -> Path:
    """Write ``document`` with the checksum of the documented rule (sha256 of the canonical
    JSON of ``document["model"]``)."""
    canonical = json.dumps(
        document["model"], sort_keys=True, separators=(",", ":"), ensure_ascii=True
    )
    signed = dict(document, checksum="sha256:" + hashlib.sha256(canonical.encode()).hexdigest())
    path.write_text(json.dumps(signed, separators=separators), encoding="utf-8")
    return path


def peak_memory_of_load(path: Path) -> tuple[int, BaseException | None]:
    """Peak traced bytes of ``softmaxreg.load(path)`` and the exception it raised."""
    tracemalloc.start()
    try:
        softmaxreg.load(path)
        error = None
    except Exception as exc:  # noqa: BLE001 - the caller asserts the type
        error = exc
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak, error


@pytest.fixture(scope="module")
def document(tmp_path_factory) -> dict:
    X, y = load_iris(return_X_y=True, as_frame=True)
    path = tmp_path_factory.mktemp("doc") / "m.json"
    SoftmaxRegression(C=0.7).fit(X, y).save(path)
    return json.loads(path.read_text())


def edited(document: dict, edit) -> dict:
    copy = json.loads(json.dumps(document))
    edit(copy["model"])
    return copy


# ------------------------------------------------------------------ what is read at all
def test_fifo_is_refused_without_waiting_for_a_writer(tmp_path):
    fifo = tmp_path / "model.json"
    os.mkfifo(fifo)
    with pytest.raises(ModelFileError, match="not a regular file"):
        softmaxreg.load(fifo)


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="no /dev/zero")
def test_device_is_refused_before_reading():
    peak, error = peak_memory_of_load(Path("/dev/zero"))
    assert isinstance(error, ModelFileError) and "not a regular file" in str(error)
    assert peak < 1 << 20  # nothing of the endless stream was read


@pytest.mark.skipif(not os.path.exists("/proc/self/maps"), reason="no /proc")
def test_file_reporting_size_zero_is_read_up_to_the_limit(monkeypatch):
    """/proc files are regular files of reported size 0 that hold text: read (bounded),
    then refused as what they are."""
    with pytest.raises(ModelFileError, match="not valid JSON"):
        softmaxreg.load("/proc/self/status")
    monkeypatch.setattr(io, "MAX_FILE_BYTES", 64)
    with pytest.raises(ModelFileError, match="larger than"):
        softmaxreg.load("/proc/self/maps")


def test_symlink_to_a_model_loads_and_a_directory_is_refused(document, tmp_path):
    target = sign(document, tmp_path / "real.json")
    link = tmp_path / "link.json"
    link.symlink_to(target)
    assert softmaxreg.load(link).coef_.shape == (3, 4)
    with pytest.raises(ModelFileError, match="directory"):
        softmaxreg.load(tmp_path)


# ------------------------------------------------------------------ bounded parsing
N_BYTES = 3 << 20  # hostile files of 3 MiB: large next to the slack of small files


@pytest.mark.parametrize(
    ("name", "flood", "per_item"),
    [
        ("floats", 0.5, len("0.5,")),
        ("ints", 7, len("7,")),
        ("names", "ab", len('"ab",')),
        ("empty lists", [], len("[],")),
        ("empty objects", {}, len("{},")),
        ("small objects", {"a": 1}, len('{"a":1},')),
    ],
)
def test_hostile_floods_are_refused_in_bounded_memory(document, tmp_path, name, flood, per_item):
    """A valid header around one field of 3 MiB (the shape of the 300 MB file that took
    8.5 GB): refused with ModelFileError, peak memory a small multiple of the file size."""
    count = N_BYTES // per_item
    hostile = edited(document, lambda model: model["coef"].__setitem__(0, [flood] * count))
    path = sign(hostile, tmp_path / "hostile.json", separators=(",", ":"))
    size = path.stat().st_size
    peak, error = peak_memory_of_load(path)
    assert isinstance(error, ModelFileError), error
    assert peak <= io.MAX_PARSE_MEMORY_FACTOR * size, f"{name}: {peak / size:.1f} x the size"
    if isinstance(flood, list | dict):  # refused from the byte counts, before parsing
        assert "structure" in str(error)
        assert peak <= 2 * size


def test_parse_estimate_bounds_the_parse_it_allows(document):
    """The bound checked before parsing is above what ``json.loads`` really allocates, for
    every kind of item (measured here with tracemalloc)."""
    samples = {
        "floats": [0.123456789] * 50_000,
        "ints": list(range(100_000, 150_000)),
        "names": [f"n{i}" for i in range(50_000)],
        "non-ascii": [f"é{i}😀" for i in range(20_000)],
        "lists": [[1.5]] * 50_000,
        "objects": [{"k": 1.5}] * 20_000,
        "model": document,
    }
    for name, value in samples.items():
        text = json.dumps(value)
        tracemalloc.start()
        parsed = json.loads(text, object_pairs_hook=dict)
        allocated = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        del parsed
        assert io.parse_memory_estimate(text.encode()) >= allocated, name


def test_quadratic_name_collision_check_is_linear(document, tmp_path):
    """A numeric column named like a one-hot feature beside a categorical column with
    100,000 categories: refused with the collision named (a quadratic check took 71 s)."""
    n = 100_000
    columns = [
        NumericColumn("a=c0"),
        CategoricalColumn("a", "str", tuple(f"c{i}" for i in range(n))),
    ]
    with pytest.raises(ValueError, match="collide"):
        Preprocessor(columns)
    features = ["a=c0"] + [f"a=c{i}" for i in range(n)]

    def hostile(model):
        model.update(
            n_features=len(features),
            feature_names=features,
            coef=[[0.0] * len(features) for _ in range(3)],
            preprocessing={
                "target": None,
                "params": {
                    "categorical": ["a"],
                    "standardize": False,
                    "drop": [],
                    "max_categories": n,
                    "drop_first": False,
                },
                "columns": [
                    {"name": "a=c0", "type": "numeric", "center": None, "scale": None},
                    {
                        "name": "a",
                        "type": "categorical",
                        "dtype": "str",
                        "categories": [f"c{i}" for i in range(n)],
                        "drop_first": False,
                    },
                ],
            },
        )

    path = sign(edited(document, hostile), tmp_path / "collide.json")
    with pytest.raises(ModelFileError, match="collide"):
        softmaxreg.load(path)


# ------------------------------------------------------------------ every field checked
@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda m: m.update(solver="rm -rf /"), "model.solver: unknown solver"),
        (lambda m: m["params"].update(solver="rm -rf /"), "model.params: solver must be"),
        (lambda m: m.update(feature_names=["a", "b", "a", "c"]), "duplicate feature name 'a'"),
        (lambda m: m["params"].update(penalty="elasticnet", l1_ratio=None), "needs l1_ratio"),
        (lambda m: m["params"].update(max_iter=0), "max_iter"),
    ],
    ids=["fitted solver", "solver parameter", "duplicate names", "elasticnet", "max_iter"],
)
def test_invalid_fields_are_refused(document, tmp_path, edit, match):
    path = sign(edited(document, edit), tmp_path / "bad.json")
    with pytest.raises(ModelFileError, match=match):
        softmaxreg.load(path)


def test_every_fitted_solver_name_loads(document, tmp_path):
    for solver in ("lbfgs", "newton-cholesky", "newton-cg", "prox-newton", "adam"):
        path = sign(edited(document, lambda m, s=solver: m.update(solver=s)), tmp_path / "s.json")
        assert softmaxreg.load(path).solver_ == solver


# ------------------------------------------------------------------ save and load agree
@pytest.fixture()
def model():
    X, y = load_iris(return_X_y=True)
    return SoftmaxRegression().fit(X, y)


def test_save_refuses_what_load_would_refuse_and_writes_nothing(model, tmp_path, monkeypatch):
    path = tmp_path / "m.json"
    model.save(path)
    size = path.stat().st_size
    before = path.read_bytes()
    monkeypatch.setattr(io, "MAX_FILE_BYTES", size - 1)
    with pytest.raises(ValueError, match="load would refuse the file.*larger than"):
        model.save(path)
    with pytest.raises(ModelFileError, match="larger than"):
        softmaxreg.load(path)
    monkeypatch.setattr(io, "MAX_FILE_BYTES", size)
    model.save(path)  # exactly at the limit: written, and read back
    assert path.read_bytes() == before
    np.testing.assert_array_equal(softmaxreg.load(path).coef_, model.coef_)

    monkeypatch.setattr(io, "MAX_PARAMETERS", model.coef_.size - 1)
    with pytest.raises(ValueError, match="load would refuse the file.*coefficients"):
        model.save(tmp_path / "other.json")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.json"]


def test_save_refuses_names_load_would_refuse(model, tmp_path):
    model.feature_names_in_ = np.array(["a", "b", "a", "c"], dtype=object)
    with pytest.raises(ValueError, match="duplicate feature name 'a'"):
        model.save(tmp_path / "m.json")
    model.feature_names_in_ = np.array(["a", "b", "c", "x" * (io.MAX_STRING_LENGTH + 1)])
    with pytest.raises(ValueError, match="longer than"):
        model.save(tmp_path / "m.json")
    assert list(tmp_path.iterdir()) == []


def test_resave_keeps_permissions_and_a_new_file_follows_the_umask(model, tmp_path):
    path = tmp_path / "m.json"
    model.save(path)
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask
    path.chmod(0o600)
    model.save(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    path.chmod(0o640)
    model.save(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o640


@pytest.mark.parametrize("failure", [KeyboardInterrupt, MemoryError, OSError])
def test_failed_save_leaves_the_old_file_and_no_temporary(model, tmp_path, monkeypatch, failure):
    path = tmp_path / "m.json"
    model.save(path)
    before = path.read_bytes()

    def fail(*args):
        raise failure(28, "No space left on device") if failure is OSError else failure()

    monkeypatch.setattr(io.os, "replace", fail)
    with pytest.raises(failure):
        SoftmaxRegression(C=0.1).fit(*load_iris(return_X_y=True)).save(path)
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]
    assert path.read_bytes() == before


def test_longest_file_name_saves_and_loads(model, tmp_path):
    name_max = os.pathconf(tmp_path, "PC_NAME_MAX")
    for name in ("m" * (name_max - 5) + ".json", "é" * ((name_max - 5) // 2) + ".json"):
        path = tmp_path / name
        model.save(path)
        np.testing.assert_array_equal(softmaxreg.load(path).coef_, model.coef_)
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_process_killed_mid_write_leaves_the_old_file_and_no_debris(model, tmp_path):
    """A save whose process is SIGKILLed while the new file is being synced: the old model
    is intact and no temporary file is left (the file has no name until it is complete, on
    systems with O_TMPFILE)."""
    if not hasattr(os, "O_TMPFILE"):
        pytest.skip("no O_TMPFILE: the named temporary file of a killed save stays behind")
    path = tmp_path / "m.json"
    model.save(path)
    before = path.read_bytes()
    code = textwrap.dedent(
        f"""
        import os, sys, time
        import numpy as np
        from softmaxreg import load, _io
        model = load({str(path)!r})
        model.coef_ = model.coef_ * 2.0

        def stall(descriptor):
            print("syncing", flush=True)
            time.sleep(60)

        _io.os.fsync = stall
        model.save({str(path)!r})
        """
    )
    source_root = str(Path(softmaxreg.__file__).parent.parent)
    env = dict(os.environ, PYTHONPATH=source_root)
    process = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, env=env, text=True
    )
    try:
        assert process.stdout.readline().strip() == "syncing"
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]
    assert path.read_bytes() == before
