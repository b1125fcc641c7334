"""Who is told what: rendering messages and delivering them by SMTP or to the local outbox."""
