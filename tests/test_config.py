"""config.py: precedence, URL/scope mapping, errors that name file + line + key, writing."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from foundry_tui.config import (
    AppConfig,
    ConfigError,
    Overrides,
    config_dir,
    data_dir,
    default_config_path,
    default_db_path,
    load_config,
)
from foundry_tui.config.endpoints import base_url_for, entra_scope_for, parse_endpoint_kind
from foundry_tui.config.writer import write_profile
from foundry_tui.core.models import AuthMethod, EndpointKind, GenerationSettings, Profile

REPO = Path(__file__).resolve().parents[1]

SAMPLE = """\
default_profile = "work"

[profiles.work]
kind = "azure"
endpoint = "https://myres.openai.azure.com"
auth = "api_key"
api_key_env = "AZURE_OPENAI_API_KEY"
deployments = ["gpt-4o", "gpt-4o-mini", "o4-mini"]

[profiles.work.defaults]
model = "gpt-4o"
instructions = "Be brief."
temperature = 0.7
top_p = 1.0
max_output_tokens = 4096

[profiles.lab]
kind = "foundry"
endpoint = "https://acct.services.ai.azure.com/api/projects/lab"
auth = "entra_id"
deployments = ["gpt-4.1"]

[keymap]
"app.toggle_sidebar" = "ctrl+b"

[ui]
sidebar = true
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def profile(kind: EndpointKind, endpoint: str, scope: str | None = None) -> Profile:
    return Profile(name="p", kind=kind, endpoint=endpoint, scope=scope)


# --------------------------------------------------------------------------- URLs and scopes


@pytest.mark.parametrize(
    "endpoint",
    [
        "https://myres.openai.azure.com",
        "https://myres.openai.azure.com/",
        "https://myres.openai.azure.com/openai",
        "https://myres.openai.azure.com/openai/",
        "https://myres.openai.azure.com/openai/v1",
        "https://myres.openai.azure.com/openai/v1/",
        "https://MyRes.OpenAI.Azure.com/openai/deployments/gpt-4o/chat/completions?api-version=x",
        "https://myres.cognitiveservices.azure.com",
        "https://myres.cognitiveservices.azure.com/openai/v1/",
        "https://myres.services.ai.azure.com",
        "https://myres.services.ai.azure.com/openai/v1",
        "myres.openai.azure.com",
    ],
)
def test_azure_base_url(endpoint: str) -> None:
    url = base_url_for(profile(EndpointKind.AZURE_OPENAI, endpoint))
    assert url == "https://myres.openai.azure.com/openai/v1/"


def test_azure_base_url_keeps_other_hosts() -> None:
    local = profile(EndpointKind.AZURE_OPENAI, "http://127.0.0.1:8123")
    assert base_url_for(local) == "http://127.0.0.1:8123/openai/v1/"
    gov = profile(EndpointKind.AZURE_OPENAI, "https://res.openai.azure.us/openai/v1")
    assert base_url_for(gov) == "https://res.openai.azure.us/openai/v1/"


@pytest.mark.parametrize(
    "endpoint",
    [
        "https://acct.services.ai.azure.com/api/projects/proj",
        "https://acct.services.ai.azure.com/api/projects/proj/",
        "https://acct.services.ai.azure.com/api/projects/proj/openai/v1",
        "https://acct.services.ai.azure.com/api/projects/proj/openai/v1/",
    ],
)
def test_foundry_base_url(endpoint: str) -> None:
    url = base_url_for(profile(EndpointKind.FOUNDRY_PROJECT, endpoint))
    assert url == "https://acct.services.ai.azure.com/api/projects/proj/openai/v1"


