"""The reconciliation report, written from a real small firm after `dbt build`, and rendered from
hand-built reports for what the firm does not show (escaping, an empty list)."""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from orchestration.reconciliation_report import (
    AGE_BUCKETS,
    HISTORY_TABLE,
    ExceptionItem,
    Group,
    Report,
    RunPoint,
    SlaBin,
    SlaChart,
    build_report,
    describe_details,
    markdown_summary,
    render_html,
    write_report,
)
from tests.dbt.conftest import Warehouse, copy_of

EXCEPTIONS = "reconciliation.reconciliation_exceptions"
FIRST_RUN = dt.datetime(2026, 10, 1, 6, 0, tzinfo=dt.timezone.utc)
SECOND_RUN = dt.datetime(2026, 10, 2, 6, 0, tzinfo=dt.timezone.utc)


@pytest.fixture
def warehouse(built_firm: Warehouse, tmp_path: Path) -> Path:
    return copy_of(built_firm, tmp_path / "warehouse")


def section(page: str, ident: str) -> str:
    match = re.search(rf'<section id="{ident}">(.*?)</section>', page, re.S)
    assert match, f"no section #{ident}"
    return match.group(1)


def query(path: Path, sql: str, *params) -> list[tuple]:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(sql, params).fetchall()


def test_page_is_one_self_contained_file_with_every_section(warehouse: Path, tmp_path: Path):
    result = write_report(warehouse, tmp_path / "out", generated_at=FIRST_RUN)

    assert result.path == tmp_path / "out" / "reconciliation_report.html"
    assert result.archive_path == tmp_path / "out" / "archive" / "20261001T060000Z.html"
    page = result.path.read_text(encoding="utf-8")
    assert result.archive_path.read_text(encoding="utf-8") == page
    assert "<script" not in page.lower()
    assert not re.search(r"""(?:src|href|action)\s*=\s*["']?\s*(?:[a-z]+:)?//""", page, re.I)
    assert "http://" not in page and "https://" not in page and "@import" not in page
    assert not re.search(r"url\(", page)
    assert "default-src 'none'" in page  # the browser may fetch nothing, whatever the data hold
    for ident in ("headline", "by-type", "by-owner", "by-age", "top-exceptions", "trends", "lifecycle", "sla"):
        section(page, ident)


def test_every_exception_type_is_listed_with_its_count_largest_amount_first(warehouse: Path, tmp_path: Path):
    expected = query(warehouse, f"""
        SELECT exception_type, count(*), sum(amount_at_risk_reporting) FROM {EXCEPTIONS}
        GROUP BY 1 ORDER BY 3 DESC, 2 DESC, 1""")
    assert len(expected) >= 5, "the small firm should show several exception types"

    result = write_report(warehouse, tmp_path / "out", generated_at=FIRST_RUN)

    rows = re.findall(r'<tr data-exception-type="([^"]+)">.*?<td class="num count">([\d,]+)</td>',
                      section(result.path.read_text(encoding="utf-8"), "by-type"), re.S)
    assert [(t, int(n.replace(",", ""))) for t, n in rows] == [(t, n) for t, n, _ in expected]
    assert result.by_type == {t: {"count": n, "amount_at_risk": float(a)} for t, n, a in expected}
    assert list(result.by_type) == [t for t, _, _ in expected]
    assert [g.key for g in result.report.by_type] == [t for t, _, _ in expected]
    assert result.markdown.splitlines()[2].startswith(f"| {expected[0][0]} | {expected[0][1]} |")


def test_headline_totals_equal_the_marts(warehouse: Path, tmp_path: Path):
    (count, amount, customers), = query(warehouse, f"""
        SELECT count(*), sum(amount_at_risk_reporting), count(DISTINCT customer_id) FROM {EXCEPTIONS}""")

    result = write_report(warehouse, tmp_path / "out", generated_at=FIRST_RUN)

    report = result.report
    assert (report.exceptions, report.amount_at_risk, report.customers_affected) == (count, amount, customers)
    assert (result.exceptions, result.amount_at_risk) == (count, float(amount))
    assert sum(g.count for g in report.by_owner) == sum(g.count for g in report.by_age) == count
    assert sum(g.amount_at_risk for g in report.by_owner) == sum(g.amount_at_risk for g in report.by_age) == amount
    headline = section(result.path.read_text(encoding="utf-8"), "headline")
    assert f"{count:,}" in headline and f"{amount:,.2f}" in headline
    assert f"**{count}** | **{amount:,.2f}**" in result.markdown


