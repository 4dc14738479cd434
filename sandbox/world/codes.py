"""The codes the simulated world records things with: random streams, engagement and invoice
kinds, invoice outcomes, and the faults injected at client, engagement and invoice level."""

# Streams: independent random sequences per concern, so adding draws to one concern never
# shifts another's.
S_CLIENTS, S_DEALS, S_TIME, S_EXPENSES, S_BILLING, S_FX, S_ORPHANS, S_STATIC = range(8)
# Messy-but-valid data draws from streams of its own, one per kind: a noise rate moves no fault.
S_NOISE_TAX, S_NOISE_PAYMENTS, S_NOISE_IDENTITY, S_NOISE_HARVEST, S_NOISE_TIMING, S_NOISE_FX = 20, 21, 22, 23, 24, 25
S_NOISE_TRANSFERS = 26
S_NOISE_OVERPAYMENTS = 27
S_NOISE_CORRECTIONS = 28
S_NOISE_FX_POSTING = 29
S_NOISE_TIME_COPIES, S_NOISE_TIME_MOVES = 30, 31

T_AND_M, FIXED_FEE, RETAINER = 0, 1, 2
# Invoice kinds
MILESTONE, RETAINER_FEE, TM_MONTHLY, ORPHAN_WORKSHOP = 0, 1, 2, 3
# Invoice outcomes
PAID, VOIDED, UNCOLLECTIBLE = 0, 1, 2
# Client-level faults
CF_NONE, CF_MISSING_IN_ERP, CF_ATTRIBUTE, CF_DUPLICATE = 0, 1, 2, 3
ATTR_VAT, ATTR_COUNTRY, ATTR_DOMAIN = 0, 1, 2
DUP_HUBSPOT, DUP_ERP, DUP_STRIPE, DUP_HARVEST = 0, 1, 2, 3
# Engagement-level faults
EF_NONE, EF_CONTRACT_AMENDED, EF_CONTRACT_TYPO, EF_NO_PROJECT = 0, 1, 2, 3
# Invoice-level faults
IF_NONE, IF_MISSING_IN_ERP, IF_AMOUNT, IF_STATUS, IF_UNAPPLIED = 0, 1, 2, 3, 4
ORPHAN_STRIPE, ORPHAN_HARVEST = 0, 1
