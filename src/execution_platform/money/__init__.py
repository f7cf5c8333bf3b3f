"""Money and limits: prices, the ledger, budgets (reservations), rate limits and the metering wrapper;
``money.meter`` wires them into calls (where each check sits in the routing stack and why).

Import the pieces from their modules (``money.ledger``, ``money.budgets``...); this package keeps no
state of its own.
"""
