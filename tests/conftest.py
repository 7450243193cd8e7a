pytest_plugins = ["tests.redis_fixture", "tests.backends"]
