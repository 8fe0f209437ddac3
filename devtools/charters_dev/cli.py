"""The dev commands of `charters`: the local stack, the demo, bench and chaos. Registered on the
product's CLI through the `charters.cli` entry point; nothing in the product imports this."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from charters.settings import Settings

console = Console()


def _settings() -> Settings:
    return Settings().with_local_stack()


def register(app: typer.Typer, ops: typer.Typer) -> None:
    """Add the dev commands to the product's `charters` app."""

    @ops.command("break-scc-key-hash")
    def break_scc_key_hash() -> None:
        """Local stack only: remove SERVICE_KEY_HASH, as in the seeds' incident."""
        from charters.worker.wiring import aws_clients
        from charters_dev.seed import set_service_key_hash

        settings = _settings()
        set_service_key_hash(aws_clients(settings), settings, present=False)
        console.print("SERVICE_KEY_HASH removed from the SCC Lambda")

    @app.command(hidden=True)
    def standins() -> None:
        """Local stack only: the calendar and SCC stand-ins."""
        from charters_dev.standins import serve_standins

        asyncio.run(serve_standins(_settings()))

    @app.command()
    def dev(
        break_: Annotated[str | None, typer.Option("--break", help="scc-key-hash")] = None,
        status: Annotated[
            bool, typer.Option("--status", help="each process of the running stack, its health")
        ] = False,
        as_json: Annotated[bool, typer.Option("--json", help="--status as JSON")] = False,
    ) -> None:
        """Run the embedded local stack until Ctrl-C, restarting a child that dies (reports a
        running stack, never starts two)."""
        from charters_dev.stack import DevStack
        from charters_dev.supervisor import Supervisor, show_report

        settings = _settings()
        if status:
            raise typer.Exit(show_report(console, settings, as_json))
        running = DevStack.running(settings)
        if running:
            console.print(
                f"A stack already runs (pid {running['pid']}): Web UI "
                f"{settings.temporal_ui_url}, Temporal {settings.temporal_address}; "
                "`charters dev --status` shows its processes"
            )
            return
        stack = DevStack(settings, scc_key_hash=break_ != "scc-key-hash")
        try:
            stack.start()
            console.print(
                f"Stack up. Web UI {settings.temporal_ui_url} · Temporal "
                f"{settings.temporal_address} · logs in {stack.log_dir}. Ctrl-C stops it."
            )
            Supervisor(stack, console).run()
        except KeyboardInterrupt:
            pass
        finally:
            stack.stop()

    @app.command()
    def demo(
        exit_when_done: Annotated[
            bool, typer.Option(help="stop the stack when the booking is done")
        ] = False,
        break_: Annotated[str | None, typer.Option("--break", help="scc-key-hash")] = None,
        file: Annotated[Path, typer.Option(help="booking file")] = Path(
            "examples/seed-charter.yaml"
        ),
    ) -> None:
        """Book the seed charter locally and click the crew's magic links, as crew would."""
        from charters_dev.demo import run_demo

        code = run_demo(_settings(), console, file, exit_when_done=exit_when_done, broken=break_)
        raise typer.Exit(code)

    @app.command()
    def bench(
        bookings: Annotated[
            list[int] | None,
            typer.Option(
                help="bookings per run: one value, or one per --concurrency (default 6 30 100)"
            ),
        ] = None,
        concurrency: Annotated[
            list[int] | None,
            typer.Option(help="bookings in flight; repeat for several runs (default 1 10 50)"),
        ] = None,
        latency_ms: Annotated[
            float | None,
            typer.Option(help="delay the fault proxy adds to every external call (default 50)"),
        ] = None,
        baseline_runs: Annotated[int, typer.Option(help="runs of the sequential baseline")] = 5,
        out_dir: Annotated[Path, typer.Option(help="where the JSON and PNG go")] = Path(
            "bench-results"
        ),
        state_base: Annotated[
            Path | None,
            typer.Option(
                help="parent of the stack's temporary state dir (default /dev/shm if writable)"
            ),
        ] = None,
        plot: Annotated[bool, typer.Option(help="write the PNG (needs matplotlib)")] = True,
        keep_state: Annotated[bool, typer.Option(help="keep the bench stack's state dir")] = False,
        variant: Annotated[
            list[str] | None,
            typer.Option(
                help="workers to measure, runner:processes[:steps] (runner: sandboxed, "
                "passthrough, unsandboxed; steps: local, regular); repeat; the first is 'before' "
                "(default sandboxed:1:regular, unsandboxed:1 (local-first steps, opt-in), then the "
                "product with 1 and 2 processes)"
            ),
        ] = None,
    ) -> None:
        """Latency and throughput of bookings on a fresh embedded stack, every external call delayed
        --latency-ms; crew confirmations are signalled as soon as a booking awaits the crew."""
        from charters_dev.bench import BenchConfig, run_bench

        config = BenchConfig(
            baseline_runs=baseline_runs,
            out_dir=out_dir,
            plot=plot,
            keep_state=keep_state,
            state_base=state_base,
        )
        if latency_ms is not None:
            config.latency_ms = latency_ms
        if variant:
            config.variants = list(variant)
        if concurrency:
            config.concurrency = list(concurrency)
            config.bookings = list(bookings) if bookings else [10 * c for c in concurrency]
        elif bookings:
            config.bookings = list(bookings)
        raise typer.Exit(run_bench(config, console))

    @app.command()
    def chaos(
        bookings: Annotated[int, typer.Option(help="bookings to run")] = 200,
        kills: Annotated[int, typer.Option(help="times a worker is killed with SIGKILL")] = 5,
        server_kills: Annotated[
            int, typer.Option(help="times the Temporal dev server is killed with SIGKILL")
        ] = 2,
        workers: Annotated[int, typer.Option(help="worker processes")] = 2,
        rolls: Annotated[
            int, typer.Option(help="rolling deploys (each worker replaced, SIGTERM)")
        ] = 1,
        fault_rate: Annotated[
            float, typer.Option(help="share of external calls faulted: 5xx, throttle, reset, slow")
        ] = 0.1,
        seed: Annotated[int, typer.Option(help="seeds the faults and the kill schedule")] = 1,
        concurrency: Annotated[int, typer.Option(help="bookings in flight")] = 20,
        out_dir: Annotated[Path, typer.Option(help="where chaos-<timestamp>.json goes")] = Path(
            "bench-results"
        ),
        keep_state: Annotated[bool, typer.Option(help="keep the chaos stack's state dir")] = False,
        strict: Annotated[
            bool,
            typer.Option(help="count duplicates of the documented SES send/record window too"),
        ] = False,
    ) -> None:
        """Bookings through injected faults and worker kills on a fresh embedded stack; then every
        effect is counted in the emulated systems and every history replayed in the sandbox.
        Exits 1 on any duplicate, lost booking or history that does not replay (an email repeated
        in the documented SES window is shown apart, counted with --strict)."""
        from charters_dev.chaos import ChaosConfig, run_chaos_cli

        config = ChaosConfig(
            bookings=bookings,
            kills=kills,
            server_kills=server_kills,
            workers=workers,
            rolls=rolls,
            fault_rate=fault_rate,
            seed=seed,
            concurrency=concurrency,
            out_dir=out_dir,
            keep_state=keep_state,
            strict=strict,
        )
        raise typer.Exit(run_chaos_cli(config, console))
