"""`Refreshing`: when secret references are read again, and what is kept when that fails."""

from __future__ import annotations

import pytest

from handler.adapters.secrets import REFRESH_SECONDS, Refreshing


class Source:
    """Values to build from, in order; an Exception in the list is raised instead."""

    def __init__(self, *values: object) -> None:
        self.values = list(values)
        self.builds = 0

    def __call__(self) -> object:
        self.builds += 1
        value = self.values[min(self.builds, len(self.values)) - 1]
        if isinstance(value, Exception):
            raise value
        return value


def holder(source: Source, **kw: object) -> tuple[Refreshing[object], list[float]]:
    now = [0.0]
    errors: list[Exception] = []
    built = Refreshing(source, clock=lambda: now[0], on_error=errors.append, **kw)  # type: ignore[arg-type]
    return built, now


def test_built_once_then_again_each_interval() -> None:
    source = Source(["a"], ["b"])
    values, now = holder(source)
    first = values.current()
    now[0] = REFRESH_SECONDS - 0.1
    assert values.current() is first
    now[0] = REFRESH_SECONDS
    assert values.current() == ["b"]
    assert source.builds == 2


def test_an_equal_value_keeps_the_object_in_use() -> None:
    values, now = holder(Source(["a"], ["a"]))
    first = values.current()
    now[0] = REFRESH_SECONDS
    assert values.current() is first


def test_a_failed_read_keeps_the_last_good_and_is_tried_once_per_interval() -> None:
    source = Source(["a"], ConnectionError("down"))
    values, now = holder(source)
    first = values.current()
    now[0] = REFRESH_SECONDS
    for _ in range(50):
        assert values.current() is first
    assert source.builds == 2
    now[0] = 2 * REFRESH_SECONDS
    assert values.current() is first
    assert source.builds == 3


def test_the_first_build_raises_and_is_retried_on_the_next_call() -> None:
    source = Source(ValueError("bad"), ["a"])
    values, _ = holder(source)
    with pytest.raises(ValueError, match="bad"):
        values.current()
    assert values.current() == ["a"]


def test_early_refresh_at_most_once_per_interval() -> None:
    source = Source(["a"], ["b"], ["c"], ["d"])
    values, now = holder(source)
    values.current()
    assert values.refresh_early() is True
    assert values.current() == ["b"]
    for _ in range(50):
        assert values.refresh_early() is False
    assert source.builds == 2
    now[0] = REFRESH_SECONDS  # the early budget is back, and the scheduled read is due
    assert values.refresh_early() is True
    assert source.builds == 3


def test_nothing_is_read_again_without_references() -> None:
    source = Source(["a"], ["b"])
    values, now = holder(source, refreshable=False)
    first = values.current()
    now[0] = 10 * REFRESH_SECONDS
    assert values.current() is first
    assert values.refresh_early() is False
    assert source.builds == 1
