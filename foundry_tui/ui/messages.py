"""What the app and the chat screen tell each other.

The app never writes into a screen's widgets: it posts these to the chat screen, which
draws them. The screen never calls into the app: what only the app can answer (the
history database cannot be used) goes up as a message too.
"""

from __future__ import annotations

from textual.message import Message

from foundry_tui.core.models import Profile, StorageError


class BackendProgress(Message, bubble=False):
    """App to chat: how starting a slow backend (the local model) goes, for the status
    line; an empty text once it is ready."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text


class ModelsListed(Message, bubble=False):
    """App to chat: the profile's deployments and what the endpoint lists, for the
    sidebar's model list."""

    def __init__(self, deployments: tuple[str, ...], endpoint_models: tuple[str, ...]) -> None:
        super().__init__()
        self.deployments = deployments
        self.endpoint_models = endpoint_models


class HistoryUnusable(Message):
    """Chat to app: the history database could not be opened (the app shows the problem
    and what can be done, such as starting a fresh history for ``profile``)."""

    def __init__(self, error: StorageError, profile: Profile) -> None:
        super().__init__()
        self.error = error
        self.profile = profile
