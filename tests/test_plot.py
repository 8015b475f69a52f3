"""Figures rendered to PNG and read back: not blank, right colours where it can be checked,
Japanese text without missing glyphs, and the demo command."""

import io
import subprocess
import sys
import warnings

import numpy as np
import pytest
from sklearn.datasets import load_wine, make_blobs, make_classification
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from softmaxreg import SoftmaxRegression, plot
from softmaxreg.decision import CostSensitiveClassifier

matplotlib = pytest.importorskip("matplotlib")
matplotlib.use("Agg")
import matplotlib.image as mpimg  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402

JAPANESE = {"title": "決定領域のテスト", "xlabel": "特徴量 1", "ylabel": "特徴量 2"}


@pytest.fixture(autouse=True)
def close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def demo_data():
    """DESIGN.md's reference experiment."""
    X, y = make_classification(
        n_samples=300,
        n_features=2,
        n_informative=2,
        n_redundant=0,
        n_clusters_per_class=1,
        n_classes=3,
        random_state=42,
    )
    return X, y, SoftmaxRegression(C=1.0).fit(X, y)


@pytest.fixture(scope="module")
def wine():
    X, y = load_wine(return_X_y=True, as_frame=True)
    model = make_pipeline(StandardScaler(), SoftmaxRegression(C=0.1)).fit(X, y)
    return X, y, model


