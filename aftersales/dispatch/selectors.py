"""Reads of dispatch: the ranked candidates for an order, a technician's day, free slots, settings.

Ranking (``candidates``). A technician can take the job (``eligible``) only when nothing
blocks them: they are an active technician of an outlet of the order's service centre, have
the skill for the unit's product category, hold a valid certificate where the job needs one
(``CertRequirement``; valid on the appointment day), have room left that day
(``max_jobs_per_day``) and no other booking overlapping the slot. Among those the score
prefers the outlet that covers the customer's district (the order's node), then the same
centre, then a light day, then a short way from the technician's outlet to the customer
(unknown coordinates count as a middling distance). Every blocker and every reason is a
sentence for the dispatcher; so is each ``warning``: an instrument the technician holds whose
calibration or inspection has lapsed (R-PART-2) is told, but does not block.

The whole ranking is a fixed number of queries whatever the number of technicians: loads
are counted in SQL, skills and roles are ``EXISTS`` sub-queries, certificates and the
clashing bookings are prefetched.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field

from django.db.models import Count, Exists, F, IntegerField, OuterRef, Prefetch, Q, Subquery, Value
from django.db.models.functions import Coalesce, Length
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from aftersales.assets.selectors import instrument_warning, overdue_instruments_of
from aftersales.core.errors import NotFound, ValidationFailed
from aftersales.org.models import Certification, Employee, Node, NodeKind, RoleAssignment
from aftersales.org.roles import Perm, Role
from aftersales.org.scope import holds_at, scoped
from aftersales.tickets.models import Status, WorkOrder

from .models import (
    DEFAULT_AUTO_DISPATCH,
    DEFAULT_MAX_JOBS_PER_DAY,
    DEFAULT_SLOT_MINUTES,
    Booking,
    CertRequirement,
    DispatchSetting,
)

# Visiting hours: technicians are booked between these times, every day of the week.
WORK_START = dt.time(8, 0)
WORK_END = dt.time(20, 0)
# Score weights (higher is better).
W_SAME_OUTLET = 40.0
W_SAME_CENTRE = 15.0
W_PER_JOB = 8.0  # subtracted per job already booked that day
W_DISTANCE = 20.0  # for 0 km, falling to 0 at DISTANCE_FAR_KM
DISTANCE_FAR_KM = 40.0
DISTANCE_UNKNOWN = W_DISTANCE / 2  # neither favoured nor penalised
STEP = dt.timedelta(minutes=30)  # granularity of the slots auto-dispatch tries
SEARCH_DAYS = 7  # auto-dispatch without a wished window looks this far ahead

WAITING = frozenset({Status.CLASSIFIED, Status.REOPENED})  # waiting for a technician
HELD = frozenset({Status.DISPATCHED, Status.ACCEPTED})  # dispatched, the visit not begun


# ---------------------------------------------------------------- small helpers

def local(t: dt.datetime) -> dt.datetime:
    return timezone.localtime(t)


def day_bounds(day: dt.date) -> tuple[dt.datetime, dt.datetime]:
    tz = timezone.get_current_timezone()
    start = dt.datetime.combine(day, dt.time(0), tz)
    return start, dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0), tz)


def fmt_window(a: dt.datetime | None, b: dt.datetime | None) -> str:
    """``2026-06-03 10:00–12:00`` (both ends on one day) or ``2026-06-03 22:00 – 2026-06-04 02:00``."""
    if a is None:
        return ""
    a = local(a)
    if b is None:
        return f"{a:%Y-%m-%d %H:%M}"
    b = local(b)
    if a.date() == b.date():
        return f"{a:%Y-%m-%d %H:%M}–{b:%H:%M}"
    return f"{a:%Y-%m-%d %H:%M} – {b:%Y-%m-%d %H:%M}"


def haversine_km(lat1, lng1, lat2, lng2) -> float:
    """Great-circle distance in km between two points given in degrees."""
    p1, p2 = math.radians(float(lat1)), math.radians(float(lat2))
    dp, dl = p2 - p1, math.radians(float(lng2) - float(lng1))
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371.0088 * math.asin(min(1.0, math.sqrt(h)))


def _ancestor_ids(path: str) -> list[int]:
    return [int(x) for x in path.strip("/").split("/") if x]


def centre_path(node: Node) -> str:
    """The path of the service centre an order's node belongs to (the node itself unless an outlet)."""
    if node.kind == NodeKind.OUTLET and node.parent_id is not None:
        return node.path[: node.path.rstrip("/").rfind("/") + 1]
    return node.path


