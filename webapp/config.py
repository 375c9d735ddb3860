"""Configuration read from environment variables, with dev/test/production defaults."""

import ipaddress
import os
import secrets
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
INSTANCE = ROOT / "instance"

MiB = 1024 * 1024

#: MIME types accepted by default, mapped to the extension used in object keys.
DEFAULT_ALLOWED_TYPES = {
    "image/png": "png",
    "image/jpeg": "jpg",
    "image/gif": "gif",
    "image/webp": "webp",
    "application/pdf": "pdf",
    "text/plain": "txt",
    "text/csv": "csv",
    "application/zip": "zip",
    "video/mp4": "mp4",
    "audio/mpeg": "mp3",
}

#: Settings every production deployment must provide.
REQUIRED_IN_PRODUCTION = ("SECRET_KEY", "DATABASE_URL", "REDIS_URL", "S3_BUCKET", "CLAMD_URL")

#: The environments; production is the default, so a deployment that names none fails closed.
ENVIRONMENTS = ("development", "testing", "production")

#: Shortest SECRET_KEY production accepts (32 random bytes, hex- or base64-encoded, are longer).
MIN_SECRET_KEY_LENGTH = 32
#: Keys that have been printed in this repository: never accepted in production.
PUBLIC_SECRET_KEYS = {"dev-only-secret-not-for-production"}


class ConfigError(RuntimeError):
    """The environment does not describe a runnable deployment."""


def networks(value):
    """Comma-separated CIDRs as ip_network objects; ConfigError for one that is not."""
    try:
        return [ipaddress.ip_network(part.strip(), strict=False) for part in value.split(",") if part.strip()]
    except ValueError as exc:
        raise ConfigError(f"not a network: {exc}") from None


def _env(env, name, default=None):
    value = env.get(name)
    return default if value in (None, "") else value


def _allowed_types(env):
    raw = _env(env, "ALLOWED_TYPES")
    if not raw:
        return dict(DEFAULT_ALLOWED_TYPES)
    types = [t.strip().lower() for t in raw.split(",") if t.strip()]
    return {t: DEFAULT_ALLOWED_TYPES.get(t, "bin") for t in types}


