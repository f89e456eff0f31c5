"""Embedding networks: learned summaries of raw data, trained jointly with the posterior's flow.

An alternative to hand-crafted features (Gonçalves et al. 2020 used a recurrent / convolutional
embedding for raw traces; Radev et al. 2020, BayesFlow, a permutation-invariant one for i.i.d.
trials). Both read the flat feature vector the simulation bank stores and reshape it themselves, so
banks, ``simulate`` and the estimators stay the same:

- ``trace_cnn``: a 1-D convolutional network for traces ``[channels, time]`` (causal convolutions by
  default: the output at a time depends on the past only), strided layers, then the mean over a few
  time bins of the last layer and a linear map to ``out_features``.
- ``deep_set``: a permutation-invariant network for ``[trials, features]``: an MLP on each trial,
  the mean over trials, an MLP on the mean (Zaheer et al. 2017).
- ``feature_mlp``: an MLP on hand-crafted features, for estimators that need a learned summary of
  them (NPE-RS regularises the summary, ``inference.robust``).

``fit_npe(..., embedding=net)`` trains the net and the flow together by maximum likelihood of θ.
Data standardisation is shared where the net needs it (over time per channel for the CNN, over
trials per feature for the set), so a shuffled set of trials gives exactly the same posterior.

Written with ``equinox.nn`` layers; the two architectures are small enough that a library of
ready-made embedding nets (sbi's are PyTorch) would add a dependency for 100 lines.
"""

from __future__ import annotations

from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp


def _pooled_statistics(loc, scale, shape, axis):
    """Per-element means and standard deviations of flat data laid out as ``shape``, pooled along
    ``axis`` (the pooled variance is the mean of the variances plus the variance of the means)."""
    loc, scale = loc.reshape(shape), scale.reshape(shape)
    pooled_loc = loc.mean(axis, keepdims=True)
    pooled_scale = jnp.sqrt((scale**2 + (loc - pooled_loc) ** 2).mean(axis, keepdims=True))
    return jnp.broadcast_to(pooled_loc, shape).reshape(-1), jnp.broadcast_to(pooled_scale, shape).reshape(-1)


