"""Jinja filters and globals."""


def filesize(value):
    """Human-readable bytes: 1.5 MB."""
    value = float(value or 0)
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            return f"{int(value)} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TB"


REASONS = {
    "size_mismatch": "The uploaded bytes did not match the declared size.",
    "too_large": "The file is larger than allowed.",
    "type_not_allowed": "This kind of file is not accepted.",
    "type_mismatch": "The file's content does not match its declared type.",
    "malware": "Malware was found in this file.",
    "scan_incomplete": "The virus scanner could not finish scanning this file.",
    "object_missing": "The file's bytes never arrived in storage.",
    "modified_during_scan": "The file kept changing while it was being checked.",
    "image_corrupt": "The image is damaged or not a real image.",
    "image_too_many_pixels": "The image has too many pixels.",
    "image_too_large": "The image file is too large to check.",
    "expired": "The upload was never finished.",
}


def register(app):
    """Install filters and globals on app."""
    app.jinja_env.filters["filesize"] = filesize

    @app.context_processor
    def globals_():
        return {
            "scanning_disabled": app.config["SCANNER"] != "clamd",
            "reason_text": lambda code: REASONS.get(code, code or ""),
        }
