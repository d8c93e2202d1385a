"""Pages: sign-up, upload, item (with a JSON status endpoint), history, delete, and private media."""

from __future__ import annotations

import uuid
from pathlib import Path

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.db.models import Prefetch
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from .charts import timeline_svg
from .forms import HistoryFilterForm, SignUpForm, UploadForm
from .models import Face, Item
from .reports import pdf_response, report_data
from .services import queue_delayed, submit_uploads
from .serving import serve_media
from .uploads import accepts_uploads, oversized_files, wants_json


def _visible_item(request: HttpRequest, item_id) -> Item:
    """The item if the user owns it or is staff; otherwise 404, so its existence is not even revealed."""
    return get_object_or_404(Item.objects.visible_to(request.user), pk=item_id)


def upload_refused(request: HttpRequest, messages_: list[str], status: int, form: UploadForm | None = None):
    """The upload page (or JSON for the page's script) listing why the upload was refused."""
    if wants_json(request):
        return JsonResponse({"ok": False, "errors": messages_}, status=status)
    context = {"form": form or UploadForm(), "rejections": messages_}
    return render(request, "detection/upload.html", context, status=status)


@require_http_methods(["GET", "POST"])
def signup(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        return redirect("upload")
    form = SignUpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = form.save()
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        messages.success(request, f"Welcome, {user.username}. Upload a photo or video to check it.")
        return redirect("upload")
    return render(request, "registration/signup.html", {"form": form})


@accepts_uploads  # detection.uploads.UploadGuardMiddleware refuses anonymous and oversize bodies unread
@login_required
@require_http_methods(["GET", "POST"])
def upload(request: HttpRequest) -> HttpResponse:
    if request.method == "GET":
        return render(request, "detection/upload.html", {"form": UploadForm()})

    form = UploadForm(request.POST, request.FILES, dropped=oversized_files(request), owner=request.user)
    if not form.is_valid():
        return upload_refused(request, form.rejections or form.errors.get("files", []), 400, form)

    notices = [staged.notice for staged in form.staged if staged.notice]
    try:
        submissions = submit_uploads(request.user, form.staged)
    finally:
        form.discard_staged()  # anything not turned into an item (no-op for the moved files)

    if len(submissions) == 1 and not form.rejections:
        target = submissions[0].item.get_absolute_url()
    else:
        target = reverse("history")
    for notice in notices:
        messages.info(request, notice)
    if queue_delayed(submissions):
        messages.warning(
            request,
            "The analysis queue is delayed: your upload is saved and will be analysed as soon as the queue "
            "is back, usually within a minute. This page updates itself.",
        )
    for submission in submissions:
        if submission.reused:
            messages.info(
                request, f"You already uploaded {submission.item.original_name}; showing that result."
            )
    if form.rejections:
        for rejection in form.rejections:
            messages.error(request, rejection)
        # Stay on the upload page so the refusals are read; the accepted files are linked from there.
        target = reverse("upload")
        for submission in submissions:
            messages.success(request, f"{submission.item.original_name} was accepted.")
    if wants_json(request):
        return JsonResponse(
            {
                "ok": True,
                "redirect": target,
                "items": [
                    {"id": str(s.item.pk), "url": s.item.get_absolute_url(), "reused": s.reused}
                    for s in submissions
                ],
                "rejections": form.rejections,
            }
        )
    return redirect(target)


@login_required
@require_GET
def item_detail(request: HttpRequest, item_id) -> HttpResponse:
    item = _visible_item(request, item_id)
    faces = list(item.faces.all())
    context = {
        "item": item,
        "faces": faces,
        "review": item.latest_review,
        "timeline_svg": timeline_svg(item.timeline, item.threshold, item.fake_probability)
        if item.kind == Item.Kind.VIDEO
        else "",
        "status_url": reverse("item_status", args=[item.pk]),
        "queue_position": item.queue_position(),
    }
    return render(request, "detection/item_detail.html", context)


def status_payload(item: Item) -> dict:
    """`verdict` is what the owner is told (a reviewer's decision first); `model_verdict` the model's."""
    review = item.latest_review
    return {
        "id": str(item.pk),
        "status": item.status,
        "status_display": item.get_status_display(),
        "stage": item.stage,
        "stage_display": item.stage_display,
        "progress": item.progress,
        "error": item.error,
        "verdict": item.shown_verdict,
        "verdict_display": item.shown_verdict_display,
        "model_verdict": item.verdict,
        "model_verdict_display": item.get_verdict_display() if item.verdict else "",
        "uncertain_reasons": item.uncertain_reasons,
        "strength": item.strength,
        "review": None if review is None else review.as_dict(),
        "fake_probability": item.fake_probability,
        "fake_percent": item.fake_percent,
        "finished": item.is_finished,
        "queue_position": item.queue_position(),
    }


@login_required
@require_GET
def item_status(request: HttpRequest, item_id) -> JsonResponse:
    item = _visible_item(request, item_id)
    response = JsonResponse(status_payload(item))
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_GET
def item_report(request: HttpRequest, item_id, fmt: str) -> HttpResponse:
    """The item's JSON or one-page PDF report (detection.reports), once its analysis has ended."""
    item = _visible_item(request, item_id)
    if not item.is_finished:
        raise Http404("The analysis has not finished yet")
    return pdf_response(item) if fmt == "pdf" else JsonResponse(report_data(item))


@login_required
@require_POST
def item_delete(request: HttpRequest, item_id) -> HttpResponse:
    item = _visible_item(request, item_id)
    name = item.original_name
    item.delete()  # detection.signals removes its files once the delete commits
    messages.success(request, f"Deleted {name} and its files.")
    return redirect("history")


# History columns a user may sort by: the query value and the field (a "-" prefix reverses).
HISTORY_SORTS = {
    "name": "original_name",
    "kind": "kind",
    "status": "status",
    "verdict": "verdict",
    "fake": "fake_probability",
    "uploaded": "created_at",
}
MAX_STATUS_IDS = 100


def _uuids(values: list[str]) -> list[uuid.UUID]:
    """The values that are item ids; anything else is ignored (it cannot name an item)."""
    ids = []
    for value in values:
        try:
            ids.append(uuid.UUID(value))
        except ValueError:
            continue
    return ids


def _history_ordering(sort: str) -> tuple[str, list[str]]:
    """The validated sort key (default: newest first) and the ORM ordering for it."""
    key = sort.lstrip("-")
    if key not in HISTORY_SORTS:
        sort, key = "-uploaded", "uploaded"
    prefix = "-" if sort.startswith("-") else ""
    return sort, [f"{prefix}{HISTORY_SORTS[key]}", "-created_at"]


def _sort_links(sort: str, filter_query: str) -> dict[str, dict]:
    """Per sortable column: the URL that sorts by it (reversed when it is the current sort) and aria-sort."""
    links = {}
    for key in HISTORY_SORTS:
        current = sort.lstrip("-") == key
        descending = sort.startswith("-")
        # A first click sorts names A-Z and numbers/dates biggest or newest first.
        if current:
            target = key if descending else f"-{key}"
        else:
            target = key if key in ("name", "kind", "status", "verdict") else f"-{key}"
        prefix = f"{filter_query}&" if filter_query else ""
        links[key] = {
            "url": f"?{prefix}sort={target}",
            "aria": ("descending" if descending else "ascending") if current else "none",
        }
    return links


@login_required
@require_GET
def history(request: HttpRequest) -> HttpResponse:
    filters = HistoryFilterForm(request.GET or None)
    sort, ordering = _history_ordering(request.GET.get("sort", ""))
    items = (
        Item.objects.filter(owner=request.user)
        .order_by(*ordering)
        .prefetch_related(Prefetch("faces", queryset=Face.objects.order_by("track")), "reviews")
    )
    items = filters.filter(items)
    page = Paginator(items, settings.HISTORY_PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    filter_query = query.copy()
    filter_query.pop("sort", None)
    context = {
        "filters": filters,
        "page": page,
        "items": page.object_list,
        "query": query.urlencode(),
        "filter_query": filter_query.urlencode(),
        "sort": sort,
        "sort_links": _sort_links(sort, filter_query.urlencode()),
        "has_any_item": bool(page.object_list) or request.user.items.exists(),
        "status_url": reverse("item_statuses"),
    }
    return render(request, "detection/history.html", context)


@login_required
@require_GET
def item_statuses(request: HttpRequest) -> JsonResponse:
    """Status of several items at once, for the history page to update itself; unknown ids are left out."""
    ids = _uuids(request.GET.getlist("id")[:MAX_STATUS_IDS])
    items = Item.objects.visible_to(request.user).filter(pk__in=ids)
    response = JsonResponse({"items": [status_payload(item) for item in items]})
    response["Cache-Control"] = "no-store"
    return response


@login_required
@require_POST
def items_delete(request: HttpRequest) -> HttpResponse:
    """Bulk delete from the history page: only the user's own items among the ids sent."""
    items = Item.objects.filter(owner=request.user, pk__in=_uuids(request.POST.getlist("ids")))
    count = len(items)
    for item in items:
        item.delete()  # one by one, so detection.signals removes each item's files
    if count:
        messages.success(request, f"Deleted {count} item{'s' if count != 1 else ''} and their files.")
    else:
        messages.info(request, "Select the items to delete first.")
    next_url = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(next_url, allowed_hosts={request.get_host()}):
        next_url = reverse("history")
    return redirect(next_url)


# --- Private media ---------------------------------------------------------------------------------------


@login_required
@require_GET
def item_original(request: HttpRequest, item_id) -> HttpResponse:
    item = _visible_item(request, item_id)
    return serve_media(request, item.original.name, item.original_name)


@login_required
@require_GET
def face_image(request: HttpRequest, item_id, face_id: int, which: str) -> HttpResponse:
    item = _visible_item(request, item_id)
    return serve_face_image(request, get_object_or_404(Face, pk=face_id, item=item), which)


def serve_face_image(request: HttpRequest, face: Face, which: str) -> HttpResponse:
    """A face's thumbnail or heatmap (for the page and the API), named after the upload it came from."""
    name = face.heatmap.name if which == "heatmap" else face.thumbnail.name
    download_name = f"{Path(face.item.original_name).stem} face {face.number} {which}{Path(name).suffix}"
    return serve_media(request, name, download_name)
