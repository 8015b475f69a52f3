"""
Decisions under costs, with a reject option
===========================================

When missing class 1 costs five times more than other mistakes, the Bayes rule gives class 1
more room; with a reject cost of 0.3 the classifier abstains where every decision is too
costly. The grey region of the right panel is the reject region.
"""

import matplotlib.pyplot as plt
import numpy as np
from sklearn.datasets import make_classification

from softmaxreg import SoftmaxRegression, plot
from softmaxreg.decision import CostSensitiveClassifier

X, y = make_classification(
    n_samples=300, n_features=2, n_informative=2, n_redundant=0,
    n_clusters_per_class=1, n_classes=3, random_state=42,
)
cost = np.array([[0, 1, 1], [5, 0, 5], [1, 1, 0]])
figure, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
plot.decision_regions(SoftmaxRegression().fit(X, y), X, y, ax=left, title="argmax")
model = CostSensitiveClassifier(SoftmaxRegression(), cost, reject_cost=0.3).fit(X, y)
plot.decision_regions(model, X, y, ax=right, title="least expected cost, reject at 0.3")
figure.tight_layout()
