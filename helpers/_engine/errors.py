"""Errors shaped like Elasticsearch's, so the official client raises the same classes."""

from __future__ import annotations

REAL_CLUSTER_HINT = "run against a real Elasticsearch cluster (set ELASTICSEARCH_URL) for this"


class EsError(Exception):
    def __init__(self, status: int, error_type: str, reason: str, **extra: object) -> None:
        super().__init__(reason)
        self.status, self.error_type, self.reason, self.extra = status, error_type, reason, extra

    def body(self) -> dict:
        cause = {"type": self.error_type, "reason": self.reason, **self.extra}
        return {"error": {"root_cause": [cause], **cause}, "status": self.status}


def unsupported(feature: str) -> EsError:
    return EsError(
        400, "illegal_argument_exception", f"the embedded engine does not support {feature}; {REAL_CLUSTER_HINT}"
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


def parsing_error(reason: str) -> EsError:
    return EsError(400, "document_parsing_exception", reason)
