"""Figures: pairplot, posterior predictive traces, calibration, training curves, and the posterior
analysis (conditional correlations, high-probability path, perturbations), the misspecification
verdict, EPI's distribution, history and predictive statistics (matplotlib only)."""

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


def feature_deviations(deviation, names, within, *, path=None):
    """Posterior predictive features minus the observation, in units of the feature's scale, one box
    per feature (features without a scale are left out), with the ``±within`` band shaded."""
    deviation = np.asarray(deviation)
    used = [i for i in range(deviation.shape[1]) if np.isfinite(deviation[:, i]).any()]
    fig, ax = plt.subplots(figsize=(max(6, 0.45 * len(used) + 2), 3.6))
    ax.axhspan(-within, within, color="C2", alpha=0.15, lw=0, label=f"within {within:g}")
    data = [deviation[np.isfinite(deviation[:, i]), i] for i in used]
    ax.boxplot(data, showfliers=False)
    ax.axhline(0.0, color="k", lw=0.6)
    ax.set_xticks(range(1, len(used) + 1), [names[i] for i in used], rotation=60, ha="right", fontsize=8)
    ax.set_ylabel("(predicted − observed) / scale")
    valid = np.isfinite(deviation[:, used]).all(1).mean() if used else 0.0
    ax.set_title(f"posterior predictive features ({len(deviation)} draws, {valid:.0%} valid)", fontsize=10)
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    return _finish(fig, path)


def correlation_matrix(corr, names, *, path=None, title="conditional correlations"):
    d = len(names)
    fig, ax = plt.subplots(figsize=(1.0 + 0.55 * d, 0.8 + 0.5 * d))
    im = ax.imshow(corr, cmap="RdBu_r", vmin=-1, vmax=1)
    ax.set_xticks(range(d), names, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(d), names, fontsize=8)
    for i in range(d):
        for j in range(d):
            if i != j:
                ax.text(j, i, f"{corr[i, j]:.2f}", ha="center", va="center", fontsize=6)
    fig.colorbar(im, ax=ax, shrink=0.8)
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    return _finish(fig, path)


def path_activity(path_result, times, traces, channel_name, *, path=None):
    """Log density along the path and the straight line (top), simulated activity at points of the
    path (below, one row each). ``traces [k, time]`` at ``k`` points of the path."""
    k = traces.shape[0]
    fig, axes = plt.subplots(k + 1, 1, figsize=(9, 1.6 * (k + 1) + 0.6), squeeze=False)
    ax = axes[0, 0]
    s = np.linspace(0, 1, len(path_result.log_prob))
    ax.plot(s, path_result.log_prob, "o-", ms=3, label="high-probability path")
    ax.plot(s, path_result.straight_log_prob, "--", color="C3", label="straight line")
    ax.set_xlabel("position along the path")
    ax.set_ylabel("log density")
    ax.legend(fontsize=8)
    for i in range(k):
        axes[i + 1, 0].plot(times, traces[i], color=plt.cm.viridis(i / max(k - 1, 1)), lw=0.7)
        axes[i + 1, 0].set_ylabel(channel_name)
    axes[-1, 0].set_xlabel("time")
    fig.tight_layout()
    return _finish(fig, path)


def perturbations(times, traces, labels, channel_name, *, path=None):
    """Activity at a point and after moving it along given directions (one panel per direction)."""
    n = len(traces)
    fig, axes = plt.subplots(n, 1, figsize=(9, 2.0 * n), sharex=True, squeeze=False)
    for i, (group, label) in enumerate(zip(traces, labels)):
        ax = axes[i, 0]
        for j, (name, trace) in enumerate(group.items()):
            ax.plot(times, trace, lw=0.7, color=f"C{j}", label=name)
        ax.set_title(label, fontsize=9)
        ax.set_ylabel(channel_name)
        ax.legend(fontsize=7, loc="upper right")
    axes[-1, 0].set_xlabel("time")
    fig.tight_layout()
    return _finish(fig, path)


def misspecification(record: dict, *, path=None):
    """The misspecification verdict: each test's p-value against the Bonferroni threshold, and per
    feature the observation's z-score among the simulations and the probability that the model cannot
    match it (``MisspecificationReport.as_dict()``)."""
    tests, feats = record["tests"], record["features"]
    fig, axes = plt.subplots(1, 3, figsize=(14, 0.5 + 0.35 * max(len(feats), 4)),
                             gridspec_kw={"width_ratios": [1, 1.3, 1.3]})
    labels = [f"{t['name']}\n[{t['space']}]" for t in tests]
    pv = [max(t["pvalue"], 1e-4) for t in tests]
    colors = ["C3" if t["pvalue"] < record["bonferroni_threshold"] else "C0" for t in tests]
    axes[0].barh(labels, pv, color=colors)
    axes[0].axvline(record["bonferroni_threshold"], color="k", ls="--", lw=1, label="threshold")
    axes[0].set_xscale("log")
    axes[0].set_xlim(1e-4, 1)
    axes[0].set_xlabel("p-value")
    axes[0].set_title(f"verdict: {record['verdict']}")
    names = [f["name"] for f in feats][::-1]
    z = [f["zscore"] for f in feats][::-1]
    axes[1].barh(names, z, color=["C3" if abs(v) > 3 else "C0" for v in z])
    axes[1].axvline(0, color="k", lw=0.8)
    axes[1].set_xlabel("observed z-score among simulations")
    if feats and "p_misspecified" in feats[0]:
        p = [f["p_misspecified"] for f in feats][::-1]
        axes[2].barh(names, p, color=["C3" if v > record["flag_threshold"] else "C0" for v in p])
        axes[2].axvline(0.5, color="gray", ls=":", lw=1, label="prior")
        axes[2].set_xlim(0, 1)
        axes[2].set_xlabel("P(feature misspecified | observation)")
        axes[2].legend(loc="lower right")
    else:
        axes[2].axis("off")
    fig.tight_layout()
    return _finish(fig, path)


