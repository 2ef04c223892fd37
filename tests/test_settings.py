"""Hosted mode and its limits (core.settings), and the rate limiter (core.limits)."""
from __future__ import annotations

import pytest

from core.limits import RateLimiter
from core.settings import HOSTED_DEFAULTS, Settings, load_settings, read_secrets_table, settings


def test_locally_everything_is_open():
    local = load_settings({}, {})
    assert not local.hosted
    assert local.max_epochs is None and local.max_job_minutes is None and local.max_parameters is None
    assert local.predictions_per_minute is None and local.training_starts_per_hour is None
    assert local.max_live_streams is None


@pytest.mark.parametrize("value", ["1", "true", "Yes", "on"])
def test_the_environment_variable_turns_on_hosted_mode_with_its_limits(value):
    hosted = load_settings({"FACELAB_HOSTED": value, "FACELAB_DATA_DIR": " /srv/data "}, {})
    assert hosted.hosted and hosted.data_dir == "/srv/data"
    assert {name: getattr(hosted, name) for name in HOSTED_DEFAULTS} == HOSTED_DEFAULTS


def test_the_secrets_table_turns_it_on_and_changes_limits(tmp_path):
    secrets = tmp_path / "secrets.toml"
    secrets.write_text('[facelab]\nhosted = true\nmax_epochs = 5\ndata_dir = "/srv/fer"\n[other]\nx = 1\n')
    hosted = load_settings({"FACELAB_HOSTED": "0", "FACELAB_DATA_DIR": "/elsewhere"}, read_secrets_table(secrets))
    assert hosted.hosted and hosted.max_epochs == 5 and hosted.data_dir == "/srv/fer"
    assert hosted.max_job_minutes == HOSTED_DEFAULTS["max_job_minutes"]
    assert read_secrets_table(tmp_path / "absent.toml") == {}


@pytest.mark.parametrize("table, message", [
    ({"max_epoch": 5}, "unknown setting"),
    ({"max_epochs": "many"}, "not a valid int"),
    ({"max_epochs": -1}, "not a valid int"),
    ({"hosted": 3}, "not a valid bool"),
    ({"hosted": "ture"}, "not a valid bool"),
    ({"max_photos": 2.9}, "not a valid int"),
])
def test_a_typo_in_the_host_file_is_an_error_not_a_silent_default(table, message):
    with pytest.raises(ValueError, match=message):
        load_settings({}, table)


def test_a_misspelt_environment_variable_does_not_fall_open():
    with pytest.raises(ValueError, match="not a valid bool"):
        load_settings({"FACELAB_HOSTED": "enabled"}, {})


def test_settings_are_read_from_the_environment(monkeypatch):
    monkeypatch.setenv("FACELAB_HOSTED", "1")
    assert settings().hosted  # conftest clears the cache around every test


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_rate_limiter_allows_count_per_window_for_each_key():
    clock = Clock()
    limiter = RateLimiter(2, 60, clock=clock)
    assert limiter.allow("a") and limiter.allow("a") and not limiter.allow("a")
    assert limiter.allow("b")  # another visitor has their own window
    assert limiter.retry_after("a") == pytest.approx(60)
    clock.now += 30
    assert not limiter.allow("a") and limiter.retry_after("a") == pytest.approx(30)
    clock.now += 30.5
    assert limiter.retry_after("a") == 0 and limiter.allow("a")


def test_rate_limiter_counts_several_events_at_once_or_none():
    clock = Clock()
    limiter = RateLimiter(4, 60, clock=clock)
    assert limiter.allow("a")
    clock.now += 10
    assert limiter.allow("a", 3) and not limiter.allow("a")
    assert limiter.retry_after("a", 3) == pytest.approx(60), "the three came together: all three must expire"
    clock.now += 40
    assert limiter.retry_after("a") == pytest.approx(10) and not limiter.allow("a", 2)
    clock.now += 10
    assert not limiter.allow("a", 2) and limiter.allow("a"), "one expired: room for one, not two"
    with pytest.raises(ValueError):
        limiter.retry_after("a", 5)


def test_rate_limiter_without_a_count_allows_everything():
    limiter = RateLimiter(None, 60)
    assert all(limiter.allow("a") for _ in range(1000)) and limiter.retry_after("a") == 0


def test_rate_limiter_remembers_a_bounded_number_of_keys():
    limiter = RateLimiter(1, 60, max_keys=3)
    for key in "abcd":
        assert limiter.allow(key)
    assert limiter.allow("a")  # "a" was forgotten first, so it starts afresh
    assert not limiter.allow("d")
    assert len(limiter._events) == 3


def test_defaults_are_a_settings_object():
    assert Settings() == load_settings({}, {})
