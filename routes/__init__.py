"""Route tables, selection expressions and integrations."""
