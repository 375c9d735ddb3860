"""The S3 adapter: every boto3 call in Satchel lives in this module."""

import io
import threading

import boto3
from botocore.config import Config as BotoConfig
from botocore.exceptions import BotoCoreError, ClientError

INCOMING = "incoming"
FILES = "files"
DERIVATIVES = "derivatives"


class StorageError(Exception):
    """S3 could not be reached or refused in a way that may pass (retry later)."""


class ObjectMissing(StorageError):
    """The object (or multipart upload) does not exist."""


class PreconditionFailed(StorageError):
    """The object changed since it was read (ETag no longer matches)."""


#: Seconds a readiness probe gives the bucket to answer.
PROBE_TIMEOUT = 2
GiB = 1024**3
#: S3's limits: the largest object one CopyObject copies, and the parts of a multipart upload.
MAX_SINGLE_COPY = 5 * GiB
MIN_PART = 5 * 1024**2
MAX_PART = 5 * GiB
MAX_PARTS = 10_000

_NOT_FOUND = {"404", "NoSuchKey", "NotFound", "NoSuchUpload"}


def _translate(exc):
    if isinstance(exc, ClientError):
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code in _NOT_FOUND:
            return ObjectMissing(code)
        if code in ("412", "PreconditionFailed"):
            return PreconditionFailed(code)
        if code in ("InvalidPart", "InvalidPartOrder", "EntityTooSmall"):
            return ObjectMissing(code)
    return StorageError(str(exc))


_sessions = {}
_sessions_lock = threading.Lock()  # boto3 sessions must not build clients concurrently


def _client(credentials, **options):
    """An S3 client. Clients with the same credentials share one boto3 session, which parses the
    service's model once per process rather than once per client (about 0.1 s of CPU each)."""
    with _sessions_lock:
        session = _sessions.get(credentials)
        if session is None:
            access_key, secret_key, region = credentials
            session = _sessions[credentials] = boto3.session.Session(
                aws_access_key_id=access_key, aws_secret_access_key=secret_key, region_name=region
            )
        return session.client("s3", **options)


