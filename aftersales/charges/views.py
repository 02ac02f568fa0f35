"""Pages of the charges.

- ``prices`` (``/charges/prices/``): the price list as of a date, with the form to set a price
  from a date (``catalog.edit`` at headquarters).
- ``quote_public_page`` (``/charges/q/<token>/``): PUBLIC. The customer opens the link from the
  SMS on a phone without logging in: the order number, the lines free or chargeable, the totals;
  approve, or reject with a reason. Its own minimal layout. No CSRF check (the unguessable token
  in the URL is the only credential, as on the survey page). Used or expired links answer 410,
  unknown ones 404.
- the forms of the panels (``panels.py``) on the order page and the technician's job page:
  quote, send, sign (the signature pad posts a PNG; htmx-style requests get the panel back),
  payment, refund; each redirects back to ``next`` (or the order page) with a message, or
  shows what was wrong with a 4xx.
- ``receipt`` (``/charges/orders/<id>/receipt/<payment id>.pdf``): the receipt PDF.
"""

from __future__ import annotations

import datetime as dt

from django.contrib import messages
from django.http import Http404, HttpResponse
from django.shortcuts import redirect, render
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from aftersales.catalog.models import Category
from aftersales.core.errors import DomainError, NotFound, PermissionDenied, ValidationFailed
from aftersales.core.pagination import keyset_page
from aftersales.org.roles import Perm
from aftersales.org.scope import principal
from aftersales.parts.models import Part
from aftersales.web.permissions import is_htmx, require_perm

from . import panels, receipt, selectors, services
from .models import PriceKind

PAGE_SIZE = 50


def _errors(e: DomainError) -> list[str]:
    out = [f"{msg}" for msgs in e.errors.values() for msg in msgs]
    return out or [str(e.message)]


# ---------------------------------------------------------------- the customer's page

def _public(response: HttpResponse) -> HttpResponse:
    """The token is in the URL: keep it out of Referer headers, caches and search engines."""
    response["Referrer-Policy"] = "no-referrer"
    response["Cache-Control"] = "no-store, private"
    response["X-Robots-Tag"] = "noindex, nofollow"
    return response


def _closed(request, message, status: int) -> HttpResponse:
    return _public(render(request, "charges/quote_closed.html", {"message": message, "status": status},
                          status=status))


@csrf_exempt
@require_http_methods(["GET", "POST"])
def quote_public_page(request, token: str):
    try:
        q = selectors.quote_public(token)
    except services.Gone as e:
        return _closed(request, e.message, 410)
    except NotFound as e:
        return _closed(request, e.message, 404)
    errors: dict = {}
    status = 200
    reason = ""
    if request.method == "POST":
        action = request.POST.get("action")
        reason = request.POST.get("reason", "")
        if action not in ("approve", "reject"):
            errors = {"action": [_("请选择确认或拒绝报价。")]}
            status = 400
        else:
            try:
                done = services.quote_answer(token, approve=action == "approve", reason=reason)
            except services.Gone as e:
                return _closed(request, e.message, 410)
            except NotFound as e:
                return _closed(request, e.message, 404)
            except ValidationFailed as e:
                errors = {k: [str(m) for m in msgs] for k, msgs in e.errors.items()}
                status = 400
            else:
                return _public(render(request, "charges/quote_done.html", {
                    "quote": done, "approved": done.status == "approved",
                    "message": services.GONE_MESSAGES[done.status]}))
    o = q.order
    ctx = {"quote": q, "order": o, "lines": list(q.lines.all()),
           "product": o.unit.model.name if o.unit_id else "",
           "technician": o.assignee.name if o.assignee_id else "", "errors": errors, "reason": reason,
           "free_total": q.total - q.chargeable}
    return _public(render(request, "charges/quote_public.html", ctx, status=status))


# ---------------------------------------------------------------- the price list

def _may_edit_prices(user) -> bool:
    p = principal(user)
    return p.can(Perm.CATALOG_EDIT) and p.node_ids_for(Perm.CATALOG_EDIT) is None


