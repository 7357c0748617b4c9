"""The restart policy, as the pure state machine it is: synchronous tests,
no processes, no clock but the numbers given."""

from __future__ import annotations

import pytest

from trioproc._supervision._policy import (
    Backoff,
    GiveUp,
    NoRestart,
    Restart,
    RestartPolicy,
)

NO_JITTER = Backoff(jitter=0)


def policy(strategy: str = "one_for_one", **kwargs: object) -> RestartPolicy:
    p = RestartPolicy(strategy, draw=lambda: 0.5, **kwargs)  # type: ignore[arg-type]
    for name in ("db", "api", "web"):
        p.add(name, "permanent", NO_JITTER)
        p.started(name, 0.0)
    return p


def test_one_for_one_restarts_only_the_child_that_ended() -> None:
    """A child crashes: only it restarts; nobody else is stopped."""
    assert policy().exited("api", 1.0, failed=True) == Restart(0.1, (), ("api",))


def test_one_for_all_stops_the_others_in_reverse_then_starts_all_in_order() -> None:
    """one_for_all: stop everyone else (last started first), restart all in
    start order."""
    p = policy("one_for_all")
    assert p.exited("api", 1.0, failed=True) == Restart(
        0.1, ("web", "db"), ("db", "api", "web")
    )


def test_rest_for_one_takes_the_children_started_after() -> None:
    """rest_for_one: the ended child and those started after it."""
    assert policy("rest_for_one").exited("db", 1.0, failed=True) == Restart(
        0.1, ("web", "api"), ("db", "api", "web")
    )
    assert policy("rest_for_one").exited("web", 1.0, failed=True) == Restart(
        0.1, (), ("web",)
    )


def test_children_not_running_are_not_stopped_again() -> None:
    """Only running siblings are in the stop list."""
    p = policy("one_for_all")
    p.stopped("web")
    assert p.exited("db", 1.0, failed=True) == Restart(
        0.1, ("api",), ("db", "api", "web")
    )


@pytest.mark.parametrize(
    ("restart", "failed", "restarts"),
    [
        ("permanent", True, True),
        ("permanent", False, True),
        ("transient", True, True),
        ("transient", False, False),
        ("temporary", True, False),
        ("temporary", False, False),
    ],
)
def test_restart_types(restart: str, failed: bool, restarts: bool) -> None:
    """permanent: always; transient: after a failure only; temporary: never."""
    p = RestartPolicy(draw=lambda: 0.5)
    p.add("job", restart, NO_JITTER)  # type: ignore[arg-type]
    p.started("job", 0.0)
    decision = p.exited("job", 1.0, failed=failed)
    assert isinstance(decision, Restart) is restarts
    if not restarts:
        assert decision == NoRestart("job")
        assert ("job" in p.order) is (restart != "temporary")


def test_a_temporary_sibling_is_stopped_but_not_brought_back() -> None:
    """Erlang's rule: one_for_all stops a temporary sibling for good."""
    p = RestartPolicy("one_for_all", draw=lambda: 0.5)
    p.add("main", "permanent", NO_JITTER)
    p.add("oneshot", "temporary", NO_JITTER)
    p.started("main", 0.0)
    p.started("oneshot", 0.0)
    assert p.exited("main", 1.0, failed=True) == Restart(0.1, ("oneshot",), ("main",))
    assert p.order == ["main"]


def test_intensity_gives_up_after_too_many_restarts_in_the_window() -> None:
    """More than max_restarts restarts within max_seconds: give up."""
    p = policy(max_restarts=3, max_seconds=5.0)
    for t in (1.0, 2.0, 3.0):
        assert isinstance(p.exited("api", t, failed=True), Restart)
        p.started("api", t)
    assert p.exited("api", 4.0, failed=True) == GiveUp(4, 5.0)


