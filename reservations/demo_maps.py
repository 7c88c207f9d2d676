"""Drawn demo images for ``seed_demo``: floor plans of London HQ's floors 1-3 and "photos"
of a few rooms, generated as SVG here (no download, no binary in the repository).

Each plan is a set of rectangles: the bookable spaces (named as in ``seed_demo.ROOMS``) and
some fixed areas (lifts, kitchen, ...). A space's position on the map is the centre of its
rectangle relative to the plan, so placing the demo's spaces needs no clicking.
"""

from __future__ import annotations

from xml.sax.saxutils import escape

WIDTH, HEIGHT = 1000, 600
Rect = tuple[int, int, int, int]  # x, y, width, height

# floor -> {space name: rectangle}; and the areas that are not spaces.
PLANS: dict[str, dict[str, Rect]] = {
    "1": {"Thames": (40, 40, 420, 300), "Severn": (500, 40, 260, 220)},
    "2": {
        "Avon": (40, 40, 260, 220),
        "Trent": (340, 40, 360, 260),
        "Phone booth 1": (740, 40, 110, 110),
    },
    "3": {
        "Phone booth 2": (40, 40, 110, 110),
        "Desk 3.01": (420, 120, 150, 90),
        "Desk 3.02": (580, 120, 150, 90),
        "Desk 3.03": (420, 220, 150, 90),
        "Desk 3.04": (580, 220, 150, 90),
    },
}
FIXED: dict[str, dict[str, Rect]] = {
    "1": {
        "Reception": (40, 400, 300, 160),
        "Lifts": (800, 40, 160, 140),
        "Kitchen": (640, 400, 320, 160),
    },
    "2": {
        "Lifts": (800, 200, 160, 140),
        "Kitchen": (40, 400, 300, 160),
        "Print": (640, 420, 200, 140),
    },
    "3": {
        "Lifts": (800, 40, 160, 140),
        "Lounge": (40, 400, 320, 160),
        "Lockers": (760, 420, 200, 140),
    },
}


def _rect(name: str, rect: Rect, *, bookable: bool) -> str:
    x, y, w, h = rect
    fill, stroke = ("#eef0ff", "#4338ca") if bookable else ("#eceef3", "#9aa0b4")
    size = 22 if w > 200 else 15
    return (
        f'<rect x="{x}" y="{y}" width="{w}" height="{h}" rx="6" fill="{fill}" '
        f'stroke="{stroke}" stroke-width="3"/>'
        f'<text x="{x + 10}" y="{y + size + 6}" font-size="{size}" fill="#1c2033" '
        f'font-family="sans-serif">{escape(name)}</text>'
    )


def floor_plan(location_name: str, floor: str) -> bytes:
    """The SVG plan of one demo floor."""
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" '
        f'width="{WIDTH}" height="{HEIGHT}">',
        f'<rect x="8" y="8" width="{WIDTH - 16}" height="{HEIGHT - 16}" fill="#fafbfd" '
        'stroke="#1c2033" stroke-width="6"/>',
        # the corridor
        f'<rect x="20" y="360" width="{WIDTH - 40}" height="30" fill="#f2f3f7"/>',
        f'<text x="{WIDTH - 24}" y="{HEIGHT - 24}" font-size="18" text-anchor="end" '
        f'fill="#5b6178" font-family="sans-serif">{escape(location_name)}, floor {floor}</text>',
    ]
    parts += [_rect(name, rect, bookable=False) for name, rect in FIXED.get(floor, {}).items()]
    parts += [_rect(name, rect, bookable=True) for name, rect in PLANS.get(floor, {}).items()]
    parts.append("</svg>")
    return "".join(parts).encode()


def position(floor: str, space_name: str) -> tuple[float, float] | None:
    """The centre of the space's rectangle on its floor's plan, relative (0..1)."""
    rect = PLANS.get(floor, {}).get(space_name)
    if rect is None:
        return None
    x, y, w, h = rect
    return round((x + w / 2) / WIDTH, 4), round((y + h / 2) / HEIGHT, 4)


def room_photo(name: str, seats: int, *, screen: bool) -> bytes:
    """A drawn "photo" of a meeting room: a table with its chairs, and a screen if it has one."""
    chairs = max(1, min(seats, 12))
    per_side = (chairs + 1) // 2
    table_w = 60 * per_side + 40
    left = (640 - table_w) // 2
    parts = [
        '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 640 400" width="640" height="400">',
        '<rect width="640" height="400" fill="#dfe6f3"/>',
        '<rect y="300" width="640" height="100" fill="#b9a58b"/>',
        '<rect x="40" y="40" width="140" height="110" fill="#f7f3e9" stroke="#8a7a60" '
        'stroke-width="6"/>',
    ]
    if screen:
        parts.append('<rect x="400" y="50" width="180" height="105" rx="6" fill="#1c2033"/>')
    far = [i for i in range(chairs) if i < per_side]
    near = [i - per_side for i in range(chairs) if i >= per_side]
    chair = '<rect x="{}" y="{}" width="36" height="44" rx="8" fill="#4338ca"/>'
    parts += [chair.format(left + 40 + n * 60, 222) for n in far]  # behind the table
    parts.append(f'<rect x="{left}" y="250" width="{table_w}" height="70" rx="10" fill="#6d4c2f"/>')
    parts += [chair.format(left + 40 + n * 60, 300) for n in near]  # in front of it
    parts.append(
        f'<text x="20" y="385" font-size="26" fill="#1c2033" font-family="sans-serif">'
        f"{escape(name)}</text></svg>"
    )
    return "".join(parts).encode()
