"""Policy corners the main tests pass over: offsets, long condition chains, the rule index.

Each test here guards a behaviour that a one-line slip in the engine would break silently (found
by mutation testing: the slip survived every other test).
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from handler.domain.events import EventKind, EventSource, InboundFormat, RoomEvent
from tests.unit.policy_helpers import BIZ, one_rule, room, yaml_policy

SHANGHAI = timezone(timedelta(hours=8))


def at_offset(when: datetime, room_id: str = "ranked-eu-1") -> RoomEvent:
    """A room event whose time keeps the sender's offset (not converted to UTC)."""
    return RoomEvent(
        kind=EventKind.ROOM_CREATED,
        event_id="evt-offset",
        biz_id=BIZ,
        room_id=room_id,
        session="s-1",
        occurred_at=when,
        format=InboundFormat.ROOM_EVENT_V1,
        source=EventSource.WEBHOOK,
    )


def test_a_time_with_an_offset_is_the_instant_it_names_not_utc_wall_time() -> None:
    policy = one_rule(when={"timezone": "UTC", "time_of_day": "20:00-22:00"})
    # 05:00 in Shanghai on the 24th is 21:00 UTC on the 23rd: inside the UTC window.
    assert policy.decide(at_offset(datetime(2026, 11, 24, 5, 0, tzinfo=SHANGHAI))).record
    # 21:00 in Shanghai is 13:00 UTC: outside, though its wall time is inside.
    assert not policy.decide(at_offset(datetime(2026, 11, 23, 21, 0, tzinfo=SHANGHAI))).record


def test_a_naive_time_counts_as_utc() -> None:
    policy = one_rule(when={"timezone": "Asia/Shanghai", "time_of_day": "05:00-06:00"})
    assert policy.decide(at_offset(datetime(2026, 11, 23, 21, 30))).record  # 05:30 Shanghai


#: Five conditions, one per kind of check; each case breaks exactly one of them.
FIVE = {
    "source": ["webhook"],
    "room_id": "ranked-*",
    "room_id_regex": "-eu-",
    "attributes": {"mode": {"equals": "ranked"}, "players": {"gte": 4}},
    "timezone": "UTC",
    "time_of_day": "20:00-22:00",
}
GOOD = {"room_id": "ranked-eu-1", "at": "2026-11-23T21:00:00Z", "mode": "ranked", "players": 6}


@pytest.mark.parametrize(
    "broken",
    [
        {"source": EventSource.QUEUE},
        {"room_id": "casual-eu-1"},
        {"room_id": "ranked-us-1"},
        {"mode": "casual"},
        {"players": 2},
        {"at": "2026-11-23T23:00:00Z"},
    ],
    ids=["source", "glob", "regex", "equals", "bound", "time"],
)
def test_every_condition_of_a_long_rule_is_checked(broken: dict[str, object]) -> None:
    policy = one_rule(when=FIVE)
    assert policy.decide(room(**GOOD)).record  # type: ignore[arg-type]
    assert not policy.decide(room(**{**GOOD, **broken})).record  # type: ignore[arg-type]


@pytest.mark.parametrize("count", [4, 5, 6, 7])
def test_rules_of_four_or_more_attribute_conditions_check_each_one(count: int) -> None:
    attrs = {f"a{i}": {"equals": i} for i in range(count)}
    policy = one_rule(when={"attributes": attrs})
    good = {f"a{i}": i for i in range(count)}
    assert policy.decide(room(**good)).record
    for i in range(count):
        assert not policy.decide(room(**{**good, f"a{i}": -1})).record, f"condition {i} dropped"


@pytest.mark.parametrize(
    ("regex", "room_id", "expected"),
    [
        ("^a[x]|b", "b-room", True),  # a class before a top-level alternative
        ("^a[|]x", "b-room", False),  # a '|' inside a class is no alternative
        ("^a[|]x", "a|x", True),
        ("^a(x)|b", "b-room", True),  # a group closed before a top-level alternative
        ("^a(x|y)z", "b-room", False),  # an alternative inside a group: still anchored on a
        ("^a(x|y)z", "ayz", True),
        ("^a\\\\|b", "b-room", True),  # an escaped backslash, then a real alternative
        ("^a\\|b", "b-room", False),  # an escaped '|' is a literal
        ("^a\\|b", "a|b", True),
        ("^ab*", "a", True),
        ("^a*b", "b-room", True),  # a quantifier on the first character: it may be absent
        ("^a?b", "b-room", True),
        ("^a{0,2}b", "b-room", True),
        ("^a+b", "ab", True),
    ],
)
def test_the_first_character_index_never_hides_a_matching_room(
    regex: str, room_id: str, expected: bool
) -> None:
    # A second rule before the default makes the index matter: rooms starting with other
    # characters skip the first rule entirely.
    policy = one_rule(when={"room_id_regex": regex})
    assert policy.decide(room(room_id)).record is expected


FORMAT_ONE = """
version: 1
rules:
  - name: ranked
    when: {room_id: 'ranked-*', attributes: {players: {gte: 4}}}
    action: record
    record_mode: mixed
default: {action: skip, reason: not ranked}
"""


def test_a_document_of_the_first_format_keeps_its_version_forever() -> None:
    """Keys format 1 grew later (time conditions, sampling, caps, ...) must not enter the hash
    of a document that does not use them: its decisions stay linked to the same version."""
    assert yaml_policy(FORMAT_ONE).version == "sha256:0feb17af3455c016"


