"""Scaling rules: a base setting at batch B mapped to batch kappa B, and SVAG(l) as the rule at 1/l.

Everything here is config-level arithmetic on Python floats (no jax): the optimizer's settings
that a rule changes (`Settings`: LR eta, WD lambda, the moment decays beta1, beta2, eps) at the
base batch size B, mapped to those at batch kappa B. The rules (`RULES`):

  'none'    nothing changes (the control: the same settings at every batch size);
  'linear'  eta -> kappa eta, everything else unchanged (Goyal et al. 2017; the LSR of Li, Malladi
            & Arora 2021, Theorem 5.6 says where it breaks for SGD);
  'sqrt'    the square-root rule (Malladi, Lyu, Panigrahi & Arora 2022, Sec. 5; the official code,
            github.com/abhishekpanigrahi1996/Adaptive-SDE, cifar_main.py, applies the same map
            with kappa = 1/ell^2 for SVAG):
              eta -> sqrt(kappa) eta,  1 - beta_i -> kappa (1 - beta_i),  eps -> eps / sqrt(kappa),
            and, for decoupled WD (adamw), lambda -> sqrt(kappa) lambda (derived below; the
            paper's Adam has WD as an L2 term inside the loss, which no rule touches).

A rule keeps the number of EPOCHS: schedules are given in epochs (`svag_jax.schedules`), so their
boundaries move to the same epochs, i.e. to 1/kappa times fewer optimizer steps, without any change
here. `batch_overrides` turns a config and a target batch size into the dotted overrides of a
sweep point, so that a sweep over B is one config (configs/sqrt_rule.py).

Why these maps (the derivation; the SDEs are those of Malladi et al. 2022, Sec. 4). Write the batch
gradient of batch size B as g = grad f + sigma z with Cov(sigma z) = Sigma_B = Sigma_1 / B. In the
noise-dominated regime the second-moment state v ~ diag Sigma_B, so the RMSprop step
eta g / (sqrt(v) + eps) = eta^2 g / (eta sqrt(v) + eta eps) is a step of length dt = eta^2 in a
time t = k eta^2 (k the step count), driven by the drift grad f / P and the noise sigma_0 z / P
with P = sigma_0 sqrt(u) + eps_0, where sigma_0^2 u = eta^2 v (so sigma_0 = eta sigma, the noise in
those time units) and eps_0 = eta eps. The moment states relax at the rates
c_i = (1 - beta_i) / eta^2 per unit of t. The SDE is fixed by (sigma_0^2 = eta^2 / B in units of
Sigma_1, eps_0, c_1, c_2): batch kappa B divides sigma^2 by kappa, so eta^2 must grow by kappa
(eta -> sqrt(kappa) eta), eps_0 = eta eps fixed gives eps -> eps / sqrt(kappa), c_i fixed gives
1 - beta_i -> kappa (1 - beta_i), and the number of steps per unit of t falls by kappa: the same
number of epochs (`svag_jax.theory.adaptive_sde_constants` computes these constants; the tests
check that every rule keeps them). Decoupled WD (AdamW) adds the step -eta lambda w, i.e. a drift
-(lambda / eta) w per unit of t: lambda_0 = lambda / eta must stay fixed, so lambda -> sqrt(kappa)
lambda, and the per-step decay eta lambda grows by kappa, like SGD's eta lambda under the LSR
(the same decay per epoch). Coupled L2 (rmsprop, adam) is part of grad f and scales with nothing.
SGD keeps (eta / B, eta lambda / 1 step ...) by the linear rule: its SDE runs in t = k eta.

SVAG (Li, Malladi & Arora 2021 for SGD; Malladi et al. 2022 for RMSprop/Adam) simulates the SDE
of batch B with amplification l: the combined gradient c1 g1 + c2 g2 has l times the noise
covariance of one batch (`svag_jax.optim.svag`), i.e. the noise of batch B / l, so the SVAG
settings are the SDE-preserving rule at kappa = 1/l: for SGD eta / l (l steps per unit of time),
for the adaptive optimizers eta / sqrt(l), 1 - beta_i -> (1 - beta_i) / l, eps -> sqrt(l) eps
(adamw: lambda / sqrt(l)), also l steps per unit of time (`svag`). The 2022 paper writes the
amplification as ell with c_{1,2} = (1 +- sqrt(2 ell^2 - 1)) / 2: its ell is sqrt(l) here, so
its ell = 2, 4, 8 are l = 4, 16, 64 (config.optim.svag_l is l, the noise amplification and the
number of steps per unit of time, for every optimizer).
"""

