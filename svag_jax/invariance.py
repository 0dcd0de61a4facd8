"""Scale-invariant parameter groups of any model, found from its loss.

A set S of parameter tensors is a scale-invariant group when rescaling all of them by one factor
leaves the loss unchanged, L(w_S -> c w_S) = L(w) for every c > 0, and no smaller set containing
one of them has that property. Then <grad_S L, w_S> = 0 (Euler), grad_S L(c w) = grad_S L(w) / c,
and the theory of svag_jax applies to each group on its own: the effective LR eta / ||w_S||^2, the
norm's equilibrium and the angular update sqrt(2 eta lambda / (1 + beta)) per step
(`svag_jax.theory`). A run logs these per group (`svag_jax.rows`); a built-in model declares its
groups (`svag_jax.models.invariance_groups`), any other model has them found here at the start
of its run (WORKDIR/groups.json).

`find_groups(model, variables, batch)` (a Flax Linen module, cross-entropy) and
`find_loss_groups(per_example_loss, params)` (any loss) return the partition of the parameter
tensors into groups, the tensors in no group and the inert ones (the loss does not depend on
them, e.g. a bias just before a BatchNorm), with evidence per group and per ungrouped tensor.

The algorithm (exact up to float32 rounding and the norms' eps, deterministic, no search over
subsets of tensors):

  1. Probes. The given weights w, and w~ = w plus 10% of each tensor's RMS in Gaussian noise (a
     fixed seed; RMS 1 for a tensor of zeros), so that zero-initialised tensors (biases, norm
     shifts) are also tested where they are not zero. Invariance holds at every w, so both
     probes must show it. A tensor whose gradient vanishes at both probes does not change the
     loss: inert (e.g. a bias just before a BatchNorm, or a Transformer's key bias).
  2. First order. At each probe, for every tensor i and example x, the derivative of the
     example's loss along the rescaling of tensor i alone, a_i(x) = d/dt l_x(w_i -> (1 + t) w_i)
     at t = 0: one forward-mode pass (`jax.jvp`) per tensor. For a group S, sum_{i in S} a_i(x)
     = 0 for every x at both probes: its indicator 1_S is in the null space of the matrix
     V [2 n, tensors] (columns in units of ||grad_i L|| ||w_i||, so its entries are per-example
     cosines). So is every other rescaling symmetry of the loss, e.g. (+1, -1) on two
     consecutive layers of a ReLU net (scale one up, the other down) or on a query and a key
     kernel: the null space alone is not the answer.
  3. The groups in the null space. With Q a basis of the null space of V (SVD), each tensor in
     path order that is not yet grouped gets the smallest set containing it whose indicator is
     in the null space: a linear program, minimise sum_j x_j over x = Q theta with x >= 0,
     x_i = 1 and x_j = 0 on the tensors already grouped (HiGHS). Its optimum is the indicator of
     a minimal group when one exists; a fractional or infeasible one means tensor i is in no
     group. This finds joint groups that no single tensor forms (PreResNet's shortcut + conv2
     kernels of a stage, a pre-LN Transformer's residual stream: embedding, attention output and
     MLP output), never splits one, and takes the group with the fewest tensors where several
     overlap.
  4. The loss itself. A candidate is a group only if rescaling it by each of `factors` moves the
     batch's per-example losses by at most `rtol` (relative, `Evidence.loss_change`) at both
     probes. The factors are powers of two, so the rescaling is exact in floating point and an
     invariant group's losses move only through the norms' eps (~eps / (2 c^2 var) of the
     normalised pre-activations: <= 2e-5 for Flax's default eps of 1e-5 in the tests), never by
     rounding, while a tensor that is not invariant moves them by the change of the function
     (>= 8e-3 in the tests). `rtol` = 1e-3 sits between the two.

Cost, for m tensors and a batch of n examples: 2m forward-mode passes (each about two forward
passes of the batch), 2 gradients, and 2 (len(factors) + 1) forward passes per candidate group and
per tensor left in no group (its evidence); the linear algebra is an SVD of a [2n, m] matrix and
one small linear program per tensor. V needs n >= m: a batch of at least as many examples as
tensors (3 compiled programs; a few seconds on a CPU for the models of the tests).
"""

