"""Command line: a thin click layer over ``heritage_ld.pipeline``.

Exit codes: 0 everything published, 1 some records held back, 2 usage, configuration or input error.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

import click

from . import pipeline
from .config import ConfigError
from .mapping import MappingError, Record, Context
from .sources import InputError
from .validate import ShapesError
from .writers import formats
from .writers.report import status, text_report

USER_ERRORS = (ConfigError, MappingError, InputError, ShapesError)
project_option = click.option(
    "--project", "project", type=click.Path(file_okay=False, path_type=Path), default=Path("."),
    show_default=True, help="Project folder holding heritage-ld.toml, mapping/ and shapes/.")


def _fail(e: Exception) -> None:
    click.secho(f"error: {e}", fg="red", err=True)
    sys.exit(2)


def _build(project: Path, label: str) -> pipeline.Publication:
    """Run the pipeline with a progress bar on stderr; user errors exit 2 without a traceback."""
    try:
        with click.progressbar(length=0, label=label, file=sys.stderr, show_pos=True) as bar:
            def progress(n: int) -> None:
                bar.length = (bar.length or 0) + n
                bar.update(n)
            return pipeline.build(project, progress)
    except USER_ERRORS as e:
        _fail(e)
        raise  # unreachable


def _summary(pub: pipeline.Publication, wrote: Path | None) -> None:
    held = len(pub.held_back)
    secs = sum(pub.seconds.values())
    click.echo(f"records read     {pub.records_read} source records, "
               f"{len(pub.published) + held} records with embedded ones")
    click.echo(f"published        {len(pub.published)}  ({pub.triple_count} triples, "
               f"{len(pub.edm_xml)} EDM records)")
    click.echo(f"held back        {held}" + (f"  (+{len(pub.edm_held_back)} from EDM only)" if pub.edm_held_back else ""))
    warnings = sum(1 for i in pub.issues if i.severity != "Violation")
    click.echo(f"warnings         {warnings}")
    click.echo(f"time             {secs:.2f} s")
    for key, issues in sorted({**pub.edm_held_back, **pub.held_back}.items()):
        click.secho(f"  {key[0]} {key[1]}: {status(pub, key)}: {issues[0].message}"
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
def publish(project: Path) -> None:
    """Map every source record, validate it and replace output/ atomically.

    Records with violations are held back (listed in output/validation-report.txt);
    warnings publish. Exit code 0 if all records were published, 1 if some were held back.

    \b
    Example:
      heritage-ld publish --project .
    """
    start = time.perf_counter()
    pub = _build(project, "mapping")
    try:
        from .writers import write_all
        t = time.perf_counter()
        write_all(pub, pub.config.output)
        pub.seconds["write"] = time.perf_counter() - t
    except OSError as e:
        _fail(f"cannot write {pub.config.output}: {e} (the previous output is unchanged)")
    pub.seconds = {"total": time.perf_counter() - start}
    _summary(pub, pub.config.output)
    sys.exit(1 if pub.held_back or pub.edm_held_back else 0)


@main.command()
@project_option
def validate(project: Path) -> None:
    """Map and validate without writing anything; print the report.

    \b
    Example:
      heritage-ld validate --project .
    """
    pub = _build(project, "validating")
    click.echo(text_report(pub))
    _summary(pub, None)
    sys.exit(1 if pub.held_back or pub.edm_held_back else 0)


@main.command(name="map")
@project_option
@click.argument("entity")
@click.argument("record_id")
@click.option("--format", "fmt", default="turtle", show_default=True,
              type=click.Choice(["turtle", "ntriples", "jsonld", "edm"]), help="Output format.")
def map_record(project: Path, entity: str, record_id: str, fmt: str) -> None:
    """Show one record's RDF, to debug a mapping (validation issues go to stderr).

    \b
    Examples:
      heritage-ld map person georgia-evans
      heritage-ld map image cynthia-liem-browsing-records --format edm
    """
    try:
        cfg, mappings, _shapes = pipeline.load_project(project)
        if entity not in mappings.entities:
            raise ConfigError(f"unknown entity {entity!r} (known: {', '.join(mappings.entities)})")
        records, issues, _linked, _n = pipeline.read_records(cfg, mappings)
    except USER_ERRORS as e:
        _fail(e)
    found = [r for r in records if r.entity == entity and r.id == record_id]
    if not found:
        _fail(InputError(f"no {entity} record with id {record_id!r} in the configured sources"))
    known: dict[str, set[str]] = {}
    for r in records:
        known.setdefault(r.entity, set()).add(r.id)
    ctx = Context(cfg.base_uri, cfg.values, record_id, known, mappings)
    mapped = mappings.entities[entity].map(found[0], ctx)
    for i in issues + mapped.issues:
        if (i.entity, i.record_id) == (entity, record_id):
            click.secho(f"{i.severity}: {i.field or ''}: {i.message}", fg="yellow", err=True)
    pub = pipeline.Publication(cfg, mappings, [mapped], {}, {}, [], 1)
    main_subject = next(iter(mapped.subjects.values()), "")
    try:
        data = formats()[fmt].record(pub, mapped.triples, main_subject)
    except ValueError as e:
        _fail(e)
    click.echo(data.decode("utf-8"), nl=False)


if __name__ == "__main__":
    main()