class Storage:
    """One bucket on an S3-compatible endpoint; signs URLs and moves objects."""

    def __init__(
        self,
        bucket,
        region="us-east-1",
        endpoint_url=None,
        access_key=None,
        secret_key=None,
        connect_timeout=5,
        read_timeout=30,
        max_single_copy=MAX_SINGLE_COPY,
    ):
        self.bucket = bucket
        self.max_single_copy = max_single_copy
        config = BotoConfig(
            signature_version="s3v4",
            s3={"addressing_style": "path" if endpoint_url else "auto"},
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            retries={"max_attempts": 2, "mode": "standard"},
        )
        credentials = (access_key, secret_key, region)
        self.client = _client(credentials, endpoint_url=endpoint_url, config=config)
        self._make_client = lambda **changes: _client(
            credentials, endpoint_url=endpoint_url, config=config.merge(BotoConfig(**changes))
        )
        self._probe_client = None
        self._probe_lock = threading.Lock()

    @classmethod
    def from_config(cls, config):
        """Build the adapter from the app's settings."""
        return cls(
            bucket=config["S3_BUCKET"],
            region=config["S3_REGION"],
            endpoint_url=config["S3_ENDPOINT_URL"],
            access_key=config["S3_ACCESS_KEY_ID"],
            secret_key=config["S3_SECRET_ACCESS_KEY"],
            max_single_copy=config["S3_MAX_SINGLE_COPY"],
        )

    def probe(self):
        """Raise StorageError unless the bucket answers a HEAD within PROBE_TIMEOUT seconds (no retries)."""
        with self._probe_lock:
            if self._probe_client is None:
                self._probe_client = self._make_client(
                    connect_timeout=PROBE_TIMEOUT,
                    read_timeout=PROBE_TIMEOUT,
                    retries={"max_attempts": 1, "mode": "standard"},
                )
        try:
            self._probe_client.head_bucket(Bucket=self.bucket)
        except (ClientError, BotoCoreError) as exc:
            raise _translate(exc) from exc

    def _call(self, method, **params):
        try:
            return getattr(self.client, method)(Bucket=self.bucket, **params)
        except (ClientError, BotoCoreError) as exc:
            raise _translate(exc) from exc

    # --- signing (local, no network) ---
    def _presign(self, operation, expires_in, http_method=None, **params):
        return self.client.generate_presigned_url(
            operation, Params={"Bucket": self.bucket, **params}, ExpiresIn=expires_in, HttpMethod=http_method
        )

    def presign_put(self, key, content_type, content_length, expires_in):
        """A URL that accepts exactly one PUT of content_length bytes of content_type."""
        return self._presign(
            "put_object", expires_in, "PUT", Key=key, ContentType=content_type, ContentLength=content_length
        )

    def presign_part(self, key, upload_id, part_number, content_length, expires_in):
        """A URL for one part of a multipart upload, signed for its exact length."""
        return self._presign(
            "upload_part",
            expires_in,
            "PUT",
            Key=key,
            UploadId=upload_id,
            PartNumber=part_number,
            ContentLength=content_length,
        )

    def presign_post(self, key, max_bytes, content_type, redirect, expires_in):
        """A browser form's target and fields for one POST of 1 to max_bytes bytes to key, stored as
        content_type, that redirects to redirect; the browser's file name rides in x-amz-meta-filename
        (S3 puts it in place of ${filename})."""
        fields = {
            "Content-Type": content_type,
            "success_action_redirect": redirect,
            "x-amz-meta-filename": "${filename}",
        }
        conditions = [
            ["content-length-range", 1, max_bytes],
            {"Content-Type": content_type},
            {"success_action_redirect": redirect},
            ["starts-with", "$x-amz-meta-filename", ""],
        ]
        return self.client.generate_presigned_post(
            self.bucket, key, Fields=fields, Conditions=conditions, ExpiresIn=expires_in
        )

    def presign_get(self, key, expires_in, filename_header, content_type):
        """A URL that downloads key with the given Content-Disposition and Content-Type."""
        return self._presign(
            "get_object",
            expires_in,
            Key=key,
            ResponseContentDisposition=filename_header,
            ResponseContentType=content_type,
        )

    # --- multipart ---
    def create_multipart(self, key, content_type):
        """Start a multipart upload and return its id."""
        return self._call("create_multipart_upload", Key=key, ContentType=content_type)["UploadId"]

    def complete_multipart(self, key, upload_id, parts):
        """Assemble the parts [(number, etag), ...] into the object; returns its ETag."""
        body = {"Parts": [{"PartNumber": n, "ETag": e} for n, e in sorted(parts)]}
        result = self._call("complete_multipart_upload", Key=key, UploadId=upload_id, MultipartUpload=body)
        return result.get("ETag")

    def list_parts(self, key, upload_id):
        """The parts storage holds for a multipart upload, every page of them, in part order:
        [{"part_number", "size", "etag", "modified"}]. ObjectMissing if the upload is gone."""
        parts = []
        pages = self.client.get_paginator("list_parts").paginate(Bucket=self.bucket, Key=key, UploadId=upload_id)
        try:
            for page in pages:
                for part in page.get("Parts", []):
                    parts.append(
                        {
                            "part_number": part["PartNumber"],
                            "size": part["Size"],
                            "etag": part["ETag"],
                            "modified": part["LastModified"],
                        }
                    )
        except (ClientError, BotoCoreError) as exc:
            raise _translate(exc) from exc
        return sorted(parts, key=lambda part: part["part_number"])

    def list_multipart_uploads(self, prefix):
        """Every unfinished multipart upload under prefix: key, upload id and when it began."""
        try:
            for page in self.client.get_paginator("list_multipart_uploads").paginate(Bucket=self.bucket, Prefix=prefix):
                for item in page.get("Uploads", []):
                    yield {"key": item["Key"], "upload_id": item["UploadId"], "initiated": item["Initiated"]}
        except (ClientError, BotoCoreError) as exc:
            raise _translate(exc) from exc

    def abort_multipart(self, key, upload_id):
        """Abort a multipart upload; an unknown one is already gone."""
        try:
            self._call("abort_multipart_upload", Key=key, UploadId=upload_id)
        except ObjectMissing:
            pass

    # --- objects ---
    def head(self, key):
        """Size, ETag, content type and user metadata of key; ObjectMissing if absent."""
        result = self._call("head_object", Key=key)
        return {
            "size": result["ContentLength"],
            "etag": result["ETag"],
            "content_type": result.get("ContentType"),
            "metadata": result.get("Metadata") or {},
        }

    def exists(self, key):
        """True when key exists."""
        try:
            self.head(key)
        except ObjectMissing:
            return False
        return True

    def read_range(self, key, start, length, etag=None):
        """Bytes [start, start+length) of key (fewer if the object is shorter)."""
        params = {"Key": key, "Range": f"bytes={start}-{start + length - 1}"}
        if etag:
            params["IfMatch"] = etag
        return self._call("get_object", **params)["Body"].read()

    def open_ranged(self, key, size, etag):
        """A read-only, seekable file over key that fetches only the ranges read (pinned to etag)."""
        return RangedReader(self, key, size, etag)

    def iter_chunks(self, key, etag=None, chunk_size=256 * 1024):
        """Stream key in chunks, failing with PreconditionFailed if it is not the given ETag."""
        params = {"Key": key}
        if etag:
            params["IfMatch"] = etag
        body = self._call("get_object", **params)["Body"]
        try:
            while True:
                try:
                    chunk = body.read(chunk_size)
                except (BotoCoreError, OSError) as exc:
                    raise StorageError(str(exc)) from exc
                if not chunk:
                    return
                yield chunk
        finally:
            body.close()

    def put(self, key, data, content_type):
        """Write a small object the server made itself (thumbnails)."""
        self._call("put_object", Key=key, Body=data, ContentType=content_type)

    def copy(self, source_key, dest_key, if_match, content_type, size):
        """Server-side copy of a size-byte object, only if the source still has ETag if_match.

        Past max_single_copy (CopyObject stops at 5 GiB on S3) the copy is a multipart upload whose
        parts are copied range by range (UploadPartCopy), each guarded by the same ETag.
        """
        if size > self.max_single_copy:
            return self._multipart_copy(source_key, dest_key, if_match, content_type, size)
        result = self._call(
            "copy_object",
            Key=dest_key,
            CopySource={"Bucket": self.bucket, "Key": source_key},
            CopySourceIfMatch=if_match,
            ContentType=content_type,
            MetadataDirective="REPLACE",
        )
        return result["CopyObjectResult"]["ETag"]

    def _multipart_copy(self, source_key, dest_key, if_match, content_type, size):
        part_size = copy_part_size(size, self.max_single_copy)
        upload_id = self.create_multipart(dest_key, content_type)
        try:
            parts = []
            for number, start in enumerate(range(0, size, part_size), start=1):
                end = min(start + part_size, size) - 1
                result = self._call(
                    "upload_part_copy",
                    Key=dest_key,
                    UploadId=upload_id,
                    PartNumber=number,
                    CopySource={"Bucket": self.bucket, "Key": source_key},
                    CopySourceIfMatch=if_match,
                    CopySourceRange=f"bytes={start}-{end}",
                )
                parts.append((number, result["CopyPartResult"]["ETag"]))
            return self.complete_multipart(dest_key, upload_id, parts)
        except BaseException:
            try:
                self.abort_multipart(dest_key, upload_id)
            except StorageError:
                pass  # the copy's own error is the one to raise; maintenance aborts what is left
            raise

    def delete(self, *keys):
        """Delete keys; missing ones are fine."""
        for key in keys:
            if key:
                self._call("delete_object", Key=key)

    def list_keys(self, prefix):
        """Every key under prefix."""
        for item in self.list_objects(prefix):
            yield item["key"]

    def list_objects(self, prefix):
        """Every object under prefix: key, size and last-modified time."""
        paginator = self.client.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
                for item in page.get("Contents", []):
                    yield {"key": item["Key"], "size": item["Size"], "modified": item["LastModified"]}
        except (ClientError, BotoCoreError) as exc:
            raise _translate(exc) from exc

    # --- bucket set-up ---
    def ensure_bucket(self, cors_origins, incoming_days=2):
        """Create the bucket if needed and apply the settings Satchel needs (see desired_settings)."""
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError:
            params = {}
            region = self.client.meta.region_name
            if region and region != "us-east-1":
                params["CreateBucketConfiguration"] = {"LocationConstraint": region}
            self._call("create_bucket", **params)
        except BotoCoreError as exc:
            raise StorageError(str(exc)) from exc
        wanted = desired_settings(cors_origins, incoming_days)
        self._call("put_public_access_block", PublicAccessBlockConfiguration=wanted["public_access_block"])
        self._call("put_bucket_cors", CORSConfiguration={"CORSRules": wanted["cors"]})
        self._call("put_bucket_lifecycle_configuration", LifecycleConfiguration={"Rules": wanted["lifecycle"]})

    def read_settings(self):
        """The bucket's public-access block, CORS rules and lifecycle rules (empty when unset)."""

        def fetch(method, key, missing_codes):
            try:
                return getattr(self.client, method)(Bucket=self.bucket)[key]
            except ClientError as exc:
                if str(exc.response.get("Error", {}).get("Code")) in missing_codes:
                    return None
                raise _translate(exc) from exc
            except BotoCoreError as exc:
                raise StorageError(str(exc)) from exc

        return {
            "public_access_block": fetch(
                "get_public_access_block", "PublicAccessBlockConfiguration", {"NoSuchPublicAccessBlockConfiguration"}
            ),
            "cors": fetch("get_bucket_cors", "CORSRules", {"NoSuchCORSConfiguration"}),
            "lifecycle": fetch("get_bucket_lifecycle_configuration", "Rules", {"NoSuchLifecycleConfiguration"}),
        }

    def ping(self):
        """Raise StorageError unless the bucket answers."""
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except (ClientError, BotoCoreError) as exc:
            raise _translate(exc) from exc


