"""Errors shaped like Elasticsearch's, so the official client raises the same classes."""

from __future__ import annotations

REAL_CLUSTER_HINT = "run against a real Elasticsearch cluster (set ELASTICSEARCH_URL) for this"


class EsError(Exception):
    def __init__(self, status: int, error_type: str, reason: str, **extra: object) -> None:
        super().__init__(reason)
        self.status, self.error_type, self.reason, self.extra = status, error_type, reason, extra
        self.root: dict | None = None  # the root cause, when this error wraps another

    def cause(self) -> dict:
        return {"type": self.error_type, "reason": self.reason, **self.extra}

    def body(self) -> dict:
        cause = self.cause()
        return {"error": {"root_cause": [self.root or cause], **cause}, "status": self.status}


def refused(error: EsError) -> bool:
    return error.reason.startswith(REFUSAL)


def shard_failure(error: EsError, index: str) -> EsError:
    """An error raised while one index runs a search, as a cluster reports it: the search
    phase failed on all shards, caused by (and rooted in) the shard's own error."""
    inner = error.cause()
    wrapped = EsError(
        error.status,
        "search_phase_execution_exception",
        "all shards failed",
        phase="query",
        grouped=True,
        failed_shards=[{"shard": 0, "index": index, "node": "embedded", "reason": inner}],
        caused_by=inner,
    )
    wrapped.root = {**inner, "index": index} if "index" not in inner else inner
    return wrapped


REFUSAL = "the embedded engine does not support"


def unsupported(area: str, item: str = "", detail: str = "") -> EsError:
    """A refusal by name: `area` is one row of the table of refused features in docs/engine.md (see
    `surface.py`), `item` what was asked for, `detail` where."""
    named = f"{area} [{item}]" if item else area
    return EsError(
        400, "illegal_argument_exception", f"{REFUSAL} {named}{f' ({detail})' if detail else ''}; {REAL_CLUSTER_HINT}"
    )


def bad_request(reason: str) -> EsError:
    return EsError(400, "illegal_argument_exception", reason)


def index_not_found(index: str) -> EsError:
    return EsError(
        404,
        "index_not_found_exception",
        f"no such index [{index}]",
        index=index,
        **{"resource.type": "index_or_alias", "resource.id": index},
    )


def invalid_index_name(index: str) -> EsError:
    return EsError(
        400,
        "invalid_index_name_exception",
        f'Invalid index name [{index}], must be lowercase and must not contain spaces or \\/*?"<>|,#:',
        index=index,
    )


def validation_failed(*problems: str) -> EsError:
    """Elasticsearch's request validation error: the problems numbered, each ending in `;`."""
    listed = "".join(f"{i}: {problem};" for i, problem in enumerate(problems, 1))
    return EsError(400, "action_request_validation_exception", f"Validation Failed: {listed}")


def parsing_error(reason: str) -> EsError:
    return EsError(400, "document_parsing_exception", reason)
