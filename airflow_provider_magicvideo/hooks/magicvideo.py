"""The only code in this project that speaks HTTP to the AI/ML API.

:class:`MagicVideoHook` (sync, ``requests``) is used by operators and sensors;
:class:`MagicVideoAsyncHook` (``aiohttp``) by the trigger. Both share request building, response
parsing (:meth:`Generation.from_payload`) and the retry policy (:mod:`.retry`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import socket
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import requests
from airflow.providers.common.compat.sdk import BaseHook
from multidict import CIMultiDict
from requests.adapters import HTTPAdapter

from airflow_provider_magicvideo.exceptions import (
    AmbiguousSubmitError,
    ApiError,
    AuthenticationError,
    ConnectionConfigError,
    GenerationFailedError,
    GenerationNotFoundError,
    GenerationTimeoutError,
    InsufficientCreditsError,
    InvalidInputError,
    RequestValidationError,
    TransportError,
    UnexpectedResponseError,
    VideoUrlExpiredError,
    api_error_from_response,
)
from airflow_provider_magicvideo.generation import Generation, GenerationStatus
from airflow_provider_magicvideo.hooks.retry import (
    RetryPolicy,
    is_transient_poll_failure,
    poll_failure_backoff,
)
from airflow_provider_magicvideo.media import prepare_media
from airflow_provider_magicvideo.templates import Model, resolve_model, resolve_template

if TYPE_CHECKING:
    from airflow.providers.common.compat.sdk import Connection

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://api.aimlapi.com/v2"
GENERATIONS_PATH = "/video/generations"
USER_AGENT = "airflow-provider-magicvideo/0.1"
_CLIENT_ID_OK = re.compile(r"[^A-Za-z0-9._:-]+")
_LOOPBACK = ("localhost", "127.", "[::1]", "::1", "0.0.0.0")


def make_client_request_id(*parts: object) -> str:
    """An ``X-Client-Request-Id`` (1-128 chars of ``[A-Za-z0-9._:-]``) from ``parts``.

    Over-long ids keep their head and end with a short hash of the whole, so they stay unique.
    """
    raw = ":".join(str(p) for p in parts if p is not None and str(p) != "")
    text = _CLIENT_ID_OK.sub("-", raw).strip("-") or f"airflow:{uuid.uuid4().hex}"
    if len(text) > 128:
        import hashlib

        digest = hashlib.sha256(text.encode()).hexdigest()[:16]
        text = f"{text[:111]}:{digest}"
    return text


def client_request_id_for(context: Any) -> str:
    """A stable ``X-Client-Request-Id`` for a task instance: the same across its tries, so the API's
    logs (and the emulator's stats) tie every request of one render task together."""
    ti = context["ti"]
    return make_client_request_id("airflow", ti.dag_id, ti.task_id, ti.run_id, getattr(ti, "map_index", None))


def normalize_base_url(host: str | None, *, schema: str | None = None, port: int | None = None) -> str:
    """Connection host → API base URL ending in ``/v2``.

    ``None``/empty gives the public API. A host without scheme gets ``schema`` when it is http/https,
    else https (http for loopback hosts, where the emulator runs). A host without a path gets ``/v2``.
    """
    host = (host or "").strip()
    if not host:
        return DEFAULT_BASE_URL
    if "://" not in host:
        loopback_default = "http" if host.startswith(_LOOPBACK) else "https"
        scheme = schema if schema in ("http", "https") else loopback_default
        host = f"{scheme}://{host}"
    parts = urlsplit(host)
    try:
        host_port = parts.port  # raises ValueError for a non-numeric or out-of-range port
    except ValueError:
        host_port = -1
    if parts.scheme not in ("http", "https") or not parts.hostname or host_port == -1:
        raise ConnectionConfigError(
            f"host: {host!r} is not an http(s) address. Leave it empty for {DEFAULT_BASE_URL}."
        )
    netloc = parts.netloc
    if port and host_port is None:
        netloc = f"{netloc}:{port}"
    path = parts.path.rstrip("/") or "/v2"
    return urlunsplit((parts.scheme, netloc, path, "", ""))


def _int_extra(extra: Mapping[str, Any], name: str, default: float, cast: type = float) -> Any:
    value = extra.get(name)
    if value in (None, ""):
        return default
    try:
        number = cast(value)
    except (TypeError, ValueError):
        raise ConnectionConfigError(f"extra.{name}: {value!r} is not a number.") from None
    if number < 0:
        raise ConnectionConfigError(f"extra.{name}: must not be negative, got {value!r}.")
    return number


@dataclass(frozen=True)
class ApiSettings:
    """What a hook needs from its Airflow connection. The key is kept out of ``repr``."""

    base_url: str
    api_key: str = field(repr=False)
    connect_timeout: float = 10.0
    read_timeout: float = 30.0
    max_retries: int = 3
    poll_interval: float = 15.0
    wait_timeout: float = 1000.0
    max_media_bytes: int | None = None

    @classmethod
    def from_connection(cls, conn: Connection, extra: Mapping[str, Any] | None = None) -> ApiSettings:
        api_key = (conn.password or "").strip()
        if not api_key:
            raise ConnectionConfigError(
                f"Connection {conn.conn_id!r} has no API key. Put the AI/ML API key in the connection's "
                "password ('API key') field."
            )
        extra = conn.extra_dejson if extra is None else extra
        max_media = extra.get("max_media_bytes")
        return cls(
            base_url=normalize_base_url(conn.host, schema=conn.schema, port=conn.port),
            api_key=api_key,
            connect_timeout=_int_extra(extra, "connect_timeout", 10.0),
            read_timeout=_int_extra(extra, "timeout", 30.0),
            max_retries=_int_extra(extra, "max_retries", 3, int),
            poll_interval=_int_extra(extra, "poll_interval", 15.0),
            wait_timeout=_int_extra(extra, "wait_timeout", 1000.0),
            max_media_bytes=None if max_media in (None, "") else _int_extra(extra, "max_media_bytes", 0, int),
        )

    @property
    def generations_url(self) -> str:
        return self.base_url + GENERATIONS_PATH

    @property
    def retry_policy(self) -> RetryPolicy:
        return RetryPolicy(max_retries=self.max_retries)

    def headers(self, client_request_id: str) -> dict[str, str]:
        return {
            "Authorization": f"Bearer {self.api_key}",
            "Accept": "application/json",
            "User-Agent": USER_AGENT,
            "X-Client-Request-Id": client_request_id,
        }


def build_submit_body(
    *,
    model: str | Model = Model.IMAGE_TO_VIDEO,
    image: Any = None,
    video: Any = None,
    prompt: str | None = None,
    template: str | None = None,
    max_media_bytes: int | None = None,
) -> dict[str, str]:
    """Validate inputs and build the POST body. Raises :class:`InvalidInputError` before any HTTP call."""
    resolved = resolve_model(model)
    body = {"model": resolved.value}
    given = {"image": image is not None, "video": video is not None, "prompt": prompt is not None}
    wanted = {Model.IMAGE_TO_VIDEO: "image", Model.VIDEO_TO_VIDEO: "video", Model.TEXT_TO_VIDEO: "prompt"}[resolved]
    extra = [name for name, present in given.items() if present and name != wanted]
    if extra:
        raise InvalidInputError(
            f"{', '.join(extra)}: not used by {resolved.value}, which takes {wanted!r}. Remove it or change model."
        )
    if resolved is Model.TEXT_TO_VIDEO:
        if not isinstance(prompt, str) or not prompt.strip():
            raise InvalidInputError(f"prompt: {resolved.value} needs a non-empty text prompt.")
        body["prompt"] = prompt.strip()
    else:
        body[resolved.media_field] = prepare_media(
            image if resolved is Model.IMAGE_TO_VIDEO else video,
            kind="image" if resolved is Model.IMAGE_TO_VIDEO else "video",
            max_bytes=max_media_bytes,
        )
    body["template"] = resolve_template(template, resolved)
    return body


def _transport_error_sync(exc: requests.RequestException, action: str) -> TransportError:
    """Classify a ``requests`` failure: did the request possibly reach the server?"""
    import urllib3.exceptions as u3

    not_sent_types: tuple[type[BaseException], ...] = (
        u3.NewConnectionError, u3.ConnectTimeoutError, socket.gaierror, ConnectionRefusedError,
    )
    seen: set[int] = set()
    stack: list[Any] = [exc]
    not_sent = isinstance(exc, requests.ConnectTimeout)
    while stack and not not_sent:
        cur = stack.pop()
        if cur is None or id(cur) in seen or not isinstance(cur, BaseException):
            continue
        seen.add(id(cur))
        if isinstance(cur, not_sent_types):
            not_sent = True
        stack.extend([getattr(cur, "reason", None), cur.__cause__, cur.__context__, *cur.args])
    kind = "could not connect" if not_sent else "no answer"
    return TransportError(f"AI/ML API {action}: {kind} ({type(exc).__name__})", request_sent=not not_sent)


def _transport_error_async(exc: BaseException, action: str) -> TransportError:
    # ConnectionTimeoutError (aiohttp >= 3.10) is a connect timeout: the request never left.
    not_sent = isinstance(exc, (aiohttp.ClientConnectorError, getattr(aiohttp, "ConnectionTimeoutError", ())))
    kind = "could not connect" if not_sent else "no answer"
    return TransportError(f"AI/ML API {action}: {kind} ({type(exc).__name__})", request_sent=not not_sent)


def _parse_json(text: str, action: str, request_id: str | None) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        snippet = " ".join(text.split())[:120]
        raise UnexpectedResponseError(
            f"AI/ML API {action} answered with a body that is not JSON: {snippet!r}", request_id=request_id
        ) from None


def _request_id(headers: Mapping[str, str]) -> str | None:
    return headers.get("x-inference-id") or headers.get("x-request-id")


# ================================================================================================= sync
class MagicVideoHook(BaseHook):
    """Talks to the AI/ML API ``/v2/video/generations`` endpoint with ``requests``.

    :param conn_id: Airflow connection of type ``magicvideo`` (password = API key).
    :param client_request_id: value for ``X-Client-Request-Id``; operators derive it from the task
        instance. A random one is used otherwise.
    """

    conn_name_attr = "conn_id"
    default_conn_name = "magicvideo_default"
    conn_type = "magicvideo"
    hook_name = "AI/ML API Magic Video"

    def __init__(self, conn_id: str = default_conn_name, *, client_request_id: str | None = None) -> None:
        super().__init__()
        self.conn_id = conn_id
        self.client_request_id = make_client_request_id(client_request_id) if client_request_id else (
            make_client_request_id("airflow", uuid.uuid4().hex)
        )
        self._sleep = time.sleep

    @classmethod
    def get_ui_field_behaviour(cls) -> dict[str, Any]:
        from airflow_provider_magicvideo import get_provider_info

        return get_provider_info()["connection-types"][0]["ui-field-behaviour"]

    @cached_property
    def settings(self) -> ApiSettings:
        return ApiSettings.from_connection(self.get_connection(self.conn_id))

    @cached_property
    def session(self) -> requests.Session:
        session = requests.Session()
        # No urllib3-level retries: the policy in .retry decides, and must see each failure.
        adapter = HTTPAdapter(pool_connections=1, pool_maxsize=4, max_retries=0)
        session.mount("https://", adapter)
        session.mount("http://", adapter)
        return session

    def close(self) -> None:
        if "session" in self.__dict__:
            self.session.close()
            del self.__dict__["session"]

    def _call(
        self, method: str, action: str, *, params: dict | None = None, body: dict | None = None
    ) -> tuple[Any, Mapping[str, str]]:
        settings = self.settings
        headers = settings.headers(self.client_request_id)

        def attempt() -> requests.Response:
            try:
                resp = self.session.request(
                    method, settings.generations_url, params=params, json=body, headers=headers,
                    timeout=(settings.connect_timeout, settings.read_timeout),
                )
            except requests.RequestException as exc:
                lost = _transport_error_sync(exc, action)
                lost.client_request_id = self.client_request_id
                raise lost from None
            self.log.debug("%s %s -> %s (requestId %s, X-Client-Request-Id %s)", method, GENERATIONS_PATH,
                           resp.status_code, _request_id(resp.headers), self.client_request_id)
            if resp.status_code >= 400:
                err = api_error_from_response(resp.status_code, resp.text, resp.headers, action=action)
                err.client_request_id = self.client_request_id
                raise err
            return resp

        resp = settings.retry_policy.call(method, action, attempt, sleep=self._sleep)
        return _parse_json(resp.text, action, _request_id(resp.headers)), resp.headers

    # -- public API ----------------------------------------------------------------------------------
    def submit(
        self,
        *,
        model: str | Model = Model.IMAGE_TO_VIDEO,
        image: Any = None,
        video: Any = None,
        prompt: str | None = None,
        template: str | None = None,
    ) -> Generation:
        """Create a render (billed). Inputs are validated first; nothing is sent if they are wrong."""
        body = build_submit_body(
            model=model, image=image, video=video, prompt=prompt, template=template,
            max_media_bytes=self.settings.max_media_bytes,
        )
        try:
            payload, headers = self._call("POST", "submit", body=body)
            generation = Generation.from_payload(payload, headers=headers)
        except UnexpectedResponseError as exc:
            # A 2xx we cannot read may still have created (and billed) a render.
            raise AmbiguousSubmitError(str(exc), client_request_id=self.client_request_id) from exc
        self.log.info("Submitted %s render %s with template %r (credits used: %s)",
                      body["model"], generation.id, body["template"], generation.credits_used)
        return generation

    def get_generation(self, generation_id: str) -> Generation:
        """Current status of a render (one status GET, retried per the policy)."""
        payload, headers = self._call(
            "GET", f"status request for {generation_id}", params={"generation_id": generation_id}
        )
        return Generation.from_payload(payload, generation_id=generation_id, headers=headers)

    def wait_for_generation(
        self,
        generation_id: str,
        *,
        poll_interval: float | None = None,
        timeout: float | None = None,
        max_consecutive_poll_failures: int = 5,
        deadline: float | None = None,
    ) -> Generation:
        """Block until the render completes; return it, or raise on error/timeout.

        ``deadline`` (epoch seconds) wins over ``timeout`` so a retried task keeps its original limit.
        Raises :class:`GenerationFailedError` on status ``error`` and :class:`GenerationTimeoutError`.
        """
        interval = self.settings.poll_interval if poll_interval is None else poll_interval
        limit = self.settings.wait_timeout if timeout is None else timeout
        end = deadline if deadline is not None else time.time() + limit
        tracker = PollTracker(generation_id, max_consecutive_poll_failures, self.log)
        while True:
            try:
                generation = self.get_generation(generation_id)
            except Exception as exc:
                delay = tracker.failed(exc, interval)
            else:
                tracker.observed(generation)
                if generation.status is GenerationStatus.COMPLETED:
                    return generation
                if generation.status is GenerationStatus.ERROR:
                    raise GenerationFailedError(generation_id, generation.error_name, generation.error_message)
                delay = interval
            remaining = end - time.time()
            if remaining <= 0:
                raise GenerationTimeoutError(generation_id, tracker.elapsed, tracker.last_status)
            self._sleep(min(delay, remaining))

    def open_video(self, url: str, *, offset: int = 0) -> requests.Response:
        """Open a streaming GET of a rendered MP4 (from ``offset`` with a Range request).

        The caller iterates ``response.iter_content`` and must close the response. A 403 (expired or
        badly signed URL) raises :class:`VideoUrlExpiredError`; network failures raise
        :class:`TransportError`. No API key is sent: presigned URLs carry their own authorisation.
        """
        headers = {"User-Agent": USER_AGENT}
        if offset:
            headers["Range"] = f"bytes={offset}-"
        settings = self.settings
        try:
            resp = self.session.get(url, headers=headers, stream=True,
                                    timeout=(settings.connect_timeout, settings.read_timeout))
        except requests.RequestException as exc:
            raise _transport_error_sync(exc, "video download") from None
        if resp.status_code in (401, 403):
            text = resp.text[:500]
            resp.close()
            code = re.search(r"<Code>([^<]+)</Code>", text)
            message = re.search(r"<Message>([^<]+)</Message>", text)
            raise VideoUrlExpiredError(
                f"Video URL refused with HTTP {resp.status_code}: "
                f"{code.group(1) if code else 'AccessDenied'}: {message.group(1) if message else text[:120]}",
                status_code=resp.status_code,
            )
        if resp.status_code >= 400:
            text = resp.text
            resp.close()
            raise api_error_from_response(resp.status_code, text, resp.headers, action="video download")
        return resp

    def test_connection(self) -> tuple[bool, str]:
        """Check the key without spending credits: ask for a generation id that cannot exist."""
        probe = f"airflow-connection-test-{uuid.uuid4().hex}"
        try:
            base_url = self.settings.base_url
            self._call("GET", "connection test", params={"generation_id": probe})
        except (GenerationNotFoundError, RequestValidationError):
            return True, f"Connection OK: the API key was accepted by {base_url} (no credits spent)."
        except AuthenticationError as exc:
            return False, f"API key rejected (HTTP 401). {exc.hint}"
        except InsufficientCreditsError as exc:
            return False, f"API key accepted but the account cannot spend (HTTP 403). {exc.hint}"
        except Exception as exc:
            return False, f"Connection test failed: {exc}"
        return True, f"Connection OK: {base_url} answered (no credits spent)."


class PollTracker:
    """Bookkeeping for one wait: logs only status changes, counts failed polls, decides to give up."""

    def __init__(self, generation_id: str, max_consecutive_failures: int, logger: Any) -> None:
        self.generation_id = generation_id
        self.max_consecutive_failures = max_consecutive_failures
        self.log = logger
        self.started = time.monotonic()
        self.last_status: str | None = None
        self.consecutive_failures = 0
        self.polls = 0

    @property
    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def observed(self, generation: Generation) -> None:
        self.polls += 1
        if self.consecutive_failures:
            self.log.info("Generation %s: status polls work again after %d failure(s)",
                          self.generation_id, self.consecutive_failures)
        self.consecutive_failures = 0
        if generation.raw_status != self.last_status:
            self.log.info("Generation %s: %s (after %.0fs)", self.generation_id, generation.raw_status,
                          self.elapsed)
            self.last_status = generation.raw_status

    def failed(self, exc: BaseException, poll_interval: float) -> float:
        """Record a failed poll; re-raise when it is fatal or one too many. Returns the backoff delay."""
        self.polls += 1
        if not is_transient_poll_failure(exc):
            raise exc
        self.consecutive_failures += 1
        if self.consecutive_failures > self.max_consecutive_failures:
            raise exc
        delay = poll_failure_backoff(poll_interval, self.consecutive_failures)
        self.log.warning("Generation %s: status poll failed (%d/%d tolerated): %s; next poll in %.1fs",
                         self.generation_id, self.consecutive_failures, self.max_consecutive_failures, exc, delay)
        return delay


# ================================================================================================ async
@dataclass
class _SharedSession:
    session: aiohttp.ClientSession
    settings: ApiSettings
    loop: asyncio.AbstractEventLoop
    users: int = 0


class MagicVideoAsyncHook(BaseHook):
    """Async twin of :class:`MagicVideoHook` for triggers (``aiohttp``).

    Used as ``async with MagicVideoAsyncHook(conn_id) as hook:``, all hooks of one connection on one
    event loop share one ``ClientSession`` (a bounded ``TCPConnector``), closed when the last user
    leaves; so thousands of waiting renders in a triggerer use a handful of sockets.
    """

    conn_name_attr = "conn_id"
    default_conn_name = "magicvideo_default"
    conn_type = "magicvideo"
    hook_name = "AI/ML API Magic Video (async)"

    #: Sockets per connection and event loop, across all triggers sharing it.
    connection_limit: ClassVar[int] = 32
    _shared: ClassVar[dict[tuple[int, str], _SharedSession]] = {}
    _locks: ClassVar[dict[tuple[int, str], asyncio.Lock]] = {}
    _lookup_ready: ClassVar[bool] = False

    def __init__(self, conn_id: str = default_conn_name, *, client_request_id: str | None = None) -> None:
        super().__init__()
        self.conn_id = conn_id
        self.client_request_id = make_client_request_id(client_request_id or f"airflow:{uuid.uuid4().hex}")
        self._entered: _SharedSession | None = None
        self._headers: CIMultiDict[str] | None = None
        self._sleep = asyncio.sleep

    def _key(self) -> tuple[int, str]:
        return id(asyncio.get_running_loop()), self.conn_id

    async def _acquire(self) -> _SharedSession:
        key = self._key()
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = asyncio.Lock()
        async with lock:
            shared = self._shared.get(key)
            # id() of a finished loop can be reused by a new one: never hand out another loop's session.
            if shared is None or shared.session.closed or shared.loop is not asyncio.get_running_loop():
                if not MagicVideoAsyncHook._lookup_ready:
                    # The first lookup imports (and builds) Airflow's secrets machinery: do that in a
                    # thread, not on the triggerer's event loop shared with every other trigger.
                    await asyncio.to_thread(_load_connection_machinery)
                    MagicVideoAsyncHook._lookup_ready = True
                from airflow.providers.common.compat.connection import get_async_connection

                conn = await get_async_connection(self.conn_id, hook=self)
                settings = ApiSettings.from_connection(conn, extra=await _async_extra(conn))
                connector = aiohttp.TCPConnector(limit=self.connection_limit, ttl_dns_cache=300)
                session = aiohttp.ClientSession(
                    connector=connector,
                    timeout=aiohttp.ClientTimeout(
                        total=None, sock_connect=settings.connect_timeout, sock_read=settings.read_timeout
                    ),
                    headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
                    raise_for_status=False,
                )
                shared = self._shared[key] = _SharedSession(session=session, settings=settings,
                                                            loop=asyncio.get_running_loop())
            shared.users += 1
            return shared

    async def _release(self, shared: _SharedSession) -> None:
        shared.users -= 1
        if shared.users <= 0:
            key = self._key()
            if self._shared.get(key) is shared:
                del self._shared[key]
                lock = self._locks.get(key)
                if lock is not None and not lock.locked():  # a lock is bound to its loop: do not keep it
                    del self._locks[key]
            await shared.session.close()

    async def __aenter__(self) -> MagicVideoAsyncHook:
        self._entered = await self._acquire()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        if self._entered is not None:
            shared, self._entered = self._entered, None
            await self._release(shared)

    async def _call(self, method: str, action: str, *, params: dict | None = None) -> tuple[Any, Mapping]:
        shared = self._entered or await self._acquire()
        try:
            settings = shared.settings
            if self._headers is None:  # built once per hook: a trigger polls with the same headers
                self._headers = CIMultiDict(
                    {"Authorization": f"Bearer {settings.api_key}", "X-Client-Request-Id": self.client_request_id}
                )
            headers = self._headers

            async def attempt() -> tuple[str, Mapping[str, str]]:
                try:
                    async with shared.session.request(
                        method, settings.generations_url, params=params, headers=headers
                    ) as resp:
                        text = await resp.text()
                except (TimeoutError, aiohttp.ClientError) as exc:
                    lost = _transport_error_async(exc, action)
                    lost.client_request_id = self.client_request_id
                    raise lost from None
                if resp.status >= 400:
                    err = api_error_from_response(resp.status, text, resp.headers, action=action)
                    err.client_request_id = self.client_request_id
                    raise err
                return text, resp.headers

            text, resp_headers = await settings.retry_policy.acall(method, action, attempt, sleep=self._sleep)
            return _parse_json(text, action, _request_id(resp_headers)), resp_headers
        finally:
            if self._entered is None:
                await self._release(shared)

    async def aget_generation(self, generation_id: str) -> Generation:
        """Current status of a render (one status GET, retried per the policy)."""
        payload, headers = await self._call(
            "GET", f"status request for {generation_id}", params={"generation_id": generation_id}
        )
        return Generation.from_payload(payload, generation_id=generation_id, headers=headers)

    async def asettings(self) -> ApiSettings:
        """Resolved connection settings (poll defaults, timeouts)."""
        if self._entered is not None:
            return self._entered.settings
        shared = await self._acquire()
        try:
            return shared.settings
        finally:
            await self._release(shared)


def _load_connection_machinery() -> None:
    """Import what an async connection lookup needs (blocking; run off the event loop, once)."""
    import airflow.providers.common.compat.connection  # noqa: F401

    try:
        from airflow.sdk.execution_time.supervisor import ensure_secrets_backend_loaded

        ensure_secrets_backend_loaded()
    except Exception:  # best effort: the lookup itself reports real problems
        log.debug("Could not preload the secrets backends", exc_info=True)


async def _async_extra(conn: Connection) -> Mapping[str, Any]:
    try:
        from airflow.providers.common.compat.connection import get_async_extra_dejson
    except ImportError:  # older common-compat
        return conn.extra_dejson
    return await get_async_extra_dejson(conn)


__all__ = [
    "DEFAULT_BASE_URL",
    "ApiError",
    "ApiSettings",
    "Generation",
    "GenerationStatus",
    "MagicVideoAsyncHook",
    "MagicVideoHook",
    "PollTracker",
    "build_submit_body",
    "client_request_id_for",
    "make_client_request_id",
    "normalize_base_url",
]
