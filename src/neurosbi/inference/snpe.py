"""Sequential neural posterior estimation: several rounds of simulations focused on one observation.

Two methods, both on the same flows and training loop as amortized NPE (``fit_npe``):

- ``"tsnpe"`` (truncated sequential NPE; Deistler, Gonçalves & Macke 2022). Round 1 simulates from
  the prior. Each later round simulates from the prior truncated to the current posterior's highest
  probability region: prior draws whose ``log q(θ | x_o)`` is above the ``epsilon`` quantile of
  ``log q`` under ``q`` itself (rejection sampling). Every round retrains by maximum likelihood on all
  simulations so far, which stays a valid NPE loss because the truncated prior equals the prior,
  renormalised, wherever the posterior has mass.
- ``"apt"`` (SNPE-C / automatic posterior transformation; Greenberg, Nonnenmacher & Macke 2019).
  Later rounds simulate from the current posterior at ``x_o``; every round retrains with the atomic
  loss on all simulations so far (``fit_npe(..., num_atoms=K)``). With a box prior, APT always
  trains in the box's logit space (``NPEConfig(support="logit")``, as sbi's ``support_map``): the atomic
  loss only compares parameters inside the box, so it leaves free the mass an unbounded flow puts
  outside it (measured on the rank-2 RNN, N = 2: after round 2, none of 10 million draws fell inside).

Invalid simulations (NaN features) are counted per round and left out of training. The budget is
stated in simulations: ``simulations_per_round`` (one number, or one per round).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

import jax
import jax.numpy as jnp
import numpy as np
from rich.console import Console

from .. import priors as _priors
from .._errors import ObservationError
from ..simulate import Bank, bank_identity, load_bank, simulate
from .npe import NPEConfig, Posterior, TrainingHistory, fit_npe, load_posterior
from .restriction import fit_validity, load_validity

_console = Console(stderr=True)
RESTRICT_ABOVE = 0.05  # share of invalid simulations above which ``restrict`` fits the classifier
RESTRICT_KEEP = 0.99  # share of valid parameters the restriction keeps, unless told


@dataclass
class RoundReport:
    """What one round did: its simulations, their proposal, and the posterior it trained."""

    round: int
    num_simulations: int
    num_invalid: int  # NaN features, screened-out simulations included
    num_screened: int  # stopped after the model's pilot (``Model.screens``)
    proposal: str
    acceptance: float | None
    simulate_s: float
    train_s: float
    epochs: int
    validation_loss: float
    posterior_mean: list[float]
    posterior_std: list[float]
    restriction: dict | None = None  # the validity classifier fitted after this round, if any
    retrained: bool = True  # False: not trained in this run (reloaded from ``bank_dir``, or not needed)


@dataclass
class SequentialResult:
    posterior: Posterior
    rounds: list[RoundReport] = field(default_factory=list)
    theta: np.ndarray | None = None
    x: np.ndarray | None = None
    valid: np.ndarray | None = None
    history: TrainingHistory | None = None

    def as_dict(self) -> dict:
        return {"rounds": [r.__dict__ for r in self.rounds]}


def truncated_prior_sample(prior, posterior: Posterior, x_o, key, n: int, *, epsilon: float = 1e-4,
                           num_reference: int = 20_000, max_draws: int = 50_000_000, accept=None):
    """``n`` prior draws inside the ``1 - epsilon`` highest-probability region of ``posterior`` at
    ``x_o`` (and where ``accept(theta)`` is True, if given: the predicted-valid region); also returns
    the acceptance rate. Raises when the region holds too little prior mass to sample by rejection
    (then ``method="apt"`` is the tool)."""
    k_ref, key = jax.random.split(key)
    reference = posterior.sample(k_ref, num_reference, x_o)
    threshold = float(jnp.quantile(posterior.log_prob(reference, x_o), epsilon))
    kept, drawn, accepted = [], 0, 0
    batch = max(4 * n, 65_536)
    while accepted < n:
        if drawn >= max_draws:
            raise ObservationError(
                f"the posterior's high-probability region holds about {accepted / max(drawn, 1):.1e} of the prior: "
                f"{accepted} of {drawn} prior draws accepted; use method='apt' for so narrow a posterior"
            )
        key, k = jax.random.split(key)
        theta = np.asarray(prior.sample(k, (batch,)))
        if accept is not None:
            theta = theta[accept(theta)]
        inside = np.asarray(posterior.log_prob(jnp.asarray(theta), x_o) >= threshold) if len(theta) else np.zeros(0, bool)
        kept.append(theta[inside])
        accepted += int(inside.sum())
        drawn += batch
    return np.concatenate(kept)[:n], accepted / drawn


def _finished_bank(path, model, n, key) -> Bank | None:
    """The bank at ``path`` if it holds all ``n`` simulations of ``model`` as configured now, made with
    ``key``, else None."""
    if path is None or not Path(path).exists():
        return None
    try:
        bank, meta = load_bank(path)
    except Exception:  # not a bank (yet): ``simulate`` will say what is wrong
        return None
    same = all(meta.get(k) == v for k, v in bank_identity(model, n, key).items())
    return bank if same and bank.stats["complete"] else None


def _training_identity(thetas, valids, key, **options) -> dict:
    """What a round's training depends on: its data (sizes), its key, and the options."""
    return {"num_simulations": int(sum(len(t) for t in thetas)), "num_valid": int(sum(v.sum() for v in valids)),
            "key": np.asarray(jax.random.key_data(key)).tolist(),
            **{k: (v.__dict__ if isinstance(v, NPEConfig) else v) for k, v in options.items()}}


