"""Throttling, API keys and usage plans (issue #5): pure arithmetic here, adapters in the stages."""
