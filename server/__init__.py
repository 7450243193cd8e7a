"""Portway gateway process: app factory, config, REST pipeline, CLI."""
