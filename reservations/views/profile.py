"""The profile page: the user's time zone and default location, and their calendar feed."""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from ..forms import ProfileForm
from ..models import Profile

if TYPE_CHECKING:
    from ..feeds import IssuedFeed


@login_required
def profile(request: HttpRequest) -> HttpResponse:
    instance = Profile.for_user(request.user)
    form = ProfileForm(request.POST or None, instance=instance)
    if request.method == "POST":
        if form.is_valid():
            form.save()
            messages.success(request, "Your profile was saved.")
            return redirect("portal:profile")
        return profile_page(request, form=form, status=400)
    return profile_page(request, form=form)


def profile_page(
    request: HttpRequest,
    *,
    form: ProfileForm | None = None,
    issued: IssuedFeed | None = None,
    status: int = 200,
) -> HttpResponse:
    """The page; ``issued`` is a feed just created, whose URL this one answer shows."""
    if form is None:
        form = ProfileForm(instance=Profile.for_user(request.user))
    context = {"form": form, "issued_feed": issued}
    return render(request, "reservations/profile.html", context, status=status)
