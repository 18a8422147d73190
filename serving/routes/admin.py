"""``/v1/admin``: operations that need the admin scope."""

from __future__ import annotations

from fastapi import APIRouter

from serving.deps import V1_ERRORS, Admin, model_status
from serving.schemas import ReloadResponse

router = APIRouter()


@router.post(
    "/v1/admin/models/reload",
    response_model=ReloadResponse,
    tags=["admin"],
    summary="Load the registry's champions now (checked, then swapped atomically)",
    responses=V1_ERRORS,
)
def reload(runtime: Admin) -> ReloadResponse:
    changed = runtime.models.refresh()
    if changed:
        runtime.metrics.model_reloads.inc()
    return ReloadResponse(changed=changed, models=model_status(runtime))
