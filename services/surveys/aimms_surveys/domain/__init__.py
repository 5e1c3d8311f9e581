"""Surveys' rules, free of I/O: questionnaires as data and their answers, invitations, and the evaluation's tables."""
