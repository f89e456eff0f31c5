"""Model discrimination (seed 000, Q1): the classifier separates two models with different firing
statistics, is at chance on two copies of one model, and refuses models it cannot compare."""

import jax
import numpy as np
import pytest

from neurosbi.misspecification import discriminate
from neurosbi.models import LIF, Montbrio, WilsonCowan


@pytest.fixture(scope="module")
def lif_vs_wc():
    """A regular integrator against a Poisson neuron driven by a population: different ISI statistics."""
    models = {"lif": LIF(), "wilson-cowan": WilsonCowan()}
    return discriminate(models, jax.random.key(0), num_per_model=250, lengths_ms=(50.0, 800.0), progress=False)


def test_classifier_separates_models_with_different_firing(lif_vs_wc):
    result = lif_vs_wc
    assert result.model_names == ("lif", "wilson-cowan")
    assert result.accuracy["features"] > 0.85
    assert result.accuracy["spikes"] > 0.75  # from the binned trains alone, no hand-made summary
    for matrix in result.confusion.values():
        assert matrix.shape == (2, 2)
        np.testing.assert_allclose(matrix.sum(1), 1.0)
    assert set(result.accuracy_by_length) == {50.0, 800.0}
    assert all(0.0 <= a <= 1.0 for a in result.accuracy_by_length.values())
    record = result.as_dict()
    assert record["chance"] == 0.5 and record["invalid"] == {"lif": 0, "wilson-cowan": 0}


def test_model_probabilities_of_new_recordings(lif_vs_wc):
    model = LIF()
    theta = model.prior.sample(jax.random.key(7), (64,))
    traces = np.asarray(model.simulate(jax.random.key(8), theta))
    for representation in ("features", "spikes"):
        p = lif_vs_wc.model_probabilities(traces, representation)
        assert p.shape == (64, 2)
        np.testing.assert_allclose(p.sum(1), 1.0, rtol=1e-5)
        assert p[:, 0].mean() > 0.7, representation


def test_two_copies_of_one_model_are_at_chance():
    result = discriminate({"a": LIF(), "b": LIF()}, jax.random.key(1), num_per_model=200,
                          lengths_ms=(800.0,), representations=("features",), progress=False)
    assert 0.35 < result.accuracy["features"] < 0.65  # 80 test recordings: chance ± 2.7 sd


def test_refuses_what_it_cannot_compare():
    with pytest.raises(ValueError, match="at least two models"):
        discriminate([LIF()], jax.random.key(0))
    with pytest.raises(ValueError, match="does not record spike trains"):
        discriminate([LIF(), Montbrio()], jax.random.key(0))
    with pytest.raises(ValueError, match="different protocol"):
        discriminate({"a": LIF(), "b": LIF(duration=2000.0)}, jax.random.key(0))


def test_cli_discriminate_writes_record_and_figure(tmp_path):
    from typer.testing import CliRunner

    from neurosbi.cli import app

    result = CliRunner().invoke(app, ["misspec", "discriminate", "--models", "lif,wilson-cowan", "--num-per-model",
                                      "120", "--out", str(tmp_path), "--quiet"])
    assert result.exit_code == 0, result.output
    import json

    record = json.loads((tmp_path / "discrimination.json").read_text())
    assert record["models"] == ["lif", "wilson-cowan"] and record["accuracy"]["features"] > 0.7
    assert (tmp_path / "discrimination.png").stat().st_size > 10_000
    bad = CliRunner().invoke(app, ["misspec", "discriminate", "--models", "lif", "--out", str(tmp_path)])
    assert bad.exit_code == 2 and "at least two models" in bad.output
