"""Service fixtures: apps around a tiny checkpoint."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from genadapt.checkpoint import save_checkpoint
from genadapt.serve.app import create_app
from genadapt.serve.settings import ServeSettings

from serve_helpers import varied_checkpoint, wait_ready


@pytest.fixture(scope="session")
def model_path(tmp_path_factory):
    return save_checkpoint(varied_checkpoint(), tmp_path_factory.mktemp("serve") / "model.pt")


@pytest.fixture
def make_client(model_path):
    clients = []

    def make(load=None, **overrides) -> TestClient:
        settings = ServeSettings(model=str(model_path), **overrides)
        client = TestClient(create_app(settings, load))
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


@pytest.fixture
def client(make_client):
    c = make_client()
    wait_ready(c)
    return c
