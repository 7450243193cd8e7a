"""Integrations: the backends a route reaches (Python handlers, HTTP, MOCK, AWS)."""
