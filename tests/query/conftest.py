from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from waypost.state.state import State
from waypost.store.memory import MemoryStore


@pytest.fixture
async def state() -> AsyncIterator[State]:
    st = State(MemoryStore())
    await st.start()
    yield st
    await st.close()