# ---------------------------------------------------------------- settings

@dataclass(frozen=True)
class Effective:
    """The dispatch setting that applies at a node: its own row, else its nearest ancestor's,
    else the defaults. ``source_node_id`` is the node whose row applies (None: defaults)."""

    auto_dispatch: bool = DEFAULT_AUTO_DISPATCH
    max_jobs_per_day: int = DEFAULT_MAX_JOBS_PER_DAY
    slot_minutes: int = DEFAULT_SLOT_MINUTES
    source_node_id: int | None = None


DEFAULTS = Effective()


def _effective(rows: dict[int, DispatchSetting], path: str) -> Effective:
    for nid in reversed(_ancestor_ids(path)):
        s = rows.get(nid)
        if s is not None:
            return Effective(s.auto_dispatch, s.max_jobs_per_day, s.slot_minutes, nid)
    return DEFAULTS


def settings_for_nodes(nodes) -> dict[int, Effective]:
    """The effective setting of each node (one query)."""
    nodes = list({n.pk: n for n in nodes}.values())
    ids = {i for n in nodes for i in _ancestor_ids(n.path)}
    rows = {s.node_id: s for s in DispatchSetting.objects.filter(node_id__in=sorted(ids))} if ids else {}
    return {n.pk: _effective(rows, n.path) for n in nodes}


def effective_setting(node_id: int) -> Effective:
    """The setting that applies at ``node_id`` in one query (the receivers' check)."""
    target = Node.objects.filter(pk=node_id).values("path")[:1]
    s = (DispatchSetting.objects.annotate(target=Subquery(target)).filter(target__startswith=F("node__path"))
         .order_by(Length("node__path").desc()).first())
    if s is None:
        return DEFAULTS
    return Effective(s.auto_dispatch, s.max_jobs_per_day, s.slot_minutes, s.node_id)


def setting_get(user, node_id: int) -> tuple[Node, Effective]:
    node = Node.objects.filter(pk=node_id).first()
    if node is None or not holds_at(user, Perm.ORDER_DISPATCH, node.pk):
        raise NotFound()
    return node, settings_for_nodes([node])[node.pk]


# ---------------------------------------------------------------- the job and the pool

@dataclass
class Job:
    """What the ranking needs to know about an order."""

    order: WorkOrder
    category: object | None  # catalog.Category of the unit
    requirements: list  # CertRequirement rows that apply (distinct certificate types)
    centre_path: str
    lat: float | None
    lng: float | None
    place: str  # the district, for the sentences


def order_for_dispatch(user, order_id: int) -> WorkOrder:
    """The order if ``user`` may dispatch it (``user=None``: the system), else 404."""
    qs = WorkOrder.objects.select_related("unit__model__category", "address", "node", "assignee", "customer")
    if user is not None:
        qs = scoped(qs, user, Perm.ORDER_DISPATCH)
    o = qs.filter(pk=order_id).first()
    if o is None:
        raise NotFound()
    return o


def job_for(order: WorkOrder) -> Job:
    category = order.unit.model.category if order.unit_id else None
    reqs: list = []
    if category is not None:
        seen = set()
        for r in (CertRequirement.objects.filter(category=category).filter(Q(order_type="") | Q(order_type=order.type))
                  .select_related("cert_type").order_by("cert_type__code")):
            if r.cert_type_id not in seen:
                seen.add(r.cert_type_id)
                reqs.append(r)
    a = order.address
    lat = float(a.lat) if a is not None and a.lat is not None else None
    lng = float(a.lng) if a is not None and a.lng is not None else None
    place = (a.district if a is not None else "") or order.node.district or order.node.name
    return Job(order=order, category=category, requirements=reqs, centre_path=centre_path(order.node),
               lat=lat, lng=lng, place=place)


