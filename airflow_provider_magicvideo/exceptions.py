"""Every error this provider raises, and what each one means for a retry: the disposition table.

Every decision-maker reads one attribute, ``exc.disposition`` (or :func:`disposition_of` for any
exception), instead of keeping its own list of classes:

* the hooks' retry policy reads ``resend`` (may this HTTP request be sent again?);
* the wait loop and the download loop read ``transient`` (may another poll / download attempt succeed?);
* operators read ``task_retry`` (may an Airflow retry of the task help, or must the task fail now?).

The table is :data:`DISPOSITIONS` at the bottom of this module. No message built here includes request
headers; text that came from the server is redacted by the hooks before it reaches an error.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any, ClassVar


class Resend(str, Enum):
    """May the hook send the same request again after this failure?"""

    ALWAYS = "always"  # nothing happened on the server (never sent, or refused before acting: 429)
    IF_IDEMPOTENT = "if idempotent"  # the server may have acted: a GET again, never a submit POST
    NEVER = "never"  # the same request gets the same answer


@dataclass(frozen=True)
class Disposition:
    resend: Resend
    transient: bool  # another poll or download attempt may succeed (tolerated while waiting)
    task_retry: bool  # an Airflow retry of the task may help; False fails the task at once

    def describe(self) -> str:
        return (f"resend {self.resend.value}; {'transient' if self.transient else 'not transient'}; "
                f"task {'may retry' if self.task_retry else 'fails'}")


class MagicVideoError(Exception):
    """Base class of every error raised by airflow-provider-magicvideo."""

    disposition: ClassVar[Disposition]


# =============================================================================== input: nothing was sent
class InvalidInputError(MagicVideoError, ValueError):
    """The task's input is wrong; raised before any HTTP call, so no credit was spent."""


class UnknownModelError(InvalidInputError):
    """``model`` is not one of the magic models."""


class UnknownTemplateError(InvalidInputError):
    """``template`` is not a template of the chosen model."""


class MediaError(InvalidInputError):
    """The image/video input cannot be used (empty, unreadable, not a regular file, not base64, wrong type)."""


class InvalidMediaError(MediaError):
    """The bytes claim a format (PNG, JPEG, WebP, MP4) but are structurally broken: the generation would fail."""


class MediaTooLargeError(MediaError):
    """The media is over the configured size limit."""


class ConnectionConfigError(InvalidInputError):
    """The Airflow connection is unusable (no API key, bad host, bad extra); found before any request."""


class CreditBudgetExceededError(InvalidInputError):
    """Submitting would take the DAG run's recorded spend over its ``credit_budget``."""


class BalanceTooLowError(InvalidInputError):
    """The account's balance pays for fewer generations than the operator's ``min_balance_renders``."""


# ============================================================================================ the API
class ApiError(MagicVideoError):
    """Something went wrong talking to the AI/ML API (or to the storage serving a rendered video).

    ``request_id`` is the API's ``requestId``/``x-inference-id`` when it sent one; ``client_request_id``
    the ``X-Client-Request-Id`` this provider sent.
    """

    hint: ClassVar[str] = ""

    def __init__(self, message: str, *, request_id: str | None = None, client_request_id: str | None = None) -> None:
        self.request_id = request_id
        self.client_request_id = client_request_id
        parts = [message]
        if self.hint:
            parts.append(self.hint)
        if request_id:
            parts.append(f"(requestId {request_id})")
        super().__init__(" ".join(parts))


class ApiConnectionError(ApiError):
    """No HTTP answer (connection reset, read timeout): the request may have reached the server."""


class ConnectFailedError(ApiConnectionError):
    """The request provably never reached the server (refused, DNS, connect timeout, TLS handshake)."""


class ApiStatusError(ApiError):
    """The server answered, with an error status or a body that cannot be used."""

    def __init__(self, message: str, *, status_code: int | None = None, api_message: str | None = None,
                 retry_after: float | None = None, **kwargs: Any) -> None:
        self.status_code = status_code
        self.api_message = api_message
        self.retry_after = retry_after
        super().__init__(message, **kwargs)


