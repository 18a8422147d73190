"""``/v1/products/{id}/stock``: the retailer's stock system sets a product's units.

A product with no stock is never recommended nor put in a message (cart and browse
reminders show only what can be bought; a cart whose every item sold out is not
reminded of). The level holds for every replica
(:class:`~features.online.stock.StockLevels`).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from features.contract import ID_MAX_LENGTH, ID_PATTERN
from features.online.stock import UnknownProductError
from serving.deps import UNAVAILABLE, V1_ERRORS, Ingest
from serving.errors import ErrorDetail, ErrorResponse, NotFoundError, UnavailableError
from serving.redis_gate import RedisDownError
from serving.schemas import StockRequest, StockResponse

router = APIRouter()
UNKNOWN_PRODUCT = {"model": ErrorResponse, "description": "The products table has no such product."}


@router.put(
    "/v1/products/{product_id}/stock",
    response_model=StockResponse,
    tags=["products"],
    summary="Set a product's units in stock (scope `ingest`)",
    responses={**V1_ERRORS, **UNAVAILABLE, 404: UNKNOWN_PRODUCT},
)
def set_stock(
    product_id: Annotated[str, Path(min_length=1, max_length=ID_MAX_LENGTH, pattern=ID_PATTERN)],
    body: StockRequest,
    runtime: Ingest,
) -> StockResponse:
    stock = runtime.decisions.stock
    try:
        runtime.gate.call(lambda: stock.set(product_id, body.stock))
    except UnknownProductError:
        raise NotFoundError(
            f"product {product_id!r} is not in the products table "
            f"({runtime.settings.products_file.name}); add it there first",
            [ErrorDetail(loc=["path", "product_id"], message="unknown product")],
        ) from None
    except RedisDownError as error:
        raise UnavailableError(f"stock not stored ({error}); retry later") from None
    return StockResponse(product_id=product_id, stock=body.stock, in_stock=body.stock > 0)
