"""svag_jax: SGD on scale-invariant networks through stochastic differential equations."""

__version__ = '0.1.0'
