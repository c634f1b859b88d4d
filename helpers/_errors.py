"""The base of the errors a person can act on: their message is one line that says what to do.

In a notebook, IPython shows an exception's traceback unless the exception renders itself
(`_render_traceback_`): these render as that one line, so a learner sees what to do, not the
stack of the helpers that found the problem. Scripts and the CLI see an ordinary exception.
"""

from __future__ import annotations


class ActionableError(RuntimeError):
    """An error whose message alone is what the reader needs."""

    def _render_traceback_(self) -> list[str]:
        return [f"{type(self).__name__}: {self}"]