import dataclasses
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import traverse_util

from svag_jax import rescaling
from svag_jax.models.external import train_kwargs

# Rescaling factors of the loss test: powers of two (exact in floating point), both directions.
FACTORS = (0.5, 2.0, 8.0)
# Largest relative change of the per-example losses of an invariant group (step 4).
RTOL = 1e-3
# Singular values of V / sqrt(2n) counted as zero: <= 3e-5 along the symmetries of the tests'
# models (float32 rounding, the norms' eps), >= 3e-2 along the other directions.
NULL_TOL = 1e-3
# A tensor whose gradient is at most this times the largest one (at both probes) is inert.
INERT_TOL = 1e-5
# Relative noise of the second probe (step 1), and its key.
PROBE_NOISE = 0.1
_PROBE_SEED = 0

PerExampleLoss = Callable[[Any], jax.Array]  # params -> float32 [n] (one loss per example)


@dataclasses.dataclass(frozen=True)
class Evidence:
  """Why a set of tensors is (or is not) a scale-invariant group.

  Attributes:
    loss_change: max over the factors and both probes of the relative change of the batch's
      per-example losses when the set is rescaled, ||l(c w_S) - l(w)|| / ||l(w)|| (l: the vector
      of per-example losses): <= `RTOL` for a group (the norms' eps), the change of the function
      otherwise (1e-2 to 1 for the tensors of tests/test_invariance.py that are in no group).
    grad_cos: max over both probes of |<grad_S L, w_S>| / (||grad_S L|| ||w_S||): ~1e-6 for a
      group (float32 rounding and eps), typically 1e-2 to 1 otherwise (0 where grad_S L = 0).
  """

  loss_change: float
  grad_cos: float

  def to_json(self) -> dict:
    return {'loss_change': self.loss_change, 'grad_cos': self.grad_cos}


def group_name(members: Sequence[str]) -> str:
  """The name of a group of '/'-joined parameter paths: its first path (sorted) with '.' for '/',
  followed by '_and_<k>_more' for a group of k + 1 tensors: 'Conv_0.kernel',
  'stage1_block1.conv2.kernel_and_5_more'. Only letters, digits, '_', '-' and '.' (a valid
  TensorBoard tag); the members themselves are in WORKDIR/groups.json."""
  first = sorted(members)[0].replace('/', '.')
  return first if len(members) == 1 else f'{first}_and_{len(members) - 1}_more'


@dataclasses.dataclass(frozen=True)
class Group:
  """One scale-invariant group: its tensors ('/'-joined paths in params) and its evidence (None
  for a declared group)."""

  members: tuple[str, ...]
  evidence: Evidence | None = None

  @property
  def name(self) -> str:
    return group_name(self.members)