def _save_trained(bank_dir, r, identity, report, posterior, validity, history) -> None:
    """Keep round ``r``'s posterior, validity classifier and report next to its bank."""
    stem = Path(bank_dir) / f"round_{r + 1}"
    posterior.save(stem.with_name(stem.name + "_posterior.nsbi"))
    if validity is not None:
        validity.save(stem.with_name(stem.name + "_validity.eqx"))
    record = {"identity": identity, "report": report.__dict__, "validity": validity is not None,
              "history": history.as_dict()}
    tmp = stem.with_name(stem.name + "_trained.json.tmp")  # written last, atomically: its presence means complete
    tmp.write_text(json.dumps(record, default=float))
    tmp.replace(stem.with_name(stem.name + "_trained.json"))


def _load_trained(bank_dir, r, identity):
    """Round ``r``'s (report, posterior, validity, training history) as saved by ``_save_trained`` for
    the same training identity, else None."""
    if bank_dir is None:
        return None
    stem = Path(bank_dir) / f"round_{r + 1}"
    record_path = stem.with_name(stem.name + "_trained.json")
    if not record_path.exists():
        return None
    record = json.loads(record_path.read_text())
    if record["identity"] != json.loads(json.dumps(identity, default=float)):
        return None
    posterior = load_posterior(stem.with_name(stem.name + "_posterior.nsbi"))
    validity = load_validity(stem.with_name(stem.name + "_validity.eqx")) if record["validity"] else None
    report = RoundReport(**{**record["report"], "retrained": False})
    history = TrainingHistory(**record["history"]) if "history" in record else None
    return report, posterior, validity, history


def restricted_posterior_sample(posterior, x_o, key, n: int, accept=None, max_rounds: int = 50) -> np.ndarray:
    """``n`` posterior draws at ``x_o``, only those where ``accept(theta)`` is True if given (the
    predicted-valid region of a ``Validity``), by rejection."""
    if accept is None:
        return np.asarray(posterior.sample(key, n, x_o))
    kept, total = [], 0
    for i in range(max_rounds):
        theta = np.asarray(posterior.sample(jax.random.fold_in(key, i), 2 * n, x_o))
        theta = theta[accept(theta)]
        kept.append(theta)
        total += len(theta)
        if total >= n:
            return np.concatenate(kept)[:n]
    raise ObservationError("the posterior puts almost no mass where simulations are predicted valid; "
                           "run without restrict")


