"""Floor maps and space photos: what an upload must be (judged by content), the admin's
upload form and its click-to-place endpoint, the image files served to signed-in people
only, and the demo's drawn maps."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.urls import reverse

from reservations import uploads
from reservations.models import FloorMap, Location, Space
from tests.support.images import jpeg, png, svg

pytestmark = pytest.mark.django_db

MALICIOUS_SVGS = {
    "script": svg("<script>alert(document.cookie)</script>"),
    "event attribute": svg('<rect width="10" height="10" onclick="alert(1)"/>'),
    "onload on the root": svg("", onload="alert(1)"),
    "foreignObject": svg(
        '<foreignObject width="100" height="100"><div xmlns="http://www.w3.org/1999/xhtml">'
        "<iframe src='https://evil.example'/></div></foreignObject>"
    ),
    "javascript link": svg('<a xlink:href="javascript:alert(1)"><rect width="9" height="9"/></a>'),
    "javascript link with spaces": svg('<a href=" java\tscript:alert(1)"><text>x</text></a>'),
    "external link": svg('<use href="https://evil.example/sprite.svg#a"/>'),
    "external image": svg('<image href="https://evil.example/x.png" width="9" height="9"/>'),
    "animation setting a link": svg(
        '<a href="#a"><set attributeName="href" to="javascript:alert(1)"/><text>x</text></a>'
    ),
    "external entity": (
        b'<?xml version="1.0"?><!DOCTYPE svg [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>'
        b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 9 9"><text>&xxe;</text></svg>'
    ),
    "billion laughs": (
        b'<!DOCTYPE svg [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>'
        b'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 9 9"><text>&b;</text></svg>'
    ),
    "stylesheet instruction": b'<?xml-stylesheet href="https://evil.example/x.css"?>' + svg(),
    "css import": svg("<style>@import url(https://evil.example/x.css);</style>"),
    "css url": svg('<rect width="9" height="9" style="fill: url(https://evil.example/x)"/>'),
}


def upload(content: bytes, name: str = "plan.png") -> SimpleUploadedFile:
    return SimpleUploadedFile(name, content)


@pytest.fixture
def admin_client(client, make_user):
    client.force_login(make_user("boss", is_staff=True, is_superuser=True))
    return client


@pytest.fixture
def floor(make_location, make_space):
    """Floor 2 of a location: a plan (SVG) and two rooms on it, a third room on floor 3."""
    location = make_location("Leeds")
    floor_map = FloorMap(location=location, floor="2")
    floor_map.image = SimpleUploadedFile("plan.svg", svg())
    floor_map.save()
    rooms = [make_space(location, name=n, floor="2") for n in ("Aire", "Wharfe")]
    upstairs = make_space(location, name="Nidd", floor="3")
    return floor_map, rooms, upstairs


# --- what an upload must be ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "kind", "size"),
    [(png(40, 30), "png", (40, 30)), (jpeg(64, 48), "jpeg", (64, 48)), (svg(), "svg", (400, 300))],
    ids=["png", "jpeg", "svg"],
)
def test_png_jpeg_and_svg_are_accepted_with_their_size(content, kind, size):
    info = uploads.inspect(content)
    assert (info.kind, info.width, info.height) == (kind, *size)


def test_a_svg_with_width_and_height_uses_them():
    assert uploads.inspect(svg(width="800", height="500px")).width == 800


@pytest.mark.parametrize("content", MALICIOUS_SVGS.values(), ids=MALICIOUS_SVGS.keys())
def test_a_svg_that_could_run_or_fetch_anything_is_refused(content):
    with pytest.raises(uploads.ValidationError):
        uploads.inspect(content)


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"GIF89a\x01\x00\x01\x00\x00\x00\x00;", "none of them"),
        (b"<html><body>a page</body></html>", "not an SVG image"),
        (b"%PDF-1.7 ...", "none of them"),
        (b"", "empty"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "damaged"),
        (b"\xff\xd8\xff\xe0\x00\x10JFIF", "damaged"),
        (svg().replace(b' viewBox="0 0 400 300"', b""), "no size"),
        (png(20_000, 10), "between 1 and"),
    ],
    ids=["gif", "html", "pdf", "empty", "broken png", "broken jpeg", "svg without size", "huge"],
)
def test_other_files_are_refused_with_a_reason(content, words):
    with pytest.raises(uploads.ValidationError) as refused:
        uploads.inspect(content)
    assert words in refused.value.messages[0]


def test_a_file_over_the_limit_is_refused(settings):
    settings.UPLOAD_MAX_BYTES = 1000
    with pytest.raises(uploads.ValidationError) as refused:
        uploads.validate_image(upload(png(200, 200) + b"\x00" * 1000))
    assert "the largest accepted is 1000" in refused.value.messages[0]


def test_the_stored_file_is_named_after_its_content(make_location):
    """A PNG uploaded as "plan.html" is stored (and so served) as a .png."""
    floor_map = FloorMap(location=make_location(), floor="1")
    floor_map.image = upload(png(40, 30), "plan.html")
    floor_map.save()
    assert floor_map.image.name.startswith("floormaps/") and floor_map.image.name.endswith(".png")
    assert (floor_map.width, floor_map.height) == (40, 30)
    assert Path(floor_map.image.path).read_bytes().startswith(uploads.PNG_SIGNATURE)


# --- the admin's upload form -----------------------------------------------------------------


def add_map(client, location: Location, content: bytes, name: str, floor: str = "1"):
    return client.post(
        reverse("admin:reservations_floormap_add"),
        {"location": location.pk, "floor": floor, "image": upload(content, name)},
    )


def test_admin_uploads_a_floor_map(admin_client, make_location, make_space):
    location = make_location("Leeds")
    make_space(location, name="Aire", floor="1")
    response = add_map(admin_client, location, jpeg(1200, 800), "floor1.jpg")
    assert response.status_code == 302
    floor_map = FloorMap.objects.get(location=location, floor="1")
    assert (floor_map.width, floor_map.height) == (1200, 800)
    page = admin_client.get(reverse("admin:reservations_floormap_change", args=[floor_map.pk]))
    assert "Place the spaces of floor 1" in page.content.decode()


@pytest.mark.parametrize(
    ("content", "name", "words"),
    [
        (MALICIOUS_SVGS["script"], "plan.svg", "may not contain &lt;script&gt;"),
        (b"GIF89a\x01\x00\x01\x00\x00\x00\x00;", "plan.png", "none of them"),
    ],
    ids=["script in svg", "gif named png"],
)
def test_admin_refuses_a_bad_file_with_a_form_error(
    admin_client, make_location, content, name, words
):
    location = make_location()
    response = add_map(admin_client, location, content, name)
    assert response.status_code == 200
    assert words in response.content.decode()
    assert not FloorMap.objects.exists()


def test_admin_refuses_a_too_big_file(admin_client, make_location, settings):
    settings.UPLOAD_MAX_BYTES = 2000
    response = add_map(admin_client, make_location(), png(10, 10) + b"\x00" * 3000, "big.png")
    assert "the largest accepted is 2.0" in response.content.decode()
    assert not FloorMap.objects.exists()


def test_one_map_per_floor(admin_client, floor):
    floor_map, *_ = floor
    response = add_map(admin_client, floor_map.location, png(), "again.png", floor="2")
    assert response.status_code == 200
    assert "already exists" in response.content.decode()


def test_admin_sets_a_space_photo_and_refuses_a_bad_one(admin_client, floor):
    _, (aire, _), _ = floor
    url = reverse("admin:reservations_space_change", args=[aire.pk])
    form = admin_client.get(url).context["adminform"].form
    data = {k: v for k, v in form.initial.items() if v is not None and k != "amenities"}
    data.update({"location": aire.location_id, "kind": "room", "name": "Aire", "floor": "2"})
    data.update({"seats-TOTAL_FORMS": 0, "seats-INITIAL_FORMS": 0})
    refused = admin_client.post(url, {**data, "photo": upload(MALICIOUS_SVGS["script"], "a.svg")})
    assert refused.status_code == 200 and "may not contain" in refused.content.decode()
    admin_client.post(url, {**data, "photo": upload(jpeg(), "aire.jpeg")})
    aire.refresh_from_db()
    assert aire.photo.name.startswith("spaces/aire-") and aire.photo.name.endswith(".jpg")


# --- placing spaces by clicking --------------------------------------------------------------


def place(client, floor_map, space, **fields):
    url = reverse("admin:reservations_floormap_place", args=[floor_map.pk])
    return client.post(url, {"space": space.pk, **fields})


def test_a_click_stores_the_relative_position(admin_client, floor):
    floor_map, (aire, _), _ = floor
    response = place(admin_client, floor_map, aire, x="0.25", y="0.8")
    assert response.status_code == 200
    assert response.json() == {"space": aire.pk, "name": "Aire", "x": 0.25, "y": 0.8}
    aire.refresh_from_db()
    assert (aire.map_x, aire.map_y) == (0.25, 0.8)
    page = admin_client.get(reverse("admin:reservations_floormap_change", args=[floor_map.pk]))
    assert f'class="marker at-x25 at-y80" data-space="{aire.pk}"' in page.content.decode()
    # Taken off the map again.
    assert place(admin_client, floor_map, aire, clear="1").json()["x"] is None
    aire.refresh_from_db()
    assert aire.map_x is None and aire.map_y is None


@pytest.mark.parametrize(
    "position",
    [{"x": "1.2", "y": "0.5"}, {"x": "0.5", "y": "-0.1"}, {"x": "nan", "y": "0.5"}, {"x": "0.5"}],
    ids=["right of the map", "above it", "not a number", "one coordinate"],
)
def test_a_position_off_the_map_is_refused(admin_client, floor, position):
    floor_map, (aire, _), _ = floor
    response = place(admin_client, floor_map, aire, **position)
    assert response.status_code == 400 and response.json()["error"]
    aire.refresh_from_db()
    assert aire.map_x is None


def test_a_space_of_another_floor_cannot_be_placed(admin_client, floor):
    floor_map, _, upstairs = floor
    response = place(admin_client, floor_map, upstairs, x="0.5", y="0.5")
    assert response.status_code == 400
    assert response.json()["error"] == "Nidd is not on Leeds floor 2."


def test_placing_needs_permission_to_change_spaces(client, make_user, floor):
    floor_map, (aire, _), _ = floor
    viewer = make_user(
        "viewer", is_staff=True, perms=("reservations.view_floormap", "reservations.view_space")
    )
    client.force_login(viewer)
    assert place(client, floor_map, aire, x="0.5", y="0.5").status_code == 403
    aire.refresh_from_db()
    assert aire.map_x is None
    client.logout()
    assert place(client, floor_map, aire, x="0.5", y="0.5").status_code == 302  # to sign-in
    placer = make_user(
        "placer", is_staff=True, perms=("reservations.view_floormap", "reservations.change_space")
    )
    client.force_login(placer)
    assert place(client, floor_map, aire, x="0.5", y="0.5").status_code == 200


def test_placing_is_a_post_with_the_csrf_token(make_user, floor):
    from django.test import Client

    floor_map, (aire, _), _ = floor
    client = Client(enforce_csrf_checks=True)
    client.force_login(make_user("boss2", is_staff=True, is_superuser=True))
    assert place(client, floor_map, aire, x="0.5", y="0.5").status_code == 403
    url = reverse("admin:reservations_floormap_place", args=[floor_map.pk])
    assert client.get(url).status_code == 405


def test_a_space_with_one_coordinate_is_a_form_error(floor):
    _, (aire, _), _ = floor
    aire.map_x = 0.5
    with pytest.raises(uploads.ValidationError) as refused:
        aire.full_clean()
    assert "both map coordinates" in str(refused.value)


# --- the files, served to signed-in people only ----------------------------------------------


def test_images_are_served_to_signed_in_people_with_a_sandbox(client, make_user, floor):
    floor_map, *_ = floor
    url = floor_map.image.url
    assert url.startswith("/media/floormaps/") and url.endswith(".svg")
    assert client.get(url).status_code == 302  # to sign-in
    client.force_login(make_user())
    response = client.get(url)
    assert response.status_code == 200
    assert response["Content-Type"] == "image/svg+xml"
    assert "sandbox" in response["Content-Security-Policy"]
    assert "script-src" not in response["Content-Security-Policy"]  # default-src 'none'
    assert response["X-Content-Type-Options"] == "nosniff"
    assert b"".join(response.streaming_content).startswith(b"<svg")


@pytest.mark.parametrize("path", ["/media/../config/settings.py", "/media/floormaps/notes.txt"])
def test_nothing_but_stored_images_is_served(client, make_user, path, settings):
    (Path(settings.MEDIA_ROOT) / "floormaps").mkdir(parents=True, exist_ok=True)
    (Path(settings.MEDIA_ROOT) / "floormaps" / "notes.txt").write_text("secret")
    client.force_login(make_user())
    assert client.get(path).status_code == 404


# --- the demo --------------------------------------------------------------------------------


def test_seed_demo_draws_london_floors_and_places_their_spaces():
    call_command("seed_demo", verbosity=0, history_weeks=0)
    files = {m.floor: m.image.name for m in FloorMap.objects.all()}
    call_command("seed_demo", verbosity=0, history_weeks=0)  # idempotent: nothing drawn twice
    assert {m.floor: m.image.name for m in FloorMap.objects.all()} == files
    london = Location.objects.get(name="London HQ")
    maps = FloorMap.objects.filter(location=london)
    assert sorted(m.floor for m in maps) == ["1", "2", "3"]
    for floor_map in maps:
        assert (floor_map.width, floor_map.height) == (1000, 600)
        uploads.inspect(Path(floor_map.image.path).read_bytes())  # passes its own checks
    on_floors = Space.objects.filter(location=london, floor__in=["1", "2", "3"])
    assert on_floors.count() == 10 and not on_floors.filter(map_x__isnull=True).exists()
    thames = on_floors.get(name="Thames")
    assert (thames.map_x, thames.map_y) == (0.25, 0.3167)
    with_photo = set(Space.objects.exclude(photo="").values_list("location__name", "name"))
    assert with_photo == {("London HQ", n) for n in ("Thames", "Severn", "Avon", "Trent")}
