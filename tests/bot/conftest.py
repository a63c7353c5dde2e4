"""Fixtures for the inbox tests: database failures made by the database itself."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from django.db import connection

SQLSTATE_ADMIN_SHUTDOWN = "57P01"  # what a server going away mid-statement reports: OperationalError
SQLSTATE_DATA_EXCEPTION = "22000"  # a value the database refuses: DataError


@pytest.fixture
def inbox_insert_fails() -> Iterator[Callable[[int, str], None]]:
    """`fail(update_id, sqlstate)`: from then on, PostgreSQL raises `sqlstate`
    while inserting that update's inbox row. The rows of the same statement
    inserted before it are rolled back with it, as in a real failure."""
    created = False

    def fail(update_id: int, sqlstate: str) -> None:
        nonlocal created
        with connection.cursor() as cursor:
            cursor.execute(
                f"""
                CREATE OR REPLACE FUNCTION test_inbox_insert_fails() RETURNS trigger AS $$
                BEGIN
                    IF NEW.update_id = {int(update_id)} THEN
                        RAISE EXCEPTION 'injected by the test' USING ERRCODE = '{sqlstate}';
                    END IF;
                    RETURN NEW;
                END $$ LANGUAGE plpgsql;
                DROP TRIGGER IF EXISTS test_inbox_insert_fails ON bot_inboxupdate;
                CREATE TRIGGER test_inbox_insert_fails BEFORE INSERT ON bot_inboxupdate
                    FOR EACH ROW EXECUTE FUNCTION test_inbox_insert_fails();
                """
            )
        created = True

    yield fail
    if created:
        with connection.cursor() as cursor:
            cursor.execute(
                "DROP TRIGGER IF EXISTS test_inbox_insert_fails ON bot_inboxupdate;"
                "DROP FUNCTION IF EXISTS test_inbox_insert_fails();"
            )


@pytest.fixture
def inbox_transactions() -> Callable[[], int]:
    """`count()`: how many transactions wrote the inbox's rows (the rows one
    transaction wrote share its id, `xmin`)."""

    def count() -> int:
        with connection.cursor() as cursor:
            cursor.execute("SELECT count(DISTINCT xmin::text) FROM bot_inboxupdate")
            return int(cursor.fetchone()[0])

    return count
