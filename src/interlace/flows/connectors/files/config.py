"""``source: {type: files}`` and ``sink: {type: files}``: JSON lines (or CSV) on the local disk."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from interlace.config._flow_parts import ConnectorConfig

__all__ = ["FilesSinkConfig", "FilesSourceConfig"]


class FilesSourceConfig(ConnectorConfig):
    """Reads every matching file of ``dir`` line by line; the position (file, line) survives restarts."""

    type: Literal["files"]
    dir: str = Field(description="The watched directory.")
    pattern: str = Field("*.jsonl", description="Glob of the files read, e.g. '*.csv'.")
    format: Literal["jsonl", "csv"] = Field("jsonl", description="JSON lines, or CSV with a header row.")
    poll_interval: float = Field(1.0, gt=0, description="Seconds between directory scans.")
    done: Literal["move", "mark"] = Field(
        "move", description="A finished file is moved to done_dir, or renamed with a '.done' suffix."
    )
    done_dir: str | None = Field(None, description="Default: '<dir>/done'.")
    positions: str | None = Field(
        None, description="The positions file; default '<dir>/.interlace-positions.json'."
    )
    key_field: str | None = Field(None, description="The field used as the message key.")


class FilesSinkConfig(ConnectorConfig):
    """Appends one JSON line per message and fsyncs before confirming."""

    type: Literal["files"]
    path: str = Field(description="The JSON-lines file (created with its directory).")
    format: Literal["envelope", "payload"] = Field(
        "envelope",
        description="'envelope': {id, key, source, position, headers, payload}; 'payload': the payload only.",
    )
    fsync: bool = Field(default=True, description="fsync before confirming (off only for scratch data).")
