"""Deleting a conversation can also delete its stored responses on the server: every
response id of every message, on every branch (`responses.delete`), after a confirmation
that says how many and where. A response already gone counts as deleted; any other refusal
is listed afterwards, and the conversation is deleted here all the same."""

from __future__ import annotations

from pathlib import Path

import openai
import pytest
from textual.widgets import Checkbox, Static

from foundry_tui.backend.client import Backend
from foundry_tui.core.models import (
    EndpointKind,
    ErrorKind,
    GenerationSettings,
    MessageRole,
    MessageStatus,
    Profile,
)
from foundry_tui.store import Store
from foundry_tui.ui.app import make_app
from foundry_tui.ui.screens.dialogs import DeleteScreen, FailuresScreen
from foundry_tui.ui.widgets.history import ConversationList
from tests.helpers import (
    KEY_VARIABLE,
    TEST_KEY,
    record_notifications,
    start_chat,
    wait_until,
    write_config,
)
from tests.responses_server import Fault, ResponsesServer

SETTINGS = GenerationSettings(model="gpt-4o")
HOSTILE_TITLE = "doomed \x1b]0;pwned\x07[@click=app.quit]q[/]"
HOSTILE_TITLE_SHOWN = "doomed [@click=app.quit]q[/]"


async def stored_response(server: ResponsesServer, text: str) -> str:
    client = openai.AsyncOpenAI(base_url=server.base_url, api_key=TEST_KEY, max_retries=0)
    try:
        return (await client.responses.create(model="gpt-4o", input=text)).id
    finally:
        await client.close()


def branched_conversation(
    db: Path, response_ids: list[str], *, title: str = "doomed", profile: str = "local"
) -> str:
    """A prompt with two replies (two branches), the first followed by a second turn; the
    replies carry ``response_ids`` in that order (the third: the second turn's)."""
    with Store.open(db) as store:
        made = store.create_conversation(profile=profile, settings=SETTINGS, title=title)
        cid = made.id

        def add(role: MessageRole, text: str, **options: object) -> str:
            return store.add_message(
                conversation_id=cid,
                role=role,
                text=text,
                status=MessageStatus.COMPLETED,
                **options,  # type: ignore[arg-type]
            ).id

        prompt = add(MessageRole.USER, "first")
        first = add(MessageRole.ASSISTANT, "a", response_id=response_ids[0])
        add(MessageRole.ASSISTANT, "b", response_id=response_ids[1], parent_id=prompt)
        add(MessageRole.USER, "second", parent_id=first)
        add(MessageRole.ASSISTANT, "c", response_id=response_ids[2])
    return cid


def deletes(server: ResponsesServer) -> list[str]:
    return [r.path.rsplit("/", 1)[1] for r in server.requests if r.method == "DELETE"]


async def confirm_delete(pilot: object, app: object, *, on_server: bool) -> list[str]:
    """Deletes the first conversation of the list, the server option ticked or not;
    returns the dialog's hints, as shown."""
    screen = app.screen  # type: ignore[attr-defined]
    history = screen.query_one(ConversationList)
    await wait_until(
        pilot,  # type: ignore[arg-type]
        lambda: history.option_count > 0 and history.get_option_at_index(0).id is not None,
        what="the history list",
    )
    history.focus()
    history.highlighted = 0
    await pilot.press("delete")  # type: ignore[attr-defined]
    await wait_until(
        pilot,  # type: ignore[arg-type]
        lambda: isinstance(app.screen, DeleteScreen),  # type: ignore[attr-defined]
        what="the confirmation",
    )
    dialog: DeleteScreen = app.screen  # type: ignore[attr-defined]
    await wait_until(pilot, lambda: bool(dialog.query(".dialog-question")), what="composed")  # type: ignore[arg-type]
    hints = [str(hint.render()) for hint in dialog.query(".hint").results(Static)]
    if on_server:
        await pilot.press("s")  # type: ignore[attr-defined]
    await pilot.press("y")  # type: ignore[attr-defined]
    return hints


async def test_delete_with_the_option_deletes_every_branchs_responses_then_the_conversation(
    tmp_path: Path, server: ResponsesServer
) -> None:
    config = write_config(tmp_path, server.base_url)
    ids = [await stored_response(server, text) for text in ("a", "b", "c")]
    branched_conversation(config.db_path, ids, title=HOSTILE_TITLE)
    app = make_app(config)
    async with app.run_test(size=(160, 40)) as pilot:
        screen = await start_chat(app, pilot)
        notices = record_notifications(app)
        history = screen.query_one(ConversationList)
        await wait_until(pilot, lambda: history.option_count > 0, what="listed")
        history.focus()
        history.highlighted = 0
        await pilot.press("delete")
        await wait_until(pilot, lambda: isinstance(app.screen, DeleteScreen), what="dialog")
        dialog = app.screen
        question = str(dialog.query_one(".dialog-question", Static).render())
        assert question == f"Delete “{HOSTILE_TITLE_SHOWN}” and all its messages?"
        box = dialog.query_one("#delete-on-server", Checkbox)
        host = server.base_url.split("/")[2]
        assert str(box.label) == f"Also delete 3 stored responses on {host} (s)"
        assert not box.value  # off unless asked for
        await pilot.press("s", "y")
        await wait_until(pilot, lambda: app.screen is screen, what="the dialog closed")
        await wait_until(
            pilot, lambda: history.get_option_at_index(0).id is None, what="deleted here"
        )
        await wait_until(pilot, lambda: bool(notices), what="the notice")
    assert sorted(deletes(server)) == sorted(ids)
    assert not any(rid in server.stored for rid in ids)
    assert notices == ["Conversation deleted and its 3 stored responses on the server."]
    with Store.open(config.db_path) as store:
        assert store.list_conversations() == []
    assert server.schema_errors == []


