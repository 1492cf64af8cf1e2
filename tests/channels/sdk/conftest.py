"""The providers' own (synchronous) SDKs against the simulators on loopback.

Each SDK call runs in a worker thread (``asyncio.to_thread``) while the simulator serves on the
test's event loop, exactly as a city's own code would talk to a test environment.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

import pytest

_T = TypeVar("_T")



def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # SDK internals use APIs their own authors have deprecated (wechatpy's ``_post``): theirs to fix.
    for item in items:
        if "/sdk/" in str(item.fspath).replace("\\", "/"):
            item.add_marker(pytest.mark.filterwarnings("ignore::DeprecationWarning"))


@pytest.fixture
def in_thread() -> Callable[..., Any]:
    async def run(fn: Callable[..., _T], *args: Any, **kw: Any) -> _T:
        return await asyncio.to_thread(fn, *args, **kw)

    return run


def host_of(url: str) -> str:
    """``127.0.0.1:PORT`` of a simulator URL, as the SDKs take an endpoint."""
    return url.split("//", 1)[1].rstrip("/")