def pool(job: Job, *, user=None, employee_id: int | None = None, load_day: dt.date | None = None,
         booked_range: tuple[dt.datetime, dt.datetime] | None = None, exclude: tuple = (), lock: bool = False):
    """The technicians who could take ``job`` (or the one ``employee_id``, whoever they are,
    so that the blockers explain why not), annotated for ``evaluate``:

    ``is_technician``, ``has_skill``, ``load_day`` (active bookings starting on ``load_day``,
    other orders), ``relevant_certs`` (certificates of the required types) and ``booked``
    (active bookings of other orders overlapping ``booked_range``)."""
    order = job.order
    qs = Employee.objects.select_related("node")
    if employee_id is not None:
        qs = qs.filter(pk=employee_id)
    else:
        qs = qs.filter(active=True, node__kind=NodeKind.OUTLET, node__active=True,
                       node__path__startswith=job.centre_path)
    if user is not None:
        qs = scoped(qs, user, Perm.ORDER_DISPATCH)
    if exclude:
        qs = qs.exclude(pk__in=list(exclude))
    qs = qs.annotate(is_technician=Exists(RoleAssignment.objects.filter(user_id=OuterRef("user_id"),
                                                                         role=Role.TECHNICIAN)))
    if employee_id is None:
        qs = qs.filter(is_technician=True)
    if job.category is not None:
        through = Employee.skills.through
        qs = qs.annotate(has_skill=Exists(through.objects.filter(employee_id=OuterRef("pk"),
                                                                  category_id=job.category.pk)))
    else:
        qs = qs.annotate(has_skill=Value(True))
    if load_day is not None:
        a, b = day_bounds(load_day)
        count = (Booking.objects.filter(employee_id=OuterRef("pk"), active=True, starts_at__gte=a, starts_at__lt=b)
                 .exclude(order_id=order.pk).order_by().values("employee_id").annotate(n=Count("pk")).values("n"))
        qs = qs.annotate(load_day=Coalesce(Subquery(count, output_field=IntegerField()), 0))
    prefetch = []
    if job.requirements:
        prefetch.append(Prefetch(
            "certifications", to_attr="relevant_certs",
            queryset=Certification.objects.filter(type_id__in=[r.cert_type_id for r in job.requirements])
            .select_related("type").order_by("expires_on")))
    if booked_range is not None:
        a, b = booked_range
        prefetch.append(Prefetch(
            "bookings", to_attr="booked",
            queryset=Booking.objects.filter(active=True, starts_at__lt=b, ends_at__gt=a).exclude(order_id=order.pk)
            .select_related("order").order_by("starts_at")))
    if prefetch:
        qs = qs.prefetch_related(*prefetch)
    if lock:
        qs = qs.select_for_update(of=("self",))
    return qs.order_by("employee_no")


# ---------------------------------------------------------------- evaluating one technician

@dataclass
class Candidate:
    employee: Employee
    node: Node
    score: float = 0.0
    eligible: bool = True
    blockers: list[str] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    load_today: int = 0
    distance_km: float | None = None
    same_outlet: bool = False
    clashes: list = field(default_factory=list)  # Bookings overlapping the slot
    clash_blockers: list[str] = field(default_factory=list)  # the part of ``blockers`` they cause
    warnings: list[str] = field(default_factory=list)  # told to the dispatcher, not blocking (overdue instruments)
    overdue_tools: list = field(default_factory=list)  # assets.Tool rows the warnings are about

    @property
    def field_blockers(self) -> list[str]:
        """The blockers other than a clash (a clash is a 409; these are a 400 on ``employee_id``)."""
        return [b for b in self.blockers if b not in self.clash_blockers]


def _day_words(on: dt.date, today: dt.date) -> str:
    return str(_("今日")) if on == today else on.isoformat()


