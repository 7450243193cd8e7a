"""Loading and validating gateway definitions (native YAML and serverless.yml)."""
