"""Surveys: the scheme's baseline and six-month questionnaires, anonymous, and their reports."""
