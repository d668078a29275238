"""A local Zuora-compatible Workflow API over real HTTP, with fault switches: for tests, benchmarks and the demo."""
