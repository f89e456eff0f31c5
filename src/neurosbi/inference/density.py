"""Density of simulated features, q(x): an unconditional normalizing flow (flowjax).

What the misspecification checks and the robust (error-model) posterior need: how typical an
observation is among the model's simulations (Ward et al. 2022 fit the same kind of flow to the
simulated summaries). The flow is built and trained like the posterior's (``NPEConfig``,
``npe.train_flow``), on features z-scored with the training statistics and, for the columns named
in ``NPEConfig.log_features``, read on a log scale first.

Integer-valued columns (a spike count) are dequantized while training: uniform noise on
[-0.5, 0.5) is added to each value, so that the flow fits a density that is smooth across the
integers rather than a comb of spikes whose heights depend on the training length. Such a column's
density at an integer value is then the probability of that integer (per unit).
"""

from __future__ import annotations

import dataclasses

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .._errors import ObservationError, ShapeError, TrainingError
from .npe import LOG_OFFSET, NPEConfig, TrainingHistory, _build_flow, log_columns, train_flow


class FeatureDensity(eqx.Module):
    """q(x) over ``num_features`` features. ``log_prob`` is the density of the standardized features
    (the flow's own coordinates): constant Jacobian terms are left out, so compare values of one
    density only."""

    flow: eqx.Module
    loc: jax.Array
    scale: jax.Array
    log_features: tuple[int, ...] = eqx.field(static=True)
    discrete: tuple[int, ...] = eqx.field(static=True)

    @property
    def num_features(self) -> int:
        return int(self.loc.shape[0])

    def check(self, x):
        """``x`` as float32 after the checks every entry point makes (shape, finite, log columns)."""
        x = jnp.asarray(x, jnp.float32)
        if x.shape[-1] != self.num_features:
            raise ObservationError(f"the observation has {x.shape[-1]} features, the density was fitted on "
                                   f"{self.num_features}")
        if not bool(jnp.all(jnp.isfinite(x))):
            raise ObservationError("the observation contains NaN or infinite features; remove or impute them")
        cols = list(self.log_features)
        if cols and not bool(jnp.all(x[..., cols] > -LOG_OFFSET)):
            raise ObservationError(f"features {cols} are read on a log scale and must be > -{LOG_OFFSET}")
        return x

    def standardize(self, x):
        """Features -> the flow's coordinates (log columns, then z-score)."""
        return (log_columns(x, self.log_features) - self.loc) / self.scale

    def unstandardize(self, z):
        """The flow's coordinates -> features."""
        x = z * self.scale + self.loc
        cols = list(self.log_features)
        if cols:
            x = x.at[..., cols].set(jnp.exp(x[..., cols]) - LOG_OFFSET)
        return x

    def log_prob(self, x):
        """log q of features ``x [..., num_features]`` (standardized coordinates, see the class)."""
        return _log_prob_z(self, self.standardize(self.check(x)))

    def log_prob_z(self, z):
        """log q in the flow's coordinates (no checks; usable inside ``jit``)."""
        return self.flow.log_prob(z)

    def sample(self, key, n: int):
        """``n`` draws of features."""
        return self.unstandardize(_sample_z(self, key, n))


@eqx.filter_jit
def _log_prob_z(density: FeatureDensity, z):
    return density.flow.log_prob(z)


@eqx.filter_jit
def _sample_z(density: FeatureDensity, key, n):
    return density.flow.sample(key, (n,))


def _integer_columns(x: np.ndarray) -> tuple[int, ...]:
    return tuple(int(j) for j in range(x.shape[1]) if np.all(x[:, j] == np.round(x[:, j])))


def fit_density(x, *, key, config: NPEConfig | None = None, progress: bool = True
                ) -> tuple[FeatureDensity, TrainingHistory]:
    """Fit q(x) to simulated features ``x [n, num_features]``; rows with NaN / inf are dropped and
    counted (``history.num_invalid_dropped``).

    Args:
        x: simulated features.
        key: PRNG key (initialisation, split, shuffling, dequantization).
        config: flow and training options (``NPEConfig``; ``support`` and ``ensemble`` do not apply).
        progress: show a progress bar.
    """
    config = dataclasses.replace(config or NPEConfig(), ensemble=1)
    x = np.asarray(x, np.float32)
    if x.ndim != 2:
        raise ShapeError(f"x must be [n, features], got shape {x.shape}")
    if config.log_features and max(config.log_features) >= x.shape[1]:
        raise ValueError(f"log_features {config.log_features} name columns beyond the {x.shape[1]} features")
    ok = np.all(np.isfinite(x), axis=1)
    if config.log_features:
        with np.errstate(invalid="ignore"):
            ok &= np.all(x[:, list(config.log_features)] > -LOG_OFFSET, axis=1)
    n_dropped = int((~ok).sum())
    x = x[ok]
    if len(x) < 20:
        raise TrainingError(f"only {len(x)} usable simulations ({n_dropped} invalid); at least 20 are needed")
    discrete = tuple(j for j in _integer_columns(x) if j not in config.log_features)
    key_init, key_split, key_noise, key_train = jax.random.split(key, 4)
    if discrete:
        x = x.copy()
        x[:, list(discrete)] += np.asarray(jax.random.uniform(key_noise, (len(x), len(discrete)), minval=-0.5,
                                                              maxval=0.5))
    u = log_columns(x, config.log_features)
    perm = np.asarray(jax.random.permutation(key_split, len(u)))
    n_val = max(int(round(config.validation_fraction * len(u))), 1)
    val_idx, tr_idx = perm[:n_val], perm[n_val:]
    loc, scale = u[tr_idx].mean(0), u[tr_idx].std(0) + 1e-6
    z = jnp.asarray((u - loc) / scale, jnp.float32)
    flow = _build_flow(key_init, config, u.shape[1], None)

    def nll(flow, zz):
        return -jnp.mean(flow.log_prob(zz))

    flow, history = train_flow(flow, nll, (z[tr_idx],), (z[val_idx],), config=config, key=key_train,
                               progress=progress, label="fitting feature density")
    history.num_invalid_dropped = n_dropped
    density = FeatureDensity(flow=flow, loc=jnp.asarray(loc, jnp.float32), scale=jnp.asarray(scale, jnp.float32),
                             log_features=config.log_features, discrete=discrete)
    return density, history
