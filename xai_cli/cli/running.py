"""Running a command: its job module, its device, its progress bar, and its exit code.

Errors become messages and exit codes here, in one place: 0 all done, 1 some inputs
failed (the others were written), 2 usage or configuration error (nothing written; also
unexpected internal errors), 3 a --require was not met (outputs written), 130 interrupted.
"""

from __future__ import annotations

import functools
import importlib
import sys
import traceback
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext, redirect_stdout
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, NoReturn

import click

from ..catalogue import layer_params
from ..engine import backends
from ..errors import XaiError

if TYPE_CHECKING:   # for annotations only: the session pulls in Keras and its backend
    from click._termui_impl import ProgressBar

    from ..session import Options, RayCluster, Report, Session


def job_module(name: str) -> ModuleType:
    """The job module ``name``, imported when a command runs, with the Keras backend's
    start-up noise hidden: TensorFlow takes seconds to import, and --help or --version
    never need it."""
    backends.start()
    return importlib.import_module(f"xai_cli.jobs.{name}")


def session_options(kwargs: dict[str, Any]) -> Options:
    """The session's options from a command's keyword arguments (taking them out);
    ``--layer`` joins the ``--param`` texts it stands for, ahead of them so they win."""
    from ..session import Options
    if "cam_layer" in kwargs:
        kwargs["params"] = layer_params(kwargs.pop("cam_layer")) + tuple(kwargs.get("params", ()))
    names = Options.__dataclass_fields__
    return Options(**{k: kwargs.pop(k) for k in list(kwargs) if k in names})


def ray_cluster(kwargs: dict[str, Any]) -> RayCluster | None:
    """The Ray cluster of ``--ray``, ``--ray-actors`` and ``--ray-gpus-per-actor`` (taking
    them out of a command's keyword arguments); None without ``--ray``."""
    from ..session import RayCluster
    address = kwargs.pop("ray", None)
    actors, gpus = kwargs.pop("ray_actors", 1), kwargs.pop("ray_gpus_per_actor", 0)
    return None if address is None else RayCluster(address, actors, gpus)


def handle_errors(fn: Callable[..., int | None]) -> Callable[..., NoReturn]:
    """Run a command; map XaiError to its exit code and hide tracebacks unless --debug."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        debug = click.get_current_context().find_root().params.get("debug", False)
        try:
            code = fn(*args, **kwargs)
        except XaiError as exc:
            if debug:
                traceback.print_exc()
            click.echo(f"xai: error: {exc}", err=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("xai: interrupted", err=True)
            sys.exit(130)
        except Exception as exc:  # a bug: one line for users, the traceback with --debug
            if debug:
                raise
            click.echo(f"xai: internal error: {type(exc).__name__}: {exc} "
                       "(run with --debug for the traceback)", err=True)
            sys.exit(2)
        sys.exit(code or 0)
    return wrapper


def device_scope(name: str) -> AbstractContextManager[object] | None:
    import keras
    if name == "auto":
        return None
    if name == "gpu" and not backends.current().gpu_available():
        raise XaiError(f"--device gpu: Keras' {keras.backend.backend()} backend sees no GPU "
                       "on this machine")
    return keras.device("gpu:0" if name == "gpu" else "cpu:0")


def progress_bar(total: int, label: str = "explaining"
                 ) -> tuple[ProgressBar[int], Callable[[int], None]] | tuple[None, None]:
    if not sys.stderr.isatty():
        return None, None
    bar = click.progressbar(length=total, label=label, file=sys.stderr)
    return bar, bar.update


def write_page(out: Path) -> None:
    """OUT/index.html from every record and picture in OUT (needs no Keras)."""
    from ..io.report import write
    click.echo(f"xai: report: {write(out)}", err=True)


@contextmanager
def data_job(kwargs: dict[str, Any], command: str
             ) -> Iterator[tuple[Session, Report, Callable[[int], None] | None]]:
    """Around the job of a data command: its checked session and report, the device and
    the progress bar while it runs, and the job's page once it is done."""
    from ..session import open_session
    cluster = ray_cluster(kwargs)
    options = session_options(kwargs)
    if cluster is not None:
        from ..jobs import on_ray
        on_ray.check(cluster, options.shard)
    session = open_session(options)
    session.ray = cluster
    session.kind.check_command(command)
    report = session.report(command)
    bar, update = progress_bar(session.count)
    # Ray prints its workers' deaths on sys.stdout; the records keep the real one
    ray_prints = redirect_stdout(sys.stderr) if cluster is not None else nullcontext()
    with device_scope(options.device) or nullcontext(), bar or nullcontext(), ray_prints:
        yield session, report, update
    write_page(options.out)
