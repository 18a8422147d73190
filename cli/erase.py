"""``nba erase``: forget a customer (as ``DELETE /v1/customers/{id}`` does) and purge the
files of every erased customer's records."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from cli.support import console, fail

if TYPE_CHECKING:
    from features.erasures import ErasureRegister
    from serving.settings import Settings


def erase(
    customer: Annotated[
        str | None,
        typer.Option(
            help="The customer to forget: registered, then erased from the API's Redis. "
            "Without it, only the purge of the customers already erased runs."
        ),
    ] = None,
    redis_url: Annotated[
        str | None,
        typer.Option(help="The API's Redis [default: NBA_REDIS_URL, else the embedded one]."),
    ] = None,
    redis_prefix: Annotated[
        str | None, typer.Option(help="The API's key prefix [default: NBA_REDIS_PREFIX].")
    ] = None,
    archive: Annotated[
        Path | None,
        typer.Option(help="The event archive and its erasure register [default: NBA_ARCHIVE_DIR]."),
    ] = None,
    decision_log: Annotated[
        Path | None, typer.Option(help="The decision log [default: NBA_DECISION_LOG_DIR].")
    ] = None,
) -> None:
    """Forget a customer: register the erasure, delete their Redis keys (the erasure kept for
    NBA_ERASURE_TOMBSTONE_DAYS), then purge every registered customer's events from the
    event archive and their decisions from the decision log (segments a running API still
    writes to are purged by a later run)."""
    from experiments.decision_log import purge_erased as purge_decisions
    from features.archive import purge_erased as purge_events
    from features.contract import ID_MAX_LENGTH, ID_PATTERN
    from features.erasures import ErasureRegister
    from serving.settings import Settings

    settings = Settings()
    archive = archive or settings.archive_path
    decision_log = decision_log or settings.decision_log_path
    register = ErasureRegister(archive)
    out = console()
    # the decision log's own register: its readers leave the customer's decisions out
    # before a purge reaches the segments a running API still writes
    logged = ErasureRegister(decision_log)
    if customer is not None:
        if re.fullmatch(ID_PATTERN, customer) is None:
            raise fail(
                f"--customer: an id is 1 to {ID_MAX_LENGTH} characters, no control character"
            )
        keys = _erase_online(
            customer,
            redis_url or settings.redis_url,
            redis_prefix or settings.redis_prefix,
            settings,
            (register, logged),
        )
        out.print(
            f"erased customer {customer}: {keys} Redis key(s) deleted"
            if keys
            else f"customer {customer}: Redis held nothing (the erasure is registered)"
        )
    events = purge_events(archive)
    decisions, still_open = purge_decisions(decision_log, register.load())
    out.print(
        f"purged {events.records:,} archived event(s) and {decisions:,} decision(s) of erased "
        "customers"
        + (
            f"; {events.open_segments + still_open} segment(s) still written by a running "
            "API: run again once it has moved on"
            if events.open_segments + still_open
            else ""
        )
    )


def _erase_online(
    customer: str,
    url: str | None,
    prefix: str,
    settings: Settings,
    registers: tuple[ErasureRegister, ...],
) -> int:
    from features.online.connect import connect_redis
    from features.online.contact_state import RedisContactState
    from features.online.erasure import RedisErasure
    from features.online.redis_store import RedisOnlineStore

    at = dt.datetime.now(dt.UTC)
    for register in registers:
        register.record(customer, at)
    client = connect_redis(url, settings.data_dir, cluster=settings.redis_cluster)
    try:
        contacts = RedisContactState(RedisOnlineStore(client, prefix=prefix))
        keep = int(settings.erasure_tombstone_days * 86_400)
        return RedisErasure(contacts).erase(customer, at, keep).keys
    except Exception as error:  # Redis unreachable: the register holds the erasure
        raise fail(f"--redis-url: Redis did not answer ({error}); run again") from None
    finally:
        client.close()
