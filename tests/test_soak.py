"""Cancellations at random points of a child's life leave nothing behind."""

from __future__ import annotations

import pytest

from .soak import SCENARIOS, soak


@pytest.mark.deadline(120)
async def test_random_cancellations_leave_nothing_behind() -> None:
    """Users cancel blocks at any moment -- before the child starts, while it
    writes, while they feed it, as it exits, through run(), on a pty, with
    uid= -- and rely on it costing them nothing: only the cancellation
    leaves, and no fd, zombie or descendant is left over."""
    result = await soak(300, seed=13)
    assert result.escaped == []
    assert (result.fds, result.zombies, result.descendants) == (0, 0, 0)
    assert set(result.by_scenario) >= set(SCENARIOS) - {"uid="}
