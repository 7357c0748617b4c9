"""The public surface: names, where they say they live, and no public constructors."""

from __future__ import annotations

import pytest

import trioproc


def test_public_names_report_the_package_as_their_module() -> None:
    """Tracebacks and reprs point users at ``trioproc``, not a private module."""
    for name in trioproc.__all__:
        obj = getattr(trioproc, name)
        assert getattr(obj, "__module__", "trioproc") == "trioproc", name


def test_all_lists_exactly_the_public_names() -> None:
    """``from trioproc import *`` gives what the docs promise and nothing private."""
    public = {name for name in vars(trioproc) if not name.startswith("_")}
    assert set(trioproc.__all__) <= public
    assert "spawn" in trioproc.__all__
    assert "run" in trioproc.__all__
    assert not [name for name in trioproc.__all__ if name.startswith("_")]


@pytest.mark.parametrize(
    "cls", [trioproc.ProcessTransport, trioproc.StdinStream, trioproc.OutputStream]
)
def test_handed_out_objects_have_no_public_constructor(cls: type) -> None:
    """Users get transports and streams from spawn(), never by building one."""
    with pytest.raises(TypeError, match="no public constructor"):
        cls()


def test_errors_subclass_the_matching_builtins() -> None:
    """Users can catch our errors by the builtin they already know."""
    assert issubclass(trioproc.ProcessExitedAlready, ProcessLookupError)
    assert issubclass(trioproc.ProcessDone, trioproc.ProcessEnded)
    assert issubclass(trioproc.ProcessTerminated, trioproc.ProcessEnded)
    assert issubclass(trioproc.ProcessEnded, Exception)


def test_testing_names_report_trioproc_testing() -> None:
    """trioproc.testing's public names say where users import them from."""
    import trioproc.testing

    for name in trioproc.testing.__all__:
        obj = getattr(trioproc.testing, name)
        assert getattr(obj, "__module__", "trioproc.testing") == "trioproc.testing", (
            name
        )