import math
from typing import Any, NamedTuple

RULES = ('none', 'linear', 'sqrt')
OPTIMIZERS = ('sgd', 'rmsprop', 'adam', 'adamw')
ADAPTIVE = ('rmsprop', 'adam', 'adamw')
DECOUPLED = ('adamw',)  # WD decoupled from the gradient (w <- w - eta (u + lambda w))


class Settings(NamedTuple):
  """The optimizer settings a scaling rule changes (Python floats).

  Attributes:
    lr: eta.
    wd: lambda (coupled: added to the gradient; adamw: decoupled, w <- w - eta (u + lambda w)).
    beta1: decay of the first moment (adam, adamw; unused by sgd and rmsprop).
    beta2: decay of the second moment (rmsprop, adam, adamw).
    eps: added to sqrt(v) in the denominator (rmsprop, adam, adamw).
  """

  lr: float
  wd: float = 0.0
  beta1: float = 0.9
  beta2: float = 0.999
  eps: float = 1e-8


def _check(rule: str, optimizer: str) -> None:
  if rule not in RULES:
    raise ValueError(f'unknown scaling rule {rule!r}; choose one of {", ".join(RULES)}')
  if optimizer not in OPTIMIZERS:
    raise ValueError(f'unknown optimizer {optimizer!r}; choose one of {", ".join(OPTIMIZERS)}')


def _decay(beta: float, kappa: float, name: str) -> float:
  """1 - kappa (1 - beta), refused when it leaves [0, 1)."""
  scaled = 1.0 - kappa * (1.0 - beta)
  if not 0.0 <= scaled < 1.0:
    raise ValueError(
        f'the sqrt rule at kappa = {kappa:g} maps {name} = {beta:g} to {scaled:g}, outside [0, 1):'
        f' kappa (1 - {name}) must be <= 1; raise {name} or scale the batch less'
    )
  return scaled


def uses(optimizer: str) -> tuple[str, ...]:
  """The `Settings` fields that `optimizer` reads (the others are ignored by it)."""
  return {
      'sgd': ('lr', 'wd'),
      'rmsprop': ('lr', 'wd', 'beta2', 'eps'),
      'adam': ('lr', 'wd', 'beta1', 'beta2', 'eps'),
      'adamw': ('lr', 'wd', 'beta1', 'beta2', 'eps'),
  }[optimizer]


def scale(settings: Settings, rule: str, kappa: float, optimizer: str) -> Settings:
  """The settings at batch kappa B of `settings` at batch B under `rule` (module docstring).

  Only the fields `optimizer` reads change (`uses`); kappa = 1 returns `settings` itself.

  Raises:
    ValueError: for an unknown rule or optimizer, kappa <= 0, or a beta that the sqrt rule would
      push out of [0, 1).
  """
  _check(rule, optimizer)
  if not (math.isfinite(kappa) and kappa > 0):
    raise ValueError(f'kappa must be a finite number > 0, got {kappa!r}')
  if rule == 'none' or kappa == 1:
    return settings
  if rule == 'linear':
    return settings._replace(lr=settings.lr * kappa)
  root = math.sqrt(kappa)
  if optimizer == 'sgd':  # Krizhevsky's sqrt rule for SGD (not SDE-preserving: see `sde_rule`)
    return settings._replace(lr=settings.lr * root)
  used = uses(optimizer)
  return settings._replace(
      lr=settings.lr * root,
      wd=settings.wd * root if optimizer in DECOUPLED else settings.wd,
      beta1=_decay(settings.beta1, kappa, 'beta1') if 'beta1' in used else settings.beta1,
      beta2=_decay(settings.beta2, kappa, 'beta2'),
      eps=settings.eps / root,
  )


