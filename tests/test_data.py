"""Data sources: the bundled MNIST digits, synthetic data, and tfds (mocked; never downloads)."""

import numpy as np
import pytest

from svag_jax import data as data_lib
from tests.helpers import tiny_config


def test_mnist5k_is_a_stratified_deterministic_split():
  a, b = data_lib.load_mnist5k(), data_lib.load_mnist5k()
  assert a.train_images.shape == (4000, 28, 28, 1) and a.test_images.shape == (1000, 28, 28, 1)
  assert a.train_images.dtype == np.uint8 and a.train_labels.dtype == np.int32
  np.testing.assert_array_equal(np.bincount(a.train_labels), [400] * 10)
  np.testing.assert_array_equal(np.bincount(a.test_labels), [100] * 10)
  np.testing.assert_array_equal(a.train_images, b.train_images)
  np.testing.assert_array_equal(a.test_labels, b.test_labels)
  assert not np.all(np.diff(a.train_labels) >= 0), 'the file is sorted by label: must be shuffled'
  assert 0.1 < float(a.mean[0]) < 0.15 and 0.28 < float(a.std[0]) < 0.34  # MNIST statistics


def test_synthetic_and_subsets():
  cfg = tiny_config().data
  ds = data_lib.load(cfg)
  assert ds.train_images.shape == (256, 8, 8, 1) and ds.num_classes == 4
  cfg.num_train, cfg.num_test = 100, 10
  sub = data_lib.load(cfg)
  assert sub.num_train == 100 and len(sub.test_labels) == 10
  np.testing.assert_array_equal(sub.train_images, data_lib.load(cfg).train_images)  # fixed
  cfg.num_train = 10_000
  with pytest.raises(data_lib.DataError, match='num_train'):
    data_lib.load(cfg)


def test_tfds_source_reads_a_mocked_dataset():
  tfds = pytest.importorskip('tensorflow_datasets')
  with tfds.testing.mock_data(num_examples=24):
    ds = data_lib.load_tfds('mnist')
  assert ds.train_images.shape == (24, 28, 28, 1) and ds.train_images.dtype == np.uint8
  assert ds.num_classes == 10 and ds.train_labels.dtype == np.int32
  assert ds.test_images.shape[0] == 24


@pytest.mark.parametrize(
    'name, num_classes', [('cifar10', 10), ('cifar100', 100), ('svhn_cropped', 10)]
)
def test_tfds_cifar_and_svhn_through_the_config(name, num_classes):
  tfds = pytest.importorskip('tensorflow_datasets')
  cfg = tiny_config().data
  cfg.source, cfg.name, cfg.num_train = 'tfds', name, 20
  with tfds.testing.mock_data(num_examples=32):
    ds = data_lib.load(cfg)
  assert ds.train_images.shape == (20, 32, 32, 3) and ds.train_images.dtype == np.uint8
  assert ds.test_images.shape == (32, 32, 32, 3) and ds.test_labels.dtype == np.int32
  # from the data set's metadata, not from the labels the mock happened to draw
  assert ds.num_classes == num_classes
  assert 0 <= ds.train_labels.min() and ds.train_labels.max() < num_classes
  assert ds.mean.shape == ds.std.shape == (3,)


def test_missing_tfds_dataset_fails_with_instructions_and_no_download(tmp_path, monkeypatch):
  tfds = pytest.importorskip('tensorflow_datasets')

  def no_download(*args, **kwargs):
    raise AssertionError('a test tried to download a data set')

  monkeypatch.setattr(tfds.core.DatasetBuilder, 'download_and_prepare', no_download)
  with pytest.raises(data_lib.DataError) as e:
    data_lib.load_tfds('mnist', data_dir=str(tmp_path), download=False)
  msg = str(e.value)
  assert str(tmp_path) in msg and 'mnist5k' in msg and 'download_and_prepare' in msg
