"""Shared test set-up: every test gets an empty user configuration folder."""

import pytest


@pytest.fixture(autouse=True)
def _no_user_config(isolated_config):
    """The machine's own cluster profiles must never leak into a test."""
    return isolated_config


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    """A tiny random-weights Llama folder with a generated tokenizer (built once a session)."""
    pytest.importorskip("transformers")
    from tinymodel import build_tiny_llama

    return build_tiny_llama(tmp_path_factory.mktemp("models") / "tiny")