def render(figure, dpi=None):
    """PNG bytes of the figure, read back as an RGB float array in [0, 1]."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi or figure.dpi)
    buffer.seek(0)
    return mpimg.imread(buffer, format="png")[..., :3]


def assert_not_blank(image, min_colours=20, min_ink=0.05):
    colours = np.unique((image.reshape(-1, 3) * 255).round().astype(int), axis=0)
    assert len(colours) >= min_colours, f"only {len(colours)} distinct colours"
    ink = np.mean(np.any(image < 0.95, axis=-1))
    assert ink >= min_ink, f"only {ink:.1%} of the pixels are not white"


def missing_glyph_warnings(records):
    return [str(record.message) for record in records if "missing from" in str(record.message)]


# ---------------------------------------------------------------------- decision regions
def pixel_of(ax, image, x, y):
    """Row and column in the PNG of data point (x, y): display y counts from the bottom."""
    display_x, display_y = ax.transData.transform((x, y))
    height = image.shape[0]
    return int(height - display_y), int(display_x)


def interior_points(ax, model, X, n_points, rng, margin_px=4):
    """Random data points whose predicted class is the same a few pixels around them (so a
    pixel there is not on a boundary between regions)."""
    (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
    inverse = ax.transData.inverted()
    chosen = []
    while len(chosen) < n_points:
        point = np.array([rng.uniform(x0, x1), rng.uniform(y0, y1)])
        centre = ax.transData.transform(point)
        offsets = np.array([[dx, dy] for dx in (-margin_px, 0, margin_px) for dy in (-4, 0, 4)])
        around = inverse.transform(centre + offsets)
        inside = (around[:, 0] > x0) & (around[:, 0] < x1) & (around[:, 1] > y0)
        if not np.all(inside & (around[:, 1] < y1)):
            continue
        if len(set(model.predict(around).tolist())) == 1:
            chosen.append(point)
    return np.array(chosen)


@pytest.mark.parametrize("n_classes", [3, 5])
def test_decision_regions_pixel_colour_is_the_predicted_class_colour(n_classes):
    X, y = make_blobs(n_samples=200, centers=n_classes, cluster_std=2.5, random_state=n_classes)
    model = SoftmaxRegression().fit(X, y)
    figure, ax = plt.subplots(figsize=(4, 3), dpi=100)
    plot.decision_regions(model, X, ax=ax, resolution=200)  # no y: no points on top
    figure.canvas.draw()
    image = render(figure)
    points = interior_points(ax, model, X, 40, np.random.default_rng(0))
    predicted = model.predict(points)
    expected = plot.region_colors(n_classes)[np.searchsorted(model.classes_, predicted)]
    for point, colour in zip(points, expected, strict=True):
        row, column = pixel_of(ax, image, *point)
        np.testing.assert_allclose(image[row, column], colour, atol=1.5 / 255)
    assert len(set(predicted.tolist())) >= 3  # the check saw several regions
    assert_not_blank(image, min_colours=n_classes)


def test_decision_regions_follow_predict_of_a_rejecting_classifier(demo_data):
    X, y, _ = demo_data
    cost = np.array([[0, 1, 1], [5, 0, 5], [1, 1, 0]])
    model = CostSensitiveClassifier(SoftmaxRegression(), cost, reject_cost=0.3).fit(X, y)
    figure, ax = plt.subplots(figsize=(4, 3), dpi=100)
    plot.decision_regions(model, X, ax=ax, resolution=200)
    figure.canvas.draw()
    image = render(figure)
    points = interior_points(ax, model, X, 60, np.random.default_rng(1))
    predicted = model.predict(points)
    assert -1 in predicted and len(set(predicted.tolist())) == 4
    colours = np.vstack([plot.region_colors(3), plot.REJECT_COLOR])
    for point, label in zip(points, predicted, strict=True):
        row, column = pixel_of(ax, image, *point)
        expected = colours[3] if label == -1 else colours[label]
        np.testing.assert_allclose(image[row, column], expected, atol=1.5 / 255)


def test_decision_regions_with_points_and_shading(demo_data):
    X, y, model = demo_data
    ax = plot.decision_regions(model, X, y, resolution=80, show_probability=True, **JAPANESE)
    image = render(ax.figure, dpi=60)
    assert_not_blank(image, min_colours=100)
    # points and legend use the class colours: each one appears among the pixels
    pixels = image.reshape(-1, 3)
    for colour in plot.class_colors(3):
        assert np.min(np.abs(pixels - colour).max(axis=1)) < 2 / 255
    legend = ax.get_legend()
    assert [text.get_text() for text in legend.get_texts()] == ["0", "1", "2"]


def test_decision_regions_rejects_wrong_shapes(demo_data):
    X, y, model = demo_data
    with pytest.raises(ValueError, match="exactly 2 columns"):
        plot.decision_regions(model, np.column_stack([X, X[:, 0]]))
    with pytest.raises(ValueError, match="NaN"):
        plot.decision_regions(model, np.full((3, 2), np.nan))


# ---------------------------------------------------------------------- the other figures
def test_probability_map_colours_follow_the_probabilities(demo_data):
    X, y, model = demo_data
    figure, axes = plt.subplots(1, 3, figsize=(9, 3), dpi=100)
    returned = plot.probability_map(model, X, ax=axes, resolution=120, contour=False)
    assert list(returned) == list(axes)
    figure.canvas.draw()
    image = render(figure)
    assert_not_blank(image)
    rng = np.random.default_rng(2)
    colours = plot.class_colors(3)
    steps = np.array([[dx, dy] for dx in np.linspace(-2, 2, 5) for dy in np.linspace(-2, 2, 5)])
    for k, ax in enumerate(axes):
        (x0, x1), (y0, y1) = ax.get_xlim(), ax.get_ylim()
        points = np.column_stack([rng.uniform(x0, x1, 15), rng.uniform(y0, y1, 15)])
        channel = np.argmax(1 - colours[k])  # the channel that changes most from white
        for point in points:
            row, column = pixel_of(ax, image, *point)
            # the map is linear from white (p = 0) to the class colour (p = 1): invert it
            shown = (1 - image[row, column, channel]) / (1 - colours[k][channel])
            # the image is a grid of cells: the shown value is the probability somewhere
            # within a couple of pixels of the point
            around = ax.transData.inverted().transform(ax.transData.transform(point) + steps)
            nearby = model.predict_proba(around)[:, k]
            assert nearby.min() - 0.02 <= shown <= nearby.max() + 0.02


def test_probability_map_single_class_and_new_figure(demo_data):
    X, y, model = demo_data
    ax = plot.probability_map(model, X, y, class_index=1, resolution=60, title="クラス 1")
    assert_not_blank(render(ax.figure, dpi=60))
    axes = plot.probability_map(model, X, y, resolution=40, title="確率")
    assert len(axes) == 3
    with pytest.raises(ValueError, match="class_index"):
        plot.probability_map(model, X, class_index=3)


def test_simplex_places_points_at_their_probabilities(demo_data):
    X, y, model = demo_data
    proba = model.predict_proba(X)
    ax = plot.simplex(proba, y, class_names=model.classes_, title="確率の単体")
    # barycentric coordinates of each drawn point, recovered with the triangle's corners
    corners = np.array([[0.0, 0.0], [1.0, 0.0], [0.5, np.sqrt(3) / 2]])
    system = np.vstack([corners.T, np.ones(3)])
    for collection, k in zip(ax.collections[-3:], range(3), strict=True):
        offsets = collection.get_offsets()
        recovered = np.linalg.solve(system, np.vstack([offsets.T, np.ones(len(offsets))])).T
        np.testing.assert_allclose(recovered, proba[y == k], atol=1e-9)
    assert_not_blank(render(ax.figure, dpi=60))
    with pytest.raises(ValueError, match="exactly 3 classes"):
        plot.simplex(np.full((2, 4), 0.25))


def test_coefficients_heatmap(wine):
    X, y, model = wine
    ax = plot.coefficients(model, title="係数")
    image = ax.get_images()[0].get_array()
    np.testing.assert_allclose(image, model[-1].coef_)
    assert [t.get_text() for t in ax.get_xticklabels()] == list(X.columns)
    assert_not_blank(render(ax.figure, dpi=60))
    ax = plot.coefficients(np.array([[1.0, -2.0]]), feature_names=["長さ", "重さ"])
    assert_not_blank(render(ax.figure, dpi=60))
    with pytest.raises(ValueError, match="feature_names"):
        plot.coefficients(np.ones((2, 3)), feature_names=["a"])


def test_regularization_path_lines_are_group_norms(wine):
    X, y, _ = wine
    Xs = StandardScaler().fit_transform(X)
    Cs = np.logspace(-3, 1, 6)
    coefs = np.array([SoftmaxRegression(C=C).fit(Xs, y).coef_ for C in Cs])
    ax = plot.regularization_path(coefs, Cs, feature_names=list(X.columns), title="正則化パス")
    lines = [line for line in ax.get_lines() if line.get_label() in set(X.columns)]
    assert len(lines) == X.shape[1]
    for j, line in enumerate(lines):
        expected = [np.sqrt(sum(c[k, j] ** 2 for k in range(3))) for c in coefs]
        np.testing.assert_allclose(line.get_ydata(), expected)
    assert_not_blank(render(ax.figure, dpi=60))
    ax = plot.regularization_path(coefs[::-1], Cs[::-1], class_index=2)
    assert_not_blank(render(ax.figure, dpi=60))
    with pytest.raises(ValueError, match="Cs"):
        plot.regularization_path(coefs)
    with pytest.raises(ValueError, match="n_Cs"):
        plot.regularization_path(coefs[0], Cs)


@pytest.mark.parametrize("kind", ["top-label", "class-wise"])
def test_reliability_diagram(wine, kind):
    X, y, model = wine
    ax = plot.reliability_diagram(
        y, model.predict_proba(X), kind=kind, labels=model.classes_, title="信頼性"
    )
    assert_not_blank(render(ax.figure, dpi=60))


def test_confusion_matrix_cells_are_sklearn_counts(wine):
    from sklearn.metrics import confusion_matrix

    X, y, model = wine
    predicted = model.predict(X)
    ax = plot.confusion_matrix(y, predicted, title="混同行列")
    np.testing.assert_array_equal(ax.get_images()[0].get_array(), confusion_matrix(y, predicted))
    assert_not_blank(render(ax.figure, dpi=60), min_colours=10)


def test_confusion_matrix_puts_rejections_in_a_last_column(demo_data):
    X, y, _ = demo_data
    cost = np.array([[0, 1, 1], [5, 0, 5], [1, 1, 0]])
    model = CostSensitiveClassifier(SoftmaxRegression(), cost, reject_cost=0.3).fit(X, y)
    ax = plot.plot_model("confusion_matrix", model, X, y)
    cells = ax.get_images()[0].get_array()
    predicted = model.predict(X)
    assert cells.shape == (3, 4)
    for t in range(3):
        for p, label in enumerate([0, 1, 2, -1]):
            assert cells[t, p] == np.sum((y == t) & (predicted == label))
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "1", "2", "rejected"]


def test_risk_coverage_plot(demo_data):
    X, y, model = demo_data
    ax = plot.risk_coverage(model.predict_proba(X), y, label="モデル", title="リスク")
    plot.risk_coverage(model.predict_proba(X), y, cost_matrix=1 - np.eye(3), ax=ax, label="b")
    assert_not_blank(render(ax.figure, dpi=60), min_colours=10, min_ink=0.02)


# ---------------------------------------------------------------------- dispatcher, fonts
@pytest.mark.parametrize("kind", plot.KINDS)
def test_plot_model_renders_every_kind_without_missing_glyphs(demo_data, kind):
    X, y, model = demo_data
    names = np.array(["りんご", "みかん", "ぶどう"])  # Japanese class names: legends, ticks
    named = SoftmaxRegression().fit(X, names[y])
    kwargs = {"title": "日本語のタイトル"}
    if kind in ("decision_regions", "probability_map"):
        kwargs.update(resolution=50, xlabel="特徴量 1", ylabel="特徴量 2")
    with warnings.catch_warnings(record=True) as records:
        warnings.simplefilter("always")
        result = plot.plot_model(kind.replace("_", "-"), named, X, names[y], **kwargs)
        figure = np.ravel(result)[0].figure
        image = render(figure, dpi=50)
    assert missing_glyph_warnings(records) == []
    assert_not_blank(image, min_colours=8, min_ink=0.02)
    assert model is not named


def test_missing_glyph_detection_works():
    """The glyph check above would see a failure: plain matplotlib text in Japanese warns."""
    figure, ax = plt.subplots()
    ax.set_title("日本語")
    with warnings.catch_warnings(record=True) as records:
        warnings.simplefilter("always")
        render(figure, dpi=30)
    assert missing_glyph_warnings(records)


def test_plot_model_errors(demo_data):
    X, y, model = demo_data
    with pytest.raises(ValueError, match="unknown plot kind"):
        plot.plot_model("pie", model, X, y)
    with pytest.raises(ValueError, match="true labels"):
        plot.plot_model("confusion_matrix", model, X)


def test_import_does_not_load_matplotlib():
    code = (
        "import sys, softmaxreg\n"
        "from softmaxreg import plot, decision, metrics\n"
        "assert 'matplotlib' not in sys.modules, 'matplotlib imported eagerly'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# ---------------------------------------------------------------------- the demo command
def test_demo_prints_accuracy_and_writes_japanese_figure(tmp_path, monkeypatch, capsys):
    from softmaxreg.cli import main

    monkeypatch.chdir(tmp_path)
    out = tmp_path / "demo.png"
    with warnings.catch_warnings(record=True) as records:
        warnings.simplefilter("always")
        status = main(["demo", "-o", str(out), "--title", "日本語タイトル"])
    assert status == 0
    assert "Training accuracy: 0.917" in capsys.readouterr().out
    assert missing_glyph_warnings(records) == []
    image = mpimg.imread(out)[..., :3]
    assert_not_blank(image, min_colours=50)


def test_japanese_text_leaves_the_users_font_settings_alone(demo_data):
    X, y, model = demo_data
    family = list(matplotlib.rcParams["font.family"])
    ax = plot.decision_regions(model, X, y, resolution=20, **JAPANESE)
    render(ax.figure, dpi=30)
    assert list(matplotlib.rcParams["font.family"]) == family


# ---------------------------------------------------------------------- legibility
def test_reject_region_has_a_legend_entry(demo_data):
    X, y, _ = demo_data
    cost = np.array([[0, 1, 1], [5, 0, 5], [1, 1, 0]])
    model = CostSensitiveClassifier(SoftmaxRegression(), cost, reject_cost=0.3).fit(X, y)
    for labels in (y, None):
        ax = plot.decision_regions(model, X, labels, resolution=120)
        legend = ax.get_legend()
        texts = [text.get_text() for text in legend.get_texts()]
        assert texts == ["0", "1", "2", "rejected"]
        patch = legend.legend_handles[-1]
        np.testing.assert_allclose(patch.get_facecolor()[:3], plot.REJECT_COLOR)
        # the legend sits beside the Axes, so it hides no region
        figure = ax.figure
        figure.canvas.draw()
        renderer = figure.canvas.get_renderer()
        assert legend.get_window_extent(renderer).x0 >= ax.get_window_extent(renderer).x1
        assert (ax.get_xlabel(), ax.get_ylabel()) == ("", "")
    ax = plot.decision_regions(demo_data[2], X, y, resolution=120)
    assert "rejected" not in [text.get_text() for text in ax.get_legend().get_texts()]


def test_decision_boundary_has_no_stair_steps_at_default_size():
    """A binary linear model's boundary is the line w.x + b = 0: in every pixel row of the
    saved figure the colour changes within 1.5 pixels of where that line crosses the row."""
    X, y = make_blobs(n_samples=200, centers=2, cluster_std=2.0, random_state=3)
    model = SoftmaxRegression().fit(X, y)
    ax = plot.decision_regions(model, X)  # default figure size and resolution
    figure = ax.figure
    figure.canvas.draw()
    image = render(figure, dpi=matplotlib.rcParams["savefig.dpi"]
                   if matplotlib.rcParams["savefig.dpi"] != "figure" else figure.dpi)  # fmt: skip
    w = model.coef_[1] - model.coef_[0]
    b = model.intercept_[1] - model.intercept_[0]
    box = ax.get_window_extent()
    height = image.shape[0]
    region_1 = plot.region_colors(2)[1]
    inverse = ax.transData.inverted()
    deviations = []
    for row in range(int(height - box.y1) + 3, int(height - box.y0) - 3, 5):
        columns = np.arange(int(box.x0) + 3, int(box.x1) - 3)
        pixels = image[row, columns]
        is_1 = np.all(np.abs(pixels - region_1) < 2 / 255, axis=1)
        is_0 = np.all(np.abs(pixels - plot.region_colors(2)[0]) < 2 / 255, axis=1)
        if not (is_1.any() and is_0.any()):
            continue
        # the line's x at this row's height, in display pixels
        _, data_y = inverse.transform((box.x0, height - row - 0.5))
        data_x = -(b + w[1] * data_y) / w[0]
        line_column = ax.transData.transform((data_x, data_y))[0]
        changes = columns[1:][np.diff(is_1.astype(int)) != 0]
        if len(changes):
            deviations.append(np.min(np.abs(changes - line_column)))
    assert len(deviations) > 20
    assert max(deviations) <= 1.5


def test_coefficients_heatmap_stays_readable_with_60_features():
    rng = np.random.default_rng(0)
    coef = rng.normal(size=(4, 60))
    names = [f"feature_{j:02d}" for j in range(60)]
    ax = plot.coefficients(coef, feature_names=names, class_names=list("ABCD"))
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("class", "feature")
    assert [t.get_text() for t in ax.get_yticklabels()] == names
    np.testing.assert_allclose(ax.get_images()[0].get_array(), coef.T)
    figure = ax.figure
    figure.canvas.draw()
    renderer = figure.canvas.get_renderer()
    boxes = [label.get_window_extent(renderer) for label in ax.get_yticklabels()]
    for upper, lower in zip(boxes, boxes[1:], strict=False):
        assert not upper.overlaps(lower)  # no two names on top of each other
    assert min(label.get_fontsize() for label in ax.get_yticklabels()) >= 7
    colorbar = figure.axes[1]
    assert colorbar.get_ylabel() == "coefficient"
    ax = plot.coefficients(coef[:, :8], colorbar_label="coefficient (per unit)")
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("feature", "class")
    assert ax.figure.axes[1].get_ylabel() == "coefficient (per unit)"


def test_path_lines_are_distinguishable():
    rng = np.random.default_rng(1)
    Cs = np.logspace(-2, 2, 5)
    coefs = rng.normal(size=(5, 3, 30))
    ax = plot.regularization_path(coefs, Cs)
    lines = ax.get_lines()[:30]
    styles = {(matplotlib.colors.to_hex(line.get_color()), line.get_linestyle()) for line in lines}
    assert len(styles) == 30
    assert ax.get_xscale() == "log"
    assert ax.get_xlabel() == "C (inverse regularisation)"
    assert ax.get_ylabel() == "norm of coefficients over classes"
