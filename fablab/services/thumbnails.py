"""PNG thumbnails for design lists: an isometric, flat-shaded render of a mesh (numpy z-buffer), a
downscaled image, or a labelled placeholder. No flask: paths/bytes in, PNG bytes out."""

from __future__ import annotations

import io
import math

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from fablab.domain.filetypes import MetadataError
from fablab.domain.mesh_meta import Source, mesh_triangles
from fablab.domain.upload_budget import Budget, Limits

SIZE = 256
BACKGROUND = (244, 243, 238)
MESH_COLOUR = np.array([46, 125, 150], dtype=np.float64)
MAX_IMAGE_PIXELS = Limits().pixels  # the default; a budget brings the lab's own limit
_CANDIDATES_PER_PASS = 500_000  # bounds memory of the rasteriser (about 20 arrays of this length a pass)
_MAX_CANDIDATES = 4_000_000  # bounds its time (about 2 s): pixel candidates over all triangles
# Pillow's own guard, for any decode that does not come through image_thumbnail: past twice this it
# raises instead of decoding (a 58 KB PNG can be 60 megapixels, 240 MB once decoded).
Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS


def _png(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def _camera(azimuth_deg: float = -45.0, elevation_deg: float = 35.264) -> tuple[np.ndarray, ...]:
    """Unit vectors (towards the camera, screen right, screen up) for a view from front-right-top, Z up."""
    az, el = math.radians(azimuth_deg), math.radians(elevation_deg)
    to_cam = np.array([math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el)])
    right = np.cross(-to_cam, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    up = np.cross(right, -to_cam)
    return to_cam, right, up


def render_mesh(tri: np.ndarray, size: int = SIZE) -> Image.Image:
    """Isometric flat-shaded render of triangles (n, 3, 3) with a z-buffer; returns an RGB image."""
    to_cam, right, up = _camera()
    tri = np.asarray(tri, dtype=np.float64)
    pts = tri.reshape(-1, 3)
    sx, sy, depth = pts @ right, pts @ up, pts @ to_cam
    margin = size * 0.08
    span = max(np.ptp(sx), np.ptp(sy), 1e-9)
    scale = (size - 2 * margin) / span
    px = (sx - (sx.min() + sx.max()) / 2) * scale + size / 2
    py = size / 2 - (sy - (sy.min() + sy.max()) / 2) * scale
    px, py, depth = px.reshape(-1, 3), py.reshape(-1, 3), depth.reshape(-1, 3)

    # Flat shading: a light a little above and left of the camera; both sides lit (STL winding varies).
    normals = np.cross(tri[:, 1] - tri[:, 0], tri[:, 2] - tri[:, 0])
    lengths = np.linalg.norm(normals, axis=1)
    keep = lengths > 0
    light = to_cam + 0.6 * up - 0.4 * right
    light /= np.linalg.norm(light)
    shade = np.zeros(len(tri))
    shade[keep] = np.abs(normals[keep] @ light) / lengths[keep]
    shade = 0.30 + 0.70 * shade

    # Pixel centres (i + 0.5) each triangle's screen box may contain.
    i0 = np.clip(np.ceil(px.min(axis=1) - 0.5), 0, size - 1).astype(np.int64)
    i1 = np.clip(np.floor(px.max(axis=1) - 0.5), 0, size - 1).astype(np.int64)
    j0 = np.clip(np.ceil(py.min(axis=1) - 0.5), 0, size - 1).astype(np.int64)
    j1 = np.clip(np.floor(py.max(axis=1) - 0.5), 0, size - 1).astype(np.int64)
    w, h = i1 - i0 + 1, j1 - j0 + 1
    counts = np.where((w > 0) & (h > 0) & keep, w * h, 0)
    total = int(counts.sum())
    if total > _MAX_CANDIDATES:
        # Work grows with covered pixels, not triangles: a million big overlapping triangles (a file made
        # to be slow) would take hours. Drawing every k-th of them gives the same picture in bounded time.
        thin = np.zeros_like(counts)
        step = math.ceil(total / _MAX_CANDIDATES)
        thin[::step] = counts[::step]
        counts = thin

    zbuf = np.full(size * size, -np.inf)
    colour = np.zeros(size * size)
    covered = np.zeros(size * size, dtype=bool)
    order = np.nonzero(counts)[0]
    cum = np.cumsum(counts[order])
    start = 0
    while start < len(order):
        # Take triangles until the pass holds about _CANDIDATES_PER_PASS pixel candidates.
        base = cum[start - 1] if start else 0
        stop = max(start + 1, int(np.searchsorted(cum, base + _CANDIDATES_PER_PASS, side="right")))
        idx = order[start:stop]
        start = stop
        n = counts[idx]
        t = np.repeat(idx, n)
        local = np.arange(n.sum()) - np.repeat(np.cumsum(n) - n, n)
        ii = i0[t] + local % w[t]
        jj = j0[t] + local // w[t]
        cx, cy = ii + 0.5, jj + 0.5
        ax, bx, qx = px[t, 0], px[t, 1], px[t, 2]
        ay, by, qy = py[t, 0], py[t, 1], py[t, 2]
        denom = (by - qy) * (ax - qx) + (qx - bx) * (ay - qy)
        with np.errstate(divide="ignore", invalid="ignore"):
            l1 = ((by - qy) * (cx - qx) + (qx - bx) * (cy - qy)) / denom
            l2 = ((qy - ay) * (cx - qx) + (ax - qx) * (cy - qy)) / denom
        l3 = 1.0 - l1 - l2
        eps = -1e-7
        inside = (l1 >= eps) & (l2 >= eps) & (l3 >= eps) & (denom != 0)
        if not inside.any():
            continue
        t, l1, l2, l3 = t[inside], l1[inside], l2[inside], l3[inside]
        pid = (jj[inside] * size + ii[inside]).astype(np.int64)
        z = l1 * depth[t, 0] + l2 * depth[t, 1] + l3 * depth[t, 2]
        # Nearest candidate per pixel in this pass, then against the z-buffer.
        srt = np.lexsort((-z, pid))
        pid, z, t = pid[srt], z[srt], t[srt]
        first = np.ones(len(pid), dtype=bool)
        first[1:] = pid[1:] != pid[:-1]
        pid, z, t = pid[first], z[first], t[first]
        better = z > zbuf[pid]
        zbuf[pid[better]] = z[better]
        colour[pid[better]] = shade[t[better]]
        covered[pid[better]] = True

    img = np.empty((size * size, 3), dtype=np.float64)
    img[:] = BACKGROUND
    img[covered] = np.outer(colour[covered], MESH_COLOUR) + (1 - colour[covered])[:, None] * 20
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8).reshape(size, size, 3), "RGB")


