"""Reactions of the stock to the order flow (``tickets.signals``)."""
