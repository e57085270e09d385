"""The scale profile's services on one machine, on loopback: a throwaway PostgreSQL cluster (Dagster's instance,
the DuckLake catalog, MLflow's store), an S3 stand-in (moto) and an MLflow tracking server.

For the integration test, the scale benchmark, and trying the profile without a cluster. The real deployment
uses managed or Helm-installed services instead (deploy/README.md); nothing here is used there.
"""

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

DATABASES = ("dagster", "lake", "mlflow")
LAKE_BUCKET, ARTIFACTS_BUCKET = "pm-lake", "pm-artifacts"
#: moto accepts any credentials; these only have to be the same everywhere.
S3_KEY = "pm-local"


class StackUnavailable(RuntimeError):
    """Something the local stack needs is not installed on this machine."""


def postgres_bin_dir() -> Path:
    """Where `initdb` and `pg_ctl` are: `PM_POSTGRES_BIN`, else the newest Debian `postgresql-NN` package, else PATH."""
    candidates = [Path(os.environ["PM_POSTGRES_BIN"])] if os.environ.get("PM_POSTGRES_BIN") else []
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name) if p.parent.name.isdigit() else 0,
                         reverse=True)
    if shutil.which("initdb"):
        candidates.append(Path(shutil.which("initdb")).parent)
    for directory in candidates:
        if (directory / "initdb").exists() and (directory / "pg_ctl").exists():
            return directory
    raise StackUnavailable("no PostgreSQL server binaries (initdb, pg_ctl): install Debian's postgresql-15, or set PM_POSTGRES_BIN")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass(frozen=True)
class Stack:
    pg_port: int
    s3_port: int
    mlflow_port: int

    def postgres_url(self, database: str) -> str:
        """SQLAlchemy's URL (psycopg2: a bare `postgresql://` means psycopg 3 to SQLAlchemy 2.1)."""
        return f"postgresql+psycopg2://pm@127.0.0.1:{self.pg_port}/{database}"

    @property
    def s3_endpoint(self) -> str:
        return f"127.0.0.1:{self.s3_port}"

    def environment(self) -> dict[str, str]:
        """What selects the scale profile and points it at these services (deploy/scale.env names the same)."""
        return {
            "PM_DAGSTER_POSTGRES_URL": self.postgres_url("dagster"),
            "PM_LAKE_CATALOG": f"postgres:dbname=lake host=127.0.0.1 port={self.pg_port} user=pm",
            "PM_LAKE_DATA_PATH": f"s3://{LAKE_BUCKET}/lake/",
            "PM_S3_ENDPOINT": self.s3_endpoint, "PM_S3_URL_STYLE": "path", "PM_S3_USE_SSL": "false",
            "AWS_ACCESS_KEY_ID": S3_KEY, "AWS_SECRET_ACCESS_KEY": S3_KEY, "AWS_REGION": "us-east-1",
            "PM_MLFLOW_TRACKING_URI": f"http://127.0.0.1:{self.mlflow_port}",
            "PM_SCORES_URL": f"s3://{LAKE_BUCKET}/scores/",
        }


def _as_postgres_user(command: list[str]) -> list[str]:
    """PostgreSQL refuses to run as root: as root, run it as the `postgres` user."""
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


def _wait_for(url: str, what: str, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with code {process.returncode} while starting")
        with contextlib.suppress(OSError):
            with urllib.request.urlopen(url, timeout=2):
                return
        time.sleep(0.25)
    raise TimeoutError(f"{what} did not answer {url} within {timeout:.0f} s")


def create_database(port: int, name: str) -> None:
    """A new, empty database on the local cluster (e.g. the catalog of another lake)."""
    subprocess.run(_as_postgres_user([str(postgres_bin_dir() / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "pm", name]),
                   check=True, capture_output=True)


@contextlib.contextmanager
def _postgres(root: Path, port: int) -> Iterator[None]:
    bin_dir = postgres_bin_dir()
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
    data = root / "pg"
    subprocess.run(_as_postgres_user([str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "pm", "--no-sync"]),
                   check=True, capture_output=True)
    options = f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200"
    subprocess.run(_as_postgres_user([str(bin_dir / "pg_ctl"), "-D", str(data), "-l", str(root / "postgres.log"), "-o", options,
                                      "-w", "start"]), check=True, capture_output=True)
    try:
        for database in DATABASES:
            create_database(port, database)
        yield
    finally:
        subprocess.run(_as_postgres_user([str(bin_dir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]), capture_output=True)


@contextlib.contextmanager
def _service(command: list[str], health_url: str, what: str, log: Path, env: dict[str, str]) -> Iterator[None]:
    with log.open("w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **env}, start_new_session=True)
    try:
        _wait_for(health_url, what, process)
        yield
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, 15)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, 9)
            process.wait()


def _buckets(stack: Stack) -> None:
    import boto3

    s3 = boto3.client("s3", endpoint_url=f"http://{stack.s3_endpoint}", aws_access_key_id=S3_KEY, aws_secret_access_key=S3_KEY,
                      region_name="us-east-1")
    for bucket in (LAKE_BUCKET, ARTIFACTS_BUCKET):
        s3.create_bucket(Bucket=bucket)


@contextlib.contextmanager
def running_stack() -> Iterator[Stack]:
    """Start PostgreSQL, moto and an MLflow server on free loopback ports; stop and delete all of it afterwards."""
    root = Path(tempfile.mkdtemp(prefix="pm-stack-"))  # not under a root-only folder: the postgres user must reach it
    stack = Stack(pg_port=free_port(), s3_port=free_port(), mlflow_port=free_port())
    scripts = Path(sys.executable).parent
    s3_env = {"AWS_ACCESS_KEY_ID": S3_KEY, "AWS_SECRET_ACCESS_KEY": S3_KEY, "AWS_DEFAULT_REGION": "us-east-1"}
    try:
        with contextlib.ExitStack() as services:
            services.enter_context(_postgres(root, stack.pg_port))
            services.enter_context(_service([str(scripts / "moto_server"), "-H", "127.0.0.1", "-p", str(stack.s3_port)],
                                            f"http://{stack.s3_endpoint}/", "moto (S3)", root / "moto.log", s3_env))
            _buckets(stack)
            services.enter_context(_service(
                [str(scripts / "mlflow"), "server", "--backend-store-uri", stack.postgres_url("mlflow"),
                 "--artifacts-destination", f"s3://{ARTIFACTS_BUCKET}/", "--host", "127.0.0.1", "--port", str(stack.mlflow_port),
                 "--workers", "1"],
                f"http://127.0.0.1:{stack.mlflow_port}/health", "the MLflow server", root / "mlflow.log",
                {**s3_env, "MLFLOW_S3_ENDPOINT_URL": f"http://{stack.s3_endpoint}", "MLFLOW_DISABLE_TELEMETRY": "true"}))
            yield stack
    finally:
        shutil.rmtree(root, ignore_errors=True)