def test_openai_and_compatible_base_urls() -> None:
    assert base_url_for(profile(EndpointKind.OPENAI, "")) == "https://api.openai.com/v1"
    assert base_url_for(profile(EndpointKind.OPENAI, "https://api.openai.com/v1/")) == (
        "https://api.openai.com/v1"
    )
    assert base_url_for(profile(EndpointKind.COMPATIBLE, "http://127.0.0.1:9/v1/")) == (
        "http://127.0.0.1:9/v1"
    )
    assert base_url_for(profile(EndpointKind.COMPATIBLE, "http://localhost:8088")) == (
        "http://localhost:8088"
    )


def test_entra_scopes() -> None:
    cognitive = "https://cognitiveservices.azure.com/.default"
    assert entra_scope_for(profile(EndpointKind.AZURE_OPENAI, "https://r.openai.azure.com")) == (
        cognitive
    )
    foundry = profile(
        EndpointKind.FOUNDRY_PROJECT, "https://a.services.ai.azure.com/api/projects/p"
    )
    assert entra_scope_for(foundry) == "https://ai.azure.com/.default"
    assert entra_scope_for(profile(EndpointKind.COMPATIBLE, "http://x")) == cognitive
    custom = profile(EndpointKind.AZURE_OPENAI, "https://r.openai.azure.us", scope="https://s/.d")
    assert entra_scope_for(custom) == "https://s/.d"


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("", EndpointKind.OPENAI),
        ("https://api.openai.com/v1", EndpointKind.OPENAI),
        ("https://res.openai.azure.com", EndpointKind.AZURE_OPENAI),
        ("https://res.cognitiveservices.azure.com/", EndpointKind.AZURE_OPENAI),
        ("https://res.services.ai.azure.com", EndpointKind.AZURE_OPENAI),
        ("res.openai.azure.com", EndpointKind.AZURE_OPENAI),
        ("https://res.openai.azure.us", EndpointKind.AZURE_OPENAI),
        ("https://acct.services.ai.azure.com/api/projects/p", EndpointKind.FOUNDRY_PROJECT),
        ("http://127.0.0.1:8000/v1", EndpointKind.COMPATIBLE),
        ("http://localhost:11434/v1", EndpointKind.COMPATIBLE),
    ],
)
def test_parse_endpoint_kind(url: str, kind: EndpointKind) -> None:
    assert parse_endpoint_kind(url) is kind


# --------------------------------------------------------------------------- paths


def test_paths_follow_platformdirs(isolated_home: Path) -> None:
    assert config_dir() == isolated_home / "xdg_config_home" / "foundry-tui"
    assert data_dir() == isolated_home / "xdg_data_home" / "foundry-tui"
    assert default_config_path({}) == config_dir() / "config.toml"
    assert default_db_path() == data_dir() / "history.db"
    assert default_config_path({"FOUNDRY_TUI_CONFIG": "/tmp/x.toml"}) == Path("/tmp/x.toml")


def test_import_and_load_under_empty_home_create_nothing(tmp_path: Path) -> None:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("XDG_", "FOUNDRY_TUI_", "OPENAI_", "AZURE_"))
    }
    env["HOME"] = str(tmp_path)
    env["PYTHONPATH"] = str(REPO)
    code = (
        "import foundry_tui.config as c\n"
        "config = c.load_config()\n"
        "assert config.profiles == {} and config.active_profile() is None\n"
        f"assert str(config.path).startswith({str(tmp_path)!r})\n"
        "c.default_db_path(); c.config_dir(); c.data_dir()\n"
    )
    subprocess.run([sys.executable, "-c", code], env=env, check=True, cwd=tmp_path)
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- loading


