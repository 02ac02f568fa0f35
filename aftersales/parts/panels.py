"""The parts panels of the order page, the technician's job page and the technician's day.

- ``order_panel(request, order)``: the order's part requests (status, source warehouse,
  transfer, serials, free or chargeable under 三包); for the order's technician or whoever
  dispatches it: ask for a part (the parts fitting the unit, with where they are available,
  nearest first), release one, and — the technician, on site — use it (with its serial and the
  old part's). Seen by them and by whoever holds ``parts.view`` over the order's node.
- ``tech_panel(request, order)``: the same on the phone: big buttons, the van's stock first.
- ``tech_van_panel(request, employee)``: what the technician carries, the old parts to take
  back, and the button that sends them back to the centre.

The forms post to this app's views (``parts:*``) and come back to the page they were on.
Each panel returns "" when nothing applies to the user.
"""

from __future__ import annotations

from django.db.models import F, Q
from django.template.loader import render_to_string
from django.urls import NoReverseMatch, reverse

from aftersales.org.roles import Perm
from aftersales.org.scope import holds_at, principal
from aftersales.tickets import workflow
from aftersales.tickets.models import Status

from . import selectors
from .models import Part, RequestStatus, Stock, Transfer, TransferStatus, WarehouseKind

REQUESTABLE = workflow.ASSIGNED  # the order's statuses in which parts are asked for
CONSUMABLE = frozenset({Status.ON_SITE, Status.DIAGNOSING, Status.REPAIRING})  # … and used
SEARCH_LIMIT = 8
PLACES_SHOWN = 3


def _url(name: str, *args) -> str | None:
    try:
        return reverse(name, args=args)
    except NoReverseMatch:
        return None


def is_technician(user, order) -> bool:
    return workflow.is_assignee(user, order) and principal(user).can(Perm.ORDER_WORK)


def may_request(user, order) -> bool:
    """Ask for and release parts: the order's technician, or whoever dispatches it."""
    return is_technician(user, order) or holds_at(user, Perm.ORDER_DISPATCH, order.node_id)


def _may_see(user, order) -> bool:
    return may_request(user, order) or holds_at(user, Perm.PARTS_VIEW, order.node_id)


def _back(order, page: str) -> str:
    if page == "tech":
        return _url("web:tech_job", order.pk) or _url("web:order_detail", order.pk) or "/"
    return _url("web:order_detail", order.pk) or "/"


# ---------------------------------------------------------------- the parts to choose from

def _fitting(order, q: str):
    q = (q or "").strip()[:50]
    if order.unit_id:
        qs = selectors.parts_fitting(order.unit)
    elif q:
        qs = Part.objects.filter(active=True).order_by("code")
    else:
        return Part.objects.none()
    if q:
        qs = qs.filter(Q(code__istartswith=q) | Q(name__icontains=q) | Q(name_en__icontains=q))
    return qs


def _places(order, part_ids: list[int], van) -> dict[int, list[selectors.Availability]]:
    """Where each part is available to an order: the technician's van and every warehouse that
    is not a van (those are where a request takes from), nearest to the order's outlet first.
    One query for all the parts."""
    if not part_ids:
        return {}
    not_a_van = ~Q(warehouse__kind=WarehouseKind.VAN)
    qs = (Stock.objects.filter(part_id__in=part_ids, on_hand__gt=F("reserved"), warehouse__active=True)
          .filter(not_a_van | Q(warehouse_id=van.pk) if van is not None else not_a_van)
          .select_related("warehouse__node"))
    near = order.node
    out: dict[int, list[selectors.Availability]] = {}
    for s in qs:
        n = s.warehouse.node
        d = selectors.haversine_km(near.lat, near.lng, n.lat, n.lng)
        out.setdefault(s.part_id, []).append(
            selectors.Availability(s.warehouse, s.on_hand - s.reserved, None if d is None else round(d, 1)))
    for places in out.values():
        places.sort(key=lambda a: (van is None or a.warehouse.pk != van.pk, a.distance_km is None,
                                   a.distance_km or 0.0, a.warehouse.code))
    return out


