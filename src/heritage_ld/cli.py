"""Command line: a thin click layer over ``heritage_ld.pipeline``.

Exit codes: 0 everything published, 1 some records held back, 2 usage, configuration or input error.
"""
from __future__ import annotations

import sqlite3
import sys
import time
from pathlib import Path

import click

from . import executor, pipeline
from .catalog import Catalog, CatalogError, DeletionGuard, describe
from .config import ConfigError, load as load_config
from .mapping import MappingError
from .sources import InputError
from .validate import ShapesError
from .work import Reader, Work, path_for
from .writers import formats
from .writers.report import report_lines, shown, status as record_status

USER_ERRORS = (ConfigError, MappingError, InputError, ShapesError, DeletionGuard, CatalogError, pipeline.RunError)
reference_option = click.option(
    "--reference-validation", "reference", is_flag=True,
    help="Validate with pyshacl itself instead of the compiled checks (same results, slower).")
def executor_options(fn):
    """--workers / --executor / --scheduler: where mapping, validation and EDM run (and, with --workers,
    the writers of publish)."""
    fn = click.option("--scheduler", metavar="ADDRESS",
                      help="Dask scheduler address for --executor dask, e.g. tcp://10.0.0.5:8786.")(fn)
    fn = click.option("--executor", "executor_name", type=click.Choice(["local", "dask"]), default="local",
                      show_default=True, help="Run the per-record work here or on a Dask cluster.")(fn)
    return click.option("--workers", type=click.IntRange(1), default=1, show_default=True,
                        help="Local worker processes for the per-record work (and publish's writers); "
                             "output is identical to one worker.")(fn)


def _executor(workers: int, executor_name: str, scheduler: str | None):
    try:
        return executor.make(workers, executor_name, scheduler)
    except (ValueError, OSError) as e:
        _fail(e)


strict_option = click.option(
    "--strict", is_flag=True,
    help="Treat a source that reads no record (an empty folder, a pattern matching nothing, an empty export) "
         "as an error (exit 2) instead of a warning.")
project_option = click.option(
    "--project", "project", type=click.Path(file_okay=False, path_type=Path), default=Path("."),
    show_default=True, help="Project folder holding heritage-ld.toml, mapping/ and shapes/.")


def _fail(e: Exception) -> None:
    click.secho(f"error: {e}", fg="red", err=True)
    sys.exit(2)


def _run(label: str, fn, *args, **kwargs):
    """Run a pipeline function with a progress bar on stderr; user errors exit 2 without a traceback."""
    try:
        if not sys.stderr.isatty():
            return fn(*args, None, **kwargs)
        with click.progressbar(length=0, label=label, file=sys.stderr, show_pos=True) as bar:
            def progress(n: int) -> None:
                bar.length = (bar.length or 0) + n
                bar.update(n)
            return fn(*args, progress, **kwargs)
    except USER_ERRORS as e:
        _fail(e)


def _summary(pub: pipeline.Publication, wrote: Path | None) -> None:
    for warning in pub.source_warnings:
        click.secho(f"warning: {warning}", fg="yellow", err=True)
    held = len(pub.held_back)
    secs = sum(pub.seconds.values())
    click.echo(f"records read     {pub.records_read} from the sources (embedded records extracted, "
               "unused vocabulary skipped)")
    click.echo(f"published        {pub.published}  ({pub.triple_count} triples, "
               f"{pub.edm_count} EDM records)")
    click.echo(f"held back        {held}" + (f"  (+{len(pub.edm_held_back)} from EDM only)" if pub.edm_held_back else ""))
    click.echo(f"warnings         {pub.warnings + len(pub.source_warnings)}"
               + (f"  ({len(pub.source_warnings)} about the sources)" if pub.source_warnings else ""))
    if pub.notes:
        click.echo(f"notes            {pub.notes}  (what transforms approximated: see the report)")
    click.echo(f"time             {secs:.2f} s")
    for key, issues in sorted({**pub.edm_held_back, **pub.held_back}.items()):
        click.secho(f"  {key[0]} {shown(key[1])}: {record_status(pub, key)}: {shown(issues[0].message)}"
                    + (f" (+{len(issues) - 1} more)" if len(issues) > 1 else ""), fg="yellow")
    if wrote:
        click.echo(f"output           {wrote}/  (report: {wrote}/validation-report.txt)")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="heritage-ld")