def _price_ctx(request, *, form=None, errors=None) -> dict:
    on_raw = request.GET.get("on") or ""
    kind = request.GET.get("kind") or ""
    error = None
    try:
        on = dt.date.fromisoformat(on_raw) if on_raw else timezone.localdate()
    except ValueError:
        on, error = timezone.localdate(), _("日期格式不正确，应为 YYYY-MM-DD。")
    if kind not in PriceKind.values:
        kind = ""
    qs = selectors.price_list_qs(on=on, kind=kind or None, q=request.GET.get("q") or None)
    try:
        page = keyset_page(qs, ordering=selectors.PRICE_ORDERING, cursor=request.GET.get("cursor") or None,
                           limit=PAGE_SIZE)
    except ValidationFailed:  # a stale or forged cursor: the first page
        page = keyset_page(qs, ordering=selectors.PRICE_ORDERING, cursor=None, limit=PAGE_SIZE)
    params = request.GET.copy()
    params.pop("cursor", None)
    return {
        "items": page.items, "next_cursor": page.next_cursor, "on": on, "kind": kind, "q": request.GET.get("q", ""),
        "kinds": PriceKind.choices, "error": error, "today": timezone.localdate(),
        "may_edit": _may_edit_prices(request.user), "form": form or {}, "errors": errors or {},
        "parts": Part.objects.filter(active=True).order_by("code").only("id", "code", "name")[:500],
        "categories": Category.objects.order_by("code").only("id", "code", "name"),
        "base_query": params.urlencode(),
        "markup": services.setting("PART_PRICE_MARKUP", "1.5"),
    }


@require_GET
@require_perm(Perm.CATALOG_VIEW)
def prices(request):
    return render(request, "charges/prices.html", _price_ctx(request))


@require_POST
@require_perm(Perm.CATALOG_EDIT)
def price_set_view(request):
    form = {k: request.POST.get(k, "") for k in ("kind", "part_id", "code", "name", "category_id", "price",
                                                   "cost_rate", "valid_from", "valid_to", "note")}
    try:
        item = services.price_set(
            user=request.user, kind=form["kind"], price=form["price"], valid_from=form["valid_from"],
            part_id=form["part_id"] or None, code=form["code"], name=form["name"],
            category_id=form["category_id"] or None, cost_rate=form["cost_rate"] or None,
            valid_to=form["valid_to"] or None, note=form["note"])
    except (ValidationFailed, PermissionDenied) as e:
        errors = {k: [str(m) for m in msgs] for k, msgs in e.errors.items()} or {"__all__": [str(e.message)]}
        return render(request, "charges/prices.html", _price_ctx(request, form=form, errors=errors), status=e.status)
    messages.success(request, _("已设置 %(label)s 的价格 %(price)s 元，%(date)s 起生效。") % {
        "label": item.label, "price": item.price, "date": item.valid_from})
    return redirect(f"{reverse('charges:prices')}?on={item.valid_from}")


# ---------------------------------------------------------------- the panels' forms

def _order_url(order_id: int, tech: bool) -> str:
    try:
        return reverse("web:tech_job" if tech else "web:order_detail", args=[order_id])
    except NoReverseMatch:
        return "/"


def _next(request, order_id: int) -> str:
    nxt = request.POST.get("next") or request.GET.get("next") or ""
    if nxt and url_has_allowed_host_and_scheme(nxt, allowed_hosts={request.get_host()},
                                               require_https=request.is_secure()):
        return nxt
    return _order_url(order_id, tech=principal(request.user).can(Perm.ORDER_WORK)
                      and not principal(request.user).can(Perm.ORDER_VIEW))


def _fail(request, order_id: int, e: DomainError) -> HttpResponse:
    if isinstance(e, NotFound):
        raise Http404(str(e.message))
    return render(request, "web/form_error.html",
                  {"errors": _errors(e), "back": _next(request, order_id)}, status=e.status)


def _order_of_quote(quote_id: int) -> int:
    from .models import Quote

    order_id = Quote.objects.filter(pk=quote_id).values_list("order_id", flat=True).first()
    if order_id is None:
        raise Http404
    return order_id


@require_POST
@require_perm(Perm.ORDER_WORK, Perm.CHARGE_HANDLE)
def quote_create_view(request, order_id: int):
    post = request.POST
    labour = [{"code": code, "qty": post.get(f"qty_{code}") or "1"} for code in post.getlist("labour") if code]
    extra = []
    if (post.get("extra_description") or "").strip() or (post.get("extra_price") or "").strip():
        extra.append({"description": post.get("extra_description", ""), "qty": post.get("extra_qty") or "1",
                      "unit_price": post.get("extra_price", "")})
    try:
        q = services.quote_create(user=request.user, order_id=order_id, labour_codes=labour,
                                  visit_fee=post.get("visit_fee") == "1", extra=extra)
    except DomainError as e:
        return _fail(request, order_id, e)
    messages.success(request, _("已生成报价 %(quote)s：合计 %(total)s 元，应收 %(due)s 元。") % {
        "quote": q.number, "total": services.yuan(q.total), "due": services.yuan(q.chargeable)})
    return redirect(_next(request, order_id))