@dataclasses.dataclass(frozen=True)
class Groups:
  """A model's parameters split into scale-invariant groups (`find_groups`, or `declared`).

  Attributes:
    groups: the groups, in the order of their first tensor's path.
    ungrouped: the tensors in no group, each with the evidence of rescaling it alone (None when
      declared).
    inert: tensors the loss does not depend on (their rescaling is trivially invariant; they form
      no group).
    source: 'found' (`find_groups`) or 'declared' (a built-in model's own groups).
  """

  groups: tuple[Group, ...]
  ungrouped: Mapping[str, Evidence | None]
  inert: tuple[str, ...] = ()
  source: str = 'found'

  def partition(self) -> tuple[tuple[str, tuple[str, ...]], ...]:
    """((name, members), ...) of the groups: what `svag_jax.train.Trainer.groups` takes."""
    return tuple((g.name, g.members) for g in self.groups)

  def sets(self) -> set[frozenset[str]]:
    """The groups as a set of sets of paths (to compare partitions)."""
    return {frozenset(g.members) for g in self.groups}

  def to_json(self) -> dict:
    """The JSON of WORKDIR/groups.json (`from_json` reads it back)."""
    ev = lambda e: None if e is None else e.to_json()
    return {
        'source': self.source,
        'groups': [
            {'name': g.name, 'members': list(g.members), 'evidence': ev(g.evidence)}
            for g in self.groups
        ],
        'ungrouped': {p: ev(e) for p, e in self.ungrouped.items()},
        'inert': list(self.inert),
    }

  @classmethod
  def from_json(cls, data: dict) -> 'Groups':
    ev = lambda e: None if e is None else Evidence(**e)
    return cls(
        groups=tuple(Group(tuple(g['members']), ev(g['evidence'])) for g in data['groups']),
        ungrouped={p: ev(e) for p, e in data['ungrouped'].items()},
        inert=tuple(data['inert']),
        source=data['source'],
    )

  def summary(self) -> str:
    """A few lines: each group with its size and evidence, then the tensors in no group."""
    lines = [f'{len(self.groups)} scale-invariant group(s) ({self.source}):']
    for g in self.groups:
      ev = (
          ''
          if g.evidence is None
          else (
              f'  loss change {g.evidence.loss_change:.1e}, cos(grad, w) {g.evidence.grad_cos:.1e}'
          )
      )
      lines.append(f'  {g.name}: {len(g.members)} tensor(s){ev}')
    if self.ungrouped:
      lines.append(f'in no group: {", ".join(sorted(self.ungrouped))}')
    if self.inert:
      lines.append(f'inert (the loss does not depend on them): {", ".join(self.inert)}')
    return '\n'.join(lines)


def declared(groups: Sequence[Sequence[str]], params: Any) -> Groups:
  """The `Groups` of declared groups (lists of '/'-joined paths of `params`); every other tensor
  is ungrouped. Raises ValueError when a path is not a tensor of `params` or is in two groups."""
  paths = sorted(traverse_util.flatten_dict(params, sep='/'))
  seen: set[str] = set()
  for g in groups:
    for p in g:
      if p not in paths:
        raise ValueError(f'declared group member {p!r} is not a parameter ({", ".join(paths)})')
      if p in seen:
        raise ValueError(f'{p!r} is declared in two groups')
      seen.add(p)
  found = sorted((Group(tuple(sorted(g))) for g in groups if g), key=lambda g: g.members[0])
  return Groups(tuple(found), {p: None for p in paths if p not in seen}, (), 'declared')


def model_per_example_loss(
    model: nn.Module, variables: Mapping[str, Any], images: jax.Array, labels: jax.Array
) -> PerExampleLoss:
  """`params -> [n]` per-example cross-entropies of `model` (a Flax Linen module, `(x[, train])
  -> logits`) on the batch, in training mode (BatchNorm with the batch's statistics; the updated
  running averages are dropped), the other collections of `variables` fixed."""
  rest = {k: v for k, v in variables.items() if k != 'params'}
  flag = train_kwargs(model, True)

  def loss(params):
    logits, _ = model.apply({**rest, 'params': params}, images, mutable=['batch_stats'], **flag)
    return optax.softmax_cross_entropy_with_integer_labels(logits, labels)

  return loss


