"""Problems in the configuration files marketers edit, reported all at once.

A validated document (the action catalog, an experiment, the contact policy)
collects every problem it finds as a :class:`ConfigIssue` (where: a scope such
as a file or an entry of a list, and a field path; what: a message saying what
to fix) and raises one :class:`ConfigError` listing them. Each document has its
own pair of subclasses, which only say how a place is written and what the
document is called.

>>> class RecipeIssue(ConfigIssue):
...     pass
>>> class RecipeError(ConfigError[RecipeIssue]):
...     document = "the recipe"
>>> error = RecipeError([RecipeIssue("soup.yaml", "salt", "must be >= 0"),
...                      RecipeIssue("", "", "list at least one step")])
>>> print(error)
the recipe is invalid:
  - soup.yaml: field 'salt': must be >= 0
  - list at least one step
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar, Generic, TypeVar


@dataclass(frozen=True)
class ConfigIssue:
    """One problem in a configuration document.

    Parameters
    ----------
    scope
        What the field belongs to: the file, or an entry of a list (empty: the
        document itself).
    field
        The field's path inside the scope (empty: the scope as a whole).
    message
        What is wrong, and if possible what to write instead.
    """

    scope: str
    field: str
    message: str

    def where(self) -> str:
        """The place, as the message's prefix (empty when the issue has none)."""
        parts = [self.scope] if self.scope else []
        if self.field:
            parts.append(f"field {self.field!r}")
        return ": ".join(parts)

    def __str__(self) -> str:
        where = self.where()
        return f"{where}: {self.message}" if where else self.message


IssueT = TypeVar("IssueT", bound=ConfigIssue)


class ConfigError(ValueError, Generic[IssueT]):
    """An invalid configuration document; ``issues`` lists every problem found."""

    #: How the message names the document ("the action catalog").
    document: ClassVar[str] = "the configuration"

    def __init__(self, issues: Sequence[IssueT]) -> None:
        self.issues: tuple[IssueT, ...] = tuple(issues)
        lines = "\n".join(f"  - {issue}" for issue in self.issues)
        super().__init__(f"{self.document} is invalid:\n{lines}")