class RangedReader(io.RawIOBase):
    """A seekable view of an object: each read is a ranged GET, so a ZIP's central directory can be
    read without downloading the archive."""

    def __init__(self, storage, key, size, etag):
        super().__init__()
        self.storage, self.key, self.size, self.etag = storage, key, size, etag
        self.position = 0

    def readable(self):
        return True

    def seekable(self):
        return True

    def tell(self):
        return self.position

    def seek(self, offset, whence=io.SEEK_SET):
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.position, io.SEEK_END: self.size}[whence]
        self.position = max(0, base + offset)
        return self.position

    def readinto(self, buffer):
        length = min(len(buffer), self.size - self.position)
        if length <= 0:
            return 0
        data = self.storage.read_range(self.key, self.position, length, etag=self.etag)
        buffer[: len(data)] = data
        self.position += len(data)
        return len(data)


def desired_settings(cors_origins, incoming_days=2):
    """What the bucket must look like: private, PUT-only CORS for the app, and self-cleaning prefixes."""
    return {
        "public_access_block": {
            "BlockPublicAcls": True,
            "IgnorePublicAcls": True,
            "BlockPublicPolicy": True,
            "RestrictPublicBuckets": True,
        },
        "cors": [
            {
                "AllowedOrigins": list(cors_origins),
                "AllowedMethods": ["PUT"],
                "AllowedHeaders": ["content-type"],
                "ExposeHeaders": ["ETag"],
                "MaxAgeSeconds": 3000,
            }
        ],
        "lifecycle": [
            {
                "ID": "abort-incomplete-multipart",
                "Status": "Enabled",
                "Filter": {"Prefix": ""},
                "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
            },
            {
                "ID": "expire-incoming",
                "Status": "Enabled",
                "Filter": {"Prefix": f"{INCOMING}/"},
                "Expiration": {"Days": incoming_days},
            },
        ],
    }


