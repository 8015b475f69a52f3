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
    from ._optional import require

    matplotlib = require("matplotlib", "drawing figures")

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


def _cjk_font_file() -> str:
    """Path of matplotlib-fontja's IPAexGothic file.

    Importing ``matplotlib_fontja`` runs its ``japanize()``, which sets
    ``rcParams["font.family"]`` for every later figure of the user; so the file is found from
    the package's location without importing it, and if that fails the import's change to
    the rcParams is undone.
    """
    import importlib.util
    import os

    spec = importlib.util.find_spec("matplotlib_fontja")
    if spec is None:
        from ._optional import MissingExtraError, install_line

        raise MissingExtraError(
            "Japanese/CJK text needs matplotlib-fontja, which is not installed: "
            + install_line("plot")
        )
    for location in spec.submodule_search_locations or []:
        path = os.path.join(location, "fonts", "ipaexg.ttf")
        if os.path.exists(path):
            return path
    import matplotlib

    family = matplotlib.rcParams["font.family"]
    try:
        from matplotlib_fontja import get_font_ttf_path
    finally:
        matplotlib.rcParams["font.family"] = family
    return get_font_ttf_path()


def text_font(text: str | None) -> dict:
    """Keyword arguments that make matplotlib render ``text``: a CJK fallback font only when
    the text needs it (registering ``matplotlib-fontja``'s font on first use)."""
    global _cjk_font_registered
    if not needs_cjk_font(text):
        return {}
    import matplotlib

    if not _cjk_font_registered:
        from matplotlib import font_manager

        font_manager.fontManager.addfont(_cjk_font_file())
        _cjk_font_registered = True

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


def _pixels_across(ax) -> int:
    """Pixels across the wider side of ``ax`` when its figure is saved (at least 300)."""
    import matplotlib

    figure = ax.figure
    dpi = matplotlib.rcParams["savefig.dpi"]
    dpi = figure.dpi if dpi == "figure" else float(dpi)
    box = ax.get_position()
    width, height = figure.get_size_inches()
    return int(max(300, np.ceil(max(box.width * width, box.height * height) * dpi)))


def _grid(X, resolution: int, margin: float = 0.1):
    low, high = X.min(axis=0), X.max(axis=0)
    pad = margin * np.where(high > low, high - low, 1.0)
    xs = np.linspace(low[0] - pad[0], high[0] + pad[0], resolution)
    ys = np.linspace(low[1] - pad[1], high[1] + pad[1], resolution)
    return xs, ys


# ---------------------------------------------------------------------- shared helpers
#: Above this many features the coefficient heatmap puts the features down the y axis.
MAX_FEATURES_ACROSS = 25
#: Line styles that, with the 10 colours of tab10, tell 40 path lines apart.
PATH_LINESTYLES = ("-", "--", ":", "-.")
# Colour of a region where the decision is to abstain (a label outside ``classes_``).
REJECT_COLOR = np.array([0.85, 0.85, 0.85])
KINDS = (
    "decision_regions",
    "probability_map",
    "simplex",
    "coefficients",
    "reliability",
    "confusion_matrix",
    "risk_coverage",
)
"""Figure kinds of :func:`plot_model` (and ``softmaxreg plot --kind``)."""


def _new_axes(ax, figsize=(6.4, 4.8)):
    if ax is not None:
        return ax
    _, ax = _pyplot().subplots(figsize=figsize)
    return ax


def _font_properties(*texts):
    """``FontProperties`` for a legend or tick labels holding any of ``texts`` (None when the
    default font covers them all)."""
    family = {}
    for text in texts:
        family.update(text_font(str(text)))
    if not family:
        return None
    from matplotlib.font_manager import FontProperties

    return FontProperties(family=family["fontfamily"])


def _set_ticks(ax, axis: str, positions, labels, rotation: float = 0) -> None:
    labels = [str(label) for label in labels]
    fonts = {}
    for label in labels:
        fonts.update(text_font(label))
    setter = ax.set_xticks if axis == "x" else ax.set_yticks
    extra = {"rotation": rotation, "ha": "right" if rotation else "center"} if axis == "x" else {}
    setter(positions, labels, **fonts, **extra)


def _tick_rotation(labels) -> float:
    """45 degrees when horizontal tick labels would collide (CJK characters count double)."""
    widths = [sum(2 if needs_cjk_font(char) else 1 for char in str(label)) for label in labels]
    return 45.0 if len(widths) > 8 or max(widths, default=0) > 6 else 0.0


def _legend(ax, labels, title=None, **kwargs):
    prop = _font_properties(*labels, title or "")
    legend = ax.legend(title=title, prop=prop, **kwargs)
    if title and prop is not None:
        legend.get_title().set_fontproperties(prop)
    return legend


def _class_names(estimator, n_classes: int | None = None) -> list[str]:
    classes = getattr(estimator, "classes_", None)
    if classes is None:
        return [f"class {k}" for k in range(n_classes or 0)]
    return [str(label) for label in np.asarray(classes).tolist()]


def _as_2d_features(X, what: str):
    """``X`` as a float array of 2 columns, and its column names (DataFrame input) or None."""
    columns = getattr(X, "columns", None)
    names = [str(name) for name in columns] if columns is not None else None
    X = np.asarray(X, dtype=float)
    if X.ndim != 2 or X.shape[1] != 2:
        raise ValueError(f"{what} needs X with exactly 2 columns; got shape {X.shape}.")
    if X.shape[0] == 0:
        raise ValueError(f"{what} needs at least one sample in X.")
    if not np.all(np.isfinite(X)):
        raise ValueError(f"{what}: X contains NaN or infinite values.")
    return X, names


