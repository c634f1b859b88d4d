"""A runner for Elasticsearch's own YAML REST tests, through the official client.

It reads test files in Elasticsearch's format (`rest-api-spec/src/yamlRestTest/resources/
rest-api-spec/test/README.asciidoc` of elastic/elasticsearch) and the API specs they call
(`rest-api-spec/src/main/resources/rest-api-spec/api/*.json`), builds each request from the
spec, sends it with the client's `perform_request`, and reports each test as:

- pass: every step did what the file says;
- refused: a request came back as a clean 4xx that names what the embedded engine does not
  support ("the embedded engine does not support ...");
- wrong: an answer or an error differs from what the file says;
- crash: a 5xx, or an exception that is not an Elasticsearch answer;
- skipped: the file's own `skip` / `requires` rules leave it out for this server or runner.

Run it from the command line for per-file figures:
`python -m embedded_es.tests.es_rest_runner [--url URL] [-v] [FILE_OR_FOLDER ...]`
(default: a fresh embedded engine per test, every file of `ES_REST_TESTS` or the shared copy).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import re
import sys
import tempfile
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import yaml
from elasticsearch import ApiError, Elasticsearch, ElasticsearchWarning

DEFAULT_FOLDER = Path(__file__).resolve().parents[3] / "shared" / "es-rest-tests"
REFUSAL = "the embedded engine does not support"
OUTCOMES = ("pass", "refused", "wrong", "crash", "skipped")
RUNNER_FEATURES = {
    "close_to",
    "headers",
    "allowed_warnings",
    "warnings",
    "contains",
    "capabilities",
    "default_shards",
    "stash_in_path",
    "stash_in_key",
    "node_selector",
    "arbitrary_key",
}
CATCH_STATUS = {
    "bad_request": {400},
    "unauthorized": {401},
    "forbidden": {403},
    "missing": {404},
    "request_timeout": {408},
    "conflict": {409},
    "unavailable": {503},
}


def rest_tests_folder() -> Path | None:
    """The folder holding `api/` and `test/`: ES_REST_TESTS, else the shared copy beside the repo."""
    folder = Path(os.environ.get("ES_REST_TESTS") or DEFAULT_FOLDER)
    return folder.resolve() if (folder / "api").is_dir() and (folder / "test").is_dir() else None


# --- API specs ------------------------------------------------------------------------------


@dataclass
class Api:
    name: str
    paths: list[tuple[str, list[str], set[str]]]  # (path, methods, parts)
    ndjson: bool


def load_specs(folder: Path) -> dict[str, Api]:
    """Both layouts: `url.paths` as strings with `methods` beside them (older), or as objects
    with `path`, `methods` and `parts` (newer)."""
    specs = {}
    for file in sorted((folder / "api").glob("*.json")):
        ((name, spec),) = ((k, v) for k, v in json.loads(file.read_text()).items() if not k.startswith("_"))
        paths = []
        for entry in spec["url"]["paths"]:
            if isinstance(entry, str):
                path, methods = entry, spec.get("methods", ["GET"])
            else:
                path, methods = entry["path"], entry["methods"]
            paths.append((path, methods, set(re.findall(r"\{(\w+)\}", path))))
        content_types = spec.get("headers", {}).get("content_type", [])
        ndjson = any("ndjson" in c for c in content_types) or (spec.get("body") or {}).get("serialize") == "bulk"
        specs[name] = Api(name, paths, ndjson)
    return specs


# --- Results ------------------------------------------------------------------------------


class Outcome(Exception):
    """Ends a test early with its outcome and a one-line reason."""

    def __init__(self, outcome: str, reason: str) -> None:
        super().__init__(reason)
        self.outcome, self.reason = outcome, reason


@dataclass
class RestResult:
    file: str
    name: str
    outcome: str
    reason: str = ""

    @property
    def id(self) -> str:
        return f"{self.file}::{self.name}"


@dataclass
class FileFigures:
    file: str
    counts: Counter = field(default_factory=Counter)

    def row(self) -> str:
        return f"{self.file:55} " + " ".join(f"{self.counts[o]:>8}" for o in OUTCOMES)


# --- Paths into responses, stash ------------------------------------------------------------


def split_path(path: str) -> list[str]:
    """`a.b\\.c.0` -> ["a", "b.c", "0"]: dots separate keys, `\\.` is a dot inside a key."""
    return [part.replace("\0", ".") for part in path.replace("\\.", "\0").split(".")] if path else []


class Stash:
    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    def resolve(self, value: Any) -> Any:
        """`$name` and `${name}` replaced throughout a value (keys too)."""
        if isinstance(value, str):
            if value.startswith("$") and value[1:] in self.values:
                return self.values[value[1:]]
            return re.sub(r"\$\{(\w+)\}", lambda m: str(self.values.get(m.group(1), m.group(0))), value)
        if isinstance(value, dict):
            return {self.resolve(k): self.resolve(v) for k, v in value.items()}
        if isinstance(value, list):
            return [self.resolve(v) for v in value]
        return value


MISSING = object()


def lookup(body: Any, path: str, stash: Stash) -> Any:
    if path in ("$body", ""):
        return body
    value = body
    for part in split_path(path):
        if part == "":  # a leading dot names the root, as in the Java runner
            continue
        part = str(stash.resolve(part))
        if part == "_arbitrary_key_" and isinstance(value, dict) and value:
            value = next(iter(value))  # the key itself, as the Java runner gives it
            continue
        if isinstance(value, dict) and part in value:
            value = value[part]
        elif isinstance(value, list) and part.lstrip("-").isdigit() and -len(value) <= int(part) < len(value):
            value = value[int(part)]
        else:
            return MISSING
    return value


# --- Comparisons ----------------------------------------------------------------------------


def same(expected: Any, actual: Any) -> bool:
    """Deep equality; numbers equal as numbers, and decimals at float precision (Elasticsearch's
    scores are Java floats, written in their shortest form)."""
    if isinstance(expected, bool) or isinstance(actual, bool):
        return expected is actual or (expected == actual and type(expected) is type(actual))
    if isinstance(expected, (int, float)) and isinstance(actual, (int, float)):
        if expected == actual:
            return True
        if isinstance(expected, float) or isinstance(actual, float):
            return math.isclose(expected, actual, rel_tol=2**-23, abs_tol=1e-30)
        return False
    if isinstance(expected, dict) and isinstance(actual, dict):
        return expected.keys() == actual.keys() and all(same(v, actual[k]) for k, v in expected.items())
    if isinstance(expected, list) and isinstance(actual, list):
        return len(expected) == len(actual) and all(same(e, a) for e, a in zip(expected, actual))
    if isinstance(expected, str) and isinstance(actual, (int, float)) and not isinstance(actual, bool):
        return expected == str(actual)
    return expected == actual


def is_regex(value: Any) -> bool:
    return isinstance(value, str) and len(value.strip()) > 1 and value.strip()[0] == value.strip()[-1] == "/"


def truthy(value: Any) -> bool:
    return value is not MISSING and value not in (None, False, "", "false", 0)


def short(value: Any, limit: int = 160) -> str:
    text = json.dumps(value, default=str) if value is not MISSING else "<missing>"
    return text if len(text) <= limit else text[:limit] + "..."


# --- Requests -------------------------------------------------------------------------------


def query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(query_value(v) for v in value)
    return str(value)


def build_request(api: Api, args: dict) -> tuple[str, str, dict, Any, dict]:
    """(method, path, query params, body, headers) for one `do`, the path chosen as the Java
    runner does: the one using the most of the given parts."""
    args = dict(args)
    body = args.pop("body", None)
    given = {k for k, v in args.items() if v is not None}
    candidates = [(path, methods, parts) for path, methods, parts in api.paths if parts <= given]
    if not candidates:
        raise Outcome("wrong", f"no path of [{api.name}] fits the parameters {sorted(given)}")
    path, methods, parts = max(candidates, key=lambda c: len(c[2]))
    for part in parts:
        path = path.replace("{" + part + "}", quote(query_value(args.pop(part)), safe=",*"))
    method = methods[0]
    if body is not None and "POST" in methods and method == "GET":
        method = "POST"
    params = {k: query_value(v) for k, v in args.items() if v is not None}
    headers = {"accept": "application/json"}
    if body is not None:
        if api.ndjson:
            lines = body if isinstance(body, list) else [body]
            text = "".join((line if isinstance(line, str) else json.dumps(line)).rstrip("\n") + "\n" for line in lines)
            body, headers["content-type"] = text.encode(), "application/x-ndjson"
        else:
            body = body.encode() if isinstance(body, str) else json.dumps(body).encode()
            headers["content-type"] = "application/json"
    return method, path, params, body, headers


# --- The runner -----------------------------------------------------------------------------


def version_tuple(text: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", text)[:3]) or (0,)


class Runner:
    """`connect` gives the client for each test: a fresh embedded engine, or the same server
    (then wiped before each test)."""

    def __init__(self, connect: Callable[[], Elasticsearch], specs: dict[str, Api], embedded: bool) -> None:
        self.connect, self.specs, self.embedded = connect, specs, embedded
        self.es = connect()
        self.version = version_tuple(self.es.info()["version"]["number"])
        self.server_features: set[str] | None = None

    # skip / requires

    def skip_reason(self, section: dict) -> str | None:
        """Why a `skip` or `requires` section leaves a test out, or None. Named cluster
        features and capabilities are those of the newest Elasticsearch (see the shared
        folder's README): they count as present; `gte_vX` features compare versions."""
        if "skip" in section:
            rules = section["skip"]
            for interval in str(rules.get("version", "")).split(","):
                if "-" in interval and self.in_range(interval):
                    return f"skip: version {interval.strip()}"
            if str(rules.get("version", "")).strip() == "all":
                return "skip: all versions"
            if rules.get("awaits_fix"):
                return f"skip: awaits fix ({rules['awaits_fix']})"
            for feature in self.as_list(rules.get("cluster_features")):
                if self.has_feature(feature):
                    return f"skip: cluster feature {feature}"
            unknown = [f for f in self.as_list(rules.get("features")) if f not in RUNNER_FEATURES]
            if unknown:
                return f"skip: runner features {unknown}"
        if "requires" in section:
            rules = section["requires"]
            missing = [f for f in self.as_list(rules.get("cluster_features")) if not self.has_feature(f)]
            if missing:
                return f"requires cluster features {missing}"
            unknown = [f for f in self.as_list(rules.get("test_runner_features")) if f not in RUNNER_FEATURES]
            if unknown:
                return f"requires runner features {unknown}"
            if rules.get("capabilities") and not self.has_capabilities(self.as_list(rules["capabilities"])):
                return "requires capabilities the server does not have"
        return None

    @staticmethod
    def as_list(value: Any) -> list:
        return [] if value is None else value if isinstance(value, list) else [value]

    def has_feature(self, feature: str) -> bool:
        """`gte_vX.Y.Z` compares versions. A named feature counts as present on the engine
        (it is measured against the newest Elasticsearch); a server must list it in its
        cluster state's `nodes_features`, else the test is left out there."""
        if re.fullmatch(r"gte_v(\d+)\.(\d+)\.(\d+)", feature):
            return version_tuple(feature) <= self.version
        if self.embedded:
            return True
        if self.server_features is None:
            try:
                state = self.es.perform_request("GET", "/_cluster/state", headers={"accept": "application/json"})
                nodes = state.body.get("nodes_features", [])
                self.server_features = set().union(*(set(n.get("features", [])) for n in nodes)) if nodes else set()
            except Exception:  # a server without the API has none we can confirm
                self.server_features = set()
        return feature in self.server_features

    def has_capabilities(self, wanted: list) -> bool:
        """`requires: capabilities` asked of a server's `_capabilities` API (present on the engine)."""
        if self.embedded:
            return True
        for entry in wanted:
            params = {"method": entry.get("method", "GET"), "path": entry.get("path", "/")}
            params["capabilities"] = ",".join(entry.get("capabilities", []))
            if entry.get("parameters"):
                params["parameters"] = ",".join(entry["parameters"])
            try:
                answer = self.es.perform_request(
                    "GET", "/_capabilities", params=params, headers={"accept": "application/json"}
                )
            except Exception:
                return False
            if answer.body.get("supported") is not True:
                return False
        return True

    def in_range(self, interval: str) -> bool:
        low, _, high = (p.strip() for p in interval.partition("-"))
        above = not low or version_tuple(low) <= self.version
        below = not high or self.version <= version_tuple(high)
        return above and below

    # steps

    def run_steps(self, steps: list[dict], stash: Stash, state: dict) -> None:
        for step in steps:
            ((kind, spec),) = step.items()
            if kind in ("skip", "requires"):
                reason = self.skip_reason({kind: spec})
                if reason:
                    raise Outcome("skipped", reason)
            elif kind == "do":
                state["body"] = self.do(spec, stash)
            else:
                self.check(kind, spec, state.get("body"), stash)

    def do(self, spec: dict, stash: Stash) -> Any:
        spec = dict(spec)
        catch = spec.pop("catch", None)
        extra_headers = spec.pop("headers", {}) or {}
        expected_warnings = spec.pop("warnings", []) or []
        for key in ("allowed_warnings", "allowed_warnings_regex", "warnings_regex", "node_selector"):
            spec.pop(key, None)
        ((name, args),) = spec.items()
        api = self.specs.get(name)
        if api is None:
            raise Outcome("skipped", f"no API spec for [{name}] in the tests folder")
        try:
            method, path, params, body, headers = build_request(api, stash.resolve(args or {}))
        except Outcome:
            if catch == "param":
                return None
            raise
        headers.update({k.lower(): v for k, v in extra_headers.items()})
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ElasticsearchWarning)
            try:
                response = self.es.perform_request(method, path, params=params, body=body, headers=headers)
            except ApiError as error:
                return self.failed(error, catch, name)
            except Exception as error:  # not an answer: the server side raised
                raise Outcome("crash", f"{name}: {type(error).__name__}: {error}") from None
        seen = [str(w.message) for w in caught]
        for warning in expected_warnings:
            if not any(warning in message for message in seen):
                raise Outcome("wrong", f"{name}: expected the warning {warning!r}")
        if catch is not None:
            raise Outcome("wrong", f"{name}: expected an error [{catch}], got {response.meta.status}")
        if method == "HEAD":
            return response.meta.status == 200
        return response.body

    def failed(self, error: ApiError, catch: Any, name: str) -> Any:
        status, body = error.meta.status, error.body
        text = json.dumps(body, default=str)
        refused = REFUSAL in text and 400 <= status < 500
        if status >= 500:
            raise Outcome("crash", f"{name}: {status} {short(body)}")
        if catch is None or refused:  # a refusal is never the error a test expects
            raise Outcome("refused" if refused else "wrong", f"{name}: {status} {reason_of(body)}")
        if is_regex(catch):
            if re.search(catch.strip()[1:-1], text):
                return body
        elif (catch in CATCH_STATUS and status in CATCH_STATUS[catch]) or (catch == "request" and status >= 400):
            return body
        raise Outcome("wrong", f"{name}: expected [{catch}], got {status} {reason_of(body)}")

    def check(self, kind: str, spec: dict, body: Any, stash: Stash) -> None:
        if kind == "set":
            for path, name in spec.items():
                stash.values[name] = lookup(body, path, stash)
            return
        if kind == "transform_and_set":
            raise Outcome("skipped", "transform_and_set is not implemented by this runner")
        if kind in ("is_true", "is_false"):
            value = lookup(body, str(spec), stash)
            if truthy(value) != (kind == "is_true"):
                raise Outcome("wrong", f"{kind} {spec}: {short(value)}")
            return
        for path, expected in spec.items():
            expected = stash.resolve(expected)
            actual = lookup(body, str(stash.resolve(path)), stash)
            if not self.holds(kind, expected, actual):
                raise Outcome("wrong", f"{kind} {path}: expected {short(expected)}, got {short(actual)}")

    @staticmethod
    def holds(kind: str, expected: Any, actual: Any) -> bool:
        if kind == "match":
            if is_regex(expected):
                return actual is not MISSING and re.search(expected.strip()[1:-1], str(actual), re.X) is not None
            if expected is None:  # a missing path reads as null, as in the Java runner
                return actual is MISSING or actual is None
            return actual is not MISSING and same(expected, actual)
        if kind == "length":
            return isinstance(actual, (list, dict, str)) and len(actual) == expected
        if kind in ("gt", "gte", "lt", "lte"):
            if not isinstance(actual, (int, float)):
                return False
            return {
                "gt": actual > expected,
                "gte": actual >= expected,
                "lt": actual < expected,
                "lte": actual <= expected,
            }[kind]
        if kind == "close_to":
            return isinstance(actual, (int, float)) and abs(actual - expected["value"]) <= expected["error"]
        if kind == "contains":
            if isinstance(actual, list):
                return any(same(expected, item) or subset(expected, item) for item in actual)
            return isinstance(actual, str) and str(expected) in actual
        raise Outcome("skipped", f"the [{kind}] assertion is not implemented by this runner")

    # files

    def wipe(self) -> None:
        """A fresh engine, or every index of the server deleted one name at a time (wildcard
        deletes are refused by default)."""
        if self.embedded:
            self.es = self.connect()
            return
        names = list(self.es.indices.get(index="*", expand_wildcards="open,closed"))
        for name in names:
            if not name.startswith("."):
                self.es.indices.delete(index=name, ignore_unavailable=True)

    def run_file(self, file: Path, root: Path) -> list[RestResult]:
        label = str(file.relative_to(root / "test")) if file.is_relative_to(root / "test") else file.name
        documents = [d for d in yaml.safe_load_all(file.read_text()) if d]
        setup: list = []
        teardown: list = []
        tests = []
        for document in documents:
            for name, steps in document.items():
                if name == "setup":
                    setup = steps
                elif name == "teardown":
                    teardown = steps
                else:
                    tests.append((name, steps))
        return [self.run_test(label, name, setup, steps, teardown) for name, steps in tests]

    def run_test(self, label: str, name: str, setup: list, steps: list, teardown: list) -> RestResult:
        stash, state = Stash(), {}
        try:
            self.wipe()
            self.run_steps(setup, stash, state)
            self.run_steps(steps, stash, state)
            result = RestResult(label, name, "pass")
        except Outcome as outcome:
            result = RestResult(label, name, outcome.outcome, outcome.reason)
        except Exception as error:  # an engine exception outside a `do`, e.g. during the wipe
            result = RestResult(label, name, "crash", f"{type(error).__name__}: {error}")
        with contextlib.suppress(Exception):  # teardown only tidies; it changes nothing about the test
            self.run_steps(teardown, stash, {})
        return result


