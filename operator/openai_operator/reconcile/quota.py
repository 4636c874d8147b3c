"""``keyPolicy.maxKeys`` held when many keys arrive at once.

The key index (built from watch events) lags the status writes, so counting only the index lets
keys applied together all see a free slot. The ledger adds the keys this operator admitted a moment
ago: claiming counts and records in one synchronous step, which nothing on the event loop can
interleave. Only the active replica issues keys, and after a restart the index (rebuilt from the
keys' status, where an issue in flight is recorded in ``status.pending``) covers what the ledger forgot.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable

__all__ = ["QuotaLedger"]

KeyName = tuple[str, str]


class QuotaLedger:
    """Per OpenAI project: the keys admitted to hold a credential by this process."""

    def __init__(self) -> None:
        self._admitted: defaultdict[str, set[KeyName]] = defaultdict(set)

    def others_holding(self, project: str, key: KeyName, holders: Iterable[KeyName], limit: int | None) -> int:
        """How many other keys hold a slot; claims one for ``key`` when the limit leaves room.

        Without a limit nothing is counted (0): the key is only recorded as admitted.
        """
        if limit is None:
            self._admitted[project].add(key)
            return 0
        taken = (set(holders) | self._admitted[project]) - {key}
        if len(taken) < limit:
            self._admitted[project].add(key)
        return len(taken)

    def release(self, project: str, key: KeyName) -> None:
        """``key`` holds nothing any more (deleted, refused, or never issued)."""
        self._admitted[project].discard(key)
