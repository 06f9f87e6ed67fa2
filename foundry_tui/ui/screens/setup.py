"""First-run setup: the local model (no account), or an endpoint, its auth method and
deployments, written to the config file."""

from __future__ import annotations

from dataclasses import dataclass

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.content import Content
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Button, Input, Label, Select, Static

from foundry_tui.core.guards import looks_like_key, masked, plain_http_problem
from foundry_tui.core.models import (
    AuthMethod,
    EndpointKind,
    GenerationSettings,
    LocalOffer,
    Profile,
)
from foundry_tui.core.text import one_line
from foundry_tui.ui.widgets.footer import KeyFooter
from foundry_tui.ui.widgets.plain import plain_text

_KIND_CHOICES = [
    ("Azure OpenAI resource (https://RES.openai.azure.com)", EndpointKind.AZURE_OPENAI),
    (
        "Azure AI Foundry project (https://ACCOUNT.services.ai.azure.com/api/projects/P)",
        EndpointKind.FOUNDRY_PROJECT,
    ),
    ("OpenAI (https://api.openai.com/v1)", EndpointKind.OPENAI),
    ("Any OpenAI-compatible base URL", EndpointKind.COMPATIBLE),
]
_AUTH_CHOICES = [
    ("API key from an environment variable", AuthMethod.API_KEY),
    ("Microsoft Entra ID (az login, managed identity, …)", AuthMethod.ENTRA_ID),
    ("No authentication (local server)", AuthMethod.NONE),
]
_DEFAULT_KEY_VARIABLE = {
    EndpointKind.AZURE_OPENAI: "AZURE_OPENAI_API_KEY",
    EndpointKind.FOUNDRY_PROJECT: "AZURE_OPENAI_API_KEY",
    EndpointKind.OPENAI: "OPENAI_API_KEY",
    EndpointKind.COMPATIBLE: "OPENAI_API_KEY",
}


