"""Readiness checks of the comments service, run by blogweb.health.readyz
(READINESS_CHECKS): each raises when its dependency cannot answer."""

from comments import repository


def check_mongodb() -> None:
    repository.ping()
