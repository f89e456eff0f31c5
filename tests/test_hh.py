"""The Hodgkin–Huxley model: the step against the published float64 loop, the features against the
published numpy / scipy code, spike count and rest against an adaptive float64 solver (diffrax),
noise schemes against each other, and bad input."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats

from neurosbi import PriorSupportError, ShapeError
from neurosbi.features import HHSummary
from neurosbi.models import get
from neurosbi.models.hh import _DECAY_DEGREE, HodgkinHuxley, decay, rates

TRUTH = np.array([50.0, 5.0, 0.1, 0.07, 600.0, 60.0, 0.1, 70.0])
OTHERS = np.array([[20.0, 10.0, 0.2, 0.3, 1500.0, 50.0, 0.05, 60.0], [70.0, 2.0, 0.05, 0.02, 200.0, 70.0, 0.12, 80.0]])


def _published_simulator(theta, xi, dt=0.01, n_steps=12000):
    """The published exponential-Euler loop (reference section 3.1), float64, given noise draws ``xi``."""
    g_na, g_k, g_l, g_m, tau_max, minus_vt, sigma, minus_el = theta
    vt, e_l = -minus_vt, -minus_el

    def efun(z):
        return 1 - z / 2 if abs(z) < 1e-4 else z / (math.exp(z) - 1)

    def gates(x):
        am, bm = 0.32 * efun(-0.25 * (x - vt - 13)) / 0.25, 0.28 * efun(0.2 * (x - vt - 40)) / 0.2
        ah, bh = 0.128 * math.exp(-(x - vt - 17) / 18), 4 / (1 + math.exp(-0.2 * (x - vt - 40)))
        an, bn = 0.032 * efun(-0.2 * (x - vt - 15)) / 0.2, 0.5 * math.exp(-(x - vt - 10) / 40)
        p_inf = 1 / (1 + math.exp(-0.1 * (x + 35)))
        tau_p = tau_max / (3.3 * math.exp(0.05 * (x + 35)) + math.exp(-0.05 * (x + 35)))
        return [(am / (am + bm), 1 / (am + bm)), (ah / (ah + bh), 1 / (ah + bh)),
                (an / (an + bn), 1 / (an + bn)), (p_inf, tau_p)]

    current = np.zeros(n_steps + 1)
    current[1000:11000] = 5e-4 / (math.pi * (70e-4) ** 2)
    v = np.empty(n_steps + 1)
    v[0] = -70.0
    m, h, n, p = (inf for inf, _ in gates(v[0]))
    for i in range(1, n_steps + 1):
        g = m**3 * g_na * h + n**4 * g_k + g_l + g_m * p
        v_inf = (m**3 * g_na * h * 53 + n**4 * g_k * -107 + g_l * e_l + g_m * p * -107 + current[i - 1]
                 + sigma * xi[i - 1] / dt**0.5) / g
        v[i] = v_inf + (v[i - 1] - v_inf) * math.exp(-dt * g)
        (mi, mt), (hi, ht), (ni, nt), (pi_, pt) = gates(v[i])
        m, h, n, p = (mi + (m - mi) * math.exp(-dt / mt), hi + (h - hi) * math.exp(-dt / ht),
                      ni + (n - ni) * math.exp(-dt / nt), pi_ + (p - pi_) * math.exp(-dt / pt))
    return v


def _published_features(trace, dt=0.01, t_on=10.0, t_off=110.0):
    """The published HodgkinHuxleyStatsMoments (n_xcorr = 0, n_mom = 4), re-expressed with numpy."""
    t = np.arange(0, 120 + dt, dt)
    v = np.array(trace, dtype=float)
    v[v < -10] = -10
    v[np.where(np.diff(v) < 0)] = -10
    times = t[np.where(np.diff(v) < 0)]
    times = times[(times > t_on) & (times < t_off)]
    if len(times):
        times = times[np.append(1, np.diff(times)) > 0.5]
    x = trace[(t > t_on) & (t < t_off)]
    sd = np.std(x)
    return np.array([len(times), np.mean(trace[t < t_on]), np.std(trace[int(0.9 * t_on / dt): int(t_on / dt)]),
                     np.mean(x), scipy.stats.moment(x, 2), scipy.stats.moment(x, 3) / sd**3,
                     scipy.stats.moment(x, 4) / sd**4])


@pytest.fixture(scope="module")
def hh():
    return HodgkinHuxley()


@pytest.fixture(scope="module")
def simulate_features(hh):
    return jax.jit(hh.simulate_features)


def test_rates_from_one_exponential_match_the_direct_formulas():
    v = np.linspace(-110.0, 60.0, 3401)
    vt, tau_max = -60.0, 600.0

    def efun(z):
        return np.where(np.abs(z) < 1e-6, 1 - z / 2, z / np.expm1(np.where(np.abs(z) < 1e-6, 1.0, z)))

    u = v - vt
    am, bm = 1.28 * efun(-0.25 * (u - 13)), 1.4 * efun(0.2 * (u - 40))
    ah, bh = 0.128 * np.exp(-(u - 17) / 18), 4 / (1 + np.exp(-0.2 * (u - 40)))
    an, bn = 0.16 * efun(-0.2 * (u - 15)), 0.5 * np.exp(-(u - 10) / 40)
    p_inf = 1 / (1 + np.exp(-0.1 * (v + 35)))
    p_rate = (3.3 * np.exp(0.05 * (v + 35)) + np.exp(-0.05 * (v + 35))) / tau_max
    want = [(am / (am + bm), am + bm), (ah / (ah + bh), ah + bh), (an / (an + bn), an + bn), (p_inf, p_rate)]
    got = rates(jnp.asarray(v, jnp.float32), vt, 1.0 / tau_max)
    for (gi, gr), (wi, wr) in zip(got, want):
        np.testing.assert_allclose(np.asarray(gi), wi, rtol=2e-5, atol=1e-9)
        np.testing.assert_allclose(np.asarray(gr), wr, rtol=2e-5)


def test_gate_decay_polynomials_are_exact_to_float32_over_the_prior():
    """The Taylor polynomials standing in for exp(-dt (alpha + beta)) of h, n, p: within 3e-8 of the
    exponential for every V in [-120, 80] mV and the whole prior of V_T and tau_max (float64 check)."""
    jax.config.update("jax_enable_x64", True)
    try:
        v = np.linspace(-120.0, 80.0, 401)[:, None]
        for vt in np.linspace(-90.0, -40.0, 11):
            for tau_max in (50.0, 3000.0):
                gates = rates(jnp.asarray(v, jnp.float64), vt, 1.0 / tau_max)
                for (_, rate), degree in zip(gates, _DECAY_DEGREE):
                    x = 0.01 * np.asarray(rate)
                    got = np.asarray(decay(jnp.asarray(x), degree))
                    np.testing.assert_allclose(got, np.exp(-x), rtol=0, atol=3e-8)
        # and the polynomial is a polynomial: it departs from exp well outside that range
        assert abs(float(decay(jnp.asarray(3.0), 4)) - np.exp(-3.0)) > 1e-2
    finally:
        jax.config.update("jax_enable_x64", False)


def test_step_matches_the_published_loop_with_the_same_noise(hh):
    """The model's step, scanned over given Gaussian draws, against the published float64 loop."""
    xi = np.random.default_rng(0).standard_normal(12000)
    for theta in (TRUTH, OTHERS[1]):
        want = _published_simulator(theta, xi)
        params = tuple(jnp.asarray(theta, jnp.float32)[:, None])
        params = (*params[:4], 1.0 / params[4], *params[5:])  # the step takes 1 / tau_max
        v0 = jnp.full((1,), -70.0)
        state = (v0, *(inf for inf, _ in rates(v0, -params[5], params[4])))
        current = jnp.where((jnp.arange(12000) >= 1000) & (jnp.arange(12000) < 11000), hh.amplitude, 0.0)

        def one(state, inputs, params=params):
            state = hh._step(state, params, inputs[0], inputs[1])
            return state, state[0]

        _, got = jax.jit(lambda s, c, x: jax.lax.scan(one, s, (c, x)))(state, current, jnp.asarray(xi[:, None], jnp.float32))
        got = np.concatenate([[-70.0], np.asarray(got)[:, 0]])
        # float32 spike timing drifts by a sample or so over 120 ms; compare features and the early trace
        np.testing.assert_allclose(got[:1000], want[:1000], atol=2e-3)
        np.testing.assert_allclose(_published_features(got)[[0, 1, 3]], _published_features(want)[[0, 1, 3]],
                                   rtol=2e-3, atol=2e-2)


