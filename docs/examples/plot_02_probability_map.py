"""
Probability of each class
=========================

One panel per class: the predicted probability of that class over the feature plane, with
its 0.5 contour and the samples of the class on top.
"""

from sklearn.datasets import make_blobs

from softmaxreg import SoftmaxRegression, plot

X, y = make_blobs(n_samples=300, centers=4, cluster_std=1.8, random_state=1)
model = SoftmaxRegression(C=1.0).fit(X, y)
axes = plot.probability_map(model, X, y, title="P(class | x)", ncols=2)
