"""The model family under one protocol: firing rates against closed forms, noise against the OU
variance, each model's signature behaviour, and the spike-train features on hand-made trains."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from neurosbi.features._spikes import SPIKE_FEATURES, SpikeSummary
from neurosbi.models import get
from neurosbi.models.neurons import FAMILY, LIF, QIF, AdEx, FitzHughNagumo, Izhikevich, WilsonCowan


def _run(model, theta, key=0):
    theta = jnp.asarray(np.atleast_2d(theta), jnp.float32)
    return np.asarray(jax.jit(model.simulate)(jax.random.key(key), theta))


def test_lif_rate_matches_closed_form():
    """Deterministic LIF: ISI = t_ref + τ ln(μ / (μ − 15 mV))."""
    model = LIF(duration=1000.0)
    rows = np.array([[20.0, 20.0, 0.0, 2.0], [10.0, 30.0, 0.0, 4.0], [35.0, 17.0, 0.0, 1.0]])
    x = np.asarray(model.features(jnp.asarray(_run(model, rows))))
    for row, feats in zip(rows, x):
        tau, mu, _, t_ref = row
        isi = t_ref + tau * math.log(mu / (mu - 15.0))
        # ISIs are read from 1 ms bins and every reset waits for the next 0.1 ms step
        assert feats[SPIKE_FEATURES.index("isi_mean")] == pytest.approx(isi, rel=0.03, abs=0.3)
        assert abs(feats[SPIKE_FEATURES.index("rate_stim")] * 0.8 - 800 / isi) <= 1.0  # within one spike
        assert feats[SPIKE_FEATURES.index("rate_rest")] == 0.0


def test_qif_period_matches_closed_form():
    """Deterministic QIF: τ dv/dt = ((v + 57.5)² − 56.25)/15 + μ integrates to an arctangent."""
    model = QIF()
    tau, mu, v_reset = 10.0, 8.0, -70.0
    x = np.asarray(model.features(jnp.asarray(_run(model, [tau, mu, 0.0, v_reset]))))[0]
    c = 15.0 * mu - 56.25
    period = 15.0 * tau / math.sqrt(c) * (math.atan(77.5 / math.sqrt(c)) - math.atan((v_reset + 57.5) / math.sqrt(c)))
    assert x[SPIKE_FEATURES.index("isi_mean")] == pytest.approx(period, rel=0.03)


def test_white_and_colored_noise_give_ou_variance():
    """Subthreshold LIF (no drive): std σ√(τ/2) with white noise; × √(τ/(τ + τ_c)) with unit-gain OU noise."""
    tau, sigma = 20.0, 1.0
    rows = np.tile([tau, 10.0, sigma, 2.0], (64, 1))
    white = _run(LIF(), rows)[:, 0, 50:100]  # before the stimulus, after a 50 ms settling
    colored = _run(LIF(noise="colored", noise_tau=5.0), rows)[:, 0, 50:100]
    want = sigma * math.sqrt(tau / 2)
    assert white.std() == pytest.approx(want, rel=0.08)
    assert colored.std() == pytest.approx(want * math.sqrt(tau / (tau + 5.0)), rel=0.08)


def test_signature_behaviours():
    # Izhikevich: regular spiking does not burst, chattering does (Izhikevich 2003, Fig. 2)
    izh = Izhikevich()
    rs, ch = izh.features(jnp.asarray(_run(izh, [[0.02, 0.2, -65.0, 8.0, 10.0, 0.2], [0.02, 0.2, -50.0, 2.0, 10.0, 0.2]])))
    burst = SPIKE_FEATURES.index("burst_fraction")
    assert rs[burst] < 0.1 and ch[burst] > 0.5
    # AdEx: spike-triggered adaptation lengthens the intervals; without it they stay even
    adex = AdEx()
    adapting, tonic = adex.features(jnp.asarray(_run(adex, [[4.0, 80.5, 144.0, 800.0, 0.2], [0.0, 0.0, 144.0, 800.0, 0.2]])))
    ad = SPIKE_FEATURES.index("adaptation")
    assert adapting[ad] > 0.03 and abs(tonic[ad]) < 0.01  # measured 0.052 and -0.002
    assert adapting[SPIKE_FEATURES.index("rate_stim")] < tonic[SPIKE_FEATURES.index("rate_stim")]
    # FitzHugh–Nagumo: excitable at rest, oscillating under the step
    fhn = FitzHughNagumo()
    silent, firing = fhn.features(jnp.asarray(_run(fhn, [[0.7, 0.08, 0.0, 0.01], [0.7, 0.08, 0.8, 0.01]])))
    assert silent[1] == 0.0 and firing[1] > 10.0
    # Wilson–Cowan: the step raises the excitatory activity and its Poisson neuron's rate
    wc = WilsonCowan()
    traces = _run(wc, np.tile([16.0, 12.0, 1.25, 0.01], (16, 1)))
    assert traces[:, 0, 200:900].mean() > 3 * traces[:, 0, 20:100].mean()
    assert traces[:, 1, 200:900].sum() > traces[:, 1, 20:100].sum()


def test_every_model_runs_on_its_prior():
    for name, cls in FAMILY.items():
        model = get(name)
        assert isinstance(model, cls)
        theta = model.prior.sample(jax.random.key(1), (8,))
        x = np.asarray(jax.jit(model.simulate_features)(jax.random.key(2), theta))
        assert x.shape == (8, len(model.feature_names)), name
        assert np.isfinite(x).all(), name


def test_spike_summary_on_hand_made_trains():
    summary = SpikeSummary(dt=1.0, t_on=100.0, t_off=900.0)
    regular = np.zeros((2, 1000), np.float32)
    regular[1, 105:900:10] = 1  # every 10 ms from 105 ms
    accelerating = np.zeros((2, 1000), np.float32)
    accelerating[1, [100, 140, 170, 190, 200]] = 1
    silent = np.zeros((2, 1000), np.float32)
    out = np.asarray(summary(jnp.asarray(np.stack([regular, accelerating, silent]))))
    reg = dict(zip(SPIKE_FEATURES, out[0]))
    assert reg["rate_stim"] == pytest.approx(80 / 0.8) and reg["latency"] == 5.0
    assert reg["isi_mean"] == 10.0 and reg["isi_cv"] == 0.0 and reg["adaptation"] == 0.0
    assert reg["fano"] == pytest.approx(0.0, abs=1e-6) and reg["burst_fraction"] == 0.0
    acc = dict(zip(SPIKE_FEATURES, out[1]))
    want = np.mean([(30 - 40) / 70, (20 - 30) / 50, (10 - 20) / 30])
    assert acc["adaptation"] == pytest.approx(want, rel=1e-5) and acc["burst_fraction"] == 0.0
    sil = dict(zip(SPIKE_FEATURES, out[2]))
    assert np.isfinite(out[2]).all() and sil["rate_stim"] == 0 and sil["latency"] == 800.0


def test_bad_protocol_is_refused():
    with pytest.raises(ValueError, match="noise must be"):
        LIF(noise="pink")
    with pytest.raises(ValueError, match="multiple of"):
        LIF(duration=1010.0)
    with pytest.raises(ValueError, match="t_on < t_off"):
        LIF(t_on=500.0, t_off=400.0)