def discrimination(record: dict, *, path=None):
    """Model discrimination (``Discrimination.as_dict()``): the confusion matrix of each classifier,
    accuracy against the recording length, and accuracy per firing-rate bin on the rate-matched set."""
    names = record["models"]
    reps = list(record["confusion"])
    fig, axes = plt.subplots(1, len(reps) + 2, figsize=(4.2 * (len(reps) + 2), 4))
    for ax, rep in zip(axes, reps):
        m = np.asarray(record["confusion"][rep])
        ax.imshow(m, vmin=0, vmax=1, cmap="Blues")
        for i in range(len(names)):
            for j in range(len(names)):
                ax.text(j, i, f"{m[i, j]:.2f}", ha="center", va="center", fontsize=7,
                        color="white" if m[i, j] > 0.5 else "black")
        ax.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=8)
        ax.set_yticks(range(len(names)), names, fontsize=8)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        ax.set_title(f"{rep}: accuracy {record['accuracy'][rep]:.3f}", fontsize=9)
    lengths = {float(k): v for k, v in record["accuracy_by_length_ms"].items()}
    ax = axes[len(reps)]
    ax.plot(list(lengths), list(lengths.values()), "o-")
    ax.axhline(record["chance"], color="gray", ls=":", label="chance")
    ax.set_xscale("log")
    ax.set_xticks(list(lengths), [f"{length:g}" for length in lengths])
    ax.minorticks_off()
    ax.set_xlabel("recording length after onset (ms)")
    ax.set_ylabel("held-out accuracy (features)")
    ax.set_ylim(0, 1)
    ax.legend()
    ax = axes[-1]
    edges = np.asarray(record["rate_bins_hz"])
    acc = np.asarray([np.nan if a is None else a for a in record["accuracy_by_rate"]], float)
    ax.bar(np.arange(len(acc)), np.nan_to_num(acc), color="C0")
    ax.set_xticks(np.arange(len(acc)), [f"{a:g}-{b:g}" for a, b in zip(edges[:-1], edges[1:])], fontsize=8)
    ax.axhline(record["chance"], color="gray", ls=":")
    ax.set_xlabel("firing rate during the step (Hz)")
    ax.set_ylabel("accuracy, rate-matched")
    ax.set_ylim(0, 1)
    ax.set_title(f"rate-matched: {record['matched_accuracy']:.3f} (n = {record['matched_count']})", fontsize=9)
    fig.tight_layout()
    return _finish(fig, path)


def robustness(record: dict, *, path=None):
    """Robustness sweep (``misspecification.robustness_study``): per perturbation (columns), the posterior
    RMSE and bias (prior sds), the coverage of the 90 % region and the detection rate against strength."""
    kinds = list(record["points"])
    names = record.get("param_names") or list(record["points"][kinds[0]][0]["bias"])
    alpha = record["settings"]["alpha"]
    fig, axes = plt.subplots(3, len(kinds), figsize=(2.9 * len(kinds), 7.5), squeeze=False, sharey="row")
    for col, kind in enumerate(kinds):
        pts = record["points"][kind]
        s = np.asarray([p["strength"] for p in pts])
        ax = axes[0, col]
        ax.plot(s, [p["rmse"] for p in pts], "k.-", label="RMSE")
        for j, n in enumerate(names):
            ax.plot(s, [p["bias"][n] for p in pts], ".--", color=f"C{j}", lw=1, label=f"bias {n}")
        ax.axhline(0, color="gray", lw=0.5)
        ax.set_title(kind)
        ax = axes[1, col]
        ax.plot(s, [p["coverage"] for p in pts], "o-", color="C2")
        level = pts[0].get("coverage_level", 0.9)
        ax.axhline(level, color="gray", ls=":")
        ax.set_ylim(0, 1.02)
        ax = axes[2, col]
        ax.plot(s, [p["detection_rate"] for p in pts], "o-", color="C3", label="verdict")
        for t in pts[0].get("rejection_rate", {}):
            ax.plot(s, [p["rejection_rate"].get(t, np.nan) for p in pts], ".:", lw=1, label=t)
        ax.axhline(alpha, color="gray", ls=":")
        ax.set_ylim(0, 1.02)
        ax.set_xlabel("strength")
    axes[0, 0].set_ylabel("posterior mean error\n(prior sd)")
    axes[1, 0].set_ylabel("coverage of the\n90 % region")
    axes[2, 0].set_ylabel("detection rate")
    axes[0, -1].legend(fontsize=7)
    axes[2, -1].legend(fontsize=7)
    fig.tight_layout()
    return _finish(fig, path)


