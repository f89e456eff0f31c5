"""SBI over the MPR phase diagram from dynamical-class features (issue 7, scope 5; seed 003 Fig. 8)."""

import json

import numpy as np
from typer.testing import CliRunner

from neurosbi import mpr_regimes as mr
from neurosbi.cli import app
from neurosbi.dynamics.stability import REGIMES, mpr_regime


def test_features_tell_the_regimes_apart():
    """Hysteresis marks bistability (high after the step, low before it); a focus oscillates in every epoch;
    a node settles without oscillating once its initial transient is over."""
    points = np.array(list(mr.OBSERVATIONS.values()))
    assert [REGIMES[int(k)] for k in mpr_regime(*points.T)] == list(mr.OBSERVATIONS)
    f = dict(zip(mr.OBSERVATIONS, (dict(zip(mr.FEATURE_NAMES, row)) for row in mr.simulate_features(points,
                                                                                                    progress=False))))
    bistable, focus, node = f["bistable"], f["focus"], f["node"]
    assert bistable["r_settled_after"] > 5 * bistable["r_settled_before"] and bistable["oscillations_during"] >= 3
    assert node["r_settled_after"] == np.float32(node["r_settled_before"]) and node["oscillations_after"] == 0
    assert min(focus["oscillations_before"], focus["oscillations_during"], focus["oscillations_after"]) >= 3


def test_npe_posterior_lands_in_the_observed_regime(tmp_path):
    """A small run of the command: for each observation most posterior draws are in its linear-stability
    regime, far more than the prior's share."""
    result = CliRunner().invoke(app, ["bench", "mpr-regimes", "--out", str(tmp_path), "--num-simulations", "3000",
                                      "--json"])
    assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "regimes.json").read_text())
    for name, obs in record["observations"].items():
        assert obs["posterior_share_in_regime"] > max(0.8, obs["prior_share_in_regime"] + 0.2), (name, obs)
    assert (tmp_path / "regimes.png").stat().st_size > 20_000 and record["num_invalid"] == 0
