"""The data contract: valid data loads with contract types; each kind of bad input
gets a message naming file, row and field; a bad data set is refused whole."""

from __future__ import annotations

import datetime as dt
import typing
from pathlib import Path

import pandas as pd
import pytest
from pydantic import ValidationError

from features.contract import RECORD_MODELS, TABLES, CustomerRecord, EventRecord
from features.dataset import load_dataset
from features.dataset import write_dataset as write_tables
from features.validation import DataContractError, read_table, validate_table
from nba.channels import Channel
from tests.conftest import CUSTOMERS_CSV, EVENTS_CSV, OFFERS_CSV, PRODUCTS_CSV, WriteDataset


def problems_of(folder: Path) -> list[str]:
    with pytest.raises(DataContractError) as info:
        load_dataset(folder)
    return [str(p) for p in info.value.problems]


def test_valid_dataset_loads_with_contract_types(write_dataset: WriteDataset) -> None:
    data = load_dataset(write_dataset())
    events = data.events
    assert list(events.columns) == TABLES["events"].names
    assert str(events["timestamp"].dtype) == "datetime64[ns, UTC]"
    # 20:15+01:00 is 19:15 UTC
    assert events.loc[2, "timestamp"] == pd.Timestamp("2026-03-06T19:15:00Z")
    assert events.loc[3, "properties"] == '{"campaign": "spring"}'
    assert events.loc[0, "offer_id"] is None
    assert events["quantity"].tolist()[:3] == [pd.NA, 1, 1]
    customers = data.customers
    assert customers["consent_email"].tolist() == [True, False]
    assert customers.loc[0, "consent_push_at"] == pd.Timestamp("2025-02-01T09:00:00Z")
    assert customers.loc[1, "preferred_channel"] is None
    assert data.offers.loc[0, "channels"] == "email|sms"
    assert data.products.loc[1, "launch_date"] == pd.Timestamp("2026-02-15")


def test_parquet_round_trip_equals_csv(write_dataset: WriteDataset, tmp_path: Path) -> None:
    data = load_dataset(write_dataset())
    write_tables(data, tmp_path / "parquet")
    again = load_dataset(tmp_path / "parquet")
    for name in TABLES:
        pd.testing.assert_frame_equal(again.table(name), data.table(name), check_dtype=False)


