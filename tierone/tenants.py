"""Which customer tenant a PSA company belongs to (the `tenants` table: PSA → company → tenant)."""

from __future__ import annotations

from pydantic import BaseModel

from psa_integrations.models import PsaKind
from tierone.intake import table_key
from tierone.playbooks.context import OnboardingTemplate
from tierone.storage import Table


def _template(raw: object) -> OnboardingTemplate | None:
    return OnboardingTemplate.model_validate_json(str(raw)) if raw else None


class TenantMapping(BaseModel):
    psa: PsaKind
    company_id: str
    tenant_id: str
    customer_name: str = ""
    onboarding: OnboardingTemplate | None = None


class TenantMap:
    def __init__(self, table: Table) -> None:
        self._table = table

    async def get(self, psa: PsaKind, company_id: str) -> TenantMapping | None:
        entity = await self._table.get(psa.value, table_key(company_id))
        if entity is None:
            return None
        return TenantMapping(
            psa=psa,
            company_id=company_id,
            tenant_id=str(entity["TenantId"]),
            customer_name=str(entity.get("CustomerName", "")),
            onboarding=_template(entity.get("OnboardingTemplate")),
        )

    async def all(self, psa: PsaKind | None = None) -> list[TenantMapping]:
        rows = await (self._table.query("PartitionKey eq @pk", pk=psa.value) if psa else self._table.all())
        return [
            TenantMapping(
                psa=PsaKind(str(row["PartitionKey"])),
                company_id=str(row["RowKey"]),
                tenant_id=str(row["TenantId"]),
                customer_name=str(row.get("CustomerName", "")),
            )
            for row in rows
        ]

    async def put(self, mapping: TenantMapping) -> None:
        row = {
            "PartitionKey": mapping.psa.value,
            "RowKey": table_key(mapping.company_id),
            "TenantId": mapping.tenant_id,
            "CustomerName": mapping.customer_name,
        }
        if mapping.onboarding is not None:  # a merge: mapping without a template keeps the stored one
            row["OnboardingTemplate"] = mapping.onboarding.model_dump_json()
        await self._table.upsert(row)
