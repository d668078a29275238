pytest_plugins = [
    "tests.harness.services",
    "tests.harness.laravel",
    "tests.harness.cli",
    "tests.harness.fleet",
    "tests.harness.dagster_stack",
    "tests.harness.demo_stack",
    "tests.harness.zuora",
    "tests.harness.redis_servers",
    "tests.harness.parallel",
]
