"""Shared fixtures: a tiny valid data set written as CSV files."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from features.dataset import RetailDataset, load_dataset

CUSTOMERS_CSV = """\
customer_id,created_at,timezone,birth_date,gender,city,loyalty_tier,consent_email,consent_email_at,consent_sms,consent_sms_at,consent_push,consent_push_at,consent_postal,consent_postal_at,consent_call_centre,consent_call_centre_at,preferred_channel,preferred_hours
C1,2025-01-10T09:00:00Z,Europe/Paris,1990-04-12,female,Paris,gold,true,2025-01-10T09:00:00Z,false,,true,2025-02-01T10:00:00+01:00,false,,false,,email,18-21
C2,2025-03-02T12:30:00+00:00,America/New_York,,male,,none,false,2025-06-01T08:00:00Z,true,2025-03-02T12:30:00Z,false,,true,2025-03-02T12:30:00Z,false,,,
"""

PRODUCTS_CSV = """\
product_id,name,category,brand,price,margin,stock,launch_date
P1,Black trousers,trousers,Atelier,59.90,24.00,12,2025-09-01
P2,White shirt,shirts,Atelier,39.90,15.50,8,2026-02-15
"""

OFFERS_CSV = """\
offer_id,name,kind,value,cost,valid_from,valid_to,channels,daily_budget,eligibility
O1,Ten percent,percent_discount,10,4.5,2026-01-01T00:00:00Z,2026-03-31T23:59:59Z,email|sms,500,cart_value > 50
O2,Free shipping,free_shipping,0,5,2026-01-01T00:00:00Z,2026-12-31T23:59:59Z,email|push|app,,
"""

EVENTS_CSV = """\
event_id,customer_id,timestamp,channel,event_type,product_id,offer_id,decision_id,quantity,revenue,properties
E1,C1,2026-03-06T18:05:00Z,web,product_view,P1,,,,,
E2,C1,2026-03-06T18:07:00Z,web,add_to_cart,P1,,,1,,
E3,C1,2026-03-06T20:15:00+01:00,app,purchase,P1,O1,,1,53.91,
E4,C2,2026-03-07T09:00:00Z,email,message_opened,,O2,d-42,,,"{""campaign"": ""spring""}"
"""

TABLES = {
    "customers": CUSTOMERS_CSV,
    "products": PRODUCTS_CSV,
    "offers": OFFERS_CSV,
    "events": EVENTS_CSV,
}

WriteDataset = Callable[..., Path]


@pytest.fixture
def write_dataset(tmp_path: Path) -> WriteDataset:
    """Write the tiny data set as CSV, with any table's text replaced by a keyword."""

    def write(**replacements: str) -> Path:
        folder = tmp_path / "data"
        folder.mkdir(exist_ok=True)
        for name, text in {**TABLES, **replacements}.items():
            (folder / f"{name}.csv").write_text(text)
        return folder

    return write


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> RetailDataset:
    """The tiny data set, loaded (events are replaced per test)."""
    folder = tmp_path_factory.mktemp("data")
    for name, text in TABLES.items():
        (folder / f"{name}.csv").write_text(text)
    return load_dataset(folder)


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Stop the embedded Redis servers this process started: pytest-xdist's workers
    end without running exit hooks, and each server a test had started outlived the
    run (``features.online.connect.close_embedded``)."""
    from features.online.connect import close_embedded

    close_embedded()
