"""Admin: all items, all review decisions, and the review queue of flagged items."""

from __future__ import annotations

from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Exists, OuterRef, QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.formats import date_format
from django.utils.html import format_html, format_html_join
from django.utils.safestring import mark_safe
from django.utils.timezone import localtime

from .forms import ReviewNoteForm
from .models import Face, FlaggedItem, Item, Review
from .services import record_review

# The queue shows this many face thumbnails in one row per item, then "+N": a crowd photo must not stretch
# its row or push the other columns out of view at 1,400 px.
QUEUE_FACES_SHOWN = 3


def face_thumbnails_html(item: Item) -> str:
    faces = [face for face in item.faces.all() if face.thumbnail]
    if not faces:
        return "—"
    thumbnails = format_html_join(
        "",
        '<a href="{}" title="face {}: {}% fake"><img src="{}" alt="face {}" '
        'style="height:48px;width:48px;object-fit:cover;margin:0 4px 0 0;border-radius:4px"></a>',
        (
            (
                reverse("face_thumbnail", args=[item.pk, face.pk]),
                face.track + 1,
                face.fake_percent,
                reverse("face_thumbnail", args=[item.pk, face.pk]),
                face.track + 1,
            )
            for face in faces[:QUEUE_FACES_SHOWN]
        ),
    )
    more = len(faces) - QUEUE_FACES_SHOWN
    extra = format_html(' <span class="quiet">+{}</span>', more) if more > 0 else ""
    return format_html('<span style="white-space:nowrap">{}{}</span>', thumbnails, extra)


class FaceInline(admin.TabularInline):
    model = Face
    extra = 0
    can_delete = False
    fields = ("preview", "track", "fake_probability", "box", "frames_count")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    @admin.display(description="thumbnail / heatmap")
    def preview(self, face: Face) -> str:
        parts = []
        if face.thumbnail:
            parts.append(
                format_html(
                    '<img src="{}" style="height:96px">',
                    reverse("face_thumbnail", args=[face.item_id, face.pk]),
                )
            )
        if face.heatmap:
            parts.append(
                format_html(
                    '<img src="{}" style="height:96px">',
                    reverse("face_heatmap", args=[face.item_id, face.pk]),
                )
            )
        # Each part is already escaped by format_html.
        return mark_safe(" ".join(parts)) if parts else "—"

    @admin.display(description="frames")
    def frames_count(self, face: Face) -> int:
        return len(face.frames or [])


class ReviewInline(admin.TabularInline):
    model = Review
    extra = 0
    can_delete = False
    fields = ("created_at", "reviewer", "decision", "note")
    readonly_fields = fields

    def has_add_permission(self, request: HttpRequest, obj=None) -> bool:
        return False  # decisions are made through the review actions, which record the reviewer


class ReviewStateFilter(admin.SimpleListFilter):
    """The queue opens on the items still waiting for a decision; "All" is one click away."""

    title = "review"
    parameter_name = "review"
    ALL = "all"

    def lookups(self, request, model_admin):
        return [("none", "Not reviewed yet"), *Review.Decision.choices, (self.ALL, "All")]

    def value(self):
        return super().value() or "none"

    def choices(self, changelist):
        # Django's own "All" entry would mean "no parameter", which here is "Not reviewed yet".
        for lookup, title in self.lookup_choices:
            yield {
                "selected": self.value() == str(lookup),
                "query_string": changelist.get_query_string({self.parameter_name: lookup}),
                "display": title,
            }

    def queryset(self, request, queryset):
        if self.value() == "none":
            return queryset.filter(~Exists(Review.objects.filter(item=OuterRef("pk"))))
        if self.value() in Review.Decision.values:
            return queryset.alias_latest_decision().filter(latest_decision=self.value())
        return queryset


def verdict_html(item: Item) -> str:
    """The model's verdict as the owner's page states it: label, score, strength or reasons."""
    if not item.verdict:
        return "—"
    score = "" if item.fake_percent is None else f" {item.fake_percent}%"
    detail = ""
    if item.verdict == Item.Verdict.UNCERTAIN:
        detail = "; ".join(r.get("code", "") for r in item.uncertain_reasons)
    elif item.strength:
        detail = item.strength.get("level", "")
    return format_html(
        '<strong class="verdict-{}">{}</strong>{}<br><span class="quiet">{}</span>',
        item.verdict,
        item.get_verdict_display(),
        score,
        detail,
    )


