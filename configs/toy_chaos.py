"""2020 paper, Fig. 5a: GD with WD on the scale-invariant toy L(x, y) = x^2 / (x^2 + y^2) is
chaotic; gradient flow from the same starts is not.

GD + WD, w <- (1 - eta lambda) w - eta grad L(w), with eta = 0.1, lambda = 0.1, 3,000 steps, from 32
starts near (1, 1): 16 base points within 5% of it, each with a partner 1e-13 (relative) away.
Gradient flow of L alone (no WD: the paper's comparison; it conserves ||w||)
from the same starts, RK4 with 20 substeps per GD step, sampled at times k * eta. float64
(launch/toy.py enables x64 for the run): in float32 |x| underflows to 0 during the first approach
to the minimum (|x/y| ~ 1e-54) and GD + WD then just shrinks w to the origin.

What happens: WD shrinks ||w||^2 by (1 - eta lambda)^2 per step while GD converges to the minimum
x = 0; once the effective LR eta / ||w||^2 passes ~1 (||w||^2 < eta) the minimum turns unstable,
the angle overshoots, the overshoot lengthens w (first growth of ||w||, the chaos onset, step ~240)
and the cycle repeats: |x / y| jumps between ~1e-40 and ~1, and paired trajectories separate
exponentially. GF's |x / y| falls monotonically as |x0 / y0| exp(-2 t / ||w0||^2).

Command (one config; the toy has no larger-scale variant, `:cpu` is accepted and the same):

    python -m svag_jax.launch.toy --config=toy_chaos --workdir=runs/toy_chaos
    python -m svag_jax.analysis.toy_chaos runs/toy_chaos

Runtime: 14 s wall on the 2-core CPU (load average ~10), mostly start-up and compilation.
Expected (measured here, seed 0): Lyapunov-like divergence rate = least-squares slope of
ln ||u - u'|| (unit directions of a pair) vs step, from the chaos onset to the first distance > 0.1:
0.054 nats per GD step, 95% interval [0.041, 0.066] (std 0.026 over 16 pairs, range
0.018-0.122; windows median steps 240-858). The largest Lyapunov exponent of the GD + WD map
(tangent vector carried by the Jacobian, renormalised each step, steps 240-3000) is
0.039 +- 0.003 nats/step (std over 16 starts): the slope is a finite-window estimate that stops at
the first crossing of the saturation level, i.e. on an up-swing of a ~40-nat sawtooth, so it
reads high. |x/y| increases at 1,715 of 3,000 GD steps (mean per trajectory), never under GF
(whose ||w||^2 drifts by 4e-12 relative).
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
