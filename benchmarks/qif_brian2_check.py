"""Cross-check of ``QIFNetwork`` (JAX) against the same network written in Brian2.

Both run the network of ``neurosbi/models/qif_network.py``'s docstring with the same N Lorentzian
quantiles η_i, the same protocol (step current ``amplitude`` on [0.3 D, 0.6 D)), Euler at 0.1 ms, and
both traces are read the same way: ``v`` the mean potential of the neurons not refractory, every 1 ms;
``r`` the spikes emitted per 1 ms bin per neuron per unit time, smoothed by the model's centred flat
10 ms window. Time unit: Brian's second (τ_m = 1 s).

The Brian2 network, written from the model's equations:

* ``NeuronGroup(N)``: ``dv/dt = (v**2 + eta + J*s_syn + I_stim(t)) / tau : 1 (unless refractory)``,
  threshold ``v >= v_peak``, reset ``v = -v_peak``, Euler; ``I_stim`` a ``TimedArray`` at 1 ms.
* the synapse: one ``hub`` neuron carrying ``ds/dt = -s/tau_syn`` (integrated exactly, as the JAX
  model decays ``s`` by ``exp(-dt/tau_syn)`` per step), fed by ``Synapses(neurons, hub)`` with
  ``on_pre: s += (1 − e^{−dt/tau_syn})/(N dt)`` (one spike's charge exactly 1/N), N synapses instead of N²; every neuron reads it back through
  ``s_syn = linked_var(hub, 's', index=zeros(N))``. The hub is updated after the neurons within a
  step (``order=1``), so a step integrates v with the synapse of the step before, as the JAX model.
* delays: Brian emits a spike the step v crosses the threshold, the JAX model half-way through the
  refractory hold (1/v_peak later), so the synaptic delay is ``delay + 1/v_peak`` and the Brian spike
  times are shifted by ``1/v_peak`` before binning the rate.
* refractoriness: the JAX model holds a neuron for 2/v_peak / dt = 200 full steps after the step that
  crossed (it integrates again on the 201st). Brian's ``refractory=2/v_peak`` lets it integrate on
  the 200th (``timestep(t - lastspike) >= timestep(refractory)``), so Brian gets ``2/v_peak + dt``
  here, and the "not refractory" set of the v trace is taken from ``lastspike`` with the JAX model's
  rule (active after 200 held steps).

With these conventions the two are the same discrete system (float32 in JAX, float64 in Brian), and
the comparison checks that ``QIFNetwork`` computes what its docstring says. ``variants`` (skip with
``--skip-variants``) then shows what the conventions are worth: Brian's own refractory convention
(one step less of hold), forward Euler on the synapse (``s *= 1 - dt/tau_syn``: 0.95/N of charge per spike
instead of 1/N), and the MPR mean field (``QIFNetwork.mean_field()``).

Brian2 runs with the runtime target ``numpy`` by default (no compiler needed; N = 2000 for 10 s takes
about 7 s of Brian time here); ``--target cython`` also works (slower here, compilation included).
Brian2 2.9.0 (the last release for Python 3.11) fails to import under numpy >= 2.4 (``np.ndarray.ptp``
is gone; fixed in Brian2 2.10, which needs Python 3.12): ``install_numpy_compat`` patches that one
attribute at import time, without touching the installed package.

    python benchmarks/qif_brian2_check.py --out benchmarks/results/qif_brian2_check.json

Prints one JSON object (and writes it to ``--out``).
"""

from __future__ import annotations

import argparse
import importlib.abc
import importlib.machinery
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _machine import describe  # noqa: E402

THETA = (0.7, -4.6, 14.5)  # delta, eta, J
WINDOWS = {"rest": (0.05, 0.3), "stim": (0.35, 0.6), "post": (0.65, 1.0)}  # fractions of the duration


