"""The headless core: conversations, turns and the words for them. Never imports Textual or Rich."""
