"""The Textual face: the app, its screens and widgets. Draws and routes; decides nothing about a turn."""
