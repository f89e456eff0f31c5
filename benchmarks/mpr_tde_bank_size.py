"""How the delay-embedding reconstruction of the MPR's hidden r depends on the bank of simulations.

The missing case's observation (`neurosbi.mpr_table.make_data("missing")`, v every 10 ms) is
reconstructed with the table's settings (delay 0.16 s, dimension 12, 182 neighbours, Savitzky-Golay
0.3 s) from the first N series of one bank drawn from the published bank prior, for each N; prints the
RMSE against the true r (raw and smoothed) and the time of each reconstruction.

    python benchmarks/mpr_tde_bank_size.py [--sizes 100 300 1000] > benchmarks/results/mpr_tde_bank_size.json
"""

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from _machine import describe  # noqa: E402

from neurosbi import mpr_table as mt  # noqa: E402
from neurosbi.dynamics import DelayRegressor  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--sizes", type=int, nargs="+", default=[100, 300, 1000])
    a = p.parse_args()
    data = mt.make_data("missing")
    _, bank = mt.tde_bank(data, max(a.sizes))
    delay, window = mt.tde_settings(data)
    rows = []
    for size in a.sizes:
        start = time.perf_counter()
        regressor = DelayRegressor(bank[:size, 0], bank[:size, 1], delay=delay, dimension=mt.TDE["dimension"])
        rec = regressor.reconstruct(data.samples[0], smooth_window=window)
        rows.append({"bank_series": size, "rmse_raw": rec.rmse(data.samples[1], raw=True),
                     "rmse": rec.rmse(data.samples[1]), "seconds": time.perf_counter() - start})
        print(f"{size} series: RMSE {rows[-1]['rmse']:.3f}", file=sys.stderr)
    print(json.dumps({"benchmark": "mpr_tde_bank_size", "machine": describe(), "published_rmse": 0.151,
                      "published_bank": "100 series at 1 ms", "rows": rows}, indent=2))


if __name__ == "__main__":
    main()
