import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fablab.domain.filetypes import MetadataError
from fablab.services.thumbnails import BACKGROUND, make_thumbnail, render_mesh

DATA = Path(__file__).parents[1] / "data" / "designs"


def _image(png: bytes) -> Image.Image:
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    img = Image.open(io.BytesIO(png))
    img.load()
    return img


@pytest.mark.parametrize("name", ["part_binary.stl", "part_ascii.stl", "part.3mf", "part.obj"])
def test_mesh_thumbnails_show_the_part(name):
    img = _image(make_thumbnail(DATA / name, Path(name).suffix, size=128))
    assert img.size == (128, 128)
    pixels = np.asarray(img.convert("RGB")).reshape(-1, 3)
    drawn = (pixels != BACKGROUND).any(axis=1)
    # The part fills a good share of the card but not all of it (margin), and is shaded, not flat.
    assert 0.15 < drawn.mean() < 0.8
    assert len(np.unique(pixels[drawn], axis=0)) >= 3  # at least three differently lit faces
    assert not drawn.reshape(128, 128)[:4].any()  # top margin untouched


def test_render_uses_a_depth_buffer_not_drawing_order():
    # A big square facing the camera and, in front of it, a small square tilted away: they are lit
    # differently, and the centre pixel must show the nearer one whatever the triangle order.
    to_cam = np.array([1.0, -1.0, 1.0]) / np.sqrt(3)
    u = np.cross(to_cam, [0, 0, 1.0])
    u /= np.linalg.norm(u)
    v = np.cross(to_cam, u)

    def square(centre, a, b, half):
        p = [centre + half * (sa * a + sb * b) for sa, sb in ((-1, -1), (1, -1), (1, 1), (-1, 1))]
        return [[p[0], p[1], p[2]], [p[0], p[2], p[3]]]

    tilted = (v + 1.5 * to_cam) / np.linalg.norm(v + 1.5 * to_cam)
    far = square(np.zeros(3), u, v, 2.0)
    near = square(to_cam * 3.0, u, tilted, 0.4)

    def centre(tris):
        img = np.asarray(render_mesh(np.array(tris), size=65))
        return tuple(img[32, 32])

    alone_far, alone_near = centre(far), centre(near)
    assert alone_far != alone_near
    assert centre(far + near) == alone_near
    assert centre(near + far) == alone_near


def test_image_thumbnail(tmp_path):
    src = tmp_path / "photo.png"
    Image.new("RGB", (800, 400), (200, 30, 30)).save(src)
    img = _image(make_thumbnail(src, ".png", size=100))
    assert img.size == (100, 100)
    assert img.getpixel((50, 50)) == (200, 30, 30)
    assert img.getpixel((50, 5)) == BACKGROUND  # letterboxed


def test_placeholder_for_files_without_a_picture():
    img = _image(make_thumbnail(DATA / "cura.gcode", ".gcode", size=96))
    assert img.size == (96, 96)
    colours = np.unique(np.asarray(img.convert("RGB")).reshape(-1, 3), axis=0)
    assert len(colours) > 2  # a card with a label, not a blank square


def test_broken_image_and_mesh_raise_metadata_error(tmp_path):
    bad = tmp_path / "x.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    with pytest.raises(MetadataError):
        make_thumbnail(bad, ".png")
    with pytest.raises(MetadataError):
        make_thumbnail((DATA / "part_binary.stl").read_bytes()[:500], ".stl")