def _grid_frame(estimator, points):
    """Grid points in the form the estimator was fitted on: a DataFrame with the same column
    names when it saw one (otherwise scikit-learn warns about missing feature names)."""
    names = getattr(estimator, "feature_names_in_", None)
    if names is None:
        return points
    import pandas as pd

    return pd.DataFrame(points, columns=list(names))


def _class_index(classes, labels) -> np.ndarray:
    """Index of each label in ``classes``; -1 for labels outside (an abstention)."""
    lookup = {label: index for index, label in enumerate(np.asarray(classes).tolist())}
    return np.array([lookup.get(label, -1) for label in np.asarray(labels).tolist()], dtype=int)


# ---------------------------------------------------------------------- decision regions
def decision_regions(
    estimator,
    X,
    y=None,
    *,
    ax=None,
    resolution: int | None = None,
    show_probability: bool = False,
    title: str | None = None,
    xlabel: str | None = None,
    ylabel: str | None = None,
    legend: bool = True,
):
    """Decision regions of a fitted classifier on 2-D data, with the data points on top.

    The regions are what ``estimator.predict`` returns on a grid, so a cost-sensitive or
    rejecting classifier shows its own decisions. Region ``k`` is drawn in
    ``region_colors(K)[k]`` and the points of class ``k`` in ``class_colors(K)[k]`` (index in
    ``estimator.classes_``), so both always agree; a prediction outside ``classes_`` (an
    abstention) is drawn in ``REJECT_COLOR``.

    Parameters
    ----------
    estimator : fitted classifier with ``predict``, ``predict_proba`` and ``classes_``
    X : array-like or DataFrame of shape (n_samples, 2)
        Sets the extent of the plot (10 % margin); DataFrame column names label the axes.
    y : array-like of shape (n_samples,), optional
        True labels, used to colour the points; without it the points are not drawn.
    ax : matplotlib Axes, optional
        Drawn on a new figure when None.
    resolution : int, optional
        Grid points per axis; default: at least one per pixel of the Axes when saved, so
        class boundaries show no stair steps.
    show_probability : bool, default=False
        Shade each region by the probability of the predicted class (1/K: pale region
        colour, 1: the full class colour).
    title, xlabel, ylabel : str, optional
        Japanese text renders (a CJK font is used only when needed).
    legend : bool, default=True
        Class colours, and the reject region's colour where the classifier abstains.

    Returns
    -------
    matplotlib Axes
    """
    plt = _pyplot()
    X, names = _as_2d_features(X, "decision_regions")
    if resolution is not None and (
        isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < 2
    ):
        raise ValueError(f"resolution must be an integer >= 2; got {resolution!r}.")
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 5.5))
    if resolution is None:
        resolution = _pixels_across(ax)
    classes = np.asarray(estimator.classes_)
    n_classes = len(classes)
    xs, ys = _grid(X, resolution)
    grid_x, grid_y = np.meshgrid(xs, ys)
    grid_points = _grid_frame(estimator, np.column_stack([grid_x.ravel(), grid_y.ravel()]))
    winner = _class_index(classes, estimator.predict(grid_points)).reshape(grid_x.shape)
    rejected = winner < 0
    image = region_colors(n_classes)[np.maximum(winner, 0)]
    image[rejected] = REJECT_COLOR
    if show_probability:
        proba = estimator.predict_proba(grid_points)
        certainty = np.take_along_axis(proba, np.maximum(winner, 0).reshape(-1, 1), axis=1)
        certainty = certainty.reshape(grid_x.shape)
        # 1/K (no information) -> pale region colour, 1 -> the full class colour
        depth = np.clip((certainty - 1.0 / n_classes) / (1 - 1.0 / n_classes), 0, 1)[..., None]
        shaded = image + depth * (class_colors(n_classes)[np.maximum(winner, 0)] - image)
        image = np.where(rejected[..., None], image, shaded)
    ax.imshow(
        image,
        origin="lower",
        extent=(xs[0], xs[-1], ys[0], ys[-1]),
        aspect="auto",
        interpolation="nearest",
    )
    from matplotlib.patches import Patch

    handles = []
    if y is not None:
        y = np.asarray(y)
        if y.shape != (X.shape[0],):
            raise ValueError(f"y must have shape ({X.shape[0]},) like X; got {y.shape}.")
        point_colors = class_colors(n_classes)
        for index, label in enumerate(classes):
            members = y == label
            handles.append(
                ax.scatter(
                    X[members, 0],
                    X[members, 1],
                    color=point_colors[index],
                    edgecolor="black",
                    linewidth=0.6,
                    s=28,
                    label=str(label),
                )
            )
    else:
        handles = [
            Patch(facecolor=color, edgecolor="0.4", label=str(label))
            for color, label in zip(region_colors(n_classes), classes, strict=True)
        ]
    if rejected.any():
        handles.append(Patch(facecolor=REJECT_COLOR, edgecolor="0.4", label="rejected"))
    if legend:
        labels = [handle.get_label() for handle in handles]
        # beside the Axes, so it never hides a region (or the reject region it names)
        _legend(
            ax, labels, title="class", handles=handles, loc="upper left",
            bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0,
        )  # fmt: skip
    ax.set_xlim(xs[0], xs[-1])
    ax.set_ylim(ys[0], ys[-1])
    if names is not None:
        xlabel = names[0] if xlabel is None else xlabel
        ylabel = names[1] if ylabel is None else ylabel
    _label_axes(ax, title, xlabel, ylabel)
    return ax


