"""Screens compose widgets and route their messages to the session and the app."""
