"""Feature functions against scipy / numpy on random traces."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.signal
import scipy.stats

from neurosbi.features import WindowedSummary, exact_median, find_peaks, moments

median_jit = jax.jit(exact_median)
moments_jit = jax.jit(moments)


def _trace(rng, n, kind):
    if kind == "gauss":
        return rng.standard_normal(n)
    if kind == "walk":
        return np.cumsum(rng.standard_normal(n)) * 0.01
    if kind == "skewed":
        return rng.exponential(size=n) ** 2
    return np.round(rng.standard_normal(n) * 3) / 3  # many ties


@pytest.mark.parametrize("n", [7, 1000, 29999, 30000])
@pytest.mark.parametrize("kind", ["gauss", "walk", "skewed", "ties"])
def test_exact_median_matches_numpy(n, kind):
    rng = np.random.default_rng(n)
    x = _trace(rng, n, kind).astype(np.float32)
    assert float(median_jit(jnp.asarray(x))) == pytest.approx(float(np.median(x)), rel=1e-6, abs=1e-7)


@pytest.mark.parametrize("kind", ["gauss", "walk", "skewed"])
def test_moments_match_scipy(kind):
    rng = np.random.default_rng(1)
    x = (_trace(rng, 20000, kind) + 3.0).astype(np.float32)
    got = np.asarray(moments_jit(jnp.asarray(x)))
    x64 = x.astype(np.float64)
    want = [x64.mean(), x64.std(), scipy.stats.skew(x64), scipy.stats.kurtosis(x64)]
    np.testing.assert_allclose(got, want, rtol=2e-4, atol=2e-5)


peaks_jit = jax.jit(find_peaks, static_argnums=(1, 2))


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("distance", [1, 7, 1000])
def test_find_peaks_matches_scipy(seed, distance):
    rng = np.random.default_rng(seed)
    n = 30000
    x = (np.cumsum(rng.standard_normal(n)) * 0.05 + np.sin(np.arange(n) / 300)).astype(np.float32)
    want = scipy.signal.find_peaks(x, height=0.2, distance=distance)[0]
    got = np.flatnonzero(np.asarray(peaks_jit(jnp.asarray(x), 0.2, distance)))
    np.testing.assert_array_equal(got, want)


def test_find_peaks_batch_with_long_chains_matches_scipy():
    """Rows whose chains of ever-higher peaks need many rounds (noisy ramps), more of them than one
    pass of the row-compacted finish takes, mixed with easy rows."""
    rng = np.random.default_rng(7)
    n, rows = 1200, 300
    t = np.arange(n)
    ramps = 0.002 * t * rng.choice([-1, 1], (rows, 1)) + 2.0 + 0.02 * rng.standard_normal((rows, n))
    waves = np.sin(t / 20.0) + 0.05 * rng.standard_normal((rows, n))
    x = np.where(rng.random((rows, 1)) < 0.5, ramps, waves).astype(np.float32)
    got = np.asarray(jax.jit(find_peaks, static_argnums=(1, 2))(jnp.asarray(x.reshape(3, 100, n)), 0.2, 40))
    got = got.reshape(rows, n)
    for row, trace in zip(got, x):
        np.testing.assert_array_equal(np.flatnonzero(row), scipy.signal.find_peaks(trace, height=0.2, distance=40)[0])


def test_find_peaks_plateaus_match_scipy():
    # flat tops, a plateau at each end (not peaks), and a plateau that rises again (not a peak)
    x = np.array([1, 1, 0, 2, 2, 2, 0, 1, 3, 3, 4, 0, 5, 5, 5, 5, 1, 2, 2], np.float32)
    want = scipy.signal.find_peaks(x, height=0.0)[0]
    got = np.flatnonzero(np.asarray(find_peaks(jnp.asarray(x), 0.0, 1)))
    np.testing.assert_array_equal(got, want)
    rng = np.random.default_rng(3)
    y = (np.round(np.cumsum(rng.standard_normal(5000)) * 4) / 4).astype(np.float32)
    np.testing.assert_array_equal(
        np.flatnonzero(np.asarray(find_peaks(jnp.asarray(y), 0.0, 1))), scipy.signal.find_peaks(y, height=0.0)[0]
    )


def _published_summary(v, dt, t_on, t_off):
    """The published feature code, re-expressed with numpy / scipy (reference section 2.3)."""
    ts = np.arange(0, len(v) * dt, dt)[: len(v)]
    out = []
    for m in (ts < t_on, (ts > t_on) & (ts < t_off), ts > t_off):
        w = v[m]
        out += [w.mean(), w.std(), np.median(w), scipy.stats.skew(w), scipy.stats.kurtosis(w)]
    act = v[(ts > t_on) & (ts < t_off)]
    peaks = scipy.signal.find_peaks(act, height=0.2, distance=1000)[0]
    out += [len(peaks), t_on + dt * peaks[0] if len(peaks) else 0.0]
    return np.array(out)


def test_windowed_summary_matches_published_definition():
    rng = np.random.default_rng(4)
    n, dt = 10000, 0.001
    summary = WindowedSummary.from_times(n * dt, dt, 3.0, 6.0)
    traces = (np.cumsum(rng.standard_normal((3, n)), axis=1) * 0.02 + np.sin(np.arange(n) / 150)).astype(np.float32)
    got = np.asarray(jax.jit(jax.vmap(summary))(jnp.asarray(traces)))
    for row, trace in zip(got, traces):
        want = _published_summary(trace.astype(np.float64), dt, 3.0, 6.0)
        np.testing.assert_allclose(row, want, rtol=5e-4, atol=5e-4)


def test_windowed_summary_on_a_strided_trace_uses_step_times():
    """Read every 25th sample: windows by step count (t < 3 s, 3 < t < 6 s, t > 6 s) and peaks at
    least 1 s = 40 samples apart."""
    summary = WindowedSummary.from_times(9.0, 0.001, 3.0, 6.0, stride=25)
    assert summary.windows == ((0, 120), (121, 240), (241, 360))
    assert summary.peak_distance == 40 and summary.dt == pytest.approx(0.025)
    with pytest.raises(ValueError, match="window after the stimulus holds 0 samples"):
        WindowedSummary.from_times(6.0, 0.001, 3.0, 6.0)


def test_autocorrelation_features_match_numpy_and_an_ar1_process():
    """``acf{k}`` = sum c_t c_(t+k) / sum c_t^2 per window (statsmodels' definition), appended after the
    published 17; on an AR(1) series with coefficient phi it approaches phi^k."""
    rng = np.random.default_rng(7)
    n, phi = 9000, 0.8
    noise = rng.standard_normal((2, n))
    ar = np.zeros((2, n))
    for t in range(1, n):
        ar[:, t] = phi * ar[:, t - 1] + noise[:, t]
    summary = WindowedSummary.from_times(9.0, 0.001, 3.0, 6.0, autocorr_times=(0.001, 0.003))
    assert summary.autocorr_lags == (1, 3)
    assert summary.names[17:] == ["acf1_rest", "acf3_rest", "acf1_stim", "acf3_stim", "acf1_post", "acf3_post"]
    got = np.asarray(jax.jit(summary.batched)(jnp.asarray(ar[:, None, :], jnp.float32)))
    assert got.shape == (2, 23)
    for row, trace in zip(got, ar):
        want = []
        for start, stop in summary.windows:
            c = trace[start:stop] - trace[start:stop].mean()
            want += [np.correlate(c[:-k], c[k:])[0] / np.dot(c, c) for k in (1, 3)]
        np.testing.assert_allclose(row[17:], want, rtol=1e-4, atol=1e-5)
        np.testing.assert_allclose(row[17:], [phi, phi**3] * 3, atol=0.06)
    np.testing.assert_allclose(got[:, :17], np.asarray(jax.jit(WindowedSummary.from_times(
        9.0, 0.001, 3.0, 6.0).batched)(jnp.asarray(ar[:, None, :], jnp.float32))))


def test_autocorrelation_lags_are_checked():
    with pytest.raises(ValueError, match="at least one step and all distinct"):
        WindowedSummary.from_times(9.0, 0.001, 3.0, 6.0, stride=25, autocorr_times=(0.025, 0.026))
    with pytest.raises(ValueError, match=r"must be an integer in \[1, 118\]"):
        WindowedSummary.from_times(9.0, 0.001, 3.0, 6.0, stride=25, autocorr_times=(4.0,))
