"""Emergent property inference (EPI; Bittner et al. 2021, eLife 10:e56265).

EPI finds the maximum-entropy distribution q(z) over a model's parameters such that the model's
output shows an emergent property: statistics f(x; z) with prescribed means and variances over q.
q is a normalizing flow on the parameter box (``epi_distribution``), trained by gradients that flow
through the simulator, with the augmented Lagrangian of the paper's Algorithm 1:

    L(θ; η, c) = −H(q_θ) + ηᵀR(θ) + c/2 ‖R(θ)‖²,   R(θ) = E_q[T(z)] − μ,

Adam on L for ``iterations_per_epoch`` steps (momenta reset each epoch), then η ← η + cR and, unless
‖R‖² fell significantly below γ times its previous value (Welch t-test over ``test_batches`` batch
norms, accepted at random with probability 1 − p/2), c ← βc. The gradient of ‖R‖² is unbiased: the
batch is split in halves and ∇‖R‖² ≈ J_{R₁}ᵀR₂ + J_{R₂}ᵀR₁ (the paper uses the first term; the
symmetric form is as unbiased and uses both halves).

After each epoch the convergence test draws ``test_batches`` batches of ``test_fraction × batch_size``
parameters; for each constraint i, p_i = 2 min(P(R̄_i > 0), P(R̄_i < 0)) over the batch means; the
epoch is converged when every p_i > α/m (Bonferroni over the m constraints). The returned
distribution is the converged epoch of greatest entropy.

The loop is written here (no EPI library exists for JAX; the reference is TensorFlow 2.1); each epoch
is one compiled ``lax.scan`` over Adam steps, so Python only runs between epochs.
"""

from __future__ import annotations

import dataclasses
import logging
import time
import warnings
from dataclasses import dataclass

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from scipy import stats as _stats

from .. import priors as _priors
from .._errors import TrainingError
from ..models._base import EmergentProperty
from .epi_distribution import EPIDistribution, EPIHistory, FlowSpec, build_flow