def test_simulate_equals_the_published_loop_without_noise(hh):
    theta = np.stack([TRUTH, *OTHERS])
    theta[:, 6] = 0.0
    got = np.asarray(jax.jit(hh.simulate)(jax.random.key(0), jnp.asarray(theta, jnp.float32)))
    assert got.shape == (3, 1, 12001)
    for row, th in zip(got[:, 0], theta):
        want = _published_simulator(th, np.zeros(12000))
        np.testing.assert_allclose(_published_features(row), _published_features(want), rtol=1e-3, atol=1e-2)
        np.testing.assert_allclose(row[:1000], want[:1000], atol=1e-3)


def test_features_match_the_published_code_on_simulated_traces(hh):
    rng = np.random.default_rng(1)
    traces = np.stack([_published_simulator(th, rng.standard_normal(12000)) for th in (TRUTH, *OTHERS)])
    got = np.asarray(jax.jit(hh.features)(jnp.asarray(traces[:, None], jnp.float32)))
    want = np.stack([_published_features(tr) for tr in traces])
    assert want[:, 0].tolist() == [5, 0, 3]  # spiking, silent, spiking
    np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-3)


def test_spike_rule_on_hand_built_traces():
    """Peaks above -10 mV counted once; a second peak within 0.5 ms merged, one after 0.6 ms kept;
    peaks outside (t_on, t_off) and below -10 mV ignored; the window edges as published."""
    summary = HHSummary.from_times(0.01, 10.0, 110.0)
    base = np.full(12001, -65.0)

    def bump(v, at, height=20.0, width=30):
        idx = np.arange(at - width, at + width + 1)
        v[idx] = np.maximum(v[idx], height - (height + 65.0) * np.abs(idx - at) / width)

    cases = []
    v = base.copy()
    for at in (2000, 4000, 4040, 6000, 6060):  # 4040: 0.4 ms after 4000 (merged); 6060: 0.6 ms (kept)
        bump(v, at, width=15)
    bump(v, 500)  # before the stimulus
    bump(v, 11500)  # after it
    bump(v, 8000, height=-20.0)  # below -10 mV
    cases.append(v)
    v = base.copy()
    bump(v, 1002, width=4)  # peak at sample 1002 -> detection at 1001: inside
    bump(v, 11000, width=4)  # peak at 11000 -> detection at 10999: inside
    cases.append(v)
    v = base.copy()
    bump(v, 1001, width=4)  # detection at 1000: t = 10 ms, not > t_on
    bump(v, 11001, width=4)  # detection at 11000: t = 110 ms, not < t_off
    cases.append(v)
    got = np.asarray(summary.batched(jnp.asarray(np.stack(cases), jnp.float32)))[:, 0]
    want = [_published_features(c)[0] for c in cases]
    assert want == [4, 2, 0]
    np.testing.assert_array_equal(got, want)


