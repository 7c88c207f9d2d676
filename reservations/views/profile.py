"""The profile page: the user's time zone and default location."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from ..forms import ProfileForm
from ..models import Profile


@login_required
def profile(request: HttpRequest) -> HttpResponse:
    instance = Profile.for_user(request.user)
    form = ProfileForm(request.POST or None, instance=instance)
    if request.method == "POST":
        if form.is_valid():
            form.save()
            messages.success(request, "Your profile was saved.")
            return redirect("portal:profile")
        return render(request, "reservations/profile.html", {"form": form}, status=400)
    return render(request, "reservations/profile.html", {"form": form})
