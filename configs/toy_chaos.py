"""2020 paper, Fig. 5a: GD with WD on the scale-invariant toy L(x, y) = x^2 / (x^2 + y^2) is
chaotic; gradient flow from the same starts is not.

Paper (Sec. 4; Fig. 5a and its settings are in Appendix D, not available here): on this toy,
gradient flow (with or without WD) decreases |x / y| monotonically, while GD with WD is chaotic:
nearby trajectories diverge as they approach the origin. Here: GD + WD at eta = lambda = 0.1 for
3,000 steps from 16 pairs of starts near (1, 1), 1e-13 apart; gradient flow of L alone (no WD) from
the same starts by RK4; float64. One scale (`:cpu` is accepted and the same).

    python -m svag_jax.launch.toy --config=toy_chaos --workdir=runs/toy_chaos
    python -m svag_jax.analysis.toy_chaos runs/toy_chaos

Runtime: 14 s wall on the 2-core CPU (load average ~10), mostly start-up and compilation. Expected
(measured, seed 0): pairs separate at 0.054 nats per GD step, 95% interval [0.041, 0.066] (largest
Lyapunov exponent of the map 0.039 +- 0.003); |x / y| increases at 1,715 of 3,000 GD steps, never
under gradient flow.

The mechanism, why float64, how the rates are estimated: docs/experiments.md#toy_chaos.
"""

from svag_jax import toy_experiment

ARGS = ('cpu',)  # the same as no argument: the toy has one scale
# The toy has its own schema (run by launch/toy.py, not launch/main.py); tests validate with this.
validate = toy_experiment.validate


def get_config(arg: str | None = None):
  if arg not in (None, '', 'cpu', 'full'):
    raise ValueError(f'unknown config argument {arg!r}; use nothing (or "cpu", the same)')
  c = toy_experiment.defaults()
  c.seed = 0
  c.lr, c.wd = 0.1, 0.1
  c.steps = 3000
  c.center = (1.0, 1.0)
  c.spread = 0.05
  c.delta = 1e-13
  c.num_pairs = 16
  c.gf_substeps = 20
  c.saturation = 0.1
  c.dtype = 'float64'
  return c