def sde_rule(optimizer: str) -> str:
  """The rule that keeps the optimizer's SDE: 'linear' for SGD (time t = k eta), 'sqrt' for the
  adaptive optimizers (time t = k eta^2)."""
  _check('none', optimizer)
  return 'linear' if optimizer == 'sgd' else 'sqrt'


def svag(settings: Settings, l: int | float, optimizer: str) -> Settings:
  """The per-step settings of SVAG(l): the SDE rule at kappa = 1/l, written as divisions.

  SGD: eta / l (WD unchanged: the exact numbers of `schedules.SvagTime` and of every SGD SVAG run
  so far). Adaptive: eta / sqrt(l), 1 - beta_i -> (1 - beta_i) / l, eps -> sqrt(l) eps, adamw
  also lambda / sqrt(l) (Malladi et al. 2022 with their ell = sqrt(l); module docstring). l = 1
  returns `settings` itself, so SVAG(1) is the optimizer bit for bit.
  """
  _check('none', optimizer)
  if not (isinstance(l, (int, float)) and math.isfinite(l) and l >= 1):
    raise ValueError(f'SVAG amplification l must be a finite number >= 1, got {l!r}')
  if l == 1:
    return settings
  if optimizer == 'sgd':
    return settings._replace(lr=settings.lr / l)
  root = math.sqrt(l)
  return settings._replace(
      lr=settings.lr / root,
      wd=settings.wd / root if optimizer in DECOUPLED else settings.wd,
      beta1=1.0 - (1.0 - settings.beta1) / l if 'beta1' in uses(optimizer) else settings.beta1,
      beta2=1.0 - (1.0 - settings.beta2) / l,
      eps=settings.eps * root,
  )


def settings_of(optim_config: Any) -> Settings:
  """The `Settings` of a config's `optim` group (its own lr and wd, not the arms')."""
  o = optim_config
  return Settings(float(o.lr), float(o.wd), float(o.beta1), float(o.beta2), float(o.eps))


def _rounded(x: float) -> float:
  """x to 12 significant digits (readable sweep points; far below any effect)."""
  return float(f'{x:.12g}')


def batch_overrides(config: Any, rule: str, batch_size: int) -> dict[str, Any]:
  """The dotted overrides that move `config` from its batch size B to `batch_size` under `rule`.

  kappa = batch_size / B. Overrides `train.batch_size`, and of `optim.lr`, `optim.wd`,
  `optim.beta1`, `optim.beta2`, `optim.eps` those that the rule changes for the config's optimizer
  (`config.optim.optimizer`; fields the optimizer does not read, and `optim` fields that every arm
  sets, stay untouched, as validation requires); an arm that sets its own lr (or, for adamw under
  'sqrt', wd) gets its own override `arms.<name>.lr` (`.wd`). Schedules are in epochs and need
  no change. Values are rounded to 12 significant digits.
  """
  optimizer = config.optim.optimizer
  kappa = batch_size / config.train.batch_size
  base = settings_of(config.optim)
  new = scale(base, rule, kappa, optimizer)
  # The optim fields that every arm sets (`svag_jax.arms.shadowed_fields`; not imported: arms
  # imports schedules, which imports this module).
  arms = list(config.arms.values())
  shadowed = {f for f in ('lr', 'wd') if arms and all(f in arm for arm in arms)}
  out: dict[str, Any] = {'train.batch_size': int(batch_size)}
  for field in uses(optimizer):
    if field not in shadowed and getattr(new, field) != getattr(base, field):
      out[f'optim.{field}'] = _rounded(getattr(new, field))
  for name, arm in config.arms.items():
    for field in ('lr', 'wd'):
      if field in arm:
        arm_new = scale(base._replace(**{field: float(arm[field])}), rule, kappa, optimizer)
        if getattr(arm_new, field) != float(arm[field]):
          out[f'arms.{name}.{field}'] = _rounded(getattr(arm_new, field))
  return out
