"""The Model contract, and the wrapper that turns a user's function into a Model.

A model is an immutable ``equinox.Module``. Its static fields are its configuration (JSON-able, so a
simulation bank records exactly which model made it); parameters arrive as ``theta [batch, dim]``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from .. import priors as _priors
from .._errors import ObservationError, PriorSupportError, ShapeError


def simulation_keys(key, batch: int):
    """One PRNG key per simulation: a single key is split ``batch`` ways, ``[batch]`` keys pass through."""
    if key.ndim == 0:
        return jax.random.split(key, batch)
    if key.shape != (batch,):
        raise ShapeError(f"got keys of shape {key.shape} for {batch} simulations; pass one key or {batch}")
    return key


def block_noise(keys, block, shape, kind: str, dtype=jnp.float32):
    """The noise of one block of steps for every simulation, batch last: ``[*shape, batch]``.

    Simulation ``j`` draws from ``fold_in(keys[j], block)`` alone, so its noise does not depend on
    which other simulations share the call (the bank is the same however a chunk is split over
    devices). ``kind``: ``"bits"`` (uint32 words) or ``"normal"``. Drawing per simulation costs the
    same as one draw for the whole batch (threefry's cost is per output word).
    """

    def draw(k):
        k = jax.random.fold_in(k, block)
        if kind == "bits":
            return jax.random.bits(k, shape, jnp.uint32)
        return jax.random.normal(k, shape, dtype)

    return jnp.moveaxis(jax.vmap(draw)(keys), 0, -1)


class Model(eqx.Module):
    """What every model provides. Subclasses fill in the abstract members.

    ``simulate(key, theta) -> traces [batch, channels, time]`` is batched and jit-able;
    ``features(traces) -> [batch, n_features]`` is the default summary; ``simulate_features`` runs
    both in one compiled call (override it when a fused implementation is cheaper).

    A model whose ``simulate`` accepts ``[batch]`` keys, one per simulation, with each simulation
    depending on its own key only, sets ``per_simulation_keys = True``: ``neurosbi.simulate`` then
    splits a chunk over all local devices and the bank stays the same bytes.
    """

    # Subclasses define ``name`` (a class variable, or a field for wrapped user functions).
    per_simulation_keys: ClassVar[bool] = False
    # A model that ``screens`` offers ``pilot(keys, theta) -> (state, passed)``, the cheap first
    # part of each simulation (``state``: a pytree, batch on the leading axis of every leaf;
    # ``passed``: ``[batch]`` bool, False where the features cannot be valid), and
    # ``resume(keys, theta, state) -> features``, the rest, equal to ``simulate_features`` with the same
    # ``[batch]`` keys. ``neurosbi.simulate`` then resumes only the simulations that pass and stores
    # the others invalid, marked screened. Needs ``per_simulation_keys``.
    screens: ClassVar[bool] = False
    # what ``infer`` / ``neurosbi infer MODEL`` use when not told: num_simulations, rounds, flow,
    # log_features (feature names read on a log scale by the posterior, ``NPEConfig.log_features``),
    # restrict_keep (``sequential_npe``'s share of valid parameters the validity restriction keeps)
    infer_defaults: ClassVar[dict] = {}

    @property
    def param_names(self) -> tuple[str, ...]:
        raise NotImplementedError

    @property
    def param_units(self) -> tuple[str, ...]:
        return ("",) * len(self.param_names)

    @property
    def prior(self):
        raise NotImplementedError

    @property
    def default_truth(self) -> np.ndarray | None:
        return None

    @property
    def feature_names(self) -> tuple[str, ...]:
        raise NotImplementedError

    @property
    def observation(self) -> np.ndarray | None:
        """A published *recorded* observation (features), when the model has one: ``infer``'s default
        then. Models whose published observation is a simulation at ``default_truth`` return None."""
        return None

    @property
    def feature_scale(self) -> np.ndarray | None:
        """Per-feature scale of the observation's noise, when known (NaN where not): the unit in
        which posterior predictive features are compared with the observation."""
        return None

    @property
    def channel_names(self) -> tuple[str, ...]:
        return ()

    @property
    def dt(self) -> float | None:
        return None

    def config(self) -> dict[str, Any]:
        """The static options that rebuild this model with ``neurosbi.models.get(name, **config)``:
        every static field (a model's fields are its configuration)."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.metadata.get("static")}

    def simulate(self, key, theta):
        raise NotImplementedError

    def features(self, traces):
        raise NotImplementedError

    def simulate_features(self, key, theta):
        return self.features(self.simulate(key, theta))

    # -- boundary checks (outside jit) -----------------------------------------------------
    def check_theta(self, theta, *, name: str = "theta") -> np.ndarray:
        """Refuse a parameter array of the wrong shape or outside the prior's support."""
        arr = np.asarray(theta, dtype=np.float64)
        if arr.ndim == 1:
            arr = arr[None]
        d = len(self.param_names)
        if arr.ndim != 2 or arr.shape[1] != d:
            got = arr.shape[-1] if arr.ndim >= 1 else "a scalar"
            raise ShapeError(
                f"{name} has {got} columns, {self.name} expects {d}: {', '.join(self.param_names)}"
            )
        if not np.all(np.isfinite(arr)):
            raise PriorSupportError(f"{name} contains NaN or infinite values: {arr[~np.isfinite(arr).all(1)][:3]}")
        box = _priors.bounds(self.prior)
        if box is not None:
            low, high = box
            bad = (arr < low) | (arr > high)
            if bad.any():
                row, col = np.argwhere(bad)[0]
                raise PriorSupportError(
                    f"{name}[{row}] has {self.param_names[col]} = {arr[row, col]:g}, outside the "
                    f"prior of {self.name}: [{low[col]:g}, {high[col]:g}]"
                )
        return arr

    def check_observation(self, x, *, name: str = "observation") -> np.ndarray:
        """Refuse a feature vector of the wrong length or with NaN."""
        arr = np.asarray(x, dtype=np.float64).reshape(-1) if np.ndim(x) <= 1 else np.asarray(x)
        f = len(self.feature_names)
        if arr.ndim != 1 or arr.shape[0] != f:
            raise ObservationError(
                f"{name} has shape {np.shape(x)}, {self.name} expects {f} features "
                f"({', '.join(self.feature_names[:4])}, ...)"
            )
        if not np.all(np.isfinite(arr)):
            which = [self.feature_names[i] for i in np.flatnonzero(~np.isfinite(arr))]
            raise ObservationError(f"{name} has NaN or infinite values in {which}; remove or impute them")
        return arr

    def check_traces(self, traces, *, name: str = "observed traces") -> np.ndarray:
        """Refuse recorded traces whose channels or length differ from the model's."""
        arr = np.asarray(traces, dtype=np.float64)
        if arr.ndim == 2:
            arr = arr[None]
        expected = self.trace_shape
        if expected is not None and arr.shape[1:] != expected:
            raise ObservationError(
                f"{name} have shape {arr.shape[1:]} (channels, time), {self.name} expects {expected}"
                f" = ({', '.join(self.channel_names)}) x {expected[1]} samples"
            )
        if not np.all(np.isfinite(arr)):
            raise ObservationError(f"{name} contain NaN or infinite samples; remove or interpolate them")
        return arr

    @property
    def trace_shape(self) -> tuple[int, int] | None:
        return None


@eqx.filter_jit
def simulate_traces(model: Model, key, theta):
    """``model.simulate`` compiled once per model and shape (models with array fields included)."""
    return model.simulate(key, theta)


class BoxModel(Model):
    """A model whose parameters, units, box prior and truth are class constants (``_names``,
    ``_units``, ``_low``, ``_high``, ``_truth``)."""

    _names: ClassVar[tuple[str, ...]] = ()
    _units: ClassVar[tuple[str, ...]] = ()
    _low: ClassVar[tuple[float, ...]] = ()
    _high: ClassVar[tuple[float, ...]] = ()
    _truth: ClassVar[tuple[float, ...]] = ()

    @property
    def param_names(self):
        return self._names

    @property
    def param_units(self):
        return self._units or ("",) * len(self._names)

    @property
    def prior(self):
        return _priors.box_uniform(self._low, self._high)

    @property
    def default_truth(self):
        return np.asarray(self._truth)


class RecordedModel(Model):
    """A model whose traces are its channels sampled every ``record_step`` over ``duration`` (both
    fields of the subclass)."""

    @property
    def dt(self):
        return self.record_step

    @property
    def num_records(self) -> int:
        return int(round(self.duration / self.record_step))

    @property
    def trace_shape(self):
        return (len(self.channel_names), self.num_records)


class FunctionModel(Model):
    """A user's simulator ``(key, theta[batch, dim]) -> x[batch, n]`` with its prior.

    The output is taken as the features (identity summary) unless ``summary`` is given.

    Example:
        >>> model = from_function(lambda k, th: th + 0.1 * jax.random.normal(k, th.shape),
        ...                       prior=box_uniform([-1, -1], [1, 1]))
    """

    name: str = eqx.field(static=True)
    simulator: Callable = eqx.field(static=True)
    summary: Callable | None = eqx.field(static=True)
    _prior: Any
    _param_names: tuple[str, ...] = eqx.field(static=True)
    _feature_names: tuple[str, ...] = eqx.field(static=True)
    _truth: Any

    @property
    def param_names(self):
        return self._param_names

    @property
    def prior(self):
        return self._prior

    @property
    def feature_names(self):
        return self._feature_names

    @property
    def default_truth(self):
        return None if self._truth is None else np.asarray(self._truth)

    @property
    def channel_names(self):
        return ("x",)

    def config(self):
        return {}  # a user's function cannot be rebuilt from options

    def simulate(self, key, theta):
        """The user's output; a flat ``[batch, n]`` output is seen as one channel ``[batch, 1, n]``."""
        out = self.simulator(key, theta)
        return out[:, None, :] if out.ndim == 2 else out

    def features(self, traces):
        out = traces if self.summary is None else self.summary(traces)
        return out.reshape(out.shape[0], -1)


def from_function(
    simulator: Callable,
    prior,
    *,
    name: str = "user_model",
    param_names: tuple[str, ...] | None = None,
    summary: Callable | None = None,
    truth=None,
) -> FunctionModel:
    """Wrap a batched JAX simulator and a prior into a Model.

    Args:
        simulator: ``(key, theta[batch, dim]) -> x[batch, ...]``, pure JAX.
        prior: any distribution with ``sample(key, shape)`` and ``log_prob``.
        name: a label used in outputs.
        param_names: one name per parameter (default ``theta_0`` ...).
        summary: optional ``x -> features[batch, n]``.
        truth: optional default parameter for ``infer`` runs without an observation.
    """
    d = _priors.dim(prior)
    if param_names is None:
        param_names = tuple(f"theta_{i}" for i in range(d))
    if len(param_names) != d:
        raise ShapeError(f"param_names has {len(param_names)} names, the prior has {d} dimensions")
    probe_theta = prior.sample(jax.random.key(0), (2,))
    probe = simulator(jax.random.key(1), probe_theta)
    if summary is not None:
        probe = summary(probe if probe.ndim != 2 else probe[:, None, :])
    if probe.ndim < 1 or probe.shape[0] != 2:
        raise ShapeError(
            f"the simulator must return one row per parameter row: for theta of shape {probe_theta.shape} "
            f"it returned {probe.shape}"
        )
    n_features = int(np.prod(probe.shape[1:]))
    return FunctionModel(
        name=name,
        simulator=simulator,
        summary=summary,
        _prior=prior,
        _param_names=tuple(param_names),
        _feature_names=tuple(f"x_{i}" for i in range(n_features)),
        _truth=None if truth is None else jnp.asarray(truth, jnp.float32),
    )


class RawTraces(Model):
    """``model`` with its traces, every ``every``-th sample, as the features: the input of an
    embedding net (``neurosbi.inference.trace_cnn``) instead of hand-crafted summaries.

    The features are ``traces[:, :, ::every]`` flattened channel by channel; simulation, prior and
    parameters are ``model``'s.

    Example:
        >>> raw = RawTraces(HodgkinHuxley(), every=10)  # 1,201 samples per trace
    """

    model: Model
    every: int = eqx.field(static=True, default=1)

    def __check_init__(self):
        if not (isinstance(self.every, int) and self.every >= 1):
            raise ValueError(f"every must be a positive integer, got {self.every!r}")
        if self.model.trace_shape is None:
            raise ValueError(f"{self.model.name} does not declare its trace shape; RawTraces needs it")

    @property
    def name(self):
        return f"{self.model.name}-traces"

    @property
    def per_simulation_keys(self):
        return self.model.per_simulation_keys

    @property
    def param_names(self):
        return self.model.param_names

    @property
    def param_units(self):
        return self.model.param_units

    @property
    def prior(self):
        return self.model.prior

    @property
    def default_truth(self):
        return self.model.default_truth

    @property
    def channel_names(self):
        return self.model.channel_names

    @property
    def dt(self):
        return self.model.dt

    @property
    def trace_shape(self):
        return self.model.trace_shape

    @property
    def samples_per_channel(self) -> int:
        return len(range(0, self.model.trace_shape[1], self.every))

    @property
    def feature_names(self):
        return tuple(f"{c}[{i}]" for c in self.channel_names for i in range(0, self.model.trace_shape[1], self.every))

    def config(self):
        return {"model": self.model.name, **self.model.config(), "every": self.every}

    def simulate(self, key, theta):
        return self.model.simulate(key, theta)

    def features(self, traces):
        return traces[:, :, :: self.every].reshape(traces.shape[0], -1)

    def simulate_features(self, key, theta):
        return self.features(self.simulate(key, theta))


@dataclasses.dataclass(frozen=True)
class EmergentProperty:
    """An emergent property (Bittner et al. 2021): statistics ``f(x; z)`` of a model's output whose mean
    and variance over the parameter distribution are prescribed.

    EPI constrains ``E_q[f] = mean`` and ``E_q[(f - mean)^2] = variance``: the constraint statistics are
    ``T(z) = [f, (f - mean)^2]`` with targets ``[mean, variance]``.

    Attributes:
        name: a label (``"oscillation-1Hz"``).
        statistics: ``(key, z[batch, dim]) -> f[batch, k]``, pure JAX and differentiable in ``z``;
            a stochastic model averages its trials inside (``simulations_per_z`` of them). The rows of
            one call may share their trials' noise (common random numbers): ``fit_epi`` calls it with
            independent keys for the two half-batches of its gradient.
        mean: the target mean of each statistic.
        variance: the target variance of each statistic (> 0).
        names: one name per statistic.
        simulations_per_z: simulations ``statistics`` runs per parameter (counted in reports).

    Example:
        >>> prop = EmergentProperty("unit-gaussian", lambda k, z: z, mean=(0.0,), variance=(1.0,), names=("z",))
    """

    name: str
    statistics: Callable
    mean: tuple[float, ...]
    variance: tuple[float, ...]
    names: tuple[str, ...] = ()
    simulations_per_z: int = 1

    def __post_init__(self):
        mean = tuple(float(v) for v in np.atleast_1d(self.mean))
        variance = tuple(float(v) for v in np.atleast_1d(self.variance))
        object.__setattr__(self, "mean", mean)
        object.__setattr__(self, "variance", variance)
        if len(mean) != len(variance):
            raise ShapeError(f"emergent property {self.name!r} has {len(mean)} means and {len(variance)} variances;"
                             " give one of each per statistic")
        if not all(np.isfinite(mean)) or not all(v > 0 and np.isfinite(v) for v in variance):
            raise ValueError(f"emergent property {self.name!r}: means must be finite and variances finite and > 0,"
                             f" got mean={mean}, variance={variance}")
        names = tuple(self.names) or tuple(f"f_{i}" for i in range(len(mean)))
        if len(names) != len(mean):
            raise ShapeError(f"emergent property {self.name!r} names {len(names)} statistics, its targets {len(mean)}")
        object.__setattr__(self, "names", names)
        if self.simulations_per_z < 1:
            raise ValueError(f"simulations_per_z must be >= 1, got {self.simulations_per_z}")

    @property
    def num_statistics(self) -> int:
        return len(self.mean)

    @property
    def targets(self) -> np.ndarray:
        """``[mean..., variance...]``: the targets of the constraint statistics ``T``."""
        return np.asarray(self.mean + self.variance, np.float32)

    @property
    def constraint_names(self) -> tuple[str, ...]:
        return self.names + tuple(f"var[{n}]" for n in self.names)

    def constraint_statistics(self, key, z):
        """``T(z) = [f, (f - mean)^2]``, ``[batch, 2k]``."""
        f = self.statistics(key, z)
        return jnp.concatenate([f, (f - jnp.asarray(self.mean, f.dtype)) ** 2], axis=-1)

    def summary(self) -> dict[str, Any]:
        return {"name": self.name, "statistics": list(self.names), "mean": list(self.mean),
                "variance": list(self.variance), "simulations_per_z": self.simulations_per_z}
