"""Demo data of the charges, built in bulk and deterministically on top of the demo orders (and
the parts they used, when the parts demo ran first):

- the price list with one price change three weeks ago (``CHANGE_DAYS``): the older list at
  about 90 % of today's, so the earlier quotes show the older prices; explicit prices for the
  main parts (the others sell at cost × markup);
- for every chargeable order completed in the last six weeks (``QUOTE_DAYS``; ``warranty_free=False``):
  a quote approved before the repair (by signature or by the SMS link), about one in eight
  after a first quote the customer rejected; its lines are the order's parts (not released),
  labour and the visit fee at the prices of the quote's day;
- a payment of each approved quote at completion (WeChat Pay, Alipay, cash, card, transfer),
  with receipt numbers that continue the day's sequence, and a few refunds;
- the service cost of every completed or closed order (not of cancelled ones), in one
  ``INSERT … SELECT`` (labour from the approved quote, else per visit, as ``services`` does).

Reads are set-based (a few queries whatever the number of orders), writes are bulk inserts. The
quotes' and payments' order events are not written (the demo's order histories are built
elsewhere and stay as they are); their audit entries are (``demo.create``).
"""

from __future__ import annotations

import datetime as dt
import random
from collections import defaultdict
from decimal import ROUND_HALF_UP, Decimal

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Min, Q
from django.utils import timezone

from aftersales.core.progress import Progress
from aftersales.parts.models import Part, PartRequest, RequestStatus
from aftersales.records.audit import audit_record_created_bulk
from aftersales.tickets.models import OrderEvent, Status, WorkOrder

from . import services
from .models import (
    ApprovedVia,
    LineKind,
    Payment,
    PaymentMethod,
    PriceItem,
    PriceKind,
    Quote,
    QuoteLine,
    QuoteStatus,
    ReceiptSequence,
    Refund,
    ServiceCost,
)

AUDIT_ACTION = "demo.create"
BATCH = 2000
START_DAYS = 200  # the price list begins before the six months of orders
QUOTE_DAYS = 42  # quotes and payments for the chargeable orders completed in the last six weeks
CHANGE_DAYS = 21  # the price change three weeks ago: the quotes show both lists
OLD_SCALE = Decimal("0.9")
MAIN_PART_MARKUP = Decimal("1.4")
REJECT_SHARE = 0.12
SIGNATURE_SHARE = 0.65
REFUND_SHARE = 0.04
METHODS = [(PaymentMethod.WECHAT, 45), (PaymentMethod.ALIPAY, 30), (PaymentMethod.CASH, 14),
           (PaymentMethod.CARD, 8), (PaymentMethod.TRANSFER, 3)]
REJECT_REASONS = ["价格太高，再考虑一下", "想先问问家人", "觉得配件太贵", "准备换新机", "上门费不合理"]
REFUND_REASONS = ["客户投诉后退还上门费", "重复收款退回", "配件未使用退款", "优惠减免"]
CENT = Decimal("0.01")


def _money(v) -> Decimal:
    return Decimal(v).quantize(CENT, rounding=ROUND_HALF_UP)


class _PriceBook:
    """The price list in memory: the item in effect on a day for a list of keys."""

    def __init__(self, items: list[PriceItem]):
        self.by_key: dict[str, list[PriceItem]] = defaultdict(list)
        for it in items:
            self.by_key[it.key].append(it)
        for rows in self.by_key.values():
            rows.sort(key=lambda r: r.valid_from)

    def on(self, keys: list[str], day: dt.date) -> PriceItem | None:
        for k in keys:
            for it in reversed(self.by_key.get(k, ())):
                if it.in_effect(day):
                    return it
        return None


def _price_list(today: dt.date, now: dt.datetime) -> list[PriceItem]:
    """The demo price list (only when there is none yet)."""
    if PriceItem.objects.exists():
        return []
    start, change = today - dt.timedelta(days=START_DAYS), today - dt.timedelta(days=CHANGE_DAYS)
    rows = services.default_price_items(start, scale=OLD_SCALE, valid_to=change - dt.timedelta(days=1))
    rows += services.default_price_items(change)
    for p in Part.objects.exclude(main_part_code="").filter(unit_cost__gt=0).order_by("code")[:60]:
        price = (p.unit_cost * MAIN_PART_MARKUP).quantize(Decimal(1), rounding=ROUND_HALF_UP)
        rows.append(PriceItem(kind=PriceKind.PART, key=services.price_key(PriceKind.PART, part_id=p.pk), part=p,
                              price=_money(price), valid_from=start, note="主要部件统一零售价"))
    for r in rows:
        r.created_at = now
    return PriceItem.objects.bulk_create(rows, batch_size=BATCH)


