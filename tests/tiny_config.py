"""The tests' tiny config as a config file, for tests that run the real entry point."""

from tests.helpers import tiny_config


def get_config():
  return tiny_config()
