"""BLAS threads during a fit.

A pip installation loads two OpenBLAS libraries: NumPy's, which runs the large products of
the passes and Hessian-vector products, and SciPy's, which runs our in-place vector updates
(``axpy``), Cholesky factorisations and triangular solves, all on parameter-sized or smaller
arrays. With both on several threads, their pools compete for the cores: each keeps its idle
threads spinning for a while after a call, just as the other one starts. Small products gain
nothing from threads either, since waking them costs about what the product does.
Measured on a 2-core machine (wall time of a default fit, medians; "NumPy/SciPy threads"):

| problem | n K p | 1/1 | 2/2 | 2/1 | 1/2 |
|---|---|---|---|---|---|
| digits 1797 x 64, K=10 | 1.2e6 | 43 ms | 135 ms | 92 ms | 46 ms |
| letter 20k x 16, K=26 | 8.8e6 | 0.34 s | 0.40 s | 0.36 s | 0.34 s |
| covertype 50k x 54, K=7 | 1.9e7 | 1.42 s | 1.18 s | 0.94 s | 1.24 s |
| wide 20k x 500, K=20 | 2.0e8 | 1.42 s | 2.12 s | 1.12 s | 1.33 s |
| dense 100k x 100, K=10 | 1.0e8 | 1.09 s | 1.02 s | 0.94 s | 1.26 s |
| 20 Newsgroups (sparse; nnz K) | 3.4e7 | 2.36 s | 3.56 s | 2.34 s | 2.00 s |

So during a fit every BLAS other than NumPy's runs on one thread, and so does NumPy's when a
product is small (``SMALL_PRODUCT`` multiply-adds or fewer). The limits only ever lower the
user's settings (``threadpoolctl.threadpool_limits`` still rules), and are restored after the
fit.

The thread counts are process-wide, so concurrent fits (from several Python threads) share one
limit: the first fit to limit a library saves its setting, later ones only count themselves
in, and the last one to finish restores the setting (under a lock). Saving and restoring per
fit would let a fit save another fit's temporary 1 and restore it last.
"""

from __future__ import annotations

import contextlib
import threading

import numpy as np
import scipy.sparse as sp

# Multiply-adds of one product X V (n K p for dense X, nnz K for sparse X) up to which
# NumPy's BLAS, too, runs on one thread during a fit (letter, 8.8e6: one thread 0.34 s
# against two 0.36 s; covertype, 1.9e7: 1.42 s against 0.94 s).
SMALL_PRODUCT = 1e7

_CONTROLLERS: dict = {}  # the BLAS controllers, found once (the libraries load with NumPy/SciPy)
_LOCK = threading.Lock()
# id(controller) -> [fits holding the limit, the thread count to restore]
_HELD: dict[int, list[int]] = {}


def blas_controllers() -> tuple[list, list]:
    """``(numpy_blas, other_blas)``: threadpoolctl's controllers of NumPy's BLAS and of every
    other BLAS loaded. When none of them lies in NumPy's directory (one BLAS shared by NumPy
    and SciPy, as in conda), all count as NumPy's."""
    with _LOCK:
        if not _CONTROLLERS:
            from threadpoolctl import ThreadpoolController

            controllers = ThreadpoolController().select(user_api="blas").lib_controllers
            own = [c for c in controllers if "numpy" in str(c.filepath)]
            _CONTROLLERS["other"] = [c for c in controllers if own and c not in own]
            _CONTROLLERS["numpy"] = own or controllers
        return _CONTROLLERS["numpy"], _CONTROLLERS["other"]


def product_work(X, n_classes: int) -> float:
    """Multiply-adds of one product ``X V`` with ``V`` [n_classes, d]."""
    if sp.issparse(X):
        return float(X.nnz) * n_classes
    return float(np.prod(X.shape, dtype=np.float64)) * n_classes


@contextlib.contextmanager
def fit_threads(X, n_classes: int):
    """Context for one fit (or one path of fits) on in-memory X: see the module docstring."""
    numpy_blas, other_blas = blas_controllers()
    limited = other_blas + (numpy_blas if product_work(X, n_classes) <= SMALL_PRODUCT else [])
    _hold(limited)
    try:
        yield
    finally:
        _release(limited)


def _hold(controllers: list) -> None:
    with _LOCK:
        for controller in controllers:
            held = _HELD.get(id(controller))
            if held is None:
                _HELD[id(controller)] = [1, controller.num_threads]
                controller.set_num_threads(1)
            else:
                held[0] += 1


def _release(controllers: list) -> None:
    with _LOCK:
        for controller in controllers:
            held = _HELD[id(controller)]
            held[0] -= 1
            if held[0] == 0:
                del _HELD[id(controller)]
                controller.set_num_threads(held[1])
