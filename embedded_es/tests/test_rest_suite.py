"""Elasticsearch's own YAML REST tests (issue #18), run through the official client by
`embedded_es/tests/es_rest_runner.py`: on the embedded engine always, on noida-db when it starts, and on a
real cluster when ELASTICSEARCH_URL is set. Per-file figures (pass / refused / wrong / crash /
skipped) are printed with the test run.

The engine must not crash, must answer nothing wrong except the differences listed below
(and in docs/engine.md, with Elasticsearch's reason), must pass at least 90% of the tests it does
not refuse, and may refuse only what the table of refused features (docs/engine.md) names. On a real
cluster every test that runs must pass: that is how we know a test's expectation is real."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch

from embedded_es.surface import AREA_NAMES, area_of
from embedded_es.surface import table as surface_table
from embedded_es.tests.es_rest_runner import REFUSAL, RestResult, embedded_engines, rest_tests_folder, run, table
from tests.test_contract import peer_url  # noqa: F401 (the fixture that starts noida-db)

FOLDER = rest_tests_folder()
PROJECT = Path(__file__).resolve().parents[2]
# Answers that differ from Elasticsearch, each with the reason (test id -> reason); docs/engine.md
# lists them too.
KNOWN_DIFFERENCES: dict[str, str] = {}
PASS_SHARE = 0.9

MISSING = (
    "Elasticsearch's REST tests are absent: put a folder with api/ and test/ at ../shared/es-rest-tests or set "
    "ES_REST_TESTS to one (a sparse checkout of elastic/elasticsearch at a release tag; docs/engine.md's "
    "'Elasticsearch's YAML REST tests' gives the commands)"
)


@pytest.fixture(scope="module", autouse=True)
def rest_tests_present() -> None:
    """Outside CI a clone without the files skips, in one line that says how to get them; under
    CI (CI=true) the files are part of the run, and their absence fails it."""
    if FOLDER is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"under CI the REST suite never skips. {MISSING}", pytrace=False)
        pytest.skip(MISSING)


def report(request: pytest.FixtureRequest, backend: str, results: list[RestResult]) -> None:
    """Per-file figures in the test run's output (and the lines of tests that did not pass)."""
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    lines = [f"Elasticsearch REST tests on {backend}:", *table(results).splitlines()]
    if reporter is None or capture is None:
        print("\n".join(lines))
        return
    with capture.global_and_fixture_disabled():  # shown even when the test passes
        reporter.ensure_newline()
        for line in lines:
            reporter.write_line(line)


@pytest.fixture(scope="module")
def engine_results(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> list[RestResult]:
    results = run(embedded_engines(tmp_path_factory.mktemp("rest-engine")), FOLDER, True)
    report(request, "the embedded engine", results)
    return results


def not_passed(results: list[RestResult], outcome: str) -> list[str]:
    return [f"{r.id}: {r.reason}" for r in results if r.outcome == outcome]


def test_the_engine_never_crashes(engine_results: list[RestResult]) -> None:
    assert not_passed(engine_results, "crash") == []


def test_the_engine_answers_nothing_wrong_but_listed_differences(engine_results: list[RestResult]) -> None:
    wrong = [f"{r.id}: {r.reason}" for r in engine_results if r.outcome == "wrong" and r.id not in KNOWN_DIFFERENCES]
    assert wrong == []
    still = {r.id for r in engine_results if r.outcome == "wrong"}
    assert sorted(set(KNOWN_DIFFERENCES) - still) == [], "a listed difference answers right now: unlist it"


def test_the_engine_passes_what_it_does_not_refuse(engine_results: list[RestResult]) -> None:
    answered = [r for r in engine_results if r.outcome not in ("refused", "skipped")]
    passed = sum(r.outcome == "pass" for r in answered)
    assert answered and passed >= PASS_SHARE * len(answered), f"{passed} of {len(answered)} pass"


def test_refusals_name_only_features_of_the_readme_table(engine_results: list[RestResult]) -> None:
    refusals = [r for r in engine_results if r.outcome == "refused"]
    assert refusals, "the shared files include features the engine refuses; none came back refused"
    unnamed = [f"{r.id}: {r.reason}" for r in refusals if area_of(r.reason[r.reason.find(REFUSAL) :]) is None]
    assert unnamed == []


def test_every_refusal_in_the_engine_names_a_row_of_the_table() -> None:
    """Each `unsupported(area, ...)` call in the engine's code names an area of the table."""
    areas = set()
    for path in (PROJECT / "embedded_es").glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "unsupported":
                first = node.args[0]
                assert isinstance(first, ast.Constant), f"{path.name}:{node.lineno}: name the area literally"
                areas.add(first.value)
    assert areas and areas <= AREA_NAMES, sorted(areas - AREA_NAMES)


def test_the_documented_table_is_the_engines_own() -> None:
    page = (PROJECT / "docs" / "engine.md").read_text()
    assert surface_table() in page, "docs/engine.md's table is stale: paste `python -m embedded_es.surface` into it"


def test_the_engine_page_lists_every_known_difference() -> None:
    page = (PROJECT / "docs" / "engine.md").read_text()
    assert all(test_id in page and reason in page for test_id, reason in KNOWN_DIFFERENCES.items())


def test_on_noida_db(request: pytest.FixtureRequest, peer_url: str) -> None:  # noqa: F811
    """The second implementation: figures reported, for comparison (its differences are its own)."""
    server = Elasticsearch(peer_url, request_timeout=60)
    results = run(lambda: server, FOLDER, False)
    report(request, "noida-db", results)
    assert not_passed(results, "crash") == []


@pytest.mark.skipif(not os.environ.get("ELASTICSEARCH_URL"), reason="cluster leg: set ELASTICSEARCH_URL to run it")
def test_on_a_cluster_every_test_passes(request: pytest.FixtureRequest) -> None:
    from helpers._settings import load_settings
    from helpers.connect import connect

    es = connect(load_settings(), quiet=True)
    results = run(lambda: es, FOLDER, False)
    report(request, "the cluster at ELASTICSEARCH_URL", results)
    failed = [f"{r.id} ({r.outcome}): {r.reason}" for r in results if r.outcome not in ("pass", "skipped")]
    assert failed == []


def test_nothing_is_both_supported_and_refused() -> None:
    from embedded_es.surface import AREAS

    for area in AREAS:
        assert not set(area.supported) & set(area.refused), area.name
