"""Shape-annotated array aliases used across neurosbi (jaxtyping)."""

from jaxtyping import Array, Bool, Float, PRNGKeyArray

Key = PRNGKeyArray
Theta = Float[Array, "batch dim"]
Features = Float[Array, "batch features"]
Traces = Float[Array, "batch channels time"]
Mask = Bool[Array, " batch"]

__all__ = ["Array", "Bool", "Features", "Float", "Key", "Mask", "Theta", "Traces"]
