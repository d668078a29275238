pytest_plugins = ["tests.harness.services", "tests.harness.laravel", "tests.harness.cli", "tests.harness.fleet",
                  "tests.harness.redis_servers"]