def probability_map(
    estimator,
    X,
    y=None,
    *,
    ax=None,
    class_index: int | None = None,
    resolution: int = 150,
    ncols: int | None = None,
    contour: bool = True,
    colorbar: bool = True,
    title: str | None = None,
    xlabel: str | None = None,
    ylabel: str | None = None,
):
    """Predicted probability of each class over 2-D feature space, one panel per class.

    Panel ``k`` shades ``P(y = k | x)`` from white (0) to ``class_colors(K)[k]`` (1), with
    the 0.5 contour in black and the points of class ``k`` on top (others in grey).

    Parameters
    ----------
    estimator : fitted classifier with ``predict_proba`` and ``classes_``
    X : array-like or DataFrame of shape (n_samples, 2)
    y : array-like of shape (n_samples,), optional
    ax : Axes or sequence of K Axes, optional
        With ``class_index``: the one Axes to draw on. Without: K Axes, or None for a new
        figure with a grid of ``ncols`` columns.
    class_index : int, optional
        Draw only this class (index into ``classes_``).
    resolution : int, default=150
    ncols : int, optional
        Columns of the panel grid of a new figure (default: up to 3).
    contour, colorbar : bool, default=True
    title : str, optional
        Figure title (``suptitle``) for several panels, panel title for one.
    xlabel, ylabel : str, optional

    Returns
    -------
    ndarray of K Axes, or one Axes when ``class_index`` is given
    """
    plt = _pyplot()
    from matplotlib.colors import LinearSegmentedColormap

    X, names = _as_2d_features(X, "probability_map")
    classes = np.asarray(estimator.classes_)
    n_classes = len(classes)
    if names is not None:
        xlabel = names[0] if xlabel is None else xlabel
        ylabel = names[1] if ylabel is None else ylabel
    if class_index is not None:
        if not isinstance(class_index, int | np.integer) or not 0 <= class_index < n_classes:
            raise ValueError(
                f"class_index must be an integer in 0..{n_classes - 1}; got {class_index!r}."
            )
        indices = [int(class_index)]
        axes = [_new_axes(ax, (5, 4))]
    else:
        indices = list(range(n_classes))
        if ax is None:
            ncols = min(n_classes, 3) if ncols is None else int(ncols)
            nrows = -(-n_classes // ncols)
            figure, grid = plt.subplots(
                nrows, ncols, figsize=(4.2 * ncols, 3.6 * nrows), squeeze=False
            )
            axes = list(grid.ravel())
            for spare in axes[n_classes:]:
                spare.set_visible(False)
            axes = axes[:n_classes]
            if title:
                figure.suptitle(title, **text_font(title))
        else:
            axes = list(np.ravel(np.asarray(ax, dtype=object)))
            if len(axes) < n_classes:
                raise ValueError(
                    f"probability_map needs {n_classes} Axes (one per class); got {len(axes)}."
                )
            axes = axes[:n_classes]
    xs, ys = _grid(X, resolution)
    grid_x, grid_y = np.meshgrid(xs, ys)
    grid_points = _grid_frame(estimator, np.column_stack([grid_x.ravel(), grid_y.ravel()]))
    proba = np.asarray(estimator.predict_proba(grid_points))
    colors = class_colors(n_classes)
    class_names = _class_names(estimator)
    y = None if y is None else np.asarray(y)
    for index, axis in zip(indices, axes, strict=True):
        surface = proba[:, index].reshape(grid_x.shape)
        cmap = LinearSegmentedColormap.from_list(f"class_{index}", [(1, 1, 1), colors[index]])
        image = axis.imshow(
            surface,
            origin="lower",
            extent=(xs[0], xs[-1], ys[0], ys[-1]),
            aspect="auto",
            vmin=0,
            vmax=1,
            cmap=cmap,
            interpolation="nearest",
        )
        if contour and surface.min() < 0.5 < surface.max():
            axis.contour(xs, ys, surface, levels=[0.5], colors="black", linewidths=1.0)
        if y is not None:
            members = y == classes[index]
            axis.scatter(X[~members, 0], X[~members, 1], color="0.55", s=8, linewidth=0)
            axis.scatter(
                X[members, 0],
                X[members, 1],
                color=colors[index],
                edgecolor="black",
                linewidth=0.5,
                s=18,
            )
        if colorbar:
            axis.figure.colorbar(image, ax=axis, fraction=0.046, pad=0.03)
        panel_title = f"P({class_names[index]})"
        if class_index is not None and title:
            panel_title = title
        _label_axes(axis, panel_title, xlabel, ylabel)
        axis.set_xlim(xs[0], xs[-1])
        axis.set_ylim(ys[0], ys[-1])
    if class_index is not None:
        return axes[0]
    if ax is None:
        axes[0].figure.tight_layout()  # our own figure: keep the suptitle off the panels
    return np.array(axes, dtype=object)


# ---------------------------------------------------------------------- probabilities
# Vertices of the probability simplex for K = 3: class 0 bottom left, 1 bottom right, 2 top.
_SIMPLEX_VERTICES = np.array([[0.0, 0.0], [1.0, 0.0], [0.5, np.sqrt(3) / 2]])


def simplex(
    proba,
    y=None,
    *,
    class_names=None,
    ax=None,
    show_regions: bool = True,
    grid: bool = True,
    s: float = 14,
    alpha: float = 0.8,
    title: str | None = None,
    legend: bool = True,
):
    """Ternary plot of predicted probabilities for three classes.

    Each sample is the point ``sum_k p_k * vertex_k`` of a triangle whose corners are the
    classes; a corner means certainty. With ``show_regions`` the triangle is divided into the
    argmax regions (drawn in ``region_colors(3)``), so a point's background is its predicted
    class; the points are coloured by true class when ``y`` is given, otherwise by the
    predicted class (``class_colors(3)``).

    Parameters
    ----------
    proba : array-like of shape (n_samples, 3)
    y : array-like of shape (n_samples,), optional
        True labels (matched to the columns with ``class_names``, see
        :func:`softmaxreg.metrics.encode_labels`).
    class_names : array-like of 3 labels, optional
        Label of each column (the model's ``classes_``); written at the corners.
    ax : Axes, optional
    show_regions, grid : bool, default=True
        Argmax regions; lines of equal probability at 0.2, 0.4, 0.6, 0.8.
    s, alpha : float
        Point size and opacity.
    title : str, optional
    legend : bool, default=True

    Returns
    -------
    matplotlib Axes
    """
    from .metrics import check_proba, encode_labels

    proba = check_proba(proba)
    if proba.shape[1] != 3:
        raise ValueError(f"simplex needs exactly 3 classes; proba has {proba.shape[1]} columns.")
    names = (
        [f"class {k}" for k in range(3)]
        if class_names is None
        else [str(name) for name in np.asarray(class_names).tolist()]
    )
    if len(names) != 3:
        raise ValueError(f"class_names must have 3 entries; got {len(names)}.")
    ax = _new_axes(ax, (6, 5.4))
    vertices = _SIMPLEX_VERTICES
    centroid = vertices.mean(axis=0)
    if show_regions:
        regions = region_colors(3)
        for k in range(3):
            j, m = [other for other in range(3) if other != k]
            # the argmax region of class k: its corner, the two edge midpoints, the centre
            corners = [
                vertices[k],
                (vertices[k] + vertices[j]) / 2,
                centroid,
                (vertices[k] + vertices[m]) / 2,
            ]
            ax.fill(*np.array(corners).T, color=regions[k], linewidth=0, zorder=0)
    if grid:
        for level in (0.2, 0.4, 0.6, 0.8):
            for k in range(3):
                j, m = [other for other in range(3) if other != k]
                start = level * vertices[k] + (1 - level) * vertices[j]
                end = level * vertices[k] + (1 - level) * vertices[m]
                ax.plot(*np.array([start, end]).T, color="0.6", linewidth=0.5, zorder=1)
    ax.plot(*vertices[[0, 1, 2, 0]].T, color="black", linewidth=1.2, zorder=2)
    points = proba @ vertices
    colors = class_colors(3)
    if y is not None:
        index = encode_labels(y, 3, None if class_names is None else class_names)
        if index.shape[0] != proba.shape[0]:
            raise ValueError(f"y has {index.shape[0]} samples but proba has {proba.shape[0]}.")
        for k in range(3):
            members = index == k
            ax.scatter(
                *points[members].T,
                color=colors[k],
                s=s,
                alpha=alpha,
                edgecolor="black",
                linewidth=0.3,
                zorder=3,
                label=names[k],
            )
        if legend:
            _legend(ax, names, title="true class", loc="upper right", framealpha=0.9)
    else:
        ax.scatter(
            *points.T,
            color=colors[proba.argmax(axis=1)],
            s=s,
            alpha=alpha,
            edgecolor="black",
            linewidth=0.3,
            zorder=3,
        )
    offsets = [
        (-0.03, -0.05, "right", "top"),
        (0.03, -0.05, "left", "top"),
        (0.0, 0.04, "center", "bottom"),
    ]
    for k, (dx, dy, ha, va) in enumerate(offsets):
        ax.text(
            vertices[k, 0] + dx,
            vertices[k, 1] + dy,
            names[k],
            ha=ha,
            va=va,
            fontsize=11,
            **text_font(names[k]),
        )
    ax.set_aspect("equal")
    ax.set_xlim(-0.2, 1.2)
    ax.set_ylim(-0.14, 0.98)
    ax.axis("off")
    _label_axes(ax, title)
    return ax


# ---------------------------------------------------------------------- coefficients
def _final_estimator(model):
    """The estimator holding ``coef_`` inside pipelines and meta-estimators, and the names
    of the features it sees."""
    names = None
    while not hasattr(model, "coef_"):
        if hasattr(model, "steps"):
            try:
                names = model[:-1].get_feature_names_out()
            except (AttributeError, ValueError, TypeError):
                names = None
            model = model.steps[-1][1]
        elif hasattr(model, "estimator_"):
            model = model.estimator_
        else:
            raise ValueError(
                f"{type(model).__name__} has no coef_ (nor a fitted inner estimator with one)."
            )
    if hasattr(model, "feature_names_in_"):
        names = model.feature_names_in_
    return model, names


def coefficients(
    model,
    *,
    feature_names=None,
    class_names=None,
    ax=None,
    cmap: str = "RdBu_r",
    annotate: bool | None = None,
    colorbar: bool = True,
    colorbar_label: str = "coefficient",
    title: str | None = None,
    xlabel: str | None = None,
    ylabel: str | None = None,
):
    """Heatmap of the coefficient matrix ``coef_`` (classes x features).

    The colour scale is symmetric about 0 (red positive, blue negative) so signs compare
    across cells. Up to 25 features run along the x axis; with more, the heatmap is turned
    (features down the y axis, the figure growing with them) so every name stays readable.

    Parameters
    ----------
    model : fitted estimator (``coef_``; pipelines and meta-estimators are unwrapped) or
        array-like of shape (K, d)
    feature_names : sequence of d str, optional
        Default: the model's feature names, else ``x0, x1, ...``.
    class_names : sequence of K str, optional
        Default: ``classes_``, else ``class 0, ...``.
    ax : Axes, optional
    cmap : str, default="RdBu_r"
    annotate : bool, optional
        Write the values in the cells; default when there are at most 120 cells.
    colorbar : bool, default=True
    colorbar_label : str, default="coefficient"
    title, xlabel, ylabel : str, optional
        Default axis labels: "feature" and "class".

    Returns
    -------
    matplotlib Axes
    """
    if hasattr(model, "coef_") or hasattr(model, "steps") or hasattr(model, "estimator_"):
        final, found_names = _final_estimator(model)
        coef = np.asarray(final.coef_, dtype=float)
        if feature_names is None and found_names is not None:
            feature_names = list(found_names)
        if class_names is None and hasattr(model, "classes_"):
            class_names = _class_names(model)
    else:
        coef = np.asarray(model, dtype=float)
    if coef.ndim != 2 or coef.size == 0:
        raise ValueError(f"coefficients needs a non-empty 2-D (K, d) array; got {coef.shape}.")
    if not np.all(np.isfinite(coef)):
        raise ValueError("coefficients contain NaN or infinite values.")
    n_rows, n_features = coef.shape
    feature_names = (
        [f"x{j}" for j in range(n_features)]
        if feature_names is None
        else [str(name) for name in feature_names]
    )
    if len(feature_names) != n_features:
        raise ValueError(
            f"feature_names has {len(feature_names)} entries for {n_features} features."
        )
    if class_names is None or len(class_names) != n_rows:
        # binary scikit-learn models have one row: name it after the positive class
        class_names = (
            [str(class_names[-1])]
            if class_names is not None and n_rows == 1
            else [f"class {k}" for k in range(n_rows)]
        )
    turned = n_features > MAX_FEATURES_ACROSS
    cells = coef.T if turned else coef
    if turned:
        size = (max(4.0, 0.9 * n_rows + 3.0), max(4.0, 0.2 * n_features + 1.5))
    else:
        size = (max(4.0, 0.55 * n_features + 2.5), max(2.5, 0.5 * n_rows + 1.8))
    ax = _new_axes(ax, size)
    limit = float(np.abs(coef).max()) or 1.0
    image = ax.imshow(
        cells, cmap=cmap, vmin=-limit, vmax=limit, aspect="auto", interpolation="nearest"
    )
    if annotate is None:
        annotate = coef.size <= 120
    if annotate:
        for (row, column), value in np.ndenumerate(cells):
            ax.text(
                column,
                row,
                f"{value:.2g}",
                ha="center",
                va="center",
                fontsize=8,
                color="white" if abs(value) > 0.6 * limit else "black",
            )
    if turned:
        _set_ticks(ax, "x", np.arange(n_rows), class_names, rotation=_tick_rotation(class_names))
        _set_ticks(ax, "y", np.arange(n_features), feature_names)
        ax.tick_params(axis="y", labelsize=7)
        xlabel, ylabel = (
            "class" if xlabel is None else xlabel,
            "feature" if ylabel is None else ylabel,
        )
    else:
        _set_ticks(
            ax, "x", np.arange(n_features), feature_names, rotation=_tick_rotation(feature_names)
        )
        _set_ticks(ax, "y", np.arange(n_rows), class_names)
        xlabel, ylabel = (
            "feature" if xlabel is None else xlabel,
            "class" if ylabel is None else ylabel,
        )
    if colorbar:
        ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.03, label=colorbar_label)
    _label_axes(ax, title, xlabel, ylabel)
    return ax