def main() -> None:
    """heritage-ld: publish cultural-heritage records as validated EDM and schema.org linked data.

    \b
    Examples:
      heritage-ld publish                    # map, validate and write output/
      heritage-ld validate --project myproj  # only validate, print the report
      heritage-ld map article pioneering-ai-for-digital-cultural-heritage-an-interview-with-dr-cynthia-liem
    """


@main.command()
@project_option
@click.option("--allow-deletions", is_flag=True,
              help="Withdraw records gone from the sources even if they are more than max_delete_share "
                   "(default 10%) of the published ones.")
@reference_option
@strict_option
@executor_options
def publish(project: Path, allow_deletions: bool, reference: bool, strict: bool, workers: int, executor_name: str,
            scheduler: str | None) -> None:
    """Map every source record, validate it, update the catalog and output/.

    Only changed records get a new datestamp; records gone from their source become tombstones
    (listed as deleted for harvesters). Records with violations are held back (listed in
    output/validation-report.txt; a previously published version stays published); warnings
    publish. Exit code 0 if all records were published, 1 if some were held back. A source that
    reads no record is a warning (with --strict an error: exit 2, nothing published).

    \b
    Examples:
      heritage-ld publish --project .
      heritage-ld publish --allow-deletions     # after removing many records on purpose
      heritage-ld publish --workers 2           # two local processes, same output
      heritage-ld publish --executor dask --scheduler tcp://10.0.0.5:8786
    """
    start = time.perf_counter()
    pub, changes = _run("mapping", pipeline.publish, project, allow_deletions=allow_deletions, reference=reference,
                        run=_executor(workers, executor_name, scheduler), strict=strict)
    pub.seconds = {"total": time.perf_counter() - start}
    click.echo(f"changes          {changes.added} new, {changes.changed} changed, "
               f"{len(changes.deleted)} withdrawn, {changes.unchanged} unchanged")
    _summary(pub, pub.config.output)
    sys.exit(1 if pub.held_back or pub.edm_held_back else 0)


@main.command()
@project_option
@click.option("--since", metavar="DATE", help="List records changed or withdrawn at or after DATE "
              "(YYYY-MM-DD or YYYY-MM-DDThh:mm:ssZ, UTC).")
def status(project: Path, since: str | None) -> None:
    """Show the catalog: records per type and set, the last run, held-back and withdrawn records.

    \b
    Examples:
      heritage-ld status
      heritage-ld status --since 2026-11-01
    """
    from datetime import datetime, timezone
    try:
        cfg = load_config(project)
    except ConfigError as e:
        _fail(e)
    if not cfg.catalog.exists():
        _fail(f"{cfg.catalog}: no catalog yet; run heritage-ld publish first")
    try:
        cat = Catalog(cfg.catalog)
    except CatalogError as e:
        _fail(e)
    iso = lambda ts: datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    try:
        counts = cat.counts()
        click.echo("published records per type: " + ", ".join(f"{k} {v}" for k, v in sorted(counts["entity"].items())))
        click.echo("per set: " + ", ".join(f"{k} {v}" for k, v in sorted(counts["set"].items())))
        click.echo("withdrawn (tombstones): " + (", ".join(f"{k} {v}" for k, v in sorted(counts["deleted"].items())) or "none"))
        run = cat.last_run()
        if run:
            click.echo(f"last run: {iso(run['started'])}: {run['read']} source records read, {run['published']} "
                       f"published; {run['added']} new, {run['changed']} changed, {run['deleted']} withdrawn")
            for entity, rid, message in run["held_back"]:
                click.secho(f"  held back: {entity} {shown(rid)}: {shown(message)}", fg="yellow")
        if since:
            try:
                ts = datetime.fromisoformat(since.replace("Z", "+00:00"))
            except ValueError:
                _fail(f"--since {since!r}: expected YYYY-MM-DD or YYYY-MM-DDThh:mm:ssZ")
            ts = ts.replace(tzinfo=ts.tzinfo or timezone.utc)
            rows = cat.changed_since(int(ts.timestamp()))
            click.echo(f"changed since {iso(int(ts.timestamp()))}: {len(rows)}")
            for entity, rid, stamp, deleted in rows:
                click.echo(f"  {iso(stamp)}  {'withdrawn' if deleted else 'changed  '}  {entity} {shown(rid)}")
    except sqlite3.Error as e:
        _fail(describe(e, cfg.catalog))
    finally:
        cat.close()


