"""Timing rules: failure backoff, rotation due times, jitter and the backstop period. All take ``now``/inputs.

Pure: no I/O beyond reading the local time-zone database (``zoneinfo``), no clock, no randomness
except the documented default of :func:`failure_backoff`. Every datetime that goes in must be
timezone-aware; every datetime that comes out is in UTC.

Rotation due times (``spec.rotation``)
--------------------------------------

``every``
    Due at ``last_rotated_at + every``. The period counts from the *actual* last rotation, so a
    late rotation (operator down, jitter, failures) moves the phase of every later one.

``schedule`` (5-field cron, optional IANA ``timeZone``, default UTC)
    Due at the first fire time strictly after ``last_rotated_at``. Fire times are evaluated by
    ``croniter`` on wall-clock time in the zone (standard cron semantics: when both day-of-month
    and day-of-week are restricted, either matching fires). Daylight-saving transitions:

    * **Spring forward** (a wall-clock hour does not exist). A time of day inside the gap fires at
      the first wall-clock time after the gap: ``30 2 * * *`` in America/New_York fires at 03:00
      EDT on the transition day, so no day is skipped. This is croniter's behaviour (and Vixie
      cron's) and is pinned by tests. Expressions that run every hour (hour field ``*``, ``*/1``,
      ``0-23``, ``@hourly``) keep their real-time cadence instead: the nonexistent 02:30 is simply
      not a fire time, and 01:30 EST is followed by 03:30 EDT, one hour later.
    * **Fall back** (a wall-clock hour happens twice). croniter returns *both* instants of a
      repeated wall time, which would rotate a ``30 1 * * *`` key twice in one night. Here a time
      of day fires once, at its first occurrence (the earlier instant, ``fold=0``); the repeat is
      dropped. Expressions that run every hour keep both instants, because they are an hour apart
      in real time and the user asked for hourly. (The repeated hour is 01:00-01:59 in
      America/New_York and 02:00-02:59 in Europe/Berlin.)

    The set of fire times is a property of the expression and zone alone, so the next fire time
    does not depend on where the search starts; tests check this across the transitions.

    Expressions that can never fire (``0 0 30 2 *``) and croniter's random ``R`` fields (which
    would give a different time on every call) raise :class:`~openai_operator.errors.SpecError`
    for ``spec.rotation.schedule``.

Operator down for longer than a period
    :func:`next_rotation_at` returns the *missed* due time, which is then ``<= now``: the key is
    due now, and it is due **once**. No backlog is replayed: after the rotation, ``last_rotated_at``
    is the rotation time, and the next due time is one period (``every``) or the next fire time
    (``schedule``) after it; fire times missed while the operator was down are skipped.

``last_rotated_at`` in the future
    (clock skew between replicas, a hand-edited status) is taken as ``now``, so a rotation is never
    pushed further out than one period from the present.

Gaps between rotations (for policy)
    :func:`rotation_gaps` gives the shortest and the longest real-time gap between two consecutive
    rotations: ``every`` itself, or for a schedule the gaps between consecutive fire times (with
    the DST handling above) over :data:`GAP_HORIZON` from :data:`GAP_REFERENCE`. The horizon is a
    whole leap-year cycle, so ``0 0 29 2 *`` has a longest gap of four years. The reference is
    fixed, so the answer depends on the rotation alone (and the tz database's rules for those
    years). :func:`validate_rotation` refuses a grace period that is not shorter than the
    shortest gap, which would leave two superseded credentials alive at once.

Jitter
    Callers spread due times with ``jittered(due, key=..., spread=default_spread(rotation))`` and
    compare the result with ``now``. The offset is a hash of ``key`` (e.g.
    ``namespace/name/revision``), so it is the same after a restart and differs between keys.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from functools import lru_cache
from itertools import pairwise
from zoneinfo import ZoneInfo

from croniter import CroniterBadDateError, CroniterError, croniter

from openai_operator.errors import SpecError
from openai_operator.model.durations import format_duration
from openai_operator.model.specs import Rotation

__all__ = [
    "BACKOFF_BASE",
    "BACKOFF_CAP",
    "GAP_HORIZON",
    "GAP_REFERENCE",
    "JITTER_CAP",
    "JITTER_FRACTION",
    "PERIOD_HORIZON",
    "PERIOD_MAX_FIRES",
    "RotationGaps",
    "default_spread",
    "failure_backoff",
    "jittered",
    "next_rotation_at",
    "revoke_at",
    "rotation_due",
    "rotation_gaps",
    "rotation_period",
    "validate_rotation",
]

BACKOFF_BASE = timedelta(seconds=2)
BACKOFF_CAP = timedelta(minutes=10)

JITTER_FRACTION = 0.05
"""Default jitter spread as a fraction of the (shortest) rotation period."""
JITTER_CAP = timedelta(minutes=5)
"""Default jitter spread never exceeds this."""
PERIOD_HORIZON = timedelta(days=400)
"""How far ahead :func:`rotation_period` looks at a cron schedule's fire times."""
PERIOD_MAX_FIRES = 1000
"""At most this many fire times are sampled by :func:`rotation_period` (bounds the cost)."""

