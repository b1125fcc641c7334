"""Translations that say when they fall short: a text missing from a catalogue is shown in English
(never blank) and logged once per process, with the language it is missing from."""

from __future__ import annotations

import gettext
import logging

from flask import Flask
from flask_babel import Babel, Domain, get_locale, get_translations

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
    """Flask-Babel's domain, with :class:`MissingTranslationLog` behind every language but English."""

    def get_translations(self):
        translations = super().get_translations()
        language = getattr(translations, "_challenges_language", None)
        if language is None:
            locale = get_locale()
            language = str(locale) if locale is not None else "en"
            if language != "en" and hasattr(translations, "add_fallback"):
                translations.add_fallback(MissingTranslationLog(language))
            translations._challenges_language = language
        return translations


def install(app: Flask, babel: Babel) -> None:
    """Use :class:`LoggingDomain` for the application's messages, and give templates a quicker way to
    them: a page asks for a hundred texts, and Flask-Babel finds the catalogue afresh for each."""
    babel.domain_instance = LoggingDomain(domain="messages")
    catalogues: dict = {}  # by language (LANGUAGES are bare codes): the catalogue Flask-Babel finds for it

    def current():
        locale = get_locale()
        language = locale.language if locale is not None else None
        found = catalogues.get(language)
        if found is None:
            found = catalogues[language] = get_translations()
        return found

    app.jinja_env.install_gettext_callables(  # type: ignore[attr-defined]  # by the i18n extension
        gettext=lambda s: current().ugettext(s),
        ngettext=lambda s, p, n: current().ungettext(s, p, n),
        pgettext=lambda c, s: current().upgettext(c, s),
        npgettext=lambda c, s, p, n: current().unpgettext(c, s, p, n),
        newstyle=True,
    )
