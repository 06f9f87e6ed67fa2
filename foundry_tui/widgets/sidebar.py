"""The settings sidebar: model/deployment, temperature, top_p, max output tokens, instructions."""

from __future__ import annotations

from dataclasses import dataclass

from textual import on
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.message import Message
from textual.suggester import SuggestFromList
from textual.validation import Integer, Number, ValidationResult, Validator
from textual.widgets import Input, Label, OptionList, Static, TextArea
from textual.widgets.option_list import Option

from foundry_tui.models import GenerationSettings

ENDPOINT_MARK = " (endpoint)"


def _number_text(value: float | int | None) -> str:
    return "" if value is None else str(value)


@dataclass(frozen=True)
class _NumberField:
    """One optional numeric setting: its widgets' id, label, rule and refusal message."""

    name: str  # "#{name}-input" and "#{name}-error"
    label: str
    validator: Validator
    refusal: str


_NUMBER_FIELDS = (
    _NumberField(
        "temperature",
        "Temperature (0.0-2.0)",
        Number(minimum=0.0, maximum=2.0),
        "Temperature must be a number from 0.0 to 2.0, or empty.",
    ),
    _NumberField(
        "top-p",
        "top_p (0.0-1.0)",
        Number(minimum=0.0, maximum=1.0),
        "top_p must be a number from 0.0 to 1.0, or empty.",
    ),
    _NumberField(
        "max-tokens",
        "Max output tokens",
        Integer(minimum=1, maximum=10_000_000),
        "Max output tokens must be a whole number of 1 or more, or empty.",
    ),
)


class SettingsSidebar(VerticalScroll):
    """Edits a conversation's GenerationSettings; posts SettingsEdited when they are valid."""

    @dataclass
    class SettingsEdited(Message):
        settings: GenerationSettings

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._deployments: tuple[str, ...] = ()
        self._endpoint_models: tuple[str, ...] = ()

    def compose(self) -> ComposeResult:
        yield Static("Settings", classes="panel-title")
        yield Label("Model / deployment")
        yield Input(placeholder="deployment name", id="model-input", compact=True)
        yield OptionList(id="model-list", compact=True, markup=False)
        for field in _NUMBER_FIELDS:
            yield Label(field.label)
            yield Input(
                placeholder="server default",
                id=f"{field.name}-input",
                validators=[field.validator],
                valid_empty=True,
                compact=True,
            )
            yield Static("", id=f"{field.name}-error", classes="field-error")
        yield Label("Instructions")
        yield TextArea(id="instructions-input", soft_wrap=True, compact=True)
        yield Static("Applies from the next turn.", classes="hint")

    # -- attributes down ----------------------------------------------------------

    def show_settings(self, settings: GenerationSettings) -> None:
        with self.prevent(Input.Changed, TextArea.Changed):
            self.query_one("#model-input", Input).value = settings.model
            self.query_one("#temperature-input", Input).value = _number_text(settings.temperature)
            self.query_one("#top-p-input", Input).value = _number_text(settings.top_p)
            self.query_one("#max-tokens-input", Input).value = _number_text(
                settings.max_output_tokens
            )
            self.query_one("#instructions-input", TextArea).text = settings.instructions or ""
        for field in _NUMBER_FIELDS:
            self._show_refusal(field.name, "")
        self._highlight_model(settings.model)

    def show_models(self, deployments: tuple[str, ...], endpoint_models: tuple[str, ...]) -> None:
        """Lists the profile's deployments first, then what the endpoint lists, marked."""
        self._deployments = deployments
        self._endpoint_models = tuple(m for m in endpoint_models if m not in deployments)
        option_list = self.query_one("#model-list", OptionList)
        option_list.clear_options()
        option_list.add_options(
            [Option(name, id=name) for name in self._deployments]
            + [Option(name + ENDPOINT_MARK, id=name) for name in self._endpoint_models]
        )
        names = [*self._deployments, *self._endpoint_models]
        self.query_one("#model-input", Input).suggester = SuggestFromList(
            names, case_sensitive=False
        )
        self._highlight_model(self.query_one("#model-input", Input).value)

    def _highlight_model(self, model: str) -> None:
        option_list = self.query_one("#model-list", OptionList)
        for index in range(option_list.option_count):
            if option_list.get_option_at_index(index).id == model:
                option_list.highlighted = index
                return

    # -- messages up --------------------------------------------------------------

    @on(OptionList.OptionSelected, "#model-list")
    def _model_picked(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        model_input = self.query_one("#model-input", Input)
        model_input.value = event.option.id or ""
        self._post_if_valid()

    @on(Input.Changed)
    def _field_changed(self, event: Input.Changed) -> None:
        event.stop()
        self._post_if_valid()

    @on(TextArea.Changed, "#instructions-input")
    def _instructions_changed(self, event: TextArea.Changed) -> None:
        event.stop()
        self._post_if_valid()

    def _post_if_valid(self) -> None:
        settings = self.read_settings()
        if settings is not None:
            self.post_message(self.SettingsEdited(settings))

    def _show_refusal(self, name: str, text: str) -> None:
        # Only a change is shown: each update lays out the whole screen (the line appears
        # or goes), and settings are read on every send.
        line = self.query_one(f"#{name}-error", Static)
        if str(line.content) != text:
            line.update(text)

    def read_settings(self) -> GenerationSettings | None:
        """The settings in the fields, or None (with messages shown) where one is invalid."""
        valid = True
        for field in _NUMBER_FIELDS:
            field_input = self.query_one(f"#{field.name}-input", Input)
            result: ValidationResult | None = field_input.validate(field_input.value)
            ok = result is None or result.is_valid
            self._show_refusal(field.name, "" if ok else field.refusal)
            valid = valid and ok
        model = self.query_one("#model-input", Input).value.strip()
        if not model:
            valid = False
        if not valid:
            return None
        instructions = self.query_one("#instructions-input", TextArea).text
        return GenerationSettings(
            model=model,
            instructions=instructions if instructions.strip() else None,
            temperature=_parse_float(self.query_one("#temperature-input", Input).value),
            top_p=_parse_float(self.query_one("#top-p-input", Input).value),
            max_output_tokens=_parse_int(self.query_one("#max-tokens-input", Input).value),
        )


def _parse_float(text: str) -> float | None:
    return float(text) if text.strip() else None


def _parse_int(text: str) -> int | None:
    return int(text) if text.strip() else None
