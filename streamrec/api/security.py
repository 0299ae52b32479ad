"""Who may read and who may act: tokens, signed dashboard sessions and CSRF tokens.

- The **read API** is open unless ``api.read_token`` is set; then a request needs
  ``Authorization: Bearer <token>`` with the read or the operator token.
- The **dashboard** signs a person in with one of the tokens and keeps a session cookie
  (``role.expiry.nonce.signature``, HMAC-SHA256). The operator token gives the ``operator``
  role, the read token ``reader``. Reading pages needs a session only when a read token is
  set; the train and roll-back buttons always need an operator session.
- Every form that changes something carries a **CSRF token**, the HMAC of the session's
  nonce: a page of another site can make a browser send the cookie, but cannot read the
  token out of our page.

The signing key is derived from the configured tokens, so changing a token signs everyone
out; no key is stored anywhere. Tokens are compared in constant time.

>>> keys = SessionKeys(operator_token="o" * 16, read_token=None)
>>> cookie = keys.new_session(Role.OPERATOR, now=100.0)
>>> session = keys.session_of(cookie, now=200.0)
>>> session.role, keys.csrf_token_valid(session, keys.csrf_token(session))
(<Role.OPERATOR: 'operator'>, True)
>>> keys.session_of(cookie + "x", now=200.0) is None  # a forged signature
True
>>> keys.session_of(cookie, now=100.0 + SESSION_SECONDS + 1) is None  # expired
True
>>> keys.role_of_token("o" * 16), keys.role_of_token("guess")
(<Role.OPERATOR: 'operator'>, None)
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from enum import StrEnum

SESSION_COOKIE = "streamrec_session"
CSRF_FIELD = "csrf_token"
# How long a dashboard sign-in lasts.
SESSION_SECONDS = 12 * 3600.0


class Role(StrEnum):
    READER = "reader"
    OPERATOR = "operator"


@dataclass(frozen=True, slots=True)
class Session:
    role: Role
    expires_at: float
    nonce: str


class SessionKeys:
    """Checks tokens and signs sessions for one pair of configured tokens."""

    def __init__(self, operator_token: str | None, read_token: str | None) -> None:
        self._operator_token = operator_token
        self._read_token = read_token
        material = f"streamrec-dashboard\0{operator_token or ''}\0{read_token or ''}"
        self._key = hashlib.sha256(material.encode("utf-8")).digest()

    @property
    def reading_is_open(self) -> bool:
        """Whether reading needs no token (no read token is set)."""
        return self._read_token is None

    @property
    def actions_enabled(self) -> bool:
        """Whether anyone can act (an operator token is set)."""
        return self._operator_token is not None

    def role_of_token(self, token: str | None) -> Role | None:
        """The role a presented token gives, or None."""
        if not token:
            return None
        if self._operator_token is not None and _same(token, self._operator_token):
            return Role.OPERATOR
        if self._read_token is not None and _same(token, self._read_token):
            return Role.READER
        return None

    def new_session(self, role: Role, now: float) -> str:
        """A signed cookie value for a new session of ``role``."""
        body = f"{role.value}.{int(now + SESSION_SECONDS)}.{secrets.token_hex(16)}"
        return f"{body}.{self._sign('session:' + body)}"

    def session_of(self, cookie: str | None, now: float) -> Session | None:
        """The session a cookie value holds, if its signature is ours and it has not
        expired."""
        if not cookie or cookie.count(".") != 3:
            return None
        body, signature = cookie.rsplit(".", 1)
        if not _same(signature, self._sign("session:" + body)):
            return None
        role, expires, nonce = body.split(".")
        try:
            session = Session(Role(role), float(expires), nonce)
        except ValueError:
            return None
        if session.expires_at < now:
            return None
        # A session of a role whose token is no longer set is void.
        if session.role is Role.OPERATOR and not self.actions_enabled:
            return None
        return session

    def csrf_token(self, session: Session) -> str:
        return self._sign("csrf:" + session.nonce)

    def csrf_token_valid(self, session: Session, token: str | None) -> bool:
        return bool(token) and _same(token or "", self.csrf_token(session))

    def _sign(self, text: str) -> str:
        return hmac.new(self._key, text.encode("utf-8"), hashlib.sha256).hexdigest()


def bearer_token(authorization: str | None) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header.

    >>> bearer_token("Bearer abc"), bearer_token("Basic abc"), bearer_token(None)
    ('abc', None, None)
    """
    if not authorization:
        return None
    scheme, _, token = authorization.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def _same(given: str, expected: str) -> bool:
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))
