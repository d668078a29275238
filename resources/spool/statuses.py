"""A spool action's status, and its source: the one list each, used by the code and the table's CHECK constraints.

pending -> processing -> completed | failed (or pending again, when an attempt failed and
attempts remain). Plain string constants rather than an Enum: the values are bound as
parameters by three database drivers and read back as plain strings.
"""

PENDING = "pending"
PROCESSING = "processing"
COMPLETED = "completed"
FAILED = "failed"
STATUSES = (PENDING, PROCESSING, COMPLETED, FAILED)
SETTLED = (COMPLETED, FAILED)  # an action in one of these is done and never changes again

SOURCES = ("cli", "launchpad", "api", "auto")  # through what an action was asked for


def one_of(column: str, values: tuple[str, ...]) -> str:
    """The CHECK constraint text `column IN ('a', 'b')`, as the migrations wrote it."""
    return f"{column} IN ({', '.join(repr(value) for value in values)})"
