from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from detection import views as detection_views
from detection.api import pages as api_pages

admin.site.site_header = "Deepfake detector administration"
admin.site.site_title = "Deepfake detector"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/signup/", detection_views.signup, name="signup"),
    path("accounts/login/", auth_views.LoginView.as_view(redirect_authenticated_user=True), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/api/", api_pages.api_settings, name="api_settings"),
    path("api/", include("detection.api.urls")),
    path("", include("detection.urls")),
]