def test_a_later_key_changes_the_version_only_when_used() -> None:
    base = yaml_policy(FORMAT_ONE).version
    capped = yaml_policy(FORMAT_ONE.replace("record_mode: mixed", "max_concurrent: 5"))
    sampled = yaml_policy(FORMAT_ONE.replace("record_mode: mixed", "sample_percent: 50"))
    assert len({base, capped.version, sampled.version}) == 3


def test_has_quotas_only_when_a_rule_or_the_default_is_capped() -> None:
    assert not one_rule().has_quotas
    assert one_rule(max_concurrent=2).has_quotas
    capped_default = yaml_policy(
        "version: 1\nrules: []\ndefault: {action: record, max_concurrent: 1}\n"
    )
    assert capped_default.has_quotas


def why(when: dict[str, object], event: RoomEvent) -> str:
    """The explanation `explain` and `check-policy --cases` show for a rule that missed."""
    decision = one_rule(when=when).decide(event)
    assert not decision.record
    return decision.misses[0].why


@pytest.mark.parametrize(
    ("bound", "value", "text"),
    [
        ({"gt": 4}, 4, "attribute 'players' is 4, not gt 4"),
        ({"gte": 4}, 3, "attribute 'players' is 3, not gte 4"),
        ({"lt": 4}, 4, "attribute 'players' is 4, not lt 4"),
        ({"lte": 4}, 5, "attribute 'players' is 5, not lte 4"),
        ({"gt": 4}, "many", "attribute 'players' is 'many', not a number"),
        ({"gt": 4}, True, "attribute 'players' is True, not a number"),
    ],
)
def test_a_missed_bound_is_explained_with_the_value_and_the_bound(
    bound: dict[str, float], value: object, text: str
) -> None:
    assert why({"attributes": {"players": bound}}, room(players=value)) == text


@pytest.mark.parametrize(
    ("bound", "value"),
    [({"gt": 4}, 5), ({"gte": 4}, 4), ({"lt": 4}, 3), ({"lte": 4}, 4)],
)
def test_a_bound_that_holds_is_not_the_reason(bound: dict[str, float], value: int) -> None:
    when = {"attributes": {"players": bound, "mode": {"equals": "ranked"}}}
    assert why(when, room(players=value, mode="casual")) == (
        "attribute 'mode' is 'casual', not 'ranked'"
    )


@pytest.mark.parametrize(
    ("condition", "attributes", "text"),
    [
        ({"exists": True}, {}, "attribute 'a' is missing"),
        ({"exists": False}, {"a": 1}, "attribute 'a' is present"),
        ({"not_equals": "x"}, {"a": "x"}, "attribute 'a' is 'x'"),
        ({"in": ["x", "y"]}, {"a": "z"}, "attribute 'a' is 'z', not one of ['x', 'y']"),
        ({"in": ["x", "y"]}, {}, "attribute 'a' is missing, not one of ['x', 'y']"),
        ({"in": [1]}, {"a": True}, "attribute 'a' is True, not one of [1]"),
    ],
)
def test_each_attribute_condition_explains_its_miss(
    condition: dict[str, object], attributes: dict[str, object], text: str
) -> None:
    assert why({"attributes": {"a": condition}}, room(**attributes)) == text


def test_conditions_that_hold_are_not_named() -> None:
    when = {
        "attributes": {
            "a": {"exists": True, "not_equals": "no", "in": ["x", "y"]},
            "b": {"equals": 1},
        }
    }
    assert why(when, room(a="x", b=2)) == "attribute 'b' is 2, not 1"


def test_a_missed_source_is_explained() -> None:
    event = room(source=EventSource.QUEUE)
    assert why({"source": ["webhook", "schedule"]}, event) == (
        "source queue not in ['webhook', 'schedule']"
    )
    assert why({"source": ["queue"], "room_id": "x-*"}, event).startswith("room_id")


@pytest.mark.parametrize(
    ("regex", "first"),
    [
        ("^a\\|b", "a"),  # an escaped '|' is no alternative: the index may stay on 'a'
        ("^a[x|]", "a"),  # a '|' inside a class, after another character
        # Python reads a ']' first in a class as a literal; the index does not, and so stays
        # safe (any first character) rather than wrong.
        ("^a[]|]", None),
        ("^a(b|c)d", "a"),
        ("^a*", None),  # zero or more: any first character
        ("^ab", "a"),
        ("^.b", None),
        ("^a|b", None),
        ("a", None),  # not anchored
    ],
)
def test_the_index_keeps_the_first_character_when_it_is_certain(
    regex: str, first: str | None
) -> None:
    from handler.domain.policy.conditions import When
    from handler.domain.policy.matchers import first_chars

    allowed = first_chars(When.model_validate({"room_id_regex": regex}))
    assert allowed == (None if first is None else frozenset({first}))


def test_the_sampling_bucket_is_the_documented_hash() -> None:
    """docs/policy.md gives the formula so a studio can predict which rooms a rule samples."""
    import hashlib

    from handler.domain.policy.matchers import sample_bucket

    for session in ("s-1", "s-2", "会话"):
        text = f"ranked\n{BIZ}:ranked-eu-1:{session}".encode()
        want = int.from_bytes(hashlib.sha256(text).digest()[:8], "big") % 10000
        assert sample_bucket("ranked", BIZ, "ranked-eu-1", session) == want
