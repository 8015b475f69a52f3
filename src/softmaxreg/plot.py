"""Figures (matplotlib, imported lazily): every function takes ``ax=None`` and returns the Axes.

Class colours are fixed by class *index* (``classes_`` order) through :func:`class_colors`,
so regions, points and legends agree in every figure. Text that needs CJK glyphs (Japanese
titles and labels) is drawn with a fallback to the IPAexGothic font shipped by
``matplotlib-fontja``; plain text keeps matplotlib's default font.
"""

from __future__ import annotations

import numpy as np

# Fraction of white mixed into a class colour for its decision region (opaque, so the colour
# of a region pixel is exactly known: ``region_colors``).
REGION_WHITE_FRACTION = 0.6
_CJK_FONT = "IPAexGothic"
_cjk_font_registered = False


def _pyplot():
    import matplotlib

    if matplotlib.get_backend().lower() not in ("agg", "module://matplotlib_inline.backend_inline"):
        # Figures are written to files; never try to open a window (CI has no screen).
        try:
            matplotlib.use("Agg", force=False)
        except Exception:  # pragma: no cover - backend already fixed by the user
            pass
    import matplotlib.pyplot as plt

    return plt


def needs_cjk_font(text: str | None) -> bool:
    """True when ``text`` holds characters beyond what matplotlib's default font covers
    (CJK scripts, kana, full-width forms)."""
    return bool(text) and any(ord(char) >= 0x2E80 for char in text)


def text_font(text: str | None) -> dict:
    """Keyword arguments that make matplotlib render ``text``: a CJK fallback font only when
    the text needs it (registering ``matplotlib-fontja``'s font on first use)."""
    global _cjk_font_registered
    if not needs_cjk_font(text):
        return {}
    if not _cjk_font_registered:
        from matplotlib import font_manager
        from matplotlib_fontja import get_font_ttf_path

        font_manager.fontManager.addfont(get_font_ttf_path())
        _cjk_font_registered = True
    import matplotlib

    default = list(matplotlib.rcParams["font.sans-serif"][:1]) or ["DejaVu Sans"]
    return {"fontfamily": [*default, _CJK_FONT]}


def class_colors(n_classes: int) -> np.ndarray:
    """RGB colours [K, 3] for class indices ``0..K-1`` (tab10, then tab20, then hsv)."""
    from matplotlib import colormaps

    if n_classes <= 10:
        colors = colormaps["tab10"](np.arange(n_classes))
    elif n_classes <= 20:
        colors = colormaps["tab20"](np.arange(n_classes))
    else:
        colors = colormaps["hsv"](np.linspace(0, 1, n_classes, endpoint=False))
    return np.asarray(colors)[:, :3]


def region_colors(n_classes: int) -> np.ndarray:
    """Opaque RGB colours [K, 3] of the decision regions: class colours mixed with white."""
    return (1 - REGION_WHITE_FRACTION) * class_colors(n_classes) + REGION_WHITE_FRACTION


def _label_axes(ax, title=None, xlabel=None, ylabel=None) -> None:
    if title:
        ax.set_title(title, **text_font(title))
    if xlabel:
        ax.set_xlabel(xlabel, **text_font(xlabel))
    if ylabel:
        ax.set_ylabel(ylabel, **text_font(ylabel))


def _grid(X, resolution: int, margin: float = 0.1):
    low, high = X.min(axis=0), X.max(axis=0)
    pad = margin * np.where(high > low, high - low, 1.0)
    xs = np.linspace(low[0] - pad[0], high[0] + pad[0], resolution)
    ys = np.linspace(low[1] - pad[1], high[1] + pad[1], resolution)
    return xs, ys


def decision_regions(
    estimator,
    X,
    y=None,
    *,
    ax=None,
    resolution: int = 300,
    show_probability: bool = False,
    title: str | None = None,
    xlabel: str | None = None,
    ylabel: str | None = None,
    legend: bool = True,
):
    """Decision regions of a fitted classifier on 2-D data, with the data points on top.

    Region ``k`` is drawn in ``region_colors(K)[k]`` and the points of class ``k`` in
    ``class_colors(K)[k]`` (index in ``estimator.classes_``), so both always agree.

    Parameters
    ----------
    estimator : fitted classifier with ``predict_proba`` and ``classes_``
    X : array-like of shape (n_samples, 2)
    y : array-like of shape (n_samples,), optional
        True labels, used to colour the points; without it the points are not drawn.
    ax : matplotlib Axes, optional
    resolution : int
        Grid points per axis.
    show_probability : bool
        Shade each region by the winning probability (darker = more certain).
    title, xlabel, ylabel : str, optional
        Japanese text renders (a CJK font is used only when needed).
    legend : bool

    Returns
    -------
    matplotlib Axes
    """
    plt = _pyplot()
    X = np.asarray(X, dtype=float)
    if X.ndim != 2 or X.shape[1] != 2:
        raise ValueError(f"decision_regions needs X with exactly 2 columns; got shape {X.shape}.")
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 5.5))
    classes = np.asarray(estimator.classes_)
    n_classes = len(classes)
    xs, ys = _grid(X, resolution)
    grid_x, grid_y = np.meshgrid(xs, ys)
    grid_points = np.column_stack([grid_x.ravel(), grid_y.ravel()])
    proba = estimator.predict_proba(grid_points)
    winner = proba.argmax(axis=1).reshape(grid_x.shape)
    image = region_colors(n_classes)[winner]
    if show_probability:
        certainty = proba.max(axis=1).reshape(grid_x.shape)
        # 1/K (no information) -> pale region colour, 1 -> the full class colour
        depth = ((certainty - 1.0 / n_classes) / (1 - 1.0 / n_classes))[..., None]
        image = image + depth * (class_colors(n_classes)[winner] - image)
    ax.imshow(
        image,
        origin="lower",
        extent=(xs[0], xs[-1], ys[0], ys[-1]),
        aspect="auto",
        interpolation="nearest",
    )
    if y is not None:
        y = np.asarray(y)
        point_colors = class_colors(n_classes)
        for index, label in enumerate(classes):
            members = y == label
            ax.scatter(
                X[members, 0],
                X[members, 1],
                color=point_colors[index],
                edgecolor="black",
                linewidth=0.6,
                s=28,
                label=str(label),
            )
        if legend:
            ax.legend(title="class", loc="best", framealpha=0.9)
    ax.set_xlim(xs[0], xs[-1])
    ax.set_ylim(ys[0], ys[-1])
    _label_axes(ax, title, xlabel, ylabel)
    return ax
