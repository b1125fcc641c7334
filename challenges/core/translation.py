"""Translations that say when they fall short: a text missing from a catalogue is shown in English
(never blank) and logged once per process, with the language it is missing from."""

from __future__ import annotations

import gettext
import logging
from typing import Any

from flask import Flask
from flask_babel import Babel, Domain, get_locale
from flask_babel.speaklater import LazyString
from jinja2 import pass_context
from jinja2.runtime import Context

log = logging.getLogger(__name__)


class MissingTranslationLog(gettext.NullTranslations):
    """The last fallback of a catalogue: returns the English text and logs that it was missing."""

    def __init__(self, language: str) -> None:
        super().__init__()
        self.language = language
        self.logged: set[str] = set()

    def _missing(self, message: str) -> str:
        if message and message not in self.logged:
            self.logged.add(message)
            log.warning("no %s translation for %r: showing the English text", self.language, message)
        return message

    def gettext(self, message: str) -> str:
        return self._missing(message)

    def ngettext(self, msgid1: str, msgid2: str, n: int) -> str:
        return self._missing(msgid1 if n == 1 else msgid2)

    def pgettext(self, context: str, message: str) -> str:
        return self._missing(message)

    def npgettext(self, context: str, msgid1: str, msgid2: str, n: int) -> str:
        return self._missing(msgid1 if n == 1 else msgid2)


class LoggingDomain(Domain):
    """Flask-Babel's domain, with :class:`MissingTranslationLog` behind every language but English, and
    each language's catalogue found once: a page asks for a hundred texts, and Flask-Babel looks the
    catalogue up afresh for each (the application's LANGUAGES are bare language codes)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self._by_language: dict[str | None, Any] = {}

    def get_translations(self):
        locale = get_locale()
        language = locale.language if locale is not None else None
        translations = self._by_language.get(language)
        if translations is None:
            translations = super().get_translations()
            if language not in (None, "en") and hasattr(translations, "add_fallback"):
                translations.add_fallback(MissingTranslationLog(language))
            self._by_language[language] = translations
        return translations


# One per process, as the application is: its catalogues are found once per language and kept.
DOMAIN = LoggingDomain(domain="messages")
PAGE_TRANSLATIONS = "_page_translations"


def _gettext(string: str, **variables: Any) -> str:
    translated = DOMAIN.get_translations().ugettext(string)
    return translated % variables if variables else translated


def lazy_gettext(string: str, **variables: Any) -> LazyString:
    """Flask-Babel's ``lazy_gettext``, translated in this application's domain without asking
    Flask-Babel's context which domain that is (labels, choices and messages: dozens a page)."""
    return LazyString(_gettext, string, **variables)


def install(app: Flask, babel: Babel) -> None:
    """Use :class:`LoggingDomain` for the application's messages, in code and in templates.

    A template rendered by the application is given its catalogue once, when it is rendered, and
    its texts are looked up there: finding the catalogue through Flask-Babel's context costs
    several context lookups for each of the page's texts. A macro imported without the page's
    context finds the catalogue as code does; one with many texts is imported ``with context``
    (the proposal's body, for one)."""
    domain = babel.domain_instance = DOMAIN

    def translations(context: Context):
        found = context.get(PAGE_TRANSLATIONS)
        return found if found is not None else domain.get_translations()

    app.context_processor(lambda: {PAGE_TRANSLATIONS: domain.get_translations()})
    app.jinja_env.install_gettext_callables(  # type: ignore[attr-defined]  # by the i18n extension
        gettext=pass_context(lambda c, s: translations(c).ugettext(s)),
        ngettext=pass_context(lambda c, s, p, n: translations(c).ungettext(s, p, n)),
        pgettext=pass_context(lambda c, ctx, s: translations(c).upgettext(ctx, s)),
        npgettext=pass_context(lambda c, ctx, s, p, n: translations(c).unpgettext(ctx, s, p, n)),
        newstyle=True,
    )