# -- Brian2 2.9 under numpy >= 2.4 ----------------------------------------------------------------
_PTP_LINE = "ptp = wrap_function_keep_dimensions(np.ndarray.ptp)"


class _PatchedUnitsLoader(importlib.machinery.SourceFileLoader):
    """Compiles ``brian2.units.fundamentalunits`` from its source with ``np.ndarray.ptp`` replaced by
    ``np.ptp`` (the same function as a method). No bytecode is read or written."""

    def get_code(self, fullname):
        source = self.get_data(self.path).decode("utf-8").replace(_PTP_LINE, _PTP_LINE.replace("np.ndarray.ptp",
                                                                                                  "np.ptp"))
        return compile(source, self.path, "exec", dont_inherit=True)


class _PatchFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):
        if fullname != "brian2.units.fundamentalunits":
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or not isinstance(spec.loader, importlib.machinery.SourceFileLoader):
            return None
        spec.loader = _PatchedUnitsLoader(fullname, spec.origin)
        return spec


def install_numpy_compat() -> None:
    """Make ``import brian2`` work with Brian2 < 2.10 under numpy >= 2.4; a no-op where not needed."""
    if hasattr(np.ndarray, "ptp") or "brian2" in sys.modules:
        return
    if not any(isinstance(f, _PatchFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, _PatchFinder())


def import_brian2():
    install_numpy_compat()
    import brian2

    return brian2


# -- the two simulations --------------------------------------------------------------------------
def run_jax(n_neurons: int, duration: float, theta=THETA, **model_kwargs) -> dict:
    """``QIFNetwork`` with the stimulus on [0.3, 0.6) of ``duration``; ``model_kwargs`` go to the model."""
    import jax
    import jax.numpy as jnp

    from neurosbi.models import QIFNetwork

    net = QIFNetwork(n_neurons=n_neurons, duration=duration, t_on=0.3 * duration, t_off=0.6 * duration,
                     **model_kwargs)
    run = jax.jit(net.simulate)
    th = jnp.asarray([list(theta)], jnp.float32)
    t0 = time.perf_counter()
    traces = np.asarray(run(jax.random.key(0), th))[0]
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    np.asarray(run(jax.random.key(0), th))
    second = time.perf_counter() - t0
    return {"net": net, "v": traces[0].astype(np.float64), "r": traces[1].astype(np.float64),
            "wall_s": {"first_call_with_compile": first, "second_call": second}}


def run_brian(net, theta=THETA, target: str = "numpy", refractory: str = "matched", synapse: str = "exact") -> dict:
    """The network ``net`` (a ``QIFNetwork``, for its configuration) in Brian2; traces as the JAX model's."""
    from neurosbi.models.qif_network import lorentzian_quantiles, smooth_flat

    b2 = import_brian2()
    from brian2 import Network, NeuronGroup, SpikeMonitor, Synapses, TimedArray, linked_var, network_operation, second

    b2.prefs.codegen.target = target
    delta, eta_bar, coupling = theta
    n, dt, rec = net.n_neurons, net.time_step, net.record_step
    steps_per_record = round(rec / dt)
    hold = round(2.0 / net.v_peak / dt)  # the JAX model's refractory steps
    emit = hold // 2  # ... and the spike's emission, in steps after the crossing step
    num_records = net.num_records
    # the very same η_i as the JAX model (float32 quantiles)
    eta_i = np.asarray(lorentzian_quantiles(n, np.float32(eta_bar), np.float32(delta)).astype(np.float32), np.float64)
    on, off = round(net.t_on / rec), round(net.t_off / rec)
    drive = np.zeros(num_records + 1)
    drive[on:off] = net.amplitude
    namespace = {
        "tau": 1.0 * second, "tau_syn": net.tau_syn * second, "J": float(coupling), "v_peak": net.v_peak,
        "kick": (1.0 - np.exp(-dt / net.tau_syn)) / (n * dt), "I_stim": TimedArray(drive, dt=rec * second),
    }
    b2.defaultclock.dt = dt * second
    ref_s = (hold + 1) * dt if refractory == "matched" else 2.0 / net.v_peak
    neurons = NeuronGroup(
        n,
        """dv/dt = (v**2 + eta + J*s_syn + I_stim(t)) / tau : 1 (unless refractory)
        eta : 1 (constant)
        s_syn : 1 (linked)""",
        threshold="v >= v_peak", reset="v = -v_peak", refractory=ref_s * second, method="euler",
        namespace=namespace, name="qif", order=0,
    )
    neurons.v = net.v0
    neurons.eta = eta_i
    hub = NeuronGroup(1, "ds/dt = -s/tau_syn : 1", method=synapse, namespace=namespace, name="hub", order=1)
    neurons.s_syn = linked_var(hub, "s", index=np.zeros(n, dtype=int))
    synapses = Synapses(neurons, hub, on_pre="s_post += kick", delay=(net.delay + emit * dt) * second,
                        namespace=namespace, name="to_hub")
    synapses.connect(i=np.arange(n), j=np.zeros(n, dtype=np.int32))
    spikes = SpikeMonitor(neurons, record=True, name="spikes")
    mean_v = []

    # At the start of step k the state is the one after step k - 1: the JAX model's sample k / steps_per_record.
    # Active as in the JAX model: after ``hold`` held steps, i.e. k - crossing step > hold.
    @network_operation(dt=rec * second, when="start", name="mean_v")
    def record():
        step = int(neurons.clock.variables["timestep"].get_value().item())
        assert step == len(mean_v) * steps_per_record, (step, len(mean_v))
        since = np.round((step * dt - neurons.lastspike_[:]) / dt)
        active = since >= hold + 1
        v = neurons.v_[:]
        mean_v.append(float(v[active].mean()) if active.any() else 0.0)

    network = Network(neurons, hub, synapses, spikes, record)
    t0 = time.perf_counter()
    network.run(num_records * rec * second, namespace={})  # the op then runs at t = 0, 1, ..., (num_records - 1) ms
    wall = time.perf_counter() - t0
    crossing = np.round(spikes.t_[:] / dt).astype(np.int64)
    sample = (crossing + emit) // steps_per_record + 1  # emitted during step e: JAX sample e // spr + 1
    counts = np.bincount(sample[sample < num_records], minlength=num_records).astype(np.float64)
    rate = counts / (n * rec)
    r = np.asarray(smooth_flat(rate.astype(np.float32), round(net.rate_window / rec)), np.float64)
    return {"v": np.asarray(mean_v[:num_records]), "r": r, "wall_s": wall, "num_spikes": int(len(crossing)),
            "refractory_s": ref_s, "synapse_method": synapse, "synaptic_delay_s": net.delay + emit * dt}


# -- comparison -----------------------------------------------------------------------------------
def _rel(ours, theirs):
    return float((theirs - ours) / abs(ours)) if ours != 0 else None


def window_means(net, traces: dict) -> dict:
    """Mean r and v over each window of ``WINDOWS`` (sample k is the state at t = k record_step)."""
    t = np.arange(net.num_records) * net.record_step
    out = {}
    for name, (lo, hi) in WINDOWS.items():
        sel = (t >= lo * net.duration - 1e-9) & (t < hi * net.duration - 1e-9)
        out[name] = {ch: float(np.asarray(traces[ch])[sel].mean()) for ch in ("r", "v")}
    return out


def compare(net, ours: dict, brian: dict) -> dict:
    a, b = window_means(net, ours), window_means(net, brian)
    windows = {name: {"t": [lo * net.duration, hi * net.duration],
                      **{ch: {"jax": a[name][ch], "brian2": b[name][ch], "rel_diff": _rel(a[name][ch], b[name][ch])}
                         for ch in ("r", "v")}}
               for name, (lo, hi) in WINDOWS.items()}
    return {
        "windows": windows,
        "corr_r": float(np.corrcoef(ours["r"], brian["r"])[0, 1]),
        "corr_v": float(np.corrcoef(ours["v"], brian["v"])[0, 1]),
        "max_abs_diff": {ch: float(np.max(np.abs(ours[ch] - brian[ch]))) for ch in ("r", "v")},
    }


def variants(net, ours: dict, target: str) -> dict:
    """What the conventions matched above are worth: Brian with its own refractory convention (one step
    less of hold), Brian with forward Euler on the synapse (with the same kick, each spike then delivers
    tau_syn (1 - exp(-dt/tau_syn)) / dt / N = 0.95/N of synaptic charge instead of the exact 1/N of the
    JAX model and the matched Brian run), and the MPR mean field itself."""
    import jax
    import jax.numpy as jnp

    runs = {
        "brian2_plain_refractory": run_brian(net, target=target, refractory="plain"),
        "brian2_euler_synapse": run_brian(net, target=target, synapse="euler"),
    }
    mf = np.asarray(net.mean_field().simulate(jax.random.key(0), jnp.asarray([list(THETA)], jnp.float32)))[0]
    runs["mean_field"] = {"v": mf[0].astype(np.float64), "r": mf[1].astype(np.float64)}
    out = {}
    for name, tr in runs.items():
        out[name] = {"windows": window_means(net, tr),
                     "corr_r_vs_jax": float(np.corrcoef(ours["r"], tr["r"])[0, 1]),
                     "corr_v_vs_jax": float(np.corrcoef(ours["v"], tr["v"])[0, 1])}
        if name != "mean_field":
            out[name]["corr_r_vs_mean_field"] = float(np.corrcoef(mf[1], tr["r"])[0, 1])
            out[name]["corr_v_vs_mean_field"] = float(np.corrcoef(mf[0], tr["v"])[0, 1])
        if "wall_s" in tr:
            out[name]["wall_s"] = tr["wall_s"]
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--neurons", type=int, default=2000)
    p.add_argument("--duration", type=float, default=10.0, help="stimulus on [0.3, 0.6) of it")
    p.add_argument("--amplitude", type=float, default=3.0, help="the step current (published: 3)")
    p.add_argument("--target", default="numpy", choices=["numpy", "cython"], help="Brian2 codegen target")
    p.add_argument("--skip-variants", action="store_true", help="only the matched comparison")
    p.add_argument("--out", default=None, help="also write the JSON here")
    a = p.parse_args()

    b2 = import_brian2()
    import jax

    t_start = time.perf_counter()
    ours = run_jax(a.neurons, a.duration, amplitude=a.amplitude)
    net = ours["net"]
    brian = run_brian(net, target=a.target)
    result = {
        "benchmark": "qif_brian2_check",
        "machine": describe(),
        "versions": {"brian2": b2.__version__, "jax": jax.__version__, "numpy": np.__version__},
        "config": {"n_neurons": a.neurons, "duration": a.duration, "t_on": net.t_on, "t_off": net.t_off,
                   "amplitude": net.amplitude, "theta": dict(zip(("delta", "eta", "J"), THETA)), "time_step": net.time_step,
                   "record_step": net.record_step, "brian_target": a.target,
                   "brian_refractory_s": brian["refractory_s"], "brian_synapse_method": brian["synapse_method"],
                   "brian_synaptic_delay_s": brian["synaptic_delay_s"]},
        **compare(net, ours, brian),
        "brian_num_spikes": brian["num_spikes"],
        "wall_s": {"jax": ours["wall_s"], "brian2_run": brian["wall_s"]},
    }
    if not a.skip_variants:
        result["variants"] = variants(net, ours, a.target)
    result["wall_s"]["total"] = time.perf_counter() - t_start
    text = json.dumps(result, indent=2)
    print(text)
    if a.out:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
