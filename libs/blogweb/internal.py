"""Who may call the /internal/ routes: a credential per caller (ADR 0006).

Each component that calls another one's /internal/ routes has a token of its
own (``INTERNAL_TOKEN``, a secret) and sends it with its name, the one its
responses carry in X-Served-By::

    Authorization: Bearer <caller>.<token>

Each component that answers /internal/ routes lists the callers it accepts
(``INTERNAL_CALLERS``): ``<caller>:<SHA-256 of its token, hex>``, comma
separated; a name may appear twice while its token is rotated. The callee
keeps only hashes, so its settings cannot be used to call anyone.

``InternalCallerMiddleware`` guards every path under /internal/, whatever view
answers it (or none): no credential is a JSON 401, a wrong one (malformed, an
unknown caller, a wrong token) a JSON 403, and the request goes no further.
Tokens are compared by their hashes, in constant time, and never logged.
``call_service`` (blogweb.http) adds the header to the calls it makes to
/internal/ routes, and only to those.

    python -m blogweb.internal CALLER    # a new token, and the callee's entry for it
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import logging
import os
import re
import secrets
import sys
from urllib.parse import urlsplit

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse, JsonResponse

logger = logging.getLogger("blog.internal")

INTERNAL_PREFIX = "/internal/"
SCHEME = "Bearer"
MIN_TOKEN_CHARS = 32
MAX_TOKEN_CHARS = 256
NAME = re.compile(r"[a-z][a-z0-9-]{0,62}")
TOKEN = re.compile(r"[A-Za-z0-9._~+/=-]+")  # RFC 6750's b64token
HASH = re.compile(r"[0-9a-f]{64}")
NOT_PROVIDED = "Authentication credentials were not provided."
REFUSED = "Invalid credentials for an internal route."
# Compared against when the caller is unknown, so that every refusal costs the same.
_NO_HASH = hashlib.sha256(b"no caller has this token").hexdigest()


# --- settings --------------------------------------------------------------------------


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def caller_entry(name: str, token: str) -> str:
    """What a callee lists in INTERNAL_CALLERS for caller ``name`` with ``token``."""
    return f"{name}:{token_hash(token)}"


def parse_callers(text: str, *, variable: str = "INTERNAL_CALLERS") -> dict[str, tuple[str, ...]]:
    """``"a:<hex>,b:<hex>"`` -> {"a": ("<hex>",), "b": ("<hex>",)}. A malformed
    entry is an error naming its position (never its value: it may be a token
    pasted in the wrong place)."""
    callers: dict[str, tuple[str, ...]] = {}
    for position, entry in enumerate((e.strip() for e in text.split(",")), 1):
        if not entry:
            continue
        name, _, digest = entry.partition(":")
        if not NAME.fullmatch(name) or not HASH.fullmatch(digest):
            raise ImproperlyConfigured(
                f"{variable}: entry {position} is not <caller>:<its token's SHA-256, 64 hex>"
            )
        callers[name] = (*callers.get(name, ()), digest)
    return callers


def check_token(token: str, *, variable: str = "INTERNAL_TOKEN") -> str:
    """``token`` if it can be sent as a bearer token and is long enough."""
    if token and not (MIN_TOKEN_CHARS <= len(token) <= MAX_TOKEN_CHARS and TOKEN.fullmatch(token)):
        raise ImproperlyConfigured(
            f"{variable} must be {MIN_TOKEN_CHARS} to {MAX_TOKEN_CHARS} characters of "
            "A-Z a-z 0-9 - . _ ~ + / = (python -m blogweb.internal NAME makes one)"
        )
    return token


def internal_settings() -> dict:
    """The settings of the /internal/ routes, from the environment: this
    component's own token when it calls (INTERNAL_TOKEN; unset: it sends
    none), and the callers it accepts (INTERNAL_CALLERS; unset: none, every
    call to its /internal/ routes is refused)."""
    return {
        "INTERNAL_TOKEN": check_token(os.environ.get("INTERNAL_TOKEN", "").strip()),
        "INTERNAL_CALLERS": parse_callers(os.environ.get("INTERNAL_CALLERS", "")),
    }


# --- the caller's side -----------------------------------------------------------------


def authorization(name: str, token: str) -> str:
    return f"{SCHEME} {name}.{token}"


def is_internal(url: str) -> bool:
    return urlsplit(url).path.startswith(INTERNAL_PREFIX)


def outgoing_headers(url: str) -> dict[str, str]:
    """The credential for a call to ``url``: this component's, for an
    /internal/ route of another one; nothing for anything else."""
    if not is_internal(url) or not settings.configured:
        return {}
    token = getattr(settings, "INTERNAL_TOKEN", "")
    if not token:
        return {}
    return {"Authorization": authorization(settings.SERVED_BY, token)}


# --- the callee's side -----------------------------------------------------------------


def verify(header: str | None, accepted: dict[str, tuple[str, ...]]) -> tuple[int, str | None]:
    """(0, caller) when ``header`` names a caller in ``accepted`` with its
    token; (401, None) when there is no bearer credential; (403, name or
    None) otherwise."""
    scheme, _, credentials = (header or "").strip().partition(" ")
    if scheme.lower() != SCHEME.lower() or not credentials.strip():
        return 401, None
    name, dot, token = credentials.strip().partition(".")
    if not dot or not NAME.fullmatch(name) or not token or len(token) > MAX_TOKEN_CHARS:
        return 403, None
    presented = token_hash(token)
    matched = False
    for digest in accepted.get(name) or (_NO_HASH,):
        matched |= hmac.compare_digest(presented, digest)
    return (0, name) if matched and name in accepted else (403, name)


class InternalCallerMiddleware:
    """Every request under /internal/ must carry the credential of a caller
    this component accepts (INTERNAL_CALLERS); anything else is answered
    here, in the contract's error shape, before any view runs."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path_info.startswith(INTERNAL_PREFIX):
            return self.get_response(request)
        accepted = getattr(settings, "INTERNAL_CALLERS", {})
        status, caller = verify(request.headers.get("Authorization"), accepted)
        if status == 0:
            request.internal_caller = caller
            return self.get_response(request)
        reason = "no credential" if status == 401 else "refused credential"
        if not accepted:
            reason += "; this component accepts no caller (INTERNAL_CALLERS is empty)"
        logger.warning(
            "internal route refused: %s",
            reason,
            extra={"caller": caller, "method": request.method, "path": request.path},
        )
        if status == 401:
            response = JsonResponse({"detail": NOT_PROVIDED}, status=401)
            response["WWW-Authenticate"] = f'{SCHEME} realm="internal"'
            return response
        return JsonResponse({"detail": REFUSED}, status=403)


# --- python -m blogweb.internal CALLER ----------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="A new token for CALLER (its INTERNAL_TOKEN, a secret) and the entry "
        "every component it calls lists in INTERNAL_CALLERS."
    )
    parser.add_argument("caller", help="the caller's name (its X-Served-By: monolith, ...)")
    parser.add_argument(
        "--stdin", action="store_true", help="hash the token read from stdin instead"
    )
    args = parser.parse_args(argv)
    if not NAME.fullmatch(args.caller):
        parser.error(f"not a caller name: {args.caller!r}")
    token = sys.stdin.readline().strip() if args.stdin else secrets.token_urlsafe(32)
    try:
        check_token(token)
    except ImproperlyConfigured as exc:
        parser.error(str(exc))
    if not args.stdin:
        print(f"INTERNAL_TOKEN={token}")
    print(f"INTERNAL_CALLERS entry: {caller_entry(args.caller, token)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