def cross_scale(record: dict, times, traces: dict, samples: dict, *, path=None, t_on: float):
    """Cross-scale study (``misspecification.cross_scale_study``): rate and potential of the network and
    the mean field, the stimulus onset up close, the η–J posterior on both data, the correlations of
    every pair against the published ρ(η, J), and the network observation's feature z-scores."""
    fig = plt.figure(figsize=(15, 8))
    grid = fig.add_gridspec(2, 3)
    ax_r, ax_v = fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[1, 0])
    for j, (label, tr) in enumerate(traces.items()):
        kw = {"lw": 0.4 if j == 0 else 0.8, "color": "0.5" if j == 0 else f"C{j - 1}", "label": label}
        ax_r.plot(times, tr[1], **kw)
        ax_v.plot(times, tr[0], **kw)
    ax_r.set_ylabel("rate r")
    ax_v.set_ylabel("mean potential v")
    ax_v.set_xlabel("time (s)")
    ax_r.legend(fontsize=7)
    ax = fig.add_subplot(grid[0, 1])
    lag = record["lag"]
    last = np.nanmax([lag["first_peak_network_s"], lag["first_peak_mean_field_s"], t_on + 1.0])
    near = (times >= t_on - 0.3) & (times <= last + 0.5)
    for j, (label, tr) in enumerate(traces.items()):
        ax.plot(times[near], tr[1, near], lw=1.0, color="0.5" if j == 0 else f"C{j - 1}", label=label)
    for t, c in ((lag["first_peak_network_s"], "0.5"), (lag["first_peak_mean_field_s"], "C0")):
        if np.isfinite(t):
            ax.axvline(t, color=c, ls=":", lw=1)
    ax.axvline(t_on, color="k", lw=0.5)
    ax.set_title(f"onset: MF first peak {1e3 * lag['onset_lag_s']:+.0f} ms after the network's", fontsize=9)
    ax.set_xlabel("time (s)")
    ax = fig.add_subplot(grid[1, 1])
    for j, (name, draws) in enumerate(samples.items()):
        rho = record["data"][name]["rho_eta_J"]
        ax.scatter(draws[:2000, 1], draws[:2000, 2], s=2, alpha=0.3, color=f"C{j}", label=f"{name}: ρ = {rho:.2f}")
    ax.plot(record["truth"]["eta"], record["truth"]["J"], "k*", ms=10)
    ax.set_xlabel("η")
    ax.set_ylabel("J")
    ax.legend(fontsize=7, markerscale=4)
    ax = fig.add_subplot(grid[0, 2])
    pairs = list(next(iter(record["data"].values()))["correlations"])
    width = 0.8 / len(record["data"])
    for j, (name, d) in enumerate(record["data"].items()):
        ax.bar(np.arange(len(pairs)) + j * width, [d["correlations"][p] for p in pairs], width, label=name)
    ax.axhline(record["published_rho_eta_J"], color="k", ls=":", lw=1, label="published ρ(η, J)")
    ax.set_xticks(np.arange(len(pairs)) + width / 2, pairs, rotation=45, ha="right", fontsize=8)
    ax.set_ylabel("posterior correlation")
    ax.legend(fontsize=7)
    ax = fig.add_subplot(grid[1, 2])
    table = record["data"]["qif_network"]["misspecification"]
    z = [f["zscore"] for f in table["features"]]
    flagged = set(table["flagged"])
    ax.bar(range(len(z)), z, color=["C3" if f["name"] in flagged else "C0" for f in table["features"]])
    ax.set_xticks(range(len(z)), [f["name"] for f in table["features"]], rotation=90, fontsize=6)
    ax.set_ylabel("z-score of the network's feature")
    ax.set_title(f"network data: {table['verdict']} (p = {table['pvalue']:.2g}); red: flagged", fontsize=9)
    fig.tight_layout()
    return _finish(fig, path)


def prior_transfer(record: dict, prior_draws: dict, *, path=None, box=None):
    """Prior transfer (``misspecification.prior_transfer_study``): the population and the learned prior on
    η–J and Δ–η, and per prior (box, naive, learned) the RMSE, posterior sd, 90 % coverage and predictive error.
    ``prior_draws`` holds the naive and the learned prior's draws, in that order (coloured as their bars)."""
    names = record["shared_parameters"]
    fig, axes = plt.subplots(1, 4, figsize=(17, 4))
    for ax, (a, b) in zip(axes[:2], ((1, 2), (0, 1))):
        for j, (label, d) in enumerate(prior_draws.items()):
            ax.scatter(d[:, a], d[:, b], s=2, alpha=0.3, color=f"C{j + 1}", label=label)  # the bars' colours
        c = record["truth_centre"]
        ax.plot(c[names[a]], c[names[b]], "k*", ms=10)
        if box is not None:
            ax.set_xlim(box[0][a], box[1][a])
            ax.set_ylim(box[0][b], box[1][b])
        ax.set_xlabel(names[a])
        ax.set_ylabel(names[b])
    axes[0].legend(fontsize=7, markerscale=4)
    axes[0].set_title("priors of the simplified model (box = axes)", fontsize=9)
    priors = list(record["priors"])
    metrics = [("rmse", "RMSE (prior sd)"), ("posterior_sd", "posterior sd (prior sd)"),
               ("predictive_error", "predictive error (feature sd)")]
    ax = axes[2]
    width = 0.8 / len(priors)
    for j, p in enumerate(priors):
        ax.bar(np.arange(len(metrics)) + j * width, [record["priors"][p][m] for m, _ in metrics], width, label=p)
    ax.set_xticks(np.arange(len(metrics)) + width, [label for _, label in metrics], fontsize=8, rotation=15)
    ax.legend(fontsize=8)
    ax = axes[3]
    ax.bar(priors, [record["priors"][p]["coverage_90"] for p in priors], color=[f"C{j}" for j in range(len(priors))])
    ax.axhline(0.9, color="gray", ls=":")
    ax.set_ylim(0, 1)
    ax.set_ylabel("coverage of the 90 % intervals")
    fig.tight_layout()
    return _finish(fig, path)


