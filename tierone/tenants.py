"""Which customer tenant a PSA company belongs to (the `tenants` table: PSA → company → tenant)."""

from __future__ import annotations

from pydantic import BaseModel

from psa_integrations.models import PsaKind
from tierone.intake import table_key
from tierone.storage import Table


class TenantMapping(BaseModel):
    psa: PsaKind
    company_id: str
    tenant_id: str
    customer_name: str = ""


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
        await self._table.upsert(
            {
                "PartitionKey": mapping.psa.value,
                "RowKey": table_key(mapping.company_id),
                "TenantId": mapping.tenant_id,
                "CustomerName": mapping.customer_name,
            }
        )