def _at_most(t: dt.datetime, limit: dt.datetime) -> dt.datetime:
    return t if t <= limit else limit


def build(*, seed: int, today: dt.date, progress_stream=None) -> dict[str, int]:
    """Build the charges of the demo orders (see the module's doc); returns rows per model."""
    rng = random.Random(f"aftersales-charges:{seed}")
    now = timezone.now()
    counts: dict[str, int] = {}
    with transaction.atomic():
        items = _price_list(today, now)
        counts[PriceItem._meta.label] = len(items)
        book = _PriceBook(list(PriceItem.objects.all()))
        markup = Decimal(str(services.setting("PART_PRICE_MARKUP", "1.5")))

        since = timezone.make_aware(dt.datetime.combine(today - dt.timedelta(days=QUOTE_DAYS), dt.time()))
        chargeable = Q(warranty_free=False, completed_at__gte=since) & ~Q(status=Status.CANCELLED)
        orders = list(WorkOrder.objects.filter(chargeable, quotes__isnull=True)
                      .values("id", "number", "node_id", "created_at", "completed_at", "warranty_kind",
                              "assignee__user_id", "unit__model__category_id").order_by("id"))
        repair_at = dict(OrderEvent.objects.filter(action="repair", order__in=WorkOrder.objects.filter(chargeable))
                         .values("order_id").annotate(t=Min("at")).values_list("order_id", "t"))
        requests = defaultdict(list)
        for r in (PartRequest.objects.filter(order__in=WorkOrder.objects.filter(chargeable))
                  .exclude(status=RequestStatus.RELEASED)
                  .values("id", "order_id", "part_id", "qty", "free", "warranty_reason", "unit_cost", "part__name",
                          "part__code", "part__unit_cost").order_by("id")):
            requests[r["order_id"]].append(r)

        progress = Progress(len(orders), "报价与收费", progress_stream) if progress_stream is not None else None
        quotes: list[Quote] = []
        lines_of: dict[int, list[QuoteLine]] = {}  # index in quotes → its lines
        pays: list[tuple[dict, int, Decimal]] = []  # (order, quote index, amount)
        for o in orders:
            cat = o["unit__model__category_id"]
            done = o["completed_at"]
            approved_at = repair_at.get(o["id"]) or done
            approved_at = approved_at - dt.timedelta(minutes=rng.randint(5, 40))
            approved_at = max(approved_at, o["created_at"] + dt.timedelta(minutes=1))
            rejected_first = rng.random() < REJECT_SHARE
            seq = 0
            for attempt in ((0, 1) if rejected_first else (1,)):
                seq += 1
                created = approved_at - dt.timedelta(minutes=rng.randint(3, 15) + (60 if attempt == 0 else 0))
                created = max(created, o["created_at"])
                day = timezone.localdate(created)
                lines = _lines(o, requests[o["id"]], book, day, cat, markup, rng, cheaper=attempt == 1 and rejected_first)
                total = sum((ln.amount for ln in lines), Decimal("0.00"))
                due = sum((ln.amount for ln in lines if not ln.free), Decimal("0.00"))
                q = Quote(order_id=o["id"], seq=seq, number=f"{o['number']}-Q{seq}", node_id=o["node_id"],
                          priced_on=day, warranty_kind=o["warranty_kind"], warranty_free=False, total=total,
                          chargeable=due, created_by_id=o["assignee__user_id"], created_at=created)
                via = ApprovedVia.SIGNATURE if rng.random() < SIGNATURE_SHARE else ApprovedVia.LINK
                if attempt == 0 or via == ApprovedVia.LINK:
                    q.sent_at = created + dt.timedelta(minutes=1)
                    q.expires_at = q.sent_at + dt.timedelta(hours=72)
                if attempt == 0:
                    q.status, q.decided_at = QuoteStatus.REJECTED, created + dt.timedelta(minutes=rng.randint(10, 50))
                    q.reject_reason = rng.choice(REJECT_REASONS)
                else:
                    q.status, q.decided_at, q.approved_via = QuoteStatus.APPROVED, approved_at, via
                    if via == ApprovedVia.SIGNATURE:
                        q.signed_by_id = o["assignee__user_id"]
                    if due > 0:
                        pays.append((o, len(quotes), due))
                lines_of[len(quotes)] = lines
                quotes.append(q)
            if progress:
                progress.advance()
        Quote.objects.bulk_create(quotes, batch_size=BATCH)
        all_lines = []
        for i, lines in lines_of.items():
            for ln in lines:
                ln.quote_id = quotes[i].pk
                all_lines.append(ln)
        QuoteLine.objects.bulk_create(all_lines, batch_size=BATCH)
        counts[Quote._meta.label] = len(quotes)
        counts[QuoteLine._meta.label] = len(all_lines)

        payments, refunds = _payments(pays, quotes, rng, now)
        counts[Payment._meta.label] = len(payments)
        counts[Refund._meta.label] = len(refunds)
        counts[ServiceCost._meta.label] = _service_costs(now)
        audited = [*items, *quotes, *payments, *refunds]
        counts["records.AuditEntry"] = audit_record_created_bulk(actor=None, action=AUDIT_ACTION, objs=audited,
                                                                 node_of=_node_of, at=now)
        if progress:
            progress.finish()
    return counts


