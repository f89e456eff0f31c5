"""sbi's sequential NPE on the rank-2 RNN at x_o = (0.5, 1.5): the predictive-mean distance per round, to
check neurosbi's SNPE row of ``epi_rnn_scaling.py`` against the reference package on the same simulator.

The paper's sbi settings (reference §1.6): APT (NPE-C) with 100 atoms, MAF with 3 transforms of 50 units,
parameters mapped onto the prior's box (the paper's ``support_map``; in sbi 0.27 a Zuko MAF with
``z_score_theta="transform_to_unconstrained"``), no z-scoring of x, batch 200, stop after 10 epochs
without improvement, 1,000 simulations per round. After each round 1,000 posterior draws at x_o are
simulated and ‖mean f − x_o‖₂ is recorded (the paper's convergence criterion: < 0.5).

    python benchmarks/snpe_rnn_sbi.py --neurons 2 --rounds 10 --seed 1 --out benchmarks/results/snpe_rnn_sbi.json
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import jax  # noqa: E402
from _machine import describe  # noqa: E402

from neurosbi.models import RankTwoRNN  # noqa: E402

X_O = (0.5, 1.5)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--neurons", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    import sbi
    import torch
    from sbi.inference import NPE_C
    from sbi.neural_nets import posterior_nn
    from sbi.utils import BoxUniform

    torch.set_num_threads(1)  # the JAX simulator shares the process: more torch threads only oversubscribe
    torch.manual_seed(args.seed)
    model = RankTwoRNN(num_neurons=args.neurons)
    features = jax.jit(model.simulate_features)

    def simulate(theta: torch.Tensor, key: int) -> torch.Tensor:
        x = features(jax.random.key(key), jax.numpy.asarray(theta.numpy(), jax.numpy.float32))
        return torch.as_tensor(np.asarray(x))

    dim = 4 * args.neurons
    prior = BoxUniform(-torch.ones(dim), torch.ones(dim))
    net = posterior_nn(model="zuko_maf", hidden_features=50, num_transforms=3, z_score_x="none",
                       z_score_theta="transform_to_unconstrained", x_dist=prior)
    inference = NPE_C(prior=prior, density_estimator=net)
    x_o = torch.tensor(X_O)
    proposal, rounds, start = prior, [], time.perf_counter()
    for r in range(args.rounds):
        theta = proposal.sample((1000,))
        x = simulate(theta, 1000 * args.seed + r)
        estimator = inference.append_simulations(theta, x, proposal=proposal).train(
            training_batch_size=200, num_atoms=100, stop_after_epochs=10, show_train_summary=False)
        posterior = inference.build_posterior(estimator).set_default_x(x_o)
        draws = posterior.sample((1000,), show_progress_bars=False)
        predictive = simulate(draws, 10**6 + 1000 * args.seed + r).numpy()
        row = {"round": r + 1, "predictive_distance": float(np.linalg.norm(np.nanmean(predictive, 0) - X_O)),
               "predictive_mean": np.nanmean(predictive, 0).tolist(), "seconds": time.perf_counter() - start}
        rounds.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
        proposal = posterior
        result = {"benchmark": "snpe_rnn_sbi", "machine": describe(), "sbi_version": sbi.__version__,
                  "command": "python benchmarks/snpe_rnn_sbi.py " + " ".join(sys.argv[1:]),
                  "neurons": args.neurons, "seed": args.seed, "rounds": rounds,
                  "converged_round": next((q["round"] for q in rounds if q["predictive_distance"] < 0.5), None)}
        args.out.write_text(json.dumps(result, indent=1))
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