GAP_REFERENCE = datetime(2026, 1, 1, tzinfo=UTC)
"""Where :func:`rotation_gaps` starts looking at a schedule (fixed, so the answer is reproducible)."""
GAP_HORIZON = timedelta(days=4 * 365 + 1)
"""How far :func:`rotation_gaps` looks: one leap-year cycle, plus the gap that crosses its end."""

_SCHEDULE_FIELD = "spec.rotation.schedule"
_GRACE_FIELD = "spec.rotation.gracePeriod"
_MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_DST_MARGIN = timedelta(hours=1)
"""An offset change this close to a day makes it "affected": its fires are taken from croniter one by one."""
_HOUR = 1
_RANDOM_FIELD = re.compile(r"^r(\(\d+-\d+\))?(/\d+)?$")
_SPREAD_REFERENCE = datetime(2001, 1, 1)
"""Naive on purpose: :func:`default_spread` measures wall-clock gaps, the same in every zone."""
_SPREAD_SAMPLES = 64


def failure_backoff(
    failed_attempts: int, *, base: timedelta = BACKOFF_BASE, cap: timedelta = BACKOFF_CAP, jitter: float | None = None
) -> timedelta:
    """Delay before retrying after ``failed_attempts`` consecutive failures (>= 1).

    ``base * 2**(n-1)``, capped, then scaled into [50%, 100%] by ``jitter`` (a number in [0, 1);
    random when omitted) so that keys failing together do not retry together.
    """
    exponent = min(max(failed_attempts, 1) - 1, 30)
    delay = min(base * (2**exponent), cap)
    fraction = random.random() if jitter is None else jitter
    scaled: timedelta = delay * (0.5 + 0.5 * fraction)
    return scaled


# --- rotation -----------------------------------------------------------------------------------


def next_rotation_at(rotation: Rotation, *, last_rotated_at: datetime, now: datetime) -> datetime:
    """When the credential issued at ``last_rotated_at`` is due for rotation (UTC, unjittered).

    ``every``: ``last_rotated_at + every``. ``schedule``: the first fire time strictly after
    ``last_rotated_at`` (see the module docstring for time zones and DST). A result ``<= now``
    means "due now" (once, however many periods were missed). A ``last_rotated_at`` later than
    ``now`` is treated as ``now``.
    """
    last = min(_utc(last_rotated_at, "last_rotated_at"), _utc(now, "now"))
    if rotation.every is not None:
        return last + rotation.every
    return next(_fires_after(_schedule(rotation), _zone(rotation), last))


def rotation_due(rotation: Rotation, *, last_rotated_at: datetime, now: datetime) -> bool:
    """Whether the rotation is due at ``now``; exactly at the due time counts as due (no jitter)."""
    return next_rotation_at(rotation, last_rotated_at=last_rotated_at, now=now) <= _utc(now, "now")


