"""A key never leaks by the way it is configured: not over plain HTTP to another machine
without the user's opt-in, not from a key that cannot be one header line (and would be
echoed back by the server), not from a key pasted where a variable's name belongs."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from textual.widgets import Input, Select

from foundry_tui.backend.client import Backend
from foundry_tui.config import ConfigError, Overrides, load_config
from foundry_tui.core.models import (
    AuthMethod,
    BackendError,
    EndpointKind,
    ErrorKind,
    GenerationSettings,
    InputMessage,
    MessageRole,
    Profile,
)
from foundry_tui.ui.app import make_app
from foundry_tui.ui.screens.setup import SetupScreen
from tests.helpers import wait_until
from tests.responses_server import ResponsesServer

GATEWAY = "http://gateway.corp.example:8080/v1"


def config_file(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(body, encoding="utf-8")
    return path


def profile_toml(endpoint: str, auth: str, extra: str = "") -> str:
    return (
        f'[profiles.gw]\nkind = "compatible"\nendpoint = "{endpoint}"\nauth = "{auth}"\n'
        f'deployments = ["gpt-4o"]\n{extra}'
    )


# -- plain HTTP ---------------------------------------------------------------------


LOOPBACK = [
    "http://127.0.0.1:8000/v1",
    "http://127.8.9.10/v1",
    "http://[::1]:8000/v1",
    "http://localhost:11434/v1",
    "http://LOCALHOST./v1",
]


async def refused_turn(backend: Backend) -> BackendError:
    """Sends one turn that must be refused; the refusal (the backend is closed after)."""
    with pytest.raises(BackendError) as caught:
        async for _event in backend.stream_reply(
            settings=GenerationSettings(model="gpt-4o"),
            input=[InputMessage(MessageRole.USER, "hi")],
            previous_response_id=None,
        ):
            pass
    await backend.aclose()
    return caught.value


@pytest.mark.parametrize("auth", ["api_key", "entra_id"])
def test_config_refuses_a_key_over_plain_http_to_another_host(tmp_path: Path, auth: str) -> None:
    path = config_file(tmp_path, profile_toml(GATEWAY, auth))
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    error = caught.value
    assert error.key == "profiles.gw.endpoint" and error.line == 3
    assert "gateway.corp.example" in error.problem
    assert "allow_plain_http = true" in error.problem
    # This machine stays allowed: nothing goes over the wire.
    for endpoint in LOOPBACK:
        path = config_file(tmp_path, profile_toml(endpoint, auth))
        profile = load_config(path, env={}).active_profile()
        assert profile is not None and profile.endpoint == endpoint


def test_config_allows_plain_http_with_the_opt_in_or_without_a_key(tmp_path: Path) -> None:
    opted = config_file(tmp_path, profile_toml(GATEWAY, "api_key", "allow_plain_http = true\n"))
    profile = load_config(opted, env={}).active_profile()
    assert profile is not None and profile.allow_plain_http
    keyless = config_file(tmp_path, profile_toml(GATEWAY, "none"))
    assert load_config(keyless, env={}).active_profile() is not None


@pytest.mark.parametrize(
    ("env", "source"),
    [
        ({"AZURE_OPENAI_ENDPOINT": "http://10.1.2.3", "AZURE_OPENAI_API_KEY": "k"}, "AZURE"),
        ({"AZURE_OPENAI_ENDPOINT": "http://10.1.2.3"}, "AZURE"),  # Entra ID: a token
        ({"OPENAI_BASE_URL": GATEWAY, "OPENAI_API_KEY": "k"}, "OPENAI_BASE_URL"),
    ],
    ids=["azure key", "azure entra", "openai base url"],
)
def test_environment_endpoints_get_the_same_check(
    tmp_path: Path, env: dict[str, str], source: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "none.toml", env=env)
    assert caught.value.key is not None and caught.value.key.startswith(source)
    assert "allow_plain_http = true" in str(caught.value)
    # Keyless, the same URL is fine.
    if "OPENAI_BASE_URL" in env:
        assert load_config(tmp_path / "none.toml", env={"OPENAI_BASE_URL": GATEWAY})


def test_endpoint_flag_gets_the_same_check(tmp_path: Path) -> None:
    path = config_file(tmp_path, profile_toml("http://127.0.0.1:1/v1", "api_key"))
    flags = Overrides(endpoint=GATEWAY)
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={}, overrides=flags)
    assert caught.value.key == "--endpoint" and "allow_plain_http" in str(caught.value)
    opted = config_file(
        tmp_path, profile_toml("http://127.0.0.1:1/v1", "api_key", "allow_plain_http = true\n")
    )
    active = load_config(opted, env={}, overrides=flags).active_profile()
    assert active is not None and active.endpoint == GATEWAY


async def test_backend_never_sends_the_key_over_plain_http() -> None:
    """A profile made in code, bypassing the config: the backend refuses before any request."""
    profile = Profile(
        name="gw", kind=EndpointKind.COMPATIBLE, endpoint=GATEWAY, api_key_env="GW_KEY"
    )
    backend = Backend(profile, env={"GW_KEY": "sk-test-0123456789abcdef"}, max_retries=0)
    refused = await refused_turn(backend)
    assert refused.kind == ErrorKind.CONFIG
    assert "allow_plain_http = true" in refused.user_message


async def fill_setup(pilot: object, app: object, endpoint: str, key_env: str) -> SetupScreen:
    await wait_until(pilot, lambda: isinstance(app.screen, SetupScreen), what="setup")  # type: ignore[arg-type,attr-defined]
    setup: SetupScreen = app.screen  # type: ignore[attr-defined]
    setup.query_one("#setup-kind", Select).value = EndpointKind.COMPATIBLE
    await pilot.pause()  # type: ignore[attr-defined]
    setup.query_one("#setup-endpoint", Input).value = endpoint
    setup.query_one("#setup-auth", Select).value = AuthMethod.API_KEY
    setup.query_one("#setup-key-env", Input).value = key_env
    setup.query_one("#setup-deployments", Input).value = "gpt-4o"
    await pilot.press("ctrl+s")  # type: ignore[attr-defined]
    await pilot.pause()  # type: ignore[attr-defined]
    return setup


async def test_setup_screen_refuses_plain_http_to_another_host(tmp_path: Path) -> None:
    config_path = tmp_path / "conf" / "config.toml"
    app = make_app(load_config(config_path, env={}))
    async with app.run_test(size=(120, 50)) as pilot:
        setup = await fill_setup(pilot, app, GATEWAY, "GW_KEY")
        shown = str(setup.query_one("#setup-error").render())
        assert "gateway.corp.example" in shown and "allow_plain_http = true" in shown
        assert isinstance(app.screen, SetupScreen)
    assert not config_path.exists()


# -- the key itself -----------------------------------------------------------------

BAD_KEYS = [
    "sk-first-half\nsk-second-half",
    "sk-abcdefgh\x1b]52;c;Zm9v\x07ijkl",
    "sk-nul\x00tailpiece",
]


@pytest.mark.parametrize("key", BAD_KEYS, ids=["newline", "escape", "nul"])
def test_a_key_with_a_control_character_is_refused_at_start(tmp_path: Path, key: str) -> None:
    path = config_file(tmp_path, profile_toml("http://127.0.0.1:1/v1", "api_key"))
    path.write_text(path.read_text() + 'api_key_env = "GW_KEY"\n', encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={"GW_KEY": key})
    said = str(caught.value)
    assert "$GW_KEY" in said
    for part in re.split(r"[\x00-\x1f]", key):
        assert part.removeprefix("sk-") not in said  # no piece of the key


@pytest.mark.parametrize("key", BAD_KEYS, ids=["newline", "escape", "nul"])
async def test_backend_never_sends_a_key_with_a_control_character(key: str) -> None:
    with ResponsesServer() as server:
        profile = Profile(
            name="p", kind=EndpointKind.COMPATIBLE, endpoint=server.base_url, api_key_env="K"
        )
        backend = Backend(profile, env={"K": key}, max_retries=0)
        refused = await refused_turn(backend)
        assert server.requests == []
    assert refused.kind == ErrorKind.CONFIG
    assert "$K" in refused.user_message
    assert "second-half" not in refused.user_message


HEX_KEY = "a3f9c2e81b7d4056a9e2c4f81d3b7a60"


@pytest.mark.parametrize(
    "value", [HEX_KEY, "sk-proj-Ab3dEf9hIjKlMn0pQrStUvWx"], ids=["azure hex", "openai"]
)
def test_a_key_pasted_into_api_key_env_is_not_printed_back(tmp_path: Path, value: str) -> None:
    path = config_file(
        tmp_path,
        profile_toml("https://r.openai.azure.com", "api_key", f'api_key_env = "{value}"\n'),
    )
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    said = str(caught.value)
    assert caught.value.key == "profiles.gw.api_key_env"
    assert value[:3] + "…" in said and value[3:8] not in said
    # A name that is not a key is still shown as it is, and a real one still loads.
    typo = profile_toml("https://r.openai.azure.com", "api_key", 'api_key_env = "MY-KEY"\n')
    with pytest.raises(ConfigError, match="not 'MY-KEY'"):
        load_config(config_file(tmp_path, typo), env={})
    ok = profile_toml("https://r.openai.azure.com", "api_key", 'api_key_env = "AZURE_KEY_2"\n')
    assert load_config(config_file(tmp_path, ok), env={}).active_profile() is not None


async def test_setup_screen_does_not_save_a_pasted_key(tmp_path: Path) -> None:
    config_path = tmp_path / "conf" / "config.toml"
    app = make_app(load_config(config_path, env={}))
    async with app.run_test(size=(120, 50)) as pilot:
        setup = await fill_setup(pilot, app, "http://127.0.0.1:9/v1", HEX_KEY)
        shown = str(setup.query_one("#setup-error").render())
        assert "a3f…" in shown and HEX_KEY[3:] not in shown
    assert not config_path.exists()
