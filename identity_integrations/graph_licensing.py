"""Licences: the tenant's subscriptions, a user's licences (direct and group-inherited), and
atomic assign/swap in one assignLicense call."""

from __future__ import annotations

import uuid

from identity_integrations.graph_base import GraphBase
from identity_integrations.models import Sku, UserLicenses, WriteReceipt


class LicenseOps(GraphBase):
    async def subscribed_skus(self) -> list[Sku]:
        result = await self._call("read subscriptions", self._client.subscribed_skus.get)
        skus: list[Sku] = []
        for sku in (result.value if result else None) or []:
            if (sku.applies_to or "User") != "User":
                continue
            prepaid = sku.prepaid_units
            skus.append(
                Sku(
                    sku_id=str(sku.sku_id).lower(),
                    part_number=sku.sku_part_number or "",
                    enabled_units=int(getattr(prepaid, "enabled", 0) or 0),
                    consumed_units=int(sku.consumed_units or 0),
                )
            )
        return skus

    async def user_licenses(self, user_id: str) -> UserLicenses:
        from kiota_abstractions.base_request_configuration import RequestConfiguration
        from msgraph.generated.users.item.user_item_request_builder import UserItemRequestBuilder

        query = UserItemRequestBuilder.UserItemRequestBuilderGetQueryParameters(
            select=["id", "usageLocation", "assignedLicenses", "licenseAssignmentStates"]
        )
        builder = self._client.users.by_user_id(user_id)
        user = await self._call("read licences", lambda: builder.get(RequestConfiguration(query_parameters=query)))
        if user is None:
            return UserLicenses(usage_location=None)
        assigned = {str(lic.sku_id).lower() for lic in user.assigned_licenses or []}
        states = list(user.license_assignment_states or [])
        inherited_from: dict[str, list[str]] = {}
        for state in states:
            if state.assigned_by_group:
                inherited_from.setdefault(str(state.sku_id).lower(), []).append(str(state.assigned_by_group))
        # A SKU can be assigned directly *and* through a group: only states without a group are direct.
        # Without any states (older data) every assigned SKU counts as direct.
        direct = {str(s.sku_id).lower() for s in states if not s.assigned_by_group} if states else assigned
        return UserLicenses(
            usage_location=user.usage_location,
            direct=direct & assigned if assigned else direct,
            inherited=set(inherited_from),
            inherited_from=inherited_from,
        )

    async def assign_licenses(self, user_id: str, add: list[str], remove: list[str]) -> WriteReceipt:
        from msgraph.generated.models.assigned_license import AssignedLicense
        from msgraph.generated.users.item.assign_license.assign_license_post_request_body import (
            AssignLicensePostRequestBody,
        )

        body = AssignLicensePostRequestBody(
            add_licenses=[AssignedLicense(sku_id=uuid.UUID(sku), disabled_plans=[]) for sku in add],
            remove_licenses=[uuid.UUID(sku) for sku in remove],
        )
        builder = self._client.users.by_user_id(user_id).assign_license
        return await self._write("assign licences", lambda cfg: builder.post(body, cfg))
