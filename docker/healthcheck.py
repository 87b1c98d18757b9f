"""HEALTHCHECK of the Python images: GET /healthz on this container's port.

Stdlib only (the slim images have no curl or wget). Exit 0 on a 2xx, else 1.

The Host header is the first entry of DJANGO_ALLOWED_HOSTS, not 127.0.0.1:
Django answers 400 to a host it does not allow, and a production
DJANGO_ALLOWED_HOSTS need not list the loopback address.
"""

import os
import sys
import urllib.error
import urllib.request


def probe_host(allowed_hosts: str) -> str:
    first = allowed_hosts.split(",")[0].strip()
    # ".example.com" allows example.com and its subdomains; "*" allows anything.
    first = first.lstrip(".")
    return "localhost" if first in ("", "*") else first


def main() -> int:
    port = os.environ.get("PORT", "8000")
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/healthz",
        headers={"Host": probe_host(os.environ.get("DJANGO_ALLOWED_HOSTS", ""))},
    )
    try:
        with urllib.request.urlopen(request, timeout=3) as response:  # noqa: S310 (fixed http URL)
            return 0 if 200 <= response.status < 300 else 1
    except (urllib.error.URLError, OSError) as exc:
        print(f"healthcheck: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
