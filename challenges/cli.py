"""``flask`` commands: demo data, the event sweeper and table, a first programme manager, the ledger's checks."""

from __future__ import annotations

import click
from flask import Flask

from challenges.core.transaction import commit
from challenges.extensions import db
from challenges.funding import checks


def init_app(app: Flask) -> None:
    @app.cli.command("seed-demo")
    def seed_demo() -> None:
        """Load the demo programme, companies and people (once) and print their logins."""
        from challenges.demo import DEMO_PASSWORD, demo_logins, load_demo

        created = load_demo()
        commit()
        click.echo("Demo data loaded:" if created else "Demo data was already loaded:")
        for role, name, email in demo_logins():
            click.echo(f"  {role:<52} {name:<18} {email}")
        click.echo(f"Demo password for every account: {DEMO_PASSWORD}")

    @app.cli.command("sweep-events")
    def sweep_events_command() -> None:
        """Re-enqueue handler jobs still pending after the lease (the scheduler does this too)."""
        from challenges.core.sweeper import sweep_events

        click.echo(f"Re-enqueued {sweep_events()} job(s).")

    @app.cli.command("events")
    def events_command() -> None:
        """Print every event type with the handlers it wakes and their queues (docs/events.md)."""
        from challenges.core.bus import event_table, get_bus

        click.echo(event_table(get_bus()), nl=False)

    @app.cli.command("create-manager")
    @click.option("--email", required=True)
    @click.option("--name", required=True)
    @click.password_option()
    def create_manager(email: str, name: str, password: str) -> None:
        """Create the first programme manager of a fresh installation."""
        from challenges.accounts import services
        from challenges.accounts.models import Role, UserRole

        user = services.register_user(name=name, email=email, password=password, language="sv")
        user.roles.append(UserRole(role=Role.programme_manager))
        commit()
        click.echo(f"Programme manager {email} created.")

    ledger_group = click.Group("ledger", help="Check the programme ledger.")
    app.cli.add_command(ledger_group)

    @ledger_group.command("verify")
    def ledger_verify() -> None:
        """Recompute every balance from the transfers and check every invariant (exit 1 on a problem)."""

        problems = checks.verify()
        for problem in problems:
            click.echo(f"PROBLEM {problem}")
        click.echo(f"{len(problems)} problem(s) found." if problems else "The ledger is consistent.")
        if problems:
            raise SystemExit(1)

    @ledger_group.command("rebuild")
    def ledger_rebuild() -> None:
        """Replay the event log into an empty ledger and compare every balance (exit 1 on a difference)."""

        rebuilt, differences = checks.rebuild()
        for difference in differences:
            click.echo(f"DIFFERENCE {difference}")
        db.session.rollback()
        click.echo(
            f"{len(rebuilt)} account(s) rebuilt; "
            + (
                f"{len(differences)} differ from the live ledger."
                if differences
                else "every balance matches to the öre."
            )
        )
        if differences:
            raise SystemExit(1)