@pytest.mark.parametrize(
    ("table", "old", "new", "expected"),
    [
        (
            "events",
            "E1,C1,2026-03-06T18:05:00Z,web,",
            "E1,C1,2026-03-06T18:05:00Z,fax,",
            "events.csv: row 1, field 'channel': unknown channel 'fax' (expected one of: email",
        ),
        (
            "events",
            "E2,C1,",
            ",C1,",
            "events.csv: row 2, field 'event_id': missing value (this field is required)",
        ),
        (
            "events",
            "E3,C1,2026-03-06T20:15:00+01:00",
            "E3,C1,2026-03-06T20:15:00",
            "events.csv: row 3, field 'timestamp': timestamp without time zone",
        ),
        (
            "events",
            "E3,C1,2026-03-06T20:15:00+01:00",
            "E3,C1,yesterday evening Z",
            "events.csv: row 3, field 'timestamp': not a valid timestamp",
        ),
        (
            "events",
            "E3,C1,2026-03-06T20:15:00+01:00",
            "E3,C1,notadate",
            "events.csv: row 3, field 'timestamp': not a valid timestamp (expected ISO 8601",
        ),
        (
            "events",
            "E2,C1,",
            "E1,C1,",
            "events.csv: row 2, field 'event_id': duplicate event_id (each must be unique)",
        ),
        (
            "events",
            "add_to_cart",
            "teleported",
            "events.csv: row 2, field 'event_type': unknown event type 'teleported'",
        ),
        (
            "events",
            "P1,O1,,1,53.91",
            "P1,O1,,1,-53.91",
            "events.csv: row 3, field 'revenue': value -53.91 is below the minimum 0",
        ),
        (
            "events",
            "P1,,,1,,",
            "P1,,,one,,",
            "events.csv: row 2, field 'quantity': not a number",
        ),
        (
            "events",
            '"{""campaign"": ""spring""}"',
            '"[1, 2]"',
            "events.csv: row 4, field 'properties': not a JSON object",
        ),
        (
            "products",
            "59.90,24.00",
            "-59.90,24.00",
            "products.csv: row 1, field 'price': value -59.9 is below the minimum 0",
        ),
        (
            "products",
            "39.90,15.50",
            "39.90,45.50",
            "products.csv: row 2, field 'margin': margin is larger than the price",
        ),
        (
            "products",
            "2026-02-15",
            "15/02/2026x",
            "products.csv: row 2, field 'launch_date': not a date (expected YYYY-MM-DD)",
        ),
        (
            "customers",
            "Europe/Paris",
            "Europe/Atlantis",
            "customers.csv: row 1, field 'timezone': unknown IANA time zone 'Europe/Atlantis'",
        ),
        (
            "customers",
            "gold,true",
            "gold,maybe",
            "customers.csv: row 1, field 'consent_email': not a boolean: 'maybe'",
        ),
        (
            "customers",
            "gold,true",
            "diamond,true",
            "customers.csv: row 1, field 'loyalty_tier': unknown value 'diamond'",
        ),
        (
            "customers",
            ",email,18-21",
            ",store,18-21",
            "customers.csv: row 1, field 'preferred_channel': not an outbound channel",
        ),
        (
            "customers",
            ",email,18-21",
            ",email,evenings",
            "customers.csv: row 1, field 'preferred_hours': not an hour range 'evenings'",
        ),
        (
            "offers",
            "2026-03-31T23:59:59Z,email|sms",
            "2025-03-31T23:59:59Z,email|sms",
            "offers.csv: row 1, field 'valid_to': valid_to is before valid_from",
        ),
        (
            "offers",
            "email|sms",
            "email|pigeon",
            "offers.csv: row 1, field 'channels': not a |-separated list of known channels",
        ),
        (
            "offers",
            "percent_discount,10,",
            "percent_discount,110,",
            "offers.csv: row 1, field 'value': a percent discount cannot exceed 100",
        ),
        (
            "events",
            "E2,C1,2026-03-06T18:07:00Z",
            "E2,C1,2082-04-01T00:00:00Z",
            "events.csv: row 2, field 'timestamp': timestamp after 1970-01-01 .. 2070-01-01",
        ),
        (
            "events",
            "E2,C1,2026-03-06T18:07:00Z",
            "E2,C1,1969-12-31T23:00:00Z",
            "events.csv: row 2, field 'timestamp': timestamp before 1970-01-01 .. 2070-01-01",
        ),
        (
            "events",
            "E2,C1,",
            '"E\t2",C1,',
            "events.csv: row 2, field 'event_id': not an id: contains a control character",
        ),
        (
            "events",
            "E2,C1,",
            "E2," + "C" * 129 + ",",
            "events.csv: row 2, field 'customer_id': not an id: longer than 128 characters",
        ),
    ],
)
def test_bad_value_is_named_by_file_row_and_field(
    write_dataset: WriteDataset, table: str, old: str, new: str, expected: str
) -> None:
    text = {
        "customers": CUSTOMERS_CSV,
        "products": PRODUCTS_CSV,
        "offers": OFFERS_CSV,
        "events": EVENTS_CSV,
    }[table]
    assert old in text, "test setup: the text to replace must be in the fixture"
    problems = problems_of(write_dataset(**{table: text.replace(old, new, 1)}))
    assert any(p.startswith(expected) for p in problems), problems


def test_unknown_references_are_reported(write_dataset: WriteDataset) -> None:
    events = EVENTS_CSV.replace("E4,C2,", "E4,C99,").replace(
        "web,product_view,P1", "web,product_view,P7"
    )
    problems = problems_of(write_dataset(events=events))
    assert any(
        p.startswith("events.csv: row 4, field 'customer_id': unknown customer") and "'C99'" in p
        for p in problems
    ), problems
    assert any(
        p.startswith("events.csv: row 1, field 'product_id': unknown product") for p in problems
    )


def test_every_problem_in_every_file_is_reported_at_once(write_dataset: WriteDataset) -> None:
    problems = problems_of(
        write_dataset(
            products=PRODUCTS_CSV.replace("59.90,24.00", "-1,-2"),
            events=EVENTS_CSV.replace("web,product_view", "fax,product_view").replace(
                "E2,C1,2026-03-06T18:07:00Z", "E2,C1,2026-03-06 18:07"
            ),
        )
    )
    assert len(problems) == 3, problems
    assert {p.split(":")[0] for p in problems} == {"products.csv", "events.csv"}


