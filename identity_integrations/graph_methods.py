"""Authentication methods: list, delete each through its own collection, and issue a Temporary
Access Pass. The generic DELETE /authentication/methods/{id} is delegated-only, so app-only code
deletes through the type-specific collection named by each method's @odata.type."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from identity_integrations.graph_base import GraphBase, GraphError
from identity_integrations.models import AuthMethod, WriteReceipt
from tierone.errors import PermanentError

# @odata.type → the collection that can delete it (app-only). Password is never deleted.
COLLECTIONS = {
    "#microsoft.graph.microsoftAuthenticatorAuthenticationMethod": "microsoft_authenticator_methods",
    "#microsoft.graph.phoneAuthenticationMethod": "phone_methods",
    "#microsoft.graph.softwareOathAuthenticationMethod": "software_oath_methods",
    "#microsoft.graph.fido2AuthenticationMethod": "fido2_methods",
    "#microsoft.graph.emailAuthenticationMethod": "email_methods",
    "#microsoft.graph.temporaryAccessPassAuthenticationMethod": "temporary_access_pass_methods",
    "#microsoft.graph.windowsHelloForBusinessAuthenticationMethod": "windows_hello_for_business_methods",
}
_BY_ID_BUILDER = {
    "microsoft_authenticator_methods": "by_microsoft_authenticator_authentication_method_id",
    "phone_methods": "by_phone_authentication_method_id",
    "software_oath_methods": "by_software_oath_authentication_method_id",
    "fido2_methods": "by_fido2_authentication_method_id",
    "email_methods": "by_email_authentication_method_id",
    "temporary_access_pass_methods": "by_temporary_access_pass_authentication_method_id",
    "windows_hello_for_business_methods": "by_windows_hello_for_business_authentication_method_id",
}


class TapPolicy(BaseModel):
    """The tenant's Temporary Access Pass policy (authenticationMethodConfigurations/TemporaryAccessPass)."""

    enabled: bool
    include_all_users: bool = False
    include_groups: list[str] = Field(default_factory=list)
    exclude_groups: list[str] = Field(default_factory=list)
    default_lifetime_minutes: int = 60
    minimum_lifetime_minutes: int = 60
    maximum_lifetime_minutes: int = 480
    usable_once_only: bool = False  # True: the policy allows one-time passes only

    def covers(self, group_ids: set[str]) -> bool:
        """Whether a user in these groups is in the policy's scope."""
        if not self.enabled or group_ids.intersection(self.exclude_groups):
            return False
        return self.include_all_users or bool(group_ids.intersection(self.include_groups))

    def lifetime(self, wanted: int) -> int:
        return max(self.minimum_lifetime_minutes, min(self.maximum_lifetime_minutes, wanted))


class DefaultMethodFirst(PermanentError):
    """Graph refuses to delete the default method while others remain: delete it last."""


class TapNotAllowed(PermanentError):
    """The tenant's Temporary Access Pass policy is off, or the user is out of its scope."""


def _label(method: Any) -> str:
    phone_type = getattr(getattr(method, "phone_type", None), "value", None)
    if phone_type:
        return str(phone_type)  # mobile, alternateMobile, office
    for attribute in ("display_name", "email_address", "model"):
        value = getattr(method, attribute, None)
        if value:
            return str(value)
    return ""


class AuthMethodOps(GraphBase):
    async def auth_methods(self, user_id: str) -> list[AuthMethod]:
        """Every method but the password, in Graph's order."""
        result = await self._call(
            "read auth methods", self._client.users.by_user_id(user_id).authentication.methods.get
        )
        methods: list[AuthMethod] = []
        for method in (result.value if result else None) or []:
            odata_type = getattr(method, "odata_type", "") or ""
            collection = COLLECTIONS.get(odata_type)
            if collection is None:
                continue  # the password, or a kind we never delete
            methods.append(AuthMethod(id=str(method.id), kind=collection, label=_label(method)))
        # A user cannot keep alternateMobile without mobile: delete the alternate first.
        return sorted(methods, key=lambda m: 0 if m.label == "alternateMobile" else 1)

    async def delete_auth_method(self, user_id: str, method: AuthMethod) -> WriteReceipt:
        collection = getattr(self._client.users.by_user_id(user_id).authentication, method.kind)
        item = getattr(collection, _BY_ID_BUILDER[method.kind])(method.id)
        try:
            return await self._write(f"delete {method.kind}", lambda cfg: item.delete(cfg))
        except GraphError as exc:
            if exc.status == 400 and exc.mentions("default method"):
                raise DefaultMethodFirst(exc.message) from exc
            if exc.status == 404:
                return WriteReceipt(status=404)  # already gone
            raise

    async def tap_policy(self) -> TapPolicy:
        configurations = self._client.policies.authentication_methods_policy.authentication_method_configurations
        builder = configurations.by_authentication_method_configuration_id("TemporaryAccessPass")
        config = await self._call("read TAP policy", builder.get)
        if config is None:
            return TapPolicy(enabled=False)

        def field(name: str, wire: str) -> Any:
            # Without the @odata.type discriminator the SDK leaves subtype fields in additional_data.
            value = getattr(config, name, None)
            return value if value is not None else (getattr(config, "additional_data", None) or {}).get(wire)

        state = field("state", "state")
        targets = field("include_targets", "includeTargets") or []
        excluded = field("exclude_targets", "excludeTargets") or []
        ids = [str(t.get("id") if isinstance(t, dict) else t.id) for t in targets]
        policy = TapPolicy(
            enabled=str(getattr(state, "value", state) or "").lower() == "enabled",
            include_all_users="all_users" in ids,
            include_groups=[i for i in ids if i != "all_users"],
            exclude_groups=[str(t.get("id") if isinstance(t, dict) else t.id) for t in excluded],
            usable_once_only=bool(field("is_usable_once", "isUsableOnce")),
        )
        limits = {
            "default_lifetime_minutes": field("default_lifetime_in_minutes", "defaultLifetimeInMinutes"),
            "minimum_lifetime_minutes": field("minimum_lifetime_in_minutes", "minimumLifetimeInMinutes"),
            "maximum_lifetime_minutes": field("maximum_lifetime_in_minutes", "maximumLifetimeInMinutes"),
        }
        return policy.model_copy(update={k: int(v) for k, v in limits.items() if v is not None})

    async def create_tap(self, user_id: str, lifetime_minutes: int, usable_once: bool) -> tuple[str, WriteReceipt]:
        from msgraph.generated.models.temporary_access_pass_authentication_method import (
            TemporaryAccessPassAuthenticationMethod,
        )

        body = TemporaryAccessPassAuthenticationMethod(lifetime_in_minutes=lifetime_minutes, is_usable_once=usable_once)
        builder = self._client.users.by_user_id(user_id).authentication.temporary_access_pass_methods
        try:
            receipt = await self._write("issue TAP", lambda cfg: builder.post(body, cfg))
        except GraphError as exc:
            if exc.mentions("UserCredentialPolicy"):
                raise TapNotAllowed("the tenant's Temporary Access Pass policy does not cover this user") from exc
            raise
        value = (receipt.body or {}).get("temporaryAccessPass")
        if not value:
            raise PermanentError("Graph issued a Temporary Access Pass without returning its value")
        receipt = receipt.model_copy(update={"body": None})  # the pass never travels further in the receipt
        return str(value), receipt