def evaluate(job: Job, e: Employee, *, on: dt.date, load: int, max_jobs: int, clashes=(),
             today: dt.date | None = None) -> Candidate:
    """Blockers, reasons and score of technician ``e`` (from ``pool``) for ``job`` on day ``on``."""
    today = today or timezone.localdate()
    order = job.order
    c = Candidate(employee=e, node=e.node, load_today=load, same_outlet=e.node_id == order.node_id)
    blockers, reasons = c.blockers, c.reasons

    if not e.active:
        blockers.append(str(_("该员工已停用。")))
    if not getattr(e, "is_technician", True):
        blockers.append(str(_("该员工不是技术支持工程师。")))
    if not e.node.path.startswith(job.centre_path):
        blockers.append(str(_("不属于本工单所在的服务中心。")))
    if job.category is not None:
        if getattr(e, "has_skill", False):
            reasons.append(str(_("具备「%(category)s」维修技能") % {"category": job.category.display_name}))
        else:
            blockers.append(str(_("不具备「%(category)s」维修技能") % {"category": job.category.display_name}))
    certs = getattr(e, "relevant_certs", [])
    for r in job.requirements:
        mine = [x for x in certs if x.type_id == r.cert_type_id]
        valid = [x for x in mine if x.issued_on <= on <= x.expires_on]
        if valid:
            best = max(valid, key=lambda x: x.expires_on)
            reasons.append(str(_("持有有效的 %(cert)s（有效期至 %(date)s）")
                               % {"cert": r.cert_type.name, "date": best.expires_on.isoformat()}))
        elif mine and max(x.expires_on for x in mine) < on:
            last = max(x.expires_on for x in mine)
            blockers.append(str(_("缺少有效的 %(cert)s（已于 %(date)s 过期）")
                                % {"cert": r.cert_type.name, "date": last.isoformat()}))
        else:
            blockers.append(str(_("缺少有效的 %(cert)s") % {"cert": r.cert_type.name}))
    if order.assignee_id == e.pk and order.status in HELD:
        blockers.append(str(_("已是此工单的技师。")))
    day = _day_words(on, today)
    if load >= max_jobs:
        blockers.append(str(_("%(day)s已满 %(n)s 单") % {"day": day, "n": max_jobs}))
    else:
        reasons.append(str(_("%(day)s已有 %(n)s 单") % {"day": day, "n": load}))
    for b in clashes:
        msg = str(_("该时段已有工单 %(number)s（%(window)s）")
                  % {"number": b.order.number, "window": fmt_window(b.starts_at, b.ends_at)})
        c.clashes.append(b)
        c.clash_blockers.append(msg)
        blockers.append(msg)

    score = 0.0
    if c.same_outlet:
        score += W_SAME_OUTLET
        reasons.append(str(_("所属网点负责客户所在区域（%(place)s）") % {"place": job.place}))
    elif e.node.path.startswith(job.centre_path):
        score += W_SAME_CENTRE
        reasons.append(str(_("同一服务中心的网点（%(node)s）") % {"node": e.node.name}))
    score -= W_PER_JOB * load
    if job.lat is not None and e.node.lat is not None and e.node.lng is not None:
        c.distance_km = round(haversine_km(e.node.lat, e.node.lng, job.lat, job.lng), 1)
        score += W_DISTANCE * max(0.0, 1 - c.distance_km / DISTANCE_FAR_KM)
        reasons.append(str(_("距离约 %(km)s km") % {"km": c.distance_km}))
    else:
        score += DISTANCE_UNKNOWN
        reasons.append(str(_("距离未知（缺少坐标）")))
    c.score = round(score, 1)
    c.eligible = not blockers
    return c


def rank_key(c: Candidate):
    return (not c.eligible, -c.score, c.load_today, c.distance_km if c.distance_km is not None else math.inf,
            c.employee.employee_no)


def _window(starts_at, ends_at) -> tuple[dt.datetime | None, dt.datetime | None]:
    if starts_at is not None and timezone.is_naive(starts_at):
        starts_at = timezone.make_aware(starts_at)
    if ends_at is not None and timezone.is_naive(ends_at):
        ends_at = timezone.make_aware(ends_at)
    errors: dict = {}
    if (starts_at is None) != (ends_at is None):
        errors["ends_at" if ends_at is None else "starts_at"] = [_("请同时填写开始和结束时间。")]
    elif starts_at is not None and ends_at <= starts_at:
        errors["ends_at"] = [_("预约结束时间须晚于开始时间。")]
    if errors:
        raise ValidationFailed(errors)
    return starts_at, ends_at


