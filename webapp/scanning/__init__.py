"""Content checks on uploaded bytes: type sniffing, clamd, images, archives, PDFs. No Flask, no DB."""
