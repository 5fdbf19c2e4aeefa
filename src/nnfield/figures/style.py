"""One house style for every figure, and reproducible saving (no timestamps in PDF/PNG)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from nnfield.atomic import atomic_path, describe_write_failure
from nnfield.store import DataFileError

RC = {
    "figure.dpi": 110,
    "savefig.dpi": 150,
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.labelsize": 9,
    "legend.fontsize": 7,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "lines.linewidth": 1.3,
    "errorbar.capsize": 2,
    "svg.hashsalt": "nnfield",
}
COLORS = {"4": "#1f77b4", "6": "#d62728", "floor": "0.45", "exact": "black"}


def apply() -> None:
    plt.rcParams.update(RC)


def save(fig, paths, subject: str = "", before_rename=None) -> None:
    """Save ``fig`` to each path (format from the suffix) atomically, without timestamps;
    ``subject`` goes into the metadata (PDF Subject, PNG Description); ``before_rename`` is
    a last check (nnfield.atomic)."""
    for path in map(Path, paths):
        fmt = path.suffix.lstrip(".")
        pdf = {"CreationDate": None, "ModDate": None, "Producer": "nnfield", "Subject": subject}
        metadata = {"pdf": pdf, "png": {"Software": "nnfield", "Description": subject}}.get(fmt, {})
        try:
            with atomic_path(path, before_rename=before_rename) as tmp:
                fig.savefig(tmp, format=fmt, metadata=metadata)
        except OSError as err:
            raise DataFileError(describe_write_failure(path, err)) from err
    plt.close(fig)
