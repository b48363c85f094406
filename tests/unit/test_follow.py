"""Plans that follow the policy, the pure part: the `apply_to_running` field, which running
sessions a changed policy decides again, what the new decision means for them (nothing, modify,
stop), and the ledger rule that records it."""

from __future__ import annotations

import pytest

from handler.domain.decision import Decision, RecordMode, RecordPlan
from handler.domain.follow import POLICY_STOP, FollowKind, adjust, follows, redecide
from handler.domain.ledger import (
    ATTRIBUTES_BYTES,
    MAX_ENTRY_BYTES,
    CallbackNote,
    DecidedOn,
    LedgerEntry,
)
from handler.domain.ledger_rules import after_outcome, callback, closing, following, starting
from handler.domain.outcome import Outcome, OutcomeStatus
from handler.domain.policy import Policy, PolicyError, parse_policy
from tests.unit.policy_helpers import BIZ, room, yaml_policy
from tests.unit.test_policy_edges import FORMAT_ONE


def policy(mode: str | None = "mixed", follow: bool | None = True, **extra: object) -> Policy:
    rule: dict[str, object] = {"name": "ranked", "when": {"room_id": "ranked-*"}}
    rule |= {"action": "record", "record_mode": mode} if mode else {}
    rule |= extra
    if follow is not None:
        rule["apply_to_running"] = follow
    return parse_policy({"version": 1, "rules": [rule], "default": {"action": "skip"}})


def recording(p: Policy, room_id: str = "ranked-eu-1", **attributes: object) -> LedgerEntry:
    """A session decided by `p` on a room event and recording under task 7."""
    event = room(room_id, **attributes)
    decision = p.decide(event)
    entry = starting(BIZ, room_id, "s-1", decision, 1.0, decided_on=DecidedOn.of(event))(None)
    started = Outcome(status=OutcomeStatus.STARTED, task_id="7")
    entry = after_outcome(started, 2.0)(entry)
    assert entry is not None
    return entry


def test_apply_to_running_is_a_later_key_and_off_by_default() -> None:
    base = yaml_policy(FORMAT_ONE)
    assert base.version == "sha256:0feb17af3455c016"  # unchanged by the new field
    assert base.followed_rules == ()
    on = yaml_policy(FORMAT_ONE.replace("record_mode: mixed", "apply_to_running: true"))
    assert on.version != base.version
    assert on.followed_rules == ("ranked",)
    default = parse_policy(
        {"version": 1, "default": {"action": "record", "apply_to_running": True}}
    )
    assert default.followed_rules == ("default",)
    skip = policy(None, action="skip")  # a skip rule may stop what it recorded before
    assert skip.followed_rules == ("ranked",)
    with pytest.raises(PolicyError, match="apply_to_running"):
        policy(follow="yes")  # type: ignore[arg-type]


def test_only_a_followed_rule_recording_on_a_kept_event_at_another_version_follows() -> None:
    old = policy("mixed", follow=None)
    entry = recording(old)
    assert follows(entry, old) == "follows this policy version already"
    assert follows(entry, policy("single", follow=None)) is not None  # not apply_to_running
    assert follows(entry, policy("single", follow=False)) is not None
    assert follows(entry, policy("single")) is None  # the new document turns it on: it follows
    renamed = parse_policy(
        {"version": 1, "rules": [{"name": "other", "action": "record", "apply_to_running": True}]}
    )
    assert follows(entry, renamed) == "rule 'ranked' does not apply_to_running in policy " + (
        renamed.version
    )
    closed = closing(*entry.key, 3.0, "room closed")(entry)
    assert closed is not None
    assert follows(closed, policy("single")) == "not recording"
    unkept = entry.model_copy(update={"decided_on": None})
    assert follows(unkept, policy("single")) is not None


def test_the_session_is_decided_again_on_its_own_event() -> None:
    old = policy("mixed", follow=None)
    entry = recording(old, players=8)
    new = parse_policy(
        {
            "version": 1,
            "rules": [
                {
                    "name": "big",
                    "when": {"attributes": {"players": {"gte": 6}}, "time_of_day": "20:00-22:00"},
                    "action": "record",
                    "record_mode": "both",
                },
                {"name": "ranked", "action": "record", "apply_to_running": True},
            ],
        }
    )
    decision = redecide(entry, new)  # 21:00, 8 players: the event's own time and attributes
    assert (decision.rule, decision.plan) == ("big", RecordPlan(record_mode=RecordMode.BOTH))


def test_adjust_says_nothing_modify_or_stop() -> None:
    entry = recording(policy("mixed", follow=None))
    same = redecide(entry, policy("mixed"))
    assert adjust(entry, same).kind is FollowKind.NOTHING
    changed = adjust(entry, redecide(entry, policy("single", block_user_ids=["bot"])))
    assert changed.kind is FollowKind.MODIFY
    assert changed.plan == RecordPlan(record_mode=RecordMode.SINGLE, block_user_ids=("bot",))
    assert changed.reason.endswith("mixed -> single, all but bot")
    stop = adjust(entry, redecide(entry, policy(None, action="skip", reason="quiet")))
    assert stop.kind is FollowKind.STOP
    assert stop.plan is None
    assert stop.reason.startswith(POLICY_STOP)
    assert stop.reason.endswith(": quiet")
    # Sampling that now leaves the session out is a skip for it too.
    sampled = policy("mixed", sample_percent=0.01)
    assert adjust(entry, redecide(entry, sampled)).kind is FollowKind.STOP


