"""Reactions to the order flow (tickets.signals.order_moved)."""
