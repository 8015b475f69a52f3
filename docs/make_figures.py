"""Write the figures of the README's "Decisions and figures" section to docs/images/.

Run from the repository root:

    python docs/make_figures.py

Every figure comes from scikit-learn's built-in data sets, so the script needs no download
and gives the same pictures on every run.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits, load_wine, make_classification
from sklearn.decomposition import PCA
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from softmaxreg import SoftmaxRegression, plot
from softmaxreg.decision import CostSensitiveClassifier

IMAGES = Path(__file__).resolve().parent / "images"
DPI = 80


def save(figure, name: str) -> Path:
    path = IMAGES / name
    figure.tight_layout()
    figure.savefig(path, dpi=DPI)
    plot._pyplot().close(figure)
    print(f"wrote {path} ({path.stat().st_size / 1024:.0f} KiB)")
    return path


def cost_sensitive_regions() -> Path:
    """The demo data: argmax against cost-sensitive decisions with a reject option."""
    X, y = make_classification(
        n_samples=300,
        n_features=2,
        n_informative=2,
        n_redundant=0,
        n_clusters_per_class=1,
        n_classes=3,
        random_state=42,
    )
    # missing class 1 costs 5, any other mistake 1, abstaining 0.3
    cost = np.array([[0, 1, 1], [5, 0, 5], [1, 1, 0]])
    plain = SoftmaxRegression().fit(X, y)
    decide = CostSensitiveClassifier(SoftmaxRegression(), cost, reject_cost=0.3).fit(X, y)
    figure, axes = plot._pyplot().subplots(1, 2, figsize=(10, 4.2))
    plot.decision_regions(plain, X, y, ax=axes[0], resolution=200, title="argmax")
    plot.decision_regions(
        decide,
        X,
        y,
        ax=axes[1],
        resolution=200,
        title="cost-sensitive, grey = reject",
        legend=False,
    )
    return save(figure, "cost_sensitive_regions.png")


def calibration_and_rejection() -> Path:
    """Digits, held out: reliability of a model on 8 principal components, and the
    risk-coverage curves of that model and of one on all 64 pixels."""
    X, y = load_digits(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.5, stratify=y, random_state=0
    )
    small = make_pipeline(StandardScaler(), PCA(8, random_state=0), SoftmaxRegression())
    full = make_pipeline(StandardScaler(), SoftmaxRegression(C=0.1))
    proba_small = small.fit(X_train, y_train).predict_proba(X_test)
    proba_full = full.fit(X_train, y_train).predict_proba(X_test)
    figure, axes = plot._pyplot().subplots(1, 2, figsize=(10, 4.4))
    plot.reliability_diagram(
        y_test, proba_small, n_bins=10, ax=axes[0], title="reliability (8 components)"
    )
    plot.risk_coverage(proba_small, y_test, ax=axes[1], label="8 components")
    plot.risk_coverage(
        proba_full, y_test, ax=axes[1], label="64 pixels", title="risk-coverage (held-out digits)"
    )
    return save(figure, "reliability_risk_coverage.png")


def wine_simplex() -> Path:
    """Wine (3 classes): held-out probabilities on the simplex, Japanese labels."""
    X, y = load_wine(return_X_y=True)
    X_train, X_test, y_train, y_test = train_test_split(
        X, y, test_size=0.4, stratify=y, random_state=0
    )
    model = make_pipeline(StandardScaler(), SoftmaxRegression(C=0.05)).fit(X_train, y_train)
    names = np.array(["品種 A", "品種 B", "品種 C"])
    ax = plot.simplex(
        model.predict_proba(X_test),
        names[y_test],
        class_names=names,
        title="ワインの予測確率（テストデータ）",
    )
    ax.figure.set_size_inches(5.2, 4.6)
    return save(ax.figure, "wine_simplex.png")


def main() -> None:
    IMAGES.mkdir(parents=True, exist_ok=True)
    for make in (cost_sensitive_regions, calibration_and_rejection, wine_simplex):
        path = make()
        if path.stat().st_size > 150 * 1024:
            raise SystemExit(f"{path} is over 150 KiB; lower DPI or resolution")


if __name__ == "__main__":
    main()