@require_POST
@require_perm(Perm.ORDER_WORK, Perm.CHARGE_HANDLE)
def quote_send_view(request, quote_id: int):
    order_id = _order_of_quote(quote_id)
    try:
        out = services.quote_send(user=request.user, quote_id=quote_id)
    except DomainError as e:
        return _fail(request, order_id, e)
    messages.success(request, _("报价 %(quote)s 已短信发送客户确认，链接 %(hours)s 小时内有效。") % {
        "quote": out.quote.number, "hours": services.setting("QUOTE_LINK_TTL_HOURS", 72)})
    return redirect(_next(request, order_id))


@require_POST
@require_perm(Perm.ORDER_WORK, Perm.CHARGE_HANDLE)
def quote_sign_view(request, quote_id: int):
    """The signature pad's PNG (``signature``). From the pad (``HX-Request``) the answer is the
    technician's charges panel, which replaces the old one; otherwise a redirect."""
    order_id = _order_of_quote(quote_id)
    upload = request.FILES.get("signature")
    data = upload.read(services.SIGNATURE_MAX_BYTES + 1) if upload is not None else b""
    try:
        q = services.quote_sign(user=request.user, quote_id=quote_id, signature_png_bytes=data)
    except DomainError as e:
        if is_htmx(request) and not isinstance(e, NotFound):
            return HttpResponse(_panel_for(request, order_id, error="；".join(_errors(e))), status=e.status)
        return _fail(request, order_id, e)
    flash = _("客户已签名确认报价 %(quote)s，可以开始维修。") % {"quote": q.number}
    if is_htmx(request):
        return HttpResponse(_panel_for(request, order_id, flash=flash))
    messages.success(request, flash)
    return redirect(_next(request, order_id))


def _panel_for(request, order_id: int, **extra) -> str:
    order = selectors.order_for(request.user, order_id)
    return panels.tech_panel(request, order, **extra) or panels.order_panel(request, order, **extra)


@require_POST
@require_perm(Perm.ORDER_WORK, Perm.CHARGE_HANDLE)
def payment_view(request, order_id: int):
    try:
        p = services.payment_record(user=request.user, order_id=order_id, amount=request.POST.get("amount", ""),
                                    method=request.POST.get("method", ""),
                                    reference=request.POST.get("reference", ""))
    except DomainError as e:
        return _fail(request, order_id, e)
    messages.success(request, _("已收款 %(amount)s 元（%(method)s），收据号 %(receipt)s。") % {
        "amount": services.yuan(p.amount), "method": p.get_method_display(), "receipt": p.receipt_no})
    return redirect(_next(request, order_id))


@require_POST
@require_perm(Perm.CHARGE_HANDLE)
def refund_view(request, payment_id: int):
    from .models import Payment

    order_id = Payment.objects.filter(pk=payment_id).values_list("order_id", flat=True).first()
    if order_id is None:
        raise Http404
    try:
        r = services.refund_record(user=request.user, payment_id=payment_id, amount=request.POST.get("amount", ""),
                                   reason=request.POST.get("reason", ""))
    except DomainError as e:
        return _fail(request, order_id, e)
    messages.success(request, _("已退款 %(amount)s 元。") % {"amount": services.yuan(r.amount)})
    return redirect(_next(request, order_id))


# ---------------------------------------------------------------- files

@require_GET
@require_perm(Perm.ORDER_VIEW, Perm.ORDER_WORK, Perm.CHARGE_HANDLE)
def receipt_view(request, order_id: int, payment_id: int):
    p = selectors.payment_get(request.user, payment_id, order_id=order_id)
    try:
        data = receipt.receipt_pdf(p, user=request.user)
    except receipt.ReceiptFontMissing as e:
        return render(request, "web/form_error.html", {"errors": [str(e.message)],
                                                           "back": _order_url(order_id, False)}, status=503)
    resp = HttpResponse(data, content_type="application/pdf")
    resp["Content-Disposition"] = f'inline; filename="{p.receipt_no}.pdf"'
    resp["Cache-Control"] = "private, no-store"
    resp["X-Content-Type-Options"] = "nosniff"
    return resp


@require_GET
@require_perm(Perm.ORDER_VIEW, Perm.ORDER_WORK, Perm.CHARGE_HANDLE)
def quote_signature(request, quote_id: int):
    q = selectors.quote_get(request.user, quote_id)
    if not q.signature:
        raise Http404
    try:
        f = q.signature.open("rb")
    except (FileNotFoundError, OSError):
        raise Http404 from None
    from django.http import FileResponse

    resp = FileResponse(f, content_type="image/png")
    resp["Cache-Control"] = "private, max-age=3600"
    resp["X-Content-Type-Options"] = "nosniff"
    return resp