class SetupScreen(Screen[None]):
    """Collects a profile; posts ProfileEntered for the app to save. Never asks for a key."""

    CSS_PATH = "setup.tcss"
    BINDINGS = [
        Binding("ctrl+s", "save", "Save", id="setup.save", tooltip="Save this profile and start"),
    ]

    @dataclass
    class ProfileEntered(Message):
        profile: Profile

    def __init__(
        self, local: LocalOffer, *, problem: str | None = None, config_path: str = ""
    ) -> None:
        super().__init__()
        self.problem = problem
        self.config_path = config_path
        self.local = local

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="setup-form"):
            yield Static("Welcome to foundry-tui", id="setup-title")
            # The problem, the config path (from --config or FOUNDRY_TUI_CONFIG) and the
            # local model's file name are shown inert: never markup, never escapes.
            if self.problem:
                yield Static(plain_text(self.problem), id="setup-problem")
            yield from self._compose_local(self.local)
            yield Static(
                Content(
                    "Or connect to an endpoint. Fill this in once; it is saved to\n"
                    f"{one_line(self.config_path, 300)}\n"
                    "API keys are never saved: name the environment variable that holds yours."
                ),
                id="setup-intro",
            )
            yield Label("Endpoint kind")
            yield Select(
                _KIND_CHOICES, value=EndpointKind.AZURE_OPENAI, allow_blank=False, id="setup-kind"
            )
            yield Label("Endpoint URL")
            yield Input(placeholder="https://my-resource.openai.azure.com", id="setup-endpoint")
            yield Label("Authentication")
            yield Select(
                _AUTH_CHOICES, value=AuthMethod.API_KEY, allow_blank=False, id="setup-auth"
            )
            yield Label("Environment variable holding the API key")
            yield Input(value="AZURE_OPENAI_API_KEY", id="setup-key-env")
            yield Label("Deployment names (comma-separated; the first is the default)")
            yield Input(placeholder="gpt-4o, gpt-4o-mini", id="setup-deployments")
            yield Label("Profile name")
            yield Input(value="default", id="setup-name")
            yield Static("", id="setup-error")
            with Horizontal(id="setup-buttons"):
                yield Button("Save and start (Ctrl+S)", variant="primary", id="setup-save")
        yield KeyFooter()

    def _compose_local(self, local: LocalOffer) -> ComposeResult:
        with Vertical(id="setup-local-box"):
            if local.ready:
                size = f" ({local.megabytes} MB)" if local.megabytes else ""
                yield Static(
                    Content(
                        f"No account needed: the local model {one_line(local.label)}"
                        f"{size} runs on this computer, offline. Replies are short and simple; "
                        "the conversation is saved like any other."
                    ),
                    id="setup-local-text",
                )
                with Horizontal(id="setup-local-buttons"):
                    yield Button(
                        "Use the local model (no account)", variant="success", id="setup-local"
                    )
            elif local.cpu_lacks_avx2:
                yield Static(
                    "The local model needs a CPU with AVX2, which this one lacks: connect to "
                    "an endpoint below.",
                    id="setup-local-text",
                )
            else:
                yield Static(
                    "No account? A small local model can run on this computer, offline. "
                    "Quit (Ctrl+Q), install it with\n"
                    f"    {one_line(local.install_command)}\n"
                    "then start foundry-tui again.",
                    id="setup-local-text",
                    markup=False,
                )

    def on_mount(self) -> None:
        if self.query("#setup-local"):
            self.query_one("#setup-local", Button).focus()
        else:
            self.query_one("#setup-endpoint", Input).focus()

    @on(Button.Pressed, "#setup-local")
    def _local_pressed(self) -> None:
        self.query_one("#setup-error", Static).update("")
        self.post_message(
            self.ProfileEntered(
                Profile(
                    name="local",
                    kind=EndpointKind.LOCAL,
                    endpoint="",  # the bundled model, wherever pip put it
                    auth=AuthMethod.NONE,
                    api_key_env="FOUNDRY_TUI_LOCAL_KEY",
                    deployments=(self.local.alias,),
                    defaults=GenerationSettings(model=self.local.alias),
                )
            )
        )

    @on(Select.Changed, "#setup-kind")
    def _kind_changed(self, event: Select.Changed) -> None:
        kind = EndpointKind(str(event.value))
        key_env = self.query_one("#setup-key-env", Input)
        if key_env.value in _DEFAULT_KEY_VARIABLE.values():
            key_env.value = _DEFAULT_KEY_VARIABLE[kind]
        endpoint = self.query_one("#setup-endpoint", Input)
        endpoint.placeholder = {
            EndpointKind.AZURE_OPENAI: "https://my-resource.openai.azure.com",
            EndpointKind.FOUNDRY_PROJECT: "https://my-account.services.ai.azure.com/api/projects/my-project",
            EndpointKind.OPENAI: "(leave empty for https://api.openai.com/v1)",
            EndpointKind.COMPATIBLE: "http://127.0.0.1:8000/v1",
        }[kind]

    @on(Button.Pressed, "#setup-save")
    def _save_pressed(self) -> None:
        self.action_save()

    @on(Input.Submitted)
    def _submitted(self) -> None:
        self.action_save()

    def action_save(self) -> None:
        profile, problem = self._read_profile()
        if profile is None:
            self.show_error(problem)
            return
        self.show_error("")
        self.post_message(self.ProfileEntered(profile))

    def show_error(self, message: str) -> None:
        """Shows ``message`` (which may quote a path or an OS error) inert."""
        self.query_one("#setup-error", Static).update(plain_text(message))

    def _read_profile(self) -> tuple[Profile | None, str]:
        kind = EndpointKind(str(self.query_one("#setup-kind", Select).value))
        auth = AuthMethod(str(self.query_one("#setup-auth", Select).value))
        endpoint = self.query_one("#setup-endpoint", Input).value.strip()
        key_env = self.query_one("#setup-key-env", Input).value.strip()
        name = self.query_one("#setup-name", Input).value.strip() or "default"
        deployments = tuple(
            d.strip()
            for d in self.query_one("#setup-deployments", Input).value.split(",")
            if d.strip()
        )
        if kind != EndpointKind.OPENAI and not endpoint:
            return None, "Enter the endpoint URL."
        if endpoint and not endpoint.startswith(("https://", "http://")):
            return (
                None,
                "The endpoint URL must start with https:// (or http:// for a server on this "
                "machine).",
            )
        problem = plain_http_problem(endpoint, auth, allowed=False)
        if problem is not None:
            return None, f"{problem[0].upper()}{problem[1:]} (in {self.config_path})."
        if auth == AuthMethod.API_KEY and looks_like_key(key_env):
            return (
                None,
                f"That looks like the key itself ({masked(key_env)}): keys are never saved. "
                "Put it in an environment variable and type the variable's name here.",
            )
        if auth == AuthMethod.API_KEY and not key_env.replace("_", "").isalnum():
            return (
                None,
                "Name the environment variable that holds the key (like AZURE_OPENAI_API_KEY).",
            )
        if not deployments:
            return None, "Enter at least one deployment (model) name."
        if not name.replace("-", "").replace("_", "").isalnum():
            return None, "The profile name may use letters, digits, - and _."
        return (
            Profile(
                name=name,
                kind=kind,
                endpoint=endpoint,
                auth=auth,
                api_key_env=key_env or _DEFAULT_KEY_VARIABLE[kind],
                deployments=deployments,
                defaults=GenerationSettings(model=deployments[0]),
            ),
            "",
        )
