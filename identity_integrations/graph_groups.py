"""Groups: find, classify, and change membership through members/$ref (never the user object).

Mail-enabled security groups and distribution lists are read-only in Graph (Exchange masters
them); dynamic and on-premises-synced groups cannot be changed from the cloud at all."""

from __future__ import annotations

from typing import Any

from identity_integrations.graph_base import GraphBase, GraphError, directory_object_url, odata_literal
from identity_integrations.models import Group, WriteReceipt

GROUP_FIELDS = [
    "id",
    "displayName",
    "mail",
    "groupTypes",
    "mailEnabled",
    "securityEnabled",
    "onPremisesSyncEnabled",
    "membershipRule",
    "isAssignableToRole",
    "assignedLicenses",
]


def to_group(group: Any) -> Group:
    return Group(
        id=str(group.id),
        display_name=group.display_name or "",
        mail=group.mail,
        group_types=list(group.group_types or []),
        mail_enabled=bool(group.mail_enabled),
        security_enabled=bool(group.security_enabled),
        on_premises_sync_enabled=bool(group.on_premises_sync_enabled),
        membership_rule=group.membership_rule,
        role_assignable=bool(group.is_assignable_to_role),
        licensed=bool(group.assigned_licenses),
    )


class GroupOps(GraphBase):
    async def find_groups(self, name_or_mail: str) -> list[Group]:
        from kiota_abstractions.base_request_configuration import RequestConfiguration
        from msgraph.generated.groups.groups_request_builder import GroupsRequestBuilder

        literal = odata_literal(name_or_mail.strip())
        query = GroupsRequestBuilder.GroupsRequestBuilderGetQueryParameters(
            filter=f"displayName eq {literal} or mail eq {literal}", select=GROUP_FIELDS, top=5
        )
        config = RequestConfiguration(query_parameters=query)
        result = await self._call("find group", lambda: self._client.groups.get(request_configuration=config))
        return [to_group(g) for g in (result.value if result else None) or []]

    async def user_groups(self, user_id: str) -> list[Group]:
        from kiota_abstractions.base_request_configuration import RequestConfiguration
        from msgraph.generated.users.item.member_of.graph_group.graph_group_request_builder import (
            GraphGroupRequestBuilder,
        )

        query = GraphGroupRequestBuilder.GraphGroupRequestBuilderGetQueryParameters(select=GROUP_FIELDS, top=999)
        builder = self._client.users.by_user_id(user_id).member_of.graph_group
        page = await self._call("read groups", lambda: builder.get(RequestConfiguration(query_parameters=query)))
        groups: list[Group] = []
        while page is not None:
            groups.extend(to_group(g) for g in page.value or [])
            if not page.odata_next_link:
                break
            page = await self._call("read groups", builder.with_url(page.odata_next_link).get)
        return groups

    async def is_member(self, group_id: str, user_id: str) -> bool:
        return any(group.id == group_id for group in await self.user_groups(user_id))

    async def add_member(self, group_id: str, user_id: str) -> WriteReceipt:
        from msgraph.generated.models.reference_create import ReferenceCreate

        builder = self._client.groups.by_group_id(group_id).members.ref
        body = ReferenceCreate(odata_id=directory_object_url(user_id))
        try:
            return await self._write("add group member", lambda cfg: builder.post(body, cfg))
        except GraphError as exc:
            if exc.status == 400 and exc.mentions("already exist"):
                return WriteReceipt(status=204)
            raise

    async def remove_member(self, group_id: str, user_id: str) -> WriteReceipt:
        # Always through /$ref: without it Graph deletes the member object itself.
        builder = self._client.groups.by_group_id(group_id).members.by_directory_object_id(user_id).ref
        try:
            return await self._write("remove group member", lambda cfg: builder.delete(cfg))
        except GraphError as exc:
            if exc.status == 404:
                return WriteReceipt(status=404)  # not a member (any more)
            raise
