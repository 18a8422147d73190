"""The playbook audited a tenth time (issue 12, item 2).

Each situation is built from raw contract events (posted to the real API on a real Redis,
or written as a data set and run through ``nba features build`` and ``nba decide``) and the
answer is read as a marketer reads it. Probed and found right: a seasonal preview at the
local month's turn in Tokyo and Los Angeles (next month is the customer's); a declared
SMS preference for a welcome the catalog sends by e-mail or push only; a session asking
for three actions with a cart waiting (one message and the page's placements); two
customers decided one after the other (no cross-talk); bad decision requests and bad
``identify`` traits (each a 4xx or a rejection naming the field).

Fixed here (each test failed before its fix):

* ``nba decide`` ignored the experiment the API runs: a customer of the global control
  group, who the API answers with nothing, was sent the cart reminder by the batch list,
  and no row said which arm decided. The batch run reads the API's experiment
  (``--experiment``, else ``NBA_EXPERIMENT_PATH``, else ``<NBA_DATA_DIR>/experiment.yaml``)
  and routes each customer to their arm, with an ``arm`` column;
* the spring launch (``shows: new_arrivals``) went as an e-mail with no product in it
  once its only new arrival had sold out, once nothing had been launched in the 30 days
  before (April, the launch running until 30 April), or to an early adopter who had
  bought every new arrival. A decision is told whether a launch has anything to show
  the customer (:attr:`nba.context.CustomerContext.has_new_arrivals`, from
  :meth:`features.online.stock.StockLevels.has_arrivals_to_show` in the API, ``nba decide``
  and the OPE replay); with nothing, the launch is not eligible, "nothing to show";
* an ``identify`` whose ``createdAt`` lies years after the message's own time (2030 typed
  for 2020) was accepted: the customer was "new" for years and welcomed at once. It is
  refused naming ``traits.createdAt`` (five minutes of clock skew allowed, as for an
  event's time).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from cli.main import app as nba_cli
from experiments.config import load_experiment
from features.dataset import RetailDataset
from tests.api_support import redis_client
from tests.test_scenarios import customer as customers_row
from tests.test_scenarios_api import (
    DAY,
    HOUR,
    MINUTE,
    PARIS,
    Shop,
    codes,
    contacts,
    event,
    identify,
    local,
    message,
    open_shop,
    purchase,
    shop,
    the_action,
)
from tests.test_scenarios_audit6 import _contract_rows, decide_in_batch
from tests.test_scenarios_misfire import put_stock

__all__ = ["shop"]

EXPERIMENT = Path(__file__).resolve().parents[1] / "nba" / "examples" / "experiment.yaml"


@pytest.fixture(scope="module")
def shop_in_experiment(
    base: RetailDataset, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Shop]:
    """The API of :func:`tests.test_scenarios_api.shop`, running the example experiment
    (engine 45 %, rule-based journeys 45 %, a global control group of 10 %, March 2026)."""
    root: Path = tmp_path_factory.mktemp("audit10_experiment")
    prefix = f"a10x{uuid.uuid4().hex[:8]}"
    with open_shop(base, root, redis_client(root), prefix, experiment_path=EXPERIMENT) as shop:
        yield shop


def _customers_of_each_arm(per_arm: int) -> dict[str, list[str]]:
    """``per_arm`` new customer ids in each arm of the example experiment (by its own
    deterministic assignment, as every replica computes it)."""
    config = load_experiment(EXPERIMENT)
    found: dict[str, list[str]] = {arm.name: [] for arm in config.arms}
    while any(len(ids) < per_arm for ids in found.values()):
        customer = f"X{uuid.uuid4().hex[:10]}"
        arm = config.assign(customer).name
        if len(found[arm]) < per_arm:
            found[arm].append(customer)
    return found


# ---------------------------------------------------------------- experiments in batch


def test_the_control_group_gets_nothing_in_the_batch_list_as_from_the_api(
    shop_in_experiment: Shop,
    base: RetailDataset,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The marketer's spring experiment runs in the API (a 10 % global control group
    that receives nothing). Six customers, two of each arm, each left a cart two hours
    ago: the API answers the control group's with nothing and the others' with the cart
    reminder. The same raw events, through ``nba features build`` and ``nba decide`` (the
    list an e-mail platform imports, run where the API runs: its ``NBA_DATA_DIR`` holds
    the experiment), give each customer the API's arm and action: nothing for the control
    group. Misfire: the batch list sent the control group the cart reminder, and no row
    said which arm decided."""
    shop = shop_in_experiment
    now = local(PARIS, "2026-03-04 17:00")
    signed = now - 200 * DAY
    arms = _customers_of_each_arm(2)
    posted = []
    for ids in arms.values():
        for customer in ids:
            shop.post(
                {
                    "type": "identify",
                    "messageId": f"id-{customer}",
                    "userId": customer,
                    "timestamp": signed.isoformat(),
                    "traits": {"timezone": PARIS, "createdAt": signed.isoformat()}
                    | {f"consent_{c}": c == "email" for c in ("email", "sms", "push")},
                }
            )
            posted.append(event(customer, now - 2 * HOUR, "add_to_cart", "P1"))
    shop.post(*posted)
    api = {
        customer: shop.decide(customer, now, idempotency_key=f"x10-{customer}")
        for ids in arms.values()
        for customer in ids
    }
    rows = [
        customers_row(base, consents=("email",), created_at=signed.isoformat()).assign(
            customer_id=customer
        )
        for ids in arms.values()
        for customer in ids
    ]
    data = dataclasses.replace(
        base, customers=pd.concat(rows, ignore_index=True), events=_contract_rows(posted)
    )
    (tmp_path / "experiment.yaml").write_text(EXPERIMENT.read_text())
    monkeypatch.setenv("NBA_DATA_DIR", str(tmp_path))  # the API's: its experiment, no models
    monkeypatch.delenv("NBA_EXPERIMENT_PATH", raising=False)
    batch = decide_in_batch(data, tmp_path, pd.Timestamp(now)).set_index("customer_id")

    for arm, ids in sorted(arms.items(), key=lambda item: item[0] != "control"):
        for customer in ids:
            answer, row = api[customer], batch.loc[customer]
            chosen = the_action(answer)
            channel = None if pd.isna(row["channel"]) else row["channel"]
            assert (row["action_id"], channel) == (chosen["action_id"], chosen["channel"]), arm
            assert answer["arm"] == arm and row.get("arm") == arm, (arm, row.get("arm"))
            if arm == "control":
                assert contacts(answer) == [] and chosen["action_id"] == "do_nothing"
            else:
                assert (chosen["action_id"], chosen["channel"]) == ("cart_reminder_1", "email")


