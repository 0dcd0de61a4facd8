"""On-device crop + flip augmentation: exact crops, uniform draws, per-trial keys, plumbing."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from svag_jax import augment, models, sampling, schedules, train
from svag_jax import config as config_lib
from svag_jax import data as data_lib
from svag_jax.checks import ConfigError
from tests.helpers import run_tiny, tiny_config

pytestmark = pytest.mark.usefixtures('compile_bound')
PAD = 4


def _candidates(image: np.ndarray, pad: int = PAD) -> np.ndarray:
  """Every crop/flip of one zero-padded image [H, W, C]: [(2p+1)^2 * 2, H, W, C], ordered
  (dy, dx, flip) row-major."""
  h, w = image.shape[:2]
  padded = np.pad(image, ((pad, pad), (pad, pad), (0, 0)))
  out = []
  for dy in range(2 * pad + 1):
    for dx in range(2 * pad + 1):
      crop = padded[dy : dy + h, dx : dx + w]
      out += [crop, crop[:, ::-1]]
  return np.stack(out)


def _decode(out: np.ndarray, image: np.ndarray) -> np.ndarray:
  """(dy, dx, flip) int [B, 3] of each augmented copy [B, H, W, C] of `image`; fails unless
  each output equals exactly one candidate crop."""
  cands = _candidates(image)
  match = np.all(out[:, None] == cands[None], axis=(2, 3, 4))  # [B, n candidates]
  assert np.all(match.sum(1) == 1), 'an output is not a shifted/flipped copy of the padded input'
  k = match.argmax(1)
  side = 2 * PAD + 1
  return np.stack([k // 2 // side, k // 2 % side, k % 2], axis=1)


def test_every_output_is_a_padded_crop_possibly_flipped():
  rng = np.random.default_rng(0)
  images = rng.integers(1, 256, size=(16, 8, 6, 3), dtype=np.uint8)  # non-zero: padding shows
  out = np.asarray(jax.jit(augment.crop_and_flip)(jax.random.key(1), jnp.asarray(images)))
  assert out.shape == images.shape and out.dtype == np.uint8
  for i in range(len(images)):
    _decode(out[i : i + 1], images[i])


def test_offsets_and_flips_are_uniform_and_vary_per_example():
  rng = np.random.default_rng(1)
  image = rng.integers(1, 256, size=(6, 6, 2), dtype=np.uint8)
  n = 4000
  batch = jnp.broadcast_to(jnp.asarray(image), (n, *image.shape))
  draws = _decode(np.asarray(augment.crop_and_flip(jax.random.key(2), batch)), image)
  side = 2 * PAD + 1
  for axis in (0, 1):  # dy, dx uniform on {0..8}: each count within 5 sigma of n / 9
    counts = np.bincount(draws[:, axis], minlength=side)
    sigma = np.sqrt(n * (1 / side) * (1 - 1 / side))
    assert np.all(np.abs(counts - n / side) < 5 * sigma), counts
  flip_rate = draws[:, 2].mean()
  assert abs(flip_rate - 0.5) < 5 * np.sqrt(0.25 / n), flip_rate
  # dy and dx are drawn independently: all 81 pairs occur
  assert len({(a, b) for a, b, _ in draws}) == side * side


def _trainer_and_data(aug: bool, oracle: str = 'sgd', color_coded: bool = False):
  """A tiny CNN trainer on 64 random 8x8x3 images; `color_coded`: the class is the image's
  dominant channel (4 classes on 3 channels + grey), a signal that survives crops and flips."""
  cfg = tiny_config(**{'data.synthetic_shape': (8, 8, 3)})
  model = models.build(cfg.model, 4)
  rng = np.random.default_rng(3)
  labels = rng.integers(0, 4, 64)
  images = rng.integers(1, 256, size=(64, 8, 8, 3))
  if color_coded:
    tint = np.array([[200, 0, 0], [0, 200, 0], [0, 0, 200], [100, 100, 100]])[labels]
    images = np.clip(images // 4 + tint[:, None, None, :], 1, 255)
  data = data_lib.TrainData(
      jnp.asarray(images, jnp.uint8),
      jnp.asarray(labels, jnp.int32),
      jnp.full((3,), 0.5),
      jnp.full((3,), 0.25),
  )
  trainer = train.Trainer(
      model, batch_size=16, num_train=64, oracle=oracle, augment=aug, gn_batches=2
  )
  return trainer, data


def _init(trainer, data, lr=0.1):
  one = schedules.from_epochs(lr, (), trainer.steps_per_epoch)
  sched = jax.tree.map(jnp.asarray, schedules.Schedules(one, one))
  return trainer.init(jax.random.key(0), sched, data)


def test_trials_steps_and_svag_batches_get_independent_augmentations():
  trainer, data = _trainer_and_data(True)
  batch = jax.jit(trainer.sampler.batch_images)
  idx = jnp.arange(16)
  key_a, key_b = jax.random.key(0), jax.random.key(1)
  a0 = np.asarray(batch(data, idx, key_a, jnp.int32(0)))
  again = np.asarray(batch(data, idx, key_a, jnp.int32(0)))
  a1 = np.asarray(batch(data, idx, key_a, jnp.int32(1)))
  b0 = np.asarray(batch(data, idx, key_b, jnp.int32(0)))
  svag0 = np.asarray(batch(data, idx, sampling.svag_key(key_a), jnp.int32(0)))
  np.testing.assert_array_equal(a0, again)  # a pure function of (key, step)
  raw = np.asarray(data.images[:16])
  for other in (a0, a1, b0, svag0):  # valid crops of the right examples ...
    for i in range(16):
      _decode(other[i : i + 1], raw[i])
  for other in (a1, b0, svag0):  # ... but other crops for another step, trial, SVAG batch
    assert not np.array_equal(a0, other)
  # per trial under vmap: the trials' batches differ
  keys = jax.vmap(jax.random.key)(jnp.arange(2))
  both = np.asarray(
      jax.vmap(trainer.sampler.batch_images, in_axes=(None, None, 0, None))(
          data, idx, keys, jnp.int32(0)
      )
  )
  assert not np.array_equal(both[0], both[1])
  # without augmentation the batch is the raw gather
  plain, _ = _trainer_and_data(False)
  np.testing.assert_array_equal(np.asarray(plain.sampler.batch_images(data, idx, key_a, 0)), raw)


def _recording(monkeypatch, replacement=None):
  """Replaces crop_and_flip (by itself, or by `replacement`) and records the batch shapes."""
  calls, original = [], augment.crop_and_flip

  def recording(key, images, pad=PAD):
    calls.append(tuple(images.shape))
    return (replacement or original)(key, images, pad)

  monkeypatch.setattr(augment, 'crop_and_flip', recording)
  return calls


@pytest.mark.parametrize('oracle', ['sgd', 'svag'])
def test_augment_false_is_bit_for_bit_the_plain_step(monkeypatch, oracle):
  plain, data = _trainer_and_data(False, oracle)
  calls = _recording(monkeypatch, lambda key, images, pad: images)
  expected = jax.jit(plain.train_steps, static_argnums=2)(_init(plain, data), data, 2)
  assert calls == []  # never called when augment is False
  hooked, _ = _trainer_and_data(True, oracle)
  got = jax.jit(hooked.train_steps, static_argnums=2)(_init(hooked, data), data, 2)
  assert calls and all(c == (16, 8, 8, 3) for c in calls)  # one call per batch, not per example
  jax.tree.map(np.testing.assert_array_equal, _host(expected), _host(got))


def _host(tree):
  """Host copies of a pytree's leaves, typed PRNG keys as their raw key data."""

  def raw(x):
    return jax.random.key_data(x) if jnp.issubdtype(x.dtype, jax.dtypes.prng_key) else x

  return jax.device_get(jax.tree.map(raw, tree))


