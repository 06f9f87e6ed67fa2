"""The config writer keeps what the user wrote: comments, blank lines, key order, quoting,
indentation and other tables stay byte for byte; only the lines of the change differ."""

from __future__ import annotations

import dataclasses
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from foundry_tui.config import ConfigError, load_config, local_profile
from foundry_tui.config.writer import write_profile, write_ui_setting
from foundry_tui.core.models import AuthMethod, EndpointKind, GenerationSettings, Profile

# A config as a person edits it: comments everywhere, odd spacing, 'literal' strings, an
# array over several lines with comments in it, an inline table, an indented sub-table and
# a multi-line string holding a line that looks like a table header.
HAND_EDITED = """\
# foundry-tui: my settings, edited by hand
default_profile = 'work'   # the one I use most

[profiles.work]
kind     = "azure"                           # Azure OpenAI
endpoint = "https://myres.openai.azure.com"  # prod resource
api_key_env = "MY_AZURE_KEY"
deployments = [
    "gpt-4o",   # fast
    'o4-mini',  # thinks
]
defaults = { model = "gpt-4o", temperature = 0.2 }  # inline on purpose

[profiles.lab]
# llama.cpp on this machine
kind = "compatible"
endpoint = "http://127.0.0.1:8080/v1"
auth = "none"
deployments = ["qwen"]

  [profiles.lab.defaults]   # indented sub-table
  model = "qwen"
  instructions = \"\"\"
Answer briefly.
[rules]
No markdown.\"\"\"

# keys I changed
[keymap]
"app.toggle_sidebar" = "ctrl+b"   # like VS Code

[ui]
db_path  =  "~/chats/history.db"
theme = 'nord'     # picked in May

# end
"""

ENV = {"MY_AZURE_KEY": "not-a-real-key"}


def config_file(tmp_path: Path, text: str = HAND_EDITED) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text, encoding="utf-8")
    return path


def replaced(old: str, new: str, text: str = HAND_EDITED) -> str:
    assert text.count(old) == 1
    return text.replace(old, new)


def test_the_hand_edited_config_is_valid(tmp_path: Path) -> None:
    config = load_config(config_file(tmp_path), env=ENV)
    assert set(config.profiles) == {"work", "lab"} and config.theme == "nord"


def test_adding_a_profile_changes_nothing_else(tmp_path: Path) -> None:
    path = config_file(tmp_path)
    added = Profile(
        name="new one",
        kind=EndpointKind.FOUNDRY_PROJECT,
        endpoint="https://a.services.ai.azure.com/api/projects/p",
        auth=AuthMethod.ENTRA_ID,
        deployments=("gpt-4.1",),
    )
    write_profile(path, added, make_default=False)
    assert path.read_text(encoding="utf-8") == replaced(
        'No markdown."""\n\n# keys I changed\n',
        'No markdown."""\n\n'
        '[profiles."new one"]\n'
        'kind = "foundry"\n'
        'endpoint = "https://a.services.ai.azure.com/api/projects/p"\n'
        'auth = "entra_id"\n'
        'api_key_env = "AZURE_OPENAI_API_KEY"\n'
        'deployments = ["gpt-4.1"]\n'
        "\n# keys I changed\n",
    )
    assert load_config(path, env=ENV).profiles["new one"] == added


def test_setting_the_default_profile_changes_one_value(tmp_path: Path) -> None:
    path = config_file(tmp_path)
    lab = load_config(path, env=ENV).profiles["lab"]
    write_profile(path, lab)  # the setup screen saving an unchanged profile
    assert path.read_text(encoding="utf-8") == replaced(
        "default_profile = 'work'   #", "default_profile = 'lab'   #"
    )
    assert load_config(path, env=ENV).active_profile() == lab


def test_changing_a_profile_changes_only_its_changed_lines(tmp_path: Path) -> None:
    path = config_file(tmp_path)
    work = load_config(path, env=ENV).profiles["work"]
    moved = dataclasses.replace(work, endpoint="https://other.openai.azure.com")
    write_profile(path, moved, make_default=False)
    assert path.read_text(encoding="utf-8") == replaced(
        'endpoint = "https://myres.openai.azure.com"  # prod resource',
        'endpoint = "https://other.openai.azure.com"  # prod resource',
    )
    assert load_config(path, env=ENV).profiles["work"] == moved


def test_saving_the_theme_keeps_the_line_and_its_quoting(tmp_path: Path) -> None:
    path = config_file(tmp_path)
    write_ui_setting(path, "theme", "gruvbox")
    assert path.read_text(encoding="utf-8") == replaced(
        "theme = 'nord'     #", "theme = 'gruvbox'     #"
    )