def test_autocorrelation_features(hh):
    model = HodgkinHuxley(n_autocorr=3)
    assert model.feature_names[7:] == ("autocorr_1ms", "autocorr_2ms", "autocorr_3ms")
    trace = _published_simulator(TRUTH, np.random.default_rng(2).standard_normal(12000))
    got = np.asarray(model.features(jnp.asarray(trace[None, None], jnp.float32)))[0]
    x = trace[1001:11000] - trace[1001:11000].mean()
    want = [np.dot(x[:-k], x[k:]) / np.dot(x, x) for k in (100, 200, 300)]
    np.testing.assert_allclose(got[7:], want, rtol=1e-3)
    np.testing.assert_allclose(got[:7], np.asarray(hh.features(jnp.asarray(trace[None, None], jnp.float32)))[0])


def _hh_vector_field(t, y, theta):
    v, m, h, n, p = y
    g_na, g_k, g_l, g_m, tau_max, minus_vt, _, minus_el = theta
    current = jnp.where((t >= 10.0) & (t < 110.0), 5e-4 / (math.pi * (70e-4) ** 2), 0.0)
    dv = -(g_na * m**3 * h * (v - 53.0) + g_k * n**4 * (v + 107.0) + g_l * (v + minus_el) + g_m * p * (v + 107.0)) + current
    gates = rates(v, -minus_vt, 1.0 / tau_max)
    dx = [rate * (inf - x) for x, (inf, rate) in zip((m, h, n, p), gates)]
    return jnp.stack([dv, *dx])


