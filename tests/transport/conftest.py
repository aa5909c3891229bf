"""Fixtures of the transport tests."""

from __future__ import annotations

from types import ModuleType

import pytest

HOOKS_MISSING = (
    "mpipe._native is a release build, without the fault-injection hooks this test needs "
    "(Arena._crash_at, Arena._poke). Build it as a test build: "
    "MPIPE_NATIVE_TEST_HOOKS=1 pip install -e '.[test]' "
    "(or MPIPE_NATIVE_TEST_HOOKS=1 python setup.py build_ext --inplace in a checkout)"
)


@pytest.fixture
def native_hooks() -> ModuleType:
    """The native module, failing the test at once when it was built without its test hooks."""
    from mpipe._transport._load import native

    if not native.TEST_HOOKS:
        pytest.fail(HOOKS_MISSING, pytrace=False)
    return native