def test_setting_the_sidebar_adds_one_line_to_ui(tmp_path: Path) -> None:
    path = config_file(tmp_path)
    write_ui_setting(path, "sidebar", False)
    assert path.read_text(encoding="utf-8") == replaced(
        "# picked in May\n", "# picked in May\nsidebar = false\n"
    )
    assert load_config(path, env=ENV).sidebar is False


def test_a_new_profile_leaves_a_comment_with_the_profile_above(tmp_path: Path) -> None:
    text = (
        '[profiles.a]\nkind = "openai"\n# allow_plain_http = true\n\n'
        '# my keys\n[keymap]\n"app.quit" = "ctrl+q"\n'
    )
    path = config_file(tmp_path, text)
    write_profile(path, local_profile("b"), make_default=False)
    assert path.read_text(encoding="utf-8") == replaced(
        "# allow_plain_http = true\n\n",
        "# allow_plain_http = true\n\n"
        '[profiles.b]\nkind = "local"\ndeployments = ["smollm2-135m"]\n\n'
        '[profiles.b.defaults]\nmodel = "smollm2-135m"\n\n',
        text,
    )


def test_writing_the_local_profile_changes_nothing_else(tmp_path: Path) -> None:
    path = config_file(tmp_path)
    local = local_profile("local", model_path="/models/q.gguf", deployments=("q",))
    write_profile(path, local, make_default=False)
    assert path.read_text(encoding="utf-8") == replaced(
        'No markdown."""\n\n# keys I changed\n',
        'No markdown."""\n\n'
        "[profiles.local]\n"
        'kind = "local"\n'
        'endpoint = "/models/q.gguf"\n'
        'deployments = ["q"]\n'
        "\n"
        "[profiles.local.defaults]\n"
        'model = "q"\n'
        "\n# keys I changed\n",
    )
    assert load_config(path, env=ENV).profiles["local"] == local


# --------------------------------------------------------------------------- forms the
# old line-based writer could only rewrite from scratch (dropping every comment)


def test_a_value_in_an_inline_ui_table_keeps_the_comments(tmp_path: Path) -> None:
    text = (
        '# mine\nui = { theme = "nord" }  # inline\n\n[profiles.a]  # only one\nkind = "openai"\n'
    )
    path = config_file(tmp_path, text)
    write_ui_setting(path, "sidebar", True)
    assert path.read_text(encoding="utf-8") == replaced(
        '{ theme = "nord" }', '{ theme = "nord", sidebar = true }', text
    )
    assert load_config(path, env={}).sidebar is True


def test_a_profile_written_inline_is_edited_in_place(tmp_path: Path) -> None:
    text = (
        "# two servers\n"
        "[profiles]\n"
        'a = { kind = "compatible", endpoint = "http://127.0.0.1:1/v1", auth = "none" }  # one\n'
        'b = { kind = "compatible", endpoint = "http://127.0.0.1:2/v1", auth = "none" }  # two\n'
    )
    path = config_file(tmp_path, text)
    a = load_config(path, env={}).profiles["a"]
    moved = dataclasses.replace(a, endpoint="http://127.0.0.1:3/v1")
    write_profile(path, moved, make_default=False)
    assert path.read_text(encoding="utf-8") == replaced("127.0.0.1:1/v1", "127.0.0.1:3/v1", text)
    assert load_config(path, env={}).profiles == {
        "a": moved,
        "b": dataclasses.replace(a, name="b", endpoint="http://127.0.0.1:2/v1"),
    }


def test_profiles_split_around_other_tables_stay_where_they_are(tmp_path: Path) -> None:
    text = (
        '[profiles.a]  # first\nkind = "openai"\n\n'
        '[ui]\ntheme = "nord"  # mine\n\n'
        '[profiles.b]  # later\nkind = "openai"\n'
    )
    path = config_file(tmp_path, text)
    a = load_config(path, env={}).profiles["a"]
    write_profile(path, dataclasses.replace(a, deployments=("gpt-4o",)))
    assert path.read_text(encoding="utf-8") == (
        'default_profile = "a"\n\n'
        + replaced('kind = "openai"\n\n', 'kind = "openai"\ndeployments = ["gpt-4o"]\n\n', text)
    )


# --------------------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    "text",
    ['[profiles.a\nkind = "openai"\n', 'ui = { theme = "x"\n', "a = 1\na = 2\n"],
    ids=["header", "inline", "duplicate"],
)
def test_a_file_that_does_not_parse_is_never_overwritten(tmp_path: Path, text: str) -> None:
    path = config_file(tmp_path, text)
    with pytest.raises(ConfigError, match="not valid TOML, so not rewritten") as caught:
        write_ui_setting(path, "theme", "nord")
    assert caught.value.line is not None
    with pytest.raises(ConfigError):
        write_profile(path, local_profile())
    assert path.read_text(encoding="utf-8") == text
    assert os.listdir(tmp_path) == ["config.toml"]  # no temp file left behind