def epi_pairplot(samples, names, *, mode=None, vectors=None, values=None, path=None, title=None, max_params=6):
    """EPI samples as a corner plot (the first ``max_params`` parameters), the mode as a dot, and the
    most sensitive (red) and most robust (blue) Hessian eigenvectors at the mode as arrows."""
    samples = np.asarray(samples)[:, :max_params]
    names = list(names)[:max_params]
    fig = pairplot(samples, names, truth=mode[:max_params] if mode is not None else None, title=title)
    if mode is not None and vectors is not None:
        axes = np.array(fig.axes).reshape(len(names), len(names))
        span = samples.max(0) - samples.min(0)
        for i in range(len(names)):
            for j in range(i):
                ax = axes[i, j]
                for col, colour in ((0, "C3"), (-1, "C0")):  # most sensitive, most robust
                    v = vectors[:, col]
                    dx, dy = 0.3 * span[j] * v[j], 0.3 * span[i] * v[i]
                    ax.annotate("", xy=(mode[j] + dx, mode[i] + dy), xytext=(mode[j], mode[i]),
                                arrowprops={"arrowstyle": "->", "color": colour, "lw": 1.5})
        if values is not None:
            fig.text(0.98, 0.98, f"Hessian eigenvalues at the mode: sensitive {values[0]:.3g} (red), "
                     f"robust {values[-1]:.3g} (blue)", ha="right", va="top", fontsize=9)
    return _finish(fig, path)


def epi_history(history: dict, constraint_names, targets, *, path=None):
    """EPI's optimisation: entropy, each constraint's mean against its target, c and the test's p-values."""
    epochs = np.asarray(history["epoch"])
    means = np.asarray(history["constraint_means"])
    m = means.shape[1]
    fig, axes = plt.subplots(1, 4, figsize=(15, 3.2))
    axes[0].plot(epochs, history["entropy"], "o-")
    axes[0].set(xlabel="epoch", ylabel="entropy H(q) (nats)")
    for i in range(m):
        axes[1].plot(epochs, means[:, i] - targets[i], "o-", label=constraint_names[i])
    axes[1].axhline(0, color="k", lw=0.8)
    axes[1].set(xlabel="epoch", ylabel="E[T] − target", yscale="symlog")
    axes[1].legend(fontsize=7)
    axes[2].plot(epochs, history["c"], "o-")
    axes[2].set(xlabel="epoch", ylabel="penalty c", yscale="log")
    p = np.asarray(history["p_values"])
    for i in range(m):
        axes[3].plot(epochs, np.maximum(p[:, i], 1e-3), "o-", label=constraint_names[i])
    axes[3].axhline(0.05 / m, color="k", ls="--", lw=0.8, label="α / m")
    conv = np.asarray(history["converged"], bool)
    axes[3].scatter(epochs[conv], np.ones(conv.sum()), marker="*", c="C2", s=60, label="converged", zorder=3)
    axes[3].set(xlabel="epoch", ylabel="convergence-test p", yscale="log", ylim=(5e-4, 2))
    axes[3].legend(fontsize=7)
    fig.tight_layout()
    return _finish(fig, path)


def epi_predictive(stats, names, mean, variance, *, path=None):
    """Histograms of the emergent-property statistics under q, with the target mean and ±1 sd."""
    stats = np.asarray(stats)
    k = stats.shape[1]
    fig, axes = plt.subplots(1, k, figsize=(3.8 * k, 3.0), squeeze=False)
    for i in range(k):
        ax = axes[0, i]
        ax.hist(stats[:, i], bins=60, color="C0", alpha=0.8, density=True)
        sd = np.sqrt(variance[i])
        ax.axvline(mean[i], color="C3", lw=1.5, label="target mean")
        ax.axvspan(mean[i] - sd, mean[i] + sd, color="C3", alpha=0.12, label="target ± sd")
        ax.set(xlabel=names[i], yticks=[])
    axes[0, 0].legend(fontsize=8)
    fig.tight_layout()
    return _finish(fig, path)


