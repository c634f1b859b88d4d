"""Optimistic concurrency control as Elasticsearch answers it: `if_seq_no` and `if_primary_term`
on index, delete and update requests and bulk actions. A write whose expectation does not match
the stored document fails with 409 `version_conflict_engine_exception` and changes nothing."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from embedded_es.errors import EsError, bad_request, validation_failed

LONG = re.compile(r"^[+-]?\d+$")
UNASSIGNED_SEQ_NO = -2  # Elasticsearch's "no expectation", which a client may also send


@dataclass(frozen=True)
class Expected:
    seq_no: int
    primary_term: int


def as_long(value: Any, name: str) -> int:
    """A query-string value (text) or a bulk metadata value (a number) read as a long."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and LONG.match(value):
        return int(value)
    raise bad_request(f"Failed to parse long parameter [{name}] with value [{value}]")


def expectation(values: dict, action: str, update: Any = None) -> Expected | None:
    """The expectation a request states (None when it states none), validated as Elasticsearch
    validates it; `update` is an update's body, whose upserts cannot be compared."""
    seq_no = as_long(values["if_seq_no"], "if_seq_no") if values.get("if_seq_no") is not None else None
    term = as_long(values["if_primary_term"], "if_primary_term") if values.get("if_primary_term") is not None else 0
    if seq_no == UNASSIGNED_SEQ_NO:
        seq_no = None
    if seq_no is not None and seq_no < 0:
        raise bad_request(f"sequence numbers must be non negative. got [{seq_no}].")
    if term < 0:
        raise bad_request(f"primary term must be non negative. got [{term}]")
    if seq_no is None and term == 0:
        return None
    problems = []
    if action == "create":  # said alone, as Elasticsearch stops checking there
        problems.append("create operations do not support compare and set. use index instead")
    elif seq_no is not None and term == 0:
        problems.append("ifSeqNo is set, but primary term is [0]")
    elif seq_no is None:
        problems.append(f"ifSeqNo is unassigned, but primary term is [{term}]")
    if action == "update" and seq_no is not None and isinstance(update, dict):
        if as_long(values.get("retry_on_conflict", 0), "retry_on_conflict") > 0:
            problems.append("compare and write operations can not be retried")
        if update.get("doc_as_upsert") is True:
            problems.append("compare and write operations can not be used with upsert")
        if "upsert" in update:
            problems.append("upsert requests don't support `if_seq_no` and `if_primary_term`")
    if problems:
        raise validation_failed(*problems)
    assert seq_no is not None
    return Expected(seq_no, term)


def check(expected: Expected | None, doc_id: str, current: tuple[int, int] | None, index: str, uuid: str) -> None:
    """Raise Elasticsearch's conflict when the current (seq_no, primary_term), None for a missing
    document, is not what the request expects."""
    if expected is None or current == (expected.seq_no, expected.primary_term):
        return
    seq_no, term = expected.seq_no, expected.primary_term
    required = f"[{doc_id}]: version conflict, required seqNo [{seq_no}], primary term [{term}]."
    found = (
        " but no document was found"
        if current is None
        else (f" current document has seqNo [{current[0]}] and primary term [{current[1]}]")
    )
    raise EsError(409, "version_conflict_engine_exception", required + found, index_uuid=uuid, shard="0", index=index)
