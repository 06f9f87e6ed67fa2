"""Finding lines in a TOML file (best effort): the line a config error names.

tomllib, which reads the config, gives values without positions; tomlkit, which writes
it, is kept off the read path (it costs start-up time), so the validator finds the line
of a key here, only once it has an error to report.
"""

from __future__ import annotations

import re

__all__ = ["LineFinder", "table_name", "tomllib_line"]


def _split_dotted(header: str) -> tuple[str, ...]:
    parts: list[str] = []
    for match in re.finditer(r'\s*("(?:[^"\\]|\\.)*"|\'[^\']*\'|[^.]+)\s*(?:\.|$)', header):
        part = match.group(1).strip()
        if len(part) >= 2 and part[0] == part[-1] and part[0] in "\"'":
            part = part[1:-1]
        if part:
            parts.append(part)
    return tuple(parts)


HEADER_RE = re.compile(r"^\s*\[\[?\s*([^\[\]]+?)\s*\]\]?\s*(?:#.*)?$")


class LineFinder:
    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()
        # section start index -> header parts; the implicit top-level table first
        self.sections: list[tuple[tuple[str, ...], int, int]] = []
        starts: list[tuple[tuple[str, ...], int]] = [((), 0)]
        for index, line in enumerate(self.lines):
            match = HEADER_RE.match(line)
            if match:
                starts.append((_split_dotted(match.group(1)), index))
        for number, (parts, start) in enumerate(starts):
            end = starts[number + 1][1] if number + 1 < len(starts) else len(self.lines)
            self.sections.append((parts, start, end))

    def find(self, table: tuple[str, ...], key: str | None) -> int | None:
        """1-based line of `key` in `table` (or of the table header when key is None)."""
        if key is None:
            for parts, start, _end in self.sections:
                if parts == table and parts:
                    return start + 1
            return None
        key_re = re.compile(
            r"(?:^|[\s{,.])(?:"
            + re.escape(key)
            + r'|"'
            + re.escape(key)
            + r'"|\''
            + re.escape(key)
            + r"')\s*="
        )
        for depth in range(len(table), -1, -1):
            prefix = table[:depth]
            for parts, start, end in self.sections:
                if parts != prefix:
                    continue
                for index in range(start, end):
                    line = self.lines[index]
                    if HEADER_RE.match(line):
                        continue
                    if key_re.search(line.split("#", 1)[0] if '"' not in line else line):
                        return index + 1
        return self.find(table, None) if table else None


def table_name(table: tuple[str, ...]) -> str:
    return ".".join(
        part if re.fullmatch(r"[A-Za-z0-9_-]+", part) else f'"{part}"' for part in table
    )


def tomllib_line(message: str) -> int | None:
    match = re.search(r"line (\d+)", message)
    return int(match.group(1)) if match else None
