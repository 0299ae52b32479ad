"""Secrets are never shown: one function masks every secret a line of text can carry.

``mask_secrets`` is applied to everything streamrec shows: ``streamrec config show``, every
error message, every log line (ours or a library's, by the logging setup). It hides:

- the password in a URL's user information, and the whole user information of a web URL
  (``https://TOKEN@host``: a token in the user's place);
- the credentials of an HTTP ``Authorization`` value (``Bearer ...``, ``Basic ...``);
- the value of a URL query parameter or of a ``key=value`` / ``"key": "value"`` pair whose
  key names a secret (any key ending in password, secret, token, api_key and the like).

A setting whose name says it holds a secret (``is_secret_name``) is shown as ``***`` whole.

>>> mask_secrets("cannot reach postgresql+psycopg://app:hunter2@db/recs")
'cannot reach postgresql+psycopg://app:***@db/recs'
>>> mask_secrets("cannot reach postgresql://db/recs?password=p1&sslpassword=p:2: refused")
'cannot reach postgresql://db/recs?password=***&sslpassword=***: refused'
>>> mask_secrets("{'sasl_plain_password': 's3 cret', 'retries': 3}")
"{'sasl_plain_password': '***', 'retries': 3}"
>>> mask_secrets('{"api_key": "k-123", "max_tokens": 5}')
'{"api_key": "***", "max_tokens": 5}'
>>> import json  # the same pairs inside a JSON-encoded string, as in a JSON log line
>>> json.loads(mask_secrets(json.dumps({"message": 'config {"token": "t-1"}'})))
{'message': 'config {"token": "***"}'}
>>> mask_secrets("git clone https://ghp_abc@example.com/x.git")
'git clone https://***@example.com/x.git'
>>> mask_secrets("Authorization: Bearer eyJ0.eXA.sig")
'Authorization: Bearer ***'
>>> is_secret_name("sasl_password"), is_secret_name("sasl_username")
(True, False)
"""

from __future__ import annotations

import re

MASK = "***"

# A key that names a secret: anything ending in one of these words (sslpassword,
# sasl_plain_password, client_secret, access_token, x-api-key, ...).
_SECRET_KEY = (
    r"[\w.-]*?(?:passw(?:or)?d|pwd|secret|token|api[_-]?key|access[_-]?key"
    r"|private[_-]?key|credentials?)"
)
_SECRET_NAME = re.compile(_SECRET_KEY, re.IGNORECASE)
# The password of scheme://user:password@host. It runs to the last '@' of the authority, so
# an unescaped '@' inside the password is hidden too.
_URL_PASSWORD = re.compile(r"(?P<before>[a-zA-Z][\w+.-]*://[^:/@\s?#]*:)[^\s/?#]+(?=@)")
# A web URL's user information holds no user name worth showing: it is a token or a user and
# password, hidden whole. (A database URL's user name stays: it tells which role connects.)
_WEB_USERINFO = re.compile(r"(?P<before>\b(?:https?|wss?)://)[^/@\s?#]+(?=@)", re.IGNORECASE)
# The credentials of an HTTP Authorization value, or of any bearer token.
_AUTHORIZATION = re.compile(
    r"(?P<before>\bauthorization['\"]?\s*[:=]\s*['\"]?(?:basic|bearer|digest)\s+|\bbearer\s+)"
    r"[\w.~+/=-]+",
    re.IGNORECASE,
)
# key=value, key: value, 'key': 'value', "key": "value"; a quoted value ends at its quote,
# a bare one at a delimiter, leaving a ':' or '.' that ends a phrase ("...?password=x: why").
# Quotes may be backslash-escaped: the same pairs inside a JSON-encoded string (a JSON log
# line's message).
_KEYED_SECRET = re.compile(
    rf"(?P<before>(?<![\w-]){_SECRET_KEY}(?:\\?['\"])?\s*[=:]\s*)"
    r"(?:(?P<quote>\\?['\"]).*?(?P=quote)"
    r"|[^'\"\s,;&)}\]\\]+?(?=[:.]?(?:[\s'\",;&)}\]\\]|$)))",
    re.IGNORECASE,
)


def mask_secrets(text: str) -> str:
    """``text`` with every secret it carries replaced by ``***``."""
    for pattern in (_WEB_USERINFO, _URL_PASSWORD, _AUTHORIZATION):
        text = pattern.sub(lambda match: match["before"] + MASK, text)
    return _KEYED_SECRET.sub(_masked_pair, text)


def is_secret_name(name: str) -> bool:
    """Whether a setting or parameter called ``name`` holds a secret."""
    return _SECRET_NAME.fullmatch(name) is not None


def _masked_pair(match: re.Match[str]) -> str:
    quote = match["quote"] or ""
    return f"{match['before']}{quote}{MASK}{quote}"
