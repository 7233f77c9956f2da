"""The board's words in headless Chromium: real plurals (``Intl.PluralRules``) and times ago
(``Intl.RelativeTimeFormat``), Danish first, from the module the pages themselves load."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from playwright.sync_api import Page

from tests.support.board import ApiProcess

SCRIPT = """async () => {
  const i18n = await import("/js/i18n.js");
  const now = Date.parse("2026-12-06T03:00:00Z");
  const ago = (s) => i18n.formatAgo(new Date(now - s * 1000).toISOString(), now);
  const words = () => ({
    count: [1, 2, 1200].map((n) => i18n.t("status.count", { n })),
    offline: [1, 3].map((n) => i18n.t("health.offline", { n, site: "Egely", rooms: "Lejl. 3" })),
    battery: [1, 2].map((n) => i18n.t("health.lowbattery", { n, site: "Egely", rooms: "x" })),
    ago: [5, 1, 45, 60, 180, 89 * 60, 3 * 3600, 3 * 86400].map(ago),
    never: i18n.formatAgo(null),
  });
  const da = words();
  i18n.setLanguage("en");
  const en = words();
  i18n.setLanguage("da");
  return { da, en, lang: document.documentElement.lang };
}"""


def test_board_counts_with_plural_rules_and_says_how_long_ago_in_danish_first(
        api_process: Callable[..., ApiProcess], open_page: Callable[..., Page]) -> None:
    server = api_process()
    page = open_page()
    page.goto(f"{server.url}/login.html")
    words: dict[str, Any] = page.evaluate(SCRIPT)
    da, en = words["da"], words["en"]
    assert da["count"] == ["1 gang", "2 gange", "1.200 gange"]
    assert da["offline"] == ["1 sensor offline eller tavs på Egely: Lejl. 3",
                             "3 sensorer offline eller tavse på Egely: Lejl. 3"]
    assert da["battery"] == ["1 sensor med lavt batteri på Egely: x",
                             "2 sensorer med lavt batteri på Egely: x"]
    assert da["ago"] == ["lige nu", "lige nu", "for 45 sekunder siden", "for 1 minut siden",
                         "for 3 minutter siden", "for 89 minutter siden", "for 3 timer siden",
                         "for 3 dage siden"]
    assert da["never"] == "aldrig"
    assert en["count"] == ["1 time", "2 times", "1,200 times"]
    assert en["offline"][0].startswith("1 sensor offline") and \
        en["offline"][1].startswith("3 sensors offline")
    assert en["ago"] == ["just now", "just now", "45 seconds ago", "1 minute ago",
                         "3 minutes ago", "89 minutes ago", "3 hours ago", "3 days ago"]
    assert words["lang"] == "da"
    assert "(er)" not in " ".join(da["offline"] + da["battery"])
