"""Rotation schedule maths: due times for ``every`` and cron (with time zones and DST), jitter, periods.

Pure: every test passes ``now`` in. DST dates used below: the United States moved its clocks on
2025-03-09 (02:00 EST -> 03:00 EDT) and 2025-11-02 (02:00 EDT -> 01:00 EST, so 01:00-01:59 happens
twice); the European Union on 2025-03-30 (02:00 CET -> 03:00 CEST) and 2025-10-26 (03:00 CEST ->
02:00 CET, so 02:00-02:59 happens twice). India has no DST and is UTC+05:30.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta, timezone
from itertools import pairwise
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from openai_operator.errors import SpecError
from openai_operator.model.specs import Rotation, parse_key_spec
from openai_operator.reconcile.schedule import (
    JITTER_CAP,
    RotationGaps,
    default_spread,
    jittered,
    next_rotation_at,
    revoke_at,
    rotation_due,
    rotation_gaps,
    rotation_period,
    validate_rotation,
)

pytestmark = pytest.mark.unit

NEW_YORK = "America/New_York"
BERLIN = "Europe/Berlin"
KOLKATA = "Asia/Kolkata"


def rotation(**fields: Any) -> Rotation:
    """A ``spec.rotation`` parsed the way the operator parses it (durations as strings).

    ``gracePeriod`` defaults to 1s here, because the real default (1h) must be shorter than ``every``.
    """
    fields = {"gracePeriod": "1s", **fields}
    spec = parse_key_spec({"projectRef": {"name": "team-a"}, "secret": {}, "rotation": fields}, name="k")
    assert spec.rotation is not None
    return spec.rotation


def cron(schedule: str, time_zone: str | None = None) -> Rotation:
    return rotation(schedule=schedule, timeZone=time_zone) if time_zone else rotation(schedule=schedule)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, micro: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, micro, tzinfo=UTC)


def local(zone: str, year: int, month: int, day: int, hour: int = 0, minute: int = 0, *, fold: int = 0) -> datetime:
    """A wall-clock time in ``zone`` as a UTC instant (``fold=1``: the second of a repeated time)."""
    return datetime(year, month, day, hour, minute, tzinfo=ZoneInfo(zone), fold=fold).astimezone(UTC)


def fires(rule: Rotation, start: datetime, count: int) -> list[datetime]:
    """The next ``count`` due times, each rotation happening exactly when due."""
    out: list[datetime] = []
    last = start
    for _ in range(count):
        last = next_rotation_at(rule, last_rotated_at=last, now=last)
        out.append(last)
    return out


def simulate(
    rule: Rotation, *, start: datetime, end: datetime, tick: timedelta, last: datetime | None = None
) -> list[datetime]:
    """A timer that checks every ``tick`` from ``start`` and rotates (at the tick) whenever the key is due.

    ``last`` is the last rotation before the timer starts (default: ``start``); an earlier one
    models an operator that was down in between.
    """
    rotated: list[datetime] = []
    last, now = (start if last is None else last), start
    while now <= end:
        if rotation_due(rule, last_rotated_at=last, now=now):
            rotated.append(now)
            last = now
        now += tick
    return rotated


class TestEvery:
    @pytest.mark.parametrize(
        ("every", "last", "expected"),
        [
            pytest.param("720h", utc(2026, 1, 1), utc(2026, 1, 31), id="720h is thirty days after the last rotation"),
            pytest.param("90m", utc(2026, 1, 1, 12), utc(2026, 1, 1, 13, 30), id="90m is an hour and a half later"),
            pytest.param("1h30m", utc(2026, 1, 1, 12), utc(2026, 1, 1, 13, 30), id="1h30m equals 90m"),
            pytest.param(
                "24h",
                datetime(2026, 3, 28, 12, tzinfo=ZoneInfo(BERLIN)),
                utc(2026, 3, 29, 11),
                id="a duration is real time: 24h across a DST change is not the same wall-clock time",
            ),
            pytest.param(
                "1h",
                datetime(2026, 1, 1, 12, tzinfo=timezone(timedelta(hours=5, minutes=30))),
                utc(2026, 1, 1, 7, 30),
                id="any aware input gives a UTC result",
            ),
        ],
    )
    def test_next_rotation_is_last_plus_every(self, every: str, last: datetime, expected: datetime) -> None:
        due = next_rotation_at(rotation(every=every), last_rotated_at=last, now=last)
        assert due == expected
        assert due.tzinfo is UTC

    @pytest.mark.parametrize(
        ("now", "due"),
        [
            pytest.param(utc(2026, 1, 1, 13, 29, 59, 999999), False, id="a microsecond before the due time is not due"),
            pytest.param(utc(2026, 1, 1, 13, 30), True, id="exactly at the due time counts as due"),
            pytest.param(utc(2026, 1, 1, 13, 30, 1), True, id="after the due time is due"),
            pytest.param(utc(2026, 1, 1, 12), False, id="right after a rotation is not due"),
        ],
    )
    def test_due_boundaries(self, now: datetime, due: bool) -> None:
        assert rotation_due(rotation(every="90m"), last_rotated_at=utc(2026, 1, 1, 12), now=now) is due

    def test_operator_down_for_many_periods_rotates_once(self) -> None:
        rule = rotation(every="1h")
        last, now = utc(2026, 1, 1, 0), utc(2026, 1, 1, 5, 10)
        due = next_rotation_at(rule, last_rotated_at=last, now=now)
        assert due == utc(2026, 1, 1, 1), "the missed due time is reported, not a backlog"
        assert due <= now
        assert rotation_due(rule, last_rotated_at=last, now=now)
        # After the one rotation at ``now`` the phase restarts from it: nothing else is due.
        assert next_rotation_at(rule, last_rotated_at=now, now=now) == utc(2026, 1, 1, 6, 10)
        assert not rotation_due(rule, last_rotated_at=now, now=now + timedelta(minutes=59))

    def test_timer_after_an_outage_rotates_once_then_keeps_the_period(self) -> None:
        # Last rotated at 00:00, the operator is down until 05:10, then ticks every minute until 08:00.
        rotated = simulate(
            rotation(every="1h"),
            last=utc(2026, 1, 1, 0),
            start=utc(2026, 1, 1, 5, 10),
            end=utc(2026, 1, 1, 8),
            tick=timedelta(minutes=1),
        )
        assert rotated == [utc(2026, 1, 1, 5, 10), utc(2026, 1, 1, 6, 10), utc(2026, 1, 1, 7, 10)]

    def test_last_rotation_in_the_future_counts_from_now(self) -> None:
        rule = rotation(every="1h")
        now = utc(2026, 1, 1, 12)
        skewed = now + timedelta(minutes=20)
        assert next_rotation_at(rule, last_rotated_at=skewed, now=now) == utc(2026, 1, 1, 13)


class TestCron:
    @pytest.mark.parametrize(
        ("rule", "last", "expected"),
        [
            pytest.param(
                cron("0 3 * * *"), utc(2025, 1, 1, 2), utc(2025, 1, 1, 3), id="daily in UTC, later the same day"
            ),
            pytest.param(cron("0 3 * * *"), utc(2025, 1, 1, 4), utc(2025, 1, 2, 3), id="daily in UTC, the next day"),
            pytest.param(
                cron("0 3 * * *", "UTC"),
                utc(2025, 1, 1, 4),
                utc(2025, 1, 2, 3),
                id="an explicit UTC zone is the default",
            ),
            pytest.param(cron("@daily"), utc(2025, 1, 1, 4), utc(2025, 1, 2), id="a macro"),
            pytest.param(
                cron("0 3 * * *"),
                utc(2025, 1, 1, 3),
                utc(2025, 1, 2, 3),
                id="a rotation exactly at a fire time waits a day",
            ),
            pytest.param(
                cron("0 3 * * *"),
                utc(2025, 1, 1, 2, 59, 59, 999999),
                utc(2025, 1, 1, 3),
                id="a microsecond before a fire time, that fire time is next",
            ),
            pytest.param(
                cron("0 3 * * *"),
                utc(2025, 1, 1, 3, 0, 0, 500000),
                utc(2025, 1, 2, 3),
                id="half a second after a fire time, the next day",
            ),
            pytest.param(
                cron("0 3 * * *", BERLIN), utc(2025, 1, 10), utc(2025, 1, 10, 2), id="Berlin in winter is UTC+1"
            ),
            pytest.param(
                cron("0 3 * * *", BERLIN), utc(2025, 7, 10), utc(2025, 7, 10, 1), id="Berlin in summer is UTC+2"
            ),
            pytest.param(
                cron("0 9 * * *", NEW_YORK), utc(2025, 1, 10), utc(2025, 1, 10, 14), id="New York in winter is UTC-5"
            ),
            pytest.param(
                cron("0 9 * * *", NEW_YORK), utc(2025, 7, 10), utc(2025, 7, 10, 13), id="New York in summer is UTC-4"
            ),
            pytest.param(
                cron("0 9 * * *", KOLKATA),
                utc(2025, 1, 10),
                utc(2025, 1, 10, 3, 30),
                id="Kolkata has a half-hour offset",
            ),
            pytest.param(
                cron("30 2 * * *", KOLKATA),
                utc(2025, 1, 10),
                utc(2025, 1, 10, 21),
                id="a Kolkata early morning is the previous evening in UTC",
            ),
            pytest.param(
                cron("0 0 1 * *", KOLKATA),
                utc(2025, 1, 15),
                utc(2025, 1, 31, 18, 30),
                id="the first of the month in Kolkata starts on the last day in UTC",
            ),
        ],
    )
    def test_first_fire_after_the_last_rotation(self, rule: Rotation, last: datetime, expected: datetime) -> None:
        due = next_rotation_at(rule, last_rotated_at=last, now=last)
        assert due == expected
        assert due.tzinfo is UTC

    @pytest.mark.parametrize(
        ("rule", "start", "expected"),
        [
            pytest.param(
                cron("0 9 * * 1-5"),
                utc(2025, 3, 6, 10),  # Thursday
                [utc(2025, 3, 7, 9), utc(2025, 3, 10, 9), utc(2025, 3, 11, 9)],
                id="weekdays skip the weekend",
            ),
            pytest.param(
                cron("0 9 * * MON"),
                utc(2025, 1, 1),  # Wednesday
                [utc(2025, 1, 6, 9), utc(2025, 1, 13, 9)],
                id="weekly on a named weekday",
            ),
            pytest.param(cron("0 0 * * 0"), utc(2025, 1, 1), [utc(2025, 1, 5), utc(2025, 1, 12)], id="Sunday as day 0"),
            pytest.param(cron("0 0 * * 7"), utc(2025, 1, 1), [utc(2025, 1, 5), utc(2025, 1, 12)], id="Sunday as day 7"),
            pytest.param(
                cron("0 9 * * 1-5", NEW_YORK),
                local(NEW_YORK, 2025, 3, 7, 10),  # Friday
                [local(NEW_YORK, 2025, 3, 10, 9), local(NEW_YORK, 2025, 3, 11, 9)],
                id="weekdays in a zone, across the weekend of a DST change",
            ),
            pytest.param(
                cron("0 0 31 * *"),
                utc(2025, 1, 1),
                [utc(2025, 1, 31), utc(2025, 3, 31), utc(2025, 5, 31), utc(2025, 7, 31), utc(2025, 8, 31)],
                id="the 31st skips months without one",
            ),
            pytest.param(
                cron("0 0 31 * *"),
                utc(2025, 12, 1),
                [utc(2025, 12, 31), utc(2026, 1, 31)],
                id="the 31st across the new year",
            ),
            pytest.param(
                cron("0 0 31 * *", BERLIN),
                utc(2025, 1, 1),
                [utc(2025, 1, 30, 23), utc(2025, 3, 30, 22)],
                id="the 31st at midnight in Berlin is the 30th in UTC, in winter and summer",
            ),
            pytest.param(
                cron("0 0 L * *"),
                utc(2024, 1, 15),
                [utc(2024, 1, 31), utc(2024, 2, 29), utc(2024, 3, 31), utc(2024, 4, 30)],
                id="the last day of each month, leap day included",
            ),
            pytest.param(
                cron("0 0 13 * 5"),
                utc(2025, 6, 1),
                [utc(2025, 6, 6), utc(2025, 6, 13), utc(2025, 6, 20)],
                id="day of month and day of week both restricted fire on either, as cron does",
            ),
        ],
    )
    def test_fire_sequence(self, rule: Rotation, start: datetime, expected: list[datetime]) -> None:
        assert fires(rule, start, len(expected)) == expected

    @pytest.mark.parametrize(
        ("rule", "last", "now", "expected"),
        [
            pytest.param(
                cron("0 * * * *"),
                utc(2025, 1, 1, 10),
                utc(2025, 1, 1, 15, 10),
                utc(2025, 1, 1, 11),
                id="hourly, down for five hours: the first missed fire is reported",
            ),
            pytest.param(
                cron("30 2 * * *", NEW_YORK),
                local(NEW_YORK, 2025, 3, 1, 2, 30),
                local(NEW_YORK, 2025, 3, 20, 12),
                local(NEW_YORK, 2025, 3, 2, 2, 30),
                id="daily, down for nineteen days across a DST change",
            ),
        ],
    )
    def test_operator_down_for_many_periods_rotates_once(
        self, rule: Rotation, last: datetime, now: datetime, expected: datetime
    ) -> None:
        assert next_rotation_at(rule, last_rotated_at=last, now=now) == expected
        assert rotation_due(rule, last_rotated_at=last, now=now)
        after = next_rotation_at(rule, last_rotated_at=now, now=now)
        assert after > now, "after the one catch-up rotation the next fire is in the future"
        assert not rotation_due(rule, last_rotated_at=now, now=now)

    def test_due_exactly_at_the_fire_time(self) -> None:
        rule, last = cron("0 3 * * *"), utc(2025, 1, 1, 4)
        assert not rotation_due(rule, last_rotated_at=last, now=utc(2025, 1, 2, 2, 59, 59, 999999))
        assert rotation_due(rule, last_rotated_at=last, now=utc(2025, 1, 2, 3))

    def test_last_rotation_in_the_future_counts_from_now(self) -> None:
        rule, now = cron("0 * * * *"), utc(2025, 1, 1, 10, 30)
        assert next_rotation_at(rule, last_rotated_at=utc(2025, 1, 1, 12, 15), now=now) == utc(2025, 1, 1, 11)

    @pytest.mark.parametrize(
        "schedule",
        ["0 0 30 2 *", "0 0 31 4 *"],
        ids=["February 30th never comes", "April 31st never comes"],
    )
    def test_a_schedule_that_never_fires_is_a_spec_error(self, schedule: str) -> None:
        with pytest.raises(SpecError) as caught:
            next_rotation_at(cron(schedule), last_rotated_at=utc(2025, 1, 1), now=utc(2025, 1, 1))
        assert caught.value.field_path == "spec.rotation.schedule"
        assert "never fires" in caught.value.detail

    @pytest.mark.parametrize(
        "schedule",
        ["R R * * *", "0 R(0-5) * * *", "R/15 * * * *"],
        ids=["random minute and hour", "random hour in a range", "random offset with a step"],
    )
    def test_random_fields_are_a_spec_error(self, schedule: str) -> None:
        rule = Rotation.model_construct(schedule=schedule, time_zone=None, every=None)
        with pytest.raises(SpecError) as caught:
            next_rotation_at(rule, last_rotated_at=utc(2025, 1, 1), now=utc(2025, 1, 1))
        assert caught.value.field_path == "spec.rotation.schedule"

    @pytest.mark.parametrize(
        ("last", "now"),
        [
            pytest.param(datetime(2025, 1, 1), utc(2025, 1, 1), id="a naive last rotation"),
            pytest.param(utc(2025, 1, 1), datetime(2025, 1, 1), id="a naive now"),
        ],
    )
    def test_naive_datetimes_are_rejected(self, last: datetime, now: datetime) -> None:
        for rule in (cron("0 * * * *"), rotation(every="1h")):
            with pytest.raises(ValueError, match="timezone-aware"):
                next_rotation_at(rule, last_rotated_at=last, now=now)


# Each DST case: the rule, where to start, and the fire times expected from there, in order.
DST_CASES = [
    pytest.param(
        cron("30 2 * * *", NEW_YORK),
        local(NEW_YORK, 2025, 3, 8, 3),
        [
            local(NEW_YORK, 2025, 3, 9, 3, 0),  # 02:30 does not exist: the first time after the gap
            local(NEW_YORK, 2025, 3, 10, 2, 30),
            local(NEW_YORK, 2025, 3, 11, 2, 30),
        ],
        id="New York daily 02:30, spring forward: fires at 03:00 EDT, no day skipped",
    ),
    pytest.param(
        cron("30 2 * * *", NEW_YORK),
        local(NEW_YORK, 2025, 11, 1, 3),
        [local(NEW_YORK, 2025, 11, 2, 2, 30), local(NEW_YORK, 2025, 11, 3, 2, 30)],
        id="New York daily 02:30, fall back: 02:30 happens once there, fires once",
    ),
    pytest.param(
        cron("30 1 * * *", NEW_YORK),
        local(NEW_YORK, 2025, 11, 1, 3),
        [
            local(NEW_YORK, 2025, 11, 2, 1, 30, fold=0),  # 01:30 EDT; the 01:30 EST an hour later is dropped
            local(NEW_YORK, 2025, 11, 3, 1, 30),
        ],
        id="New York daily 01:30, fall back: the repeated 01:30 fires once, at the first",
    ),
    pytest.param(
        cron("30 2 * * *", BERLIN),
        local(BERLIN, 2025, 3, 29, 3),
        [local(BERLIN, 2025, 3, 30, 3, 0), local(BERLIN, 2025, 3, 31, 2, 30)],
        id="Berlin daily 02:30, spring forward: fires at 03:00 CEST, no day skipped",
    ),
    pytest.param(
        cron("30 2 * * *", BERLIN),
        local(BERLIN, 2025, 10, 25, 3),
        [local(BERLIN, 2025, 10, 26, 2, 30, fold=0), local(BERLIN, 2025, 10, 27, 2, 30)],
        id="Berlin daily 02:30, fall back: the repeated 02:30 fires once, at the first",
    ),
    pytest.param(
        cron("30 * * * *", NEW_YORK),
        local(NEW_YORK, 2025, 3, 9, 0),
        [utc(2025, 3, 9, 5, 30), utc(2025, 3, 9, 6, 30), utc(2025, 3, 9, 7, 30), utc(2025, 3, 9, 8, 30)],
        id="New York hourly, spring forward: 01:30 EST then 03:30 EDT, still an hour apart",
    ),
    pytest.param(
        cron("30 * * * *", NEW_YORK),
        local(NEW_YORK, 2025, 11, 2, 0),
        [utc(2025, 11, 2, 4, 30), utc(2025, 11, 2, 5, 30), utc(2025, 11, 2, 6, 30), utc(2025, 11, 2, 7, 30)],
        id="New York hourly, fall back: 01:30 EDT and 01:30 EST both fire, an hour apart",
    ),
    pytest.param(
        cron("@hourly", BERLIN),
        local(BERLIN, 2025, 10, 26, 1, 30),
        [utc(2025, 10, 26, 0), utc(2025, 10, 26, 1), utc(2025, 10, 26, 2)],
        id="Berlin hourly, fall back: 02:00 CEST and 02:00 CET both fire, an hour apart",
    ),
    pytest.param(
        cron("30 1-3 * * *", NEW_YORK),
        local(NEW_YORK, 2025, 11, 2, 0),
        [
            local(NEW_YORK, 2025, 11, 2, 1, 30, fold=0),
            local(NEW_YORK, 2025, 11, 2, 2, 30),
            local(NEW_YORK, 2025, 11, 2, 3, 30),
        ],
        id="listed hours are times of day: the repeated 01:30 fires once",
    ),
]


class TestDaylightSaving:
    @pytest.mark.parametrize(("rule", "start", "expected"), DST_CASES)
    def test_fire_sequence(self, rule: Rotation, start: datetime, expected: list[datetime]) -> None:
        assert fires(rule, start, len(expected)) == expected

    @pytest.mark.parametrize(("rule", "start", "expected"), DST_CASES)
    def test_next_fire_does_not_depend_on_where_the_search_starts(
        self, rule: Rotation, start: datetime, expected: list[datetime]
    ) -> None:
        """From any instant before the last expected fire, the next one is the first expected one after it."""
        probes: list[datetime] = []
        t = start
        while t < expected[-1]:
            probes.append(t)
            t += timedelta(minutes=5)
        for fire in expected:
            probes += [fire - timedelta(microseconds=1), fire, fire + timedelta(seconds=1)]
        for probe in (p for p in probes if start <= p < expected[-1]):
            wanted = min(f for f in expected if f > probe)
            assert next_rotation_at(rule, last_rotated_at=probe, now=probe) == wanted, probe

    @pytest.mark.parametrize(
        ("rule", "zone", "start", "day", "per_day"),
        [
            pytest.param(cron("30 2 * * *", NEW_YORK), NEW_YORK, utc(2025, 3, 7), 9, 1, id="New York spring forward"),
            pytest.param(cron("30 1 * * *", NEW_YORK), NEW_YORK, utc(2025, 10, 31), 2, 1, id="New York fall back"),
            pytest.param(cron("30 2 * * *", BERLIN), BERLIN, utc(2025, 3, 28), 30, 1, id="Berlin spring forward"),
            pytest.param(cron("30 2 * * *", BERLIN), BERLIN, utc(2025, 10, 24), 26, 1, id="Berlin fall back"),
            pytest.param(cron("30 * * * *", NEW_YORK), NEW_YORK, utc(2025, 3, 8), 9, 23, id="hourly on a 23-hour day"),
            pytest.param(
                cron("30 * * * *", NEW_YORK), NEW_YORK, utc(2025, 10, 31), 2, 25, id="hourly on a 25-hour day"
            ),
        ],
    )
    def test_a_timer_rotates_the_expected_number_of_times_on_the_transition_day(
        self, rule: Rotation, zone: str, start: datetime, day: int, per_day: int
    ) -> None:
        rotated = simulate(rule, start=start, end=start + timedelta(days=5), tick=timedelta(minutes=5))
        days = Counter(t.astimezone(ZoneInfo(zone)).day for t in rotated)
        assert days[day] == per_day
        assert all(days[d] == days[day - 1] for d in (day - 1, day + 1)), days


class TestJitter:
    def test_deterministic(self) -> None:
        due = utc(2026, 1, 1)
        first = jittered(due, key="team-a/db/3", spread=timedelta(minutes=5))
        assert all(jittered(due, key="team-a/db/3", spread=timedelta(minutes=5)) == first for _ in range(5))

    def test_bounded_and_spread_across_keys(self) -> None:
        due, spread = utc(2026, 1, 1), timedelta(minutes=5)
        offsets = [jittered(due, key=f"ns/key-{i}/1", spread=spread) - due for i in range(2000)]
        assert all(timedelta(0) <= o < spread for o in offsets)
        seconds = Counter(int(o.total_seconds()) for o in offsets)
        assert len(seconds) > 250, "2000 keys land in most of the 300 seconds"
        assert max(seconds.values()) < 25, "no second gets a crowd"

    def test_revision_changes_the_offset(self) -> None:
        due, spread = utc(2026, 1, 1), timedelta(minutes=5)
        assert jittered(due, key="ns/db/1", spread=spread) != jittered(due, key="ns/db/2", spread=spread)

    @pytest.mark.parametrize(
        "due",
        [utc(2026, 1, 1), datetime(2026, 1, 1, 1, tzinfo=ZoneInfo(BERLIN))],
        ids=["UTC input", "zoned input"],
    )
    def test_zero_spread_is_no_jitter(self, due: datetime) -> None:
        result = jittered(due, key="ns/db/1", spread=timedelta(0))
        assert result == due
        assert result.tzinfo is UTC

    def test_negative_spread_is_rejected(self) -> None:
        with pytest.raises(ValueError, match="negative"):
            jittered(utc(2026, 1, 1), key="k", spread=timedelta(seconds=-1))

    @pytest.mark.parametrize(
        ("rule", "expected"),
        [
            pytest.param(rotation(every="720h"), JITTER_CAP, id="a long period is capped at five minutes"),
            pytest.param(rotation(every="90m"), timedelta(minutes=4, seconds=30), id="90m gets 5 percent"),
            pytest.param(rotation(every="1h30m"), timedelta(minutes=4, seconds=30), id="1h30m gets the same"),
            pytest.param(
                rotation(every="10s"), timedelta(milliseconds=500), id="the shortest every gets half a second"
            ),
            pytest.param(cron("0 3 * * *"), JITTER_CAP, id="a daily cron is capped"),
            pytest.param(cron("0 3 * * *", KOLKATA), JITTER_CAP, id="the zone does not matter"),
            pytest.param(cron("0 * * * *", NEW_YORK), timedelta(minutes=3), id="an hourly cron gets 5 percent"),
            pytest.param(
                cron("*/7 * * * *"),
                timedelta(seconds=12),
                id="cron uses its shortest gap: */7 has a 4-minute gap at the top of the hour",
            ),
            pytest.param(cron("0 0 31 * *"), JITTER_CAP, id="a month-end cron is capped"),
        ],
    )
    def test_default_spread(self, rule: Rotation, expected: timedelta) -> None:
        assert default_spread(rule) == expected

    def test_jitter_never_reaches_the_next_fire(self) -> None:
        rule = cron("*/7 * * * *")
        spread = default_spread(rule)
        due = fires(rule, utc(2025, 1, 1, 0, 50), 3)
        for i, fire in enumerate(due[:-1]):
            assert jittered(fire, key=f"ns/k/{i}", spread=spread) < due[i + 1]


class TestRotationPeriod:
    @pytest.mark.parametrize(
        ("rule", "at", "expected"),
        [
            pytest.param(rotation(every="720h"), utc(2025, 1, 1), timedelta(hours=720), id="every is the period"),
            pytest.param(rotation(every="1h30m"), utc(2025, 1, 1), timedelta(minutes=90), id="every 1h30m"),
            pytest.param(cron("0 3 * * *"), utc(2025, 1, 1), timedelta(days=1), id="daily in UTC"),
            pytest.param(
                cron("0 3 * * *", NEW_YORK),
                utc(2025, 1, 1),
                timedelta(hours=25),
                id="daily in a zone: the fall-back day",
            ),
            pytest.param(cron("0 3 * * *", KOLKATA), utc(2025, 1, 1), timedelta(days=1), id="daily without DST"),
            pytest.param(cron("0 9 * * 1-5"), utc(2025, 1, 1), timedelta(days=3), id="weekdays: Friday to Monday"),
            pytest.param(cron("0 0 * * 0"), utc(2025, 1, 1), timedelta(days=7), id="weekly"),
            pytest.param(cron("0 0 31 * *"), utc(2025, 1, 1), timedelta(days=61), id="the 31st: two months at most"),
            pytest.param(
                cron("0 0 1 1 *"),
                utc(2025, 6, 1),
                timedelta(days=365),
                id="yearly: the gap reaching past the horizon counts",
            ),
            pytest.param(
                cron("0 0 29 2 *"),
                utc(2025, 1, 1),
                utc(2028, 2, 29) - utc(2025, 1, 1),
                id="leap day: the wait for the next one, beyond the horizon",
            ),
            pytest.param(cron("* * * * *"), utc(2025, 1, 1), timedelta(minutes=1), id="every minute: bounded sample"),
            pytest.param(
                cron("0 0 1 * *"),
                utc(2025, 1, 1, 0, 0, 1),
                timedelta(days=31),
                id="at least the time until the next fire",
            ),
        ],
    )
    def test_period(self, rule: Rotation, at: datetime, expected: timedelta) -> None:
        assert rotation_period(rule, at=at) == expected

    def test_covers_the_time_to_the_first_fire(self) -> None:
        rule, at = cron("0 0 29 2 *"), utc(2025, 1, 1)
        assert rotation_period(rule, at=at) >= next_rotation_at(rule, last_rotated_at=at, now=at) - at


class TestRevokeAt:
    def test_now_plus_grace_in_utc(self) -> None:
        now = datetime(2026, 1, 1, 12, tzinfo=ZoneInfo(BERLIN))
        result = revoke_at(now, timedelta(hours=1))
        assert result == utc(2026, 1, 1, 12)
        assert result.tzinfo is UTC

    def test_naive_now_is_rejected(self) -> None:
        with pytest.raises(ValueError, match="timezone-aware"):
            revoke_at(datetime(2026, 1, 1), timedelta(hours=1))


H = timedelta(hours=1)
DAY = timedelta(days=1)


class TestRotationGaps:
    """Shortest and longest real-time gaps between rotations (what the key policy compares)."""

    @pytest.mark.parametrize(
        ("rule", "expected"),
        [
            pytest.param(rotation(every="720h"), RotationGaps(30 * DAY, 30 * DAY), id="every is both gaps"),
            pytest.param(cron("0 3 * * *"), RotationGaps(DAY, DAY), id="daily in UTC is always a day"),
            pytest.param(
                cron("30 1 * * *", NEW_YORK),
                RotationGaps(23 * H, 25 * H),
                id="daily in New York is 23h in spring and 25h in autumn",
            ),
            pytest.param(
                cron("30 2 * * *", NEW_YORK),
                RotationGaps(23 * H + timedelta(minutes=30), 25 * H),
                id="a daily time inside the spring gap fires at 03:00, half an hour short of a day",
            ),
            pytest.param(
                cron("0 3 * * 1", BERLIN),
                RotationGaps(7 * DAY - H, 7 * DAY + H),
                id="weekly in Berlin is a week give or take the DST hour",
            ),
            pytest.param(
                cron("0 0 * * *", "America/Santiago"),
                RotationGaps(23 * H, 25 * H),
                id="midnight in a zone whose clocks change at midnight",
            ),
            pytest.param(cron("@hourly", BERLIN), RotationGaps(H, H), id="hourly keeps its real cadence across DST"),
            pytest.param(
                cron("*/30 * * * *", "Australia/Lord_Howe"),
                RotationGaps(timedelta(minutes=30), timedelta(minutes=30)),
                id="half-hourly in a zone with a half-hour DST shift",
            ),
            pytest.param(
                cron("0 0 29 2 *"), RotationGaps(1461 * DAY, 1461 * DAY), id="a leap-day schedule waits four years"
            ),
            pytest.param(
                cron("0 0 1 * *"), RotationGaps(28 * DAY, 31 * DAY), id="monthly gaps range over the month lengths"
            ),
            pytest.param(
                cron("0 0 13 * 5"),
                RotationGaps(DAY, 7 * DAY),
                id="day of month and day of week restrict by either (cron's OR)",
            ),
            pytest.param(
                cron("0 9,17 * * 1-5"),
                RotationGaps(8 * H, 2 * DAY + 16 * H),
                id="twice on weekdays: eight hours in the day, a weekend at most",
            ),
            pytest.param(
                cron("* * 1 * *", BERLIN),
                RotationGaps(timedelta(minutes=1), 30 * DAY + H + timedelta(minutes=1)),
                id="every minute of the first day of the month: a month between the bursts",
            ),
            pytest.param(
                cron("0 2,3 * * *", NEW_YORK),
                RotationGaps(H, DAY),
                id="two times that meet in the spring gap fire once, not twice at the same instant",
            ),
        ],
    )
    def test_gaps(self, rule: Rotation, expected: RotationGaps) -> None:
        assert rotation_gaps(rule) == expected

    @pytest.mark.parametrize(
        ("schedule", "zone", "start", "days"),
        [
            pytest.param("30 1 * * *", NEW_YORK, utc(2025, 1, 10), 366, id="daily in New York for a year"),
            pytest.param(
                "15,45 2 * * *", BERLIN, utc(2025, 1, 10), 366, id="twice within the hour that Berlin skips and repeats"
            ),
            pytest.param("*/20 0-3 * * *", BERLIN, utc(2025, 1, 10), 366, id="bursts around the Berlin transitions"),
            pytest.param("0 */5 * * *", NEW_YORK, utc(2025, 1, 10), 366, id="every five hours, resetting at midnight"),
            pytest.param(
                "45 23 * * 6,0", "America/Santiago", utc(2025, 1, 10), 366, id="weekend nights by a midnight transition"
            ),
            pytest.param(
                "*/30 * * * *", "Australia/Lord_Howe", utc(2025, 4, 1), 10, id="half-hourly as Lord Howe falls back"
            ),
            pytest.param(
                "*/30 * * * *", "Australia/Lord_Howe", utc(2025, 9, 30), 10, id="half-hourly as Lord Howe springs ahead"
            ),
            pytest.param("0 12 * * *", KOLKATA, utc(2025, 1, 10), 366, id="a zone without DST"),
        ],
    )
    def test_gaps_equal_those_of_every_fire_time(self, schedule: str, zone: str, start: datetime, days: int) -> None:
        """The day-by-day shortcut gives what walking every fire time (``next_rotation_at``) gives."""
        horizon = timedelta(days=days)
        rule = cron(schedule, zone)
        times = [next_rotation_at(rule, last_rotated_at=start, now=start)]
        while times[-1] < start + horizon:
            times.append(next_rotation_at(rule, last_rotated_at=times[-1], now=times[-1]))
        walked = [later - earlier for earlier, later in pairwise(times)]
        assert rotation_gaps(rule, start=start, horizon=horizon) == RotationGaps(min(walked), max(walked))

    @pytest.mark.parametrize(
        "schedule",
        [pytest.param("0 0 30 2 *", id="a schedule that never fires")],
    )
    def test_a_schedule_that_never_fires_is_a_spec_error(self, schedule: str) -> None:
        rule = Rotation.model_construct(schedule=schedule, grace_period=timedelta(0))
        with pytest.raises(SpecError) as caught:
            rotation_gaps(rule)
        assert caught.value.field_path == "spec.rotation.schedule"


class TestValidateRotation:
    @pytest.mark.parametrize(
        "rule",
        [
            pytest.param(cron("0 3 * * *"), id="a one-second grace on a daily schedule is fine"),
            pytest.param(
                rotation(schedule="0 3 * * *", gracePeriod="23h59m"), id="a grace just under a day in UTC is fine"
            ),
            pytest.param(
                rotation(schedule="30 1 * * *", timeZone=NEW_YORK, gracePeriod="22h59m"),
                id="a grace under the 23-hour spring gap in New York is fine",
            ),
            pytest.param(rotation(every="2h", gracePeriod="1h"), id="a grace shorter than every is fine"),
        ],
    )
    def test_a_grace_shorter_than_every_gap_is_accepted(self, rule: Rotation) -> None:
        assert validate_rotation(rule) == rotation_gaps(rule)

    @pytest.mark.parametrize(
        ("rule", "shortest"),
        [
            pytest.param(
                rotation(schedule="30 1 * * *", timeZone=NEW_YORK, gracePeriod="23h30m"),
                "23h",
                id="a grace longer than the spring-forward day of a daily schedule is refused",
            ),
            pytest.param(
                rotation(schedule="*/30 * * * *", gracePeriod="1h"),
                "30m",
                id="a one-hour grace on a half-hourly schedule",
            ),
            pytest.param(
                rotation(schedule="0 9,17 * * *", gracePeriod="8h"),
                "8h",
                id="a grace equal to the shortest gap is refused",
            ),
        ],
    )
    def test_a_grace_as_long_as_the_shortest_gap_is_a_spec_error(self, rule: Rotation, shortest: str) -> None:
        with pytest.raises(SpecError) as caught:
            validate_rotation(rule)
        assert caught.value.field_path == "spec.rotation.gracePeriod"
        assert f"({shortest})" in caught.value.detail