def mesh_thumbnail(src: Source, ext: str, size: int = SIZE, max_triangles: int = 400_000,
                   budget: Budget | None = None) -> bytes:
    """PNG of a mesh file (.stl/.3mf/.obj); very large meshes are thinned to about `max_triangles`."""
    return mesh_picture(mesh_triangles(src, ext, budget, keep_max=max_triangles), size)


def mesh_picture(tri: np.ndarray, size: int = SIZE, max_triangles: int = 400_000) -> bytes:
    """PNG of triangles already read (fablab.domain.mesh_meta.read_mesh)."""
    if len(tri) > max_triangles:
        tri = tri[:: math.ceil(len(tri) / max_triangles)]
    return _png(render_mesh(tri, size))


def _open_image(src: Source) -> Image.Image:
    data = src if isinstance(src, bytes | bytearray | memoryview) else None
    return Image.open(io.BytesIO(bytes(data)) if data is not None else src)  # type: ignore[arg-type]


def check_image(src: Source, budget: Budget) -> tuple[int, int]:
    """Width and height from the image's header only (nothing decoded), checked against the budget's
    pixel limit: a refusal (LimitExceeded) or a hand-over to the worker (NeedsWorker) costs no memory."""
    try:
        with _open_image(src) as opened:
            width, height = opened.size
    except (OSError, Image.DecompressionBombError, SyntaxError) as err:
        raise MetadataError(f"The image cannot be read ({err})") from None
    budget.pixels(width, height)
    return width, height


def image_thumbnail(src: Source, size: int = SIZE, budget: Budget | None = None) -> bytes:
    """PNG thumbnail of a PNG/JPEG/WebP (fit in size x size, on the list background). The pixel count is
    checked from the header before anything is decoded."""
    check_image(src, budget or Budget(Limits(pixels=MAX_IMAGE_PIXELS)))
    try:
        with _open_image(src) as opened:
            opened.draft("RGB", (size, size))  # JPEG: decode at a reduced scale
            img = opened if opened.mode in ("RGB", "RGBA", "L", "LA") else opened.convert("RGBA")
            img.thumbnail((size, size))  # shrinks in place, reducing by whole factors first
            img = img.convert("RGBA")
    except (OSError, Image.DecompressionBombError, SyntaxError) as err:
        raise MetadataError(f"The image cannot be read ({err})") from None
    canvas = Image.new("RGB", (size, size), BACKGROUND)
    canvas.paste(img, ((size - img.width) // 2, (size - img.height) // 2), img)
    return _png(canvas)


def placeholder_thumbnail(label: str, size: int = SIZE) -> bytes:
    """A plain PNG card with a short label (e.g. "DXF", "G-code") for files that have no picture."""
    img = Image.new("RGB", (size, size), BACKGROUND)
    draw = ImageDraw.Draw(img)
    pad = size // 6
    draw.rounded_rectangle((pad, pad, size - pad, size - pad), radius=size // 16, outline=(120, 120, 110),
                           width=max(2, size // 64))
    font = ImageFont.load_default(size=max(10, size // 7))
    text = label[:8]
    box = draw.textbbox((0, 0), text, font=font)
    draw.text(((size - (box[2] - box[0])) / 2 - box[0], (size - (box[3] - box[1])) / 2 - box[1]), text,
              fill=(70, 70, 64), font=font)
    return _png(img)


def make_thumbnail(src: Source, ext: str, size: int = SIZE, budget: Budget | None = None) -> bytes:
    """The best thumbnail for a file by extension: mesh render, image, or a placeholder card."""
    ext = ext.lower()
    if ext in (".stl", ".3mf", ".obj"):
        return mesh_thumbnail(src, ext, size, budget=budget)
    if ext in (".png", ".jpg", ".jpeg", ".webp"):
        return image_thumbnail(src, size, budget)
    labels = {".gcode": "G-code", ".gco": "G-code", ".g": "G-code", ".nc": "CNC", ".md": "README",
              ".txt": "TEXT", ".step": "STEP", ".stp": "STEP"}
    return placeholder_thumbnail(labels.get(ext, ext.lstrip(".").upper() or "FILE"), size)
