"""Classifier two-sample test (C2ST; Lopez-Paz & Oquab 2017), as used by sbibm.

A classifier is trained to tell samples ``a`` from samples ``b``; its held-out accuracy is 0.5 when the
two distributions are equal and approaches 1 as they separate. For two Gaussians with equal variance
whose means are ``d`` standard deviations apart, the best possible accuracy is Φ(d / 2).

Why not scikit-learn's ``MLPClassifier`` (what sbibm uses): it would be a dependency for one
function, and it trains the cross-validation folds one after another on one core. Here the folds are
trained at once (``vmap``) in one compiled ``lax.scan`` with optax; the network and schedule follow
sbibm's settings (two hidden layers of 10 × dim units, Adam, z-scored inputs, stratified folds).
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax

from .._errors import ShapeError


def c2st(a, b, key, *, folds: int = 5, epochs: int = 200, batch_size: int = 256, learning_rate: float = 1e-3) -> float:
    """Mean held-out accuracy of an MLP classifier separating ``a [n, d]`` from ``b [m, d]``.

    Args:
        a, b: samples of the two distributions (rows with NaN or inf are refused).
        key: PRNG key (fold assignment, initialisation, minibatches).
        folds: cross-validation folds; each sample is classified once, by the fold that did not see it.
        epochs: passes over each fold's training data.
        batch_size: minibatch size.
        learning_rate: Adam step size.

    Returns:
        Accuracy in [0, 1]; 0.5 means indistinguishable.
    """
    a, b = np.asarray(a, np.float32), np.asarray(b, np.float32)
    if a.ndim == 1:
        a, b = a[:, None], b[:, None]
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise ShapeError(f"c2st needs two [n, d] sample arrays with equal d, got {a.shape} and {b.shape}")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("c2st: samples contain NaN or inf; drop those rows first")
    if min(len(a), len(b)) < 2 * folds:
        raise ValueError(f"c2st needs at least {2 * folds} samples of each, got {len(a)} and {len(b)}")
    n = min(len(a), len(b))  # balanced classes, as sbibm
    data = np.concatenate([a[:n], b[:n]])
    labels = np.concatenate([np.zeros(n, np.float32), np.ones(n, np.float32)])
    data = (data - data.mean(0)) / (data.std(0) + 1e-8)
    k_fold, k_init, k_train = jax.random.split(key, 3)

    # Stratified folds: the same number of each class in every fold.
    fold_of = np.empty(2 * n, np.int32)
    for cls in (0, 1):
        perm = np.asarray(jax.random.permutation(jax.random.fold_in(k_fold, cls), n)) + cls * n
        fold_of[perm] = np.arange(n) % folds
    per_fold = int(min(np.sum(fold_of == f) for f in range(folds)))
    test_idx = np.stack([np.flatnonzero(fold_of == f)[:per_fold] for f in range(folds)])
    train_len = int(min(np.sum(fold_of != f) for f in range(folds)))
    train_idx = np.stack([np.flatnonzero(fold_of != f)[:train_len] for f in range(folds)])

    width = max(10 * data.shape[1], 16)
    x, y = jnp.asarray(data), jnp.asarray(labels)
    nets = eqx.filter_vmap(lambda k: eqx.nn.MLP(data.shape[1], "scalar", width, 2, activation=jax.nn.relu, key=k))(
        jax.random.split(k_init, folds)
    )
    params, static = eqx.partition(nets, eqx.is_inexact_array)
    opt = optax.adam(learning_rate)
    batch = min(batch_size, train_len)
    n_batches = train_len // batch

    def loss(p, idx):
        logits = jax.vmap(eqx.combine(p, static))(x[idx])
        return jnp.mean(optax.sigmoid_binary_cross_entropy(logits, y[idx]))

    def train_one(p, tr, k):
        state = opt.init(p)

        def epoch(carry, k):
            p, state = carry
            order = tr[jax.random.permutation(k, train_len)[: n_batches * batch]].reshape(n_batches, batch)

            def step(carry, idx):
                p, state = carry
                g = jax.grad(loss)(p, idx)
                updates, state = opt.update(g, state, p)
                return (optax.apply_updates(p, updates), state), None

            return jax.lax.scan(step, (p, state), order)[0], None

        (p, _), _ = jax.lax.scan(epoch, (p, state), jax.random.split(k, epochs))
        return p

    @jax.jit
    def run(params, train_idx, test_idx, keys):
        trained = jax.vmap(train_one)(params, train_idx, keys)

        def accuracy(p, te):
            logits = jax.vmap(eqx.combine(p, static))(x[te])
            return jnp.mean((logits > 0).astype(jnp.float32) == y[te])

        return jnp.mean(jax.vmap(accuracy)(trained, test_idx))

    return float(run(params, jnp.asarray(train_idx), jnp.asarray(test_idx), jax.random.split(k_train, folds)))
