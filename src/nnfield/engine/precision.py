"""Float64 in JAX, switched on once at the entry points (the CLI, each study's simulate, the
test suite) rather than as a side effect of importing a module.

nnfield accumulates every sum in float64 (the sampling dtype of a point is explicit and may be
float32); JAX's default is float32 everywhere, so a sampler built without float64 would return
silently rounded numbers.  The samplers therefore call :func:`require_x64` and refuse to run
without it.
"""

from __future__ import annotations


def enable_x64() -> None:
    """Switch JAX to float64 (``jax_enable_x64``); call before building any sampler."""
    import jax

    jax.config.update("jax_enable_x64", True)


def x64_enabled() -> bool:
    import jax

    return bool(jax.config.jax_enable_x64)


def require_x64(what: str) -> None:
    """Refuse to build ``what`` while JAX computes in float32."""
    if not x64_enabled():
        raise RuntimeError(
            f"{what} computes in float64, but JAX is in float32 mode: call "
            "nnfield.enable_x64() (or set JAX_ENABLE_X64=1) before using it; nnfield's command "
            "line and each study's simulate do this themselves"
        )
