"""The command-line entry points; installed as svag_jax.launch (pyproject: package-dir)."""
