"""How many requests a second the public notice page serves from a production server.

Baseline: 500 requests/second (issue 5, "Fast for the public"). Steps:

1. Make a temporary var dir with a production-like environment: DEBUG off, a
   random SECRET_KEY, ALLOWED_HOSTS=127.0.0.1, TLS terminated by a proxy
   (PHM_BEHIND_TLS_PROXY=1; the load sends X-Forwarded-Proto: https), SQLite and
   the file cache inside the temp dir. DATABASE_URL, CACHE_URL and the broker of
   the calling shell are ignored, so the bench touches nothing else.
2. migrate, load_demo (which publishes the five notices), collectstatic.
3. Start gunicorn on 127.0.0.1 on a free port; check the page answers 200.
4. Load it on loopback for a bounded time with wrk (apt-get installs it when it is
   missing and we are root), or with a small Python keep-alive load generator.
5. Print requests/second and the ratio to the baseline; stop everything.

Run: `.venv/bin/python bench/notices_http.py` (or `make bench`).
Options by environment: BENCH_SECONDS (10), BENCH_CONNECTIONS (32), BENCH_WORKERS
(one per CPU), BENCH_THREADS (2 per worker), BENCH_PATH (/notices/devon/).
"""

from __future__ import annotations

import http.client
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BASELINE = 500.0
SECONDS = int(os.environ.get("BENCH_SECONDS", "10"))
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "32"))
WORKERS = int(os.environ.get("BENCH_WORKERS", str(os.cpu_count() or 1)))
PATH = os.environ.get("BENCH_PATH", "/notices/devon/")
THREADS = int(os.environ.get("BENCH_THREADS", "2"))
HEADERS = {"Host": "127.0.0.1", "X-Forwarded-Proto": "https"}


def production_env(var_dir: Path) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("DATABASE_URL", "CACHE_URL", "CELERY_BROKER_URL", "PHM_DEMO", "DEBUG")
    }
    env.update(
        {
            "PHM_VAR_DIR": str(var_dir),
            "DEBUG": "0",
            "PHM_DEMO": "0",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "ALLOWED_HOSTS": "127.0.0.1",
            "PHM_BEHIND_TLS_PROXY": "1",
            "LOG_LEVEL": "WARNING",
            "DJANGO_SETTINGS_MODULE": "phm_portal.settings",
        }
    )
    return env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def manage(env: dict[str, str], *args: str) -> None:
    subprocess.run(  # noqa: S603 - our own interpreter and manage.py, fixed arguments
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )


def get(port: int) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", PATH, headers=HEADERS)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def wait_until_up(port: int, server: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"gunicorn exited with {server.returncode}")
        try:
            status, body = get(port)
        except OSError:
            time.sleep(0.2)
            continue
        if status != 200 or b"Privacy notice" not in body:
            raise SystemExit(f"{PATH} answered {status}, not the notice page")
        return
    raise SystemExit("gunicorn did not answer within 60 seconds")


def find_wrk() -> str | None:
    wrk = shutil.which("wrk")
    if wrk or os.geteuid() != 0 or not shutil.which("apt-get"):
        return wrk
    print("wrk is missing: installing Debian's wrk package ...", flush=True)
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "check": False}
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    apt = shutil.which("apt-get")
    subprocess.run([apt, "install", "-y", "-qq", "wrk"], env=env, **quiet)  # noqa: S603
    if not shutil.which("wrk"):
        subprocess.run([apt, "update", "-qq"], env=env, **quiet)  # noqa: S603
        subprocess.run([apt, "install", "-y", "-qq", "wrk"], env=env, **quiet)  # noqa: S603
    return shutil.which("wrk")


def load_with_wrk(wrk: str, port: int) -> tuple[float, int, str]:
    """Return (requests/second, non-2xx responses, tool) from a wrk run."""
    args = [wrk, "-t2", f"-c{CONNECTIONS}", f"-d{SECONDS}s", "--latency"]
    for name, value in HEADERS.items():
        args += ["-H", f"{name}: {value}"]
    out = subprocess.run(  # noqa: S603 - wrk found on PATH, loopback URL
        [*args, f"http://127.0.0.1:{port}{PATH}"],
        capture_output=True,
        text=True,
        check=True,
        timeout=SECONDS + 60,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors:.*", out)
    if errors:
        print(f"  wrk: {errors.group(0)}")
    latency = re.search(r"99%\s+(\S+)", out)
    if latency:
        print(f"  99th percentile latency: {latency.group(1)}")
    return rps, int(bad.group(1)) if bad else 0, "wrk"


def load_with_python(port: int) -> tuple[float, int, str]:
    """A keep-alive load from threads; weaker than wrk, so its figure is a floor."""
    stop = time.monotonic() + SECONDS
    counts = [0] * CONNECTIONS
    bad = [0] * CONNECTIONS

    def run(i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        while time.monotonic() < stop:
            try:
                conn.request("GET", PATH, headers=HEADERS)
                response = conn.getresponse()
                response.read()
                counts[i] += 1
                if response.status != 200:
                    bad[i] += 1
                if response.getheader("Connection", "").lower() == "close":
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            except OSError:
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(CONNECTIONS)]
    started = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return sum(counts) / (time.monotonic() - started), sum(bad), "python threads"


def main() -> int:
    var_dir = Path(tempfile.mkdtemp(prefix="phm-bench-notices-"))
    server = None
    try:
        env = production_env(var_dir)
        print(
            f"Setting up a production-like portal in a temporary directory ({WORKERS} workers) ..."
        )
        manage(env, "migrate", "--noinput")
        manage(env, "load_demo")
        manage(env, "collectstatic", "--noinput")
        port = free_port()
        server = subprocess.Popen(  # noqa: S603 - our interpreter running gunicorn
            [
                sys.executable, "-m", "gunicorn", "phm_portal.wsgi",
                "--bind", f"127.0.0.1:{port}", "--workers", str(WORKERS),
                "--worker-class", "gthread", "--threads", str(THREADS), "--keep-alive", "5",
                "--log-level", "warning",
            ],
            cwd=ROOT, env=env, start_new_session=True,
        )  # fmt: skip
        wait_until_up(port, server)
        for _ in range(20):  # fill every worker's connection and the cache
            get(port)
        wrk = find_wrk()
        print(f"Loading GET {PATH} for {SECONDS} s with {CONNECTIONS} connections ...")
        rps, bad, tool = load_with_wrk(wrk, port) if wrk else load_with_python(port)
        print(f"public notice page ({tool}): {rps:,.0f} requests/second, {bad} not 200")
        print(f"ratio to the {BASELINE:.0f}/s target: {rps / BASELINE:.2f}")
        return 0 if bad == 0 else 1
    finally:
        if server is not None and server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
        shutil.rmtree(var_dir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
