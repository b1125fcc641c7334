"""The reference page for the web benchmark: Flask, SQLAlchemy and Jinja and nothing else, listing
the same number of rows as a catalogue page (20 public challenges with their company, by deadline)
from the same database. ``gunicorn bench._minimal:app`` with DATABASE_URL set."""

from __future__ import annotations

import os

import sqlalchemy as sa
from flask import Flask, render_template_string

ROWS = 20

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Challenges</title></head>
<body><h1>Challenges</h1>
<table>
<tr><th>Challenge</th><th>Company</th><th>Deadline</th></tr>
{% for row in rows %}<tr><td><a href="/challenges/{{ row.id }}">{{ row.title }}</a></td>
<td>{{ row.name }}</td><td>{{ row.deadline.strftime("%Y-%m-%d %H:%M") }}</td></tr>
{% endfor %}</table></body></html>
"""

QUERY = sa.text(
    "SELECT c.id, c.title, c.deadline, o.name FROM challenge c JOIN organisation o ON o.id = c.organisation_id "
    "WHERE c.status = 'published' ORDER BY c.deadline, c.id LIMIT :rows"
)

url = os.environ["DATABASE_URL"].replace("postgresql://", "postgresql+psycopg://", 1)
engine = sa.create_engine(url, pool_pre_ping=True)
app = Flask(__name__)


@app.get("/")
def listing():
    with engine.connect() as connection:
        rows = connection.execute(QUERY, {"rows": ROWS}).all()
    return render_template_string(PAGE, rows=rows)
