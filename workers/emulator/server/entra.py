"""The Entra ID routes: OpenID discovery, the client-credentials token, and the bearer check.

Only these routes answer without a token; every other route needs one issued here.
"""
from __future__ import annotations

import secrets
from urllib.parse import parse_qs

from workers.emulator.server.plumbing import Reply, RequestBase


class EntraRoutes(RequestBase):
    """Discovery and token issue for the emulated tenant, and the token check of every other route."""

    def _require_token(self) -> None:
        header = self.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Reply(401, "AuthenticationFailed",
                        "Authentication failed. The 'Authorization' header is missing.")
        if not self.emu.auth.valid(token.strip()):
            raise Reply(401, "AuthenticationFailed",
                        "Authentication failed. The access token is invalid or has expired.")

    def _openid(self, tenant: str) -> None:
        base = f"{self._origin()}/{tenant}"
        self._json(200, {
            "token_endpoint": f"{base}/oauth2/v2.0/token",
            "authorization_endpoint": f"{base}/oauth2/v2.0/authorize",
            "device_authorization_endpoint": f"{base}/oauth2/v2.0/devicecode",
            "end_session_endpoint": f"{base}/oauth2/v2.0/logout",
            "issuer": f"{base}/v2.0",
            "jwks_uri": f"{base}/discovery/v2.0/keys",
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "tenant_region_scope": "EU",
        })

    def _token(self, tenant: str, body: bytes) -> None:
        cfg = self.emu.config
        form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
        if tenant.lower() != cfg.tenant_id.lower():
            self._json(400, {"error": "invalid_request",
                             "error_description": f"AADSTS90002: Tenant '{tenant}' not found.",
                             "error_codes": [90002]})
            return
        if form.get("grant_type") != "client_credentials":
            self._json(400, {"error": "unsupported_grant_type",
                             "error_description": "AADSTS70003: The app requested an unsupported grant type.",
                             "error_codes": [70003]})
            return
        if form.get("client_id") != cfg.client_id or not secrets.compare_digest(
            form.get("client_secret", ""), cfg.client_secret
        ):
            self._json(401, {"error": "invalid_client",
                             "error_description": "AADSTS7000215: Invalid client secret provided.",
                             "error_codes": [7000215]})
            return
        token = self.emu.auth.issue(cfg.token_lifetime)
        self._json(200, {"token_type": "Bearer", "expires_in": cfg.token_lifetime,
                         "ext_expires_in": cfg.token_lifetime, "access_token": token})
