"""The unit every method sees: one LaMP question with its user's profile and (where known) its gold output."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


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
