"""Can any parameter of the model explain the observation? Tests with calibrated nulls.

Each test compares the observation with the model's prior-predictive simulations and returns a
p-value whose null distribution is made of held-out simulations treated exactly as the observation
is. Under a well-specified model the observation and those simulations are exchangeable, so the
p-value is uniform (the rank argument; p = (1 + #{null ≥ observed}) / (1 + #null)) whatever the
quality of the kernel or the fitted density: those only decide the power.

- ``mmd_test``: maximum mean discrepancy (Gaussian kernel, median-heuristic bandwidth) between the
  observation(s) and a reference set of simulations, in z-scored feature space or in a learned
  embedding space (``Posterior.summary``: the embedding net's output, or the posterior mean). With one
  observation the MMD is a kernel density estimate of the simulations at the observation, read as a
  distance. (sbi's ``calc_misspecification_mmd`` computes the same statistic on unscaled features;
  here features are z-scored first so that no single large-valued feature sets the bandwidth.)
- ``density_test``: log q(x_o) under a flow fitted to simulated features (``fit_density``), ranked
  among the log densities of held-out simulations.
- ``feature_table``: which features are misspecified, from the RNPE error model
  (``inference.robust.denoise``).
- ``c2st_test``: many observations at once; a classifier tells them from simulations.
- ``check_observation``: all of the above for one observation, with one verdict (Bonferroni over
  the tests run, so the verdict's type-I error is at most ``alpha``); ``Detector`` sets the tests up
  once for many observations (robustness sweeps).

The tests are written here (not taken from sbi) because the stack is JAX and the kernel sums are a
few lines; the kernel MMD follows Gretton et al. (2012), the use for SBI Schmitt et al. (2023).
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field

import jax
import jax.numpy as jnp
import numpy as np
from scipy import stats

from .._errors import ObservationError, ShapeError
from ..inference.density import FeatureDensity, fit_density
from ..inference.kernels import sq_dists
from ..inference.npe import NPEConfig
from ..inference.robust import denoise
from .c2st import c2st

FLAG_THRESHOLD = 0.8  # a feature is reported misspecified above this posterior probability (prior 0.5)


@dataclass(frozen=True)
class TestResult:
    """One test's outcome: ``statistic`` (larger = farther from the model), ``pvalue``, the test's name,
    the space it worked in and the size of its null distribution."""

    name: str
    statistic: float
    pvalue: float
    num_null: int
    space: str = "features"

    def as_dict(self) -> dict:
        return asdict(self)


def _as_rows(x_o, num_features: int, what: str = "x_o") -> np.ndarray:
    x_o = np.asarray(x_o, np.float32)
    if x_o.ndim == 1:
        x_o = x_o[None]
    if x_o.ndim != 2 or x_o.shape[1] != num_features:
        raise ShapeError(f"{what} must be [{num_features}] or [m, {num_features}] features, got shape {x_o.shape}")
    if not np.all(np.isfinite(x_o)):
        bad = np.flatnonzero(~np.all(np.isfinite(x_o), axis=0)).tolist()
        raise ObservationError(f"{what} has NaN or infinite values in feature columns {bad}: the model cannot "
                               "be checked on a feature it did not produce; drop those columns from both")
    return x_o


def _finite_rows(x) -> np.ndarray:
    x = np.asarray(x, np.float32)
    if x.ndim != 2:
        raise ShapeError(f"simulated features must be [n, features], got shape {x.shape}")
    return x[np.all(np.isfinite(x), axis=1)]


def _rank_pvalue(observed: float, null: np.ndarray) -> float:
    return float((1 + np.sum(null >= observed)) / (1 + len(null)))


@jax.jit
def _mean_kernel(a, b, bandwidth):
    """Row means of k(a_i, b_j) = exp(-|a_i - b_j|² / (2 h²)): ``[len(a)]``."""
    return jnp.mean(jnp.exp(-sq_dists(a, b) / (2 * bandwidth**2)), axis=1)


def median_bandwidth(x, max_rows: int = 1000) -> float:
    """Median pairwise distance of (at most ``max_rows``) rows of ``x``: the kernel bandwidth."""
    x = jnp.asarray(x[:max_rows], jnp.float32)
    d = np.sqrt(np.asarray(sq_dists(x, x)))
    return float(np.median(d[np.triu_indices(len(x), 1)]))


class MMDReference:
    """The simulation side of ``mmd_test``, computed once: the reference set, the bandwidth, and the null
    pool's kernel means (the whole null for single observations). ``test(x_o)`` then costs one row of
    kernel sums, so a sweep can test thousands of observations against one model."""

    def __init__(self, x_sim, key, *, num_reference: int = 2000, num_null: int = 1000, space: str = "features",
                 standardize: bool = True):
        x_sim = _finite_rows(x_sim)
        perm = np.asarray(jax.random.permutation(key, len(x_sim)))
        n_ref = min(num_reference, len(x_sim) // 2)
        ref, pool = x_sim[perm[:n_ref]], x_sim[perm[n_ref:]]
        if len(pool) < 20 or n_ref < 20:
            raise ShapeError(f"mmd_test needs at least 40 valid simulations, got {len(x_sim)}")
        self.loc, self.scale = (ref.mean(0), ref.std(0) + 1e-8) if standardize else (0.0, 1.0)
        ref, pool = (ref - self.loc) / self.scale, (pool - self.loc) / self.scale
        self.num_features, self.space, self.num_null, self.key = x_sim.shape[1], space, num_null, key
        self.bandwidth = median_bandwidth(ref)
        self.ref = jnp.asarray(ref)
        self.pool = jnp.asarray(pool)
        self.ref_ref = float(jnp.mean(_mean_kernel(self.ref, self.ref, self.bandwidth)))
        self.pool_to_ref = np.asarray(_mean_kernel(self.pool, self.ref, self.bandwidth))

    def test(self, x_o) -> TestResult:
        """MMD² (V-statistic) of observation(s) ``x_o`` ([d] or [m, d]) against the reference, with its p-value
        among ``num_null`` sets of ``m`` pool rows."""
        x_o = (_as_rows(x_o, self.num_features) - self.loc) / self.scale
        m, h = len(x_o), self.bandwidth
        if len(self.pool) < max(m, 20):
            raise ShapeError(f"mmd_test of {m} observations needs at least {m} pool simulations, got {len(self.pool)}")
        x_o_j = jnp.asarray(x_o, jnp.float32)
        observed = float(jnp.mean(_mean_kernel(x_o_j, x_o_j, h)) - 2 * jnp.mean(_mean_kernel(x_o_j, self.ref, h))
                         + self.ref_ref)
        if m == 1:  # k(y, y) = 1
            null = 1.0 - 2 * self.pool_to_ref[: self.num_null] + self.ref_ref
        else:  # num_null sets of m distinct pool rows, all at once
            keys = jax.random.split(jax.random.fold_in(self.key, 1), self.num_null)
            idx = jax.vmap(lambda k: jax.random.choice(k, len(self.pool), (m,), replace=False))(keys)
            sets = self.pool[idx]
            self_terms = jax.vmap(lambda y: jnp.mean(_mean_kernel(y, y, h)))(sets)
            null = np.asarray(self_terms - 2 * jnp.asarray(self.pool_to_ref)[idx].mean(axis=1) + self.ref_ref)
        return TestResult("mmd", observed, _rank_pvalue(observed, null), len(null), self.space)


def mmd_test(x_o, x_sim, key, *, num_reference: int = 2000, num_null: int = 1000, space: str = "features",
             standardize: bool = True) -> TestResult:
    """MMD two-sample test of observation(s) ``x_o`` ([d] or [m, d]) against simulations ``x_sim [n, d]``.

    The simulations are split at random into a reference set (``num_reference`` rows) and a null pool;
    the null distribution is the MMD of ``num_null`` sets of ``m`` pool rows against the same
    reference. Features are z-scored with the reference statistics when ``standardize``.
    Rows of ``x_sim`` with NaN are dropped (invalid simulations are no evidence either way).
    For many observations against the same simulations build one ``MMDReference``.

    Returns:
        ``TestResult`` with the biased (V-statistic) MMD² of the observation.
    """
    return MMDReference(x_sim, key, num_reference=num_reference, num_null=num_null, space=space,
                        standardize=standardize).test(x_o)


def density_test(x_o, density: FeatureDensity, x_null=None, *, null_log_prob=None) -> TestResult:
    """Is ``x_o`` typical of the model? ``-log q(x_o)`` ranked among ``-log q`` of held-out simulations
    ``x_null`` (never used to fit ``density``), or among their precomputed ``null_log_prob``. With ``m``
    observations the statistic is the sum over them, and the null sums of ``m`` consecutive held-out rows."""
    x_o = _as_rows(x_o, density.num_features)
    m = len(x_o)
    if null_log_prob is None:
        null_log_prob = np.asarray(density.log_prob(_finite_rows(x_null)), np.float64)
    if len(null_log_prob) < 20 * m:
        raise ShapeError(f"density_test needs at least {20 * m} held-out simulations, got {len(null_log_prob)}")
    observed = -float(np.sum(np.asarray(density.log_prob(x_o))))
    null_lp = np.where(np.isfinite(null_log_prob), -null_log_prob, np.inf)  # outside q's support counts as extreme
    null = null_lp[: (len(null_lp) // m) * m].reshape(-1, m).sum(axis=1)
    return TestResult("density", observed, _rank_pvalue(observed, null), len(null))


def c2st_test(x_obs, x_sim, key, **c2st_kwargs) -> TestResult:
    """Many observations ``x_obs [m, d]`` against simulations: classifier two-sample test.

    Accuracy of a cross-validated classifier (``c2st``) on balanced data; p-value from the normal
    approximation of the null, accuracy ~ N(1/2, 1/(4 N)) with N the number of samples classified.
    Needs m ≥ 20 (a few hundred for useful power).
    """
    x_sim = _finite_rows(x_sim)
    x_obs = _as_rows(x_obs, x_sim.shape[1], "x_obs")
    if len(x_obs) < 20:
        raise ShapeError(f"c2st_test needs at least 20 observations, got {len(x_obs)}; for one observation use "
                         "mmd_test or density_test")
    k_pick, k_run = jax.random.split(key)
    n = min(len(x_obs), len(x_sim))
    sim = x_sim[np.asarray(jax.random.choice(k_pick, len(x_sim), (n,), replace=False))]
    accuracy = c2st(x_obs[:n], sim, k_run, **c2st_kwargs)
    z = (accuracy - 0.5) * 2 * np.sqrt(2 * n)
    return TestResult("c2st", float(accuracy), float(stats.norm.sf(z)), 0)


@dataclass
class MisspecificationReport:
    """Verdict for one observation: the tests, the per-feature table and the decision.

    ``misspecified`` is True when the smallest p-value is below ``alpha`` divided by the number of
    tests (Bonferroni; ``pvalue`` is that adjusted p-value). ``features`` lists, per feature, its name, the observed value, its z-score
    among the simulations and the probability that the model cannot match it.
    """

    tests: list[TestResult]
    features: list[dict]
    alpha: float
    num_simulations: int
    notes: list[str] = field(default_factory=list)

    @property
    def threshold(self) -> float:
        return self.alpha / max(len(self.tests), 1)

    @property
    def pvalue(self) -> float:
        """The verdict's p-value: the smallest test p-value times the number of tests (Bonferroni), at most 1."""
        return min(1.0, len(self.tests) * min(t.pvalue for t in self.tests))

    @property
    def misspecified(self) -> bool:
        return self.pvalue < self.alpha

    @property
    def flagged(self) -> list[str]:
        return [f["name"] for f in self.features if f.get("p_misspecified", 0.0) > FLAG_THRESHOLD]

    def summary(self) -> str:
        pv = ", ".join(f"{t.name}[{t.space}] p={t.pvalue:.3g}" for t in self.tests)
        if not self.misspecified:
            return f"consistent with the model at alpha={self.alpha} ({pv})"
        worst = f"; features it cannot match: {', '.join(self.flagged)}" if self.flagged else ""
        return f"MISSPECIFIED: no parameter of the model explains the observation ({pv}){worst}"

    def as_dict(self) -> dict:
        return {"verdict": "misspecified" if self.misspecified else "consistent", "pvalue": self.pvalue,
                "alpha": self.alpha,
                "bonferroni_threshold": self.threshold, "num_simulations": self.num_simulations,
                "flag_threshold": FLAG_THRESHOLD, "flagged": self.flagged,
                "tests": [t.as_dict() for t in self.tests], "features": self.features, "notes": self.notes}


