"""An OpenAI-compatible HTTP server for the simulated model (``serve-sim``).

:class:`SimServer` serves ``POST /v1/chat/completions`` (streamed as server-sent events
or as one JSON body) and ``GET /v1/models`` on the loopback interface, so the real
``langchain_openai.ChatOpenAI`` can talk to the scripted model end to end. Every response
is played from a script exactly as :class:`~.scripted_model.ScriptedChatModel` plays it
in process: the same :func:`~.scripted_model.plan_stream` pieces, the same times (time to
first token plus prefill of the uncached prompt suffix, then ``tokens * tpot_ms`` per
piece, as absolute deadlines), the same :class:`~.errors.ScriptError` checks.

The request's ``model`` field picks the script:

* a name given to :meth:`SimServer.register` (a responder or a fixed list of turns);
* ``"<policy>/<task_id>"`` with ``policy`` ``sequential``, ``parallel`` or ``async``: a
  :class:`~.scripted_tasks.TaskResponder` on that task;
* ``"<policy>"`` alone: the task whose ``question`` equals the first user message.

Errors come back as OpenAI error bodies ``{"error": {"message", "type", "code"}}``: an
unknown model or task is a 404, a malformed request or a :class:`~.errors.ScriptError` a
400. Prompt-prefix caches (for ``prefill_ms_per_1k``) are kept per model name for the
server's lifetime.

Example:
    ```python
    from langchain_openai import ChatOpenAI
    from langgraph_speculative.integrations import PlannedCall, ScriptedTask
    from langgraph_speculative.integrations.sim.server import SimServer

    task = ScriptedTask(
        id="weather",
        question="Weather in Paris?",
        functions=({"name": "get_weather", "parameters": {"type": "object", "properties": {}}},),
        calls=(PlannedCall("0", "get_weather", {"city": "Paris"}),),
    )
    with SimServer(tasks=[task]) as srv:
        llm = ChatOpenAI(base_url=srv.base_url, api_key="sim", model="parallel/weather")
        reply = llm.invoke("Weather in Paris?")
        assert reply.tool_calls[0]["args"] == {"city": "Paris"}
    ```
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
import logging
import socket
import threading
import time
import uuid
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from types import TracebackType
from typing import Any

import uvicorn
from langchain_core.messages import BaseMessage, HumanMessage, convert_to_messages
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from langgraph_speculative.errors import ScriptError
from langgraph_speculative.integrations.sim.bfcl import add_strict_argument, load_bfcl
from langgraph_speculative.integrations.sim.latency import LatencyModel
from langgraph_speculative.integrations.sim.scripted_model import (
    ModelTurn,
    Responder,
    ScriptedChatModel,
    StreamPiece,
    finish_reason,
    plan_stream,
)
from langgraph_speculative.integrations.sim.scripted_tasks import (
    Policy,
    ScriptedTask,
    TaskResponder,
)

__all__ = ["POLICIES", "SimServer", "add_arguments", "build_server", "run"]

POLICIES: tuple[Policy, ...] = ("sequential", "parallel", "async")
_POLICY_NAMES: dict[str, Policy] = {p: p for p in POLICIES}
"""The policies a model name may select (see :class:`~.scripted_tasks.TaskResponder`)."""

_NO_LATENCY = LatencyModel.zero()
_START_TIMEOUT_S = 10.0
_STOP_TIMEOUT_S = 10.0
_LOG = logging.getLogger(__name__)


class _ApiError(Exception):
    """An error answered as an OpenAI error body."""

    def __init__(self, status: int, message: str, code: str, kind: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.kind = kind

    def response(self) -> JSONResponse:
        return _error_response(self.status, self.message, self.code, self.kind)


def _error_response(status: int, message: str, code: str, kind: str) -> JSONResponse:
    body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
    return JSONResponse(body, status_code=status)


def _bad_request(message: str, code: str = "invalid_request") -> _ApiError:
    return _ApiError(400, message, code, "invalid_request_error")


def _check_loopback(host: str) -> str:
    """Return ``host`` if it is a loopback address, else raise ``ValueError``."""
    if host == "localhost":
        return host
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise ValueError(
            f"the simulated model server binds to loopback only (127.0.0.1, ::1 or "
            f"localhost); refusing host {host!r}"
        )
    return host


def _text_of(content: Any) -> str:
    """The text of an OpenAI/LangChain message content (a string or a list of parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(
            p if isinstance(p, str) else str(p.get("text", ""))
            for p in content
            if isinstance(p, str) or (isinstance(p, Mapping) and p.get("type") == "text")
        )
    return ""


def _piece_delta(piece: StreamPiece) -> dict[str, Any]:
    """The OpenAI ``delta`` of one stream piece."""
    if piece.tool_index is None:
        return {"content": piece.text or ""}
    if piece.tool_id is not None:
        call: dict[str, Any] = {
            "index": piece.tool_index,
            "id": piece.tool_id,
            "type": "function",
            "function": {"name": piece.tool_name, "arguments": piece.args},
        }
    else:
        call = {"index": piece.tool_index, "function": {"arguments": piece.args}}
    return {"content": None, "tool_calls": [call]}


def _wire_tool_calls(turn: ModelTurn) -> list[dict[str, Any]]:
    return [
        {
            "id": call["id"],
            "type": "function",
            "function": {
                "name": call["name"],
                "arguments": json.dumps(call["args"], ensure_ascii=False),
            },
        }
        for call in turn.tool_calls
    ]


def _usage(turn: ModelTurn) -> dict[str, int]:
    # The in-process model reports no prompt tokens either (input_tokens=0).
    tokens = turn.output_tokens
    return {"prompt_tokens": 0, "completion_tokens": tokens, "total_tokens": tokens}


class _Request:
    """A validated chat-completions request."""

    def __init__(self, body: Any) -> None:
        if not isinstance(body, dict):
            raise _bad_request("the request body must be a JSON object")
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise _bad_request("'model' must be a non-empty string", "invalid_model")
        raw_messages = body.get("messages")
        if not isinstance(raw_messages, list) or not raw_messages:
            raise _bad_request("'messages' must be a non-empty list", "invalid_messages")
        try:
            messages = convert_to_messages(raw_messages)
        except Exception as exc:  # any malformed message is the client's error
            raise _bad_request(f"malformed 'messages': {exc}", "invalid_messages") from None
        self.model: str = model
        self.messages: list[BaseMessage] = messages
        self.stream = bool(body.get("stream", False))
        options = body.get("stream_options")
        self.include_usage = isinstance(options, dict) and bool(options.get("include_usage"))
        self.tool_names: frozenset[str] | None = _tool_names(body.get("tools"))


def _tool_names(tools: Any) -> frozenset[str] | None:
    if tools is None:
        return None
    if not isinstance(tools, list):
        raise _bad_request("'tools' must be a list", "invalid_tools")
    names: set[str] = set()
    for tool in tools:
        fn = tool.get("function") if isinstance(tool, dict) else None
        name = fn.get("name") if isinstance(fn, dict) else None
        if not isinstance(name, str):
            raise _bad_request(f"malformed tool (no function name): {tool!r}", "invalid_tools")
        names.add(name)
    return frozenset(names)


class SimServer:
    """The simulated model behind an OpenAI-compatible HTTP API (see module docs).

    Use it as a context manager (a uvicorn server on a background thread with its own
    event loop) or call :meth:`serve_forever`. ``app`` is the Starlette application, for
    in-memory use with ``httpx.ASGITransport``.

    Args:
        tasks: Tasks that ``"<policy>/<task_id>"`` and ``"<policy>"`` models play.
        latency: The latency model (``LatencyModel.zero()`` by default).
        host: Loopback address to bind.
        port: Port to bind (0: a free port, known once started).
        estimate_noise: How well task models know each call's duration (see
            ``TaskResponder.on_latency``); ``None``: not at all.

    Raises:
        ValueError: If ``host`` is not a loopback address or task ids repeat.
    """

    def __init__(
        self,
        tasks: Sequence[ScriptedTask] = (),
        latency: LatencyModel = _NO_LATENCY,
        host: str = "127.0.0.1",
        port: int = 0,
        estimate_noise: float | None = 0.5,
    ) -> None:
        self.latency = latency
        self.estimate_noise = estimate_noise
        self.host = _check_loopback(host)
        self._requested_port = port
        self._port: int | None = None
        self._tasks: dict[str, ScriptedTask] = {}
        self._by_question: dict[str, list[ScriptedTask]] = {}
        for task in tasks:
            if task.id in self._tasks:
                raise ValueError(f"task id {task.id!r} repeats")
            self._tasks[task.id] = task
            self._by_question.setdefault(task.question, []).append(task)
        self._registered: dict[str, ScriptedChatModel] = {}
        self._task_models: dict[str, ScriptedChatModel] = {}
        self._active = 0
        self._closing = asyncio.Event()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.app = Starlette(
            routes=[
                Route("/v1/chat/completions", self._chat_completions, methods=["POST"]),
                Route("/v1/models", self._list_models, methods=["GET"]),
            ],
            exception_handlers={HTTPException: self._http_error},
        )

    # -- configuration ---------------------------------------------------------------
    def register(self, model_name: str, script: Responder | Sequence[ModelTurn]) -> None:
        """Serve ``script`` under ``model_name`` (looked up before task names).

        Args:
            model_name: The ``model`` field clients send.
            script: A responder (conversation -> next turn) or fixed turns (turn *k*
                answers the request that follows *k* AI messages).
        """
        self._registered[model_name] = ScriptedChatModel(
            script=script, latency=self.latency, model_name=model_name
        )

    @property
    def port(self) -> int:
        """The bound port (the requested one until the server has started)."""
        return self._port if self._port is not None else self._requested_port

    @property
    def base_url(self) -> str:
        """The OpenAI base URL, for example ``http://127.0.0.1:8765/v1``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/v1"

    @property
    def tasks(self) -> list[ScriptedTask]:
        """The tasks the server plays, in the order given."""
        return list(self._tasks.values())

    @property
    def active_streams(self) -> int:
        """Streamed responses currently in progress."""
        return self._active

    @property
    def model_names(self) -> list[str]:
        """Every model name the server answers to (``GET /v1/models``)."""
        names = list(self._registered)
        names += list(POLICIES)
        names += [f"{p}/{tid}" for tid in self._tasks for p in POLICIES]
        return names

    # -- running ---------------------------------------------------------------------
    def _bind(self) -> socket.socket:
        family, kind, proto, _, addr = socket.getaddrinfo(
            self.host, self._requested_port, type=socket.SOCK_STREAM
        )[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(addr)
        except OSError:
            sock.close()
            raise
        self._port = int(sock.getsockname()[1])
        return sock

    def _make_server(self) -> uvicorn.Server:
        config = uvicorn.Config(
            self.app,
            log_level="warning",
            access_log=False,
            lifespan="off",
            ws="none",
            timeout_graceful_shutdown=2,
        )
        return uvicorn.Server(config)

    async def _serve(self, server: uvicorn.Server, sock: socket.socket) -> None:
        self._loop = asyncio.get_running_loop()
        self._closing = asyncio.Event()

        async def watch_exit() -> None:
            while not server.should_exit:
                await asyncio.sleep(0.02)
            self._closing.set()  # end streams in progress, so shutdown does not wait

        watcher = asyncio.create_task(watch_exit())
        try:
            await server.serve(sockets=[sock])
        finally:
            watcher.cancel()

    def start(self) -> SimServer:
        """Start serving on a background thread; return once connections are accepted.

        Raises:
            RuntimeError: If the server is already running or does not start in time.
            OSError: If the address cannot be bound.
        """
        if self._thread is not None:
            raise RuntimeError("the simulated model server is already running")
        sock = self._bind()
        server = self._make_server()
        errors: list[BaseException] = []

        def main() -> None:
            try:
                asyncio.run(self._serve(server, sock))
            except BaseException as exc:  # reported by start()
                errors.append(exc)

        thread = threading.Thread(target=main, name=f"sim-server-{self.port}", daemon=True)
        self._server, self._thread = server, thread
        thread.start()
        deadline = time.monotonic() + _START_TIMEOUT_S
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                cause = errors[0] if errors else None
                raise RuntimeError(f"the simulated model server did not start: {cause!r}")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        """Stop the background server (ending streams in progress) and wait for it."""
        server, thread = self._server, self._thread
        if server is None or thread is None:
            return
        server.should_exit = True
        thread.join(_STOP_TIMEOUT_S)
        if thread.is_alive():  # pragma: no cover - graceful shutdown is bounded
            server.force_exit = True
            thread.join(_STOP_TIMEOUT_S)
        self._server = self._thread = self._loop = None

    def serve_forever(self, ready: Callable[[SimServer], None] | None = None) -> None:
        """Serve in the calling thread until interrupted (Ctrl-C or SIGTERM).

        Args:
            ready: Called once the address is bound (``port`` and ``base_url`` are final).
        """
        sock = self._bind()
        if ready is not None:
            ready(self)
        server = self._make_server()
        self._server = server
        try:
            asyncio.run(self._serve(server, sock))
        except KeyboardInterrupt:
            pass
        finally:
            self._server = None

    def __enter__(self) -> SimServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- scripts ---------------------------------------------------------------------
    def _task_model(self, policy: Policy, task: ScriptedTask) -> ScriptedChatModel:
        name = f"{policy}/{task.id}"
        model = self._task_models.get(name)
        if model is None:
            responder = TaskResponder.on_latency(
                task, self.latency, policy=policy, estimate_noise=self.estimate_noise
            )
            model = ScriptedChatModel(script=responder, latency=self.latency, model_name=name)
            self._task_models[name] = model
        return model

    def _resolve(self, name: str, messages: Sequence[BaseMessage]) -> ScriptedChatModel:
        """The scripted model that answers ``name`` for ``messages``."""
        registered = self._registered.get(name)
        if registered is not None:
            return registered
        prefix, _, task_id = name.partition("/")
        policy = _POLICY_NAMES.get(prefix)
        if policy is not None and task_id:
            task = self._tasks.get(task_id)
            if task is None:
                raise _ApiError(
                    404,
                    f"model {name!r}: no task with id {task_id!r} "
                    f"({len(self._tasks)} tasks loaded)",
                    "model_not_found",
                    "invalid_request_error",
                )
            return self._task_model(policy, task)
        if policy is not None:
            first = next((m for m in messages if isinstance(m, HumanMessage)), None)
            question = _text_of(first.content) if first is not None else ""
            found = self._by_question.get(question, [])
            if len(found) != 1:
                what = "no task" if not found else f"{len(found)} tasks"
                raise _ApiError(
                    404,
                    f"model {name!r}: {what} with the question of the first user "
                    f"message ({question[:80]!r}); name a task with '{name}/<task_id>'",
                    "task_not_found",
                    "invalid_request_error",
                )
            return self._task_model(policy, found[0])
        raise _ApiError(
            404,
            f"model {name!r} does not exist; use a registered name, "
            f"'<policy>/<task_id>' or '<policy>' with policy in {list(POLICIES)}",
            "model_not_found",
            "invalid_request_error",
        )

    # -- endpoints -------------------------------------------------------------------
    async def _http_error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        code = "not_found" if exc.status_code == 404 else f"http_{exc.status_code}"
        return _error_response(exc.status_code, str(exc.detail), code, "invalid_request_error")

    async def _list_models(self, request: Request) -> Response:
        data = [
            {"id": n, "object": "model", "created": 0, "owned_by": "langgraph-speculative"}
            for n in self.model_names
        ]
        return JSONResponse({"object": "list", "data": data})

    async def _chat_completions(self, request: Request) -> Response:
        loop = asyncio.get_running_loop()
        try:
            try:
                body = json.loads(await request.body())
            except (json.JSONDecodeError, UnicodeDecodeError) as exc:
                raise _bad_request(f"the request body is not valid JSON: {exc}") from None
            req = _Request(body)
            model = self._resolve(req.model, req.messages)
            checked = (
                model
                if req.tool_names is None
                else model.model_copy(update={"bound_tools": req.tool_names})
            )
            try:
                turn = checked.next_turn(req.messages)
            except ScriptError as exc:
                raise _bad_request(str(exc), "script_error") from None
            start = loop.time() + model.prompt_ms(req.messages) / 1000.0
        except _ApiError as exc:
            return exc.response()
        except Exception as exc:  # a broken responder: report it, never a stack trace
            _LOG.exception("simulated model failed")
            return _error_response(500, f"{type(exc).__name__}: {exc}", "internal", "server_error")
        if req.stream:
            return StreamingResponse(
                self._stream(req, turn, start),
                media_type="text/event-stream",
                headers={"Cache-Control": "no-cache"},
            )
        end = start + turn.output_tokens * self.latency.tpot_ms / 1000.0
        if not await self._wait_until(end, request):
            return Response(status_code=499)  # client gone or server closing: unseen
        message: dict[str, Any] = {"role": "assistant", "content": turn.text or None}
        if turn.tool_calls:
            message["tool_calls"] = _wire_tool_calls(turn)
        return JSONResponse(
            {
                "id": f"chatcmpl-{uuid.uuid4().hex}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": req.model,
                "choices": [
                    {
                        "index": 0,
                        "message": message,
                        "logprobs": None,
                        "finish_reason": finish_reason(turn),
                    }
                ],
                "usage": _usage(turn),
            }
        )

    async def _wait_until(self, deadline: float, request: Request | None = None) -> bool:
        """Sleep until loop time ``deadline``.

        Returns ``False`` if the server closes (or the client of ``request`` disconnects)
        first.
        """
        loop = asyncio.get_running_loop()
        delay = deadline - loop.time()
        if self._closing.is_set():
            return False
        if delay <= 0:
            return True
        waiters: list[asyncio.Future[Any]] = [asyncio.ensure_future(self._closing.wait())]
        if request is not None:
            waiters.append(asyncio.ensure_future(_disconnected(request)))
        try:
            done, _ = await asyncio.wait(waiters, timeout=delay)
        finally:
            for w in waiters:
                w.cancel()
        return not done

    async def _stream(self, req: _Request, turn: ModelTurn, start: float) -> AsyncIterator[str]:
        """The server-sent events of ``turn`` (cancelled by Starlette on disconnect)."""
        self._active += 1
        try:
            cid = f"chatcmpl-{uuid.uuid4().hex}"
            created = int(time.time())
            tpot_s = self.latency.tpot_ms / 1000.0

            def event(choices: list[dict[str, Any]], usage: dict[str, int] | None = None) -> str:
                chunk: dict[str, Any] = {
                    "id": cid,
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": req.model,
                    "choices": choices,
                }
                if usage is not None:
                    chunk["usage"] = usage
                return f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n"

            def choice(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
                return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}

            role: dict[str, Any] = {"role": "assistant"}  # sent with the first delta
            pieces = plan_stream(turn)
            for piece in pieces:
                if not await self._wait_until(start + piece.tokens * tpot_s):
                    return
                yield event([choice({**role, **_piece_delta(piece)})])
                role = {}
            last = pieces[-1].tokens if pieces else 0
            if not await self._wait_until(start + last * tpot_s):
                return
            yield event([choice({**role, "content": ""} if role else {}, finish_reason(turn))])
            if req.include_usage:
                yield event([], _usage(turn))
            yield "data: [DONE]\n\n"
        finally:
            self._active -= 1


async def _disconnected(request: Request) -> None:
    """Return once the client of ``request`` (whose body was read) disconnects."""
    while True:
        message = await request.receive()
        if message["type"] == "http.disconnect":
            return


# -- command line ------------------------------------------------------------------------
def _loopback_arg(value: str) -> str:
    try:
        return _check_loopback(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``serve-sim`` flags to ``parser`` (the latency flags are added by the CLI).

    Args:
        parser: The ``serve-sim`` sub-command parser.
    """
    parser.add_argument(
        "--host", type=_loopback_arg, default="127.0.0.1", help="loopback address to bind"
    )
    parser.add_argument("--port", type=int, default=8765, help="port (0: any free port)")
    parser.add_argument("--data", default=None, help="BFCL question file to load tasks from")
    parser.add_argument("--answers", default=None, help="BFCL ground-truth file of --data")
    parser.add_argument("--merge", type=int, default=1, help="BFCL records merged per task")
    parser.add_argument("--limit", type=int, default=None, help="first N tasks after a shuffle")
    parser.add_argument("--answer-tokens", type=int, default=20, help="final answer length")
    add_strict_argument(parser)


def build_server(args: argparse.Namespace) -> SimServer:
    """Build the :class:`SimServer` that ``serve-sim`` flags describe (not started).

    Args:
        args: Parsed ``serve-sim`` arguments, latency flags included.

    Raises:
        ValueError: On a non-loopback host, or ``--data`` without ``--answers`` (or the
            reverse).
    """
    from langgraph_speculative.integrations.sim.latency import latency_from_args

    latency = latency_from_args(args)
    data, answers = getattr(args, "data", None), getattr(args, "answers", None)
    tasks: list[ScriptedTask] = []
    if (data is None) != (answers is None):
        raise ValueError("--data and --answers go together")
    if data is not None and answers is not None:
        loaded = load_bfcl(
            data,
            answers,
            merge=getattr(args, "merge", 1),
            limit=getattr(args, "limit", None),
            seed=getattr(args, "seed", 0),
            answer_tokens=getattr(args, "answer_tokens", 20),
            strict=getattr(args, "strict", False),
        )
        print(loaded.skip_summary(), flush=True)
        tasks = list(loaded.require_tasks())
    return SimServer(
        tasks=tasks,
        latency=latency,
        host=args.host,
        port=args.port,
        estimate_noise=args.estimate_noise,
    )


def run(args: argparse.Namespace) -> int:
    """Run ``serve-sim``: serve the simulated model until Ctrl-C.

    Args:
        args: Parsed ``serve-sim`` arguments, latency flags included.

    Returns:
        The exit code (0).
    """

    def announce(server: SimServer) -> None:
        lat = server.latency
        print(
            f"serving the simulated model at {server.base_url} "
            f"({len(server.tasks)} tasks; ttft {lat.ttft_ms:g} ms, tpot {lat.tpot_ms:g} ms); "
            f"model = '<policy>/<task_id>' or '<policy>', policy in {list(POLICIES)}. "
            "Ctrl-C stops.",
            flush=True,
        )

    build_server(args).serve_forever(ready=announce)
    return 0
