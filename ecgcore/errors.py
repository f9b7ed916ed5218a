"""The project's one error type: a user-facing problem with a clear message.

The CLI maps every `ProjectError` to exit code 2 and prints only its message
(no traceback); anything else is a bug and keeps its traceback.
"""


class ProjectError(Exception):
    """A problem the user can fix: bad input file, bad dataset, bad option."""

    exit_code = 2


class DataError(ProjectError):
    """A dataset folder, record or label file that cannot be used as it is."""
