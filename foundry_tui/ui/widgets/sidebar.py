"""The settings sidebar: model/deployment, temperature, top_p, max output tokens, reasoning
effort and summary, verbosity, instructions.

Model names come from the config and from the endpoint's ``/models`` (any server, any number:
one listed 100,000): they are shown inert (foundry_tui.core.text), and at most LIST_CAP of them at
a time; what is typed in the model field narrows the list among all of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from textual import on
from textual.app import ComposeResult
from textual.containers import VerticalScroll
from textual.content import Content
from textual.message import Message
from textual.suggester import SuggestFromList
from textual.validation import Integer, Number, ValidationResult, Validator
from textual.widgets import Input, Label, OptionList, Select, Static, TextArea
from textual.widgets.option_list import Option

from foundry_tui.core.models import GenerationSettings
from foundry_tui.core.parameters import REASONING_EFFORTS, REASONING_SUMMARIES, VERBOSITIES
from foundry_tui.core.text import one_line, sanitize

ENDPOINT_MARK = " (endpoint)"
# The most model names in the list at once (an option each); the rest are a keystroke away.
LIST_CAP = 50
# Longer names are shown cut (no real deployment name is a tenth as long).
NAME_LIMIT = 200


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


@dataclass(frozen=True)
class _ChoiceField:
    """One setting picked from a list; "" (the first choice) leaves it to the server."""

    name: str  # "#{name}-select"
    label: str
    unset: str  # what the first choice reads
    values: tuple[str, ...]
    setting: str  # the GenerationSettings field


_CHOICE_FIELDS = (
    _ChoiceField(
        "reasoning-effort",
        "Reasoning effort",
        "server default",
        REASONING_EFFORTS,
        "reasoning_effort",
    ),
    _ChoiceField(
        "reasoning-summary",
        "Reasoning summary",
        "off",
        REASONING_SUMMARIES,
        "reasoning_summary",
    ),
    _ChoiceField("verbosity", "Verbosity", "server default", VERBOSITIES, "verbosity"),
)


def _choices(field: _ChoiceField, current: str) -> list[tuple[str, str]]:
    """The field's choices; a value this version does not know (a newer server's, or an
    imported conversation's) is kept as one more, shown inert."""
    options = [(field.unset, ""), *((value, value) for value in field.values)]
    if current and current not in field.values:
        options.append((one_line(current, NAME_LIMIT), current))
    return options


class SettingsSidebar(VerticalScroll):
    """Edits a conversation's GenerationSettings; posts SettingsEdited when they are valid."""

    @dataclass
    class SettingsEdited(Message):
        settings: GenerationSettings

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        # Every name, inert and unique: the profile's deployments first, then the endpoint's.
        self._names: list[str] = []
        self._folded: list[str] = []  # the same, case-folded, for the filter
        self._deployment_count = 0
        self._listed: tuple[tuple[str, ...], int] | None = None  # what the list shows now
        # Each choice field's options, where they are more than its own values.
        self._choice_options: dict[str, list[tuple[str, str]]] = {}

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
        for choice in _CHOICE_FIELDS:
            yield Label(choice.label)
            self._choice_options[choice.name] = _choices(choice, "")
            yield Select(
                self._choice_options[choice.name],
                allow_blank=False,
                value="",
                id=f"{choice.name}-select",
                compact=True,
            )
        yield Label("Instructions")
        yield TextArea(id="instructions-input", soft_wrap=True, compact=True)
        yield Static("Applies from the next turn.", classes="hint")

    # -- attributes down ----------------------------------------------------------

    def show_settings(self, settings: GenerationSettings) -> None:
        # A conversation's settings may have come from a server (a rebuilt conversation):
        # the fields show them inert.
        with self.prevent(Input.Changed, TextArea.Changed, Select.Changed):
            for choice in _CHOICE_FIELDS:
                current = getattr(settings, choice.setting) or ""
                select: Select[str] = self.query_one(f"#{choice.name}-select", Select)
                options = _choices(choice, current)
                if options != self._choice_options.get(choice.name):
                    select.set_options(options)
                    self._choice_options[choice.name] = options
                select.value = current
            self.query_one("#model-input", Input).value = one_line(settings.model, NAME_LIMIT)
            self.query_one("#temperature-input", Input).value = _number_text(settings.temperature)
            self.query_one("#top-p-input", Input).value = _number_text(settings.top_p)
            self.query_one("#max-tokens-input", Input).value = _number_text(
                settings.max_output_tokens
            )
            self.query_one("#instructions-input", TextArea).text = sanitize(
                settings.instructions or ""
            )
        for field in _NUMBER_FIELDS:
            self._show_refusal(field.name, "")
        self._list_models()

    def show_models(self, deployments: tuple[str, ...], endpoint_models: tuple[str, ...]) -> None:
        """Lists the profile's deployments first, then what the endpoint lists, marked."""
        names = dict.fromkeys(one_line(name, NAME_LIMIT) for name in deployments)
        names.pop("", None)
        self._deployment_count = len(names)
        names.update(dict.fromkeys(one_line(name, NAME_LIMIT) for name in endpoint_models))
        names.pop("", None)
        self._names = list(names)
        self._folded = [name.casefold() for name in self._names]
        self.query_one("#model-input", Input).suggester = SuggestFromList(
            self._names, case_sensitive=False
        )
        self._list_models()

    def _list_models(self, typed: str = "") -> None:
        """Lists the first LIST_CAP names that hold ``typed`` (any case), and highlights the
        model field's name where it is listed."""
        typed = typed.strip()
        matches: Sequence[int]
        if not typed:
            matches = range(len(self._names))
        else:
            needle = typed.casefold()
            matches = [i for i, folded in enumerate(self._folded) if needle in folded]
        first = matches[:LIST_CAP]
        shown = tuple(self._names[i] for i in first)
        listed = (shown, len(matches))
        option_list = self.query_one("#model-list", OptionList)
        if listed != self._listed:
            self._listed = listed
            options = [
                Option(
                    Content(name if i < self._deployment_count else name + ENDPOINT_MARK), id=name
                )
                for i, name in zip(first, shown, strict=True)
            ]
            if len(matches) > LIST_CAP:
                more = f"… {len(matches) - LIST_CAP:,} more: type to narrow the list"
                options.append(Option(Content(more), disabled=True))
            option_list.set_options(options)
        model = self.query_one("#model-input", Input).value.strip()
        if model in shown:
            option_list.highlighted = shown.index(model)

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
        if event.input.id == "model-input":
            # Only typing narrows the list; a name put there (picked, or a conversation's
            # own) leaves every name listed.
            self._list_models(event.value if event.input.has_focus else "")
        self._post_if_valid()

    @on(Select.Changed)
    def _choice_changed(self, event: Select.Changed) -> None:
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
            **{choice.setting: self._choice(choice) for choice in _CHOICE_FIELDS},
        )

    def _choice(self, choice: _ChoiceField) -> str | None:
        value = self.query_one(f"#{choice.name}-select", Select).value
        return value if isinstance(value, str) and value else None


def _parse_float(text: str) -> float | None:
    return float(text) if text.strip() else None


def _parse_int(text: str) -> int | None:
    return int(text) if text.strip() else None