def check_settings(actual, cors_origins):
    """Problems with the bucket's settings, as sentences (empty when all is well)."""
    problems = []
    block = actual.get("public_access_block") or {}
    for name in ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"):
        if not block.get(name):
            problems.append(f"Block Public Access: {name} is off")
    rules = actual.get("cors") or []
    if not rules:
        problems.append("CORS: no rules, so browsers cannot PUT uploads")
    for rule in rules:
        origins = set(rule.get("AllowedOrigins", []))
        if "*" in origins or not origins <= set(cors_origins):
            problems.append(f"CORS: allows origins beyond the app's: {sorted(origins - set(cors_origins))}")
        if "PUT" not in rule.get("AllowedMethods", []):
            problems.append("CORS: PUT is not allowed")
        if set(rule.get("AllowedMethods", [])) - {"PUT"}:
            problems.append(f"CORS: allows more than PUT: {sorted(set(rule['AllowedMethods']) - {'PUT'})}")
        if "ETag" not in rule.get("ExposeHeaders", []):
            problems.append("CORS: ETag is not exposed (multipart uploads need it)")
    lifecycle = actual.get("lifecycle") or []
    if not any(r.get("Status") == "Enabled" and "AbortIncompleteMultipartUpload" in r for r in lifecycle):
        problems.append("Lifecycle: incomplete multipart uploads are never aborted")
    if not any(
        r.get("Status") == "Enabled"
        and "Expiration" in r
        and (r.get("Filter") or {}).get("Prefix", r.get("Prefix")) == f"{INCOMING}/"
        for r in lifecycle
    ):
        problems.append(f"Lifecycle: objects under {INCOMING}/ never expire")
    return problems