def test_restarts_outside_the_window_do_not_count() -> None:
    """The window slides: old restarts are forgotten."""
    p = policy(max_restarts=2, max_seconds=5.0)
    for t in (1.0, 2.0, 10.0, 11.0, 20.0):
        assert isinstance(p.exited("api", t, failed=True), Restart), t
        p.started("api", t)


def test_zero_max_restarts_gives_up_at_the_first_failure() -> None:
    """max_restarts=0: any restart is too many."""
    assert isinstance(policy(max_restarts=0).exited("db", 1.0, failed=True), GiveUp)


def test_backoff_grows_exponentially_to_its_cap() -> None:
    """Consecutive failures double the delay until the cap."""
    p = RestartPolicy(max_restarts=100, max_seconds=1.0, draw=lambda: 0.5)
    p.add("w", "permanent", Backoff(initial=0.5, factor=2, cap=4, jitter=0))
    delays = []
    for t in range(6):
        p.started("w", float(t))
        decision = p.exited("w", t + 0.5, failed=True)
        assert isinstance(decision, Restart)
        delays.append(decision.delay)
    assert delays == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]


def test_backoff_resets_after_the_child_stayed_up() -> None:
    """A child that ran for reset_after seconds starts from the first delay."""
    p = RestartPolicy(max_restarts=100, max_seconds=1.0, draw=lambda: 0.5)
    p.add("w", "permanent", Backoff(initial=1, factor=3, reset_after=60, jitter=0))
    p.started("w", 0.0)
    assert p.exited("w", 1.0, failed=True).delay == 1  # type: ignore[union-attr]
    p.started("w", 2.0)
    assert p.exited("w", 3.0, failed=True).delay == 3  # type: ignore[union-attr]
    p.started("w", 4.0)
    assert p.exited("w", 100.0, failed=True).delay == 1  # type: ignore[union-attr]


def test_jitter_spreads_the_delay_within_its_bounds() -> None:
    """jitter=0.2 moves a 10 s delay to somewhere in [8, 12]."""
    backoff = Backoff(initial=10, jitter=0.2)
    assert backoff.delay(1, 0.0) == pytest.approx(8)
    assert backoff.delay(1, 0.999999) == pytest.approx(12, rel=1e-4)
    assert backoff.delay(1, 0.5) == pytest.approx(10)
    assert Backoff(initial=10, cap=10, jitter=0.5).delay(1, 0.99) == 10  # capped


def test_defaults_start_short() -> None:
    """The first delay is short by default (at most 1 s, as systemd's 100 ms)."""
    assert Backoff().delay(1, 0.5) == pytest.approx(0.1)
    assert Backoff().delay(1, 0.999) <= 1


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"initial": -1}, ValueError),
        ({"cap": float("inf")}, ValueError),
        ({"factor": 0.5}, ValueError),
        ({"jitter": 2}, ValueError),
        ({"reset_after": "10"}, TypeError),
    ],
)
def test_bad_backoffs_are_refused(
    kwargs: dict[str, object], error: type[Exception]
) -> None:
    """A backoff that cannot work fails where it is made."""
    with pytest.raises(error):
        Backoff(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"strategy": "all_for_none"}, ValueError, "strategy must be one of"),
        ({"max_restarts": -1}, ValueError, "max_restarts must be >= 0"),
        ({"max_restarts": 1.5}, TypeError, "max_restarts must be an int"),
        ({"max_seconds": -2}, ValueError, "max_seconds"),
    ],
)
def test_bad_policies_are_refused(
    kwargs: dict[str, object], error: type[Exception], match: str
) -> None:
    """Strategy and intensity are checked where they are given."""
    with pytest.raises(error, match=match):
        RestartPolicy(**kwargs)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="restart must be one of"):
        RestartPolicy().add("x", "sometimes", Backoff())  # type: ignore[arg-type]


def test_backoff_survives_a_thousand_failures_in_a_row() -> None:
    """Past float range the delay stays at the cap (no OverflowError hours
    into a crash loop); with no initial delay it stays at zero."""
    assert Backoff(jitter=0).delay(1025, 0.5) == 30.0
    assert Backoff(jitter=0).delay(10**6, 0.5) == 30.0
    assert Backoff(initial=0, jitter=0).delay(5000, 0.5) == 0.0


