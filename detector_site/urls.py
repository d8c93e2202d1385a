from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.templatetags.static import static
from django.urls import include, path
from django.views.generic import RedirectView

from detection import account, pages
from detection import views as detection_views
from detection.api import pages as api_pages

admin.site.site_header = "Deepfake detector administration"
admin.site.site_title = "Deepfake detector"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/signup/", detection_views.signup, name="signup"),
    path("accounts/login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("accounts/logout/", pages.logout, name="logout"),
    path("accounts/", account.account, name="account"),
    path("accounts/export/", account.export_results, name="export_results"),
    path("accounts/delete/", account.delete_account, name="delete_account"),
    # Django's own password views, under the URL names its templates and e-mails use.
    path("accounts/password_change/", auth_views.PasswordChangeView.as_view(), name="password_change"),
    path(
        "accounts/password_change/done/",
        auth_views.PasswordChangeDoneView.as_view(),
        name="password_change_done",
    ),
    path("accounts/password_reset/", auth_views.PasswordResetView.as_view(), name="password_reset"),
    path(
        "accounts/password_reset/done/",
        auth_views.PasswordResetDoneView.as_view(),
        name="password_reset_done",
    ),
    path(
        "accounts/reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path(
        "accounts/reset/done/", auth_views.PasswordResetCompleteView.as_view(), name="password_reset_complete"
    ),
    path("favicon.ico", RedirectView.as_view(url=static("favicon.svg"), permanent=True)),
    path("accounts/api/", api_pages.api_settings, name="api_settings"),
    path("api/", include("detection.api.urls")),
    path("", include("detection.urls")),
]
