"""Shared test set-up: every test gets an empty user configuration folder."""

import pytest


@pytest.fixture(autouse=True)
def _no_user_config(isolated_config):
    """The machine's own cluster profiles must never leak into a test."""
    return isolated_config
