"""Deterministic sampling: a stable hash of the room session, never `random`."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys

import pytest

from handler.domain.policy import PolicyError, sample_bucket
from tests.unit.policy_helpers import BIZ, one_rule, room

ROOMS = 10_000


def test_bucket_is_the_documented_formula() -> None:
    digest = hashlib.sha256(b"tenth\n1400000000:ranked-eu-1:s-1").digest()
    assert (
        sample_bucket("tenth", BIZ, "ranked-eu-1", "s-1")
        == int.from_bytes(digest[:8], "big") % 10_000
    )


def test_bucket_does_not_depend_on_the_process() -> None:
    code = "from handler.domain.policy import sample_bucket; print(sample_bucket('r', 7, 'a', 'b'))"
    outputs = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        ).stdout
        for seed in ("1", "2")
    }
    assert outputs == {f"{sample_bucket('r', 7, 'a', 'b')}\n"}


@pytest.mark.parametrize("percent", [1, 10, 12.5, 33.33, 50, 90, 99.5])
def test_observed_rate_over_10000_rooms_is_within_2_points(percent: float) -> None:
    policy = one_rule(sample_percent=percent)
    recorded = sum(
        policy.decide(room(f"room-{i}", session=f"m-{i}"), explain=False).record
        for i in range(ROOMS)
    )
    observed = recorded * 100 / ROOMS
    assert abs(observed - percent) <= 2, (percent, observed)


def test_zero_and_hundred_percent_are_exact() -> None:
    none, every = one_rule(sample_percent=0), one_rule(sample_percent=100)
    events = [room(f"room-{i}") for i in range(500)]
    assert not any(none.decide(e).record for e in events)
    assert all(every.decide(e).record for e in events)


def test_same_session_same_decision_whatever_the_delivery() -> None:
    policy = one_rule(sample_percent=50)
    first = room("ranked-eu-9", session="m-9")
    again = first.model_copy(update={"event_id": "redelivered", "occurred_at": first.occurred_at})
    by_queue = first.with_source(first.source.QUEUE)
    decisions = {policy.decide(e, explain=False) for e in (first, again, by_queue)}
    assert len(decisions) == 1
    # A new session of the same room is a new draw.
    draws = {policy.decide(room("ranked-eu-9", session=f"m-{i}")).record for i in range(40)}
    assert draws == {True, False}


def test_sampled_out_is_a_skip_that_says_why() -> None:
    policy = one_rule(sample_percent=10)
    decisions = [policy.decide(room(f"room-{i}", session="x")) for i in range(200)]
    out = next(d for d in decisions if not d.record)
    inside = next(d for d in decisions if d.record)
    assert out.rule == "r"
    assert out.plan is None
    assert out.sample_bucket is not None
    assert out.sample_bucket >= 1000
    assert out.reason == (
        f"sampling: bucket {out.sample_bucket} is not below 1000 (rule 'r' records 10% of sessions)"
    )
    assert inside.sample_bucket is not None
    assert inside.sample_bucket < 1000
    assert inside.plan is not None
    assert "sampled in" in inside.reason


def test_two_sampled_rules_pick_independent_rooms() -> None:
    from handler.domain.policy import parse_policy

    policy = parse_policy(
        {
            "version": 1,
            "rules": [
                {
                    "name": "a",
                    "action": "record",
                    "sample_percent": 50,
                    "when": {"source": "queue"},
                },
                {"name": "b", "action": "record", "sample_percent": 50},
            ],
        }
    )
    both = 0
    for i in range(4000):
        event = room(f"room-{i}")
        a = policy.decide(event.with_source(event.source.QUEUE)).record
        b = policy.decide(event).record
        both += a and b
    assert abs(both / 4000 - 0.25) < 0.03  # independent halves overlap on a quarter


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (-1, "greater than or equal to 0"),
        (100.5, "less than or equal to 100"),
        (12.345, "resolution is 0.01 percent"),
        ("ten", "valid"),
        (True, "valid"),
    ],
)
def test_bad_percentages_are_refused(value: object, message: str) -> None:
    with pytest.raises(PolicyError) as err:
        one_rule(sample_percent=value)
    assert "rules[0] ('r') field sample_percent" in str(err.value)
    assert message in str(err.value)


def test_a_skip_rule_cannot_sample() -> None:
    with pytest.raises(PolicyError, match="a skip action takes only a reason, not sample_percent"):
        one_rule(action="skip", sample_percent=5)