def feature_table(x_o, x_sim, density: FeatureDensity | None, key, feature_names=None, **denoise_kwargs) -> list[dict]:
    """Per feature: observed value, z-score among simulations, and (with a density) the probability
    that the model cannot match it (RNPE error model)."""
    x_sim = _finite_rows(x_sim)
    x_o = _as_rows(x_o, x_sim.shape[1])[0]
    names = list(feature_names or (f"x_{j}" for j in range(len(x_o))))
    if len(names) != len(x_o):
        raise ShapeError(f"{len(names)} feature names for {len(x_o)} features")
    z = (x_o - x_sim.mean(0)) / (x_sim.std(0) + 1e-12)
    rows = [{"name": n, "observed": float(v), "zscore": float(s)} for n, v, s in zip(names, x_o, z)]
    if density is not None:
        result = denoise(x_o, density, key, **denoise_kwargs)
        for row, p, r in zip(rows, result.probabilities, result.rhat):
            row["p_misspecified"] = float(p)
            row["rhat"] = float(r)
    return rows


class Detector:
    """The detection tests of ``check_observation``, set up once and applied to many observations.

    Setting up fits the feature density and, with a posterior, embeds the reference simulations; a
    robustness sweep then tests hundreds of observations against the same model at the cost of the
    kernel sums alone. ``check_observation`` is ``Detector(...).check(x_o, key)``.

    Args:
        x_sim: prior-predictive features ``[n, d]`` (NaN rows, invalid simulations, are dropped and counted).
        key: PRNG key (the split of the simulations into density-fitting, reference and null sets).
        posterior: optional trained posterior whose ``summary`` gives the learned space.
        x_embedding: prior-predictive simulations the posterior was not trained on, for the test in its
            learned space (default ``x_sim``; training rows can look more typical than new data there).
        density, density_config, max_density_train, max_density_features, num_null, progress: as
            ``check_observation``.
    """

    def __init__(self, x_sim, key, *, posterior=None, x_embedding=None, density: FeatureDensity | None = None,
                 density_config: NPEConfig | None = None, max_density_train: int = 20_000,
                 max_density_features: int = 64, num_null: int = 1000, progress: bool = False):
        x_all = np.asarray(x_sim, np.float32)
        x_sim = _finite_rows(x_all)
        self.num_simulations = len(x_all)
        self.num_null = num_null
        self.notes: list[str] = []
        if len(x_sim) < len(x_all):
            self.notes.append(f"{len(x_all) - len(x_sim)} of {len(x_all)} simulations invalid (NaN), left out of "
                              "the tests")
        k_split, k_fit, k_emb = jax.random.split(key, 3)
        x_sim = x_sim[np.asarray(jax.random.permutation(k_split, len(x_sim)))]
        self.with_density = density is not None or x_sim.shape[1] <= max_density_features
        if not self.with_density:
            self.notes.append(f"{x_sim.shape[1]} features (raw traces?): the density test and the per-feature table "
                              f"need at most {max_density_features}; only the MMD tests were run")
        elif density is None:
            n_fit = min(max_density_train, len(x_sim) - max(num_null, 200))
            if n_fit < 200:
                raise ShapeError(f"check_observation needs at least {200 + max(num_null, 200)} valid simulations to "
                                 f"fit and test a feature density, got {len(x_sim)}; simulate more or pass density=")
            density, _ = fit_density(x_sim[:n_fit], key=k_fit, config=density_config, progress=progress)
            self.held_out = x_sim[n_fit:]
        else:
            self.held_out = x_sim
        self.x_sim, self.density, self.posterior = x_sim, density, posterior
        k_mmd, k_emb_mmd = jax.random.split(k_emb)
        self.mmd = MMDReference(x_sim, k_mmd, num_null=num_null)
        self.mmd_summary = None
        if posterior is not None:
            x_emb = x_sim if x_embedding is None else _finite_rows(x_embedding)
            s_ref = np.asarray(posterior.summary(x_emb[: 2000 + num_null], k_emb))
            self.mmd_summary = MMDReference(s_ref, k_emb_mmd, num_null=num_null, space="posterior summary")
        if self.with_density:
            null_x = self.held_out[:max(num_null, 200)]
            self.null_log_prob = np.asarray(density.log_prob(null_x), np.float64)

    def tests(self, x_o, key) -> list[TestResult]:
        """The p-values of one observation ``x_o [d]``: MMD in feature space, MMD in the posterior's
        learned space (with a posterior; ``key`` draws its summary), density test (with a density)."""
        x_o = _as_rows(x_o, self.x_sim.shape[1])[0]
        tests = [self.mmd.test(x_o)]
        if self.posterior is not None:
            tests.append(self.mmd_summary.test(np.asarray(self.posterior.summary(x_o[None], key))[0]))
        if self.with_density:
            tests.append(density_test(x_o, self.density, null_log_prob=self.null_log_prob))
        return tests

    def check(self, x_o, key, *, alpha: float = 0.05, feature_names=None,
              with_table: bool = True) -> MisspecificationReport:
        """The verdict for one observation: ``tests`` and, when ``with_table``, the per-feature table."""
        if not 0 < alpha < 1:
            raise ValueError(f"alpha must be in (0, 1), got {alpha}")
        k_tests, k_table = jax.random.split(key)
        tests = self.tests(x_o, k_tests)
        table = []
        if with_table:
            table = feature_table(x_o, self.x_sim, self.density if self.with_density else None, k_table,
                                  feature_names)
            if any(r.get("rhat", 1.0) > 1.1 for r in table):
                warnings.warn("the per-feature error model did not converge for some features (R-hat > 1.1); its "
                              "probabilities are rough", stacklevel=2)
        return MisspecificationReport(tests=tests, features=table, alpha=alpha, num_simulations=self.num_simulations,
                                      notes=list(self.notes))