def _path_arrays(coefs, Cs):
    """``(coefs (n_Cs, K, d), Cs (n_Cs,))`` from arrays or a path result object."""
    if Cs is None:
        for name in ("Cs_", "Cs", "C_path", "Cs_path"):
            if hasattr(coefs, name):
                Cs = getattr(coefs, name)
                break
    if not isinstance(coefs, np.ndarray | list | tuple):
        for name in ("coefs_", "coefs", "coef_path_", "coef_path", "coefs_paths_"):
            if hasattr(coefs, name):
                coefs = getattr(coefs, name)
                break
    if Cs is None:
        raise ValueError("regularization_path needs Cs (the C value of each coefficient set).")
    coefs = np.asarray(coefs, dtype=float)
    Cs = np.asarray(Cs, dtype=float).ravel()
    if coefs.ndim != 3:
        raise ValueError(f"coefs must have shape (n_Cs, K, d); got {coefs.shape}.")
    if coefs.shape[0] != Cs.shape[0]:
        raise ValueError(
            f"coefs has {coefs.shape[0]} entries along the path but Cs has {Cs.shape[0]}."
        )
    if not np.all(np.isfinite(coefs)) or not np.all(np.isfinite(Cs)) or np.any(Cs <= 0):
        raise ValueError("coefs must be finite and Cs finite and > 0.")
    return coefs, Cs


