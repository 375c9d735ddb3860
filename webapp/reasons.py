"""What each refusal reason code means, in words a user understands."""

#: reason code -> sentence shown on pages and in the upload widget
REASONS = {
    "size_mismatch": "The uploaded bytes did not match the declared size.",
    "too_large": "The file is larger than allowed.",
    "quota_exceeded": "The file would have taken you over your storage quota.",
    "type_not_allowed": "This kind of file is not accepted.",
    "type_mismatch": "The file's content does not match its declared type.",
    "malware": "Malware was found in this file.",
    "scan_incomplete": "The virus scanner could not finish scanning this file.",
    "scan_limits_exceeded": "The virus scanner could not read all of this file (it is too large, or holds "
    "too much or too deeply nested content), so it is not served.",
    "too_large_to_scan": "The file is larger than the virus scanner can check.",
    "scan_failed": "The file could not be checked (the checks failed repeatedly), so it is not served.",
    "object_missing": "The file's bytes never arrived in storage.",
    "modified_during_scan": "The file kept changing while it was being checked.",
    "image_corrupt": "The image is damaged or not a real image.",
    "image_too_many_pixels": "The image has too many pixels.",
    "image_too_large": "The image file is too large to check.",
    "expired": "The upload was never finished.",
    "pdf_active_content": "The PDF contains JavaScript, forms that send data, embedded media, or actions that "
    "launch programs, open other files or open web pages by themselves.",
    "pdf_encrypted": "The PDF is encrypted, so its contents cannot be checked.",
    "pdf_corrupt": "The PDF is damaged and cannot be checked.",
    "pdf_too_large_to_check": "The PDF is too large to check for active content.",
    "pdf_too_complex": "The PDF is too complex to check in the time and memory allowed.",
    "zip_corrupt": "The archive is damaged or not a real ZIP file.",
    "zip_too_many_entries": "The archive holds too many files.",
    "zip_too_large_uncompressed": "The archive unpacks to more than is allowed.",
    "zip_compression_ratio": "The archive is compressed suspiciously well (a zip bomb).",
    "zip_path_traversal": "The archive holds paths that climb out of their folder.",
    "zip_symlink": "The archive holds symbolic links.",
    "zip_nested_archive": "The archive holds other archives.",
    "zip_directory_too_large": "The archive's table of contents is larger than allowed.",
    "zip_encrypted": "The archive holds encrypted files, which cannot be checked for malware.",
    "zip_unsupported_compression": "The archive uses a compression method that cannot be checked safely.",
    "zip_overlapping_entries": "The archive's files overlap one another (a zip bomb).",
    "blocked_content": "This content has been blocked by a moderator.",
    "removed_by_moderator": "Removed by a moderator.",
    "approved_by_moderator": "The scanner flagged this file; a moderator reviewed it and approved it.",
}


def reason_text(code):
    """The sentence for a reason code (the code itself if it has none)."""
    return REASONS.get(code, code or "")
