pytest_plugins = ["tests.redis_fixture", "tests.redis_cluster_fixture", "tests.backends"]
