"""foundry-tui: a terminal chat client for the OpenAI Responses API (Azure AI Foundry, Azure OpenAI, OpenAI)."""

__version__ = "0.1.0"
