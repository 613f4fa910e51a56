"""The spending guards checked before any POST: the DAG run's ``credit_budget`` and ``min_balance_renders``.

Every magicvideo task records what it committed to spend as its ``credits_used`` XCom (a completed or
in-flight generation's quote; one that ended in ``error`` records 0), so a task can sum what the other tasks
of its DAG run have spent. Best effort: tasks submitting at the same moment do not see each other.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow_provider_magicvideo.account import CREDITS_PER_GENERATION
from airflow_provider_magicvideo.exceptions import BalanceTooLowError, CreditBudgetExceededError, InvalidInputError
from airflow_provider_magicvideo.hooks.settings import positive_number

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Context

    from airflow_provider_magicvideo.hooks.magicvideo import MagicVideoHook

#: The XCom key every submitting task records its committed credits under.
CREDITS_XCOM_KEY = "credits_used"


def credit_budget_of(value: Any) -> int | None:
    """A ``credit_budget`` argument, checked when the DAG is parsed."""
    return None if value is None else positive_number(value, "credit_budget", integer=True, maximum=10**15,
                                                      error=InvalidInputError)


def min_balance_renders_of(value: Any) -> int | None:
    """A ``min_balance_renders`` argument, checked when the DAG is parsed."""
    return None if value is None else positive_number(value, "min_balance_renders", integer=True, maximum=10**6,
                                                      error=InvalidInputError)


def recorded_spend(context: Context) -> int:
    """The credits the DAG run's tasks (every map index) have recorded; this try's own were cleared when it
    started."""
    recorded = context["ti"].xcom_pull(task_ids=list(context["dag"].task_ids), key=CREDITS_XCOM_KEY) or []
    return int(sum(_numbers(recorded)))


def check_credit_budget(context: Context, budget: int | None, *, generations: int = 1, committed: int = 0) -> None:
    """Refuse (nothing sent) when the run's recorded spend, ``committed`` (this task's own generations still
    rendering or done, known from its state) and ``generations`` new ones would exceed ``budget``."""
    if budget is None or generations < 1:
        return
    spent = recorded_spend(context) + committed
    if spent + generations * CREDITS_PER_GENERATION > budget:
        more = "another generation" if generations == 1 else f"{generations:,} more generations"
        raise CreditBudgetExceededError(
            f"credit_budget: this DAG run has recorded {spent:,} credits; {more} "
            f"({generations * CREDITS_PER_GENERATION:,}) would exceed the budget of {budget:,}. Nothing was "
            "submitted. Raise credit_budget or render fewer items.")


def check_balance(hook: MagicVideoHook, minimum: int | None) -> None:
    """Refuse (nothing sent) unless the account's balance pays for ``minimum`` generations (one free request)."""
    if minimum is None:
        return
    balance = hook.get_balance()
    if balance.generations < minimum:
        raise BalanceTooLowError(
            f"min_balance_renders: the account's {balance.describe()}, fewer than the {minimum:,} required. "
            "Nothing was submitted. Top up the account or lower min_balance_renders.")


def _numbers(value: Any) -> list[float]:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return [value]
    if isinstance(value, (list, tuple)):
        return [n for item in value for n in _numbers(item)]
    return []


__all__ = ["CREDITS_XCOM_KEY", "check_balance", "check_credit_budget", "credit_budget_of", "min_balance_renders_of",
           "recorded_spend"]
