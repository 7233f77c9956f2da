"""The Jinja2 environment of the report pages (``evaluation/templates/``).

Templates get the page's ``Localizer`` as ``t`` and its ``_``/``ngettext`` (the names the
catalogue's extractor looks for); autoescaping is on, so only ``Markup`` (the inline SVG
plots) passes unescaped. Undefined names raise rather than print as empty.
"""

from __future__ import annotations

from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from core.i18n import Localizer

_ENV = Environment(loader=PackageLoader("evaluation", "templates"),
                   autoescape=select_autoescape(["html"]), undefined=StrictUndefined,
                   trim_blocks=True, lstrip_blocks=True)


def render(template: str, t: Localizer, **context: Any) -> str:
    return _ENV.get_template(template).render(
        t=t, _=t.gettext, ngettext=t.ngettext, lang=t.language, **context)
