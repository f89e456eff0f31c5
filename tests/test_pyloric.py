"""The pyloric network: the compiled step against a plain float64 loop of the published scheme (seven
synapses, no shared states, the published voltage update), the features on hand-built traces with
known bursts, online flags against the trace, the example circuit's rhythm, and bad input."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from neurosbi import PriorSupportError, ShapeError
from neurosbi.features import PYLORIC_FEATURES, PyloricSummary
from neurosbi.models import get
from neurosbi.models.pyloric import EXPERIMENTAL_STD, OBSERVATION_845, PYLORIC_EXAMPLE, Pyloric

# --- the published scheme, written out once more as a plain loop (reference section 3.2) -------------
_KINETICS = {  # (p, m_inf (a, b), h_inf (a, b) or None)
    "Na": (3, (25.5, -5.29), (48.9, 5.18)),
    "CaT": (3, (27.1, -7.2), (32.1, 5.5)),
    "CaS": (3, (33.0, -8.1), (60.0, 6.2)),
    "A": (3, (27.2, -8.7), (56.9, 4.9)),
    "KCa": (4, (28.3, -12.6), None),
    "Kd": (4, (12.3, -11.8), None),
    "H": (1, (75.0, 5.5), None),
}
_CONNS = [(1, 0, -70.0, 40.0), (1, 0, -80.0, 100.0), (2, 0, -70.0, 40.0), (2, 0, -80.0, 100.0),
          (0, 1, -70.0, 40.0), (2, 1, -70.0, 40.0), (1, 2, -70.0, 40.0)]  # (post, pre, E_s, k_minus)


def _reference(theta, steps, dt=0.025):
    """V ``[3, steps + 1]`` of the published exponential-Euler loop without noise, float64, numpy."""
    sig = lambda v, a, b: 1.0 / (1.0 + np.exp((v + a) / b))  # noqa: E731
    tau_m = {
        "Na": lambda v: 2.64 - 2.52 * sig(v, 120, -25),
        "CaT": lambda v: 43.4 - 42.6 * sig(v, 68.1, -20.5),
        "CaS": lambda v: 2.8 + 14 / (np.exp((v + 27) / 10) + np.exp((v + 70) / -13)),
        "A": lambda v: 23.2 - 20.8 * sig(v, 32.9, -15.2),
        "KCa": lambda v: 180.6 - 150.2 * sig(v, 46, -22.7),
        "Kd": lambda v: 14.4 - 12.8 * sig(v, 28.3, -19.2),
        "H": lambda v: 2 / (np.exp(-14.59 - 0.086 * v) + np.exp(-1.87 + 0.0701 * v)),
    }
    tau_h = {
        "Na": lambda v: (1.34 / (1 + np.exp((v + 62.9) / -10))) * (1.5 + 1 / (1 + np.exp((v + 34.9) / 3.6))),
        "CaT": lambda v: 210 - 179.6 * sig(v, 55, -16.9),
        "CaS": lambda v: 120 + 300 / (np.exp((v + 55) / 9) + np.exp((v + 65) / -16)),
        "A": lambda v: 77.2 - 58.4 * sig(v, 38.9, -26.5),
    }
    names = list(_KINETICS)
    gbar = dict(zip([*names, "leak"], np.asarray(theta[:24]).reshape(3, 8).T * 0.628e-3))
    g_syn = np.exp(np.asarray(theta[24:]))
    rt = 8.31451e3 * 283 / (2 * 96485.3415)
    v = np.full(3, -50.0)
    ca = np.full(3, 0.05)
    m = {c: np.zeros(3) for c in names}
    h = {c: np.zeros(3) for c in names if _KINETICS[c][2]}
    s = np.zeros(7)
    out = [v.copy()]
    for _ in range(steps):
        cond = {c: gbar[c] * m[c] ** _KINETICS[c][0] * (h[c] if c in h else 1.0) for c in names}
        e_ca = rt * np.log(3000.0 / ca)
        i_ca = (cond["CaT"] + cond["CaS"]) * (v - e_ca)
        ca_inf = 0.05 - 14961 * i_ca
        ca_new = ca_inf + (ca - ca_inf) * math.exp(-dt / 200)
        gs, drive_s = np.zeros(3), np.zeros(3)
        for k, (post, _pre, e_s, _km) in enumerate(_CONNS):
            gs[post] += g_syn[k] * s[k]
            drive_s[post] += g_syn[k] * s[k] * e_s
        total = gs + sum(cond.values()) + gbar["leak"]
        drive = (drive_s + cond["Na"] * 50 + (cond["CaT"] + cond["CaS"]) * e_ca
                 + (cond["A"] + cond["KCa"] + cond["Kd"]) * -80 + cond["H"] * -20 + gbar["leak"] * -50)
        v_inf = drive / total
        v_new = v_inf + (v - v_inf) * np.exp(-dt * total / 0.6283e-3)
        for c in names:
            (a, b) = _KINETICS[c][1]
            m_inf = sig(v, a, b) * (ca / (ca + 3) if c == "KCa" else 1.0)
            m[c] = m_inf + (m[c] - m_inf) * np.exp(-dt / tau_m[c](v))
            if c in h:
                h_inf = sig(v, *_KINETICS[c][2])
                h[c] = h_inf + (h[c] - h_inf) * np.exp(-dt / tau_h[c](v))
        for k, (_post, pre, _e, k_minus) in enumerate(_CONNS):
            s_inf = 1 / (1 + np.exp((-35 - v[pre]) / 5))
            tau = k_minus * (1 - s_inf)
            s[k] = s_inf if dt > tau else s[k] + (s_inf - s[k]) * dt / tau
        v, ca = v_new, ca_new
        out.append(v.copy())
    return np.stack(out, axis=1)


def test_step_matches_published_loop_in_float64():
    """Noise off, float64: the compiled network (shared synaptic states, expm1 voltage update, unrolled
    groups) follows the plain loop of the published scheme through the first spikes to 1e-6 mV."""
    theta = PYLORIC_EXAMPLE.copy()
    model = Pyloric(duration=500.0, burn_in=100.0, noise_std=0.0, dtype="float64")
    want = _reference(theta, model.num_steps)
    with jax.enable_x64(True):
        got = np.asarray(jax.jit(model.simulate)(jax.random.key(0), jnp.asarray(theta[None], jnp.float64)))[0]
    assert got.shape == want.shape == (3, 20_001)
    assert want[0].max() > 0 and want[2].max() > 0, "AB/PD and PY should spike in the reference window"
    np.testing.assert_allclose(got, want, atol=1e-6, rtol=0)


# --- features on hand-built traces -------------------------------------------------------------------
DT, GROUP = 0.025, 10
SUMMARY = PyloricSummary(group_ms=DT * GROUP, group_steps=GROUP, num_groups=40_000, pyloric_flag=True)
_summary_fn = jax.jit(lambda v: SUMMARY.from_flags(SUMMARY.flags_from_traces(v, 1)))


def _trace(bursts, plateau=(), n=400_002, rest=-50.0):
    """Voltage with a spike (one sample at +20 mV) every 10 ms inside each ``(start, end)`` burst (ms,
    on the 0.25 ms grid) and ``plateau`` windows held at -20 mV; sample 1 is the window's time 0."""
    v = np.full(n, rest)
    for a, b in plateau:
        v[2 + round(a / DT) : 2 + round(b / DT)] = -20.0
    for a, b in bursts:
        for t in np.arange(a, b + 1e-9, 10.0):
            v[2 + round(t / DT)] = 20.0
    return v