def regularization_path(
    coefs,
    Cs=None,
    *,
    class_index: int | None = None,
    feature_names=None,
    class_names=None,
    ax=None,
    legend: bool = True,
    max_legend: int = 16,
    title: str | None = None,
    xlabel: str | None = "C (inverse regularisation)",
    ylabel: str | None = None,
):
    """Coefficients along a regularisation path, one line per feature, C on a log axis.

    Without ``class_index`` each line is the Euclidean norm of a feature's coefficients over
    all classes, ``||W[:, j]||_2``: the quantity the grouped penalty switches on and off, and
    a class-free summary for the others. With ``class_index`` the lines are that class's
    signed coefficients ``W[k, j]``.

    Parameters
    ----------
    coefs : array-like of shape (n_Cs, K, d), or an object with ``coefs_``/``coefs`` and
        ``Cs_``/``Cs`` attributes (a path result)
    Cs : array-like of shape (n_Cs,), optional
        Required with a plain array.
    class_index : int, optional
    feature_names : sequence of d str, optional
    class_names : sequence of K str, optional
        Used in the y label with ``class_index``.
    ax : Axes, optional
    legend : bool, default=True
        Drawn when there are at most ``max_legend`` features.
    max_legend : int, default=16
    title, xlabel, ylabel : str, optional

    Returns
    -------
    matplotlib Axes
    """
    coefs, Cs = _path_arrays(coefs, Cs)
    _, n_classes, n_features = coefs.shape
    order = np.argsort(Cs)
    coefs, Cs = coefs[order], Cs[order]
    feature_names = (
        [f"x{j}" for j in range(n_features)]
        if feature_names is None
        else [str(name) for name in feature_names]
    )
    if len(feature_names) != n_features:
        raise ValueError(
            f"feature_names has {len(feature_names)} entries for {n_features} features."
        )
    if class_index is None:
        values = np.linalg.norm(coefs, axis=1)
        default_ylabel = "norm of coefficients over classes"
    else:
        if not isinstance(class_index, int | np.integer) or not 0 <= class_index < n_classes:
            raise ValueError(
                f"class_index must be an integer in 0..{n_classes - 1}; got {class_index!r}."
            )
        values = coefs[:, class_index, :]
        name = class_names[class_index] if class_names is not None else f"class {class_index}"
        default_ylabel = f"coefficient ({name})"
    ax = _new_axes(ax, (7, 4.5))
    from matplotlib import colormaps

    # tab10's colours, then the same colours dashed, dotted, dash-dotted: 40 lines that
    # differ in colour or style (tab20's light/dark pairs are too alike at a glance)
    palette = colormaps["tab10"]
    for j in range(n_features):
        ax.plot(
            Cs,
            values[:, j],
            color=palette(j % 10),
            linestyle=PATH_LINESTYLES[(j // 10) % len(PATH_LINESTYLES)],
            linewidth=1.4,
            label=feature_names[j],
        )
    ax.set_xscale("log")
    ax.axhline(0.0, color="0.5", linewidth=0.6)
    if legend and n_features <= max_legend:
        _legend(ax, feature_names, title="feature", loc="best", fontsize=8)
    _label_axes(ax, title, xlabel, default_ylabel if ylabel is None else ylabel)
    return ax


# ---------------------------------------------------------------------- evaluation
def reliability_diagram(
    y_true,
    proba,
    *,
    n_bins: int = 10,
    kind: str = "top-label",
    strategy: str = "uniform",
    labels=None,
    ax=None,
    show_counts: bool = True,
    title: str | None = None,
    xlabel: str | None = None,
    ylabel: str | None = None,
):
    """Reliability diagram: observed frequency against mean predicted probability per bin.

    A calibrated model lies on the diagonal. ``kind="top-label"`` plots accuracy against
    confidence (one line, ECE in the legend); ``kind="class-wise"`` one line per class in its
    class colour. With ``show_counts`` grey bars at the bottom show the share of samples per
    bin (top-label) or of all class-probability values (class-wise).

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
    proba : array-like of shape (n_samples, K)
    n_bins : int, default=10
    kind : {"top-label", "class-wise"}
    strategy : {"uniform", "quantile"}
    labels : array-like of shape (K,), optional
        Class label of each column (the model's ``classes_``), also used in the legend.
    ax : Axes, optional
    show_counts : bool, default=True
    title, xlabel, ylabel : str, optional

    Returns
    -------
    matplotlib Axes
    """
    from .metrics import reliability_curve

    curve = reliability_curve(
        y_true, proba, n_bins=n_bins, kind=kind, strategy=strategy, labels=labels
    )
    ax = _new_axes(ax, (5.5, 5))
    ax.plot([0, 1], [0, 1], linestyle="--", color="0.4", linewidth=1, label="perfectly calibrated")
    legend_texts = ["perfectly calibrated"]
    if kind == "top-label":
        filled = curve.counts > 0
        label = f"model (ECE = {curve.calibration_error():.3f})"
        ax.plot(
            curve.prob_pred[filled],
            curve.prob_true[filled],
            marker="o",
            color="C0",
            linewidth=1.6,
            label=label,
        )
        legend_texts.append(label)
        counts, edges = curve.counts, curve.bin_edges
    else:
        n_classes = curve.counts.shape[0]
        names = (
            [f"class {k}" for k in range(n_classes)]
            if labels is None
            else [str(name) for name in np.asarray(labels).tolist()]
        )
        colors = class_colors(n_classes)
        for k in range(n_classes):
            filled = curve.counts[k] > 0
            ax.plot(
                curve.prob_pred[k][filled],
                curve.prob_true[k][filled],
                marker="o",
                markersize=3,
                color=colors[k],
                linewidth=1.2,
                label=names[k],
            )
        legend_texts += names
        counts, edges = curve.counts.sum(axis=0), curve.bin_edges[0]
    if show_counts and counts.sum() > 0:
        share = counts / counts.sum()
        # bars at most 0.25 high so they stay below most of the curve
        height = 0.25 * share / share.max()
        ax.bar(
            edges[:-1],
            height,
            width=np.diff(edges),
            align="edge",
            color="0.8",
            edgecolor="0.6",
            linewidth=0.5,
            zorder=0,
            label="share of samples",
        )
        legend_texts.append("share of samples")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_aspect("equal")
    _legend(ax, legend_texts, loc="upper left", fontsize=8)
    default_x = (
        "confidence (top-label probability)" if kind == "top-label" else "predicted probability"
    )
    default_y = "accuracy" if kind == "top-label" else "observed frequency"
    _label_axes(
        ax, title, default_x if xlabel is None else xlabel, default_y if ylabel is None else ylabel
    )
    return ax


def confusion_matrix(
    y_true,
    y_pred,
    *,
    labels=None,
    reject_label=None,
    normalize: str | None = None,
    ax=None,
    cmap: str = "Blues",
    colorbar: bool = True,
    title: str | None = None,
    xlabel: str | None = "predicted",
    ylabel: str | None = "true",
):
    """Confusion matrix (rows: true class, columns: predicted class), with counts in cells.

    Computed by :func:`sklearn.metrics.confusion_matrix`.

    Parameters
    ----------
    y_true, y_pred : array-like of shape (n_samples,)
    labels : array-like, optional
        Order of the rows and columns; default: the sorted labels present in either.
    reject_label : optional
        The label of an abstention in ``y_pred`` (see
        :class:`softmaxreg.decision.CostSensitiveClassifier`): drawn as a last column
        "rejected" and never as a row (no sample truly belongs to it).
    normalize : {"true", "pred", "all"} or None
        As in scikit-learn: shares per true class, per predicted class, or of all.
    ax : Axes, optional
    cmap : str, default="Blues"
    colorbar : bool, default=True
    title, xlabel, ylabel : str, optional

    Returns
    -------
    matplotlib Axes
    """
    from sklearn.metrics import confusion_matrix as sklearn_confusion_matrix

    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if labels is None:
        labels = np.unique(np.concatenate([y_true, y_pred]))
    label_list = list(np.asarray(labels).tolist())
    if reject_label is not None:
        # the abstention goes last, as a column only
        label_list = [label for label in label_list if label != reject_label]
        has_reject = bool(np.any(np.asarray(y_pred == reject_label)))
        if has_reject:
            label_list.append(reject_label)
    else:
        has_reject = False
    matrix = sklearn_confusion_matrix(
        y_true,
        y_pred,
        labels=np.asarray(label_list, dtype=object if has_reject else None),
        normalize=normalize,
    )
    column_names = [str(label) for label in label_list]
    if has_reject:
        matrix = matrix[:-1]
        column_names[-1] = "rejected"
    row_names = column_names[: matrix.shape[0]]
    n_rows, n_columns = matrix.shape
    ax = _new_axes(ax, (max(4.0, 0.6 * n_columns + 2.5), max(3.5, 0.6 * n_rows + 1.8)))
    image = ax.imshow(matrix, cmap=cmap, interpolation="nearest")
    high = matrix.max() if matrix.size else 0
    if n_columns <= 30:
        for (row, column), value in np.ndenumerate(matrix):
            text = f"{value:.2f}" if normalize else f"{int(value)}"
            ax.text(
                column,
                row,
                text,
                ha="center",
                va="center",
                fontsize=8 if n_columns > 10 else 10,
                color="white" if high and value > 0.5 * high else "black",
            )
    _set_ticks(ax, "x", np.arange(n_columns), column_names, rotation=_tick_rotation(column_names))
    _set_ticks(ax, "y", np.arange(n_rows), row_names)
    if colorbar:
        ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.03)
    _label_axes(ax, title, xlabel, ylabel)
    return ax


def risk_coverage(
    proba,
    y_true,
    *,
    cost_matrix=None,
    labels=None,
    ax=None,
    label: str | None = None,
    title: str | None = None,
    xlabel: str | None = "coverage (share of samples decided)",
    ylabel: str | None = None,
):
    """Risk-coverage curve of the reject option (see
    :func:`softmaxreg.decision.risk_coverage_curve`).

    Each point is a reject threshold: the share of samples the Bayes rule still decides, and
    the mean cost (error rate without ``cost_matrix``) on them. The dashed line is the risk
    without rejection. The y axis is fitted to the curves beyond 5 % coverage, where the
    risk of the very first samples no longer dominates.

    Parameters
    ----------
    proba : array-like of shape (n_samples, K)
    y_true : array-like of shape (n_samples,)
    cost_matrix : array-like of shape (K, K), optional
    labels : array-like of shape (K,), optional
    ax : Axes, optional
    label : str, optional
        Legend entry of the curve (call again on the same ``ax`` to compare models).
    title, xlabel, ylabel : str, optional

    Returns
    -------
    matplotlib Axes
    """
    from .decision import risk_coverage_curve

    coverage, risk, _ = risk_coverage_curve(proba, y_true, cost_matrix, labels=labels)
    ax = _new_axes(ax, (6, 4.5))
    label = label or "model"
    line = ax.plot(
        np.concatenate([[0.0], coverage]),
        np.concatenate([[risk[0]], risk]),
        drawstyle="steps-pre",
        linewidth=1.6,
        label=label,
    )[0]
    ax.axhline(
        risk[-1],
        linestyle="--",
        color=line.get_color(),
        linewidth=0.9,
        label=f"{label}: no rejection ({risk[-1]:.3f})",
    )
    ax.set_xlim(0, 1)
    # The first few accepted samples make the risk jump (one confident mistake among 3 is a
    # risk of 1/3); scale the y axis to the curves beyond 5 % coverage so their shape shows.
    top = 0.0
    for curve in ax.get_lines():
        xs, ys = np.asarray(curve.get_xdata(), float), np.asarray(curve.get_ydata(), float)
        if xs.shape == ys.shape and np.any(xs >= 0.05):
            top = max(top, float(np.max(ys[xs >= 0.05])))
    ax.set_ylim(0, 1.15 * top if top > 0 else 1.0)
    _legend(ax, ax.get_legend_handles_labels()[1], loc="best", fontsize=8)
    default_y = (
        "error rate of decided samples" if cost_matrix is None else "mean cost of decided samples"
    )
    _label_axes(ax, title, xlabel, default_y if ylabel is None else ylabel)
    return ax


# ---------------------------------------------------------------------- dispatcher
def plot_model(kind: str, estimator, X, y=None, *, ax=None, **kwargs):
    """Draw figure ``kind`` for a fitted classifier on data ``(X, y)``; the back end of
    ``softmaxreg plot MODEL DATA --target COL --kind KIND``.

    Parameters
    ----------
    kind : str
        One of :data:`KINDS` ("decision_regions", "probability_map", "simplex",
        "coefficients", "reliability", "confusion_matrix", "risk_coverage"); hyphens may
        replace underscores. "decision_regions" and "probability_map" need 2 features,
        "simplex" 3 classes; "reliability", "confusion_matrix" and "risk_coverage" need ``y``.
    estimator : fitted classifier (``predict_proba``, ``classes_``)
    X : array-like or DataFrame of shape (n_samples, n_features)
    y : array-like of shape (n_samples,), optional
    ax : Axes, optional
    **kwargs : passed to the figure function (``title``, ``xlabel``, ``ylabel``, ...)

    Returns
    -------
    matplotlib Axes (``probability_map``: ndarray of Axes)

    Raises
    ------
    ValueError
        Unknown kind, or data the kind cannot draw (e.g. ``y`` missing).
    """
    name = str(kind).strip().lower().replace("-", "_")
    if name == "reliability_diagram":
        name = "reliability"
    if name not in KINDS:
        raise ValueError(f"unknown plot kind {kind!r}; choose one of {', '.join(KINDS)}.")
    if name in ("reliability", "confusion_matrix", "risk_coverage") and y is None:
        raise ValueError(f"plot kind {name!r} needs the true labels (a target column).")
    classes = np.asarray(estimator.classes_)
    if name == "decision_regions":
        return decision_regions(estimator, X, y, ax=ax, **kwargs)
    if name == "probability_map":
        return probability_map(estimator, X, y, ax=ax, **kwargs)
    if name == "coefficients":
        return coefficients(estimator, ax=ax, **kwargs)
    if name == "confusion_matrix":
        predicted = np.asarray(estimator.predict(X))
        # classes first, then any other decision (an abstention label) at the end
        extra = [label for label in np.unique(predicted).tolist() if label not in classes.tolist()]
        combined = classes.tolist() + extra
        labels = np.asarray(combined)
        if labels.dtype.kind in "US" and classes.dtype.kind not in "USO":
            labels = np.array(combined, dtype=object)  # e.g. a text reject label
        kwargs.setdefault("labels", labels)
        if getattr(estimator, "reject_cost", None) is not None:
            kwargs.setdefault("reject_label", getattr(estimator, "reject_label", None))
        return confusion_matrix(y, predicted, ax=ax, **kwargs)
    proba = estimator.predict_proba(X)
    if name == "simplex":
        kwargs.setdefault("class_names", classes)
        return simplex(proba, y, ax=ax, **kwargs)
    if name == "reliability":
        kwargs.setdefault("labels", classes)
        return reliability_diagram(y, proba, ax=ax, **kwargs)
    kwargs.setdefault("labels", classes)
    kwargs.setdefault("cost_matrix", getattr(estimator, "_cost_matrix_", None))
    return risk_coverage(proba, y, ax=ax, **kwargs)
