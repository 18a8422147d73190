"""The API's routes, one module per resource; :data:`ROUTERS` in the order they are mounted."""

from __future__ import annotations

from serving.routes import admin, customers, decisions, events, operations, products

ROUTERS = (
    decisions.router,
    events.router,
    products.router,
    customers.router,
    admin.router,
    operations.router,
)
