"""Process-level settings for XLA on a CPU, applied before JAX starts its backend.

XLA reads ``XLA_FLAGS`` once, when the first computation initialises the CPU backend; after that,
changing it has no effect. These settings are therefore opt-in (the CLI applies them at start-up,
a library user calls ``use_all_cores()`` before any JAX work), never applied on import.
"""

from __future__ import annotations

import os


def _has_avx512() -> bool:
    try:
        with open("/proc/cpuinfo") as f:
            return any(line.startswith("flags") and " avx512f" in line for line in f)
    except OSError:
        return False


# the flags ``use_all_cores`` sets: facts of one machine (its cores, its CPU's vectors), never passed to another
MACHINE_FLAGS = ("xla_force_host_platform_device_count", "xla_cpu_prefer_vector_width")


def use_all_cores(devices: int | None = None) -> bool:
    """One XLA host device per CPU core (and 512-bit vectors where the CPU has AVX-512).

    ``neurosbi.simulate`` splits each chunk over all local devices; on a CPU that turns XLA's
    intra-op threading of every scan iteration, which costs more than it gains on small per-step
    kernels, into independent per-core programs (measured on 2 cores: MPR 1.5x, HH dynamics 2.3x).
    Returns False (and changes nothing) when ``XLA_FLAGS`` already sets a device count or JAX's
    backend is already running.
    """
    flags = os.environ.get("XLA_FLAGS", "")
    if "xla_force_host_platform_device_count" in flags or _backend_started():
        return False
    n = devices or os.cpu_count() or 1
    extra = [f"--xla_force_host_platform_device_count={n}"]
    if _has_avx512() and "xla_cpu_prefer_vector_width" not in flags:
        extra.append("--xla_cpu_prefer_vector_width=512")
    os.environ["XLA_FLAGS"] = " ".join([flags, *extra]).strip()
    return True


def _backend_started() -> bool:
    import sys

    if "jax" not in sys.modules:
        return False
    try:
        from jax._src import xla_bridge

        return bool(xla_bridge._backends)
    except (ImportError, AttributeError):  # private API moved: assume started, change nothing
        return True


def describe_machine() -> dict:
    """CPU model, cores, memory, Python, JAX and its devices: goes into every results JSON."""
    import os
    import platform

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
