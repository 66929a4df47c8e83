"""When old Transit key versions may stop decrypting: a pure function, checked over all inputs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from keyward.policy.retention import FloorDecision, decryption_floor

T0 = datetime(2026, 1, 1, tzinfo=UTC)
DAY = timedelta(days=1)


@dataclass(frozen=True)
class Case:
    """One set of inputs to decryption_floor, so properties can vary one field."""

    version_created: dict[int, datetime]
    latest_version: int
    current_floor: int
    now: datetime
    retention: timedelta
    buffer: timedelta
    encryption_grace: timedelta
    oldest_execution_start: datetime | None
    #: None in generated cases; the properties about it set it explicitly.
    oldest_version_in_use: int | None = None

    def decide(self, **changes: object) -> FloorDecision:
        arguments: dict[str, object] = {**self.__dict__, **changes}
        return decryption_floor(**arguments)  # type: ignore[arg-type]


def retirable(case: Case, version: int, now: datetime | None = None) -> bool:
    """The rule, restated independently: both conditions hold for ``version``."""
    now = case.now if now is None else now
    successor_created = case.version_created[version + 1]
    aged_out = now - successor_created >= case.retention + case.buffer
    no_older_execution = (case.oldest_execution_start is None
                          or case.oldest_execution_start
                          >= successor_created + case.encryption_grace)
    return aged_out and no_older_execution


offsets = st.builds(timezone, st.timedeltas(min_value=-timedelta(hours=23),
                                            max_value=timedelta(hours=23)))
moments = st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2030, 1, 1),
                       timezones=offsets)
durations = st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=120))


@st.composite
def cases(draw: st.DrawFn) -> Case:
    latest = draw(st.integers(min_value=1, max_value=8))
    floor = draw(st.integers(min_value=1, max_value=latest))
    # Vault lists only versions at or above the floor; sometimes the caller has more.
    first_listed = draw(st.integers(min_value=1, max_value=floor))
    created: dict[int, datetime] = {}
    moment = draw(moments)
    for version in range(first_listed, latest + 1):
        created[version] = moment
        moment += draw(st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=200)))
    return Case(version_created=created, latest_version=latest, current_floor=floor,
                now=draw(moments), retention=draw(durations), buffer=draw(durations),
                encryption_grace=draw(durations),
                oldest_execution_start=draw(st.none() | moments))


@given(case=cases())
def test_floor_never_falls_and_never_passes_the_latest_version(case: Case) -> None:
    """current_floor <= new_floor <= latest_version, so the latest version is never retired."""
    decision = case.decide()
    assert case.current_floor <= decision.new_floor <= case.latest_version
    assert decision.current_floor == case.current_floor
    assert case.latest_version not in decision.retired


@given(case=cases())
def test_retired_versions_are_exactly_those_below_the_new_floor(case: Case) -> None:
    """retired lists every version the floor climbed over, in order."""
    decision = case.decide()
    assert decision.retired == tuple(range(case.current_floor, decision.new_floor))


@given(case=cases())
def test_every_retired_version_meets_both_conditions(case: Case) -> None:
    """No version is retired unless its successor aged out and no older execution remains."""
    for version in case.decide().retired:
        assert retirable(case, version)


@given(case=cases())
def test_the_climb_stops_at_the_first_version_that_must_stay(case: Case) -> None:
    """The floor stops at the first non-retirable version; if that is the floor, nothing moves."""
    decision = case.decide()
    if case.current_floor < case.latest_version and not retirable(case, case.current_floor):
        assert decision.new_floor == case.current_floor
        assert decision.retired == ()
    if decision.new_floor < case.latest_version:
        assert not retirable(case, decision.new_floor)


@given(case=cases(), later=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=400)))
def test_a_later_now_never_lowers_the_floor(case: Case, later: timedelta) -> None:
    """Waiting can only retire more: the decision is monotone in now."""
    assert case.decide(now=case.now + later).new_floor >= case.decide().new_floor


@given(case=cases(), offset=offsets)
def test_the_decision_does_not_depend_on_time_zones(case: Case, offset: timezone) -> None:
    """The same instants written in another UTC offset give the same decision and reason."""
    shifted = case.decide(
        version_created={v: c.astimezone(offset) for v, c in case.version_created.items()},
        now=case.now.astimezone(offset),
        oldest_execution_start=(None if case.oldest_execution_start is None
                                else case.oldest_execution_start.astimezone(offset)))
    assert shifted == case.decide()


@given(case=cases())
def test_the_reason_is_one_line_naming_the_kept_version(case: Case) -> None:
    """The reason fits one Web UI line and says which version stays."""
    decision = case.decide()
    assert "\n" not in decision.reason
    assert f"v{decision.new_floor} kept: " in decision.reason


def versions(*days: int) -> dict[int, datetime]:
    """Version n created ``days[n - 1]`` days after T0."""
    return {n: T0 + d * DAY for n, d in enumerate(days, start=1)}


def decide(created: dict[int, datetime], *, floor: int = 1, now: datetime,
           oldest: datetime | None = None, grace: timedelta = timedelta(0)) -> FloorDecision:
    return decryption_floor(version_created=created, latest_version=max(created),
                            current_floor=floor, now=now, retention=30 * DAY, buffer=DAY,
                            encryption_grace=grace, oldest_execution_start=oldest,
                            oldest_version_in_use=None)


def test_version_waits_for_retention_plus_buffer_after_its_successor() -> None:
    """Three days after v3 took over, v2 still waits out 30 days of retention and a buffer."""
    decision = decide(versions(0, 10, 20), floor=2, now=T0 + 23 * DAY + timedelta(hours=5),
                      oldest=T0 + 21 * DAY)
    assert decision == FloorDecision(
        current_floor=2, new_floor=2, retired=(),
        reason="v2 kept: v3 active for 3 days, needs 31 days (30 days retention + 1 day buffer)")


def test_an_older_execution_keeps_the_version_it_may_hold() -> None:
    """An execution started before v3 took over may hold v2 payloads, so v2 stays."""
    created = {2: datetime(2025, 6, 1, tzinfo=UTC), 3: datetime(2025, 7, 1, tzinfo=UTC)}
    decision = decide(created, floor=2, now=datetime(2026, 3, 1, tzinfo=UTC),
                      oldest=datetime(2025, 6, 15, 8, 30, 59, tzinfo=UTC))
    assert decision.reason == "v2 kept: an execution started 2025-06-15T08:30Z, before v3 took over"
    assert decision.new_floor == 2


def test_the_spec_example_of_an_execution_started_on_new_years_day() -> None:
    """The reason gives the execution's start to the minute, in UTC."""
    created = {2: datetime(2025, 12, 1, tzinfo=UTC), 3: datetime(2026, 1, 2, tzinfo=UTC)}
    decision = decide(created, floor=2, now=datetime(2026, 6, 1, tzinfo=UTC), oldest=T0)
    assert decision.reason == "v2 kept: an execution started 2026-01-01T00:00Z, before v3 took over"


