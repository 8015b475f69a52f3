"""softmaxreg: softmax (multinomial logistic) regression.

>>> from softmaxreg import SoftmaxRegression
>>> from sklearn.datasets import load_iris
>>> X, y = load_iris(return_X_y=True)
>>> SoftmaxRegression(C=1.0).fit(X, y).score(X, y) > 0.95
True
"""

from importlib.metadata import PackageNotFoundError, version

from ._estimator import SoftmaxRegression, SoftmaxRegressionCV
from ._io import load
from ._path import RegularizationPath, regularization_path

try:
    __version__ = version("softmaxreg")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0"

__all__ = [
    "RegularizationPath",
    "SoftmaxRegression",
    "SoftmaxRegressionCV",
    "load",
    "regularization_path",
    "__version__",
]
