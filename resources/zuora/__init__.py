"""Zuora Workflow API: the client, the shapes of its responses, and the sync into `workflows` and `tasks`."""
