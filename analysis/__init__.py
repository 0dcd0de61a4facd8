"""Figures and tables of run records; installed as svag_jax.analysis (pyproject: package-dir)."""
