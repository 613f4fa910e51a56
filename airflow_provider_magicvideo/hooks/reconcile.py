"""Finding the generation a submit may have created, in the account's usage log (``GET /v2/logs``).

Every request a task sends carries the same ``X-Client-Request-Id`` (stable across the task's tries), and
the log records it beside the ``inference_id``, which for a video submit is the generation id. So when a
submit's answer is lost, or an earlier try of the task may have submitted, the log says what exists.

Rows arrive through an analytics pipeline, late: absence means nothing until the whole window has passed.
The lookup therefore ends in one of three ways:

* a generation that is pending or completed (billed, or about to be) → use it;
* the whole window passed, the log answered every time, and no row of this task shows a live generation →
  ``None``: nothing billable exists (failed requests and generations that end in ``error`` are free), so the
  caller may submit (once);
* any doubt (the log cannot be read, a logged generation cannot be found) → :class:`AmbiguousSubmitError`.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from typing import TYPE_CHECKING

from airflow_provider_magicvideo.account import CREDITS_PER_GENERATION, Submission, iso_utc, submissions_of
from airflow_provider_magicvideo.exceptions import (
    AmbiguousSubmitError,
    GenerationNotFoundError,
    UnexpectedResponseError,
)
from airflow_provider_magicvideo.generation import Generation, GenerationStatus

if TYPE_CHECKING:
    from airflow_provider_magicvideo.hooks.magicvideo import MagicVideoHook

#: Usage-log paging: the documented maximum page, and how many pages one look reads at most.
LOG_PAGE_SIZE = 100
MAX_LOG_PAGES = 20
#: Rows created this long before ``since`` still count: the API's clock is not ours.
CLOCK_SKEW = 60.0
#: Seconds between looks at the log (the last repeats); the log allows 200 requests per minute.
BACKOFF = (5.0, 10.0, 20.0, 30.0)


def find_generation(hook: MagicVideoHook, *, model: str, since: float, window: float) -> Generation | None:
    """The live generation this hook's client request id created since ``since`` (epoch seconds), looking
    for up to ``window`` seconds; ``None`` only when the log proved there is none."""
    deadline = hook.clock() + window
    looks = 0
    while True:
        looks += 1
        generation, unresolved = _look_or_doubt(hook, model=model, since=since - CLOCK_SKEW)
        if generation is not None:
            hook.log.info("The usage log shows generation %s (%s) for request id %s: using it, not submitting "
                          "again", generation.id, generation.raw_status, hook.client_request_id)
            return generation
        remaining = deadline - hook.clock()
        if remaining <= 0:
            break
        delay = min(BACKOFF[min(looks, len(BACKOFF)) - 1], remaining)
        hook.log.info("No live generation for request id %s in the usage log yet (rows arrive late); looking "
                      "again in %.0fs (%.0fs left)", hook.client_request_id, delay, remaining)
        hook.sleep(delay)
    if unresolved:
        raise AmbiguousSubmitError(f"the usage log names generation(s) {', '.join(unresolved)} that the API does "
                                   "not find", client_request_id=hook.client_request_id)
    hook.log.info("The usage log shows no live generation for request id %s after %.0fs (%d looks)",
                  hook.client_request_id, window, looks)
    return None


def quote_of(generation: Generation) -> int:
    """The credits a reconnected generation was quoted: its answer was lost, so the status answer's figure when
    it has one, else the one documented price of every magic generation."""
    return generation.credits_used or CREDITS_PER_GENERATION


def settle_lost_submit(hook: MagicVideoHook, lost: AmbiguousSubmitError, *, model: str, since: float,
                       found: Callable[[Generation], Generation], resend: Callable[[], Generation]) -> Generation:
    """After a submit sent at ``since`` whose answer was lost: the generation it created (passed to ``found``),
    or, once the log proved it created none, what ``resend`` creates. A second lost answer is looked up too,
    but never sent a third time."""
    for attempt in (1, 2):
        hook.log.warning("Submit outcome unknown (%s): looking request id %s up in the usage log for up to %.0fs",
                         lost.cause, hook.client_request_id, hook.settings.reconcile_window)
        generation = find_generation(hook, model=model, since=since, window=hook.settings.reconcile_window)
        if generation is not None:
            return found(generation)
        if attempt == 2:
            break
        # The log answered throughout and shows no live generation: the request created nothing billable.
        hook.log.warning("The usage log proves the lost submit created nothing billable: submitting once more")
        try:
            return resend()
        except AmbiguousSubmitError as exc:
            if exc.generation_id:
                raise
            lost = exc
    raise AmbiguousSubmitError(f"{lost.cause}, twice; the usage log shows no generation",
                               client_request_id=hook.client_request_id)


def find_generations(hook: MagicVideoHook, client_request_ids: Collection[str], *, model: str, since: float,
                     window: float) -> dict[str, Generation | None]:
    """:func:`find_generation` for many client request ids at once (a batch task's rows): each look reads the log
    once for all of them (it allows 200 requests a minute), and the window is waited once, not once per id.

    Client request id → its live generation, or ``None`` when the log proved there is none; any doubt raises
    :class:`AmbiguousSubmitError`, as for one id."""
    wanted = set(client_request_ids)
    found: dict[str, Generation] = {}
    unresolved: list[str] = []
    deadline = hook.clock() + window
    looks = 0
    while True:
        looks += 1
        error: AmbiguousSubmitError | None = None
        try:
            by_id: dict[str, list[Submission]] = {}
            for row in submissions(hook, model=model, since=since - CLOCK_SKEW, client_request_ids=wanted - set(found)):
                by_id.setdefault(row.client_request_id, []).append(row)
            unresolved = []
            for request_id, rows in by_id.items():
                generation, missing = _live(hook, rows)
                unresolved += missing
                if generation is not None:
                    found[request_id] = generation
        except Exception as exc:  # whatever it is, the log was not read: that is doubt, not absence
            error = AmbiguousSubmitError(f"the usage log could not be checked: {type(exc).__name__}: {exc}",
                                         client_request_id=hook.client_request_id)
        if error is not None:
            raise error  # outside the handler: no chain back to texts the server sent
        remaining = deadline - hook.clock()
        if len(found) == len(wanted) or remaining <= 0:
            break
        delay = min(BACKOFF[min(looks, len(BACKOFF)) - 1], remaining)
        hook.log.info("The usage log shows %d of %d request ids so far (rows arrive late); looking again in %.0fs "
                      "(%.0fs left)", len(found), len(wanted), delay, remaining)
        hook.sleep(delay)
    if unresolved:
        raise AmbiguousSubmitError(f"the usage log names generation(s) {', '.join(unresolved)} that the API does "
                                   "not find", client_request_id=hook.client_request_id)
    return {request_id: found.get(request_id) for request_id in wanted}


def submissions(hook: MagicVideoHook, *, model: str, since: float,
                client_request_ids: Collection[str] | None = None) -> list[Submission]:
    """Rows of the usage log sent with the hook's client request id (or any of ``client_request_ids``) since
    ``since``, newest first."""
    found: list[Submission] = []
    for page in range(MAX_LOG_PAGES):
        # `end` far ahead: the API's clock may run ahead of ours, and no row is created in the future.
        payload = hook.get_usage_log(start=iso_utc(since), end=iso_utc(hook.clock() + 86_400), model=model,
                                     limit=LOG_PAGE_SIZE, offset=page * LOG_PAGE_SIZE)
        rows, more = submissions_of(payload, hook.client_request_id if client_request_ids is None
                                    else client_request_ids)
        found.extend(rows)
        if not more:
            return sorted(set(found), key=lambda row: row.created, reverse=True)
    raise UnexpectedResponseError(f"The usage log has more than {MAX_LOG_PAGES * LOG_PAGE_SIZE} {model} rows in "
                                  "the window; this task's cannot all be read.", status_code=200)


def _look_or_doubt(hook: MagicVideoHook, *, model: str, since: float) -> tuple[Generation | None, list[str]]:
    error: AmbiguousSubmitError
    try:
        return _look(hook, model=model, since=since)
    except Exception as exc:  # whatever it is, the log was not read: that is doubt, not absence
        error = AmbiguousSubmitError(f"the usage log could not be checked: {type(exc).__name__}: {exc}",
                                     client_request_id=hook.client_request_id)
    raise error  # outside the handler: no chain back to texts the server sent


def _look(hook: MagicVideoHook, *, model: str, since: float) -> tuple[Generation | None, list[str]]:
    return _live(hook, submissions(hook, model=model, since=since))


def _live(hook: MagicVideoHook, rows: list[Submission]) -> tuple[Generation | None, list[str]]:
    """The first live generation among one request id's rows (newest first), and the logged ids not found."""
    unresolved = []
    for row in rows:
        if not row.succeeded:  # a refused request, or a generation that ended in error: nothing was billed
            continue
        try:
            generation = hook.get_generation(row.generation_id)
        except GenerationNotFoundError:
            unresolved.append(row.generation_id)
            continue
        if generation.status is not GenerationStatus.ERROR:
            return generation, unresolved
    return None, unresolved