def jittered(due: datetime, *, key: str, spread: timedelta) -> datetime:
    """``due`` moved later by a deterministic offset in ``[0, spread)`` derived from ``key``.

    The offset is a BLAKE2b hash of ``key`` scaled into the spread (microsecond resolution), so
    the same key always gets the same offset (restarts do not move it) and different keys are
    spread evenly. Including the revision in ``key`` gives each rotation its own offset. A zero
    spread returns ``due`` unchanged (in UTC); a negative spread is an error.
    """
    if spread < timedelta(0):
        raise ValueError("spread must not be negative")
    digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
    fraction = int.from_bytes(digest, "big") / 2**64
    offset = timedelta(microseconds=int(fraction * (spread // timedelta(microseconds=1))))
    return _utc(due, "due") + offset


def default_spread(rotation: Rotation) -> timedelta:
    """The jitter spread for a rotation: ``min(5% of the shortest period, 5 minutes)``.

    ``every``: 5% of ``every``. ``schedule``: 5% of the shortest gap between consecutive fire times,
    measured on the wall clock over a fixed sample (64 fires from 2001-01-01), so it does not
    depend on when it is asked and is the same for every zone. Staying below the shortest gap
    means a jittered rotation never runs into the next fire time.
    """
    period = rotation.every if rotation.every is not None else _shortest_wall_gap(_schedule(rotation))
    spread: timedelta = min(period * JITTER_FRACTION, JITTER_CAP)
    return spread


def rotation_period(rotation: Rotation, *, at: datetime) -> timedelta:
    """The longest time a credential issued at ``at`` may have to serve: the base of its backstop.

    ``every``: ``every``. ``schedule``: the longest real-time gap (DST included) among the time
    from ``at`` to the first fire and the gaps between consecutive fires after it, sampled until
    a fire beyond ``at + 400 days`` is seen or 1000 fires were taken, whichever comes first. The
    gap that crosses the horizon is included, so a yearly schedule gets its full year and a
    schedule whose next fire is years away (``0 0 29 2 *``) gets that whole wait. Schedules
    firing more than 1000 times in 400 days are sampled for less than the horizon; their gaps are
    short and regular, but a DST change outside the sample can lengthen one by the zone's DST
    shift (usually 1 hour), which the backstop's margin must cover.
    The caller adds the grace period, the jitter spread and a safety margin.
    """
    start = _utc(at, "at")
    if rotation.every is not None:
        return rotation.every
    horizon = start + PERIOD_HORIZON
    longest = timedelta(0)
    previous = start
    for taken, fire in enumerate(_fires_after(_schedule(rotation), _zone(rotation), start), start=1):
        longest = max(longest, fire - previous)
        previous = fire
        if fire > horizon or taken >= PERIOD_MAX_FIRES:
            break
    return longest


@dataclass(frozen=True)
class RotationGaps:
    """The shortest and the longest real time between two consecutive rotations."""

    shortest: timedelta
    longest: timedelta


def rotation_gaps(
    rotation: Rotation, *, start: datetime = GAP_REFERENCE, horizon: timedelta = GAP_HORIZON
) -> RotationGaps:
    """The shortest and the longest gap between consecutive rotations, in real (UTC) time.

    ``every``: ``every`` both. ``schedule``: over the fire times (module docstring: DST, repeated
    wall times dropped) on the days from ``start``'s (in the schedule's zone) for ``horizon``, up to
    the first fire after that, so every gap of a schedule that repeats within a leap-year cycle is
    seen with the defaults. A schedule that never fires or uses random fields raises
    :class:`SpecError`.
    """
    if rotation.every is not None:
        return RotationGaps(rotation.every, rotation.every)
    return _schedule_gaps(_schedule(rotation), rotation.time_zone, _utc(start, "start"), horizon)


def validate_rotation(rotation: Rotation) -> RotationGaps:
    """:func:`rotation_gaps`, after checking that the grace period is shorter than the shortest gap.

    A superseded credential lives for the grace period after its successor is delivered; if the
    next rotation can come sooner, two superseded credentials are alive at once. Raises
    :class:`SpecError` for ``spec.rotation.gracePeriod`` (or ``spec.rotation.schedule``).
    """
    gaps = rotation_gaps(rotation)
    if rotation.grace_period >= gaps.shortest:
        what = "every" if rotation.every is not None else "the shortest gap between two scheduled rotations"
        raise SpecError(
            _GRACE_FIELD,
            f"must be shorter than {what} ({format_duration(gaps.shortest)}); "
            f"it is {format_duration(rotation.grace_period)}",
        )
    return gaps


def revoke_at(now: datetime, grace: timedelta) -> datetime:
    """When a superseded credential is revoked: ``now + grace`` (UTC)."""
    return _utc(now, "now") + grace


# --- helpers ------------------------------------------------------------------------------------


def _utc(value: datetime, name: str) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")
    return value.astimezone(UTC)


def _schedule(rotation: Rotation) -> str:
    if rotation.schedule is None:
        raise ValueError("rotation has neither every nor schedule")
    return rotation.schedule


def _zone(rotation: Rotation) -> tzinfo:
    return UTC if rotation.time_zone is None else ZoneInfo(rotation.time_zone)


def _cron(schedule: str, start: datetime) -> croniter[datetime]:
    """A croniter for a deterministic expression; anything croniter cannot use is a SpecError."""
    fields = schedule.lower().split()
    if any(_RANDOM_FIELD.fullmatch(part) for field in fields for part in field.split(",")):
        raise SpecError(_SCHEDULE_FIELD, f"{schedule!r}: random fields (R) are not supported")
    try:
        return croniter(schedule, start, ret_type=datetime)
    except CroniterError as exc:
        raise SpecError(_SCHEDULE_FIELD, f"{schedule!r} is not a valid cron expression: {exc}") from exc


def _next_fire(cron: croniter[datetime], schedule: str) -> datetime:
    try:
        return cron.get_next(datetime)
    except CroniterBadDateError as exc:
        raise SpecError(_SCHEDULE_FIELD, f"{schedule!r} never fires") from exc


def _is_repeat(local: datetime) -> bool:
    """Whether ``local`` is the second of two instants sharing a wall-clock time (fall back)."""
    first = local.replace(fold=0)
    second = local.replace(fold=1)
    return first.utcoffset() != second.utcoffset() and local.astimezone(UTC) > first.astimezone(UTC)


def _fires_after(schedule: str, zone: tzinfo, start: datetime) -> Iterator[datetime]:
    """Fire times (UTC) strictly after ``start``, in order; repeated times of day dropped (fall back)."""
    cron = _cron(schedule, start.astimezone(zone))
    every_hour = cron.expanded[_HOUR] == ["*"]
    while True:
        local = _next_fire(cron, schedule).astimezone(zone)
        if every_hour or not _is_repeat(local):
            yield local.astimezone(UTC)


@lru_cache(maxsize=256)
def _shortest_wall_gap(schedule: str) -> timedelta:
    """Shortest wall-clock gap between consecutive fires over a fixed, naive (zone-free) sample."""
    cron = _cron(schedule, _SPREAD_REFERENCE)
    fires = [_next_fire(cron, schedule) for _ in range(_SPREAD_SAMPLES)]
    return min(later - earlier for earlier, later in pairwise(fires))


# --- gaps of a schedule -------------------------------------------------------------------------
#
# Walking every fire time of four years is too slow for schedules that fire every minute, so the
# walk goes by day: a schedule fires at the same wall-clock times on every day it matches. On a day
# with no UTC-offset change near it, those times exist once each and the gaps between them are the
# wall-clock gaps; only the gap from one matching day to the next needs real instants. Days with
# an offset change near them ("affected") take their fire times from ``_fires_after`` one by one,
# so DST handling is exactly the one rotations use.


def _fields(schedule: str) -> list[str]:
    text = schedule.strip().lower()
    return _MACROS.get(text, text).split()


def _times_of_day(cron: croniter[datetime]) -> list[int]:
    """The minutes after midnight at which the schedule fires on a day it matches, ascending."""
    minutes = range(60) if cron.expanded[0] == ["*"] else [int(m) for m in cron.expanded[0]]
    hours = range(24) if cron.expanded[_HOUR] == ["*"] else [int(h) for h in cron.expanded[_HOUR]]
    return sorted(h * 60 + m for h in hours for m in minutes)


def _matching_days(schedule: str, first: date, last: date) -> list[date]:
    """Days from ``first`` to ``last`` the schedule fires on, plus the first such day after ``last``."""
    day_expression = " ".join(["0", "0", *_fields(schedule)[2:]])
    cron = _cron(day_expression, datetime.combine(first - timedelta(days=1), time()))
    days: list[date] = []
    while not days or days[-1] <= last:
        days.append(_next_fire(cron, schedule).date())
    return days


def _instant(day: date, minute: int, zone: tzinfo) -> datetime:
    return datetime.combine(day, time(minute // 60, minute % 60), tzinfo=zone).astimezone(UTC)


def _affected(day: date, zone: tzinfo) -> bool:
    """Whether the zone's UTC offset changes on ``day`` or within ``_DST_MARGIN`` of it."""
    before = _instant(day, 0, zone) - _DST_MARGIN
    after = _instant(day + timedelta(days=1), 0, zone) + _DST_MARGIN
    return before.astimezone(zone).utcoffset() != after.astimezone(zone).utcoffset()


@lru_cache(maxsize=256)
def _schedule_gaps(schedule: str, time_zone: str | None, start: datetime, horizon: timedelta) -> RotationGaps:
    zone: tzinfo = UTC if time_zone is None else ZoneInfo(time_zone)
    local = start.astimezone(zone)
    times = _times_of_day(_cron(schedule, local))
    days = _matching_days(schedule, local.date(), (local + horizon).date())
    wall = [timedelta(minutes=b - a) for a, b in pairwise(times)]
    gaps: list[timedelta] = [min(wall), max(wall)] if wall else []
    previous: datetime | None = None
    index = 0
    while index < len(days):
        day = days[index]
        if not _affected(day, zone):
            first = _instant(day, times[0], zone)
            if previous is not None:
                gaps.append(first - previous)
            previous = _instant(day, times[-1], zone)
            index += 1
            continue
        end_index = index
        while end_index < len(days) and _affected(days[end_index], zone):
            end_index += 1
        if end_index < len(days):
            end = _instant(days[end_index], times[0], zone)
        else:
            end = _instant(days[-1] + timedelta(days=1), 0, zone) + _DST_MARGIN
        begin = previous if previous is not None else _instant(day, 0, zone) - _DST_MARGIN
        for fire in _fires_after(schedule, zone, begin):
            if previous is not None and fire > previous:
                gaps.append(fire - previous)
            if fire >= end:
                break
            previous = fire
        index = end_index
    if not gaps:
        raise SpecError(_SCHEDULE_FIELD, f"{schedule!r} fires too rarely to measure its gaps")
    return RotationGaps(min(gaps), max(gaps))
