"""Generated data for the trainer tests, shared by their modules."""

import pytest

from fake_datasets import write_cityscapes
from train_helpers import write_learnable_gta5


@pytest.fixture(scope="session")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    write_learnable_gta5(root / "gta5", size=(128, 64))
    write_cityscapes(root / "cs", split="train", n=3, size=(128, 64), labels=False)
    return root
