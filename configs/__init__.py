"""One get_config() per experiment; installed as svag_jax.configs (pyproject: package-dir)."""