def search_context(request, order, *, q: str = "", page: str = "order") -> dict:
    """The parts fitting the order's unit (matching ``q``), each with the places it is
    available: the technician's van first, then the nearest to the order's outlet."""
    van = selectors.van_of(order.assignee) if order.assignee_id else None
    parts = list(_fitting(order, q)[:SEARCH_LIMIT + 1])
    more = len(parts) > SEARCH_LIMIT
    parts = parts[:SEARCH_LIMIT]
    where = _places(order, [p.pk for p in parts], van)
    items = []
    for p in parts:
        places = where.get(p.pk, [])
        in_van = places[0] if places and van is not None and places[0].warehouse.pk == van.pk else None
        others = places[1:] if in_van is not None else places
        items.append({"part": p, "in_van": in_van.available if in_van else 0, "places": others[:PLACES_SHOWN],
                      "elsewhere": sum(a.available for a in others), "none": not places})
    return {"order": order, "items": items, "more": more, "q": q, "page": page, "back": _back(order, page),
            "request_url": _url("parts:order_part_request", order.pk),
            "search_url": _url("parts:order_parts_search", order.pk), "has_unit": bool(order.unit_id)}


# ---------------------------------------------------------------- the panels

def _requests(order, technician: bool, may_ask: bool) -> list[dict]:
    rows = []
    for r in selectors.order_part_requests(order):
        open_ = r.status in (RequestStatus.READY, RequestStatus.IN_TRANSIT)
        rows.append({
            "r": r,
            "may_release": may_ask and open_,
            "may_consume": technician and r.status == RequestStatus.READY and order.status in CONSUMABLE,
            "needs_serial": r.part.serialised,
            "returnable": r.part.returnable,
            "release_url": _url("parts:request_release", r.pk),
            "consume_url": _url("parts:request_consume", r.pk),
        })
    return rows


def _panel(request, order, page: str) -> str:
    user = request.user
    if not _may_see(user, order):
        return ""
    technician = is_technician(user, order)
    may_ask = may_request(user, order)
    rows = _requests(order, technician, may_ask)
    can_ask = may_ask and order.status in REQUESTABLE and order.assignee_id is not None
    if not rows and not can_ask:
        return ""
    ctx = {"order": order, "rows": rows, "page": page, "back": _back(order, page), "can_ask": can_ask,
           "technician": technician, "waiting": order.status == Status.WAITING_PARTS,
           "on_site": order.status in CONSUMABLE}
    if can_ask:
        ctx["search"] = search_context(request, order, page=page)
    template = "parts/_tech_panel.html" if page == "tech" else "parts/_order_panel.html"
    return render_to_string(template, ctx, request=request)


def order_panel(request, order) -> str:
    return _panel(request, order, "order")


def tech_panel(request, order) -> str:
    return _panel(request, order, "tech")


def tech_van_panel(request, employee) -> str:
    """The technician's van: stock, old parts to return, transfers on their way to it."""
    if employee is None or request.user.pk != employee.user_id:
        return ""
    van = selectors.van_of(employee)
    if van is None:
        return ""
    stock = selectors.van_stock(employee)
    incoming = list(Transfer.objects.filter(destination=van, status__in=(TransferStatus.REQUESTED,
                                                                        TransferStatus.SHIPPED))
                    .select_related("source", "order").prefetch_related("lines__part").order_by("-created_at")[:10])
    returning = Transfer.objects.filter(source=van, defective=True, status=TransferStatus.REQUESTED).exists()
    ctx = {"van": van, "stock": [s for s in stock if s.on_hand > 0], "defective": [s for s in stock if s.defective > 0],
           "incoming": incoming, "returning": returning, "return_url": _url("parts:van_return"),
           "back": _url("web:tech_jobs") or "/"}
    ctx["defective_total"] = sum(s.defective for s in ctx["defective"])
    return render_to_string("parts/_van_panel.html", ctx, request=request)
