"""Pages in the browser's language or the one chosen; the schema exists only through migrations."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from challenges.calls.catalogue import include_name
from challenges.extensions import db


def test_browser_language_is_the_default(app, client):
    html = client.get("/login", headers={"Accept-Language": "sv-SE,sv;q=0.9,en;q=0.5"}).get_data(as_text=True)
    assert '<html lang="sv">' in html and "Logga in" in html
    assert "Lösenord" in html  # a form's label: translated when the page is rendered


def test_language_can_be_switched(app, browser):
    assert '<html lang="en">' in browser.get("/").get_data(as_text=True)
    assert "Password" in browser.get("/login").get_data(as_text=True)
    browser.client.post("/language", data={"language": "sv", "next": "/login"})  # a visitor needs no token
    html = browser.get("/login").get_data(as_text=True)
    assert '<html lang="sv">' in html and "Lösenord" in html and ">Password<" not in html


def test_every_message_has_a_swedish_translation():
    from babel.messages.extract import DEFAULT_KEYWORDS, extract_from_dir
    from babel.messages.pofile import read_po

    from challenges.config import PROJECT_ROOT

    with open(PROJECT_ROOT / "challenges/translations/sv/LC_MESSAGES/messages.po", "rb") as fh:
        catalog = read_po(fh)
    missing = [
        m.id for m in catalog if m.id and not (all(m.string) if isinstance(m.string, tuple) else m.string)
    ]
    assert missing == []  # a plural has a text for each form
    # Every text the code and the templates mark, found the way pybabel extract finds them.
    method_map = [
        ("challenges/**.py", "python"),
        ("templates/**.html", "jinja2"),
        ("templates/**.txt", "jinja2"),
    ]
    keywords = {**DEFAULT_KEYWORDS, "_l": None, "lazy_gettext": None, "lazy_ngettext": (1, 2)}
    marked = {
        message for *_, message, _, _ in extract_from_dir(str(PROJECT_ROOT), method_map, keywords=keywords)
    }

    def translated(found) -> bool:
        return found is not None and (
            all(found.string) if isinstance(found.string, tuple) else bool(found.string)
        )

    untranslated = sorted(str(m) for m in marked if not translated(catalog.get(m)))
    assert untranslated == []


def test_models_and_migrations_agree(app, ctx):
    with db.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"include_name": include_name})
        diff = compare_metadata(context, db.metadata)
    assert diff == []


def test_no_text_is_marked_inside_an_f_string():
    """Before Python 3.12 the message extractor does not look inside f-strings, so a text marked there
    is never translated: mark the whole text, with its values as variables."""
    import ast

    from challenges.config import PROJECT_ROOT

    marked_in_fstring = []
    for path in (PROJECT_ROOT / "challenges").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.JoinedStr):
                marked_in_fstring += [
                    f"{path.name}:{call.lineno}"
                    for call in ast.walk(node)
                    if isinstance(call, ast.Call)
                    and isinstance(call.func, ast.Name)
                    and call.func.id in {"_", "_l", "gettext", "lazy_gettext", "ngettext"}
                ]
    assert marked_in_fstring == []