def sequential_npe(
    model,
    x_o,
    *,
    key,
    rounds: int = 4,
    simulations_per_round: int | list[int] = 2_000,
    method: Literal["tsnpe", "apt"] = "tsnpe",
    config: NPEConfig | None = None,
    num_atoms: int = 10,
    epsilon: float = 1e-4,
    chunk_size: int = 1024,
    progress: bool = True,
    embedding=None,
    restrict: bool = False,
    restrict_keep: float = RESTRICT_KEEP,
    bank_dir=None,
    callback=None,
    warm_start: bool = True,
) -> SequentialResult:
    """Infer ``model``'s parameters at one observation ``x_o`` (features) in ``rounds`` rounds.

    Args:
        model: a ``neurosbi.models.Model``.
        x_o: the observed features ``[n_features]``.
        key: PRNG key.
        rounds: number of rounds (1 = amortized NPE).
        simulations_per_round: simulations in each round (one number or a list of ``rounds``).
        method: ``"tsnpe"`` or ``"apt"`` (see the module docstring).
        config: flow and training options.
        num_atoms: atoms of the APT loss.
        epsilon: TSNPE truncation: the prior is kept where ``log q`` exceeds its ``epsilon`` quantile.
        chunk_size: simulations per compiled call.
        progress: progress bars.
        embedding: an embedding net trained with the flow in every round (see ``fit_npe``).
        restrict: after each round in which more than ``RESTRICT_ABOVE`` (5 %) of all simulations so
            far were invalid, train a classifier of valid vs invalid on them and propose later rounds
            only where it predicts valid (``fit_validity``; Deistler et al. 2022); for models where
            much of the prior gives undefined features (pyloric: 99 %).
        restrict_keep: the share of valid parameters the restriction must keep (``fit_validity``'s
            ``keep_valid``): lower concentrates proposals on valid simulations (pyloric: 0.9 doubles
            their share) at the cost of never proposing the rest of the valid region.
        warm_start: each round's training starts from the previous round's posterior (``fit_npe``'s
            ``init``), as sbi does; False: from a fresh network every round.
        callback: ``callback(report, posterior)`` after each round (its ``RoundReport`` and the posterior
            it trained), for a user's own checks; returning True stops after that round.
        bank_dir: keep each round's simulations in ``bank_dir/round_R.zarr`` and, once trained, its
            posterior, validity classifier and report (``round_R_posterior.nsbi``,
            ``round_R_validity.eqx``, ``round_R_trained.json``); a rerun with the same arguments reloads
            finished rounds and their trained posteriors and resumes an interrupted one. A reloaded
            round is reported with ``retrained=False`` and the callback skips it; so is a finished round
            trained by an older version (no saved posterior) whose next round is finished too (its
            posterior only chose that next round's parameters).
    """
    if method not in ("tsnpe", "apt"):
        raise ValueError(f"method must be 'tsnpe' or 'apt', got {method!r}")
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1, got {rounds}")
    if not 0.0 < restrict_keep <= 1.0:
        raise ValueError(f"restrict_keep must be in (0, 1], got {restrict_keep}")
    budget = [simulations_per_round] * rounds if np.isscalar(simulations_per_round) else list(simulations_per_round)
    if len(budget) != rounds or min(budget) < 1:
        raise ValueError(f"simulations_per_round must be a positive number or {rounds} of them, got {simulations_per_round}")
    x_o = model.check_observation(x_o)
    prior = model.prior
    config = config or NPEConfig()
    if method == "apt" and rounds > 1 and config.support == "truncate" and _priors.bounds(prior) is not None:
        config = replace(config, support="logit")  # see the module docstring
    thetas, xs, valids, reports = [], [], [], []
    posterior = history = None
    posterior_round = None  # the round whose posterior ``posterior`` is
    validity = None
    paths = [None if bank_dir is None else Path(bank_dir) / f"round_{r + 1}.zarr" for r in range(rounds)]
    round_keys = []
    for r in range(rounds):  # (proposal, simulation, training) keys of each round
        k_prop, k_sim, k_train, key = jax.random.split(jax.random.fold_in(key, r), 4)
        round_keys.append((k_prop, k_sim, k_train))
    finished = [_finished_bank(paths[r], model, budget[r], round_keys[r][1]) for r in range(rounds)]
    for r in range(rounds):
        k_prop, k_sim, k_train = round_keys[r]
        acceptance = None
        accept = None if validity is None else validity.accept
        t0 = time.perf_counter()
        if finished[r] is not None:
            bank, proposal = finished[r], "reloaded from " + str(paths[r])
        else:
            if r == 0:
                theta, proposal = None, "prior"
            elif method == "tsnpe":
                theta, acceptance = truncated_prior_sample(prior, posterior, x_o, k_prop, budget[r], epsilon=epsilon,
                                                           accept=accept)
                proposal = "truncated prior" + (" in the predicted-valid region" if accept else "")
            else:
                theta = restricted_posterior_sample(posterior, x_o, k_prop, budget[r], accept)
                proposal = "posterior" + (" in the predicted-valid region" if accept else "")
            t0 = time.perf_counter()
            bank = simulate(model, budget[r], k_sim, theta=theta, chunk_size=min(chunk_size, budget[r]),
                            progress=progress, path=paths[r])
        simulate_s = time.perf_counter() - t0
        thetas.append(bank.theta), xs.append(bank.x), valids.append(bank.valid)
        if bank.num_invalid:
            screened = f", {bank.num_screened} of them screened out by the pilot run" if bank.num_screened else ""
            _console.print(f"[yellow]round {r + 1}: {bank.num_invalid} of {len(bank)} simulations invalid (NaN"
                           f"{screened}); excluded from training")
        atoms = num_atoms if (method == "apt" and r > 0) else None
        init = posterior if (warm_start and posterior_round == r - 1) else None
        identity = _training_identity(thetas, valids, k_train, method=method, config=config,
                                      num_atoms=atoms, restrict=restrict, restrict_keep=restrict_keep,
                                      embedding=None if embedding is None else type(embedding).__name__,
                                      warm_start=init is not None)
        saved = _load_trained(bank_dir, r, identity) if finished[r] is not None else None
        if saved is not None:
            report, posterior, refit, saved_history = saved
            posterior_round = r
            history = saved_history or history
            validity = refit if refit is not None else validity
            report.proposal, report.simulate_s = proposal, simulate_s
            reports.append(report)
            if progress:
                _console.print(f"round {r + 1}/{rounds}: posterior and classifier reloaded from {bank_dir}")
            continue
        if r + 1 < rounds and finished[r] is not None and finished[r + 1] is not None:
            reports.append(RoundReport(
                round=r + 1, num_simulations=len(bank), num_invalid=bank.num_invalid,
                num_screened=bank.num_screened, proposal=proposal, acceptance=None, simulate_s=simulate_s,
                train_s=0.0, epochs=0, validation_loss=float("nan"), posterior_mean=[], posterior_std=[],
                retrained=False))
            continue
        t0 = time.perf_counter()
        posterior, history = fit_npe(
            np.concatenate(thetas), np.concatenate(xs), prior, key=k_train, config=config,
            param_names=model.param_names, valid=np.concatenate(valids), progress=progress, num_atoms=atoms,
            embedding=embedding, init=init,
        )
        posterior_round = r
        train_s = time.perf_counter() - t0
        samples = np.asarray(posterior.sample(jax.random.fold_in(k_train, 1), 2_000, x_o))
        restriction = None
        all_valid = np.concatenate(valids)
        if restrict and r + 1 < rounds and (~all_valid).mean() > RESTRICT_ABOVE:
            validity = fit_validity(np.concatenate(thetas), all_valid, jax.random.fold_in(k_train, 2),
                                    keep_valid=restrict_keep)
            restriction = {"valid_fraction": validity.valid_fraction, "kept_invalid": validity.kept_invalid,
                           "threshold": validity.threshold}
        report = RoundReport(
            round=r + 1, num_simulations=len(bank), num_invalid=bank.num_invalid,
            num_screened=bank.num_screened, proposal=proposal,
            acceptance=acceptance, simulate_s=simulate_s, train_s=train_s, epochs=history.epochs,
            validation_loss=history.validation_loss[history.best_epoch],
            posterior_mean=samples.mean(0).tolist(), posterior_std=samples.std(0).tolist(),
            restriction=restriction,
        )
        if bank_dir is not None:
            _save_trained(bank_dir, r, identity, report, posterior, validity if restriction is not None else None,
                          history)
        if progress:
            _console.print(f"round {r + 1}/{rounds} ({proposal}): {len(bank)} simulations, posterior std "
                           f"{np.array2string(samples.std(0), precision=3)}")
        reports.append(report)
        if callback is not None and callback(report, posterior) is True:
            if progress:
                _console.print(f"stopped after round {r + 1} of {rounds}: the callback asked to")
            break
    return SequentialResult(posterior=posterior, rounds=reports, theta=np.concatenate(thetas),
                            x=np.concatenate(xs), valid=np.concatenate(valids), history=history)