def lds_contours(a, re, im, mean, sd, *, path=None):
    """2-D LDS EPI samples ``a = [a11, a12, a21, a22]`` (their Re and Im λ₁ given) against the analytic
    contours of λ₁: (a11, a22) coloured by Re λ₁ with the lines (a11 + a22)/2 = target ± sd, and (a12, a21)
    coloured by Im λ₁ with the hyperbolas √(−a12 a21) = target ± sd (the contours at a11 = a22)."""
    a = np.asarray(a)
    fig, axes = plt.subplots(1, 3, figsize=(13.5, 4.2))
    ax = axes[0]
    sc = ax.scatter(a[:, 0], a[:, 3], c=re, s=3, cmap="coolwarm", vmin=mean[0] - 3 * sd[0], vmax=mean[0] + 3 * sd[0])
    fig.colorbar(sc, ax=ax, label="Re λ₁")
    line = np.linspace(-10, 10, 2)
    for r, style in ((mean[0], "-"), (mean[0] - sd[0], "--"), (mean[0] + sd[0], "--")):
        ax.plot(line, 2 * r - line, "k", ls=style, lw=1)
    ax.set(xlabel="a11", ylabel="a22", xlim=(-10, 10), ylim=(-10, 10), title="Re λ₁ = (a11 + a22)/2: target ± sd")
    ax = axes[1]
    sc = ax.scatter(a[:, 1], a[:, 2], c=im, s=3, cmap="viridis", vmin=mean[1] - 3 * sd[1], vmax=mean[1] + 3 * sd[1])
    fig.colorbar(sc, ax=ax, label="Im λ₁")
    for w, style in ((mean[1], "-"), (mean[1] - sd[1], "--"), (mean[1] + sd[1], "--")):
        for sign in (1, -1):
            x = sign * np.geomspace(w**2 / 10, 10, 200)
            ax.plot(x, -(w**2) / x, "k", ls=style, lw=1)
    ax.set(xlabel="a12", ylabel="a21", xlim=(-10, 10), ylim=(-10, 10),
           title="Im λ₁ = √(−a12 a21) at a11 = a22: target ± sd")
    ax = axes[2]
    ax.hist(re, bins=60, density=True, alpha=0.6, label="Re λ₁")
    ax.hist(im, bins=60, density=True, alpha=0.6, label="Im λ₁")
    for m_, s_ in zip(mean, sd):
        xs = np.linspace(m_ - 4 * s_, m_ + 4 * s_, 200)
        ax.plot(xs, np.exp(-0.5 * ((xs - m_) / s_) ** 2) / (s_ * np.sqrt(2 * np.pi)), "k", lw=1)
    ax.set(xlabel="λ₁ (1/s)", yticks=[], title="statistics of the samples; black: N(target, sd²)")
    ax.legend(fontsize=8)
    fig.tight_layout()
    return _finish(fig, path)


def v1_variability(panels: dict, *, path=None):
    """V1 EPI samples per property ``{name: (z, s_E, modes along σ_P)}``: (σ_E, σ_P) with the conditional
    modes (stars) and the circle σ_E² + σ_P² = its mean, s_E against σ_E² + σ_P², and
    the σ_S and σ_V marginals against the uniform density a property that ignores them leaves."""
    fig, axes = plt.subplots(1, 3, figsize=(13.5, 4.2))
    theta = np.linspace(0, np.pi / 2, 100)
    for k, (name, (z, stats, modes)) in enumerate(panels.items()):
        z = np.asarray(z)
        axes[0].scatter(z[:, 0], z[:, 1], s=3, c=f"C{k}", alpha=0.4, label=name)
        axes[0].plot(modes[:, 0], modes[:, 1], "*", color=f"C{k}", mec="k", ms=10)
        radius = np.sqrt(np.mean(z[:, 0] ** 2 + z[:, 1] ** 2))
        axes[0].plot(radius * np.cos(theta), radius * np.sin(theta), color=f"C{k}", lw=2)
        axes[1].scatter(z[:, 0] ** 2 + z[:, 1] ** 2, stats, s=3, c=f"C{k}", alpha=0.4, label=name)
        for j, ls in ((2, "-"), (3, "--")):
            axes[2].hist(z[:, j], bins=25, range=(0, 0.5), density=True, histtype="step", color=f"C{k}", ls=ls,
                         lw=1.5, label=f"{name}: σ_{'SV'[j - 2]}")
    axes[0].set(xlabel="σ_E", ylabel="σ_P", xlim=(0, 0.5), ylim=(0, 0.5), aspect="equal",
                title="samples, modes z*(σ_P); lines: σ_E² + σ_P² = mean")
    axes[0].legend(fontsize=8, markerscale=4)
    axes[1].set(xlabel="σ_E² + σ_P²", ylabel="s_E (Hz), trial mean", title="E variability against σ_E² + σ_P²")
    axes[2].axhline(2.0, color="k", lw=1, label="uniform on [0, 0.5]")
    axes[2].set(xlabel="σ", ylabel="density", title="σ_S (solid), σ_V (dashed)")
    axes[2].legend(fontsize=7)
    fig.tight_layout()
    return _finish(fig, path)


def stg_sensitivity(samples, g_el, g_syn, omega, mode, directions, values, target, sd, *, path=None):
    """STG: the mean hub-frequency map with the target ± sd contours, EPI samples, the mode, and the
    sensitive (v1, solid) and robust (v2, dashed) directions, arrow length ∝ 1/√|eigenvalue|."""
    fig, ax = plt.subplots(figsize=(6.4, 5.2))
    mesh = ax.pcolormesh(g_el, g_syn, np.asarray(omega).T, cmap="viridis", shading="auto")
    fig.colorbar(mesh, ax=ax, label="mean hub frequency (Hz)")
    ax.contour(g_el, g_syn, np.asarray(omega).T, levels=[target - sd, target + sd], colors="w", linewidths=1)
    ax.scatter(samples[:, 0], samples[:, 1], s=2, c="k", alpha=0.25)
    ax.plot(*mode, marker="*", ms=14, color="gold", mec="k")
    for v, lam, ls in zip(directions, values[:2], ("-", "--")):
        length = 0.6 / np.sqrt(abs(lam)) * np.sqrt(abs(values[0]))
        ax.annotate("", xy=(mode[0] + length * v[0], mode[1] + length * v[1]), xytext=tuple(mode),
                    arrowprops={"arrowstyle": "->", "color": "C3", "lw": 2, "ls": ls})
    ax.set(xlabel="g_el (nS)", ylabel="g_synA (nS)",
           title=f"hub {target} Hz: Hessian eigenvalues {values[0]:.3g} (v1), {values[1]:.3g} (v2)")
    fig.tight_layout()
    return _finish(fig, path)