def part_plan(size, preferred):
    """(part size, part count) for a multipart upload of size bytes: preferred, within S3's rules
    (parts of 5 MiB to 5 GiB, the last one smaller, at most 10,000 of them)."""
    part_size = min(max(preferred, MIN_PART, -(-size // MAX_PARTS)), MAX_PART)
    return part_size, max(1, -(-size // part_size))


def copy_part_size(size, max_single_copy):
    """Bytes per UploadPartCopy for a size-byte object: as large as one copy may be, within S3's rules."""
    return part_plan(size, min(max_single_copy, MAX_PART))[0]


def incoming_key(user_id, upload_id):
    """Where the browser writes an upload."""
    return f"{INCOMING}/{user_id}/{upload_id}"


def file_key(user_id, upload_id, run, extension):
    """Where a verified upload lives; unique per scan run, extension from the detected type."""
    return f"{FILES}/{user_id}/{upload_id}-{run}.{extension}"


def run_key_prefixes(user_id, upload_id):
    """The prefixes under which every scan run of an upload writes its copy and preview."""
    return [f"{FILES}/{user_id}/{upload_id}-", f"{DERIVATIVES}/{user_id}/{upload_id}-"]


def thumbnail_key(user_id, upload_id, run):
    """Where an image's re-encoded preview lives (unique per scan run)."""
    return f"{DERIVATIVES}/{user_id}/{upload_id}-{run}.png"


def shared_key(user_id, upload_id, run, extension):
    """Where an image's copy for share links, without its metadata, lives (unique per scan run)."""
    return f"{DERIVATIVES}/{user_id}/{upload_id}-{run}-shared.{extension}"


def get_storage():
    """The app's Storage, built once per app from its settings."""
    from flask import current_app

    storage = current_app.extensions.get("satchel.storage")
    if storage is None:
        storage = current_app.extensions["satchel.storage"] = Storage.from_config(current_app.config)
    return storage