def _triphasic(period=1000.0, pm=(0.0, 200.0), lp=(400.0, 650.0), py=(700.0, 950.0), n_cycles=10, **kw):
    shift = lambda w: [(w[0] + c * period, w[1] + c * period) for c in range(n_cycles)]  # noqa: E731
    return np.stack([_trace(shift(pm)), _trace(shift(lp), **kw), _trace(shift(py))])


def test_features_of_a_known_triphasic_rhythm():
    got = np.asarray(_summary_fn(jnp.asarray(_triphasic()[None], jnp.float32)))[0]
    want = {
        "cycle_period": 1000, "burst_length_PM": 200, "burst_length_LP": 250, "burst_length_PY": 250,
        "end_to_start_PM_LP": 200, "end_to_start_LP_PY": 50, "start_to_start_PM_LP": 400,
        "start_to_start_PM_PY": 700, "duty_cycle_PM": 0.2, "duty_cycle_LP": 0.25, "duty_cycle_PY": 0.25,
        "phase_gap_PM_LP": 0.2, "phase_gap_LP_PY": 0.05, "phase_LP": 0.4, "phase_PY": 0.7,
        "plateau_PM": 2.5, "plateau_LP": 2.5, "plateau_PY": 2.5, "pyloric_like": 1.0,
    }
    assert SUMMARY.names == (*PYLORIC_FEATURES, "pyloric_like")
    np.testing.assert_allclose(got, [want[n] for n in SUMMARY.names], rtol=1e-5)


