"""The demo (`make demo`): a fleet on this machine, its Zuora customers and first materializations."""