def test_a_batch_run_given_a_wrong_experiment_names_the_file_and_field(
    base: RetailDataset, tmp_path: Path
) -> None:
    """``nba decide --experiment`` with arms whose allocations sum to 1.2: exit status 2
    and a message naming the option, the file and the field, before any customer is
    decided."""
    wrong = tmp_path / "spring.yaml"
    wrong.write_text(EXPERIMENT.read_text().replace("allocation: 0.10", "allocation: 0.30"))
    ran = CliRunner().invoke(
        nba_cli,
        [
            *("decide", "--audience", str(tmp_path / "none.parquet")),
            *("--out", str(tmp_path / "d.csv"), "--experiment", str(wrong)),
        ],
    )
    assert ran.exit_code == 2, ran.output
    said = " ".join(ran.output.split())
    assert "--experiment" in said and "spring.yaml" in said and "allocation" in said, said


# ---------------------------------------------------------------- a launch with nothing new


def _promotion_lover(shop: Shop, now: dt.datetime) -> str:
    """A customer whose three orders of the trousers (launched in 2025) all used an
    offer: a promotion lover, to whom the spring launch speaks."""
    customer = shop.signup(now - 200 * DAY, consents=("email",))
    shop.post(
        *(
            purchase(customer, local(PARIS, "2026-01-05 12:00") + 14 * i * DAY, "P1")
            | {"offer_id": "O2"}
            for i in range(3)
        )
    )
    return customer


