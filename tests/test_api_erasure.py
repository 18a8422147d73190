"""``DELETE /v1/customers/{id}`` through the real API on real Redis: a data-protection
officer's request, from a customer who signed up, shopped and was decided for, to the
files the API wrote.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from cli.main import app as cli
from experiments.decision_log import read_log
from features.archive import compact, read_archive
from features.dataset import RetailDataset
from features.erasures import customer_digest
from serving.app import create_app
from serving.auth import new_api_key
from serving.settings import Settings
from tests.api_support import redis_client
from tests.test_scenarios_api import PARIS, event, identify, local
from training.registry import ModelRegistry

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@dataclass
class Api:
    http: TestClient
    keys: dict[str, dict[str, str]]
    settings: Settings
    client: Any

    def post(self, *items: dict[str, Any], status: int = 200) -> dict[str, Any]:
        answer = self.http.post(
            "/v1/events", json={"events": list(items)}, headers=self.keys["journeys"]
        )
        assert answer.status_code == status, answer.text
        body: dict[str, Any] = answer.json()
        return body

    def erase(self, customer: str, who: str = "dpo") -> Any:
        return self.http.delete(f"/v1/customers/{customer}", headers=self.keys[who])

    def profile(self, customer: str) -> dict[str, Any]:
        answer = self.http.get(f"/v1/customers/{customer}/profile", headers=self.keys["journeys"])
        assert answer.status_code == 200, answer.text
        body: dict[str, Any] = answer.json()
        return body

    def keys_of(self, customer: str) -> set[str]:
        tag = "{" + customer + "}"
        prefix = self.settings.redis_prefix
        return {
            k.decode()
            for k in self.client.scan_iter(match=f"{prefix}:*", count=1000)
            if tag in k.decode()
        }


@pytest.fixture(scope="module")
def api(base: RetailDataset, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    root: Path = tmp_path_factory.mktemp("erasure")
    products = root / "products.parquet"
    base.products.to_parquet(products)
    keys, specs = {}, []
    for name, scopes in (
        ("journeys", ("decide", "ingest", "profiles")),
        ("dpo", ("erase",)),
        ("ops", ("admin",)),
    ):
        key, spec = new_api_key(name, scopes)
        keys[name] = {"Authorization": f"Bearer {key}"}
        specs.append(spec)
    client = redis_client(root)
    settings = Settings(
        api_keys=specs,
        data_dir=root,
        products_path=products,
        redis_prefix=f"erase{uuid.uuid4().hex[:8]}",
        model_poll_seconds=0,
        redis_retry_seconds=0.2,
        archive_fsync="never",
        decision_log_fsync="never",
        response_stats=True,  # its sends kept for attribution are the customer's too
    )
    registry = ModelRegistry(f"sqlite:///{root / 'mlflow.db'}", root / "artifacts")
    with TestClient(create_app(settings, client=client, registry=registry)) as http:
        yield Api(http, keys, settings, client)


def _shopper(api: Api) -> tuple[str, list[str], str]:
    """A customer who signed up, browsed, left a cart and was decided for (a retried
    request, so its answer is cached): their event ids and the decision's id."""
    customer = f"S{uuid.uuid4().hex[:10]}"
    signed = local(PARIS, "2026-03-02 10:00")
    api.post(identify(customer, signed, timezone=PARIS, consent_email=True))
    shopping = [
        event(customer, local(PARIS, "2026-03-04 15:00"), "product_view", "P1"),
        event(customer, local(PARIS, "2026-03-04 15:05"), "add_to_cart", "P1"),
    ]
    assert api.post(*shopping)["accepted"] == 2
    asked = {
        "customer_id": customer,
        "context": {"timestamp": local(PARIS, "2026-03-04 17:00").isoformat()},
    }
    headers = {**api.keys["journeys"], "Idempotency-Key": f"retry-{customer}"}
    answer = api.http.post("/v1/decisions", json=asked, headers=headers)
    assert answer.status_code == 200, answer.text
    return customer, [e["event_id"] for e in shopping], answer.json()["decision_id"]