# one INFO line per epoch: a run whose output goes to a file (a cluster job) shows its progress there,
# where rich's bar writes nothing until the run ends
logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EPIConfig:
    """EPI's settings, validated at construction (defaults: the paper's RNN run, reference §1.6).

    Attributes:
        batch_size: parameters drawn per Adam step (n).
        iterations_per_epoch: Adam steps per augmented-Lagrangian epoch (i_max).
        max_epochs: epochs at most.
        learning_rate: Adam's step size.
        c0: initial penalty weight c.
        beta: factor by which c grows when ‖R‖² did not shrink by γ (2 or 4 in the paper).
        gamma: the required shrink factor of ‖R‖² per epoch (0.25).
        alpha: level of the convergence test (Bonferroni over the constraints).
        test_batches: batches for the convergence test and for the c-update t-test (200).
        test_fraction: the convergence test's batch size as a share of ``batch_size`` (ν; 1).
        init_steps: Adam steps fitting the flow to the initial Gaussian (the paper: 10,000).
        init_batch: batch size of that fit (500).
        init: the initial Gaussian when ``fit_epi`` gets none: ``"box"`` (``initial_gaussian``: the box's
            centre, a quarter of its width) or ``"abc"`` (``abc_initial_gaussian``: the moments of the
            box's parameters whose statistics lie within one target std of the target means, how
            the paper started its STG run).
        abc_simulations: parameters drawn from the box for the ``"abc"`` initialisation.
        epochs_after_convergence: epochs run after the first converged one, to pick the converged
            epoch of greatest entropy among more (0: stop at the first converged epoch).
        max_seconds: stop after this wall time (the result then reports whether it converged).
        flow: the flow's architecture.
    """

    batch_size: int = 200
    iterations_per_epoch: int = 500
    max_epochs: int = 100
    learning_rate: float = 1e-3
    c0: float = 1e3
    beta: float = 4.0
    gamma: float = 0.25
    alpha: float = 0.05
    test_batches: int = 200
    test_fraction: float = 1.0
    init_steps: int = 2000
    init_batch: int = 500
    init: str = "box"
    abc_simulations: int = 4000
    epochs_after_convergence: int = 0
    max_seconds: float | None = None
    flow: FlowSpec = FlowSpec(hidden_units=100)

    def __post_init__(self):
        for name in ("batch_size", "iterations_per_epoch", "max_epochs", "test_batches", "init_batch"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.batch_size < 2:
            raise ValueError(f"batch_size must be >= 2 (the unbiased gradient splits it in halves), got {self.batch_size}")
        if self.init_steps < 0 or self.epochs_after_convergence < 0:
            raise ValueError("init_steps and epochs_after_convergence must be >= 0")
        if not (self.learning_rate > 0 and self.c0 > 0 and self.beta > 1 and 0 < self.gamma < 1):
            raise ValueError(f"need learning_rate > 0, c0 > 0, beta > 1, 0 < gamma < 1; got {self.learning_rate}, "
                             f"{self.c0}, {self.beta}, {self.gamma}")
        if self.init not in ("box", "abc"):
            raise ValueError(f"init must be 'box' (the box's centre) or 'abc' (fit to rejection-ABC samples), "
                             f"got {self.init!r}")
        if self.abc_simulations < 10:
            raise ValueError(f"abc_simulations must be >= 10, got {self.abc_simulations}")
        if not 0 < self.alpha < 1 or not 0 < self.test_fraction <= 1:
            raise ValueError(f"alpha must be in (0, 1) and test_fraction in (0, 1], got {self.alpha}, {self.test_fraction}")

    @property
    def test_batch_size(self) -> int:
        return max(2, int(self.test_fraction * self.batch_size))


def initial_gaussian(low, high) -> tuple[np.ndarray, np.ndarray]:
    """The paper's default initial Gaussian per dimension (mean, std): the box's centre and a quarter of
    its width between two finite bounds; 2 inside a single finite bound with std 1; N(0, 1) when free."""
    low, high = np.asarray(low, np.float64), np.asarray(high, np.float64)
    lo, hi = np.isfinite(low), np.isfinite(high)
    mean = np.where(lo & hi, (np.where(lo, low, 0) + np.where(hi, high, 0)) / 2,
                    np.where(lo, np.where(lo, low, 0) + 2, np.where(hi, np.where(hi, high, 0) - 2, 0.0)))
    std = np.where(lo & hi, (np.where(hi, high, 1) - np.where(lo, low, 0)) / 4, 1.0)
    return mean.astype(np.float32), std.astype(np.float32)


def predictive_statistics(prop: EmergentProperty, key, z, batch_size: int) -> np.ndarray:
    """``prop.statistics`` of every row of ``z``, ``batch_size`` rows per call (a stochastic model runs its
    trials for all rows of a call at once; 5,000 × 100 trials in one call would need gigabytes). The last
    call is padded to ``batch_size`` rows, so the statistics compile once."""
    z = np.asarray(z, np.float32)
    fn = jax.jit(prop.statistics)
    pad = -len(z) % batch_size
    zp = np.concatenate([z, np.repeat(z[-1:], pad, 0)])
    keys = jax.random.split(key, len(zp) // batch_size)
    out = [np.asarray(fn(k, zp[i * batch_size:(i + 1) * batch_size])) for i, k in enumerate(keys)]
    return np.concatenate(out)[: len(z)]


def abc_initial_gaussian(prop: EmergentProperty, low, high, key, num: int = 4000,
                         batch_size: int = 500) -> tuple[np.ndarray, np.ndarray, int]:
    """Rejection ABC for EPI's start: ``(mean, std, accepted)`` of the uniform box draws whose statistics
    ``f`` all lie within one target std of the target means (the paper fitted its STG run's initial
    Gaussian to such samples: a start already near the property, not the whole box). The std is floored
    at 10⁻³ of the box's width, so a property met on a single line still gives a Gaussian.

    A plain uniform draw and a threshold; ``inference.smc_abc`` is the sequential sampler for posteriors.
    """
    low, high = np.asarray(low, np.float64), np.asarray(high, np.float64)
    if not (np.all(np.isfinite(low)) and np.all(np.isfinite(high))):
        raise ValueError("the 'abc' initialisation draws uniformly from the box and needs finite bounds on every "
                         "parameter; use init='box' or pass init=(mean, std)")
    mean, std = np.asarray(prop.mean), np.sqrt(np.asarray(prop.variance))
    k_z, k_s = jax.random.split(key)
    z = np.asarray(jax.random.uniform(k_z, (num, low.shape[0]), minval=low, maxval=high), np.float32)
    f = predictive_statistics(prop, k_s, z, batch_size)
    keep = np.all(np.abs(f - mean) <= std, axis=1)  # a NaN statistic fails the test: not kept
    if keep.sum() < 2 * low.shape[0] + 2:
        raise ValueError(f"the 'abc' initialisation kept {int(keep.sum())} of {num} box draws within one target std "
                         f"of the target means; raise abc_simulations or use init='box'")
    return z[keep].mean(0), np.maximum(z[keep].std(0, ddof=1), 1e-3 * (high - low)).astype(np.float32), int(keep.sum())


def convergence_test(batch_means, targets, alpha: float) -> tuple[np.ndarray, bool]:
    """EPI's test: per constraint, the two-sided p-value of R̄ = 0 over batch means ``[M, m]`` of T.

    ``p_i = 2 min(frac(R̄_i > 0), frac(R̄_i < 0))``; converged when every ``p_i > alpha / m``.
    """
    residual = np.asarray(batch_means, np.float64) - np.asarray(targets, np.float64)
    p = 2 * np.minimum((residual > 0).mean(0), (residual < 0).mean(0))
    return p, bool(np.all(p > alpha / residual.shape[1]))


def penalty_should_grow(norms, previous_norms, gamma: float, u: float) -> bool:
    """The published c-update: grow c unless ‖R‖² fell significantly below γ × its previous value."""
    t, p = _stats.ttest_ind(np.asarray(norms), gamma * np.asarray(previous_norms), equal_var=False)
    return bool(np.isfinite(t) and t > 0 and u < 1 - p / 2)


def _adam_scan(loss, params, keys, optimizer):
    """One Adam step of ``loss(params, key) -> (value, aux)`` per key, from fresh moments (the paper resets
    Adam each epoch), as one ``lax.scan``: ``(params, values, auxes)``."""

    def step(carry, k):
        p, s = carry
        (value, aux), grads = jax.value_and_grad(loss, has_aux=True)(p, k)
        updates, s = optimizer.update(grads, s, p)
        return (optax.apply_updates(p, updates), s), (value, aux)

    (params, _), (values, auxes) = jax.lax.scan(step, (params, optimizer.init(params)), keys)
    return params, values, auxes


def fit_to_gaussian(flow, mean, std, *, key, steps: int = 2000, batch_size: int = 500,
                    learning_rate: float = 1e-3):
    """EPI's initialisation: ``flow`` fitted to N(mean, diag(std²)) by minimising KL(q ‖ N) with Adam
    (reparameterised draws; one compiled scan over ``steps``)."""
    mean, std = jnp.asarray(mean, jnp.float32), jnp.asarray(std, jnp.float32)
    params, static = eqx.partition(flow, eqx.is_inexact_array)
    optimizer = optax.adam(learning_rate)

    def loss(p, k):
        z, lq = eqx.combine(p, static).sample_and_log_prob(k, (batch_size,))
        return jnp.mean(lq - jax.scipy.stats.norm.logpdf(z, mean, std).sum(-1)), None

    @jax.jit
    def run(p, k):
        p, losses, _ = _adam_scan(loss, p, jax.random.split(k, steps), optimizer)
        return p, losses

    params, losses = run(params, key)
    if not np.isfinite(float(losses[-1])):
        raise TrainingError("the flow's fit to the initial Gaussian diverged; lower learning_rate")
    return eqx.combine(params, static)


def fit_epi(
    model,
    prop: EmergentProperty,
    *,
    key,
    config: EPIConfig | None = None,
    bounds: tuple | None = None,
    init: tuple | None = None,
    progress: bool = True,
) -> EPIDistribution:
    """Run EPI: the maximum-entropy parameter distribution of ``model`` showing ``prop``.

    Args:
        model: supplies ``param_names`` and a prior whose box is the support (any object with those;
            an unbounded prior leaves those dimensions free). ``None`` needs ``bounds``.
        prop: the emergent property (``model.emergent_property()`` for the circuit models).
        key: PRNG key; the same key gives the same distribution on the same machine.
        config: ``EPIConfig`` (the paper's RNN settings by default).
        bounds: ``(low, high)`` overriding the model's box (``±inf`` for a free side).
        init: ``(mean, std)`` of the initial Gaussian (default: ``config.init``, the box's centre or
            ``abc_initial_gaussian``).
        progress: show a progress bar over epochs.

    Returns:
        An ``EPIDistribution`` whose ``info`` holds ``converged``, the chosen epoch, p-values,
        timings, the number of simulations and the history of every epoch.
    """
    config = config or EPIConfig()
    low, high, names = _support(model, bounds)
    dim = low.shape[0]
    abc_sims = 0
    if init is not None:
        mean0, std0 = np.asarray(init[0], np.float32), np.asarray(init[1], np.float32)
    elif config.init == "abc":
        key, k_abc = jax.random.split(key)
        mean0, std0, accepted = abc_initial_gaussian(prop, low, high, k_abc, num=config.abc_simulations)
        abc_sims = config.abc_simulations * prop.simulations_per_z
        logger.info("EPI init: rejection ABC kept %d of %d box draws; mean %s, std %s", accepted,
                    config.abc_simulations, np.round(mean0, 3).tolist(), np.round(std0, 3).tolist())
    else:
        mean0, std0 = initial_gaussian(low, high)
    if mean0.shape != (dim,) or std0.shape != (dim,) or not np.all(std0 > 0):
        raise ValueError(f"init must be (mean, std) of {dim} values each with std > 0, got shapes "
                         f"{mean0.shape}, {std0.shape}")
    targets = jnp.asarray(prop.targets)
    m = targets.shape[0]
    n, half = config.batch_size, config.batch_size // 2
    t_start = time.perf_counter()
    key, k_flow, k_init = jax.random.split(key, 3)
    flow = build_flow(k_flow, config.flow, low, high)
    if config.init_steps:
        flow = fit_to_gaussian(flow, mean0, std0, key=k_init, steps=config.init_steps, batch_size=config.init_batch,
                               learning_rate=config.learning_rate)
    params, static = eqx.partition(flow, eqx.is_inexact_array)
    optimizer = optax.adam(config.learning_rate)
    t_init = time.perf_counter() - t_start

    # -- the augmented Lagrangian -----------------------------------------------------------
    def constraint_stats(k, z):
        t = prop.constraint_statistics(k, z)
        valid = jnp.all(jnp.isfinite(t), axis=-1)
        return jnp.where(valid[:, None], t, targets), jnp.sum(~valid)

    def surrogate(p, k, eta, c):
        kz, ks1, ks2 = jax.random.split(k, 3)
        z, lq = eqx.combine(p, static).sample_and_log_prob(kz, (n,))
        # the halves' statistics from independent keys: a model whose trials share noise across a call
        # (common random numbers) still gives independent R1, R2, so the ‖R‖² gradient stays unbiased
        (t1, bad1), (t2, bad2) = constraint_stats(ks1, z[:half]), constraint_stats(ks2, z[half:])
        t, bad = jnp.concatenate([t1, t2]), bad1 + bad2
        r = jnp.mean(t, 0) - targets
        r1 = jnp.mean(t[:half], 0) - targets
        r2 = jnp.mean(t[half:], 0) - targets
        sg = jax.lax.stop_gradient
        loss = jnp.mean(lq) + eta @ r + 0.5 * c * (r1 @ sg(r2) + sg(r1) @ r2)
        return loss, bad

    @jax.jit
    def epoch(p, k, eta, c):
        p, losses, bad = _adam_scan(lambda p, k: surrogate(p, k, eta, c), p,
                                    jax.random.split(k, config.iterations_per_epoch), optimizer)
        return p, losses, jnp.sum(bad)

    def evaluation_pass(batch):
        @jax.jit
        def run(p, k):
            def one(k):
                kz, ks = jax.random.split(k)
                z, lq = eqx.combine(p, static).sample_and_log_prob(kz, (batch,))
                t, bad = constraint_stats(ks, z)
                return jnp.mean(t, 0), jnp.mean(lq), bad

            means, lqs, bad = jax.lax.map(one, jax.random.split(k, config.test_batches))
            return means, -jnp.mean(lqs), jnp.sum(bad)

        return run

    evaluate = evaluation_pass(n)
    test_pass = evaluate if config.test_batch_size == n else evaluation_pass(config.test_batch_size)
    spz = prop.simulations_per_z
    sims_eval = config.test_batches * n * spz + (0 if test_pass is evaluate else config.test_batches
                                                 * config.test_batch_size * spz)
    sims_epoch = config.iterations_per_epoch * n * spz

    def assess(p, k):
        k1, k2 = jax.random.split(k)
        means, entropy, bad = evaluate(p, k1)
        means = np.asarray(means)
        test_means = means if test_pass is evaluate else np.asarray(test_pass(p, k2)[0])
        pvals, ok = convergence_test(test_means, np.asarray(targets), config.alpha)
        norms = ((means - np.asarray(targets)) ** 2).sum(1)
        return means, float(entropy), int(bad), norms, pvals, ok

    history = EPIHistory()
    rng = np.random.default_rng(np.asarray(jax.random.key_data(key)).ravel()[-1].item())
    eta = np.zeros(m, np.float32)
    c = float(config.c0)
    key, k = jax.random.split(key)
    means, entropy, bad, norms, pvals, ok = assess(params, k)
    num_sims = abc_sims + sims_eval
    history.append(epoch=0, iterations=0, entropy=entropy, constraint_means=means.mean(0).tolist(),
                   residual_norm=float(norms.mean()), p_values=pvals.tolist(), converged=ok, c=c, eta=eta.tolist(),
                   seconds=time.perf_counter() - t_start, num_simulations=num_sims, num_invalid=bad)
    best = (entropy, params, 0) if ok else None
    first_converged = 0 if ok else None
    t_converged = history.seconds[-1] if ok else None
    with Progress(TextColumn("[bold]EPI"), BarColumn(), TextColumn("{task.fields[info]}"), TimeElapsedColumn(),
                  disable=not progress) as bar:
        task = bar.add_task("epi", total=config.max_epochs, info="")
        for ep in range(1, config.max_epochs + 1):
            if first_converged is not None and ep - first_converged > config.epochs_after_convergence:
                break
            if config.max_seconds is not None and time.perf_counter() - t_start > config.max_seconds:
                break
            key, k_epoch, k_assess = jax.random.split(key, 3)
            params, losses, bad_train = epoch(params, k_epoch, jnp.asarray(eta), jnp.asarray(c, jnp.float32))
            if not np.isfinite(float(losses[-1])):
                raise TrainingError(f"the EPI objective became {float(losses[-1])} in epoch {ep} (c = {c:g}); "
                                    "lower learning_rate or c0, or check that the statistics are finite")
            previous_norms = norms
            means, entropy, bad, norms, pvals, ok = assess(params, k_assess)
            residual = means.mean(0) - np.asarray(targets)
            eta = (eta + c * residual).astype(np.float32)
            if penalty_should_grow(norms, previous_norms, config.gamma, rng.uniform()):
                c *= config.beta
            num_sims += sims_epoch + sims_eval
            elapsed = time.perf_counter() - t_start
            history.append(epoch=ep, iterations=ep * config.iterations_per_epoch, entropy=entropy,
                           constraint_means=means.mean(0).tolist(), residual_norm=float(norms.mean()),
                           p_values=pvals.tolist(), converged=ok, c=c, eta=eta.tolist(), seconds=elapsed,
                           num_simulations=num_sims, num_invalid=int(bad) + int(bad_train))
            if ok:
                if first_converged is None:
                    first_converged, t_converged = ep, elapsed
                if best is None or entropy > best[0]:
                    best = (entropy, params, ep)
            line = (f"epoch {ep} H {entropy:.3f} |R|² {norms.mean():.2e} c {c:.1e} min p {pvals.min():.3f}"
                    f"{' converged' if ok else ''}")
            bar.update(task, advance=1, info=line)
            logger.info("%s (%.0f s)", line, elapsed)
    converged = best is not None
    if not converged:
        warnings.warn(f"EPI did not converge in {history.epoch[-1]} epochs; the last epoch's distribution is "
                      "returned (info['converged'] is False). Raise max_epochs or c0.", stacklevel=2)
        best = (history.entropy[-1], params, history.epoch[-1])
    chosen = history.epoch.index(best[2])
    total = time.perf_counter() - t_start
    info = {
        "property": prop.summary(),
        "constraint_names": list(prop.constraint_names),
        "targets": np.asarray(targets).tolist(),
        "converged": converged,
        "epoch": best[2],
        "first_converged_epoch": first_converged,
        "entropy": history.entropy[chosen],
        "p_values": history.p_values[chosen],
        "constraint_means": history.constraint_means[chosen],
        "num_simulations": history.num_simulations[-1],
        "num_simulations_to_convergence": (None if first_converged is None else
                                           history.num_simulations[history.epoch.index(first_converged)]),
        "num_training_simulations_to_convergence": (None if first_converged is None else
                                                    first_converged * sims_epoch),
        "num_invalid": int(sum(history.num_invalid)),
        "timings": {"init_s": t_init, "to_convergence_s": t_converged, "total_s": total},
        "config": dataclasses.asdict(config),
        "history": history.to_dict(),
    }
    return EPIDistribution(flow=eqx.combine(best[1], static), spec=config.flow, param_names=names, info=info)


def _support(model, bounds):
    if model is None and bounds is None:
        raise ValueError("pass a model (its prior's box is the support) or bounds=(low, high)")
    if bounds is None:
        box = _priors.bounds(model.prior)
        d = len(model.param_names)
        low, high = box if box is not None else (np.full(d, -np.inf), np.full(d, np.inf))
    else:
        low, high = bounds
    low, high = np.asarray(low, np.float32).ravel(), np.asarray(high, np.float32).ravel()
    if low.shape != high.shape or not np.all(high > low):
        raise ValueError(f"bounds must be two equal-length vectors with high > low, got {low} and {high}")
    names = tuple(model.param_names) if model is not None else tuple(f"z_{i}" for i in range(low.shape[0]))
    if len(names) != low.shape[0]:
        raise ValueError(f"{len(names)} parameter names for {low.shape[0]} bounds")
    return low, high, names

