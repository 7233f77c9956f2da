"""Reading a page as a person does: the visible text, and English left in a Danish page."""

from __future__ import annotations

import re

# Words of the English report and handover that must not be left in the Danish ones.
ENGLISH = ("Night", "Alert", "alerts", "Staff", "hours", "freed", "Summary", "Figure",
           "Value", "Rank", "Site", "Flats", "measured", "assumed", "estimate", "Outcome",
           "Help given", "False alarm", "Not handled", "Handover",
           "Complete", "rest", "Room", "When", "more", "Generated", "Recalculate",
           "Response times", "acknowledge", "None.", "Left the flat", "Out of bed",
           "does not exist", "period", "required", "account",
           "Payback", "Decision", "Economics", "Net effect", "No go", "Reasons", "Devices",
           "Licences", "citizen", "savings", "below the limit", "above the limit", "known")


def visible_text(page: str) -> str:
    """What a person reads: no markup, style, the figures' JSON or the plots' SVG."""
    page = re.sub(r"<(script|style|svg)\b.*?</\1>", " ", page, flags=re.S)
    page = re.sub(r'<input type="hidden"[^>]*>', " ", page)
    page = re.sub(r"<[^>]+>", " ", page)
    return re.sub(r"\s+", " ", page)


def english_left(text: str) -> list[str]:
    return [word for word in ENGLISH if re.search(rf"\b{re.escape(word)}\b", text)]
