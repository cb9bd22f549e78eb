"""The smallest Django models django-scim2 serves: a user and a group carrying the SCIM columns."""

from __future__ import annotations

from typing import Any

from django.contrib.auth.models import AbstractUser, Group
from django_scim.models import AbstractSCIMGroupMixin, AbstractSCIMUserMixin


class ScimGroup(AbstractSCIMGroupMixin, Group):  # type: ignore[misc]
    class Meta:
        app_label = "scimpeer"


class ScimUser(AbstractSCIMUserMixin, AbstractUser):  # type: ignore[misc]
    class Meta:
        app_label = "scimpeer"

    @property
    def scim_groups(self) -> Any:
        return ScimGroup.objects.filter(user=self)
