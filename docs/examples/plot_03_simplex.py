"""
Wine: held-out probabilities on the simplex
===========================================

Three classes fit on a triangle: a point is ``sum_k p_k * corner_k``, so the corners mean
certainty and the centre means 1/3 each. The background shows the class that would be
predicted; the points are coloured by their true class.
"""

import numpy as np
from sklearn.datasets import load_wine
from sklearn.model_selection import train_test_split
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from softmaxreg import SoftmaxRegression, plot

X, y = load_wine(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, random_state=0, stratify=y)
model = make_pipeline(StandardScaler(), SoftmaxRegression(C=0.1)).fit(X_train, y_train)
names = np.array(["品種 0", "品種 1", "品種 2"])  # cultivar 0, 1, 2
ax = plot.simplex(
    model.predict_proba(X_test), names[y_test], class_names=names, title="ワインの予測確率"
)