@pytest.mark.parametrize("theta", [TRUTH, OTHERS[0], OTHERS[1]])
def test_spike_count_and_rest_against_adaptive_float64_solver(hh, theta):
    """σ = 0: exponential Euler at 0.01 ms against Kvaerno5 with tight tolerances (diffrax, float64)."""
    import diffrax

    theta = theta.copy()
    theta[6] = 0.0
    with jax.enable_x64(True):
        th = jnp.asarray(theta, jnp.float64)
        v0 = jnp.asarray(-70.0, jnp.float64)
        y0 = jnp.stack([v0, *(inf for inf, _ in rates(v0, -th[5], th[4]))])
        ts = jnp.linspace(0.0, 120.0, 12001)
        sol = diffrax.diffeqsolve(
            diffrax.ODETerm(_hh_vector_field), diffrax.Kvaerno5(), 0.0, 120.0, 0.005, y0, args=th,
            saveat=diffrax.SaveAt(ts=ts), stepsize_controller=diffrax.PIDController(
                rtol=1e-8, atol=1e-8, jump_ts=jnp.asarray([10.0, 110.0])), max_steps=200_000,
        )
        reference = np.asarray(sol.ys[:, 0])
    got = np.asarray(jax.jit(hh.simulate_features)(jax.random.key(0), jnp.asarray(theta[None], jnp.float32)))[0]
    want = _published_features(reference)
    assert got[0] == want[0]  # spike count
    assert abs(got[1] - want[1]) < 0.05  # resting potential, mV
    assert abs(got[3] - want[3]) < 0.02 * abs(want[3])  # stimulus-window mean


def test_two_point_and_gaussian_noise_agree_in_distribution():
    """The two noise schemes give the same feature law at the truth with strong noise (mean of every
    feature within 4.5 standard errors over 256 simulations each)."""
    theta = np.tile(TRUTH, (256, 1))
    theta[:, 6] = 0.15
    feats = {}
    for noise in ("two-point", "gaussian"):
        model = HodgkinHuxley(noise=noise)
        feats[noise] = np.asarray(jax.jit(model.simulate_features)(jax.random.key(5), jnp.asarray(theta, jnp.float32)))
    a, b = feats["two-point"], feats["gaussian"]
    se = np.sqrt(a.var(0) / len(a) + b.var(0) / len(b)) + 1e-9
    assert np.all(np.abs(a.mean(0) - b.mean(0)) / se < 4.5), (a.mean(0), b.mean(0))
    assert a[:, 2].std() > 0 and abs(a[:, 2].mean() / b[:, 2].mean() - 1) < 0.05  # resting std set by σ


