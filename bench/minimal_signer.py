"""The peer bench.presign measures Satchel against: the presign step with nothing around it.

One Flask view on the same stack as Satchel (PostgreSQL through SQLAlchemy, boto3): it validates
the JSON body, inserts one row and answers a presigned PUT. No login, session, CSRF, rate limit or
quota. Served by gunicorn as `bench.minimal_signer:app`, configured by the environment Satchel
reads (DATABASE_URL, S3_ENDPOINT_URL, S3_BUCKET, S3_REGION).
"""

import os
import secrets

import boto3
from botocore.config import Config
from flask import Flask, request
from sqlalchemy import BigInteger, Column, DateTime, MetaData, String, Table, create_engine, func

metadata = MetaData()
uploads = Table(
    "minimal_uploads",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("filename", String(255), nullable=False),
    Column("size", BigInteger, nullable=False),
    Column("content_type", String(255), nullable=False),
    Column("object_key", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)
MAX_BYTES = 512 * 1024 * 1024

app = Flask(__name__)
engine = create_engine(os.environ["DATABASE_URL"], pool_size=2)
bucket = os.environ["S3_BUCKET"]
s3 = boto3.client(
    "s3",
    endpoint_url=os.environ.get("S3_ENDPOINT_URL"),
    region_name=os.environ.get("S3_REGION", "us-east-1"),
    aws_access_key_id=os.environ.get("S3_ACCESS_KEY_ID", "testing"),
    aws_secret_access_key=os.environ.get("S3_SECRET_ACCESS_KEY", "testing"),
    config=Config(signature_version="s3v4"),
)


@app.post("/sign")
def sign():
    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        return {"error": "invalid_json"}, 400
    filename, size, content_type = body.get("filename"), body.get("size"), body.get("content_type")
    if not isinstance(filename, str) or not 0 < len(filename) <= 255:
        return {"error": "invalid_filename"}, 400
    if type(size) is not int or not 0 < size <= MAX_BYTES:
        return {"error": "invalid_size"}, 400
    if not isinstance(content_type, str) or not content_type:
        return {"error": "invalid_content_type"}, 400
    upload_id = secrets.token_hex(16)
    key = f"incoming/{upload_id}"
    with engine.begin() as conn:
        conn.execute(
            uploads.insert().values(
                id=upload_id, filename=filename, size=size, content_type=content_type, object_key=key
            )
        )
    url = s3.generate_presigned_url(
        "put_object",
        Params={"Bucket": bucket, "Key": key, "ContentType": content_type, "ContentLength": size},
        ExpiresIn=600,
    )
    return {"id": upload_id, "url": url}, 201


def create_table():
    """Make the table (the benchmark calls this once before the server starts)."""
    metadata.create_all(engine)
