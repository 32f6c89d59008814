"""The field pages' app icons (``maps/static/field/icons``), drawn rather than kept as
artwork of unknown origin: a white map pin with a red dot on the campaign's red.

Run ``python -m maps.icons`` to draw them again (they are committed; nothing draws them at
run time).
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw

from maps.assets import STATIC_DIR

RED = (179, 18, 29)
WHITE = (255, 255, 255)


def draw(size: int, *, maskable: bool) -> Image.Image:
    """The icon at ``size`` pixels; ``maskable``: full-bleed background and the pin inside
    the central 80 % circle that launchers may crop to, else rounded corners."""
    scale = 4  # drawn large and shrunk: smooth edges without an anti-aliasing pass
    big = size * scale
    image = Image.new("RGBA", (big, big), (0, 0, 0, 0))
    pen = ImageDraw.Draw(image)
    if maskable:
        pen.rectangle((0, 0, big, big), fill=RED)
    else:
        pen.rounded_rectangle((0, 0, big - 1, big - 1), radius=big // 5, fill=RED)
    # The pin: a circle over a triangle pointing down, 60 % of the icon (maskable: 48 %).
    share = 0.48 if maskable else 0.6
    radius = big * share / 3.2
    cx, cy = big / 2, big / 2 - radius * 0.45
    tip = cy + radius * 2.1
    pen.polygon([(cx - radius * 0.87, cy + radius * 0.5), (cx + radius * 0.87,
                 cy + radius * 0.5), (cx, tip)], fill=WHITE)
    pen.ellipse((cx - radius, cy - radius, cx + radius, cy + radius), fill=WHITE)
    dot = radius * 0.42
    pen.ellipse((cx - dot, cy - dot, cx + dot, cy + dot), fill=RED)
    return image.resize((size, size), Image.Resampling.LANCZOS)


def main(folder: Path = STATIC_DIR / "field" / "icons") -> None:
    """Write icon-192.png, icon-512.png and maskable-512.png into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    draw(192, maskable=False).save(folder / "icon-192.png", optimize=True)
    draw(512, maskable=False).save(folder / "icon-512.png", optimize=True)
    draw(512, maskable=True).save(folder / "maskable-512.png", optimize=True)


if __name__ == "__main__":
    main()
