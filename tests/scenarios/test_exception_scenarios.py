"""One scenario per exception type: what a person did in which system, and the exact exception a
run reports for it (type, subject, owner, amount at risk), with the client's CRM values equal
to what the vendors' records say."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.scenarios.firm import Firm
from tests.scenarios.harness import AR_BALANCE, Exc, Expect, names_in, scenario
from tests.scenarios.people import People


@scenario
def a_deal_won_for_a_company_finance_never_set_up(people: People, firm: Firm) -> Expect:
    """Sales types in a new company and wins a deal with it; finance never creates the customer."""
    company = people.sales.creates_company("Halden Analytics", domain="halden-analytics.example", country="Germany")
    people.sales.wins_deal(company, "48000", "EUR", closed=people.clock() - dt.timedelta(days=1))
    return Expect(company_id=company, exceptions=[
        Exc("customer_missing_in_erp", "hubspot", company, "erp", "48000.00", "EUR")])


@scenario
def a_vat_number_retyped_in_the_crm(people: People, firm: Firm) -> Expect:
    """Someone in sales overwrites a client's VAT number in HubSpot with another company's."""
    client = firm.billed_client()
    people.sales.edits_company(client.company_id, vat_number=f"{client.vat[:2]}999999999")
    return Expect(client, exceptions=[
        Exc("customer_attribute_mismatch", "hubspot", client.company_id, "erp", "0.00", client.currency)])


@scenario
def a_client_typed_into_the_crm_twice(people: People, firm: Firm) -> Expect:
    """A new salesperson adds a company that is already there, same name and domain."""
    client = firm.billed_client()
    people.sales.creates_company(client.name, domain=client.domain)
    return Expect(client, exceptions=[Exc("duplicate_customer", "hubspot", None, "hubspot", "0.00", client.currency)])


@scenario
def a_won_deal_amended_in_the_crm_only(people: People, firm: Firm) -> Expect:
    """The account manager raises a won deal's amount by 1,500 in HubSpot; the sale order stays."""
    client, deal, amount, currency = firm.won_deal()
    people.sales.edits_deal(deal, amount=f"{amount + 1500:.2f}")
    return Expect(client, exceptions=[Exc("contract_value_mismatch", "hubspot", deal, "erp", "1500.00", currency)])


@scenario
def a_won_deal_delivery_never_set_up(people: People, firm: Firm) -> Expect:
    """Sales wins a second deal with a client and finance books its sale order; nobody creates
    the Harvest project."""
    client = firm.billed_client()
    deal = people.sales.wins_deal(client.company_id, "36000", client.currency,
                                  closed=people.clock() - dt.timedelta(days=1))
    people.finance.keys_like("sale_order", "partner_id = :p", {"p": client.erp_partner_id},
                             name=f"S9{deal[-5:]}", client_order_ref=deal, amount_untaxed=36000.0, amount_tax=0.0,
                             amount_total=36000.0, date_order=people.clock().replace(tzinfo=None), state="sale")
    return Expect(client, exceptions=[Exc("won_deal_without_project", "hubspot", deal, "harvest", "36000.00",
                                          client.currency)])


@scenario
def a_month_of_time_invoiced_then_voided(people: People, firm: Firm) -> Expect:
    """Billing voids a client's monthly time-and-materials invoice to re-issue it, and never does:
    the month's approved time is billed by nothing (finance cancels the invoice in the ERP)."""
    invoice = firm.invoice(open_at_start_for_time=True)
    time_billed = people.billing.time_billed_on(invoice.stripe_id)
    people.billing.post(f"/v1/invoices/{invoice.stripe_id}/void")
    return Expect(invoice.client, exceptions=[
        Exc("approved_time_unbilled", "harvest", None, "stripe", f"{time_billed / 100:.2f}", invoice.client.currency)])


@scenario
def a_month_of_time_marked_invoiced_in_harvest_though_its_invoice_was_voided(people: People, firm: Firm) -> Expect:
    """Billing voids a client's monthly time invoice to re-issue it, and never does; the project
    manager marks the month's time invoiced in Harvest all the same. The mark is no evidence:
    the time is billed by nothing."""
    invoice = firm.invoice(open_at_start_for_time=True)
    time_billed = people.billing.time_billed_on(invoice.stripe_id)
    people.billing.post(f"/v1/invoices/{invoice.stripe_id}/void")
    people.project_manager.marks_invoiced(firm.approved_time(invoice))
    return Expect(invoice.client, exceptions=[
        Exc("approved_time_unbilled", "harvest", None, "stripe", f"{time_billed / 100:.2f}", invoice.client.currency)])


