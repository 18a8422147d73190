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

import difflib
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel


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


#: How alike (difflib's ratio) an unknown key and a known one must be to suggest it: a
#: letter left out, doubled or swapped in a name of 6+ letters is 0.85-0.95; 'quiet_hour'
#: and 'default_hour' (no typo of each other) are 0.64.
TYPO_SIMILARITY = 0.75


def unknown_key(key: object, known: Iterable[str], what: str = "field") -> str:
    """The message for an unknown ``key`` among the ``known`` ones: with the closest
    known key when one is close (a typo), as the rules language says it.

    >>> unknown_key("eligibilty", ["id", "channels", "eligibility"])
    "unknown field (did you mean 'eligibility'?)"
    >>> unknown_key("colour", ["id", "channels"])
    'unknown field'
    """
    close = difflib.get_close_matches(str(key), sorted(known), n=1, cutoff=TYPO_SIMILARITY)
    return f"unknown {what}" + (f" (did you mean {close[0]!r}?)" if close else "")


def model_fields_at(model: type[BaseModel], loc: Sequence[object]) -> tuple[str, ...]:
    """The field names (and aliases) of the model that holds ``loc``'s last part, as a
    pydantic error locates it under ``model`` (list indexes and mapping keys crossed);
    empty when the path leads to no model.

    >>> from nba.actions import Action
    >>> from nba.contact_policy import ContactPolicy
    >>> "expires_after_hours" in model_fields_at(Action, ("offer", "expires_after_hour"))
    True
    >>> "cap_1d" in model_fields_at(ContactPolicy, ("channels", "email", "cap_1dd"))
    True
    """
    found = _model_at(model, list(loc[:-1]))
    if found is None:
        return ()
    names: list[str] = []
    for name, field in found.model_fields.items():
        names.append(field.alias or name)
    return tuple(names)


def _model_at(kind: Any, parts: list[object]) -> type[BaseModel] | None:
    """The model class the ``parts`` of a location lead to from the type ``kind``."""
    origin = typing.get_origin(kind)
    if origin is typing.Annotated:
        return _model_at(typing.get_args(kind)[0], parts)
    if origin is typing.Union or origin is types.UnionType:
        members = [a for a in typing.get_args(kind) if a is not type(None)]
        if parts and any(getattr(a, "__name__", None) == parts[0] for a in members):
            chosen = next(a for a in members if getattr(a, "__name__", None) == parts[0])
            return _model_at(chosen, parts[1:])  # pydantic names the member it tried
        for member in members:
            found = _model_at(member, parts)
            if found is not None:
                return found
        return None
    if isinstance(kind, type) and issubclass(kind, BaseModel):
        if not parts:
            return kind
        part = parts[0]
        field = kind.model_fields.get(str(part)) or next(
            (f for f in kind.model_fields.values() if f.alias == part), None
        )
        return None if field is None else _model_at(field.annotation, parts[1:])
    if not parts or origin is None:
        return None
    args = typing.get_args(kind)
    if isinstance(origin, type) and issubclass(origin, Mapping) and len(args) == 2:
        return _model_at(args[1], parts[1:])  # the key, then its value
    if isinstance(origin, type) and issubclass(origin, Sequence | frozenset | set) and args:
        return _model_at(args[0], parts[1:])  # the index, then the item
    return None
