"""Test and demo code, apart from the product: nothing in orchestration/, resources/, cli/ or sql/ imports it.

- laravel/: the fixture factory (payloads, failed jobs, queued jobs as Laravel writes them);
- zuora_server/: the local Zuora-compatible server (`python -m sandbox.zuora_server`);
- demo/: the demo fleet, its Zuora tenants and first materializations (`python -m sandbox.demo`).

tests/unit/test_layering.py keeps it that way.
"""
