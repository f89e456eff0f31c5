"""What a posterior says about a model's parameters (Gonçalves et al. 2020; Prinz et al. 2004).

All functions take a differentiable ``log_prob(theta[..., dim]) -> [...]`` (for an NPE posterior:
``lambda t: posterior.log_prob(t, x_o)``) and, for a bounded prior, its box:

- ``conditional_correlations``: the correlation of each pair of parameters when all the others are
  held fixed at a posterior sample, from the 2-D conditional density on a grid, averaged over several
  samples. Marginal correlations hide compensation; conditional ones show it.
- ``conditional_density``: a 1-D or 2-D slice of the density through one point, normalised on its grid.
- ``high_probability_path``: a path between two parameter sets along which the density stays high
  (the "no islands" result: parameter sets with the same activity are connected). The path is a
  chain of points whose interior points maximise the mean log density plus a spacing penalty
  (optax Adam); points live in unbounded coordinates (logit of the box) so the path never leaves it.
- ``sensitivity``: eigen-decomposition of the Hessian of the log density at a point, in coordinates
  scaled by the box (or given scales): the most sensitive direction (largest curvature) and the most
  robust one (smallest).
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
import optax


def _scales(low, high, scale, dim):
    if scale is not None:
        return np.broadcast_to(np.asarray(scale, float), (dim,))
    if low is not None:
        return np.asarray(high, float) - np.asarray(low, float)
    return np.ones(dim)


def conditional_density(log_prob, point, dims, low, high, *, resolution: int = 50):
    """Density of ``theta[dims]`` with the other parameters fixed at ``point``, on a grid over
    ``[low, high]`` of those dims. Returns ``(grids, density)``: one grid per dim and the normalised
    density ``[resolution]`` or ``[resolution, resolution]``."""
    point = np.asarray(point, np.float32)
    grids = [np.linspace(low[d], high[d], resolution + 2)[1:-1] for d in dims]
    mesh = np.meshgrid(*grids, indexing="ij")
    theta = np.broadcast_to(point, mesh[0].shape + point.shape).copy()
    for d, g in zip(dims, mesh):
        theta[..., d] = g
    lp = np.asarray(log_prob(jnp.asarray(theta, jnp.float32)), np.float64)
    density = np.exp(lp - np.max(lp))
    return grids, density / density.sum()


def conditional_correlations(log_prob, points, low, high, *, resolution: int = 40):
    """Mean over ``points [n, dim]`` of the conditional correlation matrix ``[dim, dim]``."""
    points = np.atleast_2d(np.asarray(points, np.float32))
    dim = points.shape[1]
    total = np.zeros((dim, dim))
    for point in points:
        corr = np.eye(dim)
        for i in range(dim):
            for j in range(i + 1, dim):
                (gi, gj), p = conditional_density(log_prob, point, (i, j), low, high, resolution=resolution)
                mi, mj = (p.sum(1) * gi).sum(), (p.sum(0) * gj).sum()
                di, dj = gi[:, None] - mi, gj[None, :] - mj
                cov = (p * di * dj).sum()
                corr[i, j] = corr[j, i] = cov / np.sqrt((p * di**2).sum() * (p * dj**2).sum())
        total += corr
    return total / len(points)


@dataclass
class Path:
    points: np.ndarray  # [n_points, dim]
    log_prob: np.ndarray  # [n_points] along the path
    straight_log_prob: np.ndarray  # [n_points] along the straight line between the same ends
    loss: list[float]


def _coordinates(low, high, loc, scale):
    """``(to_u, from_u)`` between parameters and unbounded coordinates."""
    if low is not None:
        low, high = jnp.asarray(low, jnp.float32), jnp.asarray(high, jnp.float32)

        def to_u(t):
            p = jnp.clip((t - low) / (high - low), 1e-6, 1 - 1e-6)
            return jnp.log(p) - jnp.log1p(-p)

        return to_u, lambda u: low + (high - low) * jax.nn.sigmoid(u)
    loc, scale = jnp.asarray(loc, jnp.float32), jnp.asarray(scale, jnp.float32)
    return (lambda t: (t - loc) / scale), (lambda u: loc + scale * u)


def high_probability_path(
    log_prob, start, end, *, low=None, high=None, loc=0.0, scale=1.0, num_points: int = 40,
    steps: int = 1500, learning_rate: float = 0.02, spacing_weight: float = 0.1, seed: int = 0,
) -> Path:
    """A path from ``start`` to ``end`` through high density (see the module docstring).

    ``low`` / ``high``: the prior box (points stay inside); without them ``loc`` / ``scale`` set the
    coordinates. ``spacing_weight`` weighs the sum of squared steps between consecutive points
    (in the unbounded coordinates) against the mean log density.
    """
    to_u, from_u = _coordinates(low, high, loc, scale)
    a, b = to_u(jnp.asarray(start, jnp.float32)), to_u(jnp.asarray(end, jnp.float32))
    s = jnp.linspace(0.0, 1.0, num_points)[:, None]
    line = (1 - s) * a + s * b
    # a little noise breaks the symmetry of a straight start through a saddle
    interior = line[1:-1] + 1e-2 * jax.random.normal(jax.random.key(seed), line[1:-1].shape)

    def loss_fn(inner):
        u = jnp.concatenate([a[None], inner, b[None]])
        steps_sq = jnp.sum((u[1:] - u[:-1]) ** 2)
        return -jnp.mean(log_prob(from_u(inner))) + spacing_weight * (num_points - 1) * steps_sq

    optimizer = optax.adam(learning_rate)

    @jax.jit
    def run(inner):
        def step(carry, _):
            inner, state = carry
            loss, grad = jax.value_and_grad(loss_fn)(inner)
            updates, state = optimizer.update(grad, state)
            return (optax.apply_updates(inner, updates), state), loss

        (inner, _), losses = jax.lax.scan(step, (inner, optimizer.init(inner)), None, length=steps)
        return inner, losses

    inner, losses = run(interior)
    points = from_u(jnp.concatenate([a[None], inner, b[None]]))
    straight = from_u(line)
    return Path(points=np.asarray(points), log_prob=np.asarray(log_prob(points)),
                straight_log_prob=np.asarray(log_prob(straight)), loss=np.asarray(losses).tolist())


@dataclass
class Sensitivity:
    point: np.ndarray
    eigenvalues: np.ndarray  # of the Hessian of -log p in scaled coordinates, ascending
    eigenvectors: np.ndarray  # columns, in scaled coordinates
    scale: np.ndarray

    @property
    def most_sensitive(self) -> np.ndarray:
        """Unit direction (scaled coordinates) along which the density falls fastest."""
        return self.eigenvectors[:, -1]

    @property
    def most_robust(self) -> np.ndarray:
        """Unit direction (scaled coordinates) along which the density changes least."""
        return self.eigenvectors[:, 0]

    def direction_in_parameters(self, which: str = "most_sensitive") -> np.ndarray:
        return getattr(self, which) * self.scale


def sensitivity(log_prob, point, *, low=None, high=None, scale=None) -> Sensitivity:
    """Hessian eigen-decomposition of ``-log_prob`` at ``point`` in coordinates ``theta / scale``
    (default scale: the box widths, else 1)."""
    point = jnp.asarray(point, jnp.float32)
    s = _scales(low, high, scale, point.shape[0])
    sj = jnp.asarray(s, jnp.float32)
    hess = jax.hessian(lambda z: -log_prob(z * sj))(point / sj)
    hess = 0.5 * (np.asarray(hess, np.float64) + np.asarray(hess, np.float64).T)
    values, vectors = np.linalg.eigh(hess)
    return Sensitivity(point=np.asarray(point), eigenvalues=values, eigenvectors=vectors, scale=s)