def test_a_long_running_workflow_blocks_retirement_long_after_retention() -> None:
    """Years after v2 was replaced, one workflow still running from v1's time keeps v1."""
    decision = decide(versions(0, 30, 60), now=T0 + 5 * 365 * DAY, oldest=T0 + 5 * DAY)
    assert decision.new_floor == 1
    assert decision.retired == ()
    assert decision.reason == ("v1 kept: an execution started 2026-01-06T00:00Z, before v2 "
                               "took over")


def test_both_waits_are_named_when_both_conditions_fail() -> None:
    """A person sees everything the version waits for, not only the first thing."""
    decision = decide(versions(0, 10), now=T0 + 12 * DAY, oldest=T0 + DAY)
    assert decision.reason == ("v1 kept: v2 active for 2 days, needs 31 days (30 days retention "
                               "+ 1 day buffer); an execution started 2026-01-02T00:00Z, before "
                               "v2 took over")


def test_an_empty_namespace_only_waits_for_retention() -> None:
    """With no executions left, only condition (1) applies, and the floor climbs to the latest."""
    decision = decide(versions(0, 10, 20, 40), now=T0 + 71 * DAY, oldest=None)
    assert decision == FloorDecision(
        current_floor=1, new_floor=4, retired=(1, 2, 3),
        reason="retired v1 to v3 (floor 1 → 4): v4 active for 31 days, at least 31 days "
               "(30 days retention + 1 day buffer), and the namespace holds no executions; "
               "v4 kept: it is the latest version")