def check_observation(x_o, x_sim, key, *, posterior=None, x_embedding=None, alpha: float = 0.05, feature_names=None,
                      density: FeatureDensity | None = None, density_config: NPEConfig | None = None,
                      max_density_train: int = 20_000, max_density_features: int = 64, num_null: int = 1000,
                      progress: bool = False) -> MisspecificationReport:
    """Every detection test for one observation ``x_o [d]`` against prior-predictive features ``x_sim``.

    Runs the MMD test in feature space, in the posterior's learned space (when ``posterior`` is
    given), the density test and the per-feature error model. A feature density is fitted unless one is
    given (then ``x_sim`` must be simulations it was not fitted on). ``x_sim`` must be drawn from the
    prior predictive: simulations from a sequential round's proposal are not the model's predictive.
    For many observations against one model build a ``Detector`` once.

    Args:
        x_o: observed features.
        x_sim: simulated features (NaN rows — invalid simulations — are dropped and counted).
        key: PRNG key.
        posterior: optional trained posterior whose ``summary`` gives the learned space.
        x_embedding: prior-predictive simulations the posterior was not trained on, for the test in its
            learned space (default ``x_sim``; training rows can look more typical than new data there).
        alpha: level of the verdict.
        feature_names: names for the table.
        density: an already fitted ``FeatureDensity`` (see above).
        density_config: flow options for fitting the density.
        max_density_train: at most this many simulations fit the density.
        max_density_features: with more features than this (raw traces), the density test and the
            per-feature error model are left out (a note says so); the MMD tests still run.
        num_null: size of each null distribution.
        progress: show the density's training progress.
    """
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    _as_rows(x_o, _finite_rows(x_sim).shape[1])  # a bad observation fails before the density is fitted
    k_setup, k_check = jax.random.split(key)
    detector = Detector(x_sim, k_setup, posterior=posterior, x_embedding=x_embedding, density=density,
                        density_config=density_config, max_density_train=max_density_train,
                        max_density_features=max_density_features, num_null=num_null, progress=progress)
    return detector.check(x_o, k_check, alpha=alpha, feature_names=feature_names)