def _node_of(obj) -> int | None:
    if isinstance(obj, Refund):
        return obj.payment.node_id
    return getattr(obj, "node_id", None)


def _lines(o: dict, reqs: list[dict], book: _PriceBook, day: dt.date, cat, markup: Decimal, rng,
           *, cheaper: bool) -> list[QuoteLine]:
    reason = services.warranty_label(o["warranty_kind"]) or "收费维修"
    out: list[QuoteLine] = []
    for r in reqs:
        item = book.on([services.price_key(PriceKind.PART, part_id=r["part_id"])], day)
        price = item.price if item else services.markup_price(r["part__unit_cost"] or Decimal(0))
        qty = Decimal(r["qty"])
        out.append(QuoteLine(kind=LineKind.PART, price_item=item, part_request_id=r["id"], code=r["part__code"][:40],
                             description=r["part__name"][:100], qty=qty, unit_price=price, amount=_money(price * qty),
                             unit_cost=r["unit_cost"], free=r["free"] is True,
                             reason=(r["warranty_reason"] or ("三包期内免费更换" if r["free"] else "三包期外收费"))[:200]))
    code = "PARTS" if reqs else ("INSPECT" if cheaper else "GENERAL")
    labour = book.on([services.price_key(PriceKind.LABOUR, code=code, category_id=cat),
                      services.price_key(PriceKind.LABOUR, code=code)], day)
    if labour is not None:
        qty = Decimal(1) if cheaper or rng.random() < 0.8 else Decimal("1.5")
        out.append(QuoteLine(kind=LineKind.LABOUR, price_item=labour, code=code, description=labour.label[:100],
                             qty=qty, unit_price=labour.price, amount=_money(labour.price * qty),
                             unit_cost=labour.cost_rate or Decimal(0), free=False, reason=f"三包期外：{reason}"))
    visit = book.on([services.price_key(PriceKind.VISIT, category_id=cat), services.price_key(PriceKind.VISIT)], day)
    if visit is not None:
        out.append(QuoteLine(kind=LineKind.VISIT, price_item=visit, code="VISIT", description=visit.label[:100],
                             qty=Decimal(1), unit_price=visit.price, amount=visit.price, free=False,
                             reason=f"三包期外：{reason}"))
    for i, ln in enumerate(out, start=1):
        ln.position = i
    return out


def _payments(pays, quotes: list[Quote], rng, now: dt.datetime) -> tuple[list[Payment], list[Refund]]:
    methods, weights = zip(*METHODS, strict=True)
    rows = []
    for o, qi, due in pays:
        at = _at_most(o["completed_at"] + dt.timedelta(minutes=rng.randint(1, 20)), now)
        method = rng.choices(methods, weights)[0]
        rows.append(Payment(order_id=o["id"], node_id=o["node_id"], quote_id=quotes[qi].pk, amount=due,
                            method=method, received_by_id=o["assignee__user_id"], received_at=at,
                            reference="" if method == PaymentMethod.CASH else f"{method[:2].upper()}{rng.randrange(10**11):011d}"))
    rows.sort(key=lambda p: (p.received_at, p.order_id))
    days = sorted({timezone.localdate(p.received_at) for p in rows})
    last = dict(ReceiptSequence.objects.filter(day__in=days).values_list("day", "last"))
    for p in rows:
        d = timezone.localdate(p.received_at)
        last[d] = last.get(d, 0) + 1
        p.receipt_no = f"SJ{d:%Y%m%d}{last[d]:06d}"
    refunds = []
    for p in rows:
        if rng.random() < REFUND_SHARE:
            amount = min(p.amount, _money(max(p.amount * Decimal("0.2"), Decimal(10))).quantize(Decimal(1)))
            p.refunded = _money(amount)
            refunds.append(Refund(payment=p, amount=p.refunded, reason=rng.choice(REFUND_REASONS),
                                  refunded_by_id=p.received_by_id,
                                  refunded_at=_at_most(p.received_at + dt.timedelta(days=rng.randint(1, 10)), now)))
    Payment.objects.bulk_create(rows, batch_size=BATCH)
    for r in refunds:
        r.payment_id = r.payment.pk
    Refund.objects.bulk_create(refunds, batch_size=BATCH)
    existing = set(ReceiptSequence.objects.filter(day__in=list(last)).values_list("day", flat=True))
    ReceiptSequence.objects.bulk_create([ReceiptSequence(day=d, last=n) for d, n in last.items() if d not in existing])
    for d in existing:
        ReceiptSequence.objects.filter(day=d, last__lt=last[d]).update(last=last[d])
    return rows, refunds


