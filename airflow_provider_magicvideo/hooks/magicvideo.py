"""The two hooks: the only classes that speak HTTP to the AI/ML API.

:class:`MagicVideoHook` (sync, ``requests``) serves operators and sensors; :class:`MagicVideoAsyncHook`
(``aiohttp``, a pooled session; in :mod:`.async_hook`, importable from here) serves the trigger. Both read
the connection through :mod:`.settings`, map failures through :mod:`.transport`, retry through :mod:`.retry`
and redact every text the server sent.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping
from functools import cached_property
from typing import TYPE_CHECKING, Any

import requests
from airflow.providers.common.compat.sdk import BaseHook
from requests.adapters import HTTPAdapter

from airflow_provider_magicvideo import metrics
from airflow_provider_magicvideo.account import Balance
from airflow_provider_magicvideo.exceptions import (
    AmbiguousSubmitError,
    AuthenticationError,
    InsufficientCreditsError,
    InvalidInputError,
    MagicVideoError,
    Resend,
)
from airflow_provider_magicvideo.generation import Generation, GenerationStatus, credits_of
from airflow_provider_magicvideo.hooks.identity import HookIdentity, auth_headers, status_params
from airflow_provider_magicvideo.hooks.polling import Wait
from airflow_provider_magicvideo.hooks.reconcile import (
    find_generation,
    find_generations,
    quote_of,
    settle_lost_submit,
)
from airflow_provider_magicvideo.hooks.retry import RetryPolicy
from airflow_provider_magicvideo.hooks.settings import MIN_POLL_INTERVAL, USER_AGENT, ApiSettings, positive_number
from airflow_provider_magicvideo.hooks.submission import build_submit_body
from airflow_provider_magicvideo.hooks.transport import (
    connection_error_sync,
    error_from_response,
    parse_json,
)
from airflow_provider_magicvideo.hooks.video import VideoStream, open_video
from airflow_provider_magicvideo.redaction import redact
from airflow_provider_magicvideo.templates import Model

if TYPE_CHECKING:
    from airflow_provider_magicvideo.hooks.async_hook import MagicVideoAsyncHook


class MagicVideoHook(HookIdentity, BaseHook):
    """Talks to ``/v2/video/generations`` with ``requests``.

    :param conn_id: Airflow connection of type ``magicvideo`` (password = API key).
    :param client_request_id: value of ``X-Client-Request-Id``.
    """

    hook_name = "AI/ML API Magic Video"

    def __init__(self, conn_id: str = HookIdentity.default_conn_name, *, client_request_id: str | None = None) -> None:
        super().__init__()
        self._init_identity(conn_id, client_request_id)
        self.sleep: Callable[[float], None] = time.sleep
        #: The wall clock of :meth:`wait_for_generation` (its deadline and the not-found grace); swap it with
        #: ``sleep`` for a fake clock in tests.
        self.clock: Callable[[], float] = time.time

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        """The connection form (for Airflow < 3.2; newer ones read ``ui-field-behaviour`` from provider info)."""
        from airflow_provider_magicvideo import get_provider_info

        behaviour = get_provider_info()["connection-types"][0]["ui-field-behaviour"]
        return {key.replace("-", "_"): value for key, value in behaviour.items()}

    @cached_property
    def settings(self) -> ApiSettings:
        """The connection, validated (raises :class:`ConnectionConfigError` before any request)."""
        return ApiSettings.from_connection(self.get_connection(self.conn_id))

    @cached_property
    def session(self) -> requests.Session:
        session = requests.Session()
        session.headers.update({"User-Agent": USER_AGENT, "Accept": "application/json"})
        # No urllib3-level retries: the policy decides, and must see each failure.
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=4, max_retries=0)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        return session

    def close(self) -> None:
        if "session" in self.__dict__:
            self.__dict__.pop("session").close()

    def _request(self, method: str, action: str, *, url: str | None = None, params: dict | None = None,
                 body: dict | None = None) -> tuple[Any, Mapping[str, str]]:
        settings = self.settings
        secrets = (settings.api_key,)
        headers = auth_headers(settings, self.client_request_id)

        def attempt() -> tuple[str, Mapping[str, str]]:
            error: MagicVideoError
            try:
                resp = self.session.request(method, url or settings.generations_url, params=params, json=body,
                                            headers=headers, timeout=settings.timeouts)
            except requests.RequestException as exc:
                error = connection_error_sync(exc, action, self.client_request_id)
            else:
                text = redact(resp.text, secrets)
                if resp.status_code < 400:
                    return text, resp.headers
                error = error_from_response(resp.status_code, text, resp.headers, action=action, secrets=secrets,
                                            client_request_id=self.client_request_id)
            raise error  # outside the handler: the library's exception text stays out of the chain

        policy = RetryPolicy(max_retries=settings.max_retries)
        text, resp_headers = policy.call(method, action, attempt, sleep=self.sleep)
        return parse_json(text, action, request_id=resp_headers.get("x-inference-id"), secrets=secrets), resp_headers

    # -- public API ----------------------------------------------------------------------------------
    def submit(self, *, model: str | Model = Model.IMAGE_TO_VIDEO, image: Any = None, video: Any = None,
               prompt: str | None = None, template: str | None = None,
               on_created: Callable[[str, int | None], None] | None = None) -> Generation:
        """Create a generation (billed on completion). Inputs are validated first: nothing is sent if wrong.

        ``on_created(generation_id, credits_quoted)`` runs as soon as the answer names the new generation, before
        anything else can fail, so the caller can record it durably (the submit operator writes it to the task's state
        store). Any failure once the request may have left is :class:`AmbiguousSubmitError`, never retried.
        """
        settings = self.settings
        body = build_submit_body(model=model, image=image, video=video, prompt=prompt, template=template,
                                 max_media_bytes=settings.max_media_bytes)
        sent_at = self.clock()
        try:
            return self._submit_once(body, on_created)
        except AmbiguousSubmitError as exc:
            if exc.generation_id or not settings.reconcile_window:
                raise
            lost = exc

        def found(generation: Generation) -> Generation:
            if on_created is not None:
                self._record(generation.id, quote_of(generation), on_created)
            metrics.generation_submitted(body["model"], body["template"])  # its answer was lost, not the submit
            return generation

        return settle_lost_submit(self, lost, model=body["model"], since=sent_at, found=found,
                                  resend=lambda: self._submit_once(body, on_created))

    def _submit_once(self, body: dict[str, str], on_created: Callable[[str, int | None], None] | None
                     ) -> Generation:
        try:
            payload, headers = self._request("POST", "submit", body=body)
            generation_id = payload.get("id") if isinstance(payload, Mapping) else None
            if not isinstance(generation_id, str) or not generation_id.strip():
                raise AmbiguousSubmitError("the answer names no generation id",
                                           client_request_id=self.client_request_id)
            generation_id = generation_id.strip()
        except MagicVideoError as exc:
            if exc.disposition.resend is not Resend.IF_IDEMPOTENT:
                raise
            # e.g. a 2xx whose body is not JSON: the POST was answered, so a billed render may exist.
            error = AmbiguousSubmitError(type(exc).__name__, client_request_id=self.client_request_id)
        except Exception as exc:  # e.g. a library error after the bytes went out
            error = AmbiguousSubmitError(type(exc).__name__, client_request_id=self.client_request_id)
        else:
            return self._created(generation_id, payload, headers, body, on_created)
        raise error

    def _created(self, generation_id: str, payload: Mapping[str, Any], headers: Mapping[str, str],
                 body: Mapping[str, str], on_created: Callable[[str, int | None], None] | None) -> Generation:
        if on_created is not None:
            self._record(generation_id, credits_of(payload, headers), on_created)
        try:
            generation = Generation.from_payload(payload, headers=headers)
        except MagicVideoError as exc:  # the render exists: keep its id, wait on it like any other
            self.log.warning("Generation %s was created but its submit answer is odd (%s)", generation_id, exc)
            generation = Generation(id=generation_id, status=GenerationStatus.QUEUED, raw_status="queued")
        self.log.info("Submitted %s generation %s with template %r (credits quoted: %s)", body["model"], generation.id,
                      body["template"], generation.credits_used)
        metrics.generation_submitted(body["model"], body["template"])
        return generation

    @staticmethod
    def _record(generation_id: str, credits_quoted: int | None, on_created: Callable[[str, int | None], None]
                ) -> None:
        error: AmbiguousSubmitError | None = None
        try:
            on_created(generation_id, credits_quoted)
        except Exception as exc:
            error = AmbiguousSubmitError(f"{type(exc).__name__} while recording it", generation_id=generation_id)
        if error is not None:
            raise error

    def find_generation(self, *, model: str, since: float, window: float | None = None) -> Generation | None:
        """The live (pending or completed) generation this hook's client request id created since ``since``
        (epoch seconds), from the usage log, looking for up to ``window`` seconds (default: the connection's
        ``reconcile_window``). ``None`` only when the log answered throughout and shows none; any doubt
        raises :class:`AmbiguousSubmitError`. See :mod:`.reconcile`."""
        limit = self.settings.reconcile_window if window is None else window
        return find_generation(self, model=str(Model(model).value if isinstance(model, Model) else model),
                               since=since, window=limit)

    def find_generations(self, client_request_ids: Collection[str], *, model: str, since: float,
                         window: float | None = None) -> dict[str, Generation | None]:
        """:meth:`find_generation` for many client request ids (a batch task's rows) with one log read per look
        and one window for all; see :func:`.reconcile.find_generations`."""
        limit = self.settings.reconcile_window if window is None else window
        return find_generations(self, client_request_ids, model=str(Model(model).value), since=since, window=limit)

    def get_usage_log(self, **params: Any) -> Any:
        """One page of the account's usage log (``GET /v2/logs``; free), as the API sent it."""
        payload, _ = self._request("GET", "usage log request", url=self.settings.logs_url, params=params)
        return payload

    def get_balance(self) -> Balance:
        """The account's credit balance (``GET /v1/billing/balance``; free)."""
        payload, _ = self._request("GET", "balance request", url=self.settings.balance_url)
        return Balance.from_payload(payload)

    def get_generation(self, generation_id: str) -> Generation:
        """Current status of a generation (one status GET, retried per the policy)."""
        payload, headers = self._request("GET", f"status request for {generation_id}",
                                         params=status_params(generation_id))
        return Generation.from_payload(payload, generation_id=generation_id, headers=headers)

    def wait_for_generation(self, generation_id: str, *, poll_interval: float | None = None,
                            timeout: float | None = None, max_consecutive_poll_failures: int = 5,
                            submitted_at: float | None = None) -> Generation:
        """Block until the generation completes and return it; raise on ``error`` or after ``timeout`` seconds."""
        interval = self.settings.poll_interval if poll_interval is None else positive_number(
            poll_interval, "poll_interval", minimum=MIN_POLL_INTERVAL, maximum=3600, error=InvalidInputError)
        limit = self.settings.wait_timeout if timeout is None else positive_number(
            timeout, "timeout", maximum=7 * 86_400, error=InvalidInputError)
        wait = Wait(generation_id, deadline=self.clock() + limit, poll_interval=interval, log=self.log,
                    max_consecutive_failures=max_consecutive_poll_failures, submitted_at=submitted_at,
                    clock=self.clock)
        while True:
            try:
                outcome: Generation | MagicVideoError = self.get_generation(generation_id)
            except MagicVideoError as exc:
                outcome = exc
            step = wait.after(outcome)
            if isinstance(step, Generation):
                return step
            self.sleep(step)

    def open_video(self, url: str, *, offset: int = 0) -> VideoStream:
        """Open a download of a rendered MP4 (see :func:`.video.open_video`)."""
        return open_video(self.session, self.settings, url, offset=offset, secrets=(self.settings.api_key,))

    def test_connection(self) -> tuple[bool, str]:
        """Check the key without spending credits: read the balance (free, documented)."""
        try:
            base_url = self.settings.base_url
            balance = self.get_balance()
        except AuthenticationError as exc:
            return False, f"API key rejected (HTTP 401). {exc.hint}"
        except InsufficientCreditsError as exc:
            return False, f"API key accepted but the account cannot spend (HTTP 403). {exc.hint}"
        except MagicVideoError as exc:
            return False, f"Connection test failed: {exc}"
        return True, f"Connection OK: key accepted by {base_url}, {balance.describe()}."


def __getattr__(name: str) -> Any:
    # MagicVideoAsyncHook is importable from here (its documented path) but loaded on first use: it pulls in
    # aiohttp, which only the triggerer needs, and every task process that parses a DAG imports this module.
    if name == "MagicVideoAsyncHook":
        from airflow_provider_magicvideo.hooks.async_hook import MagicVideoAsyncHook

        return MagicVideoAsyncHook
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["MagicVideoAsyncHook", "MagicVideoHook"]
