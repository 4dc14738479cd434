"""One scenario per kind of mess a real firm makes that is not a fault: what a person did, and
that a run reports nothing about it while the client's CRM values still equal what the vendors'
records say (tax, credits, refunds and part payments included)."""

from __future__ import annotations

import datetime as dt

import pytest

from sandbox.world.config import DAY, NOISE_KINDS
from tests.scenarios.firm import Firm
from tests.scenarios.harness import AR_BALANCE, Exc, Expect, names_in, scenario
from tests.scenarios.people import People


@scenario
def a_refund_after_payment(people: People, firm: Firm) -> Expect:
    """A client paid by card; billing refunds 120 of it with a credit note (finance follows in the ERP)."""
    invoice = firm.invoice(paid_by_card_before_start=True)
    people.billing.credits(invoice.stripe_id, 12_000, refund_amount="12000", reason="product_unsatisfactory")
    return Expect(invoice.client, mess="refund")


@scenario
def an_invoice_credited_in_full_before_payment(people: People, firm: Firm) -> Expect:
    """An invoice sent in error is credited in full; Stripe counts it paid with nothing collected."""
    invoice = firm.invoice(open_at_end=True)
    people.billing.credits(invoice.stripe_id, invoice.total, reason="duplicate")
    return Expect(invoice.client, mess="full_credit")


@scenario
def a_credit_note_before_payment(people: People, firm: Firm) -> Expect:
    """Billing agrees a 300 reduction on an open invoice; the client owes the rest."""
    invoice = firm.invoice(open_at_end=True)
    people.billing.credits(invoice.stripe_id, 30_000, reason="order_change")
    return Expect(invoice.client, mess="credit_note")


@scenario
def an_invoice_paid_in_part_by_bank_transfer(people: People, firm: Firm) -> Expect:
    """The client wires a third of an open invoice; finance records and matches it in the ERP."""
    invoice = firm.invoice(open_at_end=True)
    people.finance.records_part_payment(invoice.number, round(invoice.total / 300, 2))
    return Expect(invoice.client, mess="partial_payment")


@scenario
def two_invoices_settled_by_one_transfer(people: People, firm: Firm) -> Expect:
    """The client pays two open invoices with one bank transfer: finance matches it with both in
    the ERP, billing marks both paid out of band in Stripe."""
    invoices = firm.open_invoices_of_one_client()
    for invoice in invoices:
        people.later(lambda invoice=invoice: people.billing.records_paid_out_of_band(invoice.stripe_id))
    people.finance.records_transfer({invoice.number: invoice.total / 100 for invoice in invoices})
    return Expect(invoices[0].client, mess="one_transfer")


