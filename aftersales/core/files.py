"""What an uploaded file is, by its first bytes (the name and the declared type are not trusted)."""

from __future__ import annotations

# kind → its file extension and a test of the file's first 16 bytes
SIGNATURES = {
    "image/jpeg": ("jpg", lambda h: h.startswith(b"\xff\xd8\xff")),
    "image/png": ("png", lambda h: h.startswith(b"\x89PNG\r\n\x1a\n")),
    "image/webp": ("webp", lambda h: h[:4] == b"RIFF" and h[8:12] == b"WEBP"),
    "application/pdf": ("pdf", lambda h: h.startswith(b"%PDF-")),
}
IMAGES = ("image/jpeg", "image/png", "image/webp")


def sniff(upload, kinds=tuple(SIGNATURES)) -> str | None:
    """The kind among ``kinds`` the upload's first bytes show, or None; the upload is left at
    its start."""
    try:
        upload.seek(0)
        head = upload.read(16)
        upload.seek(0)
    except (AttributeError, OSError, ValueError):
        return None
    return next((k for k in kinds if SIGNATURES[k][1](head)), None)


def extension(kind: str) -> str:
    return SIGNATURES[kind][0]
