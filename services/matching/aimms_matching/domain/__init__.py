"""Matching's rules, free of I/O: who may be matched (rules), the engine that proposes pairs, and a pair's life."""
