"""Feature functions against scipy / numpy on random traces."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.signal
import scipy.stats

from neurosbi.features import (
    WindowedSummary,
    central_sums,
    exact_median,
    find_peaks,
    merge_central_sums,
    moments,
    moments_from_sums,
)

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


def test_merged_central_sums_equal_direct():
    rng = np.random.default_rng(2)
    x = jnp.asarray(np.cumsum(rng.standard_normal(5000)).astype(np.float32) * 0.01 - 2.0)
    parts = [central_sums(x[i : i + 1000]) for i in range(0, 5000, 1000)]
    merged = parts[0]
    for p in parts[1:]:
        merged = merge_central_sums(merged, p)
    np.testing.assert_allclose(np.stack(moments_from_sums(merged)), moments(x), rtol=2e-3, atol=1e-5)


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


def test_median_stride_takes_every_kth_sample():
    rng = np.random.default_rng(5)
    x = rng.standard_normal(9000).astype(np.float32)
    summary = WindowedSummary.from_times(9.0, 0.001, 3.0, 6.0, median_stride=10)
    got = np.asarray(summary(jnp.asarray(x)))
    (a, b), (c, d), (e, f) = summary.windows
    assert got[2] == pytest.approx(np.median(x[a:b:10]), abs=1e-6)
    assert got[7] == pytest.approx(np.median(x[c:d][::10]), abs=1e-6)
    assert got[12] == pytest.approx(np.median(x[e:f][::10]), abs=1e-6)
