"""What one edit asks for: a fact to rewrite, and the prompts that check it."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class Neighbour:
    """A prompt about something else that the edit must leave alone, and its expected answer."""

    prompt: str
    target: str


@dataclasses.dataclass(frozen=True)
class EditRequest:
    """One fact to rewrite: ``prompt.format(subject)`` should be completed by ``target_new``.

    ``prompt`` holds exactly one ``{}`` where the subject goes (CounterFact's convention).
    Targets are stored without a leading space; scoring adds the separator.
    """

    case_id: str
    prompt: str
    subject: str
    target_new: str
    target_true: str
    paraphrase_prompts: tuple[str, ...] = ()
    neighbourhood: tuple[Neighbour, ...] = ()
    relation: str = ""

    def __post_init__(self) -> None:
        if self.prompt.count("{}") != 1:
            raise ValueError(
                f"edit {self.case_id!r}: prompt {self.prompt!r} must contain exactly one '{{}}' "
                "where the subject goes"
            )
        if not self.subject or not self.target_new:
            raise ValueError(f"edit {self.case_id!r}: subject and target_new must be non-empty")

    @property
    def text(self) -> str:
        """The rewrite prompt with the subject filled in."""
        return self.prompt.format(self.subject)
