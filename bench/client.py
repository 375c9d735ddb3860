"""The simulated users of the load benchmark: a browser's session, its files, its upload cycle."""

import hashlib
import io
import math
import random
import re
import time
from dataclasses import dataclass, field

import requests
from PIL import Image

STEPS = ("presign", "PUT", "complete")
REQUEST_TIMEOUT = 60
_TEXT_LINE = b"Satchel load benchmark: one clean line of plain text.\n"


@dataclass
class Attempt:
    """One presign -> PUT -> complete cycle as the client saw it."""

    upload_id: str | None = None
    size: int = 0
    sha256: str = ""
    #: step name -> milliseconds, for the steps that succeeded
    timings: dict = field(default_factory=dict)
    error: str | None = None

    @property
    def completed(self):
        return self.error is None and "complete" in self.timings


class StepFailed(Exception):
    """A request of the cycle did not get the answer the API promises."""


class Payloads:
    """Clean files of varied sizes around size: plain text unique to each upload, and a few noise PNGs."""

    def __init__(self, size, rng):
        self.size = size
        self.pngs = [self._noise_png(rng, rng.randint(size // 2, size * 3 // 2)) for _ in range(4)]

    @staticmethod
    def _noise_png(rng, size):
        # Random pixels do not compress, so a PNG of side x side RGB pixels is about 3 * side**2 bytes.
        side = max(1, math.isqrt(size // 3))
        image = Image.frombytes("RGB", (side, side), rng.randbytes(side * side * 3))
        buffer = io.BytesIO()
        image.save(buffer, "PNG")
        return buffer.getvalue()

    def pick(self, rng, tag):
        """(filename, content type, bytes) for the next upload."""
        if rng.random() < 0.5:
            return f"{tag}.png", "image/png", rng.choice(self.pngs)
        length = max(1, rng.randint(self.size // 2, self.size * 3 // 2))
        head = f"{tag}\n".encode()
        return f"{tag}.txt", "text/plain", (head + _TEXT_LINE * (length // len(_TEXT_LINE) + 1))[:length]


class SimulatedUser:
    """One person in a browser: a logged-in session that uploads one file after another."""

    def __init__(self, base_url, email, password, payloads, seed):
        self.base_url, self.email, self.password, self.payloads = base_url, email, password, payloads
        self.rng = random.Random(seed)
        self.session = requests.Session()
        self.csrf = None
        self.attempts = []

    def log_in(self):
        """Log in through the form (with its CSRF token), then read the API's token from a page."""
        page = self.session.get(f"{self.base_url}/auth/login", timeout=REQUEST_TIMEOUT)
        token = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', page.text).group(1)
        response = self.session.post(
            f"{self.base_url}/auth/login",
            timeout=REQUEST_TIMEOUT,
            allow_redirects=False,
            data={"email": self.email, "password": self.password, "csrf_token": token},
        )
        if response.status_code != 302:
            raise RuntimeError(f"login of {self.email} answered {response.status_code}")
        page = self.session.get(f"{self.base_url}/files", timeout=REQUEST_TIMEOUT)
        self.csrf = re.search(r'name="csrf-token" content="([^"]+)"', page.text).group(1)

    def run(self, deadline, stop):
        """Upload until the deadline; a cycle under way when it passes is finished."""
        while time.monotonic() < deadline and not stop.is_set():
            attempt = Attempt()
            self.attempts.append(attempt)
            try:
                self._upload(attempt, f"{self.email.split('@')[0]}-{len(self.attempts)}")
            except StepFailed as exc:
                attempt.error = str(exc)
            if attempt.error:
                stop.wait(0.5)  # do not spin on a failing server

    def _timed(self, attempt, step, expected, method, url, **kwargs):
        start = time.perf_counter()
        try:
            response = self.session.request(method, url, timeout=REQUEST_TIMEOUT, **kwargs)
        except requests.RequestException as exc:
            raise StepFailed(f"{step} {type(exc).__name__}") from exc
        if response.status_code != expected:
            raise StepFailed(f"{step} {response.status_code}")
        attempt.timings[step] = (time.perf_counter() - start) * 1000
        return response

    def _upload(self, attempt, tag):
        filename, content_type, body = self.payloads.pick(self.rng, tag)
        attempt.size, attempt.sha256 = len(body), hashlib.sha256(body).hexdigest()
        api = {"X-CSRFToken": self.csrf}
        grant = self._timed(
            attempt,
            "presign",
            201,
            "POST",
            f"{self.base_url}/api/uploads",
            headers=api,
            json={"filename": filename, "size": len(body), "content_type": content_type},
        ).json()
        attempt.upload_id = grant["upload"]["id"]
        self._timed(attempt, "PUT", 200, "PUT", grant["url"], data=body, headers=grant["headers"])
        self._timed(
            attempt, "complete", 202, "POST", f"{self.base_url}/api/uploads/{attempt.upload_id}/complete", headers=api
        )
