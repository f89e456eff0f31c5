"""simulate: determinism, resumption after interruption, NaN accounting, bank checks."""

from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from _toys import ScreenedToy
from neurosbi import BankError, load_bank, priors, simulate
from neurosbi.models import from_function


def _sometimes_nan(key, theta):
    x = theta + 0.1 * jax.random.normal(key, theta.shape)
    return jnp.where(theta[:, :1] > 0.8, jnp.nan, x)  # a "divergent" region of parameter space


@pytest.fixture(scope="module")
def nan_model():
    return from_function(_sometimes_nan, priors.box_uniform([0, 0], [1, 1]), name="sometimes_nan")


def test_interrupted_run_resumes_to_the_same_bank(tmp_path, gaussian_model, key):
    full = simulate(gaussian_model, 1000, key, chunk_size=128, progress=False)
    path = tmp_path / "bank.zarr"
    partial = simulate(gaussian_model, 1000, key, path=path, chunk_size=128, progress=False, max_chunks=3)
    assert len(partial) == 3 * 128 and not partial.stats["complete"]
    resumed = simulate(gaussian_model, 1000, key, path=path, chunk_size=128, progress=False)
    assert resumed.stats["chunks_resumed"] == 3 and resumed.stats["chunks_computed"] == 5
    np.testing.assert_array_equal(resumed.theta, full.theta)
    np.testing.assert_array_equal(resumed.x, full.x)
    loaded, meta = load_bank(path)
    np.testing.assert_array_equal(loaded.x, full.x)
    assert meta["model"] == "linear_gaussian"


def test_same_key_same_bank_any_chunking_of_resumption(gaussian_model, key):
    a = simulate(gaussian_model, 300, key, chunk_size=100, progress=False)
    b = simulate(gaussian_model, 300, key, chunk_size=100, progress=False)
    np.testing.assert_array_equal(a.x, b.x)
    c = simulate(gaussian_model, 300, jax.random.key(1), chunk_size=100, progress=False)
    assert not np.allclose(a.x, c.x)


def test_nan_simulations_are_counted_and_masked(nan_model, key, tmp_path):
    bank = simulate(nan_model, 500, key, chunk_size=100, progress=False, path=tmp_path / "b.zarr")
    expected = int((bank.theta[:, 0] > 0.8).sum())
    assert expected > 0
    assert bank.num_invalid == expected == bank.stats["num_invalid"]
    np.testing.assert_array_equal(bank.valid, bank.theta[:, 0] <= 0.8)
    assert len(bank) == 500  # kept in the bank, not dropped


def test_a_bank_left_on_disk_has_the_same_rows_and_counts(nan_model, key, tmp_path):
    path = tmp_path / "b.zarr"
    partial = simulate(nan_model, 500, key, chunk_size=100, progress=False, path=path, max_chunks=2, load=False)
    assert partial.stats["num_simulations"] == 200 and not partial.valid[200:].any()
    lazy = simulate(nan_model, 500, key, chunk_size=100, progress=False, path=path, load=False)
    loaded, _ = load_bank(path)
    assert not isinstance(lazy.x, np.ndarray)  # still the Zarr array
    np.testing.assert_array_equal(np.asarray(lazy.x[:]), loaded.x)
    np.testing.assert_array_equal(lazy.valid, loaded.valid)
    assert lazy.stats["num_invalid"] == loaded.num_invalid > 0
    with pytest.raises(ValueError, match="give path"):
        simulate(nan_model, 500, key, load=False)


def test_resuming_with_other_settings_is_refused(gaussian_model, key, tmp_path):
    path = tmp_path / "bank.zarr"
    simulate(gaussian_model, 200, key, path=path, chunk_size=100, progress=False)
    with pytest.raises(BankError, match="num_simulations"):
        simulate(gaussian_model, 300, key, path=path, chunk_size=100, progress=False)
    with pytest.raises(BankError, match="key"):
        simulate(gaussian_model, 200, jax.random.key(5), path=path, chunk_size=100, progress=False)


def test_simulate_given_parameters_and_last_chunk_padding(gaussian_model, key):
    theta = np.linspace(-1, 1, 2 * 250).reshape(250, 2)
    bank = simulate(gaussian_model, 250, key, theta=theta, chunk_size=100, progress=False)
    np.testing.assert_allclose(bank.theta, theta, atol=1e-6)
    assert np.abs(bank.x - theta).max() < 3.0


def test_each_chunk_reuses_one_compiled_function(key):
    traces = []

    def counting_simulator(k, theta):
        traces.append(theta.shape)  # runs only when JAX traces (compiles) the chunk function
        return theta + 0.1 * jax.random.normal(k, theta.shape)

    model = from_function(counting_simulator, priors.box_uniform([0, 0], [1, 1]), name="counting")
    traces.clear()  # from_function probes the simulator once
    simulate(model, 1000, key, chunk_size=100, progress=False)
    assert len(traces) == 1


