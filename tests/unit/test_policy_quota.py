"""Concurrency caps (`max_concurrent`): counts come in through the ActiveRecordings port."""

from __future__ import annotations

import pytest

from handler.domain.policy import InMemoryActiveRecordings, PolicyError, parse_policy
from tests.unit.policy_helpers import one_rule, room


def test_cap_blocks_a_start_and_says_so() -> None:
    policy = one_rule(max_concurrent=3, record_mode="both")
    active = InMemoryActiveRecordings({"r": 2})
    assert policy.decide(room(), active=active).record
    active.started("r", 1, "room-a")
    blocked = policy.decide(room(), active=active)
    assert not blocked.record
    assert blocked.plan is None
    assert blocked.rule == "r"
    assert blocked.reason == "quota: rule r has 3/3 concurrent recordings"
    active.stopped(1, "room-a")
    assert policy.decide(room(), active=active).record


def test_caps_count_per_rule() -> None:
    policy = parse_policy(
        {
            "version": 1,
            "rules": [
                {
                    "name": "vip",
                    "action": "record",
                    "max_concurrent": 1,
                    "when": {"room_id": "vip-*"},
                },
                {"name": "rest", "action": "record", "max_concurrent": 5},
            ],
        }
    )
    active = InMemoryActiveRecordings({"vip": 1, "rest": 0})
    assert not policy.decide(room("vip-1"), active=active).record
    assert policy.decide(room("other-1"), active=active).record


def test_the_default_action_can_be_capped_under_the_name_default() -> None:
    policy = parse_policy({"version": 1, "default": {"action": "record", "max_concurrent": 2}})
    decision = policy.decide(room(), active=InMemoryActiveRecordings({"default": 2}))
    assert decision.reason == "quota: rule default has 2/2 concurrent recordings"


def test_without_a_counter_the_cap_is_not_enforced_and_the_decision_says_so() -> None:
    policy = one_rule(max_concurrent=1)
    assert policy.has_quotas
    decision = policy.decide(room())
    assert decision.record
    assert decision.notes == (
        "quota: rule 'r' max_concurrent 1 not enforced (no active-recording counter configured)",
    )


def test_sampling_comes_before_the_cap() -> None:
    """A sampled-out room never reads the counter; a sampled-in one is still capped."""
    policy = one_rule(sample_percent=50, max_concurrent=1)

    class Counting(InMemoryActiveRecordings):
        reads = 0

        def count(self, rule: str) -> int:
            Counting.reads += 1
            return 1

    results = [policy.decide(room(f"room-{i}"), active=Counting()) for i in range(100)]
    sampled_in = [d for d in results if d.reason.startswith("quota:")]
    sampled_out = [d for d in results if d.reason.startswith("sampling:")]
    assert len(sampled_in) + len(sampled_out) == 100
    assert Counting.reads == len(sampled_in) > 0
    assert all(d.sample_bucket is not None for d in sampled_in)


def test_skip_rules_and_uncapped_rules_never_read_the_counter() -> None:
    class Exploding:
        def count(self, rule: str) -> int:
            raise AssertionError("counter read")

    assert one_rule().decide(room(), active=Exploding()).record
    assert not one_rule(action="skip").decide(room(), active=Exploding()).record


@pytest.mark.parametrize(
    ("value", "message"), [(0, "greater than or equal to 1"), (2.5, "integer")]
)
def test_bad_caps_are_refused(value: object, message: str) -> None:
    with pytest.raises(PolicyError) as err:
        one_rule(max_concurrent=value)
    assert "rules[0] ('r') field max_concurrent" in str(err.value)
    assert message in str(err.value)


def test_in_memory_counts_start_at_the_seed_or_at_zero() -> None:
    active = InMemoryActiveRecordings({"seeded": 2})
    assert (active.count("seeded"), active.count("other")) == (2, 0)
    active.started("other", 1, "room-a")
    active.started("seeded", 1, "room-b")
    assert (active.count("seeded"), active.count("other")) == (3, 1)
    active.stopped(1, "room-a")
    assert active.count("other") == 0
