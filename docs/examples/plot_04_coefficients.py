"""
Coefficients of many features
=============================

The coefficient heatmap of a model on the 64 pixels of the digits: past 25 features the
features run down the y axis so every name stays readable.
"""

from sklearn.datasets import load_digits

from softmaxreg import SoftmaxRegression, plot

X, y = load_digits(return_X_y=True)
model = SoftmaxRegression(C=0.01).fit(X / 16, y)
names = [f"pixel ({row}, {column})" for row in range(8) for column in range(8)]
ax = plot.coefficients(model, feature_names=names, title="Digits: coefficient per pixel")
ax.figure.tight_layout()
