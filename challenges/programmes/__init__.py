"""Programmes and their years: what challenges are published under and the ledger books against."""