class AuthenticationError(ApiStatusError):
    """401: the API key was rejected."""

    hint = ("Fix: put a valid AI/ML API key in the password ('API key') field of the magicvideo "
            "connection; keys are at https://aimlapi.com/app/keys.")


class InsufficientCreditsError(ApiStatusError):
    """403: the key is valid but the account cannot pay (out of credits or plan limit)."""

    hint = "Fix: top up the balance or update the payment method at https://aimlapi.com/app/billing."


class RequestValidationError(ApiStatusError):
    """400: the API rejected the request body; ``problems`` holds one ``"field: problem"`` per issue."""

    def __init__(self, message: str, *, problems: list[str] | None = None, **kwargs: Any) -> None:
        self.problems = problems or []
        if self.problems:
            message = message + "\n" + "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(message, **kwargs)


class GenerationNotFoundError(ApiStatusError):
    """404: the API knows no generation with this id (or the base URL points at the wrong place)."""


class RateLimitError(ApiStatusError):
    """429: too many requests; ``retry_after`` is the server's hint in seconds, when it gave one."""


class ServerError(ApiStatusError):
    """5xx from the API."""


class UnexpectedResponseError(ApiStatusError):
    """A 2xx whose body cannot be used: not JSON, no status, another generation's id, no ``video.url``."""


class VideoUrlExpiredError(ApiStatusError):
    """The presigned video URL was refused (expired after its 10 minutes, or a bad signature)."""

    hint = "A fresh URL is signed on every status request."


class AmbiguousSubmitError(MagicVideoError):
    """A submit was sent but its outcome is unknown, so a billed generation may exist. Never resubmitted."""

    def __init__(self, cause: str, *, client_request_id: str | None = None, generation_id: str | None = None) -> None:
        self.cause = cause
        self.client_request_id = client_request_id
        self.generation_id = generation_id
        if generation_id:
            what = (f"Generation {generation_id} was created ({cause}) but could not be recorded for the task's "
                    f"retries. Wait on it with MagicVideoSensor(generation_id={generation_id!r}) instead of "
                    "submitting again.")
        else:
            ref = f" The request carried X-Client-Request-Id {client_request_id!r}." if client_request_id else ""
            what = (f"The submit request was sent but no usable answer came back ({cause}), so a generation may have "
                    f"been created and billed.{ref} It was NOT resubmitted automatically. Check your generations "
                    "and usage at https://aimlapi.com/app before running the task again; if a generation exists, wait "
                    "on its generation id with MagicVideoSensor instead of submitting again.")
        super().__init__(what)


# ===================================================================================== generation outcomes
class GenerationFailedError(MagicVideoError):
    """The generation ended in status ``error`` (not billed); carries the API's error name and message."""

    def __init__(self, generation_id: str, error_name: str | None, error_message: str | None) -> None:
        self.generation_id = generation_id
        self.error_name = error_name
        self.error_message = error_message
        super().__init__(f"Generation {generation_id} failed: {error_name or 'error'}: "
                         f"{error_message or 'the API gave no message'}")


class GenerationTimeoutError(MagicVideoError):
    """The generation was still pending when the wait's deadline passed (a task retry reconnects to it)."""

    def __init__(self, generation_id: str, deadline: str, last_status: str | None = None) -> None:
        self.generation_id = generation_id
        self.deadline = deadline
        self.last_status = last_status
        status = f" (last status: {last_status})" if last_status else ""
        super().__init__(
            f"Generation {generation_id} did not complete by its deadline {deadline}{status}. It may still finish: "
            f"wait on it again with MagicVideoSensor(generation_id={generation_id!r}) or raise the timeout "
            "instead of submitting a new generation."
        )


# ============================================================================================ delivery
class DeliveryError(MagicVideoError):
    """The MP4 could not be delivered intact; another attempt (or a task retry) may succeed."""


