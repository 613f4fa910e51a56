"""The balance-based connection test and min_balance_renders against the emulator over a real socket."""

from __future__ import annotations

import pytest

from airflow_provider_magicvideo.account import CREDITS_PER_GENERATION
from airflow_provider_magicvideo.hooks.magicvideo import MagicVideoHook

pytestmark = pytest.mark.integration


def test_the_connection_test_reports_the_balance_and_spends_nothing(magicvideo_emulator, magicvideo_conn):
    magicvideo_conn(magicvideo_emulator.base_url)
    ok, message = MagicVideoHook().test_connection()
    assert ok, message
    balance = MagicVideoHook().get_balance()
    assert f"balance {balance.credits:,} credits (~{balance.credits // CREDITS_PER_GENERATION:,} generations)" in message
    assert magicvideo_emulator.stats()["total_posts"] == 0


def test_a_low_balance_is_a_warning_in_the_test(magicvideo_emulator, magicvideo_conn):
    magicvideo_emulator.set_faults(profile="no_credits")
    magicvideo_conn(magicvideo_emulator.base_url)
    ok, message = MagicVideoHook().test_connection()
    assert ok and "balance 0 credits (~0 generations)" in message
    assert "WARNING: the account reports a low balance" in message


def test_min_balance_renders_refuses_before_any_post(magicvideo_emulator, magicvideo_conn):
    from types import SimpleNamespace

    from airflow.providers.common.compat.sdk import AirflowFailException

    from airflow_provider_magicvideo.emulator.testing import data_uri, png_bytes
    from airflow_provider_magicvideo.operators.magicvideo import MagicVideoSubmitOperator

    magicvideo_emulator.set_faults(profile="no_credits")
    magicvideo_conn(magicvideo_emulator.base_url)
    op = MagicVideoSubmitOperator(task_id="submit", image=data_uri(png_bytes((1, 2, 3), (32, 32))),
                                  min_balance_renders=1)
    ti = SimpleNamespace(dag_id="d", task_id="submit", run_id="r", map_index=-1, try_number=1,
                         xcom_push=lambda **kw: None)
    with pytest.raises(AirflowFailException, match="min_balance_renders"):
        op.execute({"ti": ti, "task_state_store": None, "dag": SimpleNamespace(task_ids=["submit"]),
                    "outlet_events": {}})
    assert magicvideo_emulator.stats()["total_posts"] == 0