_TWO_DEVICE_SCRIPT = """
import sys, numpy as np, neurosbi
assert neurosbi.use_all_cores(2)
import jax
m = neurosbi.models.get("montbrio", duration=4.0, t_on=1.0, t_off=2.0)
bank = neurosbi.simulate(m, 96, jax.random.key(3), chunk_size=32, slice_size=16, progress=False)
assert bank.stats["num_devices"] == 2, bank.stats
np.save(sys.argv[1], bank.x)
sys.path.insert(0, sys.argv[3])
from _toys import ScreenedToy
toy = neurosbi.simulate(ScreenedToy(), 200, jax.random.key(4), chunk_size=64, slice_size=32, progress=False)
assert toy.stats["num_devices"] == 2, toy.stats
np.save(sys.argv[2], toy.x)
"""


def test_chunks_split_over_devices_give_the_same_bank(short_montbrio, tmp_path):
    """A chunk run as slices on two XLA host devices equals the one-device bank, byte for byte
    (each simulation draws from its own key; every slice is the same compiled body)."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    out, toy_out = tmp_path / "two.npy", tmp_path / "toy.npy"
    here = str(Path(__file__).parent)
    subprocess.run([sys.executable, "-c", _TWO_DEVICE_SCRIPT, str(out), str(toy_out), here], check=True, env=env,
                   timeout=300)
    one = simulate(short_montbrio, 96, jax.random.key(3), chunk_size=32, slice_size=16, progress=False)
    assert one.stats["num_devices"] == 1
    np.testing.assert_array_equal(np.load(out), one.x)
    whole = simulate(short_montbrio, 96, jax.random.key(3), chunk_size=32, slice_size=32, progress=False)
    # the same per-simulation keys in one call of 32: equal up to float rounding of the batch shape
    np.testing.assert_allclose(whole.x, one.x, rtol=1e-3, atol=1e-3)
    toy = simulate(ScreenedToy(), 200, jax.random.key(4), chunk_size=64, slice_size=32, progress=False)
    np.testing.assert_array_equal(np.load(toy_out), toy.x)  # screened: pilot and resume sliced too


def test_screening_finishes_only_what_passes_and_resumes(tmp_path):
    """A screening model's bank: the simulations whose pilot passes have exactly the unscreened
    features, the others NaN and marked screened; an interrupted screened run resumes to the same
    bank, and ``load_bank`` returns the mask."""
    key = jax.random.key(2)
    plain = simulate(ScreenedToy(screen=False), 200, key, chunk_size=64, progress=False)
    assert plain.num_screened == 0 and plain.num_invalid == 0
    path = tmp_path / "screened.zarr"
    part = simulate(ScreenedToy(), 200, key, chunk_size=64, progress=False, path=path, max_chunks=2)
    assert not part.stats["complete"] and len(part) == 128
    bank = simulate(ScreenedToy(), 200, key, chunk_size=64, progress=False, path=path)
    assert bank.stats["chunks_resumed"] == 2
    np.testing.assert_array_equal(bank.theta, plain.theta)
    expected = plain.theta[:, 0] <= 0
    assert 50 < expected.sum() < 150
    np.testing.assert_array_equal(bank.screened, expected)
    # the same numbers, up to the rounding of a differently fused compiled call
    np.testing.assert_allclose(bank.x[~expected], plain.x[~expected], rtol=1e-6, atol=1e-7)
    assert np.isnan(bank.x[expected]).all()
    assert bank.num_invalid == bank.num_screened == bank.stats["num_screened"] == expected.sum()
    loaded, _ = load_bank(path)
    np.testing.assert_array_equal(loaded.screened, expected)
    assert loaded.stats["num_screened"] == expected.sum()


def test_screening_can_be_turned_off_per_call(tmp_path):
    """``screen=False`` runs every simulation in full (posterior checks need it), and a bank is not
    resumed with the other setting."""
    key = jax.random.key(3)
    plain = simulate(ScreenedToy(screen=False), 100, key, chunk_size=50, progress=False)
    full = simulate(ScreenedToy(), 100, key, chunk_size=50, progress=False, screen=False)
    assert full.num_screened == 0 and full.num_invalid == 0
    np.testing.assert_array_equal(full.x, plain.x)
    path = tmp_path / "b.zarr"
    simulate(ScreenedToy(), 100, key, chunk_size=50, progress=False, path=path, max_chunks=1)
    with pytest.raises(BankError, match="screened"):
        simulate(ScreenedToy(), 100, key, chunk_size=50, progress=False, path=path, screen=False)


def test_importing_the_package_leaves_inference_for_first_use():
    """A Ray worker and every CLI call import the package: the inference stack (optax, scipy.stats,
    matplotlib) loads only when one of its names is first used, and the names still resolve."""
    import subprocess
    import sys

    probe = (
        "import sys, neurosbi\n"
        "heavy = [m for m in ('neurosbi.inference', 'neurosbi.workflow', 'neurosbi.diagnostics', 'optax',"
        " 'scipy.stats', 'matplotlib') if m in sys.modules]\n"
        "import neurosbi.simulate\n"
        "assert callable(neurosbi.simulate), 'neurosbi.simulate is the function, not the submodule'\n"
        "assert neurosbi.infer.__module__ == 'neurosbi.workflow'\n"
        "assert neurosbi.fit_npe is neurosbi.inference.fit_npe\n"
        "assert {'infer', 'diagnostics', 'Posterior'} <= set(dir(neurosbi))\n"
        "print(heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout
    with pytest.raises(AttributeError, match="no attribute 'nonexistent'"):
        import neurosbi

        neurosbi.nonexistent  # noqa: B018
