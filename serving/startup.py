"""What the app needs at start-up and for read-outs: products, registry, durability, profiles."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import pandas as pd

ConfigT = TypeVar("ConfigT")

if TYPE_CHECKING:
    from nba.actions import Offer
    from nba.catalog import Catalog
    from nba.contact_policy import ContactPolicy

log = logging.getLogger("nba.api")


class StartupError(RuntimeError):
    """The API cannot start: the message says which setting to fix."""


def load_products(path: Path) -> pd.DataFrame:
    """The contract products table at ``path`` (Parquet or CSV), validated."""
    from features.contract import PRODUCTS
    from features.validation import DataContractError, read_table

    if not path.is_file():
        raise StartupError(
            f"{path}: no products table (set NBA_PRODUCTS_PATH, or run 'make demo' first)"
        )
    try:
        return read_table(path, PRODUCTS, str(path))
    except DataContractError as error:
        raise StartupError(f"{path}: {error}") from None


def load_experiment_setting(path: Path | None, what: str = "NBA_EXPERIMENT_PATH") -> Any | None:
    """The experiment at ``path`` (validated), or ``None`` when no experiment is configured;
    a :class:`StartupError` naming ``what`` (the setting or option that gave the path), the
    file and the field otherwise."""
    if path is None:
        return None
    from experiments.config import load_experiment
    from nba.experiment import ExperimentError

    try:
        return load_experiment(path)
    except (ExperimentError, OSError, ValueError) as error:
        raise StartupError(f"{what}: {error}") from None


def read_config(path: Path, parse: Callable[[str], ConfigT], what: str) -> ConfigT:
    """The configuration document ``what`` at ``path``, parsed and validated; a
    :class:`StartupError` naming the file and what is wrong otherwise."""
    from nba.config_errors import ConfigError

    try:
        text = path.read_text()
    except OSError as error:
        raise StartupError(f"{path}: cannot read the {what} ({error.strerror or error})") from None
    try:
        return parse(text)
    except ConfigError as error:
        raise StartupError(f"{path}: {error}") from None


def load_catalog_setting(path: Path) -> Catalog:
    """The action catalog at ``path`` (NBA_CATALOG_PATH), validated."""
    from nba.catalog import parse_catalog

    try:
        return read_config(path, parse_catalog, "action catalog")
    except StartupError as error:
        raise StartupError(f"NBA_CATALOG_PATH: {error}") from None


def load_offer_table(path: Path) -> dict[str, Offer]:
    """The contract offers table at ``path`` (Parquet or CSV), validated, as offers by id;
    a :class:`StartupError` naming the file, rows and fields otherwise."""
    from features.contract import OFFERS
    from features.offer_rows import OfferRowError, offers_by_id
    from features.validation import DataContractError, read_table

    if not path.is_file():
        raise StartupError(f"{path}: no offers table")
    try:
        table = read_table(path, OFFERS, str(path))
    except (DataContractError, OSError, ValueError) as error:
        raise StartupError(f"{path}: {error}") from None
    try:
        return offers_by_id(table, str(path))
    except OfferRowError as error:
        raise StartupError(str(error)) from None


def with_offer_table(catalog: Catalog, path: Path | None, setting: str) -> Catalog:
    """``catalog`` with the offers table at ``path`` applied (:mod:`nba.offer_table`);
    ``catalog`` itself without a table. Offers and actions the merge could not apply are
    logged as warnings; a bad table raises :class:`StartupError` naming ``setting``."""
    from nba.offer_table import apply_offer_table

    if path is None:
        return catalog
    try:
        merge = apply_offer_table(catalog, load_offer_table(path))
    except StartupError as error:
        raise StartupError(f"{setting}: {error}") from None
    for warning in merge.warnings():
        log.warning("%s: %s", path, warning)
    return merge.catalog


def warn_never_firing(catalog: Catalog, contact_policy: ContactPolicy, path: Path) -> None:
    """Warn at start-up (:class:`~nba.reachability.CatalogWarning`, and in the API's log,
    where a marketer deploying a catalog looks) about each action that can never fire
    under the contact policy, naming it and why; the first decision used to be the
    first to say so, as a Python warning only."""
    from nba.reachability import warn_unreachable

    for problem in warn_unreachable(catalog, contact_policy):
        log.warning("%s: %s", path, problem)


def load_contact_policy_setting(path: Path) -> ContactPolicy:
    """The contact policy at ``path`` (NBA_CONTACT_POLICY_PATH), validated."""
    from nba.contact_policy import parse_contact_policy

    try:
        return read_config(path, parse_contact_policy, "contact policy")
    except StartupError as error:
        raise StartupError(f"NBA_CONTACT_POLICY_PATH: {error}") from None


def open_registry(tracking_uri: str) -> Any | None:
    """The MLflow registry, or ``None`` (rules decide) when it cannot be opened."""
    from training.registry import ModelRegistry

    try:
        return ModelRegistry(tracking_uri)
    except Exception as error:  # a broken tracking store must not stop decisions
        log.error("MLflow registry unavailable, rules will decide: %s", error)
        return None


def durability_of(client: Any, gate: Any) -> str:
    """What an acknowledged event survives, from the server's persistence settings."""
    try:
        conf = gate.call(lambda: client.config_get("append*"))
    except Exception as error:
        return f"unknown (cannot read the Redis configuration: {error})"
    if isinstance(conf, dict) and conf and isinstance(next(iter(conf.values())), dict):
        conf = next(iter(conf.values()))  # a cluster answers per node
    text = {_text(k): _text(v) for k, v in (conf or {}).items()}
    if text.get("appendonly") != "yes":
        return "none: Redis keeps no append-only file; a Redis crash loses recent events"
    fsync = text.get("appendfsync", "everysec")
    if fsync == "always":
        return "aof-always: every acknowledged event survives a crash of the API and of Redis"
    return f"aof-{fsync}: a Redis crash may lose up to about a second of acknowledged events"


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
