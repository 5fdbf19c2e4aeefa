"""Exact results: closed-form kernels and finite-width correlators (NumPy/SciPy only)."""
