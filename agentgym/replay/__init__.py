"""Inspect a run: web viewer, terminal views, re-play verification (``agentgym replay``)."""
