"""Fixtures for the AWS stage: a moto server (reset for every test), clients that record requests."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from aws_helpers import RequestRecorder
from moto_server import FAKE_CREDENTIALS, MotoServer

from archami.aws.clients import AwsSettings, Clients

os.environ.update(FAKE_CREDENTIALS)  # never sign with, or send to, a real account


@pytest.fixture(scope="session")
def moto_session() -> Iterator[MotoServer]:
    server = MotoServer()
    yield server
    server.stop()


@pytest.fixture
def moto(moto_session: MotoServer) -> MotoServer:
    moto_session.reset()
    return moto_session


@pytest.fixture
def recorder() -> RequestRecorder:
    return RequestRecorder()


@pytest.fixture
def clients(moto: MotoServer, recorder: RequestRecorder) -> Clients:
    c = Clients(AwsSettings(endpoint_url=moto.url))
    c.on("before-send", recorder)
    return c
