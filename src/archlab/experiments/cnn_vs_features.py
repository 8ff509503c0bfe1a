"""Experiment ``cnn_vs_features``: a CNN against hand-made features, HOG + linear SVM and raw pixels.

Before CNNs learned their features, image classifiers used engineered ones: the histogram of
oriented gradients (HOG) of
    N. Dalal, B. Triggs, "Histograms of oriented gradients for human detection", CVPR 2005,
    https://doi.org/10.1109/CVPR.2005.177
fed to a linear SVM (here scikit-learn's ``LinearSVC``, liblinear: R.-E. Fan et al., "LIBLINEAR: a
library for large linear classification", JMLR 9, 2008). We compare, on MNIST training subsets of
several sizes, the test accuracy and fit time of: raw pixels + linear SVM, HOG + linear SVM, and
the default ``simple_cnn`` trained by :func:`archlab.train` on the same images.

HOG (:func:`hog_features`), for a grayscale image I:

1. gradients with the centred mask [-1, 0, 1] and no smoothing (the paper's best choice):
   ``gx = I(x+1, y) - I(x-1, y)``, ``gy = I(x, y+1) - I(x, y-1)`` (0 on the border pixels);
   magnitude ``m = sqrt(gx^2 + gy^2)``, unsigned orientation ``theta = atan2(gy, gx) mod 180``;
2. each pixel votes ``m`` into ``n_bins`` (9) orientation bins centred at ``b * 180 / n_bins``
   degrees, split linearly between the two nearest centres (wrapping at 180);
3. votes are summed over cells of ``cell_size`` x ``cell_size`` pixels;
4. blocks of ``block_size`` x ``block_size`` cells, one cell apart (overlapping), are normalised
   with L2-Hys: ``v <- v / sqrt(||v||^2 + eps^2)``, clip at 0.2, renormalise;
5. the descriptor concatenates every block: length
   ``(H // c - b + 1) * (W // c - b + 1) * b^2 * n_bins`` (c = cell_size, b = block_size).

Deviations from the paper:
    - Orientation votes are interpolated between bins but not between neighbouring cells in
      space (the paper's trilinear interpolation), and there is no Gaussian window over the
      block; both matter little at 4x4-pixel cells.
    - Cells are 4x4 pixels (the paper's 8x8 cells are for 64x128 pedestrians; 28x28 digits need
      finer cells); images are cropped to a multiple of the cell size.
    - The SVM's C is picked for each training size on the validation images from
      (0.01, 0.1, 1); the CNN trains for a fixed budget of images seen (at least 3 epochs).
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from archlab.registry import register_experiment

__all__ = ["hog_features", "hog_length", "cnn_vs_features"]

#: C values tried for each linear SVM (chosen on the validation split).
SVM_CS = (0.01, 0.1, 1.0)


def hog_length(height: int, width: int, cell_size: int = 4, block_size: int = 2, n_bins: int = 9) -> int:
    """Length of the HOG descriptor of an ``height`` x ``width`` image."""
    by, bx = height // cell_size - block_size + 1, width // cell_size - block_size + 1
    if by < 1 or bx < 1:
        raise ValueError(
            f"a {height}x{width} image has fewer than {block_size}x{block_size} cells of {cell_size} px"
        )
    return by * bx * block_size * block_size * n_bins


def cell_histograms(images: np.ndarray, cell_size: int = 4, n_bins: int = 9) -> np.ndarray:
    """Steps 1-3 of HOG: gradient-magnitude votes per orientation bin, summed over each cell.

    Args:
        images: (N, H, W) float; cropped to a multiple of ``cell_size``.

    Returns:
        (N, H // cell_size, W // cell_size, n_bins) histograms (not normalised).
    """
    n, h, w = images.shape
    cy, cx = h // cell_size, w // cell_size
    img = images[:, : cy * cell_size, : cx * cell_size].astype(np.float64)  # (N, H', W')
    gx = np.zeros_like(img)
    gy = np.zeros_like(img)
    gx[:, :, 1:-1] = img[:, :, 2:] - img[:, :, :-2]  # centred [-1, 0, 1] along x
    gy[:, 1:-1, :] = img[:, 2:, :] - img[:, :-2, :]  # along y (down)
    mag = np.hypot(gx, gy)
    pos = (np.rad2deg(np.arctan2(gy, gx)) % 180.0) / (180.0 / n_bins)  # in bin units, [0, n_bins)
    lo = np.floor(pos).astype(np.int64) % n_bins
    frac = pos - np.floor(pos)
    hi = (lo + 1) % n_bins
    bins = np.arange(n_bins)
    # votes (N, H', W', n_bins): (1 - frac) * m to the lower centre, frac * m to the upper one
    votes = (bins == lo[..., None]) * ((1.0 - frac) * mag)[..., None] + (bins == hi[..., None]) * (
        frac * mag
    )[..., None]
    return votes.reshape(n, cy, cell_size, cx, cell_size, n_bins).sum(axis=(2, 4))


def hog_features(
    images: np.ndarray,
    *,
    cell_size: int = 4,
    block_size: int = 2,
    n_bins: int = 9,
    clip: float = 0.2,
    eps: float = 1e-5,
    chunk: int = 2000,
) -> np.ndarray:
    """HOG descriptors (Dalal & Triggs 2005) of grayscale images; see the module docstring.

    Args:
        images: (N, H, W), (H, W), or (N, C, H, W) (channels are averaged); any numeric dtype.
        cell_size: cell side in pixels.
        block_size: block side in cells (blocks step by one cell).
        n_bins: unsigned orientation bins over [0, 180) degrees, centred at ``b * 180 / n_bins``.
        clip: L2-Hys clipping threshold.
        eps: the small constant of the normalisation.
        chunk: images processed at once (bounds the memory of the vote array).

    Returns:
        float32 (N, :func:`hog_length`) descriptors.
    """
    x = np.asarray(images, dtype=np.float64)
    if x.ndim == 2:
        x = x[None]
    if x.ndim == 4:
        x = x.mean(axis=1)
    if x.ndim != 3:
        raise ValueError(
            f"hog_features expects (N, H, W), (H, W) or (N, C, H, W) images, got shape {x.shape}"
        )
    n, h, w = x.shape
    length = hog_length(h, w, cell_size, block_size, n_bins)
    cy, cx = h // cell_size, w // cell_size
    by, bx = cy - block_size + 1, cx - block_size + 1
    out = np.empty((n, length), dtype=np.float32)
    for s in range(0, n, chunk):
        cells = cell_histograms(x[s : s + chunk], cell_size, n_bins)  # (M, cy, cx, bins)
        m = len(cells)
        blocks = np.concatenate(
            [cells[:, i : i + by, j : j + bx] for i in range(block_size) for j in range(block_size)], axis=-1
        )  # (M, by, bx, block^2 * bins)
        v = blocks / np.sqrt((blocks**2).sum(-1, keepdims=True) + eps**2)
        v = np.minimum(v, clip)
        v = v / np.sqrt((v**2).sum(-1, keepdims=True) + eps**2)
        out[s : s + m] = v.reshape(m, -1)
    return out


def _fit_svm(xtr: np.ndarray, ytr: np.ndarray, xva: np.ndarray, yva: np.ndarray) -> tuple[Any, float, float]:
    """A LinearSVC with C chosen on the validation set; returns (model, C, fit seconds of that model)."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.svm import LinearSVC

    best = None
    for c in SVM_CS:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            t0 = time.perf_counter()
            clf = LinearSVC(C=c, max_iter=2000, random_state=0).fit(xtr, ytr)
            fit_s = time.perf_counter() - t0
        score = clf.score(xva, yva)
        if best is None or score > best[0]:
            best = (score, clf, c, fit_s)
    return best[1], best[2], best[3]


def _plot_hog(image: np.ndarray, cell_size: int, n_bins: int, path: Path) -> Path:
    """The image beside its cell histograms drawn as oriented strokes (edge direction = gradient + 90)."""
    from archlab.experiments.cnn_design import _figure, _save

    cells = cell_histograms(image[None].astype(np.float64), cell_size, n_bins)[0]  # (cy, cx, bins)
    cy, cx = cells.shape[:2]
    cells = cells / max(float(cells.max()), 1e-12)
    fig = _figure(8, 4)
    ax1, ax2 = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    ax1.imshow(image, cmap="gray")
    ax1.set(xticks=[], yticks=[], title="image")
    ax2.set_facecolor("black")
    for i in range(cy):
        for j in range(cx):
            yc, xc = (i + 0.5) * cell_size, (j + 0.5) * cell_size
            for b in range(n_bins):
                strength = cells[i, j, b]
                if strength <= 0.05:
                    continue
                edge = math.radians(b * 180.0 / n_bins + 90.0)  # strokes run across the gradient
                dx, dy = 0.5 * cell_size * math.cos(edge), 0.5 * cell_size * math.sin(edge)
                ax2.plot(
                    [xc - dx, xc + dx],
                    [yc - dy, yc + dy],
                    color="white",
                    alpha=float(min(strength, 1.0)),
                    lw=1.2,
                )
    ax2.set(
        xlim=(0, cx * cell_size),
        ylim=(cy * cell_size, 0),
        xticks=[],
        yticks=[],
        aspect="equal",
        title=f"HOG cells ({cell_size}x{cell_size} px, {n_bins} bins; brighter = more energy)",
    )
    return _save(fig, path)


@register_experiment(
    "cnn_vs_features",
    family="cnn",
    description="CNN vs HOG + linear SVM vs raw pixels + linear SVM on MNIST subsets: accuracy, fit time",
)
def cnn_vs_features(
    out_dir: Path,
    quick: bool = False,
    *,
    dataset: str | None = None,
    data_root: str | None = None,
    sizes: Sequence[int] | None = None,
    images_seen: int = 50_000,
    seed: int = 0,
) -> dict[str, Any]:
    """Run the comparison, write ``out_dir/report.html`` and return the numbers.

    Args:
        out_dir: the experiment's folder.
        quick: the 8x8 digits set, two sizes, one CNN epoch (seconds).
        dataset: ``mnist`` (full default) or ``digits`` (quick default).
        data_root: folder holding ``mnist/``.
        sizes: training-set sizes (stratified subsets of the train split).
        images_seen: the CNN trains for ``max(3, ceil(images_seen / size))`` epochs (quick: 1).
        seed: subset choice and CNN seed.

    Returns:
        ``{"report", "seconds", "rows", "hog_length", "setup", "by_method": {method: [acc per size]}}``.
    """
    from archlab.data import load_dataset
    from archlab.data.base import subsample_labels
    from archlab.experiments.cnn_design import _figure, _report, _save, make_setup, run_config

    t0 = time.perf_counter()
    out_dir = Path(out_dir)
    setup = make_setup(quick, dataset=dataset, data_root=data_root, seeds=(seed,))
    cell = 4 if setup.image_size >= 16 else 2
    # the split archlab.train makes for seed `seed`, so the SVMs see the CNN's training images
    bundle = load_dataset(setup.dataset, setup.root, val_split=setup.val_split, seed=seed)
    n_full = len(bundle.train)
    sizes = sorted(sizes or ((300, n_full) if quick else (500, 1000, 2000, 5000, 10_000)))
    sizes = [min(s, n_full) for s in sizes]

    def arrays(split: Any) -> tuple[np.ndarray, np.ndarray]:
        return split.x.numpy()[:, 0].astype(np.float32) / 255.0, split.y.numpy()

    xva, yva = arrays(bundle.val)
    xte, yte = arrays(bundle.test)
    t = time.perf_counter()
    hva, hte = hog_features(xva, cell_size=cell), hog_features(xte, cell_size=cell)
    hog_eval_s = time.perf_counter() - t
    rows, runs = [], []
    by_method: dict[str, list[float]] = {"raw pixels + linear SVM": [], "HOG + linear SVM": [], "CNN": []}
    times: dict[str, list[float]] = {k: [] for k in by_method}
    for size in sizes:
        frac = size / n_full
        sub = (
            subsample_labels(bundle.train, frac, seed) if frac < 1 else bundle.train
        )  # the images the CNN gets
        xtr, ytr = arrays(sub)
        n = len(ytr)
        clf, c, fit_s = _fit_svm(xtr.reshape(n, -1), ytr, xva.reshape(len(yva), -1), yva)
        acc = float(clf.score(xte.reshape(len(yte), -1), yte))
        by_method["raw pixels + linear SVM"].append(acc)
        times["raw pixels + linear SVM"].append(fit_s)
        rows.append(
            {
                "train images": n,
                "method": "raw pixels + linear SVM",
                "test acc": round(acc, 4),
                "C": c,
                "fit s": round(fit_s, 2),
                "feature s": 0.0,
                "note": f"{xtr[0].size} pixel features",
            }
        )
        t = time.perf_counter()
        htr = hog_features(xtr, cell_size=cell)
        feat_s = time.perf_counter() - t
        clf, c, fit_s = _fit_svm(htr, ytr, hva, yva)
        acc = float(clf.score(hte, yte))
        by_method["HOG + linear SVM"].append(acc)
        times["HOG + linear SVM"].append(fit_s + feat_s)
        rows.append(
            {
                "train images": n,
                "method": "HOG + linear SVM",
                "test acc": round(acc, 4),
                "C": c,
                "fit s": round(fit_s, 2),
                "feature s": round(feat_s, 2),
                "note": f"{htr.shape[1]} HOG features",
            }
        )
        setup.n_train = size if frac < 1 else None
        setup.epochs = 1 if quick else max(3, math.ceil(images_seen / size))
        r = run_config(
            setup,
            out_dir,
            f"cnn-n{size}",
            "simple_cnn",
            seed=seed,
            overrides={"train.eval_every": max(1, setup.epochs // 3)},
        )  # validate ~3 times
        runs.append({k: v for k, v in r.items() if k != "model"})
        by_method["CNN"].append(r["test_acc"])
        times["CNN"].append(r["train_seconds"])
        rows.append(
            {
                "train images": r["n_train"],
                "method": "CNN",
                "test acc": round(r["test_acc"], 4),
                "C": "",
                "fit s": round(r["train_seconds"], 2),
                "feature s": 0.0,
                "note": f"simple_cnn, {r['params']:,} params, {setup.epochs} epochs",
            }
        )
    fig = _figure(12, 3.8)
    ax1, ax2 = fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2)
    for i, (method, accs) in enumerate(by_method.items()):
        ax1.semilogx(sizes, accs, "o-", color=f"C{i}", label=method)
        ax2.loglog(sizes, times[method], "o-", color=f"C{i}", label=method)
    ax1.set(xlabel="training images", ylabel="test accuracy", title="Accuracy against training-set size")
    ax2.set(xlabel="training images", ylabel="seconds (HOG: extraction + fit)", title="Fit time")
    for ax in (ax1, ax2):
        ax.set_xticks(sizes, [f"{s:,}" for s in sizes])
        ax.legend(fontsize=8)
    png = _save(fig, out_dir / "cnn_vs_features.png")
    hog_png = _plot_hog(xte[0], cell, 9, out_dir / "hog_example.png")
    last = {m: v[-1] for m, v in by_method.items()}
    first = {m: v[0] for m, v in by_method.items()}
    winner_small = max(first, key=first.get)
    winner_large = max(last, key=last.get)
    cross = next(
        (s for s, c, h in zip(sizes, by_method["CNN"], by_method["HOG + linear SVM"]) if c > h), None
    )
    hog, pix = by_method["HOG + linear SVM"], by_method["raw pixels + linear SVM"]
    wins = sum(h > p for h, p in zip(hog, pix))
    pairs = ", ".join(f"{h:.3f} vs {p:.3f}" for h, p in zip(hog, pix))
    conclusions = (
        f"With {sizes[0]:,} training images the best method is {winner_small} ({first[winner_small]:.4f}); with "
        f"{sizes[-1]:,} it is {winner_large} ({last[winner_large]:.4f}). HOG + linear SVM beats raw pixels + linear "
        f"SVM at {wins} of the {len(sizes)} sizes ({pairs})"
        + (
            ": gradient orientations pooled over cells tolerate small shifts and stroke-width changes, which a linear "
            "model on pixels cannot. "
            if wins > len(sizes) / 2
            else ". "
        )
        + (
            f"The CNN beats HOG from {cross:,} images on"
            + (" (at every size)" if cross == sizes[0] else "")
            + ": it learns features like HOG's (oriented edge detectors in its first layer) and then combinations of "
            "them. "
            if cross is not None and all(c > h for s, c, h in zip(sizes, by_method["CNN"], hog) if s >= cross)
            else "The CNN does not consistently beat HOG at these sizes and training budgets. "
        )
        + "CNN minus HOG accuracy by size: "
        + ", ".join(f"{s:,}: {c - h:+.4f}" for s, c, h in zip(sizes, by_method["CNN"], hog))
        + " (differences of a few tenths of a point are within seed noise). "
        + f"Fit times at {sizes[-1]:,} images: pixels + SVM {times['raw pixels + linear SVM'][-1]:.1f} s, HOG + SVM "
        f"{times['HOG + linear SVM'][-1]:.1f} s (extraction included), CNN {times['CNN'][-1]:.1f} s "
        f"(HOG of the {len(yva) + len(yte):,} validation and test images took "
        f"{hog_eval_s:.1f} s)."
    )
    intro = (
        "Do learned features beat engineered ones, and from how much data? On stratified subsets of the training "
        f"split ({', '.join(f'{s:,}' for s in sizes)} images): a linear SVM (LinearSVC, one-vs-rest, C picked on the "
        f"validation images from {SVM_CS}) on raw pixels in [0, 1]; the same SVM on HOG descriptors (our NumPy "
        f"implementation of Dalal & Triggs: [-1, 0, 1] gradients, 9 unsigned bins, {cell}x{cell}-pixel cells, 2x2-cell "
        f"blocks with L2-Hys; {hog_length(setup.image_size, setup.image_size, cell)} features per image); and the "
        f"default `simple_cnn` (Conv3x3-BN-ReLU-MaxPool 32, 64, FC 128; Adam 1e-3) trained by `archlab.train` on the "
        f"same images for max(3, {images_seen:,} / size) epochs. Test accuracy on the {len(yte):,} test images; fit "
        "time is the training time of the final model (for HOG, plus extracting the training descriptors). "
        + setup.describe().split(";")[0]
        + "."
    )
    report = _report(
        out_dir,
        "CNN vs HOG + SVM vs pixels + SVM",
        intro,
        [("Accuracy and fit time against training-set size", png), ("HOG of a test digit", hog_png)],
        [("Runs", rows)],
        conclusions,
    )
    return {
        "report": str(report),
        "seconds": time.perf_counter() - t0,
        "rows": rows,
        "runs": runs,
        "hog_length": hog_length(setup.image_size, setup.image_size, cell),
        "sizes": sizes,
        "by_method": by_method,
        "times": times,
        "setup": {
            "dataset": setup.dataset,
            "image_size": setup.image_size,
            "quick": quick,
            "cell_size": cell,
        },
    }
