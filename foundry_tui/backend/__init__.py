"""The Responses API client: the only package that imports openai or azure."""
