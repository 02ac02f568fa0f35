"""``order_moved`` is sent by ``workflow.move`` after a move is applied, inside its transaction,
with ``order``, ``move`` (the name), ``from_status``, ``to_status``, ``actor`` and ``at``.

Apps that build on tickets react to the flow through it without tickets importing them:
dispatch frees a booking when an order leaves a technician, and routes newly classified
orders where auto-dispatch is on; feedback opens the call-back when an order is completed.
A receiver that raises aborts the move (same transaction).

``order_moving`` is sent by ``workflow.move`` once the move has passed its own checks (scope,
permission, status, fields) and before it is applied, with ``order``, ``move``,
``from_status``, ``to_status``, ``actor``, ``data`` and ``at``. An app above tickets that must
refuse a move raises a ``DomainError`` (a ``Conflict`` saying why) from its receiver: charges
refuse the repair of a chargeable order until the customer has approved its quote."""

from django.dispatch import Signal

order_moving = Signal()
order_moved = Signal()