def evaluate_pool(job: Job, emps: list[Employee], *, on: dt.date, today: dt.date | None = None) -> list[Candidate]:
    """``evaluate`` each technician of ``pool`` (annotated with ``load_day``, prefetched ``booked``),
    with a warning for each instrument they hold whose calibration or inspection has lapsed by
    the day of the visit (R-PART-2: warned, not blocked; one query for the whole pool)."""
    settings = settings_for_nodes([e.node for e in emps])
    overdue = overdue_instruments_of([e.pk for e in emps], on=on) if emps else {}
    out = []
    for e in emps:
        c = evaluate(job, e, on=on, load=e.load_day, max_jobs=settings[e.node_id].max_jobs_per_day,
                     clashes=getattr(e, "booked", ()), today=today)
        c.overdue_tools = list(overdue.get(e.pk, ()))
        c.warnings = [instrument_warning(t) for t in c.overdue_tools]
        out.append(c)
    return out


def candidates(user, order_id: int, starts_at: dt.datetime | None = None, ends_at: dt.datetime | None = None,
               limit: int = 10) -> list[Candidate]:
    """The technicians for an order, best first (the eligible ones before the others). With a
    slot, a technician booked in it is blocked and the load is that day's; without, today's."""
    starts_at, ends_at = _window(starts_at, ends_at)
    order = order_for_dispatch(user, order_id)
    job = job_for(order)
    today = timezone.localdate()
    on = timezone.localdate(starts_at) if starts_at else today
    emps = list(pool(job, user=user, load_day=on, booked_range=(starts_at, ends_at) if starts_at else None))
    out = sorted(evaluate_pool(job, emps, on=on, today=today), key=rank_key)
    return out[: max(1, min(int(limit), 100))]


# ---------------------------------------------------------------- a technician's day

def technician_get(user, employee_id: int) -> Employee:
    """A technician in ``user``'s dispatch scope, else 404."""
    qs = Employee.objects.select_related("node", "user")
    if user is not None:
        qs = scoped(qs, user, Perm.ORDER_DISPATCH)
    e = qs.filter(pk=employee_id).first()
    if e is None:
        raise NotFound()
    return e


def _bookings_of_day(employee_id: int, day: dt.date):
    a, b = day_bounds(day)
    return (Booking.objects.filter(employee_id=employee_id, active=True, starts_at__lt=b, ends_at__gt=a)
            .order_by("starts_at", "id"))


def technician_schedule(user, employee_id: int, day: dt.date | None = None) -> list[Booking]:
    """The technician's active bookings overlapping ``day`` (today), by start, with their orders."""
    e = technician_get(user, employee_id)
    day = day or timezone.localdate()
    return list(_bookings_of_day(e.pk, day).select_related("order__customer", "order__address"))


def free_slots(employee: Employee, day: dt.date, slot_minutes: int | None = None, *,
               now: dt.datetime | None = None) -> list[tuple[dt.datetime, dt.datetime]]:
    """The slots of ``slot_minutes`` (the outlet's setting) from 08:00 to 20:00 on ``day`` that
    have not begun and overlap none of the technician's bookings; none when the day is full."""
    now = now or timezone.now()
    eff = settings_for_nodes([employee.node])[employee.node_id]
    minutes = int(slot_minutes or eff.slot_minutes)
    if minutes <= 0:
        return []
    tz = timezone.get_current_timezone()
    booked = list(_bookings_of_day(employee.pk, day).values_list("starts_at", "ends_at"))
    a0, b0 = day_bounds(day)
    if sum(1 for s, _e in booked if a0 <= s < b0) >= eff.max_jobs_per_day:
        return []
    out = []
    t = dt.datetime.combine(day, WORK_START, tz)
    end_of_day = dt.datetime.combine(day, WORK_END, tz)
    step = dt.timedelta(minutes=minutes)
    while t + step <= end_of_day:
        if t >= now and not any(s < t + step and e > t for s, e in booked):
            out.append((t, t + step))
        t += step
    return out


# ---------------------------------------------------------------- auto-dispatch planning

@dataclass
class Plan:
    candidate: Candidate | None
    starts_at: dt.datetime | None = None
    ends_at: dt.datetime | None = None
    reason: str = ""  # why nobody fits


def _ceil(t: dt.datetime, step: dt.timedelta) -> dt.datetime:
    t = local(t).replace(second=0, microsecond=0)
    base = t.replace(hour=0, minute=0)
    n = math.ceil((t - base) / step)
    return base + n * step