@main.command()
@project_option
@reference_option
@strict_option
@executor_options
def validate(project: Path, reference: bool, strict: bool, workers: int, executor_name: str,
             scheduler: str | None) -> None:
    """Map and validate without writing anything; print the report.

    \b
    Example:
      heritage-ld validate --project .
    """
    pub = _run("validating", pipeline.build, project, reference=reference,
               run=_executor(workers, executor_name, scheduler),
               on_report=_print_report, strict=strict)
    _summary(pub, None)
    sys.exit(1 if pub.held_back or pub.edm_held_back else 0)


def _print_report(pub: pipeline.Publication) -> None:
    for line in report_lines(pub):  # streamed: a report can be larger than memory
        click.echo(line, nl=False)
    click.echo()


@main.command(name="map")
@project_option
@click.argument("entity")
@click.argument("record_id", required=False)
@click.option("--format", "fmt", default="turtle", show_default=True,
              type=click.Choice(["turtle", "ntriples", "jsonld", "edm"]), help="Output format.")
@click.option("--show-code", is_flag=True,
              help="Print the Python the entity's mapping is compiled to (what maps each record), not a record.")
def map_record(project: Path, entity: str, record_id: str | None, fmt: str, show_code: bool) -> None:
    """Show one record's RDF, to debug a mapping (validation issues go to stderr).

    \b
    Examples:
      heritage-ld map person georgia-evans
      heritage-ld map image cynthia-liem-browsing-records --format edm
      heritage-ld map --show-code article
    """
    try:
        cfg, mappings, _shapes = pipeline.load_project(project)
        if entity not in mappings.entities:
            raise ConfigError(f"unknown entity {entity!r} (known: {', '.join(mappings.entities)})")
        if show_code:
            click.echo(mappings.entities[entity].source, nl=False)
            return
        if record_id is None:
            raise click.UsageError("give a RECORD_ID (or --show-code)")
        work = Work(path_for(cfg.catalog))
        try:
            _read, issues, _digest = pipeline.read_records(cfg, mappings, work)
            work.commit()
            db = Reader(str(work.path))
            if not db.has(entity, record_id):
                raise InputError(f"no {entity} record with id {record_id!r} in the configured sources")
            mapped = pipeline.map_records(cfg, mappings, db, [(entity, record_id)])[0]
            db.db.close()
        finally:
            work.close()
    except USER_ERRORS as e:
        _fail(e)
    for i in issues.get((entity, record_id), []) + mapped.issues:
        click.secho(f"{i.severity}: {i.field or ''}: {i.message}", fg="yellow", err=True)
    pub = pipeline.Publication(cfg, mappings, {}, {}, [], 1)
    main_subject = next(iter(mapped.subjects.values()), "")
    try:
        data = formats()[fmt].record(pub, mapped.triples, main_subject)
    except ValueError as e:
        _fail(e)
    click.echo(data.decode("utf-8"), nl=False)



@main.command()
@project_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on (0.0.0.0: all).")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(1, 65535), help="TCP port.")
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1),
              help="gunicorn worker processes (about 2 per CPU core).")