def development_secret_key():
    """A random key kept in instance/secret_key, made on first use: never one printed in the code."""
    path = INSTANCE / "secret_key"
    if path.is_file() and (key := path.read_text().strip()):
        return key
    INSTANCE.mkdir(parents=True, exist_ok=True)
    # Written whole under a temporary name, then linked into place only if no key is there yet:
    # processes starting together all end up with the first one's key, and none reads half a key.
    temporary = path.with_name(f".secret_key.{os.getpid()}")
    with os.fdopen(os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as out:
        out.write(secrets.token_hex(32))
    try:
        if path.is_file():
            os.replace(temporary, path)  # an empty file left behind: replace it
        else:
            os.link(temporary, path)
    except FileExistsError:
        pass
    finally:
        temporary.unlink(missing_ok=True)
    return path.read_text().strip()


def _secret_key(env_name, configured):
    if configured:
        if env_name == "production" and (len(configured) < MIN_SECRET_KEY_LENGTH or configured in PUBLIC_SECRET_KEYS):
            raise ConfigError(f"SECRET_KEY must be at least {MIN_SECRET_KEY_LENGTH} characters of random data")
        return configured
    if env_name == "development":
        return development_secret_key()
    return secrets.token_hex(32)  # testing: a new key per process


def load_config(env_name=None, environ=None):
    """Build the settings dict for env_name (default: $SATCHEL_ENV, else production)."""
    env = os.environ if environ is None else environ
    env_name = env_name or _env(env, "SATCHEL_ENV", "production")
    if env_name not in ENVIRONMENTS:
        raise ConfigError(f"unknown SATCHEL_ENV {env_name!r} (one of {', '.join(ENVIRONMENTS)})")
    dev = env_name != "production"

    def get(name, default=None):
        return _env(env, name, default)

    def num(name, default):
        return int(get(name, default))

    if env_name == "production":
        missing = [name for name in REQUIRED_IN_PRODUCTION if not get(name)]
        if missing:
            raise ConfigError(
                "production needs these environment variables: "
                + ", ".join(missing)
                + " (or SATCHEL_ENV=development to run on local defaults)"
            )
        if get("SCANNER", "clamd") != "clamd":
            raise ConfigError("scanning cannot be disabled in production")

    if num("UPLOAD_URL_TTL", 600) > 900 or num("DOWNLOAD_URL_TTL", 120) > 300:
        raise ConfigError("upload URLs must expire within 900 s and download URLs within 300 s")
    redis_url = get("REDIS_URL", "redis://127.0.0.1:6379/0")
    # As far as ClamAV really scans: its INSTREAM refuses streams from a little under 2 GiB (1950 MiB
    # passed `flask scanner check` with clamd 1.4, 1975 MiB did not).
    max_upload = num("MAX_UPLOAD_BYTES", 1900 * MiB)
    return {
        "ENV_NAME": env_name,
        "TESTING": env_name == "testing",
        "SECRET_KEY": _secret_key(env_name, get("SECRET_KEY")),
        # Werkzeug's scrypt; the tests, which create accounts by the thousand, use 1/32 of its work.
        # Not read from the environment: no deployment can weaken it.
        "PASSWORD_HASH_METHOD": "scrypt:1024:8:1" if env_name == "testing" else "scrypt",
        "SQLALCHEMY_DATABASE_URI": get("DATABASE_URL", f"sqlite:///{INSTANCE / 'satchel.db'}"),
        "SQLALCHEMY_ENGINE_OPTIONS": {"pool_pre_ping": True},
        "REDIS_URL": redis_url,
        # S3-compatible storage
        "S3_ENDPOINT_URL": get("S3_ENDPOINT_URL"),
        "S3_BUCKET": get("S3_BUCKET", "satchel-dev" if dev else None),
        "S3_REGION": get("S3_REGION", "us-east-1"),
        "S3_ACCESS_KEY_ID": get("S3_ACCESS_KEY_ID", get("AWS_ACCESS_KEY_ID", "testing" if dev else None)),
        # the largest object one CopyObject copies (5 GiB on S3); larger ones are copied in parts
        "S3_MAX_SINGLE_COPY": num("S3_MAX_SINGLE_COPY", 5 * 1024 * MiB),
        "S3_SECRET_ACCESS_KEY": get("S3_SECRET_ACCESS_KEY", get("AWS_SECRET_ACCESS_KEY", "testing" if dev else None)),
        # Scanning: "clamd", or "disabled" (development only; every page then says so)
        "SCANNER": get("SCANNER", "clamd"),
        "CLAMD_URL": get("CLAMD_URL", "tcp://127.0.0.1:3310"),
        "CLAMD_TIMEOUT": float(get("CLAMD_TIMEOUT", "120")),
        # the largest file the configured clamd really reads whole (its MaxFileSize, MaxScanSize and
        # StreamMaxLength); larger files are refused, and `flask scanner check` proves the figure
        "SCANNER_MAX_BYTES": num("SCANNER_MAX_BYTES", max_upload),
        # address space one scan job may use before it fails (counted against the upload)
        "SCAN_MEMORY_LIMIT": num("SCAN_MEMORY_LIMIT", 2048 * MiB),
        # Limits
        "MAX_UPLOAD_BYTES": max_upload,
        "DEFAULT_QUOTA_BYTES": num("DEFAULT_QUOTA_BYTES", 2048 * MiB),
        "MULTIPART_THRESHOLD": num("MULTIPART_THRESHOLD", 64 * MiB),
        "MULTIPART_PART_SIZE": num("MULTIPART_PART_SIZE", 16 * MiB),
        # the upload widget: parts of one file in flight at once, and files uploading at once
        "UPLOAD_PARALLEL_PARTS": max(1, num("UPLOAD_PARALLEL_PARTS", 4)),
        "UPLOAD_PARALLEL_FILES": max(1, num("UPLOAD_PARALLEL_FILES", 3)),
        "UPLOAD_URL_TTL": num("UPLOAD_URL_TTL", 600),
        "DOWNLOAD_URL_TTL": num("DOWNLOAD_URL_TTL", 120),
        "PENDING_UPLOAD_TTL": num("PENDING_UPLOAD_TTL", 24 * 3600),
        "MAX_FILENAME_BYTES": 255,
        "MAX_IMAGE_PIXELS": num("MAX_IMAGE_PIXELS", 40_000_000),
        "MAX_IMAGE_BYTES": num("MAX_IMAGE_BYTES", 64 * MiB),
        "THUMBNAIL_SIZE": 320,
        # share links serve JPEG, PNG and WebP images re-encoded without location and camera metadata
        "STRIP_SHARED_IMAGE_METADATA": get("STRIP_SHARED_IMAGE_METADATA", "true").lower() not in ("0", "false", "no"),
        # "reject" PDFs with JavaScript or launch actions, or "allow" them
        "PDF_ACTIVE_CONTENT": get("PDF_ACTIVE_CONTENT", "reject"),
        "MAX_PDF_BYTES": num("MAX_PDF_BYTES", 64 * MiB),
        "ZIP_MAX_ENTRIES": num("ZIP_MAX_ENTRIES", 10_000),
        "ZIP_MAX_TOTAL_BYTES": num("ZIP_MAX_TOTAL_BYTES", 1024 * MiB),
        "ZIP_MAX_RATIO": num("ZIP_MAX_RATIO", 100),
        # refused from the end-of-central-directory record, before the directory is parsed
        "ZIP_MAX_DIRECTORY_BYTES": num("ZIP_MAX_DIRECTORY_BYTES", 4 * MiB),
        # PDF inspection budget: objects visited and seconds spent before a PDF is refused
        "PDF_MAX_OBJECTS": num("PDF_MAX_OBJECTS", 200_000),
        "PDF_CHECK_SECONDS": float(get("PDF_CHECK_SECONDS", "10")),
        "ALLOWED_TYPES": _allowed_types(env),
        "FILES_PER_PAGE": num("FILES_PER_PAGE", 25),
        "SCAN_JOB_RETRIES": num("SCAN_JOB_RETRIES", 5),
        # files of one user waiting for a verdict before the rest queue behind other users' scans
        "SCAN_FAIR_SHARE": max(num("SCAN_FAIR_SHARE", 8), 1),
        # scans of one upload that may crash, time out or fail on the file before it is rejected
        "MAX_SCAN_FAILURES": num("MAX_SCAN_FAILURES", 3),
        # Maintenance: how often each task runs, and how long things may sit before it acts
        "MAINTENANCE_INTERVAL": num("MAINTENANCE_INTERVAL", 300),
        "SWEEP_INTERVAL": num("SWEEP_INTERVAL", 3600),
        "STUCK_AFTER": num("STUCK_AFTER", 900),
        # how often each worker looks for jobs abandoned by a dead worker (RQ's default is 10 minutes)
        "WORKER_MAINTENANCE_INTERVAL": num("WORKER_MAINTENANCE_INTERVAL", 60),
        # seconds past its timeout before a job that no timeout signal can stop has its worker killed
        "JOB_HANG_GRACE": num("JOB_HANG_GRACE", 30),
        # never shorter than a scan can take between its promotion copy and its commit
        "ORPHAN_GRACE": max(num("ORPHAN_GRACE", 24 * 3600), 3600),
        "PURGE_AFTER": num("PURGE_AFTER", 3600),
        "QUEUE_PREFIX": get("QUEUE_PREFIX", "satchel"),
        # HTTP
        "MAX_CONTENT_LENGTH": 1 * MiB,  # request bodies only: file bytes never pass through the app
        "SESSION_COOKIE_HTTPONLY": True,
        "SESSION_COOKIE_SAMESITE": "Lax",
        "SESSION_COOKIE_SECURE": not dev,
        "REMEMBER_COOKIE_HTTPONLY": True,
        "REMEMBER_COOKIE_SAMESITE": "Lax",
        "REMEMBER_COOKIE_SECURE": not dev,
        "WTF_CSRF_TIME_LIMIT": None,  # the token lives as long as the session
        "WTF_CSRF_CHECK_DEFAULT": False,  # checked by auth/sessions.py, which exempts API-token calls
        "RATELIMIT_STORAGE_URI": get("RATELIMIT_STORAGE_URI", redis_url),
        # No X-RateLimit-* headers: they cost two Redis round trips per request; a 429 carries Retry-After.
        "RATELIMIT_HEADERS_ENABLED": False,
        # Redis away: count in memory per process rather than fail every request
        "RATELIMIT_IN_MEMORY_FALLBACK_ENABLED": True,
        "RATELIMIT_SWALLOW_ERRORS": True,
        "RATELIMIT_ENABLED": env_name != "testing",
        # failed logins per account, and login attempts per client address
        "LOGIN_LIMIT_PER_ACCOUNT": get("LOGIN_LIMIT_PER_ACCOUNT", "5 per 15 minutes"),
        "LOGIN_LIMIT_PER_IP": get("LOGIN_LIMIT_PER_IP", "30 per minute"),
        # failed logins to one account from all addresses together
        "LOGIN_LIMIT_ACROSS_ADDRESSES": get("LOGIN_LIMIT_ACROSS_ADDRESSES", "100 per hour"),
        "PRESIGN_LIMIT": get("PRESIGN_LIMIT", "60 per minute"),
        "DOWNLOAD_LIMIT": get("DOWNLOAD_LIMIT", "30 per minute"),
        "MAX_PENDING_UPLOADS": num("MAX_PENDING_UPLOADS", 50),
        # password attempts on share links, per link and per address
        "SHARE_UNLOCK_LIMIT_PER_LINK": get("SHARE_UNLOCK_LIMIT_PER_LINK", "10 per 10 minutes"),
        "SHARE_UNLOCK_LIMIT_PER_IP": get("SHARE_UNLOCK_LIMIT_PER_IP", "30 per hour"),
        # Uploads started through file requests, per address (a request's password goes by the share limits).
        "REQUEST_UPLOAD_LIMIT_PER_IP": get("REQUEST_UPLOAD_LIMIT_PER_IP", "100 per hour"),
        # A sender's uploads waiting for their bytes, per request; and how long one waits before it
        # expires and stops holding the owner's quota (an owner's own wait PENDING_UPLOAD_TTL).
        "REQUEST_MAX_PENDING_PER_SENDER": num("REQUEST_MAX_PENDING_PER_SENDER", 10),
        "REQUEST_PENDING_UPLOAD_TTL": num("REQUEST_PENDING_UPLOAD_TTL", 3600),
        # New file requests per user
        "REQUEST_CREATE_LIMIT": get("REQUEST_CREATE_LIMIT", "30 per hour"),
        "REGISTER_LIMIT_PER_IP": get("REGISTER_LIMIT_PER_IP", "10 per hour"),
        # Webhook deliveries: seconds to connect, and to wait for each read of the answer; a CA bundle
        # to verify receivers with instead of the system's (a private CA)
        "WEBHOOK_CONNECT_TIMEOUT": num("WEBHOOK_CONNECT_TIMEOUT", 5),
        "WEBHOOK_TIMEOUT": num("WEBHOOK_TIMEOUT", 10),
        "WEBHOOK_CA_BUNDLE": get("WEBHOOK_CA_BUNDLE", ""),
        # /metrics: scrapers with this bearer token, or from these networks (comma-separated CIDRs)
        "METRICS_TOKEN": get("METRICS_TOKEN", ""),
        "METRICS_ALLOW_NETWORKS": networks(get("METRICS_ALLOW_NETWORKS", "127.0.0.0/8,::1/128")),
        # S3 ObjectCreated notifications at /api/storage-events: the shared secret they carry
        "STORAGE_EVENTS_SECRET": get("STORAGE_EVENTS_SECRET", ""),
        # "open": anyone may sign up; "closed": only admins make accounts
        "REGISTRATION": get("REGISTRATION", "open"),
        # sessions end after this long without a request, and this long after login whatever happens
        "SESSION_IDLE_TIMEOUT": num("SESSION_IDLE_TIMEOUT", 12 * 3600),
        "SESSION_MAX_AGE": num("SESSION_MAX_AGE", 7 * 24 * 3600),
        # reverse proxies in front of the app whose X-Forwarded-* headers are trusted (0: none)
        "TRUSTED_PROXY_HOPS": num("TRUSTED_PROXY_HOPS", 0),
        # /readyz answers from a cache this fresh, so a flood cannot exhaust clamd's connections
        "READYZ_CACHE_SECONDS": float(get("READYZ_CACHE_SECONDS", "2")),
        "SQLALCHEMY_TRACK_MODIFICATIONS": False,
        # "json" (one object per line), "text", or "none" to leave logging alone (the tests)
        "LOG_FORMAT": get("LOG_FORMAT", {"production": "json", "development": "text"}.get(env_name, "none")),
        "LOG_LEVEL": get("LOG_LEVEL", "INFO").upper(),
    }
