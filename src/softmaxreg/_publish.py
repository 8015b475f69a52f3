"""Fits that publish their result at the end.

The fitted state of an estimator changes all at once when a fit succeeds, and not at all
when it raises. ``fit`` and ``partial_fit`` run on a shallow copy of the estimator (its
``__dict__`` copied: the parameters, and the previous fitted attributes that warm starts
read); on success the copy's ``__dict__`` replaces the estimator's in one assignment. So a
rejected call (a validation error after scikit-learn's ``validate_data`` has already set
``n_features_in_``, a non-finite solver result, a warning turned into an error) leaves every
attribute as it was, and calls on one estimator from several threads, which take its lock
one after the other, each publish a complete state of their own.
"""

from __future__ import annotations

import functools
import threading
import weakref

_LOCKS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_LOCKS_LOCK = threading.Lock()


def _lock_of(estimator) -> threading.RLock:
    with _LOCKS_LOCK:
        lock = _LOCKS.get(estimator)
        if lock is None:
            lock = _LOCKS[estimator] = threading.RLock()
        return lock


def publishes_at_end(method):
    """Decorate a fitting method (``fit``, ``partial_fit``) to run on a staged copy of the
    estimator whose state replaces the estimator's only when the method returns."""

    @functools.wraps(method)
    def fit_and_publish(self, *args, **kwargs):
        with _lock_of(self):
            staged = object.__new__(type(self))
            staged.__dict__.update(self.__dict__)
            method(staged, *args, **kwargs)
            self.__dict__ = staged.__dict__
        return self

    return fit_and_publish