def test_the_climb_stops_at_the_first_version_still_needed() -> None:
    """v1 and v2 go; v3 stays because v4 took over too recently, even though v5 is old news."""
    decision = decide(versions(0, 10, 20, 60, 61), now=T0 + 70 * DAY, oldest=T0 + 65 * DAY)
    assert decision.new_floor == 3
    assert decision.retired == (1, 2)
    assert decision.reason == (
        "retired v1 to v2 (floor 1 → 3): v3 active for 50 days, at least 31 days (30 days "
        "retention + 1 day buffer), and the oldest execution started 2026-03-07T00:00Z, not "
        "before v3 took over; v3 kept: v4 active for 10 days, needs 31 days (30 days retention "
        "+ 1 day buffer)")


def test_a_single_retired_version_is_named_alone() -> None:
    """One retired version reads "retired v2", and the grace appears when it applies."""
    decision = decide(versions(0, 10, 20), floor=2, now=T0 + 60 * DAY, oldest=T0 + 22 * DAY,
                      grace=DAY)
    assert decision.retired == (2,)
    assert decision.reason.startswith(
        "retired v2 (floor 2 → 3): v3 active for 40 days, at least 31 days (30 days retention "
        "+ 1 day buffer), and the oldest execution started 2026-01-23T00:00Z, not before v3 "
        "took over + 1 day encryption grace; v3 kept: it is the latest version")


def test_envelope_data_keys_extend_the_wait_by_the_encryption_grace() -> None:
    """An execution started just after v2 took over may still hold a data key made under v1."""
    decision = decide(versions(0, 10), now=T0 + 100 * DAY,
                      oldest=T0 + 10 * DAY + timedelta(hours=2), grace=DAY)
    assert decision.new_floor == 1
    assert decision.reason == ("v1 kept: an execution started 2026-01-11T02:00Z, within the "
                               "1 day encryption grace after v2 took over")
    assert decide(versions(0, 10), now=T0 + 100 * DAY, oldest=T0 + 11 * DAY,
                  grace=DAY).new_floor == 2


def test_the_boundaries_are_inclusive() -> None:
    """Exactly retention + buffer, and an execution exactly at takeover + grace, are enough."""
    decision = decide(versions(0, 10), now=T0 + 41 * DAY, oldest=T0 + 12 * DAY, grace=2 * DAY)
    assert decision.new_floor == 2


def test_the_latest_version_alone_is_kept() -> None:
    """With the floor already at the latest version there is nothing to retire."""
    decision = decide(versions(0, 10), floor=2, now=T0 + 1000 * DAY)
    assert decision == FloorDecision(2, 2, (), "v2 kept: it is the latest version")


def test_a_successor_dated_in_the_future_is_waited_for() -> None:
    """A creation time after now (clock skew) counts as not yet active, not as a crash."""
    decision = decide(versions(0, 10), now=T0 + 5 * DAY)
    assert decision.new_floor == 1
    assert decision.reason == ("v1 kept: v2 is dated in the future (2026-01-11T00:00Z), needs "
                               "31 days (30 days retention + 1 day buffer)")


def test_a_zero_buffer_is_left_out_of_the_reason() -> None:
    """Without a buffer the reason names only the retention."""
    decision = decryption_floor(version_created=versions(0, 10), latest_version=2,
                                current_floor=1, now=T0 + 12 * DAY, retention=7 * DAY,
                                buffer=timedelta(0), encryption_grace=timedelta(0),
                                oldest_execution_start=None, oldest_version_in_use=None)
    assert decision.reason == "v1 kept: v2 active for 2 days, needs 7 days (7 days retention)"


def valid(**changes: object) -> dict[str, object]:
    arguments: dict[str, object] = {
        "version_created": versions(0, 10, 20), "latest_version": 3, "current_floor": 1,
        "now": T0 + 100 * DAY, "retention": 30 * DAY, "buffer": DAY,
        "encryption_grace": timedelta(0), "oldest_execution_start": None,
        "oldest_version_in_use": None}
    arguments.update(changes)
    return arguments


