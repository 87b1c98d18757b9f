"""blogweb.settings' readers of the environment: durations carry their unit in
their name (``_S``), and a variable renamed for it is still read under its
old name for one release, with a warning."""

import contextlib
import logging

import pytest

from blogweb.settings import database_from_env, env_seconds

OLD, NEW = "EXAMPLE_TIMEOUT", "EXAMPLE_TIMEOUT_S"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    for name in (OLD, NEW, "DB_CONN_MAX_AGE", "DB_CONN_MAX_AGE_S"):
        monkeypatch.delenv(name, raising=False)
    for name in ("DB_CONNECT_TIMEOUT", "DB_CONNECT_TIMEOUT_S", "DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.parametrize("value", [None, "", "  "])
def test_unset_or_empty_is_the_default(monkeypatch, value):
    if value is not None:
        monkeypatch.setenv(NEW, value)
    assert env_seconds(NEW, 0.5, old=OLD) == 0.5


def test_the_new_name_is_read(monkeypatch, recwarn):
    monkeypatch.setenv(NEW, "1.25")
    assert env_seconds(NEW, 0.5, old=OLD) == 1.25
    assert not [w for w in recwarn if issubclass(w.category, DeprecationWarning)]


def test_the_old_name_alone_still_works_and_warns(monkeypatch, caplog):
    monkeypatch.setenv(OLD, "0.75")
    deprecated = pytest.warns(DeprecationWarning, match=f"{OLD} is deprecated.*set {NEW} instead")
    with caplog.at_level(logging.WARNING, "blogweb.settings"), deprecated:
        assert env_seconds(NEW, 0.5, old=OLD) == 0.75
    assert f"{OLD} is deprecated" in caplog.text


def test_the_new_name_wins_and_the_old_one_is_said_to_be_ignored(monkeypatch, caplog):
    monkeypatch.setenv(NEW, "0.25")
    monkeypatch.setenv(OLD, "0.75")
    ignored = pytest.warns(DeprecationWarning, match=f"{OLD} is ignored")
    with caplog.at_level(logging.WARNING, "blogweb.settings"), ignored:
        assert env_seconds(NEW, 0.5, old=OLD) == 0.25
    assert f"{OLD} is ignored" in caplog.text


@pytest.mark.parametrize("name", [NEW, OLD])
def test_not_a_number_is_refused_naming_the_variable_set(monkeypatch, name):
    monkeypatch.setenv(name, "soon")
    warns = (
        pytest.warns(DeprecationWarning, match="deprecated")
        if name == OLD
        else contextlib.nullcontext()
    )
    with warns, pytest.raises(ValueError, match=f"{name} must be a number of seconds"):
        env_seconds(NEW, 0.5, old=OLD)


def test_the_database_durations_have_their_unit_in_their_name(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@db.example.org:5432/blog")
    monkeypatch.setenv("DB_CONN_MAX_AGE_S", "30")
    monkeypatch.setenv("DB_CONNECT_TIMEOUT_S", "1.5")
    config = database_from_env("sqlite:///unused.sqlite3")
    assert config["CONN_MAX_AGE"] == 30
    assert config["OPTIONS"]["connect_timeout"] == 2  # libpq takes whole seconds: up


def test_the_database_durations_old_names_still_work_with_a_warning(monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@db.example.org:5432/blog")
    monkeypatch.setenv("DB_CONN_MAX_AGE", "10")
    monkeypatch.setenv("DB_CONNECT_TIMEOUT", "3")
    with pytest.warns(DeprecationWarning, match="deprecated") as warned:
        config = database_from_env("sqlite:///unused.sqlite3")
    assert (config["CONN_MAX_AGE"], config["OPTIONS"]["connect_timeout"]) == (10, 3)
    assert {str(w.message).split()[0] for w in warned} == {"DB_CONN_MAX_AGE", "DB_CONNECT_TIMEOUT"}