def test_sample_file(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, SAMPLE), env={})
    work = config.profiles["work"]
    assert work == Profile(
        name="work",
        kind=EndpointKind.AZURE_OPENAI,
        endpoint="https://myres.openai.azure.com",
        auth=AuthMethod.API_KEY,
        api_key_env="AZURE_OPENAI_API_KEY",
        deployments=("gpt-4o", "gpt-4o-mini", "o4-mini"),
        defaults=GenerationSettings(
            model="gpt-4o",
            instructions="Be brief.",
            temperature=0.7,
            top_p=1.0,
            max_output_tokens=4096,
        ),
    )
    lab = config.profiles["lab"]
    assert lab.kind is EndpointKind.FOUNDRY_PROJECT and lab.auth is AuthMethod.ENTRA_ID
    assert lab.defaults is None
    assert config.default_profile == "work"
    assert config.active_profile() == work
    assert config.keymap == {"app.toggle_sidebar": "ctrl+b"}
    assert config.sidebar is True
    assert config.db_path == default_db_path()


def test_missing_file_gives_empty_config(tmp_path: Path) -> None:
    config = load_config(tmp_path / "nope.toml", env={})
    assert config.profiles == {} and config.active_profile() is None
    assert config.sidebar is None and config.keymap == {}
    assert not (tmp_path / "nope.toml").exists()


def test_kind_and_key_variable_are_guessed(tmp_path: Path) -> None:
    text = """
[profiles.a]
endpoint = "https://r.openai.azure.com"
[profiles.b]
endpoint = "http://127.0.0.1:8000/v1"
[profiles.c]
[profiles.d]
endpoint = "https://acct.services.ai.azure.com/api/projects/x"
[profiles.d.defaults]
temperature = 1
"""
    config = load_config(write(tmp_path, text), env={})
    a, b, c, d = (config.profiles[name] for name in "abcd")
    assert (a.kind, a.api_key_env) == (EndpointKind.AZURE_OPENAI, "AZURE_OPENAI_API_KEY")
    assert (b.kind, b.api_key_env) == (EndpointKind.COMPATIBLE, "OPENAI_API_KEY")
    assert (c.kind, c.api_key_env) == (EndpointKind.OPENAI, "OPENAI_API_KEY")
    assert d.kind is EndpointKind.FOUNDRY_PROJECT
    assert d.defaults == GenerationSettings(model="", temperature=1.0)
    assert config.active_profile() is None  # four profiles, no default


def test_only_profile_is_active(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, '[profiles.solo]\nkind = "openai"\n'), env={})
    assert config.active_profile() == config.profiles["solo"]


def test_db_path_in_ui_or_top_level(tmp_path: Path) -> None:
    path = write(tmp_path, '[ui]\ndb_path = "~/h.db"\n')
    assert load_config(path, env={}).db_path == Path("~/h.db").expanduser()
    path = write(tmp_path, 'db_path = "/tmp/top.db"\n')
    assert load_config(path, env={}).db_path == Path("/tmp/top.db")


# --------------------------------------------------------------------------- environment


def test_env_azure_endpoint_with_key(tmp_path: Path) -> None:
    env = {
        "AZURE_OPENAI_ENDPOINT": "https://envres.openai.azure.com/",
        "AZURE_OPENAI_API_KEY": "secret",
        "AZURE_OPENAI_DEPLOYMENT": "gpt-4o, o4-mini",
    }
    config = load_config(write(tmp_path, SAMPLE), env=env)
    active = config.active_profile()
    assert active is not None and active.name == "env"
    assert active.kind is EndpointKind.AZURE_OPENAI
    assert active.auth is AuthMethod.API_KEY and active.api_key_env == "AZURE_OPENAI_API_KEY"
    assert active.deployments == ("gpt-4o", "o4-mini")
    assert active.defaults is not None and active.defaults.model == "gpt-4o"
    assert base_url_for(active) == "https://envres.openai.azure.com/openai/v1/"
    assert "work" in config.profiles  # the file's profiles stay available


def test_env_azure_endpoint_without_key_uses_entra(tmp_path: Path) -> None:
    env = {"AZURE_OPENAI_ENDPOINT": "https://acct.services.ai.azure.com/api/projects/p"}
    active = load_config(tmp_path / "none.toml", env=env).active_profile()
    assert active is not None
    assert active.kind is EndpointKind.FOUNDRY_PROJECT and active.auth is AuthMethod.ENTRA_ID
    assert entra_scope_for(active) == "https://ai.azure.com/.default"