def find_groups(
    model: nn.Module,
    variables: Mapping[str, Any],
    batch: tuple[jax.Array, jax.Array],
    **options,
) -> Groups:
  """The scale-invariant groups of a Flax Linen module's parameters (module docstring).

  Args:
    model: `(x[, train]) -> logits` (`svag_jax.models.external`; an NNX model through
      `external.from_nnx`).
    variables: its variables ('params' and any others, e.g. 'batch_stats'); the groups are
      those of `variables['params']`.
    batch: (inputs [n, ...] as the model takes them, int labels [n]); n >= the number of
      parameter tensors.
    **options: of `find_loss_groups` (factors, rtol, null_tol, inert_tol).

  Returns:
    `Groups`: the partition, the ungrouped and inert tensors, evidence per group and tensor.

  Example (run by tests/test_docstring_examples.py): a dense layer followed by a BatchNorm
  without affine is invariant, the trained head is not::

    >>> import flax.linen as nn, jax, jax.numpy as jnp
    >>> class Net(nn.Module):
    ...   @nn.compact
    ...   def __call__(self, x, train: bool):
    ...     x = nn.Dense(32, use_bias=False)(x)
    ...     x = nn.BatchNorm(use_running_average=not train, use_scale=False, use_bias=False)(x)
    ...     return nn.Dense(3)(nn.relu(x))
    >>> x = jax.random.normal(jax.random.key(1), (16, 5))
    >>> y = jnp.arange(16) % 3
    >>> net = Net()
    >>> found = find_groups(net, net.init(jax.random.key(0), x, train=False), (x, y))
    >>> [g.name for g in found.groups], sorted(found.ungrouped)
    (['Dense_0.kernel'], ['Dense_1/bias', 'Dense_1/kernel'])
  """
  images, labels = batch
  loss = model_per_example_loss(model, variables, images, labels)
  return find_loss_groups(loss, variables['params'], **options)


def find_loss_groups(
    per_example_loss: PerExampleLoss,
    params: Any,
    factors: Sequence[float] = FACTORS,
    rtol: float = RTOL,
    null_tol: float = NULL_TOL,
    inert_tol: float = INERT_TOL,
) -> Groups:
  """The scale-invariant groups of the tensors of `params` for a loss (module docstring).

  Args:
    per_example_loss: `params -> float32 [n]`, one loss per example (their mean is the loss); n
      must be at least the number of tensors.
    params: nested dicts of arrays (Flax 'params'); a tensor's path is its '/'-joined keys.
    factors: rescaling factors of the loss test (powers of two keep it exact).
    rtol: largest `Evidence.loss_change` of an accepted group.
    null_tol: singular values of V (per-example cosines, divided by sqrt(rows)) up to this count
      as zero.
    inert_tol: a tensor whose gradient is at most this times the largest tensor gradient at both
      probes is inert.
  """
  probes = _Probes(per_example_loss, params, factors)
  if probes.n < probes.m:
    raise ValueError(
        f'find_groups needs at least as many examples as parameter tensors: {probes.n} < '
        f'{probes.m}; pass a larger batch'
    )
  g_norms = np.array([[np.linalg.norm(x) for x in g] for g in probes.grads])  # [probes, m]
  w_norms = np.array([[np.linalg.norm(x) for x in w] for w in probes.weights])
  inert = np.all(g_norms <= inert_tol * g_norms.max(axis=1, keepdims=True), axis=0)
  live = np.flatnonzero(~inert)
  # V with each column in units of ||grad_i L|| ||w_i|| (the larger of the two probes): its
  # entries are per-example cosines, ~1e-7 (rounding) along an invariant rescaling.
  v = probes.rescaling_jvps()
  unit = np.max(g_norms * w_norms, axis=0)[live]
  basis = rescaling.null_space(v[:, live] / unit, null_tol * math.sqrt(v.shape[0])) / unit[:, None]

  groups, taken = [], np.zeros(len(live), bool)
  for j in range(len(live)):
    if taken[j] or basis.shape[1] == 0:
      continue
    members = rescaling.smallest_set(basis, j, taken)
    if members is None:
      continue
    ev = probes.evidence([live[k] for k in members])
    if ev.loss_change <= rtol:
      groups.append(Group(tuple(probes.paths[live[k]] for k in members), ev))
      taken[members] = True
  ungrouped = {probes.paths[i]: probes.evidence([i]) for j, i in enumerate(live) if not taken[j]}
  inert_paths = tuple(probes.paths[i] for i in np.flatnonzero(inert))
  return Groups(tuple(groups), ungrouped, inert_paths, 'found')


