"""The qualitative effects: the anonymous end-of-shift questionnaire and the coordinator's
per-flat resident-outcome notes.

An answer to the questionnaire is stored with its site and night only: never a user, a
board or a time of day, so it cannot be joined back to a login or an audit row (and the
caller must not audit it with an id). A resident-outcome note names a room id, never a
person.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import psycopg

__all__ = ["QUESTIONS", "OutcomeNote", "ShiftAnswer", "add_outcome_note", "add_shift_answer",
           "outcome_notes", "shift_answers"]

# The Likert questions (1-5), in the order the board asks them; the columns of shift_answers.
QUESTIONS = ("calm", "workload", "trust", "residents_rest")


@dataclass(frozen=True, slots=True)
class ShiftAnswer:
    night: date
    scores: dict[str, int | None]
    comment: str | None


@dataclass(frozen=True, slots=True)
class OutcomeNote:
    room: str
    noted_on: date
    self_reliance: int
    quality_of_life: int


def add_shift_answer(conn: psycopg.Connection, site: str, night: date,
                     scores: dict[str, int | None], comment: str | None) -> None:
    conn.execute(
        f"INSERT INTO shift_answers (site, night, {', '.join(QUESTIONS)}, comment) "
        f"VALUES (%s, %s, {', '.join(['%s'] * len(QUESTIONS))}, %s)",
        (site, night, *[scores.get(q) for q in QUESTIONS], comment))


def shift_answers(conn: psycopg.Connection, site: str, first: date,
                  last: date) -> list[ShiftAnswer]:
    """Answers of the nights ``first``..``last`` (inclusive), by night and comment, never
    in the order they were given (that order could tell who answered)."""
    rows = conn.execute(
        f"SELECT night, {', '.join(QUESTIONS)}, comment FROM shift_answers "
        "WHERE site = %s AND night BETWEEN %s AND %s ORDER BY night, comment",
        (site, first, last)).fetchall()
    return [ShiftAnswer(row[0], dict(zip(QUESTIONS, row[1:-1], strict=True)), row[-1])
            for row in rows]


def add_outcome_note(conn: psycopg.Connection, site: str, room: str, noted_on: date,
                     self_reliance: int, quality_of_life: int, actor: str) -> None:
    conn.execute(
        "INSERT INTO resident_outcomes (site, room, noted_on, self_reliance, "
        "quality_of_life, recorded_by) VALUES (%s, %s, %s, %s, %s, %s)",
        (site, room, noted_on, self_reliance, quality_of_life, actor))


def outcome_notes(conn: psycopg.Connection, site: str, first: date,
                  last: date) -> list[OutcomeNote]:
    rows = conn.execute(
        "SELECT room, noted_on, self_reliance, quality_of_life FROM resident_outcomes "
        "WHERE site = %s AND noted_on BETWEEN %s AND %s ORDER BY room, noted_on, id",
        (site, first, last)).fetchall()
    return [OutcomeNote(*row) for row in rows]
