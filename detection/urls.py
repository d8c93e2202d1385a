from django.urls import path

from . import views

urlpatterns = [
    path("", views.home, name="home"),
    path("upload/", views.upload, name="upload"),
    path("items/", views.history, name="history"),
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
