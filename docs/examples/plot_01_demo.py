"""
The reference experiment, with Japanese labels
==============================================

What ``softmaxreg demo`` does: 300 samples of 2 features in 3 classes, ``C=1``, L2. The
training accuracy is 0.917. Titles and axis labels in Japanese render with the font that the
``plot`` extra installs.
"""

from sklearn.datasets import make_classification

from softmaxreg import SoftmaxRegression, plot

X, y = make_classification(
    n_samples=300, n_features=2, n_informative=2, n_redundant=0,
    n_clusters_per_class=1, n_classes=3, random_state=42,
)
model = SoftmaxRegression(C=1.0).fit(X, y)
print(f"Training accuracy: {model.score(X, y):.3f}")
ax = plot.decision_regions(
    model, X, y, title="ソフトマックス回帰の決定領域", xlabel="特徴量 1", ylabel="特徴量 2"
)
ax.figure.tight_layout()
