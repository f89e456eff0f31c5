"""The distribution EPI returns: a normalizing flow on a box, with what a scientist asks of it.

The flow is flowjax's real NVP (``coupling_flow``: affine or spline couplings, a random permutation
after each stage, as Glow), an optional elementwise affine after the couplings, then ``BoxSupport``,
which maps R^d onto the parameter bounds (Bittner et al. 2021, "deep probability distributions").
``BoxSupport`` is written here because flowjax's ``Tanh`` / ``Softplus`` act on every dimension alike,
and EPI's parameters mix bounded, half-bounded and free dimensions.

Beyond ``sample`` / ``log_prob``: the gradient and Hessian of ``log q``, the mode (optionally with some
parameters held fixed: the conditional mode of the SC analysis), the Hessian's eigenvectors at a point
(the most sensitive and most robust parameter directions), and the optimisation history. Saved as
JSON (settings, names, bounds, history) plus the flow's arrays (``equinox.tree_serialise_leaves``):
no pickle.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path
from typing import Any, ClassVar

import equinox as eqx
import flowjax.bijections as fb
import flowjax.distributions as fd
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flowjax.flows import coupling_flow

from .._errors import ShapeError, TrainingError

logger = logging.getLogger(__name__)

_FORMAT = "neurosbi-epi-1"


class BoxSupport(fb.AbstractBijection):
    """R^d onto a box, per dimension: ``c + h tanh(u)`` between two finite bounds, ``low + softplus(u)``
    above a finite lower bound, ``high - softplus(-u)`` below a finite upper bound, identity when free."""

    # bounds as static tuples: never trained, never serialised as arrays
    low: tuple[float, ...] = eqx.field(static=True)
    high: tuple[float, ...] = eqx.field(static=True)
    shape: tuple[int, ...] = eqx.field(static=True)
    cond_shape: ClassVar[None] = None

    def __init__(self, low, high):
        self.low = tuple(float(v) for v in np.asarray(low, np.float64).ravel())
        self.high = tuple(float(v) for v in np.asarray(high, np.float64).ravel())
        self.shape = (len(self.low),)

    def _parts(self):
        low, high = np.asarray(self.low), np.asarray(self.high)
        lo, hi = np.isfinite(low), np.isfinite(high)
        low, high = np.where(lo, low, 0.0), np.where(hi, high, 0.0)
        return (lo & hi, lo & ~hi, ~lo & hi, jnp.asarray(low, jnp.float32), jnp.asarray(high, jnp.float32))

    def transform_and_log_det(self, x, condition=None):
        both, lower, upper, low, high = self._parts()
        # a dimension without two bounds gets half-width 1: every branch stays finite (jnp.where passes NaN
        # gradients of the branch it discards)
        centre, half = (low + high) / 2, jnp.where(both, (high - low) / 2, 1.0)
        y = jnp.where(both, centre + half * jnp.tanh(x),
                      jnp.where(lower, low + jax.nn.softplus(x), jnp.where(upper, high - jax.nn.softplus(-x), x)))
        tanh_logdet = jnp.log(jnp.where(both, half, 1.0)) - 2 * (x + jax.nn.softplus(-2 * x) - jnp.log(2.0))
        logdet = jnp.where(both, tanh_logdet,
                           jnp.where(lower, jax.nn.log_sigmoid(x), jnp.where(upper, jax.nn.log_sigmoid(-x), 0.0)))
        return y, jnp.sum(logdet)

    def inverse_and_log_det(self, y, condition=None):
        both, lower, upper, low, high = self._parts()
        # a dimension without two bounds gets half-width 1: every branch stays finite (jnp.where passes NaN
        # gradients of the branch it discards)
        centre, half = (low + high) / 2, jnp.where(both, (high - low) / 2, 1.0)

        def inv_softplus(v):  # log(expm1(v)), stable for large v
            v = jnp.maximum(v, 1e-30)
            return v + jnp.log(-jnp.expm1(-v))

        # each branch sees a harmless argument where it is not selected
        x = jnp.where(both, jnp.arctanh(jnp.clip(jnp.where(both, (y - centre) / half, 0.0), -1.0, 1.0)),
                      jnp.where(lower, inv_softplus(jnp.where(lower, y - low, 1.0)),
                                jnp.where(upper, -inv_softplus(jnp.where(upper, high - y, 1.0)), y)))
        _, logdet = self.transform_and_log_det(x)
        return x, -logdet


@dataclasses.dataclass(frozen=True)
class FlowSpec:
    """The architecture of an EPI flow (Bittner et al. 2021: real NVP, 3 stages, 2-layer networks).

    Attributes:
        num_stages: coupling stages, a random permutation after each.
        hidden_layers: hidden layers of each coupling's network.
        hidden_units: units per hidden layer (RNN 100, LDS / V1 / SC 50, STG 25 in the paper).
        elementwise: ``"affine"`` (real NVP) or ``"spline"`` (rational-quadratic, 8 knots on [-5, 5]).
        post_affine: an elementwise scale and shift after the couplings.
    """

    num_stages: int = 3
    hidden_layers: int = 2
    hidden_units: int = 50
    elementwise: str = "affine"
    post_affine: bool = True

    def __post_init__(self):
        if self.elementwise not in ("affine", "spline"):
            raise ValueError(f"elementwise must be 'affine' or 'spline', got {self.elementwise!r}")
        for name in ("num_stages", "hidden_layers", "hidden_units"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")


def build_flow(key, spec: FlowSpec, low, high) -> fd.Transformed:
    """A fresh flow on the box ``[low, high]`` (``±inf`` for unbounded sides)."""
    low = np.asarray(low, np.float32)
    dim = low.shape[0]
    transformer = None if spec.elementwise == "affine" else fb.RationalQuadraticSpline(knots=8, interval=5.0)
    flow = coupling_flow(key, base_dist=fd.StandardNormal((dim,)), transformer=transformer, flow_layers=spec.num_stages,
                         nn_width=spec.hidden_units, nn_depth=spec.hidden_layers, nn_activation=jax.nn.relu,
                         invert=False)
    layers = [flow.bijection]
    if spec.post_affine:
        layers.append(fb.Affine(jnp.zeros(dim), jnp.ones(dim)))
    layers.append(BoxSupport(low, high))
    return fd.Transformed(fd.StandardNormal((dim,)), fb.Chain(layers))


@dataclasses.dataclass
class EPIHistory:
    """One row per augmented-Lagrangian epoch (epoch 0: the initialised flow).

    ``constraint_means`` are E_q[T] per constraint (the statistics, then their squared deviations),
    ``p_values`` the convergence test's, ``entropy`` H(q) in nats over the evaluation samples.
    """

    epoch: list[int] = dataclasses.field(default_factory=list)
    iterations: list[int] = dataclasses.field(default_factory=list)
    entropy: list[float] = dataclasses.field(default_factory=list)
    constraint_means: list[list[float]] = dataclasses.field(default_factory=list)
    residual_norm: list[float] = dataclasses.field(default_factory=list)
    p_values: list[list[float]] = dataclasses.field(default_factory=list)
    converged: list[bool] = dataclasses.field(default_factory=list)
    c: list[float] = dataclasses.field(default_factory=list)
    eta: list[list[float]] = dataclasses.field(default_factory=list)
    seconds: list[float] = dataclasses.field(default_factory=list)
    num_simulations: list[int] = dataclasses.field(default_factory=list)
    num_invalid: list[int] = dataclasses.field(default_factory=list)

    def append(self, **row):
        for name, value in row.items():
            getattr(self, name).append(value)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class EPIDistribution:
    """A parameter distribution found by EPI (or any flow on a box), with its provenance.

    Example:
        >>> z = dist.sample(jax.random.key(0), 1000)
        >>> mode = dist.mode(jax.random.key(1))
        >>> values, vectors = dist.sensitivity(mode)   # values[0]: the most sensitive direction
    """

    flow: fd.Transformed
    spec: FlowSpec
    param_names: tuple[str, ...]
    info: dict  # property, targets, settings, chosen epoch, history (all JSON-able)

    @property
    def dim(self) -> int:
        return len(self.param_names)

    @property
    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        box = self.flow.bijection.bijections[-1]
        return np.asarray(box.low), np.asarray(box.high)

    @property
    def history(self) -> EPIHistory:
        return EPIHistory(**self.info.get("history", {}))

    def sample(self, key, n: int) -> jax.Array:
        """``n`` draws, ``[n, dim]``."""
        return self.flow.sample(key, (n,))

    def sample_and_log_prob(self, key, n: int):
        return self.flow.sample_and_log_prob(key, (n,))

    def log_prob(self, z) -> jax.Array:
        """``log q(z)``; ``z`` is ``[dim]`` or ``[batch, dim]``. −inf outside the box."""
        z = self._check(z)
        lp = self.flow.log_prob(z)
        low, high = self.bounds
        inside = jnp.all((z > low) & (z < high), axis=-1)
        return jnp.where(inside, lp, -jnp.inf)

    def grad_log_prob(self, z) -> jax.Array:
        z = self._check(z)
        g = jax.grad(self.flow.log_prob)
        return g(z) if z.ndim == 1 else jax.vmap(g)(z)

    def hessian_log_prob(self, z) -> jax.Array:
        """``∇² log q`` at ``z [dim]`` (``[dim, dim]``) or at each row of ``z [batch, dim]``."""
        return _hessian_log_prob(self.flow, self._check(z))

    def sensitivity(self, z) -> tuple[np.ndarray, np.ndarray]:
        """Eigenvalues (ascending) and unit eigenvectors (columns) of the Hessian of ``log q`` at ``z``.

        The first column is the most sensitive direction (the density falls fastest: the emergent
        property is lost quickest along it); the last the most robust one.
        """
        hess = np.asarray(self.hessian_log_prob(jnp.asarray(z, jnp.float32).reshape(-1)), np.float64)
        values, vectors = np.linalg.eigh((hess + hess.T) / 2)
        vectors = vectors * np.where(vectors[np.abs(vectors).argmax(0), np.arange(len(values))] < 0, -1, 1)
        return values, vectors

    def mode(self, key, *, fixed: dict[str, float] | None = None, num_starts: int = 16,
             steps: int = 500) -> np.ndarray:
        """The point of greatest density, optionally conditioned on ``fixed`` parameters (name: value).

        L-BFGS (optax) on the unbounded coordinates of the free parameters, from the ``num_starts``
        most probable of 4 × ``num_starts`` draws. The most probable end point that is a local maximum in
        the parameters themselves (the Hessian of ``log q`` over the free parameters negative definite)
        is returned: a search can also run onto a bound where the bounded map's Jacobian makes the density
        climb without a maximum (the STG fit's g_el = 8 nS edge, Hessian eigenvalue +3.5e12), which is no
        mode. If no end point is a maximum, the most probable one is returned with a warning.
        """
        fixed = dict(fixed or {})
        unknown = set(fixed) - set(self.param_names)
        if unknown:
            raise ValueError(f"fixed names {sorted(unknown)} are not parameters; expected some of {self.param_names}")
        low, high = self.bounds
        idx_fixed = np.array([self.param_names.index(n) for n in fixed], int)
        for n, v in fixed.items():
            i = self.param_names.index(n)
            if not low[i] < v < high[i]:
                raise ValueError(f"fixed {n} = {v} lies outside the support [{low[i]}, {high[i]}]")
        free = np.array([i for i in range(self.dim) if i not in set(idx_fixed.tolist())], int)
        values = jnp.asarray([fixed[n] for n in fixed], jnp.float32)
        box = BoxSupport(low[free], high[free])
        draws, lps = self.sample_and_log_prob(key, 4 * num_starts)
        if idx_fixed.size:
            draws = draws.at[:, idx_fixed].set(values)
            lps = self.flow.log_prob(draws)
        starts = draws[jnp.argsort(-lps)[:num_starts]][:, free]
        width = np.where(np.isfinite(high - low), high - low, 0.0)[free]
        starts = jax.vmap(box.inverse)(jnp.clip(starts, low[free] + 1e-5 * width, high[free] - 1e-5 * width))
        ends, neg_lp = _conditional_mode(self.flow, box, tuple(free.tolist()), tuple(idx_fixed.tolist()), values,
                                         starts, steps)
        ends, neg_lp = np.asarray(ends), np.asarray(neg_lp)
        order = [i for i in np.argsort(neg_lp) if np.isfinite(neg_lp[i])]
        if not order:
            raise TrainingError("every mode search ended at a non-finite density; the flow is degenerate")
        for i in order:
            hess = np.asarray(self.hessian_log_prob(ends[i]), np.float64)[np.ix_(free, free)]
            if np.all(np.isfinite(hess)) and np.linalg.eigvalsh((hess + hess.T) / 2).max() < 0:
                return ends[i]
        logger.warning("no mode search ended at a local maximum of the density (Hessian not negative definite "
                       "at all %d end points); returning the most probable end point %s", len(order), ends[order[0]])
        return ends[order[0]]

    def _check(self, z):
        z = jnp.asarray(z, jnp.float32)
        if z.shape[-1] != self.dim or z.ndim not in (1, 2):
            raise ShapeError(f"z has shape {z.shape}; expected [{self.dim}] or [batch, {self.dim}] "
                             f"({', '.join(self.param_names[:6])}{', ...' if self.dim > 6 else ''})")
        return z

    # -- persistence ------------------------------------------------------------------------
    def save(self, path) -> Path:
        """Write ``path/epi.json`` and ``path/flow.eqx``; ``load_epi(path)`` restores it."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        low, high = self.bounds
        meta = {"format": _FORMAT, "spec": dataclasses.asdict(self.spec), "param_names": list(self.param_names),
                "low": [float(v) for v in low], "high": [float(v) for v in high], "info": self.info}
        (path / "epi.json").write_text(json.dumps(meta, indent=1, allow_nan=True))
        eqx.tree_serialise_leaves(path / "flow.eqx", self.flow)
        return path


def load_epi(path) -> EPIDistribution:
    """Read a distribution written by ``EPIDistribution.save``."""
    path = Path(path)
    meta_file = path / "epi.json"
    if not meta_file.exists():
        raise FileNotFoundError(f"{meta_file} not found; pass the folder written by EPIDistribution.save")
    meta = json.loads(meta_file.read_text())
    if meta.get("format") != _FORMAT:
        raise ValueError(f"{meta_file} has format {meta.get('format')!r}, expected {_FORMAT!r}")
    spec = FlowSpec(**meta["spec"])
    skeleton = build_flow(jax.random.key(0), spec, np.asarray(meta["low"]), np.asarray(meta["high"]))
    flow = eqx.tree_deserialise_leaves(path / "flow.eqx", skeleton)
    return EPIDistribution(flow=flow, spec=spec, param_names=tuple(meta["param_names"]), info=meta["info"])


@eqx.filter_jit
def _hessian_log_prob(flow, z):
    """``∇² log q``, compiled once per flow structure and shape of ``z``: the mode search checks each end point
    with it and the analyses call it per conditional mode (eager, one costs ≈ 0.6 s on the SC flow)."""
    h = jax.hessian(flow.log_prob)
    return h(z) if z.ndim == 1 else jax.vmap(h)(z)


@eqx.filter_jit
def _conditional_mode(flow, box, free: tuple, idx_fixed: tuple, values, starts, steps: int):
    """The mode search of ``EPIDistribution.mode``: every end point (assembled) and its −log q. Compiled once
    per flow structure, set of fixed parameters and ``steps`` (the fixed values and the starts are traced: a
    sweep over conditioning values, as the SC and V1 analyses run, reuses one compilation)."""
    dim = len(free) + len(idx_fixed)

    def assemble(u):
        z = jnp.zeros(dim).at[jnp.asarray(free, int)].set(box.transform(u))
        return z.at[jnp.asarray(idx_fixed, int)].set(values) if idx_fixed else z

    ends, neg_log_prob = _lbfgs_minimise(lambda u: -flow.log_prob(assemble(u)), starts, steps)
    return jax.vmap(assemble)(ends), neg_log_prob


def _lbfgs_minimise(fun, starts, steps: int):
    """Minimise ``fun`` from each row of ``starts`` with optax's L-BFGS; every end point and its value
    (+inf where not finite)."""
    opt = optax.lbfgs()
    value_and_grad = optax.value_and_grad_from_state(fun)

    def run(u0):
        def body(_, carry):
            u, state = carry
            value, grad = value_and_grad(u, state=state)
            updates, state = opt.update(grad, state, u, value=value, grad=grad, value_fn=fun)
            return optax.apply_updates(u, updates), state

        u, _ = jax.lax.fori_loop(0, steps, body, (u0, opt.init(u0)))
        return u, fun(u)

    ends, values = jax.vmap(run)(starts)
    return ends, jnp.where(jnp.isfinite(values), values, jnp.inf)
