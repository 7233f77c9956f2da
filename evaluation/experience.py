"""The qualitative effects of a pilot, aggregated: the anonymous end-of-shift answers of the
staff and the coordinator's resident-outcome notes per flat.

Only counts and means leave this module. The free text of the questionnaire is shown only
when at least ``k`` answers were given in the period (fewer could single out who wrote
it); below that it is withheld and the report says so. No room id of a resident-outcome
note leaves it either: the report shows how many flats, never which.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from statistics import mean

import psycopg

from evaluation.occupancy import DEFAULT_K
from ingest import experience as stored
from ingest.experience import QUESTIONS

__all__ = ["QUESTIONS", "Experience", "experience"]


def _mean(values: list[int]) -> float | None:
    return round(mean(values), 2) if values else None


@dataclass(frozen=True, slots=True)
class Experience:
    answers: int
    k: int
    question_answers: dict[str, int]
    question_means: dict[str, float | None]
    comments: list[str] = field(default_factory=list)
    comments_withheld: int = 0          # comments given but not shown (fewer than k answers)
    outcome_notes: int = 0
    outcome_flats: int = 0
    self_reliance_mean: float | None = None
    quality_of_life_mean: float | None = None
    self_reliance_change: float | None = None   # latest less first note, flats with two+
    quality_of_life_change: float | None = None
    flats_followed: int = 0                     # flats with two notes or more

    def as_dict(self) -> dict[str, object]:
        return {"answers": self.answers, "k": self.k,
                "question_answers": self.question_answers,
                "question_means": self.question_means, "comments": self.comments,
                "comments_withheld": self.comments_withheld,
                "outcome_notes": self.outcome_notes, "outcome_flats": self.outcome_flats,
                "self_reliance_mean": self.self_reliance_mean,
                "quality_of_life_mean": self.quality_of_life_mean,
                "self_reliance_change": self.self_reliance_change,
                "quality_of_life_change": self.quality_of_life_change,
                "flats_followed": self.flats_followed}


def experience(conn: psycopg.Connection, site: str, first: date, last: date,
               notes_from: date | None = None, k: int = DEFAULT_K) -> Experience:
    """The answers of the nights ``first``..``last``, and the outcome notes from
    ``notes_from`` (the baseline's first night, so the notes before the pilot count as
    its starting point; default ``first``) to ``last``."""
    answers = stored.shift_answers(conn, site, first, last)
    scores: dict[str, list[int]] = {q: [] for q in QUESTIONS}
    comments: list[str] = []
    for answer in answers:
        for question, score in answer.scores.items():
            if score is not None:
                scores[question].append(score)
        if answer.comment:
            comments.append(answer.comment)
    shown = sorted(comments) if len(answers) >= k else []
    notes = stored.outcome_notes(conn, site, notes_from or first, last)
    by_flat: dict[str, list[stored.OutcomeNote]] = defaultdict(list)
    for note in notes:
        by_flat[note.room].append(note)
    followed = [n for n in by_flat.values() if len(n) >= 2]  # stored oldest first per room
    return Experience(
        answers=len(answers), k=k,
        question_answers={q: len(v) for q, v in scores.items()},
        question_means={q: _mean(v) for q, v in scores.items()},
        comments=shown, comments_withheld=len(comments) - len(shown),
        outcome_notes=len(notes), outcome_flats=len(by_flat),
        self_reliance_mean=_mean([n.self_reliance for n in notes]),
        quality_of_life_mean=_mean([n.quality_of_life for n in notes]),
        self_reliance_change=None if not followed else round(mean(
            n[-1].self_reliance - n[0].self_reliance for n in followed), 2),
        quality_of_life_change=None if not followed else round(mean(
            n[-1].quality_of_life - n[0].quality_of_life for n in followed), 2),
        flats_followed=len(followed))