@pytest.mark.parametrize(("changes", "named"), [
    # Naive datetimes are ambiguous instants: refused, by name.
    ({"now": datetime(2026, 5, 1)}, "now"),
    ({"oldest_execution_start": datetime(2026, 1, 1)}, "oldest_execution_start"),
    ({"version_created": {1: T0, 2: datetime(2026, 1, 11), 3: T0}}, r"version_created\[2\]"),
    ({"current_floor": 0}, "current_floor"),
    ({"current_floor": 4}, "current_floor"),
    ({"retention": -DAY}, "retention"),
    ({"buffer": timedelta(seconds=-1)}, "buffer"),
    ({"encryption_grace": -DAY}, "encryption_grace"),
    ({"version_created": {1: T0, 3: T0}}, "version_created lacks v2"),
    ({"version_created": {1: T0, 2: T0}}, "version_created lacks v3"),
    ({"retention": timedelta.max, "buffer": timedelta.max}, "retention"),
    ({"oldest_version_in_use": 0}, "oldest_version_in_use"),
    ({"oldest_version_in_use": True}, "oldest_version_in_use"),
    ({"oldest_version_in_use": "1"}, "oldest_version_in_use"),
])
def test_malformed_inputs_are_rejected_by_name(changes: dict[str, object], named: str) -> None:
    """Each malformed input raises a ValueError whose message names it."""
    with pytest.raises(ValueError, match=named):
        decryption_floor(**valid(**changes))  # type: ignore[arg-type]


def test_versions_below_the_floor_need_not_be_listed() -> None:
    """Vault omits versions below min_decryption_version; only floor..latest are required."""
    arguments = valid(version_created={3: T0, 4: T0 + DAY}, latest_version=4, current_floor=3)
    decision = decryption_floor(**arguments)  # type: ignore[arg-type]
    assert decision.new_floor == 4


# ---- what payloads still carry (issue 12, attack 3) --------------------------------------

in_use_versions = st.integers(min_value=1, max_value=10)


@given(case=cases(), in_use=in_use_versions)
def test_the_floor_never_passes_a_version_still_carried(case: Case, in_use: int) -> None:
    """Whatever the times say, no version a payload still present carries is retired."""
    decision = case.decide(oldest_version_in_use=in_use, version_in_use_by="wf")
    assert decision.new_floor <= max(case.current_floor, in_use)
    assert in_use not in decision.retired


@given(case=cases(), in_use=in_use_versions)
def test_a_version_in_use_only_caps_the_time_based_floor(case: Case, in_use: int) -> None:
    """The carried version is a cap on the time-based decision, nothing else: the floor is
    the lower of the two (never below the current floor)."""
    by_time = case.decide().new_floor
    capped = case.decide(oldest_version_in_use=in_use).new_floor
    assert capped == min(by_time, max(case.current_floor, in_use))


@given(case=cases(), in_use=in_use_versions)
def test_the_reason_names_what_carries_the_kept_version(case: Case, in_use: int) -> None:
    """When the carried version is what stops the climb, the reason names its holder."""
    decision = case.decide(oldest_version_in_use=in_use,
                           version_in_use_by="default/cron-run (run r2)")
    if case.decide().new_floor > decision.new_floor:
        assert "default/cron-run (run r2)" in decision.reason
        assert f"encrypted under v{in_use}" in decision.reason
        assert f"v{decision.new_floor} kept: " in decision.reason


def test_a_cron_chain_started_after_the_rotation_still_keeps_its_first_input() -> None:
    """Every run started well after v2 took over and retention has long passed, but the
    runs carry their first input under v1: v1 stays."""
    decision = decryption_floor(
        version_created=versions(0, 10), latest_version=2, current_floor=1,
        now=T0 + 400 * DAY, retention=30 * DAY, buffer=DAY, encryption_grace=timedelta(0),
        oldest_execution_start=T0 + 300 * DAY, oldest_version_in_use=1,
        version_in_use_by="default/report-cron run 7f3a")
    assert decision.new_floor == 1
    assert decision.reason == ("v1 kept: a payload still present is encrypted under v1 "
                               "(default/report-cron run 7f3a)")


def test_a_version_carried_above_the_floor_stops_the_climb_there() -> None:
    """v1 and v2 are carried by nothing, v3 is: the floor rises to 3 and no further."""
    decision = decryption_floor(
        version_created=versions(0, 10, 20, 30), latest_version=4, current_floor=1,
        now=T0 + 400 * DAY, retention=30 * DAY, buffer=DAY, encryption_grace=timedelta(0),
        oldest_execution_start=None, oldest_version_in_use=3, version_in_use_by="schedule s")
    assert (decision.new_floor, decision.retired) == (3, (1, 2))
    assert "v3 kept: a payload still present is encrypted under v3 (schedule s)" in \
        decision.reason