def test_the_policy_says_who_is_supervised() -> None:
    """The supervisor asks the policy, not a copy, whether a child is still
    supervised: added and not removed, and not a temporary child that ended.
    A stop reported for a child no longer supervised changes nothing."""
    p = RestartPolicy(draw=lambda: 0.5)
    p.add("web", "permanent", NO_JITTER)
    p.add("job", "temporary", NO_JITTER)
    assert p.supervises("web")
    assert p.supervises("job")
    assert not p.supervises("db")
    p.started("job", 0.0)
    assert p.exited("job", 1.0, failed=True) == NoRestart("job")
    assert not p.supervises("job")
    p.stopped("job")  # its life ended after it was forgotten: no KeyError
    p.remove("web")
    assert not p.supervises("web")
    assert p.order == []


def test_shutdown_reverse_stops_one_at_a_time_last_started_first() -> None:
    """shutdown="reverse": one child per stage, in reverse start order (the
    policy's order, whatever order the live children are given in); a live
    child no longer supervised (its stop already under way) comes first."""
    p = policy()
    assert p.shutdown_order(["db", "web", "api"]) == [("web",), ("api",), ("db",)]
    p.remove("db")
    p.add("db", "permanent", NO_JITTER)  # started again: now last
    assert p.shutdown_order(["db", "api", "web"]) == [("db",), ("web",), ("api",)]
    p.remove("api")  # stopped for good, still on its way down
    assert p.shutdown_order(["web", "api", "db"]) == [("api",), ("db",), ("web",)]
    assert p.shutdown_order([]) == []


def test_a_restart_keeps_a_childs_place_in_the_shutdown_order() -> None:
    """A child restarted after a failure stops in the place of its first
    start (as in Erlang), not as the one started last."""
    p = policy()
    before = p.shutdown_order(["db", "web", "api"])
    decision = p.exited("db", 1.0, failed=True)
    assert isinstance(decision, Restart)
    p.started("db", 2.0)
    assert p.shutdown_order(["db", "web", "api"]) == before


def test_a_child_removed_while_it_starts_runs_until_stopped() -> None:
    """stop() forgets a child whose life is starting (a restart under way):
    that life's start is still noted, as running but not supervised."""
    p = policy()
    p.remove("db")
    p.started("db", 1.0)
    assert p.is_running("db")
    assert not p.supervises("db")
    p.stopped("db")
    assert not p.is_running("db")


def test_shutdown_parallel_stops_all_at_once() -> None:
    """shutdown="parallel": one stage holding every live child; nothing live,
    no stage."""
    p = RestartPolicy(draw=lambda: 0.5, shutdown="parallel")
    for name in ("db", "api"):
        p.add(name, "permanent", NO_JITTER)
    assert p.shutdown_order(["api", "db"]) == [("api", "db")]
    assert p.shutdown_order(["db"]) == [("db",)]
    assert p.shutdown_order([]) == []
    with pytest.raises(ValueError, match="shutdown must be 'reverse' or 'parallel'"):
        RestartPolicy(shutdown="sideways")  # type: ignore[arg-type]


def test_the_policy_keeps_the_one_record_of_what_runs() -> None:
    """Whether a child runs is the policy's record (`SupervisedChild.running`
    reads it): started until stopped or exited, and a child forgotten while
    on its way down still runs until its life ends."""
    p = policy("one_for_all")
    assert p.is_running("web")
    p.remove("web")  # stopped for good, its stop under way
    assert p.is_running("web")
    assert p.exited("db", 1.0, failed=True) == Restart(0.1, ("api",), ("db", "api"))
    assert not p.is_running("db")
    p.stopped("web")
    assert not p.is_running("web")
    assert not p.is_running("never-added")
