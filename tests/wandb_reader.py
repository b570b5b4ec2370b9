"""Read an offline W&B run folder back (tests only): history, name, group, tags and config.

An offline run writes its records to `<run_dir>/run-<id>.wandb`: a LevelDB-style log (a 7-byte
header, then 32 KiB blocks of checksummed chunks) of `wandb_internal_pb2.Record` protobufs.
"""

from __future__ import annotations

import json
import struct
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wandb.proto import wandb_internal_pb2

BLOCK = 32768  # the LevelDB-log block size of `.wandb` files


def read_payloads(path: Path) -> list[bytes]:
    """Payloads of a `.wandb` file (LevelDB log: 7-byte header, 32 KiB blocks of chunks)."""
    data = path.read_bytes()
    ident, magic, version = struct.unpack("<4sHB", data[:7])
    assert (ident, magic, version) == (b":W&B", 0xBEE1, 0)
    records: list[bytes] = []
    pending = b""
    pos = 7
    while pos + 7 <= len(data):
        if BLOCK - pos % BLOCK < 7:  # a block's tail too short for a chunk header is padding
            pos += BLOCK - pos % BLOCK
            continue
        checksum, length, kind = struct.unpack("<IHB", data[pos : pos + 7])
        if pos + 7 + length > len(data):  # still being written
            break
        chunk = data[pos + 7 : pos + 7 + length]
        assert zlib.crc32(bytes([kind]) + chunk) & 0xFFFFFFFF == checksum
        pending += chunk
        if kind in (1, 4):  # FULL, LAST
            records.append(pending)
            pending = b""
        pos += 7 + length
    return records


def _parse(path: Path) -> list[Any]:
    records = []
    for payload in read_payloads(path):
        record = wandb_internal_pb2.Record()  # type: ignore[attr-defined]
        record.ParseFromString(payload)
        records.append(record)
    return records


def read_records(run_dir: Path, timeout: float = 30.0) -> list[Any]:
    """Every `Record` of the finished offline run in `run_dir` (a `wandb/offline-run-*` folder).

    wandb's service writes the file in the background and may still be flushing it when
    `finish()` returns: wait (up to `timeout` seconds) for the run's `exit` record.
    """
    (path,) = run_dir.glob("*.wandb")
    deadline = time.monotonic() + timeout
    while True:
        records = _parse(path)
        if any(record.WhichOneof("record_type") == "exit" for record in records):
            return records
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} has no exit record after {timeout} s: run not finished")
        time.sleep(0.1)


def history(run_dir: Path) -> dict[str, list[Any]]:
    """Every history item of the offline run (its JSON value decoded), by key."""
    values: dict[str, list[Any]] = {}
    for record in read_records(run_dir):
        if record.WhichOneof("record_type") == "history":
            for item in record.history.item:
                key = item.key or "/".join(item.nested_key)
                values.setdefault(key, []).append(json.loads(item.value_json))
    return values


@dataclass
class RunInfo:
    """What an offline run says about itself; `config` maps top-level keys to decoded values."""

    name: str = ""
    group: str = ""
    tags: list[str] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)


def _apply_config(config: dict[str, Any], record: Any) -> None:
    for item in record.update:
        key = item.key or "/".join(item.nested_key)
        config[key] = json.loads(item.value_json)
    for item in record.remove:
        config.pop(item.key or "/".join(item.nested_key), None)


def run_info(run_dir: Path) -> RunInfo:
    """Name, group, tags and final config of the offline run in `run_dir`."""
    info = RunInfo()
    for record in read_records(run_dir):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            info.name = record.run.display_name
            info.group = record.run.run_group
            info.tags = list(record.run.tags)
            _apply_config(info.config, record.run.config)
        elif kind == "config":
            _apply_config(info.config, record.config)
    return info


def offline_runs(save_dir: Path) -> list[Path]:
    """The offline run folders under `save_dir/wandb`, oldest first."""
    return sorted((save_dir / "wandb").glob("offline-run-*"))
