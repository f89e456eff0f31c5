"""Training from a bank streamed chunk by chunk: same training as from memory, right statistics, every row once."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from neurosbi import BankError, NPEConfig, simulate
from neurosbi.inference import fit_npe_stream
from neurosbi.inference.stream import ArraySource, BankSource, blocks, split_chunks, streaming_statistics

CONFIG = NPEConfig(max_epochs=4, patience=10, batch_size=128)


@pytest.fixture(scope="module")
def bank_on_disk(gaussian_model, tmp_path_factory):
    path = tmp_path_factory.mktemp("stream") / "bank.zarr"
    bank = simulate(gaussian_model, 6000, jax.random.key(1), path=path, chunk_size=500, progress=False)
    return path, bank


def _keep_all(theta, x):
    return theta, x, np.all(np.isfinite(x), axis=1)


@pytest.mark.parametrize("num_atoms", [None, 4])
def test_streamed_training_from_disk_equals_training_from_memory(bank_on_disk, gaussian_model, num_atoms):
    path, bank = bank_on_disk
    runs = []
    for source, prefetch in ((BankSource(path), 4), (ArraySource(bank.theta, bank.x, 500), 0)):
        post, history = fit_npe_stream(source, gaussian_model.prior, key=jax.random.key(2), config=CONFIG,
                                       num_atoms=num_atoms, window=3, steps=8, prefetch=prefetch, progress=False)
        runs.append((post, history))
    (disk, h_disk), (memory, h_memory) = runs
    assert h_disk.epochs == h_memory.epochs == CONFIG.max_epochs
    np.testing.assert_allclose(h_disk.train_loss, h_memory.train_loss, rtol=1e-6)
    np.testing.assert_allclose(h_disk.validation_loss, h_memory.validation_loss, rtol=1e-6)
    assert h_disk.train_loss[-1] < h_disk.train_loss[0]  # it learned something
    theta = jnp.asarray([[0.1, 0.2], [1.0, -2.0]])
    np.testing.assert_allclose(disk.log_prob(theta, jnp.asarray([0.5, -1.0])),
                               memory.log_prob(theta, jnp.asarray([0.5, -1.0])), rtol=1e-5)
    assert h_disk.num_train + h_disk.num_validation == len(bank)


def test_streamed_posterior_matches_the_analytic_gaussian_posterior(bank_on_disk, gaussian_model):
    path, _ = bank_on_disk
    post, history = fit_npe_stream(path, gaussian_model.prior, key=jax.random.key(3),
                                   config=NPEConfig(max_epochs=150, batch_size=128), steps=16, progress=False)
    x_o = jnp.asarray([0.5, -1.0])
    s = np.asarray(post.sample(jax.random.key(4), 20_000, x_o))
    # prior N(0, 1), noise N(0, 0.25): posterior mean 0.8 x, variance 0.2
    np.testing.assert_allclose(s.mean(0), 0.8 * np.asarray(x_o), atol=0.06)
    np.testing.assert_allclose(np.cov(s.T), 0.2 * np.eye(2), atol=0.04)
    assert post.param_names == ("theta_0", "theta_1")


def test_streaming_statistics_equal_those_of_the_whole_array():
    rng = np.random.default_rng(0)
    theta = rng.normal(3.0, 2.0, (1030, 2)).astype(np.float32)
    x = rng.normal(-1.0, 0.5, (1030, 3)).astype(np.float32)
    x[[5, 700]] = np.nan
    source = ArraySource(theta, x, 100)
    m_t, m_x, kept, dropped = streaming_statistics(source, source.chunks, _keep_all)
    ok = np.all(np.isfinite(x), axis=1)
    assert (kept, dropped) == (1028, 2)
    np.testing.assert_allclose(m_t.mean, theta[ok].astype(np.float64).mean(0), rtol=1e-10)
    np.testing.assert_allclose(m_t.std, theta[ok].astype(np.float64).std(0), rtol=1e-10)
    np.testing.assert_allclose(m_x.std, x[ok].astype(np.float64).std(0), rtol=1e-10)


def test_an_epoch_serves_every_usable_row_once_in_a_new_order():
    n = 1000
    theta = np.arange(n, dtype=np.float32)[:, None]
    x = np.zeros((n, 1), np.float32)
    x[[3, 500]] = np.nan
    source = ArraySource(theta, x, 64)
    orders = []
    for seed in (0, 1):
        out = list(blocks(source, source.chunks, _keep_all, batch=10, steps=7, window=3,
                          rng=np.random.default_rng(seed), prefetch=2))
        rows = np.concatenate([b.arrays[0][b.active].reshape(-1) for b in out])
        assert all(b.arrays[0].shape == (7, 10, 1) for b in out)  # one shape: one compiled step
        assert len(rows) == 990 and len(set(rows.tolist())) == 990  # 998 usable, the 8 after the last batch left
        assert not {3, 500} & set(rows.astype(int).tolist())
        orders.append(rows)
    assert not np.array_equal(orders[0], orders[1])
    again = list(blocks(source, source.chunks, _keep_all, batch=10, steps=7, window=3,
                        rng=np.random.default_rng(0), prefetch=0))
    np.testing.assert_array_equal(np.concatenate([b.arrays[0][b.active].reshape(-1) for b in again]), orders[0])


def test_validation_holds_out_whole_chunks_and_bad_banks_are_refused(tmp_path):
    source = ArraySource(np.zeros((1000, 1)), np.zeros((1000, 1)), 100)
    train, val = split_chunks(source, 0.2, np.random.default_rng(0))
    assert len(val) == 2 and sorted(train + val) == source.chunks
    with pytest.raises(BankError, match="at least 2"):
        split_chunks(ArraySource(np.zeros((50, 1)), np.zeros((50, 1)), 100), 0.1, np.random.default_rng(0))
    with pytest.raises(BankError, match="neurosbi simulate"):
        BankSource(tmp_path / "nothing.zarr")


def test_a_reader_failure_reaches_the_training_thread():
    class Broken(ArraySource):
        def read(self, i):
            if i == 3:
                raise OSError("disk gone")
            return super().read(i)

    source = Broken(np.zeros((1000, 1)), np.zeros((1000, 1)), 100)
    with pytest.raises(OSError, match="disk gone"):
        list(blocks(source, source.chunks, _keep_all, batch=10, steps=5, rng=None, prefetch=2))
