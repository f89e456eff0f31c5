"""Where in parameter space do simulations come out valid? A classifier that restricts proposals.

Most draws from a broad prior can give activity whose features are undefined (a non-pyloric circuit
has no burst phases: about 99 % of the pyloric prior). Deistler, Macke & Gonçalves (2022) train a
classifier of valid vs invalid on the simulations so far and propose only where it predicts valid
("restricted prior"). The estimator then sees the prior restricted to that region, which is the prior
wherever the posterior of a valid observation has mass, so maximum-likelihood NPE stays valid.

``fit_validity`` trains an MLP on z-scored θ (class-balanced binary cross-entropy, Adam, early
stopping on a held-out tenth) and sets its acceptance threshold so that ``1 - keep_valid`` of held-out
valid parameters would be rejected; ``Validity.accept(theta)`` is the restriction. A small network
written with equinox and optax: a library classifier (scikit-learn) would be a dependency for this.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from .._errors import TrainingError
from .npe import read_header


class Validity(eqx.Module):
    """A trained valid-vs-invalid classifier of parameters and its acceptance threshold."""

    net: eqx.nn.MLP
    loc: jax.Array
    scale: jax.Array
    threshold: float = eqx.field(static=True)
    valid_fraction: float = eqx.field(static=True)
    kept_invalid: float = eqx.field(static=True)

    def logit(self, theta):
        z = (jnp.asarray(theta, jnp.float32) - self.loc) / self.scale
        return jax.vmap(self.net)(z)[:, 0]

    def accept(self, theta):
        """Boolean ``[n]``: parameters in the predicted-valid region."""
        return np.asarray(_logit(self, jnp.asarray(theta, jnp.float32))) >= self.threshold

    def save(self, path: str | os.PathLike) -> None:
        """Write to one file: a JSON header line, then the weights (equinox serialisation, no pickle)."""
        header = {"format": _FORMAT, "dim": int(self.loc.shape[0]), "width": self.net.width_size,
                  "depth": self.net.depth, "threshold": self.threshold, "valid_fraction": self.valid_fraction,
                  "kept_invalid": self.kept_invalid}
        buffer = io.BytesIO()
        eqx.tree_serialise_leaves(buffer, self)
        with open(path, "wb") as f:
            f.write(json.dumps(header).encode() + b"\n")
            f.write(buffer.getvalue())


_FORMAT = "neurosbi-validity-1"


def load_validity(path: str | os.PathLike) -> Validity:
    """Read a classifier written by ``Validity.save``."""
    path = Path(path)
    with open(path, "rb") as f:
        header = read_header(f, path, _FORMAT, "validity")
        dim = header["dim"]
        skeleton = Validity(
            net=eqx.nn.MLP(dim, 1, header["width"], header["depth"], activation=jax.nn.gelu, key=jax.random.key(0)),
            loc=jnp.zeros(dim), scale=jnp.ones(dim), threshold=header["threshold"],
            valid_fraction=header["valid_fraction"], kept_invalid=header["kept_invalid"])
        return eqx.tree_deserialise_leaves(f, skeleton)


@eqx.filter_jit
def _logit(validity, theta):
    return validity.logit(theta)


def fit_validity(theta, valid, key, *, keep_valid: float = 0.99, width: int = 64, depth: int = 2,
                 epochs: int = 300, batch_size: int = 512, patience: int = 20) -> Validity:
    """Train on parameters ``theta [n, dim]`` and their outcome ``valid [n]``.

    ``keep_valid``: the share of held-out valid parameters the restriction must keep (the threshold
    is that quantile of their classifier scores).
    """
    theta = np.asarray(theta, np.float32)
    valid = np.asarray(valid, bool)
    n_valid = int(valid.sum())
    if n_valid < 10 or n_valid == len(valid):
        raise TrainingError(f"the validity classifier needs at least 10 valid and some invalid simulations; "
                            f"got {n_valid} valid of {len(valid)}")
    k_init, k_split, k_train = jax.random.split(key, 3)
    perm = np.asarray(jax.random.permutation(k_split, len(theta)))
    n_val = max(len(theta) // 10, 1)
    val, tr = perm[:n_val], perm[n_val:]
    loc, scale = theta[tr].mean(0), theta[tr].std(0) + 1e-6
    z = jnp.asarray((theta - loc) / scale)
    y = jnp.asarray(valid, jnp.float32)
    pos = float(valid[tr].mean())
    weights = jnp.where(y > 0, 0.5 / max(pos, 1e-6), 0.5 / max(1 - pos, 1e-6))  # balanced classes
    net = eqx.nn.MLP(theta.shape[1], 1, width, depth, activation=jax.nn.gelu, key=k_init)
    params, static = eqx.partition(net, eqx.is_inexact_array)
    opt = optax.adam(1e-3)
    state = opt.init(params)

    def loss_fn(p, idx):
        logits = jax.vmap(eqx.combine(p, static))(z[idx])[:, 0]
        return jnp.mean(weights[idx] * optax.sigmoid_binary_cross_entropy(logits, y[idx]))

    batch = min(batch_size, len(tr))
    n_batches = len(tr) // batch
    tr_j, val_j = jnp.asarray(tr), jnp.asarray(val)

    @jax.jit
    def epoch(params, state, key):
        order = tr_j[jax.random.permutation(key, len(tr))[: n_batches * batch]].reshape(n_batches, batch)

        def step(carry, idx):
            params, state = carry
            grads = jax.grad(loss_fn)(params, idx)
            updates, state = opt.update(grads, state, params)
            return (optax.apply_updates(params, updates), state), None

        (params, state), _ = jax.lax.scan(step, (params, state), order)
        return params, state, loss_fn(params, val_j)

    best, stale = (np.inf, params), 0
    for _ in range(epochs):
        k_train, k = jax.random.split(k_train)
        params, state, val_loss = epoch(params, state, k)
        if float(val_loss) < best[0]:
            best, stale = (float(val_loss), params), 0
        else:
            stale += 1
            if stale >= patience:
                break
    net = eqx.combine(best[1], static)
    scores = np.asarray(jax.vmap(net)(z[val_j])[:, 0])
    held_valid = valid[val]
    if held_valid.sum() >= 5:
        threshold = float(np.quantile(scores[held_valid], 1.0 - keep_valid))
    else:  # too few held-out valid: use the training valid scores
        threshold = float(np.quantile(np.asarray(jax.vmap(net)(z[valid])[:, 0]), 1.0 - keep_valid))
    kept_invalid = float(np.mean(scores[~held_valid] >= threshold)) if (~held_valid).any() else float("nan")
    return Validity(net=net, loc=jnp.asarray(loc), scale=jnp.asarray(scale), threshold=threshold,
                    valid_fraction=float(valid.mean()), kept_invalid=kept_invalid)