def _month_sql(column: str) -> str:
    """The first day of the local month of a timestamp column, in the database's dialect."""
    if connection.vendor == "postgresql":
        return f"(date_trunc('month', {column} AT TIME ZONE %s))::date"
    return f"date({column}, %s, 'start of month')"  # SQLite: UTC text + the zone's fixed offset


def _service_costs(now: dt.datetime) -> int:
    """The service cost of every completed or closed order without one, in one statement: parts
    consumed at cost, labour of the approved quote (else ``LABOUR_COST_PER_VISIT`` per visit),
    travel per visit; then the loaner cost of the few orders that had a loan."""
    per_visit = Decimal(str(services.setting("LABOUR_COST_PER_VISIT", 40)))
    travel_rate = Decimal(str(services.setting("TRAVEL_COST_PER_VISIT", 30)))
    tz = settings.TIME_ZONE
    if connection.vendor != "postgresql":
        off = timezone.localtime(now).utcoffset()
        tz = f"{int(off.total_seconds() // 60):+d} minutes"
    t = {m: m._meta.db_table for m in (ServiceCost, WorkOrder, PartRequest, Quote, QuoteLine)}
    done = "COALESCE(o.completed_at, o.closed_at)"
    sql = f"""
        INSERT INTO {t[ServiceCost]} (order_id, node_id, month, parts, labour, travel, loaner, total, visits,
                                      loan_days, computed_at)
        SELECT o.id, o.node_id, {_month_sql(done)}, ROUND(COALESCE(p.s, 0), 2),
               ROUND(COALESCE(l.s, %s * o.visit_count), 2), ROUND(%s * o.visit_count, 2), 0,
               ROUND(COALESCE(p.s, 0), 2) + ROUND(COALESCE(l.s, %s * o.visit_count), 2)
                 + ROUND(%s * o.visit_count, 2),
               o.visit_count, 0, %s
        FROM {t[WorkOrder]} o
        LEFT JOIN (SELECT order_id, SUM(qty * unit_cost) AS s FROM {t[PartRequest]}
                   WHERE status = %s GROUP BY order_id) p ON p.order_id = o.id
        LEFT JOIN (SELECT q.order_id, SUM(ql.qty * ql.unit_cost) AS s
                   FROM {t[Quote]} q JOIN {t[QuoteLine]} ql ON ql.quote_id = q.id
                   WHERE q.status = %s AND ql.kind = %s GROUP BY q.order_id) l ON l.order_id = o.id
        WHERE (o.completed_at IS NOT NULL OR o.status = %s)
          AND NOT EXISTS (SELECT 1 FROM {t[ServiceCost]} c WHERE c.order_id = o.id)"""
    params = [tz, per_visit, travel_rate, per_visit, travel_rate, now, RequestStatus.CONSUMED, QuoteStatus.APPROVED,
              LineKind.LABOUR, Status.CLOSED]
    with connection.cursor() as cur:
        cur.execute(sql, params)
        n = cur.rowcount
    from aftersales.assets.models import Loan

    for cost in ServiceCost.objects.filter(order__in=Loan.objects.values("order_id")):
        cost.loaner, cost.loan_days = services.loan_cost(cost.order_id, now)
        cost.total = cost.parts + cost.labour + cost.travel + cost.loaner
        cost.save(update_fields=["loaner", "loan_days", "total"])
    return n


def reset() -> int:
    """Delete the charges' demo rows (children first): service costs, refunds, payments, quote
    lines, quotes, the price list and the receipt sequences. The audit trail is kept."""
    total = 0
    with transaction.atomic():
        for qs in (ServiceCost.objects.all(), Refund.objects.all(), Payment.objects.all(), QuoteLine.objects.all(),
                   Quote.objects.all(), PriceItem.objects.all(), ReceiptSequence.objects.all()):
            total += qs._raw_delete(qs.db)
    return total