def test_plateaus_short_bursts_and_order():
    # LP held above -30 mV for 120 ms in each burst: plateau 120 ms (one grid step of slack)
    v = _triphasic(plateau=[(400.0 + 1000 * c, 520.0 + 1000 * c) for c in range(10)])
    got = dict(zip(SUMMARY.names, np.asarray(_summary_fn(jnp.asarray(v[None], jnp.float32)))[0]))
    assert abs(got["plateau_LP"] - 120.0) <= 0.25 and got["plateau_PM"] == 2.5
    # an extra 30 ms burst of PY in each cycle is shorter than 40 ms: dropped, rhythm unchanged
    extra = _triphasic()
    extra[2] = np.maximum(extra[2], _trace([(250.0 + 1000 * c, 280.0 + 1000 * c) for c in range(10)]))
    got = np.asarray(_summary_fn(jnp.asarray(extra[None], jnp.float32)))[0]
    assert got[0] == 1000.0 and got[-1] == 1.0
    # PY before LP: triphasic, not pyloric-like
    swapped = _triphasic(lp=(700.0, 950.0), py=(400.0, 650.0))
    got = np.asarray(_summary_fn(jnp.asarray(swapped[None], jnp.float32)))[0]
    assert np.isfinite(got[:18]).all() and got[-1] == 0.0


def test_non_triphasic_rhythms_are_nan():
    silent_py = _triphasic()
    silent_py[2] = -50.0
    two_lp = _triphasic()
    two_lp[1] = np.maximum(two_lp[1], _trace([(820.0 + 1000 * c, 880.0 + 1000 * c) for c in range(10)]))
    got = np.asarray(_summary_fn(jnp.asarray(np.stack([silent_py, two_lp]), jnp.float32)))
    assert np.isnan(got[:, 4:8]).all() and np.isnan(got[:, 11:15]).all() and (got[:, -1] == 0).all()
    assert got[0, 0] == 1000.0  # the AB/PD period is still defined
    assert np.isnan(got[0, 3]) and np.isnan(got[0, 17])  # PY has no burst


# --- the simulator -----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def example_runs():
    """Two 11 s runs of the example circuit that write the flags and keep the traces."""
    model = Pyloric(pyloric_flag=True)
    theta = jnp.asarray(np.tile(PYLORIC_EXAMPLE, (2, 1)), jnp.float32)
    flags, traces = jax.jit(lambda k, th: model._run(k, th, record=True))(jax.random.key(1), theta)
    online = np.asarray(model.summary.from_flags(flags.T))
    return model, online, np.asarray(model.features(traces.transpose(2, 1, 0)))


def test_example_circuit_is_pyloric_near_the_preparation(example_runs):
    model, online, _ = example_runs
    assert (online[:, -1] == 1).all()
    distance = np.abs(online[:, :15] - OBSERVATION_845[:15]) / EXPERIMENTAL_STD
    assert (distance < 3).all(), distance.max(1)
    # noise matters: the runs are not copies of each other, but they agree within 5 % in period
    assert online[0, 0] != online[1, 0] and abs(online[0, 0] / online[1, 0] - 1) < 0.05


def test_online_flags_equal_trace_features(example_runs):
    """The flags the simulator writes as it runs are the flags ``features`` reads off the trace."""
    _, online, from_traces = example_runs
    np.testing.assert_array_equal(from_traces, online)


