"""Mapping templates (VTL), parameter mapping and integration responses (reference §7)."""
