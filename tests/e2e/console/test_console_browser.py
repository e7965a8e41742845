"""The web console in a real browser (Debian's Chromium driven by Playwright), against a real
node started here: for each role, its main task clicked through.

One node for the module: the demo's node (`scripts.demo`: anvil, contracts deployed, the API
under uvicorn, relayer and indexer) with a month of lending settled in one cycle that the
bank funded, plus one application waiting for manual review. Then:

- the bank (a funding partner) opens the cycle and sees every entry verified against the
  chain by the browser itself (viem reads the ClearingHouse, @openzeppelin/merkle-tree checks
  each proof); a tampered entry served by a test double of the API shows as NOT verified;
  with the API stopped (anvil kept), the downloaded entries verify again;
- operations see a what-if quote within the cost cap, approve the application from the
  review queue and see the decision, and publish a product's next version;
- the auditor runs an audit from the console and sees it pass.

Each view is checked with axe-core (no serious or critical violation) and its screenshot saved
under `reports/console/` (`CONSOLE_SCREENSHOTS` overrides). Under `CI=true` a missing Chromium
or console build fails the tests; elsewhere they are skipped with a message saying why.
Playwright never downloads a browser: it launches /usr/bin/chromium.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from node_api.http.console import CONSOLE_BUILD_DIR
from scripts.demo.day import BANK_REF, PRODUCT_CODE
from scripts.demo.node import DemoNode, start_demo_node
from scripts.demo.run import register_partners, run_lending, run_settlement
from settlement.netting import ClosedCycle
from tests.integration.onboarding.onboarding_helpers import BORDERLINE_PROFILE, new_applicant

pytestmark = [pytest.mark.chain, pytest.mark.xdist_group("node_up")]

REPO = Path(__file__).resolve().parents[3]
CHROMIUM = Path("/usr/bin/chromium")
AXE = REPO / "console" / "node_modules" / "axe-core" / "axe.min.js"
SCREENSHOTS = Path(os.environ.get("CONSOLE_SCREENSHOTS", REPO / "reports" / "console"))
IN_CI = os.environ.get("CI", "").lower() == "true"
TIMEOUT_MS = 30_000
FINISHED = ("passed", "failed", "error")


def _require(found: bool, what: str) -> None:
    if found:
        return
    if IN_CI:
        pytest.fail(f"REQUIRED IN CI: {what}")
    pytest.skip(f"SKIPPED: {what}")


def _chromium() -> str:
    path = CHROMIUM if CHROMIUM.exists() else shutil.which("chromium")
    _require(
        path is not None,
        "the console's browser tests need Chromium at /usr/bin/chromium "
        "(`make browser` installs Debian's package when run as root)",
    )
    return str(path)


class _QuietBars:
    """The demo's progress bars, silent."""

    def bar(self, phase: str, total: int | None) -> Any:
        return lambda text: None


@dataclass
class ConsoleNode:
    node: DemoNode
    cycle: ClosedCycle
    bank_id: int
    bank_key: str
    review_application_id: str

    @property
    def url(self) -> str:
        return self.node.server.url


@pytest.fixture(scope="module")
def console_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ConsoleNode]:
    _chromium()
    _require(
        (CONSOLE_BUILD_DIR / "index.html").is_file() and AXE.is_file(),
        f"the console is not built at {CONSOLE_BUILD_DIR} (run `make setup`)",
    )
    started = time.monotonic()
    node = start_demo_node(tmp_path_factory.mktemp("console") / "node")
    try:
        bars: Any = _QuietBars()
        ids = register_partners(node)
        run_lending(node, bars, customers=3)
        cycle = run_settlement(node, bars, ids)
        bank_key = node.add_partner_key(BANK_REF, ids[BANK_REF])
        body = {
            "product_code": PRODUCT_CODE,
            **new_applicant(4242),
            "monthly_income_fen": 1_500_000,
            "device_id": "console-review-device",
            "ip": "203.0.113.77",
            "channel_id": "app",
            "characteristics": dict(BORDERLINE_PROFILE),
        }
        decided = node.client.post("/v1/applications", body, role="app")
        assert decided["decision"] == "review", decided
        print(f"console node ready in {time.monotonic() - started:.1f} s")
        yield ConsoleNode(node, cycle, ids[BANK_REF], bank_key, str(decided["application_id"]))
    finally:
        node.stop()