def test_env_azure_endpoint_on_a_private_host_is_still_azure(tmp_path: Path) -> None:
    env = {"AZURE_OPENAI_ENDPOINT": "http://127.0.0.1:9999", "AZURE_OPENAI_API_KEY": "k"}
    active = load_config(tmp_path / "none.toml", env=env).active_profile()
    assert active is not None and active.kind is EndpointKind.AZURE_OPENAI
    assert base_url_for(active) == "http://127.0.0.1:9999/openai/v1/"


@pytest.mark.parametrize(
    ("env", "kind", "auth"),
    [
        (
            {"OPENAI_BASE_URL": "http://127.0.0.1:1234/v1", "OPENAI_API_KEY": "k"},
            EndpointKind.COMPATIBLE,
            AuthMethod.API_KEY,
        ),
        ({"OPENAI_BASE_URL": "http://127.0.0.1:1234/v1"}, EndpointKind.COMPATIBLE, AuthMethod.NONE),
        ({"OPENAI_BASE_URL": "https://api.openai.com/v1"}, EndpointKind.OPENAI, AuthMethod.API_KEY),
        ({"OPENAI_API_KEY": "k"}, EndpointKind.OPENAI, AuthMethod.API_KEY),
    ],
)
def test_env_openai_variables(
    tmp_path: Path, env: dict[str, str], kind: EndpointKind, auth: AuthMethod
) -> None:
    active = load_config(write(tmp_path, SAMPLE), env=env).active_profile()
    assert active is not None and active.name == "env"
    assert (active.kind, active.auth, active.api_key_env) == (kind, auth, "OPENAI_API_KEY")


def test_no_env_no_env_profile(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, SAMPLE), env={"AZURE_OPENAI_API_KEY": "k"})
    assert "env" not in config.profiles
    active = config.active_profile()
    assert active is not None and active.name == "work"


def test_env_model_profile_and_db(tmp_path: Path) -> None:
    env = {
        "FOUNDRY_TUI_PROFILE": "lab",
        "FOUNDRY_TUI_MODEL": "gpt-5-mini",
        "FOUNDRY_TUI_DB": str(tmp_path / "env.db"),
        "OPENAI_API_KEY": "k",  # makes an env profile; FOUNDRY_TUI_PROFILE still wins
    }
    config = load_config(write(tmp_path, SAMPLE), env=env)
    active = config.active_profile()
    assert active is not None and active.name == "lab"
    assert active.deployments == ("gpt-5-mini", "gpt-4.1")
    assert active.defaults == GenerationSettings(model="gpt-5-mini")
    assert config.db_path == tmp_path / "env.db"


# --------------------------------------------------------------------------- flags


def test_flags_override_environment_and_file(tmp_path: Path) -> None:
    path = write(tmp_path, SAMPLE + 'db_path = "/tmp/file.db"\n')
    env = {
        "AZURE_OPENAI_ENDPOINT": "https://envres.openai.azure.com",
        "FOUNDRY_TUI_DB": "/tmp/env.db",
        "FOUNDRY_TUI_MODEL": "env-model",
    }
    # file < env
    config = load_config(path, env=env)
    active = config.active_profile()
    assert active is not None and active.name == "env"
    assert config.db_path == Path("/tmp/env.db")
    assert active.defaults is not None and active.defaults.model == "env-model"
    # env < flags
    flags = Overrides(profile="work", model="o4-mini", db=tmp_path / "flag.db")
    config = load_config(path, env=env, overrides=flags)
    active = config.active_profile()
    assert active is not None and active.name == "work"
    assert active.defaults is not None and active.defaults.model == "o4-mini"
    assert active.defaults.temperature == 0.7  # the rest of the file's defaults stay
    assert active.deployments == ("gpt-4o", "gpt-4o-mini", "o4-mini")  # already listed
    assert config.db_path == tmp_path / "flag.db"


