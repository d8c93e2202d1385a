from django.urls import path

from . import pages, views

urlpatterns = [
    path("", pages.home, name="home"),
    path("how-it-works/", pages.info_page, {"page": "how_it_works"}, name="how_it_works"),
    path("limits/", pages.info_page, {"page": "limits"}, name="limits"),
    path("privacy/", pages.info_page, {"page": "privacy"}, name="privacy"),
    path("terms/", pages.info_page, {"page": "terms"}, name="terms"),
    path("upload/", views.upload, name="upload"),
    path("items/", views.history, name="history"),
    path("items/status/", views.item_statuses, name="item_statuses"),
    path("items/delete/", views.items_delete, name="items_delete"),
    path("items/<uuid:item_id>/", views.item_detail, name="item_detail"),
    path("items/<uuid:item_id>/status/", views.item_status, name="item_status"),
    path("items/<uuid:item_id>/report.json", views.item_report, {"fmt": "json"}, name="item_report_json"),
    path("items/<uuid:item_id>/report.pdf", views.item_report, {"fmt": "pdf"}, name="item_report_pdf"),
    path("items/<uuid:item_id>/delete/", views.item_delete, name="item_delete"),
    path("items/<uuid:item_id>/original/", views.item_original, name="item_original"),
    path(
        "items/<uuid:item_id>/faces/<int:face_id>/thumbnail/",
        views.face_image,
        {"which": "thumbnail"},
        name="face_thumbnail",
    ),
    path(
        "items/<uuid:item_id>/faces/<int:face_id>/heatmap/",
        views.face_image,
        {"which": "heatmap"},
        name="face_heatmap",
    ),
]
