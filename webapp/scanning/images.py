"""Image sanity: decode within a pixel cap, a preview rebuilt from the pixels alone, and a copy for
sharing without location or camera metadata."""

import io
import warnings

from PIL import Image, ImageOps, UnidentifiedImageError


class ImageRejected(Exception):
    """The image cannot be decoded safely; .reason is the code."""

    def __init__(self, reason):
        super().__init__(reason)
        self.reason = reason


def check_image(data, max_pixels, thumbnail_size):
    """Decode an image within max_pixels; return a PNG thumbnail rebuilt from its pixels."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as probe:
                width, height = probe.size
                if width * height > max_pixels:
                    raise ImageRejected("image_too_many_pixels")
                probe.verify()
            with Image.open(io.BytesIO(data)) as image:
                image.load()
                image.thumbnail((thumbnail_size, thumbnail_size))
                # Only pixels survive: no comments, EXIF, ICC or trailing bytes.
                pixels = Image.new("RGBA" if image.mode in ("RGBA", "LA", "P") else "RGB", image.size)
                pixels.paste(image.convert(pixels.mode))
    except ImageRejected:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageRejected("image_too_many_pixels") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, EOFError):
        raise ImageRejected("image_corrupt") from None
    out = io.BytesIO()
    pixels.save(out, format="PNG")
    return out.getvalue()


#: The formats a metadata-free copy is made of, and how each is written again.
STRIPPABLE = {
    "image/jpeg": ("JPEG", {"quality": 92}),
    "image/png": ("PNG", {}),
    "image/webp": ("WEBP", {"quality": 90}),
}


def strip_metadata(data, mime):
    """The image re-encoded from its pixels, turned as its EXIF orientation says, keeping its colour
    profile and transparency: no EXIF (GPS, maker notes), XMP, comments or text chunks survive. An
    animation keeps its first frame. data was checked by check_image first."""
    fmt, options = STRIPPABLE[mime]
    with Image.open(io.BytesIO(data)) as image:
        image.load()
        icc = image.info.get("icc_profile")
        upright = ImageOps.exif_transpose(image)
        if upright.mode in ("I;16", "I;16B", "I;16L", "I"):
            upright = upright.point(lambda value: value / 257).convert("L")  # 16 bits to 8, not clipped
        keeps_alpha = fmt != "JPEG" and (upright.mode in ("RGBA", "LA", "PA", "P") or "transparency" in upright.info)
        mode = "RGBA" if keeps_alpha else ("L" if upright.mode in ("L", "1") else "RGB")
        pixels = Image.new(mode, upright.size)
        pixels.paste(upright.convert(mode))
    if icc:
        options = {**options, "icc_profile": icc}
    out = io.BytesIO()
    pixels.save(out, format=fmt, **options)
    return out.getvalue()