def test_a_file_that_is_not_utf8_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_bytes(b'theme = "\xff"\n')
    with pytest.raises(ConfigError, match="not UTF-8"):
        write_ui_setting(path, "theme", "nord")
    assert path.read_bytes() == b'theme = "\xff"\n'


def test_an_edit_that_would_not_read_back_as_meant_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import foundry_tui.config.writer as writer

    path = config_file(tmp_path)
    monkeypatch.setattr(writer, "_set_value", lambda *args: None)  # an edit that goes wrong
    with pytest.raises(ConfigError, match="not rewritten"):
        write_ui_setting(path, "theme", "gruvbox")
    assert path.read_text(encoding="utf-8") == HAND_EDITED


# --------------------------------------------------------------------------- the file


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_file_is_replaced_at_once_keeping_its_mode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = config_file(tmp_path)
    os.chmod(path, 0o640)
    renames: list[tuple[str, str, str, int]] = []
    real_replace = os.replace

    def replace(src: str, dst: str) -> None:
        # What is about to become the config: complete, flushed, with the old mode.
        renames.append((src, dst, Path(src).read_text(encoding="utf-8"), mode(Path(src))))
        real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    write_ui_setting(path, "theme", "gruvbox")
    [(src, dst, text, src_mode)] = renames
    assert Path(src).parent == tmp_path and Path(src).name != "config.toml"
    assert str(dst) == str(path) and src_mode == 0o640
    assert text == path.read_text(encoding="utf-8") and "gruvbox" in text
    assert mode(path) == 0o640
    assert os.listdir(tmp_path) == ["config.toml"]


