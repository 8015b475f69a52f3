"""
Calibration and the risk-coverage curve
=======================================

Held-out digits: the reliability diagram compares confidence with accuracy, and the
risk-coverage curve shows the error rate on the samples that are still decided as the
reject threshold rises.
"""

import matplotlib.pyplot as plt
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from softmaxreg import SoftmaxRegression, plot

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X / 16, y, random_state=0, stratify=y)
model = SoftmaxRegression(C=0.1).fit(X_train, y_train)
proba = model.predict_proba(X_test)
figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.8))
plot.reliability_diagram(y_test, proba, labels=model.classes_, ax=left, title="Reliability")
plot.risk_coverage(proba, y_test, labels=model.classes_, ax=right, title="Risk and coverage")
figure.tight_layout()
