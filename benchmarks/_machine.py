"""Describe the machine a benchmark ran on (goes into every results JSON)."""


def setup_devices() -> None:
    """One XLA host device per core, as the CLI does, unless ``--one-device`` is on the command line.
    Call before any JAX work."""
    import sys

    if "--one-device" not in sys.argv:
        import neurosbi

        neurosbi.use_all_cores()


def describe() -> dict:
    from neurosbi._runtime import describe_machine

    return describe_machine()
