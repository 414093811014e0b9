"""The unit every method sees: one LaMP question with its user's profile and (where known) its gold output."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Sequence


@dataclass(frozen=True)
class Example:
    id: str                       # question id, unique within a split
    user_id: str                  # "" where the files carry none (user-based LaMP-7 dumps)
    input: str                    # the official LaMP input string, verbatim
    profile: tuple[dict[str, Any], ...] = field(default_factory=tuple)  # oldest first, as in the file
    gold: str | None = None       # None for predict-only splits (LaMP test)

    @property
    def user_key(self) -> str:
        """The user identity for per-user methods: user_id, else the question id (user-based splits)."""
        return self.user_id or f"q:{self.id}"


def item_id(item: dict[str, Any]) -> str:
    """A profile item's identity: its ``id``, else its canonical JSON."""
    return str(item["id"]) if "id" in item else json.dumps(item, sort_keys=True, default=str)


def leak_free_history(examples: Sequence[Example]) -> list[dict[str, Any]]:
    """The history a per-user method may train on when these questions of one user are evaluated: the profile
    items present in *every* question's profile (by item id), in the order of the shortest profile.

    With several evaluated questions per user (LaMP-6: 10 dev questions each), a later question's profile holds
    the earlier questions' gold outputs; training on it would leak them. In a time-based split the profiles are
    prefixes of one timeline, so this is the earliest question's profile; the intersection also holds for any
    order."""
    if not examples:
        return []
    profiles = sorted((ex.profile for ex in examples), key=len)
    common = set.intersection(*({item_id(it) for it in p} for p in profiles))
    return [it for it in profiles[0] if item_id(it) in common]