def test_a_launch_with_no_new_arrival_to_show_is_not_sent_and_says_why(shop: Shop) -> None:
    """The spring launch runs from 1 March to 30 April; the shirt (launched on 15 February)
    is the store's only new arrival, new for 30 days. On 10 March the launch goes to a
    promotion lover showing the shirt. Once the shirt is sold out, and again on 10 April
    (nothing launched in the last 30 days), the launch has nothing to show: it is not
    given ("nothing to show", in its reason), and no message goes with an empty launch.
    Misfire: the "new collection" e-mail went with no product in it."""
    march = local(PARIS, "2026-03-10 10:00")
    lover = _promotion_lover(shop, march)
    chosen = the_action(shop.decide(lover, march, actions=["new_collection_launch"]))
    assert (chosen["action_id"], chosen["variant_id"]) == (
        "new_collection_launch",
        "promotion_lover",
    )
    assert chosen["products"] == ["P2"]

    sold_out = _promotion_lover(shop, march)
    try:
        assert put_stock(shop, "P2", 0).status_code == 200
        answer = shop.decide(sold_out, march, actions=["new_collection_launch"])
        assert contacts(answer) == [], answer["actions"]
        assert codes(answer, "new_collection_launch") == ["not_eligible"]
        assert "nothing to show" in message(answer, "new_collection_launch")
    finally:  # the other tests' shirt is in stock
        assert put_stock(shop, "P2", 10).json()["in_stock"]

    april = local(PARIS, "2026-04-10 10:00")
    later = _promotion_lover(shop, april)
    answer = shop.decide(later, april, actions=["new_collection_launch"])
    assert contacts(answer) == [], answer["actions"]
    assert "nothing to show" in message(answer, "new_collection_launch")
    every = shop.decide(later, april)
    assert all(a["action_id"] != "new_collection_launch" for a in every["actions"])


def test_nba_decide_gives_no_launch_with_nothing_new_to_show(
    shop: Shop, base: RetailDataset, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The batch twin: the same promotion lover's raw events as a data set, ``nba decide
    --products`` on 10 April (nothing launched in the 30 days before): the launch is
    ruled out, its reason "nothing to show", as the API rules it out."""
    april = local(PARIS, "2026-04-10 10:00")
    lover = _promotion_lover(shop, april)
    posted = [
        purchase(lover, local(PARIS, "2026-01-05 12:00") + 14 * i * DAY, "P1") | {"offer_id": "O2"}
        for i in range(3)
    ]
    row = customers_row(base, consents=("email",), created_at=(april - 200 * DAY).isoformat())
    data = dataclasses.replace(
        base, customers=row.assign(customer_id=lover), events=_contract_rows(posted)
    )
    products = tmp_path / "products.parquet"
    base.products.to_parquet(products)
    monkeypatch.setenv("NBA_DATA_DIR", str(tmp_path))  # no registry, no experiment
    options = ("--products", str(products), "--rejected", "40")
    batch = decide_in_batch(data, tmp_path, pd.Timestamp(april), *options)
    [decided] = batch.to_dict("records")
    assert decided["action_id"] != "new_collection_launch"
    [launch] = [
        r for r in json.loads(decided["rejected"]) if r["action_id"] == "new_collection_launch"
    ]
    assert launch["code"] == "not_eligible" and "nothing to show" in launch["message"], launch


# ---------------------------------------------------------------- bad input: a sign-up to come


def test_an_identify_signing_up_after_its_own_time_is_refused_naming_created_at(
    shop: Shop,
) -> None:
    """A CRM's ``identify`` of 4 March 2026 says the customer signed up on 1 January 2030
    (2020 typed wrong): refused, naming ``traits.createdAt`` and the message's timestamp,
    and no welcome series starts for a sign-up that has not happened. One a minute later
    than the message (clocks differ) is kept. Misfire: accepted, the customer was "new"
    (-1,398 days since the sign-up) and welcomed at once."""
    at = local(PARIS, "2026-03-04 10:00")
    customer = f"X{uuid.uuid4().hex[:10]}"
    wrong = identify(customer, at, createdAt="2030-01-01T00:00:00Z", consent_email=True)
    response = shop.api.post("/v1/events", json={"events": [wrong]}, headers=shop.headers)
    assert response.status_code == 422, response.text  # its only event refused
    body = response.json()
    assert body["rejected"] == 1 and body["customers_updated"] == 0, body
    assert body["error"]["details"][0]["loc"] == ["body", "events", 0, "traits", "createdAt"]
    [why] = body["rejections"]
    assert why["field"] == "traits.createdAt", why
    assert "2030-01-01" in why["message"] and "after the message's timestamp" in why["message"]
    asked = {"customer_id": customer, "context": {"timestamp": (at + HOUR).isoformat()}}
    headers = shop.headers | {"Idempotency-Key": f"x10-{customer}"}
    answer = shop.api.post("/v1/decisions", json=asked, headers=headers).json()
    assert answer["cold_start"], answer  # not a customer yet
    assert all(not a["action_id"].startswith("welcome") for a in answer["actions"])

    skewed = identify(
        customer, at, createdAt=(at + MINUTE).isoformat(), consent_email=True, timezone=PARIS
    )
    shop.post(skewed)
    welcomed = the_action(shop.decide(customer, at + HOUR))
    assert welcomed["action_id"] == "welcome_1", welcomed