def test_a_failed_write_leaves_the_old_file_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = config_file(tmp_path)

    def crash(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        write_ui_setting(path, "theme", "gruvbox")
    assert path.read_text(encoding="utf-8") == HAND_EDITED
    assert os.listdir(tmp_path) == ["config.toml"]


def test_a_new_file_is_private(tmp_path: Path) -> None:
    path = tmp_path / "new" / "dir" / "config.toml"
    write_ui_setting(path, "theme", "nord")
    assert path.read_text(encoding="utf-8") == '[ui]\ntheme = "nord"\n'
    assert mode(path) == 0o600 and mode(path.parent) == 0o700


def test_a_linked_config_stays_a_link(tmp_path: Path) -> None:
    dotfiles = tmp_path / "dotfiles"
    dotfiles.mkdir()
    real = config_file(dotfiles)
    link = tmp_path / "config.toml"
    link.symlink_to(real)
    write_ui_setting(link, "theme", "gruvbox")
    assert link.is_symlink()
    assert "theme = 'gruvbox'" in real.read_text(encoding="utf-8")


def test_writers_at_the_same_time_lose_nothing(tmp_path: Path) -> None:
    path = config_file(tmp_path)
    names = [f"p{index}" for index in range(8)]
    start = threading.Barrier(len(names) + 1)
    errors: list[BaseException] = []

    def add(name: str) -> None:
        start.wait()
        try:
            write_profile(path, local_profile(name), make_default=False)
        except BaseException as error:  # reported below
            errors.append(error)

    def theme() -> None:
        start.wait()
        write_ui_setting(path, "sidebar", True)

    threads = [threading.Thread(target=add, args=(name,)) for name in names]
    threads.append(threading.Thread(target=theme))
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    config = load_config(path, env=ENV)
    assert set(names) <= set(config.profiles) and config.sidebar is True
    assert "# keys I changed" in path.read_text(encoding="utf-8")


# --------------------------------------------------------------------------- start-up cost

IMPORT_PROBE = """
import asyncio, importlib, pkgutil, sys
from pathlib import Path
import foundry_tui

# Every module of the app but the writer (the TUI, the subcommands, the local model).
for module in pkgutil.walk_packages(foundry_tui.__path__, "foundry_tui."):
    if module.name not in ("foundry_tui.__main__", "foundry_tui.config.writer"):
        importlib.import_module(module.name)

from foundry_tui.config import ConfigError, Overrides, load_config
from foundry_tui.ui.app import make_app
from foundry_tui.ui.screens.chat import ChatScreen

folder = Path(sys.argv[1])
broken = folder / "broken.toml"
broken.write_text('[ui]\\nsidebar = "yes"\\n')
try:
    load_config(broken)
except ConfigError as error:
    assert error.line == 2, error  # the line of the error, found without tomlkit
config_path = folder / "config.toml"
config_path.write_text(
    '[profiles.p]\\nkind = "compatible"\\nendpoint = "http://127.0.0.1:9/v1"\\n'
    'auth = "none"\\ndeployments = ["m"]\\n'
)
config = load_config(config_path, overrides=Overrides(db=folder / "h.db"))

async def main():
    app = make_app(config)
    async with app.run_test() as pilot:
        while not isinstance(app.screen, ChatScreen):
            await pilot.pause(0.01)
        await pilot.pause()
print("before", "tomlkit" in sys.modules)
asyncio.run(main())
print("started", "tomlkit" in sys.modules)
from foundry_tui.config.writer import write_ui_setting
write_ui_setting(config_path, "theme", "nord")
print("written", "tomlkit" in sys.modules)
"""


def test_tomlkit_is_imported_only_to_write(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", IMPORT_PROBE, str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n") == ["before False", "started False", "written True", ""]


# --------------------------------------------------------------------------- user values

# Text a user can type or paste: quotes, backslashes, newlines, tabs, control characters,
# DEL, non-ASCII (no surrogates: the file is UTF-8).
text = st.text(st.characters(exclude_categories=("Cs",)), max_size=20)
stripped = text.map(str.strip).filter(bool)
names = st.lists(stripped, min_size=1, max_size=3, unique=True).map(tuple)
floats = st.floats(allow_nan=False, allow_infinity=False)


@st.composite
def profiles(draw: st.DrawFn, named: st.SearchStrategy[str] = text) -> Profile:
    name = draw(named)
    deployments = draw(names)
    defaults = GenerationSettings(
        model=draw(st.sampled_from(deployments) | stripped),
        instructions=draw(st.none() | text),
        temperature=draw(st.none() | st.floats(0, 2)),
        top_p=draw(st.none() | st.floats(0, 1)),
        max_output_tokens=draw(st.none() | st.integers(1, 2**63 - 1)),
    )
    if draw(st.booleans()):
        return local_profile(
            name,
            model_path=draw(stripped.filter(lambda s: "://" not in s)),
            deployments=deployments,
        )
    kind = draw(st.sampled_from([EndpointKind.AZURE_OPENAI, EndpointKind.COMPATIBLE]))
    return Profile(
        name=name,
        kind=kind,
        endpoint="https://" + draw(stripped.filter(lambda s: s[0] not in "/ \t\n\r")),
        auth=draw(st.sampled_from([AuthMethod.API_KEY, AuthMethod.ENTRA_ID, AuthMethod.NONE])),
        api_key_env=draw(st.sampled_from(["AZURE_OPENAI_API_KEY", "OPENAI_API_KEY", "MY_KEY"])),
        deployments=deployments,
        defaults=defaults,
        scope=draw(st.none() | stripped),
        allow_plain_http=draw(st.booleans()),
        stream_idle_seconds=draw(st.floats(0.001, 86_400)),
        stream_total_seconds=draw(st.floats(0.001, 86_400)),
    )


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(profile=profiles(), theme=text)
def test_what_the_user_typed_reads_back_exactly(
    tmp_path: Path, profile: Profile, theme: str
) -> None:
    path = tmp_path / "config.toml"
    path.write_text(HAND_EDITED, encoding="utf-8")
    write_profile(path, profile)
    write_ui_setting(path, "theme", theme)
    config = load_config(path, env=ENV)
    assert config.profiles[profile.name] == profile
    assert config.default_profile == profile.name and config.theme == theme
    assert "# keys I changed" in path.read_text(encoding="utf-8")


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(first=profiles(st.just("lab")), second=profiles(st.sampled_from(["work", "lab"])))
def test_a_profile_edited_in_place_reads_back_exactly(
    tmp_path: Path, first: Profile, second: Profile
) -> None:
    path = tmp_path / "config.toml"
    path.write_text(HAND_EDITED, encoding="utf-8")
    write_profile(path, first, make_default=False)
    write_profile(path, second, make_default=False)
    profiles = load_config(path, env=ENV).profiles
    assert profiles[second.name] == second
    assert profiles["lab"] == (second if second.name == "lab" else first)
    assert "# keys I changed" in path.read_text(encoding="utf-8")


def test_keys_a_local_profile_does_not_use_stay(tmp_path: Path) -> None:
    text = '[profiles.mine]\nkind = "local"\nauth = "none"  # no key\nendpoint = "/m/a.gguf"\n'
    path = config_file(tmp_path, text)
    moved = local_profile("mine", model_path="/m/b.gguf", deployments=("b",))
    write_profile(path, moved, make_default=False)
    assert path.read_text(encoding="utf-8") == (
        replaced("/m/a.gguf", "/m/b.gguf", text)
        + 'deployments = ["b"]\n\n[profiles.mine.defaults]\nmodel = "b"\n'
    )
    assert load_config(path, env={}).profiles["mine"] == moved
