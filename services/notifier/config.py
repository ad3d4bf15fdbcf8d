"""notifier settings: where to send (secret), what, and when the daily summary is due."""

from __future__ import annotations

import logging
import re

from pydantic import Field, SecretStr, field_validator

from services.notifier.messages import ALERT_LEVELS, NotifyKind
from shared.settings import ServiceSettings

_URL_SEPARATORS = re.compile(r"[\s,]+")


def split_urls(text: str) -> list[str]:
    """Apprise URLs separated by commas or whitespace, as Apprise itself reads a list."""
    return [part for part in _URL_SEPARATORS.split(text) if part]


class NotifierSettings(ServiceSettings):
    """``NOTIFY_URLS`` is a secret: it is never logged, and a bad entry is named by position and scheme only."""

    notify_urls: SecretStr = Field(SecretStr(""), alias="NOTIFY_URLS")
    notify_events: str = Field(",".join(kind.value for kind in NotifyKind), alias="NOTIFY_EVENTS")
    notify_alert_level: str = Field("warning", alias="NOTIFY_ALERT_LEVEL")
    notify_summary_at: str = Field("00:00", alias="NOTIFY_SUMMARY_AT")
    notify_retry_max_s: float = Field(300, alias="NOTIFY_RETRY_MAX_S", gt=0)
    notify_timeout_s: float = Field(15, alias="NOTIFY_TIMEOUT_S", gt=0)
    database_url: str = Field("sqlite:///var/bot.sqlite3", alias="DATABASE_URL")

    @field_validator("notify_urls")
    @classmethod
    def _check_urls(cls, value: SecretStr) -> SecretStr:
        import apprise

        # Apprise logs a URL it cannot parse (partly masked): not even that reaches a terminal here.
        logging.getLogger("apprise").setLevel(logging.CRITICAL)
        for index, url in enumerate(split_urls(value.get_secret_value()), start=1):
            if apprise.Apprise.instantiate(url) is None:
                scheme = url.split("://", 1)[0] if "://" in url else "?"
                raise ValueError(f"entry {index} (scheme {scheme!r}) is not a notification URL Apprise can use")
        return value

    @field_validator("notify_events")
    @classmethod
    def _check_events(cls, value: str) -> str:
        known = {kind.value for kind in NotifyKind}
        chosen = [part.strip() for part in value.split(",") if part.strip()]
        unknown = [part for part in chosen if part not in known]
        if unknown:
            raise ValueError(f"unknown {', '.join(unknown)}; choose from {', '.join(sorted(known))}")
        return ",".join(chosen)

    @field_validator("notify_alert_level")
    @classmethod
    def _check_level(cls, value: str) -> str:
        if value not in ALERT_LEVELS:
            raise ValueError(f"one of {', '.join(ALERT_LEVELS)}")
        return value

    @field_validator("notify_summary_at")
    @classmethod
    def _check_time(cls, value: str) -> str:
        match = re.fullmatch(r"([01]\d|2[0-3]):([0-5]\d)", value.strip())
        if match is None:
            raise ValueError("a UTC time of day as HH:MM, e.g. 00:00 or 21:30")
        return value.strip()

    @property
    def urls(self) -> list[str]:
        return split_urls(self.notify_urls.get_secret_value())

    @property
    def kinds(self) -> frozenset[NotifyKind]:
        return frozenset(NotifyKind(part) for part in self.notify_events.split(",") if part)

    @property
    def summary_minute(self) -> int:
        """Minutes after midnight (UTC, market time) at which a market day ends."""
        hours, minutes = self.notify_summary_at.split(":")
        return int(hours) * 60 + int(minutes)