def test_largest_amount_at_risk_comes_first(warehouse: Path, tmp_path: Path):
    amounts = dict(query(warehouse, f"SELECT exception_id, amount_at_risk_reporting FROM {EXCEPTIONS}"))

    result = write_report(warehouse, tmp_path / "out", generated_at=FIRST_RUN, top_n=20)

    listed = re.findall(r'<tr class="exception" data-exception-id="([^"]+)"',
                        section(result.path.read_text(encoding="utf-8"), "top-exceptions"))
    assert len(listed) == min(20, len(amounts))
    shown = [amounts[i] for i in listed]
    assert shown == sorted(shown, reverse=True)
    assert shown[0] == max(amounts.values())
    assert [item.exception_id for item in result.report.top] == listed


def test_sla_charts_measure_the_metrics_marts(warehouse: Path, tmp_path: Path):
    (activated, within, awaiting), = query(warehouse, """
        SELECT count(*) FILTER (WHERE is_activated), count(*) FILTER (WHERE is_activated AND is_within_sla),
               count(*) FILTER (WHERE NOT is_activated) FROM metrics.project_activations""")
    (invoiced, on_time, waiting), = query(warehouse, """
        SELECT count(*) FILTER (WHERE is_invoiced), count(*) FILTER (WHERE is_invoiced AND readiness_latency_days <= 16),
               count(*) FILTER (WHERE NOT is_invoiced AND is_ready) FROM metrics.invoice_readiness""")

    result = write_report(warehouse, tmp_path / "out", generated_at=FIRST_RUN)

    activation, readiness = result.report.sla
    assert (activation.target_days, activation.measured, activation.within_target, activation.waiting) == (
        14, activated, within, awaiting)
    assert (readiness.target_days, readiness.measured, readiness.within_target, readiness.waiting) == (
        16, invoiced, on_time, waiting)
    for chart in (activation, readiness):
        assert sum(b.measured for b in chart.bins) == chart.measured
        assert sum(b.waiting for b in chart.bins) == chart.waiting
        assert sum(b.measured for b in chart.bins if b.within_target) == chart.within_target
    sla = section(result.path.read_text(encoding="utf-8"), "sla")
    for key, chart in (("activation", activation), ("invoice-readiness", readiness)):
        block = re.search(rf'<div class="chart" id="sla-{key}">(.*?)</svg>', sla, re.S).group(1)
        assert f"{chart.share_within_target * 100:.0f}%" in block and "<rect" in block and "target" in block


def test_each_run_adds_a_point_to_the_trends(warehouse: Path, tmp_path: Path):
    first = write_report(warehouse, tmp_path / "out", generated_at=FIRST_RUN)
    again = write_report(warehouse, tmp_path / "out", generated_at=FIRST_RUN)  # the same run, recorded once
    second = write_report(warehouse, tmp_path / "out", generated_at=SECOND_RUN)

    assert [len(r.report.runs) for r in (first, again, second)] == [1, 1, 2]
    assert query(warehouse, f"SELECT count(DISTINCT generated_at), count(*) FROM {HISTORY_TABLE}") == [(2, 24)]
    assert query(warehouse, f"SELECT sum(exceptions) FROM {HISTORY_TABLE} GROUP BY generated_at") == [
        (second.exceptions,), (second.exceptions,)]
    trends = section(second.path.read_text(encoding="utf-8"), "trends")
    count_chart = re.search(r'<div class="chart" id="trend-count">(.*?)</svg>', trends, re.S).group(1)
    assert count_chart.count("<circle") == 2 and "<polyline" in count_chart
    assert len(list((tmp_path / "out" / "archive").glob("*.html"))) == 2


def test_report_reads_a_read_only_warehouse_without_history(built_firm: Warehouse):
    with duckdb.connect(str(built_firm.path), read_only=True) as con:
        report = build_report(con, generated_at=FIRST_RUN)
    assert len(report.runs) == 1 and report.runs[0].exceptions == report.exceptions
    assert [g.key for g in report.by_age] == [label for label, _, _ in AGE_BUCKETS]


