"""nnfield: ensembles of neural networks as statistical field theories."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("nnfield")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0.0.0+unknown"

SCHEMA_VERSION = 2
"""Version of the NetCDF layout; readers refuse files written with another one.  2: every
point and shard file stores its whole spec (``params``)."""

_ANALYSIS = ("open_results", "open_points", "point_coords")


def enable_x64() -> None:
    """Switch JAX to float64, as nnfield's samplers require (nnfield.engine.precision); the
    command line and each study's simulate call it themselves."""
    from nnfield.engine.precision import enable_x64 as enable

    enable()


def __getattr__(name: str):
    """``nnfield.open_results`` and friends (nnfield.results), imported on first use so that
    ``import nnfield`` stays light."""
    if name in _ANALYSIS:
        from nnfield import results

        return getattr(results, name)
    raise AttributeError(f"module 'nnfield' has no attribute {name!r}")
