"""Figures: pairplot, posterior predictive traces, calibration, training curves (matplotlib only)."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def pairplot(samples, names, *, truth=None, path=None, title=None):
    """Corner plot: marginal histograms on the diagonal, 2-D histograms below."""
    samples = np.asarray(samples)
    d = samples.shape[1]
    fig, axes = plt.subplots(d, d, figsize=(2.4 * d, 2.4 * d), squeeze=False)
    for i in range(d):
        for j in range(d):
            ax = axes[i, j]
            if j > i:
                ax.axis("off")
                continue
            if i == j:
                ax.hist(samples[:, i], bins=50, color="C0", alpha=0.8)
                if truth is not None:
                    ax.axvline(truth[i], color="C3", lw=1.5)
                ax.set_yticks([])
            else:
                ax.hist2d(samples[:, j], samples[:, i], bins=50, cmap="Blues")
                if truth is not None:
                    ax.plot(truth[j], truth[i], "o", color="C3", ms=5)
            if i == d - 1:
                ax.set_xlabel(names[j])
            if j == 0 and i > 0:
                ax.set_ylabel(names[i])
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return _finish(fig, path)


def traces(times, observed, ppc, channel_names, *, path=None):
    """Observed traces with the posterior predictive median and 5–95 % band, one panel per channel."""
    c = observed.shape[0]
    fig, axes = plt.subplots(c, 1, figsize=(10, 2.6 * c), sharex=True, squeeze=False)
    for i in range(c):
        ax = axes[i, 0]
        ax.fill_between(times, ppc["low"][i], ppc["high"][i], color="C0", alpha=0.25, lw=0, label="predictive 5–95 %")
        ax.plot(times, observed[i], color="k", lw=0.6, label="observed")
        ax.plot(times, ppc["median"][i], color="C0", lw=0.8, label="predictive median")
        ax.set_ylabel(channel_names[i])
    axes[0, 0].legend(loc="upper right", fontsize=8)
    axes[-1, 0].set_xlabel("time")
    fig.tight_layout()
    return _finish(fig, path)


def calibration(coverage, names, *, path=None):
    """Expected coverage against credibility level; the diagonal is perfect calibration."""
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    lv = coverage["levels"]
    ax.plot([0, 1], [0, 1], "k--", lw=1)
    ax.plot(lv, coverage["joint"], "o-", color="k", label="joint (HPD)")
    for i, name in enumerate(names):
        ax.plot(lv, coverage["marginal"][i], "-", label=name)
    ax.set_xlabel("credibility level")
    ax.set_ylabel("empirical coverage")
    ax.set_title(f"expected coverage, {coverage['num_tests']} held-out simulations", fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _finish(fig, path)


def training_curve(history, *, path=None):
    fig, ax = plt.subplots(figsize=(5, 3.2))
    ax.plot(history.train_loss, label="train")
    ax.plot(history.validation_loss, label="validation")
    ax.axvline(history.best_epoch, color="k", ls=":", lw=1)
    ax.set_xlabel("epoch")
    ax.set_ylabel("negative log-likelihood")
    ax.legend()
    fig.tight_layout()
    return _finish(fig, path)


def _finish(fig, path):
    if path is not None:
        fig.savefig(path, dpi=110)
        plt.close(fig)
    return fig
