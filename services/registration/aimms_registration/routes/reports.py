"""Coordinators' view of the scheme's pipeline."""

from pydantic import BaseModel

from aimms_registration.routes.deps import Store
from aimms_shared.auth import ADMIN, Principal, require
from aimms_shared.http import api_router

router = api_router("reports")


class PipelineRow(BaseModel):
    """How many people are at each stage, for one programme and institution."""

    programme_id: str
    institution_id: str
    interested: int = 0
    registered: int = 0
    withdrawn: int = 0
    erased: int = 0


@router.get("/reports/pipeline", response_model=list[PipelineRow])
async def pipeline(
    store: Store, programme_id: str | None = None, caller: Principal = require(ADMIN)
) -> list[PipelineRow]:
    """Counts per programme and institution: expressed interest, registered (active), withdrawn, erased."""
    table: dict[tuple[str, str], PipelineRow] = {}
    for row in await store.pipeline(programme_id):
        key = (row["programme_id"], row["institution_id"])
        entry = table.setdefault(key, PipelineRow(programme_id=key[0], institution_id=key[1]))
        stage = {"active": "registered"}.get(row["stage"], row["stage"])
        setattr(entry, stage, getattr(entry, stage) + row["n"])
    return sorted(table.values(), key=lambda r: (r.programme_id, r.institution_id))
