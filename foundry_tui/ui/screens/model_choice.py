"""The settings a prompt goes out with, from the sidebar: asking for a model when none is
set, and the endpoint's list of models when it comes in."""

from __future__ import annotations

from textual.screen import Screen
from textual.widgets import Input, OptionList

from foundry_tui.core.models import GenerationSettings
from foundry_tui.ui.widgets.sidebar import SettingsSidebar

NO_MODEL_HINT = (
    "This endpoint has no model (deployment) set. Pick one in the list with the arrow keys "
    "and Enter, or type its name; then Ctrl+L goes back to the prompt."
)


def settings_for_send(screen: Screen[None]) -> GenerationSettings | None:
    """The sidebar's settings; None, with the field to fix shown and said, when they
    cannot be sent."""
    sidebar = screen.query_one(SettingsSidebar)
    settings = sidebar.read_settings()
    if settings is None:
        sidebar.display = True
        if not sidebar.query_one("#model-input", Input).value.strip():
            sidebar.query_one("#model-input", Input).focus()
            message = "Type or pick a deployment (model) name in the sidebar first."
        else:
            message = "Fix the highlighted setting in the sidebar before sending."
        screen.notify(message, severity="error")
    return settings


def ask_for_model(screen: Screen[None]) -> None:
    """No model configured: the first send could only fail, so the model list (or the
    name field, while the endpoint's list is not in yet) gets the cursor at once."""
    sidebar = screen.query_one(SettingsSidebar)
    sidebar.display = True
    _focus_model_list(sidebar)
    screen.notify(NO_MODEL_HINT, title="Choose a model", timeout=30)


def show_models(
    screen: Screen[None], deployments: tuple[str, ...], endpoint_models: tuple[str, ...]
) -> None:
    """The profile's deployments and what the endpoint lists, in the sidebar."""
    sidebar = screen.query_one(SettingsSidebar)
    sidebar.show_models(deployments, endpoint_models)
    name_field = sidebar.query_one("#model-input", Input)
    # Still no model, and the cursor still waits in the empty name field for one.
    if screen.focused is name_field and not name_field.value.strip():
        _focus_model_list(sidebar)


def _focus_model_list(sidebar: SettingsSidebar) -> None:
    models = sidebar.query_one("#model-list", OptionList)
    if models.option_count:
        if models.highlighted is None:
            models.highlighted = 0
        models.focus()
    else:
        sidebar.query_one("#model-input", Input).focus()