@scenario
def an_invoice_billing_never_posted_to_the_erp(people: People, firm: Firm) -> Expect:
    """Billing invoices a client 7,300 in Stripe; nobody posts it in the ERP."""
    client = firm.billed_client()
    invoice = people.billing.invoices(client.stripe_customer_id, 730_000, client.currency.lower())
    return Expect(client, exceptions=[
        Exc("invoice_missing_in_erp", "stripe", invoice["id"], "erp", "7300.00", client.currency)])


@scenario
def an_invoice_posted_to_the_erp_with_another_amount(people: People, firm: Firm) -> Expect:
    """Billing invoices 2,400 in Stripe; finance keys it in the ERP as 2,500."""
    client = firm.billed_client()
    invoice = people.billing.invoices(client.stripe_customer_id, 240_000, client.currency.lower())
    people.finance.posts_invoice(client.erp_partner_id, invoice["number"], untaxed=2500.0)
    return Expect(client, exceptions=[
        Exc("invoice_amount_mismatch", "stripe", invoice["id"], "erp", "100.00", client.currency)])


@scenario
def an_invoice_marked_paid_in_the_erp_only(people: People, firm: Firm) -> Expect:
    """Finance records a bank transfer against an open invoice in the ERP; Stripe still shows it open."""
    invoice = firm.invoice(open_at_end=True)
    people.finance.updates("account_move", "ref = :n AND move_type = 'out_invoice'", {"n": invoice.number},
                           payment_state="paid", amount_residual=0.0, amount_residual_signed=0.0)
    return Expect(invoice.client, exceptions=[
        Exc("invoice_status_mismatch", "stripe", invoice.stripe_id, "stripe", f"{invoice.total / 100:.2f}",
            invoice.client.currency)])


@scenario
def a_card_payment_finance_never_reconciled(people: People, firm: Firm) -> Expect:
    """A client paid by card long ago; finance undoes the match between payment and invoice."""
    invoice = firm.invoice(paid_by_card_before_start=True)
    people.finance.deletes("account_move__account_payment", "invoice_id IN (SELECT id FROM account_move WHERE ref = :n)",
                           {"n": invoice.number})
    people.finance.updates("account_move", "ref = :n AND move_type = 'out_invoice'", {"n": invoice.number},
                           payment_state="not_paid")
    return Expect(invoice.client, exceptions=[
        Exc("payment_unapplied", "stripe", invoice.stripe_id, "erp", f"{invoice.total / 100:.2f}",
            invoice.client.currency)])


@scenario
def a_walk_in_customer_billed_in_stripe_only(people: People, firm: Firm) -> Expect:
    """Billing sells a workshop seat to someone nobody else knows and invoices 350 in Stripe."""
    customer = people.billing.creates_customer("Jo Walker", "jo.walker@gmail.example")
    people.billing.invoices(customer, 35_000, "usd", "Strategy workshop seat")
    return Expect(subjects=(customer,), exceptions=[
        Exc("unmatched_record", "stripe", customer, "stripe", "350.00", "USD")])


@scenario
def a_payment_recorded_after_concords_push(people: People, firm: Firm) -> Expect:
    """Right after Concord pushed the client's balance to the CRM, billing records a bank
    transfer for an open invoice: until the next push the CRM shows a balance that is gone."""
    invoice = firm.invoice(open_at_end=True)
    people.right_after_the_push(lambda: people.billing.records_paid_out_of_band(invoice.stripe_id))
    return Expect(invoice.client, check_crm=False, exceptions=[
        Exc("crm_financial_status_stale", "hubspot", invoice.client.company_id, "concord", AR_BALANCE,
            invoice.client.currency)])


@pytest.mark.parametrize("name", names_in(__name__))
def test_scenario(run, name: str) -> None:
    run.check(name)


def test_every_exception_type_has_a_scenario(run) -> None:
    from sandbox.world.config import FAULT_TYPES

    covered = {e.type for name in names_in(__name__) for e in run.expected[name].exceptions}
    assert covered == {*FAULT_TYPES, "crm_financial_status_stale"}