def test_endpoint_flag_overrides_active_profile(tmp_path: Path) -> None:
    flags = Overrides(endpoint="http://127.0.0.1:5000/v1", model="local-model")
    config = load_config(write(tmp_path, SAMPLE), env={}, overrides=flags)
    active = config.active_profile()
    assert active is not None and active.name == "work"
    assert active.kind is EndpointKind.COMPATIBLE
    assert base_url_for(active) == "http://127.0.0.1:5000/v1"
    assert active.deployments[0] == "local-model"
    assert config.profiles["work"] == active


def test_endpoint_flag_makes_a_profile(tmp_path: Path) -> None:
    flags = Overrides(endpoint="https://r.openai.azure.com", model="gpt-4o")
    config = load_config(tmp_path / "none.toml", env={}, overrides=flags)
    active = config.active_profile()
    assert active is not None and active.name == "cli"
    assert active.kind is EndpointKind.AZURE_OPENAI and active.auth is AuthMethod.ENTRA_ID
    assert active.deployments == ("gpt-4o",)


def test_app_config_active_profile_order() -> None:
    a = Profile(name="a", kind=EndpointKind.OPENAI, endpoint="")
    b = Profile(name="b", kind=EndpointKind.OPENAI, endpoint="")
    base = AppConfig(
        path=Path("x"), profiles={"a": a, "b": b}, default_profile=None, db_path=Path()
    )
    assert base.active_profile() is None
    assert AppConfig(**{**base.__dict__, "default_profile": "b"}).active_profile() == b
    chosen = AppConfig(**{**base.__dict__, "default_profile": "b", "selected_profile": "a"})
    assert chosen.active_profile() == a


# --------------------------------------------------------------------------- errors


