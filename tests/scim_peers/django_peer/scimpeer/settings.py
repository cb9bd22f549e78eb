"""Settings of the django-scim2 peer: sqlite in the file named by SCIM_PEER_DB, no authentication
(the peer listens on loopback only), the SCIM service under /scim/v2/."""

from __future__ import annotations

import os

SECRET_KEY = "test-only-not-a-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
USE_TZ = True
ROOT_URLCONF = "scimpeer.urls"
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth", "django_scim", "scimpeer"]
MIDDLEWARE = ["scimpeer.auth.LoopbackPeerMiddleware", "django_scim.middleware.SCIMAuthCheckMiddleware"]
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": os.environ["SCIM_PEER_DB"]}}
AUTH_USER_MODEL = "scimpeer.ScimUser"
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
SCIM_SERVICE_PROVIDER = {
    "NETLOC": "127.0.0.1",
    "SCHEME": "http",
    "GROUP_MODEL": "scimpeer.models.ScimGroup",
    "GET_IS_AUTHENTICATED_PREDICATE": "scimpeer.auth.is_peer_client",
    "AUTHENTICATION_SCHEMES": [
        {"type": "oauthbearertoken", "name": "OAuth Bearer Token", "description": "none on loopback"}
    ],
}
# A throwaway database: tables straight from the models (auth's migrations cannot see the group subclass).
MIGRATION_MODULES = {app: None for app in ("contenttypes", "auth", "django_scim", "scimpeer")}
