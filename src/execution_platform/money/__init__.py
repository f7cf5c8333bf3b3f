"""Money and limits: prices, the ledger, budgets (reservations), rate limits and the metering wrapper.

Import the pieces from their modules (``money.ledger``, ``money.budgets``...); this package keeps no
state of its own.
"""