def test_gradient_noise_batches_are_augmented(monkeypatch):
  calls = _recording(monkeypatch)
  trainer, data = _trainer_and_data(True)
  trainer.gradient_noise(_init(trainer, data), data)
  assert calls == [(trainer.gn_batches * 16, 8, 8, 3)]


def test_augmented_training_learns_a_crop_invariant_signal():
  trainer, data = _trainer_and_data(True, color_coded=True)
  state = _init(trainer, data, lr=0.2)
  step = jax.jit(trainer.train_steps, static_argnums=2)
  losses = []
  for _ in range(6):
    state, loss = step(state, data, 4)
    losses.append(float(loss) / 4)
  assert losses[-1] < 0.5 * losses[0] and losses[-1] < 0.5 * np.log(4), losses


def test_tiny_run_with_augmentation(tmp_path, monkeypatch):
  calls = _recording(monkeypatch)
  result, rows = run_tiny(tmp_path, **{'data.synthetic_shape': (8, 8, 3), 'data.augment': True})
  assert result['status'] == 'done' and not any(r['diverged'] for r in rows)
  assert (32, 8, 8, 3) in calls  # config.data.augment reaches the Trainer


@pytest.mark.parametrize('oracle', ['ngd', 'gd'])
def test_augment_with_a_full_batch_oracle_is_a_config_error(oracle):
  cfg = tiny_config(
      **{'data.augment': True, 'optim.oracle': oracle, 'model.norm': 'group', 'model.num_groups': 2}
  )
  with pytest.raises(ConfigError, match=r'data\.augment.*fixed'):
    config_lib.validate(cfg)
  cfg.data.augment = False
  config_lib.validate(cfg)