ERROR_CASES = [
    pytest.param(
        '[profiles.work]\nendpoint = "https://r.openai.azure.com\n',
        2,
        None,
        "not valid TOML",
        id="bad-toml",
    ),
    pytest.param(
        'default_profile = "work"\n\n[profiles.work]\nkind = "openai"\n\n'
        "[profiles.work.defaults]\nmodel = 'm'\ntemprature = 0.5\n",
        8,
        "profiles.work.defaults.temprature",
        "unknown key 'temprature'",
        id="unknown-defaults-key",
    ),
    pytest.param(
        '[profiles.work]\nkind = "openai"\nendpiont = "x"\n',
        3,
        "profiles.work.endpiont",
        "unknown key 'endpiont'",
        id="unknown-profile-key",
    ),
    pytest.param('theme = "dark"\n', 1, "theme", "unknown key 'theme'", id="unknown-top-key"),
    pytest.param(
        "[ui]\nsidebar = true\ncolour = 1\n", 3, "ui.colour", "unknown key", id="unknown-ui"
    ),
    pytest.param(
        '[profiles.w]\nendpoint = "https://r.openai.azure.com"\napi_key = "sk-123"\n',
        3,
        "profiles.w.api_key",
        "keys never go in the config; set api_key_env",
        id="api-key-refused",
    ),
    pytest.param(
        '[profiles.w]\nkind = "azure"\nauth = "entra_id"\n',
        1,
        "profiles.w.endpoint",
        "missing 'endpoint'",
        id="missing-endpoint",
    ),
    pytest.param(
        '[profiles.w]\nkind = "foundry"\nendpoint = "https://a.services.ai.azure.com"\n',
        3,
        "profiles.w.endpoint",
        "/api/projects/",
        id="foundry-without-project",
    ),
    pytest.param(
        '[profiles.w]\nkind = "azur"\nendpoint = "https://r.openai.azure.com"\n',
        2,
        "profiles.w.kind",
        "must be one of azure | foundry | openai | compatible",
        id="bad-kind",
    ),
    pytest.param(
        '[profiles.w]\nkind = "openai"\nauth = "password"\n',
        3,
        "profiles.w.auth",
        "must be one of api_key | entra_id | none",
        id="bad-auth",
    ),
    pytest.param(
        '[profiles.w]\nkind = "openai"\ndeployments = "gpt-4o"\n',
        3,
        "profiles.w.deployments",
        "must be an array",
        id="deployments-type",
    ),
    pytest.param(
        '[profiles.w]\nkind = "openai"\nendpoint = 5\n',
        3,
        "profiles.w.endpoint",
        "must be a string",
        id="endpoint-type",
    ),
    pytest.param(
        '[profiles.w]\nkind = "openai"\n[profiles.w.defaults]\ntemperature = 2.5\n',
        4,
        "profiles.w.defaults.temperature",
        "between 0 and 2",
        id="temperature-range",
    ),
    pytest.param(
        '[profiles.w]\nkind = "openai"\n[profiles.w.defaults]\ntemperature = "hot"\n',
        4,
        "profiles.w.defaults.temperature",
        "must be a number",
        id="temperature-type",
    ),
    pytest.param(
        '[profiles.w]\nkind = "openai"\n[profiles.w.defaults]\ntop_p = 1.5\n',
        4,
        "profiles.w.defaults.top_p",
        "between 0 and 1",
        id="top-p-range",
    ),
    pytest.param(
        '[profiles.w]\nkind = "openai"\n[profiles.w.defaults]\nmax_output_tokens = 0\n',
        4,
        "profiles.w.defaults.max_output_tokens",
        "at least 1",
        id="max-tokens-range",
    ),
    pytest.param(
        '[profiles.w]\nkind = "openai"\n[profiles.w.defaults]\nmax_output_tokens = 1.5\n',
        4,
        "profiles.w.defaults.max_output_tokens",
        "must be an integer",
        id="max-tokens-type",
    ),
    pytest.param(
        '# my config\ndefault_profile = "home"\n[profiles.work]\nkind = "openai"\n',
        2,
        "default_profile",
        "default_profile 'home' names no [profiles.home]",
        id="unknown-default-profile",
    ),
    pytest.param(
        '[ui]\nsidebar = "yes"\n', 2, "ui.sidebar", "must be true or false", id="sidebar-type"
    ),
    pytest.param(
        '[keymap]\n"app.quit" = 3\n', 2, "keymap.app.quit", "must be a string", id="keymap-type"
    ),
]


