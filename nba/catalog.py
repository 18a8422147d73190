"""The action catalog: the YAML (or JSON) document marketers edit, validated.

Schema (``version: 1``)::

    version: 1
    actions:
      - id: cart_reminder_1            # unique; letters, digits, _ . : -
        type: cart_reminder            # see nba.actions.ActionType
        description: First reminder, no discount
        channels: [push, email, sms]   # outbound channels, preferred first
        eligibility: cart_size > 0 and cart_age_hours >= 1 and cart_age_hours <= 12
        value: cart_value * 0.3        # number or numeric expression (currency)
        lever: 1.0                     # business lever (>= 0)
        ttl_hours: 6                   # latest send, hours after the decision
        timing: asap                   # or best_hour (default)
        local_hours: ["08:00-21:00"]   # optional extra local windows
        cooldown_hours: 72             # optional, per customer
        cooldown_scope: cart           # optional: customer, or cart (a cart added to
                                       # since the last send is a new one); default
                                       # cart for cart reminders, else customer
        daily_volume: 10000            # optional, across customers
        min_uplift: 0.02               # optional: keep only when the offer moves them
        group: cart                    # optional: one action per group per decision
        time_critical: true            # optional: exploration never passes it over
        offer: {id: cart10, kind: percent_discount, value: 10, cost: 6,
                daily_budget: 500, expires_after_hours: 48}
        variants:                      # optional wordings; first match wins
          - {id: early, when: "early_adopter_score >= 0.6", template: launch_early}
          - {id: default, template: launch}

Every key is checked: unknown keys, unknown channels, bad numbers, rules that
do not parse or type-check, duplicate ids and ``hours_since_sent`` references
to actions that do not exist. All problems are reported at once, each naming
the action and the field.

>>> catalog = parse_catalog('''
... version: 1
... actions:
...   - {id: review, type: review_request, channels: [email], value: 2}
...   - {id: nothing, type: do_nothing}
... ''')
>>> catalog.ids, catalog.do_nothing.id
(('review', 'nothing'), 'nothing')
>>> try:
...     parse_catalog("actions: [{id: a, type: offer, channels: [email], lever: -1}]")
... except CatalogError as error:
...     print(error.issues[0])
action 'a', field 'lever': Input should be greater than or equal to 0
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import yaml
from pydantic import ValidationError

from nba.actions import Action
from nba.config_errors import ConfigError, ConfigIssue, model_fields_at, unknown_key

SCHEMA_VERSION = 1
_TOP_LEVEL_KEYS = frozenset({"version", "actions"})
_NAMED_FIELD = re.compile(r"^([A-Za-z_][\w.\[\]]*): (.*)$", re.DOTALL)


class CatalogIssue(ConfigIssue):
    """One problem in a catalog: the action (id or position) as its scope, the field, the
    message."""

    @property
    def action(self) -> str:
        """The action's id (or ``#position``); empty for the catalog as a whole."""
        return self.scope

    def where(self) -> str:
        where = f"action {self.scope!r}" if self.scope else "catalog"
        if self.field:
            where += f", field {self.field!r}"
        return where


class CatalogError(ConfigError[CatalogIssue]):
    """An invalid catalog; ``issues`` lists every problem found."""

    document = "the action catalog"


