"""Describe the machine a benchmark ran on (goes into every results JSON)."""

import os
import platform


def setup_devices() -> None:
    """One XLA host device per core, as the CLI does, unless ``--one-device`` is on the command line.
    Call before any JAX work."""
    import sys

    if "--one-device" not in sys.argv:
        import neurosbi

        neurosbi.use_all_cores()


def describe() -> dict:
    cpu = "unknown"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    try:
        mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (ValueError, OSError):
        mem_gib = None
    import jax

    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(mem_gib, 1) if mem_gib else None,
        "python": platform.python_version(),
        "jax": jax.__version__,
        "jax_devices": [str(d) for d in jax.devices()],
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
    }
