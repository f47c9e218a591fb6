"""Digit grids as 8-bit grey PNG files with NumPy and zlib alone (no imaging library on a phone)."""

import os
import struct
import zlib

import numpy as np


def write_png(images, path, columns):
    """A grid of ``[n, 28, 28, 1]`` images in [0, 1], one pixel of white between them."""
    images = np.asarray(images)[..., 0]
    height, width = images.shape[1:3]
    rows = -(-len(images) // columns)
    grid = np.ones((rows * (height + 2), columns * (width + 2)), np.float32)
    for i, image in enumerate(images):
        r, c = divmod(i, columns)
        grid[r * (height + 2) + 1 : r * (height + 2) + 1 + height, c * (width + 2) + 1 : c * (width + 2) + 1 + width] = image
    pixels = (np.clip(grid, 0, 1) * 255).round().astype(np.uint8)
    raw = b"".join(b"\x00" + row.tobytes() for row in pixels)

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", pixels.shape[1], pixels.shape[0], 8, 0, 0, 0, 0)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw, 9))
                + chunk(b"IEND", b""))
