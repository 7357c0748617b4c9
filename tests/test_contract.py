"""The contract suite: the checks trioproc.testing ships, run against the real
transport (a real child) and against trioproc.testing.FakeProcessTransport, so
the fake cannot drift from the real thing."""

from __future__ import annotations

import pytest

from trioproc.testing import (
    CONTRACT_CHECKS,
    ContractCheck,
    ContractHarness,
    FakeTransportHarness,
    RealProcessHarness,
    check_transport_contract,
)

HARNESSES: dict[str, type[ContractHarness]] = {
    "real": RealProcessHarness,
    "fake": FakeTransportHarness,
}


#: Checks of what only the Linux backend does: check name -> why not on the
#: portable backend ("the portable backend <why>").
LINUX_BACKEND_ONLY = {
    "extra_write_fds_and_their_errors": "gives a child pipes on fds 0, 1 and 2 only"
}


def _cases() -> list[object]:
    cases: list[object] = []
    for check in CONTRACT_CHECKS:
        for kind, harness in sorted(HARNESSES.items()):
            marks = []
            if check.needs_kernel is not None and not harness.kernel:
                reason = f"the {kind} transport has no kernel: {check.needs_kernel}"
                marks.append(pytest.mark.skip(reason=reason))
            if check.name in LINUX_BACKEND_ONLY and kind == "real":
                marks.append(pytest.mark.linux_backend(LINUX_BACKEND_ONLY[check.name]))
            cases.append(
                pytest.param(check, harness, marks=marks, id=f"{check.name}[{kind}]")
            )
    return cases


@pytest.mark.parametrize(("check", "harness"), _cases())
async def test_the_contract(
    check: ContractCheck, harness: type[ContractHarness]
) -> None:
    """Each check of the contract, for each transport (the docstring of the
    check says what a user relies on)."""
    await check.run(harness())


async def test_the_public_runner_passes_the_fake_and_reports_a_broken_one() -> None:
    """check_transport_contract() is what a user runs against a fake of their
    own: it passes the shipped fake, and names each check a broken fake fails."""
    await check_transport_contract(FakeTransportHarness)

    class ForgetsWrites(FakeTransportHarness):
        async def child_reads(self, fd: int, nbytes: int | None = None) -> bytes:
            await super().child_reads(fd, nbytes)
            return b""

    with pytest.raises(Exception, match="contract's checks failed") as caught:
        await check_transport_contract(ForgetsWrites)
    assert type(caught.value).__name__ == "ExceptionGroup"
    names = {str(exc).split("'")[1] for exc in caught.value.exceptions}  # type: ignore[attr-defined]
    assert "writes_reach_the_child_in_order" in names
    assert "a_realistic_protocol_behaves_the_same_on_both" in names
    assert "make_connection_comes_first_with_a_pid" not in names


def test_every_check_says_what_it_checks() -> None:
    """Each shipped check has a docstring: it is the failure's explanation."""
    assert len(CONTRACT_CHECKS) >= 19
    assert all(check.doc for check in CONTRACT_CHECKS)