async def test_delete_without_the_option_leaves_the_server_alone(
    tmp_path: Path, server: ResponsesServer
) -> None:
    config = write_config(tmp_path, server.base_url)
    ids = [await stored_response(server, text) for text in ("a", "b", "c")]
    # Started with another profile: the question says its server may not be this one.
    branched_conversation(config.db_path, ids, profile="work[b]\x1b[2J")
    app = make_app(config)
    async with app.run_test(size=(160, 40)) as pilot:
        await start_chat(app, pilot)
        hints = await confirm_delete(pilot, app, on_server=False)
        assert hints == [
            "It was started with the profile “work[b]”: responses stored on another "
            "server are not reached from here, and count as gone."
        ]
        history = app.screen.query_one(ConversationList)
        await wait_until(pilot, lambda: history.get_option_at_index(0).id is None, what="gone")
    assert deletes(server) == []
    assert all(rid in server.stored for rid in ids)


async def test_failures_are_listed_inert_and_the_local_delete_still_happens(
    tmp_path: Path, server: ResponsesServer
) -> None:
    config = write_config(tmp_path, server.base_url)
    kept = await stored_response(server, "a")
    gone = await stored_response(server, "b")
    server.expire(gone)  # already gone: counts as deleted, not listed
    hostile = "resp_[@click=app.quit]x\x1b]0;pwned\x07"
    branched_conversation(config.db_path, [kept, gone, hostile])
    server.fail_delete(kept, Fault.FORBIDDEN)
    server.fail_delete(hostile, Fault.RATE_LIMIT, retry_after="0.01")
    app = make_app(config)
    async with app.run_test(size=(160, 40)) as pilot:
        await start_chat(app, pilot)
        assert await confirm_delete(pilot, app, on_server=True) == []  # same profile: no note
        await wait_until(
            pilot,
            lambda: (
                isinstance(app.screen, FailuresScreen) and bool(app.screen.query("#failures-list"))
            ),
            what="the failures listed",
        )
        listed = str(app.screen.query_one("#failures-list", Static).render())
        heading = str(app.screen.query_one(".dialog-question", Static).render())
        with Store.open(config.db_path) as store:
            assert store.list_conversations() == []  # deleted here all the same
        await pilot.press("enter")
        await wait_until(pilot, lambda: not isinstance(app.screen, FailuresScreen))
    host = server.base_url.split("/")[2]
    assert heading == f"Deleted here; 2 of 3 stored responses are still on {host}"
    lines = listed.split("\n")
    assert lines[0].startswith(f"{kept}: Access denied (403).")
    assert lines[1].startswith("resp_[@click=app.quit]x: Rate limited (429).")
    assert "\x1b" not in listed and "\x07" not in listed
    assert kept in server.stored and gone not in server.stored
    assert sorted(set(deletes(server))) == sorted({kept, gone, hostile})


async def test_backend_delete_response_maps_errors_like_the_rest(
    server: ResponsesServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from foundry_tui.core.models import AuthMethod, BackendError

    monkeypatch.setenv(KEY_VARIABLE, TEST_KEY)
    profile = Profile(
        name="t",
        kind=EndpointKind.COMPATIBLE,
        endpoint=server.base_url,
        auth=AuthMethod.API_KEY,
        api_key_env=KEY_VARIABLE,
        deployments=("gpt-4o",),
    )
    backend = Backend(profile, max_retries=0)
    try:
        rid = await stored_response(server, "x")
        assert await backend.delete_response(rid) is True
        assert await backend.delete_response(rid) is False  # already gone
        refused = await stored_response(server, "y")
        server.fail_delete(refused, Fault.UNAUTHORIZED)
        with pytest.raises(BackendError) as caught:
            await backend.delete_response(refused)
        assert caught.value.kind is ErrorKind.AUTH and caught.value.status_code == 401
    finally:
        await backend.aclose()


async def test_the_local_model_is_not_offered_the_server_option(tmp_path: Path) -> None:
    from foundry_tui.core.workspace import StoreOpening, Workspace

    class Stateless:
        stateless = True

    async def open_store() -> Store:
        return Store.open(tmp_path / "history.db")

    history = StoreOpening(open_store)
    store = await history
    try:
        cid = branched_conversation(tmp_path / "history.db", ["resp_1", "resp_2", "resp_3"])
        workspace = Workspace(
            history,
            Stateless(),  # type: ignore[arg-type]
            Profile(name="offline", kind=EndpointKind.COMPATIBLE, endpoint=""),
        )
        assert not workspace.keeps_responses
        assert await workspace.stored_responses(cid) == []
    finally:
        store.close()