def _starts(a: dt.datetime, b: dt.datetime, length: dt.timedelta):
    """Start times every 30 minutes from ``a`` such that [start, start+length) lies in [a, b]
    and within the visiting hours of its day."""
    tz = timezone.get_current_timezone()
    t = _ceil(a, STEP)
    if t + length > b:  # a short window off the half-hours: its own start
        t = _ceil(a, dt.timedelta(minutes=1))
    while t + length <= b:
        day = t.date()
        lo = dt.datetime.combine(day, WORK_START, tz)
        hi = dt.datetime.combine(day, WORK_END, tz)
        if t < lo:
            t = lo
            continue
        if t + length > hi:
            t = dt.datetime.combine(day + dt.timedelta(days=1), WORK_START, tz)
            continue
        yield t
        t += STEP


def decliners(order_id: int) -> set[int]:
    """Technicians who declined this order before (auto-dispatch does not offer it to them again)."""
    from aftersales.tickets.models import OrderEvent

    out = set()
    for d in OrderEvent.objects.filter(order_id=order_id, action="decline").values_list("data", flat=True):
        if isinstance(d, dict) and d.get("previous_assignee"):
            out.add(int(d["previous_assignee"]))
    return out


def plan_auto(order: WorkOrder, *, now: dt.datetime | None = None) -> Plan:
    """The best eligible technician and their first free slot: within the wished window when it
    is still ahead, else in the visiting hours of the next days. Days are tried in order; on
    the first day where someone eligible is free, the best-ranked of them at their first free
    slot that day (the covering outlet's technician an hour later rather than a far one now)."""
    now = now or timezone.now()
    job = job_for(order)
    eff = effective_setting(order.node_id)
    length = dt.timedelta(minutes=eff.slot_minutes)
    earliest = now + dt.timedelta(minutes=30)  # time to get there
    if order.wish_to is not None and order.wish_to > earliest + STEP:
        a, b = max(order.wish_from or earliest, earliest), order.wish_to
        if b - a < length:
            length = b - a
        in_wish = True
    else:
        a, b = earliest, earliest + dt.timedelta(days=SEARCH_DAYS)
        in_wish = False
    first_day, last_day = timezone.localdate(a), timezone.localdate(b)
    range_a, range_b = day_bounds(first_day)[0], day_bounds(last_day)[1]
    emps = list(pool(job, booked_range=(range_a, range_b), exclude=tuple(decliners(order.pk))))
    if not emps:
        return Plan(None, reason=str(_("本服务中心没有可派的技术支持工程师。")))
    settings = settings_for_nodes([e.node for e in emps])
    today = timezone.localdate(now)
    by_day: dict[dt.date, list[Candidate]] = {}

    def day_candidates(day: dt.date) -> list[Candidate]:
        if day not in by_day:
            d0, d1 = day_bounds(day)
            cs = []
            for e in emps:
                load = sum(1 for x in e.booked if d0 <= x.starts_at < d1)
                c = evaluate(job, e, on=day, load=load, max_jobs=settings[e.node_id].max_jobs_per_day, today=today)
                if c.eligible:
                    cs.append(c)
            by_day[day] = sorted(cs, key=rank_key)
        return by_day[day]

    starts = list(_starts(a, b, length))
    if not starts:
        return Plan(None, reason=str(_("客户期望的时段（%(window)s）不在上门服务时间（%(from)s–%(to)s）内。")
                                     % {"window": fmt_window(order.wish_from, order.wish_to),
                                        "from": f"{WORK_START:%H:%M}", "to": f"{WORK_END:%H:%M}"}))
    any_qualified = False
    days: dict[dt.date, list[dt.datetime]] = {}
    for t in starts:
        days.setdefault(t.date(), []).append(t)
    for day, times in days.items():  # the earliest day with a free slot; on it, the best technician
        cs = day_candidates(day)
        any_qualified = any_qualified or bool(cs)
        for c in cs:
            for t in times:
                if not any(x.starts_at < t + length and x.ends_at > t for x in c.employee.booked):
                    return Plan(c, t, t + length)
    if not any_qualified:
        return Plan(None, reason=str(_("没有符合技能、证书要求且当日仍有余量的技师。")))
    if in_wish:
        return Plan(None, reason=str(_("客户期望的时段（%(window)s）内没有空闲的技师。")
                                     % {"window": fmt_window(order.wish_from, order.wish_to)}))
    return Plan(None, reason=str(_("未来 %(days)s 天内没有空闲的技师。") % {"days": SEARCH_DAYS}))
