"""
A sparse regularisation path
============================

The grouped penalty switches a feature on or off for all classes at once. Along a grid of
``C`` (strong regularisation on the left), each line is the norm of one feature's
coefficients over the classes.
"""

import numpy as np
from sklearn.datasets import load_wine
from sklearn.preprocessing import StandardScaler

from softmaxreg import plot, regularization_path

data = load_wine()
X = StandardScaler().fit_transform(data.data)
path = regularization_path(X, data.target, Cs=np.logspace(-2.5, 0, 12), penalty="grouped",
                           l1_ratio=1.0)
ax = plot.regularization_path(path, feature_names=data.feature_names,
                              title="Wine: grouped lasso path")