def test_description_and_bad_input():
    m = get("pyloric")
    assert len(m.param_names) == 31 and m.param_names[0] == "gNa_PM" and m.param_names[-1] == "log_g_PY_LP"
    assert m.feature_names == PYLORIC_FEATURES and m.observation.shape == (18,)
    assert m.check_theta(PYLORIC_EXAMPLE).shape == (1, 31)
    with pytest.raises(ShapeError, match="31"):
        m.check_theta(np.zeros((2, 30)))
    bad = PYLORIC_EXAMPLE.copy()
    bad[24] = 0.0  # ln g = 0: 1 mS, above the prior's 10 uS
    with pytest.raises(PriorSupportError, match="log_g_AB_LP"):
        m.check_theta(bad)
    with pytest.raises(ValueError, match="multiple of 100 ms"):
        Pyloric(duration=1050.0)
    with pytest.raises(ValueError, match="shorter"):
        Pyloric(duration=1000.0, burn_in=1000.0)
    with pytest.raises(ValueError, match="noise"):
        Pyloric(noise="poisson")
    assert Pyloric(plateaus=False).observation.shape == (15,)


@pytest.mark.heavy
def test_infer_pyloric_from_features_alone(tmp_path):
    """The whole job on a recorded feature vector (no traces): a bank around the example circuit on a
    3 s protocol, then every output but the trace-level check, and the feature-space checks."""
    from neurosbi import priors, simulate
    from neurosbi.workflow import infer

    model = Pyloric(duration=3000.0, burn_in=500.0)
    low, high = priors.bounds(model.prior)
    rng = np.random.default_rng(0)
    theta = PYLORIC_EXAMPLE + 0.05 * (high - low) * rng.uniform(-1, 1, size=(512, 31))
    theta = np.clip(theta, low, high)
    simulate(model, 512, jax.random.key(2), theta=theta, path=tmp_path / "bank.zarr", progress=False, chunk_size=512)
    x_o = np.asarray(model.simulate_features(jax.random.key(3), jnp.asarray(PYLORIC_EXAMPLE[None], jnp.float32)))[0]
    metrics = infer(model, out=tmp_path / "out", observed_features=x_o, bank_path=tmp_path / "bank.zarr",
                    num_posterior_samples=2000, num_coverage_tests=20, progress=False)
    out = tmp_path / "out"
    for name in ["ppc_features.png", "path.png", "perturbations.png", "pairplot.png", "report.html"]:
        assert (out / name).exists(), name
    assert not (out / "ppc.png").exists()  # no observed traces
    assert metrics["true_params"] is None and "posterior_predictive" not in metrics
    fp = metrics["feature_predictive"]
    assert fp["scale"] == "model.feature_scale" and 0.0 < fp["valid"] <= 1.0
    assert np.isnan(fp["median_abs_deviation"]["plateau_PM"])  # no experimental scale for plateaus
    assert 0.0 <= metrics["analysis"]["path"]["share_close_along_path"] <= 1.0


def test_screening_finishes_the_same_runs_and_passes_what_a_short_run_finds_pyloric():
    """``simulate`` with screening: a pilot to ``screen_ms``, then the rest from its state with the
    same noise. The finished runs have the unscreened features; the pilot passes exactly the circuits
    whose rhythm a run of ``screen_ms`` finds defined."""
    from neurosbi import priors, simulate

    protocol = dict(duration=3000.0, burn_in=500.0)
    low, high = priors.bounds(Pyloric().prior)
    theta = np.clip(PYLORIC_EXAMPLE + 0.05 * (high - low) * np.random.default_rng(0).uniform(-1, 1, (16, 31)),
                    low, high)

    def bank(**options):
        return simulate(Pyloric(**protocol, **options), 16, jax.random.key(1), theta=theta, chunk_size=16,
                        slice_size=8, progress=False)

    screened, plain = bank(screen_ms=2000.0), bank(screen_ms=None)
    short = simulate(Pyloric(duration=2000.0, burn_in=500.0, screen_ms=None), 16, jax.random.key(1), theta=theta,
                     chunk_size=16, slice_size=8, progress=False)
    assert plain.num_screened == 0 and Pyloric(**protocol).screens is False  # 4 s default: beyond 3 s
    np.testing.assert_array_equal(~screened.screened, short.valid)
    assert 0 < screened.num_screened < 16
    finished = ~screened.screened
    np.testing.assert_array_equal(screened.x[finished], plain.x[finished])  # features from flags: exact
    assert np.isnan(screened.x[~finished]).all()
    with pytest.raises(ValueError, match="screen_ms"):
        Pyloric(screen_ms=150.0)