def subset(expected: Any, actual: Any) -> bool:
    if isinstance(expected, dict) and isinstance(actual, dict):
        return all(k in actual and (same(v, actual[k]) or subset(v, actual[k])) for k, v in expected.items())
    return False


def reason_of(body: Any) -> str:
    """The deepest reason in an error body: root cause, then the chain of causes."""
    if not isinstance(body, dict):
        return short(body)
    error = body.get("error", body)
    if not isinstance(error, dict):
        return str(error)[:200]
    while isinstance(error.get("caused_by"), dict):
        error = error["caused_by"]
    causes = error.get("root_cause") or []
    chosen = causes[0] if causes and isinstance(causes[0], dict) else error
    return f"{chosen.get('type')}: {chosen.get('reason')}"[:300]


def rest_files(root: Path, selection: list[str] | None = None) -> Iterator[Path]:
    chosen = [Path(s) for s in selection] if selection else [root / "test"]
    for entry in chosen:
        entry = entry.resolve() if entry.exists() else root / "test" / entry
        yield from sorted(entry.rglob("*.yml")) if entry.is_dir() else [entry]


def run(
    connect: Callable[[], Elasticsearch], root: Path, embedded: bool, selection: list[str] | None = None
) -> list[RestResult]:
    runner = Runner(connect, load_specs(root), embedded)
    results: list[RestResult] = []
    for file in rest_files(root, selection):
        results += runner.run_file(file, root)
    return results


