"""Programmes and their yearly budgets; awards, payments and the programme ledger."""
