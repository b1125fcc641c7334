"""Cross-cutting parts: events and outbox, security, mail transport, errors, health."""