def test_forget_me_leaves_nothing_in_redis_and_late_events_resurrect_no_one(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    """The DPO's key erases a customer: every key of theirs goes, the
    profile reads as unknown, the retried decision is decided afresh, the audit line
    names a pseudonym; a late event of theirs (before the erasure) is rejected and
    resurrects nothing, while one after it starts a new customer. Erasing again: 404."""
    customer, _, decision_id = _shopper(api)
    held = api.keys_of(customer)
    # the state ("s") holds the recent event ids too (layout 3: no "e" key of their own)
    assert {k.split(":")[1] for k in held} >= {"s", "h", "i", "c"}, held
    with caplog.at_level(logging.INFO, logger="nba.audit"):
        answer = api.erase(customer)
    assert answer.status_code == 204 and answer.content == b""
    assert api.keys_of(customer) == set()
    assert api.profile(customer)["known"] is False
    [line] = [r.getMessage() for r in caplog.records if r.name == "nba.audit"]
    assert customer not in line and customer_digest(customer)[:16] in line and "'dpo'" in line

    late = event(customer, local(PARIS, "2026-03-04 15:10"), "purchase", "P1")
    body = api.post(late, status=422)  # nothing of the request stored: a client's 4xx
    assert (body["accepted"], body["rejected"]) == (0, 1)
    [rejection] = body["rejections"]
    assert rejection["field"] == "customer_id" and "erased" in rejection["message"]
    [detail] = body["error"]["details"]
    assert detail["loc"] == ["body", "events", 0, "customer_id"]
    assert api.profile(customer)["known"] is False and api.keys_of(customer) == set()

    again = api.erase(customer)
    assert again.status_code == 404
    assert again.json()["error"]["code"] == "not_found"

    now = dt.datetime.now(dt.UTC)
    fresh = event(customer, now, "product_view", "P2")
    assert api.post(fresh)["accepted"] == 1  # after the erasure: a new customer
    profile = api.profile(customer)
    assert profile["known"] is True and profile["action_history"] == {}
    assert profile["profile"]["cart_items"] == []
    headers = {**api.keys["journeys"], "Idempotency-Key": f"retry-{customer}"}
    asked = {"customer_id": customer, "context": {"timestamp": now.isoformat()}}
    redecided = api.http.post("/v1/decisions", json=asked, headers=headers)
    assert redecided.status_code == 200 and redecided.json()["decision_id"] != decision_id


def test_only_an_erase_or_admin_key_may_erase_and_bad_ids_get_a_json_422(api: Api) -> None:
    customer, _, _ = _shopper(api)
    refused = api.erase(customer, who="journeys")
    assert refused.status_code == 403
    assert "'erase'" in refused.json()["error"]["message"]
    assert api.profile(customer)["known"] is True
    assert api.http.delete(f"/v1/customers/{customer}").status_code == 401
    for bad in ("%0A", "x" * 129):
        answer = api.http.delete(f"/v1/customers/{bad}", headers=api.keys["dpo"])
        assert answer.status_code == 422, answer.text
        assert answer.json()["error"]["details"][0]["loc"][-1] == "customer_id"
    assert api.erase(customer, who="ops").status_code == 204  # admin may too


def test_the_openapi_schema_documents_the_route(api: Api) -> None:
    route = api.http.get("/openapi.json").json()["paths"]["/v1/customers/{customer_id}"]
    assert set(route["delete"]["responses"]) >= {"204", "401", "403", "404", "422", "503"}


def test_the_archive_and_the_decision_log_forget_the_customer(api: Api) -> None:
    """What the API wrote of an erased customer: the archive reads none of their events at
    once; ``nba archive compact`` and ``nba erase`` (the purge without --customer) remove
    them, and their decisions, from the files (the API closed the segments holding them
    when it erased)."""
    customer, event_ids, decision_id = _shopper(api)
    archive, log = api.settings.archive_path, api.settings.decision_log_path
    assert set(event_ids) <= set(read_archive(archive)["event_id"])
    assert api.erase(customer).status_code == 204
    assert not set(event_ids) & set(read_archive(archive)["event_id"])
    compact(archive)
    result = CliRunner().invoke(
        cli, ["erase", "--archive", str(archive), "--decision-log", str(log)]
    )
    assert result.exit_code == 0, result.output
    for folder in (archive, log):
        files = b"".join(p.read_bytes() for p in folder.rglob("*") if p.is_file())
        assert customer.encode() not in files, folder
    assert decision_id.encode() not in b"".join(p.read_bytes() for p in log.rglob("*.jsonl"))


def test_nba_erase_forgets_a_customer_in_the_apis_redis(api: Api) -> None:
    """``nba erase --customer`` does what the route does, from the command line."""
    customer, _, _ = _shopper(api)
    url = api.client.connection_pool.connection_kwargs
    redis_url = f"redis://{url['host']}:{url['port']}/{url.get('db', 0)}" if "host" in url else None
    if redis_url is None:
        pytest.skip("the embedded Redis listens on a socket only")
    args = [
        "erase",
        "--customer",
        customer,
        "--redis-url",
        redis_url,
        "--redis-prefix",
        api.settings.redis_prefix,
        "--archive",
        str(api.settings.archive_path),
        "--decision-log",
        str(api.settings.decision_log_path),
    ]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert "Redis key(s) deleted" in result.output
    assert api.keys_of(customer) == set()
    assert api.profile(customer)["known"] is False
    bad = CliRunner().invoke(cli, ["erase", "--customer", "a\nb"])
    assert bad.exit_code == 2 and "--customer" in bad.output


def test_a_decision_asked_for_an_erased_customer_keeps_nothing_and_the_log_reads_none(
    api: Api,
) -> None:
    """A journey tool still holding an erased customer asks for them (on a product page,
    with an idempotency key): the API answers as for an unknown visitor but keeps
    nothing of them (no history, decided contacts, cached answer, decision record), and
    reading the decision log leaves out their decisions from before the erasure at once,
    before any purge (audit5: both recreated or kept what the erasure removed)."""
    customer, _, decision_id = _shopper(api)
    log = api.settings.decision_log_path
    assert decision_id in {d.decision_id for d in read_log(log).decisions}
    assert api.erase(customer).status_code == 204
    reading = read_log(log)
    assert customer not in {d.customer_id for d in reading.decisions}
    assert reading.erased >= 1
    headers = {**api.keys["journeys"], "Idempotency-Key": f"after-{customer}"}
    for context in (
        {"timestamp": local(PARIS, "2026-03-04 18:00").isoformat()},
        {
            "timestamp": local(PARIS, "2026-03-04 18:05").isoformat(),
            "session": {"channel": "web", "product_id": "P2"},
        },
    ):
        asked = {"customer_id": customer, "context": context}
        answer = api.http.post("/v1/decisions", json=asked, headers=headers)
        assert answer.status_code == 200, answer.text
        assert answer.json()["cold_start"] is True
        assert api.keys_of(customer) == set()
        headers = {**headers, "Idempotency-Key": f"again-{customer}"}
    assert customer not in {d.customer_id for d in read_log(log).decisions}