def check_groups(
    model: nn.Module,
    variables: Mapping[str, Any],
    batch: tuple[jax.Array, jax.Array],
    groups: Sequence[Sequence[str]],
    factors: Sequence[float] = FACTORS,
) -> list[Evidence]:
  """The `Evidence` of each given group ('/'-joined paths of `variables['params']`) on a batch:
  a group is scale invariant when its `loss_change` is at most `RTOL`. E.g. half of PreResNet's
  joint group (its shortcut without the conv2 kernels) changes the loss by ~1e-2."""
  images, labels = batch
  probes = _Probes(
      model_per_example_loss(model, variables, images, labels), variables['params'], factors
  )
  index = {p: i for i, p in enumerate(probes.paths)}
  return [probes.evidence([index[p] for p in g]) for g in groups]


class _Probes:
  """The loss of a model at the two probes (module docstring, step 1): its gradients, the
  rescaling derivatives V (step 2) and the evidence of a set of tensors (step 4)."""

  def __init__(self, per_example_loss: PerExampleLoss, params: Any, factors: Sequence[float]):
    flat = traverse_util.flatten_dict(params, sep='/')
    self.paths = sorted(flat)
    self.m = len(self.paths)
    self.factors = np.asarray(factors, np.float32)
    unflatten = lambda leaves: traverse_util.unflatten_dict(dict(zip(self.paths, leaves)), sep='/')
    self.per_example = lambda leaves: per_example_loss(unflatten(leaves))
    base = [jnp.asarray(flat[p], jnp.float32) for p in self.paths]
    self.leaves = [base, _perturbed(base)]
    self.n = int(jax.eval_shape(self.per_example, base).shape[0])
    grad = jax.jit(jax.grad(lambda leaves: jnp.mean(self.per_example(leaves))))
    self.grads = [[np.asarray(x, np.float64) for x in grad(ls)] for ls in self.leaves]
    self.weights = [[np.asarray(x, np.float64) for x in ls] for ls in self.leaves]
    self._scaled = jax.jit(rescaling.scaled_losses(self.per_example))

  def rescaling_jvps(self) -> np.ndarray:
    """V [2n, m]: both probes' `rescaling.rescaling_jvps`, stacked."""
    jvps = [rescaling.rescaling_jvps(self.per_example, ls) for ls in self.leaves]
    return np.concatenate([np.asarray(v, np.float64) for v in jvps])

  def evidence(self, members: Sequence[int]) -> Evidence:
    """The loss change and gradient cosine of rescaling tensors `members` jointly."""
    scales = np.ones((len(self.factors) + 1, self.m), np.float32)  # row 0: the probe itself
    scales[1:, list(members)] = self.factors[:, None]
    change, cos = 0.0, 0.0
    for leaves, grads, weights in zip(self.leaves, self.grads, self.weights):
      losses = np.asarray(self._scaled(leaves, scales), np.float64)  # [1 + factors, n]
      moved = np.mean(np.square(losses[1:] - losses[0]), axis=1) / np.mean(np.square(losses[0]))
      change = max(change, float(np.sqrt(np.max(moved))))
      cos = max(cos, _cos([grads[i] for i in members], [weights[i] for i in members]))
    return Evidence(change, cos)


def _perturbed(leaves: list[jax.Array]) -> list[jax.Array]:
  """The second probe: each tensor plus PROBE_NOISE x its RMS (1 for zeros) of Gaussian noise
  (NumPy's generator with a fixed seed: the same numbers on every machine)."""
  rng = np.random.default_rng(_PROBE_SEED)
  out = []
  for x in leaves:
    x = np.asarray(x, np.float32)
    rms = float(np.sqrt(np.mean(np.square(x, dtype=np.float64)))) if x.size else 0.0
    noise = rng.standard_normal(x.shape).astype(np.float32)
    out.append(jnp.asarray(x + np.float32(PROBE_NOISE * (rms if rms > 0 else 1.0)) * noise))
  return out


def _cos(grads: list[np.ndarray], weights: list[np.ndarray]) -> float:
  g = np.concatenate([np.ravel(x) for x in grads])
  w = np.concatenate([np.ravel(x) for x in weights])
  denom = np.linalg.norm(g) * np.linalg.norm(w)
  return float(abs(g @ w) / denom) if denom > 0 else 0.0
