"""``/api/`` routes: v1 resources, the OpenAPI schema and its docs page, OAuth token endpoints.

Only the token, revocation and introspection endpoints of django-oauth-toolkit are exposed:
external systems use the client-credentials grant, so there is no authorization page. All three
are rate-limited per client id and per address, on one budget (``oauth``).
"""

from django.urls import include, path, re_path
from rest_framework.routers import SimpleRouter

from . import docs, views
from .oauth import ThrottledIntrospectTokenView, ThrottledRevokeTokenView, ThrottledTokenView

router = SimpleRouter()
router.register("locations", views.LocationViewSet, basename="location")
router.register("spaces", views.SpaceViewSet, basename="space")
router.register("availability", views.AvailabilityViewSet, basename="availability")
router.register("reservations", views.ReservationViewSet, basename="reservation")

oauth_urlpatterns = (
    [
        path("token/", ThrottledTokenView.as_view(), name="token"),
        path("revoke_token/", ThrottledRevokeTokenView.as_view(), name="revoke-token"),
        path("introspect/", ThrottledIntrospectTokenView.as_view(), name="introspect"),
    ],
    "oauth2_provider",
)

urlpatterns = [
    path("api/v1/", include((router.urls, "api"))),
    path("api/schema/", docs.SchemaView.as_view(), name="api-schema"),
    path("api/docs/", docs.SwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    re_path(r"^api/", views.not_found),  # any other /api/ path, even with odd characters
    path("o/", include(oauth_urlpatterns)),
]
