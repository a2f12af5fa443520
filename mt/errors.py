"""The one exception type for user mistakes: the CLI prints it as one line and exits non-zero."""


class MTError(Exception):
    """A problem the user can fix (bad file, bad option); never a bug."""
