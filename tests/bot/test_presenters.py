"""How the bot writes moments for people."""

from __future__ import annotations

from datetime import UTC, datetime

from nanobanana.bot.presenters import local_time, zone_name


def test_a_moment_is_shown_in_the_bot_time_zone_with_its_name(settings):
    settings.BOT_TIME_ZONE = "Europe/Moscow"
    assert local_time(datetime(2026, 12, 4, 13, 57, tzinfo=UTC)) == "04.12 16:57 MSK"


def test_the_zone_is_named_by_its_abbreviation(settings):
    settings.BOT_TIME_ZONE = "Europe/Moscow"
    assert zone_name() == "MSK"
    settings.BOT_TIME_ZONE = "Asia/Yekaterinburg"  # a zone the tz database names by its offset
    assert zone_name() == "+05"


def test_the_day_follows_the_zone_not_utc(settings):
    settings.BOT_TIME_ZONE = "Europe/Moscow"
    assert local_time(datetime(2026, 12, 31, 22, 30, tzinfo=UTC)) == "01.01 01:30 MSK"
    settings.BOT_TIME_ZONE = "UTC"
    assert local_time(datetime(2026, 12, 31, 22, 30, tzinfo=UTC)) == "31.12 22:30 UTC"
