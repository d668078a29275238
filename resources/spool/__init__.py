"""The action spool: operators' intents against a project's queue storage, and their execution."""
