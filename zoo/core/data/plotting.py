"""Pictures: sample grids as PNG files."""

import math

import numpy as np

from zoo.core.runtime.files import atomic_file


def image_grid(images, columns=None, padding=1):
    """Tile ``[n, h, w, c]`` images in [0, 1] into one ``[H, W]`` or ``[H, W, c]`` array."""
    images = np.asarray(images, dtype=np.float32)
    if images.ndim != 4:
        raise ValueError(f"images must be [n, height, width, channels], got shape {images.shape}")
    n, h, w, c = images.shape
    columns = columns or math.ceil(math.sqrt(n))
    rows = math.ceil(n / columns)
    grid = np.ones((rows * (h + padding) + padding, columns * (w + padding) + padding, c), np.float32)
    for i, image in enumerate(np.clip(images, 0.0, 1.0)):
        r, col = divmod(i, columns)
        top, left = padding + r * (h + padding), padding + col * (w + padding)
        grid[top : top + h, left : left + w] = image
    return grid[..., 0] if c == 1 else grid


def displayable(text):
    """Whether matplotlib's default font has a glyph for every character of ``text`` (DejaVu Sans has no
    Chinese: a title with a Chinese prompt would print as empty boxes, so callers fall back to a gloss)."""
    from matplotlib import font_manager
    from matplotlib.ft2font import FT2Font

    font = FT2Font(font_manager.findfont(font_manager.FontProperties()))
    return all(font.get_char_index(ord(c)) for c in text if not c.isspace())


def prompt_label(prompt, gloss=None):
    """``prompt`` quoted for a picture's title, or ``gloss`` (an English rendering) where the font lacks its script."""
    if displayable(prompt):
        return repr(prompt)
    return f"[{gloss}]" if gloss else "[a prompt in a script the plot font lacks; see the command]"


def save_image_grid(images, path, columns=None, scale=3, title=None):
    """Write a grid of ``[n, h, w, c]`` images in [0, 1] to ``path`` (PNG), atomically."""
    # A bare Figure with an Agg canvas: no pyplot, so a notebook's own backend is left alone.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    grid = image_grid(images, columns)
    height, width = grid.shape[:2]
    dpi = 100
    top_margin = 0.3 if title else 0.0
    figure = Figure(figsize=(width * scale / dpi, height * scale / dpi + top_margin), dpi=dpi)
    axes = figure.add_axes([0, 0, 1, height * scale / dpi / (height * scale / dpi + top_margin)])
    axes.imshow(grid, cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    axes.axis("off")
    if title:
        import textwrap

        lines = textwrap.wrap(title, width=max(20, int(width * scale / 7)))  # ~7 px a character at size 9
        top_margin = 0.16 * len(lines) + 0.1
        figure.set_size_inches(width * scale / dpi, height * scale / dpi + top_margin)
        axes.set_position([0, 0, 1, height * scale / dpi / (height * scale / dpi + top_margin)])
        figure.suptitle("\n".join(lines), fontsize=9, y=0.995, va="top")
    with atomic_file(path) as tmp:
        FigureCanvasAgg(figure).print_png(tmp)
    return path
