"""Matching: mentor directory, preferences, the matching engine, proposals and the mentoring term."""