@scenario
def an_invoice_overpaid_by_bank_transfer(people: People, firm: Firm) -> Expect:
    """The client pays an open invoice by a transfer rounded up to the next hundred; finance
    matches it with the invoice and keeps the excess as the client's credit, billing marks the
    invoice paid out of band."""
    invoice = firm.invoice(open_at_end=True)
    people.later(lambda: people.billing.records_paid_out_of_band(invoice.stripe_id))
    people.finance.records_transfer({invoice.number: (invoice.total // 10_000 + 1) * 100.0})
    return Expect(invoice.client, mess="overpayment")


@scenario
def a_client_typed_in_twice_then_merged(people: People, firm: Firm) -> Expect:
    """A salesperson types in a client that is already there; a colleague merges the two."""
    client = firm.billed_client()
    second = people.sales.creates_company(f"{client.name} Ltd", domain=client.domain)
    people.sales.merges_companies(client.company_id, second)
    return Expect(client, subjects=(second,), mess="crm_merge")


@scenario
def a_company_archived_by_mistake_then_restored(people: People, firm: Firm) -> Expect:
    """A salesperson archives a client's company by mistake; ten days before the run a colleague
    restores it from HubSpot's recycle bin."""
    client = firm.billed_client()
    people.sales.archives_company(client.company_id)
    people.days_before_the_end(10, lambda: people.sales.restores_company(client.company_id))
    return Expect(client, mess="crm_restore")


@scenario
def a_company_in_the_recycle_bin_at_the_run(people: People, firm: Firm) -> Expect:
    """A salesperson archives a client's company by mistake two days before the run; nobody has
    restored it yet. Concord reports nothing and has nowhere to write the client's values."""
    client = firm.billed_client()
    people.days_before_the_end(2, lambda: people.sales.archives_company(client.company_id))
    return Expect(client, mess="crm_restore", check_crm=False)


@scenario
def a_company_with_the_same_name_elsewhere(people: People, firm: Firm) -> Expect:
    """Sales adds a prospect that shares a client's name, in another country, on another domain."""
    client = firm.billed_client()
    other = people.sales.creates_company(client.name, domain=f"{client.domain.split('.')[0]}-group.example",
                                         country="Netherlands", vat_number="NL812345678B01")
    return Expect(client, subjects=(other,), mess="homonym")


@scenario
def a_client_that_bills_from_a_second_domain(people: People, firm: Firm) -> Expect:
    """The client's accounts team uses another domain: sales lists it in HubSpot, billing e-mails it."""
    client = firm.billed_client()
    second = f"{client.domain.split('.')[0]}-finance.example"
    people.sales.edits_company(client.company_id, hs_additional_domains=second)
    people.billing.edits_customer(client.stripe_customer_id, email=f"payables@{second}")
    return Expect(client, mess="extra_domain")


@scenario
def a_vat_number_typed_loosely_in_the_crm(people: People, firm: Firm) -> Expect:
    """Sales retypes a client's VAT number with spaces and without its country prefix."""
    client = firm.billed_client(eu_vat=True)
    digits = client.vat[2:]
    people.sales.edits_company(client.company_id, vat_number=" ".join(digits[k:k + 3] for k in range(0, len(digits), 3)))
    return Expect(client, mess="vat_format")


@scenario
def a_quiet_client_deleted_in_stripe(people: People, firm: Firm) -> Expect:
    """Billing tidies Stripe and deletes the customer of a client with no work for months and
    nothing owed, before Concord first loads it: only its invoices still name it."""
    client = firm.idle_client()
    people.billing.deletes_customer(client.stripe_customer_id)
    return Expect(client, mess="stripe_deletion")


@scenario
def a_quiet_client_archived_in_the_erp(people: People, firm: Firm) -> Expect:
    """Finance archives the customer master of a client with no work for months."""
    client = firm.idle_client()
    people.finance.updates("res_partner", "id = :p", {"p": client.erp_partner_id}, active=False)
    return Expect(client, mess="erp_archive")


@scenario
def an_invoice_with_vat(people: People, firm: Firm) -> Expect:
    """Billing invoices a UK client 1,000 plus 20% VAT; finance posts it in the ERP as 1,000
    before tax and 200 of tax. The client owes 1,200; 1,000 of it is billed work."""
    client = firm.billed_client(currency="GBP")
    vat = people.billing.creates_tax_rate("VAT", "20", country="GB")
    invoice = people.billing.invoices(client.stripe_customer_id, 100_000, "gbp", tax_rate=vat)
    people.finance.posts_invoice(client.erp_partner_id, invoice["number"], untaxed=1000.0, tax=200.0)
    return Expect(client, mess="tax")


@scenario
def an_invoice_booked_and_paid_in_part_in_the_entitys_own_currency(people: People, firm: Firm) -> Expect:
    """Billing invoices a client 10,000 in the currency it is billed in; finance books it in the
    currency of the client's legal entity, at the ERP's rate of the day, rounded to the cent. The
    client then wires 4,000, which finance books in the entity's currency too and matches with
    the invoice: the client still owes 6,000."""
    client = firm.billed_client(billed_in_another_currency=True)
    invoice = people.billing.invoices(client.stripe_customer_id, 1_000_000, client.currency.lower())
    in_books = (client.currency, client.books_in)
    people.finance.posts_invoice(client.erp_partner_id, invoice["number"], untaxed=10_000.0, books_in=in_books)
    people.finance.records_part_payment(invoice["number"], 4_000.0, books_in=in_books)
    return Expect(client, mess="fx_rounding")


@scenario
def an_invoice_finance_has_not_posted_yet(people: People, firm: Firm) -> Expect:
    """Three days before the run, billing invoices a client 5,200; finance posts invoices in the
    ERP within five days and has not yet."""
    client = firm.billed_client()
    people.days_before_the_end(3, lambda: people.billing.invoices(client.stripe_customer_id, 520_000,
                                                                  client.currency.lower()))
    return Expect(client, mess="slow_posting")


@scenario
def a_transfer_finance_has_not_matched_yet(people: People, firm: Firm) -> Expect:
    """On the morning of the run, billing records a client's bank transfer for an open invoice in
    Stripe; finance matches payments in the ERP within five days (the next day, as a rule) and
    has not yet."""
    invoice = firm.invoice(open_at_end=True)
    people.later(lambda: people.billing.records_paid_out_of_band(invoice.stripe_id))
    return Expect(invoice.client, mess="slow_posting")


@scenario
def a_rate_keyed_on_a_saturday_and_fridays_missing(people: People, firm: Firm) -> Expect:
    """Finance keys the euro's rate for the Saturday the run falls on and never keys Friday's. The
    run reports nothing about a euro client, and every amount it converts to dollars uses the rate
    the ERP holds for the day (`Run.check`)."""
    client = firm.billed_client(currency="EUR")
    saturday = firm.end_date
    friday = saturday - dt.timedelta(days=1)
    assert saturday.weekday() == 5
    euro_on = "currency_id = (SELECT id FROM res_currency WHERE name = 'EUR') AND name = :day"
    people.finance.keys_like("res_currency_rate", euro_on, {"day": friday}, name=saturday, rate=0.8642)
    people.finance.deletes("res_currency_rate", euro_on, {"day": friday})
    return Expect(client, mess="fx_calendar")


@scenario
def hours_corrected_after_approval(people: People, firm: Firm) -> Expect:
    """Ten days before the run a consultant finds an approved entry wrong; the month is not
    invoiced yet, so the manager reopens it in Harvest, the hours are corrected and the manager
    approves it again. The month's invoice bills the corrected hours."""
    client, entry, hours = firm.approved_entry_invoiced_after(firm.end - 10 * DAY)
    people.days_before_the_end(10, lambda: people.project_manager.corrects_approved_hours(entry, hours + 1.5))

    def corrected_and_approved() -> None:  # and, no time left unbilled, billed as corrected
        shown = people.project_manager.time_entry(entry)
        assert (shown["hours"], shown["is_closed"]) == (hours + 1.5, True), shown

    return Expect(client, mess="harvest_correction", holds=corrected_and_approved)


@scenario
def a_month_of_time_marked_invoiced_by_hand_in_harvest(people: People, firm: Firm) -> Expect:
    """Once billing has invoiced a month of a client's time in Stripe, the project manager marks
    that month's time invoiced in Harvest by hand, as is their habit."""
    invoice = firm.invoice(for_time=True)
    people.project_manager.marks_invoiced(firm.approved_time(invoice))
    return Expect(invoice.client, mess="harvest_marking")


@scenario
def a_second_stripe_customer_created_by_mistake_and_deleted(people: People, firm: Firm) -> Expect:
    """Billing types a client into Stripe a second time; Concord's run finds the duplicate and
    pushes one open data issue to the CRM. Right after the push billing deletes the second
    customer: the next run finds no duplicate, only that the CRM still shows the issue."""
    client = firm.billed_client()
    second = people.billing.creates_customer(client.name, f"accounts@{client.domain}")
    people.right_after_the_push(lambda: people.billing.deletes_customer(second))
    return Expect(client, subjects=(second,), mess="stripe_delete", check_crm=False, exceptions=[
        Exc("crm_financial_status_stale", "hubspot", client.company_id, "concord", AR_BALANCE, client.currency)])


@scenario
def time_logged_twice_the_copy_deleted_after_concord_loaded_it(people: People, firm: Firm) -> Expect:
    """A consultant logs a day of a month since invoiced a second time, and the manager approves
    the copy: Concord's run rightly finds approved time the invoice left out, and pushes it to the
    CRM. Right after the push the manager reopens the copy and deletes it; Harvest keeps no trace
    of it. The next run finds the time billed, only that the CRM still shows the issue."""
    invoice = firm.time_invoice_of_the_last_month()
    client = invoice.client
    copy = people.project_manager.logs_again_and_approves(firm.approved_time(invoice)[-1])
    people.right_after_the_push(lambda: people.project_manager.deletes_after_reopening(copy))
    return Expect(client, mess="harvest_delete", check_crm=False, exceptions=[
        Exc("crm_financial_status_stale", "hubspot", client.company_id, "concord", AR_BALANCE, client.currency)])


@scenario
def time_moved_to_another_clients_project_after_approval(people: People, firm: Firm) -> Expect:
    """Ten days before the run a manager finds an approved entry logged against the wrong
    project: they reopen it, it is moved to the consultant's other project (another client's),
    and approved again, before the month is invoiced. Each project's invoice bills its time."""
    client, entry, _, project = firm.entry_with_another_project(firm.end - 10 * DAY)
    people.days_before_the_end(10, lambda: people.project_manager.moves_approved_entry(entry, project))

    def moved_and_approved() -> None:
        shown = people.project_manager.time_entry(entry)
        assert (shown["project"]["id"], shown["is_closed"]) == (project, True), shown

    return Expect(client, subjects=(str(project),), mess="harvest_move", holds=moved_and_approved)


@pytest.mark.parametrize("name", names_in(__name__))
def test_scenario(run, name: str) -> None:
    run.check(name)


def test_the_projects_data_tests_hold_on_all_of_it(run) -> None:
    """A failing data test stops what depends on it in `dbt build` (and so the push): none may
    fail on a firm as messy as these people made it."""
    result = run.warehouse.dbt("test")
    failed = [r.node.name for r in result.result or [] if r.status not in ("pass", "success", "skipped")]
    assert result.success and not failed, failed


def test_every_kind_of_mess_the_generator_makes_has_a_scenario(run) -> None:
    covered = {run.expected[name].mess for name in names_in(__name__)}
    assert set(NOISE_KINDS) <= covered, set(NOISE_KINDS) - covered
