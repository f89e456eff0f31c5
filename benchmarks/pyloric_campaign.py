"""Where a pyloric campaign stands, read from its banks (``benchmarks/pyloric_posterior.py --bank-dir DIR``).

Per round: simulations done, how many passed the pilot run, how many are valid (pyloric features
defined), and among valid runs the share whose 15 rhythm features are all within 2 experimental
standard deviations of preparation 845_082_0044 (the pyloric-like flag is not in the banks, so this
is the features' half of the goal's test); then the goal's measure after each round as the campaign
recorded it (``checks.json``: posterior draws simulated in full). Reads only; runs nothing.

    python benchmarks/pyloric_campaign.py --bank-dir DIR > benchmarks/results/pyloric_apt_partial.json
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _machine import describe  # noqa: E402
from _pyloric import campaign_banks  # noqa: E402

from neurosbi.models.pyloric import Pyloric  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--bank-dir", required=True)
    a = p.parse_args()
    model = Pyloric()
    x_o, scale = np.asarray(model.observation), np.asarray(model.feature_scale)
    used = np.isfinite(scale) & (scale > 0)
    rounds = []
    for r, (bank, meta) in enumerate(campaign_banks(a.bank_dir), start=1):
        dev = np.abs(bank.x[bank.valid][:, used] - x_o[used]) / scale[used]
        rounds.append({"round": r, "planned": meta["num_simulations"], "done": len(bank),
                       "passed_pilot": int(len(bank) - bank.num_screened), "valid": int(bank.valid.sum()),
                       "valid_share": float(bank.valid.mean()) if len(bank) else float("nan"),
                       "features_within_2_std_among_valid": float(np.mean(np.all(dev <= 2, axis=1))) if len(dev) else float("nan")})
    checks = Path(a.bank_dir) / "checks.json"
    out = {"benchmark": "pyloric_campaign", "machine": describe(), "bank_dir": a.bank_dir,
           "simulations_done": sum(r["done"] for r in rounds), "valid_done": sum(r["valid"] for r in rounds),
           "rounds": rounds, "after_each_round": json.loads(checks.read_text()) if checks.exists() else []}
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