def serve(project: Path, host: str, port: int, workers: int) -> None:
    """Serve the catalog over HTTP (gunicorn): OAI-PMH for aggregators at /oai.

    Settings in heritage-ld.toml under [oai]: page_size (default 100), admin_email, base_url (the
    public URL of /oai behind a proxy), repository_name. Tokens are signed with $HERITAGE_LD_SECRET,
    else a random key kept in .heritage-ld/secret.

    Also serves linked data: every IRI the mappings mint, by its path under base_uri (Turtle, JSON-LD,
    N-Triples, RDF/XML, HTML by the Accept header; a record's named graph as N-Quads and TriG), / and
    /<entity>/ pages, /dataset and /.well-known/void (VoID/DCAT), the files of output/, and a read-only
    SPARQL endpoint at /sparql ([sparql] timeout in seconds, default 10; max_results, default 10000;
    concurrency, queries at once, default 2). Federated queries (SERVICE) are refused unless [sparql]
    service_endpoints lists the endpoint. [server] request_timeout (default 10 s) bounds how long a client
    may take to send a request's head, and again its body.

    \b
    Examples:
      heritage-ld serve                          # http://127.0.0.1:8000/oai
      heritage-ld serve --host 0.0.0.0 --port 8080 --workers 4
    """
    from . import server
    try:
        cfg = load_config(project)
        if not cfg.catalog.exists():
            raise ConfigError(f"{cfg.catalog}: no catalog yet; run heritage-ld publish first")
        click.echo(f"OAI-PMH endpoint: http://{host}:{port}/oai", err=True)
        click.echo(f"linked data: http://{host}:{port}/  SPARQL: http://{host}:{port}/sparql", err=True)
        server.run(project, host, port, workers)
    except USER_ERRORS as e:
        _fail(e)
    except sqlite3.Error as e:
        _fail(describe(e, cfg.catalog))


@main.command(name="push")
@project_option
@click.argument("url")
@click.option("--full", is_flag=True, help="Send everything again: PUT every live graph, DELETE every tombstone.")
@click.option("--workers", default=4, show_default=True, type=click.IntRange(1, 64), help="Concurrent requests.")
@click.option("--retries", default=5, show_default=True, type=click.IntRange(0),
              help="Retries per request on 429, 5xx and network errors (exponential backoff, Retry-After).")
@click.option("--timeout", default=60.0, show_default=True, type=click.FloatRange(0, min_open=True),
              help="Seconds per whole request (connecting, sending, the answer).")
@click.option("--allow-address", "allow", multiple=True, metavar="ADDRESS",
              help="Also allow this loopback or private address or network (repeatable), e.g. 10.0.0.0/8; the "
                   "addresses URL's host resolves to are allowed anyway.")
def push_command(project: Path, url: str, full: bool, workers: int, retries: int, timeout: float,
                 allow: tuple[str, ...]) -> None:
    """Load the catalog into a SPARQL store via the Graph Store HTTP Protocol (URL: its GSP endpoint).

    One named graph per record ({base_uri}graph/<entity>/<id>, as in dataset.nq): PUT for records
    changed since the last successful push to URL, DELETE for tombstones. An interrupted push resumes
    where it stopped. Credentials come from the environment only: $HERITAGE_LD_PUSH_TOKEN (Bearer),
    or $HERITAGE_LD_PUSH_USER and $HERITAGE_LD_PUSH_PASSWORD (Basic; HTTP Digest with
    $HERITAGE_LD_PUSH_AUTH=digest). Naming URL allows connecting to it, on a private address too;
    redirects are not followed. Exit code 0 if every graph was sent, 2 otherwise.

    \b
    Examples:
      heritage-ld push https://sparql.partner.example/store
      heritage-ld push http://127.0.0.1:7878/store --full
      HERITAGE_LD_PUSH_AUTH=digest heritage-ld push http://127.0.0.1:8890/sparql-graph-crud-auth
    """
    from .push import PushError, PushOptions, push
    try:
        result = push(project, url, PushOptions(full=full, workers=workers, retries=retries, timeout=timeout,
                                                allow_addresses=list(allow)))
    except (PushError, ConfigError, InputError, CatalogError) as e:
        _fail(e)
    except sqlite3.Error as e:
        _fail(describe(e, load_config(project).catalog))
    except OSError as e:
        _fail(f"{url}: {e}")
    click.echo(f"pushed to {result.endpoint}: {result.put} graphs put, {result.deleted} deleted, "
               f"{result.skipped} unchanged (skipped), {len(result.failures)} failures"
               + (f", {result.not_sent} left for the next run" if result.not_sent else ""))
    for message in result.failures:
        click.secho(f"error: {message}", fg="red", err=True)
    sys.exit(0 if result.ok else 2)


if __name__ == "__main__":
    main()
