"""What GET /api/account shows a user: their usage against the daily and monthly limits."""

from typing import Any

import psycopg

from lib.accounts import quotas, spend
from lib.accounts.costs import usd_json
from lib.settings import Settings


def account_usage(conn: psycopg.Connection, *, user_id: str, settings: Settings) -> dict[str, Any]:
    """The rolling 24 hours the daily limits count, and the calendar month (UTC) of spend."""
    today = quotas.used_today(conn, user_id)
    return {
        "usage": {
            "trainingsToday": today.get("training", 0),
            "imagesToday": today.get("generation", 0),
            "trainingLimit": settings.training_daily_limit,
            "imageLimit": settings.generation_daily_limit,
            "spendMonthUsd": usd_json(spend.month_spend(conn, user_id)),
            "spendLimitUsd": usd_json(settings.monthly_spend_limit_usd),
        }
    }
