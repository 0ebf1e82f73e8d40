"""Account operations: sign-in block, sessions, risk, creation, manager, mailbox settings, mail."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from identity_integrations.graph_base import GraphBase, GraphError, odata_literal
from identity_integrations.models import DirectoryUser, NewUser, WriteReceipt
from tierone.errors import PermanentError


class NotLicensed(PermanentError):
    """The tenant lacks the licence for this feature (e.g. Entra ID P2 for risky users)."""


class UserOps(GraphBase):
    async def set_account_enabled(self, user_id: str, enabled: bool) -> WriteReceipt:
        from msgraph.generated.models.user import User

        builder = self._client.users.by_user_id(user_id)
        return await self._write("set sign-in", lambda cfg: builder.patch(User(account_enabled=enabled), cfg))

    async def revoke_sessions(self, user_id: str) -> WriteReceipt:
        builder = self._client.users.by_user_id(user_id).revoke_sign_in_sessions
        return await self._write("revoke sessions", lambda cfg: builder.post(cfg))

    async def user_risk(self, user_id: str) -> str | None:
        """The user's risk level, or None where the tenant has no Entra ID P2 (no risk data to act on)."""
        builder = self._client.identity_protection.risky_users.by_risky_user_id(user_id)
        try:
            risky = await self._call("read user risk", builder.get)
        except GraphError as exc:
            if exc.status == 403 and exc.mentions("not licensed", "premium license"):
                return None
            if exc.status == 404:
                return "none"
            raise
        level = getattr(risky, "risk_level", None)
        return str(getattr(level, "value", level) or "none")

    async def dismiss_risk(self, user_id: str) -> WriteReceipt:
        from msgraph.generated.identity_protection.risky_users.dismiss.dismiss_post_request_body import (
            DismissPostRequestBody,
        )

        builder = self._client.identity_protection.risky_users.dismiss
        try:
            return await self._write(
                "dismiss risk", lambda cfg: builder.post(DismissPostRequestBody(user_ids=[user_id]), cfg)
            )
        except GraphError as exc:
            if exc.status == 403 and exc.mentions("not licensed", "premium license"):
                raise NotLicensed("the tenant has no Entra ID P2 licence for risky users") from exc
            raise

    async def sessions_valid_from(self, user_id: str) -> datetime | None:
        """signInSessionsValidFromDateTime: moved forward by every session revocation (the read-back)."""
        from kiota_abstractions.base_request_configuration import RequestConfiguration
        from msgraph.generated.users.item.user_item_request_builder import UserItemRequestBuilder

        query = UserItemRequestBuilder.UserItemRequestBuilderGetQueryParameters(
            select=["id", "signInSessionsValidFromDateTime"]
        )
        builder = self._client.users.by_user_id(user_id)
        user = await self._call("read sessions", lambda: builder.get(RequestConfiguration(query_parameters=query)))
        return user.sign_in_sessions_valid_from_date_time if user else None

    async def create_user(self, new: NewUser, password: str) -> WriteReceipt:
        from msgraph.generated.models.password_profile import PasswordProfile
        from msgraph.generated.models.user import User

        body = User(
            account_enabled=True,
            display_name=new.display_name,
            given_name=new.given_name,
            surname=new.surname,
            user_principal_name=new.user_principal_name,
            mail_nickname=new.mail_nickname,
            usage_location=new.usage_location,
            job_title=new.job_title,
            department=new.department,
            password_profile=PasswordProfile(password=password, force_change_password_next_sign_in=True),
        )
        return await self._write("create user", lambda cfg: self._client.users.post(body, cfg))

    async def find_user_by_upn(self, upn: str) -> DirectoryUser | None:
        from kiota_abstractions.base_request_configuration import RequestConfiguration
        from msgraph.generated.users.users_request_builder import UsersRequestBuilder

        from identity_integrations.graph import USER_FIELDS, to_user

        query = UsersRequestBuilder.UsersRequestBuilderGetQueryParameters(
            filter=f"userPrincipalName eq {odata_literal(upn)}", select=USER_FIELDS
        )
        found = await self._call(
            "find user",
            lambda: self._client.users.get(request_configuration=RequestConfiguration(query_parameters=query)),
        )
        users = list((found.value if found else None) or [])
        return to_user(users[0]) if users else None

    async def set_manager(self, user_id: str, manager_id: str) -> WriteReceipt:
        from msgraph.generated.models.reference_update import ReferenceUpdate

        body = ReferenceUpdate(odata_id=f"https://graph.microsoft.com/v1.0/users/{manager_id}")
        builder = self._client.users.by_user_id(user_id).manager.ref
        return await self._write("set manager", lambda cfg: builder.put(body, cfg))

    async def set_usage_location(self, user_id: str, country: str) -> WriteReceipt:
        from msgraph.generated.models.user import User

        builder = self._client.users.by_user_id(user_id)
        return await self._write("set usage location", lambda cfg: builder.patch(User(usage_location=country), cfg))

    async def verified_domains(self) -> list[str]:
        result = await self._call("read domains", self._client.domains.get)
        return [str(d.id).lower() for d in (result.value if result else None) or [] if d.is_verified]

    async def auto_reply(self, user_id: str) -> dict[str, Any]:
        settings = await self._call(
            "read mailbox settings", self._client.users.by_user_id(user_id).mailbox_settings.get
        )
        reply = getattr(settings, "automatic_replies_setting", None)
        status = getattr(getattr(reply, "status", None), "value", None)
        return {"status": status or "disabled", "internal": getattr(reply, "internal_reply_message", None)}

    async def set_auto_reply(self, user_id: str, message: str) -> WriteReceipt:
        from msgraph.generated.models.automatic_replies_setting import AutomaticRepliesSetting
        from msgraph.generated.models.automatic_replies_status import AutomaticRepliesStatus
        from msgraph.generated.models.external_audience_scope import ExternalAudienceScope
        from msgraph.generated.models.mailbox_settings import MailboxSettings

        body = MailboxSettings(
            automatic_replies_setting=AutomaticRepliesSetting(
                status=AutomaticRepliesStatus.AlwaysEnabled,
                external_audience=ExternalAudienceScope.All,
                internal_reply_message=message,
                external_reply_message=message,
            )
        )
        builder = self._client.users.by_user_id(user_id).mailbox_settings
        return await self._write("set auto-reply", lambda cfg: builder.patch(body, cfg))

    async def send_mail(self, sender_id: str, to: str, subject: str, html: str) -> WriteReceipt:
        from msgraph.generated.models.body_type import BodyType
        from msgraph.generated.models.email_address import EmailAddress
        from msgraph.generated.models.item_body import ItemBody
        from msgraph.generated.models.message import Message
        from msgraph.generated.models.recipient import Recipient
        from msgraph.generated.users.item.send_mail.send_mail_post_request_body import SendMailPostRequestBody

        body = SendMailPostRequestBody(
            message=Message(
                subject=subject,
                body=ItemBody(content_type=BodyType.Html, content=html),
                to_recipients=[Recipient(email_address=EmailAddress(address=to))],
            ),
            save_to_sent_items=False,
        )
        builder = self._client.users.by_user_id(sender_id).send_mail
        return await self._write("send mail", lambda cfg: builder.post(body, cfg))
