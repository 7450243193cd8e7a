"""API keys and usage plans: records, the per-node registry, usage reports."""
