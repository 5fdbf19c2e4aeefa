"""Figures: pure functions of study datasets (see nnfield.studies.FIGURE_STUDY)."""