@pytest.mark.parametrize(("text", "line", "key", "problem"), ERROR_CASES)
def test_config_errors_name_file_line_and_key(
    tmp_path: Path, text: str, line: int, key: str | None, problem: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    error = caught.value
    assert error.path == path
    assert error.line == line
    assert error.key == key
    assert problem in str(error)
    assert str(error).startswith(f"{path} line {line}: ")


def test_unknown_key_error_reads_well(tmp_path: Path) -> None:
    path = write(tmp_path, '[profiles.work]\nkind = "openai"\ntemprature = 1\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    assert str(caught.value) == (
        f"{path} line 3: unknown key 'temprature' (did you mean 'temperature' in "
        "[profiles.work.defaults]?) in [profiles.work]"
    )
    path = write(tmp_path, '[profiles.work]\nkind = "openai"\n\ntop_p = 1\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path, env={})
    assert str(caught.value) == (
        f"{path} line 4: unknown key 'top_p' (it belongs in [profiles.work.defaults]) in "
        "[profiles.work]"
    )


def test_unknown_profile_from_flag_or_env(tmp_path: Path) -> None:
    path = write(tmp_path, SAMPLE)
    with pytest.raises(ConfigError, match="--profile names profile 'nope'") as caught:
        load_config(path, env={}, overrides=Overrides(profile="nope"))
    assert caught.value.key == "profile" and caught.value.path == path
    with pytest.raises(ConfigError, match="FOUNDRY_TUI_PROFILE") as caught:
        load_config(path, env={"FOUNDRY_TUI_PROFILE": "nope"})
    assert caught.value.key == "FOUNDRY_TUI_PROFILE"


# --------------------------------------------------------------------------- writing


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_write_profile_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "new" / "dir" / "config.toml"
    written = Profile(
        name="work",
        kind=EndpointKind.AZURE_OPENAI,
        endpoint="https://myres.openai.azure.com",
        auth=AuthMethod.API_KEY,
        api_key_env="MY_AZURE_KEY",
        deployments=("gpt-4o", "o4-mini"),
        defaults=GenerationSettings(
            model="gpt-4o",
            instructions='Say "hi"\n\tthen stop \\ ok',
            temperature=0.25,
            top_p=0.9,
            max_output_tokens=512,
        ),
        scope="https://cognitiveservices.azure.us/.default",
    )
    write_profile(path, written)
    assert mode(path) == 0o600
    assert mode(path.parent) == 0o700
    config = load_config(path, env={"MY_AZURE_KEY": "sk-never-written-1234"})
    assert config.profiles == {"work": written}
    assert config.default_profile == "work"
    text = path.read_text()
    assert "sk-never-written" not in text
    assert "api_key =" not in text and "api_key_env" in text


def test_write_profile_keeps_other_profiles_and_comments(tmp_path: Path) -> None:
    path = write(tmp_path, "# my settings\n" + SAMPLE)
    os.chmod(path, 0o644)
    replaced = Profile(name="work", kind=EndpointKind.COMPATIBLE, endpoint="http://127.0.0.1:1/v1")
    added = Profile(
        name="new one",
        kind=EndpointKind.FOUNDRY_PROJECT,
        endpoint="https://a.services.ai.azure.com/api/projects/p",
        auth=AuthMethod.ENTRA_ID,
    )
    write_profile(path, replaced, make_default=False)
    write_profile(path, added)
    assert mode(path) == 0o644  # the user's mode stays; only a new file gets 0600
    config = load_config(path, env={})
    assert config.profiles["work"] == replaced
    assert config.profiles["new one"] == added
    assert config.profiles["lab"].kind is EndpointKind.FOUNDRY_PROJECT
    assert config.default_profile == "new one"
    assert config.keymap == {"app.toggle_sidebar": "ctrl+b"} and config.sidebar is True
    text = path.read_text()
    assert "# my settings" in text
    assert "[profiles.work.defaults]" not in text  # the old sub-table went with the profile


def test_write_profile_rewrites_inline_tables(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        'default_profile = "a"\n[profiles]\na = { kind = "openai", deployments = ["x"] }\n'
        'b = { kind = "compatible", endpoint = "http://127.0.0.1:2" }\n',
    )
    replaced = Profile(name="a", kind=EndpointKind.OPENAI, endpoint="", deployments=("y",))
    write_profile(path, replaced, make_default=False)
    config = load_config(path, env={})
    assert config.profiles["a"] == replaced
    assert config.profiles["b"].endpoint == "http://127.0.0.1:2"
    assert config.default_profile == "a"


def test_write_profile_refuses_to_clobber_a_broken_file(tmp_path: Path) -> None:
    path = write(tmp_path, "[profiles.a\n")
    with pytest.raises(ConfigError) as caught:
        write_profile(path, Profile(name="a", kind=EndpointKind.OPENAI, endpoint=""))
    assert caught.value.line == 1
    assert path.read_text() == "[profiles.a\n"


def test_written_file_is_plain_toml(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    write_profile(
        path,
        Profile(
            name="ü odd.name",
            kind=EndpointKind.COMPATIBLE,
            endpoint="http://127.0.0.1:3",
            auth=AuthMethod.NONE,
        ),
    )
    data = tomllib.loads(path.read_text())
    assert data["default_profile"] == "ü odd.name"
    assert data["profiles"]["ü odd.name"]["auth"] == "none"
