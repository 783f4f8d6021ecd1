"""``agentgym export RUN_DIR``: the stored episodes as JSON Lines or Parquet.

One record per episode, the same in both formats: the episode's fields, ``length``, and
``steps`` (each with its token arrays unless ``tokens=False``). In Parquet, the free-form
dicts (``info``, ``timings``, ``advantage_parts``) are JSON strings, so that one schema
fits every environment and credit-assignment method. The store is checked first
(``quick_check``), and a file export is written to ``OUT.partial`` and renamed into
place, so a failure half way leaves no partial file behind.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from agentgym.errors import AgentGymError
from agentgym.replay.run import Run
from agentgym.replay.views import episode_dict
from agentgym.rundir import filesystem_error

FORMATS = ("jsonl", "parquet")
PAGE = 200  # episodes read (and, for Parquet, written) at a time
_JSON_FIELDS = ("info", "timings", "advantage_parts")


def iter_records(run: Run, filters: dict[str, Any], *, tokens: bool = True) -> Iterator[dict]:
    """Every matching episode as a record, in insertion order, a page at a time."""
    offset = 0
    while True:
        page = run.store.query(limit=PAGE, offset=offset, order="episode", **filters)
        for summary in page:
            yield episode_dict(run.store.get_episode(summary.episode_id), tokens=tokens)
        if len(page) < PAGE:
            return
        offset += PAGE


def export(run_dir: str | Path, out: str | Path | None, fmt: str = "jsonl",
           filters: dict[str, Any] | None = None, *, tokens: bool = True) -> tuple[str, int]:
    """Write the matching episodes to ``out`` (``-``: stdout, JSON Lines only; None:
    ``RUN_DIR/episodes.FORMAT``). Returns (where, how many)."""
    if fmt not in FORMATS:
        raise AgentGymError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")
    writer = _parquet_writer() if fmt == "parquet" else None  # fail before reading anything
    with Run(run_dir, tokenizer=False) as run:
        run.store.quick_check()
        target = str(out) if out is not None else str(Path(run_dir) / f"episodes.{fmt}")
        if target == "-" and fmt != "jsonl":
            raise AgentGymError("only jsonl can be written to stdout; give --out FILE")
        records = iter_records(run, filters or {}, tokens=tokens)
        write = _write_jsonl if fmt == "jsonl" else (lambda r, t: writer(r, t, tokens))
        if target == "-":
            return target, write(records, target)
        # a failure half way (a full disk, a damaged page) must not leave a partial file
        partial = f"{target}.partial"
        try:
            count = write(records, partial)
            os.replace(partial, target)
        except BaseException as exc:
            Path(partial).unlink(missing_ok=True)
            friendly = filesystem_error(exc, "the export", target) if isinstance(exc, Exception) else None
            if friendly is None:
                raise
            raise friendly from exc
    return target, count


def _write_jsonl(records: Iterator[dict], target: str) -> int:
    count = 0
    f = sys.stdout if target == "-" else open(target, "w", encoding="utf-8")  # noqa: SIM115
    try:
        for record in records:
            f.write(json.dumps(record, ensure_ascii=False) + "\n")
            count += 1
    finally:
        if f is not sys.stdout:
            f.close()
    return count


def _parquet_writer():
    try:
        import pyarrow  # noqa: F401
    except ImportError:
        from agentgym.install import install_command

        raise AgentGymError(f"Parquet export needs pyarrow: {install_command('parquet')} "
                            "(or export --format jsonl)") from None
    return _write_parquet


def parquet_schema(tokens: bool = True):
    import pyarrow as pa

    step = [("index", pa.int64()), ("observation", pa.string()), ("response_text", pa.string()),
            ("action", pa.string()), ("action_valid", pa.bool_()), ("reward", pa.float64()),
            ("anchor", pa.string()), ("advantage", pa.float64()), ("entropy_mean", pa.float64()),
            ("error", pa.string()), ("advantage_parts", pa.string()), ("timings", pa.string()),
            ("info", pa.string())]
    if tokens:
        step += [("prompt_ids", pa.list_(pa.int32())), ("response_ids", pa.list_(pa.int32())),
                 ("logprobs", pa.list_(pa.float32())), ("entropies", pa.list_(pa.float32()))]
    return pa.schema([
        ("run_id", pa.string()), ("iteration", pa.int64()), ("split", pa.string()),
        ("group_id", pa.string()), ("episode_id", pa.string()), ("env_id", pa.string()),
        ("task_id", pa.string()), ("task_type", pa.string()), ("seed", pa.int64()),
        ("won", pa.bool_()), ("total_reward", pa.float64()), ("length", pa.int64()),
        ("termination", pa.string()), ("error", pa.string()),
        ("final_observation", pa.string()), ("info", pa.string()),
        ("tree_id", pa.string()), ("parent_id", pa.string()), ("branch_step", pa.int64()),
        ("steps", pa.list_(pa.struct(step)))])


def _flatten(record: dict) -> dict:
    """Dict-valued fields as JSON strings (see the module docstring)."""
    out = dict(record, info=json.dumps(record["info"], ensure_ascii=False))
    out["steps"] = [{**s, **{k: json.dumps(s[k], ensure_ascii=False) for k in _JSON_FIELDS}}
                    for s in record["steps"]]
    return out


def _write_parquet(records: Iterator[dict], target: str, tokens: bool) -> int:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = parquet_schema(tokens)
    count, batch = 0, []
    with pq.ParquetWriter(target, schema) as writer:
        for record in records:
            batch.append(_flatten(record))
            if len(batch) == PAGE:
                writer.write_table(pa.Table.from_pylist(batch, schema=schema))
                count, batch = count + len(batch), []
        if batch or count == 0:
            writer.write_table(pa.Table.from_pylist(batch, schema=schema))
            count += len(batch)
    return count
