"""Point-in-time examples cut in several processes, and from one cut for several sets of rows.

Training cuts its examples' profiles in one forked process per core
(:func:`features.point_in_time.point_in_time_columns` with ``workers``) and cuts
the channel and offer models' examples together
(:func:`training.examples.shared_examples`). Both must give what one process and
one set of rows give, value for value: there is one definition of each feature.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from features.dataset import RetailDataset
from features.point_in_time import ProfileColumns, point_in_time_columns
from simulator import SimulatorConfig, simulate
from training.api import sends_examples
from training.examples import (
    ContactExamples,
    contact_examples,
    message_sends,
    sample_rows,
    shared_examples,
)
from training.offers import offer_examples


@pytest.fixture(scope="module")
def data() -> RetailDataset:
    sim = simulate(SimulatorConfig(n_customers=300, days=40, seed=8, n_products=120))
    return RetailDataset(sim.customers, sim.products, sim.offers, sim.events)


def assert_same_columns(got: ProfileColumns, want: ProfileColumns) -> None:
    assert len(got) == len(want)
    for f in dataclasses.fields(ProfileColumns):
        a, b = getattr(got, f.name), getattr(want, f.name)
        assert a.dtype == b.dtype and a.shape == b.shape, f.name
        if a.dtype == object:
            assert a.tolist() == b.tolist(), f.name
        else:
            np.testing.assert_array_equal(a, b, err_msg=f.name)


def assert_same_examples(got: ContactExamples, want: ContactExamples) -> None:
    pd.testing.assert_frame_equal(got.rows, want.rows)
    np.testing.assert_array_equal(got.hour_of_week, want.hour_of_week)
    assert_same_columns(got.columns, want.columns)


def test_columns_cut_in_processes_equal_one_process(
    data: RetailDataset, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = sample_rows(message_sends(data.events), 1500, 3)[["customer_id", "timestamp"]]
    one = point_in_time_columns(data, rows, workers=1)
    monkeypatch.setattr("features.point_in_time.PARALLEL_MIN_ROWS", 1)
    for workers in (2, 3):
        assert_same_columns(point_in_time_columns(data, rows, workers=workers), one)
    # not vacuous: the rows have many customers, each part got some, values vary
    assert len(np.unique(one.customer_id)) > 100
    assert len(np.unique(one.purchases_total)) > 3


def test_few_rows_are_cut_in_this_process(data: RetailDataset) -> None:
    """Below the threshold no process is forked (the columns are the same anyway)."""
    rows = sample_rows(message_sends(data.events), 50, 4)[["customer_id", "timestamp"]]
    assert_same_columns(
        point_in_time_columns(data, rows, workers=4), point_in_time_columns(data, rows)
    )


def test_scatter_puts_rows_back_in_order(data: RetailDataset) -> None:
    rows = sample_rows(message_sends(data.events), 200, 5)[["customer_id", "timestamp"]]
    cols = point_in_time_columns(data, rows)
    odd, even = np.arange(1, 200, 2), np.arange(0, 200, 2)
    back = ProfileColumns.scatter([(odd, cols.take(odd)), (even, cols.take(even))], 200)
    assert_same_columns(back, cols)


def test_shared_cut_equals_each_set_on_its_own(data: RetailDataset) -> None:
    sends = message_sends(data.events)
    a = sample_rows(sends, 700, 1)
    b = sample_rows(sends, 400, 2).assign(extra=1)  # overlapping rows, other columns
    together = shared_examples(data, [a, b], workers=1)
    assert [len(e) for e in together] == [700, 400]
    assert_same_examples(together[0], contact_examples(data, a, workers=1))
    assert_same_examples(together[1], contact_examples(data, b, workers=1))


def test_sends_examples_are_what_each_model_samples_by_default(data: RetailDataset) -> None:
    """``nba train all`` cuts the channel and offer examples once: they are the examples
    ``train_channels`` and ``train_offers`` would have sampled and cut on their own."""
    built = sends_examples(data, ("channels", "offers"), max_examples=600)
    assert set(built) == {"channels", "offers"}
    channels = contact_examples(data, sample_rows(message_sends(data.events), 600, 0))
    assert_same_examples(built["channels"], channels)
    assert_same_examples(built["offers"], offer_examples(data, 600, 0))
    assert "treated" in built["offers"].rows


def test_sends_examples_leave_out_a_model_without_data(data: RetailDataset) -> None:
    no_offers = data.events.assign(offer_id=None)
    plain = RetailDataset(data.customers, data.products, data.offers, no_offers)
    built = sends_examples(plain, ("channels", "offers"), max_examples=300)
    assert set(built) == {"channels"}
    with pytest.raises(ValueError, match="offer"):
        offer_examples(plain, 300, 0)