class TraceCNN(eqx.Module):
    """1-D CNN over ``[channels, time]`` traces given flat (``channels * time`` values)."""

    convs: tuple[eqx.nn.Conv1d, ...]
    head: eqx.nn.Linear
    channels: int = eqx.field(static=True)
    length: int = eqx.field(static=True)
    kernel_size: int = eqx.field(static=True)
    stride: int = eqx.field(static=True)
    causal: bool = eqx.field(static=True)
    bins: int = eqx.field(static=True)
    out_features: int = eqx.field(static=True)
    widths: tuple[int, ...] = eqx.field(static=True)

    def temporal_features(self, x):
        """The last convolutional layer's output ``[width, positions]`` for one flat trace."""
        h = x.reshape(self.channels, self.length)
        for conv in self.convs:
            k = self.kernel_size
            pad = ((k - 1, 0),) if self.causal else (((k - 1) // 2, k // 2),)
            h = jax.nn.gelu(conv(jnp.pad(h, ((0, 0), *pad))))
        return h

    def __call__(self, x):
        h = self.temporal_features(x)
        n = h.shape[1] // self.bins * self.bins
        pooled = h[:, :n].reshape(h.shape[0], self.bins, -1).mean(-1)
        return self.head(pooled.reshape(-1))

    def shared_statistics(self, loc, scale):
        """One location and scale per channel (over time)."""
        return _pooled_statistics(loc, scale, (self.channels, self.length), axis=1)

    def spec(self) -> dict[str, Any]:
        return {"kind": "trace_cnn", "channels": self.channels, "length": self.length, "widths": list(self.widths),
                "kernel_size": self.kernel_size, "stride": self.stride, "causal": self.causal, "bins": self.bins,
                "out_features": self.out_features}


def trace_cnn(key, *, channels: int, length: int, out_features: int = 16, widths=(8, 16, 32), kernel_size: int = 5,
              stride: int = 4, causal: bool = True, bins: int = 8) -> TraceCNN:
    """A ``TraceCNN`` for traces of ``channels`` x ``length`` samples.

    Example:
        >>> net = trace_cnn(jax.random.key(0), channels=1, length=1200)
        >>> posterior, _ = fit_npe(theta, traces.reshape(n, -1), prior, key=key, embedding=net)
    """
    sizes, out_len = (channels, *widths), length
    for _ in widths:
        out_len = (out_len - 1) // stride + 1
    if out_len < bins:
        raise ValueError(f"traces of {length} samples shrink to {out_len} after {len(widths)} layers of stride "
                         f"{stride}: fewer than bins={bins}; use fewer layers or a smaller stride")
    keys = jax.random.split(key, len(widths) + 1)
    convs = tuple(eqx.nn.Conv1d(a, b, kernel_size, stride=stride, key=k) for a, b, k in zip(sizes[:-1], sizes[1:], keys))
    head = eqx.nn.Linear(widths[-1] * bins, out_features, key=keys[-1])
    return TraceCNN(convs, head, channels, length, kernel_size, stride, causal, bins, out_features, tuple(widths))


class DeepSet(eqx.Module):
    """Permutation-invariant net over ``[trials, features]`` given flat (``trials * features`` values)."""

    phi: eqx.nn.MLP
    rho: eqx.nn.MLP
    trials: int = eqx.field(static=True)
    features: int = eqx.field(static=True)
    width: int = eqx.field(static=True)
    depth: int = eqx.field(static=True)
    out_features: int = eqx.field(static=True)

    def __call__(self, x):
        per_trial = jax.vmap(self.phi)(x.reshape(self.trials, self.features))
        return self.rho(per_trial.mean(0))

    def shared_statistics(self, loc, scale):
        """One location and scale per feature (over trials)."""
        return _pooled_statistics(loc, scale, (self.trials, self.features), axis=0)

    def spec(self) -> dict[str, Any]:
        return {"kind": "deep_set", "trials": self.trials, "features": self.features, "width": self.width,
                "depth": self.depth, "out_features": self.out_features}


def deep_set(key, *, trials: int, features: int, out_features: int = 16, width: int = 64, depth: int = 2) -> DeepSet:
    """A ``DeepSet`` for ``trials`` i.i.d. trials of ``features`` values each.

    Example:
        >>> net = deep_set(jax.random.key(0), trials=20, features=3)
    """
    k1, k2 = jax.random.split(key)
    phi = eqx.nn.MLP(features, width, width, depth, activation=jax.nn.gelu, key=k1)
    rho = eqx.nn.MLP(width, out_features, width, depth, activation=jax.nn.gelu, key=k2)
    return DeepSet(phi, rho, trials, features, width, depth, out_features)


class FeatureMLP(eqx.Module):
    """An MLP from ``features`` values to ``out_features``."""

    mlp: eqx.nn.MLP
    features: int = eqx.field(static=True)
    width: int = eqx.field(static=True)
    depth: int = eqx.field(static=True)
    out_features: int = eqx.field(static=True)

    def __call__(self, x):
        return self.mlp(x)

    def shared_statistics(self, loc, scale):
        """Each feature keeps its own location and scale."""
        return loc, scale

    def spec(self) -> dict[str, Any]:
        return {"kind": "feature_mlp", "features": self.features, "width": self.width, "depth": self.depth,
                "out_features": self.out_features}


def feature_mlp(key, *, features: int, out_features: int = 8, width: int = 64, depth: int = 2) -> FeatureMLP:
    """A ``FeatureMLP`` for ``features`` hand-crafted features."""
    mlp = eqx.nn.MLP(features, out_features, width, depth, activation=jax.nn.gelu, key=key)
    return FeatureMLP(mlp, features, width, depth, out_features)


def build_embedding(spec: dict[str, Any], key):
    """The (untrained) embedding that ``spec()`` describes; the skeleton for loading weights."""
    spec = dict(spec)
    kind = spec.pop("kind")
    if kind == "trace_cnn":
        spec["widths"] = tuple(spec["widths"])
        return trace_cnn(key, **spec)
    if kind == "deep_set":
        return deep_set(key, **spec)
    if kind == "feature_mlp":
        return feature_mlp(key, **spec)
    raise ValueError(f"unknown embedding kind {kind!r}; expected 'trace_cnn', 'deep_set' or 'feature_mlp'")


class EmbeddedFlow(eqx.Module):
    """A conditional flow whose condition is ``embedding(x)``: what ``Posterior.flow`` holds when
    an embedding net is trained with it (same ``log_prob`` / ``sample`` interface)."""

    flow: Any
    embedding: Any

    def _embed(self, x):
        batch = x.shape[:-1]
        e = jax.vmap(self.embedding)(x.reshape(-1, x.shape[-1]))
        return e.reshape(*batch, e.shape[-1])

    def log_prob(self, z, condition):
        return self.flow.log_prob(z, condition=self._embed(condition))

    def sample(self, key, sample_shape, condition):
        return self.flow.sample(key, sample_shape, condition=self._embed(condition))


class EnsembleFlow(eqx.Module):
    """``members`` conditional flows with stacked weights (leading axis): the equal-weight mixture.

    ``log_prob`` is ``logsumexp_k log q_k - log K``; ``sample`` draws each sample from a member chosen
    uniformly. Members are trained independently (each on its own likelihood, same minibatches), as a
    deep ensemble; a mixture of independently trained flows is more conservative than one flow
    (Hermans et al. 2022), which is what calibration asks of an amortized posterior.
    """

    stacked: Any
    members: int = eqx.field(static=True)

    def member_log_probs(self, z, condition):
        return eqx.filter_vmap(lambda f: f.log_prob(z, condition=condition))(self.stacked)

    def log_prob(self, z, condition):
        return jax.nn.logsumexp(self.member_log_probs(z, condition), axis=0) - jnp.log(self.members)

    def sample(self, key, sample_shape, condition):
        k_draw, k_pick = jax.random.split(key)
        keys = jax.random.split(k_draw, self.members)
        draws = eqx.filter_vmap(lambda f, k: f.sample(k, sample_shape, condition=condition))(self.stacked, keys)
        pick = jax.random.randint(k_pick, draws.shape[1:-1], 0, self.members)
        return jnp.take_along_axis(draws, pick[None, ..., None], axis=0)[0]
