"""Draws the integration's brand images into custom_components/esp_mcp_bridge/brand/.

Home Assistant 2026.3 and later serve a custom integration's icon and logo from its
``brand/`` folder; the sizes follow the home-assistant/brands rules (icon 256x256 and
512x512 for @2x; logo shortest side 128-256 px, 256-512 px for @2x). The artwork is the
original icon (a chip on a blue disc), redrawn as shapes so every size is sharp.

Run with the Home Assistant environment (it has Pillow): ``.venv/ha/bin/python
scripts/brand_images.py``. The output is deterministic, so a second run changes nothing.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

BRAND = Path(__file__).resolve().parent.parent / "custom_components" / "esp_mcp_bridge" / "brand"
FONT = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf")
SUPERSAMPLE = 4  # drawn this much larger, then scaled down: smooth edges

BLUE = (3, 169, 244, 255)
CHIP_EDGE = (33, 33, 33, 255)
CHIP_CORE = (66, 66, 66, 255)
PIN = (250, 250, 250, 255)
TEXT_LIGHT = (33, 33, 33, 255)  # on a light background
TEXT_DARK = (250, 250, 250, 255)  # on a dark background

# The original 256 px icon's geometry, in its own pixels.
DISC = (8, 8, 249, 249)
CHIP_OUTER = (76, 76, 181, 181)
CHIP_INNER = (88, 88, 169, 169)
PIN_CENTRES = (84.5, 104.5, 128.0, 151.5, 171.5)
PIN_WIDTH = 8
PIN_SPANS = ((56, 76), (181, 201))  # above/below and left/right of the chip


def icon(size: int) -> Image.Image:
    """The icon, ``size`` pixels square."""
    scale = size * SUPERSAMPLE / 256
    canvas = Image.new("RGBA", (size * SUPERSAMPLE,) * 2, (0, 0, 0, 0))
    draw = ImageDraw.Draw(canvas)

    def box(x0: float, y0: float, x1: float, y1: float) -> tuple[float, float, float, float]:
        return (x0 * scale, y0 * scale, x1 * scale - 1, y1 * scale - 1)

    draw.ellipse(box(*DISC), fill=BLUE)
    for centre in PIN_CENTRES:
        a, b = centre - PIN_WIDTH / 2, centre + PIN_WIDTH / 2
        for start, end in PIN_SPANS:
            draw.rectangle(box(a, start, b, end), fill=PIN)  # top and bottom rows
            draw.rectangle(box(start, a, end, b), fill=PIN)  # left and right columns
    draw.rectangle(box(*CHIP_OUTER), fill=CHIP_EDGE)
    draw.rectangle(box(*CHIP_INNER), fill=CHIP_CORE)
    return canvas.resize((size, size), Image.Resampling.LANCZOS)


def logo(height: int, text_colour: tuple[int, int, int, int]) -> Image.Image:
    """Icon and name side by side, trimmed; the icon's disc sets the height."""
    big = height * SUPERSAMPLE
    mark = icon(height).resize((big, big), Image.Resampling.LANCZOS)
    font = ImageFont.truetype(str(FONT), int(big * 0.34))
    lines = (("ESP32", BLUE), ("MCP Bridge", text_colour))
    widths = [font.getbbox(text)[2] for text, _ in lines]
    gap = int(big * 0.08)
    canvas = Image.new("RGBA", (big + gap + max(widths), big), (0, 0, 0, 0))
    canvas.alpha_composite(mark)
    draw = ImageDraw.Draw(canvas)
    line_height = int(big * 0.40)
    top = (big - 2 * line_height) // 2
    for i, (text, colour) in enumerate(lines):
        draw.text((big + gap, top + i * line_height), text, font=font, fill=colour)
    bbox = canvas.getbbox()
    assert bbox is not None
    trimmed = canvas.crop(bbox)
    return trimmed.resize(
        (round(trimmed.width / SUPERSAMPLE), round(trimmed.height / SUPERSAMPLE)),
        Image.Resampling.LANCZOS,
    )


def main() -> None:
    BRAND.mkdir(parents=True, exist_ok=True)
    images = {
        "icon.png": icon(256),
        "icon@2x.png": icon(512),
        "logo.png": logo(256, TEXT_LIGHT),
        "logo@2x.png": logo(512, TEXT_LIGHT),
        # The name in dark grey would vanish on a dark theme; the icon works on both.
        "dark_logo.png": logo(256, TEXT_DARK),
        "dark_logo@2x.png": logo(512, TEXT_DARK),
    }
    for name, image in images.items():
        image.save(BRAND / name, optimize=True)
        print(f"{name}: {image.width}x{image.height}")


if __name__ == "__main__":
    main()
