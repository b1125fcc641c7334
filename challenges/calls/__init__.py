"""Challenges: their lifecycle, the catalogue and its search, questions and answers, follows and topics."""
