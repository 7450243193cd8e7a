import portway_missing_dependency_xyz  # noqa: F401