def test_caps_do_not_stop_a_running_session() -> None:
    entry = recording(policy("mixed", follow=None))
    decision = redecide(entry, policy("single", max_concurrent=1))
    assert decision.record
    assert adjust(entry, decision).kind is FollowKind.MODIFY


def test_following_moves_the_entry_to_the_new_decision_once() -> None:
    entry = recording(policy("mixed", follow=None))
    decision = Decision(
        record=True,
        rule="big",
        reason="x",
        policy_version="v2",
        plan=RecordPlan(record_mode=RecordMode.SINGLE, allow_user_ids=("a",)),
    )
    moved = following(decision, "7", 5.0, "v2: mixed -> single, only a", modified=True)(entry)
    assert moved is not None
    assert (moved.rule, moved.policy_version, moved.plan) == ("big", "v2", decision.plan)
    assert (moved.history[-1].what, moved.history[-1].task_id) == ("modify", "7")
    quiet = following(decision, "7", 5.0)(entry)
    assert quiet is not None
    assert quiet.policy_version == "v2"
    assert quiet.history == entry.history  # the recording did not change: nothing to report
    assert following(decision, "8", 5.0)(entry) is None  # renewed meanwhile: not that task
    closed = closing(*entry.key, 3.0, "room closed")(entry)
    assert following(decision, "7", 5.0)(closed) is None


def test_the_kept_event_stays_within_the_entry_budget() -> None:
    big = {f"k{i:02d}": "录" * 1000 for i in range(64)}  # 64 attributes of 3 KB each
    assert DecidedOn.of(room(**big)).attributes is None
    fits = {f"k{i:02d}": "x" * 120 for i in range(60)}
    kept = DecidedOn.of(room(**fits))
    assert kept.attributes == fits
    entry = recording(policy(), **fits)
    for seq in range(300):  # every other part at its budget too
        name = f"{seq:03d}" + "录" * 1021
        note = CallbackNote(task_id="7", event_type=3, seq=seq, files=(name,))
        grown = callback(note, 3.0)(entry)
        assert grown is not None
        entry = grown
    assert len(entry.model_dump_json().encode()) <= MAX_ENTRY_BYTES
    assert len(kept.model_dump_json().encode()) <= ATTRIBUTES_BYTES + 200


def test_a_followed_change_is_one_recording_event_per_policy_version() -> None:
    from handler.domain.recording_events import StopReason, changes, stop_reason

    entry = recording(policy("mixed", follow=None))
    ids = []
    for version, mode in (("v2", RecordMode.SINGLE), ("v3", RecordMode.BOTH)):
        decision = Decision(
            record=True,
            rule="ranked",
            reason="x",
            policy_version=version,
            plan=RecordPlan(record_mode=mode),
        )
        moved = following(decision, "7", 5.0, f"{version}: a -> b", modified=True)(entry)
        assert moved is not None
        [change] = changes(entry, moved)
        assert change.event is not None
        assert (change.event.type, change.event.reason) == ("recording.modified", "policy")
        assert change.event.task_id == "7"
        ids.append(change.event.id)
        entry = moved
    assert len(set(ids)) == 2
    skip = adjust(entry, redecide(entry, policy(None, action="skip")))
    closed = closing(*entry.key, 6.0, skip.reason)(entry)
    assert closed is not None
    assert stop_reason(closed) is StopReason.POLICY


def test_check_policy_names_the_rules_that_follow() -> None:
    from handler.domain.policy.explain import followed

    assert followed(yaml_policy(FORMAT_ONE)) is None
    on = yaml_policy(FORMAT_ONE.replace("record_mode: mixed", "apply_to_running: true"))
    assert followed(on) == (
        "apply_to_running: ranked (their running sessions follow a change at the next tick)"
    )


def test_a_session_whose_attributes_were_too_large_to_keep_keeps_its_plan() -> None:
    old = policy("mixed")
    entry = recording(old)
    assert entry.decided_on is not None
    kept_nothing = entry.model_copy(
        update={"decided_on": entry.decided_on.model_copy(update={"attributes": None})}
    )
    assert follows(kept_nothing, policy("single")) == (
        "its event's attributes were too large to keep"
    )
    assert follows(entry, policy("single")) is None


@pytest.mark.parametrize(
    ("record", "plan"),
    [(False, None), (False, RecordPlan()), (True, None)],
    ids=["skip", "skip-with-a-plan", "record-without-a-plan"],
)
def test_anything_but_a_decision_to_record_with_a_plan_stops(
    record: bool, plan: RecordPlan | None
) -> None:
    """As the recorder reads a decision: without a plan there is nothing to record."""
    decision = Decision(record=record, rule="ranked", reason="x", policy_version="v9", plan=plan)
    assert adjust(recording(policy("mixed")), decision).kind is FollowKind.STOP