def sc_regimes(samples, rows, steps, *, path=None):
    """SC: the sW–hW marginal with the conditional modes z*(sW) and their sensitivity dimensions, and the
    Anti accuracy along v1 and along the task eigenmode from each mode (colour: sW)."""
    samples = np.asarray(samples)
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.2))
    colours = plt.cm.coolwarm(np.linspace(1, 0, len(rows)))
    ax = axes[0]
    ax.scatter(samples[:, 0], samples[:, 3], s=2, c="0.6", alpha=0.3)
    for r, col in zip(rows, colours):
        z, v = np.asarray(r["mode"]), np.asarray(r["sensitive_direction_v1"])
        ax.plot(z[0], z[3], "o", color=col, mec="k")
        ax.annotate("", xy=(z[0] + 0.5 * v[0], z[3] + 0.5 * v[3]), xytext=(z[0], z[3]),
                    arrowprops={"arrowstyle": "->", "color": col, "lw": 1.5})
    ax.set(xlabel="sW", ylabel="hW", title="samples, modes z*(sW), sensitivity dimensions v1")
    for ax, key, label in ((axes[1], "along_v1", "v1"), (axes[2], "along_task", "v_task")):
        for r, col in zip(rows, colours):
            prof = np.asarray(r[key])
            ax.plot(steps, prof[:, 1], "-", color=col, label=f"sW = {r['sW']:g}")
            ax.plot(steps, prof[:, 0], ":", color=col)
        ax.set(xlabel=f"step along {label}", ylabel="accuracy (solid: Anti, dotted: Pro)", ylim=(0, 1))
    axes[1].legend(fontsize=6, ncol=2)
    fig.tight_layout()
    return _finish(fig, path)


def ssm_application(name, t, y, predictions: dict, trajectories, ssm, record: dict, *, state_names=None, path=None):
    """Full-model trajectories projected on the first two state coordinates with the SSM; one held-out
    trajectory against the reduced models' predictions; NMTE per held-out trajectory."""
    fig, ax = plt.subplots(1, 3, figsize=(14, 4))
    for traj in trajectories:
        ax[0].plot(traj[:, 0], traj[:, 1], color="0.7", lw=0.8)
    charts = np.concatenate([ssm.chart(traj) for traj in trajectories])
    if ssm.dim == 1:
        eta = np.linspace(charts.min(), charts.max(), 200)[:, None]
        curve = ssm.parametrization(eta)
        ax[0].plot(curve[:, 0], curve[:, 1], "C3", lw=2, label="SSM (equations)")
    else:
        lo, hi = charts.min(0), charts.max(0)
        for v in np.linspace(lo[0], hi[0], 7):
            grid = np.zeros((100, ssm.dim))
            grid[:, 0], grid[:, 1] = v, np.linspace(lo[1], hi[1], 100)
            line = ssm.parametrization(grid)
            ax[0].plot(line[:, 0], line[:, 1], "C3", lw=0.8)
        ax[0].plot([], [], "C3", label="SSM grid (equations)")
    ax[0].plot(*ssm.fixed_point[:2], "k*", ms=10)
    names = state_names or [f"state {i}" for i in range(ssm.fixed_point.size)]
    ax[0].set(xlabel=names[0], ylabel=names[1], title=f"{name}: trajectories and the {ssm.dim}-D SSM")
    ax[0].legend(fontsize=7)
    ax[1].plot(t, y[:, 0], "k", lw=1.5, label="full model")
    for (label, pred), style in zip(predictions.items(), ("C0--", "C1:", "C2-.")):
        ax[1].plot(t, pred[:, 0], style, lw=1.5, label=label)
    ax[1].set(xlabel="time", ylabel=names[0], title="held-out trajectory")
    ax[1].legend(fontsize=7)
    bars = {f"equations (order {record['equation']['order']})": record["equation"]["test_nmte"]}
    bars.update({k.replace("_", " "): record[k]["test_nmte"] for k in ("data_svd_tangent", "data_joint_tangent")
                 if k in record})
    width = 0.8 / len(bars)
    for i, (label, values) in enumerate(bars.items()):
        values = np.minimum(np.asarray(values, float), 1.0) * 100  # a failed prediction (inf) drawn at 100 %
        ax[2].bar(np.arange(len(values)) + (i - (len(bars) - 1) / 2) * width, values, width, label=label)
    ax[2].set(xlabel="held-out trajectory", ylabel="NMTE (%)", title="prediction error")
    ax[2].legend(fontsize=7)
    return _finish(fig, path)


