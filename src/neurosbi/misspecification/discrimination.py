"""Q1 of seed 000: which model made this recording? A classifier over simulated recordings.

Each candidate model simulates recordings with parameters from its own prior under the shared protocol
(``models.neurons``: the same step current, 1 ms spike counts); a classifier learns p(model | recording).
With balanced classes and the priors' parameters, its softmax output is the posterior probability of
each model given the recording (equal prior model probabilities), amortized over recordings.

Two representations:

- ``"features"``: the spike-train features shared by all models (``features.SpikeSummary``), an MLP;
- ``"spikes"``: the spike trains themselves, binned at ``bin_ms``, through the 1-D CNN embedding of
  ``inference.embedding`` (the net's output is the logits): no hand-made summary.

``discriminate`` reports held-out accuracy and the confusion matrix for both, and two dependences the
seed asks for: accuracy against the recording length (features read over the first L ms of the
stimulus, one classifier per L) and against the firing rate, on a test set matched in rate (within
each rate bin, as many recordings of each model), so that rate alone cannot tell the models apart.

Training is ``inference.npe.train_flow`` (the one training loop: compiled epochs, early stopping on a
validation split) with a cross-entropy loss.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from .._errors import ShapeError
from ..features._spikes import SPIKE_FEATURES, SpikeSummary
from ..inference.embedding import trace_cnn
from ..inference.npe import NPEConfig, train_flow
from ..models._base import Model, simulate_traces

CLASSIFIER_CONFIG = NPEConfig(batch_size=128, learning_rate=1e-3, max_epochs=300, patience=15, lr_patience=5)


class ModelClassifier(eqx.Module):
    """``probabilities(x)``: p(model | x) for inputs ``x [n, d]`` (features or flat binned spike trains)."""

    net: eqx.Module
    loc: jax.Array
    scale: jax.Array
    model_names: tuple[str, ...] = eqx.field(static=True)
    representation: str = eqx.field(static=True)

    def logits(self, x):
        return jax.vmap(self.net)((jnp.asarray(x, jnp.float32) - self.loc) / self.scale)

    def probabilities(self, x) -> np.ndarray:
        return np.asarray(jax.nn.softmax(self.logits(x), axis=-1))


def train_classifier(x, labels, model_names, key, *, representation: str = "features", bin_count: int | None = None,
                     config: NPEConfig = CLASSIFIER_CONFIG, progress: bool = False) -> ModelClassifier:
    """Fit a ``ModelClassifier`` to rows ``x [n, d]`` with integer ``labels [n]`` (indices into ``model_names``).

    ``representation="features"``: an MLP (2 hidden layers of 64); ``"spikes"``: ``trace_cnn`` over one
    channel of ``bin_count`` bins (``x`` the flat binned trains).
    """
    x = np.asarray(x, np.float32)
    labels = np.asarray(labels, np.int32)
    k = len(model_names)
    if x.ndim != 2 or labels.shape != (x.shape[0],):
        raise ShapeError(f"need x [n, d] and labels [n], got {x.shape} and {labels.shape}")
    if not np.isfinite(x).all():
        raise ValueError("classifier inputs contain NaN or inf; drop the invalid simulations first")
    k_split, k_net, k_train = jax.random.split(key, 3)
    if representation == "features":
        loc, scale = x.mean(0), x.std(0) + 1e-6
        net = eqx.nn.MLP(x.shape[1], k, 64, 2, activation=jax.nn.gelu, key=k_net)
    elif representation == "spikes":
        loc, scale = np.zeros(x.shape[1], np.float32), np.full(x.shape[1], x.std() + 1e-6, np.float32)
        net = trace_cnn(k_net, channels=1, length=bin_count, out_features=k, widths=(8, 16, 32), stride=2)
    else:
        raise ValueError(f"representation must be 'features' or 'spikes', got {representation!r}")
    classifier = ModelClassifier(net, jnp.asarray(loc), jnp.asarray(scale), tuple(model_names), representation)
    order = np.asarray(jax.random.permutation(k_split, len(x)))
    n_val = max(k, int(round(config.validation_fraction * len(x))))
    val, tr = order[:n_val], order[n_val:]

    def loss(clf, xs, ys):
        return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(clf.logits(xs), ys))

    classifier, _ = train_flow(
        classifier, loss, (jnp.asarray(x[tr]), jnp.asarray(labels[tr])),
        (jnp.asarray(x[val]), jnp.asarray(labels[val])), config=config, key=k_train, progress=progress,
        label=f"classifier ({representation})",
    )
    return classifier


@dataclass
class Discrimination:
    """What ``discriminate`` measured. Confusion matrices: rows the true model, columns the predicted one,
    each row sums to 1 (held-out recordings)."""

    model_names: tuple[str, ...]
    num_per_model: int
    accuracy: dict[str, float]  # representation -> held-out accuracy
    confusion: dict[str, np.ndarray]
    accuracy_by_length: dict[float, float]  # recording length (ms) -> accuracy of the feature classifier
    rate_bins: np.ndarray  # edges (Hz)
    accuracy_by_rate: np.ndarray  # per bin, on the rate-matched test set (NaN where a model has none)
    matched_accuracy: float  # over the rate-matched test set
    matched_count: int
    invalid: dict[str, int]
    classifiers: dict[str, ModelClassifier] = field(repr=False)
    summary: SpikeSummary = field(repr=False)
    bin_ms: float = 5.0

    def model_probabilities(self, traces, representation: str = "features") -> np.ndarray:
        """p(model | recording) for recordings ``traces [n, 2, time]`` (channels: potential, spikes)."""
        traces = jnp.asarray(traces, jnp.float32)
        if representation == "features":
            x = self.summary(traces)
        else:
            x = _binned(traces, self.summary, self.bin_ms)
        return self.classifiers[representation].probabilities(x)

    def as_dict(self) -> dict:
        return {
            "models": list(self.model_names), "num_per_model": self.num_per_model,
            "accuracy": self.accuracy, "confusion": {k: v.tolist() for k, v in self.confusion.items()},
            "accuracy_by_length_ms": {str(k): v for k, v in self.accuracy_by_length.items()},
            "rate_bins_hz": self.rate_bins.tolist(),
            "accuracy_by_rate": [None if not np.isfinite(a) else float(a) for a in self.accuracy_by_rate],
            "matched_accuracy": self.matched_accuracy, "matched_count": self.matched_count,
            "invalid": self.invalid, "chance": 1.0 / len(self.model_names),
        }


def _binned(traces, summary: SpikeSummary, bin_ms: float):
    """Spike counts of the stimulus window in bins of ``bin_ms``: ``[n, bins]``."""
    on, off = round(summary.t_on / summary.dt), round(summary.t_off / summary.dt)
    per = max(1, round(bin_ms / summary.dt))
    bins = (off - on) // per
    spikes = traces[:, summary.spike_channel, on:on + bins * per]
    return spikes.reshape(spikes.shape[0], bins, per).sum(-1)


def _simulate(model: Model, n: int, key, chunk: int, progress):
    """``n`` recordings of ``model`` with parameters from its prior, in fixed-size chunks."""
    out = []
    for i in range(-(-n // chunk)):
        k = jax.random.fold_in(key, i)
        theta = model.prior.sample(jax.random.fold_in(k, 0), (chunk,))
        out.append(np.asarray(simulate_traces(model, jax.random.fold_in(k, 1), theta)))
        if progress is not None:
            progress(min(chunk, n - i * chunk))
    return np.concatenate(out)[:n]


def discriminate(
    models: dict[str, Model] | list[Model],
    key,
    *,
    num_per_model: int = 2000,
    lengths_ms: tuple[float, ...] = (50.0, 100.0, 200.0, 400.0, 800.0),
    representations: tuple[str, ...] = ("features", "spikes"),
    rate_bins: tuple[float, ...] = (1.0, 5.0, 10.0, 20.0, 40.0, 80.0),
    bin_ms: float = 5.0,
    test_fraction: float = 0.2,
    chunk: int = 500,
    config: NPEConfig = CLASSIFIER_CONFIG,
    progress: bool = True,
) -> Discrimination:
    """Train classifiers that tell ``models`` apart from their recordings, and measure how well they do.

    Args:
        models: the candidates (``{name: model}`` or a list, named by ``model.name``); all must share the
            spike-train protocol (same ``trace_shape``, ``t_on``, ``t_off``: ``models.neurons``).
        key: PRNG key (simulations, splits, training).
        num_per_model: recordings simulated per model (prior draws).
        lengths_ms: recording lengths (from stimulus onset) for the accuracy-vs-length curve.
        representations: ``"features"`` and/or ``"spikes"``.
        rate_bins: firing-rate bin edges (Hz) for the rate-matched test set.
        bin_ms: bin width of the spike trains given to the CNN.

    Returns:
        A ``Discrimination`` (``as_dict()`` for JSON; ``model_probabilities`` for new recordings).
    """
    if not isinstance(models, dict):
        models = {m.name: m for m in models}
    names = tuple(models)
    if len(names) < 2:
        raise ValueError(f"discriminate needs at least two models, got {list(names)}")
    first = models[names[0]]
    for name, m in models.items():
        if not hasattr(m, "summary") or not isinstance(m.summary, SpikeSummary):
            raise ValueError(f"model {name!r} does not record spike trains under the shared protocol "
                             "(models.neurons: lif, qif, adex, izhikevich, fhn, wilson-cowan)")
        if (m.trace_shape, m.t_on, m.t_off) != (first.trace_shape, first.t_on, first.t_off):
            raise ValueError(f"model {name!r} has a different protocol from {names[0]!r}; give all models the "
                             "same duration, t_on, t_off and record_step")
    summary = SpikeSummary(dt=first.record_step, t_on=first.t_on, t_off=first.t_off)
    window = first.t_off - first.t_on
    lengths = tuple(float(length) for length in lengths_ms if length <= window)

    from rich.progress import Progress

    with Progress(disable=not progress) as bar:
        task = bar.add_task("simulating recordings", total=num_per_model * len(names))
        traces = [_simulate(models[n], num_per_model, jax.random.fold_in(key, i), chunk,
                            lambda c: bar.update(task, advance=c)) for i, n in enumerate(names)]
    labels = np.concatenate([np.full(len(t), i, np.int32) for i, t in enumerate(traces)])
    traces = jnp.asarray(np.concatenate(traces))
    feats = {length: np.asarray(SpikeSummary(dt=summary.dt, t_on=summary.t_on, t_off=summary.t_on + length)(traces))
             for length in lengths}
    full = np.asarray(summary(traces))
    spikes = np.asarray(_binned(traces, summary, bin_ms))
    ok = np.isfinite(full).all(1) & np.all([np.isfinite(f).all(1) for f in feats.values()], axis=0)
    invalid = {n: int(np.sum(~ok & (labels == i))) for i, n in enumerate(names)}

    k_split, k_train = jax.random.split(jax.random.fold_in(key, 10_000))
    order = np.asarray(jax.random.permutation(k_split, len(labels)))
    order = order[ok[order]]
    n_test = int(round(test_fraction * len(order)))
    test, train = order[:n_test], order[n_test:]

    def fit(x, representation, k, **kw):
        return train_classifier(x[train], labels[train], names, k, representation=representation,
                                config=config, progress=progress, **kw)

    def confusion(clf, x, rows):
        pred = np.argmax(clf.probabilities(x[rows]), axis=1)
        m = np.zeros((len(names), len(names)))
        np.add.at(m, (labels[rows], pred), 1)
        return m / np.maximum(m.sum(1, keepdims=True), 1), pred

    classifiers, accuracy, confusions = {}, {}, {}
    for i, rep in enumerate(representations):
        x = full if rep == "features" else spikes
        kw = {"bin_count": spikes.shape[1]} if rep == "spikes" else {}
        classifiers[rep] = fit(x, rep, jax.random.fold_in(k_train, i), **kw)
        confusions[rep], pred = confusion(classifiers[rep], x, test)
        accuracy[rep] = float(np.mean(pred == labels[test]))

    by_length = {}
    for j, length in enumerate(lengths):
        clf = fit(feats[length], "features", jax.random.fold_in(k_train, 100 + j))
        by_length[length] = float(np.mean(np.argmax(clf.probabilities(feats[length][test]), 1) == labels[test]))

    # rate-matched test set: within each rate bin, the same number of recordings of every model
    rate = full[:, SPIKE_FEATURES.index("rate_stim")]
    edges = np.asarray(rate_bins, float)
    which = np.digitize(rate[test], edges) - 1
    reference = "features" if "features" in classifiers else representations[0]
    x_ref = full if reference == "features" else spikes
    correct = np.argmax(classifiers[reference].probabilities(x_ref[test]), 1) == labels[test]
    matched, per_bin = [], np.full(len(edges) - 1, np.nan)
    for b in range(len(edges) - 1):
        groups = [np.flatnonzero((which == b) & (labels[test] == i)) for i in range(len(names))]
        m = min(len(g) for g in groups)
        if m == 0:
            continue
        rows = np.concatenate([g[:m] for g in groups])  # positions in ``test``
        matched.append(rows)
        per_bin[b] = float(np.mean(correct[rows]))
    matched = np.concatenate(matched) if matched else np.zeros(0, int)
    matched_accuracy = float(np.mean(correct[matched])) if len(matched) else float("nan")
    return Discrimination(
        model_names=names, num_per_model=num_per_model, accuracy=accuracy, confusion=confusions,
        accuracy_by_length=by_length, rate_bins=edges, accuracy_by_rate=per_bin, matched_accuracy=matched_accuracy,
        matched_count=int(len(matched)), invalid=invalid, classifiers=classifiers, summary=summary, bin_ms=bin_ms,
    )