@admin.register(Item)
class ItemAdmin(admin.ModelAdmin):
    list_display = (
        "original_name",
        "owner",
        "kind",
        "status",
        "verdict",
        "fake_percent_display",
        "created_at",
    )
    list_filter = ("status", "kind", "verdict")
    search_fields = ("original_name", "sha256", "owner__username")
    date_hierarchy = "created_at"
    inlines = [FaceInline, ReviewInline]
    readonly_fields = [f.name for f in Item._meta.fields] + ["view_on_site_link"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # items come from uploads only

    @admin.display(description="fake %", ordering="fake_probability")
    def fake_percent_display(self, item: Item) -> str:
        return "—" if item.fake_percent is None else f"{item.fake_percent}%"

    @admin.display(description="item page")
    def view_on_site_link(self, item: Item) -> str:
        return format_html('<a href="{}">open</a>', item.get_absolute_url())


@admin.register(FlaggedItem)
class ReviewQueueAdmin(ItemAdmin):
    # Few, narrow columns: the queue must fit a 1,400 px screen beside Django's navigation and filters.
    list_display = ("item_summary", "faces_preview", "model_verdict", "latest_decision")
    list_filter = (ReviewStateFilter, "verdict", "kind")
    ordering = ("-fake_probability", "-created_at")
    actions = ["confirm_fake", "overturn_real", "mark_unclear"]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return (
            super()
            .get_queryset(request)
            .flagged()
            .select_related("owner")
            .prefetch_related("faces", "reviews")
        )

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False  # the queue is for decisions; deleting is done from the item list

    @admin.display(description="faces")
    def faces_preview(self, item: Item) -> str:
        return face_thumbnails_html(item)

    @admin.display(description="item", ordering="created_at")
    def item_summary(self, item: Item) -> str:
        return format_html(
            '<span style="overflow-wrap:anywhere">{}</span><br><span class="quiet">{} · {} · {}</span>',
            item.original_name,
            item.owner,
            item.get_kind_display(),
            date_format(localtime(item.created_at), "SHORT_DATETIME_FORMAT"),
        )

    @admin.display(description="model verdict", ordering="fake_probability")
    def model_verdict(self, item: Item) -> str:
        return verdict_html(item)

    @admin.display(description="review")
    def latest_decision(self, item: Item) -> str:
        review = item.latest_review
        return review.get_decision_display() if review else "not reviewed"

    def _review_action(self, request: HttpRequest, queryset: QuerySet, decision: str) -> HttpResponse | None:
        """Two steps like Django's delete action: first a page asking for a note, then the decision."""
        label = Review.Decision(decision).label
        if "apply" in request.POST:
            form = ReviewNoteForm(request.POST)
            if form.is_valid():
                for item in queryset:
                    record_review(item, request.user, decision, form.cleaned_data["note"])
                self.message_user(request, f"{label}: {queryset.count()} item(s) recorded.", messages.SUCCESS)
                return None
        else:
            form = ReviewNoteForm()
        return TemplateResponse(
            request,
            "admin/detection/review_decision.html",
            {
                **self.admin_site.each_context(request),
                "title": f"{label}: add a note",
                "opts": self.model._meta,
                "items": queryset,
                "form": form,
                "action": request.POST.get("action"),
                "decision_label": label,
                "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
            },
        )

    @admin.action(description="Confirm FAKE (with a note)")
    def confirm_fake(self, request: HttpRequest, queryset: QuerySet):
        return self._review_action(request, queryset, Review.Decision.CONFIRM_FAKE)

    @admin.action(description="Overturn to REAL (with a note)")
    def overturn_real(self, request: HttpRequest, queryset: QuerySet):
        return self._review_action(request, queryset, Review.Decision.OVERTURN_REAL)

    @admin.action(description="Mark unclear (with a note)")
    def mark_unclear(self, request: HttpRequest, queryset: QuerySet):
        return self._review_action(request, queryset, Review.Decision.UNCLEAR)


@admin.register(Review)
class ReviewAdmin(admin.ModelAdmin):
    list_display = ("item", "decision", "reviewer", "created_at", "note")
    list_filter = ("decision", "reviewer")
    search_fields = ("item__original_name", "note", "reviewer__username")
    readonly_fields = ("item", "reviewer", "decision", "note", "created_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj=None) -> bool:
        return False  # decisions are an audit trail

    # Nor can one be deleted here. has_delete_permission stays True on purpose: Django asks it of every
    # related object when an *item* is deleted, and an item's deletion must still take its reviews along.
    def get_actions(self, request: HttpRequest) -> dict:
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def change_view(self, request: HttpRequest, object_id, form_url="", extra_context=None) -> HttpResponse:
        return super().change_view(
            request, object_id, form_url, {**(extra_context or {}), "show_delete": False}
        )

    def delete_view(self, request: HttpRequest, object_id, extra_context=None) -> HttpResponse:
        raise PermissionDenied("Review decisions are an audit trail and cannot be deleted.")