def test_structural_problems(write_dataset: WriteDataset) -> None:
    events = EVENTS_CSV.replace("event_id,customer_id", "event_id,client").replace(
        ",properties\n", ",colour\n", 1
    )
    problems = problems_of(write_dataset(events=events))
    assert (
        "events.csv: field 'client': unknown column (the events table has: event_id" in problems[0]
    )
    assert "events.csv: field 'customer_id': required column is missing" in problems


def test_missing_file_and_unsupported_type(tmp_path: Path, write_dataset: WriteDataset) -> None:
    folder = write_dataset()
    (folder / "offers.csv").unlink()
    problems = problems_of(folder)
    assert problems == [f"{folder}: no offers.parquet or offers.csv file"]
    with pytest.raises(DataContractError, match="unsupported file type"):
        read_table(_touch(tmp_path / "events.xlsx"), TABLES["events"])
    with pytest.raises(DataContractError, match="is not a directory"):
        load_dataset(tmp_path / "nowhere")


def _touch(path: Path) -> Path:
    path.write_text("x")
    return path


def test_naive_parquet_timestamps_are_refused(tmp_path: Path, write_dataset: WriteDataset) -> None:
    data = load_dataset(write_dataset())
    events = data.events.copy()
    events["timestamp"] = events["timestamp"].dt.tz_localize(None)
    with pytest.raises(DataContractError) as info:
        validate_table(events, TABLES["events"], "events.parquet")
    assert str(info.value.problems[0]).startswith(
        "events.parquet: rows 1, 2, 3, 4, field 'timestamp': timestamp without time zone"
    )


def test_many_bad_rows_are_counted_not_listed() -> None:
    n = 1000
    frame = pd.DataFrame(
        {
            "product_id": [f"P{i}" for i in range(n)],
            "name": "x",
            "category": "c",
            "price": -1.0,
            "margin": -2.0,
            "stock": 1,
            "launch_date": "2026-01-01",
        }
    )
    with pytest.raises(DataContractError) as info:
        validate_table(frame, TABLES["products"], "products.parquet")
    (problem,) = info.value.problems
    assert problem.count == n
    assert str(problem).startswith(
        "products.parquet: rows 1, 2, 3, 4, 5 and 995 more, field 'price'"
    )


def test_refusal_loads_nothing(write_dataset: WriteDataset) -> None:
    """One bad row in the last file refuses the data set: no partial result exists."""
    folder = write_dataset(events=EVENTS_CSV.replace("E4,C2,", "E4,,"))
    result = None
    with pytest.raises(DataContractError):
        result = load_dataset(folder)
    assert result is None


def test_record_models_match_table_schemas() -> None:
    for name, model in RECORD_MODELS.items():
        assert list(model.model_fields) == TABLES[name].names, name


def test_record_models_validate_single_records() -> None:
    event = EventRecord(
        event_id="e1",
        customer_id="C1",
        timestamp=dt.datetime(2026, 3, 6, 18, 5, tzinfo=dt.UTC),
        channel=Channel.WEB,
        event_type="add_to_cart",  # type: ignore[arg-type]
        product_id="P1",
    )
    assert event.event_type.value == "add_to_cart"
    with pytest.raises(ValidationError, match="timezone"):
        EventRecord(
            event_id="e1",
            customer_id="C1",
            timestamp=dt.datetime(2026, 3, 6, 18, 5),
            channel=Channel.WEB,
            event_type="add_to_cart",  # type: ignore[arg-type]
        )
    with pytest.raises(ValidationError, match="unknown IANA time zone"):
        CustomerRecord(
            customer_id="C1",
            created_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
            timezone="Mars/Olympus",
        )
    customer = CustomerRecord(
        customer_id="C1",
        created_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        timezone="Europe/Paris",
        consent_sms=True,
    )
    assert customer.consent(Channel.SMS).granted
    assert not customer.consent(Channel.EMAIL).granted
    assert customer.consent(Channel.WEB).granted  # no consent needed on-site


def test_contract_markdown_is_in_the_readme() -> None:
    """The README's contract tables are generated by ``nba contract``: keep them in step."""
    from features.docs import contract_markdown

    readme = (Path(__file__).parents[1] / "README.md").read_text()
    assert contract_markdown(list(TABLES)) in readme


def test_record_literal_genders_match_schema() -> None:
    gender = typing.get_args(CustomerRecord.model_fields["gender"].annotation)[0]
    assert set(typing.get_args(gender)) == set(TABLES["customers"].column("gender").choices or ())