def neural_ode_phase(rr, vv, true, learned, data, record: dict, *, path=None):
    """Phase portraits (r, v) of the true and the learned MPR field with their nullclines (ṙ = 0 blue,
    v̇ = 0 red; the true ones dashed on the learned panel), fixed points, and the loss curves."""
    fig, ax = plt.subplots(1, 3, figsize=(15, 4.5))
    for a, field, title in ((ax[0], true, "true MPR field and training data"),
                            (ax[1], learned, "learned neural ODE")):
        a.streamplot(vv, rr, field[..., 1], field[..., 0], color="0.75", density=1.0, linewidth=0.6)
        a.contour(vv, rr, field[..., 0], [0], colors="C0")
        a.contour(vv, rr, field[..., 1], [0], colors="C3")
        a.set(xlabel="v", ylabel="r", title=title, xlim=(vv.min(), vv.max()), ylim=(rr.min(), rr.max()))
    for traj in data[:: max(len(data) // 25, 1)]:
        ax[0].plot(traj[:, 1], traj[:, 0], "k", lw=0.4, alpha=0.5)
    ax[1].contour(vv, rr, true[..., 0], [0], colors="C0", linestyles="--", linewidths=0.8)
    ax[1].contour(vv, rr, true[..., 1], [0], colors="C3", linestyles="--", linewidths=0.8)
    for a, key, marker in ((ax[0], "true_fixed_points", "k*"), (ax[1], "learned_fixed_points", "k*")):
        for r, v in record[key]:
            a.plot(v, r, marker, ms=10)
    err = record["field_error"]
    ax[1].set_title(f"learned ({record['data']}): field error {err['relative_rms']:.1%}, "
                    f"median angle {err['median_angle_degrees']:.1f}°", fontsize=9)
    hist = record["history"]
    ax[2].semilogy(hist["iteration"], hist["train_loss"], label="train")
    ax[2].semilogy(hist["iteration"], hist["test_loss"], label="test (held-out trajectories)")
    ax[2].set(xlabel="iteration", ylabel="segment MSE", title="training")
    ax[2].legend(fontsize=8)
    return _finish(fig, path)


def neural_ode_extrapolation(t, data, pred, train_points: int, record: dict, *, path=None):
    """QIF-network (r, v) against the neural ODE's rollout, the training window shaded."""
    fig, ax = plt.subplots(2, 1, figsize=(10, 5), sharex=True)
    for a, i, name in ((ax[0], 0, "r"), (ax[1], 1, "v")):
        a.plot(t, data[:, i], "k", lw=0.8, label="QIF network")
        a.plot(t, pred[:, i], "C1--", lw=1.2, label="neural ODE")
        a.axvspan(t[0], t[train_points - 1], color="C0", alpha=0.1, label="training window")
        a.set_ylabel(name)
    ax[0].legend(fontsize=8)
    ax[1].set_xlabel("time")
    ax[0].set_title(f"train on {train_points} points, predict {len(t)}: extrapolation RMSE "
                    f"{record['rmse_extrapolation']:.3f}, NMTE {record['nmte_extrapolation']:.1%}")
    return _finish(fig, path)


def mpr_table_figure(samples, channels, paths: dict, strides: dict, posteriors: dict, estimates: dict, table: dict,
                     truth, names, path=None):
    """Seed 003 Figs. 1, 2, 4 in one: the observed phase plane with each method's fit, the posteriors
    of the Bayesian methods against the truth, and the time-series / parameter RMSE and cost bars."""
    methods = list(paths)
    colors = dict(zip(methods, plt.cm.tab10(np.arange(len(methods)))))
    fig = plt.figure(figsize=(15, 8.5))
    grid = fig.add_gridspec(2, 4)
    ax = fig.add_subplot(grid[0, :2])
    ax.plot(samples[1], samples[0], color="0.6", lw=2.5, label="true" + ("" if 1 in channels else " (r hidden)"))
    for m in methods:
        p = paths[m]
        ax.plot(p[1], p[0], color=colors[m], lw=0.9, label=m.upper())
    ax.set(xlabel="r", ylabel="v", title=f"phase plane: {table['case']} data and each method's fit")
    ax.legend(fontsize=8, ncol=2)
    ax = fig.add_subplot(grid[0, 2:])
    t = np.arange(samples.shape[1]) * 0.01
    ax.plot(t, samples[1], color="0.6", lw=2.0, label="true r")
    for m in methods:
        stride = strides[m]
        ax.plot(t[::stride][: paths[m].shape[1]], paths[m][1], color=colors[m], lw=0.8, label=m.upper())
    ax.set(xlabel="time (s)", ylabel="r", title="firing rate")
    for j, name in enumerate(names):
        ax = fig.add_subplot(grid[1, j])
        for m, draws in posteriors.items():
            ax.hist(draws[:, j], bins=40, density=True, histtype="step", color=colors[m], label=m.upper())
        for m in methods:
            if m not in posteriors:
                ax.axvline(estimates[m][j], color=colors[m], lw=0.8, ls=":")
        ax.axvline(truth[j], color="k", ls="--", lw=1, label="truth")
        ax.set(xlabel=name, yticks=[])
        if j == 0:
            ax.legend(fontsize=7)
    ax = fig.add_subplot(grid[1, 3])
    rows = table["methods"]
    x = np.arange(len(methods))
    ax.bar(x - 0.2, [rows[m]["param_rmse"]["mean"] for m in methods], 0.4, yerr=[rows[m]["param_rmse"]["std"] for m in methods],
           color=[colors[m] for m in methods], label="param RMSE")
    ax.bar(x + 0.2, [rows[m]["seconds"]["mean"] for m in methods], 0.4, color="none",
           edgecolor=[colors[m] for m in methods], hatch="//", label="seconds")
    ax.set(xticks=x, xticklabels=[m.upper() for m in methods], yscale="log", title="param RMSE (filled), time s (hatched)")
    return _finish(fig, path)


def identifiability(profiles: dict, slices: dict, hessian, names, truth, estimate, *, path=None, title=""):
    """Seed 003 Fig. S3: each parameter's profile (others re-optimized) and slice (others fixed) of the
    objective around the estimate, and the Hessian's eigenvalues there."""
    fig, axes = plt.subplots(1, len(names) + 1, figsize=(4 * (len(names) + 1), 3.4))
    for j, name in enumerate(names):
        ax = axes[j]
        ax.plot(slices[name]["grid"], slices[name]["values"], color="0.5", label="slice (others fixed)")
        ax.plot(profiles[name]["grid"], profiles[name]["values"], color="k", label="profile (others optimized)")
        ax.axvline(truth[j], color="tab:red", ls="--", lw=1, label="truth")
        ax.axvline(estimate[j], color="tab:blue", ls=":", lw=1, label="estimate")
        ax.set(xlabel=name, ylabel="objective" if j == 0 else None, yscale="symlog", ylim=(0, None))
        if j == 0:
            ax.legend(fontsize=7)
    eig = np.linalg.eigvalsh(np.asarray(hessian))
    axes[-1].bar(np.arange(eig.size), np.abs(eig), color=["tab:green" if e > 0 else "tab:red" for e in eig])
    axes[-1].set(yscale="log", xlabel="eigenvalue index", title="|eigenvalues| of the Hessian (sum of squares)")
    fig.suptitle(title)
    return _finish(fig, path)


def delay_reconstruction(times, observed, hidden, reconstruction, *, path=None, title=""):
    """The observed signal, and the hidden one against its delay-embedding reconstruction, with a zoom."""
    fig, axes = plt.subplots(3, 1, figsize=(11, 7))
    axes[0].plot(times, observed, color="k", lw=0.5)
    axes[0].set(ylabel="observed v")
    for ax in axes[1:]:
        ax.plot(times, hidden, color="0.55", lw=1.6, label="true r (hidden)")
        ax.plot(times, reconstruction, color="tab:blue", lw=0.7, label="reconstruction")
        ax.set(ylabel="r")
    axes[1].legend(fontsize=8, loc="upper right")
    middle = times[len(times) // 2]
    axes[2].set(xlim=(middle - 10, middle + 10), xlabel="time (s)", title="zoom: 20 s around the middle")
    axes[0].set_title(title)
    fig.tight_layout()
    return _finish(fig, path)


def mpr_regimes(eta_grid, j_grid, diagram, regime_names, draws: dict, observations: dict, paths: dict, record: dict,
                *, path=None):
    """Seed 003 Fig. 8: the linear-stability phase diagram over (η/Δ, J/√Δ) with each observation's
    posterior draws, and each observation's v trace against the trace at its posterior median."""
    from matplotlib.colors import ListedColormap

    colors = {"node": "#9ecae1", "focus": "#fcbba1", "bistable": "#a1d99b", "other": "0.8"}
    fig = plt.figure(figsize=(14, 8))
    grid = fig.add_gridspec(len(draws), 2, width_ratios=(1.1, 1))
    ax = fig.add_subplot(grid[:, 0])
    cmap = ListedColormap([colors[n] for n in regime_names])
    ax.pcolormesh(eta_grid, j_grid, diagram, cmap=cmap, vmin=-0.5, vmax=len(regime_names) - 0.5, shading="auto")
    marks = dict(zip(draws, ("tab:orange", "tab:red", "tab:blue")))
    for name, samples in draws.items():
        share = record["observations"][name]["posterior_share_in_regime"]
        ax.scatter(samples[:, 1] / samples[:, 0], samples[:, 2] / np.sqrt(samples[:, 0]), s=2, alpha=0.3,
                   color=marks[name], label=f"posterior, {name} observation: {share:.0%} in its regime")
        d, eta, J = observations[name]
        ax.plot(eta / d, J / np.sqrt(d), "*", color="k", ms=14)
    for n in regime_names[:3]:
        ax.fill_between([], [], color=colors[n], label=f"{n} (linear stability)")
    ax.set(xlim=(eta_grid[0], eta_grid[-1]), ylim=(j_grid[0], j_grid[-1]), xlabel="η / Δ", ylabel="J / √Δ",
           title="posterior draws (NPE on regime features) over the phase diagram; ★ observations")
    ax.legend(fontsize=8, loc="upper left", markerscale=4)
    t = np.arange(paths["observed"].shape[-1]) * 0.01
    for i, name in enumerate(draws):
        ax = fig.add_subplot(grid[i, 1])
        ax.plot(t, paths["observed"][i, 0], color="navy", lw=1.0, label="observed")
        ax.plot(t, paths["predicted"][i, 0], color="tab:cyan", lw=0.8, ls="--", label="at the posterior median")
        ax.axvspan(30, 60, color="0.9", zorder=0)
        ax.set(ylabel="v", title=f"{name}", xlabel="time (s)" if i == len(draws) - 1 else None)
        if i == 0:
            ax.legend(fontsize=8)
    fig.tight_layout()
    return _finish(fig, path)


def _finish(fig, path):
    if path is not None:
        fig.savefig(path, dpi=110)
        plt.close(fig)
    return fig