def test_description_and_bad_input(hh):
    m = get("hh")
    assert m.param_names == ("gNa", "gK", "gleak", "gM", "tau_max", "minus_VT", "sigma", "minus_Eleak")
    assert len(m.feature_names) == 7 and m.trace_shape == (1, 12001)
    np.testing.assert_allclose(m.default_truth, TRUTH)
    assert abs(m.amplitude - 3.248) < 1e-3
    with pytest.raises(ShapeError, match="hh expects 8: gNa, gK"):
        m.check_theta(np.zeros((2, 3)))
    with pytest.raises(PriorSupportError, match=r"gNa = 90.*\[0.5, 80\]"):
        m.check_theta([90.0, 5, 0.1, 0.07, 600, 60, 0.1, 70])
    with pytest.raises(ValueError, match="t_on = 15.0 ms must be a multiple of 1000 steps"):
        HodgkinHuxley(t_on=15.0)
    with pytest.raises(ValueError, match="noise must be"):
        HodgkinHuxley(noise="poisson")


def test_online_features_equal_the_trace_features(hh, simulate_features):
    """The fused path (features accumulated inside the scan) against features of the full trace, on
    prior draws: spike counts identical, moments within float32 rounding of one-pass updates."""
    theta = hh.prior.sample(jax.random.key(7), (256,))
    fused = np.asarray(simulate_features(jax.random.key(8), theta))
    traces = np.asarray(jax.jit(hh.simulate)(jax.random.key(8), theta))[:, 0].astype(np.float64)
    want = np.stack([_published_features(tr) for tr in traces])
    ok = np.isfinite(want).all(1)
    assert ok.mean() > 0.95 and want[ok, 0].max() > 3  # mostly valid, some spiking
    np.testing.assert_array_equal(fused[ok, 0], want[ok, 0])
    np.testing.assert_allclose(fused[ok, 1:], want[ok, 1:], rtol=5e-4, atol=1e-5)


@pytest.mark.parametrize("theta", [TRUTH, OTHERS[1]])
def test_agrees_with_jaxley_pospischil_channels(hh, theta):
    """σ = 0: the same neuron built from Jaxley's Pospischil channels (a soma cylinder of the same area,
    0.5 nA step), Jaxley's implicit voltage update at 0.01 ms in float64: same spike count, resting
    potential within 0.05 mV, stimulus-window mean within 2 %. Runs where the optional extra is
    installed (``pip install jaxley``)."""
    jx = pytest.importorskip("jaxley")
    from jaxley.channels.pospischil import K, Km, Leak, Na

    theta = theta.copy()
    theta[6] = 0.0
    with jax.enable_x64(True):
        cell = jx.Compartment()
        for channel in (Na(), K(), Leak(), Km()):
            cell.insert(channel)
        cell.set("radius", 35.0)  # µm: 2π r L = π (70 µm)², the published soma area
        cell.set("length", 70.0)
        for name, value in (("Na_gNa", theta[0] * 1e-3), ("K_gK", theta[1] * 1e-3), ("Leak_gLeak", theta[2] * 1e-3),
                            ("Km_gKm", theta[3] * 1e-3), ("Km_taumax", theta[4]), ("vt", -theta[5]),
                            ("Leak_eLeak", -theta[7]), ("eNa", 53.0), ("eK", -107.0), ("v", -70.0)):
            cell.set(name, value)
        cell.init_states()
        # Jaxley 0.14's Km.init_state reads (p_inf, tau_p) as (alpha, beta): start p at p_inf(-70 mV)
        cell.set("Km_p", 1.0 / (1.0 + math.exp(-0.1 * (-70.0 + 35.0))))
        cell.stimulate(jx.step_current(i_delay=10.0, i_dur=100.0, i_amp=0.5, delta_t=0.01, t_max=120.0))
        cell.record("v", verbose=False)
        reference = np.asarray(jx.integrate(cell, delta_t=0.01))[0, :12001]
    got = np.asarray(jax.jit(hh.simulate_features)(jax.random.key(0), jnp.asarray(theta[None], jnp.float32)))[0]
    want = _published_features(reference)
    assert got[0] == want[0]
    assert abs(got[1] - want[1]) < 0.05
    assert abs(got[3] - want[3]) < 0.02 * abs(want[3])