@pytest.fixture(scope="module")
def browser(console_node: ConsoleNode) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=_chromium(),
            args=["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
        )
        try:
            yield launched
        finally:
            launched.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    context.set_default_timeout(TIMEOUT_MS)
    opened = context.new_page()
    try:
        yield opened
    finally:
        context.close()


def sign_in(page: Any, base_url: str, key: str, role: str) -> None:
    page.goto(f"{base_url}/console/")
    page.fill("#api-key", key)
    page.click("button[type=submit]")
    page.wait_for_selector(f"[data-testid=role]:has-text('{role}')")


def assert_accessible(page: Any) -> None:
    """axe-core finds no serious or critical violation on the page as it is now."""
    page.add_script_tag(path=str(AXE))
    violations = page.evaluate(
        "async () => (await axe.run(document, {resultTypes: ['violations']})).violations"
        ".map(v => ({id: v.id, impact: v.impact, nodes: v.nodes.length}))"
    )
    serious = [v for v in violations if v["impact"] in ("serious", "critical")]
    assert serious == [], serious


def screenshot(page: Any, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def open_cycle(page: Any, console: ConsoleNode) -> Any:
    page.click(f"[data-testid=open-cycle-{console.cycle.cycle_id}]")
    summary = page.wait_for_selector("[data-testid=verification-summary]")
    return summary


def _entry_results(page: Any) -> list[str]:
    return [
        str(row.get_attribute("data-verified"))
        for row in page.query_selector_all("[data-testid=entry-row]")
    ]


def test_partner_opens_a_cycle_and_every_entry_verifies_against_the_chain(
    page: Any, console_node: ConsoleNode
) -> None:
    console = console_node
    sign_in(page, console.url, console.bank_key, "partner")
    summary = open_cycle(page, console)
    assert summary.get_attribute("data-ok") == "true", summary.inner_text()
    position_fen = console.cycle.net_positions_fen[console.cycle.partner_ids.index(console.bank_id)]
    assert position_fen < 0  # the bank owed its share of the month's disbursements
    assert page.inner_text("[data-testid=chain-position]") == str(position_fen)
    root = "0x" + (console.cycle.entries_root or b"").hex()
    assert page.inner_text("[data-testid=chain-root]") == root
    assert page.inner_text("[data-testid=chain-status]") in ("Finalized", "Funded")
    funded, claimed = page.inner_text("[data-testid=chain-funded-claimed]").split(" / ")
    assert int(funded) == int(claimed) == console.cycle.total_due_fen > 0  # funded, all claimed
    verified, total = page.inner_text("[data-testid=verified-count]").split(" ")[0:3:2]
    assert verified == total and int(total) > 0
    assert set(_entry_results(page)) == {"true"}

    with page.expect_download() as downloading:
        page.click("text=Download CSV")
    rows = Path(downloading.value.path()).read_text().splitlines()
    assert rows[0].startswith("cycle_id,entry_id,partner_id,kind") and len(rows) == int(total) + 1
    assert all(row.endswith(",true") for row in rows[1:])
    page.fill("#entry-search", "principal_repaid")
    shown = page.query_selector_all("[data-testid=entry-row]")
    assert 0 < len(shown) < int(total)
    assert all("PRINCIPAL_REPAID" in row.inner_text() for row in shown)
    page.fill("#entry-search", "")
    page.wait_for_selector("[data-testid=chart-cash-flows] canvas")
    page.wait_for_selector("[data-testid=chart-funded-principal] canvas")
    screenshot(page, "partner")
    assert_accessible(page)

    page.click("[data-testid=language]")
    page.wait_for_selector("text=在本浏览器中核验")
    assert page.evaluate("() => document.documentElement.lang") == "zh-CN"
    screenshot(page, "partner-zh")
    assert_accessible(page)


def test_a_tampered_entry_served_by_the_api_shows_as_not_verified(
    page: Any, console_node: ConsoleNode
) -> None:
    console = console_node

    def tamper(route: Any) -> None:
        response = route.fetch()
        lines = response.text().splitlines()
        entry = json.loads(lines[1])
        entry["amount_fen"] += 1
        lines[1] = json.dumps(entry)
        route.fulfill(response=response, body="\n".join(lines) + "\n")

    page.route("**/entries.ndjson", tamper)
    sign_in(page, console.url, console.bank_key, "partner")
    summary = open_cycle(page, console)
    assert summary.get_attribute("data-ok") == "false"
    results = _entry_results(page)
    assert results.count("false") == 1 and results.count("true") == len(results) - 1
    assert "NOT verified" in page.inner_text("[data-testid=entries]")
    screenshot(page, "partner-tampered")


def test_operations_approve_from_the_review_queue_and_publish_a_product_version(
    page: Any, console_node: ConsoleNode
) -> None:
    console = console_node
    application_id = console.review_application_id
    sign_in(page, console.url, console.node.client.keys["admin"], "lender_admin")
    page.wait_for_selector(f"[data-testid=review-row][data-application='{application_id}']")
    page.wait_for_selector("[data-testid=portfolio-total]")
    page.wait_for_selector("[data-testid=indexer-lag]")
    quote = page.wait_for_selector("[data-testid=whatif-quote]")
    assert quote.get_attribute("data-within") == "true", quote.inner_text()
    screenshot(page, "operations")
    assert_accessible(page)

    page.click(f"[data-testid=approve-{application_id}]")
    decided = page.wait_for_selector("[data-testid=review-decided]")
    assert application_id in decided.inner_text() and "approved" in decided.inner_text()
    # The queue is fetched again after the decision: the row leaves when that answer lands.
    page.wait_for_selector(f"[data-application='{application_id}']", state="detached")
    stored = console.node.client.get(f"/v1/applications/{application_id}")
    assert stored["status"] == "approved" and stored["review"]["reason_code"] == "INCOME_VERIFIED"
    assert stored["credit_line_id"] is not None

    page.click("[data-testid=publish-product]")  # the selected version's terms, next version
    page.wait_for_selector(f"text=Published: {PRODUCT_CODE} v2")
    assert [p["version"] for p in console.node.client.get("/v1/products")] == [1, 2]


def test_the_auditor_runs_an_audit_and_sees_it_pass(page: Any, console_node: ConsoleNode) -> None:
    console = console_node
    sign_in(page, console.url, console.node.client.keys["auditor"], "auditor")
    started = time.monotonic()
    page.click("[data-testid=run-audit]")
    state = page.wait_for_selector(
        ", ".join(f"[data-testid=audit-state][data-state={end}]" for end in FINISHED),
        timeout=120_000,
    )
    assert state.get_attribute("data-state") == "passed", state.inner_text()
    print(f"audit from the console: {time.monotonic() - started:.1f} s")
    cycles = page.inner_text("[data-testid=audit-cycles]")
    assert str(console.cycle.cycle_id) in cycles
    assert page.query_selector_all("[data-testid=audit-checks] td.fail") == []
    (folder,) = (console.node.settings.data_dir / "console-audits").iterdir()
    assert json.loads((folder / "report.json").read_text())["passed"] is True
    assert (folder / "report.html").is_file()
    assert not (folder / "export.ndjson").exists()  # it carried every entry's salt
    screenshot(page, "auditor")
    assert_accessible(page)


def test_partner_verifies_again_with_the_node_stopped(
    page: Any, console_node: ConsoleNode, tmp_path: Path
) -> None:
    """Last in the module: it stops the API (anvil keeps running)."""
    console = console_node
    sign_in(page, console.url, console.bank_key, "partner")
    summary = open_cycle(page, console)
    assert summary.get_attribute("data-ok") == "true"
    with page.expect_download() as downloading:
        page.click("text=Download NDJSON")
    saved = tmp_path / "entries.ndjson"
    downloading.value.save_as(saved)

    console.node.server.stop()
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{console.url}/v1/health", timeout=2)

    page.click("[data-testid=verify-again]")
    page.wait_for_selector("[data-testid=verification-summary][data-ok=true]")
    page.set_input_files("#verify-file", str(saved))
    summary = page.wait_for_selector("[data-testid=verification-summary][data-ok=true]")
    verified, total = page.inner_text("[data-testid=verified-count]").split(" ")[0:3:2]
    assert verified == total and int(total) > 0
