"""Shared fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

from genadapt.checkpoint import save_checkpoint

from helpers import make_checkpoint


@pytest.fixture
def checkpoint_path(tmp_path: Path) -> Path:
    """A checkpoint whose network labels every pixel 'car' (train id 13)."""
    return save_checkpoint(make_checkpoint(winning_class=13), tmp_path / "model.pt")
