"""Shared pytest fixtures."""

from tests.pg import *  # noqa: F403