class PermanentDeliveryError(DeliveryError):
    """A delivery failure no retry can fix: unusable destination, not an MP4, a refused video URL, ..."""


class RenderNotCompletedError(DeliveryError):
    """The generation is not ``completed``. Final when it ended in ``error``; otherwise a retry may find it done."""

    def __init__(self, generation_id: str, status: str, detail: str | None = None) -> None:
        self.generation_id = generation_id
        self.status = status
        if status == "error":
            self.disposition = FINAL  # type: ignore[misc]  # this instance: it will never have a video
        why = f": {detail}" if detail else ""
        hint = (" It will never have a video; submit a new generation." if status == "error"
                else " Wait for it to complete (MagicVideoSensor) before delivering.")
        super().__init__(f"Cannot deliver generation {generation_id}: its status is {status!r}, "
                         f"not 'completed'{why}.{hint}")


# ============================================================================================= batches
class BatchIncompleteError(MagicVideoError):
    """Some rows of a batch render failed or are still rendering (listed, with the manifest's URI).

    A retry may help and costs nothing twice: it re-submits only the rows whose generation ended in ``error``
    (not billed), reconnects to the ones still rendering and delivers only what is missing."""


# ================================================================================== the disposition table
NEVER, IF_IDEMPOTENT, ALWAYS = Resend.NEVER, Resend.IF_IDEMPOTENT, Resend.ALWAYS
FINAL = Disposition(NEVER, transient=False, task_retry=False)
#: What an exception this provider did not classify gets: not resent, not tolerated; Airflow decides.
UNCLASSIFIED = Disposition(NEVER, transient=False, task_retry=True)

DISPOSITIONS: dict[type[MagicVideoError], Disposition] = {
    #                                      resend        transient         task may retry
    MagicVideoError:          Disposition(NEVER,         transient=False, task_retry=True),
    InvalidInputError:        FINAL,  # nothing was sent; fix the input (covers media, config, budget)
    ApiError:                 Disposition(NEVER,         transient=False, task_retry=True),
    ApiConnectionError:       Disposition(IF_IDEMPOTENT, transient=True,  task_retry=True),
    ConnectFailedError:       Disposition(ALWAYS,        transient=True,  task_retry=True),
    ApiStatusError:           Disposition(NEVER,         transient=False, task_retry=True),
    AuthenticationError:      FINAL,
    InsufficientCreditsError: FINAL,
    RequestValidationError:   FINAL,
    GenerationNotFoundError:  FINAL,  # the wait loop tolerates it for a short grace after the submit
    RateLimitError:           Disposition(ALWAYS,        transient=True,  task_retry=True),
    ServerError:              Disposition(IF_IDEMPOTENT, transient=True,  task_retry=True),
    UnexpectedResponseError:  Disposition(IF_IDEMPOTENT, transient=True,  task_retry=True),
    VideoUrlExpiredError:     Disposition(NEVER,         transient=True,  task_retry=True),  # fresh URL
    AmbiguousSubmitError:     FINAL,  # a retry could pay twice
    GenerationFailedError:    FINAL,
    GenerationTimeoutError:   Disposition(NEVER,         transient=False, task_retry=True),  # reconnects
    DeliveryError:            Disposition(NEVER,         transient=True,  task_retry=True),
    PermanentDeliveryError:   FINAL,
    RenderNotCompletedError:  Disposition(NEVER,         transient=False, task_retry=True),  # FINAL on error
    BatchIncompleteError:     Disposition(NEVER,         transient=False, task_retry=True),  # redoes only those
}
for _cls, _disposition in DISPOSITIONS.items():
    _cls.disposition = _disposition


def disposition_of(exc: BaseException) -> Disposition:
    """The disposition of any exception: the table's for ours, :data:`UNCLASSIFIED` for anything else."""
    return getattr(exc, "disposition", UNCLASSIFIED) if isinstance(exc, MagicVideoError) else UNCLASSIFIED
