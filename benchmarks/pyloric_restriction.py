"""How sharp is the validity restriction on a pyloric campaign? The trade-off behind ``restrict_keep``.

A classifier of valid vs invalid (``inference.fit_validity``) is trained on every round of a campaign
(``benchmarks/pyloric_posterior.py --bank-dir DIR``) but the second half of its last finished round,
and tested on that half (parameters drawn from the posterior, as the next round's would be). For
several shares of valid parameters kept (``restrict_keep``), it prints the share of proposals the
restriction accepts and the share of valid simulations among them.

    python benchmarks/pyloric_restriction.py --bank-dir DIR > benchmarks/results/pyloric_restriction.json
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _machine import describe, setup_devices  # noqa: E402
from _pyloric import campaign_banks  # noqa: E402

setup_devices()

import jax  # noqa: E402

from neurosbi.inference import fit_validity  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--bank-dir", required=True)
    p.add_argument("--keep", type=float, nargs="+", default=[0.99, 0.95, 0.9, 0.8, 0.6, 0.4])
    p.add_argument("--widths", type=int, nargs="+", default=[64, 256], help="classifier widths (depth 2 and 3)")
    a = p.parse_args()
    banks = []
    for bank, _ in campaign_banks(a.bank_dir):
        if not bank.stats["complete"]:
            break
        banks.append(bank)
    if len(banks) < 2:
        raise SystemExit(f"need at least two finished rounds in {a.bank_dir}, found {len(banks)}")
    last = banks[-1]
    half = len(last) // 2
    theta = np.concatenate([b.theta for b in banks[:-1]] + [last.theta[:half]])
    valid = np.concatenate([b.valid for b in banks[:-1]] + [last.valid[:half]])
    test_theta, test_valid = last.theta[half:], last.valid[half:]
    out = {"benchmark": "pyloric_restriction", "machine": describe(), "bank_dir": a.bank_dir,
           "rounds": len(banks), "train": {"num": int(len(theta)), "valid": int(valid.sum())},
           "test": {"num": int(len(test_theta)), "valid_share": float(test_valid.mean())}, "classifiers": []}
    for width, depth in zip(a.widths, (2, 3)):
        validity = fit_validity(theta, valid, jax.random.key(0), width=width, depth=depth)
        scores = np.asarray(validity.logit(test_theta))
        rows = []
        for keep in a.keep:  # the threshold that keeps this share of the test round's valid parameters
            accepted = scores >= np.quantile(scores[test_valid], 1.0 - keep)
            rows.append({"keep_valid": keep, "accepted_share": float(accepted.mean()),
                         "valid_among_accepted": float(test_valid[accepted].mean()),
                         "gain": float(test_valid[accepted].mean() / test_valid.mean())})
        out["classifiers"].append({"width": width, "depth": depth, "rows": rows})
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