class Catalog:
    """A validated, ordered set of actions (catalog order breaks ties).

    Build it with :func:`parse_catalog` (text) or :meth:`Catalog.from_dict`;
    the constructor takes already-built :class:`~nba.actions.Action` objects and
    runs the cross-action checks.
    """

    __slots__ = ("_by_id", "actions")

    def __init__(self, actions: Sequence[Action]) -> None:
        self.actions: tuple[Action, ...] = tuple(actions)
        self._by_id: dict[str, Action] = {}
        issues = _cross_check(self.actions)
        if issues:
            raise CatalogError(issues)
        self._by_id = {a.id: a for a in self.actions}

    @classmethod
    def from_dict(cls, document: Mapping[str, Any]) -> Catalog:
        """Validate a parsed document (``{"version": 1, "actions": [...]}``)."""
        if not isinstance(document, Mapping):
            raise CatalogError([CatalogIssue("", "", "the catalog is a mapping with 'actions'")])
        issues: list[CatalogIssue] = []
        for key in document:
            if key not in _TOP_LEVEL_KEYS:
                message = unknown_key(key, _TOP_LEVEL_KEYS, "key")
                issues.append(CatalogIssue("", str(key), f"{message}; expected version, actions"))
        version = document.get("version", SCHEMA_VERSION)
        if version != SCHEMA_VERSION:
            issues.append(
                CatalogIssue("", "version", f"unsupported version {version!r} (expected 1)")
            )
        raw_actions = document.get("actions")
        if not isinstance(raw_actions, list) or not raw_actions:
            issues.append(CatalogIssue("", "actions", "list at least one action"))
            raise CatalogError(issues)
        actions: list[Action] = []
        for position, raw in enumerate(raw_actions):
            name = _action_name(raw, position)
            if not isinstance(raw, Mapping):
                issues.append(CatalogIssue(name, "", "an action is a mapping of fields"))
                continue
            try:
                actions.append(Action.model_validate(dict(raw)))
            except ValidationError as error:
                issues.extend(_issues_from(name, error))
        if issues:
            raise CatalogError(issues)
        return cls(actions)

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(a.id for a in self.actions)

    @property
    def do_nothing(self) -> Action | None:
        """The catalog's ``do_nothing`` action, if it has one."""
        return next((a for a in self.actions if a.is_do_nothing), None)

    def __getitem__(self, action_id: str) -> Action:
        try:
            return self._by_id[action_id]
        except KeyError:
            raise KeyError(f"no action {action_id!r} in the catalog") from None

    def __contains__(self, action_id: object) -> bool:
        return action_id in self._by_id

    def __iter__(self) -> Iterator[Action]:
        return iter(self.actions)

    def __len__(self) -> int:
        return len(self.actions)

    def to_dict(self) -> dict[str, Any]:
        """The catalog as a plain document (round-trips through :meth:`from_dict`)."""
        return {
            "version": SCHEMA_VERSION,
            "actions": [
                a.model_dump(mode="json", exclude_defaults=True)
                | {"id": a.id, "type": a.type.value}
                for a in self.actions
            ],
        }


def parse_catalog(text: str) -> Catalog:
    """Parse and validate a catalog written in YAML (JSON is valid YAML too).

    Takes the text, not a path: the decision core does no I/O.
    """
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(error, "problem", None) or str(error)
        raise CatalogError([CatalogIssue("", "", f"not valid YAML{where}: {problem}")]) from None
    return Catalog.from_dict(document)


def _action_name(raw: object, position: int) -> str:
    if isinstance(raw, Mapping) and isinstance(raw.get("id"), str) and raw["id"]:
        return str(raw["id"])
    return f"#{position + 1}"


def _issues_from(name: str, error: ValidationError) -> list[CatalogIssue]:
    issues = []
    for detail in error.errors():
        location = _field_path(detail["loc"])
        message = str(detail["msg"]).removeprefix("Value error, ")
        if detail["type"] == "extra_forbidden":
            message = unknown_key(detail["loc"][-1], model_fields_at(Action, detail["loc"]))
        elif detail["type"] == "missing":
            message = "required field is missing"
        named = _NAMED_FIELD.match(message)
        if named:  # model-level checks start with the field they concern
            field = named.group(1)
            location = f"{location}.{field}" if location else field
            message = named.group(2)
        issues.append(CatalogIssue(name, location, message))
    return issues


def _field_path(loc: Sequence[int | str]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path


def _cross_check(actions: Sequence[Action]) -> list[CatalogIssue]:
    issues: list[CatalogIssue] = []
    seen: set[str] = set()
    for action in actions:
        if action.id in seen:
            issues.append(CatalogIssue(action.id, "id", "duplicate action id"))
        seen.add(action.id)
    do_nothing = [a.id for a in actions if a.is_do_nothing]
    for extra in do_nothing[1:]:
        issues.append(CatalogIssue(extra, "type", "only one do_nothing action is allowed"))
    for action in actions:
        for field_name, rule in action.rules():
            for missing in sorted(rule.sent_actions - seen):
                issues.append(
                    CatalogIssue(
                        action.id,
                        field_name,
                        f"hours_since_sent({missing!r}) refers to an action not in the catalog",
                    )
                )
    if not actions:
        issues.append(CatalogIssue("", "actions", "list at least one action"))
    return issues
