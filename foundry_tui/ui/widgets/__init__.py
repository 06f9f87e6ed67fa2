"""Widgets render and collect input; they post messages and never do I/O."""
