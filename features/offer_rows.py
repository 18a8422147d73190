"""The contract offers table's rows as the decision core's offers, by id.

One conversion for every reader of the table: the API and ``nba decide`` (through
:func:`serving.startup.load_offer_table`, which validates the file first) and the
closed loop, whose simulated retailer writes its own table.

>>> import pandas as pd
>>> table = pd.DataFrame({
...     "offer_id": ["w15"], "name": ["15% off"], "kind": ["percent_discount"],
...     "value": [15.0], "cost": [7.0],
...     "valid_from": [pd.Timestamp("2026-01-01", tz="UTC")],
...     "valid_to": [pd.Timestamp("2026-12-31", tz="UTC")],
...     "channels": ["email|sms"], "daily_budget": pd.array([300], dtype="Int64"),
...     "eligibility": [None]})
>>> offer = offers_by_id(table, "offers.csv")["w15"]
>>> offer.cost, [c.value for c in offer.channels], offer.daily_budget
(7.0, ['email', 'sms'], 300)
"""

from __future__ import annotations

import pandas as pd
from pydantic import ValidationError

from nba.actions import Offer


class OfferRowError(ValueError):
    """A row of the offers table the decision core's offers cannot carry."""


def offers_by_id(table: pd.DataFrame, source: str) -> dict[str, Offer]:
    """The rows of a contract offers ``table`` (already validated against the contract)
    as offers by id; an :class:`OfferRowError` naming ``source``, the row and the field
    otherwise."""
    offers: dict[str, Offer] = {}
    for row, record in enumerate(table.to_dict("records"), start=1):
        try:
            offers[record["offer_id"]] = Offer.model_validate(
                {
                    "id": record["offer_id"],
                    "kind": record["kind"],
                    "value": record["value"],
                    "cost": record["cost"],
                    "valid_from": record["valid_from"].to_pydatetime(),
                    "valid_to": record["valid_to"].to_pydatetime(),
                    "channels": str(record["channels"]).split("|"),
                    "daily_budget": None
                    if pd.isna(record["daily_budget"])
                    else int(record["daily_budget"]),
                    "eligibility": None
                    if record["eligibility"] is None or pd.isna(record["eligibility"])
                    else record["eligibility"],
                }
            )
        except ValidationError as error:  # an id the catalog's offers cannot carry
            first = error.errors()[0]
            field = ".".join(str(p) for p in first["loc"]) or "offer_id"
            raise OfferRowError(f"{source}: row {row}, field {field!r}: {first['msg']}") from None
    return offers
