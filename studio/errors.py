"""The one exception type that carries a message meant for a person.

Anything raised as :class:`UserError` is shown as a single sentence (in the CLI on
stderr with a non-zero exit, in a page as ``st.error``); anything else is a bug.
"""


class UserError(Exception):
    """A mistake the user can fix: the message names the problem and the fix."""