# --- rendering hand-built reports ---------------------------------------------------------------


def hand_built(*, exception_type: str = "payment_unapplied", customer: str = "Acme Ltd",
               detail: str = "invoice number: 1") -> Report:
    now = dt.datetime(2026, 10, 1)
    group = Group(exception_type, 1, Decimal("1234.50"), ("erp",), 0)
    item = ExceptionItem(
        exception_id="e1", exception_type=exception_type, severity="medium", domain="collections",
        owner_system="erp", customer_id="c1", customer_name=customer, source_system="stripe",
        source_record_id="in_1", amount_at_risk=Decimal("1000.00"), currency="EUR",
        amount_at_risk_reporting=Decimal("1234.50"), first_detected_at=now - dt.timedelta(days=40), age_days=40,
        due_at=None, detail=detail)
    chart = SlaChart(key="activation", title="Project activation time", unit_label="deals", measure="m.",
                     target_days=14, measured=2, within_target=1, waiting=1, waiting_past_target=0,
                     median_days=3.0, p90_days=20.0,
                     bins=(SlaBin("0\u201314", 0, 14, 1, 1, True), SlaBin(">14", 14, None, 1, 0, False)))
    return Report(
        generated_at=now, as_of=now, reporting_currency="USD", exceptions=1, amount_at_risk=Decimal("1234.50"),
        without_reporting_amount=0, customers_affected=1, by_type=(group,),
        by_owner=(Group("erp", 1, Decimal("1234.50")),),
        by_age=tuple(Group(label, int(label == "31-90 days"), Decimal("1234.50") if label == "31-90 days"
                           else Decimal(0)) for label, _, _ in AGE_BUCKETS),
        by_severity=(Group("medium", 1, Decimal("1234.50")),), top=(item,), top_n=50,
        runs=(RunPoint(now, now, {exception_type: (1, Decimal("1234.50"))}),), lifecycle=(), sla=(chart,),
        receivables=())


def test_text_from_the_warehouse_is_escaped():
    evil = "<script>alert('x')</script>"
    page = render_html(hand_built(exception_type=evil, customer='<img src="x" onerror="y">',
                                  detail='"><b>bold</b>'))

    assert "<script" not in page and "<img" not in page and "<b>bold" not in page
    assert "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    assert "&lt;img src=&quot;x&quot; onerror=&quot;y&quot;&gt;" in page
    assert '<tr data-exception-type="&lt;script&gt;' in page


def test_hand_built_report_renders_amounts_age_and_original_currency():
    page = render_html(hand_built())

    top = section(page, "top-exceptions")
    assert "1,234.50" in top and "1,000.00 EUR" in top and "40 d" in top and "Acme Ltd" in top
    assert re.search(r'<tr data-age="31-90 days"><td>31-90 days</td><td class="num count">1</td>', page)
    assert "50%" in section(page, "sla")  # 1 of 2 deals within target
    assert markdown_summary(hand_built()).splitlines() == [
        "| exception type | count | amount at risk (USD) |", "|---|---:|---:|",
        "| payment_unapplied | 1 | 1,234.50 |", "| **total** | **1** | **1,234.50** |"]


def test_a_report_without_exceptions_says_so():
    report = hand_built()
    empty = Report(**{**report.__dict__, "exceptions": 0, "amount_at_risk": Decimal(0), "by_type": (),
                      "by_owner": (), "top": (), "customers_affected": 0})
    page = render_html(empty)
    assert "No exceptions" in section(page, "by-type") and "No open exceptions" in section(page, "top-exceptions")


def test_details_read_as_one_line():
    assert describe_details({"billing_month": "2026-07", "hours": 14.75, "erp_payment_found": True}) == (
        "billing month: 2026-07; hours: 14.75; erp payment found: yes")
    assert describe_details({"differing_properties": [{"property": "ar_balance", "crm": None, "concord": "0.00"}]}) == (
        "1 property differs (CRM \u2192 Concord): ar_balance (none \u2192 0.00)")
    assert describe_details(None) == ""


def test_module_stands_alone_without_dagster():
    import subprocess
    import sys

    code = ("import sys, orchestration.reconciliation_report; "
            "sys.exit(any(m.split('.')[0] == 'dagster' for m in sys.modules))")
    assert subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[2]).returncode == 0