def figures(results: list[RestResult]) -> list[FileFigures]:
    by_file: dict[str, FileFigures] = {}
    for result in results:
        by_file.setdefault(result.file, FileFigures(result.file)).counts[result.outcome] += 1
    return list(by_file.values())


def table(results: list[RestResult]) -> str:
    rows = [f"{'file':55} " + " ".join(f"{o:>8}" for o in OUTCOMES)]
    rows += [f.row() for f in figures(results)]
    total = FileFigures("total", Counter(r.outcome for r in results))
    return "\n".join([*rows, total.row()])


def embedded_engines(folder: Path) -> Callable[[], Elasticsearch]:
    """A new embedded engine in its own data folder on each call."""
    from embedded_es import embedded_client

    count = iter(range(10**9))
    return lambda: embedded_client(folder / f"engine-{next(count)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="*", help="test files or folders (default: all)")
    parser.add_argument("--url", help="an Elasticsearch-API server (default: the embedded engine)")
    parser.add_argument("--verbose", "-v", action="store_true", help="one line per test that did not pass")
    args = parser.parse_args(argv)
    root = rest_tests_folder()
    if root is None:
        print("no REST tests: set ES_REST_TESTS to a folder with api/ and test/ (see docs/engine.md)", file=sys.stderr)
        return 2
    if args.url:
        server = Elasticsearch(args.url, request_timeout=60)
        results = run(lambda: server, root, False, args.paths or None)
    else:
        with tempfile.TemporaryDirectory(prefix="rest-engine-") as folder:
            results = run(embedded_engines(Path(folder)), root, True, args.paths or None)
    if args.verbose:
        for result in results:
            if result.outcome != "pass":
                print(f"{result.outcome:8} {result.id}: {result.reason}")
    print(table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
